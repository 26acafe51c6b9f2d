/* config.c -- proxy.ini: parsing with inih, then one validation pass */
#include "ac_config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

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
	/* the line source: a FILE or a string */
	FILE		*fp;
	const char	*text;
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

void
errlist_free(struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

static void errlist_add(struct errlist *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
errlist_add(struct errlist *errs, const char *fmt, ...)
{
	char **m;
	char *s;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		fatalx("out of memory");
	if ((m = realloc(errs->msgs, (errs->n + 1) * sizeof(*m))) == NULL)
		fatalx("out of memory");
	errs->msgs = m;
	errs->msgs[errs->n++] = s;
}

static void perr(struct parse *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* An error at line (0: the current one) in the current section. */
static void
perr(struct parse *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errlist_add(p->errs, "%s:%d: %s%s%s", p->name, line ? line : p->line,
	    p->label, p->label[0] ? " " : "", msg);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *v = calloc(n, size);

	if (v == NULL)
		fatalx("out of memory");
	return v;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		fatalx("out of memory");
	return d;
}

/* Grow an array by one zeroed element; returns the new element. */
static void *
grow(void *arrp, size_t *n, size_t size)
{
	void **arr = arrp;
	char *a;

	if ((a = realloc(*arr, (*n + 1) * size)) == NULL)
		fatalx("out of memory");
	memset(a + *n * size, 0, size);
	*arr = a;
	return a + (*n)++ * size;
}

int
config_parse_duration(const char *s, unsigned *ms)
{
	char *end;
	unsigned long long v, mult;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else
		return -1;
	/* A week is far beyond any sane timeout; it also keeps ms in 32 bits. */
	if (v > 7ULL * 24 * 3600 * 1000 / mult)
		return -1;
	*ms = (unsigned)(v * mult);
	return 0;
}

static int
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Index of s in the NULL-terminated words, or -1. */
static int
parse_word(const char *s, const char *const *words)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			return i;
	return -1;
}

static const char *const balance_words[] = {
	"roundrobin", "leastconn", "source", "random", NULL
};
static const char *const dispatch_words[] = { "roundrobin", "leastconn", NULL };
static const char *const proxy_words[] = { "off", "v1", "v2", "any", NULL };
static const char *const send_proxy_words[] = { "off", "v1", "v2", NULL };
static const char *const onoff_words[] = { "off", "on", NULL };
static const char *const check_words[] = { "off", "tcp", NULL };

long
config_nofile(const struct config *cfg)
{
	long need = 64;

	for (size_t i = 0; i < cfg->nfrontends; i++)
		need += 2 * (long)cfg->frontends[i].max_connections;
	return need;
}

const char *
config_balance_name(int balance)
{
	return balance_words[balance];
}

static int
set_word(struct parse *p, const char *key, const char *v,
    const char *const *words, int *out)
{
	int i;

	if ((i = parse_word(v, words)) == -1) {
		char list[128] = "";
		for (int j = 0; words[j] != NULL; j++) {
			strcat(list, j ? " | " : "");
			strcat(list, words[j]);
		}
		perr(p, 0, "%s: bad value '%s' (expected %s)", key, v, list);
		return -1;
	}
	*out = i;
	return 0;
}

static int
set_duration(struct parse *p, const char *key, const char *v, unsigned min_ms,
    unsigned *out)
{
	unsigned ms;

	if (config_parse_duration(v, &ms) == -1 || ms < min_ms) {
		perr(p, 0, "%s: bad duration '%s'", key, v);
		return -1;
	}
	*out = ms;
	return 0;
}

static int
set_uint(struct parse *p, const char *key, const char *v, unsigned min,
    unsigned max, unsigned *out)
{
	if (parse_uint(v, min, max, out) == -1) {
		perr(p, 0, "%s: bad number '%s' (expected %u..%u)", key, v, min,
		    max);
		return -1;
	}
	return 0;
}

static void
set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* [global] */

static int
g_workers(struct parse *p, const char *k, const char *v)
{
	if (strcmp(v, "auto") == 0) {
		p->cfg->workers = 0;
		return 0;
	}
	return set_uint(p, k, v, 1, CONFIG_MAX_WORKERS, &p->cfg->workers);
}

static int
g_dispatch(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, dispatch_words, &p->cfg->dispatch);
}

static int
g_drain_timeout(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 0, &p->cfg->drain_timeout_ms);
}

