/* master.c -- the master process: listeners, dispatch, workers, reload */
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
#include "health.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up of one listener */
#define PENDING_MAX	256	/* accepted sockets waiting for a channel */
#define LISTEN_BACKLOG	4096
#define RESPAWN_MIN_MS	100
#define RESPAWN_MAX_MS	10000
#define STABLE_MS	1000	/* a worker living this long is not crashing */
#define KILL_GRACE_S	5	/* past drain_timeout, before SIGKILL */
#define HOLD_MAX	256	/* sockets waiting for a frontend's limit */
#define HOLD_MS		1000	/* how long one may wait, then closed */
#define HOLD_TICK_MS	20

enum wproc_state {
	WP_EMPTY,	/* no process: waiting to be (re)spawned */
	WP_STARTING,	/* forked, READY not yet received */
	WP_RUNNING,
	WP_DRAINING,	/* told to finish and exit; gets no new socket */
};

static const char *const wproc_state_names[] = {
	"empty", "starting", "running", "draining",
};

/* One configuration and the workers forked with it. */
struct generation {
	unsigned		 id;
	struct config		*cfg;
	unsigned		 refs;	/* its workers, +1 while current */
	struct stats_map	 map;	/* its names onto the current config */
};

/* An accepted socket not yet handed over, or not yet acknowledged. */
struct pending {
	int		 fd;
	struct chan_conn c;
	uint64_t	 since_ms;	/* held: when it started waiting */
};

/* A list of pending sockets, in order. */
struct pendq {
	struct pending	*v;
	size_t		 n;
	size_t		 cap;
};

struct master;

/* A worker process as the master sees it. */
struct wproc {
	struct master		*m;
	struct generation	*gen;
	int			 id;		/* slot in its generation */
	int			 state;
	pid_t			 pid;
	int			 chan;
	struct event		*chan_ev;
	struct event		*respawn_ev;	/* also the drain backstop */
	struct timeval		 started;
	unsigned		 backoff_ms;
	int			 full;		/* channel full this round */
	int			 replace;	/* draining on its own: refill */
	uint64_t		 sent;		/* sockets handed over */
	uint64_t		*fe_sent;	/* the same per frontend */
	struct pendq		 unacked;	/* sent, not yet acknowledged */
	struct stats_table	 st;		/* its latest report */
};

struct listener {
	struct master	*m;
	int		 fd;
	size_t		 frontend;
	struct event	*ev;
	struct addr	 addr;
	char		 text[ADDR_STRLEN];
};

/* The one state struct of the master process. */
struct master {
	struct event_base	*base;
	struct chan_batch	*batch;		/* worker messages being read */
	struct config		*cfg;		/* gen->cfg */
	struct generation	*gen;		/* the current one */
	struct listener		**listeners;
	size_t			 nlisteners;
	struct wproc		**workers;	/* every generation's */
	size_t			 nworkers;
	struct event		*sigs[5];
	struct event		*resume_ev;	/* accept again after a pause */
	struct event		*stop_ev;	/* drain deadline */
	struct pendq		 pend;		/* accepted, not handed over */
	struct pendq		 held;		/* over a frontend's limit */
	struct event		*hold_ev;
	uint64_t		*fe_refused;	/* closed by the limit */
	size_t			 rr;		/* next worker, round-robin */
	uint64_t		 next_id;
	int			 paused;
	int			 stopping;
	int			 pidfile_written;

	struct endpoint		*endpoint;	/* stats over HTTP */
	struct timeval		 start;
	unsigned		 generation;
	uint64_t		 reloads;
	uint64_t		 reload_failures;
	uint64_t		 redispatched;
	struct stats_table	 retired;	/* exited workers' totals */
	struct health		*health;
	uint8_t			*server_up;	/* per flat server: checks */
	uint8_t			*server_soft;	/* passive failures */
};

static void	master_spawn(struct wproc *wp);
static int	master_stats_view(void *, struct stats_view *);
static void	master_stats_done(void *, struct stats_view *);
static void	master_server_changed(void *, size_t, int, int);
static void	master_nofile(const struct config *);
static void	master_dispatch(struct master *m);
static void	master_accept_cb(evutil_socket_t, short, void *);
static void	wproc_closed(struct wproc *wp);
static size_t	master_take_back(struct master *, struct wproc *, const char *);

/* Pending queues */

static int
pendq_push(struct pendq *q, const struct pending *p, size_t n)
{
	if (q->n + n > q->cap) {
		size_t cap = q->cap ? q->cap : 64;
		struct pending *v;
		while (cap < q->n + n)
			cap *= 2;
		if ((v = realloc(q->v, cap * sizeof(*v))) == NULL)
			return -1;
		q->v = v;
		q->cap = cap;
	}
	memcpy(q->v + q->n, p, n * sizeof(*p));
	q->n += n;
	return 0;
}

/* Drop the first n entries (their fds are someone else's business now). */
static void
pendq_shift(struct pendq *q, size_t n)
{
	if (n == 0)
		return;
	memmove(q->v, q->v + n, (q->n - n) * sizeof(*q->v));
	q->n -= n;
}

