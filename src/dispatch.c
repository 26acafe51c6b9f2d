/* dispatch.c -- the master's one owner of accepted sockets (see dispatch.h) */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "dispatch_priv.h"
#include "log.h"
#include "stats.h"

/* Queues */

static int
dqueue_reserve(struct dqueue *q, size_t more)
{
	size_t cap = q->cap ? q->cap : 64;
	struct dsock *v;

	if (q->n + more <= q->cap)
		return 0;
	while (cap < q->n + more)
		cap *= 2;
	if ((v = realloc(q->v, cap * sizeof(*v))) == NULL)
		return -1;
	q->v = v;
	q->cap = cap;
	return 0;
}

static int
dqueue_push(struct dqueue *q, const struct dsock *s, size_t n)
{
	if (dqueue_reserve(q, n) == -1)
		return -1;
	memcpy(q->v + q->n, s, n * sizeof(*s));
	q->n += n;
	return 0;
}

/* Drop the first n entries: the caller has moved or closed them. */
static void
dqueue_shift(struct dqueue *q, size_t n)
{
	if (n == 0)
		return;
	memmove(q->v, q->v + n, (q->n - n) * sizeof(*q->v));
	q->n -= n;
}

void
dmove_free(struct dmove *mv)
{
	if (mv == NULL)
		return;
	for (size_t i = 0; i < sizeof(mv->fds) / sizeof(*mv->fds); i++)
		if (mv->fds[i] != -1)
			close(mv->fds[i]);
	free(mv);
}

/* The room lets go of s: every copy it holds is closed. */
void
dsock_close(struct dispatch *d, struct dsock *s)
{
	if (d != NULL && d->close_fn != NULL)
		d->close_fn(d->close_arg, s->fd);
	else
		close(s->fd);
	if (s->mv == NULL)
		return;
	dmove_free(s->mv);
	s->mv = NULL;
	if (d != NULL && d->moving > 0)
		d->moving--;
}

