/* check_stats.c -- unit tests for counters, reports and stats rendering */
#include "ac_config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel.h"
#include "config.h"
#include "endpoint.h"
#include "stats.h"

/* Message buffers are 8-byte aligned, as chan_decode() expects. */
union msgbuf {
	uint64_t	align;
	char		buf[CHAN_MSG_MAX + 256];
};

/* ----------------------------------------------------- a strict JSON parser */

/*
 * RFC 8259, strictly: no trailing commas, no bare control characters in
 * strings, only the defined escapes, valid UTF-8, the number grammar, no
 * duplicate keys, nothing after the document but whitespace.
 */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype	  type;
	int		  b;
	char		 *text;		/* J_NUM: as written; J_STR: decoded */
	size_t		  len;		/* J_STR: decoded length */
	struct jval	**items;	/* J_ARR, J_OBJ */
	char		**keys;		/* J_OBJ */
	size_t		  n;
};

struct jparse {
	const char	*p;
	const char	*end;
	int		 depth;
	char		 err[160];
};

static struct jval	*jp_value(struct jparse *);

static void
jfree(struct jval *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jfree(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	free(v);
}

static struct jval *
jp_fail(struct jparse *jp, const char *what)
{
	if (jp->err[0] == '\0')
		snprintf(jp->err, sizeof(jp->err), "%s at '%.30s'", what,
		    jp->p);
	return NULL;
}

static void
jp_ws(struct jparse *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' ||
	    *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

static struct jval *
jnew(enum jtype t)
{
	struct jval *v = calloc(1, sizeof(*v));

	ck_assert_ptr_nonnull(v);
	v->type = t;
	return v;
}

static void
jpush(struct jval *v, char *key, struct jval *item)
{
	v->items = realloc(v->items, (v->n + 1) * sizeof(*v->items));
	ck_assert_ptr_nonnull(v->items);
	if (v->type == J_OBJ) {
		v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
		ck_assert_ptr_nonnull(v->keys);
		v->keys[v->n] = key;
	}
	v->items[v->n++] = item;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append code point cp as UTF-8. */
static size_t
utf8_put(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t left)
{
	size_t n;
	unsigned long cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static int
jp_hex4(struct jparse *jp, unsigned long *cp)
{
	*cp = 0;
	if (jp->end - jp->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval((unsigned char)jp->p[i]);
		if (h < 0)
			return -1;
		*cp = *cp * 16 + (unsigned long)h;
	}
	jp->p += 4;
	return 0;
}

/* The code point of a \uXXXX escape (a surrogate pair: two) after \u. */
static int
jp_unicode(struct jparse *jp, unsigned long *cp)
{
	unsigned long lo;

	if (jp_hex4(jp, cp) == -1) {
		jp_fail(jp, "bad \\u escape");
		return -1;
	}
	if (*cp >= 0xdc00 && *cp <= 0xdfff) {
		jp_fail(jp, "lone low surrogate");
		return -1;
	}
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u') {
		jp_fail(jp, "lone high surrogate");
		return -1;
	}
	jp->p += 2;
	if (jp_hex4(jp, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff) {
		jp_fail(jp, "bad surrogate pair");
		return -1;
	}
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

/* A string literal at jp->p (the opening quote); decoded into *out. */
static int
jp_string_raw(struct jparse *jp, char **out, size_t *outlen)
{
	static const char esc_from[] = "\"\\/bfnrt";
	static const char esc_to[] = "\"\\/\b\f\n\r\t";
	char *s = malloc((size_t)(jp->end - jp->p) + 1);
	size_t n = 0;
	unsigned long cp;
	unsigned char c;

	ck_assert_ptr_nonnull(s);
	jp->p++;
	for (;;) {
		if (jp->p >= jp->end)
			goto bad_end;
		c = (unsigned char)*jp->p;
		if (c == '"') {
			jp->p++;
			break;
		}
		if (c < 0x20) {
			jp_fail(jp, "raw control character in a string");
			goto fail;
		}
		if (c != '\\') {
			size_t l = utf8_len((const unsigned char *)jp->p,
			    (size_t)(jp->end - jp->p));
			if (l == 0) {
				jp_fail(jp, "invalid UTF-8 in a string");
				goto fail;
			}
			memcpy(s + n, jp->p, l);
			n += l;
			jp->p += l;
			continue;
		}
		if (++jp->p >= jp->end)
			goto bad_end;
		c = (unsigned char)*jp->p++;
		if (c != 'u') {
			const char *e = c ? strchr(esc_from, c) : NULL;
			if (e == NULL) {
				jp->p--;
				jp_fail(jp, "unknown escape");
				goto fail;
			}
			s[n++] = esc_to[e - esc_from];
			continue;
		}
		if (jp_unicode(jp, &cp) == -1)
			goto fail;
		n += utf8_put(s + n, cp);
	}
	s[n] = '\0';
	*out = s;
	*outlen = n;
	return 0;
bad_end:
	jp_fail(jp, "unterminated string");
fail:
	free(s);
	return -1;
}

static struct jval *
jp_number(struct jparse *jp)
{
	const char *start = jp->p;
	struct jval *v;

	if (jp->p < jp->end && *jp->p == '-')
		jp->p++;
	if (jp->p >= jp->end || !isdigit((unsigned char)*jp->p))
		return jp_fail(jp, "bad number");
	if (*jp->p == '0') {
		jp->p++;
		if (jp->p < jp->end && isdigit((unsigned char)*jp->p))
			return jp_fail(jp, "leading zero");
	} else
		while (jp->p < jp->end && isdigit((unsigned char)*jp->p))
			jp->p++;
	if (jp->p < jp->end && *jp->p == '.') {
		jp->p++;
		if (jp->p >= jp->end || !isdigit((unsigned char)*jp->p))
			return jp_fail(jp, "no digit after the point");
		while (jp->p < jp->end && isdigit((unsigned char)*jp->p))
			jp->p++;
	}
	if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
		jp->p++;
		if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
			jp->p++;
		if (jp->p >= jp->end || !isdigit((unsigned char)*jp->p))
			return jp_fail(jp, "bad exponent");
		while (jp->p < jp->end && isdigit((unsigned char)*jp->p))
			jp->p++;
	}
	v = jnew(J_NUM);
	v->text = strndup(start, (size_t)(jp->p - start));
	ck_assert_ptr_nonnull(v->text);
	return v;
}

static struct jval *
jp_array(struct jparse *jp)
{
	struct jval *v = jnew(J_ARR), *item;

	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == ']') {
		jp->p++;
		return v;
	}
	for (;;) {
		if ((item = jp_value(jp)) == NULL)
			goto fail;
		jpush(v, NULL, item);
		jp_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == ']') {
			jp->p++;
			return v;
		}
		jp_fail(jp, "expected , or ] in an array");
		goto fail;
	}
fail:
	jfree(v);
	return NULL;
}

static struct jval *
jp_object(struct jparse *jp)
{
	struct jval *v = jnew(J_OBJ), *item;
	char *key;
	size_t klen;

	jp->p++;
	jp_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
		return v;
	}
	for (;;) {
		jp_ws(jp);
		if (jp->p >= jp->end || *jp->p != '"') {
			jp_fail(jp, "expected a key");
			goto fail;
		}
		if (jp_string_raw(jp, &key, &klen) == -1)
			goto fail;
		for (size_t i = 0; i < v->n; i++)
			if (strcmp(v->keys[i], key) == 0) {
				free(key);
				jp_fail(jp, "duplicate key");
				goto fail;
			}
		jp_ws(jp);
		if (jp->p >= jp->end || *jp->p != ':') {
			free(key);
			jp_fail(jp, "expected :");
			goto fail;
		}
		jp->p++;
		if ((item = jp_value(jp)) == NULL) {
			free(key);
			goto fail;
		}
		jpush(v, key, item);
		jp_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == '}') {
			jp->p++;
			return v;
		}
		jp_fail(jp, "expected , or } in an object");
		goto fail;
	}
fail:
	jfree(v);
	return NULL;
}

static int
jp_word(struct jparse *jp, const char *w)
{
	size_t l = strlen(w);

	if ((size_t)(jp->end - jp->p) >= l && memcmp(jp->p, w, l) == 0) {
		jp->p += l;
		return 1;
	}
	return 0;
}

static struct jval *
jp_value(struct jparse *jp)
{
	struct jval *v;

	jp_ws(jp);
	if (jp->p >= jp->end)
		return jp_fail(jp, "unexpected end");
	if (++jp->depth > 64)
		return jp_fail(jp, "nested too deep");
	switch (*jp->p) {
	case '{':
		v = jp_object(jp);
		break;
	case '[':
		v = jp_array(jp);
		break;
	case '"':
		v = jnew(J_STR);
		if (jp_string_raw(jp, &v->text, &v->len) == -1) {
			jfree(v);
			v = NULL;
		}
		break;
	default:
		if (jp_word(jp, "true") || jp_word(jp, "false")) {
			v = jnew(J_BOOL);
			v->b = jp->p[-1] == 'e' && jp->p[-2] == 'u';
		} else if (jp_word(jp, "null"))
			v = jnew(J_NULL);
		else
			v = jp_number(jp);
		break;
	}
	jp->depth--;
	return v;
}

/* Parse a whole document; fails the test with the reason if it is bad. */
static struct jval *
json_parse(const char *text, size_t len)
{
	struct jparse jp = { text, text + len, 0, "" };
	struct jval *v = jp_value(&jp);

	if (v != NULL) {
		jp_ws(&jp);
		if (jp.p != jp.end) {
			jfree(v);
			v = jp_fail(&jp, "trailing garbage");
		}
	}
	if (v == NULL)
		fprintf(stderr, "invalid JSON document:\n%s\n", text);
	ck_assert_msg(v != NULL, "invalid JSON: %s", jp.err);
	return v;
}

/* Whether text is valid JSON, without failing the test. */
static int
json_valid(const char *text)
{
	struct jparse jp = { text, text + strlen(text), 0, "" };
	struct jval *v = jp_value(&jp);
	int ok = v != NULL;

	if (ok) {
		jp_ws(&jp);
		ok = jp.p == jp.end;
	}
	jfree(v);
	return ok;
}

/* The member key of object o, which must exist and have type t. */
static const struct jval *
jget(const struct jval *o, const char *key, enum jtype t)
{
	ck_assert_msg(o != NULL && o->type == J_OBJ, "not an object at '%s'",
	    key);
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0) {
			ck_assert_msg(o->items[i]->type == t,
			    "'%s' has type %d, not %d", key,
			    o->items[i]->type, t);
			return o->items[i];
		}
	ck_abort_msg("member '%s' missing", key);
	return NULL;
}

static const struct jval *
jidx(const struct jval *a, size_t i)
{
	ck_assert_msg(a->type == J_ARR && i < a->n, "no item %zu", i);
	return a->items[i];
}

/* An unsigned integer member, compared exactly as written. */
static void
jeq_u(const struct jval *o, const char *key, uint64_t want)
{
	const struct jval *v = jget(o, key, J_NUM);
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want);
	ck_assert_msg(strcmp(v->text, buf) == 0, "'%s' is %s, expected %s",
	    key, v->text, buf);
}

static void
jeq_s(const struct jval *o, const char *key, const char *want)
{
	const struct jval *v = jget(o, key, J_STR);

	ck_assert_msg(v->len == strlen(want) && strcmp(v->text, want) == 0,
	    "'%s' is \"%s\", expected \"%s\"", key, v->text, want);
}

static void
jeq_b(const struct jval *o, const char *key, int want)
{
	ck_assert_int_eq(jget(o, key, J_BOOL)->b, want);
}

/* --------------------------------------------------------------- fixtures */

