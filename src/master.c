/* master.c -- the master process: listeners, dispatch, workers, signals */
#include "ac_config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "endpoint.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "stats.h"
#include "worker.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up of one listener */
#define PENDING_MAX	256	/* accepted sockets waiting for a channel */
#define LISTEN_BACKLOG	4096
#define RESPAWN_MIN_MS	100
#define RESPAWN_MAX_MS	10000
#define STABLE_MS	1000	/* a worker living this long is not crashing */

enum wproc_state {
	WP_EMPTY,	/* no process: waiting to be (re)spawned */
	WP_STARTING,	/* forked, READY not yet received */
	WP_RUNNING,
	WP_DRAINING,
};

struct master;

/* A worker process as the master sees it. */
struct wproc {
	struct master	*m;
	int		 id;
	int		 state;
	pid_t		 pid;
	int		 chan;
	struct event	*chan_ev;
	struct event	*respawn_ev;
	struct timeval	 started;
	unsigned	 backoff_ms;
	unsigned	 generation;
	uint64_t	 acked;
	uint64_t	 sent;		/* sockets handed over */
	struct stats_table st;		/* its latest report */
};

struct listener {
	struct master	*m;
	int		 fd;
	size_t		 frontend;
	struct event	*ev;
	char		 text[ADDR_STRLEN];
};

/* An accepted socket not yet handed to a worker. */
struct pending {
	int		 fd;
	struct chan_conn c;
};

/* The one state struct of the master process. */
struct master {
	struct event_base	*base;
	struct config		*cfg;
	struct listener		*listeners;
	size_t			 nlisteners;
	struct wproc		*workers;
	size_t			 nworkers;
	struct event		*sigs[5];
	struct event		*resume_ev;	/* accept again after a pause */
	struct event		*stop_ev;	/* drain deadline */
	struct pending		 pend[PENDING_MAX];
	size_t			 npend;
	size_t			 rr;		/* next worker, round-robin */
	uint64_t		 next_id;
	int			 paused;
	int			 stopping;

	struct endpoint		*endpoint;	/* stats over HTTP */
	struct timeval		 start;
	unsigned		 generation;
	uint64_t		 reloads;
	uint64_t		 reload_failures;
	uint64_t		 redispatched;
	struct stats_table	 retired;	/* exited workers' totals */
	uint8_t			*server_status;	/* per flat server */
};

static void	master_spawn(struct wproc *wp);

static int
wproc_alive(const struct wproc *wp)
{
	return wp->state == WP_STARTING || wp->state == WP_RUNNING;
}

static void
master_pause(struct master *m, unsigned ms)
{
	struct timeval tv = { 0, (suseconds_t)ms * 1000 };

	if (!m->paused) {
		for (size_t i = 0; i < m->nlisteners; i++)
			event_del(m->listeners[i].ev);
		m->paused = 1;
	}
	evtimer_add(m->resume_ev, &tv);
}

static void
master_resume(struct master *m)
{
	if (!m->paused || m->stopping)
		return;
	for (size_t i = 0; i < m->nlisteners; i++)
		event_add(m->listeners[i].ev, NULL);
	m->paused = 0;
}

/* Send pending[0..n) to wp; on success they are the worker's. */
static int
master_send_conns(struct wproc *wp, struct pending *p, size_t n)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_conn recs[CHAN_MAX_FDS];
	int fds[CHAN_MAX_FDS];
	size_t len;

	for (size_t i = 0; i < n; i++) {
		recs[i] = p[i].c;
		fds[i] = p[i].fd;
	}
	len = chan_encode(buf, sizeof(buf), CHAN_CONN, recs, n);
	if (len == 0) {
		errno = EINVAL;
		return -1;
	}
	return chan_send(wp->chan, buf, len, fds, n);
}

/* Sockets sent to wp and not yet closed, as far as its reports tell. */
static uint64_t
wproc_load(const struct wproc *wp)
{
	uint64_t closed = wp->st.all.total - wp->st.all.active;

	return wp->sent > closed ? wp->sent - closed : 0;
}

