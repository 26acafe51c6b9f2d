/* worker.c -- a worker process: receives sockets, runs their sessions */
#include "ac_config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "balance.h"
#include "channel.h"
#include "config.h"
#include "inbox.h"
#include "log.h"
#include "net.h"
#include "session.h"
#include "srvset.h"
#include "worker.h"

/* The one state struct of a worker process. */
struct worker {
	struct event_base	*base;
	struct config		*cfg;
	int			 id;
	int			 chan;		/* to the master */
	long			 nofile;	/* the descriptor limit */
	struct inbox		 in;		/* what the master sends */
	struct event		*sig_term;
	struct event		*drain_timer;
	int			 draining;

	struct session_ctx	 sx;		/* what its sessions share */
	struct event		*report_timer;
	int			 report_armed;
	struct event		*log_timer;	/* log_tick() every second */
	struct event		*moved_timer;	/* CHAN_MOVED, retried */
	struct chan_moved	 moved;		/* what the last credit became */
	int			 moved_due;	/* not yet sent */
	int			 moved_heard;	/* the master answered it */
	uint32_t		*ho_words;	/* a hand-over request, to be
						   acted on once settled */
};

static void	worker_drain(void *arg, const char *why);
static void	worker_stats_changed(struct worker *w);

static void
worker_send(struct worker *w, int type, const void *rec, size_t count)
{
	char buf[CHAN_MSG_MAX];
	size_t len = chan_encode(buf, sizeof(buf), type, rec, count);

	if ((len == 0 || chan_send(w->chan, buf, len, NULL, 0) == -1) &&
	    errno != EPIPE && errno != ECONNRESET)	/* the master is gone */
		log_warn("worker %d: cannot send message %d to master", w->id,
		    type);
}

/* The worker exits once draining is done and the master has heard all. */
static void
worker_maybe_exit(struct worker *w)
{
	if (w->draining && TAILQ_EMPTY(&w->sx.sessions) && inbox_idle(&w->in) &&
	    ((!w->moved_due && w->moved_heard) || w->in.stopped))
		event_base_loopbreak(w->base);
}

/*
 * Server states from the master: health (up, soft_down) and what the API
 * set (admin, removed, weight). A server that drains, is in maintenance
 * or was removed counts as down for new connections; open ones go on.
 */
static int
worker_servers(void *arg, const struct chan_server *v, size_t n)
{
	struct worker *w = arg;
	size_t b, j;

	for (size_t i = 0; i < n; i++) {
		struct server_conf *sc;
		struct lb_server *ls;
		if (config_server_at(w->cfg, v[i].server, &b, &j) == -1)
			return -1;
		sc = &w->cfg->backends[b].servers[j];
		ls = &w->sx.lbs[b].servers[j];
		sc->admin = v[i].admin;
		sc->removed = v[i].removed;
		sc->weight = v[i].weight;
		ls->up = v[i].up != 0 && srvset_admitting(sc);
		ls->soft_down = v[i].soft_down != 0;
		ls->weight = (int)v[i].weight;
	}
	return 0;
}

/* The balancer's view of server j of backend b, as configured. */
static void
worker_lb_server(struct worker *w, size_t b, size_t j)
{
	const struct server_conf *sc = &w->cfg->backends[b].servers[j];
	struct lb_server *ls = &w->sx.lbs[b].servers[j];
	unsigned active = ls->active;	/* a revived one's, still open */

	memset(ls, 0, sizeof(*ls));
	ls->active = active;
	ls->weight = (int)sc->weight;
	ls->backup = sc->backup;
	ls->up = srvset_admitting(sc);
	ls->seed = lb_hash(sc->name, strlen(sc->name), LB_HASH_INIT);
	/* Each worker keeps to its share of the limit. */
	if (sc->max_connections > 0)
		ls->max_active = (sc->max_connections + w->cfg->workers - 1) /
		    w->cfg->workers;
}

/*
 * Servers the master added at runtime: added here the same way, so both
 * arrive at the same flat index, or this worker is out of step and stops.
 * Until the master's state record follows, a new server is down.
 */
