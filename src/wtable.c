/* wtable.c -- the master's worker processes: fork, channel, reap, respawn */
#include "ac_config.h"

#define _GNU_SOURCE 1
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "health.h"
#include "log.h"
#include "master_priv.h"
#include "orphans.h"
#include "worker.h"

#define RESPAWN_MIN_MS	100
#define RESPAWN_MAX_MS	10000
#define STABLE_MS	1000	/* a worker living this long is not crashing */

const char *const wproc_state_names[] = {
	"empty", "starting", "running", "draining",
};

static void	wproc_spawn(struct wproc *wp);
static void	wproc_timer_cb(evutil_socket_t, short, void *);

/* Slots */

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
	    (wp->timer = evtimer_new(m->base, wproc_timer_cb, wp)) == NULL) {
		stats_table_free(&wp->st);
		free(wp);
		return NULL;
	}
	m->gen->refs++;
	m->workers[m->nworkers++] = wp;
	return wp;
}

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

/* Forget a slot for good; its channel was read to the end. */
static void
wproc_free(struct wproc *wp)
{
	struct master *m = wp->m;

	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i] == wp) {
			memmove(&m->workers[i], &m->workers[i + 1],
			    (m->nworkers - i - 1) * sizeof(*m->workers));
			m->nworkers--;
			break;
		}
	handover_forget(m, wp);
	dispatch_detach(&m->d, &wp->t);
	(void)dispatch_take_back(&m->d, &wp->t, 1);
	dtarget_free(&wp->t);
	wproc_close_chan(wp);
	event_free(wp->timer);
	stats_table_free(&wp->st);
	gen_unref(wp->gen);
	free(wp);
}

void
wtable_free(struct master *m)
{
	while (m->nworkers > 0)
		wproc_free(m->workers[m->nworkers - 1]);
	free(m->workers);
	m->workers = NULL;
}

/* Channel messages */

/*
 * A worker's counters. Connect failures it saw since its last report are
 * passive health information: they go to the health checks.
 */
static void
wproc_stats(struct wproc *wp, const struct chan_msg *msg)
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
	wp->t.closed = wp->st.all.total + wp->st.all.handed_over -
	    wp->st.all.active;
}

static void	wproc_bye(struct wproc *wp);