static void
pendq_close(struct pendq *q)
{
	for (size_t i = 0; i < q->n; i++)
		close(q->v[i].fd);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

/* Generations */

static struct generation *
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

static void
gen_unref(struct generation *g)
{
	if (--g->refs > 0)
		return;
	stats_map_free(&g->map);
	tls_unload(g->cfg);
	config_free(g->cfg);
	free(g);
}

/* Accept and dispatch */

/* May wp get new sockets? Only live workers of the current generation. */
static int
wproc_takes(const struct wproc *wp)
{
	return (wp->state == WP_STARTING || wp->state == WP_RUNNING) &&
	    wp->gen == wp->m->gen;
}

static void
master_pause(struct master *m, unsigned ms)
{
	struct timeval tv = { 0, (suseconds_t)ms * 1000 };

	if (!m->paused) {
		for (size_t i = 0; i < m->nlisteners; i++)
			event_del(m->listeners[i]->ev);
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
		event_add(m->listeners[i]->ev, NULL);
	m->paused = 0;
}

/*
 * Send p[0..n) to wp in one message. On success the sockets are the
 * worker's to read, but the master keeps its copies until the worker
 * acknowledges them, so none is lost if the worker dies first.
 */
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
	if (chan_send(wp->chan, buf, len, fds, n) == -1)
		return -1;
	if (pendq_push(&wp->unacked, p, n) == -1) {
		/* Cannot keep copies: the worker owns them from here. */
		for (size_t i = 0; i < n; i++)
			close(p[i].fd);
	}
	wp->sent += n;
	for (size_t i = 0; i < n; i++)
		wp->fe_sent[p[i].c.frontend]++;
	return 0;
}

/* Sockets sent to wp and not yet closed, as far as its reports tell. */
static uint64_t
wproc_load(const struct wproc *wp)
{
	uint64_t closed = wp->st.all.total - wp->st.all.active;

	return wp->sent > closed ? wp->sent - closed : 0;
}

/*
 * The next worker for a socket, skipping full ones: the next in turn, or
 * with dispatch = leastconn the one with the fewest open connections
 * (sent minus closed), the next in turn among ties. NULL when none.
 */
static struct wproc *
master_pick(struct master *m)
{
	struct wproc *best = NULL;
	size_t at = 0;

	for (size_t k = 0; k < m->nworkers; k++) {
		size_t i = (m->rr + k) % m->nworkers;
		struct wproc *wp = m->workers[i];
		if (!wproc_takes(wp) || wp->full)
			continue;
		if (best == NULL || (m->cfg->dispatch == DISPATCH_LEASTCONN &&
		    wproc_load(wp) < wproc_load(best))) {
			best = wp;
			at = i;
		}
		if (m->cfg->dispatch != DISPATCH_LEASTCONN)
			break;
	}
	if (best != NULL)
		m->rr = at + 1;
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
	size_t takers = 0, done = 0;
	struct wproc *wp;

	for (size_t i = 0; i < m->nworkers; i++) {
		m->workers[i]->full = 0;
		takers += wproc_takes(m->workers[i]);
	}
	while (done < m->pend.n && (wp = master_pick(m)) != NULL) {
		size_t share = 1;

		/*
		 * An equal share, rounded down: the remainder goes to the
		 * next in turn, so odd batches do not favour one worker.
		 */
		if (m->cfg->dispatch != DISPATCH_LEASTCONN &&
		    (share = (m->pend.n - done) / takers) == 0)
			share = 1;
		if (share > CHAN_MAX_FDS)
			share = CHAN_MAX_FDS;
		if (master_send_conns(wp, &m->pend.v[done], share) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				wproc_closed(wp);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS)
				log_warn("channel to worker %d", wp->id);
			wp->full = 1;
			continue;
		}
		done += share;
	}
	pendq_shift(&m->pend, done);
	if (m->pend.n > 0)
		master_pause(m, 10);
	else
		master_resume(m);
}

static uint64_t
master_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/*
 * Open connections of frontend fe across all workers: per worker, sockets
 * sent minus those its reports say are closed (exact for what was sent,
 * up to one report late for closes), plus those not yet handed over.
 */
static uint64_t
master_frontend_open(struct master *m, size_t fe)
{
	uint64_t open = 0;

	for (size_t i = 0; i < m->nworkers; i++) {
		const struct wproc *wp = m->workers[i];
		if (wp->state == WP_EMPTY)
			continue;
		for (size_t j = 0; j < wp->gen->cfg->nfrontends; j++) {
			const struct stat_counters *c = &wp->st.frontends[j];
			uint64_t closed = c->total - c->active;
			if (wp->gen->map.frontends[j] == fe &&
			    wp->fe_sent[j] > closed)
				open += wp->fe_sent[j] - closed;
		}
	}
	for (size_t i = 0; i < m->pend.n; i++)
		open += m->pend.v[i].c.frontend == fe;
	return open;
}

static int
master_holding(const struct master *m, size_t fe)
{
	for (size_t i = 0; i < m->held.n; i++)
		if (m->held.v[i].c.frontend == fe)
			return 1;
	return 0;
}

/* Over the frontend's limit: wait in the bounded queue, or be refused. */
static void
master_hold(struct master *m, struct pending *p)
{
	static const struct timeval tick = { 0, HOLD_TICK_MS * 1000 };

	p->since_ms = master_now_ms();
	if (m->held.n >= HOLD_MAX || pendq_push(&m->held, p, 1) == -1) {
		close(p->fd);
		m->fe_refused[p->c.frontend]++;
		return;
	}
	if (!evtimer_pending(m->hold_ev, NULL))
		evtimer_add(m->hold_ev, &tick);
}

/* Let held sockets in as connections close; refuse those held too long. */
static void
master_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval tick = { 0, HOLD_TICK_MS * 1000 };
	struct master *m = arg;
	uint64_t now = master_now_ms();
	size_t k = 0;

	for (size_t i = 0; i < m->held.n; i++) {
		struct pending p = m->held.v[i];
		size_t fe = p.c.frontend;
		if (master_frontend_open(m, fe) <
		    m->cfg->frontends[fe].max_connections) {
			if (pendq_push(&m->pend, &p, 1) == 0)
				continue;
		} else if (now - p.since_ms < HOLD_MS) {
			m->held.v[k++] = p;
			continue;
		}
		close(p.fd);
		m->fe_refused[fe]++;
	}
	m->held.n = k;
	if (m->held.n > 0)
		evtimer_add(m->hold_ev, &tick);
	if (m->pend.n > 0)
		master_dispatch(m);
}

