/* tls.c -- TLS termination on the client side: contexts and socket calls */
#include "ac_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "hello.h"
#include "log.h"
#include "proxyproto.h"
#include "tls.h"
#include "tls_upstream.h"

static void
tls_log_errors(const struct config *cfg, const struct frontend_conf *f,
    int line, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_error("%s:%d: [frontend %s] %s%s%s%s: %s", cfg->path, line,
	    f->name, what, file ? " '" : "", file ? file : "", file ? "'" : "",
	    e != 0 ? buf : "failed");
	ERR_clear_error();
}

/*
 * A TLS frontend's certificates: one context each, in configuration
 * order. The first is the default; the client's SNI picks another whose
 * certificate names it (subjectAltName or, without one, the CN, wildcards
 * included: OpenSSL's X509_check_host() decides).
 */
struct tls_site {
	SSL_CTX		**ctx;
	size_t		  n;
	unsigned char	 *alpn;		/* tls_alpn, wire format, or NULL */
	size_t		  alpn_len;
};

/* The client offers protocols: the first of ours it has (server order). */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct tls_site *site = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, site->alpn,
	    (unsigned)site->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;	/* none in common: go on */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Client certificates: trust tls_client_ca, name its CAs in the
 * CertificateRequest, and ask (optional) or insist (required). Session
 * resumption needs a session id context once peers are verified.
 */
static int
tls_ctx_client_ca(const struct config *cfg, const struct frontend_conf *f,
    SSL_CTX *ctx)
{
	STACK_OF(X509_NAME) *names;
	int mode = SSL_VERIFY_NONE;

	if (SSL_CTX_load_verify_locations(ctx, f->tls_client_ca, NULL) != 1) {
		tls_log_errors(cfg, f, f->tls_client_ca_line,
		    "tls_client_ca: cannot load", f->tls_client_ca);
		return -1;
	}
	if ((names = SSL_load_client_CA_file(f->tls_client_ca)) == NULL) {
		tls_log_errors(cfg, f, f->tls_client_ca_line,
		    "tls_client_ca: no CA certificate in", f->tls_client_ca);
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	if (f->tls_verify == TLS_VERIFY_OPTIONAL)
		mode = SSL_VERIFY_PEER;
	else if (f->tls_verify == TLS_VERIFY_REQUIRED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)f->name,
	    strlen(f->name) > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH :
	    (unsigned)strlen(f->name)) != 1) {
		tls_log_errors(cfg, f, f->tls_client_ca_line,
		    "tls_client_ca: session id context", NULL);
		return -1;
	}
	return 0;
}