static void
dqueue_close(struct dispatch *d, struct dqueue *q)
{
	for (size_t i = 0; i < q->n; i++)
		dsock_close(d, &q->v[i]);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

/* Set up and tear down */

int
dispatch_init(struct dispatch *d, const struct config *cfg,
    dispatch_open_fn fn, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->open_fn = fn;
	d->open_arg = arg;
	d->counts.n = cfg->nfrontends;
	d->counts.accepted = calloc(cfg->nfrontends + 1, sizeof(uint64_t));
	d->counts.refused = calloc(cfg->nfrontends + 1, sizeof(uint64_t));
	if (d->counts.accepted == NULL || d->counts.refused == NULL) {
		dispatch_counts_free(&d->counts);
		return -1;
	}
	return 0;
}

void
dispatch_free(struct dispatch *d)
{
	for (size_t i = 0; i < d->nt; i++)
		dqueue_close(d, &d->t[i]->unacked);
	free(d->t);
	dqueue_close(d, &d->pend);
	dqueue_close(d, &d->held);
	dispatch_counts_free(&d->counts);
	memset(d, 0, sizeof(*d));
}

int
dtarget_init(struct dtarget *t, int chan, size_t nfe)
{
	memset(t, 0, sizeof(*t));
	t->chan = chan;
	t->nfe = nfe;
	if ((t->fe_sent = calloc(nfe + 1, sizeof(*t->fe_sent))) == NULL)
		return -1;
	return 0;
}

void
dtarget_free(struct dtarget *t)
{
	if (t->unacked.n > 0)
		log_warnx("dispatch: %zu sockets dropped with their target "
		    "(a bug)", t->unacked.n);
	dqueue_close(NULL, &t->unacked);
	free(t->fe_sent);
	memset(t, 0, sizeof(*t));
}

int
dispatch_attach(struct dispatch *d, struct dtarget *t)
{
	struct dtarget **v;

	if ((v = realloc(d->t, (d->nt + 1) * sizeof(*v))) == NULL)
		return -1;
	d->t = v;
	d->t[d->nt++] = t;
	return 0;
}

void
dispatch_detach(struct dispatch *d, struct dtarget *t)
{
	for (size_t i = 0; i < d->nt; i++)
		if (d->t[i] == t) {
			memmove(&d->t[i], &d->t[i + 1],
			    (d->nt - i - 1) * sizeof(*d->t));
			d->nt--;
			if (d->rr > i)
				d->rr--;
			break;
		}
	t->open = 0;
}

/* Accept and hold */

uint64_t
dispatch_pending(const struct dispatch *d, uint32_t fe)
{
	uint64_t n = 0;

	for (size_t i = 0; i < d->pend.n; i++)
		n += d->pend.v[i].frontend == fe;
	return n;
}

/* Connections of fe open or on their way: in workers, and pending. */
static uint64_t
dispatch_open(const struct dispatch *d, uint32_t fe)
{
	uint64_t n = dispatch_pending(d, fe);

	if (d->open_fn != NULL)
		n += d->open_fn(d->open_arg, fe);
	return n;
}

static int
dispatch_holding(const struct dispatch *d, uint32_t fe)
{
	for (size_t i = 0; i < d->held.n; i++)
		if (d->held.v[i].frontend == fe)
			return 1;
	return 0;
}

static void
dispatch_refuse(struct dispatch *d, struct dsock *s)
{
	if (s->mv != NULL)
		log_warnx("dispatch: a moving session of frontend %u closed",
		    s->frontend);
	dsock_close(d, s);
	if (s->frontend < d->counts.n)
		d->counts.refused[s->frontend]++;
}

int
dispatch_accept(struct dispatch *d, int fd, const struct sockaddr *sa,
    uint32_t fe, uint64_t now_ms)
{
	struct dsock s;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.frontend = fe;
	s.since_ms = now_ms;
	d->accepted++;
	if (fe < d->counts.n)
		d->counts.accepted[fe]++;
	if (fe >= d->cfg->nfrontends ||
	    chan_conn_set_peer(&s.c, sa) == -1) {
		dispatch_refuse(d, &s);
		return 0;
	}
	if (dispatch_holding(d, fe) ||
	    dispatch_open(d, fe) >= d->cfg->frontends[fe].max_connections) {
		if (d->held.n >= DISPATCH_HOLD_MAX ||
		    dqueue_push(&d->held, &s, 1) == -1)
			dispatch_refuse(d, &s);
		return 0;
	}
	if (dqueue_push(&d->pend, &s, 1) == -1) {
		dispatch_refuse(d, &s);
		return -1;
	}
	return d->pend.n >= DISPATCH_PENDING_MAX ? -1 : 0;
}

int
dispatch_move(struct dispatch *d, int fd, struct dmove *mv, uint32_t fe)
{
	struct dsock s;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.frontend = fe;
	s.c = mv->rec.conn;
	s.mv = mv;
	d->moving++;
	if (fe >= d->cfg->nfrontends || dqueue_push(&d->pend, &s, 1) == -1) {
		dsock_close(d, &s);
		return -1;
	}
	return 0;
}

size_t
dispatch_hold_tick(struct dispatch *d, uint64_t now_ms)
{
	size_t k = 0;

	for (size_t i = 0; i < d->held.n; i++) {
		struct dsock s = d->held.v[i];
		if (dispatch_open(d, s.frontend) <
		    d->cfg->frontends[s.frontend].max_connections) {
			if (dqueue_push(&d->pend, &s, 1) == 0)
				continue;
		} else if (now_ms - s.since_ms < DISPATCH_HOLD_MS) {
			d->held.v[k++] = s;
			continue;
		}
		dispatch_refuse(d, &s);
	}
	d->held.n = k;
	return k;
}

void
dispatch_close_queued(struct dispatch *d)
{
	for (size_t i = 0; i < d->pend.n; i++)
		dispatch_refuse(d, &d->pend.v[i]);
	for (size_t i = 0; i < d->held.n; i++)
		dispatch_refuse(d, &d->held.v[i]);
	d->pend.n = 0;
	d->held.n = 0;
}

/* Send */

/* Move s[0..n) to t's unacked queue (reserved), numbered from t->sent. */
static void
dispatch_sent(struct dtarget *t, struct dsock *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].frontend < t->nfe)
			t->fe_sent[s[i].frontend]++;
	(void)dqueue_push(&t->unacked, s, n);	/* reserved */
	t->sent += n;
}

