/* check_outbox.c -- unit tests for the worker's outbox over a real channel */
#include "ac_config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "outbox.h"

/* A channel and an outbox on its worker end, sv[0]; sv[1] is the master. */
struct fixture {
	struct event_base	*base;
	struct outbox		 o;
	int			 sv[2];
	int			 calls;		/* of the sent hook */
	long			 filler;	/* messages that fill it */
};

static void
on_sent(void *arg)
{
	((struct fixture *)arg)->calls++;
}

static void
setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    f->sv), 0);
	ck_assert_ptr_nonnull(f->base = event_base_new());
	ck_assert_int_eq(outbox_init(&f->o, f->base, f->sv[0], on_sent, f), 0);
}

static void
teardown(struct fixture *f)
{
	outbox_free(&f->o);
	event_base_free(f->base);
	close(f->sv[0]);
	if (f->sv[1] != -1)
		close(f->sv[1]);
}

/* Shrink the worker end's send buffer and fill it until EAGAIN. */
static void
fill(struct fixture *f)
{
	uint64_t buf[2];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_READY, NULL, 0);
	int one = 1;

	ck_assert_int_eq(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &one,
	    sizeof(one)), 0);
	while (f->filler < 100000 && chan_send(f->sv[0], buf, len, NULL, 0) ==
	    0)
		f->filler++;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_gt(f->filler, 0);
}

/*
 * The next message on the master's end: its type (CHAN_ACK's upto in
 * *upto), or 0 when there is none.
 */
static int
next_msg(struct fixture *f, uint64_t *upto)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	int fds[CHAN_MAX_FDS];
	struct chan_msg m;
	char err[128];
	size_t nfds;
	ssize_t n;

	n = chan_recv(f->sv[1], buf, sizeof(buf), fds, &nfds);
	if (n == -1 && errno == EAGAIN)
		return 0;
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(chan_decode(buf, (size_t)n, nfds, &m, err,
	    sizeof(err)), 0);
	*upto = m.ack;
	return m.type;
}

/* Read the filler back, so the channel has room again. */
static void
drain_filler(struct fixture *f)
{
	uint64_t upto;

	for (long i = 0; i < f->filler; i++)
		ck_assert_int_eq(next_msg(f, &upto), CHAN_READY);
}

/* Run the loop until the sent hook was called, a bounded number of times. */
static void
loop_until_sent(struct fixture *f)
{
	for (int i = 0; i < 100 && f->calls == 0; i++)
		ck_assert_int_ne(event_base_loop(f->base, EVLOOP_ONCE |
		    EVLOOP_NONBLOCK), -1);
	ck_assert_int_eq(f->calls, 1);
}

START_TEST(test_sent_at_once)
{
	struct fixture f;
	uint64_t upto = 0;

	setup(&f);
	outbox_ack(&f.o, 3);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_ACK);
	ck_assert_uint_eq(upto, 3);
	outbox_bye(&f.o);
	ck_assert(outbox_empty(&f.o));
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_BYE);
	ck_assert_int_eq(next_msg(&f, &upto), 0);
	ck_assert_int_eq(f.calls, 0);
	teardown(&f);
}
END_TEST

START_TEST(test_full_channel_ack_waits_then_bye)
{
	struct fixture f;
	uint64_t upto = 0;

	setup(&f);
	fill(&f);
	outbox_ack(&f.o, 5);
	ck_assert(!outbox_acked(&f.o));
	outbox_ack(&f.o, 7);		/* cumulative: only the newest waits */
	outbox_bye(&f.o);
	ck_assert(!outbox_acked(&f.o));
	ck_assert(!outbox_empty(&f.o));
	drain_filler(&f);
	ck_assert_int_eq(next_msg(&f, &upto), 0);
	loop_until_sent(&f);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_ACK);
	ck_assert_uint_eq(upto, 7);
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_BYE);
	ck_assert_int_eq(next_msg(&f, &upto), 0);
	teardown(&f);
}
END_TEST

START_TEST(test_acks_only_grow_and_stop_at_bye)
{
	struct fixture f;
	uint64_t upto = 0;

	setup(&f);
	outbox_ack(&f.o, 5);
	outbox_ack(&f.o, 3);
	outbox_ack(&f.o, 5);
	outbox_bye(&f.o);
	outbox_ack(&f.o, 9);
	outbox_bye(&f.o);
	ck_assert(outbox_empty(&f.o));
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_ACK);
	ck_assert_uint_eq(upto, 5);
	ck_assert_int_eq(next_msg(&f, &upto), CHAN_BYE);
	ck_assert_int_eq(next_msg(&f, &upto), 0);
	teardown(&f);
}
END_TEST

START_TEST(test_master_gone)
{
	struct fixture f;

	setup(&f);
	close(f.sv[1]);
	f.sv[1] = -1;
	outbox_ack(&f.o, 1);		/* EPIPE, and no SIGPIPE */
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	outbox_bye(&f.o);
	ck_assert(outbox_empty(&f.o));
	teardown(&f);
}
END_TEST

START_TEST(test_master_gone_while_waiting)
{
	struct fixture f;

	setup(&f);
	fill(&f);
	outbox_ack(&f.o, 2);
	outbox_bye(&f.o);
	ck_assert(!outbox_empty(&f.o));
	close(f.sv[1]);
	f.sv[1] = -1;
	loop_until_sent(&f);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	teardown(&f);
}
END_TEST

static Suite *
outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("channel");

	tcase_add_test(tc, test_sent_at_once);
	tcase_add_test(tc, test_full_channel_ack_waits_then_bye);
	tcase_add_test(tc, test_acks_only_grow_and_stop_at_bye);
	tcase_add_test(tc, test_master_gone);
	tcase_add_test(tc, test_master_gone_while_waiting);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(outbox_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
