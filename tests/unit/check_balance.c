/* check_balance.c -- unit tests for server selection: every algorithm */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "config.h"

/* A balancer over n servers with the given weights, all up, primaries. */
static void
lb_setup(struct lb *lb, struct lb_server *srv, const int *weights, size_t n)
{
	memset(lb, 0, sizeof(*lb));
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

	/*
	 * Every candidate tried: any may serve again, but never the one
	 * just tried (0), so a client never gets the same server twice in a
	 * row while another is up.
	 */
	lb_setup(&lb, srv, weights, 2);
	for (int i = 0; i < 40; i++) {
		int k = lb_pick(&lb, 0, all, 2);
		ck_assert_msg(k == 0 || k == 1, "picked %d", k);
		count[k]++;
	}
	ck_assert_uint_eq(count[0], 0);
	ck_assert_uint_eq(count[1], 40);
	/* With a single server up, it is the only choice, tried or not. */
	srv[1].up = 0;
	ck_assert_int_eq(lb_pick(&lb, 0, all, 2), 0);
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

/* leastconn */

/* Pick with nothing tried and count the pick as an open connection. */
static int
pick_open(struct lb *lb)
{
	int k = lb_pick(lb, 0, NULL, 0);

	ck_assert_msg(k >= 0 && (size_t)k < lb->n, "pick gave %d", k);
	lb->servers[k].active++;
	return k;
}

START_TEST(test_leastconn_ties_round_robin)
{
	static const int weights[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	lb.algo = BALANCE_LEASTCONN;
	/* Nothing open anywhere: every pick is a tie, taken in turn. */
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), i % 3);
	/* Connections that stay open: still in turn, as loads stay level. */
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(pick_open(&lb), i % 3);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(srv[i].active, 4);
}
END_TEST

START_TEST(test_leastconn_avoids_busy)
{
	static const int weights[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;
	unsigned seen = 0;

	lb_setup(&lb, srv, weights, 3);
	lb.algo = BALANCE_LEASTCONN;
	srv[0].active = 5;
	srv[2].active = 2;
	/* 1 until it reaches 2, then 1 and 2 in turn until they reach 5. */
	ck_assert_int_eq(pick_open(&lb), 1);
	ck_assert_int_eq(pick_open(&lb), 1);
	for (int i = 0; i < 6; i++) {
		int k = pick_open(&lb);
		ck_assert_msg(k == 1 || k == 2, "pick %d went to %d", i, k);
	}
	ck_assert_uint_eq(srv[1].active, 5);
	ck_assert_uint_eq(srv[2].active, 5);
	/* Level again: all three in turn. */
	for (int i = 0; i < 3; i++)
		seen |= 1u << pick_open(&lb);
	ck_assert_uint_eq(seen, 7);
	/* Short connections (closed before the next) avoid the busy one. */
	srv[0].active = 1;
	srv[1].active = 10;
	srv[2].active = 10;
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 0);
}
END_TEST

START_TEST(test_leastconn_weighted)
{
	static const int weights[] = { 3, 1, 2 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	lb.algo = BALANCE_LEASTCONN;
	/* Long connections fill the servers in proportion to the weights. */
	for (int i = 0; i < 600; i++)
		pick_open(&lb);
	ck_assert_uint_eq(srv[0].active, 300);
	ck_assert_uint_eq(srv[1].active, 100);
	ck_assert_uint_eq(srv[2].active, 200);
}
END_TEST

START_TEST(test_leastconn_churn)
{
	static const int weights[] = { 1, 4, 2, 1 };
	struct lb_server srv[4];
	struct lb lb;
	uint64_t rng = 42;

	lb_setup(&lb, srv, weights, 4);
	lb.algo = BALANCE_LEASTCONN;
	/* Random closes between picks: every pick is a least loaded one. */
	for (int i = 0; i < 5000; i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t c = (size_t)(rng >> 33) % 4;
		if ((rng >> 40) % 3 == 0 && srv[c].active > 0)
			srv[c].active--;
		int k = lb_pick(&lb, 0, NULL, 0);
		ck_assert_int_ge(k, 0);
		for (size_t j = 0; j < 4; j++)
			ck_assert_msg((uint64_t)srv[j].active * weights[k] >=
			    (uint64_t)srv[k].active * weights[j], "pick %d: "
			    "%d (active %u weight %d) while %zu has active %u "
			    "weight %d", i, k, srv[k].active, weights[k], j,
			    srv[j].active, weights[j]);
		srv[k].active++;
	}
}
END_TEST

START_TEST(test_leastconn_down_and_backup)
{
	static const int weights[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	lb.algo = BALANCE_LEASTCONN;
	srv[2].backup = 1;
	/* Idle, but down or backup: never picked while a primary is up. */
	srv[0].active = 50;
	srv[1].up = 0;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 0);
	srv[0].up = 0;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 2);
}
END_TEST

