/* srvctl.c -- the master's runtime changes to servers: state, weight,
 * add, remove; applied here, then told to the current workers */
#include "ac_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "master_priv.h"
#include "srvset.h"

/* Every generation's names onto the current configuration, again. */
static void
srvctl_remap(struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++) {
		struct generation *g = m->workers[i]->gen;
		stats_map_free(&g->map);
		if (stats_map_init(&g->map, g->cfg, m->cfg) == -1)
			log_warn("stats map");	/* its counters go unshown */
	}
	stats_map_free(&m->gen->map);
	if (stats_map_init(&m->gen->map, m->cfg, m->cfg) == -1)
		log_warn("stats map");
}

/* The master's per-server tables grow to the configuration's servers. */
static int
srvctl_grow(struct master *m)
{
	size_t n = m->cfg->nservers + 1;
	uint8_t *up, *soft;

	if ((up = realloc(m->server_up, n)) == NULL)
		return -1;
	m->server_up = up;
	if ((soft = realloc(m->server_soft, n)) == NULL)
		return -1;
	m->server_soft = soft;
	if (stats_table_grow(&m->retired, m->cfg->nservers) == -1 ||
	    wtable_grow(m) == -1)
		return -1;
	srvctl_remap(m);
	return 0;
}

void
srvctl_set(struct master *m, struct server_conf *s, int admin,
    unsigned weight)
{
	s->admin = admin;
	s->weight = weight;
	wsend_servers(m, s->flat);
}

struct server_conf *
srvctl_add(struct master *m, size_t b, const struct server_def *d)
{
	struct backend_conf *bc = &m->cfg->backends[b];
	struct server_conf *s;
	size_t had = m->cfg->nservers;

	if ((s = srvset_add(m->cfg, b, d)) == NULL)
		return NULL;
	if (m->cfg->nservers > had && srvctl_grow(m) == -1)
		fatalx("out of memory adding server %s", d->name);
	/* As its backend's check says: with checks, up once they pass. */
	m->server_up[s->flat] = bc->check != CHECK_TCP;
	m->server_soft[s->flat] = 0;
	if (m->health != NULL && health_add(m->health, s->flat,
	    m->server_up[s->flat]) == -1)
		log_warn("server %s/%s: health checks", bc->name, s->name);
	wsend_srvdef(m, b, s);
	return s;
}

void
srvctl_remove(struct master *m, struct server_conf *s)
{
	srvset_remove(s);
	if (m->health != NULL)
		health_stop(m->health, s->flat);
	wsend_servers(m, s->flat);
}

/* A POST: state and/or weight. */
static int
srvctl_api_set(struct master *m, const struct api_req *r,
    struct server_conf *s, char *msg, size_t len)
{
	int admin = r->has_state ? r->state : s->admin;
	unsigned weight = r->has_weight ? r->weight : s->weight;

	log_notice("api: %s: server %s/%s: state %s -> %s, weight %u -> %u",
	    r->who, r->backend, s->name, api_state_name(s->admin),
	    api_state_name(admin), s->weight, weight);
	srvctl_set(m, s, admin, weight);
	snprintf(msg, len, "server %s/%s: state %s, weight %u", r->backend,
	    s->name, api_state_name(admin), weight);
	return 200;
}

static int
srvctl_api_add(struct master *m, const struct api_req *r, size_t b,
    char *msg, size_t len)
{
	struct server_conf *s;

	if (!srvset_valid_name(r->server)) {
		snprintf(msg, len, "bad server name (1..%d of A-Z a-z 0-9 _ "
		    ". -)", SRVSET_NAME_MAX - 1);
		return 400;
	}
	if ((s = srvctl_add(m, b, &r->def)) == NULL) {
		if (errno == EEXIST) {
			snprintf(msg, len, "server %s/%s exists", r->backend,
			    r->server);
			return 409;
		}
		snprintf(msg, len, "server %s/%s: %s", r->backend, r->server,
		    errno == ENOSPC ? "the backend is full" : strerror(errno));
		return errno == ENOSPC ? 409 : 500;
	}
	log_notice("api: %s: server %s/%s (%s) added, weight %u%s, %s",
	    r->who, r->backend, s->name, s->addr_text, s->weight,
	    s->backup ? ", backup" : "", api_state_name(s->admin));
	snprintf(msg, len, "server %s/%s (%s) added", r->backend, s->name,
	    s->addr_text);
	return 201;
}

int
srvctl_api(void *arg, const struct api_req *r, char *msg, size_t len)
{
	struct master *m = arg;
	struct backend_conf *bc;
	int b, j;

	if (m->stopping) {
		snprintf(msg, len, "stopping");
		return 503;
	}
	if ((b = srvset_backend(m->cfg, r->backend)) == -1) {
		snprintf(msg, len, "no backend named %s", r->backend);
		return 404;
	}
	bc = &m->cfg->backends[b];
	if (r->op == API_ADD)
		return srvctl_api_add(m, r, (size_t)b, msg, len);
	if ((j = srvset_server(bc, r->server)) == -1 ||
	    bc->servers[j].removed) {
		snprintf(msg, len, "no server named %s in backend %s",
		    r->server, r->backend);
		return 404;
	}
	if (r->op == API_SET)
		return srvctl_api_set(m, r, &bc->servers[j], msg, len);
	log_notice("api: %s: server %s/%s (%s) removed: draining", r->who,
	    bc->name, bc->servers[j].name, bc->servers[j].addr_text);
	srvctl_remove(m, &bc->servers[j]);
	snprintf(msg, len, "server %s/%s removed: it drains", bc->name,
	    bc->servers[j].name);
	return 200;
}
