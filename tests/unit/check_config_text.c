/* check_config_text.c -- unit tests for the bytes of proxy.ini: a
 * byte-order mark, NUL and control bytes, UTF-8, and names */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_helpers.h"

#define TAIL								\
	"[frontend web]\n"						\
	"listen = 127.0.0.1:8080\n"					\
	"backend = app\n"						\
	"[backend app]\n"						\
	"server = a1 127.0.0.1:8000\n"

/* Load len bytes (NULs and all), expecting exactly one error: want. */
static void
expect_one_error(const char *buf, size_t len, const char *want)
{
	static char why[4608];
	struct errlist errs = { 0 };
	struct config *cfg;

	why[0] = '\0';
	cfg = config_load_buffer(buf, len, "t.ini", &errs);
	if (cfg != NULL)
		snprintf(why, sizeof(why), "configuration accepted");
	else if (errs.n != 1 || strcmp(errs.msgs[0], want) != 0)
		snprintf(why, sizeof(why), "errors:%s\nexpected\n  %s",
		    joined(&errs), want);
	config_free(cfg);
	errlist_free(&errs);
	ck_assert_msg(why[0] == '\0', "%s", why);
}

START_TEST(test_bom)
{
	struct config *cfg = load_ok("\xef\xbb\xbf[global]\nworkers = 3\n"
	    TAIL);

	ck_assert_uint_eq(cfg->workers, 3);
	ck_assert_int_eq(cfg->frontends[0].line, 3);
	config_free(cfg);
	/* Only at the start of the file. */
	EXPECT_ERRORS("[global]\n\xef\xbb\xbfworkers = 3\n" TAIL,
	    "t.ini:2: [global] unknown key");
}
END_TEST

START_TEST(test_nul_in_value)
{
	static const char text[] = "[global]\nlog_file = /tmp/a\0b\n" TAIL;

	/* Without the check, "/tmp/a" would be taken silently. */
	expect_one_error(text, sizeof(text) - 1,
	    "t.ini:2: [global] NUL byte in line");
}
END_TEST

START_TEST(test_nul_in_buffer_string)
{
	/* A NUL on a line of its own, and in a section header. */
	static const char t1[] = "[global]\n\0\n" TAIL;
	static const char t2[] = "[backend b\0x]\nserver = s 127.0.0.1:1\n"
	    TAIL;

	expect_one_error(t1, sizeof(t1) - 1, "t.ini:2: [global] NUL byte in "
	    "line");
	/* The header's keys are skipped, not given to another section. */
	expect_one_error(t2, sizeof(t2) - 1, "t.ini:1: NUL byte in line");
}
END_TEST

START_TEST(test_control_characters)
{
	EXPECT_ERRORS("[stats]\nlisten = 127.0.0.1:9090\ntoken = a\x1b[2Jb\n"
	    TAIL, "t.ini:3: [stats] control character in line");
	EXPECT_ERRORS("[stats]\nlisten = 127.0.0.1:9090\ntoken = a\x7f\n"
	    TAIL, "t.ini:3: [stats] control character in line");
	/* Tabs and CRLF stay fine. */
	config_free(load_ok("[stats]\r\nlisten =\t127.0.0.1:9090\r\n" TAIL));
}
END_TEST

START_TEST(test_utf8)
{
	struct config *cfg;

	/* Valid UTF-8 in comments and values is fine. */
	cfg = load_ok("; caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"
	    "[stats]\nlisten = 127.0.0.1:9090\ntoken = \xc3\xa9t\xc3\xa9\n"
	    TAIL);
	ck_assert_str_eq(cfg->stats_token, "\xc3\xa9t\xc3\xa9");
	config_free(cfg);
	EXPECT_ERRORS("; caf\xe9\n" TAIL, "t.ini:1: invalid UTF-8 in line");
	EXPECT_ERRORS("[backend app]\nserver = a\xff 127.0.0.1:1\n"
	    "server = a2 127.0.0.1:2\n[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n",
	    "t.ini:2: [backend app] invalid UTF-8 in line");
	/* A bad header: its keys are skipped, not mistaken for another's. */
	EXPECT_ERRORS("[global]\nworkers = 2\n[frontend w\xc0\xaf]\n"
	    "workers = 3\n" TAIL, "t.ini:3: invalid UTF-8 in line");
}
END_TEST

START_TEST(test_check_text)
{
	static const struct {
		const char	*s;
		size_t		 len;
		const char	*want;
	} cases[] = {
		{ "plain", 5, NULL },
		{ "tab\there\r\n", 10, NULL },
		{ "\xc3\xa9", 2, NULL },
		{ "\xef\xbf\xbd", 3, NULL },		/* U+FFFD */
		{ "\xf4\x8f\xbf\xbf", 4, NULL },	/* U+10FFFF */
		{ "a\0b", 3, "NUL byte" },
		{ "\x01", 1, "control character" },
		{ "\x7f", 1, "control character" },
		{ "a\rb", 3, "control character" },	/* CR inside a line */
		{ "a\r", 2, NULL },			/* CR at its end */
		{ "\x80", 1, "invalid UTF-8" },		/* lone continuation */
		{ "\xc3", 1, "invalid UTF-8" },		/* truncated */
		{ "\xc3\xa9", 1, "invalid UTF-8" },	/* cut by the length */
		{ "\xc0\xaf", 2, "invalid UTF-8" },	/* overlong '/' */
		{ "\xe0\x80\xaf", 3, "invalid UTF-8" },	/* overlong */
		{ "\xed\xa0\x80", 3, "invalid UTF-8" },	/* surrogate */
		{ "\xf4\x90\x80\x80", 4, "invalid UTF-8" }, /* > U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, "invalid UTF-8" },
		{ "\xe2\x28\xa1", 3, "invalid UTF-8" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = config_check_text(cases[i].s, cases[i].len);

		if (cases[i].want == NULL)
			ck_assert_msg(got == NULL, "case %zu: %s", i, got);
		else
			ck_assert_msg(got != NULL &&
			    strcmp(got, cases[i].want) == 0,
			    "case %zu: got %s", i, got ? got : "NULL");
	}
}
END_TEST

START_TEST(test_server_names)
{
	/* Names reach /stats and /metrics: the section names' rule. */
	EXPECT_ERRORS("[backend app]\nserver = a\"b 127.0.0.1:1\n"
	    "server = a2 127.0.0.1:2\n[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n",
	    "t.ini:2: [backend app] server: bad name 'a\"b' (letters, "
	    "digits, _ . -)");
	EXPECT_ERRORS("[backend app]\nserver = a{b} 127.0.0.1:1\n"
	    "server = ok-1.x_y 127.0.0.1:2\n"
	    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n",
	    "t.ini:2: [backend app] server: bad name 'a{b}'");
}
END_TEST

static Suite *
config_text_suite(void)
{
	Suite *s = suite_create("config_text");
	TCase *tc = tcase_create("bytes");

	tcase_add_test(tc, test_bom);
	tcase_add_test(tc, test_nul_in_value);
	tcase_add_test(tc, test_nul_in_buffer_string);
	tcase_add_test(tc, test_control_characters);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_check_text);
	tcase_add_test(tc, test_server_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_text_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