static int
worker_srvdefs(void *arg, const struct chan_srvdef *v, size_t n)
{
	struct worker *w = arg;

	for (size_t i = 0; i < n; i++) {
		struct server_def d;
		struct server_conf *sc;
		size_t b = v[i].backend;
		if (b >= w->cfg->nbackends || srvset_from_chan(&v[i], &d) == -1 ||
		    (sc = srvset_add(w->cfg, b, &d)) == NULL ||
		    sc->flat != v[i].server ||
		    stats_table_grow(&w->sx.stats, w->cfg->nservers) == -1)
			return -1;
		w->sx.lbs[b].n = w->cfg->backends[b].nservers;
		worker_lb_server(w, b, (size_t)(sc - w->cfg->backends[b].servers));
		w->sx.lbs[b].servers[sc - w->cfg->backends[b].servers].up = 0;
		log_debug("worker %d: server %s/%s (%s) added", w->id,
		    w->cfg->backends[b].name, sc->name, sc->addr_text);
	}
	return 0;
}

/* A socket the inbox acknowledged: ours to run. */
static void
worker_take(void *arg, int fd, uint32_t frontend, const struct addr *peer,
    uint64_t id)
{
	struct worker *w = arg;

	session_start(&w->sx, fd, frontend, peer, id);
}

/* A live session from an older generation: ours to run on. */
static void
worker_session(void *arg, const struct chan_session *rec, int *fds,
    size_t nfds)
{
	struct worker *w = arg;

	session_take(&w->sx, rec, fds, nfds);
}

/* Tell the master what its credit became; retried while the channel is
 * full, as it waits for this before it grants more. */
static void
worker_moved_send(struct worker *w)
{
	static const struct timeval later = { 0, 20 * 1000 };
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_MOVED, &w->moved, 1);

	w->moved_due = 1;
	if (chan_send(w->chan, buf, len, NULL, 0) == 0 ||
	    (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)) {
		w->moved_due = 0;
		return;
	}
	evtimer_add(w->moved_timer, &later);
}

static void
worker_moved_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (w->moved_due)
		worker_moved_send(w);
}

/*
 * The master asks for live sessions: send as many as its credit allows
 * of those that may move, then say what became of the credit and why the
 * rest stay. A session that cannot go now (the channel is full, no pipe
 * for its bytes) waits for the next credit. Done once the inbox has
 * settled, so that sockets that came in the same read are sessions by
 * then.
 */
static void
worker_move(struct worker *w)
{
	struct chan_moved *mv = &w->moved;

	session_move_all(&w->sx, w->ho_words, w->chan, mv);
	free(w->ho_words);
	w->ho_words = NULL;
	log_debug("worker %d: %u sessions handed over, %u wait, %u stay",
	    w->id, mv->sent, mv->waiting, mv->tls + mv->pinned);
	worker_moved_send(w);
}

static int
worker_handover(void *arg, const uint32_t *words, size_t n)
{
	struct worker *w = arg;

	if (words[CHAN_HO_NFE] != w->cfg->nfrontends ||
	    words[CHAN_HO_NSRV] != w->cfg->nservers)
		return -1;
	if (words[CHAN_HO_CREDIT] == 0) {
		/* The master heard our last CHAN_MOVED: nothing comes back. */
		w->moved_heard = 1;
		return 0;
	}
	if (w->moved_due || w->ho_words != NULL)
		return -1;
	w->moved_heard = 0;
	if ((w->ho_words = malloc(n * sizeof(*words))) == NULL) {
		/* Nothing moves: say so, and the master asks again. */
		memset(&w->moved, 0, sizeof(w->moved));
		w->moved.waiting = 1;
		worker_moved_send(w);
		return 0;
	}
	memcpy(w->ho_words, words, n * sizeof(*words));
	return 0;
}

static void
worker_settled(void *arg)
{
	struct worker *w = arg;

	if (w->ho_words != NULL)
		worker_move(w);
	worker_maybe_exit(w);
}

static void
worker_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct session *s;

	log_notice("worker %d: drain timeout, closing %s", w->id,
	    TAILQ_EMPTY(&w->sx.sessions) ? "nothing" : "open connections");
	while ((s = TAILQ_FIRST(&w->sx.sessions)) != NULL)
		session_close(s, "drain timeout");
	event_base_loopbreak(w->base);
}

