/* route.c -- which backend a TLS connection goes to, by name and protocol */
#include "ac_config.h"

#include <strings.h>
#include <string.h>

#include "config.h"
#include "route.h"

int
route_name_match(const char *pattern, const char *name)
{
	size_t len, plen;

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (strncmp(pattern, "*.", 2) == 0) {
		pattern++;			/* ".suffix" */
		plen = strlen(pattern);
		return len > plen && name[len - plen - 1] != '.' &&
		    strncasecmp(name + len - plen, pattern, plen) == 0;
	}
	plen = strlen(pattern);
	return len == plen && strncasecmp(name, pattern, len) == 0;
}

/* Whether the ALPN wire-format list (len bytes) holds proto. */
static int
route_alpn_listed(const unsigned char *wire, size_t len, const char *proto)
{
	size_t plen = strlen(proto);

	if (wire == NULL)
		return 0;
	for (size_t i = 0; i < len; i += 1 + (size_t)wire[i])
		if (wire[i] == plen && i + 1 + plen <= len &&
		    memcmp(wire + i + 1, proto, plen) == 0)
			return 1;
	return 0;
}

size_t
route_pick(const struct frontend_conf *f, const char *sni,
    const unsigned char *alpn, size_t len)
{
	for (size_t i = 0; i < f->nroutes; i++) {
		const struct route_conf *r = &f->routes[i];

		if (r->name != NULL && !route_name_match(r->name, sni))
			continue;
		if (r->alpn != NULL && !route_alpn_listed(alpn, len, r->alpn))
			continue;
		return i;
	}
	return f->nroutes;
}

size_t
route_backend(const struct frontend_conf *f, size_t i)
{
	return i < f->nroutes ? f->routes[i].backend : f->backend;
}
