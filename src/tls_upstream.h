/* tls_upstream.h -- TLS to the servers: client contexts and sessions */
#ifndef BATON_TLS_UPSTREAM_H
#define BATON_TLS_UPSTREAM_H

#include <stddef.h>

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
 * Start (*ssl NULL: first hdr[0..n), a PROXY header, in clear text, then
 * a new session in *ssl) or go on with the TLS handshake to server s over
 * fd: SNI sni=NAME, or the host name of its address (none for an IP
 * address), and the certificate checked for that name or address unless
 * verify=none. Returns 1 done, 0 when it wants the socket again, -1
 * failed: *why says why, errno is the socket's error or 0. *ssl is the
 * caller's to free either way.
 */
int	tls_upstream_handshake(const struct server_conf *s, int fd, SSL **ssl,
	    const char *hdr, size_t n, const char **why);

#endif
