/* dispatch.h -- the master's one owner of accepted sockets */
#ifndef BATON_DISPATCH_H
#define BATON_DISPATCH_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"

struct config;
struct stats_map;

/*
 * The ownership rule. Every accepted socket the master holds is in
 * exactly one of these queues, and nowhere else in the master:
 *
 *   pend     accepted, waiting for a worker;
 *   held     over its frontend's max_connections, waiting for room;
 *   unacked  of one target: sent on that worker's channel and not yet
 *            acknowledged (the worker may or may not have it).
 *
 * A socket moves between queues only here, and leaves the room only by
 * close(): when its worker acknowledges it, when it is refused (held too
 * long, its frontend removed by a reload, the master stopping), or when
 * the room is freed. A send that fails leaves it where it was.
 *
 * Acknowledgements are per channel. A target numbers the sockets it
 * sends 1, 2, 3... in send order (the record's id), and the worker
 * acknowledges "every id up to N" of that channel; the channel keeps
 * order, so an acknowledgement covers exactly the first N - acked entries
 * of the target's unacked queue, whatever was re-dispatched before.
 */

/*
 * A live session moving from an old generation to the current one: its
 * client socket is the dsock's fd, the rest is here. It travels the same
 * queues as an accepted socket and is acknowledged the same way.
 */
struct dmove {
	struct chan_session	 rec;	/* as the old worker sent it */
	int			 fds[3];	/* server, then pipes; -1: none */
	uint32_t		 server;	/* current numbering, or
					   CHAN_NO_SERVER */
	int			 home;		/* going back to its sender:
					   numbered as the sender's */
};

/* One accepted socket, or the client socket of a moving session. */
struct dsock {
	int		 fd;
	uint32_t	 frontend;	/* index in the current configuration */
	uint64_t	 since_ms;	/* held: when it started waiting */
	struct chan_conn c;		/* the record sent: id, peer */
	struct dmove	*mv;		/* a moving session, or NULL */
};

/* An ordered queue of sockets. */
struct dqueue {
	struct dsock	*v;
	size_t		 n;
	size_t		 cap;
};

/* One worker's channel as dispatch sees it; embedded in its owner. */
struct dtarget {
	int		 chan;		/* not owned */
	int		 open;		/* may be sent sockets (owner sets) */
	int		 full;		/* channel full this round */
	int		 gone;		/* taken back: accepts no more acks */
	uint64_t	 sent;		/* sockets sent = the last id used */
	uint64_t	 acked;		/* the worker has ids 1..acked */
	uint64_t	 closed;	/* per its reports (leastconn) */
	uint64_t	*fe_sent;	/* per frontend of its configuration */
	size_t		 nfe;
	struct dqueue	 unacked;
};

/* Connections open in workers for a frontend (the owner knows reports). */
typedef uint64_t (*dispatch_open_fn)(void *arg, uint32_t frontend);

/* Close fd, the room's copy of a socket (batched by the owner, say). */
typedef void (*dispatch_close_fn)(void *arg, int fd);

/* Per frontend of the current configuration, counted by the master. */
struct dcounts {
	uint64_t	*accepted;	/* every socket accepted */
	uint64_t	*refused;	/* closed here, never handed to a worker */
	size_t		 n;
};

struct dispatch {
	const struct config	*cfg;		/* the current one */
	struct dqueue		 pend;
	struct dqueue		 held;
	struct dtarget		**t;		/* targets, in turn order */
	size_t			 nt;
	size_t			 rr;		/* next in turn */
	struct dcounts		 counts;
	uint64_t		 target_cap;	/* most open per target; 0: any */
	uint64_t		 accepted;	/* over every configuration */
	uint64_t		 redispatched;
	uint64_t		 moving;	/* sessions queued here (dmove) */
	dispatch_open_fn	 open_fn;
	void			*open_arg;
	dispatch_close_fn	 close_fn;	/* the master's copies; NULL:
						   close() */
	void			*close_arg;
};

#define DISPATCH_PENDING_MAX	256	/* pend: stop accepting beyond */
#define DISPATCH_HOLD_MAX	256	/* held: refuse beyond */
#define DISPATCH_HOLD_MS	1000	/* held longer: refused */

/* Set up for cfg; -1 when out of memory. */
int	dispatch_init(struct dispatch *d, const struct config *cfg,
	    dispatch_open_fn fn, void *arg);
/* Close every socket still queued, pend, held and every target's. */
void	dispatch_free(struct dispatch *d);

