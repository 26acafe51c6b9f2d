/* session.h -- one relayed connection: connect, relay, half-close, close */
#ifndef BATON_SESSION_H
#define BATON_SESSION_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>

#include "relay.h"
#include "stats.h"

struct addr;
struct config;
struct event_base;
struct lb;
struct session;

TAILQ_HEAD(session_list, session);

/* What a session tells the owner of its context, through its hook. */
enum session_note {
	SESSION_COUNTED,	/* counters changed: report them soon */
	SESSION_ENDED,		/* a session closed and is gone */
};

/*
 * What the sessions of a process share. Its owner (the worker) fills it
 * in before the first session_start() and frees it after the last
 * session_close(); sessions only use it, and tell the owner through note.
 */
struct session_ctx {
	struct event_base	*base;
	const struct config	*cfg;
	struct lb		*lbs;		/* balancers, per backend */
	struct stats_table	 stats;		/* this process's counters */
	struct relay_pool	 pool;		/* buffers, pipes, scratch */
	struct session_list	 sessions;	/* the open ones */
	void			(*note)(void *arg, enum session_note what);
	void			*note_arg;
};

/*
 * Take ownership of an accepted client socket fd of frontend fe, whose
 * peer is the client's address (id names it in the log), and start
 * connecting it to a server of the frontend's backend. Never fails: on
 * any error the client is closed and the failure counted.
 */
void	session_start(struct session_ctx *x, int fd, uint32_t fe,
	    const struct addr *peer, uint64_t id);
/* End a session for the given reason: close both sockets, free it all. */
void	session_close(struct session *s, const char *reason);

struct chan_session;

/* Whether a session may move to another process (session_move.c). */
enum session_move {
	MOVE_NOW,	/* relaying plain bytes: it can go */
	MOVE_LATER,	/* not relaying yet (header, connect) */
	MOVE_TLS,	/* stays: its TLS state lives here */
	MOVE_PINNED,	/* stays: its frontend or server may not move */
};

/*
 * What s is for a hand-over whose CHAN_HANDOVER words say which
 * frontends and servers may move.
 */
enum session_move session_movable(const struct session *s,
	    const uint32_t *words);
/*
 * Send s (MOVE_NOW) on channel chan as one CHAN_SESSION message. Returns
 * 0 when sent: s is gone from here; -1 (errno; EAGAIN: the channel is
 * full) when it stays and runs on untouched.
 */
int	session_send(struct session *s, int chan);
/*
 * Send every session that may move (words as for session_movable), as
 * many as the credit in words allows, on chan; mv says what became of
 * them: sent, waiting (may move later), staying and why.
 */
struct chan_moved;
void	session_move_all(struct session_ctx *x, const uint32_t *words,
	    int chan, struct chan_moved *mv);
/*
 * Run on a session another process sent: rec as checked by the inbox
 * (frontend and server indices of this configuration), its nfds
 * descriptors, which are ours from now on. Never fails: on any error
 * the session is closed.
 */
void	session_take(struct session_ctx *x, const struct chan_session *rec,
	    int *fds, size_t nfds);

#endif
