/* uring.c -- the master's io_uring: accepts and closes in batches */
#include "ac_config.h"

#include <sys/socket.h>
#include <sys/utsname.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <liburing.h>

#include "log.h"
#include "uring.h"

#define UR_ENTRIES	256	/* submission queue */
#define UR_CQ_ENTRIES	4096	/* completions: a burst of accepts */
#define UR_SETTLE_MS	1000	/* a cancel not done by then: give up */
#define UR_MIN_MAJOR	5	/* cancel by fd, skipped completions */
#define UR_MIN_MINOR	19

/*
 * What a request is, in its user_data: kind, slot generation, slot index
 * and, for an accept, which of the slot's requests (low 8 bits).
 */
enum { UR_ACCEPT = 1, UR_CLOSE, UR_CANCEL };

#define UR_UD(kind, gen, idx) ((uint64_t)(kind) << 56 | \
	    (uint64_t)((gen) & 0xffffffU) << 32 | (uint32_t)(idx))
#define UR_KIND(ud)	((int)((ud) >> 56))
#define UR_GEN(ud)	((uint32_t)((ud) >> 32) & 0xffffffU)
#define UR_IDX(ud)	((uint32_t)(ud))
#define UR_SLOT(ud)	(UR_IDX(ud) >> 8)
#define UR_REQ(ud)	(UR_IDX(ud) & 0xffU)

/* One accept request: the kernel writes the peer here. */
struct uacc {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 busy;	/* in the kernel */
};

/* One listener's accepts. */
struct uslot {
	uint32_t	 idx;		/* in the ring's table */
	int		 lfd;		/* -1: free */
	uint32_t	 gen;		/* of this use of the slot */
	uring_accept_fn	 fn;
	void		*arg;
	int		 armed;		/* requests in the kernel */
	int		 want;		/* they should be */
	int		 cancelled;	/* a cancel is on its way */
	int		 forget;	/* free once the kernel is done */
	int		 err;		/* accepts stopped: to tell fn */
	struct uacc	 acc[URING_ACCEPTS];
};

/* A socket accepted and not yet given to its listener. */
struct parked {
	int			 fd;
	uint32_t		 slot;
	uint32_t		 gen;
	socklen_t		 len;
	struct sockaddr_storage	 ss;
};

struct uring {
	struct io_uring	 ring;
	struct event	*ev;		/* the ring has completions */
	struct event	*kick;		/* submit at the end of this round */
	int		 kicked;
	int		 in_round;
	int		 settling;
	struct uslot	**slots;	/* each its own: the kernel writes
					   into them */
	size_t		 nslots;
	struct parked	*park;
	size_t		 npark;
	size_t		 cappark;
	uint32_t	 gen;
	uring_round_fn	 round_fn;
	void		*round_arg;
	struct uring_stats st;
};

/* Requests */

static void
ur_submit(struct uring *u)
{
	int rc;

	if (io_uring_sq_ready(&u->ring) == 0)
		return;
	do
		rc = io_uring_submit(&u->ring);
	while (rc == -EINTR);
	if (rc < 0)
		log_warnx("io_uring: submit: %s", strerror(-rc));
	u->st.submits++;
}

