/* master.c -- the master process: its state, start, stop, signals, stats */
#include "ac_config.h"

#include <sys/time.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "discover.h"
#include "endpoint.h"
#include "health.h"
#include "listeners.h"
#include "log.h"
#include "master.h"
#include "master_priv.h"
#include "notify.h"
#include "orphans.h"
#include "pidfile.h"
#include "upgrade.h"
#include "tls.h"
#include "uring.h"


/* Generations */

struct generation *
gen_new(unsigned id, struct config *cfg)
{
	struct generation *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->id = id;
	g->cfg = cfg;
	g->refs = 1;
	if (stats_map_init(&g->map, cfg, cfg) == -1) {
		free(g);
		return NULL;
	}
	return g;
}

void
gen_unref(struct generation *g)
{
	if (--g->refs > 0)
		return;
	stats_map_free(&g->map);
	tls_unload(g->cfg);
	config_free(g->cfg);
	free(g);
}

/* A server changed state: every worker of the current generation hears. */
void
master_server_changed(void *arg, size_t server, int up, int soft_down)
{
	struct master *m = arg;

	m->server_up[server] = (uint8_t)up;
	m->server_soft[server] = (uint8_t)soft_down;
	wsend_servers(m, server);
}

/* Stop */

static void
master_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("workers still running after drain_timeout: killing them");
	wtable_kill_all(arg);
}

static void
master_stop(struct master *m, const char *why)
{
	struct timeval tv;

	if (m->stopping) {
		log_notice("%s: already stopping", why);
		return;
	}
	log_notice("%s: stopping, draining connections for up to %u ms", why,
	    m->cfg->drain_timeout_ms);
	notify_send("STOPPING=1");
	/* Sockets already accepted still go to a worker if one takes them. */
	handoff_flush(m);
	m->stopping = 1;
	discover_free(m->disc);
	m->disc = NULL;
	lset_free(m->ls);
	m->ls = NULL;
	dispatch_close_queued(&m->d);
	wtable_drain_old(m);
	if (!wtable_left(m)) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	/* Workers close what is left at drain_timeout; this is the backstop. */
	tv.tv_sec = m->cfg->drain_timeout_ms / 1000 + KILL_GRACE_S;
	tv.tv_usec = (m->cfg->drain_timeout_ms % 1000) * 1000;
	m->stop_ev = evtimer_new(m->base, master_stop_timeout, m);
	if (m->stop_ev != NULL)
		evtimer_add(m->stop_ev, &tv);
}

/* Signals */

static void
master_reopen_log(struct master *m)
{
	int fd;

	if (log_reopen() == -1) {
		log_warn("reopen log file");
		return;
	}
	log_notice("log file reopened");
	if ((fd = log_fd()) != 2) {
		wtable_logfd(m, fd);
		orphans_logfd(m, fd);
	}
}

static void
master_signal(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		master_stop(m, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGHUP:
		if (m->stopping)
			log_notice("SIGHUP: stopping, not reloading");
		else
			reload_run(m);
		break;
	case SIGUSR1:
		master_reopen_log(m);
		break;
	case SIGUSR2:
		upgrade_start(m);
		break;
	case SIGCHLD:
		wtable_reap(m);
		break;
	}
}

/* Start and end */

static int
master_init(struct master *m, struct config *cfg)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
	    SIGUSR2, SIGCHLD };

	m->generation = 1;
	m->inherited_stats = -1;
	gettimeofday(&m->start, NULL);
	if ((m->gen = gen_new(1, cfg)) == NULL) {
		config_free(cfg);
		return -1;
	}
	m->cfg = cfg;
	if ((m->base = event_base_new()) == NULL ||
	    (m->batch = malloc(sizeof(*m->batch))) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(signals) / sizeof(*signals); i++) {
		m->sigs[i] = evsignal_new(m->base, signals[i], master_signal,
		    m);
		if (m->sigs[i] == NULL || evsignal_add(m->sigs[i], NULL) == -1)
			return -1;
	}
	if (dispatch_init(&m->d, cfg, mstats_open, m) == -1 ||
	    handoff_init(m) == -1 || handover_init(m) == -1 ||
	    stats_table_init(&m->retired, cfg) == -1)
		return -1;
	if ((m->server_up = malloc(cfg->nservers + 1)) == NULL ||
	    (m->server_soft = calloc(cfg->nservers + 1, 1)) == NULL)
		return -1;
	memset(m->server_up, 1, cfg->nservers + 1);
	return upgrade_adopt(m);
}

