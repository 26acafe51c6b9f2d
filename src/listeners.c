/* listeners.c -- the master's listening sockets: bind, take over, accept */
#include "ac_config.h"

#include <sys/resource.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "listeners.h"
#include "log.h"
#include "uring.h"

#define ACCEPT_BATCH	64	/* accepts per wake-up of one listener */
#define LISTEN_BACKLOG	4096
#define BACKOFF_MS	100	/* after an accept error (EMFILE...) */
#define BUDGET_MS	50	/* a full table is looked at again this soon */
/*
 * Descriptors the master keeps in reserve for what it must always be
 * able to do: fork a worker (a socketpair), run health checks, reload
 * (new listeners, the configuration, certificates), answer /stats.
 */
#define FD_RESERVE	32

static uint64_t
lset_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

uint64_t
lset_paused_ms(const struct lset *s)
{
	if (s == NULL)
		return 0;
	return s->pause_ms + (s->paused ? lset_now_ms() - s->pause_since_ms :
	    0);
}

/*
 * One accepted socket (sa: its peer, or NULL when the worker must ask).
 * Returns -1 when accepting should stop for now.
 */
static int
lset_take(struct listener *l, int cfd, const struct sockaddr *sa)
{
	struct lset *s = l->set;

	if (s->accept(s->arg, l->frontend, cfd, sa) == -1)
		return -1;
	/*
	 * Descriptors are handed out lowest first, so every one below cfd
	 * is open: stop before the reserve is touched, until the workers'
	 * acknowledgements give some back.
	 */
	if (cfd >= s->fd_high) {
		lset_pause(s, 0);
		if (!s->budget)
			log_notice("accepting paused: the open file limit is "
			    "near");
		s->budget = 1;
		return -1;
	}
	return 0;
}

/* An accept error (EMFILE and friends): back off instead of spinning. */
static void
lset_error(struct listener *l, int err)
{
	struct lset *s = l->set;

	log_warnx("accept on %s: %s", l->text, strerror(err));
	lset_pause(s, BACKOFF_MS);
	s->backoff = 1;
}

static void
lset_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct lset *s = l->set;
	struct sockaddr_storage ss;
	socklen_t len;
	int cfd;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				lset_error(l, errno);
			break;
		}
		if (lset_take(l, cfd, (struct sockaddr *)&ss) == -1)
			break;
	}
	s->flush(s->arg);
}

/* The ring accepted cfd on l (the round's end flushes), or failed. */
static void
lset_ring_cb(void *arg, int cfd, const struct sockaddr *sa, int err)
{
	struct listener *l = arg;

	if (cfd == -1)
		lset_error(l, err);
	else
		(void)lset_take(l, cfd, sa);
}

static void
lset_round_cb(void *arg)
{
	struct lset *s = arg;

	s->flush(s->arg);
}

static int
listener_arm(struct listener *l)
{
	if (l->set->ring != NULL)
		return uring_listen(l->set->ring, l->fd, lset_ring_cb, l, 1);
	return event_add(l->ev, NULL);
}

static void
listener_disarm(struct listener *l)
{
	if (l->set->ring != NULL)
		uring_unlisten(l->set->ring, l->fd, 0);
	else
		event_del(l->ev);
}

/* Is the descriptor table below the reserve again? */
static int
lset_budget_ok(const struct lset *s)
{
	int probe;

	if (s->n == 0 || (probe = fcntl(s->v[0]->fd, F_DUPFD_CLOEXEC, 0)) ==
	    -1)
		return 0;
	close(probe);
	return probe < s->fd_high;
}

/* The accept threshold for the soft limit now in force. */
static int
lset_fd_high(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (1 << 30))
		return 1 << 30;
	if (rl.rlim_cur < 2 * FD_RESERVE)
		return (int)rl.rlim_cur / 2;
	return (int)rl.rlim_cur - FD_RESERVE;
}