static void
master_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct master *m = l->m;
	unsigned limit = m->cfg->frontends[l->frontend].max_connections;
	uint64_t open = master_frontend_open(m, l->frontend);
	int holding = master_holding(m, l->frontend);
	struct sockaddr_storage ss;
	struct pending p;
	socklen_t len;

	for (int i = 0; i < ACCEPT_BATCH && m->pend.n < PENDING_MAX; i++) {
		len = sizeof(ss);
		p.fd = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (p.fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* EMFILE and friends: back off instead of spinning */
			log_warn("accept on %s", l->text);
			master_pause(m, 100);
			break;
		}
		memset(&p.c, 0, sizeof(p.c));
		p.since_ms = 0;
		if (chan_conn_set_peer(&p.c, (struct sockaddr *)&ss) == -1) {
			close(p.fd);
			continue;
		}
		p.c.id = ++m->next_id;
		p.c.frontend = (uint32_t)l->frontend;
		if (holding || open >= limit) {
			master_hold(m, &p);
			holding = 1;
		} else if (pendq_push(&m->pend, &p, 1) == -1) {
			close(p.fd);
		} else {
			open++;
		}
	}
	master_dispatch(m);
}

static void
master_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	if (m->pend.n > 0)
		master_dispatch(m);
	else
		master_resume(m);
}

/* Listeners */

static void
listener_free(struct listener *l)
{
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->fd != -1)
		close(l->fd);
	free(l);
}

static void
master_close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->nlisteners; i++)
		listener_free(m->listeners[i]);
	free(m->listeners);
	m->listeners = NULL;
	m->nlisteners = 0;
}

/*
 * Listeners for every listen address of cfg: the one in old[0..nold) with
 * the same address is taken over (its socket never closes), others are
 * bound. Taken entries of old are set to NULL. Returns the array, or NULL
 * after logging what failed (then old is untouched).
 */
static struct listener **
master_listeners(struct master *m, const struct config *cfg,
    struct listener **old, size_t nold, size_t *np)
{
	struct listener **v;
	size_t n = 0, k = 0;

	for (size_t i = 0; i < cfg->nfrontends; i++)
		n += cfg->frontends[i].nlistens;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct frontend_conf *f = &cfg->frontends[i];
		for (size_t j = 0; j < f->nlistens; j++, k++) {
			const struct listen_conf *lc = &f->listens[j];
			for (size_t o = 0; o < nold && v[k] == NULL; o++)
				if (old[o] != NULL &&
				    addr_equal(&old[o]->addr, &lc->addr)) {
					v[k] = old[o];
					old[o] = NULL;
				}
			if (v[k] == NULL && (v[k] = calloc(1, sizeof(**v))) !=
			    NULL) {
				v[k]->m = m;
				v[k]->addr = lc->addr;
				v[k]->fd = net_listen(&lc->addr,
				    LISTEN_BACKLOG);
			}
			if (v[k] == NULL || v[k]->fd == -1) {
				log_error("%s:%d: [frontend %s] cannot listen "
				    "on %s: %s", cfg->path, lc->line, f->name,
				    lc->text, strerror(errno));
				goto fail;
			}
			v[k]->frontend = i;
			snprintf(v[k]->text, sizeof(v[k]->text), "%s",
			    lc->text);
		}
	}
	*np = n;
	return v;
fail:
	/* Give back what was taken over; close what was bound. */
	for (size_t i = 0; i <= k && i < n; i++) {
		if (v[i] == NULL)
			continue;
		if (v[i]->ev != NULL) {
			for (size_t o = 0; o < nold; o++)
				if (old[o] == NULL) {
					old[o] = v[i];
					break;
				}
		} else {
			listener_free(v[i]);
		}
	}
	free(v);
	return NULL;
}

/* Start accepting on listeners that are new (have no event yet). */
static int
master_listen(struct master *m)
{
	for (size_t i = 0; i < m->nlisteners; i++) {
		struct listener *l = m->listeners[i];
		if (l->ev != NULL)
			continue;
		l->ev = event_new(m->base, l->fd, EV_READ | EV_PERSIST,
		    master_accept_cb, l);
		if (l->ev == NULL || (!m->paused && event_add(l->ev, NULL) ==
		    -1))
			return -1;
		log_info("frontend %s listening on %s",
		    m->cfg->frontends[l->frontend].name, l->text);
	}
	return 0;
}

/* Workers */

static void
wproc_close_chan(struct wproc *wp)
{
	if (wp->chan_ev != NULL)
		event_free(wp->chan_ev);
	wp->chan_ev = NULL;
	if (wp->chan != -1)
		close(wp->chan);
	wp->chan = -1;
}

static void
wproc_free(struct wproc *wp)
{
	wproc_close_chan(wp);
	if (wp->respawn_ev != NULL)
		event_free(wp->respawn_ev);
	pendq_close(&wp->unacked);
	stats_table_free(&wp->st);
	free(wp->fe_sent);
	gen_unref(wp->gen);
	free(wp);
}

