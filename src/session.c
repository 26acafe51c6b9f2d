/* session.c -- one relayed connection: connect, relay, half-close, close */
#include "ac_config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "session.h"
#include "tls.h"
#include "worker.h"

#define POOL_MAX	64	/* free relay buffers a worker keeps */
#define PUMP_ROUNDS	16	/* reads per direction per wake-up: fairness */
#define PIPES_MAX	1024	/* pipes a worker may hold for splice() */
#define HEADER_MS	5000	/* for a client's PROXY header to arrive */
#define PIPE_CHUNK	(256 * 1024)	/* bytes per splice(): a pipe's size */

/*
 * One end of the session. Its event is edge-triggered and registered once
 * for read and write; readable/writable remember what the kernel said until
 * a call returns EAGAIN, so no epoll_ctl is made while relaying.
 */
struct side {
	int		fd;
	struct event	ev;
	unsigned	readable:1;
	unsigned	writable:1;
	unsigned	rdhup:1;	/* peer shut down: read until EOF */
};

/* One direction, src -> dst. */
struct half {
	struct rbuf	*buf;		/* read from src, not yet written */
	struct wpipe	*pipe;		/* or spliced from src, not yet out */
	size_t		 inpipe;
	unsigned	 eof:1;		/* src reached end of file */
	unsigned	 shut:1;	/* dst's write side shut down */
	unsigned	 splice:1;	/* bulk data seen: splice from now on */
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	struct worker		*w;
	struct side		 client;
	struct side		 server;
	struct half		 up;		/* client -> server */
	struct half		 down;		/* server -> client */
	struct event		 timer;		/* connect, then idle timeout */
	uint64_t		 id;
	uint64_t		 start_ms;
	uint64_t		 last_ms;	/* last byte moved */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	struct stat_counters	*fc;		/* the frontend's counters */
	struct stat_counters	*sc;		/* the server's, once connected */
	uint32_t		 frontend;
	int			 srv;		/* server index or -1 */
	unsigned		 connected:1;
	unsigned		 picked:1;	/* counted in the lb's active */
	unsigned		 awaiting:1;	/* the client's PROXY header */
	unsigned		 handshaking:1;	/* TLS with the client */
	SSL			*ssl;		/* TLS frontends: the client's */
	int			 err;		/* errno behind the close */
	uint8_t			 ntried;
	uint8_t			 tried[CONFIG_MAX_RETRIES + 1];
	uint8_t			 family;	/* the client, as declared */
	uint16_t		 port;
	uint8_t			 addr[16];
	uint8_t			 dst_family;	/* AF_UNSPEC: the frontend's */
	uint16_t		 dst_port;
	uint8_t			 dst_addr[16];
};

static void	session_server_cb(evutil_socket_t, short, void *);
static void	session_client_cb(evutil_socket_t, short, void *);
static void	session_timer_cb(evutil_socket_t, short, void *);
static void	session_connect(struct session *s);
static void	session_handshake(struct session *s);
static void	session_refuse(struct session *s, const char *why);
static int	session_send(struct session *, struct side *, const char *,
		    size_t, size_t *);


