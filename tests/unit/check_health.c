/* check_health.c -- unit tests for server health and its configuration keys */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "health.h"
#include "config_helpers.h"

/* rise/fall state machine */

/* Feed the results of s ('+' ok, '-' failed); the flips as a string. */
static void
feed(struct health_state *h, const char *s, unsigned rise, unsigned fall,
    char *flips)
{
	for (; *s; s++, flips++)
		*flips = health_count(h, *s == '+', rise, fall) ?
		    (h->up ? 'U' : 'D') : '.';
	*flips = '\0';
}

#define EXPECT_FLIPS(h, results, rise, fall, want) do {			\
	char got_[256];							\
	feed((h), (results), (rise), (fall), got_);			\
	ck_assert_msg(strcmp(got_, (want)) == 0, "results %s (rise %u "	\
	    "fall %u): flips %s, expected %s", (results), (rise), (fall), \
	    got_, (want));						\
} while (0)

START_TEST(test_up_falls_after_fall_failures)
{
	struct health_state h = { .up = 1 };

	EXPECT_FLIPS(&h, "--", 2, 3, "..");
	ck_assert_uint_eq(h.up, 1);
	ck_assert_uint_eq(h.fail_run, 2);
	EXPECT_FLIPS(&h, "-", 2, 3, "D");
	ck_assert_uint_eq(h.up, 0);
	/* Already down: more failures change nothing, and say so. */
	EXPECT_FLIPS(&h, "----------", 2, 3, "..........");
	ck_assert_uint_eq(h.up, 0);
}
END_TEST

START_TEST(test_down_rises_after_rise_successes)
{
	struct health_state h = { .up = 0 };

	EXPECT_FLIPS(&h, "+", 2, 3, ".");
	ck_assert_uint_eq(h.up, 0);
	ck_assert_uint_eq(h.ok_run, 1);
	EXPECT_FLIPS(&h, "+", 2, 3, "U");
	ck_assert_uint_eq(h.up, 1);
	EXPECT_FLIPS(&h, "++++++++", 2, 3, "........");
	ck_assert_uint_eq(h.up, 1);
}
END_TEST

START_TEST(test_start_up_needs_no_rise)
{
	struct health_state h = { .up = 1 };

	/* Servers start up: successes keep them up without a flip. */
	EXPECT_FLIPS(&h, "+++", 2, 3, "...");
	ck_assert_uint_eq(h.up, 1);
}
END_TEST

START_TEST(test_start_down_needs_rise)
{
	struct health_state h = { .up = 0 };

	/* A server that starts down stays down until rise successes. */
	EXPECT_FLIPS(&h, "---", 3, 2, "...");
	EXPECT_FLIPS(&h, "++-++", 3, 2, ".....");
	ck_assert_uint_eq(h.up, 0);
	EXPECT_FLIPS(&h, "+", 3, 2, "U");
}
END_TEST

START_TEST(test_runs_must_be_consecutive)
{
	struct health_state h = { .up = 1 };

	/* A success resets the failure run, and the other way round. */
	EXPECT_FLIPS(&h, "--+--+--+--", 2, 3, "...........");
	ck_assert_uint_eq(h.up, 1);
	EXPECT_FLIPS(&h, "-", 2, 3, "D");
	EXPECT_FLIPS(&h, "+-+-+-+-+-", 2, 3, "..........");
	ck_assert_uint_eq(h.up, 0);
	EXPECT_FLIPS(&h, "++", 2, 3, ".U");
}
END_TEST

START_TEST(test_flapping)
{
	struct health_state h = { .up = 1 };
	char results[201], flips[201];
	int n = 0;

	/* A server failing every other check never changes state. */
	for (int i = 0; i < 200; i++)
		results[i] = i % 2 ? '+' : '-';
	results[200] = '\0';
	feed(&h, results, 2, 2, flips);
	ck_assert_msg(strspn(flips, ".") == 200, "flips: %s", flips);
	ck_assert_uint_eq(h.up, 1);
	/* With rise = fall = 1 it flips on every change of result. */
	feed(&h, results, 1, 1, flips);
	for (int i = 0; i < 200; i++)
		n += flips[i] != '.';
	ck_assert_int_eq(n, 200);
	ck_assert_uint_eq(h.up, 1);
}
END_TEST

