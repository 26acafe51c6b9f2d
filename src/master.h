/* master.h -- the master process: listeners, dispatch, workers, signals */
#ifndef BATON_MASTER_H
#define BATON_MASTER_H

struct config;

/*
 * Bind every listener of cfg, fork the workers and run until stopped.
 * Takes ownership of cfg. Returns the process exit status: 0 after a clean
 * stop, 2 when it could not start.
 */
int	master_main(struct config *cfg);

#endif