static uint64_t
session_now(struct worker *w)
{
	struct timeval tv;

	event_base_gettimeofday_cached(w->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void
ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static const struct frontend_conf *
session_frontend(const struct session *s)
{
	return &s->w->cfg->frontends[s->frontend];
}

static struct wbackend *
session_backend(const struct session *s)
{
	return &s->w->backends[session_frontend(s)->backend];
}

static const struct backend_conf *
session_backend_conf(const struct session *s)
{
	return &s->w->cfg->backends[session_frontend(s)->backend];
}

static struct stat_counters *
session_server_counters(const struct session *s, int srv)
{
	return &s->w->stats.servers[session_backend_conf(s)->server_base +
	    (size_t)srv];
}

static struct rbuf *
rbuf_get(struct worker *w)
{
	struct rbuf *b = w->free_bufs;

	if (b != NULL) {
		w->free_bufs = b->next;
		w->nfree_bufs--;
	} else if ((b = malloc(sizeof(*b))) == NULL) {
		return NULL;
	}
	b->next = NULL;
	b->off = b->len = 0;
	return b;
}

static void
rbuf_put(struct worker *w, struct rbuf *b)
{
	if (w->nfree_bufs >= POOL_MAX) {
		free(b);
		return;
	}
	b->next = w->free_bufs;
	w->free_bufs = b;
	w->nfree_bufs++;
}

/* Keep what dst did not take (at most RBUF_SIZE) in a pooled buffer. */
static int
half_keep(struct worker *w, struct half *h, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if ((h->buf = rbuf_get(w)) == NULL)
		return -1;
	h->buf->len = (unsigned)n;
	memcpy(h->buf->data, p, n);
	return 0;
}

/* A pipe for splice(), from the pool; NULL when the pool is used up. */
static struct wpipe *
pipe_get(struct worker *w)
{
	struct wpipe *p = w->free_pipes;

	if (p != NULL) {
		w->free_pipes = p->next;
		return p;
	}
	if (w->npipes >= PIPES_MAX || (p = malloc(sizeof(*p))) == NULL)
		return NULL;
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		free(p);
		return NULL;
	}
	/* Fewer, larger splices; the pages are only used while data flows. */
	(void)fcntl(p->fd[0], F_SETPIPE_SZ, PIPE_CHUNK);
	w->npipes++;
	return p;
}

static void
pipe_put(struct worker *w, struct wpipe *p)
{
	p->next = w->free_pipes;
	w->free_pipes = p;
}

/* A pipe that still holds bytes cannot be reused: close it. */
static void
pipe_discard(struct worker *w, struct wpipe *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	free(p);
	w->npipes--;
}

void
session_free_pool(struct worker *w)
{
	struct rbuf *b;
	struct wpipe *p;

	while ((b = w->free_bufs) != NULL) {
		w->free_bufs = b->next;
		free(b);
	}
	w->nfree_bufs = 0;
	while ((p = w->free_pipes) != NULL) {
		w->free_pipes = p->next;
		pipe_discard(w, p);
	}
}

static void
session_peer_text(const struct session *s, char *buf, size_t len)
{
	struct chan_conn c;
	struct sockaddr_storage ss;

	memset(&c, 0, sizeof(c));
	c.family = s->family;
	c.port = s->port;
	memcpy(c.addr, s->addr, sizeof(c.addr));
	chan_conn_peer(&c, &ss);
	addr_format((struct sockaddr *)&ss, buf, len);
}

static void
session_log_end(struct session *s, const char *reason)
{
	const struct backend_conf *b = session_backend_conf(s);
	char peer[ADDR_STRLEN];
	uint64_t ms = session_now(s->w) - s->start_ms;

	if (!s->w->cfg->access_log && log_get_level() > LL_DEBUG)
		return;		/* nothing to say: format nothing */
	session_peer_text(s, peer, sizeof(peer));
	if (s->w->cfg->access_log)
		log_info("%s %s %s/%s %llums in=%llu out=%llu %s%s%s", peer,
		    session_frontend(s)->name, b->name,
		    s->srv >= 0 ? b->servers[s->srv].name : "-",
		    (unsigned long long)ms, (unsigned long long)s->bytes_in,
		    (unsigned long long)s->bytes_out, reason,
		    s->err ? ": " : "", s->err ? strerror(s->err) : "");
	else
		log_debug("session %llu from %s closed: %s%s%s",
		    (unsigned long long)s->id, peer, reason,
		    s->err ? ": " : "", s->err ? strerror(s->err) : "");
}

static void
side_close(struct side *sd)
{
	if (sd->fd == -1)
		return;
	event_del(&sd->ev);
	close(sd->fd);
	sd->fd = -1;
}

static void
session_half_free(struct worker *w, struct half *h)
{
	if (h->buf != NULL)
		rbuf_put(w, h->buf);
	if (h->pipe != NULL && h->inpipe == 0)
		pipe_put(w, h->pipe);
	else if (h->pipe != NULL)
		pipe_discard(w, h->pipe);
	h->buf = NULL;
	h->pipe = NULL;
}

/* The balancer no longer counts this session on its server. */
static void
session_unpick(struct session *s)
{
	if (s->picked)
		session_backend(s)->lb.servers[s->srv].active--;
	s->picked = 0;
}

void
session_close(struct session *s, const char *reason)
{
	struct worker *w = s->w;

	session_log_end(s, reason);
	if (s->sc != NULL)
		s->sc->active--;
	session_unpick(s);
	s->fc->active--;
	w->stats.all.active--;
	worker_stats_changed(w);

	if (s->ssl != NULL)
		tls_free(s->ssl);
	s->ssl = NULL;
	side_close(&s->client);
	side_close(&s->server);
	event_del(&s->timer);
	session_half_free(w, &s->up);
	session_half_free(w, &s->down);
	TAILQ_REMOVE(&w->sessions, s, entry);
	free(s);
	worker_session_done(w);
}

/* The session's client (or declared destination) as a sockaddr. */
static socklen_t
session_sockaddr(uint8_t family, uint16_t port, const uint8_t *addr,
    struct sockaddr_storage *ss)
{
	struct chan_conn c;

	memset(&c, 0, sizeof(c));
	c.family = family;
	c.port = port;
	memcpy(c.addr, addr, sizeof(c.addr));
	return chan_conn_peer(&c, ss);
}

/*
 * Wait, a bounded time, for the client's PROXY header (header) or its TLS
 * handshake, before connecting anywhere.
 */
static int
session_await(struct session *s, int header)
{
	unsigned ms = session_frontend(s)->timeout_idle_ms;
	struct timeval tv;

	if (header) {
		s->awaiting = 1;
	} else if ((s->ssl = tls_accept(session_frontend(s)->tls,
	    s->client.fd)) == NULL) {
		session_refuse(s, "TLS: out of memory");
		return -1;
	} else {
		s->handshaking = 1;
	}
	ms_to_tv(ms < HEADER_MS ? ms : HEADER_MS, &tv);
	if (event_add(&s->client.ev, NULL) == -1 ||
	    event_add(&s->timer, &tv) == -1) {
		session_close(s, "event_add failed");
		return -1;
	}
	return 0;
}

/* A client that sent no valid PROXY header reached no server. */
static void
session_refuse(struct session *s, const char *why)
{
	s->fc->errors++;
	s->w->stats.all.errors++;
	session_close(s, why);
}

/*
 * Look at what the client sent so far for its PROXY header (MSG_PEEK, so
 * nothing past the header is taken); once complete, take exactly the
 * header, adopt the addresses it declares and connect to a server.
 */
static void
session_read_header(struct session *s)
{
	struct sockaddr_storage src, dst;
	struct chan_conn c;
	ssize_t n, len;

	if (!s->client.readable)
		return;
	n = recv(s->client.fd, s->w->scratch, PROXY_HDR_MAX, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		s->client.readable = 0;
		return;
	}
	if (n <= 0) {
		s->err = n == 0 ? 0 : errno;
		session_refuse(s, "closed before its PROXY header");
		return;
	}
	len = proxy_parse(session_frontend(s)->accept_proxy, s->w->scratch,
	    (size_t)n, &src, &dst);
	if (len == 0 && n < PROXY_HDR_MAX) {
		s->client.readable = s->client.rdhup;	/* wait for more */
		if (s->client.rdhup)
			session_refuse(s, "closed before its PROXY header");
		return;
	}
	if (len <= 0 || recv(s->client.fd, s->w->scratch, (size_t)len, 0) !=
	    len) {
		session_refuse(s, "bad PROXY header");
		return;
	}
	if (src.ss_family != AF_UNSPEC &&
	    chan_conn_set_peer(&c, (struct sockaddr *)&src) == 0) {
		s->family = c.family;
		s->port = c.port;
		memcpy(s->addr, c.addr, sizeof(s->addr));
		chan_conn_set_peer(&c, (struct sockaddr *)&dst);
		s->dst_family = c.family;
		s->dst_port = c.port;
		memcpy(s->dst_addr, c.addr, sizeof(s->dst_addr));
	}
	s->awaiting = 0;
	event_del(&s->timer);
	if (session_frontend(s)->tls != NULL) {
		/* The ClientHello may have come with the header: try now. */
		if (session_await(s, 0) == 0)
			session_handshake(s);
		return;
	}
	session_connect(s);
}

/* Drive the client's TLS handshake; once done, connect to a server. */
static void
session_handshake(struct session *s)
{
	switch (tls_handshake(s->ssl)) {
	case 0:
		return;
	case -1:
		s->err = errno;
		session_refuse(s, "TLS handshake failed");
		return;
	}
	s->handshaking = 0;
	event_del(&s->timer);
	session_connect(s);
}

void
session_start(struct worker *w, int fd, const struct chan_conn *c)
{
	struct stat_counters *fc = &w->stats.frontends[c->frontend];
	struct session *s;

	fc->total++;
	w->stats.all.total++;
	worker_stats_changed(w);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session");
		close(fd);
		fc->errors++;
		w->stats.all.errors++;
		return;
	}
	fc->active++;
	w->stats.all.active++;
	s->w = w;
	s->fc = fc;
	s->id = c->id;
	s->frontend = c->frontend;
	s->family = c->family;
	s->port = c->port;
	memcpy(s->addr, c->addr, sizeof(s->addr));
	s->client.fd = fd;
	s->server.fd = -1;
	s->srv = -1;
	s->start_ms = s->last_ms = session_now(w);
	TAILQ_INSERT_TAIL(&w->sessions, s, entry);
	evtimer_assign(&s->timer, w->base, session_timer_cb, s);
	event_assign(&s->client.ev, w->base, fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
	    session_client_cb, s);
	if (session_frontend(s)->accept_proxy != PROXY_OFF)
		(void)session_await(s, 1);
	else if (session_frontend(s)->tls != NULL)
		(void)session_await(s, 0);
	else if (event_add(&s->client.ev, NULL) == -1)
		session_close(s, "event_add failed");
	else
		session_connect(s);	/* what the client sends waits */
}