/* source: weighted rendezvous hashing */

#define NKEYS	10000

/* The key of client i, as the worker makes it: a hash of its IPv4. */
static uint32_t
client_key(unsigned i)
{
	unsigned char a[4] = { 10, (unsigned char)(i >> 16),
	    (unsigned char)(i >> 8), (unsigned char)i };

	return lb_hash(a, sizeof(a), LB_HASH_INIT);
}

static void
source_setup(struct lb *lb, struct lb_server *srv, const int *weights,
    size_t n)
{
	char name[24];

	lb_setup(lb, srv, weights, n);
	lb->algo = BALANCE_SOURCE;
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "s%zu", i + 1);
		srv[i].seed = lb_hash(name, strlen(name), LB_HASH_INIT);
	}
}

/* map[i] = the server client i gets. */
static void
source_map(struct lb *lb, int *map)
{
	for (unsigned i = 0; i < NKEYS; i++) {
		map[i] = lb_pick(lb, client_key(i), NULL, 0);
		ck_assert_msg(map[i] >= 0 && (size_t)map[i] < lb->n,
		    "client %u: %d", i, map[i]);
	}
}

START_TEST(test_source_sticky)
{
	static const int weights[] = { 1, 1, 1, 1 };
	struct lb_server srv[4];
	struct lb lb;
	static int map[NKEYS];

	source_setup(&lb, srv, weights, 4);
	source_map(&lb, map);
	/* The same client, again and again, with picks of others between. */
	for (int round = 0; round < 20; round++)
		for (unsigned i = 0; i < NKEYS; i += 97) {
			ck_assert_int_eq(lb_pick(&lb, client_key(i), NULL, 0),
			    map[i]);
			srv[map[i]].active += round % 3;
		}
	/* Load does not move a client (unlike leastconn). */
	srv[0].active = 1000;
	for (unsigned i = 0; i < NKEYS; i += 7)
		ck_assert_int_eq(lb_pick(&lb, client_key(i), NULL, 0), map[i]);
}
END_TEST

static void
check_shares(const int *map, const int *weights, size_t n, double slack)
{
	unsigned count[8] = { 0 };
	int total = 0;

	for (size_t j = 0; j < n; j++)
		total += weights[j];
	for (unsigned i = 0; i < NKEYS; i++)
		count[map[i]]++;
	for (size_t j = 0; j < n; j++) {
		double want = (double)weights[j] / total;
		double got = (double)count[j] / NKEYS;
		ck_assert_msg(got > want - slack && got < want + slack,
		    "server %zu (weight %d): share %.4f, expected %.4f", j,
		    weights[j], got, want);
	}
}

START_TEST(test_source_distribution)
{
	static const int equal[] = { 1, 1, 1, 1, 1 };
	static const int weighted[] = { 1, 2, 3, 4 };
	static const int heavy[] = { 1, 9 };
	struct lb_server srv[5];
	struct lb lb;
	static int map[NKEYS];

	source_setup(&lb, srv, equal, 5);
	source_map(&lb, map);
	check_shares(map, equal, 5, 0.02);
	source_setup(&lb, srv, weighted, 4);
	source_map(&lb, map);
	check_shares(map, weighted, 4, 0.02);
	source_setup(&lb, srv, heavy, 2);
	source_map(&lb, map);
	check_shares(map, heavy, 2, 0.02);
}
END_TEST

