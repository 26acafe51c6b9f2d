/* config_dump.c -- what a configuration will do, for baton -t and -T */
#include "ac_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_dump.h"
#include "log.h"

static const char *
onoff(int v)
{
	return v ? "on" : "off";
}

void
config_format_duration(unsigned ms, char *buf, size_t size)
{
	if (ms != 0 && ms % (3600 * 1000) == 0)
		snprintf(buf, size, "%uh", ms / (3600 * 1000));
	else if (ms != 0 && ms % (60 * 1000) == 0)
		snprintf(buf, size, "%um", ms / (60 * 1000));
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%us", ms / 1000);
	else
		snprintf(buf, size, "%ums", ms);
}

/* The duration ms in buf (DUR_LEN bytes), for printf. */
#define DUR_LEN	24
static const char *
dur(unsigned ms, char *buf)
{
	config_format_duration(ms, buf, DUR_LEN);
	return buf;
}

void
config_escape(FILE *fp, const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int edge = (i == 0 || i == len - 1) && (c == ' ' || c == '\t');

		if (c == '\\')
			fputs("\\\\", fp);
		else if (c == '\r')
			fputs("\\r", fp);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c == '\t' && !edge)
			fputc(c, fp);	/* inih keeps blanks inside a value */
		else if (c >= 0x80 && (n = config_utf8_len(s + i, len - i)) > 0) {
			fwrite(s + i, 1, n, fp);	/* as written */
			i += n - 1;
		} else if (c < 0x20 || c >= 0x7f || edge || (c == ';' && i > 0 &&
		    (s[i - 1] == ' ' || s[i - 1] == '\t')))
			fprintf(fp, "\\x%02x", c);	/* " ;" starts a comment */
		else
			fputc(c, fp);
	}
}

/* Summary (-t) */

static void
summary_frontend(FILE *fp, const struct config *cfg,
    const struct frontend_conf *f)
{
	char d[DUR_LEN];

	fprintf(fp, "frontend %s: ", f->name);
	for (size_t i = 0; i < f->nlistens; i++)
		fprintf(fp, "%s%s", i ? ", " : "", f->listens[i].text);
	fprintf(fp, " -> backend %s", cfg->backends[f->backend].name);
	if (f->ntls == 1)
		fprintf(fp, ", TLS");
	else if (f->ntls > 1)
		fprintf(fp, ", TLS (%zu certificates, by SNI)", f->ntls);
	if (f->tls_passthrough)
		fprintf(fp, ", TLS passed through");
	if (f->tls_alpn != NULL)
		fprintf(fp, ", ALPN %s", f->tls_alpn);
	if (f->nroutes > 0)
		fprintf(fp, ", %zu route%s", f->nroutes,
		    f->nroutes > 1 ? "s" : "");
	if (f->tls_client_ca != NULL)
		fprintf(fp, ", client certificates %s",
		    config_tls_verify_name(f->tls_verify));
	if (f->accept_proxy != PROXY_OFF)
		fprintf(fp, ", accept_proxy %s",
		    config_proxy_name(f->accept_proxy));
	fprintf(fp, " (timeout_idle %s, max_connections %u)\n",
	    dur(f->timeout_idle_ms, d), f->max_connections);
}

