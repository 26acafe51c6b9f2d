/*
 * session_priv.h -- what the rooms of a session share: the session.
 *
 *   session_edge.c  what a session reads from its client before it
 *                   connects: PROXY header, TLS handshake or ClientHello,
 *                   and the route they choose; it reports, never closes
 *   session.c       the rest: start, connect, relay, close (calls the above)
 *   session_move.c  a relaying session sent whole to another process, or
 *                   taken whole from one and run on from there
 */
#ifndef BATON_SESSION_PRIV_H
#define BATON_SESSION_PRIV_H

#include <sys/queue.h>
#include <sys/time.h>
#include <stdint.h>

#include <event2/event.h>
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
	size_t			 backend;	/* the frontend's, a route's, or
						   (taken over) the server's */
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

/* session.c, for session_move.c */

/* Wall clock in ms, as the event loop last saw it. */
uint64_t session_now(const struct session_ctx *x);
void	ms_to_tv(uint64_t ms, struct timeval *tv);
struct lb *session_lb(const struct session *s);
const struct backend_conf *session_backend_conf(const struct session *s);
struct stat_counters *session_server_counters(const struct session *s,
	    int srv);
/* The balancer no longer counts this session on its server. */
void	session_unpick(struct session *s);
/*
 * Forget s: its counters, timer and memory. Its relay must be freed
 * already (closed, or sent away).
 */
void	session_release(struct session *s);
/* Event callbacks, for sessions set up outside session.c. */
void	session_client_cb(evutil_socket_t fd, short what, void *arg);
void	session_server_cb(evutil_socket_t fd, short what, void *arg);
void	session_timer_cb(evutil_socket_t fd, short what, void *arg);

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
