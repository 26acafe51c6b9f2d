/* dnsq.h -- DNS queries through c-ares, driven by a libevent loop */
#ifndef BATON_DNSQ_H
#define BATON_DNSQ_H

#include <stddef.h>

#include "net.h"

struct dnsq;
struct event_base;

#define DNSQ_HOST_MAX	256

/* One address of a host, with its record's TTL in seconds. */
struct dnsq_addr {
	struct addr	addr;
	unsigned	ttl;
};

/* One SRV record. */
struct dnsq_srv {
	char		host[DNSQ_HOST_MAX];	/* the target, no final dot */
	unsigned	port;
	unsigned	weight;
	unsigned	priority;
};

/*
 * The answer to a query: ok nonzero with n records (0: the name has
 * none), or ok zero with why it failed in err. Not called for queries
 * still pending when dnsq_free() runs.
 */
typedef void	(*dnsq_addrs_fn)(void *arg, int ok, const struct dnsq_addr *v,
		    size_t n, const char *err);
typedef void	(*dnsq_srv_fn)(void *arg, int ok, const struct dnsq_srv *v,
		    size_t n, const char *err);

/*
 * A resolver on base: the servers of /etc/resolv.conf, or, with
 * resolvers ("IP:PORT,..."), those only (and no /etc/hosts). NULL after
 * logging why.
 */
struct dnsq	*dnsq_new(struct event_base *base, const char *resolvers);
void		 dnsq_free(struct dnsq *q);
/* Every A and AAAA record of host, as addresses with port. -1 on OOM. */
int		 dnsq_addrs(struct dnsq *q, const char *host, unsigned port,
		    dnsq_addrs_fn fn, void *arg);
/* Every SRV record of name. -1 when out of memory. */
int		 dnsq_srv(struct dnsq *q, const char *name, dnsq_srv_fn fn,
		    void *arg);

#endif