/*
 * The next worker for a socket, skipping the ones marked full: the next in
 * turn, or with dispatch = leastconn the one with the fewest open
 * connections (sent minus closed), the next in turn among ties. NULL when
 * every live worker is full.
 */
static struct wproc *
master_pick(struct master *m, const unsigned char *full)
{
	struct wproc *best = NULL;

	for (size_t k = 0; k < m->nworkers; k++) {
		size_t i = (m->rr + k) % m->nworkers;
		struct wproc *wp = &m->workers[i];
		if (!wproc_alive(wp) || full[i])
			continue;
		if (m->cfg->dispatch != DISPATCH_LEASTCONN) {
			best = wp;
			break;
		}
		if (best == NULL || wproc_load(wp) < wproc_load(best))
			best = wp;
	}
	if (best != NULL)
		m->rr = (size_t)best->id + 1;
	return best;
}

/*
 * Hand the pending sockets to the workers in batches (one sendmsg per
 * worker per round). Round-robin gives each worker an equal share;
 * leastconn gives one socket at a time to the least loaded. A worker whose
 * channel is full is skipped; when all are, the listeners pause for a
 * moment: no socket is dropped.
 */
static void
master_dispatch(struct master *m)
{
	unsigned char full[CONFIG_MAX_WORKERS] = { 0 };
	size_t alive = 0, done = 0;
	struct wproc *wp;

	for (size_t i = 0; i < m->nworkers; i++)
		alive += wproc_alive(&m->workers[i]);
	while (done < m->npend && (wp = master_pick(m, full)) != NULL) {
		size_t share = 1;

		if (m->cfg->dispatch != DISPATCH_LEASTCONN)
			share = (m->npend - done + alive - 1) / alive;
		if (share > CHAN_MAX_FDS)
			share = CHAN_MAX_FDS;
		if (master_send_conns(wp, &m->pend[done], share) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS)
				log_warn("channel to worker %d", wp->id);
			full[wp->id] = 1;
			continue;
		}
		for (size_t i = 0; i < share; i++)
			close(m->pend[done + i].fd);
		wp->sent += share;
		done += share;
	}
	if (done > 0) {
		memmove(m->pend, m->pend + done,
		    (m->npend - done) * sizeof(*m->pend));
		m->npend -= done;
	}
	if (m->npend > 0)
		master_pause(m, 10);
	else
		master_resume(m);
}

static void
master_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct master *m = l->m;
	struct sockaddr_storage ss;
	socklen_t len;
	int cfd;

	for (int i = 0; i < ACCEPT_BATCH && m->npend < PENDING_MAX; i++) {
		len = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* EMFILE and friends: back off instead of spinning */
			log_warn("accept on %s", l->text);
			master_pause(m, 100);
			break;
		}
		struct pending *p = &m->pend[m->npend];
		if (chan_conn_set_peer(&p->c, (struct sockaddr *)&ss) == -1) {
			close(cfd);
			continue;
		}
		p->fd = cfd;
		p->c.id = ++m->next_id;
		p->c.frontend = (uint32_t)l->frontend;
		m->npend++;
	}
	master_dispatch(m);
}

static void
master_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	if (m->npend > 0)
		master_dispatch(m);
	else
		master_resume(m);
}

static void
master_close_pending(struct master *m)
{
	for (size_t i = 0; i < m->npend; i++)
		close(m->pend[i].fd);
	m->npend = 0;
}

static void
master_close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->nlisteners; i++) {
		struct listener *l = &m->listeners[i];
		if (l->ev != NULL)
			event_free(l->ev);
		if (l->fd != -1)
			close(l->fd);
		l->ev = NULL;
		l->fd = -1;
	}
}