static void
summary_backend(FILE *fp, const struct backend_conf *b)
{
	char d[DUR_LEN];

	fprintf(fp, "backend %s: balance %s, connect_timeout %s, retries %u, "
	    "check %s\n", b->name, config_balance_name(b->balance),
	    dur(b->connect_timeout_ms, d), b->retries,
	    config_check_name(b->check));
	for (size_t i = 0; i < b->nservers; i++) {
		const struct server_conf *s = &b->servers[i];

		fprintf(fp, "  server %s %s weight %u", s->name, s->addr_text,
		    s->weight);
		if (s->backup)
			fprintf(fp, ", backup");
		if (s->send_proxy != PROXY_OFF)
			fprintf(fp, ", send_proxy %s",
			    config_proxy_name(s->send_proxy));
		if (s->tls)
			fprintf(fp, ", TLS (verify %s%s%s)", s->tls_noverify ?
			    "none" : s->tls_verify != NULL ? s->tls_verify :
			    "system CAs", s->tls_sni != NULL ? ", sni " : "",
			    s->tls_sni != NULL ? s->tls_sni : "");
		if (s->max_connections != 0)
			fprintf(fp, ", max_connections %u", s->max_connections);
		fputc('\n', fp);
	}
	for (size_t i = 0; i < b->nresolves; i++)
		fprintf(fp, "  servers %s-N: every address of %s, port %u, "
		    "weight %u%s\n", b->resolves[i].name, b->resolves[i].host,
		    b->resolves[i].port, b->resolves[i].weight,
		    b->resolves[i].backup ? ", backup" : "");
	if (b->discover != NULL)
		fprintf(fp, "  servers from DNS SRV records of %s\n",
		    b->discover);
}

void
config_dump_summary(FILE *fp, const struct config *cfg)
{
	char d[DUR_LEN];

	fprintf(fp, "workers: %u%s, dispatch %s, drain_timeout %s\n",
	    cfg->workers, cfg->workers_auto ? " (auto)" : "",
	    config_dispatch_name(cfg->dispatch), dur(cfg->drain_timeout_ms, d));
	for (size_t i = 0; i < cfg->nfrontends; i++)
		summary_frontend(fp, cfg, &cfg->frontends[i]);
	for (size_t i = 0; i < cfg->nbackends; i++)
		summary_backend(fp, &cfg->backends[i]);
	if (cfg->has_stats)
		fprintf(fp, "stats: %s%s\n", cfg->stats_listen,
		    cfg->stats_token != NULL ? " (token required)" : "");
	else
		fprintf(fp, "stats: off\n");
	fprintf(fp, "log: %s, level %s, access_log %s (%s)\n",
	    cfg->log_file != NULL ? cfg->log_file : "stderr",
	    log_level_name(cfg->log_level), onoff(cfg->access_log),
	    config_log_format_name(cfg->log_format));
}

/* proxy.ini (-T) */

static void
ini_string(FILE *fp, const char *key, const char *v)
{
	/*
	 * After "= ", a ';' would start a comment (inih takes ';' after a
	 * blank for one); written right after '=', it is the value's first
	 * byte.
	 */
	if (v != NULL)
		fprintf(fp, v[0] == ';' ? "%s=%s\n" : "%s = %s\n", key, v);
}

static void
ini_global(FILE *fp, const struct config *cfg)
{
	char d[DUR_LEN];

	fprintf(fp, "[global]\n");
	if (cfg->workers_auto)
		fprintf(fp, "workers = auto            ; %u here\n",
		    cfg->workers);
	else
		fprintf(fp, "workers = %u\n", cfg->workers);
	fprintf(fp, "dispatch = %s\n", config_dispatch_name(cfg->dispatch));
	fprintf(fp, "drain_timeout = %s\n", dur(cfg->drain_timeout_ms, d));
	ini_string(fp, "user", cfg->user);
	fprintf(fp, "log_level = %s\n", log_level_name(cfg->log_level));
	ini_string(fp, "log_file", cfg->log_file);
	fprintf(fp, "access_log = %s\n", onoff(cfg->access_log));
	fprintf(fp, "log_format = %s\n",
	    config_log_format_name(cfg->log_format));
	ini_string(fp, "pidfile", cfg->pidfile);
	fprintf(fp, "splice = %s\n", onoff(cfg->splice));
	fprintf(fp, "handover = %s\n", onoff(cfg->handover));
	fprintf(fp, "io_uring = %s\n", config_io_uring_name(cfg->io_uring));
	fprintf(fp, "resolve_interval = %s\n", dur(cfg->resolve_interval_ms,
	    d));
	ini_string(fp, "resolvers", cfg->resolvers);
}

