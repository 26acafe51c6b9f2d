/* check_sni.c -- unit tests for the TLS edge: route keys and matching,
 * ClientHello framing (our code) and parsing (OpenSSL's) */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config.h"
#include "hello.h"
#include "route.h"
#include "config_helpers.h"

#define BACKENDS \
	"[backend app]\nserver = a1 127.0.0.1:8000\n" \
	"[backend b2]\nserver = a1 127.0.0.1:8001\n" \
	"[backend b3]\nserver = a1 127.0.0.1:8002\n"

/* ------------------------------------------------------------ config */

START_TEST(test_route_keys)
{
	struct config *cfg = load_ok(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8443\n"
	    "backend = app\n"
	    "tls_passthrough = on\n"
	    "route = A.Example.COM b2\n"
	    "route = sni:*.example.com   alpn:h2 b3\n"
	    "route = alpn:http/1.1 b2\n"
	    "[frontend plain]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = b2\n"
	    BACKENDS);
	const struct frontend_conf *f = &cfg->frontends[0];

	ck_assert_int_eq(f->tls_passthrough, 1);
	ck_assert_uint_eq(f->nroutes, 3);
	ck_assert_str_eq(f->routes[0].name, "a.example.com");
	ck_assert_ptr_null(f->routes[0].alpn);
	ck_assert_uint_eq(f->routes[0].backend, 1);
	ck_assert_int_eq(f->routes[0].line, 5);
	ck_assert_str_eq(f->routes[1].name, "*.example.com");
	ck_assert_str_eq(f->routes[1].alpn, "h2");
	ck_assert_uint_eq(f->routes[1].backend, 2);
	ck_assert_ptr_null(f->routes[2].name);
	ck_assert_str_eq(f->routes[2].alpn, "http/1.1");
	/* Route slots: web's three and its default, then plain's default. */
	ck_assert_uint_eq(f->route_base, 0);
	ck_assert_uint_eq(cfg->frontends[1].route_base, 4);
	ck_assert_uint_eq(cfg->nroute_slots, 5);
	ck_assert_int_eq(cfg->frontends[1].tls_passthrough, 0);
	config_free(cfg);

	cfg = load_ok("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\ntls_cert = a.pem\ntls_key = a.key\n"
	    "tls_alpn = h2 ,http/1.1\nroute = alpn:h2 b2\n" BACKENDS);
	f = &cfg->frontends[0];
	ck_assert_str_eq(f->tls_alpn, "h2 ,http/1.1");
	ck_assert_uint_eq(f->alpn_wire_len, 12);
	ck_assert_mem_eq(f->alpn_wire, "\x02h2\x08http/1.1", 12);
	config_free(cfg);
}
END_TEST

START_TEST(test_route_errors)
{
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\ntls_passthrough = on\n"
	    "route = a.test nope\n"
	    "route = bad..name app\n"
	    "route = a.test\n"
	    "route = a.test b.test app\n"
	    "route = alpn: app\n"
	    "route = x y z w\n"
	    "tls_passthrough = maybe\n" BACKENDS,
	    "t.ini:6: [frontend web] route: bad server name 'bad..name'",
	    "t.ini:7: [frontend web] route: expected PATTERN [alpn:PROTO] "
	    "BACKEND",
	    "t.ini:8: [frontend web] route: two server name conditions",
	    "t.ini:9: [frontend web] route: bad protocol 'alpn:'",
	    "t.ini:10: [frontend web] route: expected PATTERN",
	    "t.ini:11: [frontend web] tls_passthrough: duplicate key",
	    "t.ini:5: [frontend web] route: no backend named 'nope'");
	/* On a frontend that does no TLS; with both TLS kinds; ALPN. */
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\nroute = a.test b2\n"
	    "[frontend w2]\nlisten = 127.0.0.1:8444\nbackend = app\n"
	    "tls_cert = a.pem\ntls_key = a.key\ntls_passthrough = on\n"
	    "[frontend w3]\nlisten = 127.0.0.1:8445\nbackend = app\n"
	    "tls_passthrough = on\ntls_alpn = h2\n"
	    "[frontend w4]\nlisten = 127.0.0.1:8446\nbackend = app\n"
	    "tls_cert = a.pem\ntls_key = a.key\ntls_alpn = h2\n"
	    "route = alpn:http/1.1 b2\ntls_alpn = x\n" BACKENDS,
	    "t.ini:23: [frontend w4] tls_alpn: duplicate key",
	    "t.ini:4: [frontend web] route needs tls_cert or tls_passthrough",
	    "t.ini:10: [frontend w2] tls_passthrough and tls_cert exclude",
	    "t.ini:15: [frontend w3] tls_alpn needs tls_cert",
	    "t.ini:22: [frontend w4] route: 'alpn:http/1.1' is not in "
	    "tls_alpn");
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\ntls_cert = a.pem\ntls_key = a.key\n"
	    "tls_alpn = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n" BACKENDS,
	    "t.ini:6: [frontend web] tls_alpn: bad protocol list");
}
END_TEST