START_TEST(test_source_add_server)
{
	static const int weights[] = { 1, 1, 1, 1, 1 };
	struct lb_server srv[5];
	struct lb lb;
	static int before[NKEYS], after[NKEYS];
	unsigned moved = 0;

	/* Four servers, then a fifth added (same names, same seeds). */
	source_setup(&lb, srv, weights, 5);
	lb.n = 4;
	source_map(&lb, before);
	lb.n = 5;
	source_map(&lb, after);
	for (unsigned i = 0; i < NKEYS; i++) {
		if (before[i] == after[i])
			continue;
		moved++;
		ck_assert_msg(after[i] == 4, "client %u moved from %d to %d, "
		    "not to the new server", i, before[i], after[i]);
	}
	/* About 1/5 move: 2000 expected. */
	ck_assert_msg(moved > 1700 && moved < 2300, "%u of %d clients moved",
	    moved, NKEYS);
}
END_TEST

START_TEST(test_source_remove_server)
{
	static const int weights[] = { 1, 1, 1, 1, 1 };
	struct lb_server srv[5];
	struct lb lb;
	static int before[NKEYS], after[NKEYS];
	unsigned moved, spread[5];

	source_setup(&lb, srv, weights, 5);
	source_map(&lb, before);
	/* Down (health) or removed (configuration): only its clients move. */
	for (int how = 0; how < 2; how++) {
		if (how == 0)
			srv[4].up = 0;
		else
			lb.n = 4;
		source_map(&lb, after);
		moved = 0;
		memset(spread, 0, sizeof(spread));
		for (unsigned i = 0; i < NKEYS; i++) {
			if (before[i] != 4) {
				ck_assert_msg(after[i] == before[i], "client %u "
				    "moved from %d to %d", i, before[i],
				    after[i]);
				continue;
			}
			ck_assert_int_ne(after[i], 4);
			moved++;
			spread[after[i]]++;
		}
		ck_assert_msg(moved > 1700 && moved < 2300, "%u moved", moved);
		/* ... and spread over the others, not all onto one. */
		for (int j = 0; j < 4; j++)
			ck_assert_msg(spread[j] > moved / 8, "server %d got "
			    "%u of %u", j, spread[j], moved);
		srv[4].up = 1;
		lb.n = 5;
	}
	/* Back up: every client is back where it was. */
	source_map(&lb, after);
	ck_assert_int_eq(memcmp(before, after, sizeof(before)), 0);
}
END_TEST

START_TEST(test_source_weight_change)
{
	static const int weights[] = { 1, 1, 1, 1 };
	struct lb_server srv[4];
	struct lb lb;
	static int before[NKEYS], after[NKEYS];
	unsigned moved = 0;

	source_setup(&lb, srv, weights, 4);
	source_map(&lb, before);
	/* A heavier server only gains clients, about 2/5 - 1/4 of them. */
	srv[2].weight = 2;
	source_map(&lb, after);
	for (unsigned i = 0; i < NKEYS; i++)
		if (before[i] != after[i]) {
			ck_assert_int_eq(after[i], 2);
			moved++;
		}
	ck_assert_msg(moved > 1200 && moved < 1800, "%u moved", moved);
}
END_TEST

