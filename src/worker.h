/* worker.h -- a worker process: its state, shared with session.c */
#ifndef BATON_WORKER_H
#define BATON_WORKER_H

#include <sys/queue.h>
#include <stdint.h>

#include "balance.h"
#include "stats.h"

struct config;
struct event;
struct event_base;
struct session;
struct rbuf;
struct wpipe;

struct wbackend {
	struct lb		 lb;
};

TAILQ_HEAD(session_list, session);

/* The one state struct of a worker process. */
struct worker {
	struct event_base	*base;
	struct config		*cfg;
	int			 id;
	int			 chan;		/* to the master */
	struct event		*chan_ev;
	struct event		*sig_term;
	struct event		*drain_timer;
	int			 draining;

	struct wbackend		*backends;	/* one per backend */
	struct stats_table	 stats;		/* reported to the master */
	struct event		*report_timer;
	int			 report_armed;

	struct session_list	 sessions;
	char			*scratch;	/* one read at a time */
	struct chan_batch	*batch;		/* channel messages being read */
	struct rbuf		*free_bufs;	/* pool of relay buffers */
	unsigned		 nfree_bufs;
	struct wpipe		*free_pipes;	/* pool of pipes for splice() */
	unsigned		 npipes;	/* created, in use or free */
	uint64_t		 acked;		/* highest socket id received */
	uint64_t		 acked_sent;	/* last CHAN_ACK sent */
};

/*
 * Run a worker on its channel until drained or the master is gone; called
 * in the child right after fork. Frees everything and returns the exit
 * status.
 */
int	worker_main(struct config *cfg, int id, int chan);
/* A session ended; the worker exits when draining and none is left. */
void	worker_session_done(struct worker *w);
/* Counters changed: report them to the master within 250 ms. */
void	worker_stats_changed(struct worker *w);

#endif