START_TEST(test_full_cycles)
{
	struct health_state h = { .up = 1 };

	for (int i = 0; i < 5; i++) {
		EXPECT_FLIPS(&h, "+--+---", 2, 3, "......D");
		EXPECT_FLIPS(&h, "-+-++", 2, 3, "....U");
	}
	/* rise = fall = 1: every result is the state. */
	EXPECT_FLIPS(&h, "+-+--++", 1, 1, ".DUD.U.");
}
END_TEST

START_TEST(test_large_counts)
{
	struct health_state h = { .up = 1 };
	char results[1001], flips[1001];

	memset(results, '-', 1000);
	results[1000] = '\0';
	feed(&h, results, 1000, 1000, flips);
	ck_assert_int_eq(flips[998], '.');
	ck_assert_int_eq(flips[999], 'D');
	memset(results, '+', 1000);
	feed(&h, results, 1000, 1000, flips);
	ck_assert_int_eq(flips[998], '.');
	ck_assert_int_eq(flips[999], 'U');
}
END_TEST

/* config_unescape */

static void
expect_unescape(const char *in, const char *want, size_t want_len)
{
	size_t len = 12345;
	char *out = config_unescape(in, &len);

	ck_assert_msg(out != NULL, "'%s' rejected", in);
	ck_assert_msg(len == want_len, "'%s': length %zu, expected %zu", in,
	    len, want_len);
	ck_assert_msg(memcmp(out, want, want_len) == 0, "'%s': wrong bytes",
	    in);
	free(out);
}

START_TEST(test_unescape)
{
	expect_unescape("PING\\r\\n", "PING\r\n", 6);
	expect_unescape("+PONG", "+PONG", 5);
	expect_unescape("", "", 0);
	expect_unescape("a\\tb\\\\c", "a\tb\\c", 5);
	expect_unescape("\\\\r", "\\r", 2);
	expect_unescape("\\x41\\x62\\x7e", "Ab~", 3);
	expect_unescape("\\xff\\xFF\\xaB", "\xff\xff\xab", 3);
	expect_unescape("\\x00\\x01", "\0\1", 2);
	expect_unescape("x\\x414", "xA4", 3);
	expect_unescape("GET / HTTP/1.0\\r\\n\\r\\n", "GET / HTTP/1.0\r\n\r\n",
	    18);
}
END_TEST

START_TEST(test_unescape_rejects)
{
	static const char *const bad[] = {
		"\\", "abc\\", "\\q", "\\0", "\\a", "\\\"", "\\x", "\\x4",
		"\\x4g", "\\xg4", "\\x-1", "ok\\r\\z", "\\X41",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = 0;
		char *out = config_unescape(bad[i], &len);
		int ok = out == NULL;

		free(out);
		ck_assert_msg(ok, "'%s' accepted", bad[i]);
	}
}
END_TEST

/* The new configuration keys */

#define FRONTEND \
	"[frontend web]\n" \
	"listen = 127.0.0.1:8080\n" \
	"backend = app\n"

START_TEST(test_keys_defaults)
{
	struct config *cfg = load_ok(FRONTEND
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "server = a2 127.0.0.1:8001 backup\n");
	const struct backend_conf *b = &cfg->backends[0];

	ck_assert_int_eq(b->check, CHECK_OFF);
	ck_assert_ptr_null(b->check_send);
	ck_assert_uint_eq(b->check_send_len, 0);
	ck_assert_ptr_null(b->check_expect);
	ck_assert_uint_eq(b->check_expect_len, 0);
	ck_assert_uint_eq(b->max_fails, 1);
	ck_assert_uint_eq(b->fail_timeout_ms, 10000);
	ck_assert_uint_eq(b->servers[0].max_connections, 0);
	ck_assert_uint_eq(b->servers[1].max_connections, 0);
	ck_assert_uint_eq(cfg->frontends[0].max_connections, 10000);
	config_free(cfg);
}
END_TEST