/* Client key for the balancer: a hash of its address. */
static uint32_t
session_key(const struct session *s)
{
	return lb_hash(s->addr, s->family == AF_INET ? 4 : 16, LB_HASH_INIT);
}

/*
 * Connect to the next server, trying others on immediate failure. Ends the
 * session when every attempt is used up or no server is up.
 */
static void
session_connect(struct session *s)
{
	struct worker *w = s->w;
	const struct backend_conf *bc = session_backend_conf(s);
	struct wbackend *wb = session_backend(s);
	struct timeval tv;
	int srv = -1, fd;

	while (s->ntried <= bc->retries) {
		srv = lb_pick(&wb->lb, session_key(s), s->tried, s->ntried);
		if (srv == -1)
			break;
		s->tried[s->ntried++] = (uint8_t)srv;
		s->srv = srv;
		fd = net_connect((const struct sockaddr *)
		    &bc->servers[srv].addr.ss, bc->servers[srv].addr.len);
		if (fd == -1) {
			log_debug("connect to %s (%s): %s",
			    bc->servers[srv].name, bc->servers[srv].addr_text,
			    strerror(errno));
			session_server_counters(s, srv)->failures++;
			w->stats.all.failures++;
			continue;
		}
		/* Counted from now on, so limits hold while connects run. */
		wb->lb.servers[srv].active++;
		s->picked = 1;
		s->server.fd = fd;
		s->server.readable = s->server.writable = s->server.rdhup = 0;
		event_assign(&s->server.ev, w->base, fd,
		    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
		    session_server_cb, s);
		ms_to_tv(bc->connect_timeout_ms, &tv);
		if (event_add(&s->server.ev, NULL) == -1 ||
		    event_add(&s->timer, &tv) == -1) {
			session_close(s, "event_add failed");
			return;
		}
		return;
	}
	s->srv = -1;
	s->fc->errors++;
	w->stats.all.errors++;
	session_close(s, srv == -1 && s->ntried == 0 ? "no server up" :
	    "no server reachable");
}

