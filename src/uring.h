/* uring.h -- the master's io_uring: accepts and closes in batches */
#ifndef BATON_URING_H
#define BATON_URING_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/*
 * The master's hot path without a system call per connection: every
 * listener has URING_ACCEPTS accept requests armed on the ring, each with
 * its own address buffer, armed again as they complete; the master's
 * copies of handed-off sockets are closed by close requests queued on
 * the ring. What a round queued goes in one io_uring_enter at its end.
 * libevent polls the ring's descriptor like any other, so the rest of the
 * master (signals, timers, the stats endpoint, channels) is unchanged.
 *
 * Why not one multishot accept per listener: it empties the backlog in
 * one go, taking as many descriptors as there are connections waiting,
 * so nothing would keep the master's reserve of descriptors; and it has
 * one address buffer for all, where the hand-off carries each peer's. A
 * listener here takes at most URING_ACCEPTS descriptors before the master
 * sees them, which the listeners' budget leaves room for.
 *
 * Ownership: a socket accepted by the ring belongs to the ring until it
 * is given to the listener's callback; the callback owns it from then
 * on. An fd given to uring_close() belongs to the ring (it closes it,
 * at the latest when freed).
 */

/*
 * 32, not 8: a round takes up to this many connections per listener, so
 * each worker gets more descriptors per sendmsg and is woken less often
 * (hand-off scenario: master 11.3 -> 10.1 us per connection with
 * COOP_TASKRUN, 2026-12-04).
 */
#define URING_ACCEPTS	32	/* accepts armed per listener */

struct sockaddr;
struct uring;

/*
 * One accepted socket of a listener (fd >= 0) and its peer, or the
 * listener's accepts stopped with error err (fd -1, sa NULL: EMFILE,
 * ENFILE, ENOMEM...); they are not armed again until uring_listen().
 */
typedef void	(*uring_accept_fn)(void *arg, int fd, const struct sockaddr *sa,
		    int err);
/* A round of completions is over (accepted sockets can be handed on). */
typedef void	(*uring_round_fn)(void *arg);

/*
 * A ring on base, or NULL with the reason in why: the kernel is older
 * than 5.19, io_uring is disabled or forbidden
 * (sysctl, seccomp), or out of memory.
 */
struct uring	*uring_new(struct event_base *base, char *why, size_t whylen);
/* Cancel every accept, close what the ring owns, free it (may be NULL). */
void		 uring_free(struct uring *u);

/* The callback run after each round of accepts. */
void	uring_on_round(struct uring *u, uring_round_fn fn, void *arg);

/*
 * Accept on listening socket lfd, for fn(arg): arms its accepts unless
 * armed, or only points armed ones at fn(arg) (a listener taken over by
 * a reload keeps accepting). With arm 0, nothing is armed: the target is
 * set for sockets already accepted. -1: no memory.
 */
int	uring_listen(struct uring *u, int lfd, uring_accept_fn fn, void *arg,
	    int arm);
/*
 * Stop accepting on lfd. When this returns the kernel accepts nothing
 * more there for us; sockets it had already accepted are given to the
 * target at the next round, or, with forget set, closed (the listener
 * goes away, like the connections in its backlog) and lfd is forgotten.
 */
void	uring_unlisten(struct uring *u, int lfd, int forget);

/* Close fd soon, with others in one submission; it is never seen again. */
void	uring_close(struct uring *u, int fd);
/* Submit what is queued now (before a fork or an exec, say). */
void	uring_submit(struct uring *u);

/* Counters for /stats. */
struct uring_stats {
	uint64_t	accepted;	/* sockets accepted by the ring */
	uint64_t	closed;		/* closes submitted */
	uint64_t	submits;	/* io_uring_enter calls that submitted */
	uint64_t	armed;		/* accept requests armed */
};
void	uring_get_stats(const struct uring *u, struct uring_stats *st);

#endif
