/* check_log.c -- unit tests for log rate limiting, on an injected clock */
#include "ac_config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static uint64_t now_ms = 1000000;
static char path[] = "/tmp/check_log.XXXXXX";

static uint64_t
fake_clock(void)
{
	return now_ms;
}

static void
setup(void)
{
	int fd = mkstemp(path);

	ck_assert_int_ne(fd, -1);
	close(fd);
	log_init("check_log");
	ck_assert_int_eq(log_set_file(path), 0);
	log_set_clock(fake_clock);
}

static void
teardown(void)
{
	log_set_clock(NULL);
	log_close();
	unlink(path);
	strcpy(path, "/tmp/check_log.XXXXXX");
}

/* The log file so far (static buffer, NUL-terminated). */
static const char *
log_text(void)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
count_lines(void)
{
	const char *p = log_text();
	int n = 0;

	for (; *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

/* Lines holding NEEDLE. */
static int
count_with(const char *needle)
{
	const char *p = log_text();
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static void
flood(int n)
{
	for (int i = 0; i < n; i++)
		log_warnx("accept failed on port %d", 8080);
}

START_TEST(test_flood_once_then_summary)
{
	flood(1000);
	ck_assert_int_eq(count_lines(), 1);
	now_ms += 999;
	log_tick();
	ck_assert_int_eq(count_lines(), 1);
	now_ms += 1;
	log_tick();
	ck_assert_int_eq(count_lines(), 2);
	ck_assert_int_eq(count_with("warning: accept failed on port 8080\n"),
	    1);
	ck_assert_int_eq(count_with("warning: accept failed on port 8080 ... "
	    "999 more like this in the last second\n"), 1);
	log_tick();
	ck_assert_int_eq(count_lines(), 2);
}
END_TEST

/* A steady flood: at most one line a second; a quiet second ends it. */
START_TEST(test_steady_flood)
{
	flood(1);
	for (int s = 0; s < 5; s++) {
		for (int i = 0; i < 10; i++) {
			now_ms += 100;
			flood(3);
		}
		log_tick();
	}
	/*
	 * The first line, then a summary each second: 27 for the first
	 * (the calls at 100..900 ms), 30 for each later one.
	 */
	ck_assert_int_eq(count_lines(), 6);
	ck_assert_int_eq(count_with("more like this in the last second"), 5);
	ck_assert_int_eq(count_with("... 27 more like this"), 1);
	ck_assert_int_eq(count_with("... 30 more like this"), 4);
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_with("more like this"), 6);
	now_ms += 1000;
	log_tick();
	flood(1);
	ck_assert_int_eq(count_lines(), 8);
	ck_assert_int_eq(count_with("more like this"), 6);
}
END_TEST

START_TEST(test_call_sites_apart)
{
	for (int i = 0; i < 10; i++) {
		log_warnx("connect to %s failed", "a");
		log_error("no server up for %s", "web");
	}
	ck_assert_int_eq(count_lines(), 2);
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_with("connect to a failed ... 9 more like "
	    "this in the last second\n"), 1);
	ck_assert_int_eq(count_with("error: no server up for web ... 9 more "
	    "like this in the last second\n"), 1);
}
END_TEST

START_TEST(test_info_not_limited)
{
	for (int i = 0; i < 50; i++) {
		log_info("access %d", i);
		log_notice("notice %d", i);
	}
	log_set_level(LL_DEBUG);
	for (int i = 0; i < 50; i++)
		log_debug("debug %d", i);
	ck_assert_int_eq(count_lines(), 150);
	ck_assert_int_eq(count_with("more like this"), 0);
}
END_TEST

/* Any later line, of any level, writes a due summary first. */
START_TEST(test_next_call_flushes)
{
	flood(5);
	now_ms += 1500;
	log_info("something else");
	ck_assert_int_eq(count_lines(), 3);
	ck_assert_ptr_nonnull(strstr(log_text(), "port 8080 ... 4 more like "
	    "this in the last second\n"));
	ck_assert(strstr(log_text(), "4 more like this") <
	    strstr(log_text(), "something else"));
}
END_TEST

START_TEST(test_errno_text_kept)
{
	for (int i = 0; i < 3; i++) {
		errno = EMFILE;
		log_warn("accept");
		ck_assert_int_eq(errno, EMFILE);
	}
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_with("accept: Too many open files ... 2 more "
	    "like this in the last second\n"), 1);
}
END_TEST

/* A report that lists every item is written whole. */
START_TEST(test_error_always_not_limited)
{
	for (int i = 0; i < 20; i++)
		log_error_always("%s", "proxy.ini:3: a config error");
	ck_assert_int_eq(count_lines(), 20);
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_with("more like this"), 0);
}
END_TEST

/* Below the level: neither written nor counted. */
START_TEST(test_below_level_not_counted)
{
	log_set_level(LL_ERROR);
	flood(10);
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_lines(), 0);
}
END_TEST

/*
 * The table is bounded: 40 call sites (format strings at 40 addresses)
 * each logged twice evict the oldest, whose count is written on its way
 * out, so no count is lost and none is written twice.
 */
START_TEST(test_table_bounded)
{
	static char fmts[40][16];

	for (int i = 0; i < 40; i++)
		snprintf(fmts[i], sizeof(fmts[i]), "site%02d %%d", i);
	for (int i = 0; i < 40; i++) {
		now_ms++;
		log_warnx(fmts[i], 0);
		log_warnx(fmts[i], 1);
	}
	ck_assert_int_eq(count_with(" 0\n"), 40);
	/* 32 slots: sites 0-7 made way for sites 32-39. */
	ck_assert_int_eq(count_with("more like this"), 8);
	ck_assert_int_eq(count_with("site00 0 ... 1 more like this"), 1);
	ck_assert_int_eq(count_with("site07 0 ... 1 more like this"), 1);
	ck_assert_int_eq(count_with("site08 0 ... 1 more like this"), 0);
	now_ms += 1000;
	log_tick();
	ck_assert_int_eq(count_with("... 1 more like this in the last "
	    "second\n"), 40);
	ck_assert_int_eq(count_lines(), 80);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("rate limit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_flood_once_then_summary);
	tcase_add_test(tc, test_steady_flood);
	tcase_add_test(tc, test_call_sites_apart);
	tcase_add_test(tc, test_info_not_limited);
	tcase_add_test(tc, test_next_call_flushes);
	tcase_add_test(tc, test_errno_text_kept);
	tcase_add_test(tc, test_error_always_not_limited);
	tcase_add_test(tc, test_below_level_not_counted);
	tcase_add_test(tc, test_table_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