/* Finish what we have; the drain timeout ends what is left. */
static void
worker_drain(void *arg, const char *why)
{
	struct worker *w = arg;
	struct timeval tv;

	if (w->draining)
		return;
	w->draining = 1;
	log_debug("worker %d: draining (%s)", w->id, why);
	tv.tv_sec = w->cfg->drain_timeout_ms / 1000;
	tv.tv_usec = (w->cfg->drain_timeout_ms % 1000) * 1000;
	w->drain_timer = evtimer_new(w->base, worker_drain_timeout, w);
	if (w->drain_timer == NULL || evtimer_add(w->drain_timer, &tv) == -1)
		worker_drain_timeout(-1, 0, w);
}

/*
 * Send every counter to the master, absolute values in as many messages as
 * it takes. Never blocks: on a full channel, try again a little later.
 */
static void
worker_report(struct worker *w)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct stat_record recs[CHAN_MAX_STATS];
	size_t n, len, first = 0, total = stats_nrecords(&w->sx.stats);

	while (first < total) {
		n = stats_records(&w->sx.stats, first, recs, CHAN_MAX_STATS);
		len = chan_encode(buf, sizeof(buf), CHAN_STATS, recs, n);
		if (len == 0 || chan_send(w->chan, buf, len, NULL, 0) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				return;	/* the master is gone */
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS) {
				log_warn("worker %d: stats report", w->id);
				return;
			}
			worker_stats_changed(w);
			return;
		}
		first += n;
	}
}

static void
worker_report_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	w->report_armed = 0;
	worker_report(w);
}

/* Counters changed: report them to the master within 250 ms. */
static void
worker_stats_changed(struct worker *w)
{
	static const struct timeval every = { 0, 250 * 1000 };

	if (w->report_armed)
		return;
	w->report_armed = 1;
	evtimer_add(w->report_timer, &every);
}

static void
worker_session_note(void *arg, enum session_note what)
{
	struct worker *w = arg;

	if (what == SESSION_COUNTED)
		worker_stats_changed(w);
	else
		worker_maybe_exit(w);
}

static void
worker_log_cb(evutil_socket_t fd, short what, void *arg)
{
	log_tick();
}

static void
worker_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	/*
	 * Draining already: the master asked (and expects nothing more of
	 * us), or is gone, or we said bye.
	 */
	if (!w->draining)
		inbox_goodbye(&w->in, "SIGTERM");
	worker_maybe_exit(w);
}