START_TEST(test_keys_set)
{
	struct config *cfg = load_ok(FRONTEND
	    "max_connections = 7\n"
	    "[backend app]\n"
	    "balance = source\n"
	    "server = r1 127.0.0.1:6379 max_connections=5 weight=2\n"
	    "server = r2 127.0.0.1:6380 backup max_connections=10000000\n"
	    "check = tcp\n"
	    "check_send = PING\\r\\n\n"
	    "check_expect = +PONG ; redis\n"
	    "max_fails = 0\n"
	    "fail_timeout = 2s\n"
	    "[backend two]\n"
	    "balance = random\n"
	    "server = b1 127.0.0.1:9000\n"
	    "check = tcp\n"
	    "check_send = \\x00\\x01 hello there\\t\\\\\n"
	    "max_fails = 1000\n"
	    "fail_timeout = 250ms\n"
	    "[backend three]\n"
	    "balance = leastconn\n"
	    "server = c1 127.0.0.1:9001\n"
	    "check = tcp\n"
	    "check_expect = SSH-\n"
	    "max_fails = 3\n"
	    "fail_timeout = 1m\n");
	const struct backend_conf *b = &cfg->backends[0];

	ck_assert_uint_eq(cfg->frontends[0].max_connections, 7);
	ck_assert_int_eq(b->balance, BALANCE_SOURCE);
	ck_assert_uint_eq(b->servers[0].max_connections, 5);
	ck_assert_uint_eq(b->servers[0].weight, 2);
	ck_assert_uint_eq(b->servers[1].max_connections, 10000000);
	ck_assert_int_eq(b->servers[1].backup, 1);
	ck_assert_int_eq(b->check, CHECK_TCP);
	ck_assert_uint_eq(b->check_send_len, 6);
	ck_assert_mem_eq(b->check_send, "PING\r\n", 6);
	ck_assert_uint_eq(b->check_expect_len, 5);
	ck_assert_mem_eq(b->check_expect, "+PONG", 5);
	ck_assert_uint_eq(b->max_fails, 0);
	ck_assert_uint_eq(b->fail_timeout_ms, 2000);

	b = &cfg->backends[1];
	ck_assert_int_eq(b->balance, BALANCE_RANDOM);
	ck_assert_uint_eq(b->check_send_len, 16);
	ck_assert_mem_eq(b->check_send, "\0\1 hello there\t\\", 16);
	ck_assert_ptr_null(b->check_expect);
	ck_assert_uint_eq(b->check_expect_len, 0);
	ck_assert_uint_eq(b->max_fails, 1000);
	ck_assert_uint_eq(b->fail_timeout_ms, 250);
	ck_assert_uint_eq(b->servers[0].max_connections, 0);

	b = &cfg->backends[2];
	ck_assert_int_eq(b->balance, BALANCE_LEASTCONN);
	ck_assert_ptr_null(b->check_send);
	ck_assert_uint_eq(b->check_expect_len, 4);
	ck_assert_mem_eq(b->check_expect, "SSH-", 4);
	ck_assert_uint_eq(b->max_fails, 3);
	ck_assert_uint_eq(b->fail_timeout_ms, 60000);
	config_free(cfg);
}
END_TEST

