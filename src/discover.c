/* discover.c -- the master's DNS service discovery: servers from A/AAAA
 * records (server ... resolve) and SRV records (discover = dns-srv:),
 * followed at their TTL without a reload */
#include "ac_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "discover.h"
#include "dnsq.h"
#include "log.h"
#include "master_priv.h"
#include "srvset.h"

#define FLOOR_MS	5000	/* TTLs shorter than this count as this */
#define MAX_TARGETS	64	/* SRV targets resolved per answer */

/* A server found by a group: its address, and what DNS said of it. */
struct member {
	struct addr	 addr;
	char		 name[SRVSET_NAME_MAX];
	unsigned	 weight;
	int		 backup;
};

/* One thing to follow: a resolve line, or a backend's SRV name. */
struct group {
	struct discover		*d;
	size_t			 b;		/* backend index */
	const struct resolve_conf *rc;		/* NULL: SRV */
	struct event		*timer;
	struct member		*members;	/* the last known set */
	size_t			 nmembers;
	int			 failing;	/* logged once until it answers */
	unsigned		 round;		/* the query being answered */
	/* an SRV answer being completed: its targets' addresses */
	struct member		*next;
	size_t			 nnext;
	size_t			 pending;
	unsigned		 next_ttl;
	int			 next_failed;
};

struct discover {
	struct master	*m;
	struct dnsq	*q;
	struct group	*groups;
	size_t		 ngroups;
};

/* A target of an SRV answer: which group and round it completes. */
struct target {
	struct group	*g;
	unsigned	 round;
	unsigned	 weight;
	int		 backup;
	char		 prefix[SRVSET_NAME_MAX];
};

static void	group_resolve(struct group *);

static const char *
group_what(const struct group *g, char *buf, size_t len)
{
	const struct backend_conf *bc = &g->d->m->cfg->backends[g->b];

	if (g->rc != NULL)
		snprintf(buf, len, "%s/%s (%s)", bc->name, g->rc->name,
		    g->rc->host);
	else
		snprintf(buf, len, "%s (SRV %s)", bc->name, bc->discover);
	return buf;
}

/* The next resolution in ttl seconds, clamped to [floor, interval]. */
static void
group_schedule(struct group *g, unsigned ttl_s)
{
	unsigned iv = g->d->m->cfg->resolve_interval_ms;
	unsigned floor = iv < FLOOR_MS ? iv : FLOOR_MS;
	unsigned ms = ttl_s > iv / 1000 ? iv : ttl_s * 1000;
	struct timeval tv;

	if (ms < floor)
		ms = floor;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(g->timer, &tv);
}

static int
member_has(const struct member *v, size_t n, const struct addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal(&v[i].addr, a))
			return (int)i;
	return -1;
}

/* PREFIX-k for the lowest k whose name no live server of b holds. */
static void
group_name(const struct backend_conf *bc, const char *prefix, char *out,
    size_t len)
{
	for (unsigned k = 1; k <= CONFIG_MAX_SERVERS; k++) {
		int j;
		snprintf(out, len, "%s-%u", prefix, k);
		if ((j = srvset_server(bc, out)) == -1 || bc->servers[j].removed)
			return;
	}
}

/* A member gone from DNS: its server drains. */
static void
group_drop(struct group *g, const struct member *mb)
{
	struct master *m = g->d->m;
	struct backend_conf *bc = &m->cfg->backends[g->b];
	int j = srvset_server(bc, mb->name);

	if (j == -1 || bc->servers[j].removed ||
	    bc->servers[j].origin != ORIGIN_DNS)
		return;
	log_notice("dns: server %s/%s (%s) no longer in DNS: draining",
	    bc->name, mb->name, bc->servers[j].addr_text);
	srvctl_remove(m, &bc->servers[j]);
}

