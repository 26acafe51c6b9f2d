/*
 * session_priv.h -- what the two rooms of a session share: the session.
 *
 *   session_edge.c  what a session reads from its client before it
 *                   connects: PROXY header, TLS handshake or ClientHello,
 *                   and the route they choose; it reports, never closes
 *   session.c       the rest: start, connect, relay, close (calls the above)
 */
#ifndef BATON_SESSION_PRIV_H
#define BATON_SESSION_PRIV_H

#include <stdint.h>

#include <event2/event_struct.h>

#include "config.h"
#include "hello.h"
#include "net.h"
#include "relay.h"
#include "session.h"

#define HEADER_MS	5000	/* PROXY header, TLS handshake or ClientHello */

struct session {
	TAILQ_ENTRY(session)	 entry;
	struct session_ctx	*x;
	struct relay		 r;		/* the two sockets, the bytes */
	struct event		 timer;		/* edge, connect, then idle */
	uint64_t		 id;
	uint64_t		 start_ms;
	uint64_t		 last_ms;	/* last byte moved */
	struct stat_counters	*fc;		/* the frontend's counters */
	struct stat_counters	*sc;		/* the server's, connected */
	uint32_t		 frontend;
	size_t			 backend;	/* the frontend's, or a route's */
	struct hello_buf	 hello;		/* passed through: sent first */
	int			 srv;		/* server index or -1 */
	unsigned		 connected:1;
	unsigned		 picked:1;	/* counted in the lb's active */
	unsigned		 awaiting:1;	/* the client's PROXY header */
	unsigned		 handshaking:1;	/* TLS with the client */
	unsigned		 peeking:1;	/* reading its ClientHello */
	uint8_t			 ntried;
	uint8_t			 tried[CONFIG_MAX_RETRIES + 1];
	union addr_ip		 peer;		/* the client, as declared */
	union addr_ip		 dst;		/* AF_UNSPEC: the frontend's */
};

static inline const struct frontend_conf *
session_frontend(const struct session *s)
{
	return &s->x->cfg->frontends[s->frontend];
}

static inline void
session_note(struct session_ctx *x, enum session_note what)
{
	x->note(x->note_arg, what);
}

/* session_edge.c */

enum sedge_result {
	SEDGE_WAIT,	/* more is to come from the client */
	SEDGE_DONE,	/* s->backend chosen: connect */
	SEDGE_FAIL,	/* *why says what went wrong; refuse the client */
};

/* Keep an IPv4 or IPv6 address; any other is left unspecified. */
void	session_adopt(union addr_ip *a, const struct sockaddr_storage *ss);
/* Start waiting for what the frontend asks for first: an enum
 * sedge_result (DONE at once when it asks for nothing). */
int	session_edge_begin(struct session *s, const char **why);
/* The client's socket has news: read or handshake on, then go on to the
 * next wait; an enum sedge_result. */
int	session_edge_step(struct session *s, const char **why);
/* Whether s still waits for its client before connecting. */
int	session_edge_waiting(const struct session *s);
/* The wait's bound passed: why (counted as a TLS failure when TLS). */
const char	*session_edge_timeout(struct session *s);

#endif