static int
g_user(struct parse *p, const char *k, const char *v)
{
	if (getpwnam(v) == NULL) {
		perr(p, 0, "%s: unknown user '%s'", k, v);
		return -1;
	}
	set_string(&p->cfg->user, v);
	return 0;
}

static int
g_log_level(struct parse *p, const char *k, const char *v)
{
	int level = log_level_parse(v);

	if (level == -1) {
		perr(p, 0, "%s: bad value '%s' (expected debug | info | "
		    "notice | warning | error)", k, v);
		return -1;
	}
	p->cfg->log_level = level;
	return 0;
}

static int
g_log_file(struct parse *p, const char *k, const char *v)
{
	set_string(&p->cfg->log_file, v);
	return 0;
}

static int
g_access_log(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, onoff_words, &p->cfg->access_log);
}

static int
g_pidfile(struct parse *p, const char *k, const char *v)
{
	set_string(&p->cfg->pidfile, v);
	return 0;
}

static int
g_splice(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, onoff_words, &p->cfg->splice);
}

static const struct key_def global_keys[] = {
	{ "workers", g_workers, 0 },
	{ "dispatch", g_dispatch, 0 },
	{ "drain_timeout", g_drain_timeout, 0 },
	{ "user", g_user, 0 },
	{ "log_level", g_log_level, 0 },
	{ "log_file", g_log_file, 0 },
	{ "access_log", g_access_log, 0 },
	{ "pidfile", g_pidfile, 0 },
	{ "splice", g_splice, 0 },
	{ NULL, NULL, 0 }
};

/* [stats] */

static int
s_listen(struct parse *p, const char *k, const char *v)
{
	char err[64];

	if (addr_parse(v, ADDR_LISTEN, &p->cfg->stats_addr, err,
	    sizeof(err)) == -1) {
		perr(p, 0, "%s: bad address '%s' (%s)", k, v, err);
		return -1;
	}
	set_string(&p->cfg->stats_listen, v);
	return 0;
}

static int
s_token(struct parse *p, const char *k, const char *v)
{
	if (*v == '\0') {
		perr(p, 0, "%s: empty token", k);
		return -1;
	}
	set_string(&p->cfg->stats_token, v);
	return 0;
}

static const struct key_def stats_keys[] = {
	{ "listen", s_listen, 0 },
	{ "token", s_token, 0 },
	{ NULL, NULL, 0 }
};

/* [frontend NAME] */

static struct frontend_conf *
cur_frontend(struct parse *p)
{
	return &p->cfg->frontends[p->cfg->nfrontends - 1];
}

static int
f_listen(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);
	struct listen_conf *l;
	struct addr a;
	char err[64];

	if (addr_parse(v, ADDR_LISTEN, &a, err, sizeof(err)) == -1) {
		perr(p, 0, "%s: bad address '%s' (%s)", k, v, err);
		return -1;
	}
	l = grow(&f->listens, &f->nlistens, sizeof(*l));
	l->text = xstrdup(v);
	l->addr = a;
	l->line = p->line;
	return 0;
}

static int
f_backend(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);

	set_string(&f->backend_name, v);
	f->backend_line = p->line;
	return 0;
}

static int
f_timeout_idle(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 1, &cur_frontend(p)->timeout_idle_ms);
}

static int
f_max_connections(struct parse *p, const char *k, const char *v)
{
	return set_uint(p, k, v, 1, 10000000, &cur_frontend(p)->max_connections);
}