/* A member new in DNS: a server, named by the group's rule. */
static int
group_take(struct group *g, struct member *mb, const char *prefix)
{
	struct master *m = g->d->m;
	struct backend_conf *bc = &m->cfg->backends[g->b];
	struct server_conf *s;
	struct server_def def;

	memset(&def, 0, sizeof(def));
	group_name(bc, prefix, def.name, sizeof(def.name));
	def.addr = mb->addr;
	def.weight = mb->weight;
	def.backup = mb->backup;
	def.send_proxy = g->rc != NULL ? g->rc->send_proxy : -1;
	def.max_connections = g->rc != NULL ? g->rc->max_connections : 0;
	def.origin = ORIGIN_DNS;
	def.admin = ADMIN_READY;
	if ((s = srvctl_add(m, g->b, &def)) == NULL) {
		log_warnx("dns: server %s/%s: cannot add: %s", bc->name,
		    def.name, errno == ENOSPC ? "the backend is full" :
		    strerror(errno));
		return -1;
	}
	snprintf(mb->name, sizeof(mb->name), "%s", s->name);
	log_notice("dns: server %s/%s (%s) added, weight %u%s", bc->name,
	    s->name, s->addr_text, s->weight, s->backup ? ", backup" : "");
	return 0;
}

/* A weight DNS changed (SRV): the server follows. */
static void
group_reweigh(struct group *g, const struct member *mb)
{
	struct master *m = g->d->m;
	struct backend_conf *bc = &m->cfg->backends[g->b];
	int j = srvset_server(bc, mb->name);

	if (j == -1 || bc->servers[j].removed ||
	    bc->servers[j].weight == mb->weight)
		return;
	log_notice("dns: server %s/%s: weight %u -> %u", bc->name, mb->name,
	    bc->servers[j].weight, mb->weight);
	srvctl_set(m, &bc->servers[j], bc->servers[j].admin, mb->weight);
}

/*
 * Follow a complete answer: v[0..n) with their names' prefixes. A failed
 * or empty answer keeps the last known set, so that DNS trouble never
 * empties a backend; that is logged once until DNS answers again.
 */
