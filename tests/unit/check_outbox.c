/* check_outbox.c -- unit tests for the worker's outbox over a real channel */
#include "ac_config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "chan_helpers.h"
#include "channel.h"
#include "outbox.h"

/* A channel and an outbox on its worker end, sv[0]; sv[1] is the master. */
struct fixture {
	struct chan_rig		 rig;
	struct outbox		 o;
	int			 calls;		/* of the sent hook */
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
	chan_rig_open(&f->rig);
	ck_assert_int_eq(outbox_init(&f->o, f->rig.base, f->rig.sv[0], on_sent,
	    f), 0);
}

static void
teardown(struct fixture *f)
{
	outbox_free(&f->o);
	chan_rig_close(&f->rig);
}

/* Run the loop until the sent hook was called, a bounded number of times. */
static void
loop_until_sent(struct fixture *f)
{
	for (int i = 0; i < 100 && f->calls == 0; i++)
		chan_rig_run(&f->rig, 1);
	ck_assert_int_eq(f->calls, 1);
}

START_TEST(test_sent_at_once)
{
	struct fixture f;

	setup(&f);
	outbox_ack(&f.o, 3);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	chan_expect(f.rig.sv[1], CHAN_ACK, 3);
	outbox_bye(&f.o);
	ck_assert(outbox_empty(&f.o));
	chan_expect_bye(f.rig.sv[1], 0);
	ck_assert_int_eq(f.calls, 0);
	teardown(&f);
}
END_TEST

START_TEST(test_full_channel_ack_waits_then_bye)
{
	struct fixture f;

	setup(&f);
	(void)chan_fill(f.rig.sv[0]);
	outbox_ack(&f.o, 5);
	ck_assert(!outbox_acked(&f.o));
	outbox_ack(&f.o, 7);		/* cumulative: only the newest waits */
	outbox_bye(&f.o);
	ck_assert(!outbox_acked(&f.o));
	ck_assert(!outbox_empty(&f.o));
	chan_expect(f.rig.sv[1], 0, 0);	/* the filler */
	loop_until_sent(&f);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	chan_expect_bye(f.rig.sv[1], 7);
	teardown(&f);
}
END_TEST

START_TEST(test_acks_only_grow_and_stop_at_bye)
{
	struct fixture f;

	setup(&f);
	outbox_ack(&f.o, 5);
	outbox_ack(&f.o, 3);
	outbox_ack(&f.o, 5);
	outbox_bye(&f.o);
	outbox_ack(&f.o, 9);
	outbox_bye(&f.o);
	ck_assert(outbox_empty(&f.o));
	chan_expect_bye(f.rig.sv[1], 5);
	teardown(&f);
}
END_TEST

/* The master goes away, before the channel was full or while it is. */
static void
master_gone(int full)
{
	struct fixture f;

	setup(&f);
	if (full)
		(void)chan_fill(f.rig.sv[0]);
	outbox_ack(&f.o, 2);
	ck_assert(outbox_acked(&f.o) == !full);
	chan_rig_hang_up(&f.rig);
	if (full)
		loop_until_sent(&f);	/* finds it gone */
	outbox_ack(&f.o, 3);		/* EPIPE, and no SIGPIPE */
	outbox_bye(&f.o);
	ck_assert(outbox_acked(&f.o));
	ck_assert(outbox_empty(&f.o));
	teardown(&f);
}

START_TEST(test_master_gone)
{
	master_gone(0);
	master_gone(1);
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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(outbox_suite());
}
