/* relay.c -- the byte-moving core: both ways, backpressure, half-close */
#include "ac_config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "relay.h"
#include "tls.h"

#define PUMP_ROUNDS	16	/* reads per direction per wake-up: fairness */

/*
 * Keep what dst did not take in a pooled buffer, after what waits there
 * already (a PROXY header before a passed-through ClientHello): at most
 * RELAY_BUF_SIZE in all, else -1 with ENOBUFS.
 */
static int
relay_keep(struct relay_pool *p, struct relay_half *h, const char *data,
    size_t n)
{
	struct rbuf *b = h->buf;

	if (n == 0)
		return 0;
	if (b != NULL && b->len - b->off + n > RELAY_BUF_SIZE) {
		errno = ENOBUFS;
		return -1;
	}
	if (b == NULL && (b = h->buf = rpool_buf_get(p)) == NULL)
		return -1;
	if (b->len + n > RELAY_BUF_SIZE) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	memcpy(b->data + b->len, data, n);
	b->len += (unsigned)n;
	return 0;
}

void
relay_init(struct relay *r, struct relay_pool *pool, int fd)
{
	memset(r, 0, sizeof(*r));
	r->pool = pool;
	r->client.fd = fd;
	r->server.fd = -1;
}

void
relay_side_close(struct relay_side *sd)
{
	if (sd->fd == -1)
		return;
	event_del(&sd->ev);
	close(sd->fd);
	sd->fd = -1;
}

static void
relay_half_free(struct relay_pool *pool, struct relay_half *h)
{
	if (h->buf != NULL)
		rpool_buf_put(pool, h->buf);
	if (h->pipe != NULL && h->inpipe == 0)
		rpool_pipe_put(pool, h->pipe);
	else if (h->pipe != NULL)
		rpool_pipe_discard(pool, h->pipe);
	h->buf = NULL;
	h->pipe = NULL;
}

void
relay_free(struct relay *r)
{
	relay_side_close(&r->client);
	relay_side_close(&r->server);
	relay_half_free(r->pool, &r->up);
	relay_half_free(r->pool, &r->down);
}

/* The TLS session of one side, or NULL for plain TCP. */
static SSL *
relay_ssl(const struct relay *r, const struct relay_side *sd)
{
	return sd == &r->client ? r->ssl : r->server_ssl;
}

static int
relay_send(struct relay *r, struct relay_side *dst, const char *p, size_t n,
    size_t *sent)
{
	ssize_t k;

	*sent = 0;
	if (!dst->writable)
		return 0;
	if (relay_ssl(r, dst) != NULL) {
		int want_read;
		k = tls_write(relay_ssl(r, dst), p, n, &want_read);
	} else {
		do
			k = send(dst->fd, p, n, MSG_NOSIGNAL);
		while (k == -1 && errno == EINTR);
	}
	if (k == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			dst->writable = 0;
			return 0;
		}
		return -1;
	}
	*sent = (size_t)k;
	if ((size_t)k < n)
		dst->writable = 0;	/* buffer full: wait for the edge */
	return 0;
}

int
relay_queue(struct relay *r, const char *p, size_t n)
{
	size_t sent;

	if (r->up.buf != NULL)		/* behind what waits already */
		return relay_keep(r->pool, &r->up, p, n);
	r->server.writable = 1;
	if (relay_send(r, &r->server, p, n, &sent) == -1)
		return -1;
	return relay_keep(r->pool, &r->up, p + sent, n - sent);
}

/*
 * Write what the half holds (a buffer or a pipe) to dst. Returns 1 when
 * nothing is left, 0 when dst would block, -1 on error.
 */