/* Bind every listen address. Returns -1 after logging what failed. */
static int
master_bind(struct master *m)
{
	struct config *cfg = m->cfg;
	size_t n = 0;

	for (size_t i = 0; i < cfg->nfrontends; i++)
		n += cfg->frontends[i].nlistens;
	if ((m->listeners = calloc(n, sizeof(*m->listeners))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend_conf *f = &cfg->frontends[i];
		for (size_t j = 0; j < f->nlistens; j++) {
			struct listener *l = &m->listeners[m->nlisteners++];
			l->m = m;
			l->frontend = i;
			snprintf(l->text, sizeof(l->text), "%s",
			    f->listens[j].text);
			l->fd = net_listen(&f->listens[j].addr, LISTEN_BACKLOG);
			if (l->fd == -1) {
				log_error("%s:%d: [frontend %s] cannot listen "
				    "on %s: %s", cfg->path, f->listens[j].line,
				    f->name, l->text, strerror(errno));
				return -1;
			}
			l->ev = event_new(m->base, l->fd, EV_READ | EV_PERSIST,
			    master_accept_cb, l);
			if (l->ev == NULL || event_add(l->ev, NULL) == -1)
				return -1;
			log_info("frontend %s listening on %s", f->name,
			    l->text);
		}
	}
	return 0;
}

static void
wproc_close(struct wproc *wp)
{
	if (wp->chan_ev != NULL)
		event_free(wp->chan_ev);
	wp->chan_ev = NULL;
	if (wp->chan != -1)
		close(wp->chan);
	wp->chan = -1;
}

/* A message from a worker. Returns -1 if the worker must be cut off. */
static int
master_worker_msg(struct wproc *wp, const char *buf, size_t len, int *fds,
    size_t nfds)
{
	struct chan_msg m;
	char err[128];

	if (chan_decode(buf, len, nfds, &m, err, sizeof(err)) == -1) {
		log_warnx("worker %d (pid %d): bad message: %s", wp->id,
		    (int)wp->pid, err);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	switch (m.type) {
	case CHAN_READY:
		if (wp->state == WP_STARTING)
			wp->state = WP_RUNNING;
		return 0;
	case CHAN_STATS:
		if (stats_apply(&wp->st, m.stats, m.count, err,
		    sizeof(err)) == -1)
			log_warnx("worker %d (pid %d): bad stats report dropped: "
			    "%s", wp->id, (int)wp->pid, err);
		return 0;
	case CHAN_ACK:
		if (m.ack < wp->acked || m.ack > wp->m->next_id) {
			log_warnx("worker %d: bad acknowledgement %llu", wp->id,
			    (unsigned long long)m.ack);
			return -1;
		}
		wp->acked = m.ack;
		return 0;
	default:
		log_warnx("worker %d: unexpected message type %d", wp->id,
		    m.type);
		return -1;
	}
}

static void
master_chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	int fds[CHAN_MAX_FDS];
	size_t nfds;
	ssize_t n;

	for (int i = 0; i < 64; i++) {
		n = chan_recv(fd, buf, sizeof(buf), fds, &nfds);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			/* The worker is gone; SIGCHLD tells the rest. */
			event_del(wp->chan_ev);
			return;
		}
		if (n == -1 || master_worker_msg(wp, (const char *)buf,
		    (size_t)n, fds, nfds) == -1) {
			if (n == -1)
				log_warn("worker %d: channel", wp->id);
			log_warnx("worker %d (pid %d): cut off", wp->id,
			    (int)wp->pid);
			event_del(wp->chan_ev);
			kill(wp->pid, SIGKILL);
			return;
		}
	}
}

/*
 * In a new worker: drop everything of the master's. The epoll instance is
 * shared with the parent until event_reinit() gives the child its own, so
 * only then may events be freed.
 */