static const char base_conf[] =
	"[global]\n"
	"workers = 2\n"
	"dispatch = leastconn\n"
	"\n"
	"[stats]\n"
	"listen = 127.0.0.1:9090\n"
	"\n"
	"[frontend web]\n"
	"listen = 127.0.0.1:8080\n"
	"listen = [::1]:8081\n"
	"backend = app\n"
	"\n"
	"[frontend api]\n"
	"listen = *:8443\n"
	"backend = db\n"
	"tls_passthrough = on\n"
	"route = *.example.com app\n"
	"route = api.test alpn:h2 app\n"
	"\n"
	"[backend app]\n"
	"balance = roundrobin\n"
	"server = a1 10.0.0.1:8000 weight=3\n"
	"server = a2 10.0.0.2:8000\n"
	"server = spare 10.0.0.9:8000 backup\n"
	"\n"
	"[backend db]\n"
	"balance = leastconn\n"
	"server = d1 10.0.1.1:5432\n";

static struct config *
load(const char *text)
{
	struct errlist errs = { NULL, 0 };
	struct config *cfg = config_load_string(text, "t.ini", &errs);

	ck_assert_msg(cfg != NULL, "config rejected: %s",
	    errs.n ? errs.msgs[0] : "?");
	errlist_free(&errs);
	return cfg;
}

static void
rename_to(char **field, const char *name)
{
	free(*field);
	*field = strdup(name);
	ck_assert_ptr_nonnull(*field);
}

/* Names no config file may hold, to test escaping. */
#define EVIL_FRONTEND	"we\"b\\x\ny\x01z\tq\x7f"
#define EVIL_BACKEND	"ap\"p\\"
#define EVIL_SERVER	"a\n1\x1f"
#define EVIL_LISTEN	"caf\xc3\xa9:\"80\""
#define EVIL_ADDR	"10.0.0.1:8000\\\r"
#define EVIL_STATE	"run\"ning"


struct fixture {
	struct config		*cfg;
	struct stats_view	 v;
	struct stats_worker	 w[2];
	uint8_t			 status[4];	/* one of each */
};

static struct stat_counters
cnt(uint64_t active, uint64_t total, uint64_t errors, uint64_t failures,
    uint64_t in, uint64_t out)
{
	struct stat_counters c = { .active = active, .total = total,
	    .errors = errors, .failures = failures, .bytes_in = in,
	    .bytes_out = out };

	return c;
}

/* The contract's example document, in a view; evil names when asked. */
static void
fixture_init(struct fixture *f, int evil)
{
	memset(f, 0, sizeof(*f));
	f->cfg = load(base_conf);
	ck_assert_uint_eq(f->cfg->nfrontends, 2);
	ck_assert_uint_eq(f->cfg->nservers, 4);
	if (evil) {
		rename_to(&f->cfg->frontends[0].name, EVIL_FRONTEND);
		rename_to(&f->cfg->backends[0].name, EVIL_BACKEND);
		rename_to(&f->cfg->backends[0].servers[0].name, EVIL_SERVER);
		rename_to(&f->cfg->frontends[0].listens[0].text, EVIL_LISTEN);
		rename_to(&f->cfg->backends[0].servers[0].addr_text,
		    EVIL_ADDR);
	}
	ck_assert_int_eq(stats_table_init(&f->v.sum, f->cfg), 0);
	f->v.version = "0.1.0";
	f->v.pid = 4242;
	f->v.uptime_s = 63.25;
	f->v.generation = 2;
	f->v.reloads = 1;
	f->v.reload_failures = 7;
	f->v.redispatched = 3;
	f->v.cfg = f->cfg;
	f->v.sum.all = cnt(12, 10400, 5, 6, 111, 222);
	f->v.sum.frontends[0] = cnt(11, 10300, 4, 0, 100, 200);
	f->v.sum.frontends[1] = cnt(1, 100, 1, 0, 11, 22);
	f->v.sum.servers[0] = cnt(5, 7800, 0, 1, 50, 60);
	f->v.sum.servers[1] = cnt(4, 2400, 0, 2, 51, 61);
	f->v.sum.servers[2] = cnt(0, 0, 0, 3, 0, 0);
	f->v.sum.servers[3] = cnt(1, 99, 0, 0, 10, UINT64_MAX);
	ck_assert_uint_eq(f->v.sum.nroutes, 1 + 3);
	f->v.sum.tls[1] = (struct stat_tls){ 21, 4, { 5, 16, 0 } };
	f->v.sum.routes[0] = 0;		/* web: no TLS, never counted */
	f->v.sum.routes[1] = 8;		/* api: *.example.com */
	f->v.sum.routes[2] = UINT64_MAX;	/* api.test alpn:h2 */
	f->v.sum.routes[3] = 13;	/* api: default */
	f->w[0].id = 0;
	f->w[0].pid = 4250;
	f->w[0].generation = 2;
	f->w[0].state = evil ? EVIL_STATE : "running";
	f->w[0].version = "0.1.0";
	f->w[0].c = cnt(6, 5210, 2, 3, 123456, 987654);
	f->w[1].id = 1;
	f->w[1].pid = 4251;
	f->w[1].generation = 1;
	f->w[1].state = "draining";
	f->w[1].c = cnt(6, 5190, 3, 3, 7, 8);
	f->w[1].ho = (struct stats_handover){ 1, 40, 3, 2, 1 };
	f->v.sum.frontends[0].handed_over = 40;
	f->v.workers = f->w;
	f->v.nworkers = 2;
	f->status[0] = SERVER_UP;
	f->status[1] = SERVER_DOWN;
	f->status[2] = SERVER_DRAIN;
	f->status[3] = SERVER_MAINT;
	f->v.server_status = f->status;
}

static void
fixture_free(struct fixture *f)
{
	stats_table_free(&f->v.sum);
	config_free(f->cfg);
}

static struct jval *
render_json(const struct stats_view *v, struct sbuf *b)
{
	memset(b, 0, sizeof(*b));
	stats_render_json(v, b);
	ck_assert_int_eq(b->oom, 0);
	ck_assert_ptr_nonnull(b->s);
	ck_assert_uint_eq(strlen(b->s), b->len);
	return json_parse(b->s, b->len);
}

/* ------------------------------------------------------------ JSON tests */