static int
relay_flush(struct relay *r, struct relay_half *h, struct relay_side *dst,
    uint64_t *count_out)
{
	size_t sent;
	ssize_t n;

	if (h->buf != NULL) {
		struct rbuf *b = h->buf;
		if (relay_send(r, dst, b->data + b->off, b->len - b->off,
		    &sent) == -1)
			return -1;
		b->off += (unsigned)sent;
		*count_out += sent;
		if (sent > 0)
			r->moved = 1;
		if (b->off < b->len)
			return 0;
		rpool_buf_put(r->pool, b);
		h->buf = NULL;
	}
	while (h->inpipe > 0) {
		if (!dst->writable)
			return 0;
		n = splice(h->pipe->fd[0], NULL, dst->fd, NULL, h->inpipe,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			dst->writable = 0;
			return 0;
		}
		if (n <= 0)
			return -1;
		h->inpipe -= (size_t)n;
		*count_out += (uint64_t)n;
		r->moved = 1;
	}
	if (h->pipe != NULL) {
		rpool_pipe_put(r->pool, h->pipe); /* an idle relay holds none */
		h->pipe = NULL;
	}
	return 1;
}

/*
 * Read from src straight into a pipe, for dst to take from it: the bytes
 * never visit user space. Returns what recv() would, or -2 without a pipe.
 */
static ssize_t
relay_splice_in(struct relay *r, struct relay_half *h,
    struct relay_side *src)
{
	ssize_t n;

	if (h->pipe == NULL && (h->pipe = rpool_pipe_get(r->pool)) == NULL)
		return -2;
	do
		n = splice(src->fd, NULL, h->pipe->fd[1], NULL, RPOOL_PIPE_SIZE,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		h->inpipe = (size_t)n;
	return n;
}

/*
 * Read into the pool's scratch buffer and write straight out again; only
 * what dst does not take is kept, in a pooled buffer. A read that fills
 * the scratch buffer means bulk data: the half switches to splice().
 */
static ssize_t
relay_copy(struct relay *r, struct relay_half *h, struct relay_side *src,
    struct relay_side *dst, uint64_t *count_out)
{
	char *scratch = r->pool->scratch;
	size_t sent;
	ssize_t n;

	if (relay_ssl(r, src) != NULL) {
		int want_write;
		n = tls_read(relay_ssl(r, src), scratch, RELAY_BUF_SIZE,
		    &want_write);
		if (n == -1 && want_write) {
			/* TLS writes first: wait for writable, stay readable */
			src->writable = 0;
			errno = EINPROGRESS;
		}
	} else {
		do
			n = recv(src->fd, scratch, RELAY_BUF_SIZE, 0);
		while (n == -1 && errno == EINTR);
	}
	if (n <= 0)
		return n;
	if ((size_t)n == RELAY_BUF_SIZE && r->pool->splice && r->ssl == NULL &&
	    r->server_ssl == NULL)
		h->splice = 1;
	if (relay_send(r, dst, scratch, (size_t)n, &sent) == -1)
		return -3;
	*count_out += sent;
	if (relay_keep(r->pool, h, scratch + sent, (size_t)n - sent) == -1)
		return -4;
	return n;
}

/*
 * src reached its end and everything it gave is out: shut down dst's
 * write side once. Returns -1 on error.
 */
static int
relay_shut(struct relay *r, struct relay_half *h, struct relay_side *dst)
{
	if (h->shut)
		return 0;
	h->shut = 1;
	if (relay_ssl(r, dst) != NULL)
		tls_close_notify(relay_ssl(r, dst));
	/* The other way done too: it closes now, and close() sends the FIN. */
	if ((h == &r->up ? r->down.shut : r->up.shut) && r->ssl == NULL &&
	    r->server_ssl == NULL)
		return 0;
	if (shutdown(dst->fd, SHUT_WR) == -1 && errno != ENOTCONN)
		return -1;
	return 0;
}

/*
 * Move bytes from src to dst until one of them would block. src is not
 * read again while what it gave has not all been written: that is the
 * backpressure. Returns -1 with *why set on error.
 */
static int
relay_pump(struct relay *r, struct relay_half *h, struct relay_side *src,
    struct relay_side *dst, uint64_t *count_in, uint64_t *count_out,
    const char **why)
{
	ssize_t n;
	int rc;

	for (int round = 0;; round++) {
		if ((rc = relay_flush(r, h, dst, count_out)) == -1)
			goto write_error;
		if (rc == 0)
			return 0;
		if (h->eof) {
			if (relay_shut(r, h, dst) == -1)
				goto write_error;
			return 0;
		}
		if (!src->readable)
			return 0;
		if (round == PUMP_ROUNDS) {
			/*
			 * Fair share used with src still readable: the edge is
			 * spent, so come back after the other relays.
			 */
			event_active(&src->ev, EV_READ, 1);
			return 0;
		}
		n = -2;
		if (h->splice)
			n = relay_splice_in(r, h, src);
		if (n == -2)
			n = relay_copy(r, h, src, dst, count_out);
		if (n == -3)
			goto write_error;
		if (n == -4) {
			*why = "out of memory";
			return -1;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				src->readable = 0;
				continue;	/* gives back an empty pipe */
			}
			if (errno == EINPROGRESS)
				return 0;
			/*
			 * A reset (as nginx does): what was read before it
			 * still goes out, then this way ends as at EOF.
			 */
			r->err = errno;
			h->eof = 1;
			src->readable = 0;
			continue;
		}
		if (n == 0) {
			h->eof = 1;
			src->readable = 0;
			continue;
		}
		/*
		 * A short recv() drained the socket; the next byte re-arms.
		 * When the peer's FIN is in already, nothing can follow: that
		 * is the end, without a recv() to hear it (a response and its
		 * FIN usually come in one wake-up). Not so a short splice(),
		 * which may stop at the pipe's slots with more queued: read on
		 * until EAGAIN then.
		 */
		if (!h->splice && (size_t)n < RELAY_BUF_SIZE &&
		    relay_ssl(r, src) == NULL) {
			if (src->fin)
				h->eof = 1;
			if (src->fin || !src->rdhup)
				src->readable = 0;
		}
		*count_in += (uint64_t)n;
		r->moved = 1;
	}
write_error:
	*why = dst == &r->client ? "client write error" : "server write error";
	r->err = errno;
	return -1;
}

