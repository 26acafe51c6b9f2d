/* balance.h -- choosing a backend server: the pure balancing algorithms */
#ifndef BATON_BALANCE_H
#define BATON_BALANCE_H

#include <stddef.h>
#include <stdint.h>

/* A server as the balancer sees it; the worker keeps one per server. */
struct lb_server {
	int		weight;
	int		current;	/* smooth weighted round-robin state */
	unsigned	active;		/* open connections (this worker) */
	unsigned	max_active;	/* 0: no limit */
	uint32_t	seed;		/* hash of its name (source) */
	unsigned	up:1;		/* health state */
	unsigned	soft_down:1;	/* passive failures: avoid if possible */
	unsigned	backup:1;
};

struct lb {
	int			 algo;		/* enum balance_algo */
	struct lb_server	*servers;
	size_t			 n;
	size_t			 rr;		/* tie-break cursor */
	uint64_t		 rng;		/* random: xorshift state */
};

/*
 * Pick a server for a new connection. Primary servers that are up are
 * candidates; only when none is up, backup servers are. A full server
 * (active == max_active) is skipped, and so is one marked soft_down unless
 * no other is left. A candidate listed in tried[0..ntried) is skipped while
 * an untried candidate remains. key is the client's hash (source). Returns
 * the server's index, or -1 when there is none.
 */
int	lb_pick(struct lb *lb, uint32_t key, const uint8_t *tried, size_t ntried);
/* A stable 32-bit hash of a name or address (FNV-1a). */
uint32_t lb_hash(const void *data, size_t len, uint32_t h);
#define LB_HASH_INIT	2166136261u

#endif
