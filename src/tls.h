/* tls.h -- TLS termination on the client side: contexts and socket calls */
#ifndef BATON_TLS_H
#define BATON_TLS_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct proxy_tls;
typedef struct ssl_st SSL;

/*
 * Load every certificate chain and key of every TLS frontend of cfg, one
 * server context each (kept in frontend_conf.tls); the client's SNI picks
 * the certificate that names it, the first otherwise. The client contexts
 * of TLS servers too (tls_upstream_load()). Returns 0, or -1 after
 * logging FILE:LINE and why.
 */
int	tls_load(struct config *cfg);
/* Free the contexts tls_load() made. */
void	tls_unload(struct config *cfg);

/* A TLS session over fd for a frontend's certificates (its tls member);
 * NULL on failure. */
SSL	*tls_accept(void *site, int fd);
void	tls_free(SSL *ssl);
/*
 * Drive the handshake: 1 done, 0 wants the socket again (readable or
 * writable), -1 failed (errno EPROTO or the socket's error).
 */
int	tls_handshake(SSL *ssl);
/* After tls_handshake() returned -1: why, as OpenSSL says it (a failed
 * client certificate verification names its reason), or "". */
const char *tls_handshake_error(void);
/*
 * recv()/send() over TLS: bytes moved, 0 at the peer's end (read), or -1
 * with errno: EAGAIN when TLS must wait for the socket (*want_write set
 * when it waits to write), EPROTO on a TLS error.
 */
ssize_t	tls_read(SSL *ssl, void *buf, size_t len, int *want_write);
ssize_t	tls_write(SSL *ssl, const void *buf, size_t len, int *want_read);
/* Decrypted bytes waiting inside TLS: read them before the socket. */
int	tls_pending(SSL *ssl);
/*
 * What the PROXY v2 TLVs tell the server of the client's finished
 * handshake: SNI, version, cipher, certificate flags, the verification
 * result and, for a verified certificate, its subject's CN (kept in cn,
 * of size cnlen). The strings live as long as ssl (and cn).
 */
void	tls_proxy_info(SSL *ssl, struct proxy_tls *pt, char *cn, size_t cnlen);
/* Send close_notify (best effort, never blocks). */
void	tls_close_notify(SSL *ssl);

/* After the handshake: the server name the client sent, or NULL. */
const char	*tls_servername(SSL *ssl);
/* The negotiated protocol as a one-entry ALPN wire list in buf (size
 * bytes); its length, 0 when none was negotiated. */
size_t		 tls_alpn_wire(SSL *ssl, unsigned char *buf, size_t size);

/* TLS versions as the counters know them. */
enum tls_vers {
	TLS_V12,
	TLS_V13,
	TLS_VOTHER,
};
/* The negotiated version, an enum tls_vers. */
int		 tls_version(SSL *ssl);

#endif