static struct wproc *
wproc_new(struct master *m, int id)
{
	struct wproc *wp, **v;

	v = realloc(m->workers, (m->nworkers + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	m->workers = v;
	if ((wp = calloc(1, sizeof(*wp))) == NULL)
		return NULL;
	wp->m = m;
	wp->gen = m->gen;
	wp->id = id;
	wp->chan = -1;
	wp->pid = -1;
	if (stats_table_init(&wp->st, m->cfg) == -1 ||
	    (wp->fe_sent = calloc(m->cfg->nfrontends + 1,
	    sizeof(*wp->fe_sent))) == NULL) {
		stats_table_free(&wp->st);
		free(wp);
		return NULL;
	}
	m->gen->refs++;
	m->workers[m->nworkers++] = wp;
	return wp;
}

/* The worker received every socket up to upto: drop our copies. */
static void
wproc_acked(struct wproc *wp, uint64_t upto)
{
	size_t n = 0;

	while (n < wp->unacked.n && wp->unacked.v[n].c.id <= upto)
		close(wp->unacked.v[n++].fd);
	pendq_shift(&wp->unacked, n);
}

/*
 * A worker's counters. Connect failures it saw since its last report are
 * passive health information: they go to the health checks.
 */
static void
master_worker_stats(struct wproc *wp, const struct chan_msg *msg)
{
	struct master *m = wp->m;
	char err[128];

	for (size_t i = 0; i < msg->count; i++) {
		const struct stat_record *r = &msg->stats[i];
		if (r->kind != STAT_SERVER || r->index >= wp->st.nservers ||
		    wp->gen != m->gen)
			continue;
		if (r->c.failures > wp->st.servers[r->index].failures)
			health_failures(m->health, r->index,
			    (unsigned)(r->c.failures -
			    wp->st.servers[r->index].failures));
	}
	if (stats_apply(&wp->st, msg->stats, msg->count, err,
	    sizeof(err)) == -1)
		log_warnx("worker %d (pid %d): bad stats report dropped: %s",
		    wp->id, (int)wp->pid, err);
}

/* Tell wp the state of servers [first, first + n). */
static void
wproc_send_servers(struct wproc *wp, size_t first, size_t n)
{
	struct master *m = wp->m;
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_server recs[CHAN_MAX_SERVERS];

	while (n > 0) {
		size_t k = n < CHAN_MAX_SERVERS ? n : CHAN_MAX_SERVERS, len;
		for (size_t i = 0; i < k; i++) {
			memset(&recs[i], 0, sizeof(recs[i]));
			recs[i].server = (uint32_t)(first + i);
			recs[i].up = m->server_up[first + i];
			recs[i].soft_down = m->server_soft[first + i];
		}
		len = chan_encode(buf, sizeof(buf), CHAN_SERVER, recs, k);
		if (len == 0 || chan_send(wp->chan, buf, len, NULL, 0) == -1)
			log_warn("worker %d: cannot send server states",
			    wp->id);
		first += k;
		n -= k;
	}
}

/* A server changed state: every worker of the current generation hears. */
static void
master_server_changed(void *arg, size_t server, int up, int soft_down)
{
	struct master *m = arg;

	m->server_up[server] = (uint8_t)up;
	m->server_soft[server] = (uint8_t)soft_down;
	for (size_t i = 0; i < m->nworkers; i++)
		if (wproc_takes(m->workers[i]))
			wproc_send_servers(m->workers[i], server, 1);
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
		master_worker_stats(wp, &m);
		return 0;
	case CHAN_BYE:
		wproc_closed(wp);
		return 0;
	case CHAN_ACK:
		if (m.ack > wp->m->next_id) {
			log_warnx("worker %d: acknowledges socket %llu never "
			    "sent", wp->id, (unsigned long long)m.ack);
			return -1;
		}
		wproc_acked(wp, m.ack);
		return 0;
	default:
		log_warnx("worker %d: unexpected message type %d", wp->id,
		    m.type);
		return -1;
	}
}

/*
 * Read what the worker sent, up to max messages. Returns 1 at end of file
 * (the worker is gone), -1 when it must be cut off, else 0.
 */
static int
wproc_read(struct wproc *wp, int max)
{
	struct chan_batch *b = wp->m->batch;
	int n = CHAN_BATCH, rc = 0;

	/* A batch that is not full emptied the channel: stop there. */
	for (int i = 0; i < max && n == CHAN_BATCH && rc == 0; i += n) {
		if ((n = chan_recv_batch(wp->chan, b)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* A worker that died with unread data: ECONNRESET. */
			if (errno == ECONNRESET)
				return 1;
			log_warn("worker %d: channel", wp->id);
			return -1;
		}
		for (int k = 0; k < n && rc == 0; k++) {
			if (b->len[k] == -1)
				log_warnx("worker %d: truncated message",
				    wp->id);
			if (b->len[k] <= 0)
				rc = b->len[k] == 0 ? 1 : -1;
			else if (master_worker_msg(wp,
			    (const char *)b->data[k], (size_t)b->len[k],
			    b->fds[k], b->nfds[k]) == -1)
				rc = -1;
			if (rc != 0)
				chan_batch_close(b, k + 1, n);
		}
	}
	return rc;
}

static void
master_chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;

	switch (wproc_read(wp, 64)) {
	case 1:
		/* The worker is gone; SIGCHLD tells the rest. */
		event_del(wp->chan_ev);
		break;
	case -1:
		log_warnx("worker %d (pid %d): cut off", wp->id, (int)wp->pid);
		event_del(wp->chan_ev);
		kill(wp->pid, SIGKILL);
		return;
	}
	/*
	 * A worker that stopped reading acknowledged all it took before it
	 * did: what is left unacknowledged is still queued there, untouched.
	 */
	if (wp->replace && wp->state == WP_DRAINING && wp->unacked.n > 0 &&
	    master_take_back(wp->m, wp, "stopped reading") > 0)
		master_dispatch(wp->m);
}

/*
 * Free everything of the master's but its configuration. In a forked
 * worker (forked) the sockets of the parent's stats clients are left to
 * the parent, and the channel of the worker itself is already closed.
 * Events go before the base they belong to.
 */
static void
master_release(struct master *m, struct wproc *self)
{
	if (m->endpoint != NULL && self != NULL)
		endpoint_free_forked(m->endpoint);
	else if (m->endpoint != NULL)
		endpoint_free(m->endpoint);
	m->endpoint = NULL;
	if (m->health != NULL)
		health_free(m->health);
	m->health = NULL;
	master_close_listeners(m);
	pendq_close(&m->pend);
	pendq_close(&m->held);	/* in a worker: copies, not its own */
	for (size_t i = 0; i < m->nworkers; i++) {
		if (m->workers[i] == self)
			self->chan = -1;	/* the parent's end */
		wproc_free(m->workers[i]);
	}
	free(m->workers);
	m->workers = NULL;
	m->nworkers = 0;
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(*m->sigs); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	if (m->hold_ev != NULL)
		event_free(m->hold_ev);
	if (m->resume_ev != NULL)
		event_free(m->resume_ev);
	if (m->stop_ev != NULL)
		event_free(m->stop_ev);
	if (m->base != NULL)
		event_base_free(m->base);
	m->base = NULL;
	stats_table_free(&m->retired);
	free(m->fe_refused);
	free(m->server_up);
	free(m->server_soft);
	free(m->batch);
	m->batch = NULL;
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
	master_release(m, self);
}

static void
master_child(struct master *m, struct wproc *wp, int chan)
{
	struct config *cfg = wp->gen->cfg;
	int id = wp->id, rc;

	/* Without its master a worker must not linger. */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	wp->gen->refs++;	/* keep cfg past master_forget() */
	struct generation *g = wp->gen;
	master_forget(m, wp);
	gen_unref(m->gen);	/* the master's "current" reference */
	free(m);
	rc = worker_main(cfg, id, chan);
	gen_unref(g);
	log_close();
	exit(rc);
}

static void
master_spawn(struct wproc *wp)
{
	struct master *m = wp->m;
	struct timeval tv = { RESPAWN_MAX_MS / 1000, 0 };
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
		master_child(m, wp, sv[1]);
	}
	close(sv[1]);
	wp->pid = pid;
	wp->chan = sv[0];
	wp->sent = 0;
	memset(wp->fe_sent, 0, wp->gen->cfg->nfrontends * sizeof(*wp->fe_sent));
	wp->state = WP_STARTING;
	wp->replace = 0;
	gettimeofday(&wp->started, NULL);
	wp->chan_ev = event_new(m->base, wp->chan, EV_READ | EV_PERSIST,
	    master_chan_cb, wp);
	if (wp->chan_ev == NULL || event_add(wp->chan_ev, NULL) == -1)
		fatalx("cannot watch worker %d's channel", wp->id);
	log_info("worker %d started, pid %d, generation %u", wp->id, (int)pid,
	    wp->gen->id);
	/* Before any socket: the servers' current states. */
	if (m->cfg->nservers > 0)
		wproc_send_servers(wp, 0, m->cfg->nservers);
	if (m->pend.n > 0)
		master_dispatch(m);
	return;
retry:
	wp->backoff_ms = RESPAWN_MAX_MS;
	evtimer_add(wp->respawn_ev, &tv);
}

