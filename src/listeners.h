/* listeners.h -- the master's listening sockets: bind, take over, accept */
#ifndef BATON_LISTENERS_H
#define BATON_LISTENERS_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

struct config;
struct event;
struct event_base;
struct uring;

/*
 * One accepted socket of frontend fe, and its peer: the callee owns fd
 * from here.
 * Returns 0, or -1 to stop accepting until lset_resume().
 */
typedef int	(*lset_accept_fn)(void *arg, size_t fe, int fd,
		    const struct sockaddr *sa);
/* A round of accepts is over: hand them on. */
typedef void	(*lset_flush_fn)(void *arg);

struct listener {
	struct lset	*set;
	int		 fd;		/* -1 until commit when taken over */
	struct listener	*from;		/* the running one it takes over */
	size_t		 frontend;
	struct event	*ev;
	struct addr	 addr;
	char		 text[ADDR_STRLEN];
	const char	*name;		/* its frontend's, from the config */
};

/* Every listener of one configuration. */
struct lset {
	struct event_base	*base;
	struct uring		*ring;		/* accept on it; NULL: epoll */
	int			 live;		/* the ring's rounds flush it */
	struct listener		**v;
	size_t			 n;
	int			 paused;
	int			 backoff;	/* paused by an accept error */
	int			 budget;	/* paused: descriptors run short */
	int			 fd_high;	/* an accepted fd this high: pause */
	uint64_t		 pauses;	/* times accepting stopped */
	uint64_t		 pause_since_ms;	/* this pause began */
	uint64_t		 pause_ms;	/* earlier pauses, in all */
	struct event		*resume_ev;
	lset_accept_fn		 accept;
	lset_flush_fn		 flush;
	void			*arg;
};

/*
 * Prepare the listeners of cfg: an address that cur (the
 * running set, may be NULL) already listens on is taken over at commit
 * (its socket never closes), the others are bound now. Nothing in cur
 * changes. The set accepts on ring (multishot accepts, see uring.h) or,
 * when ring is NULL, through libevent on base. Returns the new set, or
 * NULL after logging which address failed.
 */
struct lset	*lset_prepare(const struct lset *cur, const struct config *cfg,
		    struct event_base *base, struct uring *ring,
		    lset_accept_fn accept, lset_flush_fn flush, void *arg);
/*
 * A running set made of listening sockets inherited across exec (binary
 * upgrade), for lset_prepare() to take over by address; it owns fds.
 * NULL when out of memory.
 */
struct lset	*lset_inherit(struct event_base *base, const int *fds,
		    size_t n);
/*
 * Make next the running set: take over cur's sockets, close those cur
 * has and next does not, start accepting (unless cur was paused), free
 * cur (may be NULL). Cannot fail halfway; -1 if an event could not be
 * added.
 */
int	lset_commit(struct lset *next, struct lset *cur);
/* Time accepting was paused, for any reason, the current pause included. */
uint64_t lset_paused_ms(const struct lset *s);
/* Free a set (may be NULL): close what it bound; taken-over sockets stay. */
void	lset_free(struct lset *s);
/*
 * Stop accepting; after ms milliseconds the flush callback runs and
 * decides whether to resume.
 */
void	lset_pause(struct lset *s, unsigned ms);
/*
 * Accept again, unless an accept error's back-off is still running, or
 * the descriptor table is still too full (then the flush callback runs
 * again shortly).
 */
void	lset_resume(struct lset *s);

#endif
