/* config_dns.c -- proxy.ini keys of DNS discovery: resolve servers,
 * discover, resolve_interval, resolvers */
#include "ac_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

#define RESOLVE_INTERVAL_MIN	1000		/* 1s */
#define RESOLVE_INTERVAL_MAX	(24 * 3600 * 1000)
#define RESOLVERS_MAX		8

int
cfg_g_resolve_interval(struct parse *p, const char *k, const char *v)
{
	unsigned ms;

	if (config_parse_duration(v, &ms) == -1 || ms < RESOLVE_INTERVAL_MIN ||
	    ms > RESOLVE_INTERVAL_MAX) {
		cfg_perr(p, 0, "%s: bad duration '%s' (expected 1s..24h)", k, v);
		return -1;
	}
	p->cfg->resolve_interval_ms = ms;
	return 0;
}

/*
 * "IP:PORT [IP:PORT...]" (or [IPv6]:PORT), numeric: kept as c-ares's
 * comma-separated list.
 */
int
cfg_g_resolvers(struct parse *p, const char *k, const char *v)
{
	char *copy = cfg_xstrdup(v), *tok, *save, err[64];
	char out[CONFIG_LINE_MAX + 2] = "";
	struct addr a;
	int n = 0, rc = 0;

	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if (addr_parse(tok, 0, &a, err, sizeof(err)) == -1) {
			cfg_perr(p, 0, "%s: bad address '%s' (%s; expected "
			    "IP:PORT)", k, tok, err);
			rc = -1;
			continue;
		}
		if (++n > RESOLVERS_MAX) {
			cfg_perr(p, 0, "%s: too many (at most %d)", k,
			    RESOLVERS_MAX);
			rc = -1;
			break;
		}
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
		    n > 1 ? "," : "", tok);
	}
	free(copy);
	if (rc == 0 && n == 0) {
		cfg_perr(p, 0, "%s: no address", k);
		rc = -1;
	}
	if (rc == 0) {
		free(p->cfg->resolvers);
		p->cfg->resolvers = cfg_xstrdup(out);
	}
	return rc;
}

/* A DNS name: letters, digits, '-', '_' and dots, 1..253 characters. */
static int
cfg_dns_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-' || s[i] == '_' || (s[i] == '.' &&
		    s[i + 1] != '.')))
			return 0;
	return 1;
}

int
cfg_b_discover(struct parse *p, const char *k, const char *v)
{
	struct backend_conf *b = &p->cfg->backends[p->cfg->nbackends - 1];
	static const char pre[] = "dns-srv:";

	if (strncmp(v, pre, sizeof(pre) - 1) != 0 ||
	    !cfg_dns_name(v + sizeof(pre) - 1)) {
		cfg_perr(p, 0, "%s: bad value '%s' (expected "
		    "dns-srv:_service._tcp.DOMAIN)", k, v);
		return -1;
	}
	b->discover = cfg_xstrdup(v + sizeof(pre) - 1);
	b->discover_line = p->line;
	return 0;
}

int
cfg_resolve_add(struct parse *p, struct backend_conf *b,
    const struct server_conf *opts, const char *name, const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	struct resolve_conf *r;
	unsigned port;
	char *host;

	if (strlen(name) > CONFIG_RESOLVE_NAME_MAX) {
		cfg_perr(p, 0, "server: name '%s' too long for resolve (at "
		    "most %d characters)", name, CONFIG_RESOLVE_NAME_MAX);
		return -1;
	}
	if (colon == NULL || cfg_parse_uint(colon + 1, 1, 65535, &port) ==
	    -1) {
		cfg_perr(p, 0, "server: bad address '%s' (expected HOST:PORT "
		    "with resolve)", hostport);
		return -1;
	}
	host = cfg_xstrdup(hostport);
	host[colon - hostport] = '\0';
	if (!cfg_dns_name(host)) {
		cfg_perr(p, 0, "server: bad host name '%s' (resolve)", host);
		free(host);
		return -1;
	}
	r = cfg_grow(&b->resolves, &b->nresolves, sizeof(*r));
	r->name = cfg_xstrdup(name);
	r->host = host;
	r->port = port;
	r->weight = opts->weight;
	r->backup = opts->backup;
	r->send_proxy = opts->send_proxy;
	r->max_connections = opts->max_connections;
	r->line = opts->line;
	return 0;
}
