/* discover.h -- the master's DNS service discovery (resolve, dns-srv) */
#ifndef BATON_DISCOVER_H
#define BATON_DISCOVER_H

struct discover;
struct master;

/*
 * Follow every "server ... resolve" line and "discover = dns-srv:" of
 * the master's current configuration: resolve each now, then again at
 * its records' TTL, clamped to [5 s, resolve_interval] (the floor is
 * resolve_interval when that is shorter). Found servers are added and
 * removed through srvctl.c. NULL when there is nothing to follow, or
 * after logging why it cannot.
 */
struct discover	*discover_new(struct master *m);
/* Stop following; the servers found stay. */
void		 discover_free(struct discover *d);

#endif
