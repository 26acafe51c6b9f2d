/* master_priv.h -- the master's rooms: their types and their doors */
#ifndef BATON_MASTER_PRIV_H
#define BATON_MASTER_PRIV_H

/*
 * The master is five rooms, each calling only the ones below it:
 *
 *   master.c     state, start, stop, signals, pidfile
 *   mstats.c     the counters: the stats view, open connections
 *   reload.c     reload as one transaction: prepare, commit, abort
 *   upgrade.c    SIGUSR2: the binary re-executed in place
 *   discover.c   DNS service discovery (dnsq.c: c-ares on the loop)
 *   srvctl.c     runtime changes to servers (the API, DNS)
 *   wsend.c      server states and definitions to the workers
 *   wtable.c     the worker processes: fork, channel, reap, respawn,
 *                drain backstop
 *   orphans.c    workers an upgraded binary left: listed until reaped
 *   handoff.c    the accept path: listeners -> dispatch -> workers
 *   dispatch.c   the one owner of accepted sockets (dispatch.h)
 *   listeners.c  the listening sockets (listeners.h)
 *
 * Upward calls are function pointers set at start (dispatch's open count,
 * health's state changes, the endpoint's view).
 */

#include <sys/time.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "dispatch.h"
#include "stats.h"

struct chan_batch;
struct config;
struct discover;
struct endpoint;
struct event;
struct event_base;
struct health;
struct lset;
struct server_conf;

/* An old worker's part in a hand-over (handover.c). */
struct wproc_ho {
	unsigned		 asked:1;	/* its sessions are wanted */
	unsigned		 replied:1;	/* a CHAN_MOVED since asked */
	unsigned		 later:1;	/* ask again after a pause */
	uint32_t		 granted;	/* credit out, until CHAN_MOVED */
	uint32_t		 arrived;	/* sessions on that credit */
	struct wproc		*to;		/* rebalancing: where they go */
	uint64_t		 moved;		/* sessions, in all */
	struct chan_moved	 last;		/* its latest CHAN_MOVED */
};

/* One server of an orphan's configuration, as the old image named it. */
struct orphan_srv {
	char			*backend;
	char			*name;
	char			*addr;		/* as written */
};

/* A worker of the binary that exec'd this one: draining, reaped here. */
struct orphan {
	struct master		*m;
	pid_t			 pid;
	unsigned		 generation;
	int			 id;
	char			 version[32];
	int			 chan;		/* -1 once closed */
	struct event		*ev;
	struct stat_counters	 c;		/* its latest report */
	/* Its configuration's names, when the old image said them (the
	 * upgrade state), and where they stand in the current one. */
	char			**fe_names;
	size_t			 nfe;
	struct orphan_srv	*srv;
	size_t			 nsrv;
	int			 named;		/* the list is complete */
	size_t			*fe_map;	/* STATS_NOWHERE: gone */
	size_t			*srv_map;
	uint8_t			*srv_same;	/* at the same address */
	struct wproc_ho		 ho;
};

#define KILL_GRACE_S	5	/* past drain_timeout, before SIGKILL */

/* One configuration and the workers forked with it. */
struct generation {
	unsigned		 id;
	struct config		*cfg;
	unsigned		 refs;	/* its workers, +1 while current */
	struct stats_map	 map;	/* its names onto the current config */
};

enum wproc_state {
	WP_EMPTY,	/* no process: waiting to be (re)spawned */
	WP_STARTING,	/* forked, READY not yet received */
	WP_RUNNING,
	WP_DRAINING,	/* finishing; gets no new socket, is not replaced */
};

struct master;

/* A worker process (or its empty slot) as the master sees it. */
struct wproc {
	struct master		*m;
	struct generation	*gen;
	int			 id;		/* slot in its generation */
	int			 state;
	pid_t			 pid;
	int			 chan;
	struct event		*chan_ev;
	struct event		*timer;		/* respawn, or drain backstop */
	struct timeval		 started;
	unsigned		 backoff_ms;
	struct dtarget		 t;		/* its channel, for dispatch */
	struct stats_table	 st;		/* its latest report */
	unsigned		 said_bye:1;	/* drains on its own */
	unsigned		 replacement:1;	/* took a dead one's place */
	unsigned		 drain_due:1;	/* CHAN_DRAIN waits for room */
	struct wproc_ho		 ho;
};

/* The one state struct of the master process. */
struct master {
	struct event_base	*base;
	struct chan_batch	*batch;		/* worker messages being read */
	struct config		*cfg;		/* gen->cfg */
	struct generation	*gen;		/* the current one */
	struct lset		*ls;		/* NULL once stopping */
	struct uring		*ring;		/* accepts and closes; NULL:
						   epoll and close() */
	struct dispatch		 d;
	struct event		*hold_ev;
	struct wproc		**workers;	/* every generation's */
	size_t			 nworkers;
	struct event		*sigs[6];
	struct event		*stop_ev;	/* drain deadline */
	int			 stopping;
	char			*pidfile;	/* the one written */
	struct event		*status_ev;	/* STATUS= to systemd */
	struct event		*log_ev;	/* log_tick() every second */
	int			 upgrading;	/* quiescing before exec */
	struct event		*upgrade_check;	/* the checker's verdict */
	struct event		*upgrade_ev;
	struct timeval		 upgrade_began;
	uint64_t		 upgrade_failures;
	struct lset		*inherited;	/* listeners from the old image */
	int			 inherited_stats;	/* its stats socket */
	struct orphan		**orphans;	/* the old image's workers */
	size_t			 norphans;
	struct event		*orphan_ev;	/* their kill backstop */
	struct event		*handover_ev;	/* ask again after a pause */
	struct event		*drain_ev;	/* CHAN_DRAIN tried again */