/* A free submission entry: the queue is submitted when full. */
static struct io_uring_sqe *
ur_sqe(struct uring *u)
{
	struct io_uring_sqe *sqe;

	if ((sqe = io_uring_get_sqe(&u->ring)) == NULL) {
		ur_submit(u);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void
ur_kick(struct uring *u)
{
	if (u->in_round || u->kicked || u->kick == NULL)
		return;
	u->kicked = 1;
	event_active(u->kick, EV_READ, 0);
}

/* Arm every request of sl not in the kernel; -1 if none could be. */
static int
ur_arm(struct uring *u, struct uslot *sl)
{
	struct io_uring_sqe *sqe;
	uint32_t idx = sl->idx;

	if (sl->cancelled)
		return 0;	/* armed again once the cancel is through */
	for (uint32_t j = 0; j < URING_ACCEPTS; j++) {
		struct uacc *a = &sl->acc[j];
		if (a->busy)
			continue;
		if ((sqe = ur_sqe(u)) == NULL)
			return sl->armed > 0 ? 0 : -1;
		a->len = sizeof(a->ss);
		io_uring_prep_accept(sqe, sl->lfd, (struct sockaddr *)&a->ss,
		    &a->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, UR_UD(UR_ACCEPT, sl->gen,
		    idx << 8 | j));
		a->busy = 1;
		sl->armed++;
		u->st.armed++;
	}
	ur_kick(u);
	return 0;
}

static void
ur_cancel(struct uring *u, struct uslot *sl)
{
	struct io_uring_sqe *sqe;

	if (sl->armed == 0 || sl->cancelled || (sqe = ur_sqe(u)) == NULL)
		return;
	/* Only accepts are ever asked of a listening socket. */
	io_uring_prep_cancel_fd(sqe, sl->lfd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, UR_UD(UR_CANCEL, 0, 0));
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	sl->cancelled = 1;
}

/* Completions */

static struct uslot *
ur_slot(struct uring *u, uint64_t ud)
{
	uint32_t idx = UR_SLOT(ud);

	if (idx >= u->nslots || u->slots[idx]->lfd == -1 ||
	    u->slots[idx]->gen != UR_GEN(ud) || UR_REQ(ud) >= URING_ACCEPTS)
		return NULL;
	return u->slots[idx];
}

static void
ur_park(struct uring *u, int fd, uint64_t ud, const struct uacc *a)
{
	struct parked *p;

	if (u->npark == u->cappark) {
		size_t cap = u->cappark ? 2 * u->cappark : 64;
		struct parked *v = realloc(u->park, cap * sizeof(*v));
		if (v == NULL) {
			log_warnx("io_uring: out of memory: connection "
			    "closed");
			close(fd);
			return;
		}
		u->park = v;
		u->cappark = cap;
	}
	p = &u->park[u->npark++];
	p->fd = fd;
	p->slot = UR_SLOT(ud);
	p->gen = UR_GEN(ud);
	p->len = 0;
	memset(&p->ss, 0, sizeof(p->ss));
	if (a != NULL && a->len <= sizeof(p->ss)) {
		p->len = a->len;
		memcpy(&p->ss, &a->ss, a->len);
	}
}

static void
ur_complete(struct uring *u, uint64_t ud, int res, unsigned flags)
{
	struct uslot *sl;

	switch (UR_KIND(ud)) {
	case UR_CLOSE:
		if (res < 0)
			log_warnx("io_uring: close %u: %s", UR_IDX(ud),
			    strerror(-res));
		return;
	case UR_CANCEL:
		return;		/* not found: it had ended already */
	case UR_ACCEPT:
		break;
	default:
		log_warnx("io_uring: unknown completion %llx",
		    (unsigned long long)ud);
		return;
	}
	(void)flags;
	if ((sl = ur_slot(u, ud)) != NULL) {
		sl->acc[UR_REQ(ud)].busy = 0;
		sl->armed--;
		if (sl->armed == 0)
			sl->cancelled = 0;
	}
	if (res >= 0) {
		u->st.accepted++;	/* a stale slot's: closed later */
		ur_park(u, res, ud, sl != NULL ? &sl->acc[UR_REQ(ud)] : NULL);
		return;
	}
	if (sl == NULL || res == -ECANCELED || res == -EINTR ||
	    res == -ECONNABORTED || res == -EAGAIN)
		return;		/* armed again in this round, if wanted */
	sl->want = 0;
	sl->err = -res;
}

/* Take every completion there is; accepted sockets are parked. */
static void
ur_reap(struct uring *u)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&u->ring, cqe);
		ur_complete(u, ud, res, flags);
	}
}