static int
f_tls_cert(struct parse *p, const char *k, const char *v)
{
	set_string(&cur_frontend(p)->tls_cert, v);
	cur_frontend(p)->tls_cert_line = p->line;
	return 0;
}

static int
f_tls_key(struct parse *p, const char *k, const char *v)
{
	set_string(&cur_frontend(p)->tls_key, v);
	cur_frontend(p)->tls_key_line = p->line;
	return 0;
}

static int
f_accept_proxy(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, proxy_words, &cur_frontend(p)->accept_proxy);
}

static const struct key_def frontend_keys[] = {
	{ "listen", f_listen, 1 },
	{ "backend", f_backend, 0 },
	{ "timeout_idle", f_timeout_idle, 0 },
	{ "max_connections", f_max_connections, 0 },
	{ "tls_cert", f_tls_cert, 0 },
	{ "tls_key", f_tls_key, 0 },
	{ "accept_proxy", f_accept_proxy, 0 },
	{ NULL, NULL, 0 }
};

/* [backend NAME] */

static struct backend_conf *
cur_backend(struct parse *p)
{
	return &p->cfg->backends[p->cfg->nbackends - 1];
}

static int
server_option(struct parse *p, struct server_conf *s, const char *opt)
{
	const char *eq = strchr(opt, '=');
	const char *v = eq ? eq + 1 : "";
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);

	if (klen == 6 && strncmp(opt, "backup", 6) == 0 && eq == NULL) {
		s->backup = 1;
		return 0;
	}
	if (klen == 6 && strncmp(opt, "weight", 6) == 0 && eq != NULL) {
		if (parse_uint(v, 1, CONFIG_MAX_WEIGHT, &s->weight) == 0)
			return 0;
		perr(p, 0, "server: bad weight '%s' (expected 1..%d)", v,
		    CONFIG_MAX_WEIGHT);
		return -1;
	}
	if (klen == 15 && strncmp(opt, "max_connections", 15) == 0 &&
	    eq != NULL) {
		if (parse_uint(v, 1, 10000000, &s->max_connections) == 0)
			return 0;
		perr(p, 0, "server: bad max_connections '%s' (expected "
		    "1..10000000)", v);
		return -1;
	}
	if (klen == 10 && strncmp(opt, "send_proxy", 10) == 0 && eq != NULL) {
		int i = parse_word(v, send_proxy_words);
		if (i != -1) {
			s->send_proxy = i;
			return 0;
		}
		perr(p, 0, "server: bad send_proxy '%s' (expected off | v1 | "
		    "v2)", v);
		return -1;
	}
	perr(p, 0, "server: unknown option '%s'", opt);
	return -1;
}

static int
b_server(struct parse *p, const char *k, const char *v)
{
	struct backend_conf *b = cur_backend(p);
	struct server_conf *s;
	char *copy, *tok, *save, *name, *addr;
	char err[64];
	int rc = -1;

	copy = xstrdup(v);
	name = strtok_r(copy, " \t", &save);
	addr = strtok_r(NULL, " \t", &save);
	if (name == NULL || addr == NULL) {
		perr(p, 0, "%s: expected NAME ADDRESS [options]", k);
		goto out;
	}
	if (b->nservers >= CONFIG_MAX_SERVERS) {
		perr(p, 0, "%s: too many servers (at most %d)", k,
		    CONFIG_MAX_SERVERS);
		goto out;
	}
	for (size_t i = 0; i < b->nservers; i++)
		if (strcmp(b->servers[i].name, name) == 0) {
			perr(p, 0, "%s: duplicate server name '%s'", k, name);
			goto out;
		}
	s = grow(&b->servers, &b->nservers, sizeof(*s));
	s->name = xstrdup(name);
	s->addr_text = xstrdup(addr);
	s->weight = 1;
	s->send_proxy = -1;
	s->line = p->line;
	if (addr_parse(addr, ADDR_RESOLVE, &s->addr, err, sizeof(err)) == -1) {
		perr(p, 0, "%s: bad address '%s' (%s)", k, addr, err);
		goto out;
	}
	rc = 0;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
		if (server_option(p, s, tok) == -1)
			rc = -1;
out:
	free(copy);
	return rc;
}

