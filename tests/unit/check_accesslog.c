/* check_accesslog.c -- unit tests for the access log's JSON line */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accesslog.h"

static struct access_rec
rec(void)
{
	struct access_rec r = {
		.end_ms = 1764748800123ULL, .duration_ms = 42, .id = 7,
		.frontend = "web", .client = "127.0.0.1:5555",
		.backend = "app", .server = "a1", .bytes_in = 10,
		.bytes_out = 20, .reason = "done", .err = 0,
	};

	return r;
}

START_TEST(test_fields)
{
	struct access_rec r = rec();
	char buf[ACCESSLOG_LINE_MAX];
	const char *head = "{\"time\":\"2025-12-03T08:00:00.123Z\",\"pid\":";
	size_t n = accesslog_json(&r, buf, sizeof(buf));

	ck_assert_uint_eq(n, strlen(buf));
	ck_assert_msg(strncmp(buf, head, strlen(head)) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, ",\"id\":7,\"frontend\":\"web\","
	    "\"client\":\"127.0.0.1:5555\",\"backend\":\"app\",\"server\":\"a1\","
	    "\"bytes_in\":10,\"bytes_out\":20,\"duration_ms\":42,"
	    "\"reason\":\"done\",\"error\":null}\n"));
}
END_TEST

START_TEST(test_nulls_and_errors)
{
	struct access_rec r = rec();
	char buf[ACCESSLOG_LINE_MAX];

	r.server = NULL;
	r.err = 111;	/* ECONNREFUSED: strerror's words, quoted */
	accesslog_json(&r, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"server\":null,"));
	ck_assert_ptr_nonnull(strstr(buf, "\"error\":\""));
}
END_TEST

START_TEST(test_escapes)
{
	struct access_rec r = rec();
	char buf[ACCESSLOG_LINE_MAX];

	r.reason = "a\"b\\c\nd\x01\xc3\xa9";
	accesslog_json(&r, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "\"reason\":\"a\\\"b\\\\c\\u000ad\\u0001"
	    "\\u00c3\\u00a9\",") != NULL, "%s", buf);
}
END_TEST

START_TEST(test_long_strings_cut_inside_quotes)
{
	struct access_rec r = rec();
	const char *tail = "\"error\":null}\n";
	char buf[512], *big = malloc(4000);
	size_t n;

	ck_assert_ptr_nonnull(big);
	memset(big, '"', 3999);
	big[3999] = '\0';
	r.frontend = r.client = r.backend = r.server = r.reason = big;
	n = accesslog_json(&r, buf, sizeof(buf));
	ck_assert_uint_lt(n, sizeof(buf));
	ck_assert_msg(strcmp(buf + n - strlen(tail), tail) == 0, "%s", buf);
	free(big);
}
END_TEST

static Suite *
accesslog_suite(void)
{
	Suite *s = suite_create("accesslog");
	TCase *tc = tcase_create("json");

	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_nulls_and_errors);
	tcase_add_test(tc, test_escapes);
	tcase_add_test(tc, test_long_strings_cut_inside_quotes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(accesslog_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
