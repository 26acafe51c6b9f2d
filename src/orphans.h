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
/* pid exited: forget it if it is one of them. */
void	orphan_reaped(struct master *m, pid_t pid);
/* Pass the reopened log file on to them too. */
void	orphans_logfd(struct master *m, int fd);
void	orphans_free(struct master *m);

#endif
