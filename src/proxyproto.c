/* proxyproto.c -- the PROXY protocol (v1 text, v2 binary): encode, parse */
#include "ac_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proxyproto.h"

static const char v2sig[12] = "\r\n\r\n\0\r\nQUIT\n";

static int
proxy_same_ip_family(const struct sockaddr *a, const struct sockaddr *b)
{
	return a != NULL && b != NULL && a->sa_family == b->sa_family &&
	    (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

static size_t
proxy_encode_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char *buf, size_t size)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int n;

	if (!proxy_same_ip_family(src, dst)) {
		n = snprintf(buf, size, "PROXY UNKNOWN\r\n");
	} else if (src->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)src;
		const struct sockaddr_in *y = (const void *)dst;
		inet_ntop(AF_INET, &x->sin_addr, s, sizeof(s));
		inet_ntop(AF_INET, &y->sin_addr, d, sizeof(d));
		n = snprintf(buf, size, "PROXY TCP4 %s %s %u %u\r\n", s, d,
		    ntohs(x->sin_port), ntohs(y->sin_port));
	} else {
		const struct sockaddr_in6 *x = (const void *)src;
		const struct sockaddr_in6 *y = (const void *)dst;
		inet_ntop(AF_INET6, &x->sin6_addr, s, sizeof(s));
		inet_ntop(AF_INET6, &y->sin6_addr, d, sizeof(d));
		n = snprintf(buf, size, "PROXY TCP6 %s %s %u %u\r\n", s, d,
		    ntohs(x->sin6_port), ntohs(y->sin6_port));
	}
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

static size_t
proxy_encode_v2(const struct sockaddr *src, const struct sockaddr *dst,
    char *buf, size_t size)
{
	unsigned char *p = (unsigned char *)buf;
	size_t alen = 0;
	int same = proxy_same_ip_family(src, dst);

	if (size < 16 + (!same ? 0 : src->sa_family == AF_INET ? 12 : 36))
		return 0;
	memcpy(p, v2sig, sizeof(v2sig));
	p[12] = 0x21;			/* version 2, PROXY */
	if (!same) {
		p[12] = 0x20;		/* version 2, LOCAL */
		p[13] = 0x00;		/* UNSPEC */
	} else if (src->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)src;
		const struct sockaddr_in *y = (const void *)dst;
		p[13] = 0x11;		/* TCP over IPv4 */
		memcpy(p + 16, &x->sin_addr, 4);
		memcpy(p + 20, &y->sin_addr, 4);
		memcpy(p + 24, &x->sin_port, 2);
		memcpy(p + 26, &y->sin_port, 2);
		alen = 12;
	} else {
		const struct sockaddr_in6 *x = (const void *)src;
		const struct sockaddr_in6 *y = (const void *)dst;
		p[13] = 0x21;		/* TCP over IPv6 */
		memcpy(p + 16, &x->sin6_addr, 16);
		memcpy(p + 32, &y->sin6_addr, 16);
		memcpy(p + 48, &x->sin6_port, 2);
		memcpy(p + 50, &y->sin6_port, 2);
		alen = 36;
	}
	p[14] = (unsigned char)(alen >> 8);
	p[15] = (unsigned char)alen;
	return 16 + alen;
}

/* Append a TLV of type with n bytes of v at p[*off], if it fits in size. */
static int
proxy_tlv(unsigned char *p, size_t size, size_t *off, int type,
    const void *v, size_t n)
{
	if (n > 0xffff || size - *off < 3 + n)
		return -1;
	p[*off] = (unsigned char)type;
	p[*off + 1] = (unsigned char)(n >> 8);
	p[*off + 2] = (unsigned char)n;
	if (n > 0)
		memcpy(p + *off + 3, v, n);
	*off += 3 + n;
	return 0;
}

/* A string TLV, cut at PROXY_TLV_STR_MAX; nothing for NULL or "". */
static int
proxy_tlv_str(unsigned char *p, size_t size, size_t *off, int type,
    const char *v)
{
	size_t n;

	if (v == NULL || (n = strnlen(v, PROXY_TLV_STR_MAX)) == 0)
		return 0;
	return proxy_tlv(p, size, off, type, v, n);
}

size_t
proxy_encode_tls(const struct sockaddr *src, const struct sockaddr *dst,
    const struct proxy_tls *tls, char *buf, size_t size)
{
	unsigned char *p = (unsigned char *)buf;
	size_t off, ssl_at, len;

	if ((off = proxy_encode_v2(src, dst, buf, size)) == 0)
		return 0;
	if (proxy_tlv_str(p, size, &off, PP2_TYPE_AUTHORITY, tls->sni) == -1)
		return 0;
	ssl_at = off;
	if (size - off < 3 + 5)
		return 0;
	p[off + 3] = (unsigned char)(PP2_CLIENT_SSL | (tls->client &
	    (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS)));
	p[off + 4] = (unsigned char)(tls->verify >> 24);
	p[off + 5] = (unsigned char)(tls->verify >> 16);
	p[off + 6] = (unsigned char)(tls->verify >> 8);
	p[off + 7] = (unsigned char)tls->verify;
	off += 3 + 5;
	if (proxy_tlv_str(p, size, &off, PP2_SUBTYPE_SSL_VERSION,
	    tls->version) == -1 ||
	    proxy_tlv_str(p, size, &off, PP2_SUBTYPE_SSL_CN, tls->cn) == -1 ||
	    proxy_tlv_str(p, size, &off, PP2_SUBTYPE_SSL_CIPHER,
	    tls->cipher) == -1)
		return 0;
	len = off - ssl_at - 3;
	p[ssl_at] = PP2_TYPE_SSL;
	p[ssl_at + 1] = (unsigned char)(len >> 8);
	p[ssl_at + 2] = (unsigned char)len;
	len = off - 16;			/* addresses and TLVs */
	p[14] = (unsigned char)(len >> 8);
	p[15] = (unsigned char)len;
	return off;
}