/* The current attempt failed: count it and move on to the next server. */
static void
session_connect_failed(struct session *s, const char *why)
{
	const struct backend_conf *bc = session_backend_conf(s);

	log_warnx("%s: connect to %s/%s (%s) failed: %s",
	    session_frontend(s)->name, bc->name, bc->servers[s->srv].name,
	    bc->servers[s->srv].addr_text, why);
	session_server_counters(s, s->srv)->failures++;
	s->w->stats.all.failures++;
	session_unpick(s);
	side_close(&s->server);
	event_del(&s->timer);
	session_connect(s);
}

/*
 * With send_proxy, the server first gets a PROXY header: the client's
 * address and, as destination, the frontend address the client reached
 * (or what the client's own header declared). What the socket does not
 * take at once waits in the up buffer, ahead of any client byte.
 */
static int
session_send_header(struct session *s)
{
	const struct backend_conf *bc = session_backend_conf(s);
	int version = bc->servers[s->srv].send_proxy;
	struct sockaddr_storage src, dst;
	socklen_t len = sizeof(dst);
	char hdr[PROXY_HDR_MAX];
	size_t n, sent;

	if (version == PROXY_OFF)
		return 0;
	session_sockaddr(s->family, s->port, s->addr, &src);
	if (s->dst_family != AF_UNSPEC)
		session_sockaddr(s->dst_family, s->dst_port, s->dst_addr,
		    &dst);
	else if (getsockname(s->client.fd, (struct sockaddr *)&dst, &len) ==
	    -1)
		dst.ss_family = AF_UNSPEC;
	n = proxy_encode(version, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, hdr, sizeof(hdr));
	s->server.writable = 1;
	if (session_send(s, &s->server, hdr, n, &sent) == -1)
		return -1;
	return half_keep(s->w, &s->up, hdr + sent, n - sent);
}

