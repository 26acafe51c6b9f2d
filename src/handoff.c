/* handoff.c -- the accept path: listeners -> dispatch -> workers */
#include "ac_config.h"

#include <sys/time.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "listeners.h"
#include "log.h"
#include "master_priv.h"
#include "net.h"
#include "uring.h"

#define RETRY_MS	10	/* a full channel: try again this soon */
#define HOLD_TICK_MS	20	/* held sockets are looked at this often */

static uint64_t
handoff_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

int
handoff_accept(void *arg, size_t fe, int fd, const struct sockaddr *sa)
{
	struct master *m = arg;

	return dispatch_accept(&m->d, fd, sa, (uint32_t)fe, handoff_now_ms());
}

/*
 * Hand what is pending to the workers. When some is left (every channel
 * full, or no worker yet), accepting pauses and this runs again shortly:
 * no socket is dropped, and the backlog waits in the kernel.
 */
void
handoff_flush(void *arg)
{
	static const struct timeval tick = { 0, HOLD_TICK_MS * 1000 };
	struct master *m = arg;

	if (dispatch_run(&m->d) > 0) {
		if (m->ls != NULL)
			lset_pause(m->ls, RETRY_MS);
	} else if (m->ls != NULL && !m->upgrading) {
		lset_resume(m->ls);
	}
	if (m->d.held.n > 0 && !evtimer_pending(m->hold_ev, NULL))
		evtimer_add(m->hold_ev, &tick);
}

/* Let held sockets in as connections close; refuse those held too long. */
static void
handoff_hold_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	(void)dispatch_hold_tick(&m->d, handoff_now_ms());
	handoff_flush(m);
}

int
handoff_init(struct master *m)
{
	m->hold_ev = evtimer_new(m->base, handoff_hold_cb, m);
	return m->hold_ev == NULL ? -1 : 0;
}

static void
handoff_close(void *arg, int fd)
{
	uring_close(arg, fd);
}

int
handoff_ring(struct master *m)
{
	char why[160];

	if (m->cfg->io_uring == IO_URING_OFF) {
		log_info("accepting with epoll (io_uring = off)");
		return 0;
	}
	if ((m->ring = uring_new(m->base, why, sizeof(why))) == NULL) {
		if (m->cfg->io_uring == IO_URING_ON) {
			log_error("%s: io_uring = on, but io_uring cannot be "
			    "used: %s", m->cfg->path, why);
			return -1;
		}
		log_notice("accepting with epoll: io_uring cannot be used "
		    "(%s)", why);
		return 0;
	}
	m->d.close_fn = handoff_close;
	m->d.close_arg = m->ring;
	log_info("accepting with io_uring (accepts and closes in "
	    "batches)");
	return 0;
}

void
handoff_nofile(struct master *m)
{
	long need = config_nofile(m->cfg), have = net_raise_nofile(need);

	/*
	 * Workers inherit the limit: a worker is sent no more sockets than
	 * its table holds with its splice pipes, so none reaches it without
	 * its descriptor and each can connect onward.
	 */
	m->d.target_cap = net_nofile_conns(have);
	if (have < need)
		log_warnx("the open file limit is %ld, but max_connections "
		    "needs %ld per worker: connections beyond it will fail "
		    "(raise the hard limit: ulimit -Hn, LimitNOFILE=)", have,
		    need);
}