START_TEST(test_json_parser_self_check)
{
	/* The validator itself must reject what a sloppy renderer emits. */
	static const char *const bad[] = {
		"", "{", "{\"a\": 1,}", "[1,]", "{\"a\" 1}", "{a: 1}",
		"\"a\nb\"", "\"a\\qb\"", "\"\\u12\"", "01", "1.", ".5",
		"+1", "-", "1e", "{\"a\": 1, \"a\": 2}", "[1] x", "tru",
		"\"\xff\"", "\"\xc3\"", "\"\\ud800\"", "\"\x01\"", "NaN",
		"{\"a\": 1}}", "[\"a\" \"b\"]",
	};
	static const char *const good[] = {
		"{}", "[]", "0", "-0.5e+3", "\"\\u0001\\\"\\\\\\/\"",
		"{\"a\": [1, {\"b\": null}], \"c\": true}",
		"\"caf\xc3\xa9 \\ud83d\\ude00\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(!json_valid(bad[i]), "accepted: %s", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		ck_assert_msg(json_valid(good[i]), "rejected: %s", good[i]);
}
END_TEST

static const char *const top_keys[] = { "version", "pid", "uptime_s",
    "generation", "reloads", "reload_failures", "connections", "workers",
    "frontends", "backends", NULL };
static const char *const top_extra[] = { "redispatched", "accept_paused",
    "accept_paused_s", "accept_pauses", "accept_with", NULL };
static const char *const worker_keys[] = { "id", "pid", "generation",
    "state", "active", "total", "bytes_in", "bytes_out", NULL };
static const char *const worker_extra[] = { "version", "handover", NULL };
static const char *const frontend_keys[] = { "name", "listen", "active",
    "total", "errors", "handed_over", "bytes_in", "bytes_out", NULL };
static const char *const frontend_tls_extra[] = { "tls", "routes", NULL };
static const char *const tls_keys[] = { "handshakes", "handshake_failures",
    "versions", NULL };
static const char *const versions_keys[] = { "TLSv1.2", "TLSv1.3", "other",
    NULL };
static const char *const route_keys[] = { "route", "backend", "total",
    NULL };
static const char *const backend_keys[] = { "name", "balance", "servers",
    NULL };
static const char *const server_keys[] = { "name", "address", "status",
    "weight", "backup", "active", "total", "failures", "bytes_in",
    "bytes_out", NULL };

/* Only the listed members, whatever their type (checked separately). */
static void
only_keys(const struct jval *o, const char *const *want,
    const char *const *extra)
{
	ck_assert_int_eq(o->type, J_OBJ);
	for (size_t k = 0; want[k] != NULL; k++) {
		int found = 0;
		for (size_t i = 0; i < o->n && !found; i++)
			found = strcmp(o->keys[i], want[k]) == 0;
		ck_assert_msg(found, "member '%s' missing", want[k]);
	}
	for (size_t i = 0; i < o->n; i++) {
		int known = 0;
		for (size_t k = 0; want[k] != NULL && !known; k++)
			known = strcmp(o->keys[i], want[k]) == 0;
		for (size_t k = 0; extra && extra[k] != NULL && !known; k++)
			known = strcmp(o->keys[i], extra[k]) == 0;
		ck_assert_msg(known, "unexpected member '%s'", o->keys[i]);
	}
}

static void
check_worker(const struct jval *w, const struct stats_worker *want)
{
	only_keys(w, worker_keys, worker_extra);
	jeq_s(w, "version", want->version != NULL ? want->version : "");
	jeq_u(w, "id", (uint64_t)want->id);
	jeq_u(w, "pid", (uint64_t)want->pid);
	jeq_u(w, "generation", want->generation);
	jeq_s(w, "state", want->state);
	jeq_u(w, "active", want->c.active);
	jeq_u(w, "total", want->c.total);
	jeq_u(w, "bytes_in", want->c.bytes_in);
	jeq_u(w, "bytes_out", want->c.bytes_out);
	if (want->ho.asked) {
		const struct jval *ho = jget(w, "handover", J_OBJ);
		const struct jval *st = jget(ho, "staying", J_OBJ);
		jeq_u(ho, "moved", want->ho.moved);
		jeq_u(ho, "waiting", want->ho.waiting);
		jeq_u(st, "tls", want->ho.tls);
		jeq_u(st, "server", want->ho.pinned);
	} else {
		for (size_t i = 0; i < w->n; i++)
			ck_assert_msg(strcmp(w->keys[i], "handover") != 0,
			    "handover shown for a worker never asked");
	}
}

/* A TLS frontend's "tls" and "routes" members. */
static void
check_frontend_tls(const struct jval *fe, const struct config *cfg,
    const struct frontend_conf *fc, const struct stats_table *sum,
    size_t i)
{
	const struct jval *t = jget(fe, "tls", J_OBJ), *vs, *rs;
	char label[300];

	only_keys(t, tls_keys, NULL);
	jeq_u(t, "handshakes", sum->tls[i].handshakes);
	jeq_u(t, "handshake_failures", sum->tls[i].failures);
	vs = jget(t, "versions", J_OBJ);
	only_keys(vs, versions_keys, NULL);
	jeq_u(vs, "TLSv1.2", sum->tls[i].versions[0]);
	jeq_u(vs, "TLSv1.3", sum->tls[i].versions[1]);
	jeq_u(vs, "other", sum->tls[i].versions[2]);
	rs = jget(fe, "routes", J_ARR);
	ck_assert_uint_eq(rs->n, fc->nroutes + 1);
	for (size_t k = 0; k <= fc->nroutes; k++) {
		const struct jval *r = jidx(rs, k);
		const struct route_conf *rc = k < fc->nroutes ?
		    &fc->routes[k] : NULL;

		only_keys(r, route_keys, NULL);
		if (k == fc->nroutes)
			snprintf(label, sizeof(label), "default");
		else
			snprintf(label, sizeof(label), "%s%s%s%s",
			    rc->name ? rc->name : "",
			    rc->name && rc->alpn ? " " : "",
			    rc->alpn ? "alpn:" : "", rc->alpn ? rc->alpn : "");
		jeq_s(r, "route", label);
		jeq_s(r, "backend", cfg->backends[k < fc->nroutes ?
		    rc->backend : fc->backend].name);
		jeq_u(r, "total", sum->routes[fc->route_base + k]);
	}
}

static void
check_frontend(const struct jval *fe, const struct frontend_conf *fc,
    const struct stat_counters *c)
{
	const struct jval *l;

	only_keys(fe, frontend_keys, fc->ntls > 0 || fc->tls_passthrough ?
	    frontend_tls_extra : NULL);
	jeq_s(fe, "name", fc->name);
	l = jget(fe, "listen", J_ARR);
	ck_assert_uint_eq(l->n, fc->nlistens);
	for (size_t i = 0; i < l->n; i++) {
		ck_assert_int_eq(l->items[i]->type, J_STR);
		ck_assert_str_eq(l->items[i]->text, fc->listens[i].text);
	}
	jeq_u(fe, "active", c->active);
	jeq_u(fe, "total", c->total);
	jeq_u(fe, "errors", c->errors);
	jeq_u(fe, "handed_over", c->handed_over);
	jeq_u(fe, "bytes_in", c->bytes_in);
	jeq_u(fe, "bytes_out", c->bytes_out);
}

static void
check_server(const struct jval *s, const struct server_conf *sc,
    const struct stat_counters *c, int status)
{
	only_keys(s, server_keys, NULL);
	jeq_s(s, "name", sc->name);
	jeq_s(s, "address", sc->addr_text);
	jeq_s(s, "status", stats_status_name(status));
	jeq_u(s, "weight", sc->weight);
	jeq_b(s, "backup", sc->backup);
	jeq_u(s, "active", c->active);
	jeq_u(s, "total", c->total);
	jeq_u(s, "failures", c->failures);
	jeq_u(s, "bytes_in", c->bytes_in);
	jeq_u(s, "bytes_out", c->bytes_out);
}

/* Every contract field of f's view, with its type and value. */
static void
check_document(const struct jval *doc, const struct fixture *f)
{
	const struct stats_view *v = &f->v;
	const struct jval *x, *arr;

	only_keys(doc, top_keys, top_extra);
	jeq_s(doc, "version", v->version);
	jeq_u(doc, "pid", (uint64_t)v->pid);
	x = jget(doc, "uptime_s", J_NUM);
	ck_assert_msg(fabs(strtod(x->text, NULL) - v->uptime_s) < 0.051,
	    "uptime_s %s for %.2f", x->text, v->uptime_s);
	jeq_u(doc, "generation", v->generation);
	jeq_u(doc, "reloads", v->reloads);
	jeq_u(doc, "reload_failures", v->reload_failures);
	x = jget(doc, "connections", J_OBJ);
	ck_assert_uint_eq(x->n, 2);
	jeq_u(x, "active", v->sum.all.active);
	jeq_u(x, "total", v->sum.all.total);

	arr = jget(doc, "workers", J_ARR);
	ck_assert_uint_eq(arr->n, v->nworkers);
	for (size_t i = 0; i < arr->n; i++)
		check_worker(jidx(arr, i), &v->workers[i]);

	arr = jget(doc, "frontends", J_ARR);
	ck_assert_uint_eq(arr->n, f->cfg->nfrontends);
	for (size_t i = 0; i < arr->n; i++) {
		const struct frontend_conf *fc = &f->cfg->frontends[i];

		check_frontend(jidx(arr, i), fc, &v->sum.frontends[i]);
		if (fc->ntls > 0 || fc->tls_passthrough)
			check_frontend_tls(jidx(arr, i), f->cfg, fc, &v->sum,
			    i);
	}

	arr = jget(doc, "backends", J_ARR);
	ck_assert_uint_eq(arr->n, f->cfg->nbackends);
	for (size_t i = 0; i < arr->n; i++) {
		const struct backend_conf *bc = &f->cfg->backends[i];
		const struct jval *b = jidx(arr, i), *ss;
		only_keys(b, backend_keys, NULL);
		jeq_s(b, "name", bc->name);
		jeq_s(b, "balance", config_balance_name(bc->balance));
		ss = jget(b, "servers", J_ARR);
		ck_assert_uint_eq(ss->n, bc->nservers);
		for (size_t j = 0; j < ss->n; j++)
			check_server(jidx(ss, j), &bc->servers[j],
			    &v->sum.servers[bc->server_base + j],
			    v->server_status[bc->server_base + j]);
	}
}

START_TEST(test_json_every_field)
{
	struct fixture f;
	struct sbuf b;
	struct jval *doc;

	fixture_init(&f, 0);
	doc = render_json(&f.v, &b);
	check_document(doc, &f);
	/* Spot checks against the contract's literal example. */
	ck_assert_ptr_nonnull(strstr(b.s, "\"version\": \"0.1.0\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"backup\": true"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"backup\": false"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"balance\": \"leastconn\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"listen\": [\"127.0.0.1:8080\", "
	    "\"[::1]:8081\"]"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"bytes_out\": "
	    "18446744073709551615"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"status\": \"maint\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"status\": \"drain\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"status\": \"down\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"weight\": 3"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"handover\": {\"moved\": 40, "
	    "\"waiting\": 3, \"staying\": {\"tls\": 2, \"server\": 1}}"));
	jfree(doc);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_json_escaping)
{
	struct fixture f;
	struct sbuf b;
	struct jval *doc;

	fixture_init(&f, 1);
	doc = render_json(&f.v, &b);
	/* Decoded, every string is the original, byte for byte. */
	check_document(doc, &f);
	/* And the escapes are the JSON ones. */
	ck_assert_ptr_nonnull(strstr(b.s,
	    "\"we\\\"b\\\\x\\ny\\u0001z\\tq"));
	ck_assert_ptr_nonnull(strstr(b.s, "\"ap\\\"p\\\\\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"a\\n1\\u001f\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"caf\xc3\xa9:\\\"80\\\"\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"10.0.0.1:8000\\\\\\r\""));
	ck_assert_ptr_nonnull(strstr(b.s, "\"run\\\"ning\""));
	/* No raw control character anywhere but the layout's newlines. */
	for (size_t i = 0; i < b.len; i++)
		ck_assert_msg((unsigned char)b.s[i] >= 0x20 || b.s[i] == '\n',
		    "raw control byte 0x%02x at %zu", b.s[i], i);
	jfree(doc);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_json_every_control_char)
{
	struct fixture f;
	struct sbuf b;
	struct jval *doc;
	char name[40];
	size_t n = 0;

	/* Every byte 0x01..0x1f and 0x7f, then quote and backslash. */
	for (int c = 1; c < 0x20; c++)
		name[n++] = (char)c;
	name[n++] = 0x7f;
	name[n++] = '"';
	name[n++] = '\\';
	name[n] = '\0';
	fixture_init(&f, 0);
	rename_to(&f.cfg->backends[1].servers[0].name, name);
	doc = render_json(&f.v, &b);
	check_document(doc, &f);
	jfree(doc);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_json_empty_lists)
{
	struct fixture f;
	struct sbuf b;
	struct jval *doc;

	fixture_init(&f, 0);
	f.v.nworkers = 0;
	f.v.workers = NULL;
	doc = render_json(&f.v, &b);
	ck_assert_uint_eq(jget(doc, "workers", J_ARR)->n, 0);
	check_document(doc, &f);
	jfree(doc);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

/* -------------------------------------------------- a Prometheus checker */

#define PROM_MAX	512

struct prom_sample {
	char	 name[128];
	char	*lnames[4];
	char	*lvalues[4];
	size_t	 nlabels;
	char	 value[64];
	char	 family[128];
	char	 type[16];
};

struct prom_doc {
	struct prom_sample	s[PROM_MAX];
	size_t			n;
	char			err[256];
};

static void
prom_free(struct prom_doc *d)
{
	for (size_t i = 0; i < d->n; i++)
		for (size_t j = 0; j < d->s[i].nlabels; j++) {
			free(d->s[i].lnames[j]);
			free(d->s[i].lvalues[j]);
		}
	d->n = 0;
}

static int
metric_name_ok(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' ||
	    s[0] == ':'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    s[i] == ':'))
			return 0;
	return 1;
}

static size_t
name_len(const char *s)
{
	size_t n = 0;

	while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == ':')
		n++;
	return n;
}

struct prom_family {
	char	name[128];
	char	type[16];
	int	help;
	int	samples;
	int	closed;
};

/* A sample line's {labels}, decoded into s; p after the '{'. */
static const char *
prom_labels(struct prom_sample *s, const char *p, char *err, size_t errlen)
{
	while (*p != '}') {
		size_t n = 0;
		char *val;
		if (s->nlabels == 4) {
			snprintf(err, errlen, "too many labels");
			return NULL;
		}
		while (isalnum((unsigned char)p[n]) || p[n] == '_')
			n++;
		if (n == 0 || isdigit((unsigned char)p[0]) || p[n] != '=' ||
		    p[n + 1] != '"') {
			snprintf(err, errlen, "bad label at '%.20s'", p);
			return NULL;
		}
		s->lnames[s->nlabels] = strndup(p, n);
		val = malloc(strlen(p) + 1);
		ck_assert_ptr_nonnull(val);
		s->lvalues[s->nlabels++] = val;
		for (size_t j = 0; j < s->nlabels - 1; j++)
			if (strcmp(s->lnames[j], s->lnames[s->nlabels - 1]) ==
			    0) {
				snprintf(err, errlen, "label twice");
				return NULL;
			}
		p += n + 2;
		while (*p != '"') {
			if (*p == '\0') {
				snprintf(err, errlen, "unterminated label");
				return NULL;
			}
			if (*p == '\\') {
				p++;
				if (*p == 'n')
					*val++ = '\n';
				else if (*p == '\\' || *p == '"')
					*val++ = *p;
				else {
					snprintf(err, errlen, "bad escape "
					    "\\%c in a label value", *p);
					return NULL;
				}
				p++;
				continue;
			}
			*val++ = *p++;
		}
		*val = '\0';
		p++;
		if (*p == ',' && p[1] != '}')
			p++;
		else if (*p != '}') {
			snprintf(err, errlen, "expected , or } at '%.20s'", p);
			return NULL;
		}
	}
	return p + 1;
}

static int
prom_value_ok(const char *v)
{
	char *end;

	if (strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0 ||
	    strcmp(v, "NaN") == 0)
		return 1;
	if (*v == '\0' || isspace((unsigned char)*v))
		return 0;
	errno = 0;
	(void)strtod(v, &end);
	return *end == '\0' && strcasecmp(v, "inf") != 0 &&
	    strcasecmp(v, "nan") != 0;
}