static void
master_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;

	if (wp->state == WP_EMPTY) {
		if (!wp->m->stopping && wp->gen == wp->m->gen)
			master_spawn(wp);
	} else if (wp->state == WP_DRAINING) {
		log_warnx("worker %d (pid %d) still running past drain_timeout: "
		    "killing it", wp->id, (int)wp->pid);
		kill(wp->pid, SIGKILL);
	}
}

/* A draining wp gets SIGKILL if it overstays drain_timeout. */
static void
wproc_backstop(struct wproc *wp)
{
	struct timeval tv;

	tv.tv_sec = wp->gen->cfg->drain_timeout_ms / 1000 + KILL_GRACE_S;
	tv.tv_usec = (wp->gen->cfg->drain_timeout_ms % 1000) * 1000;
	evtimer_add(wp->respawn_ev, &tv);
}

/* Tell wp to finish what it has and exit; SIGKILL if it overstays. */
static void
wproc_drain(struct wproc *wp)
{
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_DRAIN, NULL, 0);

	evtimer_del(wp->respawn_ev);
	if (wp->state == WP_EMPTY || wp->state == WP_DRAINING)
		return;
	wp->state = WP_DRAINING;
	if (chan_send(wp->chan, buf, len, NULL, 0) == -1)
		kill(wp->pid, SIGTERM);	/* drains too */
	wproc_backstop(wp);
}

static int
master_workers_left(const struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY)
			return 1;
	return 0;
}

/*
 * Queue the sockets wp never acknowledged, for other workers: it never
 * read from them, so nobody has. Frontends are renumbered for the current
 * configuration; a socket whose frontend is gone is closed. Returns how
 * many were queued.
 */
static size_t
master_take_back(struct master *m, struct wproc *wp, const char *why)
{
	size_t moved = 0;

	for (size_t i = 0; i < wp->unacked.n; i++) {
		struct pending *p = &wp->unacked.v[i];
		size_t fe = wp->gen->map.frontends[p->c.frontend];
		if (m->stopping || fe == STATS_NOWHERE ||
		    pendq_push(&m->pend, p, 1) == -1) {
			close(p->fd);
			continue;
		}
		m->pend.v[m->pend.n - 1].c.frontend = (uint32_t)fe;
		moved++;
	}
	wp->unacked.n = 0;
	if (moved > 0) {
		log_notice("worker %d %s with %zu sockets unread: handing "
		    "them to other workers", wp->id, why, moved);
		m->redispatched += moved;
	}
	return moved;
}

