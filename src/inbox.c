/* inbox.c -- a worker's end of the channel: messages in, sockets taken */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "inbox.h"
#include "log.h"
#include "net.h"


/*
 * The hand-off, the worker's side. The master keeps its copy of every
 * socket it sends until the worker acknowledges it (CHAN_ACK, cumulative:
 * the id of the last socket received on this channel). So a socket is
 * the worker's only once its acknowledgement is out, and no session
 * starts before that; a socket closed unacknowledged (discarded, or held
 * at exit) is still the master's to hand to another worker.
 */

static void
inbox_stop(struct inbox *in)
{
	in->stopped = 1;
	event_del(in->ev);
}

/*
 * Check the sockets of a CHAN_CONN message, received but not yet taken.
 * The master numbers them on this channel 1, 2, 3... in the order sent,
 * so "the last id received" is how many were taken: a record out of that
 * order is garbage (-1). One for a frontend we do not have is closed (and
 * acknowledged).
 */
static int
inbox_conns(struct inbox *in, const struct chan_msg *m, int *fds)
{
	for (size_t i = 0; i < m->count; i++) {
		if (m->conns[i].id == in->last_id + 1 + i)
			continue;
		log_warnx("worker %d: bad message from master: socket %llu "
		    "where %llu was due", in->id,
		    (unsigned long long)m->conns[i].id,
		    (unsigned long long)(in->last_id + 1 + i));
		return -1;
	}
	for (size_t i = 0; i < m->count; i++) {
		if (m->conns[i].frontend < in->nfrontends)
			continue;
		log_warnx("worker %d: socket for unknown frontend %u", in->id,
		    m->conns[i].frontend);
		close(fds[i]);
		fds[i] = -1;
	}
	in->last_id += m->count;
	return 0;
}

/*
 * A live session, numbered like the sockets of CHAN_CONN. One whose
 * frontend or server this configuration does not have is closed (and
 * acknowledged): the master never sends such a one.
 */
static int
inbox_session(struct inbox *in, const struct chan_msg *m, int *fds,
    size_t *nfds)
{
	const struct chan_session *cs = m->session;

	if (cs->conn.id != in->last_id + 1) {
		log_warnx("worker %d: bad message from master: session %llu "
		    "where %llu was due", in->id,
		    (unsigned long long)cs->conn.id,
		    (unsigned long long)(in->last_id + 1));
		return -1;
	}
	in->last_id++;
	if (cs->conn.frontend < in->nfrontends && (cs->server <
	    in->nservers || cs->server == CHAN_NO_SERVER))
		return 0;
	log_warnx("worker %d: session for unknown frontend %u or server %u "
	    "closed", in->id, cs->conn.frontend, cs->server);
	for (size_t i = 0; i < *nfds; i++)
		close(fds[i]);
	*nfds = 0;
	return 0;
}

/*
 * Message k of the batch: decoded into msgs[k] and acted on, but for the
 * sockets of a CHAN_CONN, which wait for their acknowledgement. Returns -1
 * if the channel must be cut (its descriptors are closed then).
 */
static int
inbox_dispatch(struct inbox *in, int k)
{
	struct chan_batch *b = in->batch;
	struct chan_msg *m = &in->msgs[k];
	char err[128];

	if (chan_decode(b->data[k], (size_t)b->len[k], b->nfds[k], m, err,
	    sizeof(err)) == -1) {
		log_warnx("worker %d: bad message from master: %s", in->id,
		    err);
		chan_batch_close(b, k, k + 1);
		return -1;
	}
	switch (m->type) {
	case CHAN_CONN:
		if (inbox_conns(in, m, b->fds[k]) == 0)
			return 0;
		break;
	case CHAN_SESSION:
		if (inbox_session(in, m, b->fds[k], &b->nfds[k]) == 0)
			return 0;
		break;
	case CHAN_HANDOVER:
		if (in->ops->handover(in->arg, m->words, m->count) == 0)
			return 0;
		log_warnx("worker %d: bad hand-over request from master",
		    in->id);
		break;
	case CHAN_DRAIN:
		in->ops->drain(in->arg, "master asked");
		return 0;
	case CHAN_SERVER:
		if (in->ops->servers(in->arg, m->servers, m->count) == 0)
			return 0;
		log_warnx("worker %d: state of a server it does not know",
		    in->id);
		break;
	case CHAN_SRVDEF:
		if (in->ops->srvdefs(in->arg, m->srvdefs, m->count) == 0)
			return 0;
		log_warnx("worker %d: cannot add a server where the master "
		    "did", in->id);
		break;
	case CHAN_LOGFD:
		b->nfds[k] = 0;		/* the log's now */
		if (log_adopt_fd(b->fds[k][0]) == -1)
			log_warn("worker %d: new log file", in->id);
		return 0;
	default:
		log_warnx("worker %d: unexpected message type %d", in->id,
		    m->type);
		break;
	}
	m->type = 0;		/* nothing in it is taken */
	chan_batch_close(b, k, k + 1);
	return -1;
}

/*
 * Act on a batch of n messages; the sockets received stay held in it.
 * Returns 0, 1 at end of file, -1 on garbage; either way the messages
 * after the last one acted on are closed.
 */
static int
inbox_batch(struct inbox *in, int n)
{
	struct chan_batch *b = in->batch;
	int k, rc = 0;

	for (k = 0; k < n && rc == 0; k++) {
		in->msgs[k].type = 0;
		if (b->len[k] == -1)
			log_warnx("worker %d: a message from the master came "
			    "without its descriptors (is the open file limit "
			    "reached?): taking no more sockets", in->id);
		if (b->len[k] <= 0)
			rc = b->len[k] == 0 ? 1 : -1;
		else if (inbox_dispatch(in, k) == -1)
			rc = -1;
	}
	chan_batch_close(b, k, n);
	in->held = k;
	return rc;
}