/* The server accepted: start relaying. Returns -1 if s was closed. */
static int
session_connected(struct session *s)
{
	struct timeval tv;

	s->connected = 1;
	s->sc = session_server_counters(s, s->srv);
	s->sc->total++;
	s->sc->active++;
	worker_stats_changed(s->w);
	s->last_ms = session_now(s->w);
	event_del(&s->timer);
	ms_to_tv(session_frontend(s)->timeout_idle_ms, &tv);
	if (event_add(&s->timer, &tv) == -1 ||
	    event_add(&s->client.ev, NULL) == -1) {
		session_close(s, "event_add failed");
		return -1;
	}
	if (session_send_header(s) == -1) {
		session_close(s, "server write error");
		return -1;
	}
	return 0;
}

static int
session_send(struct session *s, struct side *dst, const char *p, size_t n,
    size_t *sent)
{
	ssize_t r;

	*sent = 0;
	if (!dst->writable)
		return 0;
	if (dst == &s->client && s->ssl != NULL) {
		int want_read;
		r = tls_write(s->ssl, p, n, &want_read);
	} else {
		do
			r = send(dst->fd, p, n, MSG_NOSIGNAL);
		while (r == -1 && errno == EINTR);
	}
	if (r == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			dst->writable = 0;
			return 0;
		}
		return -1;
	}
	*sent = (size_t)r;
	if ((size_t)r < n)
		dst->writable = 0;	/* send buffer full: wait for the edge */
	return 0;
}

/*
 * Write what the half holds (a buffer or a pipe) to dst. Returns 1 when
 * nothing is left, 0 when dst would block, -1 on error.
 */
