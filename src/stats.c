/* stats.c -- counters, worker reports, and their JSON rendering */
#include "ac_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "route.h"
#include "stats.h"

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

void
sbuf_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

int
stats_table_init(struct stats_table *t, const struct config *cfg)
{
	memset(t, 0, sizeof(*t));
	t->nfrontends = cfg->nfrontends;
	t->nservers = cfg->nservers;
	/*
	 * Room for every server the backends may come to hold, so that
	 * growing never moves the counters (sessions keep pointers to them).
	 */
	t->cap = cfg->nbackends * CONFIG_MAX_SERVERS;
	if (t->cap < t->nservers)
		t->cap = t->nservers;
	t->frontends = calloc(t->nfrontends ? t->nfrontends : 1,
	    sizeof(*t->frontends));
	t->servers = calloc(t->cap ? t->cap : 1, sizeof(*t->servers));
	if (t->frontends == NULL || t->servers == NULL ||
	    stats_tls_init(t, cfg) == -1) {
		stats_table_free(t);
		return -1;
	}
	return 0;
}

int
stats_table_grow(struct stats_table *t, size_t nservers)
{
	struct stat_counters *s;

	if (nservers <= t->nservers)
		return 0;
	if (nservers > t->cap) {
		if ((s = realloc(t->servers, nservers * sizeof(*s))) == NULL)
			return -1;
		t->servers = s;
		t->cap = nservers;
	}
	memset(t->servers + t->nservers, 0, (nservers - t->nservers) *
	    sizeof(*t->servers));
	t->nservers = nservers;
	return 0;
}

void
stats_table_free(struct stats_table *t)
{
	free(t->frontends);
	free(t->servers);
	stats_tls_free(t);
	memset(t, 0, sizeof(*t));
}

void
stats_table_zero(struct stats_table *t)
{
	memset(&t->all, 0, sizeof(t->all));
	memset(t->frontends, 0, t->nfrontends * sizeof(*t->frontends));
	memset(t->servers, 0, t->nservers * sizeof(*t->servers));
	stats_tls_zero(t);
}

static void
counters_add(struct stat_counters *d, const struct stat_counters *s,
    int no_active)
{
	if (!no_active)
		d->active += s->active;
	d->total += s->total;
	d->errors += s->errors;
	d->failures += s->failures;
	d->bytes_in += s->bytes_in;
	d->bytes_out += s->bytes_out;
	d->handed_over += s->handed_over;
}

void
stats_table_add(struct stats_table *dst, const struct stats_table *src,
    int no_active)
{
	counters_add(&dst->all, &src->all, no_active);
	for (size_t i = 0; i < dst->nfrontends && i < src->nfrontends; i++)
		counters_add(&dst->frontends[i], &src->frontends[i], no_active);
	for (size_t i = 0; i < dst->nservers && i < src->nservers; i++)
		counters_add(&dst->servers[i], &src->servers[i], no_active);
	stats_tls_add(dst, src);
}

int
stats_map_init(struct stats_map *map, const struct config *from,
    const struct config *to)
{
	memset(map, 0, sizeof(*map));
	map->nfrontends = from->nfrontends;
	map->nservers = from->nservers;
	map->frontends = calloc(from->nfrontends + 1, sizeof(size_t));
	map->servers = calloc(from->nservers + 1, sizeof(size_t));
	if (map->frontends == NULL || map->servers == NULL) {
		stats_map_free(map);
		return -1;
	}
	for (size_t i = 0; i < from->nfrontends; i++) {
		map->frontends[i] = STATS_NOWHERE;
		for (size_t j = 0; j < to->nfrontends; j++)
			if (strcmp(from->frontends[i].name,
			    to->frontends[j].name) == 0)
				map->frontends[i] = j;
	}
	for (size_t i = 0; i < from->nbackends; i++) {
		const struct backend_conf *fb = &from->backends[i];
		const struct backend_conf *tb = NULL;
		for (size_t j = 0; j < to->nbackends && tb == NULL; j++)
			if (strcmp(fb->name, to->backends[j].name) == 0)
				tb = &to->backends[j];
		for (size_t k = 0; k < fb->nservers; k++) {
			size_t at = STATS_NOWHERE;
			for (size_t j = 0; tb != NULL && j < tb->nservers; j++)
				if (strcmp(fb->servers[k].name,
				    tb->servers[j].name) == 0)
					at = tb->servers[j].flat;
			map->servers[fb->servers[k].flat] = at;
		}
	}
	if (stats_tls_map(map, from, to) == -1) {
		stats_map_free(map);
		return -1;
	}
	return 0;
}