/* ----------------------------------------------------------- matching */

START_TEST(test_route_name_match)
{
	ck_assert(route_name_match("a.example.com", "a.example.com"));
	ck_assert(route_name_match("a.example.com", "A.Example.COM"));
	ck_assert(route_name_match("a.example.com", "a.example.com."));
	ck_assert(!route_name_match("a.example.com", "b.example.com"));
	ck_assert(!route_name_match("a.example.com", "xa.example.com"));
	ck_assert(!route_name_match("a.example.com", "a.example.co"));
	ck_assert(!route_name_match("a.example.com", NULL));
	ck_assert(!route_name_match("a.example.com", ""));
	ck_assert(route_name_match("*.example.com", "a.example.com"));
	ck_assert(route_name_match("*.example.com", "x.y.EXAMPLE.com"));
	ck_assert(!route_name_match("*.example.com", "example.com"));
	ck_assert(!route_name_match("*.example.com", ".example.com"));
	ck_assert(!route_name_match("*.example.com", "a..example.com"));
	ck_assert(!route_name_match("*.example.com", "aexample.com"));
	ck_assert(!route_name_match("*.example.com", "a.example.com.x"));
}
END_TEST

START_TEST(test_route_pick)
{
	struct config *cfg = load_ok(
	    "[frontend web]\nlisten = 127.0.0.1:8443\nbackend = app\n"
	    "tls_passthrough = on\n"
	    "route = a.test alpn:h2 b3\n"
	    "route = a.test b2\n"
	    "route = *.b.test b3\n"
	    "route = alpn:acme-tls/1 b2\n" BACKENDS);
	const struct frontend_conf *f = &cfg->frontends[0];
	const unsigned char h2[] = "\x02h2", h1[] = "\x08http/1.1";
	const unsigned char both[] = "\x08http/1.1\x02h2";
	const unsigned char acme[] = "\x0a" "acme-tls/1";
	const unsigned char bad[] = "\x09h2";	/* claims past its end */

	ck_assert_uint_eq(route_pick(f, "a.test", h2, 3), 0);
	ck_assert_uint_eq(route_pick(f, "a.test", both, 12), 0);
	ck_assert_uint_eq(route_pick(f, "a.test", h1, 9), 1);
	ck_assert_uint_eq(route_pick(f, "A.TEST", NULL, 0), 1);
	ck_assert_uint_eq(route_pick(f, "x.b.test", h2, 3), 2);
	ck_assert_uint_eq(route_pick(f, "other", acme, 11), 3);
	ck_assert_uint_eq(route_pick(f, NULL, acme, 11), 3);
	ck_assert_uint_eq(route_pick(f, NULL, NULL, 0), 4);
	ck_assert_uint_eq(route_pick(f, "other", h2, 3), 4);
	ck_assert_uint_eq(route_pick(f, "a.test", bad, 3), 1);
	ck_assert_uint_eq(route_backend(f, 0), 2);
	ck_assert_uint_eq(route_backend(f, 1), 1);
	ck_assert_uint_eq(route_backend(f, 4), 0);
	config_free(cfg);
}
END_TEST