/*
 * wp no longer reads its channel (it found a bad message there) but runs
 * on, finishing its connections. It gets no new socket, what it did not
 * take goes to the others, and its slot is filled again once it exits.
 * Called when it says so (CHAN_BYE) or when a send to it fails with
 * EPIPE, from master_dispatch(), which goes on with what is queued.
 */
static void
wproc_closed(struct wproc *wp)
{
	if (wp->state != WP_STARTING && wp->state != WP_RUNNING)
		return;
	log_warnx("worker %d (pid %d) closed its channel: it finishes its "
	    "connections and is replaced", wp->id, (int)wp->pid);
	wp->state = WP_DRAINING;
	wp->replace = 1;
	evtimer_del(wp->respawn_ev);
	wproc_backstop(wp);
	/* Its last acknowledgements first: master_chan_cb, next round. */
	event_active(wp->chan_ev, EV_READ, 1);
}

/* A dead worker's unacknowledged sockets go to the others, now. */
static void
master_redispatch(struct master *m, struct wproc *wp)
{
	if (master_take_back(m, wp, "died") > 0)
		master_dispatch(m);
}

/* Forget a worker slot for good (old generation, or stopping). */
static void
master_drop(struct master *m, struct wproc *wp)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i] == wp) {
			memmove(&m->workers[i], &m->workers[i + 1],
			    (m->nworkers - i - 1) * sizeof(*m->workers));
			m->nworkers--;
			break;
		}
	wproc_free(wp);
}

static void
master_log_exit(struct master *m, struct wproc *wp, int status)
{
	int expected = wp->state == WP_DRAINING;

	if (WIFSIGNALED(status))
		log_warnx("worker %d (pid %d) killed by signal %d", wp->id,
		    (int)wp->pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0 || !expected)
		log_warnx("worker %d (pid %d) exited with status %d", wp->id,
		    (int)wp->pid, WEXITSTATUS(status));
	else
		log_info("worker %d (pid %d, generation %u) finished", wp->id,
		    (int)wp->pid, wp->gen->id);
}

/* A worker exited: save its sockets and totals, and replace it if needed. */
static void
master_reaped(struct master *m, struct wproc *wp, int status)
{
	struct timeval now, tv;
	int was = wp->state;
	long lived;

	master_log_exit(m, wp, status);
	wp->state = WP_EMPTY;	/* gets nothing more, not even its own */
	/* Its last acknowledgements and counters are still in the channel. */
	(void)wproc_read(wp, 1 << 20);
	wproc_close_chan(wp);
	master_redispatch(m, wp);
	/* Its connections died with it; its totals live on. */
	stats_table_add_mapped(&m->retired, &wp->st, &wp->gen->map, 1);
	stats_table_zero(&wp->st);
	wp->pid = -1;
	if (m->stopping || wp->gen != m->gen ||
	    (was == WP_DRAINING && !wp->replace)) {
		master_drop(m, wp);
		if (m->stopping && !master_workers_left(m))
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
			if (m->workers[i]->pid == pid) {
				master_reaped(m, m->workers[i], status);
				break;
			}
	}
}

/* Fork the current generation's workers. */
static int
master_start_workers(struct master *m)
{
	for (unsigned i = 0; i < m->cfg->workers; i++) {
		struct wproc *wp = wproc_new(m, (int)i);
		if (wp == NULL)
			return -1;
		wp->respawn_ev = evtimer_new(m->base, master_respawn_cb, wp);
		if (wp->respawn_ev == NULL)
			return -1;
		master_spawn(wp);
	}
	return 0;
}

/* Stop */