/* A "# HELP" or "# TYPE" line; returns -1 with d->err. */
static int
prom_meta(struct prom_doc *d, struct prom_family *fam, size_t *nfam,
    const char *line)
{
	int help = strncmp(line, "# HELP ", 7) == 0;
	const char *p = line + 7;
	size_t n = name_len(p);
	struct prom_family *f = NULL;

	if (!help && strncmp(line, "# TYPE ", 7) != 0) {
		snprintf(d->err, sizeof(d->err), "comment line: %s", line);
		return -1;
	}
	if (!metric_name_ok(p, n) || p[n] != ' ' || n >= sizeof(f->name)) {
		snprintf(d->err, sizeof(d->err), "bad name: %s", line);
		return -1;
	}
	for (size_t i = 0; i < *nfam; i++)
		if (strlen(fam[i].name) == n && strncmp(fam[i].name, p, n) ==
		    0)
			f = &fam[i];
	if (f == NULL) {
		f = &fam[(*nfam)++];
		memcpy(f->name, p, n);
		f->name[n] = '\0';
	}
	if (f->samples || f->closed) {
		snprintf(d->err, sizeof(d->err), "%s after samples: %s",
		    help ? "HELP" : "TYPE", line);
		return -1;
	}
	if (help) {
		if (f->help++) {
			snprintf(d->err, sizeof(d->err), "HELP twice: %s",
			    line);
			return -1;
		}
		for (const char *q = p + n + 1; *q; q++)
			if (*q == '\\' && q[1] != '\\' && q[1] != 'n') {
				snprintf(d->err, sizeof(d->err), "bad escape"
				    " in HELP: %s", line);
				return -1;
			} else if (*q == '\\')
				q++;
		return 0;
	}
	if (f->type[0] != '\0' || (strcmp(p + n + 1, "counter") != 0 &&
	    strcmp(p + n + 1, "gauge") != 0 &&
	    strcmp(p + n + 1, "untyped") != 0)) {
		snprintf(d->err, sizeof(d->err), "bad or second TYPE: %s",
		    line);
		return -1;
	}
	snprintf(f->type, sizeof(f->type), "%s", p + n + 1);
	return 0;
}

/* A sample line; the current family is the last one declared. */
static int
prom_sample_line(struct prom_doc *d, struct prom_family *fam, size_t nfam,
    const char *line)
{
	struct prom_sample *s = &d->s[d->n];
	size_t n = name_len(line);
	const char *p = line + n, *sp;
	struct prom_family *f = NULL;

	if (!metric_name_ok(line, n) || n >= sizeof(s->name)) {
		snprintf(d->err, sizeof(d->err), "bad sample: %s", line);
		return -1;
	}
	memset(s, 0, sizeof(*s));
	memcpy(s->name, line, n);
	d->n++;
	for (size_t i = 0; i < nfam; i++) {
		if (strcmp(fam[i].name, s->name) == 0)
			f = &fam[i];
		else if (fam[i].samples)
			fam[i].closed = 1;
	}
	if (f == NULL || !f->help || f->type[0] == '\0' || f->closed) {
		snprintf(d->err, sizeof(d->err), "sample without HELP and "
		    "TYPE before it, or its family split: %s", line);
		return -1;
	}
	f->samples++;
	snprintf(s->family, sizeof(s->family), "%s", f->name);
	snprintf(s->type, sizeof(s->type), "%s", f->type);
	if (*p == '{' && (p = prom_labels(s, p + 1, d->err,
	    sizeof(d->err))) == NULL)
		return -1;
	if (*p != ' ') {
		snprintf(d->err, sizeof(d->err), "no value: %s", line);
		return -1;
	}
	p++;
	sp = strchr(p, ' ');	/* an optional timestamp after it */
	n = sp ? (size_t)(sp - p) : strlen(p);
	if (n == 0 || n >= sizeof(s->value)) {
		snprintf(d->err, sizeof(d->err), "bad value: %s", line);
		return -1;
	}
	memcpy(s->value, p, n);
	if (!prom_value_ok(s->value)) {
		snprintf(d->err, sizeof(d->err), "bad value: %s", line);
		return -1;
	}
	return 0;
}

/*
 * Check text exposition format 0.0.4: only HELP, TYPE and sample lines,
 * every family with HELP and TYPE before its samples, samples of a family
 * together, every line ended by a newline, names prefixed baton_, counters
 * (and only they) ending in _total. Samples are kept in d. Returns 0, or
 * -1 with the reason in d->err.
 */
static int
prom_check(const char *text, struct prom_doc *d)
{
	static struct prom_family fam[PROM_MAX];
	size_t nfam = 0;
	const char *p = text;
	char line[1024];

	memset(fam, 0, sizeof(fam));
	prom_free(d);
	memset(d, 0, sizeof(*d));
	if (*text == '\0') {
		snprintf(d->err, sizeof(d->err), "empty exposition");
		return -1;
	}
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : 0;
		if (nl == NULL || len == 0 || len >= sizeof(line) ||
		    d->n == PROM_MAX) {
			snprintf(d->err, sizeof(d->err), "unterminated, empty "
			    "or huge line, or too many, at offset %zu",
			    (size_t)(p - text));
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		if ((line[0] == '#' ? prom_meta(d, fam, &nfam, line) :
		    prom_sample_line(d, fam, nfam, line)) == -1)
			return -1;
		p = nl + 1;
	}
	for (size_t i = 0; i < nfam; i++) {
		size_t l = strlen(fam[i].name);
		int total = l > 6 && strcmp(fam[i].name + l - 6, "_total") ==
		    0;
		int counter = strcmp(fam[i].type, "counter") == 0;
		if (!fam[i].help || fam[i].type[0] == '\0')
			snprintf(d->err, sizeof(d->err), "family %s lacks "
			    "HELP or TYPE", fam[i].name);
		else if (strncmp(fam[i].name, "baton_", 6) != 0)
			snprintf(d->err, sizeof(d->err), "family %s not "
			    "prefixed baton_", fam[i].name);
		else if (counter != total)
			snprintf(d->err, sizeof(d->err), "%s %s %s in _total",
			    fam[i].type, fam[i].name, total ? "ends" :
			    "does not end");
		else
			continue;
		return -1;
	}
	return 0;
}

static const char *
label_of(const struct prom_sample *s, const char *name)
{
	for (size_t i = 0; i < s->nlabels; i++)
		if (strcmp(s->lnames[i], name) == 0)
			return s->lvalues[i];
	return NULL;
}

/* The value of the sample name{l1=v1[,l2=v2]}, which must exist once. */
static const char *
prom_get(const struct prom_doc *d, const char *name, const char *l1,
    const char *v1, const char *l2, const char *v2)
{
	const char *found = NULL;

	for (size_t i = 0; i < d->n; i++) {
		const struct prom_sample *s = &d->s[i];
		const char *a, *b;
		if (strcmp(s->name, name) != 0)
			continue;
		if (l1 != NULL && ((a = label_of(s, l1)) == NULL ||
		    strcmp(a, v1) != 0))
			continue;
		if (l2 != NULL && ((b = label_of(s, l2)) == NULL ||
		    strcmp(b, v2) != 0))
			continue;
		ck_assert_msg(found == NULL, "%s{%s=%s} twice", name,
		    l1 ? l1 : "", v1 ? v1 : "");
		found = s->value;
	}
	ck_assert_msg(found != NULL, "no sample %s{%s=\"%s\",%s=\"%s\"}", name,
	    l1 ? l1 : "", v1 ? v1 : "", l2 ? l2 : "", v2 ? v2 : "");
	return found;
}

static void
prom_eq(const struct prom_doc *d, uint64_t want, const char *name,
    const char *l1, const char *v1, const char *l2, const char *v2)
{
	const char *got = prom_get(d, name, l1, v1, l2, v2);
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want);
	ck_assert_msg(strcmp(got, buf) == 0, "%s{%s} is %s, expected %s",
	    name, v1 ? v1 : "", got, buf);
}

/* Which labels a sample must carry, by its name; no series twice. */
static int
prom_check_labels(struct prom_doc *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct prom_sample *s = &d->s[i];
		const char *want1 = NULL, *want2 = NULL;
		size_t nwant = 0;
		if (strncmp(s->name, "baton_worker_", 13) == 0)
			want1 = "worker", nwant = 1;
		else if (strcmp(s->name, "baton_frontend_tls_versions_total") ==
		    0)
			want1 = "frontend", want2 = "version", nwant = 2;
		else if (strcmp(s->name, "baton_frontend_routes_total") == 0 &&
		    label_of(s, "backend") != NULL)
			want1 = "frontend", want2 = "route", nwant = 3;
		else if (strncmp(s->name, "baton_frontend_", 15) == 0)
			want1 = "frontend", nwant = 1;
		else if (strncmp(s->name, "baton_server_", 13) == 0)
			want1 = "backend", want2 = "server", nwant = 2;
		else if (strcmp(s->name, "baton_info") == 0)
			want1 = "version", nwant = 1;
		/* Workers: whatever else tells them apart is welcome. */
		if ((nwant == 1 && strcmp(want1, "worker") == 0 &&
		    s->nlabels > 1))
			nwant = s->nlabels;
		if (s->nlabels != nwant || (want1 != NULL &&
		    label_of(s, want1) == NULL) || (want2 != NULL &&
		    label_of(s, want2) == NULL)) {
			snprintf(d->err, sizeof(d->err), "%s: %zu labels, "
			    "expected %zu (%s %s)", s->name, s->nlabels, nwant,
			    want1 ? want1 : "", want2 ? want2 : "");
			return -1;
		}
	}
	for (size_t i = 0; i < d->n; i++)
		for (size_t j = i + 1; j < d->n; j++) {
			const struct prom_sample *a = &d->s[i], *b = &d->s[j];
			int same = strcmp(a->name, b->name) == 0 &&
			    a->nlabels == b->nlabels;
			for (size_t k = 0; same && k < a->nlabels; k++) {
				const char *o = label_of(b, a->lnames[k]);
				same = o != NULL && strcmp(o,
				    a->lvalues[k]) == 0;
			}
			if (same) {
				snprintf(d->err, sizeof(d->err), "series %s "
				    "given twice", a->name);
				return -1;
			}
		}
	return 0;
}

static void
render_prom(const struct stats_view *v, struct sbuf *b, struct prom_doc *d)
{
	memset(b, 0, sizeof(*b));
	stats_render_prometheus(v, b);
	ck_assert_int_eq(b->oom, 0);
	ck_assert_ptr_nonnull(b->s);
	ck_assert_uint_eq(strlen(b->s), b->len);
	if (prom_check(b->s, d) == -1)
		fprintf(stderr, "bad exposition:\n%s\n", b->s);
	ck_assert_msg(d->err[0] == '\0', "bad exposition: %s", d->err);
	ck_assert_msg(prom_check_labels(d) == 0, "bad labels: %s", d->err);
}

/* A TLS frontend's handshakes, versions and routes; none for others. */
static void
check_prom_tls(const struct prom_doc *d, const struct config *cfg,
    const struct stats_table *sum, size_t i)
{
	static const char *const vn[] = { "TLSv1.2", "TLSv1.3", "other" };
	const struct frontend_conf *fc = &cfg->frontends[i];
	const char *n = fc->name;
	char label[300];

	if (fc->ntls == 0 && !fc->tls_passthrough) {
		for (size_t k = 0; k < d->n; k++)
			ck_assert_msg(strncmp(d->s[k].name,
			    "baton_frontend_tls", 18) != 0 ||
			    strcmp(label_of(&d->s[k], "frontend"), n) != 0,
			    "TLS figures for a plain frontend");
		return;
	}
	prom_eq(d, sum->tls[i].handshakes, "baton_frontend_tls_handshakes_total",
	    "frontend", n, NULL, NULL);
	prom_eq(d, sum->tls[i].failures,
	    "baton_frontend_tls_handshake_failures_total", "frontend", n, NULL,
	    NULL);
	for (size_t k = 0; k < 3; k++)
		prom_eq(d, sum->tls[i].versions[k],
		    "baton_frontend_tls_versions_total", "frontend", n,
		    "version", vn[k]);
	for (size_t k = 0; k <= fc->nroutes; k++) {
		const struct route_conf *rc = k < fc->nroutes ?
		    &fc->routes[k] : NULL;

		if (k == fc->nroutes)
			snprintf(label, sizeof(label), "default");
		else
			snprintf(label, sizeof(label), "%s%s%s%s",
			    rc->name ? rc->name : "",
			    rc->name && rc->alpn ? " " : "",
			    rc->alpn ? "alpn:" : "", rc->alpn ? rc->alpn : "");
		prom_eq(d, sum->routes[fc->route_base + k],
		    "baton_frontend_routes_total", "frontend", n, "route",
		    label);
	}
}