/* One balancer per backend, every server up until the master says not. */
static int
worker_lb_init(struct worker *w)
{
	const struct config *cfg = w->cfg;

	if ((w->sx.lbs = calloc(cfg->nbackends, sizeof(*w->sx.lbs))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *bc = &cfg->backends[i];
		struct lb *lb = &w->sx.lbs[i];
		lb->algo = bc->balance;
		lb->n = bc->nservers;
		/* Room for the servers the master may add (config.h). */
		if ((lb->servers = calloc(CONFIG_MAX_SERVERS,
		    sizeof(*lb->servers))) == NULL)
			return -1;
		lb->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ i;
		for (size_t j = 0; j < bc->nservers; j++)
			worker_lb_server(w, i, j);
	}
	return 0;
}

/* What sessions share: the base, balancers, counters, buffer pool. */
static int
worker_sessions_init(struct worker *w)
{
	struct session_ctx *x = &w->sx;

	x->base = w->base;
	x->cfg = w->cfg;
	x->note = worker_session_note;
	x->note_arg = w;
	TAILQ_INIT(&x->sessions);
	if (relay_pool_init(&x->pool, w->cfg->splice,
	    net_nofile_pipes(w->nofile)) == -1 ||
	    stats_table_init(&x->stats, w->cfg) == -1)
		return -1;
	return worker_lb_init(w);
}

static const struct inbox_ops worker_inbox_ops = {
	worker_take, worker_session, worker_handover, worker_servers,
	worker_drain, worker_settled, worker_srvdefs
};

static int
worker_init(struct worker *w, struct config *cfg, int id, int chan)
{
	static const struct timeval one_second = { 1, 0 };

	w->cfg = cfg;
	w->id = id;
	w->chan = chan;
	if ((w->base = event_base_new()) == NULL ||
	    worker_sessions_init(w) == -1 ||
	    inbox_init(&w->in, w->base, chan, id, (uint32_t)cfg->nfrontends,
	    (uint32_t)cfg->nservers, &worker_inbox_ops, w) == -1)
		return -1;
	w->report_timer = evtimer_new(w->base, worker_report_cb, w);
	w->sig_term = evsignal_new(w->base, SIGTERM, worker_sigterm, w);
	w->log_timer = event_new(w->base, -1, EV_PERSIST, worker_log_cb, NULL);
	w->moved_timer = evtimer_new(w->base, worker_moved_cb, w);
	if (w->moved_timer == NULL || w->report_timer == NULL || w->sig_term == NULL ||
	    w->log_timer == NULL || evsignal_add(w->sig_term, NULL) == -1 ||
	    event_add(w->log_timer, &one_second) == -1)
		return -1;
	return 0;
}

/* After the last session: what they shared. */
static void
worker_sessions_free(struct worker *w)
{
	relay_pool_free(&w->sx.pool);
	for (size_t i = 0; w->sx.lbs != NULL && i < w->cfg->nbackends; i++)
		free(w->sx.lbs[i].servers);
	free(w->sx.lbs);
	stats_table_free(&w->sx.stats);
}

static void
worker_free(struct worker *w)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&w->sx.sessions)) != NULL)
		session_close(s, "worker exit");
	if (w->report_timer != NULL)
		worker_report(w);	/* the last word on our counters */
	if (w->cfg != NULL)
		worker_sessions_free(w);
	inbox_free(&w->in);
	if (w->sig_term != NULL)
		event_free(w->sig_term);
	if (w->drain_timer != NULL)
		event_free(w->drain_timer);
	if (w->report_timer != NULL)
		event_free(w->report_timer);
	if (w->log_timer != NULL)
		event_free(w->log_timer);
	if (w->moved_timer != NULL)
		event_free(w->moved_timer);
	free(w->ho_words);
	if (w->base != NULL)
		event_base_free(w->base);
	if (w->chan != -1)
		close(w->chan);
	memset(w, 0, sizeof(*w));
}

/* Every connection costs two descriptors (the master says if too few). */
static long
worker_nofile(const struct config *cfg)
{
	return net_raise_nofile(config_nofile(cfg));
}

/* As root with user set: become that user, with its groups. */
static int
worker_drop_privileges(const struct config *cfg, int id)
{
	struct passwd *pw;

	if (cfg->user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		log_warnx("worker %d: unknown user %s", id, cfg->user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1) {
		log_warn("worker %d: cannot become %s", id, cfg->user);
		return -1;
	}
	/* A dumpable process could be ptraced by the unprivileged user. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}

/*
 * Named baton-worker only now, as whoever it runs as: nothing sees a
 * worker by that name with the master's privileges.
 */
static int
worker_run(struct worker *w, struct config *cfg, int id, int chan)
{
	(void)prctl(PR_SET_NAME, "baton-worker", 0, 0, 0);
	if (worker_init(w, cfg, id, chan) == -1) {
		log_warn("worker %d: cannot start", id);
		return 1;
	}
	worker_send(w, CHAN_READY, NULL, 0);
	log_debug("worker %d ready", id);
	return event_base_dispatch(w->base) == -1 ? 1 : 0;
}

int
worker_main(struct config *cfg, int id, int chan)
{
	struct worker w;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.moved_heard = 1;	/* nothing asked, nothing to hear */
	/* The master handles these; a terminal's ^C reaches the whole group. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	w.nofile = worker_nofile(cfg);
	rc = worker_drop_privileges(cfg, id) == -1 ? 1 :
	    worker_run(&w, cfg, id, chan);
	/* A SIGTERM now (the master's stop racing ours) must not kill us. */
	signal(SIGTERM, SIG_IGN);
	w.chan = chan;
	worker_free(&w);
	return rc;
}
