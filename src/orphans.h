/* orphans.h -- workers of the binary that exec'd this one (upgrade.c) */
#ifndef BATON_ORPHANS_H
#define BATON_ORPHANS_H

#include <sys/types.h>

struct master;

/* A worker the old image left: draining; listed in /stats until reaped. */
void	orphan_adopt(struct master *m, pid_t pid, unsigned gen, int id,
	    const char *version);
/* pid exited: forget it if it is one of them. */
void	orphan_reaped(struct master *m, pid_t pid);
void	orphans_free(struct master *m);

#endif