/* Give parked sockets to their listeners (a forgotten one's close). */
static void
ur_deliver(struct uring *u)
{
	for (size_t i = 0; i < u->npark; i++) {
		struct parked p = u->park[i];
		struct uslot *sl = p.slot < u->nslots ? u->slots[p.slot] :
		    NULL;

		if (sl == NULL || sl->lfd == -1 || sl->gen != p.gen ||
		    sl->forget || sl->fn == NULL || p.len == 0)
			close(p.fd);
		else
			sl->fn(sl->arg, p.fd, (struct sockaddr *)&p.ss, 0);
	}
	u->npark = 0;
	for (size_t i = 0; i < u->nslots; i++) {
		struct uslot *sl = u->slots[i];
		int err = sl->err;

		if (sl->lfd == -1 || err == 0)
			continue;
		sl->err = 0;
		if (!sl->forget && sl->fn != NULL)
			sl->fn(sl->arg, -1, NULL, err);
	}
}

static void
ur_rearm(struct uring *u)
{
	for (size_t i = 0; i < u->nslots; i++) {
		struct uslot *sl = u->slots[i];
		if (sl->lfd != -1 && sl->want && sl->armed < URING_ACCEPTS) {
			if (ur_arm(u, sl) == -1)
				log_warnx("io_uring: cannot arm an accept");
		}
	}
}

static void
ur_round(struct uring *u)
{
	u->in_round = 1;
	ur_reap(u);
	ur_deliver(u);
	ur_rearm(u);
	if (u->round_fn != NULL)
		u->round_fn(u->round_arg);
	ur_deliver(u);	/* what a settle during the round parked */
	ur_submit(u);
	u->in_round = 0;
}

static void
ur_ring_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ur_round(arg);
}

static void
ur_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct uring *u = arg;

	(void)fd;
	(void)what;
	u->kicked = 0;
	if (u->npark > 0)
		ur_round(u);
	else
		ur_submit(u);
}

/* Set up and tear down */

static int
ur_kernel_ok(char *why, size_t whylen)
{
	struct utsname un;
	int major = 0, minor = 0;

	if (uname(&un) == -1 || sscanf(un.release, "%d.%d", &major, &minor) !=
	    2) {
		snprintf(why, whylen, "the kernel version is unknown");
		return 0;
	}
	if (major > UR_MIN_MAJOR || (major == UR_MIN_MAJOR &&
	    minor >= UR_MIN_MINOR))
		return 1;
	snprintf(why, whylen, "Linux %d.%d is older than %d.%d", major, minor,
	    UR_MIN_MAJOR, UR_MIN_MINOR);
	return 0;
}

struct uring *
uring_new(struct event_base *base, char *why, size_t whylen)
{
	struct io_uring_params p;
	struct uring *u;
	int rc;

	if (!ur_kernel_ok(why, whylen))
		return NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	memset(&p, 0, sizeof(p));
	/*
	 * COOP_TASKRUN: an accept finishing while the master runs does not
	 * interrupt it; its completion waits for the master's next system
	 * call. (5.19, like the rest. DEFER_TASKRUN was tried: woken
	 * through a registered eventfd, the master slept 10-30 ms at a time
	 * with connections waiting on this kernel, 6.18.)
	 */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
	    IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = UR_CQ_ENTRIES;
	if ((rc = io_uring_queue_init_params(UR_ENTRIES, &u->ring, &p)) < 0) {
		snprintf(why, whylen, "io_uring_setup: %s", strerror(-rc));
		free(u);
		return NULL;
	}
	/* Workers are forked: the ring's memory stays with the master. */
	(void)io_uring_ring_dontfork(&u->ring);
	u->ev = event_new(base, u->ring.ring_fd, EV_READ | EV_PERSIST,
	    ur_ring_cb, u);
	u->kick = event_new(base, -1, 0, ur_kick_cb, u);
	if (u->ev == NULL || u->kick == NULL || event_add(u->ev, NULL) == -1) {
		snprintf(why, whylen, "out of memory");
		uring_free(u);
		return NULL;
	}
	return u;
}

void
uring_free(struct uring *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i]->lfd != -1)
			uring_unlisten(u, u->slots[i]->lfd, 1);
	ur_submit(u);
	ur_reap(u);
	for (size_t i = 0; i < u->npark; i++)
		close(u->park[i].fd);
	if (u->ev != NULL)
		event_free(u->ev);
	if (u->kick != NULL)
		event_free(u->kick);
	io_uring_queue_exit(&u->ring);
	free(u->park);
	for (size_t i = 0; i < u->nslots; i++)
		free(u->slots[i]);
	free(u->slots);
	free(u);
}