static void
ini_frontend(FILE *fp, const struct config *cfg,
    const struct frontend_conf *f)
{
	char d[DUR_LEN];

	fprintf(fp, "\n[frontend %s]\n", f->name);
	for (size_t i = 0; i < f->nlistens; i++)
		fprintf(fp, "listen = %s\n", f->listens[i].text);
	fprintf(fp, "backend = %s\n", cfg->backends[f->backend].name);
	fprintf(fp, "timeout_idle = %s\n", dur(f->timeout_idle_ms, d));
	fprintf(fp, "max_connections = %u\n", f->max_connections);
	for (size_t i = 0; i < f->ntls; i++) {
		ini_string(fp, "tls_cert", f->tls_pairs[i].cert);
		ini_string(fp, "tls_key", f->tls_pairs[i].key);
	}
	if (f->tls_client_ca != NULL) {
		ini_string(fp, "tls_client_ca", f->tls_client_ca);
		fprintf(fp, "tls_verify = %s\n",
		    config_tls_verify_name(f->tls_verify));
	}
	fprintf(fp, "accept_proxy = %s\n", config_proxy_name(f->accept_proxy));
	if (f->ntls == 0)
		fprintf(fp, "tls_passthrough = %s\n",
		    onoff(f->tls_passthrough));
	ini_string(fp, "tls_alpn", f->tls_alpn);
	for (size_t i = 0; i < f->nroutes; i++) {
		const struct route_conf *r = &f->routes[i];

		fprintf(fp, "route = %s%s%s%s%s%s\n", r->name ? r->name : "",
		    r->name ? " " : "", r->alpn ? "alpn:" : "",
		    r->alpn ? r->alpn : "", r->alpn ? " " : "",
		    cfg->backends[r->backend].name);
	}
}

/* Append to line (of size len, holding n characters); returns the new n,
 * which may pass len (the line is then cut, and too long anyway). */
static size_t
append(char *line, size_t len, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(line + (n < len ? n : len - 1), n < len ? len - n : 1,
	    fmt, ap);
	va_end(ap);
	return n + (k > 0 ? (size_t)k : 0);
}

static void
ini_server(FILE *fp, const struct backend_conf *b,
    const struct server_conf *s)
{
	char line[CONFIG_LINE_MAX + 2];
	size_t n = 0;

	/*
	 * Every option spelled out; but when that makes the line longer than
	 * a line may be, those at their defaults (weight=1, the backend's
	 * send_proxy) are left out, so that it reads back.
	 */
	for (int full = 1; full >= 0; full--) {
		n = append(line, sizeof(line), 0, "server = %s %s", s->name,
		    s->addr_text);
		if (full || s->weight != 1)
			n = append(line, sizeof(line), n, " weight=%u",
			    s->weight);
		if (full || s->send_proxy != b->send_proxy)
			n = append(line, sizeof(line), n, " send_proxy=%s",
			    config_proxy_name(s->send_proxy));
		if (s->max_connections != 0)
			n = append(line, sizeof(line), n,
			    " max_connections=%u", s->max_connections);
		if (s->backup)
			n = append(line, sizeof(line), n, " backup");
		if (s->tls)
			n = append(line, sizeof(line), n, " tls");
		if (s->tls_noverify)
			n = append(line, sizeof(line), n, " verify=none");
		else if (s->tls_verify != NULL)
			n = append(line, sizeof(line), n, " verify=%s",
			    s->tls_verify);
		if (s->tls_sni != NULL)
			n = append(line, sizeof(line), n, " sni=%s",
			    s->tls_sni);
		if (n <= CONFIG_LINE_MAX)
			break;
	}
	fprintf(fp, "%s\n", line);
}

/* A server line with resolve: options at their defaults left out, so
 * that the line is no longer than the one read. */
static void
ini_resolve(FILE *fp, const struct backend_conf *b,
    const struct resolve_conf *r)
{
	fprintf(fp, "server = %s %s:%u resolve", r->name, r->host, r->port);
	if (r->weight != 1)
		fprintf(fp, " weight=%u", r->weight);
	if (r->send_proxy != b->send_proxy)
		fprintf(fp, " send_proxy=%s", config_proxy_name(r->send_proxy));
	if (r->max_connections != 0)
		fprintf(fp, " max_connections=%u", r->max_connections);
	if (r->backup)
		fprintf(fp, " backup");
	fputc('\n', fp);
}

