/* config_keys.c -- one setter per proxy.ini key, and the tables of keys */
#include "ac_config.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"
#include "log.h"

static const char *const balance_words[] = {
	"roundrobin", "leastconn", "source", "random", NULL
};
static const char *const dispatch_words[] = { "roundrobin", "leastconn", NULL };
static const char *const proxy_words[] = { "off", "v1", "v2", "any", NULL };
static const char *const tls_verify_words[] = { "none", "optional",
    "required", NULL };
static const char *const send_proxy_words[] = { "off", "v1", "v2", NULL };
static const char *const onoff_words[] = { "off", "on", NULL };
static const char *const check_words[] = { "off", "tcp", NULL };
static const char *const log_format_words[] = { "text", "json", NULL };
static const char *const io_uring_words[] = { "off", "on", "auto", NULL };

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

const char *
config_io_uring_name(int mode)
{
	return io_uring_words[mode];
}

const char *
config_dispatch_name(int dispatch)
{
	return dispatch_words[dispatch];
}

const char *
config_proxy_name(int proxy)
{
	return proxy_words[proxy];
}

const char *
config_tls_verify_name(int verify)
{
	return tls_verify_words[verify];
}

const char *
config_check_name(int check)
{
	return check_words[check];
}

const char *
config_log_format_name(int format)
{
	return log_format_words[format];
}

static int
set_word(struct parse *p, const char *key, const char *v,
    const char *const *words, int *out)
{
	int i;

	if ((i = cfg_parse_word(v, words)) == -1) {
		char list[128] = "";
		for (int j = 0; words[j] != NULL; j++) {
			strcat(list, j ? " | " : "");
			strcat(list, words[j]);
		}
		cfg_perr(p, 0, "%s: bad value '%s' (expected %s)", key, v, list);
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
		cfg_perr(p, 0, "%s: bad duration '%s'", key, v);
		return -1;
	}
	*out = ms;
	return 0;
}

static int
set_uint(struct parse *p, const char *key, const char *v, unsigned min,
    unsigned max, unsigned *out)
{
	if (cfg_parse_uint(v, min, max, out) == -1) {
		cfg_perr(p, 0, "%s: bad number '%s' (expected %u..%u)", key, v, min,
		    max);
		return -1;
	}
	return 0;
}

static void
set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = cfg_xstrdup(v);
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
		cfg_perr(p, 0, "%s: unknown user '%s'", k, v);
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
		cfg_perr(p, 0, "%s: bad value '%s' (expected debug | info | "
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
g_log_format(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, log_format_words, &p->cfg->log_format);
}

static int
g_pidfile(struct parse *p, const char *k, const char *v)
{
	set_string(&p->cfg->pidfile, v);
	return 0;
}

static int
g_handover(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, onoff_words, &p->cfg->handover);
}

static int
g_splice(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, onoff_words, &p->cfg->splice);
}

static int
g_io_uring(struct parse *p, const char *k, const char *v)
{
	return set_word(p, k, v, io_uring_words, &p->cfg->io_uring);
}

static const struct key_def global_keys[] = {
	{ "workers", g_workers, 0 },
	{ "dispatch", g_dispatch, 0 },
	{ "drain_timeout", g_drain_timeout, 0 },
	{ "user", g_user, 0 },
	{ "log_level", g_log_level, 0 },
	{ "log_file", g_log_file, 0 },
	{ "access_log", g_access_log, 0 },
	{ "log_format", g_log_format, 0 },
	{ "pidfile", g_pidfile, 0 },
	{ "splice", g_splice, 0 },
	{ "handover", g_handover, 0 },
	{ "io_uring", g_io_uring, 0 },
	{ "resolve_interval", cfg_g_resolve_interval, 0 },
	{ "resolvers", cfg_g_resolvers, 0 },
	{ NULL, NULL, 0 }
};

/* [stats] */

static int
s_listen(struct parse *p, const char *k, const char *v)
{
	char err[64];

	if (addr_parse(v, ADDR_LISTEN, &p->cfg->stats_addr, err,
	    sizeof(err)) == -1) {
		cfg_perr(p, 0, "%s: bad address '%s' (%s)", k, v, err);
		return -1;
	}
	set_string(&p->cfg->stats_listen, v);
	return 0;
}

static int
s_token(struct parse *p, const char *k, const char *v)
{
	if (*v == '\0') {
		cfg_perr(p, 0, "%s: empty token", k);
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
		cfg_perr(p, 0, "%s: bad address '%s' (%s)", k, v, err);
		return -1;
	}
	l = cfg_grow(&f->listens, &f->nlistens, sizeof(*l));
	l->text = cfg_xstrdup(v);
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

/*
 * tls_cert and tls_key pair up in order: each fills the first pair that
 * lacks it, or starts a new one (so one pair may come in either order).
 */
static int
f_tls_file(struct parse *p, const char *v, int is_cert)
{
	struct frontend_conf *f = cur_frontend(p);
	struct tls_pair *t = NULL;

	for (size_t i = 0; i < f->ntls && t == NULL; i++)
		if ((is_cert ? f->tls_pairs[i].cert : f->tls_pairs[i].key) ==
		    NULL)
			t = &f->tls_pairs[i];
	if (t == NULL) {
		if (f->ntls >= CONFIG_MAX_CERTS) {
			cfg_perr(p, 0, "%s: too many certificates (at most %d)",
			    is_cert ? "tls_cert" : "tls_key", CONFIG_MAX_CERTS);
			return -1;
		}
		t = cfg_grow(&f->tls_pairs, &f->ntls, sizeof(*t));
	}
	if (is_cert) {
		t->cert = cfg_xstrdup(v);
		t->cert_line = p->line;
	} else {
		t->key = cfg_xstrdup(v);
		t->key_line = p->line;
	}
	return 0;
}

static int
f_tls_cert(struct parse *p, const char *k, const char *v)
{
	return f_tls_file(p, v, 1);
}

static int
f_tls_key(struct parse *p, const char *k, const char *v)
{
	return f_tls_file(p, v, 0);
}

static int
f_tls_client_ca(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);

	free(f->tls_client_ca);
	f->tls_client_ca = cfg_xstrdup(v);
	f->tls_client_ca_line = p->line;
	return 0;
}

static int
f_tls_verify(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);

	f->tls_verify_line = p->line;
	return set_word(p, k, v, tls_verify_words, &f->tls_verify);
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
	{ "tls_cert", f_tls_cert, 1 },
	{ "tls_key", f_tls_key, 1 },
	{ "tls_client_ca", f_tls_client_ca, 0 },
	{ "tls_verify", f_tls_verify, 0 },
	{ "accept_proxy", f_accept_proxy, 0 },
	{ "route", cfg_key_route, 1 },
	{ "tls_passthrough", cfg_key_tls_passthrough, 0 },
	{ "tls_alpn", cfg_key_tls_alpn, 0 },
	{ NULL, NULL, 0 }
};

/* [backend NAME] */

static struct backend_conf *
cur_backend(struct parse *p)
{
	return &p->cfg->backends[p->cfg->nbackends - 1];
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

static int
set_escaped(struct parse *p, const char *k, const char *v, char **dst,
    size_t *len)
{
	char *d = config_unescape(v, len);

	if (d == NULL) {
		cfg_perr(p, 0, "%s: bad escape in '%s' (\\r \\n \\t \\\\ "
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
	{ "server", cfg_b_server, 1 },
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
	{ "discover", cfg_b_discover, 0 },
	{ NULL, NULL, 0 }
};

const struct key_def *
cfg_section_keys(int kind)
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