static int
b_balance(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, balance_words, &cur_backend(p)->balance);
}

static int
b_connect_timeout(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 1, &cur_backend(p)->connect_timeout_ms);
}

static int
b_retries(struct parse *p, const char *k, const char *v)
{
	return set_uint(p, k, v, 0, CONFIG_MAX_RETRIES, &cur_backend(p)->retries);
}

static int
b_check(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, check_words, &cur_backend(p)->check);
}

static int
b_check_interval(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 1, &cur_backend(p)->check_interval_ms);
}

static int
b_check_timeout(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 1, &cur_backend(p)->check_timeout_ms);
}

static int
b_rise(struct parse *p, const char *k, const char *v)
{
	return set_uint(p, k, v, 1, 1000, &cur_backend(p)->rise);
}

static int
b_fall(struct parse *p, const char *k, const char *v)
{
	return set_uint(p, k, v, 1, 1000, &cur_backend(p)->fall);
}

static int
b_send_proxy(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, send_proxy_words, &cur_backend(p)->send_proxy);
}

char *
config_unescape(const char *s, size_t *len)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (out == NULL)
		fatalx("out of memory");
	while (*s) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r': *o++ = '\r'; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case '\\': *o++ = '\\'; break;
		case 'x':
			if (isxdigit((unsigned char)s[1]) &&
			    isxdigit((unsigned char)s[2])) {
				char hex[3] = { s[1], s[2], 0 };
				*o++ = (char)strtoul(hex, NULL, 16);
				s += 2;
				break;
			}
			/* FALLTHROUGH */
		default:
			free(out);
			return NULL;
		}
		s++;
	}
	*len = (size_t)(o - out);
	return out;
}

static int
set_escaped(struct parse *p, const char *k, const char *v, char **dst,
    size_t *len)
{
	char *d = config_unescape(v, len);

	if (d == NULL) {
		perr(p, 0, "%s: bad escape in '%s' (\\r \\n \\t \\\\ "
		    "\\xHH)", k, v);
		return -1;
	}
	free(*dst);
	*dst = d;
	return 0;
}

static int
b_check_send(struct parse *p, const char *k, const char *v)
{
	struct backend_conf *b = cur_backend(p);

	return set_escaped(p, k, v, &b->check_send, &b->check_send_len);
}

static int
b_check_expect(struct parse *p, const char *k, const char *v)
{
	struct backend_conf *b = cur_backend(p);

	return set_escaped(p, k, v, &b->check_expect, &b->check_expect_len);
}

static int
b_max_fails(struct parse *p, const char *k, const char *v)
{
	return set_uint(p, k, v, 0, 1000, &cur_backend(p)->max_fails);
}

static int
b_fail_timeout(struct parse *p, const char *k, const char *v)
{
	return set_duration(p, k, v, 1, &cur_backend(p)->fail_timeout_ms);
}

static const struct key_def backend_keys[] = {
	{ "server", b_server, 1 },
	{ "balance", b_balance, 0 },
	{ "connect_timeout", b_connect_timeout, 0 },
	{ "retries", b_retries, 0 },
	{ "check", b_check, 0 },
	{ "check_interval", b_check_interval, 0 },
	{ "check_timeout", b_check_timeout, 0 },
	{ "rise", b_rise, 0 },
	{ "fall", b_fall, 0 },
	{ "send_proxy", b_send_proxy, 0 },
	{ "check_send", b_check_send, 0 },
	{ "check_expect", b_check_expect, 0 },
	{ "max_fails", b_max_fails, 0 },
	{ "fail_timeout", b_fail_timeout, 0 },
	{ NULL, NULL, 0 }
};

/* Sections */

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