START_TEST(test_source_retry_and_limits)
{
	static const int weights[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;
	static int map[NKEYS];
	uint8_t tried[1];

	source_setup(&lb, srv, weights, 3);
	source_map(&lb, map);
	for (unsigned i = 0; i < NKEYS; i += 13) {
		uint32_t key = client_key(i);
		int k;

		/* A retry goes elsewhere, the same elsewhere each time. */
		tried[0] = (uint8_t)map[i];
		k = lb_pick(&lb, key, tried, 1);
		ck_assert_int_ne(k, map[i]);
		ck_assert_int_eq(lb_pick(&lb, key, tried, 1), k);
		/* When its server is full or soft-down, the same place. */
		srv[map[i]].max_active = 1;
		srv[map[i]].active = 1;
		ck_assert_int_eq(lb_pick(&lb, key, NULL, 0), k);
		srv[map[i]].active = 0;
		ck_assert_int_eq(lb_pick(&lb, key, NULL, 0), map[i]);
		srv[map[i]].soft_down = 1;
		ck_assert_int_eq(lb_pick(&lb, key, NULL, 0), k);
		srv[map[i]].soft_down = 0;
		srv[map[i]].max_active = 0;
	}
}
END_TEST

START_TEST(test_source_backup)
{
	static const int weights[] = { 1, 1, 1, 1 };
	struct lb_server srv[4];
	struct lb lb;
	static int map[NKEYS];
	unsigned n3 = 0;

	source_setup(&lb, srv, weights, 4);
	srv[2].backup = 1;
	srv[3].backup = 1;
	source_map(&lb, map);
	for (unsigned i = 0; i < NKEYS; i++)
		ck_assert_int_lt(map[i], 2);
	srv[0].up = 0;
	srv[1].up = 0;
	source_map(&lb, map);
	for (unsigned i = 0; i < NKEYS; i++) {
		ck_assert_int_ge(map[i], 2);
		n3 += map[i] == 3;
	}
	/* The backups share the clients (here 1:1). */
	ck_assert_msg(n3 > 4700 && n3 < 5300, "%u of %d on backup 3", n3,
	    NKEYS);
}
END_TEST

/* random: power of two choices */

START_TEST(test_random_distribution)
{
	static const int equal[] = { 1, 1, 1, 1 };
	static const int weighted[] = { 1, 3 };
	struct lb_server srv[4];
	struct lb lb;
	unsigned count[4];

	/* Idle servers: the first of the two choices, by weight. */
	lb_setup(&lb, srv, equal, 4);
	lb.algo = BALANCE_RANDOM;
	lb.rng = 12345;
	tally(&lb, 20000, count);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(count[i] > 4600 && count[i] < 5400, "server %d: "
		    "%u of 20000", i, count[i]);
	lb_setup(&lb, srv, weighted, 2);
	lb.algo = BALANCE_RANDOM;
	lb.rng = 987654321;
	tally(&lb, 20000, count);
	ck_assert_msg(count[1] > 14400 && count[1] < 15600, "weight 3 of 4: "
	    "%u of 20000", count[1]);
}
END_TEST

START_TEST(test_random_not_a_sequence)
{
	static const int equal[] = { 1, 1, 1 };
	struct lb_server srv[3];
	struct lb lb;
	int prev = -1, repeats = 0, a, b;

	lb_setup(&lb, srv, equal, 3);
	lb.algo = BALANCE_RANDOM;
	/* rng 0 is a valid state (a fixed seed is used). */
	for (int i = 0; i < 3000; i++) {
		int k = lb_pick(&lb, 0, NULL, 0);
		ck_assert_int_ge(k, 0);
		repeats += k == prev;
		prev = k;
	}
	/* Not round-robin: about a third of picks repeat the last one. */
	ck_assert_msg(repeats > 800 && repeats < 1200, "%d repeats", repeats);
	/* Different seeds, different sequences. */
	lb.rng = 1;
	a = lb_pick(&lb, 0, NULL, 0) * 9 + lb_pick(&lb, 0, NULL, 0) * 3 +
	    lb_pick(&lb, 0, NULL, 0);
	for (uint64_t seed = 2; seed < 50; seed++) {
		lb.rng = seed;
		b = lb_pick(&lb, 0, NULL, 0) * 9 + lb_pick(&lb, 0, NULL, 0) *
		    3 + lb_pick(&lb, 0, NULL, 0);
		if (b != a)
			break;
	}
	ck_assert_int_ne(a, b);
}
END_TEST

START_TEST(test_random_two_choices)
{
	static const int equal[] = { 1, 1, 1, 1 };
	struct lb_server srv[4];
	struct lb lb;
	unsigned min, max;

	lb_setup(&lb, srv, equal, 4);
	lb.algo = BALANCE_RANDOM;
	lb.rng = 777;
	/* The busier of the two is never taken: the busiest never is. */
	srv[1].active = 100;
	for (int i = 0; i < 2000; i++)
		ck_assert_int_ne(lb_pick(&lb, 0, NULL, 0), 1);
	/* Long connections stay close to even (one choice would drift). */
	srv[1].active = 0;
	for (int i = 0; i < 4000; i++)
		pick_open(&lb);
	min = max = srv[0].active;
	for (int i = 1; i < 4; i++) {
		min = srv[i].active < min ? srv[i].active : min;
		max = srv[i].active > max ? srv[i].active : max;
	}
	ck_assert_msg(max - min <= 4, "active from %u to %u", min, max);
}
END_TEST

START_TEST(test_random_weighted_load)
{
	static const int weights[] = { 3, 1 };
	struct lb_server srv[2];
	struct lb lb;

	lb_setup(&lb, srv, weights, 2);
	lb.algo = BALANCE_RANDOM;
	lb.rng = 4242;
	/* Load is compared per weight: long connections go 3 to 1. */
	for (int i = 0; i < 4000; i++)
		pick_open(&lb);
	ck_assert_msg(srv[0].active > 2900 && srv[0].active < 3100,
	    "weight 3: %u of 4000", srv[0].active);
}
END_TEST

START_TEST(test_random_one_candidate)
{
	static const int weights[] = { 1, 1, 1 };
	static const uint8_t t1[] = { 1 };
	struct lb_server srv[3];
	struct lb lb;

	lb_setup(&lb, srv, weights, 3);
	lb.algo = BALANCE_RANDOM;
	srv[0].up = 0;
	srv[2].backup = 1;
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 1);
	/* Tried, but the only one: again (backup is not a retry). */
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, t1, 1), 1);
	srv[1].up = 0;
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 2);
}
END_TEST