/* ---------------------------------------------------------- ClientHello */

/* A real ClientHello from OpenSSL's client, for sni and alpn (wire). */
static size_t
make_hello(unsigned char *buf, size_t size, const char *sni,
    const unsigned char *alpn, unsigned alpn_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	BIO *rb, *wb;
	int n;

	ck_assert_ptr_nonnull(ctx);
	ssl = SSL_new(ctx);
	rb = BIO_new(BIO_s_mem());
	wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	if (alpn != NULL)
		ck_assert_int_eq(SSL_set_alpn_protos(ssl, alpn, alpn_len), 0);
	SSL_set_connect_state(ssl);
	ck_assert_int_eq(SSL_do_handshake(ssl), -1);
	n = BIO_read(wb, buf, (int)size);
	ck_assert_int_gt(n, 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return (size_t)n;
}

/* The handshake message of one-record hello in records of at most k
 * payload bytes each. */
static size_t
reframe(const unsigned char *hello, size_t len, size_t k, unsigned char *out)
{
	size_t n = 0;

	for (size_t off = 5; off < len; off += k) {
		size_t m = len - off < k ? len - off : k;
		memcpy(out + n, hello, 3);
		out[n + 3] = (unsigned char)(m >> 8);
		out[n + 4] = (unsigned char)m;
		memcpy(out + n + 5, hello + off, m);
		n += 5 + m;
	}
	return n;
}

START_TEST(test_hello_frame)
{
	unsigned char hello[4096], split[16384], twice[8192];
	size_t len, n, used = 0;

	len = make_hello(hello, sizeof(hello), "a.test", NULL, 0);
	ck_assert_uint_eq(hello[0], 22);
	ck_assert_uint_eq(len, 5 + ((size_t)hello[3] << 8 | hello[4]));
	ck_assert_int_eq(hello_frame(hello, len, HELLO_MAX, &used),
	    HELLO_DONE);
	ck_assert_uint_eq(used, len);
	/* Every prefix, down to nothing, wants more. */
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(hello_frame(hello, i, HELLO_MAX, &used),
		    HELLO_MORE);
	/* What follows it is not its business. */
	memcpy(twice, hello, len);
	memcpy(twice + len, "\x14\x03\x03\x00\x01\x01", 6);
	ck_assert_int_eq(hello_frame(twice, len + 6, HELLO_MAX, &used),
	    HELLO_DONE);
	ck_assert_uint_eq(used, len);
	/* Across records of 1, 3 and 100 bytes each. */
	for (size_t k = 1; k <= 100; k = k == 1 ? 3 : k == 3 ? 100 : 101) {
		n = reframe(hello, len, k, split);
		ck_assert_int_eq(hello_frame(split, n, sizeof(split), &used),
		    HELLO_DONE);
		ck_assert_uint_eq(used, n);
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(hello_frame(split, i, sizeof(split),
			    &used), HELLO_MORE);
		/* Too large for a bound below its size. */
		ck_assert_int_eq(hello_frame(split, n, n - 1, &used),
		    HELLO_BIG);
	}
}
END_TEST

START_TEST(test_hello_frame_bad)
{
	unsigned char b[64];
	size_t used;

	/* Not TLS: found at the first byte that cannot be. */
	ck_assert_int_eq(hello_frame((const unsigned char *)"G", 1,
	    HELLO_MAX, &used), HELLO_BAD);
	ck_assert_int_eq(hello_frame((const unsigned char *)"\x16\x02", 2,
	    HELLO_MAX, &used), HELLO_BAD);
	ck_assert_int_eq(hello_frame((const unsigned char *)"\x16\x03\x05", 3,
	    HELLO_MAX, &used), HELLO_BAD);
	/* A TLS record, not a handshake; an empty or oversized record. */
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x17\x03\x03\x00\x01x", 6, HELLO_MAX, &used), HELLO_BAD);
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x16\x03\x01\x00\x00", 5, HELLO_MAX, &used), HELLO_BAD);
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x16\x03\x01\x40\x01", 5, HELLO_MAX, &used), HELLO_BAD);
	/* A handshake, not a ClientHello (a ServerHello); an empty one. */
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, HELLO_MAX, &used),
	    HELLO_BAD);
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9, HELLO_MAX, &used),
	    HELLO_BAD);
	/* A ClientHello claiming 16 KiB: too large before it arrives. */
	memcpy(b, "\x16\x03\x01\x40\x00\x01\x00\x40\x00", 9);
	ck_assert_int_eq(hello_frame(b, 9, HELLO_MAX, &used), HELLO_BIG);
	/* A small record of a ClientHello claiming 64 KiB: too large at
	 * once, not after 16 KiB have come. */
	ck_assert_int_eq(hello_frame((const unsigned char *)
	    "\x16\x03\x01\x00\x08\x01\x01\x00\x00\x03\x03\x00\x00", 13,
	    HELLO_MAX, &used), HELLO_BIG);
	/* A record that would end past the bound. */
	ck_assert_int_eq(hello_frame(b, 9, 100, &used), HELLO_BIG);
	/* A header alone, within and at the bound. */
	ck_assert_int_eq(hello_frame(b, 3, 4, &used), HELLO_BIG);
	ck_assert_int_eq(hello_frame(b, 3, 100, &used), HELLO_MORE);
}
END_TEST