static void
master_forget(struct master *m, struct wproc *self)
{
	if (event_reinit(m->base) == -1)
		_exit(1);
	master_close_listeners(m);
	master_close_pending(m);
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = &m->workers[i];
		if (wp->respawn_ev != NULL)
			event_free(wp->respawn_ev);
		wp->respawn_ev = NULL;
		if (wp == self) {
			if (wp->chan_ev != NULL)
				event_free(wp->chan_ev);
			wp->chan_ev = NULL;
			continue;
		}
		wproc_close(wp);
	}
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(*m->sigs); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	event_free(m->resume_ev);
	if (m->stop_ev != NULL)
		event_free(m->stop_ev);
	if (m->endpoint != NULL)
		endpoint_free(m->endpoint);
	event_base_free(m->base);
	free(m->listeners);
	for (size_t i = 0; i < m->nworkers; i++)
		stats_table_free(&m->workers[i].st);
	stats_table_free(&m->retired);
	free(m->server_status);
}

static void
master_child(struct master *m, struct wproc *wp, int chan)
{
	struct config *cfg = m->cfg;
	int id = wp->id, rc;

	/* Without its master a worker must not linger. */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	master_forget(m, wp);
	free(m->workers);
	free(m);
	rc = worker_main(cfg, id, chan);
	config_free(cfg);
	log_close();
	exit(rc);
}

static void
master_spawn(struct wproc *wp)
{
	struct master *m = wp->m;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for worker %d", wp->id);
		goto retry;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork worker %d", wp->id);
		close(sv[0]);
		close(sv[1]);
		goto retry;
	}
	if (pid == 0) {
		close(sv[0]);
		wp->chan = -1;
		master_child(m, wp, sv[1]);
	}
	close(sv[1]);
	wp->pid = pid;
	wp->chan = sv[0];
	wp->acked = 0;
	wp->sent = 0;
	wp->generation = m->generation;
	wp->state = WP_STARTING;
	gettimeofday(&wp->started, NULL);
	wp->chan_ev = event_new(m->base, wp->chan, EV_READ | EV_PERSIST,
	    master_chan_cb, wp);
	if (wp->chan_ev == NULL || event_add(wp->chan_ev, NULL) == -1)
		fatalx("cannot watch worker %d's channel", wp->id);
	log_info("worker %d started, pid %d", wp->id, (int)pid);
	if (m->npend > 0)
		master_dispatch(m);
	return;
retry:
	wp->backoff_ms = RESPAWN_MAX_MS;
	struct timeval tv = { RESPAWN_MAX_MS / 1000, 0 };
	evtimer_add(wp->respawn_ev, &tv);
}

static void
master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;

	if (!wp->m->stopping && wp->state == WP_EMPTY)
		master_spawn(wp);
}

static int
master_workers_left(const struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i].state != WP_EMPTY)
			return 1;
	return 0;
}

/* A worker exited: log why, and replace it unless stopping. */
static void
master_reaped(struct master *m, struct wproc *wp, int status)
{
	struct timeval now, tv;
	long lived;

	if (WIFSIGNALED(status))
		log_warnx("worker %d (pid %d) killed by signal %d", wp->id,
		    (int)wp->pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0 || !m->stopping)
		log_warnx("worker %d (pid %d) exited with status %d", wp->id,
		    (int)wp->pid, WEXITSTATUS(status));
	else
		log_debug("worker %d (pid %d) exited", wp->id, (int)wp->pid);
	wproc_close(wp);
	/* Its connections died with it; its totals live on. */
	stats_table_add(&m->retired, &wp->st, 1);
	stats_table_zero(&wp->st);
	wp->state = WP_EMPTY;
	wp->pid = -1;
	if (m->stopping) {
		if (!master_workers_left(m))
			event_base_loopexit(m->base, NULL);
		return;
	}
	/* Back off when workers die young, so a crash loop cannot spin. */
	gettimeofday(&now, NULL);
	lived = (now.tv_sec - wp->started.tv_sec) * 1000 +
	    (now.tv_usec - wp->started.tv_usec) / 1000;
	if (lived >= STABLE_MS)
		wp->backoff_ms = 0;
	else
		wp->backoff_ms = wp->backoff_ms == 0 ? RESPAWN_MIN_MS :
		    wp->backoff_ms * 2 > RESPAWN_MAX_MS ? RESPAWN_MAX_MS :
		    wp->backoff_ms * 2;
	tv.tv_sec = wp->backoff_ms / 1000;
	tv.tv_usec = (wp->backoff_ms % 1000) * 1000;
	if (wp->backoff_ms > 0)
		log_notice("worker %d restarts in %u ms", wp->id,
		    wp->backoff_ms);
	evtimer_add(wp->respawn_ev, &tv);
}

