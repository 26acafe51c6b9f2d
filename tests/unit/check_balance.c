/* check_balance.c -- unit tests for server selection (smooth weighted RR) */
#include "ac_config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "config.h"

/* A balancer over n servers with the given weights, all up, primaries. */
static void
lb_setup(struct lb *lb, struct lb_server *srv, const int *weights, size_t n)
{
	memset(srv, 0, n * sizeof(*srv));
	for (size_t i = 0; i < n; i++) {
		srv[i].weight = weights[i];
		srv[i].up = 1;
	}
	lb->algo = BALANCE_ROUNDROBIN;
	lb->servers = srv;
	lb->n = n;
}

/* Pick count times (nothing tried) and tally the picks per server. */
static void
tally(struct lb *lb, int picks, unsigned *count)
{
	memset(count, 0, lb->n * sizeof(*count));
	for (int i = 0; i < picks; i++) {
		int k = lb_pick(lb, 0, NULL, 0);
		ck_assert_msg(k >= 0 && (size_t)k < lb->n, "pick %d gave %d",
		    i, k);
		count[k]++;
	}
}

START_TEST(test_swrr_nginx_sequence)
{
	static const int weights[] = { 5, 1, 1 };
	static const int want[] = { 0, 0, 1, 0, 2, 0, 0 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	/* Three cycles: the state returns to zero after each. */
	for (int cycle = 0; cycle < 3; cycle++)
		for (int i = 0; i < 7; i++) {
			int k = lb_pick(&lb, 0, NULL, 0);
			ck_assert_msg(k == want[i], "cycle %d pick %d: %d, "
			    "expected %d", cycle, i, k, want[i]);
		}
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(srv[i].current, 0);
}
END_TEST

START_TEST(test_swrr_equal_weights)
{
	static const int weights[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), i % 3);
}
END_TEST

START_TEST(test_swrr_3_to_1)
{
	static const int weights[] = { 3, 1 };
	struct lb_server srv[2];
	struct lb lb;
	unsigned count[2];

	lb_setup(&lb, srv, weights, 2);
	tally(&lb, 400, count);
	ck_assert_uint_eq(count[0], 300);
	ck_assert_uint_eq(count[1], 100);
	/* Smooth: every window of 4 picks holds exactly one of server 1. */
	for (int w = 0; w < 25; w++) {
		int ones = 0;
		for (int i = 0; i < 4; i++)
			ones += lb_pick(&lb, 0, NULL, 0) == 1;
		ck_assert_int_eq(ones, 1);
	}
}
END_TEST

START_TEST(test_swrr_spread)
{
	static const int weights[] = { 2, 7, 1, 256 };
	struct lb_server srv[4];
	struct lb lb;
	unsigned count[4];

	lb_setup(&lb, srv, weights, 4);
	tally(&lb, 266 * 3, count);
	ck_assert_uint_eq(count[0], 6);
	ck_assert_uint_eq(count[1], 21);
	ck_assert_uint_eq(count[2], 3);
	ck_assert_uint_eq(count[3], 768);
}
END_TEST

START_TEST(test_down_never_picked)
{
	static const int weights[] = { 1, 5, 1 };
	struct lb_server srv[3];
	struct lb lb;
	unsigned count[3];

	lb_setup(&lb, srv, weights, 3);
	srv[1].up = 0;
	tally(&lb, 30, count);
	ck_assert_uint_eq(count[1], 0);
	ck_assert_uint_eq(count[0], 15);
	ck_assert_uint_eq(count[2], 15);
	/* Back up: it gets its share again. */
	srv[1].up = 1;
	tally(&lb, 70, count);
	ck_assert_uint_eq(count[0], 10);
	ck_assert_uint_eq(count[1], 50);
	ck_assert_uint_eq(count[2], 10);
}
END_TEST

START_TEST(test_nothing_up)
{
	static const int weights[] = { 1, 1, 1 };
	static const uint8_t tried[] = { 0, 1, 2 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	for (int i = 0; i < 3; i++)
		srv[i].up = 0;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), -1);
	ck_assert_int_eq(lb_pick(&lb, 0, tried, 3), -1);
	/* Backups that are down do not count either. */
	srv[2].backup = 1;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), -1);
	lb.n = 0;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), -1);
}
END_TEST