static void
lset_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lset *s = arg;

	s->backoff = 0;
	s->flush(s->arg);
}

void
lset_pause(struct lset *s, unsigned ms)
{
	struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	if (!s->paused) {
		for (size_t i = 0; i < s->n; i++)
			listener_disarm(s->v[i]);
		s->paused = 1;
		s->pauses++;
		s->pause_since_ms = lset_now_ms();
	}
	if (!s->backoff && s->resume_ev != NULL)
		evtimer_add(s->resume_ev, &tv);
}

void
lset_resume(struct lset *s)
{
	static const struct timeval again = { 0, BUDGET_MS * 1000 };

	if (!s->paused || s->backoff)
		return;
	if (s->budget) {
		if (!lset_budget_ok(s)) {
			if (!evtimer_pending(s->resume_ev, NULL))
				evtimer_add(s->resume_ev, &again);
			return;
		}
		s->budget = 0;
		log_info("accepting again");
	}
	for (size_t i = 0; i < s->n; i++)
		if (listener_arm(s->v[i]) == -1)
			log_warn("listener %s", s->v[i]->text);
	s->paused = 0;
	s->pause_ms += lset_now_ms() - s->pause_since_ms;
}

static void
listener_free(struct listener *l)
{
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->fd != -1 && l->from == NULL) {
		if (l->set->ring != NULL)	/* its late sockets: closed */
			uring_unlisten(l->set->ring, l->fd, 1);
		close(l->fd);
	}
	free(l);
}

void
lset_free(struct lset *s)
{
	if (s == NULL)
		return;
	if (s->ring != NULL && s->live)
		uring_on_round(s->ring, NULL, NULL);
	for (size_t i = 0; i < s->n; i++)
		listener_free(s->v[i]);
	free(s->v);
	if (s->resume_ev != NULL)
		event_free(s->resume_ev);
	free(s);
}

/* The running listener of cur on address a, or NULL. */
static struct listener *
lset_find(const struct lset *cur, const struct addr *a)
{
	for (size_t i = 0; cur != NULL && i < cur->n; i++)
		if (addr_equal(&cur->v[i]->addr, a))
			return cur->v[i];
	return NULL;
}

/* A listener for lc of frontend fe: taken over from cur, or bound. */
static struct listener *
lset_make(struct lset *next, const struct lset *cur,
    const struct config *cfg, size_t fe, const struct listen_conf *lc)
{
	const struct frontend_conf *f = &cfg->frontends[fe];
	struct listener *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto fail;
	l->set = next;
	l->addr = lc->addr;
	l->frontend = fe;
	l->name = f->name;
	snprintf(l->text, sizeof(l->text), "%s", lc->text);
	if ((l->from = lset_find(cur, &lc->addr)) != NULL)
		l->fd = l->from->fd;
	else if ((l->fd = net_listen(&lc->addr, LISTEN_BACKLOG)) == -1)
		goto fail;
	l->ev = event_new(next->base, l->fd, EV_READ | EV_PERSIST,
	    lset_accept_cb, l);
	if (l->ev == NULL)
		goto fail;
	return l;
fail:
	log_error("%s:%d: [frontend %s] cannot listen on %s: %s", cfg->path,
	    lc->line, f->name, lc->text, strerror(errno));
	if (l != NULL)
		listener_free(l);
	return NULL;
}

struct lset *
lset_inherit(struct event_base *base, const int *fds, size_t n)
{
	struct lset *s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->v = calloc(n + 1, sizeof(*s->v))) == NULL) {
		free(s);
		return NULL;
	}
	s->base = base;
	for (size_t i = 0; i < n; i++) {
		struct listener *l = calloc(1, sizeof(*l));

		if (l == NULL) {
			lset_free(s);
			return NULL;
		}
		l->set = s;
		l->fd = fds[i];
		l->addr.len = sizeof(l->addr.ss);
		if (getsockname(fds[i], (struct sockaddr *)&l->addr.ss,
		    &l->addr.len) == -1)
			l->addr.len = 0;	/* matches nothing: closed */
		addr_format((const struct sockaddr *)&l->addr.ss, l->text,
		    sizeof(l->text));
		s->v[s->n++] = l;
	}
	return s;
}