static int
half_flush(struct session *s, struct half *h, struct side *dst,
    uint64_t *count_out)
{
	struct worker *w = s->w;
	size_t sent;
	ssize_t n;

	if (h->buf != NULL) {
		struct rbuf *b = h->buf;
		if (session_send(s, dst, b->data + b->off, b->len - b->off,
		    &sent) == -1)
			return -1;
		b->off += (unsigned)sent;
		*count_out += sent;
		if (sent > 0)
			s->last_ms = session_now(w);
		if (b->off < b->len)
			return 0;
		rbuf_put(w, b);
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
		s->last_ms = session_now(w);
	}
	if (h->pipe != NULL) {
		pipe_put(w, h->pipe);	/* an idle session holds no pipe */
		h->pipe = NULL;
	}
	return 1;
}

/*
 * Read from src straight into a pipe, for dst to take from it: the bytes
 * never visit user space. Returns what recv() would, or -2 without a pipe.
 */
static ssize_t
half_splice_in(struct session *s, struct half *h, struct side *src)
{
	ssize_t n;

	if (h->pipe == NULL && (h->pipe = pipe_get(s->w)) == NULL)
		return -2;
	do
		n = splice(src->fd, NULL, h->pipe->fd[1], NULL, PIPE_CHUNK,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		h->inpipe = (size_t)n;
	return n;
}

/*
 * Read into the worker's scratch buffer and write straight out again; only
 * what dst does not take is kept, in a pooled buffer. A read that fills
 * the scratch buffer means bulk data: the half switches to splice().
 */
static ssize_t
half_copy(struct session *s, struct half *h, struct side *src,
    struct side *dst, uint64_t *count_out)
{
	struct worker *w = s->w;
	size_t sent;
	ssize_t n;

	if (src == &s->client && s->ssl != NULL) {
		int want_write;
		n = tls_read(s->ssl, w->scratch, RBUF_SIZE, &want_write);
		if (n == -1 && want_write) {
			/* TLS must write first: wait for writable, stay readable */
			src->writable = 0;
			errno = EINPROGRESS;
		}
	} else {
		do
			n = recv(src->fd, w->scratch, RBUF_SIZE, 0);
		while (n == -1 && errno == EINTR);
	}
	if (n <= 0)
		return n;
	if ((size_t)n == RBUF_SIZE && w->cfg->splice && s->ssl == NULL)
		h->splice = 1;
	if (session_send(s, dst, w->scratch, (size_t)n, &sent) == -1)
		return -3;
	*count_out += sent;
	if (half_keep(w, h, w->scratch + sent, (size_t)n - sent) == -1)
		return -4;
	return n;
}

/*
 * Move bytes from src to dst until one of them would block. src is not
 * read again while what it gave has not all been written: that is the
 * backpressure. Returns -1 with *why set on error.
 */
static int
session_pump(struct session *s, struct half *h, struct side *src,
    struct side *dst, uint64_t *count_in, uint64_t *count_out,
    const char **why)
{
	ssize_t n;
	int rc;

	for (int round = 0;; round++) {
		if ((rc = half_flush(s, h, dst, count_out)) == -1)
			goto write_error;
		if (rc == 0)
			return 0;
		if (h->eof) {
			if (!h->shut) {
				h->shut = 1;
				if (dst == &s->client && s->ssl != NULL)
					tls_close_notify(s->ssl);
				/*
				 * The other way done too: the session closes
				 * now, and close() sends the FIN itself.
				 */
				if ((h == &s->up ? s->down.shut : s->up.shut) &&
				    s->ssl == NULL)
					return 0;
				if (shutdown(dst->fd, SHUT_WR) == -1 &&
				    errno != ENOTCONN)
					goto write_error;
			}
			return 0;
		}
		if (!src->readable)
			return 0;
		if (round == PUMP_ROUNDS) {
			/*
			 * Fair share used with src still readable: the edge is
			 * spent, so come back after the other sessions.
			 */
			event_active(&src->ev, EV_READ, 1);
			return 0;
		}
		n = -2;
		if (h->splice)
			n = half_splice_in(s, h, src);
		if (n == -2)
			n = half_copy(s, h, src, dst, count_out);
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
			s->err = errno;
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
		 * Not so a short splice(), which may stop at the pipe's slots
		 * with more queued: read on until EAGAIN then.
		 */
		if (!h->splice && (size_t)n < RBUF_SIZE && !src->rdhup &&
		    !(src == &s->client && s->ssl != NULL))
			src->readable = 0;
		*count_in += (uint64_t)n;
		s->last_ms = session_now(s->w);
	}
write_error:
	*why = dst == &s->client ? "client write error" : "server write error";
	s->err = errno;
	return -1;
}

/* Add bytes moved to the counters the master sees. */
static void
session_count_bytes(struct session *s, uint64_t in, uint64_t out)
{
	struct stat_counters *all = &s->w->stats.all;

	all->bytes_in += in;
	all->bytes_out += out;
	s->fc->bytes_in += in;
	s->fc->bytes_out += out;
	s->sc->bytes_in += in;
	s->sc->bytes_out += out;
	worker_stats_changed(s->w);
}

/* Relay both ways as far as the sockets allow; close when both are done. */
static void
session_relay(struct session *s)
{
	const char *why = NULL;
	uint64_t dummy = 0, in = s->bytes_in, out = s->bytes_out;
	int rc;

	rc = session_pump(s, &s->up, &s->client, &s->server, &s->bytes_in,
	    &dummy, &why);
	if (rc == 0)
		rc = session_pump(s, &s->down, &s->server, &s->client, &dummy,
		    &s->bytes_out, &why);
	if (s->bytes_in != in || s->bytes_out != out)
		session_count_bytes(s, s->bytes_in - in, s->bytes_out - out);
	if (rc == -1) {
		session_close(s, why);
		return;
	}
	if (s->up.shut && s->down.shut)
		session_close(s, s->err ? "read error" : "done");
}

/*
 * Record what the kernel reported for one side. EV_CLOSED (EPOLLRDHUP)
 * means the peer is done sending: read on until EOF. libevent reports
 * EPOLLHUP as plain read|write, without EV_CLOSED; a socket hangs up only
 * once its write side is shut too, so after we shut it (wshut) every read
 * event is treated the same way.
 */
static void
side_mark(struct side *sd, short what, int wshut)
{
	if (what & (EV_READ | EV_CLOSED))
		sd->readable = 1;
	if ((what & EV_CLOSED) || ((what & EV_READ) && wshut))
		sd->rdhup = 1;
	if (what & EV_WRITE)
		sd->writable = 1;
}

static void
session_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	side_mark(&s->client, what, s->down.shut);
	/* TLS may need to read before it can write: any event may help. */
	if (s->ssl != NULL && (what & EV_READ))
		s->client.writable = 1;
	if (s->awaiting)
		session_read_header(s);
	else if (s->handshaking)
		session_handshake(s);
	else if (s->connected)
		session_relay(s);
}

static void
session_server_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (!s->connected) {
		/*
		 * Writable alone means connected: a failed connect reports
		 * an error (read and write); only then ask which.
		 */
		if ((what & (EV_READ | EV_WRITE | EV_CLOSED)) != EV_WRITE &&
		    net_connect_result(s->server.fd) == -1) {
			session_connect_failed(s, strerror(errno));
			return;
		}
		if (session_connected(s) == -1)
			return;
		what |= EV_WRITE;
	}
	side_mark(&s->server, what, s->up.shut);
	session_relay(s);
}

static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t idle, limit;
	struct timeval tv;

	if (s->awaiting || s->handshaking) {
		session_refuse(s, s->awaiting ? "no PROXY header in time" :
		    "TLS handshake timeout");
		return;
	}
	if (!s->connected) {
		session_connect_failed(s, "timeout");
		return;
	}
	limit = session_frontend(s)->timeout_idle_ms;
	idle = session_now(s->w) - s->last_ms;
	if (idle >= limit) {
		session_close(s, "idle timeout");
		return;
	}
	ms_to_tv(limit - idle, &tv);
	event_add(&s->timer, &tv);
}
