/* config_helpers.h -- loading a configuration from text in unit tests */
#ifndef BATON_TEST_CONFIG_HELPERS_H
#define BATON_TEST_CONFIG_HELPERS_H

#include <string.h>

#include "config.h"

/* Load text as "t.ini", errors into errs (which the caller frees). */
static struct config *
load(const char *text, struct errlist *errs)
{
	memset(errs, 0, sizeof(*errs));
	return config_load_string(text, "t.ini", errs);
}

/* All messages, one a line, for failure reports. */
static const char *
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

#endif