/* A message from a worker. Returns -1 if the worker must be cut off. */
static int
wproc_msg(struct wproc *wp, const char *buf, size_t len, int *fds,
    size_t nfds)
{
	struct chan_msg msg;
	char err[128];

	if (chan_decode(buf, len, nfds, &msg, err, sizeof(err)) == -1) {
		log_warnx("worker %d (pid %d): bad message: %s", wp->id,
		    (int)wp->pid, err);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	switch (msg.type) {
	case CHAN_READY:
		if (wp->state == WP_STARTING)
			wp->state = WP_RUNNING;
		if (wp->replacement)
			handover_rebalance(wp);
		else
			handover_tick(wp->m);	/* after an upgrade: orphans */
		return 0;
	case CHAN_STATS:
		wproc_stats(wp, &msg);
		return 0;
	case CHAN_BYE:
		wproc_bye(wp);
		return 0;
	case CHAN_SESSION:
		return handover_session(wp, msg.session, fds, nfds);
	case CHAN_MOVED:
		return handover_moved(wp, &msg.moved);
	case CHAN_ACK:
		if (dispatch_ack(&wp->m->d, &wp->t, msg.ack) == -1) {
			log_warnx("worker %d: acknowledges socket %llu, but "
			    "%llu were sent%s", wp->id,
			    (unsigned long long)msg.ack,
			    (unsigned long long)wp->t.sent,
			    wp->t.gone ? " and taken back" : "");
			return -1;
		}
		if (wp->m->d.moving > 0 || wp->gen != wp->m->gen)
			handover_tick(wp->m);
		return 0;
	default:
		log_warnx("worker %d: unexpected message type %d", wp->id,
		    msg.type);
		return -1;
	}
}

/*
 * Read what the worker sent, up to max messages. Returns 1 at end of
 * file (the worker is gone), -1 when it must be cut off, else 0. A worker
 * that died with messages of ours unread leaves ECONNRESET to report
 * once: what it sent before is still there to read.
 */
static int
wproc_read(struct wproc *wp, int max)
{
	struct chan_batch *b = wp->m->batch;
	int n = CHAN_BATCH, rc = 0;

	for (int i = 0; i < max && rc == 0; i += n) {
		if ((n = chan_recv_batch(wp->chan, b)) == -1) {
			if (errno == ECONNRESET) {
				n = 0;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			log_warn("worker %d: channel", wp->id);
			return -1;
		}
		for (int k = 0; k < n && rc == 0; k++) {
			if (b->len[k] == -1)
				log_warnx("worker %d: truncated message",
				    wp->id);
			if (b->len[k] <= 0)
				rc = b->len[k] == 0 ? 1 : -1;
			else if (wproc_msg(wp, (const char *)b->data[k],
			    (size_t)b->len[k], b->fds[k], b->nfds[k]) == -1)
				rc = -1;
			if (rc != 0)
				chan_batch_close(b, k + 1, n);
		}
		/* A batch that is not full emptied the channel. */
		if (rc == 0 && n < CHAN_BATCH)
			return 0;
	}
	return rc;
}

static void
wproc_chan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;

	switch (wproc_read(wp, CHAN_READS)) {
	case 1:
		/* The worker is gone; SIGCHLD tells the rest. */
		event_del(wp->chan_ev);
		break;
	case -1:
		log_warnx("worker %d (pid %d): cut off", wp->id, (int)wp->pid);
		event_del(wp->chan_ev);
		kill(wp->pid, SIGKILL);
		break;
	}
}

/* Draining and replacing */

/* A draining wp gets SIGKILL if it overstays drain_timeout. */
static void
wproc_backstop(struct wproc *wp)
{
	struct timeval tv;

	tv.tv_sec = wp->gen->cfg->drain_timeout_ms / 1000 + KILL_GRACE_S;
	tv.tv_usec = (wp->gen->cfg->drain_timeout_ms % 1000) * 1000;
	evtimer_add(wp->timer, &tv);
}

/* A new slot of wp's generation with wp's id, spawned at once. */
static void
wproc_replace(struct wproc *wp)
{
	struct master *m = wp->m;
	struct wproc *nw;

	if (m->stopping || wp->gen != m->gen)
		return;
	if ((nw = wproc_new(m, wp->id)) == NULL) {
		log_warn("worker %d: cannot replace it", wp->id);
		return;
	}
	nw->backoff_ms = wp->backoff_ms;
	nw->replacement = 1;
	wproc_spawn(nw);
}

/*
 * The worker takes no socket from now on (it drains on its own: SIGTERM,
 * or it found garbage on its channel). It acknowledged everything it took
 * before saying so, and the channel keeps order: whatever is still
 * unacknowledged it closes unread, so it goes to the others, and a new
 * worker takes its place.
 */
static void
wproc_bye(struct wproc *wp)
{
	struct master *m = wp->m;
	size_t n;

	wp->said_bye = 1;
	handover_bye(wp);
	if ((n = dispatch_take_back(&m->d, &wp->t, m->stopping)) > 0)
		log_notice("worker %d (pid %d) drains on its own: %zu sockets "
		    "it did not take go to other workers", wp->id,
		    (int)wp->pid, n);
	if (wp->state == WP_STARTING || wp->state == WP_RUNNING) {
		log_notice("worker %d (pid %d) drains on its own: replacing "
		    "it", wp->id, (int)wp->pid);
		wp->state = WP_DRAINING;
		wproc_backstop(wp);
		wproc_replace(wp);
	}
	handoff_flush(m);
}

/* Tell wp to finish what it has and exit; SIGKILL if it overstays. */
static void
wproc_drain(struct wproc *wp)
{
	if (wp->state == WP_EMPTY || wp->state == WP_DRAINING)
		return;	/* a draining worker keeps its backstop */
	evtimer_del(wp->timer);
	wp->state = WP_DRAINING;
	wp->t.open = 0;
	wsend_drain(wp);
	wproc_backstop(wp);
}

void
wtable_drain_old(struct master *m)
{
	for (size_t i = m->nworkers; i-- > 0;) {
		struct wproc *wp = m->workers[i];
		if (wp->gen == m->gen && !m->stopping)
			continue;
		if (wp->state == WP_EMPTY)
			wproc_free(wp);
		else
			wproc_drain(wp);
	}
}

void
wtable_kill_all(struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY)
			kill(m->workers[i]->pid, SIGKILL);
}

int
wtable_left(const struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY)
			return 1;
	return 0;
}

static void
wproc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wproc *wp = arg;

	if (wp->state == WP_EMPTY) {
		if (!wp->m->stopping && wp->gen == wp->m->gen)
			wproc_spawn(wp);
	} else if (wp->state == WP_DRAINING) {
		log_warnx("worker %d (pid %d) still running past drain_timeout: "
		    "killing it", wp->id, (int)wp->pid);
		kill(wp->pid, SIGKILL);
	}
}

/* Spawning */

/* Take wp out of service: it drains, and a new one takes its place. */
void
wtable_retire(struct wproc *wp)
{
	wproc_drain(wp);
	wproc_replace(wp);
}

