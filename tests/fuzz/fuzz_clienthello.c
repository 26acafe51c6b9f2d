/* fuzz_clienthello.c -- libFuzzer target: the ClientHello framing of
 * passed-through TLS (ours) and what OpenSSL's parse of it gives */
#include "ac_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hello.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A whole ClientHello at used bytes: shorter prefixes (some of them: all
 * would be quadratic) ask for more, a bound below used is too large.
 */
static void
check_done(const uint8_t *data, size_t used)
{
	size_t u2, step = used / 64 + 1;

	if (used < 9)
		abort();
	for (size_t k = 0; k < used; k += k + 8 >= used ? 1 : step)
		if (hello_frame(data, k, HELLO_MAX, &u2) != HELLO_MORE)
			abort();
	if (hello_frame(data, used, used - 1, &u2) != HELLO_BIG)
		abort();
}

/* What OpenSSL found is well formed. */
static void
check_parse(const uint8_t *data, size_t size)
{
	static void *ctx;
	struct hello_info hi;

	if (ctx == NULL && (ctx = hello_ctx_new()) == NULL)
		abort();
	if (hello_parse(ctx, data, size, &hi) == -1)
		return;
	if (memchr(hi.sni, '\0', sizeof(hi.sni)) == NULL ||
	    hi.alpn_len > sizeof(hi.alpn))
		abort();
	for (size_t i = 0; i < hi.alpn_len; i += 1 + (size_t)hi.alpn[i])
		if (hi.alpn[i] == 0 || i + 1 + hi.alpn[i] > hi.alpn_len)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t used = 0;
	int rc = hello_frame(data, size, HELLO_MAX, &used);
	uint8_t *more;

	switch (rc) {
	case HELLO_DONE:
		if (used > size)
			abort();
		check_done(data, used);
		check_parse(data, used);
		break;
	case HELLO_BAD:
		/* More bytes never make it right. */
		if ((more = malloc(size + 1)) == NULL)
			abort();
		memcpy(more, data, size);
		more[size] = 0x16;
		if (hello_frame(more, size + 1, HELLO_MAX, &used) != HELLO_BAD)
			abort();
		free(more);
		break;
	case HELLO_MORE:
		if (size >= HELLO_MAX)
			abort();
		break;
	case HELLO_BIG:
		break;
	default:
		abort();
	}
	return 0;
}