static void
section_frontend(struct parse *p, const char *name)
{
	struct frontend_conf *f;

	for (size_t i = 0; i < p->cfg->nfrontends; i++)
		if (strcmp(p->cfg->frontends[i].name, name) == 0)
			perr(p, 0, "duplicate frontend name '%s'", name);
	f = grow(&p->cfg->frontends, &p->cfg->nfrontends, sizeof(*f));
	f->name = xstrdup(name);
	f->line = p->line;
	f->timeout_idle_ms = 5 * 60 * 1000;
	f->max_connections = 10000;
	f->accept_proxy = PROXY_OFF;
	p->kind = SECT_FRONTEND;
}

static void
section_backend(struct parse *p, const char *name)
{
	struct backend_conf *b;

	for (size_t i = 0; i < p->cfg->nbackends; i++)
		if (strcmp(p->cfg->backends[i].name, name) == 0)
			perr(p, 0, "duplicate backend name '%s'", name);
	b = grow(&p->cfg->backends, &p->cfg->nbackends, sizeof(*b));
	b->name = xstrdup(name);
	b->line = p->line;
	b->balance = BALANCE_ROUNDROBIN;
	b->connect_timeout_ms = 5000;
	b->retries = 2;
	b->check = CHECK_OFF;
	b->check_interval_ms = 2000;
	b->check_timeout_ms = 1000;
	b->rise = 2;
	b->fall = 3;
	b->send_proxy = PROXY_OFF;
	b->max_fails = 1;
	b->fail_timeout_ms = 10 * 1000;
	p->kind = SECT_BACKEND;
}

/* A "[...]" header line: open the section it names. */
static void
section_open(struct parse *p, const char *hdr)
{
	char sect[128], kind[16], name[112], extra[2];
	const char *end = strchr(hdr, ']');
	size_t len;
	int n;

	p->seen = 0;
	p->label[0] = '\0';
	p->kind = SECT_BAD;
	len = end ? (size_t)(end - hdr - 1) : 0;
	if (end == NULL || len >= sizeof(sect)) {
		perr(p, 0, "malformed section header");
		return;
	}
	memcpy(sect, hdr + 1, len);
	sect[len] = '\0';
	n = sscanf(sect, " %15s %111s %1s", kind, name, extra);
	snprintf(p->label, sizeof(p->label), "[%s]", sect);
	if (n == 1 && strcmp(kind, "global") == 0) {
		if (p->seen_global++)
			perr(p, 0, "duplicate section");
		p->kind = SECT_GLOBAL;
	} else if (n == 1 && strcmp(kind, "stats") == 0) {
		if (p->seen_stats++)
			perr(p, 0, "duplicate section");
		p->kind = SECT_STATS;
		p->stats_line = p->line;
		p->cfg->has_stats = 1;
	} else if (n == 2 && (strcmp(kind, "frontend") == 0 ||
	    strcmp(kind, "backend") == 0)) {
		snprintf(p->label, sizeof(p->label), "[%s %s]", kind, name);
		if (!valid_name(name))
			perr(p, 0, "bad name '%s' (letters, digits, _ . -)",
			    name);
		if (kind[0] == 'f')
			section_frontend(p, name);
		else
			section_backend(p, name);
	} else if (n >= 1 && (strcmp(kind, "frontend") == 0 ||
	    strcmp(kind, "backend") == 0)) {
		perr(p, 0, "expected [%s NAME]", kind);
		p->label[0] = '\0';
	} else {
		p->label[0] = '\0';
		perr(p, 0, "unknown section [%s]", sect);
	}
}

/*
 * The line reader handed to ini_parse_stream(): it counts lines (Debian's
 * libinih has no handler line numbers), strips leading blanks (so an
 * indented key is a key, not a multi-line continuation) and opens sections
 * itself, so that an empty section still exists.
 */
