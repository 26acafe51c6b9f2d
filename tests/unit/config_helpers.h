/* config_helpers.h -- loading a configuration from text in unit tests */
#ifndef BATON_TEST_CONFIG_HELPERS_H
#define BATON_TEST_CONFIG_HELPERS_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* Load text as "t.ini", errors into errs (which the caller frees). */
static inline struct config *
load(const char *text, struct errlist *errs)
{
	memset(errs, 0, sizeof(*errs));
	return config_load_string(text, "t.ini", errs);
}

/* All messages, one a line, for failure reports. */
static inline const char *
joined(const struct errlist *errs)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < errs->n; i++) {
		strncat(buf, "\n  ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, errs->msgs[i], sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

/*
 * Load text, which must fail with exactly n errors, in order, each
 * starting with want[i] ("FILE:LINE: [section] key: reason 'value'").
 * Everything is freed before an assertion can fail (CK_FORK=no, ASan).
 */
static inline void
expect_errors(const char *text, const char *const *want, size_t n)
{
	static char why[4608];
	struct errlist errs;
	struct config *cfg;

	why[0] = '\0';
	cfg = load(text, &errs);
	if (cfg != NULL)
		snprintf(why, sizeof(why), "configuration accepted");
	else if (errs.n != n)
		snprintf(why, sizeof(why), "%zu errors, expected %zu:%s",
		    errs.n, n, joined(&errs));
	for (size_t i = 0; why[0] == '\0' && i < n; i++) {
		if (strncmp(errs.msgs[i], want[i], strlen(want[i])) == 0)
			continue;
		snprintf(why, sizeof(why), "error %zu is\n  %s\nexpected\n"
		    "  %s...", i, errs.msgs[i], want[i]);
	}
	config_free(cfg);
	errlist_free(&errs);
	ck_assert_msg(why[0] == '\0', "%s", why);
}

#define EXPECT_ERRORS(text, ...) do {					\
	static const char *const want_[] = { __VA_ARGS__ };		\
	expect_errors((text), want_, sizeof(want_) / sizeof(want_[0]));	\
} while (0)

static inline struct config *
load_ok(const char *text)
{
	struct errlist errs;
	struct config *cfg;

	cfg = load(text, &errs);
	if (cfg == NULL || errs.n != 0) {
		static char why[4096];

		snprintf(why, sizeof(why), "%s", joined(&errs));
		config_free(cfg);
		errlist_free(&errs);
		ck_abort_msg("rejected:%s", why);
	}
	return cfg;
}

#endif
