/* stats_prom.c -- the stats view in the Prometheus text format 0.0.4 */
#include "ac_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "route.h"
#include "stats.h"

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void
prom_label(struct sbuf *b, const char *name, const char *value)
{
	sbuf_printf(b, "%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			sbuf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			sbuf_printf(b, "\\n");
		else
			sbuf_printf(b, "%c", *p);
	}
	sbuf_printf(b, "\"");
}

static void
prom_head(struct sbuf *b, const char *name, const char *type,
    const char *help)
{
	sbuf_printf(b, "# HELP baton_%s %s\n# TYPE baton_%s %s\n", name, help,
	    name, type);
}

/* One metric family over the workers. */
static void
prom_workers(struct sbuf *b, const struct stats_view *v, const char *name,
    const char *type, const char *help, size_t off)
{
	prom_head(b, name, type, help);
	for (size_t i = 0; i < v->nworkers; i++) {
		const struct stats_worker *w = &v->workers[i];
		uint64_t val = *(const uint64_t *)(const void *)
		    ((const char *)&w->c + off);
		sbuf_printf(b, "baton_%s{worker=\"%d\",generation=\"%u\"} "
		    "%llu\n", name, w->id, w->generation,
		    (unsigned long long)val);
	}
}

static void
prom_frontends(struct sbuf *b, const struct stats_view *v, const char *name,
    const char *type, const char *help, size_t off)
{
	prom_head(b, name, type, help);
	for (size_t i = 0; i < v->cfg->nfrontends; i++) {
		uint64_t val = *(const uint64_t *)(const void *)
		    ((const char *)&v->sum.frontends[i] + off);
		sbuf_printf(b, "baton_%s{", name);
		prom_label(b, "frontend", v->cfg->frontends[i].name);
		sbuf_printf(b, "} %llu\n", (unsigned long long)val);
	}
}

/* One metric family over the servers; off -1 means the up gauge. */
static void
prom_servers(struct sbuf *b, const struct stats_view *v, const char *name,
    const char *type, const char *help, long off)
{
	prom_head(b, name, type, help);
	for (size_t i = 0; i < v->cfg->nbackends; i++) {
		const struct backend_conf *bc = &v->cfg->backends[i];
		for (size_t j = 0; j < bc->nservers; j++) {
			size_t flat = bc->servers[j].flat;
			uint64_t val;
			if (v->server_status[flat] == SERVER_GONE)
				continue;
			if (off == -1)
				val = v->server_status[flat] == SERVER_UP;
			else if (off == -2)
				val = bc->servers[j].weight;
			else if (off == -3)
				val = v->server_status[flat] == SERVER_DRAIN;
			else if (off == -4)
				val = v->server_status[flat] == SERVER_MAINT;
			else
				val = *(const uint64_t *)(const void *)
				    ((const char *)&v->sum.servers[flat] +
				    off);
			sbuf_printf(b, "baton_%s{", name);
			prom_label(b, "backend", bc->name);
			sbuf_printf(b, ",");
			prom_label(b, "server", bc->servers[j].name);
			sbuf_printf(b, "} %llu\n", (unsigned long long)val);
		}
	}
}

#define OFF(f)	((long)offsetof(struct stat_counters, f))

/* The TLS frontends' handshakes, versions and routes. */
static void
prom_tls(struct sbuf *b, const struct stats_view *v)
{
	static const char *const heads[][2] = {
		{ "frontend_tls_handshakes_total",
		    "TLS handshakes completed (passed through: ClientHellos "
		    "read)." },
		{ "frontend_tls_handshake_failures_total",
		    "TLS handshakes (or ClientHellos) failed or too slow." },
		{ "frontend_tls_versions_total",
		    "Terminated TLS handshakes per version." },
		{ "frontend_routes_total", "Connections per route taken." },
	};
	const struct config *cfg = v->cfg;
	char label[600];

	for (size_t h = 0; h < 4; h++) {
		prom_head(b, heads[h][0], "counter", heads[h][1]);
		for (size_t i = 0; i < cfg->nfrontends; i++) {
			const struct frontend_conf *f = &cfg->frontends[i];
			const struct stat_tls *t = &v->sum.tls[i];
			size_t n = h < 2 ? 1 : h == 2 ? 3 : f->nroutes + 1;

			if (f->ntls == 0 && !f->tls_passthrough)
				continue;
			for (size_t k = 0; k < n; k++) {
				uint64_t val = h == 0 ? t->handshakes : h == 1 ?
				    t->failures : h == 2 ? t->versions[k] :
				    v->sum.routes[f->route_base + k];
				sbuf_printf(b, "baton_%s{", heads[h][0]);
				prom_label(b, "frontend", f->name);
				if (h == 2) {
					sbuf_printf(b, ",");
					prom_label(b, "version",
					    stats_tls_version_name(k));
				} else if (h == 3) {
					stats_route_label(label, sizeof(label), f, k);
					sbuf_printf(b, ",");
					prom_label(b, "route", label);
					sbuf_printf(b, ",");
					prom_label(b, "backend", cfg->backends[
					    route_backend(f, k)].name);
				}
				sbuf_printf(b, "} %llu\n",
				    (unsigned long long)val);
			}
		}
	}
}

