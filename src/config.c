/* config.c -- proxy.ini: lines and sections through inih, then one
 * validation pass over the whole file */
#include "ac_config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_priv.h"
#include "log.h"

/* Sections */

static void
section_frontend(struct parse *p, const char *name)
{
	struct frontend_conf *f;

	for (size_t i = 0; i < p->cfg->nfrontends; i++)
		if (strcmp(p->cfg->frontends[i].name, name) == 0)
			cfg_perr(p, 0, "duplicate frontend name '%s'", name);
	f = cfg_grow(&p->cfg->frontends, &p->cfg->nfrontends, sizeof(*f));
	f->name = cfg_xstrdup(name);
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
			cfg_perr(p, 0, "duplicate backend name '%s'", name);
	b = cfg_grow(&p->cfg->backends, &p->cfg->nbackends, sizeof(*b));
	b->name = cfg_xstrdup(name);
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
		cfg_perr(p, 0, "malformed section header");
		return;
	}
	memcpy(sect, hdr + 1, len);
	sect[len] = '\0';
	n = sscanf(sect, " %15s %111s %1s", kind, name, extra);
	snprintf(p->label, sizeof(p->label), "[%s]", sect);
	if (n == 1 && strcmp(kind, "global") == 0) {
		if (p->seen_global++)
			cfg_perr(p, 0, "duplicate section");
		p->kind = SECT_GLOBAL;
	} else if (n == 1 && strcmp(kind, "stats") == 0) {
		if (p->seen_stats++)
			cfg_perr(p, 0, "duplicate section");
		p->kind = SECT_STATS;
		p->stats_line = p->line;
		p->cfg->has_stats = 1;
	} else if (n == 2 && (strcmp(kind, "frontend") == 0 ||
	    strcmp(kind, "backend") == 0)) {
		snprintf(p->label, sizeof(p->label), "[%s %s]", kind, name);
		if (!cfg_valid_name(name))
			cfg_perr(p, 0, "bad name '%s' (letters, digits, _ . -)",
			    name);
		if (kind[0] == 'f')
			section_frontend(p, name);
		else
			section_backend(p, name);
	} else if (n >= 1 && (strcmp(kind, "frontend") == 0 ||
	    strcmp(kind, "backend") == 0)) {
		cfg_perr(p, 0, "expected [%s NAME]", kind);
		p->label[0] = '\0';
	} else {
		p->label[0] = '\0';
		cfg_perr(p, 0, "unknown section [%s]", sect);
	}
}

/*
 * The line reader handed to ini_parse_stream(): it counts lines (Debian's
 * libinih has no handler line numbers), strips leading blanks (so an
 * indented key is a key, not a multi-line continuation) and opens sections
 * itself, so that an empty section still exists.
 */
/* The next byte of the file or buffer, or EOF. */
static int
next_byte(struct parse *p)
{
	if (p->fp != NULL)
		return fgetc(p->fp);
	if (p->text == p->text_end)
		return EOF;
	return (unsigned char)*p->text++;
}

static char *
config_reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	const char *bad;
	size_t len = 0, skip;
	int c = EOF;

	while (len < (size_t)size - 1 && (c = next_byte(p)) != EOF) {
		buf[len++] = (char)c;
		if (c == '\n')
			break;
	}
	if (len == 0)
		return NULL;
	buf[len] = '\0';
	p->line++;
	if (len == (size_t)size - 1 && buf[len - 1] != '\n') {
		cfg_perr(p, 0, "line too long (at most %d characters)", size - 2);
		/* Swallow the rest of the line so the count stays right. */
		while ((c = next_byte(p)) != EOF && c != '\n')
			;
		buf[0] = '\0';
		return buf;
	}
	/* A byte-order mark may open the file (inih would skip it too). */
	if (p->line == 1 && len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		memmove(buf, buf + 3, len - 2);
		len -= 3;
	}
	skip = strspn(buf, " \t");
	memmove(buf, buf + skip, len - skip + 1);
	len -= skip;
	if ((bad = config_check_text(buf, len)) != NULL) {
		if (buf[0] == '[') {
			/* Whatever this header meant, skip its keys. */
			p->kind = SECT_BAD;
			p->label[0] = '\0';
		}
		cfg_perr(p, 0, "%s in line", bad);
		buf[0] = '\0';
		return buf;
	}
	if (buf[0] == '[')
		section_open(p, buf);
	else if (buf[strspn(buf, "\r\n")] != '\0' && strchr(";#", buf[0]) ==
	    NULL && strpbrk(buf, "=:") == NULL)
		cfg_perr(p, 0, "syntax error (expected KEY = VALUE or [SECTION])");
	return buf;
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
		cfg_perr(p, 0, "'%s' outside of any section", key);
		return 1;
	}
	keys = cfg_section_keys(p->kind);
	for (i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, key) == 0)
			break;
	if (keys[i].name == NULL) {
		cfg_perr(p, 0, "unknown key '%s'", key);
		return 1;
	}
	if (!keys[i].repeatable && (p->seen & (1u << i))) {
		cfg_perr(p, 0, "%s: duplicate key", key);
		return 1;
	}
	p->seen |= 1u << i;
	if (*value == '\0' && !keys[i].repeatable) {
		cfg_perr(p, 0, "%s: empty value", key);
		return 1;
	}
	(void)keys[i].fn(p, key, value);
	return 1;
}