/* A moving session, alone in a CHAN_SESSION message, numbered on t's. */
static int
dispatch_send_move(struct dtarget *t, struct dsock *s)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_session rec = s->mv->rec;
	int fds[4];
	size_t len, nfds = 1;

	if (dqueue_reserve(&t->unacked, 1) == -1)
		return -1;
	rec.conn.id = t->sent + 1;
	rec.conn.frontend = s->frontend;
	rec.server = s->mv->server;
	fds[0] = s->fd;
	for (size_t i = 0; i < 3; i++)
		if (s->mv->fds[i] != -1)
			fds[nfds++] = s->mv->fds[i];
	len = chan_encode(buf, sizeof(buf), CHAN_SESSION, &rec, 1);
	if (len == 0 || nfds != chan_session_nfds(&rec)) {
		errno = EINVAL;
		return -1;
	}
	if (chan_send(t->chan, buf, len, fds, nfds) == -1)
		return -1;
	s->c = rec.conn;
	dispatch_sent(t, s, 1);
	return 0;
}

int
dispatch_send_to(struct dispatch *d, struct dtarget *t, int fd,
    struct dmove *mv, uint32_t fe)
{
	struct dsock s;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.frontend = fe;
	s.mv = mv;
	if (fe >= d->cfg->nfrontends || t->gone || !t->open ||
	    dispatch_send_move(t, &s) == -1)
		return dispatch_move(d, fd, mv, fe);
	d->moving++;
	return 0;
}

int
dispatch_return(struct dispatch *d, struct dtarget *t, int fd,
    struct dmove *mv)
{
	struct dsock s;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.frontend = mv->rec.conn.frontend;
	s.mv = mv;
	mv->home = 1;
	mv->server = mv->rec.server;
	d->moving++;
	if (t->gone || dispatch_send_move(t, &s) == -1) {
		dsock_close(d, &s);
		return -1;
	}
	return 0;
}

/*
 * Send s[0..n) to t in one message, numbered on t's channel. On success
 * they move to t's unacked queue (room is made first, so that cannot
 * fail after the send); on failure they stay where they were.
 */