/* Free everything; events go before the base they belong to. */
static void
master_free(struct master *m)
{
	discover_free(m->disc);
	if (m->endpoint != NULL)
		endpoint_free(m->endpoint);
	if (m->health != NULL)
		health_free(m->health);
	lset_free(m->ls);
	lset_free(m->inherited);
	if (m->inherited_stats != -1)
		close(m->inherited_stats);
	wtable_free(m);
	orphans_free(m);
	dispatch_free(&m->d);
	uring_free(m->ring);	/* after every queue that closes through it */
	m->ring = NULL;
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(*m->sigs); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	handover_free(m);
	if (m->drain_ev != NULL)
		event_free(m->drain_ev);
	if (m->hold_ev != NULL)
		event_free(m->hold_ev);
	if (m->stop_ev != NULL)
		event_free(m->stop_ev);
	if (m->status_ev != NULL)
		event_free(m->status_ev);
	if (m->upgrade_ev != NULL)
		event_free(m->upgrade_ev);
	if (m->upgrade_check != NULL) {
		close(event_get_fd(m->upgrade_check));
		event_free(m->upgrade_check);
	}
	if (m->log_ev != NULL)
		event_free(m->log_ev);
	/* Every event above belongs to the base: they go first. */
	if (m->base != NULL)
		event_base_free(m->base);
	stats_table_free(&m->retired);
	free(m->server_up);
	free(m->server_soft);
	free(m->batch);
	if (m->pidfile != NULL)
		pidfile_remove(m->pidfile);
	free(m->pidfile);
	if (m->gen != NULL)
		gen_unref(m->gen);
}

static int
master_write_pidfile(struct master *m)
{
	if (m->cfg->pidfile == NULL)
		return 0;
	if (pidfile_write(m->cfg->pidfile) == -1 ||
	    (m->pidfile = strdup(m->cfg->pidfile)) == NULL) {
		log_error("%s: pidfile %s: %s", m->cfg->path, m->cfg->pidfile,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
master_status(struct master *m)
{
	uint64_t open = 0;
	unsigned running = 0;

	if (!notify_enabled())
		return;
	for (size_t i = 0; i < m->nworkers; i++)
		running += m->workers[i]->state == WP_RUNNING &&
		    m->workers[i]->gen == m->gen;
	for (uint32_t fe = 0; fe < m->cfg->nfrontends; fe++)
		open += mstats_open(m, fe);
	notify_send("STATUS=generation %u: %u of %u workers running, %llu "
	    "connections open", m->generation, running, m->cfg->workers,
	    (unsigned long long)open);
}

static void
master_status_cb(evutil_socket_t fd, short what, void *arg)
{
	master_status(arg);
}

static void
master_log_cb(evutil_socket_t fd, short what, void *arg)
{
	log_tick();
}

/* The stats socket the old image left, if it listens where cfg says. */
static int
master_stats_fd(struct master *m)
{
	struct addr a;
	int fd = m->inherited_stats;

	m->inherited_stats = -1;
	if (fd == -1)
		return -1;
	a.len = sizeof(a.ss);
	if (m->cfg->has_stats && getsockname(fd, (struct sockaddr *)&a.ss,
	    &a.len) == 0 && addr_equal(&a, &m->cfg->stats_addr))
		return fd;
	close(fd);
	return -1;
}

/* Everything that can fail at start, in order; -1 after logging why. */
static int
master_start(struct master *m)
{
	static const struct timeval one_second = { 1, 0 };
	struct lset *ls;

	handoff_nofile(m);
	if (tls_load(m->cfg) == -1)
		return -1;
	/* After an upgrade, the old image's sockets are taken over. */
	if (handoff_ring(m) == -1)
		return -1;
	if ((ls = lset_prepare(m->inherited, m->cfg, m->base, m->ring,
	    handoff_accept, handoff_flush, m)) == NULL)
		return -1;
	m->ls = ls;
	if (lset_commit(ls, m->inherited) == -1)
		return -1;
	m->inherited = NULL;
	if (m->cfg->has_stats && (m->endpoint = endpoint_new(m->base, m->cfg,
	    master_stats_fd(m), master_stats_view, master_stats_done, m)) ==
	    NULL)
		return -1;
	if (m->endpoint != NULL)
		endpoint_set_control(m->endpoint, srvctl_api, m);
	if ((m->health = health_new(m->base, m->cfg, m->server_up,
	    master_server_changed, m)) == NULL) {
		log_warn("health checks");
		return -1;
	}
	m->disc = discover_new(m);
	if (master_write_pidfile(m) == -1)
		return -1;
	log_notice("baton %s started: %u workers", PACKAGE_VERSION,
	    m->cfg->workers);
	if (wtable_start(m) == -1) {
		log_warn("cannot start workers");
		return -1;
	}
	notify_send("READY=1\nMAINPID=%d", (int)getpid());
	master_status(m);
	if ((m->log_ev = event_new(m->base, -1, EV_PERSIST, master_log_cb,
	    NULL)) == NULL || event_add(m->log_ev, &one_second) == -1)
		log_warn("log timer");
	if (notify_enabled()) {
		struct timeval tv = { STATUS_INTERVAL_S, 0 };
		if ((m->status_ev = event_new(m->base, -1, EV_PERSIST,
		    master_status_cb, m)) == NULL ||
		    event_add(m->status_ev, &tv) == -1)
			log_warn("status timer");
	}
	return 0;
}

int
master_main(struct config *cfg)
{
	struct master *m;
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		config_free(cfg);
		log_warn("cannot initialise");
		return 2;
	}
	if (master_init(m, cfg) == -1) {
		log_warn("cannot initialise");
		rc = 2;
	} else if (master_start(m) == -1) {
		rc = 2;
	} else {
		event_base_dispatch(m->base);
		log_notice("stopped");
	}
	master_free(m);
	free(m);
	return rc;
}
