/* chan_helpers.h -- a channel's far end in unit tests: fill it, read it */
#ifndef BATON_TEST_CHAN_HELPERS_H
#define BATON_TEST_CHAN_HELPERS_H

/*
 * Also what every check program over real descriptors needs: open_fds(),
 * chan_pair() and run_suite(). All static inline, since a program uses
 * only some of them (an unused static function would be a warning).
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"

/* Descriptors this process has open. */
static inline int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* A channel as the master makes one: a SOCK_SEQPACKET socketpair. */
static inline void
chan_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
}

/* A channel and an event loop for one test; sv[0] is the worker's end. */
struct chan_rig {
	struct event_base	*base;
	int			 sv[2];		/* -1 once closed */
	int			 nfds_before;
};

static inline void
chan_rig_open(struct chan_rig *r)
{
	r->nfds_before = open_fds();
	chan_pair(r->sv);
	ck_assert_ptr_nonnull(r->base = event_base_new());
}

/* Run the loop times times, never blocking. */
static inline void
chan_rig_run(struct chan_rig *r, int times)
{
	for (int i = 0; i < times; i++)
		ck_assert_int_ne(event_base_loop(r->base, EVLOOP_ONCE |
		    EVLOOP_NONBLOCK), -1);
}

/* The master's end goes away. */
static inline void
chan_rig_hang_up(struct chan_rig *r)
{
	close(r->sv[1]);
	r->sv[1] = -1;
}

/* Close it all: then as many descriptors are open as before. */
static inline void
chan_rig_close(struct chan_rig *r)
{
	event_base_free(r->base);
	if (r->sv[0] != -1)
		close(r->sv[0]);
	if (r->sv[1] != -1)
		close(r->sv[1]);
	ck_assert_int_eq(open_fds(), r->nfds_before);
}

/*
 * Shrink fd's send buffer to the least and send CHAN_READY until EAGAIN.
 * Returns how many went out.
 */
static inline long
chan_fill(int fd)
{
	uint64_t buf[2];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_READY, NULL, 0);
	long n = 0;
	int one = 1;

	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one,
	    sizeof(one)), 0);
	while (n < 100000 && chan_send(fd, buf, len, NULL, 0) == 0)
		n++;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_gt(n, 0);
	return n;
}

/*
 * The next message waiting on fd, past any CHAN_READY (the filler): its
 * type (CHAN_ACK's upto in *upto), or 0 when none is waiting.
 */
static inline int
chan_next(int fd, uint64_t *upto)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	int fds[CHAN_MAX_FDS];
	struct chan_msg m;
	char err[128];
	size_t nfds;
	ssize_t n;

	do {
		n = chan_recv(fd, buf, sizeof(buf), fds, &nfds);
		if (n == -1 && errno == EAGAIN)
			return 0;
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(chan_decode(buf, (size_t)n, nfds, &m, err,
		    sizeof(err)), 0);
	} while (m.type == CHAN_READY);
	*upto = m.ack;
	return m.type;
}

/*
 * The next message on fd, past the filler, is of type: 0 for none, and
 * a CHAN_ACK acknowledges upto.
 */
static inline void
chan_expect(int fd, int type, uint64_t upto)
{
	uint64_t got = 0;

	ck_assert_int_eq(chan_next(fd, &got), type);
	if (type == CHAN_ACK)
		ck_assert_uint_eq(got, upto);
}

/*
 * A worker's last words on fd: its acknowledgement up to upto (none when
 * 0), then CHAN_BYE, then nothing.
 */
static inline void
chan_expect_bye(int fd, uint64_t upto)
{
	if (upto > 0)
		chan_expect(fd, CHAN_ACK, upto);
	chan_expect(fd, CHAN_BYE, 0);
	chan_expect(fd, 0, 0);
}

/* Run a suite; the exit status of the test program. */
static inline int
run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