START_TEST(test_keys_bad_values)
{
	EXPECT_ERRORS(FRONTEND
	    "max_connections = -5\n"			/* 4 */
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000 max_connections=0\n"
	    "server = a2 127.0.0.1:8001 max_connections=many\n"
	    "server = a3 127.0.0.1:8002 max_connections\n"
	    "server = a4 127.0.0.1:8003 max_connections=10000001\n"
	    "check = tcp\n"				/* 10 */
	    "check_send = PING\\r\\n\\q\n"
	    "check_expect = \\x4\n"
	    "max_fails = 1001\n"
	    "fail_timeout = 0\n"
	    "[backend b2]\n"				/* 15 */
	    "server = b1 127.0.0.1:9000\n"
	    "max_fails = -1\n"
	    "fail_timeout = soon\n"
	    "[backend b3]\n"
	    "server = c1 127.0.0.1:9001\n"		/* 20 */
	    "max_fails = 2x\n"
	    "fail_timeout = 5d\n",
	    "t.ini:4: [frontend web] max_connections: bad number '-5'",
	    "t.ini:6: [backend app] server: bad max_connections '0'",
	    "t.ini:7: [backend app] server: bad max_connections 'many'",
	    "t.ini:8: [backend app] server: unknown option 'max_connections'",
	    "t.ini:9: [backend app] server: bad max_connections '10000001'",
	    "t.ini:11: [backend app] check_send: bad escape in "
	    "'PING\\r\\n\\q'",
	    "t.ini:12: [backend app] check_expect: bad escape in '\\x4'",
	    "t.ini:13: [backend app] max_fails: bad number '1001'",
	    "t.ini:14: [backend app] fail_timeout: bad duration '0'",
	    "t.ini:17: [backend b2] max_fails: bad number '-1'",
	    "t.ini:18: [backend b2] fail_timeout: bad duration 'soon'",
	    "t.ini:21: [backend b3] max_fails: bad number '2x'",
	    "t.ini:22: [backend b3] fail_timeout: bad duration '5d'");
}
END_TEST

START_TEST(test_keys_need_check_tcp)
{
	/* A send or expect string without active checks would do nothing. */
	EXPECT_ERRORS(FRONTEND
	    "[backend app]\n"				/* 4 */
	    "server = a1 127.0.0.1:8000\n"
	    "check_send = PING\\r\\n\n"
	    "[backend b2]\n"				/* 7 */
	    "server = b1 127.0.0.1:9000\n"
	    "check = off\n"
	    "check_expect = +PONG\n"
	    "[backend b3]\n"
	    "server = c1 127.0.0.1:9001\n"
	    "check = tcp\n"
	    "check_expect = +PONG\n",
	    "t.ini:4: [backend app] check_send and check_expect need "
	    "check = tcp",
	    "t.ini:7: [backend b2] check_send and check_expect need "
	    "check = tcp");
}
END_TEST

START_TEST(test_keys_duplicate_and_empty)
{
	EXPECT_ERRORS(FRONTEND
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "check = tcp\n"
	    "check_send = PING\\r\\n\n"
	    "check_send = PING\\r\\n\n"		/* 8 */
	    "check_expect = +PONG\n"
	    "check_expect = +PONG\n"
	    "max_fails = 1\n"
	    "max_fails = 2\n"
	    "fail_timeout = 1s\n"
	    "fail_timeout = 1s\n"
	    "check_expect =\n",			/* 15 */
	    "t.ini:8: [backend app] check_send: duplicate key",
	    "t.ini:10: [backend app] check_expect: duplicate key",
	    "t.ini:12: [backend app] max_fails: duplicate key",
	    "t.ini:14: [backend app] fail_timeout: duplicate key",
	    "t.ini:15: [backend app] check_expect: duplicate key");
	EXPECT_ERRORS(FRONTEND
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "check = tcp\n"
	    "check_send =\n"
	    "max_fails =\n"
	    "fail_timeout =\n",
	    "t.ini:7: [backend app] check_send: empty value",
	    "t.ini:8: [backend app] max_fails: empty value",
	    "t.ini:9: [backend app] fail_timeout: empty value");
}
END_TEST

/* Passive failures (health_failures) driven on a real event base */

struct change {
	size_t	server;
	int	up;
	int	soft_down;
};

struct recorder {
	struct change	 v[32];
	size_t		 n;
	struct timeval	 last;
};

static void
record(void *arg, size_t server, int up, int soft_down)
{
	struct recorder *r = arg;

	if (r->n < sizeof(r->v) / sizeof(r->v[0])) {
		r->v[r->n].server = server;
		r->v[r->n].up = up;
		r->v[r->n].soft_down = soft_down;
	}
	r->n++;
	gettimeofday(&r->last, NULL);
}