/* max_active: full servers */

START_TEST(test_full_skipped_every_algo)
{
	static const int weights[] = { 1, 1, 1 };
	static const int algos[] = { BALANCE_ROUNDROBIN, BALANCE_LEASTCONN,
	    BALANCE_SOURCE, BALANCE_RANDOM };
	struct lb_server srv[3];
	struct lb lb;

	for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
		source_setup(&lb, srv, weights, 3);
		lb.algo = algos[a];
		for (int i = 0; i < 3; i++)
			srv[i].max_active = 2;
		/* Six connections fill the three servers, the seventh fails. */
		for (int i = 0; i < 6; i++) {
			int k = lb_pick(&lb, client_key((unsigned)i), NULL, 0);
			ck_assert_msg(k >= 0, "algo %d pick %d: none", algos[a],
			    i);
			srv[k].active++;
			ck_assert_uint_le(srv[k].active, 2);
		}
		ck_assert_int_eq(lb_pick(&lb, client_key(99), NULL, 0), -1);
		/* One closes: its server takes the next. */
		srv[1].active--;
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(lb_pick(&lb, client_key((unsigned)i),
			    NULL, 0), 1);
	}
}
END_TEST

START_TEST(test_full_swrr_keeps_weights)
{
	static const int weights[] = { 1, 1, 2 };
	struct lb_server srv[3];
	struct lb lb;
	unsigned count[3];

	lb_setup(&lb, srv, weights, 3);
	srv[2].max_active = 5;
	srv[2].active = 5;
	/* The full one is skipped; the others share its turns evenly. */
	tally(&lb, 40, count);
	ck_assert_uint_eq(count[2], 0);
	ck_assert_uint_eq(count[0], 20);
	ck_assert_uint_eq(count[1], 20);
	srv[2].active = 4;
	tally(&lb, 40, count);
	ck_assert_uint_eq(count[2], 20);
}
END_TEST

START_TEST(test_full_primaries_no_backup)
{
	static const int weights[] = { 1, 1 };
	struct lb_server srv[2];
	struct lb lb;

	/* Backups stand in for servers that are down, not full ones. */
	lb_setup(&lb, srv, weights, 2);
	srv[1].backup = 1;
	srv[0].max_active = 1;
	srv[0].active = 1;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), -1);
	srv[0].up = 0;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 1);
	/* A full backup is skipped like any other. */
	srv[1].max_active = 3;
	srv[1].active = 3;
	ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), -1);
}
END_TEST