static SSL_CTX *
tls_ctx_new(const struct config *cfg, const struct frontend_conf *f,
    const struct tls_pair *t)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_log_errors(cfg, f, f->line, "TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A client that just closes is at its end, as a plain one would be. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Buffers only while data flows; partial writes, moving buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
		tls_log_errors(cfg, f, t->cert_line, "tls_cert: cannot load",
		    t->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
		tls_log_errors(cfg, f, t->key_line, "tls_key: cannot load",
		    t->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_errors(cfg, f, t->key_line,
		    "tls_key does not match tls_cert", NULL);
		goto fail;
	}
	if (f->tls_client_ca != NULL && tls_ctx_client_ca(cfg, f, ctx) == -1)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The client named a server: switch to the certificate that names it. */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_site *site = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;	/* the default, first one */
	for (size_t i = 0; i < site->n; i++) {
		X509 *x = SSL_CTX_get0_certificate(site->ctx[i]);

		if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
			if (i > 0)
				SSL_set_SSL_CTX(ssl, site->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;	/* no match: the default */
}

static void
tls_site_free(struct tls_site *site)
{
	if (site == NULL)
		return;
	for (size_t i = 0; i < site->n; i++)
		SSL_CTX_free(site->ctx[i]);
	free(site->ctx);
	free(site->alpn);
	free(site);
}

static struct tls_site *
tls_site_new(const struct config *cfg, const struct frontend_conf *f)
{
	struct tls_site *site;

	if ((site = calloc(1, sizeof(*site))) == NULL ||
	    (site->ctx = calloc(f->ntls, sizeof(*site->ctx))) == NULL) {
		free(site);
		log_error("%s:%d: [frontend %s] TLS: out of memory", cfg->path,
		    f->line, f->name);
		return NULL;
	}
	for (; site->n < f->ntls; site->n++)
		if ((site->ctx[site->n] = tls_ctx_new(cfg, f,
		    &f->tls_pairs[site->n])) == NULL) {
			tls_site_free(site);
			return NULL;
		}
	if (site->n > 1) {
		SSL_CTX_set_tlsext_servername_callback(site->ctx[0],
		    tls_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(site->ctx[0], site);
	}
	if (f->alpn_wire != NULL) {
		if ((site->alpn = malloc(f->alpn_wire_len)) == NULL) {
			log_error("%s:%d: [frontend %s] TLS: out of memory",
			    cfg->path, f->line, f->name);
			tls_site_free(site);
			return NULL;
		}
		memcpy(site->alpn, f->alpn_wire, f->alpn_wire_len);
		site->alpn_len = f->alpn_wire_len;
		/* On every context: the SNI may switch to another. */
		for (size_t i = 0; i < site->n; i++)
			SSL_CTX_set_alpn_select_cb(site->ctx[i], tls_alpn_cb,
			    site);
	}
	return site;
}

int
tls_load(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		struct frontend_conf *f = &cfg->frontends[i];
		if (f->tls_passthrough && f->hello == NULL &&
		    (f->hello = hello_ctx_new()) == NULL) {
			tls_log_errors(cfg, f, f->tls_passthrough_line,
			    "tls_passthrough: ClientHello parser", NULL);
			tls_unload(cfg);
			return -1;
		}
		if (f->ntls == 0 || f->tls != NULL)
			continue;
		if ((f->tls = tls_site_new(cfg, f)) == NULL) {
			tls_unload(cfg);
			return -1;
		}
	}
	if (tls_upstream_load(cfg) == -1) {
		tls_unload(cfg);
		return -1;
	}
	return 0;
}

void
tls_unload(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		tls_site_free(cfg->frontends[i].tls);
		cfg->frontends[i].tls = NULL;
		hello_ctx_free(cfg->frontends[i].hello);
		cfg->frontends[i].hello = NULL;
	}
	tls_upstream_unload(cfg);
}

SSL *
tls_accept(void *site, int fd)
{
	SSL *ssl = SSL_new(((struct tls_site *)site)->ctx[0]);

	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

void
tls_free(SSL *ssl)
{
	SSL_free(ssl);
}

/* Map an SSL_get_error() result to errno; returns -1 or 0 (EOF). */
static ssize_t
tls_error(SSL *ssl, int rc, int *want_other, int other)
{
	int e = SSL_get_error(ssl, rc);

	*want_other = 0;
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		*want_other = e == other;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;		/* close_notify */
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || rc == 0)
			return 0;	/* EOF without close_notify */
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

/* Why the last handshake failed (workers are single-threaded). */
static char tls_why[160];

const char *
tls_handshake_error(void)
{
	return tls_why;
}

int
tls_handshake(SSL *ssl)
{
	unsigned long e;
	long v;
	int rc, want;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_do_handshake(ssl)) == 1)
		return 1;
	tls_why[0] = '\0';
	if ((v = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(tls_why, sizeof(tls_why), "certificate: %s",
		    X509_verify_cert_error_string(v));
	else if ((e = ERR_peek_error()) != 0)
		ERR_error_string_n(e, tls_why, sizeof(tls_why));
	if (tls_error(ssl, rc, &want, 0) == -1 && errno == EAGAIN)
		return 0;
	if (errno == 0 || errno == EAGAIN)
		errno = EPROTO;
	return -1;
}

ssize_t
tls_read(SSL *ssl, void *buf, size_t len, int *want_write)
{
	int rc;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) > 0) {
		*want_write = 0;
		return rc;
	}
	return tls_error(ssl, rc, want_write, SSL_ERROR_WANT_WRITE);
}

ssize_t
tls_write(SSL *ssl, const void *buf, size_t len, int *want_read)
{
	int rc;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_write(ssl, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) > 0) {
		*want_read = 0;
		return rc;
	}
	if (tls_error(ssl, rc, want_read, SSL_ERROR_WANT_READ) == 0)
		errno = EPIPE;		/* the peer is gone */
	return -1;
}

int
tls_pending(SSL *ssl)
{
	return SSL_pending(ssl);
}

void
tls_close_notify(SSL *ssl)
{
	ERR_clear_error();
	(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

const char *
tls_servername(SSL *ssl)
{
	return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
}

size_t
tls_alpn_wire(SSL *ssl, unsigned char *buf, size_t size)
{
	const unsigned char *p;
	unsigned len;

	SSL_get0_alpn_selected(ssl, &p, &len);
	if (p == NULL || len == 0 || len + 1 > size)
		return 0;
	buf[0] = (unsigned char)len;
	memcpy(buf + 1, p, len);
	return len + 1;
}

int
tls_version(SSL *ssl)
{
	switch (SSL_version(ssl)) {
	case TLS1_3_VERSION:
		return TLS_V13;
	case TLS1_2_VERSION:
		return TLS_V12;
	default:
		return TLS_VOTHER;
	}
}

void
tls_proxy_info(SSL *ssl, struct proxy_tls *pt, char *cn, size_t cnlen)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

	memset(pt, 0, sizeof(*pt));
	pt->sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	pt->version = SSL_get_version(ssl);
	pt->cipher = c != NULL ? SSL_CIPHER_get_name(c) : NULL;
	pt->client = PP2_CLIENT_SSL;
	pt->verify = 1;			/* no certificate: not verified */
	if (peer == NULL)
		return;
	pt->client |= PP2_CLIENT_CERT_SESS;
	if (!SSL_session_reused(ssl))
		pt->client |= PP2_CLIENT_CERT_CONN;
	pt->verify = (uint32_t)SSL_get_verify_result(ssl);
	if (pt->verify == X509_V_OK && cnlen > 0 &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
	    NID_commonName, cn, (int)(cnlen > INT32_MAX ? INT32_MAX : cnlen)) > 0)
		pt->cn = cn;
}