int
relay_run(struct relay *r, const char **why)
{
	uint64_t dummy = 0;

	if (relay_pump(r, &r->up, &r->client, &r->server, &r->bytes_in,
	    &dummy, why) == -1 ||
	    relay_pump(r, &r->down, &r->server, &r->client, &dummy,
	    &r->bytes_out, why) == -1)
		return -1;
	return r->up.shut && r->down.shut;
}

/*
 * EV_CLOSED (EPOLLRDHUP) means the peer is done sending: read on until
 * EOF. libevent reports EPOLLHUP as plain read|write, without EV_CLOSED;
 * a socket hangs up only once its write side is shut too, so after we
 * shut it (wshut) every read event is treated the same way.
 */
void
relay_mark(struct relay_side *sd, short what, int wshut)
{
	if (what & (EV_READ | EV_CLOSED))
		sd->readable = 1;
	if ((what & EV_CLOSED) || ((what & EV_READ) && wshut))
		sd->rdhup = 1;
	if (what & EV_CLOSED)
		sd->fin = 1;
	if (what & EV_WRITE)
		sd->writable = 1;
}

/* Export */

/*
 * What one direction holds, as a pipe's read end: the pipe itself, or a
 * new one filled from the buffer. Returns 0, or -1 when it cannot be.
 */
static int
relay_export_half(struct relay_half *h, struct relay_export *x, int slot,
    uint16_t flag, uint32_t *bytes)
{
	struct rbuf *b = h->buf;
	int p[2];
	ssize_t n;

	if (b != NULL && h->pipe != NULL && h->inpipe > 0) {
		errno = EAGAIN;	/* two pieces, in order: not now */
		return -1;
	}
	if (h->pipe != NULL && h->inpipe > 0) {
		x->fds[x->nfds++] = h->pipe->fd[0];
		x->flags |= flag;
		*bytes = (uint32_t)h->inpipe;
		return 0;
	}
	if (b == NULL || b->off == b->len)
		return 0;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	n = write(p[1], b->data + b->off, b->len - b->off);
	close(p[1]);
	if (n != (ssize_t)(b->len - b->off)) {
		close(p[0]);
		errno = ENOBUFS;	/* a pipe smaller than a buffer */
		return -1;
	}
	x->made[slot] = p[0];
	x->fds[x->nfds++] = p[0];
	x->flags |= flag;
	*bytes = (uint32_t)n;
	return 0;
}