/* soft_down: passive failures */

START_TEST(test_soft_down_avoided)
{
	static const int weights[] = { 1, 1, 1 };
	static const int algos[] = { BALANCE_ROUNDROBIN, BALANCE_LEASTCONN,
	    BALANCE_SOURCE, BALANCE_RANDOM };
	struct lb_server srv[3];
	struct lb lb;

	for (size_t a = 0; a < sizeof(algos) / sizeof(algos[0]); a++) {
		source_setup(&lb, srv, weights, 3);
		lb.algo = algos[a];
		srv[1].soft_down = 1;
		for (unsigned i = 0; i < 300; i++) {
			int k = lb_pick(&lb, client_key(i), NULL, 0);
			ck_assert_msg(k == 0 || k == 2, "algo %d: picked %d",
			    algos[a], k);
		}
		/* When nothing else is left, better it than nothing. */
		srv[0].up = 0;
		srv[2].soft_down = 1;
		for (unsigned i = 0; i < 300; i++) {
			int k = lb_pick(&lb, client_key(i), NULL, 0);
			ck_assert_msg(k == 1 || k == 2, "algo %d: picked %d",
			    algos[a], k);
		}
		srv[2].max_active = 1;
		srv[2].active = 1;
		for (unsigned i = 0; i < 30; i++)
			ck_assert_int_eq(lb_pick(&lb, client_key(i), NULL, 0),
			    1);
	}
}
END_TEST

START_TEST(test_soft_down_primary_before_backup)
{
	static const int weights[] = { 1, 1 };
	struct lb_server srv[2];
	struct lb lb;

	/* A soft-down primary is still up: no backup while it is. */
	lb_setup(&lb, srv, weights, 2);
	srv[0].soft_down = 1;
	srv[1].backup = 1;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, NULL, 0), 0);
}
END_TEST

START_TEST(test_soft_down_retry_elsewhere)
{
	static const int weights[] = { 1, 1 };
	static const uint8_t t0[] = { 0 };
	struct lb_server srv[2];
	struct lb lb;

	/*
	 * The connect to 0 just failed; 1 is soft-down (failed recently):
	 * the retry goes to 1, never the same server twice in a row.
	 */
	lb_setup(&lb, srv, weights, 2);
	srv[1].soft_down = 1;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lb_pick(&lb, 0, t0, 1), 1);
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

	tc = tcase_create("leastconn");
	tcase_add_test(tc, test_leastconn_ties_round_robin);
	tcase_add_test(tc, test_leastconn_avoids_busy);
	tcase_add_test(tc, test_leastconn_weighted);
	tcase_add_test(tc, test_leastconn_churn);
	tcase_add_test(tc, test_leastconn_down_and_backup);
	suite_add_tcase(s, tc);

	tc = tcase_create("source");
	tcase_add_test(tc, test_source_sticky);
	tcase_add_test(tc, test_source_distribution);
	tcase_add_test(tc, test_source_add_server);
	tcase_add_test(tc, test_source_remove_server);
	tcase_add_test(tc, test_source_weight_change);
	tcase_add_test(tc, test_source_retry_and_limits);
	tcase_add_test(tc, test_source_backup);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_test(tc, test_random_distribution);
	tcase_add_test(tc, test_random_not_a_sequence);
	tcase_add_test(tc, test_random_two_choices);
	tcase_add_test(tc, test_random_weighted_load);
	tcase_add_test(tc, test_random_one_candidate);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_full_skipped_every_algo);
	tcase_add_test(tc, test_full_swrr_keeps_weights);
	tcase_add_test(tc, test_full_primaries_no_backup);
	tcase_add_test(tc, test_soft_down_avoided);
	tcase_add_test(tc, test_soft_down_primary_before_backup);
	tcase_add_test(tc, test_soft_down_retry_elsewhere);
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
