/* tls_upstream.c -- TLS to the servers: client contexts and sessions */
#include "ac_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_upstream.h"

static void
tls_upstream_error(const struct config *cfg, const struct backend_conf *b,
    const struct server_conf *s, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_error("%s:%d: [backend %s] server %s: %s: %s", cfg->path, s->line,
	    b->name, s->name, what, e != 0 ? buf : "failed");
	ERR_clear_error();
}

/*
 * One client context per TLS server: TLS 1.2 at least, the peer verified
 * against verify=CAFILE, or the system's default CA store without one,
 * unless verify=none.
 */
static SSL_CTX *
tls_upstream_ctx(const struct config *cfg, const struct backend_conf *b,
    const struct server_conf *s)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_upstream_error(cfg, b, s, "TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (s->tls_noverify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if (s->tls_verify != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, s->tls_verify, NULL) !=
		    1) {
			char what[64 + CONFIG_LINE_MAX];

			snprintf(what, sizeof(what), "verify: cannot load '%s'",
			    s->tls_verify);
			tls_upstream_error(cfg, b, s, what);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_upstream_error(cfg, b, s, "the system's CA store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

int
tls_upstream_load(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		struct backend_conf *b = &cfg->backends[i];

		for (size_t j = 0; j < b->nservers; j++) {
			struct server_conf *s = &b->servers[j];

			if (!s->tls || s->tls_ctx != NULL)
				continue;
			if ((s->tls_ctx = tls_upstream_ctx(cfg, b, s)) == NULL) {
				tls_upstream_unload(cfg);
				return -1;
			}
		}
	}
	return 0;
}

void
tls_upstream_unload(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		for (size_t j = 0; j < cfg->backends[i].nservers; j++) {
			SSL_CTX_free(cfg->backends[i].servers[j].tls_ctx);
			cfg->backends[i].servers[j].tls_ctx = NULL;
		}
}

/*
 * The name the server's certificate must carry: sni=NAME, else the host
 * of its address. An IP address is checked as one and sent as no SNI.
 */
static int
tls_upstream_name(SSL *ssl, const struct server_conf *s)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	const char *t = s->addr_text, *colon = strrchr(t, ':');
	char host[256];
	unsigned char ip[16];
	size_t n;

	if (s->tls_sni != NULL) {
		if (SSL_set_tlsext_host_name(ssl, s->tls_sni) != 1)
			return -1;
		return s->tls_noverify ? 0 : SSL_set1_host(ssl, s->tls_sni) ==
		    1 ? 0 : -1;
	}
	n = colon != NULL ? (size_t)(colon - t) : strlen(t);
	if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
		t++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return s->tls_noverify ? 0 : -1;
	memcpy(host, t, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1)
		return s->tls_noverify ? 0 :
		    X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ? 0 : -1;
	if (SSL_set_tlsext_host_name(ssl, host) != 1)
		return -1;
	return s->tls_noverify ? 0 : SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

/* A client TLS session over fd (connected) to server s; NULL on failure. */
static SSL *
tls_upstream_new(const struct server_conf *s, int fd)
{
	SSL *ssl;

	if ((ssl = SSL_new(s->tls_ctx)) == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 || tls_upstream_name(ssl, s) == -1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

int
tls_upstream_handshake(const struct server_conf *s, int fd, SSL **ssl,
    const char *hdr, size_t n, const char **why)
{
	ssize_t k;

	if (*ssl == NULL) {
		/* A fresh connection's send buffer takes a header whole. */
		if (n > 0) {
			do
				k = send(fd, hdr, n, MSG_NOSIGNAL);
			while (k == -1 && errno == EINTR);
			if (k != (ssize_t)n) {
				if (k != -1)
					errno = 0;
				*why = "PROXY header not sent";
				return -1;
			}
		}
		if ((*ssl = tls_upstream_new(s, fd)) == NULL) {
			errno = 0;
			*why = "TLS: out of memory";
			return -1;
		}
	}
	switch (tls_handshake(*ssl)) {
	case 0:
		return 0;
	case 1:
		return 1;
	}
	errno = 0;
	*why = *tls_handshake_error() != '\0' ? tls_handshake_error() :
	    "TLS handshake failed";
	return -1;
}
