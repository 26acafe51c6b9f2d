/* session.c -- one relayed connection: connect, relay, half-close, close */
#include "ac_config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "accesslog.h"
#include "balance.h"
#include "config.h"
#include "hello.h"
#include "log.h"
#include "net.h"
#include "proxyproto.h"
#include "relay.h"
#include "session.h"
#include "session_priv.h"
#include "tls.h"
#include "tls_upstream.h"

static void	session_connect(struct session *s);
static void	session_count_bytes(struct session *s, uint64_t in,
		    uint64_t out);
static void	session_refuse(struct session *s, const char *why);

uint64_t
session_now(const struct session_ctx *x)
{
	struct timeval tv;

	event_base_gettimeofday_cached(x->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void
ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

struct lb *
session_lb(const struct session *s)
{
	return &s->x->lbs[s->backend];
}

const struct backend_conf *
session_backend_conf(const struct session *s)
{
	return &s->x->cfg->backends[s->backend];
}

struct stat_counters *
session_server_counters(const struct session *s, int srv)
{
	return &s->x->stats.servers[session_backend_conf(s)->servers[srv].flat];
}

/* The access log's line for s as JSON (log_format = json). */
static void
session_log_json(struct session *s, const char *reason, const char *peer,
    uint64_t ms)
{
	const struct backend_conf *b = session_backend_conf(s);
	struct access_rec r = {
		.end_ms = session_now(s->x), .duration_ms = ms, .id = s->id,
		.frontend = session_frontend(s)->name, .client = peer,
		.backend = b->name,
		.server = s->srv >= 0 ? b->servers[s->srv].name : NULL,
		.bytes_in = s->r.bytes_in, .bytes_out = s->r.bytes_out,
		.reason = reason, .err = s->r.err,
	};

	accesslog_write_json(&r);
}

static void
session_log_end(struct session *s, const char *reason)
{
	const struct backend_conf *b = session_backend_conf(s);
	char peer[ADDR_STRLEN];
	uint64_t ms = session_now(s->x) - s->start_ms;
	int err = s->r.err;

	if (!s->x->cfg->access_log && log_get_level() > LL_DEBUG)
		return;		/* nothing to say: format nothing */
	addr_format(&s->peer.sa, peer, sizeof(peer));
	if (s->x->cfg->access_log && s->x->cfg->log_format == LOG_FORMAT_JSON)
		session_log_json(s, reason, peer, ms);
	else if (s->x->cfg->access_log)
		log_info("%s %s %s/%s %llums in=%llu out=%llu %s%s%s", peer,
		    session_frontend(s)->name, b->name,
		    s->srv >= 0 ? b->servers[s->srv].name : "-",
		    (unsigned long long)ms, (unsigned long long)s->r.bytes_in,
		    (unsigned long long)s->r.bytes_out, reason,
		    err ? ": " : "", err ? strerror(err) : "");
	else
		log_debug("session %llu from %s closed: %s%s%s",
		    (unsigned long long)s->id, peer, reason,
		    err ? ": " : "", err ? strerror(err) : "");
}

/* The balancer no longer counts this session on its server. */
void
session_unpick(struct session *s)
{
	if (s->picked)
		session_lb(s)->servers[s->srv].active--;
	s->picked = 0;
}

void
session_close(struct session *s, const char *reason)
{
	session_log_end(s, reason);
	if (s->r.ssl != NULL)
		tls_free(s->r.ssl);
	s->r.ssl = NULL;
	if (s->r.server_ssl != NULL)
		tls_free(s->r.server_ssl);
	s->r.server_ssl = NULL;
	relay_free(&s->r);
	session_release(s);
}

void
session_release(struct session *s)
{
	struct session_ctx *x = s->x;

	if (s->sc != NULL)
		s->sc->active--;
	session_unpick(s);
	s->fc->active--;
	x->stats.all.active--;
	session_note(x, SESSION_COUNTED);
	hello_buf_free(&s->hello);
	event_del(&s->timer);
	TAILQ_REMOVE(&x->sessions, s, entry);
	free(s);
	session_note(x, SESSION_ENDED);
}

/* A client that failed before connecting (its PROXY header, TLS) reached
 * no server. */
static void
session_refuse(struct session *s, const char *why)
{
	s->fc->errors++;
	s->x->stats.all.errors++;
	session_close(s, why);
}

/*
 * What the client sent before connecting (the edge) says: wait for more,
 * with the time left of the bound (for all of it, from the session's
 * start), refuse it, or connect (what the client sends next waits).
 */
static void
session_edge_done(struct session *s, int rc, const char *why)
{
	uint64_t ms = session_frontend(s)->timeout_idle_ms;
	uint64_t now = session_now(s->x);
	uint64_t spent = now > s->start_ms ? now - s->start_ms : 0;
	struct timeval tv;

	if (rc == SEDGE_FAIL) {
		session_refuse(s, why);
	} else if (rc == SEDGE_DONE) {
		event_del(&s->timer);
		session_connect(s);
	} else if (!evtimer_pending(&s->timer, NULL)) {
		if (ms > HEADER_MS)
			ms = HEADER_MS;
		ms_to_tv(ms > spent ? ms - spent : 0, &tv);
		if (event_add(&s->timer, &tv) == -1)
			session_close(s, "event_add failed");
	}
}

void
session_start(struct session_ctx *x, int fd, uint32_t fe,
    const struct addr *peer, uint64_t id)
{
	struct stat_counters *fc = &x->stats.frontends[fe];
	const char *why = NULL;
	struct session *s;

	fc->total++;
	x->stats.all.total++;
	session_note(x, SESSION_COUNTED);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session");
		close(fd);
		fc->errors++;
		x->stats.all.errors++;
		return;
	}
	fc->active++;
	x->stats.all.active++;
	s->x = x;
	s->fc = fc;
	s->id = id;
	s->frontend = fe;
	s->backend = session_frontend(s)->backend;
	session_adopt(&s->peer, &peer->ss);
	relay_init(&s->r, &x->pool, fd);
	s->srv = -1;
	s->start_ms = s->last_ms = session_now(x);
	TAILQ_INSERT_TAIL(&x->sessions, s, entry);
	evtimer_assign(&s->timer, x->base, session_timer_cb, s);
	event_assign(&s->r.client.ev, x->base, fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
	    session_client_cb, s);
	if (event_add(&s->r.client.ev, NULL) == -1) {
		session_close(s, "event_add failed");
		return;
	}
	session_edge_done(s, session_edge_begin(s, &why), why);
}

/* Client key for the balancer: a hash of its address. */
static uint32_t
session_key(const struct session *s)
{
	if (s->peer.sa.sa_family == AF_INET)
		return lb_hash(&s->peer.sin.sin_addr, 4, LB_HASH_INIT);
	return lb_hash(&s->peer.sin6.sin6_addr, 16, LB_HASH_INIT);
}

/*
 * This host could not make the connection (out of descriptors, buffers or
 * local ports): the frontend's error, not the server's, and no retry, which
 * would only fail the same way against another server.
 */
static void
session_local_error(struct session *s, int err)
{
	const struct backend_conf *bc = session_backend_conf(s);

	log_warnx("%s: cannot connect to %s/%s: %s (a local error, not "
	    "counted against the server)", session_frontend(s)->name, bc->name,
	    bc->servers[s->srv].name, strerror(err));
	session_unpick(s);
	s->srv = -1;
	s->fc->errors++;
	s->x->stats.all.errors++;
	session_close(s, "local error");
}

/*
 * Connect to the next server, trying others on immediate failure. Ends the
 * session when every attempt is used up or no server is up.
 */
static void
session_connect(struct session *s)
{
	struct session_ctx *x = s->x;
	const struct backend_conf *bc = session_backend_conf(s);
	struct lb *lb = session_lb(s);
	struct timeval tv;
	int srv = -1, fd;

	while (s->ntried <= bc->retries) {
		srv = lb_pick(lb, session_key(s), s->tried, s->ntried);
		if (srv == -1)
			break;
		s->tried[s->ntried++] = (uint8_t)srv;
		s->srv = srv;
		fd = net_connect((const struct sockaddr *)
		    &bc->servers[srv].addr.ss, bc->servers[srv].addr.len);
		if (fd == -1 && net_error_is_local(errno)) {
			session_local_error(s, errno);
			return;
		}
		if (fd == -1) {
			log_debug("connect to %s (%s): %s",
			    bc->servers[srv].name, bc->servers[srv].addr_text,
			    strerror(errno));
			session_server_counters(s, srv)->failures++;
			x->stats.all.failures++;
			continue;
		}
		/* Counted from now on, so limits hold while connects run. */
		lb->servers[srv].active++;
		s->picked = 1;
		s->r.server.fd = fd;
		s->r.server.readable = s->r.server.writable = 0;
		s->r.server.rdhup = s->r.server.fin = 0;
		event_assign(&s->r.server.ev, x->base, fd,
		    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
		    session_server_cb, s);
		ms_to_tv(bc->connect_timeout_ms, &tv);
		if (event_add(&s->r.server.ev, NULL) == -1 ||
		    event_add(&s->timer, &tv) == -1)
			session_close(s, "event_add failed");
		return;
	}
	s->srv = -1;
	s->fc->errors++;
	x->stats.all.errors++;
	session_close(s, srv == -1 && s->ntried == 0 ? "no server up" :
	    "no server reachable");
}

/* The current attempt failed: count it and move on to the next server. */
static void
session_connect_failed(struct session *s, int err, const char *why)
{
	const struct backend_conf *bc = session_backend_conf(s);

	if (err != 0 && net_error_is_local(err)) {
		session_local_error(s, err);
		return;
	}
	log_warnx("%s: connect to %s/%s (%s) failed: %s",
	    session_frontend(s)->name, bc->name, bc->servers[s->srv].name,
	    bc->servers[s->srv].addr_text, why);
	session_server_counters(s, s->srv)->failures++;
	s->x->stats.all.failures++;
	session_unpick(s);
	tls_free(s->r.server_ssl);
	s->r.server_ssl = NULL;
	relay_side_close(&s->r.server);
	event_del(&s->timer);
	session_connect(s);
}

/*
 * With send_proxy, the server first gets a PROXY header: the client's
 * address and, as destination, the frontend address the client reached
 * (or what the client's own header declared). What the socket does not
 * take at once waits in the relay, ahead of any client byte.
 */
static size_t
session_header(struct session *s, char *hdr, size_t size)
{
	const struct backend_conf *bc = session_backend_conf(s);
	int version = bc->servers[s->srv].send_proxy;
	const struct sockaddr *dst = &s->dst.sa;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char cn[PROXY_TLV_STR_MAX + 1];
	struct proxy_tls pt;

	if (version == PROXY_OFF)
		return 0;
	if (dst->sa_family == AF_UNSPEC) {
		dst = (const struct sockaddr *)&ss;
		if (getsockname(s->r.client.fd, (struct sockaddr *)&ss, &len) ==
		    -1)
			ss.ss_family = AF_UNSPEC;
	}
	if (version == PROXY_V2 && s->r.ssl != NULL) {
		/* A TLS client: its session in TLVs, as HAProxy's
		 * send-proxy-v2-ssl-cn sends it. */
		tls_proxy_info(s->r.ssl, &pt, cn, sizeof(cn));
		return proxy_encode_tls(&s->peer.sa, dst, &pt, hdr, size);
	}
	return proxy_encode(version, &s->peer.sa, dst, hdr, size);
}

static int
session_send_header(struct session *s)
{
	char hdr[PROXY_V2_TLS_MAX];
	size_t n;

	if (s->r.server_ssl != NULL)
		return 0;	/* sent before the TLS handshake */
	if ((n = session_header(s, hdr, sizeof(hdr))) == 0)
		return 0;
	return relay_queue(&s->r, hdr, n);
}

/*
 * TLS to the server (its tls option): the PROXY header, then the
 * handshake, within what is left of connect_timeout. Returns 1 when done,
 * 0 while it goes on, -1 when s moved on to another server.
 */
static int
session_server_tls(struct session *s)
{
	const struct server_conf *sv = &session_backend_conf(s)->servers[s->srv];
	char hdr[PROXY_V2_TLS_MAX];
	const char *why;
	size_t n = 0;
	int rc;

	if (s->r.server_ssl == NULL)
		n = session_header(s, hdr, sizeof(hdr));
	if ((rc = tls_upstream_handshake(sv, s->r.server.fd, &s->r.server_ssl,
	    hdr, n, &why)) == -1)
		session_connect_failed(s, errno, why);
	return rc;
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
	session_note(s->x, SESSION_COUNTED);
	s->last_ms = session_now(s->x);
	event_del(&s->timer);
	ms_to_tv(session_frontend(s)->timeout_idle_ms, &tv);
	if (event_add(&s->timer, &tv) == -1 ||
	    event_add(&s->r.client.ev, NULL) == -1) {
		session_close(s, "event_add failed");
		return -1;
	}
	if (session_send_header(s) == -1) {
		session_close(s, "server write error");
		return -1;
	}
	if (s->hello.len > 0) {
		/* The passed-through ClientHello: the server's first bytes. */
		if (relay_queue(&s->r, (const char *)s->hello.data,
		    s->hello.len) == -1) {
			session_close(s, "server write error");
			return -1;
		}
		s->r.bytes_in += s->hello.len;
		session_count_bytes(s, s->hello.len, 0);
		hello_buf_free(&s->hello);
	}
	return 0;
}

/* Add bytes moved to the counters the master sees. */
static void
session_count_bytes(struct session *s, uint64_t in, uint64_t out)
{
	struct stat_counters *all = &s->x->stats.all;

	all->bytes_in += in;
	all->bytes_out += out;
	s->fc->bytes_in += in;
	s->fc->bytes_out += out;
	if (s->sc != NULL) {
		s->sc->bytes_in += in;
		s->sc->bytes_out += out;
	}
	session_note(s->x, SESSION_COUNTED);
}

/* Relay both ways as far as the sockets allow; close when both are done. */
static void
session_relay(struct session *s)
{
	const char *why = NULL;
	uint64_t in = s->r.bytes_in, out = s->r.bytes_out;
	int rc = relay_run(&s->r, &why);

	if (s->r.moved) {
		s->r.moved = 0;
		s->last_ms = session_now(s->x);
	}
	if (s->r.bytes_in != in || s->r.bytes_out != out)
		session_count_bytes(s, s->r.bytes_in - in,
		    s->r.bytes_out - out);
	if (rc == -1)
		session_close(s, why);
	else if (rc == 1)
		session_close(s, s->r.err ? "read error" : "done");
}

void
session_client_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	const char *why = NULL;

	relay_mark(&s->r.client, what, s->r.down.shut);
	/* TLS may need to read before it can write: any event may help. */
	if (s->r.ssl != NULL && (what & EV_READ))
		s->r.client.writable = 1;
	if (session_edge_waiting(s))
		session_edge_done(s, session_edge_step(s, &why), why);
	else if (s->connected)
		session_relay(s);
}