/* Two backends of two servers each; keys go into [backend app]. */
static struct config *
passive_config(const char *keys)
{
	char text[1024];

	snprintf(text, sizeof(text), FRONTEND
	    "[backend other]\n"
	    "server = o1 127.0.0.1:9000\n"
	    "server = o2 127.0.0.1:9001\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "server = a2 127.0.0.1:8001\n"
	    "%s", keys);
	return load_ok(text);
}

struct passive {
	struct config		*cfg;
	struct event_base	*base;
	struct health		*h;
	struct recorder		 r;
};

static void
passive_start(struct passive *p, const char *keys)
{
	static const uint8_t up[4] = { 1, 1, 1, 1 };

	memset(p, 0, sizeof(*p));
	p->cfg = passive_config(keys);
	ck_assert_uint_eq(p->cfg->nservers, 4);
	ck_assert_uint_eq(p->cfg->backends[1].server_base, 2);
	p->base = event_base_new();
	ck_assert_ptr_nonnull(p->base);
	p->h = health_new(p->base, p->cfg, up, record, &p->r);
	ck_assert_ptr_nonnull(p->h);
}

static void
passive_end(struct passive *p)
{
	health_free(p->h);
	event_base_free(p->base);
	config_free(p->cfg);
}

static long
ms_since(const struct timeval *t0, const struct timeval *t1)
{
	return (t1->tv_sec - t0->tv_sec) * 1000L +
	    (t1->tv_usec - t0->tv_usec) / 1000L;
}