/* Set up t for channel chan and a configuration of nfe frontends. */
int	dtarget_init(struct dtarget *t, int chan, size_t nfe);
/* Free t's tables; its queue must be empty (dispatch_take_back). */
void	dtarget_free(struct dtarget *t);

/* Targets in turn order; a detached target gets nothing more. */
int	dispatch_attach(struct dispatch *d, struct dtarget *t);
void	dispatch_detach(struct dispatch *d, struct dtarget *t);

/*
 * A socket accepted on a listener of frontend fe (current numbering):
 * queued to be sent, or held while the frontend is at its limit, or
 * refused (closed) when the hold queue is full. Returns 0, or -1 when
 * pend is full after this one: stop accepting until dispatch_run()
 * empties it.
 */
int	dispatch_accept(struct dispatch *d, int fd, const struct sockaddr *sa,
	    uint32_t fe, uint64_t now_ms);
/*
 * A live session of an old generation, to go to a current worker like an
 * accepted socket (fd is its client socket; mv its state, frontend and
 * server already in the current numbering). The room owns both from now
 * on, also when this fails (-1: out of memory; they are closed then).
 */
int	dispatch_move(struct dispatch *d, int fd, struct dmove *mv,
	    uint32_t fe);
/*
 * Send a moving session straight to target t, a worker of the current
 * configuration (rebalancing), or, when that fails, queue it as
 * dispatch_move() does. If t is taken back, it goes to another.
 */
int	dispatch_send_to(struct dispatch *d, struct dtarget *t, int fd,
	    struct dmove *mv, uint32_t fe);
/*
 * Send a moving session straight back to target t, its sender (mv->rec in
 * t's numbering), acknowledged like any other. The room owns fd and mv
 * from now on; -1 when the send failed and they are closed. If t is taken
 * back, the session is closed: it cannot go anywhere else.
 */
int	dispatch_return(struct dispatch *d, struct dtarget *t, int fd,
	    struct dmove *mv);
/* Close a moving session's descriptors and free it. */
void	dmove_free(struct dmove *mv);

/*
 * Hand pending sockets to open targets, one sendmsg per target per round:
 * round-robin in equal shares, or with leastconn one at a time to the
 * least loaded. A full channel is skipped this round; a broken one
 * (EPIPE) is closed to sends; a target with target_cap sockets open (sent
 * and not reported closed) gets none: its descriptor table would not
 * hold them. Returns how many are still pending.
 */
size_t	dispatch_run(struct dispatch *d);
/*
 * The worker on t has every id up to upto: close those copies. A
 * repeated or stale acknowledgement changes nothing. Returns -1 when
 * upto was never sent, or goes beyond what t had acknowledged when it
 * was taken back (the worker is lying).
 */
int	dispatch_ack(struct dispatch *d, struct dtarget *t, uint64_t upto);
/*
 * The worker on t will never acknowledge more (it died and its channel
 * was read to the end, or it said bye): its unacknowledged sockets go to
 * the front of pend, oldest first, or are closed when closing is set
 * (the master stops). Returns how many were re-queued.
 */
size_t	dispatch_take_back(struct dispatch *d, struct dtarget *t,
	    int closing);
/*
 * Let held sockets in as their frontend has room (pend may then pass
 * DISPATCH_PENDING_MAX by at most DISPATCH_HOLD_MAX); refuse those held
 * for DISPATCH_HOLD_MS. Returns how many are still held.
 */
size_t	dispatch_hold_tick(struct dispatch *d, uint64_t now_ms);
/* Close pend and held (the master stops accepting). */
void	dispatch_close_queued(struct dispatch *d);
/* Sockets of frontend fe waiting in pend. */
uint64_t dispatch_pending(const struct dispatch *d, uint32_t fe);

/*
 * Counters for a new configuration: old's carried by name (map), into
 * out (sized for nfe). -1 when out of memory, then out is empty.
 */
int	dispatch_counts_remap(const struct dcounts *old,
	    const struct stats_map *map, size_t nfe, struct dcounts *out);
void	dispatch_counts_free(struct dcounts *c);
/*
 * Switch to a reloaded configuration (cannot fail): queued sockets are
 * renumbered by map (old frontend -> new); those whose frontend is gone
 * are closed (their counters go with the frontend). counts (from
 * dispatch_counts_remap) replaces the counters.
 */
void	dispatch_reload(struct dispatch *d, const struct config *cfg,
	    const struct stats_map *map, struct dcounts *counts);

#endif
