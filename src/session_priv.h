/* session_priv.h -- a session's insides, for the files that move them */
#ifndef BATON_SESSION_PRIV_H
#define BATON_SESSION_PRIV_H

#include <sys/queue.h>
#include <sys/time.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "config.h"
#include "net.h"
#include "relay.h"
#include "session.h"

#define HEADER_MS	5000	/* for a PROXY header and TLS handshake */

/*
 * One relayed connection. session.c runs it from accept to close;
 * session_move.c sends a relaying one to another process, or takes one
 * from another process and runs it on from there.
 */
struct session {
	TAILQ_ENTRY(session)	 entry;
	struct session_ctx	*x;
	struct relay		 r;		/* the two sockets, the bytes */
	struct event		 timer;		/* connect, then idle timeout */
	uint64_t		 id;
	uint64_t		 start_ms;
	uint64_t		 last_ms;	/* last byte moved */
	struct stat_counters	*fc;		/* the frontend's counters */
	struct stat_counters	*sc;		/* the server's, connected */
	uint32_t		 frontend;
	uint32_t		 backend;	/* the server's */
	int			 srv;		/* server index or -1 */
	unsigned		 connected:1;
	unsigned		 picked:1;	/* counted in the lb's active */
	unsigned		 awaiting:1;	/* the client's PROXY header */
	unsigned		 handshaking:1;	/* TLS with the client */
	uint8_t			 ntried;
	uint8_t			 tried[CONFIG_MAX_RETRIES + 1];
	union addr_ip		 peer;		/* the client, as declared */
	union addr_ip		 dst;		/* AF_UNSPEC: the frontend's */
};

/* Wall clock in ms, as the event loop last saw it. */
uint64_t session_now(const struct session_ctx *x);
void	ms_to_tv(uint64_t ms, struct timeval *tv);
void	session_note(struct session_ctx *x, enum session_note what);
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

#endif