/* Room for every server a backend may ever hold (see config.h). */
static void
config_reserve_servers(struct backend_conf *b)
{
	struct server_conf *s;

	if ((s = realloc(b->servers, CONFIG_MAX_SERVERS * sizeof(*s))) ==
	    NULL)
		fatalx("out of memory");
	memset(s + b->nservers, 0, (CONFIG_MAX_SERVERS - b->nservers) *
	    sizeof(*s));
	b->servers = s;
}

int
config_server_at(const struct config *cfg, size_t flat, size_t *b,
    size_t *j)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *bc = &cfg->backends[i];
		for (size_t k = 0; k < bc->nservers; k++)
			if (bc->servers[k].flat == flat) {
				*b = i;
				*j = k;
				return 0;
			}
	}
	return -1;
}

/* Cross-checks that need the whole file. */
static void
config_validate(struct parse *p)
{
	struct config *cfg = p->cfg;

	p->label[0] = '\0';
	if (cfg->nfrontends == 0)
		cfg_errlist_add(p->errs, "%s:%d: no [frontend NAME] section",
		    p->name, p->line > 0 ? p->line : 1);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];
		if (b->nservers == 0 && b->nresolves == 0 &&
		    b->discover == NULL)
			cfg_errlist_add(p->errs, "%s:%d: [backend %s] no server",
			    p->name, b->line, b->name);
		for (size_t j = 0; j < b->nresolves; j++)
			if (b->resolves[j].send_proxy == -1)
				b->resolves[j].send_proxy = b->send_proxy;
		if ((b->check_send != NULL || b->check_expect != NULL) &&
		    b->check != CHECK_TCP)
			cfg_errlist_add(p->errs, "%s:%d: [backend %s] check_send "
			    "and check_expect need check = tcp", p->name,
			    b->line, b->name);
		b->server_base = cfg->nservers;
		cfg->nservers += b->nservers;
		for (size_t j = 0; j < b->nservers; j++) {
			struct server_conf *s = &b->servers[j];
			if (s->send_proxy == -1)
				s->send_proxy = b->send_proxy;
			s->flat = b->server_base + j;
			s->file_weight = s->weight;
		}
		config_reserve_servers(b);
	}
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend_conf *f = &cfg->frontends[i];
		size_t j;

		if (f->nlistens == 0)
			cfg_errlist_add(p->errs, "%s:%d: [frontend %s] no listen "
			    "address", p->name, f->line, f->name);
		if (f->backend_name == NULL) {
			cfg_errlist_add(p->errs, "%s:%d: [frontend %s] no backend",
			    p->name, f->line, f->name);
		} else {
			for (j = 0; j < cfg->nbackends; j++)
				if (strcmp(cfg->backends[j].name,
				    f->backend_name) == 0)
					break;
			if (j == cfg->nbackends)
				cfg_errlist_add(p->errs, "%s:%d: [frontend %s] "
				    "backend: no backend named '%s'", p->name,
				    f->backend_line, f->name, f->backend_name);
			f->backend = j;
		}
		for (j = 0; j < f->ntls; j++)
			if (f->tls_pairs[j].cert == NULL ||
			    f->tls_pairs[j].key == NULL)
				break;
		if (j < f->ntls)
			cfg_errlist_add(p->errs, "%s:%d: [frontend %s] tls_cert "
			    "and tls_key go together", p->name, f->line, f->name);
		cfg_check_tls_edge(p, f);
		if (f->tls_client_ca != NULL && f->ntls == 0)
			cfg_errlist_add(p->errs, "%s:%d: [frontend %s] "
			    "tls_client_ca needs tls_cert and tls_key", p->name,
			    f->tls_client_ca_line, f->name);
		if (f->tls_client_ca == NULL && f->tls_verify != TLS_VERIFY_NONE)
			cfg_errlist_add(p->errs, "%s:%d: [frontend %s] "
			    "tls_verify = %s needs tls_client_ca", p->name,
			    f->tls_verify_line, f->name,
			    config_tls_verify_name(f->tls_verify));
		if (f->tls_client_ca != NULL && f->tls_verify_line == 0)
			f->tls_verify = TLS_VERIFY_REQUIRED;
		for (j = 0; j < f->nlistens; j++) {
			struct listen_conf *l = &f->listens[j];
			for (size_t k = 0; k <= i; k++) {
				struct frontend_conf *g = &cfg->frontends[k];
				size_t end = k == i ? j : g->nlistens;
				for (size_t m = 0; m < end; m++)
					if (addr_equal(&g->listens[m].addr,
					    &l->addr))
						cfg_errlist_add(p->errs, "%s:%d: "
						    "[frontend %s] listen: "
						    "'%s' is already used",
						    p->name, l->line, f->name,
						    l->text);
			}
			if (cfg->has_stats && cfg->stats_listen != NULL &&
			    addr_equal(&cfg->stats_addr, &l->addr))
				cfg_errlist_add(p->errs, "%s:%d: [frontend %s] "
				    "listen: '%s' is the stats address",
				    p->name, l->line, f->name, l->text);
		}
	}
	if (cfg->has_stats && cfg->stats_listen == NULL)
		cfg_errlist_add(p->errs, "%s:%d: [stats] no listen address",
		    p->name, p->stats_line);
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers_auto = 1;
		cfg->workers = n < 1 ? 1 : n > CONFIG_MAX_WORKERS ?
		    CONFIG_MAX_WORKERS : (unsigned)n;
	}
}

