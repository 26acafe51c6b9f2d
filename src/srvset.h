/* srvset.h -- a configuration's server set at runtime: find, add, remove */
#ifndef BATON_SRVSET_H
#define BATON_SRVSET_H

#include <stddef.h>

#include "config.h"
#include "net.h"

struct chan_srvdef;

#define SRVSET_NAME_MAX	64	/* a runtime server's name, NUL included */

/* What defines a server added at runtime (the API, DNS). */
struct server_def {
	char		name[SRVSET_NAME_MAX];
	struct addr	addr;
	unsigned	weight;		/* 1..CONFIG_MAX_WEIGHT */
	int		backup;
	int		send_proxy;	/* enum proxy_proto; -1: the backend's */
	unsigned	max_connections;
	int		origin;		/* enum server_origin */
	int		admin;		/* enum server_admin */
};

/* The index of the backend named name, or -1. */
int	srvset_backend(const struct config *cfg, const char *name);
/* The index of b's server named name (removed ones too), or -1. */
int	srvset_server(const struct backend_conf *b, const char *name);
/* A name a server added at runtime may have: 1..63 of [A-Za-z0-9_.-]. */
int	srvset_valid_name(const char *name);

/*
 * Add d to backend b of cfg: a server removed at runtime with the same
 * name comes back in its place (its flat index, and its open
 * connections, kept); any other takes the next flat index. Returns the
 * server, or NULL with errno EEXIST (a server of that name is there),
 * ENOSPC (the backend holds CONFIG_MAX_SERVERS) or ENOMEM. The master
 * and its workers run the same additions in the same order, so they
 * agree on every index.
 */
struct server_conf *srvset_add(struct config *cfg, size_t b,
	    const struct server_def *d);
/* Mark a server removed: it takes no new connection from now on. */
void	srvset_remove(struct server_conf *s);
/* Whether s takes new connections, as far as its runtime state goes. */
int	srvset_admitting(const struct server_conf *s);

/*
 * A reload: carry what changed at runtime in old into cfg, the new file's
 * configuration, by backend and server name. A server of the file that
 * the new file defines the same way keeps its runtime state, weight, and
 * removal; one the new file changes takes the file's definition (and the
 * log says so when that drops a runtime change). Servers added at runtime
 * (API, DNS) and not removed are added to cfg unless the new file has a
 * server of that name, which wins. Returns 0, or -1 when out of memory.
 */
int	srvset_carry(const struct config *old, struct config *cfg);

/* The channel record for s of backend b, and back (channel.c checked
 * the record's fields; -1 here only for an unknown address family). */
void	srvset_to_chan(const struct server_conf *s, size_t b,
	    struct chan_srvdef *r);
int	srvset_from_chan(const struct chan_srvdef *r, struct server_def *d);

#endif