/* Every figure of f's view, where Prometheus has it. */
static void
check_prom_values(const struct prom_doc *d, const struct fixture *f)
{
	const struct stats_view *v = &f->v;
	char id[16];

	prom_eq(d, 1, "baton_info", "version", v->version, NULL, NULL);
	ck_assert_double_eq_tol(strtod(prom_get(d, "baton_uptime_seconds",
	    NULL, NULL, NULL, NULL), NULL), v->uptime_s, 0.051);
	prom_eq(d, v->generation, "baton_generation", NULL, NULL, NULL, NULL);
	prom_eq(d, v->reloads, "baton_reloads_total", NULL, NULL, NULL, NULL);
	prom_eq(d, v->reload_failures, "baton_reload_failures_total", NULL,
	    NULL, NULL, NULL);
	prom_eq(d, v->sum.all.active, "baton_connections_active", NULL, NULL,
	    NULL, NULL);
	prom_eq(d, v->sum.all.total, "baton_connections_total", NULL, NULL,
	    NULL, NULL);
	for (size_t i = 0; i < v->nworkers; i++) {
		const struct stat_counters *c = &v->workers[i].c;
		snprintf(id, sizeof(id), "%d", v->workers[i].id);
		prom_eq(d, c->active, "baton_worker_connections_active",
		    "worker", id, NULL, NULL);
		prom_eq(d, c->total, "baton_worker_connections_total",
		    "worker", id, NULL, NULL);
		prom_eq(d, c->bytes_in, "baton_worker_received_bytes_total",
		    "worker", id, NULL, NULL);
		prom_eq(d, c->bytes_out, "baton_worker_sent_bytes_total",
		    "worker", id, NULL, NULL);
	}
	for (size_t i = 0; i < f->cfg->nfrontends; i++) {
		const struct stat_counters *c = &v->sum.frontends[i];
		const char *n = f->cfg->frontends[i].name;
		prom_eq(d, c->active, "baton_frontend_connections_active",
		    "frontend", n, NULL, NULL);
		prom_eq(d, c->total, "baton_frontend_connections_total",
		    "frontend", n, NULL, NULL);
		prom_eq(d, c->errors, "baton_frontend_errors_total",
		    "frontend", n, NULL, NULL);
		prom_eq(d, c->bytes_in, "baton_frontend_received_bytes_total",
		    "frontend", n, NULL, NULL);
		prom_eq(d, c->bytes_out, "baton_frontend_sent_bytes_total",
		    "frontend", n, NULL, NULL);
		check_prom_tls(d, f->cfg, &v->sum, i);
	}
	for (size_t i = 0; i < f->cfg->nbackends; i++) {
		const struct backend_conf *bc = &f->cfg->backends[i];
		for (size_t j = 0; j < bc->nservers; j++) {
			const struct stat_counters *c =
			    &v->sum.servers[bc->server_base + j];
			const char *sn = bc->servers[j].name;
			int st = v->server_status[bc->server_base + j];
			prom_eq(d, st == SERVER_UP, "baton_server_up",
			    "backend", bc->name, "server", sn);
			prom_eq(d, bc->servers[j].weight, "baton_server_weight",
			    "backend", bc->name, "server", sn);
			prom_eq(d, c->active, "baton_server_connections_active",
			    "backend", bc->name, "server", sn);
			prom_eq(d, c->total, "baton_server_connections_total",
			    "backend", bc->name, "server", sn);
			prom_eq(d, c->failures,
			    "baton_server_connect_failures_total", "backend",
			    bc->name, "server", sn);
			prom_eq(d, c->bytes_in,
			    "baton_server_received_bytes_total", "backend",
			    bc->name, "server", sn);
			prom_eq(d, c->bytes_out,
			    "baton_server_sent_bytes_total", "backend",
			    bc->name, "server", sn);
		}
	}
}

/* ------------------------------------------------------ Prometheus tests */

START_TEST(test_prom_checker_self_check)
{
	/* The checker must reject what a sloppy renderer emits. */
	static const char *const bad[] = {
		"baton_x 1\n",
		"# HELP baton_x h\nbaton_x 1\n",
		"# TYPE baton_x gauge\nbaton_x 1\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\nbaton_x 1",
		"# HELP baton_x h\n# TYPE baton_x gauge\nbaton_x{a=\"\\t\"} "
		    "1\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\nbaton_x{a=\"b} 1\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\nbaton_x one\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\nbaton_x\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\n\nbaton_x 1\n",
		"# HELP baton_x h\n# TYPE baton_x gauge\n# TYPE baton_x "
		    "gauge\nbaton_x 1\n",
		"# hello\n",
		"# HELP baton_x h\n# TYPE baton_x counter\nbaton_x 1\n",
		"# HELP x_total h\n# TYPE x_total counter\nx_total 1\n",
		"# HELP baton_x_total h\n# TYPE baton_x_total gauge\n"
		    "baton_x_total 1\n",
	};
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(prom_check(bad[i], d) == -1 ||
		    prom_check_labels(d) == -1, "checker accepted: %s",
		    bad[i]);
	ck_assert_int_eq(prom_check("# HELP baton_x h\n# TYPE baton_x gauge\n"
	    "baton_x{a=\"1\"} 1\nbaton_x{a=\"1\"} 2\n", d), 0);
	ck_assert_int_eq(prom_check_labels(d), -1);
	ck_assert_int_eq(prom_check("# HELP baton_x h\n# TYPE baton_x gauge\n"
	    "baton_x{a=\"\\\\\\\"\\n\"} 1.5\n", d), 0);
	ck_assert_uint_eq(d->n, 1);
	ck_assert_str_eq(d->s[0].lvalues[0], "\\\"\n");
	prom_free(d);
	free(d);
}
END_TEST

START_TEST(test_prom_format_and_values)
{
	struct fixture f;
	struct sbuf b;
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	fixture_init(&f, 0);
	render_prom(&f.v, &b, d);
	check_prom_values(d, &f);
	ck_assert_ptr_nonnull(strstr(b.s,
	    "baton_frontend_connections_total{frontend=\"web\"} 10300\n"));
	ck_assert_ptr_nonnull(strstr(b.s, "baton_server_sent_bytes_total{"
	    "backend=\"db\",server=\"d1\"} 18446744073709551615\n"));
	ck_assert_ptr_nonnull(strstr(b.s,
	    "# TYPE baton_connections_total counter\n"));
	ck_assert_ptr_nonnull(strstr(b.s,
	    "# TYPE baton_connections_active gauge\n"));
	prom_free(d);
	free(d);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_prom_label_escaping)
{
	struct fixture f;
	struct sbuf b;
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	fixture_init(&f, 1);
	render_prom(&f.v, &b, d);
	/* Decoded, the labels are the original names. */
	check_prom_values(d, &f);
	ck_assert_ptr_nonnull(strstr(b.s,
	    "{frontend=\"we\\\"b\\\\x\\ny\x01z\tq\x7f\"} 10300\n"));
	ck_assert_ptr_nonnull(strstr(b.s,
	    "{backend=\"ap\\\"p\\\\\",server=\"a\\n1\x1f\"}"));
	prom_free(d);
	free(d);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_prom_two_generations)
{
	/*
	 * After a reload, the old generation's workers stay listed while they
	 * drain, next to the new one's, slot for slot: worker 0 of generation
	 * 1 and worker 0 of generation 2. Their series must still differ.
	 */
	struct fixture f;
	struct sbuf b;
	struct jval *doc;
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	fixture_init(&f, 0);
	f.w[1].id = 0;
	f.w[1].pid = 4260;
	f.w[1].generation = 1;
	f.w[1].state = "draining";
	doc = render_json(&f.v, &b);
	check_document(doc, &f);
	jfree(doc);
	sbuf_free(&b);
	render_prom(&f.v, &b, d);
	prom_free(d);
	free(d);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

START_TEST(test_prom_no_workers)
{
	struct fixture f;
	struct sbuf b;
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	fixture_init(&f, 0);
	f.v.nworkers = 0;
	f.v.workers = NULL;
	render_prom(&f.v, &b, d);
	prom_free(d);
	free(d);
	sbuf_free(&b);
	fixture_free(&f);
}
END_TEST

/* --------------------------------------------------- records and reports */

/* A configuration with more records than one CHAN_STATS message holds. */
static struct config *
big_config(size_t nservers_each)
{
	struct sbuf t = { NULL, 0, 0, 0 };
	struct config *cfg;

	sbuf_printf(&t, "[global]\nworkers = 2\n\n"
	    "[frontend f0]\nlisten = 127.0.0.1:8000\nbackend = b0\n\n"
	    "[frontend f1]\nlisten = 127.0.0.1:8001\nbackend = b1\n\n"
	    "[frontend f2]\nlisten = 127.0.0.1:8002\nbackend = b1\n\n");
	for (int b = 0; b < 2; b++) {
		sbuf_printf(&t, "[backend b%d]\n", b);
		for (size_t i = 0; i < nservers_each; i++)
			sbuf_printf(&t, "server = s%zu 10.%d.%zu.%zu:%zu\n", i,
			    b, i / 250, i % 250 + 1, 1000 + i);
		sbuf_printf(&t, "\n");
	}
	ck_assert_int_eq(t.oom, 0);
	cfg = load(t.s);
	sbuf_free(&t);
	return cfg;
}

/* Distinct values in every counter, so a misplaced record shows. */
static void
table_fill(struct stats_table *t, uint64_t seed)
{
	uint64_t k = seed;

	t->all = cnt(k, k + 10, k + 1, k + 2, k + 3, k + 4);
	for (size_t i = 0; i < t->nfrontends; i++) {
		k = seed + 1000 * (i + 1);
		t->frontends[i] = cnt(k, k + 10, k + 1, k + 2, k + 3, k + 4);
	}
	for (size_t i = 0; i < t->nservers; i++) {
		k = seed + 1000000 * (i + 1);
		t->servers[i] = cnt(k, k + 10, k + 1, k + 2, k + 3, k + 4);
	}
	for (size_t i = 0; i < t->nfrontends; i++) {
		k = seed + 3000 * (i + 1);
		t->tls[i] = (struct stat_tls){ 3 * k + 10, k, { k + 1, k + 2,
		    k + 3 } };
	}
	for (size_t i = 0; i < t->nroutes; i++)
		t->routes[i] = seed + 7000 * (i + 1);
}

static int
table_eq(const struct stats_table *a, const struct stats_table *b)
{
	return a->nfrontends == b->nfrontends && a->nservers == b->nservers &&
	    memcmp(&a->all, &b->all, sizeof(a->all)) == 0 &&
	    memcmp(a->frontends, b->frontends, a->nfrontends *
	    sizeof(*a->frontends)) == 0 &&
	    memcmp(a->servers, b->servers, a->nservers *
	    sizeof(*a->servers)) == 0 && a->nroutes == b->nroutes &&
	    memcmp(a->tls, b->tls, a->nfrontends * sizeof(*a->tls)) == 0 &&
	    memcmp(a->routes, b->routes, a->nroutes * sizeof(*a->routes)) == 0;
}

/*
 * What the master does with a message from a worker: decode, then apply.
 * Returns 0, or -1 with the reason in err.
 */
static int
receive(struct stats_table *t, const void *buf, size_t len, size_t nfds,
    char *err, size_t errlen)
{
	struct chan_msg m;

	err[0] = '\0';
	if (chan_decode(buf, len, nfds, &m, err, errlen) == -1)
		return -1;
	if (m.type != CHAN_STATS) {
		snprintf(err, errlen, "not CHAN_STATS");
		return -1;
	}
	return stats_apply(t, m.stats, m.count, err, errlen);
}

START_TEST(test_records_order)
{
	struct config *cfg = load(base_conf);
	struct stats_table t;
	struct stat_record r[16];
	size_t n;

	ck_assert_int_eq(stats_table_init(&t, cfg), 0);
	table_fill(&t, 1);
	/* Worker, 2 frontends, 4 servers, 2 frontends' TLS, 4 route slots. */
	ck_assert_uint_eq(stats_nrecords(&t), 1 + 2 + 4 + 2 + 4);
	memset(r, 0xee, sizeof(r));
	n = stats_records(&t, 0, r, 16);
	ck_assert_uint_eq(n, 13);
	ck_assert_uint_eq(r[0].kind, STAT_WORKER);
	ck_assert_uint_eq(r[0].index, 0);
	ck_assert_mem_eq(&r[0].c, &t.all, sizeof(t.all));
	for (size_t i = 0; i < 2; i++) {
		ck_assert_uint_eq(r[1 + i].kind, STAT_FRONTEND);
		ck_assert_uint_eq(r[1 + i].index, i);
		ck_assert_mem_eq(&r[1 + i].c, &t.frontends[i],
		    sizeof(t.all));
	}
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(r[3 + i].kind, STAT_SERVER);
		ck_assert_uint_eq(r[3 + i].index, i);
		ck_assert_mem_eq(&r[3 + i].c, &t.servers[i], sizeof(t.all));
	}
	for (size_t i = 0; i < 2; i++) {
		ck_assert_uint_eq(r[7 + i].kind, STAT_TLS);
		ck_assert_uint_eq(r[7 + i].index, i);
		ck_assert_mem_eq(&r[7 + i].tls, &t.tls[i], sizeof(t.tls[i]));
	}
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(r[9 + i].kind, STAT_ROUTE);
		ck_assert_uint_eq(r[9 + i].index, i);
		ck_assert_uint_eq(r[9 + i].route, t.routes[i]);
	}
	/* From the middle, bounded by max, and past the end. */
	n = stats_records(&t, 2, r, 2);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(r[0].kind, STAT_FRONTEND);
	ck_assert_uint_eq(r[0].index, 1);
	ck_assert_uint_eq(r[1].kind, STAT_SERVER);
	ck_assert_uint_eq(r[1].index, 0);
	ck_assert_uint_eq(stats_records(&t, 13, r, 16), 0);
	ck_assert_uint_eq(stats_records(&t, 100, r, 16), 0);
	ck_assert_uint_eq(stats_records(&t, 0, r, 0), 0);
	stats_table_free(&t);
	config_free(cfg);
}
END_TEST