void
session_server_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (!s->connected) {
		/*
		 * Writable alone means connected: a failed connect reports
		 * an error (read and write); only then ask which.
		 */
		if ((what & (EV_READ | EV_WRITE | EV_CLOSED)) != EV_WRITE &&
		    net_connect_result(s->r.server.fd) == -1) {
			session_connect_failed(s, errno, strerror(errno));
			return;
		}
		if (session_backend_conf(s)->servers[s->srv].tls &&
		    session_server_tls(s) != 1)
			return;
		if (session_connected(s) == -1)
			return;
		what |= EV_WRITE;
	}
	relay_mark(&s->r.server, what, s->r.up.shut);
	if (s->r.server_ssl != NULL && (what & EV_READ))
		s->r.server.writable = 1;	/* as for the client */
	session_relay(s);
}

void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	uint64_t idle, limit;
	struct timeval tv;

	if (session_edge_waiting(s)) {
		session_refuse(s, session_edge_timeout(s));
		return;
	}
	if (!s->connected) {
		session_connect_failed(s, 0, "timeout");
		return;
	}
	limit = session_frontend(s)->timeout_idle_ms;
	idle = session_now(s->x) - s->last_ms;
	if (idle >= limit) {
		session_close(s, "idle timeout");
		return;
	}
	ms_to_tv(limit - idle, &tv);
	event_add(&s->timer, &tv);
}