static void
master_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < m->nworkers; i++)
			if (m->workers[i].pid == pid &&
			    m->workers[i].state != WP_EMPTY) {
				master_reaped(m, &m->workers[i], status);
				break;
			}
	}
}

static void
master_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	log_warnx("workers still running after drain_timeout: killing them");
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i].state != WP_EMPTY)
			kill(m->workers[i].pid, SIGKILL);
}

static void
master_stop(struct master *m, const char *why)
{
	char buf[64];
	size_t len;
	struct timeval tv;

	if (m->stopping) {
		log_notice("%s: already stopping", why);
		return;
	}
	log_notice("%s: stopping, draining connections for up to %u ms", why,
	    m->cfg->drain_timeout_ms);
	/* Sockets already accepted still go to a worker if one takes them. */
	master_dispatch(m);
	m->stopping = 1;
	master_close_listeners(m);
	master_close_pending(m);
	len = chan_encode(buf, sizeof(buf), CHAN_DRAIN, NULL, 0);
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = &m->workers[i];
		evtimer_del(wp->respawn_ev);
		if (wp->state == WP_EMPTY)
			continue;
		wp->state = WP_DRAINING;
		if (chan_send(wp->chan, buf, len, NULL, 0) == -1)
			kill(wp->pid, SIGTERM);
	}
	if (!master_workers_left(m)) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	/* Workers close what is left at drain_timeout; this is the backstop. */
	tv.tv_sec = m->cfg->drain_timeout_ms / 1000 + 2;
	tv.tv_usec = (m->cfg->drain_timeout_ms % 1000) * 1000;
	m->stop_ev = evtimer_new(m->base, master_stop_timeout, m);
	if (m->stop_ev != NULL)
		evtimer_add(m->stop_ev, &tv);
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
		log_warnx("SIGHUP: reload is not implemented yet");
		break;
	case SIGUSR1:
		if (log_reopen() == -1)
			log_warn("reopen log file");
		else
			log_notice("log file reopened");
		for (size_t i = 0; i < m->nworkers; i++)
			if (m->workers[i].state != WP_EMPTY)
				kill(m->workers[i].pid, SIGUSR1);
		break;
	}
}

static const char *const wproc_state_names[] = {
	"empty", "starting", "running", "draining",
};

/*
 * Gather what the stats endpoint shows: every live worker's latest report
 * added to the totals of those that exited. Freed by master_stats_done().
 */
static int
master_stats_view(void *arg, struct stats_view *v)
{
	struct master *m = arg;
	struct timeval now;
	size_t n = 0;

	memset(v, 0, sizeof(*v));
	if (stats_table_init(&v->sum, m->cfg) == -1)
		return -1;
	if ((v->workers = calloc(m->nworkers + 1, sizeof(*v->workers))) ==
	    NULL) {
		stats_table_free(&v->sum);
		return -1;
	}
	stats_table_add(&v->sum, &m->retired, 0);
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = &m->workers[i];
		struct stats_worker *ws = &v->workers[n];
		if (wp->state == WP_EMPTY)
			continue;
		stats_table_add(&v->sum, &wp->st, 0);
		ws->id = wp->id;
		ws->pid = wp->pid;
		ws->generation = wp->generation;
		ws->state = wproc_state_names[wp->state];
		ws->c = wp->st.all;
		n++;
	}
	gettimeofday(&now, NULL);
	v->version = PACKAGE_VERSION;
	v->pid = getpid();
	v->uptime_s = (double)(now.tv_sec - m->start.tv_sec) +
	    (double)(now.tv_usec - m->start.tv_usec) / 1e6;
	v->generation = m->generation;
	v->reloads = m->reloads;
	v->reload_failures = m->reload_failures;
	v->redispatched = m->redispatched;
	v->cfg = m->cfg;
	v->nworkers = n;
	v->server_status = m->server_status;
	return 0;
}