START_TEST(test_hello_parse)
{
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	unsigned char hello[4096], split[16384];
	struct hello_info hi;
	void *ctx = hello_ctx_new();
	size_t len, n;

	ck_assert_ptr_nonnull(ctx);
	len = make_hello(hello, sizeof(hello), "Www.B.test", alpn, 12);
	ck_assert_int_eq(hello_parse(ctx, hello, len, &hi), 0);
	ck_assert_str_eq(hi.sni, "Www.B.test");
	ck_assert_uint_eq(hi.alpn_len, 12);
	ck_assert_mem_eq(hi.alpn, alpn, 12);
	/* In records of 7 bytes, the same. */
	n = reframe(hello, len, 7, split);
	ck_assert_int_eq(hello_parse(ctx, split, n, &hi), 0);
	ck_assert_str_eq(hi.sni, "Www.B.test");
	ck_assert_uint_eq(hi.alpn_len, 12);
	/* No SNI, no ALPN. */
	len = make_hello(hello, sizeof(hello), NULL, NULL, 0);
	ck_assert_int_eq(hello_parse(ctx, hello, len, &hi), 0);
	ck_assert_str_eq(hi.sni, "");
	ck_assert_uint_eq(hi.alpn_len, 0);
	/* Framed right, but no ClientHello inside. */
	memcpy(hello, "\x16\x03\x01\x00\x08\x01\x00\x00\x04zzzz", 13);
	ck_assert_int_eq(hello_parse(ctx, hello, 13, &hi), -1);
	hello_ctx_free(ctx);
}
END_TEST

static Suite *
sni_suite(void)
{
	Suite *s = suite_create("sni");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_route_keys);
	tcase_add_test(tc, test_route_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("routes");
	tcase_add_test(tc, test_route_name_match);
	tcase_add_test(tc, test_route_pick);
	suite_add_tcase(s, tc);
	tc = tcase_create("hello");
	tcase_add_test(tc, test_hello_frame);
	tcase_add_test(tc, test_hello_frame_bad);
	tcase_add_test(tc, test_hello_parse);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sni_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