START_TEST(test_report_roundtrip_small)
{
	struct config *cfg = load(base_conf);
	struct stats_table src, dst;
	struct stat_record r[CHAN_MAX_STATS];
	union msgbuf mb;
	char err[128];
	size_t n, len;

	ck_assert_int_eq(stats_table_init(&src, cfg), 0);
	ck_assert_int_eq(stats_table_init(&dst, cfg), 0);
	table_fill(&src, 7);
	src.servers[3].bytes_out = UINT64_MAX;
	n = stats_records(&src, 0, r, CHAN_MAX_STATS);
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, r, n);
	ck_assert_uint_eq(len, sizeof(struct chan_hdr) + n * sizeof(*r));
	ck_assert_int_eq(receive(&dst, mb.buf, len, 0, err, sizeof(err)), 0);
	ck_assert_msg(table_eq(&src, &dst), "tables differ after a report");
	/* Absolute values: the same report again changes nothing. */
	ck_assert_int_eq(receive(&dst, mb.buf, len, 0, err, sizeof(err)), 0);
	ck_assert(table_eq(&src, &dst));
	stats_table_free(&src);
	stats_table_free(&dst);
	config_free(cfg);
}
END_TEST

START_TEST(test_report_roundtrip_split)
{
	struct config *cfg = big_config(150);
	struct stats_table src, dst;
	struct stat_record r[CHAN_MAX_STATS];
	union msgbuf mb;
	char err[128];
	size_t first = 0, total, msgs = 0;

	ck_assert_int_eq(stats_table_init(&src, cfg), 0);
	ck_assert_int_eq(stats_table_init(&dst, cfg), 0);
	total = stats_nrecords(&src);
	ck_assert_uint_eq(total, 1 + 3 + 300 + 3 + 3);
	ck_assert_uint_gt(total, 2 * CHAN_MAX_STATS);
	table_fill(&src, 3);
	/* What worker_report() does. */
	while (first < total) {
		size_t n = stats_records(&src, first, r, CHAN_MAX_STATS);
		size_t len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS,
		    r, n);
		ck_assert_uint_gt(n, 0);
		ck_assert_uint_gt(len, 0);
		ck_assert_uint_le(len, CHAN_MSG_MAX);
		ck_assert_int_eq(receive(&dst, mb.buf, len, 0, err,
		    sizeof(err)), 0);
		first += n;
		msgs++;
	}
	ck_assert_uint_eq(msgs, (total + CHAN_MAX_STATS - 1) / CHAN_MAX_STATS);
	ck_assert_msg(table_eq(&src, &dst), "tables differ after %zu "
	    "messages", msgs);
	stats_table_free(&src);
	stats_table_free(&dst);
	config_free(cfg);
}
END_TEST

START_TEST(test_encode_rejects_stats)
{
	struct stat_record r[CHAN_MAX_STATS + 1];
	union msgbuf mb;

	memset(r, 0, sizeof(r));
	r[0].kind = STAT_WORKER;
	ck_assert_uint_eq(chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, r,
	    0), 0);
	ck_assert_uint_eq(chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, r,
	    CHAN_MAX_STATS + 1), 0);
	ck_assert_uint_gt(chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, r,
	    CHAN_MAX_STATS), 0);
	/* A buffer one byte short. */
	ck_assert_uint_eq(chan_encode(mb.buf, sizeof(struct chan_hdr) +
	    sizeof(*r) - 1, CHAN_STATS, r, 1), 0);
}
END_TEST

/* A prepared table and a valid three-record report to corrupt. */
struct bad_case {
	struct config		*cfg;
	struct stats_table	 t, before;
	struct stat_record	 r[3];
};

static void
bad_init(struct bad_case *bc)
{
	bc->cfg = load(base_conf);
	ck_assert_int_eq(stats_table_init(&bc->t, bc->cfg), 0);
	ck_assert_int_eq(stats_table_init(&bc->before, bc->cfg), 0);
	table_fill(&bc->t, 5);
	table_fill(&bc->before, 5);
	memset(bc->r, 0, sizeof(bc->r));
	bc->r[0].kind = STAT_WORKER;
	bc->r[0].c = cnt(1, 2, 3, 4, 5, 6);
	bc->r[1].kind = STAT_FRONTEND;
	bc->r[1].index = 1;
	bc->r[1].c = cnt(1, 1, 0, 0, 9, 9);
	bc->r[2].kind = STAT_SERVER;
	bc->r[2].index = 3;
	bc->r[2].c = cnt(0, 8, 0, 1, 7, 7);
}

static void
bad_free(struct bad_case *bc)
{
	stats_table_free(&bc->t);
	stats_table_free(&bc->before);
	config_free(bc->cfg);
}

/* Apply bc's records as they are now: must fail and store nothing. */
static void
expect_rejected(struct bad_case *bc, const char *what)
{
	union msgbuf mb;
	char err[128];
	size_t len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, bc->r, 3);

	ck_assert_uint_gt(len, 0);
	ck_assert_msg(receive(&bc->t, mb.buf, len, 0, err, sizeof(err)) == -1,
	    "%s: accepted", what);
	ck_assert_msg(err[0] != '\0', "%s: no reason given", what);
	ck_assert_msg(table_eq(&bc->t, &bc->before), "%s: something stored",
	    what);
	/* stats_apply directly, too. */
	err[0] = '\0';
	ck_assert_int_eq(stats_apply(&bc->t, bc->r, 3, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "%s: no reason given", what);
	ck_assert_msg(table_eq(&bc->t, &bc->before), "%s: something stored",
	    what);
}

START_TEST(test_apply_rejects)
{
	static const uint32_t kinds[] = { 0, STAT_ROUTE + 1, 99, UINT32_MAX };
	struct bad_case bc;
	union msgbuf mb;
	char err[128];
	size_t len;

	/* The untouched report is fine. */
	bad_init(&bc);
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, bc.r, 3);
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 0, err, sizeof(err)), 0);
	ck_assert_uint_eq(bc.t.servers[3].total, 8);
	ck_assert_uint_eq(bc.t.all.bytes_out, 6);
	bad_free(&bc);

	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		bad_init(&bc);
		bc.r[2].kind = kinds[i];
		expect_rejected(&bc, "unknown kind");
		bad_free(&bc);
	}

	bad_init(&bc);
	bc.r[2].index = 4;		/* nservers */
	expect_rejected(&bc, "server index out of range");
	bc.r[2].index = UINT32_MAX;
	expect_rejected(&bc, "server index UINT32_MAX");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[1].index = 2;		/* nfrontends */
	expect_rejected(&bc, "frontend index out of range");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[0].index = 1;		/* there is one worker record */
	expect_rejected(&bc, "worker index out of range");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[2].c.active = 9;		/* total is 8 */
	expect_rejected(&bc, "server active > total");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[0].c.active = 3;		/* total is 2 */
	expect_rejected(&bc, "worker active > total");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[1].c.active = UINT64_MAX;
	bc.r[1].c.total = UINT64_MAX - 1;
	expect_rejected(&bc, "frontend active > total");
	bad_free(&bc);

	/* TLS and route records: in range, no more versions than
	 * handshakes (a TLS record's handshakes may well be below its
	 * failures: those are not active/total). */
	bad_init(&bc);
	memset(&bc.r[1], 0, sizeof(bc.r[1]));
	bc.r[1].kind = STAT_TLS;
	bc.r[1].index = 1;
	bc.r[1].tls = (struct stat_tls){ 5, 9, { 2, 3, 0 } };
	memset(&bc.r[2], 0, sizeof(bc.r[2]));
	bc.r[2].kind = STAT_ROUTE;
	bc.r[2].index = 3;
	bc.r[2].route = 4;
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, bc.r, 3);
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 0, err, sizeof(err)), 0);
	ck_assert_uint_eq(bc.t.tls[1].failures, 9);
	ck_assert_uint_eq(bc.t.routes[3], 4);
	bad_free(&bc);

	bad_init(&bc);
	bc.r[1].kind = STAT_TLS;
	bc.r[1].index = 2;		/* nfrontends */
	bc.r[1].tls = (struct stat_tls){ 5, 0, { 0, 0, 0 } };
	expect_rejected(&bc, "TLS index out of range");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[1].kind = STAT_TLS;
	bc.r[1].index = 0;
	bc.r[1].tls = (struct stat_tls){ 5, 0, { 2, 3, 1 } };
	expect_rejected(&bc, "more versions than handshakes");
	bc.r[1].tls = (struct stat_tls){ 5, 0, { UINT64_MAX, 7, 0 } };
	expect_rejected(&bc, "versions wrapping around");
	bad_free(&bc);

	bad_init(&bc);
	bc.r[2].kind = STAT_ROUTE;
	bc.r[2].index = 4;		/* nroute_slots */
	bc.r[2].route = 1;
	expect_rejected(&bc, "route index out of range");
	bad_free(&bc);
}
END_TEST

