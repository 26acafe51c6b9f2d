/* proxyproto.h -- the PROXY protocol (v1 text, v2 binary): encode, parse */
#ifndef BATON_PROXYPROTO_H
#define BATON_PROXYPROTO_H

#include <sys/socket.h>
#include <sys/types.h>
#include <stddef.h>

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
