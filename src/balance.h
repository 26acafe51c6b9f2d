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
	unsigned	up:1;		/* health state */
	unsigned	backup:1;
};

struct lb {
	int			 algo;		/* enum balance_algo */
	struct lb_server	*servers;
	size_t			 n;
};

/*
 * Pick a server for a new connection. Primary servers that are up are
 * candidates; only when none is up, backup servers that are up are. A
 * candidate listed in tried[0..ntried) is skipped while an untried candidate
 * remains. key is the client's hash (source). Returns the server's index,
 * or -1 when no server is up.
 */
int	lb_pick(struct lb *lb, uint32_t key, const uint8_t *tried, size_t ntried);

#endif