void
uring_on_round(struct uring *u, uring_round_fn fn, void *arg)
{
	u->round_fn = fn;
	u->round_arg = arg;
}

/* Listeners */

static struct uslot *
ur_find(struct uring *u, int lfd)
{
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i]->lfd == lfd)
			return u->slots[i];
	return NULL;
}

static struct uslot *
ur_new_slot(struct uring *u, int lfd)
{
	struct uslot *sl = NULL, **v;

	/* A free slot the kernel has nothing of any more, or a new one. */
	for (size_t i = 0; i < u->nslots && sl == NULL; i++)
		if (u->slots[i]->lfd == -1 && u->slots[i]->armed == 0)
			sl = u->slots[i];
	if (sl == NULL) {
		if ((v = realloc(u->slots, (u->nslots + 1) * sizeof(*v))) ==
		    NULL)
			return NULL;
		u->slots = v;
		if ((sl = malloc(sizeof(*sl))) == NULL)
			return NULL;
		sl->idx = (uint32_t)u->nslots;
		u->slots[u->nslots++] = sl;
	}
	memset(sl->acc, 0, sizeof(sl->acc));
	sl->fn = NULL;
	sl->arg = NULL;
	sl->armed = sl->want = sl->cancelled = sl->forget = sl->err = 0;
	sl->lfd = lfd;
	sl->gen = ++u->gen & 0xffffffU;
	return sl;
}

int
uring_listen(struct uring *u, int lfd, uring_accept_fn fn, void *arg,
    int arm)
{
	struct uslot *sl = ur_find(u, lfd);

	if (sl == NULL && (sl = ur_new_slot(u, lfd)) == NULL)
		return -1;
	sl->fn = fn;
	sl->arg = arg;
	sl->forget = 0;
	if (!arm)
		return 0;
	sl->want = 1;
	sl->err = 0;
	return ur_arm(u, sl);
}

static int
ur_unsettled(const struct uring *u)
{
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i]->lfd != -1 && u->slots[i]->armed > 0 &&
		    !u->slots[i]->want)
			return 1;
	return 0;
}

static uint64_t
ur_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until every cancelled accept is over in the kernel. */
static void
ur_settle(struct uring *u)
{
	uint64_t deadline = ur_now_ms() + UR_SETTLE_MS;

	u->settling = 1;
	while (ur_unsettled(u)) {
		struct __kernel_timespec ts = { 0, 50 * 1000000 };
		struct io_uring_cqe *cqe;
		int rc;

		rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
		    NULL);
		u->st.submits++;
		if (rc < 0 && rc != -ETIME && rc != -EINTR) {
			log_warnx("io_uring: wait: %s", strerror(-rc));
			break;
		}
		ur_reap(u);
		if (ur_now_ms() > deadline) {
			log_warnx("io_uring: an accept would not stop");
			break;
		}
	}
	u->settling = 0;
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i]->lfd != -1 && u->slots[i]->forget)
			u->slots[i]->lfd = -1;	/* late ones: stale, closed */
	if (u->npark > 0)
		ur_kick(u);
}

void
uring_unlisten(struct uring *u, int lfd, int forget)
{
	struct uslot *sl = ur_find(u, lfd);

	if (sl == NULL)
		return;
	sl->want = 0;
	if (forget)
		sl->forget = 1;
	ur_cancel(u, sl);
	if (!u->settling)
		ur_settle(u);
}

/* Closes */

void
uring_close(struct uring *u, int fd)
{
	struct io_uring_sqe *sqe;

	if ((sqe = ur_sqe(u)) == NULL) {
		close(fd);
		return;
	}
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, UR_UD(UR_CLOSE, 0, (uint32_t)fd));
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	u->st.closed++;
	ur_kick(u);
}

void
uring_submit(struct uring *u)
{
	if (u != NULL)
		ur_submit(u);
}

void
uring_get_stats(const struct uring *u, struct uring_stats *st)
{
	if (u == NULL)
		memset(st, 0, sizeof(*st));
	else
		*st = u->st;
}