static struct config *
config_run(struct parse *p)
{
	size_t before = p->errs->n;
	int rc;

	p->cfg = cfg_xcalloc(1, sizeof(*p->cfg));
	p->cfg->path = cfg_xstrdup(p->name);
	p->cfg->workers = 0;
	p->cfg->dispatch = DISPATCH_ROUNDROBIN;
	p->cfg->drain_timeout_ms = 30 * 1000;
	p->cfg->log_level = LL_INFO;
	p->cfg->log_format = LOG_FORMAT_TEXT;
	p->cfg->splice = 1;
	p->cfg->handover = 1;
	p->cfg->io_uring = IO_URING_AUTO;
	p->cfg->resolve_interval_ms = 30 * 1000;
	rc = ini_parse_stream(config_reader, p, config_handler, p);
	/* rc > 0 (a syntax error) was reported by config_reader already. */
	if (rc < 0) {
		cfg_errlist_add(p->errs, "%s: cannot parse", p->name);
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
		cfg_errlist_add(errs, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cfg = config_run(&p);
	fclose(p.fp);
	return cfg;
}

struct config *
config_load_buffer(const char *buf, size_t len, const char *name,
    struct errlist *errs)
{
	struct parse p;

	memset(&p, 0, sizeof(p));
	p.errs = errs;
	p.name = name;
	p.text = buf;
	p.text_end = buf + len;
	return config_run(&p);
}

struct config *
config_load_string(const char *text, const char *name, struct errlist *errs)
{
	return config_load_buffer(text, strlen(text), name, errs);
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
		for (size_t j = 0; j < f->ntls; j++) {
			free(f->tls_pairs[j].cert);
			free(f->tls_pairs[j].key);
		}
		free(f->tls_pairs);
		cfg_free_tls_edge(f);
		free(f->tls_client_ca);
	}
	free(cfg->frontends);
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];
		for (size_t j = 0; j < b->nservers; j++) {
			free(b->servers[j].name);
			free(b->servers[j].addr_text);
			free(b->servers[j].tls_verify);
			free(b->servers[j].tls_sni);
		}
		free(b->servers);
		for (size_t j = 0; j < b->nresolves; j++) {
			free(b->resolves[j].name);
			free(b->resolves[j].host);
		}
		free(b->resolves);
		free(b->discover);
		free(b->name);
		free(b->check_send);
		free(b->check_expect);
	}
	free(cfg->backends);
	free(cfg->path);
	free(cfg->user);
	free(cfg->log_file);
	free(cfg->pidfile);
	free(cfg->resolvers);
	free(cfg->stats_listen);
	free(cfg->stats_token);
	free(cfg);
}
