/* wchild.c -- a new worker process: out of the master's world, into its own */
#include "ac_config.h"

#define _GNU_SOURCE 1
#include <sys/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "master_priv.h"
#include "worker.h"

/* Close every descriptor from 3 up but those in keep (sorted). */
static void
wproc_close_from3(const int *keep, size_t n)
{
	unsigned lo = 3;

	for (size_t i = 0; i <= n; i++) {
		unsigned hi = i < n ? (unsigned)keep[i] : ~0U;
		if (i < n && keep[i] < (int)lo)
			continue;
		if (hi > lo && close_range(lo, hi - 1, 0) == -1)
			for (unsigned fd = lo; fd < hi && fd < 65536; fd++)
				(void)close((int)fd);
		lo = hi + 1;
	}
}

/*
 * In the new child: leave the master's world without touching it. The
 * event base gets its own epoll instance before it is freed (freeing it
 * on the shared one would unregister the parent's events), which also
 * puts the signal dispositions back; then every descriptor but the
 * channel and the log closes. The master's memory is left as it is.
 */
void
wchild_run(struct master *m, struct wproc *wp, int chan)
{
	struct config *cfg = wp->gen->cfg;
	int keep[2], rc;

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (event_reinit(m->base) == -1)
		_exit(1);
	event_base_free(m->base);
	m->base = NULL;
	keep[0] = chan < log_fd() ? chan : log_fd();
	keep[1] = chan < log_fd() ? log_fd() : chan;
	wproc_close_from3(keep, 2);
	rc = worker_main(cfg, wp->id, chan);
	log_close();
	exit(rc);
}
