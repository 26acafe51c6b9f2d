/* config_dump.h -- what a configuration will do, for baton -t and -T */
#ifndef BATON_CONFIG_DUMP_H
#define BATON_CONFIG_DUMP_H

#include <stdio.h>

#include "config.h"

/*
 * A summary for people, one line per frontend, backend and server: what
 * listens where, what serves it, how many workers, where the stats are.
 */
void	config_dump_summary(FILE *fp, const struct config *cfg);

/*
 * cfg in proxy.ini syntax with every default written out, so that the
 * output read back gives an equivalent configuration.
 */
void	config_dump_ini(FILE *fp, const struct config *cfg);

/* A duration in the largest unit that keeps it exact: "5m", "1500ms". */
void	config_format_duration(unsigned ms, char *buf, size_t size);

/*
 * len bytes at s as a proxy.ini value that config_unescape() turns back
 * into the same bytes: \r \n \t \\ and \xHH for anything else that would
 * not survive the parser (controls, non-ASCII, ';', '#', edge blanks).
 */
void	config_escape(FILE *fp, const char *s, size_t len);

#endif
