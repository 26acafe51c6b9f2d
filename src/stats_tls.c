/* stats_tls.c -- the TLS edge's counters in a stats table: per frontend
 * handshakes and versions, per route slot the times it was taken */
#include "ac_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "stats.h"

static const char *const version_names[] = { "TLSv1.2", "TLSv1.3",
    "other" };

const char *
stats_tls_version_name(size_t k)
{
	return k < sizeof(version_names) / sizeof(*version_names) ?
	    version_names[k] : "unknown";
}

void
stats_route_label(char *buf, size_t size, const struct frontend_conf *f,
    size_t k)
{
	const struct route_conf *r;

	if (k == f->nroutes) {
		snprintf(buf, size, "default");
		return;
	}
	r = &f->routes[k];
	snprintf(buf, size, "%s%s%s%s", r->name ? r->name : "",
	    r->name && r->alpn ? " " : "", r->alpn ? "alpn:" : "",
	    r->alpn ? r->alpn : "");
}

int
stats_tls_init(struct stats_table *t, const struct config *cfg)
{
	t->nroutes = cfg->nroute_slots;
	t->tls = calloc(cfg->nfrontends + 1, sizeof(*t->tls));
	t->routes = calloc(t->nroutes + 1, sizeof(*t->routes));
	return t->tls == NULL || t->routes == NULL ? -1 : 0;
}

void
stats_tls_free(struct stats_table *t)
{
	free(t->tls);
	free(t->routes);
	t->tls = NULL;
	t->routes = NULL;
	t->nroutes = 0;
}

void
stats_tls_zero(struct stats_table *t)
{
	memset(t->tls, 0, t->nfrontends * sizeof(*t->tls));
	memset(t->routes, 0, t->nroutes * sizeof(*t->routes));
}

static void
tls_add(struct stat_tls *d, const struct stat_tls *s)
{
	d->handshakes += s->handshakes;
	d->failures += s->failures;
	for (size_t i = 0; i < sizeof(d->versions) / sizeof(*d->versions); i++)
		d->versions[i] += s->versions[i];
}

void
stats_tls_add(struct stats_table *dst, const struct stats_table *src)
{
	for (size_t i = 0; i < dst->nfrontends && i < src->nfrontends; i++)
		tls_add(&dst->tls[i], &src->tls[i]);
	for (size_t i = 0; i < dst->nroutes && i < src->nroutes; i++)
		dst->routes[i] += src->routes[i];
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/* Where route slot k of frontend f stands in g (its default: g's). */
static size_t
route_slot_in(const struct frontend_conf *f, size_t k,
    const struct frontend_conf *g)
{
	const struct route_conf *r;

	if (k == f->nroutes)
		return g->route_base + g->nroutes;
	r = &f->routes[k];
	for (size_t j = 0; j < g->nroutes; j++)
		if (same_str(r->name, g->routes[j].name) &&
		    same_str(r->alpn, g->routes[j].alpn) &&
		    strcmp(r->backend_name, g->routes[j].backend_name) == 0)
			return g->route_base + j;
	return STATS_NOWHERE;
}

int
stats_tls_map(struct stats_map *map, const struct config *from,
    const struct config *to)
{
	map->nroutes = from->nroute_slots;
	if ((map->routes = calloc(from->nroute_slots + 1,
	    sizeof(size_t))) == NULL)
		return -1;
	for (size_t i = 0; i < from->nfrontends; i++) {
		const struct frontend_conf *f = &from->frontends[i];
		size_t to_fe = map->frontends[i];

		for (size_t k = 0; k <= f->nroutes; k++)
			map->routes[f->route_base + k] = to_fe < to->nfrontends ?
			    route_slot_in(f, k, &to->frontends[to_fe]) :
			    STATS_NOWHERE;
	}
	return 0;
}

void
stats_tls_add_mapped(struct stats_table *dst, const struct stats_table *src,
    const struct stats_map *map)
{
	for (size_t i = 0; i < src->nfrontends && i < map->nfrontends; i++)
		if (map->frontends[i] < dst->nfrontends)
			tls_add(&dst->tls[map->frontends[i]], &src->tls[i]);
	for (size_t i = 0; i < src->nroutes && i < map->nroutes; i++)
		if (map->routes[i] < dst->nroutes)
			dst->routes[map->routes[i]] += src->routes[i];
}

size_t
stats_tls_nrecords(const struct stats_table *t)
{
	return t->nfrontends + t->nroutes;
}

void
stats_tls_record(const struct stats_table *t, size_t r,
    struct stat_record *rec)
{
	if (r < t->nfrontends) {
		rec->kind = STAT_TLS;
		rec->index = (uint32_t)r;
		rec->tls = t->tls[r];
	} else {
		rec->kind = STAT_ROUTE;
		rec->index = (uint32_t)(r - t->nfrontends);
		rec->route = t->routes[rec->index];
	}
}

int
stats_tls_check(const struct stats_table *t, const struct stat_record *r,
    size_t i, char *err, size_t errlen)
{
	size_t limit = r->kind == STAT_TLS ? t->nfrontends : t->nroutes;
	uint64_t versions = 0;

	if (r->index >= limit) {
		snprintf(err, errlen, "record %zu: index %u out of range", i,
		    r->index);
		return -1;
	}
	if (r->kind != STAT_TLS)
		return 0;
	for (size_t k = 0; k < sizeof(r->tls.versions) /
	    sizeof(*r->tls.versions); k++) {
		if (r->tls.versions[k] > r->tls.handshakes - versions) {
			snprintf(err, errlen, "record %zu: more TLS versions "
			    "than handshakes", i);
			return -1;
		}
		versions += r->tls.versions[k];
	}
	return 0;
}

void
stats_tls_store(struct stats_table *t, const struct stat_record *r)
{
	if (r->kind == STAT_TLS)
		t->tls[r->index] = r->tls;
	else
		t->routes[r->index] = r->route;
}
