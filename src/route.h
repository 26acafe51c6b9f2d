/* route.h -- which backend a TLS connection goes to, by name and protocol */
#ifndef BATON_ROUTE_H
#define BATON_ROUTE_H

#include <stddef.h>

struct frontend_conf;

/*
 * Whether the server name matches pattern: the same name, or for
 * "*.suffix" any name of one or more labels under suffix; ASCII case and
 * one final dot of name are ignored. A NULL name matches nothing.
 */
int	route_name_match(const char *pattern, const char *name);
/*
 * The first of f's routes whose conditions hold for the client's server
 * name sni (NULL: none sent) and the protocols in alpn (ALPN wire format,
 * len bytes: the negotiated one, or those a passed-through client offers):
 * its index, or f->nroutes for the frontend's own backend.
 */
size_t	route_pick(const struct frontend_conf *f, const char *sni,
	    const unsigned char *alpn, size_t len);
/* The backend index of route i of f (f->nroutes: the default). */
size_t	route_backend(const struct frontend_conf *f, size_t i);

#endif