/* Run the loop until n changes were recorded or limit_ms passed. */
static void
run_until(struct passive *p, size_t n, unsigned limit_ms)
{
	struct timeval t0, now;

	gettimeofday(&t0, NULL);
	while (p->r.n < n) {
		gettimeofday(&now, NULL);
		if (ms_since(&t0, &now) > (long)limit_ms)
			break;
		event_base_loop(p->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

START_TEST(test_passive_max_fails_1)
{
	struct passive p;
	struct timeval t0;

	passive_start(&p, "max_fails = 1\nfail_timeout = 200ms\n");
	gettimeofday(&t0, NULL);
	health_failures(p.h, 3, 1);
	ck_assert_uint_eq(p.r.n, 1);
	ck_assert_uint_eq(p.r.v[0].server, 3);
	ck_assert_int_eq(p.r.v[0].up, 1);
	ck_assert_int_eq(p.r.v[0].soft_down, 1);
	/* More failures while soft-down change nothing. */
	health_failures(p.h, 3, 5);
	ck_assert_uint_eq(p.r.n, 1);
	/* fail_timeout later it is tried again. */
	run_until(&p, 2, 2000);
	ck_assert_uint_eq(p.r.n, 2);
	ck_assert_uint_eq(p.r.v[1].server, 3);
	ck_assert_int_eq(p.r.v[1].up, 1);
	ck_assert_int_eq(p.r.v[1].soft_down, 0);
	ck_assert_msg(ms_since(&t0, &p.r.last) >= 190, "soft-down ended "
	    "after %ld ms, fail_timeout is 200 ms", ms_since(&t0, &p.r.last));
	/* And a new failure marks it again. */
	health_failures(p.h, 3, 1);
	ck_assert_uint_eq(p.r.n, 3);
	ck_assert_int_eq(p.r.v[2].soft_down, 1);
	passive_end(&p);
}
END_TEST

START_TEST(test_passive_max_fails_3)
{
	struct passive p;

	passive_start(&p, "max_fails = 3\nfail_timeout = 10s\n");
	health_failures(p.h, 2, 1);
	health_failures(p.h, 2, 1);
	ck_assert_uint_eq(p.r.n, 0);
	/* Other servers' failures do not count for this one. */
	health_failures(p.h, 3, 2);
	health_failures(p.h, 0, 5);	/* backend other: max_fails 1 */
	ck_assert_uint_eq(p.r.n, 1);
	ck_assert_uint_eq(p.r.v[0].server, 0);
	health_failures(p.h, 2, 1);
	ck_assert_uint_eq(p.r.n, 2);
	ck_assert_uint_eq(p.r.v[1].server, 2);
	ck_assert_int_eq(p.r.v[1].soft_down, 1);
	/* Several in one report count as several. */
	health_failures(p.h, 3, 1);
	ck_assert_uint_eq(p.r.n, 3);
	ck_assert_uint_eq(p.r.v[2].server, 3);
	/* Out of range and zero are ignored. */
	health_failures(p.h, 4, 1);
	health_failures(p.h, 1000, 1);
	health_failures(p.h, 1, 0);
	health_failures(NULL, 1, 1);
	ck_assert_uint_eq(p.r.n, 3);
	passive_end(&p);
}
END_TEST

START_TEST(test_passive_window)
{
	struct passive p;

	/* Failures further apart than fail_timeout do not add up. */
	passive_start(&p, "max_fails = 2\nfail_timeout = 100ms\n");
	health_failures(p.h, 2, 1);
	usleep(200 * 1000);
	health_failures(p.h, 2, 1);
	ck_assert_uint_eq(p.r.n, 0);
	health_failures(p.h, 2, 1);
	ck_assert_uint_eq(p.r.n, 1);
	ck_assert_int_eq(p.r.v[0].soft_down, 1);
	passive_end(&p);
}
END_TEST

START_TEST(test_passive_off)
{
	struct passive p;

	passive_start(&p, "max_fails = 0\nfail_timeout = 10s\n");
	health_failures(p.h, 2, 1000);
	health_failures(p.h, 3, 1);
	ck_assert_uint_eq(p.r.n, 0);
	passive_end(&p);
}
END_TEST

START_TEST(test_passive_counts_toward_fall)
{
	struct passive p;

	/*
	 * With active checks the failures feed the rise/fall machine: fall
	 * of them mark the server down (not soft-down). The checks never
	 * run here: the loop is not run.
	 */
	passive_start(&p, "check = tcp\ncheck_interval = 1h\nfall = 3\n"
	    "max_fails = 1\n");
	health_failures(p.h, 2, 2);
	ck_assert_uint_eq(p.r.n, 0);
	health_failures(p.h, 2, 1);
	ck_assert_uint_eq(p.r.n, 1);
	ck_assert_uint_eq(p.r.v[0].server, 2);
	ck_assert_int_eq(p.r.v[0].up, 0);
	ck_assert_int_eq(p.r.v[0].soft_down, 0);
	health_failures(p.h, 2, 10);
	ck_assert_uint_eq(p.r.n, 1);
	health_failures(p.h, 3, 3);
	ck_assert_uint_eq(p.r.n, 2);
	ck_assert_uint_eq(p.r.v[1].server, 3);
	ck_assert_int_eq(p.r.v[1].up, 0);
	passive_end(&p);
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc;

	tc = tcase_create("rise_fall");
	tcase_add_test(tc, test_up_falls_after_fall_failures);
	tcase_add_test(tc, test_down_rises_after_rise_successes);
	tcase_add_test(tc, test_start_up_needs_no_rise);
	tcase_add_test(tc, test_start_down_needs_rise);
	tcase_add_test(tc, test_runs_must_be_consecutive);
	tcase_add_test(tc, test_flapping);
	tcase_add_test(tc, test_full_cycles);
	tcase_add_test(tc, test_large_counts);
	suite_add_tcase(s, tc);

	tc = tcase_create("unescape");
	tcase_add_test(tc, test_unescape);
	tcase_add_test(tc, test_unescape_rejects);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, test_keys_defaults);
	tcase_add_test(tc, test_keys_set);
	tcase_add_test(tc, test_keys_bad_values);
	tcase_add_test(tc, test_keys_need_check_tcp);
	tcase_add_test(tc, test_keys_duplicate_and_empty);
	suite_add_tcase(s, tc);

	tc = tcase_create("passive");
	tcase_add_test(tc, test_passive_max_fails_1);
	tcase_add_test(tc, test_passive_max_fails_3);
	tcase_add_test(tc, test_passive_window);
	tcase_add_test(tc, test_passive_off);
	tcase_add_test(tc, test_passive_counts_toward_fall);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(health_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