static void
master_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	log_warnx("workers still running after drain_timeout: killing them");
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY)
			kill(m->workers[i]->pid, SIGKILL);
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
	/* Sockets already accepted still go to a worker if one takes them. */
	master_dispatch(m);
	m->stopping = 1;
	master_close_listeners(m);
	pendq_close(&m->pend);
	pendq_close(&m->held);
	for (size_t i = 0; i < m->nworkers; i++)
		wproc_drain(m->workers[i]);
	if (!master_workers_left(m)) {
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

/* Reload */

/* Carry server states over to cfg's shape, by name; new servers are up. */
static uint8_t *
master_remap_up(struct master *m, const struct stats_map *map,
    const struct config *cfg)
{
	uint8_t *up = malloc(cfg->nservers + 1);

	if (up == NULL)
		return NULL;
	memset(up, 1, cfg->nservers + 1);
	for (size_t i = 0; i < map->nservers; i++)
		if (map->servers[i] != STATS_NOWHERE)
			up[map->servers[i]] = m->server_up[i];
	return up;
}

/*
 * Everything a reload can fail at, done before anything changes: the new
 * listeners, the stats endpoint if its address moved, the new tables.
 */
struct reload {
	struct config		*cfg;
	struct generation	*gen;		/* owns cfg once made */
	struct listener		**listeners;
	size_t			 nlisteners;
	struct endpoint		*endpoint;	/* new one, or NULL: keep */
	struct stats_map	 map;		/* old config onto the new */
	struct stats_table	 retired;
	uint64_t		*refused;	/* fe_refused, carried over */
	uint8_t			*up;		/* server_up, carried over */
	uint8_t			*soft;
	struct health		*health;
};


static int
master_reload_prepare(struct master *m, struct reload *r)
{
	const struct config *old = m->cfg;

	if (tls_load(r->cfg) == -1)
		return -1;
	r->listeners = master_listeners(m, r->cfg, m->listeners,
	    m->nlisteners, &r->nlisteners);
	if (r->listeners == NULL)
		return -1;
	if (r->cfg->has_stats && (!old->has_stats ||
	    !addr_equal(&old->stats_addr, &r->cfg->stats_addr))) {
		r->endpoint = endpoint_new(m->base, r->cfg, master_stats_view,
		    master_stats_done, m);
		if (r->endpoint == NULL)
			return -1;
	}
	if ((r->gen = gen_new(m->generation + 1, r->cfg)) == NULL)
		return -1;
	if (stats_map_init(&r->map, old, r->cfg) == -1 ||
	    stats_table_init(&r->retired, r->cfg) == -1 ||
	    (r->refused = calloc(r->cfg->nfrontends + 1,
	    sizeof(*r->refused))) == NULL ||
	    (r->up = master_remap_up(m, &r->map, r->cfg)) == NULL ||
	    (r->soft = calloc(r->cfg->nservers + 1, 1)) == NULL ||
	    (r->health = health_new(m->base, r->cfg, r->up,
	    master_server_changed, m)) == NULL)
		return -1;
	stats_table_add_mapped(&r->retired, &m->retired, &r->map, 1);
	for (size_t i = 0; i < m->cfg->nfrontends; i++)
		if (r->map.frontends[i] != STATS_NOWHERE)
			r->refused[r->map.frontends[i]] += m->fe_refused[i];
	return 0;
}

/* Undo master_reload_prepare(): the running configuration stays. */
static void
master_reload_abort(struct master *m, struct reload *r)
{
	for (size_t i = 0; r->listeners != NULL && i < r->nlisteners; i++) {
		struct listener *l = r->listeners[i];
		if (l->ev == NULL) {
			listener_free(l);
			continue;
		}
		for (size_t o = 0; o < m->nlisteners; o++)
			if (m->listeners[o] == NULL) {
				m->listeners[o] = l;
				break;
			}
	}
	free(r->listeners);
	if (r->endpoint != NULL)
		endpoint_free(r->endpoint);
	if (r->gen != NULL) {
		gen_unref(r->gen);
	} else {
		tls_unload(r->cfg);
		config_free(r->cfg);
	}
	stats_map_free(&r->map);
	stats_table_free(&r->retired);
	free(r->refused);
	free(r->up);
	free(r->soft);
	if (r->health != NULL)
		health_free(r->health);
}

/* Sockets accepted under the old configuration, renumbered for the new. */
static void
master_renumber(struct pendq *q, const struct stats_map *map)
{
	size_t k = 0;

	for (size_t i = 0; i < q->n; i++) {
		struct pending p = q->v[i];
		size_t fe = map->frontends[p.c.frontend];
		if (fe == STATS_NOWHERE) {
			close(p.fd);
			continue;
		}
		p.c.frontend = (uint32_t)fe;
		q->v[k++] = p;
	}
	q->n = k;
}

/* Switch to the prepared configuration; nothing here can fail halfway. */
static void
master_reload_commit(struct master *m, struct reload *r)
{
	struct generation *old = m->gen;

	for (size_t i = 0; i < m->nlisteners; i++)
		if (m->listeners[i] != NULL) {
			log_info("closing listener %s", m->listeners[i]->text);
			listener_free(m->listeners[i]);
		}
	free(m->listeners);
	m->listeners = r->listeners;
	m->nlisteners = r->nlisteners;
	if (r->endpoint != NULL || !r->cfg->has_stats) {
		if (m->endpoint != NULL)
			endpoint_free(m->endpoint);
		m->endpoint = r->endpoint;
	} else if (endpoint_set_token(m->endpoint, r->cfg->stats_token) ==
	    -1) {
		log_warn("stats token");
	}
	master_renumber(&m->pend, &r->map);
	master_renumber(&m->held, &r->map);
	free(m->fe_refused);
	m->fe_refused = r->refused;
	stats_map_free(&r->map);
	stats_table_free(&m->retired);
	m->retired = r->retired;
	free(m->server_up);
	m->server_up = r->up;
	free(m->server_soft);
	m->server_soft = r->soft;
	if (m->health != NULL)
		health_free(m->health);
	m->health = r->health;

	m->gen = r->gen;
	m->cfg = r->cfg;
	m->generation = r->gen->id;
	for (size_t i = m->nworkers; i-- > 0;) {
		struct wproc *wp = m->workers[i];
		stats_map_free(&wp->gen->map);
		if (stats_map_init(&wp->gen->map, wp->gen->cfg, m->cfg) == -1)
			log_warn("stats map");	/* its counters go unshown */
		if (wp->state == WP_EMPTY)
			master_drop(m, wp);
		else
			wproc_drain(wp);
	}
	gen_unref(old);
	log_set_level(m->cfg->log_level);
	master_nofile(m->cfg);
	if (master_listen(m) == -1 || master_start_workers(m) == -1)
		log_warn("reload: cannot start everything");
	m->reloads++;
}

/* SIGHUP: the new file, or, if it has any error, the running one. */
static void
master_reload(struct master *m)
{
	struct errlist errs = { NULL, 0 };
	struct reload r;

	memset(&r, 0, sizeof(r));
	log_notice("SIGHUP: reloading %s", m->cfg->path);
	if ((r.cfg = config_load(m->cfg->path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msgs[i]);
		errlist_free(&errs);
		log_error("reload failed: keeping generation %u",
		    m->generation);
		m->reload_failures++;
		return;
	}
	/* Hand out what was accepted under the old configuration first. */
	master_dispatch(m);
	if (master_reload_prepare(m, &r) == -1) {
		master_reload_abort(m, &r);
		log_error("reload failed: keeping generation %u",
		    m->generation);
		m->reload_failures++;
		return;
	}
	master_reload_commit(m, &r);
	log_notice("reloaded: generation %u, %u workers", m->generation,
	    m->cfg->workers);
}

/* Signals */

/* The reopened log file goes to every worker: they may not open it. */
static void
master_reopen_log(struct master *m)
{
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_LOGFD, NULL, 0);
	int fd;

	if (log_reopen() == -1) {
		log_warn("reopen log file");
		return;
	}
	log_notice("log file reopened");
	if ((fd = log_fd()) == 2)
		return;
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY &&
		    chan_send(m->workers[i]->chan, buf, len, &fd, 1) == -1)
			log_warn("worker %d: cannot pass the log file",
			    m->workers[i]->id);
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
			master_reload(m);
		break;
	case SIGUSR1:
		master_reopen_log(m);
		break;
	}
}