	struct endpoint		*endpoint;	/* stats over HTTP */
	struct timeval		 start;
	unsigned		 generation;
	uint64_t		 reloads;
	uint64_t		 reload_failures;
	struct stats_table	 retired;	/* exited workers' totals */
	struct health		*health;
	struct discover		*disc;		/* DNS: NULL when none */
	uint8_t			*server_up;	/* per flat server: checks */
	uint8_t			*server_soft;	/* passive failures */
};

/* master.c: generations, and the callbacks given to health and endpoint */
struct generation *gen_new(unsigned id, struct config *cfg);
void	gen_unref(struct generation *g);
void	master_server_changed(void *m, size_t server, int up, int soft);
/* Tell the service manager, if any, how many workers run and connections
 * are open. */
void	master_status(struct master *m);
#define STATUS_INTERVAL_S	5

/* mstats.c: the endpoint's view, and dispatch's count of open sockets */
int	master_stats_view(void *m, struct stats_view *v);
void	master_stats_done(void *m, struct stats_view *v);
/* dispatch_open_fn: connections of fe open in workers. */
uint64_t mstats_open(void *m, uint32_t fe);

/* handoff.c */
/* Listener callbacks: one accepted socket; the end of a round. */
int	handoff_accept(void *m, size_t fe, int fd, const struct sockaddr *sa);
void	handoff_flush(void *m);
/* Start the hold timer's event; -1 when out of memory. */
int	handoff_init(struct master *m);
/*
 * Set up the master's ring as io_uring = says (auto: when the kernel
 * allows, else epoll), and log which path accepts; -1 when it is
 * required and cannot be had.
 */
int	handoff_ring(struct master *m);
/*
 * Raise the descriptor limit for the configuration, say if it falls
 * short, and size how many connections a worker may be given.
 */
void	handoff_nofile(struct master *m);

/* wtable.c */
/* Fork the current generation's workers. */
int	wtable_start(struct master *m);
/* SIGCHLD: reap, take back, replace. */
void	wtable_reap(struct master *m);
/* Grow the current generation's stats tables to its servers; -1 OOM. */
int	wtable_grow(struct master *m);
/* Take wp out of service: it drains, and a new one takes its place. */
void	wtable_retire(struct wproc *wp);
/* Tell every worker to finish and exit (stop, or an old generation). */
void	wtable_drain_old(struct master *m);
void	wtable_kill_all(struct master *m);
int	wtable_left(const struct master *m);
/* Pass the reopened log file to every worker. */
void	wtable_logfd(struct master *m, int fd);
/* Free every slot (at exit). */
void	wtable_free(struct master *m);
extern const char *const wproc_state_names[];

/* handover.c: an old generation's live sessions to the current one */
int	handover_init(struct master *m);
void	handover_free(struct master *m);
/* Ask the draining workers of older generations for their sessions. */
void	handover_begin(struct master *m);
/* Grant credit where it can go (after a reload, an ack, a report). */
void	handover_tick(struct master *m);
/* From wp: one session (CHAN_SESSION), the end of a credit (CHAN_MOVED).
 * -1: wp must be cut off (the descriptors are closed). */
int	handover_session(struct wproc *wp, const struct chan_session *cs,
	    int *fds, size_t nfds);
int	handover_moved(struct wproc *wp, const struct chan_moved *mv);
/* The same from an orphan; its names must have been mapped. */
int	handover_orphan_session(struct orphan *o, const struct chan_session *cs,
	    int *fds, size_t nfds);
int	handover_orphan_moved(struct orphan *o, const struct chan_moved *mv);
void	handover_bye(struct wproc *wp);
/*
 * wp took a dead worker's place: the other current workers send it
 * sessions until every one holds about as many (by their reports).
 */
void	handover_rebalance(struct wproc *wp);
/* wp is gone: nothing is sent its way any more. */
void	handover_forget(struct master *m, struct wproc *wp);
void	handover_view(const struct wproc_ho *ho, struct stats_handover *out);

/* wchild.c: in a new worker process; never returns */
void	wchild_run(struct master *m, struct wproc *wp, int chan)
	    __attribute__((noreturn));
/* srvctl.c: runtime changes to servers, told to the current workers */
struct api_req;
struct server_def;
/* Set s's runtime state and weight. */
void	srvctl_set(struct master *m, struct server_conf *s, int admin,
	    unsigned weight);
/* Add d to backend b (srvset_add()); NULL with errno as it says. */
struct server_conf *srvctl_add(struct master *m, size_t b,
	    const struct server_def *d);
/* Remove s: it drains, and is gone once its connections are. */
void	srvctl_remove(struct master *m, struct server_conf *s);
/* endpoint_control_fn: one API request. */
int	srvctl_api(void *m, const struct api_req *r, char *msg, size_t len);

/* wsend.c: the current generation told of servers */
/* Tell wp the states of servers [first, first + n). */
void	wsend_states(struct wproc *wp, size_t first, size_t n);
/* A server changed state: the current generation hears of it. */
void	wsend_servers(struct master *m, size_t server);
/* Tell wp to finish and exit (CHAN_DRAIN), now or once there is room. */
void	wsend_drain(struct wproc *wp);
/*
 * A server was added (or brought back): the current generation learns of
 * it, then of its state. A worker it cannot reach would disagree with
 * the master on server indices from now on: it is retired.
 */
void	wsend_srvdef(struct master *m, size_t b,
	    const struct server_conf *sc);

/* reload.c */
/* SIGHUP: the new file, or, on any error, the running one, untouched. */
void	reload_run(struct master *m);

#endif