START_TEST(test_backup_only_when_no_primary)
{
	static const int weights[] = { 1, 1, 3, 1 };
	struct lb_server srv[4];
	struct lb lb;
	unsigned count[4];

	lb_setup(&lb, srv, weights, 4);
	srv[2].backup = 1;
	srv[3].backup = 1;
	tally(&lb, 40, count);
	ck_assert_uint_eq(count[0], 20);
	ck_assert_uint_eq(count[1], 20);
	ck_assert_uint_eq(count[2] + count[3], 0);

	/* One primary left: still no backup. */
	srv[0].up = 0;
	tally(&lb, 10, count);
	ck_assert_uint_eq(count[1], 10);
	ck_assert_uint_eq(count[2] + count[3], 0);

	/* No primary up: the backups, by their weights. */
	srv[1].up = 0;
	tally(&lb, 40, count);
	ck_assert_uint_eq(count[0] + count[1], 0);
	ck_assert_uint_eq(count[2], 30);
	ck_assert_uint_eq(count[3], 10);

	/* A primary returns: backups are dropped at once. */
	srv[0].up = 1;
	tally(&lb, 10, count);
	ck_assert_uint_eq(count[0], 10);
}
END_TEST

START_TEST(test_backup_not_a_retry)
{
	static const int weights[] = { 1, 1 };
	static const uint8_t tried[] = { 0 };
	struct lb_server srv[2];
	struct lb lb;

	lb_setup(&lb, srv, weights, 2);
	srv[1].backup = 1;
	/* The only primary failed but is up: retry it, not the backup. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, tried, 1), 0);
}
END_TEST

START_TEST(test_tried_skipped)
{
	static const int weights[] = { 1, 1, 1, 1 };
	static const uint8_t t0[] = { 0 };
	static const uint8_t t02[] = { 2, 0 };
	static const uint8_t t013[] = { 0, 1, 3 };
	struct lb_server srv[4];
	struct lb lb;

	lb_setup(&lb, srv, weights, 4);
	for (int i = 0; i < 20; i++) {
		int k = lb_pick(&lb, 0, t0, 1);
		ck_assert_msg(k >= 1 && k <= 3, "picked %d", k);
	}
	for (int i = 0; i < 20; i++) {
		int k = lb_pick(&lb, 0, t02, 2);
		ck_assert_msg(k == 1 || k == 3, "picked %d", k);
	}
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, t013, 3), 2);
}
END_TEST

START_TEST(test_tried_and_down)
{
	static const int weights[] = { 1, 1, 1 };
	static const uint8_t t0[] = { 0 };
	static const uint8_t t1[] = { 1 };
	struct lb_server srv[3];
	struct lb lb;

	/* 0 is down and 1 was tried: 2 is the one untried candidate. */
	lb_setup(&lb, srv, weights, 3);
	srv[0].up = 0;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, t1, 1), 2);
	/* A tried server that is down changes nothing. */
	for (int i = 0; i < 10; i++) {
		int k = lb_pick(&lb, 0, t0, 1);
		ck_assert_msg(k == 1 || k == 2, "picked %d", k);
	}
}
END_TEST

START_TEST(test_tried_all_reused)
{
	static const int weights[] = { 3, 1 };
	static const uint8_t all[] = { 1, 0 };
	struct lb_server srv[2];
	struct lb lb;
	unsigned count[2] = { 0, 0 };

	/* Every candidate tried: all are candidates again, by weight. */
	lb_setup(&lb, srv, weights, 2);
	for (int i = 0; i < 40; i++) {
		int k = lb_pick(&lb, 0, all, 2);
		ck_assert_msg(k == 0 || k == 1, "picked %d", k);
		count[k]++;
	}
	ck_assert_uint_eq(count[0], 30);
	ck_assert_uint_eq(count[1], 10);
}
END_TEST

START_TEST(test_tried_backups)
{
	static const int weights[] = { 1, 1, 1 };
	static const uint8_t t1[] = { 1 };
	static const uint8_t t12[] = { 1, 2 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	srv[0].up = 0;
	srv[1].backup = 1;
	srv[2].backup = 1;
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, t1, 1), 2);
	for (int i = 0; i < 6; i++) {
		int k = lb_pick(&lb, 0, t12, 2);
		ck_assert_msg(k == 1 || k == 2, "picked %d", k);
	}
}
END_TEST

static Suite *
balance_suite(void)
{
	Suite *s = suite_create("balance");
	TCase *tc;

	tc = tcase_create("swrr");
	tcase_add_test(tc, test_swrr_nginx_sequence);
	tcase_add_test(tc, test_swrr_equal_weights);
	tcase_add_test(tc, test_swrr_3_to_1);
	tcase_add_test(tc, test_swrr_spread);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_test(tc, test_down_never_picked);
	tcase_add_test(tc, test_nothing_up);
	tcase_add_test(tc, test_backup_only_when_no_primary);
	tcase_add_test(tc, test_backup_not_a_retry);
	suite_add_tcase(s, tc);

	tc = tcase_create("tried");
	tcase_add_test(tc, test_tried_skipped);
	tcase_add_test(tc, test_tried_and_down);
	tcase_add_test(tc, test_tried_all_reused);
	tcase_add_test(tc, test_tried_backups);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(balance_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
