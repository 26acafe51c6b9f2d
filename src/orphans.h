/*
 * orphans.h -- the workers of the binary that exec'd this one (a binary
 * upgrade, upgrade.c): their channels are taken over, they are told to
 * drain as on a reload, their reports are shown in /stats, and they are
 * reaped here (SIGKILL if they overstay drain_timeout).
 */
#ifndef BATON_ORPHANS_H
#define BATON_ORPHANS_H

#include <sys/types.h>

struct master;

/* Take over a worker the old image left; chan is its channel or -1. */
void	orphan_adopt(struct master *m, pid_t pid, unsigned gen, int id,
	    const char *version, int chan);
/*
 * The names of the last adopted orphan's configuration, as the old image
 * wrote them: frontend i, server i (backend, name, address as written),
 * in order; then orphan_named() maps them onto the current configuration
 * and asks it for its live sessions (handover = on).
 */
void	orphan_name_frontend(struct master *m, size_t i, const char *name);
void	orphan_name_server(struct master *m, size_t i, const char *backend,
	    const char *name, const char *addr);
void	orphan_named(struct master *m);
/* After a reload: their names onto the new configuration. */
void	orphans_remap(struct master *m);
/* pid exited: forget it if it is one of them. */
void	orphan_reaped(struct master *m, pid_t pid);
/* Pass the reopened log file on to them too. */
void	orphans_logfd(struct master *m, int fd);
void	orphans_free(struct master *m);

#endif