START_TEST(test_decode_rejects_stats)
{
	struct bad_case bc;
	struct chan_hdr h;
	union msgbuf mb;
	char err[128];
	size_t len;
	struct stat_record big[CHAN_MAX_STATS + 1];
	static union {
		uint64_t	align;
		char		buf[sizeof(struct chan_hdr) +
		    (CHAN_MAX_STATS + 1) * sizeof(struct stat_record)];
	} huge;

	bad_init(&bc);
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, bc.r, 3);
	ck_assert_uint_gt(len, 0);

	/* One byte short, one byte long, the header's length a lie. */
	ck_assert_int_eq(receive(&bc.t, mb.buf, len - 1, 0, err,
	    sizeof(err)), -1);
	ck_assert(table_eq(&bc.t, &bc.before));
	mb.buf[len] = 0;
	ck_assert_int_eq(receive(&bc.t, mb.buf, len + 1, 0, err,
	    sizeof(err)), -1);
	ck_assert(table_eq(&bc.t, &bc.before));
	memcpy(&h, mb.buf, sizeof(h));
	h.len += (uint32_t)sizeof(struct stat_record);
	memcpy(mb.buf, &h, sizeof(h));
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 0, err, sizeof(err)),
	    -1);
	ck_assert(table_eq(&bc.t, &bc.before));
	/* The count says 2, three records follow and len covers them. */
	h.count = 2;
	h.len = (uint32_t)len;
	memcpy(mb.buf, &h, sizeof(h));
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 0, err, sizeof(err)),
	    -1);
	ck_assert(table_eq(&bc.t, &bc.before));
	/* Just a header. */
	ck_assert_int_eq(receive(&bc.t, mb.buf, sizeof(h) - 1, 0, err,
	    sizeof(err)), -1);
	ck_assert(table_eq(&bc.t, &bc.before));

	/* Zero records. */
	h.type = CHAN_STATS;
	h.count = 0;
	h.len = sizeof(h);
	memcpy(mb.buf, &h, sizeof(h));
	ck_assert_int_eq(receive(&bc.t, mb.buf, sizeof(h), 0, err,
	    sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no reason for zero records");

	/* One record more than a message may carry, length consistent. */
	memset(big, 0, sizeof(big));
	for (size_t i = 0; i < CHAN_MAX_STATS + 1; i++)
		big[i].kind = STAT_WORKER;
	h.count = (uint16_t)(CHAN_MAX_STATS + 1);
	h.len = (uint32_t)sizeof(huge.buf);
	memcpy(huge.buf, &h, sizeof(h));
	memcpy(huge.buf + sizeof(h), big, sizeof(big));
	ck_assert_int_eq(receive(&bc.t, huge.buf, sizeof(huge.buf), 0, err,
	    sizeof(err)), -1);
	ck_assert(table_eq(&bc.t, &bc.before));

	/* A descriptor attached to a stats message. */
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, bc.r, 3);
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 1, err, sizeof(err)),
	    -1);
	ck_assert(table_eq(&bc.t, &bc.before));

	/* Not a stats message at all: an unknown type. */
	memcpy(&h, mb.buf, sizeof(h));
	h.type = CHAN_TYPE_MAX;
	memcpy(mb.buf, &h, sizeof(h));
	ck_assert_int_eq(receive(&bc.t, mb.buf, len, 0, err, sizeof(err)),
	    -1);
	ck_assert(table_eq(&bc.t, &bc.before));
	bad_free(&bc);
}
END_TEST

START_TEST(test_decode_stats_fields)
{
	struct stat_record r[2];
	struct chan_msg m;
	union msgbuf mb;
	char err[128];
	size_t len;

	memset(r, 0, sizeof(r));
	r[0].kind = STAT_WORKER;
	r[0].c = cnt(1, UINT64_MAX, 2, 3, 4, 5);
	r[1].kind = STAT_SERVER;
	r[1].index = 77;
	r[1].c = cnt(0, 1, 0, 0, 0, UINT64_MAX);
	len = chan_encode(mb.buf, sizeof(mb.buf), CHAN_STATS, r, 2);
	ck_assert_int_eq(chan_decode(mb.buf, len, 0, &m, err, sizeof(err)),
	    0);
	ck_assert_int_eq(m.type, CHAN_STATS);
	ck_assert_uint_eq(m.count, 2);
	ck_assert_ptr_nonnull(m.stats);
	ck_assert_mem_eq(m.stats, r, sizeof(r));
	ck_assert_uint_eq(chan_record_size(CHAN_STATS), sizeof(struct
	    stat_record));
	ck_assert_uint_ge(CHAN_MAX_STATS, 100);
	ck_assert_uint_le(sizeof(struct chan_hdr) + CHAN_MAX_STATS *
	    sizeof(struct stat_record), CHAN_MSG_MAX);
}
END_TEST

/* --------------------------------------------------- tables and buffers */

START_TEST(test_table_init_zero)
{
	struct config *cfg = big_config(3);
	struct stats_table t;

	ck_assert_int_eq(stats_table_init(&t, cfg), 0);
	ck_assert_uint_eq(t.nfrontends, 3);
	ck_assert_uint_eq(t.nservers, 6);
	ck_assert_uint_eq(t.all.total, 0);
	for (size_t i = 0; i < t.nservers; i++)
		ck_assert_uint_eq(t.servers[i].bytes_out, 0);
	table_fill(&t, 9);
	stats_table_zero(&t);
	ck_assert_uint_eq(t.all.active, 0);
	ck_assert_uint_eq(t.all.bytes_out, 0);
	for (size_t i = 0; i < t.nfrontends; i++)
		ck_assert_uint_eq(t.frontends[i].total, 0);
	for (size_t i = 0; i < t.nservers; i++)
		ck_assert_uint_eq(t.servers[i].failures, 0);
	ck_assert_uint_eq(t.nservers, 6);
	stats_table_free(&t);
	ck_assert_ptr_null(t.frontends);
	ck_assert_ptr_null(t.servers);
	config_free(cfg);
}
END_TEST

static void
counters_eq(const struct stat_counters *c, uint64_t active, uint64_t total,
    uint64_t errors, uint64_t failures, uint64_t in, uint64_t out)
{
	ck_assert_uint_eq(c->active, active);
	ck_assert_uint_eq(c->total, total);
	ck_assert_uint_eq(c->errors, errors);
	ck_assert_uint_eq(c->failures, failures);
	ck_assert_uint_eq(c->bytes_in, in);
	ck_assert_uint_eq(c->bytes_out, out);
}

START_TEST(test_table_add)
{
	struct config *cfg = load(base_conf);
	struct stats_table a, b, sum;

	ck_assert_int_eq(stats_table_init(&a, cfg), 0);
	ck_assert_int_eq(stats_table_init(&b, cfg), 0);
	ck_assert_int_eq(stats_table_init(&sum, cfg), 0);
	a.all = cnt(2, 10, 1, 2, 100, 200);
	a.frontends[1] = cnt(1, 5, 1, 0, 50, 60);
	a.servers[3] = cnt(1, 4, 0, 2, 40, 70);
	b.all = cnt(3, 20, 0, 1, 1000, 2000);
	b.frontends[1] = cnt(3, 7, 0, 0, 500, 600);
	b.servers[3] = cnt(2, 9, 0, 1, 400, 700);
	b.servers[0] = cnt(0, 1, 0, 0, 1, 1);

	/* Live workers: active counts. */
	stats_table_add(&sum, &a, 0);
	stats_table_add(&sum, &b, 0);
	counters_eq(&sum.all, 5, 30, 1, 3, 1100, 2200);
	counters_eq(&sum.frontends[1], 4, 12, 1, 0, 550, 660);
	counters_eq(&sum.frontends[0], 0, 0, 0, 0, 0, 0);
	counters_eq(&sum.servers[3], 3, 13, 0, 3, 440, 770);
	counters_eq(&sum.servers[0], 0, 1, 0, 0, 1, 1);
	counters_eq(&sum.servers[1], 0, 0, 0, 0, 0, 0);

	/* An exited worker: its connections are gone, its totals stay. */
	stats_table_add(&sum, &a, 1);
	counters_eq(&sum.all, 5, 40, 2, 5, 1200, 2400);
	counters_eq(&sum.frontends[1], 4, 17, 2, 0, 600, 720);
	counters_eq(&sum.servers[3], 3, 17, 0, 5, 480, 840);
	/* The source is not touched. */
	counters_eq(&a.all, 2, 10, 1, 2, 100, 200);
	stats_table_free(&a);
	stats_table_free(&b);
	stats_table_free(&sum);
	config_free(cfg);
}
END_TEST

START_TEST(test_table_add_shapes)
{
	struct config *small = load(base_conf), *big = big_config(3);
	struct stats_table s, l;

	/* Tables of different configurations add where they overlap. */
	ck_assert_int_eq(stats_table_init(&s, small), 0);
	ck_assert_int_eq(stats_table_init(&l, big), 0);
	table_fill(&l, 1);
	stats_table_add(&s, &l, 0);
	ck_assert_mem_eq(&s.all, &l.all, sizeof(s.all));
	ck_assert_mem_eq(s.frontends, l.frontends, 2 * sizeof(*s.frontends));
	ck_assert_mem_eq(s.servers, l.servers, 4 * sizeof(*s.servers));
	stats_table_zero(&l);
	table_fill(&s, 2);
	stats_table_add(&l, &s, 1);
	ck_assert_uint_eq(l.all.active, 0);
	ck_assert_uint_eq(l.all.total, s.all.total);
	ck_assert_uint_eq(l.frontends[2].total, 0);
	ck_assert_uint_eq(l.servers[4].total, 0);
	ck_assert_uint_eq(l.servers[3].bytes_in, s.servers[3].bytes_in);
	stats_table_free(&s);
	stats_table_free(&l);
	config_free(small);
	config_free(big);
}
END_TEST

/* base_conf after an edit: api gone, app reordered, spare gone, db renamed. */
static const char edited_conf[] =
	"[global]\n"
	"workers = 2\n"
	"\n"
	"[frontend new]\n"
	"listen = 127.0.0.1:9000\n"
	"backend = app\n"
	"\n"
	"[frontend web]\n"
	"listen = 127.0.0.1:8080\n"
	"backend = app\n"
	"\n"
	"[backend db2]\n"
	"server = d1 10.0.1.1:5432\n"
	"\n"
	"[backend app]\n"
	"server = a3 10.0.0.3:8000\n"
	"server = a2 10.0.0.2:8000\n"
	"server = a1 10.0.0.1:8000\n";

START_TEST(test_map_by_name)
{
	struct config *from = load(base_conf), *to = load(edited_conf);
	struct stats_map map;
	struct stats_table src, dst;

	/* from: web api | app: a1 a2 spare, db: d1 */
	/* to:   new web | db2: d1, app: a3 a2 a1 */
	ck_assert_int_eq(stats_map_init(&map, from, to), 0);
	ck_assert_uint_eq(map.nfrontends, 2);
	ck_assert_uint_eq(map.nservers, 4);
	ck_assert_uint_eq(map.frontends[0], 1);		/* web */
	ck_assert_uint_eq(map.frontends[1], STATS_NOWHERE);	/* api */
	ck_assert_uint_eq(map.servers[0], 3);		/* app/a1 */
	ck_assert_uint_eq(map.servers[1], 2);		/* app/a2 */
	ck_assert_uint_eq(map.servers[2], STATS_NOWHERE);	/* app/spare */
	/* db/d1: the backend is another one now, whatever its servers. */
	ck_assert_uint_eq(map.servers[3], STATS_NOWHERE);

	ck_assert_int_eq(stats_table_init(&src, from), 0);
	ck_assert_int_eq(stats_table_init(&dst, to), 0);
	table_fill(&src, 1);
	dst.frontends[1] = cnt(1, 1, 1, 1, 1, 1);
	stats_table_add_mapped(&dst, &src, &map, 1);
	counters_eq(&dst.all, 0, src.all.total, src.all.errors,
	    src.all.failures, src.all.bytes_in, src.all.bytes_out);
	counters_eq(&dst.frontends[0], 0, 0, 0, 0, 0, 0);
	counters_eq(&dst.frontends[1], 1, src.frontends[0].total + 1,
	    src.frontends[0].errors + 1, src.frontends[0].failures + 1,
	    src.frontends[0].bytes_in + 1, src.frontends[0].bytes_out + 1);
	counters_eq(&dst.servers[0], 0, 0, 0, 0, 0, 0);	/* db2/d1 */
	counters_eq(&dst.servers[1], 0, 0, 0, 0, 0, 0);	/* app/a3 */
	ck_assert_uint_eq(dst.servers[2].total, src.servers[1].total);
	ck_assert_uint_eq(dst.servers[3].bytes_out, src.servers[0].bytes_out);
	ck_assert_uint_eq(dst.servers[3].active, 0);
	/* With active, and into a table of the same shape: the identity. */
	stats_map_free(&map);
	ck_assert_ptr_null(map.frontends);
	stats_table_free(&dst);
	ck_assert_int_eq(stats_map_init(&map, from, from), 0);
	ck_assert_int_eq(stats_table_init(&dst, from), 0);
	stats_table_add_mapped(&dst, &src, &map, 0);
	ck_assert_msg(table_eq(&dst, &src), "identity map changed figures");
	stats_map_free(&map);
	stats_table_free(&src);
	stats_table_free(&dst);
	config_free(from);
	config_free(to);
}
END_TEST

