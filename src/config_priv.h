/*
 * config_priv.h -- what the three rooms of the configuration reader share.
 *
 * Layering (each file calls only those above it):
 *   config_util.c   errors with file:line, allocation, numbers, durations,
 *                   escapes, names and UTF-8: pure helpers
 *   config_tls.c    the setters and checks of a frontend's TLS edge keys
 *   config_keys.c   one setter per key, the key tables per section
 *   config.c        the line reader, sections, cross-checks, load and free
 */
#ifndef BATON_CONFIG_PRIV_H
#define BATON_CONFIG_PRIV_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

enum section_kind {
	SECT_NONE,	/* before the first section header */
	SECT_BAD,	/* unknown or malformed: its keys are skipped */
	SECT_GLOBAL,
	SECT_STATS,
	SECT_FRONTEND,
	SECT_BACKEND,
};

struct parse {
	struct config	*cfg;
	struct errlist	*errs;
	const char	*name;		/* file name as given */
	int		 line;
	/* the line source: a FILE or a buffer */
	FILE		*fp;
	const char	*text;
	const char	*text_end;
	int		 kind;		/* enum section_kind */
	char		 label[160];	/* "[frontend web]" */
	unsigned	 seen;		/* bitmask of keys set in the section */
	int		 seen_global;
	int		 seen_stats;
	int		 stats_line;
};

typedef int (*key_fn)(struct parse *, const char *key, const char *value);

struct key_def {
	const char	*name;
	key_fn		 fn;
	int		 repeatable;
};

/* config_server.c: [backend] server (repeatable) */
int	cfg_b_server(struct parse *, const char *, const char *);

/* config_dns.c: the keys of DNS discovery */
int	cfg_g_resolve_interval(struct parse *, const char *, const char *);
int	cfg_g_resolvers(struct parse *, const char *, const char *);
int	cfg_b_discover(struct parse *, const char *, const char *);
/* A server line with "resolve": opts holds its options, hostport its
 * HOST:PORT. */
int	cfg_resolve_add(struct parse *, struct backend_conf *,
	    const struct server_conf *opts, const char *name,
	    const char *hostport);

/* config_util.c */
void	 cfg_errlist_add(struct errlist *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* An error at line (0: the current one) in the current section. */
void	 cfg_perr(struct parse *, int line, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	*cfg_xcalloc(size_t n, size_t size);
char	*cfg_xstrdup(const char *s);
/* Grow an array by one zeroed element; returns the new element. */
void	*cfg_grow(void *arrp, size_t *n, size_t size);
int	 cfg_parse_uint(const char *s, unsigned min, unsigned max,
	    unsigned *out);
/* Index of s in the NULL-terminated words, or -1. */
int	 cfg_parse_word(const char *s, const char *const *words);
/* A section or server name: letters, digits, '_', '.', '-'. */
int	 cfg_valid_name(const char *s);

/* config_tls.c: the TLS edge keys of a frontend (route, tls_passthrough,
 * tls_alpn), their checks once the whole file is read (which also numbers
 * the route slots), and what they hold, freed. */
int	 cfg_key_route(struct parse *, const char *, const char *);
int	 cfg_key_tls_passthrough(struct parse *, const char *, const char *);
int	 cfg_key_tls_alpn(struct parse *, const char *, const char *);
void	 cfg_check_tls_edge(struct parse *, struct frontend_conf *);
void	 cfg_free_tls_edge(struct frontend_conf *);

/* config_keys.c: the keys of a section kind, NULL-name terminated. */
const struct key_def *cfg_section_keys(int kind);

#endif
