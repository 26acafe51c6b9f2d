/* config_tls.c -- the TLS edge keys of a frontend: route, tls_passthrough,
 * tls_alpn; their checks against the whole file */
#include "ac_config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

#define NAME_MAX_LEN	253	/* a DNS name, without its final dot */

static struct frontend_conf *
cur_frontend(struct parse *p)
{
	return &p->cfg->frontends[p->cfg->nfrontends - 1];
}

/* A DNS name of letters, digits, '-' and '_' in labels of 1..63. */
static int
valid_dns_name(const char *s)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > NAME_MAX_LEN)
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' ||
		    *s == '_') {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0;
}

/* "name" or "*.suffix", valid; lowercased in place. */
static int
valid_name_pattern(char *s)
{
	for (char *c = s; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strncmp(s, "*.", 2) == 0)
		return valid_dns_name(s + 2);
	return valid_dns_name(s);
}

/* An ALPN protocol id: 1..255 printable bytes, no blank or comma. */
static int
valid_alpn(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == ',')
			return 0;
	return 1;
}

/* One condition of a route: "alpn:PROTO", "sni:NAME" or NAME. */
static int
route_cond(struct parse *p, struct route_conf *r, char *tok)
{
	char **slot;

	if (strncmp(tok, "alpn:", 5) == 0) {
		slot = &r->alpn;
		tok += 5;
		if (!valid_alpn(tok)) {
			cfg_perr(p, 0, "route: bad protocol 'alpn:%s'", tok);
			return -1;
		}
	} else {
		slot = &r->name;
		if (strncmp(tok, "sni:", 4) == 0)
			tok += 4;
		if (!valid_name_pattern(tok)) {
			cfg_perr(p, 0, "route: bad server name '%s' (a DNS name "
			    "or *.suffix)", tok);
			return -1;
		}
	}
	if (*slot != NULL) {
		cfg_perr(p, 0, "route: two %s conditions", slot == &r->alpn ?
		    "alpn" : "server name");
		return -1;
	}
	*slot = cfg_xstrdup(tok);
	return 0;
}

int
cfg_key_route(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);
	struct route_conf *r;
	char *copy, *tok, *save, *toks[4];
	size_t n = 0;
	int rc = -1;

	copy = cfg_xstrdup(v);
	for (tok = strtok_r(copy, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save), n++)
		if (n < 4)
			toks[n] = tok;
	if (n < 2 || n > 3) {
		cfg_perr(p, 0, "%s: expected PATTERN [alpn:PROTO] BACKEND", k);
		goto out;
	}
	if (f->nroutes >= CONFIG_MAX_ROUTES) {
		cfg_perr(p, 0, "%s: too many routes (at most %d)", k,
		    CONFIG_MAX_ROUTES);
		goto out;
	}
	r = cfg_grow(&f->routes, &f->nroutes, sizeof(*r));
	r->line = p->line;
	r->backend_name = cfg_xstrdup(toks[n - 1]);
	rc = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (route_cond(p, r, toks[i]) == -1)
			rc = -1;
out:
	free(copy);
	return rc;
}

int
cfg_key_tls_passthrough(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);

	if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
		cfg_perr(p, 0, "%s: bad value '%s' (expected off | on)", k, v);
		return -1;
	}
	f->tls_passthrough = strcmp(v, "on") == 0;
	f->tls_passthrough_line = p->line;
	return 0;
}

/* "h2, http/1.1": the server's preference, into ALPN's wire format. */
int
cfg_key_tls_alpn(struct parse *p, const char *k, const char *v)
{
	struct frontend_conf *f = cur_frontend(p);
	char *copy = cfg_xstrdup(v), *tok, *save;
	unsigned char *wire = cfg_xcalloc(1, strlen(v) + 1);
	size_t len = 0, n = 0;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (!valid_alpn(tok) || ++n > CONFIG_MAX_ALPN) {
			cfg_perr(p, 0, "%s: bad protocol list '%s' (up to %d "
			    "names, comma-separated)", k, v, CONFIG_MAX_ALPN);
			free(copy);
			free(wire);
			return -1;
		}
		wire[len++] = (unsigned char)strlen(tok);
		memcpy(wire + len, tok, strlen(tok));
		len += strlen(tok);
	}
	free(copy);
	if (len == 0) {
		cfg_perr(p, 0, "%s: empty protocol list", k);
		free(wire);
		return -1;
	}
	free(f->tls_alpn);
	free(f->alpn_wire);
	f->tls_alpn = cfg_xstrdup(v);
	f->alpn_wire = wire;
	f->alpn_wire_len = len;
	f->tls_alpn_line = p->line;
	return 0;
}

/* Whether the wire-format list holds proto. */
static int
alpn_listed(const unsigned char *wire, size_t len, const char *proto)
{
	size_t plen = strlen(proto);

	for (size_t i = 0; i < len; i += 1 + wire[i])
		if (wire[i] == plen && i + 1 + plen <= len &&
		    memcmp(wire + i + 1, proto, plen) == 0)
			return 1;
	return 0;
}

static void
route_check(struct parse *p, struct frontend_conf *f, struct route_conf *r)
{
	const struct config *cfg = p->cfg;
	size_t j;

	for (j = 0; j < cfg->nbackends; j++)
		if (strcmp(cfg->backends[j].name, r->backend_name) == 0)
			break;
	if (j == cfg->nbackends)
		cfg_errlist_add(p->errs, "%s:%d: [frontend %s] route: no "
		    "backend named '%s'", p->name, r->line, f->name,
		    r->backend_name);
	r->backend = j < cfg->nbackends ? j : 0;
	if (f->ntls == 0 && !f->tls_passthrough)
		cfg_errlist_add(p->errs, "%s:%d: [frontend %s] route needs "
		    "tls_cert or tls_passthrough = on", p->name, r->line,
		    f->name);
	else if (r->alpn != NULL && f->ntls > 0 && !alpn_listed(f->alpn_wire,
	    f->alpn_wire_len, r->alpn))
		cfg_errlist_add(p->errs, "%s:%d: [frontend %s] route: "
		    "'alpn:%s' is not in tls_alpn, so it never matches",
		    p->name, r->line, f->name, r->alpn);
}

void
cfg_check_tls_edge(struct parse *p, struct frontend_conf *f)
{
	if (f->tls_passthrough && f->ntls > 0)
		cfg_errlist_add(p->errs, "%s:%d: [frontend %s] tls_passthrough "
		    "and tls_cert exclude each other", p->name,
		    f->tls_passthrough_line, f->name);
	if (f->tls_alpn != NULL && f->ntls == 0)
		cfg_errlist_add(p->errs, "%s:%d: [frontend %s] tls_alpn needs "
		    "tls_cert (passed-through TLS is the server's to "
		    "negotiate)", p->name, f->tls_alpn_line, f->name);
	for (size_t i = 0; i < f->nroutes; i++)
		route_check(p, f, &f->routes[i]);
	f->route_base = p->cfg->nroute_slots;
	p->cfg->nroute_slots += f->nroutes + 1;
}

void
cfg_free_tls_edge(struct frontend_conf *f)
{
	for (size_t i = 0; i < f->nroutes; i++) {
		free(f->routes[i].name);
		free(f->routes[i].alpn);
		free(f->routes[i].backend_name);
	}
	free(f->routes);
	free(f->tls_alpn);
	free(f->alpn_wire);
}