static char *
config_reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	size_t len, skip;

	if (p->fp != NULL) {
		if (fgets(buf, size, p->fp) == NULL)
			return NULL;
	} else {
		const char *nl;
		if (*p->text == '\0')
			return NULL;
		nl = strchr(p->text, '\n');
		len = nl ? (size_t)(nl - p->text + 1) : strlen(p->text);
		if (len > (size_t)size - 1)
			len = (size_t)size - 1;
		memcpy(buf, p->text, len);
		buf[len] = '\0';
		p->text += len;
	}
	p->line++;
	len = strlen(buf);
	if (len == (size_t)size - 1 && buf[len - 1] != '\n') {
		perr(p, 0, "line too long (at most %d characters)", size - 2);
		/* Swallow the rest of the line so the count stays right. */
		int c = 0;
		if (p->fp != NULL)
			while ((c = fgetc(p->fp)) != EOF && c != '\n')
				;
		else
			while (*p->text && *p->text++ != '\n')
				;
		buf[0] = '\0';
		return buf;
	}
	skip = strspn(buf, " \t");
	memmove(buf, buf + skip, len - skip + 1);
	if (buf[0] == '[')
		section_open(p, buf);
	else if (buf[strspn(buf, "\r\n")] != '\0' && strchr(";#", buf[0]) ==
	    NULL && strpbrk(buf, "=:") == NULL)
		perr(p, 0, "syntax error (expected KEY = VALUE or [SECTION])");
	return buf;
}

static const struct key_def *
section_keys(int kind)
{
	switch (kind) {
	case SECT_GLOBAL:
		return global_keys;
	case SECT_STATS:
		return stats_keys;
	case SECT_FRONTEND:
		return frontend_keys;
	case SECT_BACKEND:
		return backend_keys;
	}
	return NULL;
}

static int
config_handler(void *user, const char *section, const char *key,
    const char *value)
{
	struct parse *p = user;
	const struct key_def *keys;
	int i;

	if (p->kind == SECT_BAD)
		return 1;
	if (p->kind == SECT_NONE) {
		perr(p, 0, "'%s' outside of any section", key);
		return 1;
	}
	keys = section_keys(p->kind);
	for (i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, key) == 0)
			break;
	if (keys[i].name == NULL) {
		perr(p, 0, "unknown key '%s'", key);
		return 1;
	}
	if (!keys[i].repeatable && (p->seen & (1u << i))) {
		perr(p, 0, "%s: duplicate key", key);
		return 1;
	}
	p->seen |= 1u << i;
	if (*value == '\0' && !keys[i].repeatable) {
		perr(p, 0, "%s: empty value", key);
		return 1;
	}
	(void)keys[i].fn(p, key, value);
	return 1;
}

