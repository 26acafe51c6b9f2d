/* mstats.c -- the master's counters: the stats view, open connections */
#include "ac_config.h"

#include <sys/time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listeners.h"
#include "master_priv.h"

/*
 * Connection totals come from the master, which sees every socket: a
 * frontend's total is what it accepted, a worker's what it acknowledged,
 * so no crash can lose a count. Refused sockets are errors too.
 */
static void
master_view_counts(struct master *m, struct stats_view *v)
{
	const struct dcounts *c = &m->d.counts;

	v->sum.all.total = m->d.accepted;
	for (size_t i = 0; i < m->cfg->nfrontends && i < c->n; i++) {
		v->sum.frontends[i].total = c->accepted[i];
		v->sum.frontends[i].errors += c->refused[i];
		v->sum.all.errors += c->refused[i];
	}
}

/*
 * What the API set overrides what the checks say: maint, then drain. A
 * server removed at runtime drains until its last connection closes,
 * and is gone from then on.
 */
static void
mstats_admin(const struct config *cfg, struct stats_view *v)
{
	for (size_t b = 0; b < cfg->nbackends; b++) {
		const struct backend_conf *bc = &cfg->backends[b];
		for (size_t j = 0; j < bc->nservers; j++) {
			const struct server_conf *s = &bc->servers[j];
			uint8_t *st = &v->server_status[s->flat];
			if (s->removed)
				*st = v->sum.servers[s->flat].active == 0 ?
				    SERVER_GONE : SERVER_DRAIN;
			else if (s->admin == ADMIN_MAINT)
				*st = SERVER_MAINT;
			else if (s->admin == ADMIN_DRAIN)
				*st = SERVER_DRAIN;
		}
	}
}

/*
 * Gather what the stats endpoint shows: every live worker's latest report,
 * in the current configuration's shape, added to the totals of those that
 * exited. Freed by master_stats_done().
 */
int
master_stats_view(void *arg, struct stats_view *v)
{
	struct master *m = arg;
	struct timeval now;
	size_t n = 0;

	memset(v, 0, sizeof(*v));
	if (stats_table_init(&v->sum, m->cfg) == -1 ||
	    (v->workers = calloc(m->nworkers + m->norphans + 1,
	    sizeof(*v->workers))) == NULL ||
	    (v->server_status = calloc(m->cfg->nservers + 1, 1)) == NULL) {
		master_stats_done(m, v);
		return -1;
	}
	stats_table_add(&v->sum, &m->retired, 0);
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = m->workers[i];
		struct stats_worker *ws = &v->workers[n];
		if (wp->state == WP_EMPTY)
			continue;
		stats_table_add_mapped(&v->sum, &wp->st, &wp->gen->map, 0);
		ws->id = wp->id;
		ws->pid = wp->pid;
		ws->generation = wp->gen->id;
		ws->state = wproc_state_names[wp->state];
		ws->c = wp->st.all;
		ws->c.total = wp->t.acked;
		ws->version = PACKAGE_VERSION;
		handover_view(&wp->ho, &ws->ho);
		n++;
	}
	/* The old binary's, after an upgrade: draining, not reporting. */
	for (size_t i = 0; i < m->norphans; i++, n++) {
		const struct orphan *o = m->orphans[i];

		v->workers[n].id = o->id;
		v->workers[n].pid = o->pid;
		v->workers[n].generation = o->generation;
		v->workers[n].state = "draining";
		v->workers[n].version = o->version;
		v->workers[n].c = o->c;
		handover_view(&o->ho, &v->workers[n].ho);
	}
	master_view_counts(m, v);
	gettimeofday(&now, NULL);
	v->version = PACKAGE_VERSION;
	v->pid = getpid();
	v->uptime_s = (double)(now.tv_sec - m->start.tv_sec) +
	    (double)(now.tv_usec - m->start.tv_usec) / 1e6;
	v->generation = m->generation;
	v->reloads = m->reloads;
	v->reload_failures = m->reload_failures;
	v->redispatched = m->d.redispatched;
	v->accept_paused = m->ls != NULL && m->ls->paused;
	v->accept_paused_s = (double)lset_paused_ms(m->ls) / 1000;
	v->accept_pauses = m->ls != NULL ? m->ls->pauses : 0;
	v->accept_with = m->ring != NULL ? "io_uring" : "epoll";
	v->cfg = m->cfg;
	v->nworkers = n;
	for (size_t i = 0; i < m->cfg->nservers; i++)
		v->server_status[i] = m->server_up[i] && !m->server_soft[i] ?
		    SERVER_UP : SERVER_DOWN;
	mstats_admin(m->cfg, v);
	return 0;
}

void
master_stats_done(void *arg, struct stats_view *v)
{
	stats_table_free(&v->sum);
	free(v->workers);
	free(v->server_status);
	memset(v, 0, sizeof(*v));
}


/*
 * Open connections of frontend fe across all workers: per worker,
 * sockets sent minus those its reports say are closed (exact for what was
 * sent, up to one report late for closes).
 */
uint64_t
mstats_open(void *arg, uint32_t fe)
{
	struct master *m = arg;
	uint64_t open = 0;

	for (size_t i = 0; i < m->nworkers; i++) {
		const struct wproc *wp = m->workers[i];
		if (wp->state == WP_EMPTY)
			continue;
		for (size_t j = 0; j < wp->t.nfe; j++) {
			const struct stat_counters *c = &wp->st.frontends[j];
			uint64_t closed = c->total + c->handed_over -
			    c->active;
			if (wp->gen->map.frontends[j] == fe &&
			    wp->t.fe_sent[j] > closed)
				open += wp->t.fe_sent[j] - closed;
		}
	}
	return open;
}
