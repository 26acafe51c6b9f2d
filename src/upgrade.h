/* upgrade.h -- SIGUSR2: the binary re-executed in place (see upgrade.c) */
#ifndef BATON_UPGRADE_H
#define BATON_UPGRADE_H

struct master;

#define UPGRADE_MAX_LISTEN	1024	/* listening sockets carried over */

/* Remember how baton was started (main's argv), to start it again. */
void	upgrade_set_argv(char **argv);
/* SIGUSR2: check the binary, quiesce, exec; on failure, go on. */
void	upgrade_start(struct master *m);
/*
 * At start: if this image was exec'd by an upgrade, take over its state
 * (counters, server health, old workers to reap) and set m->inherited and
 * m->inherited_stats for the listeners to take over. 0, or -1 (logged).
 */
int	upgrade_adopt(struct master *m);

#endif