/* The held sockets are acknowledged: hand them over. */
static void
inbox_release(struct inbox *in)
{
	struct chan_batch *b = in->batch;
	struct addr a;

	for (int k = 0; k < in->held; k++) {
		const struct chan_msg *m = &in->msgs[k];
		if (m->type == CHAN_SESSION && b->nfds[k] > 0)
			in->ops->session(in->arg, m->session, b->fds[k],
			    b->nfds[k]);
		if (m->type == CHAN_SESSION)
			b->nfds[k] = 0;
		if (m->type != CHAN_CONN)
			continue;
		for (size_t i = 0; i < m->count; i++) {
			const struct chan_conn *c = &m->conns[i];
			if (b->fds[k][i] == -1)
				continue;
			a.len = chan_conn_peer(c, &a.ss);
			in->ops->take(in->arg, b->fds[k][i], c->frontend, &a,
			    c->id);
		}
		b->nfds[k] = 0;
	}
	in->held = 0;
}

/*
 * Acknowledge what was received and hand it over, or, when the channel is
 * full, hold it and read no more until the acknowledgement is out.
 */
static void
inbox_take(struct inbox *in)
{
	outbox_ack(&in->out, in->last_id);
	if (outbox_acked(&in->out))
		inbox_release(in);
	else if (in->held > 0)
		event_del(in->ev);
}

/* The outbox sent what waited: hand over what it acknowledged, read on. */
static void
inbox_sent(void *arg)
{
	struct inbox *in = arg;

	if (in->held > 0 && outbox_acked(&in->out)) {
		inbox_release(in);
		if (!in->stopped && event_add(in->ev, NULL) == -1) {
			log_warn("worker %d: channel", in->id);
			inbox_stop(in);
		}
	}
	in->ops->settled(in->arg);
}

void
inbox_goodbye(struct inbox *in, const char *why)
{
	if (in->discarding)
		return;
	in->discarding = 1;
	outbox_ack(&in->out, in->last_id);
	outbox_bye(&in->out);
	in->ops->drain(in->arg, why);
}

static void
inbox_master_gone(struct inbox *in)
{
	inbox_stop(in);
	in->ops->drain(in->arg, "master gone");
}

/*
 * After BYE: close every descriptor that arrives, unread and not
 * acknowledged (the master still owns those and hands them on).
 */
static void
inbox_discard(struct inbox *in, int n)
{
	struct chan_batch *b = in->batch;
	size_t fds = 0;
	int eof = 0;

	for (int k = 0; k < n; k++) {
		fds += b->nfds[k];
		eof |= b->len[k] == 0;
	}
	chan_batch_close(b, 0, n);
	if (fds > 0)
		log_info("worker %d: closed %zu sockets it did not take",
		    in->id, fds);
	if (eof)
		inbox_master_gone(in);
}

static void
inbox_receive(struct inbox *in, int n)
{
	int rc;

	if (in->discarding) {
		inbox_discard(in, n);
		return;
	}
	rc = inbox_batch(in, n);
	inbox_take(in);
	if (rc == -1)
		inbox_goodbye(in, "garbage from master");
	else if (rc == 1)
		inbox_master_gone(in);
}

static void
inbox_read_failed(struct inbox *in)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return;
	if (errno == ECONNRESET) {
		inbox_master_gone(in);
		return;
	}
	log_warn("worker %d: channel", in->id);
	inbox_stop(in);
	inbox_goodbye(in, "channel error");
}

static void
inbox_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct inbox *in = arg;
	int n = CHAN_BATCH;

	/* A batch that is not full emptied the channel: stop there. */
	for (int i = 0; i < CHAN_READS && n == CHAN_BATCH; i += n) {
		if (in->stopped || in->held > 0)
			break;
		if ((n = chan_recv_batch(fd, in->batch)) == -1) {
			inbox_read_failed(in);
			break;
		}
		inbox_receive(in, n);
	}
	in->ops->settled(in->arg);
}

int
inbox_init(struct inbox *in, struct event_base *base, int fd, int id,
    uint32_t nfrontends, uint32_t nservers, const struct inbox_ops *ops,
    void *arg)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->id = id;
	in->nfrontends = nfrontends;
	in->nservers = nservers;
	in->ops = ops;
	in->arg = arg;
	if ((in->batch = malloc(sizeof(*in->batch))) == NULL ||
	    outbox_init(&in->out, base, fd, inbox_sent, in) == -1 ||
	    (in->ev = event_new(base, fd, EV_READ | EV_PERSIST, inbox_read_cb,
	    in)) == NULL || event_add(in->ev, NULL) == -1)
		return -1;
	return 0;
}

/*
 * At exit, close unread whatever is still queued (the master has its
 * copies): a channel closed with messages unread makes the master's next
 * read fail with ECONNRESET before it has read our last words.
 */
static void
inbox_drop_rest(struct inbox *in)
{
	int n = CHAN_BATCH;

	for (int i = 0; i < CHAN_READS && n == CHAN_BATCH; i += n) {
		if ((n = chan_recv_batch(in->fd, in->batch)) == -1)
			return;
		chan_batch_close(in->batch, 0, n);
	}
}

void
inbox_free(struct inbox *in)
{
	if (in->batch != NULL) {
		chan_batch_close(in->batch, 0, in->held);
		if (!in->stopped)
			inbox_drop_rest(in);
	}
	free(in->batch);
	in->batch = NULL;
	in->held = 0;
	if (in->ev != NULL)
		event_free(in->ev);
	in->ev = NULL;
	outbox_free(&in->out);
}

int
inbox_idle(const struct inbox *in)
{
	return in->held == 0 && outbox_empty(&in->out);
}
