/* proxyproto.h -- the PROXY protocol (v1 text, v2 binary): encode, parse */
#ifndef BATON_PROXYPROTO_H
#define BATON_PROXYPROTO_H

#include <sys/socket.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX	107	/* the longest v1 line, CRLF included */
#define PROXY_V2_MAX	(16 + 216)	/* the longest v2 header we accept */
#define PROXY_HDR_MAX	PROXY_V2_MAX

/*
 * Write a header for a TCP connection from src to dst (both AF_INET or
 * both AF_INET6; otherwise v1 says UNKNOWN and v2 LOCAL). version is
 * PROXY_V1 or PROXY_V2 (config.h). Returns the length, 0 if size is short.
 */
size_t	proxy_encode(int version, const struct sockaddr *src,
	    const struct sockaddr *dst, char *buf, size_t size);

/* PROXY v2 TLVs for a client that came through TLS (HAProxy's
 * send-proxy-v2-ssl-cn); see proxy_encode_tls(). */
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04
#define PROXY_TLV_STR_MAX	255	/* longer strings are cut */
/* The longest header proxy_encode_tls() writes. */
#define PROXY_V2_TLS_MAX	(16 + 36 + 3 + PROXY_TLV_STR_MAX + 3 + 5 + \
	    3 * (3 + PROXY_TLV_STR_MAX))

struct proxy_tls {
	const char	*sni;		/* the client's server name, or NULL */
	const char	*version;	/* "TLSv1.3", or NULL */
	const char	*cipher;	/* the cipher's name, or NULL */
	const char	*cn;		/* the verified certificate's CN, or NULL */
	unsigned	 client;	/* PP2_CLIENT_* (PP2_CLIENT_SSL implied) */
	uint32_t	 verify;	/* 0: a certificate verified; else not */
};

/*
 * A v2 header as proxy_encode(PROXY_V2, ...) writes, followed by the TLVs
 * of tls: PP2_TYPE_AUTHORITY with the SNI (when there is one), then
 * PP2_TYPE_SSL (client flags, verify in network order) with the sub-TLVs
 * SSL_VERSION, SSL_CN and SSL_CIPHER, each only when set and non-empty.
 * A LOCAL header (src, dst not IP of one family) gets them too. Returns
 * the length, 0 if size is short (PROXY_V2_TLS_MAX is always enough).
 */
size_t	proxy_encode_tls(const struct sockaddr *src,
	    const struct sockaddr *dst, const struct proxy_tls *tls,
	    char *buf, size_t size);

/*
 * Parse a header at the start of buf[0..len). allowed is PROXY_V1,
 * PROXY_V2 or PROXY_ANY. Returns the header's length, 0 when more bytes
 * are needed, or -1 when it is not a valid header. On success src and dst
 * get the declared addresses, or ss_family AF_UNSPEC when the header
 * declares none (v1 UNKNOWN, v2 LOCAL, other families).
 */
ssize_t	proxy_parse(int allowed, const void *buf, size_t len,
	    struct sockaddr_storage *src, struct sockaddr_storage *dst);

#endif
