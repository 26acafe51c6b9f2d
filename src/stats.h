/* stats.h -- counters, worker reports, and their JSON/Prometheus rendering */
#ifndef BATON_STATS_H
#define BATON_STATS_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct frontend_conf;
struct stats_map;

/* One set of counters: the whole worker, a frontend or a server. */
struct stat_counters {
	uint64_t	active;
	uint64_t	total;
	uint64_t	errors;		/* frontend: reached no server */
	uint64_t	failures;	/* server: failed connects */
	uint64_t	bytes_in;	/* from clients */
	uint64_t	bytes_out;	/* to clients */
	uint64_t	handed_over;	/* sessions adopted from an older
					   generation (live hand-over) */
};

/*
 * A frontend's TLS edge: handshakes it terminated (or, passed through,
 * ClientHellos read whole), those that failed (or were not TLS, too large
 * or too slow), and the versions of the terminated ones.
 */
struct stat_tls {
	uint64_t	handshakes;
	uint64_t	failures;
	uint64_t	versions[3];	/* by enum tls_vers: 1.2, 1.3, other */
};

/* Counters in the shape of a configuration; servers flat over backends,
 * route slots flat over frontends (config.nroute_slots). */
struct stats_table {
	struct stat_counters	 all;
	struct stat_counters	*frontends;
	size_t			 nfrontends;
	struct stat_counters	*servers;
	size_t			 nservers;
	size_t			 cap;		/* room in servers */
	struct stat_tls		*tls;		/* per frontend */
	uint64_t		*routes;	/* times each route was taken */
	size_t			 nroutes;
};

/* Kinds of a report record. */
enum stat_kind {
	STAT_WORKER = 1,
	STAT_FRONTEND,
	STAT_SERVER,
	STAT_TLS,	/* index: a frontend; tls */
	STAT_ROUTE,	/* index: a route slot; route */
};

/* One report record (CHAN_STATS): absolute values, so a lost one is
 * harmless. Which member holds them depends on kind. */
struct stat_record {
	uint32_t		kind;
	uint32_t		index;
	union {
		struct stat_counters	c;
		struct stat_tls		tls;
		uint64_t		route;
	};
};

/*
 * stats_tls.c: the TLS and route parts of a table, a map and the records,
 * for the functions above (which call these; nothing else needs to).
 */
int	stats_tls_init(struct stats_table *t, const struct config *cfg);
void	stats_tls_free(struct stats_table *t);
void	stats_tls_zero(struct stats_table *t);
void	stats_tls_add(struct stats_table *dst, const struct stats_table *src);
/* Fill map's routes; its frontends must be mapped already. */
int	stats_tls_map(struct stats_map *map, const struct config *from,
	    const struct config *to);
void	stats_tls_add_mapped(struct stats_table *dst,
	    const struct stats_table *src, const struct stats_map *map);
size_t	stats_tls_nrecords(const struct stats_table *t);
/* Record r (0..stats_tls_nrecords) of the TLS part into rec. */
void	stats_tls_record(const struct stats_table *t, size_t r,
	    struct stat_record *rec);
/* Check a STAT_TLS or STAT_ROUTE record (number i); 0 or -1 with err. */
int	stats_tls_check(const struct stats_table *t,
	    const struct stat_record *r, size_t i, char *err, size_t errlen);
void	stats_tls_store(struct stats_table *t, const struct stat_record *r);
/* "TLSv1.2", "TLSv1.3", "other": a version counter's name, by index. */
const char	*stats_tls_version_name(size_t k);
/* Route k of f as its line reads ("NAME", "alpn:PROTO", both), or
 * "default" for k == f->nroutes, into buf. */
void		 stats_route_label(char *buf, size_t size,
		    const struct frontend_conf *f, size_t k);

enum server_status {
	SERVER_UP,
	SERVER_DOWN,
	SERVER_DRAIN,
	SERVER_MAINT,
	SERVER_GONE,	/* removed at runtime and drained: not shown */
};