static uint16_t
relay_half_flags(const struct relay_half *h, uint16_t eof, uint16_t shut,
    uint16_t splice)
{
	return (h->eof ? eof : 0) | (h->shut ? shut : 0) |
	    (h->splice ? splice : 0);
}

int
relay_export(struct relay *r, struct relay_export *x)
{
	memset(x, 0, sizeof(*x));
	x->made[0] = x->made[1] = -1;
	if (r->ssl != NULL || r->server_ssl != NULL || r->server.fd == -1) {
		errno = EINVAL;
		return -1;
	}
	x->fds[x->nfds++] = r->client.fd;
	x->fds[x->nfds++] = r->server.fd;
	x->flags = relay_half_flags(&r->up, CS_UP_EOF, CS_UP_SHUT,
	    CS_UP_SPLICE) | relay_half_flags(&r->down, CS_DOWN_EOF,
	    CS_DOWN_SHUT, CS_DOWN_SPLICE);
	if (relay_export_half(&r->up, x, 0, CS_UP_PIPE, &x->up_bytes) == -1 ||
	    relay_export_half(&r->down, x, 1, CS_DOWN_PIPE,
	    &x->down_bytes) == -1) {
		relay_export_done(r, x, 0);
		return -1;
	}
	return 0;
}

void
relay_export_done(struct relay *r, struct relay_export *x, int sent)
{
	for (int i = 0; i < 2; i++)
		if (x->made[i] != -1)
			close(x->made[i]);
	x->made[0] = x->made[1] = -1;
	if (sent)
		relay_free(r);	/* a pipe still full is closed, not reused */
}

/* Import */

static int
relay_import_half(struct relay_pool *pool, struct relay_half *h,
    const int *fd, uint16_t flags, uint16_t eof, uint16_t shut,
    uint16_t splice, uint16_t pipe, uint32_t bytes)
{
	h->eof = (flags & eof) != 0;
	h->shut = (flags & shut) != 0;
	h->splice = (flags & splice) != 0;
	if (!(flags & pipe))
		return 0;
	if ((h->pipe = rpool_pipe_adopt(pool, *fd)) == NULL)
		return -1;
	h->inpipe = bytes;
	return 0;
}

int
relay_import(struct relay *r, struct relay_pool *pool, const int *fds,
    size_t n, uint16_t flags, uint32_t up_bytes, uint32_t down_bytes)
{
	size_t next = 2;
	int rc = 0;

	relay_init(r, pool, fds[0]);
	r->server.fd = fds[1];
	r->client.readable = r->client.writable = 1;
	r->server.readable = r->server.writable = 1;
	if (flags & CS_UP_PIPE)
		rc |= relay_import_half(pool, &r->up, &fds[next++], flags,
		    CS_UP_EOF, CS_UP_SHUT, CS_UP_SPLICE, CS_UP_PIPE, up_bytes);
	else
		rc |= relay_import_half(pool, &r->up, NULL, flags, CS_UP_EOF,
		    CS_UP_SHUT, CS_UP_SPLICE, 0, 0);
	if (flags & CS_DOWN_PIPE && next < n)
		rc |= relay_import_half(pool, &r->down, &fds[next++], flags,
		    CS_DOWN_EOF, CS_DOWN_SHUT, CS_DOWN_SPLICE, CS_DOWN_PIPE,
		    down_bytes);
	else
		rc |= relay_import_half(pool, &r->down, NULL, flags,
		    CS_DOWN_EOF, CS_DOWN_SHUT, CS_DOWN_SPLICE, 0, 0);
	return rc;
}