/* Cross-checks that need the whole file. */
static void
config_validate(struct parse *p)
{
	struct config *cfg = p->cfg;

	p->label[0] = '\0';
	if (cfg->nfrontends == 0)
		errlist_add(p->errs, "%s:%d: no [frontend NAME] section",
		    p->name, p->line > 0 ? p->line : 1);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];
		if (b->nservers == 0)
			errlist_add(p->errs, "%s:%d: [backend %s] no server",
			    p->name, b->line, b->name);
		if ((b->check_send != NULL || b->check_expect != NULL) &&
		    b->check != CHECK_TCP)
			errlist_add(p->errs, "%s:%d: [backend %s] check_send "
			    "and check_expect need check = tcp", p->name,
			    b->line, b->name);
		b->server_base = cfg->nservers;
		cfg->nservers += b->nservers;
		for (size_t j = 0; j < b->nservers; j++)
			if (b->servers[j].send_proxy == -1)
				b->servers[j].send_proxy = b->send_proxy;
	}
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend_conf *f = &cfg->frontends[i];
		size_t j;

		if (f->nlistens == 0)
			errlist_add(p->errs, "%s:%d: [frontend %s] no listen "
			    "address", p->name, f->line, f->name);
		if (f->backend_name == NULL) {
			errlist_add(p->errs, "%s:%d: [frontend %s] no backend",
			    p->name, f->line, f->name);
		} else {
			for (j = 0; j < cfg->nbackends; j++)
				if (strcmp(cfg->backends[j].name,
				    f->backend_name) == 0)
					break;
			if (j == cfg->nbackends)
				errlist_add(p->errs, "%s:%d: [frontend %s] "
				    "backend: no backend named '%s'", p->name,
				    f->backend_line, f->name, f->backend_name);
			f->backend = j;
		}
		if ((f->tls_cert == NULL) != (f->tls_key == NULL))
			errlist_add(p->errs, "%s:%d: [frontend %s] tls_cert "
			    "and tls_key go together", p->name, f->line,
			    f->name);
		for (j = 0; j < f->nlistens; j++) {
			struct listen_conf *l = &f->listens[j];
			for (size_t k = 0; k <= i; k++) {
				struct frontend_conf *g = &cfg->frontends[k];
				size_t end = k == i ? j : g->nlistens;
				for (size_t m = 0; m < end; m++)
					if (addr_equal(&g->listens[m].addr,
					    &l->addr))
						errlist_add(p->errs, "%s:%d: "
						    "[frontend %s] listen: "
						    "'%s' is already used",
						    p->name, l->line, f->name,
						    l->text);
			}
			if (cfg->has_stats && cfg->stats_listen != NULL &&
			    addr_equal(&cfg->stats_addr, &l->addr))
				errlist_add(p->errs, "%s:%d: [frontend %s] "
				    "listen: '%s' is the stats address",
				    p->name, l->line, f->name, l->text);
		}
	}
	if (cfg->has_stats && cfg->stats_listen == NULL)
		errlist_add(p->errs, "%s:%d: [stats] no listen address",
		    p->name, p->stats_line);
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n < 1 ? 1 : n > CONFIG_MAX_WORKERS ?
		    CONFIG_MAX_WORKERS : (unsigned)n;
	}
}

static struct config *
config_run(struct parse *p)
{
	size_t before = p->errs->n;
	int rc;

	p->cfg = xcalloc(1, sizeof(*p->cfg));
	p->cfg->path = xstrdup(p->name);
	p->cfg->workers = 0;
	p->cfg->dispatch = DISPATCH_ROUNDROBIN;
	p->cfg->drain_timeout_ms = 30 * 1000;
	p->cfg->log_level = LL_INFO;
	p->cfg->splice = 1;
	rc = ini_parse_stream(config_reader, p, config_handler, p);
	/* rc > 0 (a syntax error) was reported by config_reader already. */
	if (rc < 0) {
		errlist_add(p->errs, "%s: cannot parse", p->name);
	}
	config_validate(p);
	if (p->errs->n > before) {
		config_free(p->cfg);
		return NULL;
	}
	return p->cfg;
}

struct config *
config_load(const char *path, struct errlist *errs)
{
	struct parse p;
	struct config *cfg;

	memset(&p, 0, sizeof(p));
	p.errs = errs;
	p.name = path;
	if ((p.fp = fopen(path, "r")) == NULL) {
		errlist_add(errs, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cfg = config_run(&p);
	fclose(p.fp);
	return cfg;
}

struct config *
config_load_string(const char *text, const char *name, struct errlist *errs)
{
	struct parse p;

	memset(&p, 0, sizeof(p));
	p.errs = errs;
	p.name = name;
	p.text = text;
	return config_run(&p);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend_conf *f = &cfg->frontends[i];
		for (size_t j = 0; j < f->nlistens; j++)
			free(f->listens[j].text);
		free(f->listens);
		free(f->name);
		free(f->backend_name);
		free(f->tls_cert);
		free(f->tls_key);
	}
	free(cfg->frontends);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];
		for (size_t j = 0; j < b->nservers; j++) {
			free(b->servers[j].name);
			free(b->servers[j].addr_text);
		}
		free(b->servers);
		free(b->name);
		free(b->check_send);
		free(b->check_expect);
	}
	free(cfg->backends);
	free(cfg->path);
	free(cfg->user);
	free(cfg->log_file);
	free(cfg->pidfile);
	free(cfg->stats_listen);
	free(cfg->stats_token);
	free(cfg);
}