void
stats_map_free(struct stats_map *map)
{
	free(map->frontends);
	free(map->servers);
	free(map->routes);
	memset(map, 0, sizeof(*map));
}

void
stats_table_add_mapped(struct stats_table *dst, const struct stats_table *src,
    const struct stats_map *map, int no_active)
{
	counters_add(&dst->all, &src->all, no_active);
	for (size_t i = 0; i < src->nfrontends && i < map->nfrontends; i++)
		if (map->frontends[i] < dst->nfrontends)
			counters_add(&dst->frontends[map->frontends[i]],
			    &src->frontends[i], no_active);
	for (size_t i = 0; i < src->nservers && i < map->nservers; i++)
		if (map->servers[i] < dst->nservers)
			counters_add(&dst->servers[map->servers[i]],
			    &src->servers[i], no_active);
	stats_tls_add_mapped(dst, src, map);
}

size_t
stats_nrecords(const struct stats_table *t)
{
	return 1 + t->nfrontends + t->nservers + stats_tls_nrecords(t);
}

size_t
stats_records(const struct stats_table *t, size_t first,
    struct stat_record *out, size_t max)
{
	size_t n = 0, total = stats_nrecords(t);

	for (size_t r = first; r < total && n < max; r++, n++) {
		struct stat_record *rec = &out[n];
		memset(rec, 0, sizeof(*rec));
		if (r == 0) {
			rec->kind = STAT_WORKER;
			rec->c = t->all;
		} else if (r <= t->nfrontends) {
			rec->kind = STAT_FRONTEND;
			rec->index = (uint32_t)(r - 1);
			rec->c = t->frontends[r - 1];
		} else if (r > t->nfrontends + t->nservers) {
			stats_tls_record(t, r - 1 - t->nfrontends - t->nservers,
			    rec);
		} else {
			rec->kind = STAT_SERVER;
			rec->index = (uint32_t)(r - 1 - t->nfrontends);
			rec->c = t->servers[rec->index];
		}
	}
	return n;
}

int
stats_apply(struct stats_table *t, const struct stat_record *recs, size_t n,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct stat_record *r = &recs[i];
		size_t limit = r->kind == STAT_FRONTEND ? t->nfrontends :
		    r->kind == STAT_SERVER ? t->nservers : 1;
		if (r->kind < STAT_WORKER || r->kind > STAT_ROUTE) {
			snprintf(err, errlen, "record %zu: unknown kind %u", i,
			    r->kind);
			return -1;
		}
		if (r->kind == STAT_TLS || r->kind == STAT_ROUTE) {
			if (stats_tls_check(t, r, i, err, errlen) == -1)
				return -1;
			continue;
		}
		if (r->index >= limit) {
			snprintf(err, errlen, "record %zu: index %u out of "
			    "range", i, r->index);
			return -1;
		}
		/* Open: accepted here, or handed over from elsewhere. */
		if (r->c.active > r->c.total &&
		    r->c.active - r->c.total > r->c.handed_over) {
			snprintf(err, errlen, "record %zu: %llu active of %llu "
			    "(and %llu handed over)", i,
			    (unsigned long long)r->c.active,
			    (unsigned long long)r->c.total,
			    (unsigned long long)r->c.handed_over);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct stat_record *r = &recs[i];
		if (r->kind == STAT_WORKER)
			t->all = r->c;
		else if (r->kind == STAT_FRONTEND)
			t->frontends[r->index] = r->c;
		else if (r->kind == STAT_SERVER)
			t->servers[r->index] = r->c;
		else
			stats_tls_store(t, r);
	}
	return 0;
}

