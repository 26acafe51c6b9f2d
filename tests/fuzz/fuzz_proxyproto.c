/* fuzz_proxyproto.c -- libFuzzer target: the PROXY protocol parser (v1, v2) */
#include "ac_config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proxyproto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The address part of a sockaddr the parser filled, for comparisons. */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a;
		const struct sockaddr_in *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a;
		const struct sockaddr_in6 *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return 1;
}

/*
 * A header the parser accepted must be whole at exactly n bytes: every
 * shorter prefix asks for more (a session reads it in pieces, and must
 * not reject a valid header for the way TCP cut it up).
 */
static void
check_prefixes(int allowed, const uint8_t *buf, size_t n)
{
	struct sockaddr_storage s, d;

	for (size_t k = 0; k < n; k++)
		if (proxy_parse(allowed, buf, k, &s, &d) != 0)
			abort();
}

/* What the parser read, written again and parsed, gives the same. */
static void
check_roundtrip(int version, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst)
{
	struct sockaddr_storage s, d;
	char buf[PROXY_HDR_MAX];
	size_t n;

	if (src->ss_family != AF_INET && src->ss_family != AF_INET6)
		return;
	n = proxy_encode(version, (const void *)src, (const void *)dst, buf,
	    sizeof(buf));
	if (n == 0)
		abort();
	if (proxy_parse(PROXY_ANY, buf, n, &s, &d) != (ssize_t)n ||
	    !same_addr(src, &s) || !same_addr(dst, &d))
		abort();
}

/* First byte: which versions are allowed; the rest: what the client sent. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int modes[] = { PROXY_V1, PROXY_V2, PROXY_ANY };
	struct sockaddr_storage src, dst;
	uint8_t *buf;
	ssize_t n;
	int allowed;

	if (size < 1)
		return 0;
	allowed = modes[data[0] % 3];
	size--;
	/* An exact copy, so ASan sees any read past what arrived. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data + 1, size);
	n = proxy_parse(allowed, buf, size, &src, &dst);
	if (n < -1 || n > (ssize_t)size || n > PROXY_HDR_MAX)
		abort();
	if (n > 0) {
		check_prefixes(allowed, buf, (size_t)n);
		check_roundtrip(PROXY_V1, &src, &dst);
		check_roundtrip(PROXY_V2, &src, &dst);
	}
	free(buf);
	return 0;
}
