/* check_proxyproto_tls.c -- unit tests for the PROXY v2 TLVs of a TLS
 * client (proxy_encode_tls) */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "proxyproto.h"

/*
 * Reference: haproxy's doc/proxy-protocol.txt, section 2.2. A TLV is a
 * type byte, a big-endian 16-bit length and the value. PP2_TYPE_SSL's
 * value is a client byte (PP2_CLIENT_*), a big-endian 32-bit verify
 * (0: a certificate was presented and verified) and sub-TLVs.
 */
#define SA(x)	((const struct sockaddr *)&(x))

static struct sockaddr_storage
v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (void *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

/* A decoded header: what the TLVs said (-1 / "" when absent). */
struct seen {
	size_t	addr_len;
	char	authority[300];
	int	client;
	long	verify;
	char	version[300], cn[300], cipher[300];
	int	nssl, nauth, nother;
};

static void
copy_str(char *dst, const unsigned char *v, size_t n)
{
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* Decode buf[0..n) strictly: every length must add up exactly. */
static void
decode(const unsigned char *buf, size_t n, struct seen *w)
{
	size_t len, off, end;

	memset(w, 0, sizeof(*w));
	w->client = -1;
	w->verify = -1;
	ck_assert_uint_ge(n, 16);
	len = (size_t)buf[14] << 8 | buf[15];
	ck_assert_uint_eq(16 + len, n);
	w->addr_len = buf[13] == 0x11 ? 12 : buf[13] == 0x21 ? 36 : 0;
	for (off = 16 + w->addr_len; off < n; off = end) {
		const unsigned char *v = buf + off + 3;
		size_t tl;

		ck_assert_uint_le(off + 3, n);
		tl = (size_t)buf[off + 1] << 8 | buf[off + 2];
		end = off + 3 + tl;
		ck_assert_uint_le(end, n);
		if (buf[off] == PP2_TYPE_AUTHORITY) {
			w->nauth++;
			copy_str(w->authority, v, tl);
		} else if (buf[off] == PP2_TYPE_SSL) {
			size_t so, se;

			w->nssl++;
			ck_assert_uint_ge(tl, 5);
			w->client = v[0];
			w->verify = (long)((uint32_t)v[1] << 24 |
			    (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4]);
			for (so = 5; so < tl; so = se) {
				size_t sl;

				ck_assert_uint_le(so + 3, tl);
				sl = (size_t)v[so + 1] << 8 | v[so + 2];
				se = so + 3 + sl;
				ck_assert_uint_le(se, tl);
				if (v[so] == PP2_SUBTYPE_SSL_VERSION)
					copy_str(w->version, v + so + 3, sl);
				else if (v[so] == PP2_SUBTYPE_SSL_CN)
					copy_str(w->cn, v + so + 3, sl);
				else if (v[so] == PP2_SUBTYPE_SSL_CIPHER)
					copy_str(w->cipher, v + so + 3, sl);
				else
					w->nother++;
			}
		} else
			w->nother++;
	}
}

START_TEST(test_tls_all_fields)
{
	struct sockaddr_storage s = v4("192.0.2.1", 56324),
	    d = v4("198.51.100.22", 443);
	struct proxy_tls pt = { "www.example.com", "TLSv1.3",
	    "TLS_AES_256_GCM_SHA384", "alice", PP2_CLIENT_SSL |
	    PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS, 0 };
	unsigned char buf[PROXY_V2_TLS_MAX], plain[64];
	struct sockaddr_storage ps, pd;
	struct seen w;
	size_t n, pn;

	n = proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	/* The addresses are those of a plain v2 header. */
	pn = proxy_encode(PROXY_V2, SA(s), SA(d), (char *)plain,
	    sizeof(plain));
	ck_assert_mem_eq(buf, plain, 14);
	ck_assert_mem_eq(buf + 16, plain + 16, pn - 16);
	decode(buf, n, &w);
	ck_assert_uint_eq(w.addr_len, 12);
	ck_assert_int_eq(w.nauth, 1);
	ck_assert_int_eq(w.nssl, 1);
	ck_assert_int_eq(w.nother, 0);
	ck_assert_str_eq(w.authority, "www.example.com");
	ck_assert_int_eq(w.client, 0x07);
	ck_assert_int_eq(w.verify, 0);
	ck_assert_str_eq(w.version, "TLSv1.3");
	ck_assert_str_eq(w.cn, "alice");
	ck_assert_str_eq(w.cipher, "TLS_AES_256_GCM_SHA384");
	/* Our own parser takes it, TLVs skipped, and the addresses. */
	ck_assert_int_eq(proxy_parse(PROXY_V2, buf, n, &ps, &pd), (ssize_t)n);
	ck_assert_int_eq(ps.ss_family, AF_INET);
	ck_assert_mem_eq(&ps, &s, sizeof(struct sockaddr_in));
}
END_TEST

START_TEST(test_tls_no_client_certificate)
{
	struct sockaddr_storage s = v4("192.0.2.1", 1), d = v4("192.0.2.2", 2);
	struct proxy_tls pt = { NULL, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256",
	    NULL, 0, 1 };
	unsigned char buf[PROXY_V2_TLS_MAX];
	struct seen w;
	size_t n;

	n = proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf, sizeof(buf));
	decode(buf, n, &w);
	ck_assert_int_eq(w.nauth, 0);		/* no SNI: no authority */
	ck_assert_int_eq(w.nssl, 1);
	ck_assert_int_eq(w.client, PP2_CLIENT_SSL);	/* always set */
	ck_assert_int_eq(w.verify, 1);
	ck_assert_str_eq(w.version, "TLSv1.2");
	ck_assert_str_eq(w.cn, "");
	ck_assert_str_eq(w.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
	/* Empty strings are left out like NULL ones; unknown client bits
	 * are not sent. */
	pt.version = "";
	pt.cipher = NULL;
	pt.sni = "";
	pt.client = 0xf8;
	pt.verify = 0x01020304;
	n = proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf, sizeof(buf));
	ck_assert_uint_eq(n, 16 + 12 + 3 + 5);
	decode(buf, n, &w);
	ck_assert_int_eq(w.nauth, 0);
	ck_assert_int_eq(w.client, PP2_CLIENT_SSL);
	ck_assert_int_eq(w.verify, 0x01020304);
	ck_assert_str_eq(w.version, "");
}
END_TEST

START_TEST(test_tls_long_strings_cut_and_local)
{
	struct sockaddr_storage un;
	struct proxy_tls pt;
	char big[1000];
	unsigned char buf[PROXY_V2_TLS_MAX];
	struct seen w;
	size_t n;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pt = (struct proxy_tls){ big, big, big, big, PP2_CLIENT_CERT_SESS |
	    PP2_CLIENT_CERT_CONN, 0 };
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	/* Not IP: a LOCAL header, the TLVs still follow. */
	n = proxy_encode_tls(SA(un), SA(un), &pt, (char *)buf, sizeof(buf));
	ck_assert_uint_eq(n, PROXY_V2_TLS_MAX - 36);
	ck_assert_int_eq(buf[12], 0x20);
	decode(buf, n, &w);
	ck_assert_uint_eq(strlen(w.authority), PROXY_TLV_STR_MAX);
	ck_assert_uint_eq(strlen(w.cn), PROXY_TLV_STR_MAX);
	ck_assert_uint_eq(strlen(w.version), PROXY_TLV_STR_MAX);
	ck_assert_uint_eq(strlen(w.cipher), PROXY_TLV_STR_MAX);
}
END_TEST

START_TEST(test_tls_short_buffer)
{
	struct sockaddr_storage s = v4("192.0.2.1", 1), d = v4("192.0.2.2", 2);
	struct proxy_tls pt = { "a.example", "TLSv1.3", "X", "bob",
	    PP2_CLIENT_CERT_SESS, 0 };
	unsigned char buf[PROXY_V2_TLS_MAX];
	size_t full, sz;

	full = proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf, sizeof(buf));
	ck_assert_uint_gt(full, 0);
	for (sz = 0; sz < full; sz++)
		ck_assert_msg(proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf,
		    sz) == 0, "size %zu of %zu accepted", sz, full);
	ck_assert_uint_eq(proxy_encode_tls(SA(s), SA(d), &pt, (char *)buf,
	    full), full);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("proxyproto_tls");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_tls_all_fields);
	tcase_add_test(tc, test_tls_no_client_certificate);
	tcase_add_test(tc, test_tls_long_strings_cut_and_local);
	tcase_add_test(tc, test_tls_short_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