const char *
stats_status_name(int status)
{
	static const char *const names[] = { "up", "down", "drain", "maint" };

	if (status < 0 || status > SERVER_MAINT)
		return "unknown";
	return names[status];
}

/* A JSON string literal, escaped per RFC 8259. */
static void
json_str(struct sbuf *b, const char *s)
{
	sbuf_printf(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sbuf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			sbuf_printf(b, "\\n");
		else if (*p == '\r')
			sbuf_printf(b, "\\r");
		else if (*p == '\t')
			sbuf_printf(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			sbuf_printf(b, "\\u%04x", *p);
		else
			sbuf_printf(b, "%c", *p);
	}
	sbuf_printf(b, "\"");
}

static void
json_counters(struct sbuf *b, const struct stat_counters *c)
{
	sbuf_printf(b, "\"active\": %llu, \"total\": %llu",
	    (unsigned long long)c->active, (unsigned long long)c->total);
}

static void
json_bytes(struct sbuf *b, const struct stat_counters *c)
{
	sbuf_printf(b, "\"bytes_in\": %llu, \"bytes_out\": %llu",
	    (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
}

static void
json_workers(struct sbuf *b, const struct stats_view *v)
{
	sbuf_printf(b, "  \"workers\": [");
	for (size_t i = 0; i < v->nworkers; i++) {
		const struct stats_worker *w = &v->workers[i];
		sbuf_printf(b, "%s\n    {\"id\": %d, \"pid\": %d, "
		    "\"generation\": %u, \"state\": ", i ? "," : "", w->id,
		    (int)w->pid, w->generation);
		json_str(b, w->state);
		sbuf_printf(b, ", \"version\": ");
		json_str(b, w->version != NULL ? w->version : "");
		sbuf_printf(b, ", ");
		json_counters(b, &w->c);
		sbuf_printf(b, ", ");
		json_bytes(b, &w->c);
		if (w->ho.asked)
			sbuf_printf(b, ", \"handover\": {\"moved\": %llu, "
			    "\"waiting\": %u, \"staying\": {\"tls\": %u, "
			    "\"server\": %u}}",
			    (unsigned long long)w->ho.moved, w->ho.waiting,
			    w->ho.tls, w->ho.pinned);
		sbuf_printf(b, "}");
	}
	sbuf_printf(b, "%s],\n", v->nworkers ? "\n  " : "");
}

/* A TLS frontend's handshakes, versions and routes taken. */
static void
json_tls(struct sbuf *b, const struct stats_view *v, size_t fe)
{
	const struct frontend_conf *f = &v->cfg->frontends[fe];
	const struct stat_tls *t = &v->sum.tls[fe];
	char label[600];

	sbuf_printf(b, ",\n     \"tls\": {\"handshakes\": %llu, "
	    "\"handshake_failures\": %llu, \"versions\": {",
	    (unsigned long long)t->handshakes,
	    (unsigned long long)t->failures);
	for (size_t k = 0; k < 3; k++)
		sbuf_printf(b, "%s\"%s\": %llu", k ? ", " : "",
		    stats_tls_version_name(k),
		    (unsigned long long)t->versions[k]);
	sbuf_printf(b, "}},\n     \"routes\": [");
	for (size_t k = 0; k <= f->nroutes; k++) {
		stats_route_label(label, sizeof(label), f, k);
		sbuf_printf(b, "%s{\"route\": ", k ? ", " : "");
		json_str(b, label);
		sbuf_printf(b, ", \"backend\": ");
		json_str(b, v->cfg->backends[route_backend(f, k)].name);
		sbuf_printf(b, ", \"total\": %llu}", (unsigned long long)
		    v->sum.routes[f->route_base + k]);
	}
	sbuf_printf(b, "]");
}

static void
json_frontends(struct sbuf *b, const struct stats_view *v)
{
	const struct config *cfg = v->cfg;

	sbuf_printf(b, "  \"frontends\": [");
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct frontend_conf *f = &cfg->frontends[i];
		const struct stat_counters *c = &v->sum.frontends[i];
		sbuf_printf(b, "%s\n    {\"name\": ", i ? "," : "");
		json_str(b, f->name);
		sbuf_printf(b, ", \"listen\": [");
		for (size_t j = 0; j < f->nlistens; j++) {
			sbuf_printf(b, "%s", j ? ", " : "");
			json_str(b, f->listens[j].text);
		}
		sbuf_printf(b, "], ");
		json_counters(b, c);
		sbuf_printf(b, ", \"errors\": %llu, \"handed_over\": %llu, ",
		    (unsigned long long)c->errors,
		    (unsigned long long)c->handed_over);
		json_bytes(b, c);
		if (f->ntls > 0 || f->tls_passthrough)
			json_tls(b, v, i);
		sbuf_printf(b, "}");
	}
	sbuf_printf(b, "%s],\n", cfg->nfrontends ? "\n  " : "");
}

static void
json_server(struct sbuf *b, const struct stats_view *v,
    const struct server_conf *s, size_t flat)
{
	const struct stat_counters *c = &v->sum.servers[flat];

	sbuf_printf(b, "{\"name\": ");
	json_str(b, s->name);
	sbuf_printf(b, ", \"address\": ");
	json_str(b, s->addr_text);
	sbuf_printf(b, ", \"status\": \"%s\", \"weight\": %u, "
	    "\"backup\": %s, ", stats_status_name(v->server_status[flat]),
	    s->weight, s->backup ? "true" : "false");
	json_counters(b, c);
	sbuf_printf(b, ", \"failures\": %llu, ",
	    (unsigned long long)c->failures);
	json_bytes(b, c);
	sbuf_printf(b, "}");
}

static void
json_backends(struct sbuf *b, const struct stats_view *v)
{
	const struct config *cfg = v->cfg;

	sbuf_printf(b, "  \"backends\": [");
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *bc = &cfg->backends[i];
		sbuf_printf(b, "%s\n    {\"name\": ", i ? "," : "");
		json_str(b, bc->name);
		sbuf_printf(b, ", \"balance\": \"%s\", \"servers\": [",
		    config_balance_name(bc->balance));
		for (size_t j = 0, n = 0; j < bc->nservers; j++) {
			if (v->server_status[bc->servers[j].flat] ==
			    SERVER_GONE)
				continue;
			sbuf_printf(b, "%s\n      ", n++ ? "," : "");
			json_server(b, v, &bc->servers[j], bc->servers[j].flat);
		}
		sbuf_printf(b, "]}");
	}
	sbuf_printf(b, "%s]\n", cfg->nbackends ? "\n  " : "");
}

void
stats_render_json(const struct stats_view *v, struct sbuf *b)
{
	sbuf_printf(b, "{\n  \"version\": ");
	json_str(b, v->version);
	sbuf_printf(b, ", \"pid\": %d, \"uptime_s\": %.1f,\n"
	    "  \"generation\": %u, \"reloads\": %llu, "
	    "\"reload_failures\": %llu, \"redispatched\": %llu,\n"
	    "  \"accept_paused\": %s, \"accept_paused_s\": %.3f, "
	    "\"accept_pauses\": %llu, \"accept_with\": \"%s\",\n"
	    "  \"connections\": {\"active\": %llu, \"total\": %llu},\n",
	    (int)v->pid, v->uptime_s, v->generation,
	    (unsigned long long)v->reloads,
	    (unsigned long long)v->reload_failures,
	    (unsigned long long)v->redispatched,
	    v->accept_paused ? "true" : "false", v->accept_paused_s,
	    (unsigned long long)v->accept_pauses,
	    v->accept_with != NULL ? v->accept_with : "epoll",
	    (unsigned long long)v->sum.all.active,
	    (unsigned long long)v->sum.all.total);
	json_workers(b, v);
	json_frontends(b, v);
	json_backends(b, v);
	sbuf_printf(b, "}\n");
}