/* Routes follow their name, protocol and backend across a reload. */
START_TEST(test_map_routes)
{
	static const char before[] =
	    "[frontend plain]\nlisten = 127.0.0.1:8000\nbackend = b1\n"
	    "[frontend edge]\nlisten = 127.0.0.1:8443\nbackend = b1\n"
	    "tls_passthrough = on\n"
	    "route = a.test b2\n"		/* slot 2 */
	    "route = a.test alpn:h2 b2\n"	/* slot 3 */
	    "route = *.c.test b1\n"		/* slot 4; default 5 */
	    "[backend b1]\nserver = s 10.0.0.1:1\n"
	    "[backend b2]\nserver = s 10.0.0.2:1\n";
	static const char after[] =
	    "[frontend edge]\nlisten = 127.0.0.1:8443\nbackend = b2\n"
	    "tls_passthrough = on\n"
	    "route = *.c.test b1\n"		/* slot 0 */
	    "route = a.test alpn:h2 b2\n"	/* slot 1 */
	    "route = a.test b1\n"		/* slot 2: another backend */
	    "[backend b1]\nserver = s 10.0.0.1:1\n"
	    "[backend b2]\nserver = s 10.0.0.2:1\n";
	struct config *from = load(before), *to = load(after);
	struct stats_table src, dst;
	struct stats_map map;

	ck_assert_uint_eq(from->nroute_slots, 1 + 4);
	ck_assert_uint_eq(to->nroute_slots, 4);
	ck_assert_int_eq(stats_map_init(&map, from, to), 0);
	ck_assert_uint_eq(map.nroutes, 5);
	ck_assert_uint_eq(map.routes[0], STATS_NOWHERE);	/* plain */
	ck_assert_uint_eq(map.routes[1], STATS_NOWHERE);	/* a.test b2 */
	ck_assert_uint_eq(map.routes[2], 1);
	ck_assert_uint_eq(map.routes[3], 0);
	ck_assert_uint_eq(map.routes[4], 3);	/* default to default */
	ck_assert_int_eq(stats_table_init(&src, from), 0);
	ck_assert_int_eq(stats_table_init(&dst, to), 0);
	table_fill(&src, 5);
	stats_table_add_mapped(&dst, &src, &map, 1);
	ck_assert_uint_eq(dst.routes[0], src.routes[3]);
	ck_assert_uint_eq(dst.routes[1], src.routes[2]);
	ck_assert_uint_eq(dst.routes[2], 0);
	ck_assert_uint_eq(dst.routes[3], src.routes[4]);
	ck_assert_mem_eq(&dst.tls[0], &src.tls[1], sizeof(dst.tls[0]));
	stats_map_free(&map);
	ck_assert_ptr_null(map.routes);
	stats_table_free(&src);
	stats_table_free(&dst);
	config_free(from);
	config_free(to);
}
END_TEST

START_TEST(test_sbuf_growth)
{
	struct sbuf b = { NULL, 0, 0, 0 };
	char *big = malloc(20000);
	size_t want = 0;

	ck_assert_ptr_nonnull(big);
	/* Many small pieces across the 4 KiB first allocation. */
	for (int i = 0; i < 1000; i++) {
		sbuf_printf(&b, "%04d,", i);
		want += 5;
		ck_assert_uint_eq(b.len, want);
	}
	ck_assert_int_eq(b.oom, 0);
	ck_assert_uint_gt(b.cap, b.len);
	ck_assert_uint_eq(strlen(b.s), b.len);
	for (int i = 0; i < 1000; i++) {
		char piece[8];
		snprintf(piece, sizeof(piece), "%04d,", i);
		ck_assert_int_eq(memcmp(b.s + 5 * i, piece, 5), 0);
	}
	/* One piece bigger than doubling gives. */
	memset(big, 'x', 19999);
	big[19999] = '\0';
	sbuf_printf(&b, "[%s]", big);
	ck_assert_int_eq(b.oom, 0);
	ck_assert_uint_eq(b.len, want + 20001);
	ck_assert_uint_gt(b.cap, b.len);
	ck_assert_uint_eq(strlen(b.s), b.len);
	ck_assert_int_eq(b.s[want], '[');
	ck_assert_int_eq(b.s[want + 20000], ']');
	ck_assert_int_eq(memcmp(b.s, "0000,0001,", 10), 0);
	sbuf_free(&b);
	ck_assert_ptr_null(b.s);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);

	/* Exactly filling: a piece that leaves no room for the NUL. */
	sbuf_printf(&b, "%s", "");
	ck_assert_uint_eq(b.len, 0);
	memset(big, 'y', 4095);
	big[4095] = '\0';
	sbuf_printf(&b, "%s", big);
	ck_assert_uint_eq(b.len, 4095);
	sbuf_printf(&b, "z");
	ck_assert_uint_eq(b.len, 4096);
	ck_assert_uint_eq(strlen(b.s), 4096);
	ck_assert_int_eq(b.s[4095], 'z');
	sbuf_free(&b);
	free(big);
}
END_TEST

START_TEST(test_render_big)
{
	/* A document far beyond the first 4 KiB, still valid. */
	struct config *cfg = big_config(150);
	struct stats_view v;
	struct stats_worker w[3];
	uint8_t *status;
	struct sbuf b;
	struct jval *doc;
	struct prom_doc *d = calloc(1, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	memset(&v, 0, sizeof(v));
	memset(w, 0, sizeof(w));
	status = calloc(cfg->nservers, 1);
	ck_assert_ptr_nonnull(status);
	ck_assert_int_eq(stats_table_init(&v.sum, cfg), 0);
	table_fill(&v.sum, 11);
	for (int i = 0; i < 3; i++) {
		w[i].id = i;
		w[i].pid = 100 + i;
		w[i].generation = 1;
		w[i].state = "running";
		w[i].c = cnt(1, 2, 0, 0, 3, 4);
	}
	v.version = "0.1.0";
	v.pid = 1;
	v.cfg = cfg;
	v.workers = w;
	v.nworkers = 3;
	v.server_status = status;
	doc = render_json(&v, &b);
	ck_assert_uint_gt(b.len, 8192);
	ck_assert_uint_eq(jget(doc, "backends", J_ARR)->n, 2);
	ck_assert_uint_eq(jget(jidx(jget(doc, "backends", J_ARR), 1),
	    "servers", J_ARR)->n, 150);
	jfree(doc);
	sbuf_free(&b);
	/* 300 servers * 7 families exceed PROM_MAX: check the text only. */
	memset(&b, 0, sizeof(b));
	stats_render_prometheus(&v, &b);
	ck_assert_int_eq(b.oom, 0);
	ck_assert_uint_gt(b.len, 8192);
	ck_assert_ptr_nonnull(strstr(b.s, "baton_server_connections_total{"
	    "backend=\"b1\",server=\"s149\"} "));
	ck_assert_int_eq(b.s[b.len - 1], '\n');
	sbuf_free(&b);
	free(d);
	free(status);
	stats_table_free(&v.sum);
	config_free(cfg);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_str_eq(stats_status_name(SERVER_UP), "up");
	ck_assert_str_eq(stats_status_name(SERVER_DOWN), "down");
	ck_assert_str_eq(stats_status_name(SERVER_DRAIN), "drain");
	ck_assert_str_eq(stats_status_name(SERVER_MAINT), "maint");
	ck_assert_str_eq(stats_status_name(-1), "unknown");
	ck_assert_str_eq(stats_status_name(SERVER_MAINT + 1), "unknown");
}
END_TEST

/* The endpoint's routing: token first, then method, then path. */
START_TEST(test_endpoint_route)
{
	const char *t = "s3cret";

	ck_assert_int_eq(endpoint_route(NULL, NULL, 1, "/stats"), ROUTE_STATS);
	ck_assert_int_eq(endpoint_route(NULL, "junk", 1, "/metrics"),
	    ROUTE_METRICS);
	ck_assert_int_eq(endpoint_route(NULL, NULL, 1, "/"), ROUTE_DASHBOARD);
	ck_assert_int_eq(endpoint_route(NULL, NULL, 1, "/stats/"),
	    ROUTE_NOT_FOUND);
	ck_assert_int_eq(endpoint_route(NULL, NULL, 1, NULL), ROUTE_NOT_FOUND);
	ck_assert_int_eq(endpoint_route(NULL, NULL, 0, "/stats"),
	    ROUTE_BAD_METHOD);
	ck_assert_int_eq(endpoint_route(t, "Bearer s3cret", 1, "/stats"),
	    ROUTE_STATS);
	/* A wrong token is refused before the method or path is looked at. */
	ck_assert_int_eq(endpoint_route(t, NULL, 0, "/x"), ROUTE_UNAUTHORIZED);
	ck_assert_int_eq(endpoint_route(t, "Bearer s3cre", 1, "/stats"),
	    ROUTE_UNAUTHORIZED);
	ck_assert_int_eq(endpoint_route(t, "Bearer s3cret2", 1, "/stats"),
	    ROUTE_UNAUTHORIZED);
	ck_assert_int_eq(endpoint_route(t, "bearer s3cret", 1, "/stats"),
	    ROUTE_UNAUTHORIZED);
	ck_assert_int_eq(endpoint_route(t, "Bearer ", 1, "/stats"),
	    ROUTE_UNAUTHORIZED);
	ck_assert_int_eq(endpoint_route(t, "Bearer s3cret", 0, "/stats"),
	    ROUTE_BAD_METHOD);
}
END_TEST

static Suite *
stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc;

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_parser_self_check);
	tcase_add_test(tc, test_json_every_field);
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_json_every_control_char);
	tcase_add_test(tc, test_json_empty_lists);
	suite_add_tcase(s, tc);

	tc = tcase_create("prometheus");
	tcase_add_test(tc, test_prom_checker_self_check);
	tcase_add_test(tc, test_prom_format_and_values);
	tcase_add_test(tc, test_prom_label_escaping);
	tcase_add_test(tc, test_prom_no_workers);
	tcase_add_test(tc, test_prom_two_generations);
	suite_add_tcase(s, tc);

	tc = tcase_create("reports");
	tcase_add_test(tc, test_records_order);
	tcase_add_test(tc, test_report_roundtrip_small);
	tcase_add_test(tc, test_report_roundtrip_split);
	tcase_add_test(tc, test_encode_rejects_stats);
	tcase_add_test(tc, test_apply_rejects);
	tcase_add_test(tc, test_decode_rejects_stats);
	tcase_add_test(tc, test_decode_stats_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("tables");
	tcase_add_test(tc, test_table_init_zero);
	tcase_add_test(tc, test_table_add);
	tcase_add_test(tc, test_table_add_shapes);
	tcase_add_test(tc, test_map_by_name);
	tcase_add_test(tc, test_map_routes);
	tcase_add_test(tc, test_sbuf_growth);
	tcase_add_test(tc, test_render_big);
	tcase_add_test(tc, test_status_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("endpoint");
	tcase_add_test(tc, test_endpoint_route);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
