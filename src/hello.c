/* hello.c -- a passed-through TLS client's ClientHello: read whole without
 * terminating TLS, and the server name and protocols it asks for */
#include "ac_config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hello.h"

#define REC_HDR		5
#define REC_MAX		16384	/* a TLSPlaintext fragment, 2^14 */
#define REC_HANDSHAKE	22
#define HS_CLIENT_HELLO	1

/* Whether the first n (< REC_HDR) bytes of a record header can be one. */
static int
hello_header_ok(const unsigned char *h, size_t n)
{
	return (n < 1 || h[0] == REC_HANDSHAKE) && (n < 2 || h[1] == 3) &&
	    (n < 3 || h[2] <= 4);
}

int
hello_frame(const unsigned char *buf, size_t len, size_t max, size_t *used)
{
	unsigned char hs[4];	/* the handshake message's header */
	size_t off = 0, seen = 0, need = 0, rec, avail;

	for (;;) {
		if (off + REC_HDR > len) {
			if (!hello_header_ok(buf + off, len - off))
				return HELLO_BAD;
			return off + REC_HDR > max || len >= max ? HELLO_BIG :
			    HELLO_MORE;
		}
		rec = (size_t)buf[off + 3] << 8 | buf[off + 4];
		if (!hello_header_ok(buf + off, REC_HDR - 2) || rec == 0 ||
		    rec > REC_MAX)
			return HELLO_BAD;
		avail = len - off - REC_HDR < rec ? len - off - REC_HDR : rec;
		for (size_t i = 0; i < avail && seen + i < sizeof(hs); i++)
			hs[seen + i] = buf[off + REC_HDR + i];
		seen += avail;
		if (seen >= 1 && hs[0] != HS_CLIENT_HELLO)
			return HELLO_BAD;
		if (seen >= sizeof(hs) && need == 0) {
			need = sizeof(hs) + ((size_t)hs[1] << 16 |
			    (size_t)hs[2] << 8 | hs[3]);
			if (need == sizeof(hs))
				return HELLO_BAD;	/* an empty body */
			if (need + REC_HDR > max)
				return HELLO_BIG;	/* known before it comes */
		}
		if (off + REC_HDR + rec > max)
			return HELLO_BIG;
		if (avail < rec)
			return HELLO_MORE;
		off += REC_HDR + rec;
		if (need != 0 && seen >= need) {
			*used = off;
			return HELLO_DONE;
		}
	}
}

/* The protocol list of an ALPN extension: kept when well formed. */
static void
hello_keep_alpn(struct hello_info *hi, const unsigned char *p, size_t len)
{
	size_t list;

	if (len < 2 || (list = (size_t)p[0] << 8 | p[1]) != len - 2)
		return;
	p += 2;
	for (size_t i = 0; i < list; i += 1 + (size_t)p[i])
		if (p[i] == 0 || i + 1 + p[i] > list)
			return;
	/* Keep whole entries only. */
	for (size_t i = 0; i < list && i + 1 + p[i] <= sizeof(hi->alpn);
	    i += 1 + (size_t)p[i])
		hi->alpn_len = i + 1 + p[i];
	memcpy(hi->alpn, p, hi->alpn_len);
}

/* OpenSSL has a ClientHello: note the offered protocols. */
static int
hello_early_cb(SSL *ssl, int *alert, void *arg)
{
	struct hello_info *hi = SSL_get_app_data(ssl);
	const unsigned char *p;
	size_t len;

	(void)alert;
	(void)arg;
	hi->seen = 1;
	if (SSL_client_hello_get0_ext(ssl,
	    TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &len) == 1)
		hello_keep_alpn(hi, p, len);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* OpenSSL has read the server name (or its absence): all we need. */
static int
hello_name_cb(SSL *ssl, int *alert, void *arg)
{
	struct hello_info *hi = SSL_get_app_data(ssl);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)arg;
	if (name != NULL && strlen(name) < sizeof(hi->sni))
		strcpy(hi->sni, name);
	*alert = SSL_AD_INTERNAL_ERROR;
	return SSL_TLSEXT_ERR_ALERT_FATAL;	/* stop: nothing more to do */
}

void *
hello_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	/* Every client the servers behind might take, old ones too. */
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, 0);
	SSL_CTX_set_client_hello_cb(ctx, hello_early_cb, NULL);
	SSL_CTX_set_tlsext_servername_callback(ctx, hello_name_cb);
	return ctx;
}

void
hello_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

int
hello_parse(void *ctx, const unsigned char *buf, size_t len,
    struct hello_info *out)
{
	BIO *rb, *wb;
	SSL *ssl;

	memset(out, 0, sizeof(*out));
	if (len > HELLO_MAX || (ssl = SSL_new(ctx)) == NULL)
		return -1;
	rb = BIO_new_mem_buf(buf, (int)len);
	wb = BIO_new(BIO_s_null());
	if (rb == NULL || wb == NULL) {
		BIO_free(rb);
		BIO_free(wb);
		SSL_free(ssl);
		return -1;
	}
	SSL_set_bio(ssl, rb, wb);
	SSL_set_app_data(ssl, out);
	SSL_set_accept_state(ssl);
	(void)SSL_do_handshake(ssl);	/* fails: we stop it */
	ERR_clear_error();
	SSL_free(ssl);
	return out->seen ? 0 : -1;
}

int
hello_read(struct hello_buf *hb, int fd, const char **why)
{
	size_t used;
	ssize_t n;
	int rc;

	if (hb->data == NULL && (hb->data = malloc(HELLO_MAX)) == NULL) {
		*why = "out of memory";
		return HELLO_BAD;
	}
	for (;;) {
		n = recv(fd, hb->data + hb->len, HELLO_MAX - hb->len, 0);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return HELLO_MORE;
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			*why = hb->len == 0 && n == 0 ? "closed before any byte" :
			    "closed before its whole ClientHello";
			return HELLO_BAD;
		}
		hb->len += (size_t)n;
		rc = hello_frame(hb->data, hb->len, HELLO_MAX, &used);
		if (rc == HELLO_BAD)
			*why = "not a TLS ClientHello";
		else if (rc == HELLO_BIG)
			*why = "ClientHello too large";
		if (rc != HELLO_MORE)
			return rc;
	}
}

void
hello_buf_free(struct hello_buf *hb)
{
	free(hb->data);
	hb->data = NULL;
	hb->len = 0;
}
