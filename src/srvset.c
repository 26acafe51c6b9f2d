/* srvset.c -- a configuration's server set at runtime: find, add, remove */
#include "ac_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "srvset.h"

int
srvset_backend(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
srvset_server(const struct backend_conf *b, const char *name)
{
	for (size_t j = 0; j < b->nservers; j++)
		if (strcmp(b->servers[j].name, name) == 0)
			return (int)j;
	return -1;
}

int
srvset_valid_name(const char *name)
{
	size_t n = 0;

	for (; name[n] != '\0'; n++)
		if (!isalnum((unsigned char)name[n]) &&
		    strchr("_.-", name[n]) == NULL)
			return 0;
	return n > 0 && n < SRVSET_NAME_MAX;
}

/* Fill s from d, all but the name and flat index. */
static int
srvset_fill(struct server_conf *s, const struct backend_conf *b,
    const struct server_def *d)
{
	char text[ADDR_STRLEN];
	char *copy;

	addr_format((const struct sockaddr *)&d->addr.ss, text, sizeof(text));
	if ((copy = strdup(text)) == NULL)
		return -1;
	free(s->addr_text);
	s->addr_text = copy;
	s->addr = d->addr;
	s->weight = s->file_weight = d->weight;
	s->backup = d->backup != 0;
	s->send_proxy = d->send_proxy == -1 ? b->send_proxy : d->send_proxy;
	s->max_connections = d->max_connections;
	s->origin = d->origin;
	s->admin = d->admin;
	s->removed = 0;
	s->line = 0;
	return 0;
}

struct server_conf *
srvset_add(struct config *cfg, size_t b, const struct server_def *d)
{
	struct backend_conf *bc = &cfg->backends[b];
	struct server_conf *s;
	int j = srvset_server(bc, d->name);

	if (j != -1 && !bc->servers[j].removed) {
		errno = EEXIST;
		return NULL;
	}
	if (j != -1) {
		s = &bc->servers[j];
		return srvset_fill(s, bc, d) == -1 ? NULL : s;
	}
	if (bc->nservers >= CONFIG_MAX_SERVERS) {
		errno = ENOSPC;
		return NULL;
	}
	s = &bc->servers[bc->nservers];
	memset(s, 0, sizeof(*s));
	if ((s->name = strdup(d->name)) == NULL || srvset_fill(s, bc, d) ==
	    -1) {
		free(s->name);
		free(s->addr_text);
		memset(s, 0, sizeof(*s));
		errno = ENOMEM;
		return NULL;
	}
	s->flat = cfg->nservers++;
	bc->nservers++;
	return s;
}

void
srvset_remove(struct server_conf *s)
{
	s->removed = 1;
}

int
srvset_admitting(const struct server_conf *s)
{
	return !s->removed && s->admin == ADMIN_READY;
}

/* Whether the file defines n as it defined o (the runtime aside). */
static int
srvset_same_file(const struct server_conf *o, const struct server_conf *n)
{
	return strcmp(o->addr_text, n->addr_text) == 0 &&
	    o->file_weight == n->file_weight && o->backup == n->backup &&
	    o->send_proxy == n->send_proxy &&
	    o->max_connections == n->max_connections;
}

static int
srvset_changed_at_runtime(const struct server_conf *o)
{
	return o->weight != o->file_weight || o->admin != ADMIN_READY ||
	    o->removed;
}

/* Carry o, a server of the old file, into n, the new file's. */
static void
srvset_carry_file(const struct backend_conf *nb, const struct server_conf *o,
    struct server_conf *n)
{
	if (!srvset_changed_at_runtime(o))
		return;
	if (!srvset_same_file(o, n)) {
		log_notice("reload: server %s/%s: the file changed it, the file "
		    "wins over its runtime state (%s, weight %u%s)", nb->name,
		    n->name, o->admin == ADMIN_MAINT ? "maint" :
		    o->admin == ADMIN_DRAIN ? "drain" : "ready", o->weight,
		    o->removed ? ", removed" : "");
		return;
	}
	n->weight = o->weight;
	n->admin = o->admin;
	n->removed = o->removed;
}

/* Carry o, added at runtime, into backend b of cfg. */
static int
srvset_carry_added(struct config *cfg, size_t b, const struct server_conf *o)
{
	struct backend_conf *nb = &cfg->backends[b];
	struct server_def d;

	if (srvset_server(nb, o->name) != -1) {
		log_notice("reload: server %s/%s (added at runtime, %s): the "
		    "file now defines it, the file wins", nb->name, o->name,
		    o->addr_text);
		return 0;
	}
	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", o->name);
	d.addr = o->addr;
	d.weight = o->file_weight;
	d.backup = o->backup;
	d.send_proxy = o->send_proxy;
	d.max_connections = o->max_connections;
	d.origin = o->origin;
	d.admin = o->admin;
	if (srvset_add(cfg, b, &d) == NULL)
		return errno == ENOSPC ? 0 : -1;
	nb->servers[nb->nservers - 1].weight = o->weight;
	return 0;
}

int
srvset_carry(const struct config *old, struct config *cfg)
{
	for (size_t i = 0; i < old->nbackends; i++) {
		const struct backend_conf *ob = &old->backends[i];
		int b = srvset_backend(cfg, ob->name);
		if (b == -1)
			continue;
		for (size_t j = 0; j < ob->nservers; j++) {
			const struct server_conf *o = &ob->servers[j];
			struct backend_conf *nb = &cfg->backends[b];
			int k = srvset_server(nb, o->name);
			if (o->origin == ORIGIN_FILE && k != -1 &&
			    nb->servers[k].origin == ORIGIN_FILE)
				srvset_carry_file(nb, o, &nb->servers[k]);
			else if (o->origin == ORIGIN_DNS &&
			    nb->nresolves == 0 && nb->discover == NULL)
				continue;	/* DNS no longer followed */
			else if (o->origin != ORIGIN_FILE && !o->removed &&
			    srvset_carry_added(cfg, (size_t)b, o) == -1)
				return -1;
		}
	}
	return 0;
}

void
srvset_to_chan(const struct server_conf *s, size_t b, struct chan_srvdef *r)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->addr.ss;

	memset(r, 0, sizeof(*r));
	r->backend = (uint32_t)b;
	r->server = (uint32_t)s->flat;
	r->weight = s->weight;
	r->max_connections = s->max_connections;
	r->backup = (uint8_t)s->backup;
	r->send_proxy = (uint8_t)s->send_proxy;
	r->admin = (uint8_t)s->admin;
	r->origin = (uint8_t)s->origin;
	strncpy(r->name, s->name, sizeof(r->name) - 1);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		r->family = AF_INET;
		r->port = sin->sin_port;
		memcpy(r->addr, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		r->family = AF_INET6;
		r->port = sin6->sin6_port;
		memcpy(r->addr, &sin6->sin6_addr, 16);
	}
}

int
srvset_from_chan(const struct chan_srvdef *r, struct server_def *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->name, r->name, sizeof(d->name));
	d->name[sizeof(d->name) - 1] = '\0';
	d->weight = r->weight;
	d->max_connections = r->max_connections;
	d->backup = r->backup;
	d->send_proxy = r->send_proxy;
	d->admin = r->admin;
	d->origin = r->origin;
	if (r->family == AF_INET) {
		struct sockaddr_in *sin = (void *)&d->addr.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = r->port;
		memcpy(&sin->sin_addr, r->addr, 4);
		d->addr.len = sizeof(*sin);
		return 0;
	}
	if (r->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (void *)&d->addr.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = r->port;
		memcpy(&sin6->sin6_addr, r->addr, 16);
		d->addr.len = sizeof(*sin6);
		return 0;
	}
	return -1;
}