/* Stats */

/*
 * Gather what the stats endpoint shows: every live worker's latest report,
 * in the current configuration's shape, added to the totals of those that
 * exited. Freed by master_stats_done().
 */
static int
master_stats_view(void *arg, struct stats_view *v)
{
	struct master *m = arg;
	struct timeval now;
	uint8_t *status;
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
	/* Refused by a frontend's limit: accepted, reached no server. */
	for (size_t i = 0; i < m->cfg->nfrontends; i++) {
		v->sum.frontends[i].total += m->fe_refused[i];
		v->sum.frontends[i].errors += m->fe_refused[i];
		v->sum.all.total += m->fe_refused[i];
		v->sum.all.errors += m->fe_refused[i];
	}
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
	if ((status = calloc(m->cfg->nservers + 1, 1)) == NULL) {
		master_stats_done(m, v);
		return -1;
	}
	for (size_t i = 0; i < m->cfg->nservers; i++)
		status[i] = m->server_up[i] && !m->server_soft[i] ? SERVER_UP :
		    SERVER_DOWN;
	v->server_status = status;
	return 0;
}

static void
master_stats_done(void *arg, struct stats_view *v)
{
	stats_table_free(&v->sum);
	free(v->workers);
	free(v->server_status);
	memset(v, 0, sizeof(*v));
}

/* Start and end */

static int
master_init(struct master *m, struct config *cfg)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
	    SIGCHLD };

	m->generation = 1;
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
		m->sigs[i] = evsignal_new(m->base, signals[i],
		    signals[i] == SIGCHLD ? master_sigchld : master_signal, m);
		if (m->sigs[i] == NULL || evsignal_add(m->sigs[i], NULL) == -1)
			return -1;
	}
	if ((m->resume_ev = evtimer_new(m->base, master_resume_cb, m)) == NULL ||
	    (m->hold_ev = evtimer_new(m->base, master_hold_cb, m)) == NULL ||
	    (m->fe_refused = calloc(cfg->nfrontends + 1,
	    sizeof(*m->fe_refused))) == NULL)
		return -1;
	if (stats_table_init(&m->retired, cfg) == -1)
		return -1;
	if ((m->server_up = malloc(cfg->nservers + 1)) == NULL ||
	    (m->server_soft = calloc(cfg->nservers + 1, 1)) == NULL)
		return -1;
	memset(m->server_up, 1, cfg->nservers + 1);
	return 0;
}

static void
master_free(struct master *m)
{
	master_release(m, NULL);
	if (m->pidfile_written && unlink(m->cfg->pidfile) == -1)
		log_warn("remove pidfile %s", m->cfg->pidfile);
	if (m->gen != NULL)
		gen_unref(m->gen);
}

static int
master_write_pidfile(struct master *m)
{
	FILE *fp;

	if (m->cfg->pidfile == NULL)
		return 0;
	if ((fp = fopen(m->cfg->pidfile, "w")) == NULL ||
	    fprintf(fp, "%d\n", (int)getpid()) < 0 || fclose(fp) == EOF) {
		log_error("%s: pidfile %s: %s", m->cfg->path, m->cfg->pidfile,
		    strerror(errno));
		return -1;
	}
	m->pidfile_written = 1;
	return 0;
}

/* Workers inherit the limit; say once if it is short of what they need. */
static void
master_nofile(const struct config *cfg)
{
	long need = config_nofile(cfg), have = net_raise_nofile(need);

	if (have < need)
		log_warnx("the open file limit is %ld, but max_connections "
		    "needs %ld per worker: connections beyond it will fail "
		    "(raise the hard limit: ulimit -Hn, LimitNOFILE=)", have,
		    need);
}

/* Everything that can fail at start, in order; -1 after logging why. */
static int
master_start(struct master *m)
{
	master_nofile(m->cfg);
	if (tls_load(m->cfg) == -1)
		return -1;
	if ((m->listeners = master_listeners(m, m->cfg, NULL, 0,
	    &m->nlisteners)) == NULL || master_listen(m) == -1)
		return -1;
	if (m->cfg->has_stats && (m->endpoint = endpoint_new(m->base, m->cfg,
	    master_stats_view, master_stats_done, m)) == NULL)
		return -1;
	if ((m->health = health_new(m->base, m->cfg, m->server_up,
	    master_server_changed, m)) == NULL) {
		log_warn("health checks");
		return -1;
	}
	if (master_write_pidfile(m) == -1)
		return -1;
	log_notice("baton %s started: %u workers", PACKAGE_VERSION,
	    m->cfg->workers);
	if (master_start_workers(m) == -1) {
		log_warn("cannot start workers");
		return -1;
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