size_t
proxy_encode(int version, const struct sockaddr *src,
    const struct sockaddr *dst, char *buf, size_t size)
{
	if (version == PROXY_V1)
		return proxy_encode_v1(src, dst, buf, size);
	if (version == PROXY_V2)
		return proxy_encode_v2(src, dst, buf, size);
	return 0;
}

static int
proxy_v1_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	/* decimal, no sign, no leading zero but for "0" itself */
	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

static int
proxy_v1_addr(int family, const char *a, const char *port,
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;
		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, a, &sin->sin_addr) != 1)
			return -1;
		return proxy_v1_port(port, &sin->sin_port);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;
	sin6->sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) != 1)
		return -1;
	return proxy_v1_port(port, &sin6->sin6_port);
}

static ssize_t
proxy_parse_v1(const char *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst)
{
	char line[PROXY_V1_MAX + 1], *f[7], *save, *tok;
	const char *crlf;
	size_t n, k = 0, room = PROXY_V1_MAX - 1;
	int family, spaced;

	/* The whole line, CRLF included, is at most 107 bytes. */
	crlf = memchr(buf, '\r', len < room ? len : room);
	if (crlf == NULL)
		return len >= room ? -1 : 0;
	n = (size_t)(crlf - buf);
	if (n + 1 >= len)
		return 0;		/* the \n is still to come */
	if (crlf[1] != '\n')
		return -1;
	memcpy(line, buf, n);
	line[n] = '\0';
	if (memchr(line, '\0', n) != NULL)
		return -1;
	/* Fields are separated by exactly one space. */
	spaced = n > 0 && (strstr(line, "  ") != NULL || line[n - 1] == ' ');
	for (tok = strtok_r(line, " ", &save); tok != NULL && k < 7;
	    tok = strtok_r(NULL, " ", &save))
		f[k++] = tok;
	if (k < 2 || tok != NULL || strcmp(f[0], "PROXY") != 0)
		return -1;
	if (strcmp(f[1], "UNKNOWN") == 0) {
		src->ss_family = dst->ss_family = AF_UNSPEC;
		return (ssize_t)(n + 2);
	}
	if (k != 6 || spaced)
		return -1;
	if (strcmp(f[1], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		family = AF_INET6;
	else
		return -1;
	if (proxy_v1_addr(family, f[2], f[4], src) == -1 ||
	    proxy_v1_addr(family, f[3], f[5], dst) == -1)
		return -1;
	return (ssize_t)(n + 2);
}

static ssize_t
proxy_parse_v2(const unsigned char *p, size_t len,
    struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	size_t alen, total;

	if (len < 16)
		return 0;
	if ((p[12] & 0xf0) != 0x20 || (p[12] & 0x0f) > 1)
		return -1;		/* version 2; LOCAL or PROXY */
	alen = ((size_t)p[14] << 8) | p[15];
	total = 16 + alen;
	if (total > PROXY_V2_MAX)
		return -1;
	if (len < total)
		return 0;
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	if ((p[12] & 0x0f) == 0) {
		src->ss_family = dst->ss_family = AF_UNSPEC;	/* LOCAL */
	} else if (p[13] == 0x11 && alen >= 12) {
		struct sockaddr_in *s = (void *)src, *d = (void *)dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p + 16, 4);
		memcpy(&d->sin_addr, p + 20, 4);
		memcpy(&s->sin_port, p + 24, 2);
		memcpy(&d->sin_port, p + 26, 2);
	} else if (p[13] == 0x21 && alen >= 36) {
		struct sockaddr_in6 *s = (void *)src, *d = (void *)dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p + 16, 16);
		memcpy(&d->sin6_addr, p + 32, 16);
		memcpy(&s->sin6_port, p + 48, 2);
		memcpy(&d->sin6_port, p + 50, 2);
	} else if (p[13] == 0x11 || p[13] == 0x21) {
		return -1;		/* too short for its family */
	} else {
		src->ss_family = dst->ss_family = AF_UNSPEC;	/* UDP, unix */
	}
	return (ssize_t)total;
}

ssize_t
proxy_parse(int allowed, const void *buf, size_t len,
    struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	const char *p = buf;
	size_t k;

	if (allowed != PROXY_V2) {
		/* As far as we have it, does it start like "PROXY "? */
		k = len < 6 ? len : 6;
		if (memcmp(p, "PROXY ", k) == 0)
			return k < 6 ? 0 : proxy_parse_v1(p, len, src, dst);
	}
	if (allowed != PROXY_V1) {
		k = len < sizeof(v2sig) ? len : sizeof(v2sig);
		if (memcmp(p, v2sig, k) == 0)
			return k < sizeof(v2sig) ? 0 :
			    proxy_parse_v2(buf, len, src, dst);
	}
	return -1;
}
