/* session_edge.c -- what a session reads from its client before it
 * connects: PROXY header, TLS handshake or ClientHello, and the route */
#include "ac_config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>

#include "log.h"
#include "proxyproto.h"
#include "route.h"
#include "session_priv.h"
#include "tls.h"

/* The TLS edge failed: count it, log why (rate-limited, unless quiet). */
static int
sedge_failed(struct session *s, const char *what, int quiet,
    const char **why)
{
	char peer[ADDR_STRLEN];

	s->x->stats.tls[s->frontend].failures++;
	if (!quiet) {
		addr_format(&s->peer.sa, peer, sizeof(peer));
		log_warnx("%s: client %s: %s", session_frontend(s)->name,
		    peer, what);
	}
	*why = what;
	return SEDGE_FAIL;
}

/* The TLS edge is done: the first route that matches, counted. */
static int
sedge_route(struct session *s, const char *sni, const unsigned char *alpn,
    size_t len)
{
	const struct frontend_conf *f = session_frontend(s);
	struct stats_table *t = &s->x->stats;
	size_t route = route_pick(f, sni, alpn, len);

	s->backend = route_backend(f, route);
	t->tls[s->frontend].handshakes++;
	t->routes[f->route_base + route]++;
	session_note(s->x, SESSION_COUNTED);
	return SEDGE_DONE;
}

/* Drive the client's TLS handshake; once done, route by SNI and ALPN. */
static int
sedge_handshake(struct session *s, const char **why)
{
	unsigned char alpn[256];
	size_t n;

	switch (tls_handshake(s->r.ssl)) {
	case 0:
		return SEDGE_WAIT;
	case -1:
		s->r.err = errno;
		if (*tls_handshake_error() != '\0')
			log_warnx("[frontend %s] TLS handshake failed: %s",
			    session_frontend(s)->name, tls_handshake_error());
		return sedge_failed(s, "TLS handshake failed", 1, why);
	}
	s->handshaking = 0;
	s->x->stats.tls[s->frontend].versions[tls_version(s->r.ssl)]++;
	n = tls_alpn_wire(s->r.ssl, alpn, sizeof(alpn));
	return sedge_route(s, tls_servername(s->r.ssl), alpn, n);
}

/*
 * Read the passed-through client's ClientHello, whole, and route by the
 * server name and protocols OpenSSL finds in it; its bytes wait in
 * s->hello to go to the server first, everything after them untouched.
 */
static int
sedge_hello(struct session *s, const char **why)
{
	const struct frontend_conf *f = session_frontend(s);
	struct hello_info hi;
	int rc = hello_read(&s->hello, s->r.client.fd, why);

	if (rc == HELLO_MORE)
		return SEDGE_WAIT;
	if (rc == HELLO_DONE && hello_parse(f->hello, s->hello.data,
	    s->hello.len, &hi) == -1) {
		rc = HELLO_BAD;
		*why = "not a TLS ClientHello (OpenSSL)";
	}
	if (rc != HELLO_DONE)
		return sedge_failed(s, *why, s->hello.len == 0, why);
	s->peeking = 0;
	return sedge_route(s, hi.sni[0] != '\0' ? hi.sni : NULL, hi.alpn,
	    hi.alpn_len);
}

/* After the PROXY header (or at once): the TLS handshake or the
 * ClientHello, tried now (it may have come with the header), or done. */
static int
sedge_next(struct session *s, const char **why)
{
	const struct frontend_conf *f = session_frontend(s);

	if (f->tls != NULL) {
		if ((s->r.ssl = tls_accept(f->tls, s->r.client.fd)) == NULL) {
			*why = "TLS: out of memory";
			return SEDGE_FAIL;
		}
		s->handshaking = 1;
		return sedge_handshake(s, why);
	}
	if (f->tls_passthrough) {
		s->peeking = 1;
		return sedge_hello(s, why);
	}
	return SEDGE_DONE;
}

/*
 * Look at what the client sent so far for its PROXY header (MSG_PEEK, so
 * nothing past the header is taken); once complete, take exactly the
 * header, adopt the addresses it declares and go on.
 */
static int
sedge_header(struct session *s, const char **why)
{
	struct sockaddr_storage src, dst;
	char *buf = s->x->pool.scratch;
	ssize_t n, len;

	if (!s->r.client.readable)
		return SEDGE_WAIT;
	n = recv(s->r.client.fd, buf, PROXY_HDR_MAX, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		s->r.client.readable = 0;
		return SEDGE_WAIT;
	}
	*why = "closed before its PROXY header";
	if (n <= 0) {
		s->r.err = n == 0 ? 0 : errno;
		return SEDGE_FAIL;
	}
	len = proxy_parse(session_frontend(s)->accept_proxy, buf, (size_t)n,
	    &src, &dst);
	if (len == 0 && n < PROXY_HDR_MAX) {
		s->r.client.readable = s->r.client.rdhup; /* wait for more */
		return s->r.client.rdhup ? SEDGE_FAIL : SEDGE_WAIT;
	}
	if (len <= 0 || recv(s->r.client.fd, buf, (size_t)len, 0) != len) {
		*why = "bad PROXY header";
		return SEDGE_FAIL;
	}
	if (src.ss_family == AF_INET || src.ss_family == AF_INET6) {
		session_adopt(&s->peer, &src);
		session_adopt(&s->dst, &dst);
	}
	s->awaiting = 0;
	return sedge_next(s, why);
}

void
session_adopt(union addr_ip *a, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		memcpy(&a->sin, ss, sizeof(a->sin));
	else if (ss->ss_family == AF_INET6)
		memcpy(&a->sin6, ss, sizeof(a->sin6));
	else
		a->sa.sa_family = AF_UNSPEC;
}

int
session_edge_begin(struct session *s, const char **why)
{
	if (session_frontend(s)->accept_proxy != PROXY_OFF) {
		s->awaiting = 1;
		return SEDGE_WAIT;
	}
	return sedge_next(s, why);
}

int
session_edge_step(struct session *s, const char **why)
{
	if (s->awaiting)
		return sedge_header(s, why);
	if (s->handshaking)
		return sedge_handshake(s, why);
	if (s->peeking)
		return sedge_hello(s, why);
	return SEDGE_DONE;
}

int
session_edge_waiting(const struct session *s)
{
	return s->awaiting || s->handshaking || s->peeking;
}

const char *
session_edge_timeout(struct session *s)
{
	const char *why;

	if (s->awaiting)
		return "no PROXY header in time";
	(void)sedge_failed(s, s->handshaking ? "TLS handshake timeout" :
	    "no whole ClientHello in time", s->handshaking, &why);
	return why;
}
