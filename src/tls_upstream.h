/* tls_upstream.h -- TLS to the servers: client contexts and sessions */
#ifndef BATON_TLS_UPSTREAM_H
#define BATON_TLS_UPSTREAM_H

struct config;
struct server_conf;
typedef struct ssl_st SSL;

/*
 * A client context for every server with the tls option (kept in its
 * tls_ctx): verifying against its verify=CAFILE, the system's CA store
 * without one, or nothing with verify=none. Returns 0, or -1 after
 * logging FILE:LINE and why.
 */
int	tls_upstream_load(struct config *cfg);
/* Free the contexts tls_upstream_load() made. */
void	tls_upstream_unload(struct config *cfg);
/*
 * A client TLS session over fd (connected) to server s: SNI sni=NAME, or
 * the host name of its address (none for an IP address), and the
 * certificate checked for that name or address. NULL on failure. Drive
 * it with tls_handshake(), move bytes with tls_read()/tls_write().
 */
SSL	*tls_upstream_new(const struct server_conf *s, int fd);

#endif
