/* worker.h -- a worker process: receives sockets, runs their sessions */
#ifndef BATON_WORKER_H
#define BATON_WORKER_H

struct config;

/*
 * Run a worker on its channel until drained or the master is gone; called
 * in the child right after fork. Frees everything and returns the exit
 * status.
 */
int	worker_main(struct config *cfg, int id, int chan);

#endif