static void
master_stats_done(void *arg, struct stats_view *v)
{
	stats_table_free(&v->sum);
	free(v->workers);
	memset(v, 0, sizeof(*v));
}

static int
master_init(struct master *m, struct config *cfg)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
	    SIGCHLD };

	m->cfg = cfg;
	if ((m->base = event_base_new()) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(signals) / sizeof(*signals); i++) {
		m->sigs[i] = evsignal_new(m->base, signals[i],
		    signals[i] == SIGCHLD ? master_sigchld : master_signal, m);
		if (m->sigs[i] == NULL || evsignal_add(m->sigs[i], NULL) == -1)
			return -1;
	}
	if ((m->resume_ev = evtimer_new(m->base, master_resume_cb, m)) == NULL)
		return -1;
	m->nworkers = cfg->workers;
	m->generation = 1;
	gettimeofday(&m->start, NULL);
	if ((m->workers = calloc(m->nworkers, sizeof(*m->workers))) == NULL)
		return -1;
	if (stats_table_init(&m->retired, cfg) == -1)
		return -1;
	if ((m->server_status = calloc(cfg->nservers + 1, 1)) == NULL)
		return -1;
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = &m->workers[i];
		wp->m = m;
		wp->id = (int)i;
		wp->chan = -1;
		wp->pid = -1;
		wp->respawn_ev = evtimer_new(m->base, master_respawn_cb, wp);
		if (wp->respawn_ev == NULL ||
		    stats_table_init(&wp->st, cfg) == -1)
			return -1;
	}
	return 0;
}

static void
master_free(struct master *m)
{
	master_close_listeners(m);
	master_close_pending(m);
	if (m->endpoint != NULL)
		endpoint_free(m->endpoint);
	m->endpoint = NULL;
	for (size_t i = 0; m->workers != NULL && i < m->nworkers; i++) {
		wproc_close(&m->workers[i]);
		if (m->workers[i].respawn_ev != NULL)
			event_free(m->workers[i].respawn_ev);
		stats_table_free(&m->workers[i].st);
	}
	free(m->workers);
	free(m->listeners);
	stats_table_free(&m->retired);
	free(m->server_status);
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(*m->sigs); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	if (m->resume_ev != NULL)
		event_free(m->resume_ev);
	if (m->stop_ev != NULL)
		event_free(m->stop_ev);
	if (m->base != NULL)
		event_base_free(m->base);
	config_free(m->cfg);
}

int
master_main(struct config *cfg)
{
	struct master *m;
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	(void)net_raise_nofile();
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		config_free(cfg);
		log_warn("cannot initialise");
		return 2;
	}
	if (master_init(m, cfg) == -1) {
		log_warn("cannot initialise");
		rc = 2;
	} else if (master_bind(m) == -1) {
		rc = 2;
	} else if (cfg->has_stats && (m->endpoint = endpoint_new(m->base, cfg,
	    master_stats_view, master_stats_done, m)) == NULL) {
		rc = 2;
	} else {
		log_notice("baton %s started: %zu workers", PACKAGE_VERSION,
		    m->nworkers);
		for (size_t i = 0; i < m->nworkers; i++)
			master_spawn(&m->workers[i]);
		event_base_dispatch(m->base);
		log_notice("stopped");
	}
	master_free(m);
	free(m);
	return rc;
}
