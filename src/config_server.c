/* config_server.c -- proxy.ini's server lines: NAME ADDRESS [options],
 * or NAME HOST:PORT resolve [options] */
#include "ac_config.h"

#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

static const char *const send_proxy_words[] = { "off", "v1", "v2", NULL };

/* tls, verify=CAFILE|none, sni=NAME: TLS to the server. */
static int
server_tls_option(struct parse *p, struct server_conf *s, const char *opt,
    size_t klen, const char *eq)
{
	const char *v = eq ? eq + 1 : "";

	if (klen == 3 && strncmp(opt, "tls", 3) == 0 && eq == NULL) {
		s->tls = 1;
		return 0;
	}
	if (klen == 6 && strncmp(opt, "verify", 6) == 0 && eq != NULL &&
	    *v != '\0') {
		free(s->tls_verify);
		s->tls_verify = NULL;
		s->tls_noverify = strcmp(v, "none") == 0;
		if (!s->tls_noverify)
			s->tls_verify = cfg_xstrdup(v);
		return 0;
	}
	if (klen == 3 && strncmp(opt, "sni", 3) == 0 && eq != NULL) {
		if (*v == '\0' || strlen(v) > 253 ||
		    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789.-") != strlen(v)) {
			cfg_perr(p, 0, "server: bad sni '%s' (expected a host "
			    "name)", v);
			return -1;
		}
		free(s->tls_sni);
		s->tls_sni = cfg_xstrdup(v);
		return 0;
	}
	cfg_perr(p, 0, "server: unknown option '%s'", opt);
	return -1;
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
		if (cfg_parse_uint(v, 1, CONFIG_MAX_WEIGHT, &s->weight) == 0)
			return 0;
		cfg_perr(p, 0, "server: bad weight '%s' (expected 1..%d)", v,
		    CONFIG_MAX_WEIGHT);
		return -1;
	}
	if (klen == 15 && strncmp(opt, "max_connections", 15) == 0 &&
	    eq != NULL) {
		if (cfg_parse_uint(v, 1, 10000000, &s->max_connections) == 0)
			return 0;
		cfg_perr(p, 0, "server: bad max_connections '%s' (expected "
		    "1..10000000)", v);
		return -1;
	}
	if (klen == 10 && strncmp(opt, "send_proxy", 10) == 0 && eq != NULL) {
		int i = cfg_parse_word(v, send_proxy_words);
		if (i != -1) {
			s->send_proxy = i;
			return 0;
		}
		cfg_perr(p, 0, "server: bad send_proxy '%s' (expected off | v1 | "
		    "v2)", v);
		return -1;
	}
	return server_tls_option(p, s, opt, klen, eq);
}

/* Whether name is taken in b, by a server or a resolve line. */
static int
server_name_taken(const struct backend_conf *b, const char *name)
{
	for (size_t i = 0; i < b->nservers; i++)
		if (strcmp(b->servers[i].name, name) == 0)
			return 1;
	for (size_t i = 0; i < b->nresolves; i++)
		if (strcmp(b->resolves[i].name, name) == 0)
			return 1;
	return 0;
}

/* A server's options, into s; "resolve" sets *resolve. */
static int
server_options(struct parse *p, struct server_conf *s, char **save,
    int *resolve)
{
	char *tok;
	int rc = 0;

	while ((tok = strtok_r(NULL, " \t", save)) != NULL) {
		if (strcmp(tok, "resolve") == 0)
			*resolve = 1;
		else if (server_option(p, s, tok) == -1)
			rc = -1;
	}
	return rc;
}

int
cfg_b_server(struct parse *p, const char *k, const char *v)
{
	struct backend_conf *b = &p->cfg->backends[p->cfg->nbackends - 1];
	struct server_conf tmp, *s;
	char *copy, *save, *name, *addr;
	char err[64];
	int rc = -1, resolve = 0;

	memset(&tmp, 0, sizeof(tmp));
	tmp.weight = 1;
	tmp.send_proxy = -1;
	tmp.line = p->line;
	copy = cfg_xstrdup(v);
	name = strtok_r(copy, " \t", &save);
	addr = strtok_r(NULL, " \t", &save);
	if (name == NULL || addr == NULL) {
		cfg_perr(p, 0, "%s: expected NAME ADDRESS [options]", k);
		goto out;
	}
	if (b->nservers >= CONFIG_MAX_SERVERS) {
		cfg_perr(p, 0, "%s: too many servers (at most %d)", k,
		    CONFIG_MAX_SERVERS);
		goto out;
	}
	if (!cfg_valid_name(name)) {
		cfg_perr(p, 0, "%s: bad name '%s' (letters, digits, _ . -)", k,
		    name);
		goto out;
	}
	if (server_name_taken(b, name)) {
		cfg_perr(p, 0, "%s: duplicate server name '%s'", k, name);
		goto out;
	}
	rc = server_options(p, &tmp, &save, &resolve);
	if (rc == 0 && !tmp.tls && (tmp.tls_verify != NULL ||
	    tmp.tls_noverify || tmp.tls_sni != NULL)) {
		cfg_perr(p, 0, "server: verify= and sni= need the tls option");
		rc = -1;
	}
	if (resolve) {
		if (tmp.tls) {
			cfg_perr(p, 0, "server: tls does not go with resolve "
			    "(yet)");
			rc = -1;
		} else if (cfg_resolve_add(p, b, &tmp, name, addr) == -1) {
			rc = -1;
		}
		free(tmp.tls_verify);
		free(tmp.tls_sni);
		goto out;
	}
	s = cfg_grow(&b->servers, &b->nservers, sizeof(*s));
	*s = tmp;
	s->name = cfg_xstrdup(name);
	s->addr_text = cfg_xstrdup(addr);
	if (addr_parse(addr, ADDR_RESOLVE, &s->addr, err, sizeof(err)) == -1) {
		cfg_perr(p, 0, "%s: bad address '%s' (%s)", k, addr, err);
		rc = -1;
	}
out:
	free(copy);
	return rc;
}