/* A growable string; on allocation failure it stays marked and empty-ish. */
struct sbuf {
	char	*s;
	size_t	 len;
	size_t	 cap;
	int	 oom;
};

void	sbuf_printf(struct sbuf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	sbuf_free(struct sbuf *b);

/* Size a table for cfg, all zero. -1 when out of memory. */
int	stats_table_init(struct stats_table *t, const struct config *cfg);
void	stats_table_free(struct stats_table *t);
/*
 * Grow t's servers to nservers, the new ones zero; within the room
 * stats_table_init() made, nothing moves. -1 when out of memory.
 */
int	stats_table_grow(struct stats_table *t, size_t nservers);
void	stats_table_zero(struct stats_table *t);
/* Add src into dst (same shape); with no_active, src's active is skipped. */
void	stats_table_add(struct stats_table *dst, const struct stats_table *src,
	    int no_active);

/*
 * Where one configuration's frontends and servers stand in another, by
 * name: STATS_NOWHERE for those the other does not have.
 */
#define STATS_NOWHERE	((size_t)-1)
struct stats_map {
	size_t	*frontends;
	size_t	 nfrontends;
	size_t	*servers;
	size_t	 nservers;
	size_t	*routes;	/* the same route (names, backend) */
	size_t	 nroutes;
};

/* Map from's names onto to's indices. -1 when out of memory. */
int	stats_map_init(struct stats_map *map, const struct config *from,
	    const struct config *to);
void	stats_map_free(struct stats_map *map);
/* Add src (shaped like map's from) into dst (shaped like map's to). */
void	stats_table_add_mapped(struct stats_table *dst,
	    const struct stats_table *src, const struct stats_map *map,
	    int no_active);

/*
 * Write t as records into out[0..max), starting at record number first
 * (worker, then frontends, then servers, then the frontends' TLS, then the
 * route slots). Returns how many were written.
 */
size_t	stats_records(const struct stats_table *t, size_t first,
	    struct stat_record *out, size_t max);
size_t	stats_nrecords(const struct stats_table *t);
/*
 * Check records from a worker and store them into t. Nothing is stored
 * unless all are valid. Returns 0, or -1 with the reason in err.
 */
int	stats_apply(struct stats_table *t, const struct stat_record *recs,
	    size_t n, char *err, size_t errlen);

/* An old worker asked to hand its sessions over: how far it got. */
struct stats_handover {
	int			 asked;
	uint64_t		 moved;		/* sessions sent on */
	uint32_t		 waiting;	/* may move, not yet */
	uint32_t		 tls;		/* stay: TLS */
	uint32_t		 pinned;	/* stay: server/frontend gone */
};

/* A worker as the stats endpoint shows it. */
struct stats_worker {
	int			 id;
	pid_t			 pid;
	unsigned		 generation;
	const char		*state;	/* starting | running | draining */
	const char		*version;	/* of the binary it runs */
	struct stat_counters	 c;
	struct stats_handover	 ho;
};

/* Everything the endpoint renders, gathered by the master. */
struct stats_view {
	const char		*version;
	pid_t			 pid;
	double			 uptime_s;
	unsigned		 generation;
	uint64_t		 reloads;
	uint64_t		 reload_failures;
	uint64_t		 redispatched;
	int			 accept_paused;	/* now: new clients wait */
	double			 accept_paused_s;	/* paused, in all */
	uint64_t		 accept_pauses;
	const char		*accept_with;	/* "io_uring" or "epoll" */
	const struct config	*cfg;
	struct stats_table	 sum;		/* live and exited workers */
	struct stats_worker	*workers;
	size_t			 nworkers;
	uint8_t			*server_status;	/* per flat server */
};

const char	*stats_status_name(int status);
/* Render the contract's /stats JSON document into out. */
void	stats_render_json(const struct stats_view *v, struct sbuf *out);
/* stats_prom.c: render the Prometheus text exposition format 0.0.4
 * into out. */
void	stats_render_prometheus(const struct stats_view *v, struct sbuf *out);

#endif