/* A metric family: name after "baton_", type, help, counter offset. */
struct prom_family {
	const char	*name;
	const char	*type;
	const char	*help;
	long		 off;	/* servers: -1 the up gauge, -2 the weight */
};

static const struct prom_family worker_families[] = {
	{ "worker_connections_active", "gauge",
	    "Open connections per worker.", OFF(active) },
	{ "worker_connections_total", "counter",
	    "Connections handled per worker.", OFF(total) },
	{ "worker_received_bytes_total", "counter",
	    "Bytes received from clients per worker.", OFF(bytes_in) },
	{ "worker_sent_bytes_total", "counter",
	    "Bytes sent to clients per worker.", OFF(bytes_out) },
};

static const struct prom_family frontend_families[] = {
	{ "frontend_connections_active", "gauge",
	    "Open connections per frontend.", OFF(active) },
	{ "frontend_connections_total", "counter",
	    "Accepted connections per frontend.", OFF(total) },
	{ "frontend_errors_total", "counter",
	    "Connections that reached no server.", OFF(errors) },
	{ "frontend_handed_over_total", "counter",
	    "Live sessions moved here from an older generation.",
	    OFF(handed_over) },
	{ "frontend_received_bytes_total", "counter",
	    "Bytes received from clients per frontend.", OFF(bytes_in) },
	{ "frontend_sent_bytes_total", "counter",
	    "Bytes sent to clients per frontend.", OFF(bytes_out) },
};

static const struct prom_family server_families[] = {
	{ "server_up", "gauge", "1 when the server is up, else 0.", -1 },
	{ "server_weight", "gauge", "Weight in force.", -2 },
	{ "server_drain", "gauge",
	    "1 while the server drains (no new connections).", -3 },
	{ "server_maint", "gauge",
	    "1 while the server is in maintenance (no new connections).", -4 },
	{ "server_connections_active", "gauge",
	    "Open connections per server.", OFF(active) },
	{ "server_connections_total", "counter",
	    "Connections established per server.", OFF(total) },
	{ "server_connect_failures_total", "counter",
	    "Failed connects per server.", OFF(failures) },
	{ "server_received_bytes_total", "counter",
	    "Bytes received from clients per server.", OFF(bytes_in) },
	{ "server_sent_bytes_total", "counter",
	    "Bytes sent to clients per server.", OFF(bytes_out) },
};

void
stats_render_prometheus(const struct stats_view *v, struct sbuf *b)
{
	prom_head(b, "info", "gauge", "Version of baton.");
	sbuf_printf(b, "baton_info{version=\"%s\"} 1\n", v->version);
	prom_head(b, "uptime_seconds", "gauge", "Seconds since the start.");
	sbuf_printf(b, "baton_uptime_seconds %.1f\n", v->uptime_s);
	prom_head(b, "generation", "gauge", "Configuration generation.");
	sbuf_printf(b, "baton_generation %u\n", v->generation);
	prom_head(b, "reloads_total", "counter", "Successful reloads.");
	sbuf_printf(b, "baton_reloads_total %llu\n",
	    (unsigned long long)v->reloads);
	prom_head(b, "reload_failures_total", "counter", "Failed reloads.");
	sbuf_printf(b, "baton_reload_failures_total %llu\n",
	    (unsigned long long)v->reload_failures);
	prom_head(b, "redispatched_total", "counter",
	    "Sockets handed to another worker after theirs died.");
	sbuf_printf(b, "baton_redispatched_total %llu\n",
	    (unsigned long long)v->redispatched);
	prom_head(b, "accept_paused", "gauge",
	    "1 while new clients wait in the listen backlog.");
	sbuf_printf(b, "baton_accept_paused %d\n", v->accept_paused);
	prom_head(b, "accept_paused_seconds_total", "counter",
	    "Time new clients waited in the listen backlog.");
	sbuf_printf(b, "baton_accept_paused_seconds_total %.3f\n",
	    v->accept_paused_s);
	prom_head(b, "accept_pauses_total", "counter",
	    "Times accepting was paused.");
	sbuf_printf(b, "baton_accept_pauses_total %llu\n",
	    (unsigned long long)v->accept_pauses);
	prom_head(b, "connections_active", "gauge", "Open connections.");
	sbuf_printf(b, "baton_connections_active %llu\n",
	    (unsigned long long)v->sum.all.active);
	prom_head(b, "connections_total", "counter", "Accepted connections.");
	sbuf_printf(b, "baton_connections_total %llu\n",
	    (unsigned long long)v->sum.all.total);

	for (size_t i = 0; i < sizeof(worker_families) /
	    sizeof(*worker_families); i++) {
		const struct prom_family *f = &worker_families[i];
		prom_workers(b, v, f->name, f->type, f->help, (size_t)f->off);
	}
	for (size_t i = 0; i < sizeof(frontend_families) /
	    sizeof(*frontend_families); i++) {
		const struct prom_family *f = &frontend_families[i];
		prom_frontends(b, v, f->name, f->type, f->help, (size_t)f->off);
	}
	for (size_t i = 0; i < sizeof(server_families) /
	    sizeof(*server_families); i++) {
		const struct prom_family *f = &server_families[i];
		prom_servers(b, v, f->name, f->type, f->help, f->off);
	}
	prom_tls(b, v);
}