static void
group_apply(struct group *g, int ok, struct member *v, size_t n,
    const char *const *prefixes, const char *err)
{
	struct member *keep;
	size_t nkeep = 0;
	char what[320];

	if (!ok || n == 0) {
		if (!g->failing)
			log_warnx("dns: %s: %s: keeping the last %zu servers",
			    group_what(g, what, sizeof(what)), ok ? "no record"
			    : err, g->nmembers);
		g->failing = 1;
		return;
	}
	if (g->failing)
		log_notice("dns: %s answers again: %zu records",
		    group_what(g, what, sizeof(what)), n);
	g->failing = 0;
	if ((keep = calloc(n, sizeof(*keep))) == NULL) {
		log_warn("dns");
		return;
	}
	for (size_t i = 0; i < g->nmembers; i++) {
		int k = member_has(v, n, &g->members[i].addr);
		if (k == -1) {
			group_drop(g, &g->members[i]);
			continue;
		}
		g->members[i].weight = v[k].weight;
		g->members[i].backup = v[k].backup;
		group_reweigh(g, &g->members[i]);
		keep[nkeep++] = g->members[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (member_has(keep, nkeep, &v[i].addr) != -1)
			continue;
		keep[nkeep] = v[i];
		if (group_take(g, &keep[nkeep], prefixes[i]) == 0)
			nkeep++;
	}
	free(g->members);
	g->members = keep;
	g->nmembers = nkeep;
}

/* The answer for a resolve line. */
static void
group_addrs_cb(void *arg, int ok, const struct dnsq_addr *v, size_t n,
    const char *err)
{
	struct group *g = arg;
	struct member *mv = calloc(n + 1, sizeof(*mv));
	const char **pre = calloc(n + 1, sizeof(*pre));
	unsigned ttl = ~0U;
	size_t k = 0;

	if (mv == NULL || pre == NULL) {
		log_warn("dns");
		ok = 0;
		n = 0;
		err = "out of memory";
	}
	for (size_t i = 0; i < n; i++) {
		if (member_has(mv, k, &v[i].addr) != -1)
			continue;	/* duplicates count once */
		mv[k].addr = v[i].addr;
		mv[k].weight = g->rc->weight;
		mv[k].backup = g->rc->backup;
		pre[k++] = g->rc->name;
		if (v[i].ttl < ttl)
			ttl = v[i].ttl;
	}
	n = k;
	group_apply(g, ok, mv, n, pre, err);
	free(mv);
	free(pre);
	group_schedule(g, ok && n > 0 ? ttl : 0);
}

/* SRV: every target answered; follow the whole set. */
static void
group_srv_done(struct group *g)
{
	const char **pre = calloc(g->nnext + 1, sizeof(*pre));

	if (pre == NULL) {
		log_warn("dns");
		g->next_failed = 1;
	}
	for (size_t i = 0; pre != NULL && i < g->nnext; i++)
		pre[i] = g->next[i].name;	/* the prefix, for now */
	group_apply(g, !g->next_failed, g->next, g->nnext, pre,
	    "a target did not resolve");
	free(pre);
	free(g->next);
	g->next = NULL;
	g->nnext = 0;
	group_schedule(g, g->next_failed ? 0 : g->next_ttl);
}

static void
group_target_cb(void *arg, int ok, const struct dnsq_addr *v, size_t n,
    const char *err)
{
	struct target *t = arg;
	struct group *g = t->g;

	(void)err;
	if (t->round != g->round) {	/* an answer to a query given up */
		free(t);
		return;
	}
	if (!ok)
		g->next_failed = 1;
	for (size_t i = 0; i < n && g->nnext < CONFIG_MAX_SERVERS; i++) {
		struct member *mb;
		if (member_has(g->next, g->nnext, &v[i].addr) != -1)
			continue;
		mb = &g->next[g->nnext++];
		mb->addr = v[i].addr;
		mb->weight = t->weight;
		mb->backup = t->backup;
		snprintf(mb->name, sizeof(mb->name), "%s", t->prefix);
		if (v[i].ttl < g->next_ttl)
			g->next_ttl = v[i].ttl;
	}
	free(t);
	if (--g->pending == 0)
		group_srv_done(g);
}

/* An SRV weight (0..65535) as a server weight (1..256). */
static unsigned
srv_weight(unsigned w)
{
	return w < 1 ? 1 : w > CONFIG_MAX_WEIGHT ? CONFIG_MAX_WEIGHT : w;
}

/* The SRV answer: resolve every target (the lowest priority is primary,
 * the others are backups). */
static void
group_srv_cb(void *arg, int ok, const struct dnsq_srv *v, size_t n,
    const char *err)
{
	struct group *g = arg;
	unsigned best = ~0U;

	if (!ok || n == 0) {
		group_apply(g, ok, NULL, 0, NULL, err);
		group_schedule(g, 0);
		return;
	}
	if (n > MAX_TARGETS)
		n = MAX_TARGETS;
	free(g->next);
	if ((g->next = calloc(CONFIG_MAX_SERVERS, sizeof(*g->next))) == NULL) {
		log_warn("dns");
		group_schedule(g, 0);
		return;
	}
	g->nnext = 0;
	g->next_failed = 0;
	g->next_ttl = g->d->m->cfg->resolve_interval_ms / 1000;
	g->pending = 1;		/* held until every query is out */
	for (size_t i = 0; i < n; i++)
		if (v[i].priority < best)
			best = v[i].priority;
	for (size_t i = 0; i < n; i++) {
		struct target *t = calloc(1, sizeof(*t));
		size_t plen = strlen(v[i].host);
		if (t == NULL) {
			g->next_failed = 1;
			continue;
		}
		t->g = g;
		t->round = g->round;
		t->weight = srv_weight(v[i].weight);
		t->backup = v[i].priority != best;
		if (plen > CONFIG_RESOLVE_NAME_MAX)
			plen = CONFIG_RESOLVE_NAME_MAX;
		memcpy(t->prefix, v[i].host, plen);
		t->prefix[plen] = '\0';
		g->pending++;
		if (dnsq_addrs(g->d->q, v[i].host, v[i].port, group_target_cb,
		    t) == -1) {
			free(t);
			g->pending--;
			g->next_failed = 1;
		}
	}
	if (--g->pending == 0)
		group_srv_done(g);
}

static void
group_resolve(struct group *g)
{
	struct backend_conf *bc = &g->d->m->cfg->backends[g->b];
	int rc;

	g->round++;
	if (g->rc != NULL)
		rc = dnsq_addrs(g->d->q, g->rc->host, g->rc->port,
		    group_addrs_cb, g);
	else
		rc = dnsq_srv(g->d->q, bc->discover, group_srv_cb, g);
	if (rc == -1) {
		log_warn("dns");
		group_schedule(g, 0);
	}
}

static void
group_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	group_resolve(arg);
}