static int
dispatch_send(struct dtarget *t, struct dsock *s, size_t n)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_conn recs[CHAN_MAX_FDS];
	int fds[CHAN_MAX_FDS];
	size_t len;

	if (s[0].mv != NULL)
		return dispatch_send_move(t, s);
	if (dqueue_reserve(&t->unacked, n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		recs[i] = s[i].c;
		recs[i].id = t->sent + 1 + i;
		recs[i].frontend = s[i].frontend;
		fds[i] = s[i].fd;
	}
	len = chan_encode(buf, sizeof(buf), CHAN_CONN, recs, n);
	if (len == 0) {
		errno = EINVAL;
		return -1;
	}
	if (chan_send(t->chan, buf, len, fds, n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		s[i].c = recs[i];
	dispatch_sent(t, s, n);
	return 0;
}

/* Of the first n of s, how many go in one message: a moving session goes
 * alone, accepted sockets together up to the next one. */
static size_t
dispatch_batch(const struct dsock *s, size_t n)
{
	size_t k = 0;

	if (s[0].mv != NULL)
		return 1;
	while (k < n && s[k].mv == NULL)
		k++;
	return k;
}

static uint64_t
dtarget_load(const struct dtarget *t)
{
	return t->sent > t->closed ? t->sent - t->closed : 0;
}

/*
 * The next target in turn that is open and not full, or with leastconn
 * the least loaded such target (the next in turn among ties). NULL when
 * none.
 */
static struct dtarget *
dispatch_pick(struct dispatch *d)
{
	int least = d->cfg->dispatch == DISPATCH_LEASTCONN;
	struct dtarget *best = NULL;
	size_t at = 0;

	for (size_t k = 0; k < d->nt; k++) {
		size_t i = (d->rr + k) % d->nt;
		struct dtarget *t = d->t[i];
		if (!t->open || t->full || t->gone ||
		    (d->target_cap > 0 && dtarget_load(t) >= d->target_cap))
			continue;
		if (best == NULL || (least && dtarget_load(t) <
		    dtarget_load(best))) {
			best = t;
			at = i;
		}
		if (!least)
			break;
	}
	if (best != NULL)
		d->rr = at + 1;
	return best;
}

size_t
dispatch_run(struct dispatch *d)
{
	size_t left = 0, done = 0;
	struct dtarget *t;

	for (size_t i = 0; i < d->nt; i++) {
		d->t[i]->full = 0;
		left += d->t[i]->open && !d->t[i]->gone;
	}
	while (done < d->pend.n && (t = dispatch_pick(d)) != NULL) {
		size_t share = 1, room;

		/*
		 * An equal share among the targets not yet tried this round,
		 * rounded down: the remainder goes to the next in turn, so
		 * odd batches do not favour one worker.
		 */
		if (d->cfg->dispatch != DISPATCH_LEASTCONN &&
		    (share = (d->pend.n - done) / (left > 0 ? left : 1)) == 0)
			share = 1;
		if (left > 0)
			left--;
		if (share > CHAN_MAX_FDS)
			share = CHAN_MAX_FDS;
		room = d->target_cap > 0 ? d->target_cap - dtarget_load(t) :
		    share;
		if (share > room)
			share = room;
		share = dispatch_batch(&d->pend.v[done], share);
		if (dispatch_send(t, &d->pend.v[done], share) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				t->open = 0;	/* reads no more: its owner
						   learns why */
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS)
				log_warn("dispatch: channel %d", t->chan);
			t->full = 1;
			continue;
		}
		done += share;
	}
	dqueue_shift(&d->pend, done);
	return d->pend.n;
}

/* Acknowledge and take back */

int
dispatch_ack(struct dispatch *d, struct dtarget *t, uint64_t upto)
{
	size_t n;

	(void)d;
	if (upto <= t->acked)
		return 0;	/* late or repeated: already done */
	if (upto > t->sent || t->gone)
		return -1;
	n = (size_t)(upto - t->acked);
	for (size_t i = 0; i < n; i++) {
		if (t->unacked.v[i].c.id != t->acked + 1 + i)
			fatalx("dispatch: channel %d: id %llu where %llu was "
			    "due", t->chan,
			    (unsigned long long)t->unacked.v[i].c.id,
			    (unsigned long long)(t->acked + 1 + i));
		dsock_close(d, &t->unacked.v[i]);
	}
	dqueue_shift(&t->unacked, n);
	t->acked = upto;
	return 0;
}

size_t
dispatch_take_back(struct dispatch *d, struct dtarget *t, int closing)
{
	struct dqueue *q = &t->unacked;
	size_t moved = 0;

	t->gone = 1;
	t->open = 0;
	for (size_t i = 0; i < q->n; i++)
		if (q->v[i].c.frontend < t->nfe &&
		    t->fe_sent[q->v[i].c.frontend] > 0)
			t->fe_sent[q->v[i].c.frontend]--;
	if (q->n == 0)
		return 0;
	if (closing || dqueue_reserve(&d->pend, q->n) == -1) {
		for (size_t i = 0; i < q->n; i++)
			dispatch_refuse(d, &q->v[i]);
		q->n = 0;
		return 0;
	}
	/* Oldest first, ahead of what was accepted since. */
	memmove(d->pend.v + q->n, d->pend.v, d->pend.n * sizeof(*d->pend.v));
	for (size_t i = 0; i < q->n; i++) {
		if (q->v[i].frontend >= d->cfg->nfrontends ||
		    (q->v[i].mv != NULL && q->v[i].mv->home)) {
			dispatch_refuse(d, &q->v[i]);	/* frontend removed */
			continue;
		}
		d->pend.v[moved++] = q->v[i];
	}
	if (moved < q->n && d->pend.n > 0)
		memmove(d->pend.v + moved, d->pend.v + q->n,
		    d->pend.n * sizeof(*d->pend.v));
	d->pend.n += moved;
	d->redispatched += moved;
	q->n = 0;
	return moved;
}