static void
ini_escaped(FILE *fp, const char *key, const char *v, size_t len)
{
	if (v == NULL)
		return;
	fprintf(fp, len > 0 && v[0] == ';' ? "%s=" : "%s = ", key);
	config_escape(fp, v, len);
	fputc('\n', fp);
}

static void
ini_backend(FILE *fp, const struct backend_conf *b)
{
	char d[DUR_LEN];

	fprintf(fp, "\n[backend %s]\n", b->name);
	fprintf(fp, "balance = %s\n", config_balance_name(b->balance));
	for (size_t i = 0; i < b->nservers; i++)
		ini_server(fp, b, &b->servers[i]);
	for (size_t i = 0; i < b->nresolves; i++)
		ini_resolve(fp, b, &b->resolves[i]);
	if (b->discover != NULL)
		fprintf(fp, "discover = dns-srv:%s\n", b->discover);
	fprintf(fp, "connect_timeout = %s\n", dur(b->connect_timeout_ms, d));
	fprintf(fp, "retries = %u\n", b->retries);
	fprintf(fp, "check = %s\n", config_check_name(b->check));
	fprintf(fp, "check_interval = %s\n", dur(b->check_interval_ms, d));
	fprintf(fp, "check_timeout = %s\n", dur(b->check_timeout_ms, d));
	fprintf(fp, "rise = %u\n", b->rise);
	fprintf(fp, "fall = %u\n", b->fall);
	fprintf(fp, "send_proxy = %s\n", config_proxy_name(b->send_proxy));
	ini_escaped(fp, "check_send", b->check_send, b->check_send_len);
	ini_escaped(fp, "check_expect", b->check_expect, b->check_expect_len);
	fprintf(fp, "max_fails = %u\n", b->max_fails);
	fprintf(fp, "fail_timeout = %s\n", dur(b->fail_timeout_ms, d));
}

static void
dump_ini(FILE *fp, const struct config *cfg)
{
	fputs("; ", fp);
	config_escape(fp, cfg->path, strlen(cfg->path));
	fprintf(fp, " as baton %s understood it, every default written out\n",
	    PACKAGE_VERSION);
	ini_global(fp, cfg);
	if (cfg->has_stats) {
		fprintf(fp, "\n[stats]\n");
		ini_string(fp, "listen", cfg->stats_listen);
		ini_string(fp, "token", cfg->stats_token);
	}
	for (size_t i = 0; i < cfg->nfrontends; i++)
		ini_frontend(fp, cfg, &cfg->frontends[i]);
	for (size_t i = 0; i < cfg->nbackends; i++)
		ini_backend(fp, &cfg->backends[i]);
}

/*
 * What is written must read back, and a line holds CONFIG_LINE_MAX
 * characters: a longer "key = value" loses the blanks around '=' (the
 * shortest a reader could have been given), a longer comment its tail.
 */
static void
put_line(FILE *fp, const char *line, size_t len)
{
	const char *eq;

	if (len > CONFIG_LINE_MAX && line[0] == ';')
		len = CONFIG_LINE_MAX;
	else if (len > CONFIG_LINE_MAX && (eq = memmem(line, len, " = ", 3)) !=
	    NULL) {
		size_t k = (size_t)(eq - line);

		fwrite(line, 1, k, fp);
		fputc('=', fp);
		line += k + 3;
		len -= k + 3;
	}
	fwrite(line, 1, len, fp);
	fputc('\n', fp);
}

void
config_dump_ini(FILE *fp, const struct config *cfg)
{
	char *text = NULL, *p, *nl;
	size_t size = 0;
	FILE *mem;

	if ((mem = open_memstream(&text, &size)) == NULL) {
		dump_ini(fp, cfg);	/* as it comes */
		return;
	}
	dump_ini(mem, cfg);
	if (fclose(mem) == EOF || text == NULL) {
		free(text);
		dump_ini(fp, cfg);
		return;
	}
	for (p = text; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		put_line(fp, p, (size_t)(nl - p));
	free(text);
}