/* Whether name is PREFIX-N, N digits. */
static int
named_after(const char *name, const char *prefix)
{
	size_t plen = strlen(prefix);

	return strncmp(name, prefix, plen) == 0 && name[plen] == '-' &&
	    name[plen + 1] != '\0' && strspn(name + plen + 1, "0123456789") ==
	    strlen(name + plen + 1);
}

/*
 * The servers DNS gave before a reload are carried over (srvset_carry):
 * the group takes back those that are its own, by name, so the first
 * answer only changes what changed.
 */
static void
group_adopt(struct group *g)
{
	struct backend_conf *bc = &g->d->m->cfg->backends[g->b];

	for (size_t j = 0; j < bc->nservers; j++) {
		const struct server_conf *s = &bc->servers[j];
		struct member *v;
		int mine = s->origin == ORIGIN_DNS && !s->removed;
		if (mine && g->rc != NULL)
			mine = named_after(s->name, g->rc->name);
		else if (mine)	/* SRV: those no resolve line names */
			for (size_t k = 0; k < bc->nresolves && mine; k++)
				mine = !named_after(s->name,
				    bc->resolves[k].name);
		if (!mine || (v = realloc(g->members, (g->nmembers + 1) *
		    sizeof(*v))) == NULL)
			continue;
		g->members = v;
		memset(&v[g->nmembers], 0, sizeof(*v));
		v[g->nmembers].addr = s->addr;
		v[g->nmembers].weight = s->file_weight;
		v[g->nmembers].backup = s->backup;
		snprintf(v[g->nmembers].name, sizeof(v->name), "%s", s->name);
		g->nmembers++;
	}
}

static int
discover_count(const struct config *cfg)
{
	size_t n = 0;

	for (size_t b = 0; b < cfg->nbackends; b++)
		n += cfg->backends[b].nresolves +
		    (cfg->backends[b].discover != NULL);
	return (int)n;
}

static int
group_init(struct discover *d, struct group *g, size_t b,
    const struct resolve_conf *rc)
{
	g->d = d;
	g->b = b;
	g->rc = rc;
	if ((g->timer = evtimer_new(d->m->base, group_timer_cb, g)) == NULL)
		return -1;
	group_adopt(g);
	return 0;
}

struct discover *
discover_new(struct master *m)
{
	const struct config *cfg = m->cfg;
	struct discover *d;
	size_t k = 0;

	if (discover_count(cfg) == 0)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->groups = calloc((size_t)discover_count(cfg),
	    sizeof(*d->groups))) == NULL) {
		log_warn("dns");
		free(d);
		return NULL;
	}
	d->m = m;
	if ((d->q = dnsq_new(m->base, cfg->resolvers)) == NULL)
		goto fail;
	for (size_t b = 0; b < cfg->nbackends; b++) {
		const struct backend_conf *bc = &cfg->backends[b];
		for (size_t j = 0; j <= bc->nresolves; j++) {
			if (j == bc->nresolves && bc->discover == NULL)
				break;
			if (group_init(d, &d->groups[k], b, j < bc->nresolves ?
			    &bc->resolves[j] : NULL) == -1) {
				log_warn("dns");
				goto fail;
			}
			d->ngroups = ++k;
		}
	}
	for (size_t i = 0; i < d->ngroups; i++)
		group_resolve(&d->groups[i]);
	return d;
fail:
	discover_free(d);
	return NULL;
}

void
discover_free(struct discover *d)
{
	if (d == NULL)
		return;
	/* No answer reaches a group after this: the queries go first. */
	dnsq_free(d->q);
	for (size_t i = 0; i < d->ngroups; i++) {
		if (d->groups[i].timer != NULL)
			event_free(d->groups[i].timer);
		free(d->groups[i].members);
		free(d->groups[i].next);
	}
	free(d->groups);
	free(d);
}