struct lset *
lset_prepare(const struct lset *cur, const struct config *cfg,
    struct event_base *base, struct uring *ring, lset_accept_fn accept,
    lset_flush_fn flush, void *arg)
{
	struct lset *next;
	size_t n = 0;

	if ((next = calloc(1, sizeof(*next))) == NULL) {
		log_warn("listeners");
		return NULL;
	}
	next->base = base;
	next->ring = ring;
	next->fd_high = lset_fd_high();
	next->accept = accept;
	next->flush = flush;
	next->arg = arg;
	for (size_t i = 0; i < cfg->nfrontends; i++)
		n += cfg->frontends[i].nlistens;
	if ((next->v = calloc(n + 1, sizeof(*next->v))) == NULL ||
	    (next->resume_ev = evtimer_new(base, lset_resume_cb, next)) ==
	    NULL) {
		log_warn("listeners");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct frontend_conf *f = &cfg->frontends[i];
		for (size_t j = 0; j < f->nlistens; j++) {
			struct listener *l = lset_make(next, cur, cfg, i,
			    &f->listens[j]);
			if (l == NULL)
				goto fail;
			next->v[next->n++] = l;
		}
	}
	/*
	 * The ring's accepts already armed take descriptors before the
	 * master sees them: the reserve makes room for them.
	 */
	if (ring != NULL) {
		int armed = (int)next->n * URING_ACCEPTS;
		next->fd_high = next->fd_high - armed > next->fd_high / 2 ?
		    next->fd_high - armed : next->fd_high / 2;
	}
	return next;
fail:
	lset_free(next);
	return NULL;
}

int
lset_commit(struct lset *next, struct lset *cur)
{
	int rc = 0;

	next->paused = cur != NULL && cur->paused;
	next->budget = cur != NULL && cur->budget;
	next->pauses = cur != NULL ? cur->pauses : 0;
	next->pause_since_ms = cur != NULL ? cur->pause_since_ms : 0;
	next->pause_ms = cur != NULL ? cur->pause_ms : 0;
	/* The ring gives what it accepts on a kept socket to next now. */
	for (size_t i = 0; next->ring != NULL && i < next->n; i++)
		if (next->v[i]->from != NULL &&
		    uring_listen(next->ring, next->v[i]->fd, lset_ring_cb,
		    next->v[i], 0) == -1)
			log_warn("listener %s", next->v[i]->text);
	if (next->ring != NULL) {
		uring_on_round(next->ring, lset_round_cb, next);
		next->live = 1;
		if (cur != NULL)
			cur->live = 0;
	}
	/* What cur has and next does not take over closes now. */
	for (size_t i = 0; cur != NULL && i < cur->n; i++) {
		struct listener *l = cur->v[i];
		int kept = 0;
		for (size_t j = 0; j < next->n && !kept; j++)
			kept = next->v[j]->from == l;
		if (!kept)
			log_info("closing listener %s", l->text);
		else
			l->fd = -1;	/* next's now */
	}
	lset_free(cur);
	for (size_t i = 0; i < next->n; i++) {
		struct listener *l = next->v[i];
		if (l->from == NULL)
			log_info("frontend %s listening on %s", l->name,
			    l->text);
		l->from = NULL;		/* owned here from now on */
		if (!next->paused && listener_arm(l) == -1) {
			log_warn("listener %s", l->text);
			rc = -1;
		}
	}
	if (next->paused && next->resume_ev != NULL) {
		static const struct timeval now = { 0, 0 };
		evtimer_add(next->resume_ev, &now);
	}
	return rc;
}