/* The current generation's tables grow to the configuration's servers. */
int
wtable_grow(struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = m->workers[i];
		if (wp->gen == m->gen &&
		    stats_table_grow(&wp->st, m->cfg->nservers) == -1)
			return -1;
	}
	return 0;
}

static void
wproc_spawn(struct wproc *wp)
{
	struct master *m = wp->m;
	struct timeval tv = { RESPAWN_MAX_MS / 1000, 0 };
	int sv[2];
	pid_t pid;

	dispatch_detach(&m->d, &wp->t);
	dtarget_free(&wp->t);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for worker %d", wp->id);
		goto retry;
	}
	if (dtarget_init(&wp->t, sv[0], wp->gen->cfg->nfrontends) == -1 ||
	    dispatch_attach(&m->d, &wp->t) == -1 ||
	    (wp->chan_ev = event_new(m->base, sv[0], EV_READ | EV_PERSIST,
	    wproc_chan_cb, wp)) == NULL || (pid = fork()) == -1) {
		log_warn("fork worker %d", wp->id);
		wproc_close_chan(wp);
		dispatch_detach(&m->d, &wp->t);
		close(sv[0]);
		close(sv[1]);
		goto retry;
	}
	if (pid == 0)
		wchild_run(m, wp, sv[1]);
	close(sv[1]);
	wp->pid = pid;
	wp->chan = sv[0];
	wp->state = WP_STARTING;
	wp->t.open = 1;
	gettimeofday(&wp->started, NULL);
	if (event_add(wp->chan_ev, NULL) == -1)
		fatalx("cannot watch worker %d's channel", wp->id);
	log_info("worker %d started, pid %d, generation %u", wp->id, (int)pid,
	    wp->gen->id);
	/* Before any socket: the servers' current states. */
	if (m->cfg->nservers > 0)
		wsend_states(wp, 0, m->cfg->nservers);
	handoff_flush(m);
	return;
retry:
	wp->backoff_ms = RESPAWN_MAX_MS;
	evtimer_add(wp->timer, &tv);
}

int
wtable_start(struct master *m)
{
	for (unsigned i = 0; i < m->cfg->workers; i++) {
		struct wproc *wp = wproc_new(m, (int)i);
		if (wp == NULL)
			return -1;
		wproc_spawn(wp);
	}
	return 0;
}

/* Reaping */

static void
wproc_log_exit(struct wproc *wp, int status)
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

/* Back off when workers die young, so a crash loop cannot spin. */
static void
wproc_respawn_later(struct wproc *wp)
{
	struct timeval now, tv;
	long lived;

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
	evtimer_add(wp->timer, &tv);
}

/*
 * A worker exited. Its last acknowledgements are read first (to the end
 * of its channel), so what it took is never handed out twice; then what
 * it did not take goes to the others, its totals are kept, and its slot
 * is filled again if it belongs to the current generation.
 */
static void
wproc_reaped(struct wproc *wp, int status)
{
	struct master *m = wp->m;
	int was = wp->state;
	size_t n;

	wproc_log_exit(wp, status);
	wp->state = WP_EMPTY;
	evtimer_del(wp->timer);
	(void)wproc_read(wp, 1 << 20);
	wproc_close_chan(wp);
	if ((n = dispatch_take_back(&m->d, &wp->t, m->stopping)) > 0)
		log_notice("worker %d died with %zu sockets unread: handing "
		    "them to other workers", wp->id, n);
	stats_table_add_mapped(&m->retired, &wp->st, &wp->gen->map, 1);
	stats_table_zero(&wp->st);
	wp->pid = -1;
	if (m->stopping || wp->gen != m->gen || was == WP_DRAINING) {
		wproc_free(wp);
	} else {
		wp->replacement = 1;
		memset(&wp->ho, 0, sizeof(wp->ho));
		wproc_respawn_later(wp);
	}
	if (m->stopping && !wtable_left(m))
		event_base_loopexit(m->base, NULL);
	handoff_flush(m);
}

void
wtable_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		size_t i;

		for (i = 0; i < m->nworkers; i++)
			if (m->workers[i]->pid == pid) {
				wproc_reaped(m->workers[i], status);
				break;
			}
		if (i == m->nworkers)
			orphan_reaped(m, pid);
	}
}

/* The reopened log file goes to every worker: they may not open it. */
void
wtable_logfd(struct master *m, int fd)
{
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_LOGFD, NULL, 0);

	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY &&
		    chan_send(m->workers[i]->chan, buf, len, &fd, 1) == -1)
			log_warn("worker %d: cannot pass the log file",
			    m->workers[i]->id);
}
