/* check_proxyproto.c -- unit tests for the PROXY protocol encoder/parser */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "proxyproto.h"

/*
 * Reference: haproxy's doc/proxy-protocol.txt. v1 is one text line
 * "PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT\r\n" of at most 107 bytes;
 * v2 is the 12-byte signature, ver/cmd (0x20 LOCAL, 0x21 PROXY), fam/proto
 * (0x11 TCP4, 0x21 TCP6, 0x00 UNSPEC), a big-endian length, addresses.
 */
static const unsigned char SIG[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

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

static struct sockaddr_storage
v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (void *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	return ss;
}

#define SA(x)	((const struct sockaddr *)&(x))

/* Same family, address and port (the parser's output vs what we meant). */
static void
assert_same_addr(const struct sockaddr_storage *got,
    const struct sockaddr_storage *want)
{
	ck_assert_int_eq(got->ss_family, want->ss_family);
	if (want->ss_family == AF_INET) {
		const struct sockaddr_in *g = (const void *)got;
		const struct sockaddr_in *w = (const void *)want;
		ck_assert_mem_eq(&g->sin_addr, &w->sin_addr, 4);
		ck_assert_uint_eq(ntohs(g->sin_port), ntohs(w->sin_port));
	} else if (want->ss_family == AF_INET6) {
		const struct sockaddr_in6 *g = (const void *)got;
		const struct sockaddr_in6 *w = (const void *)want;
		ck_assert_mem_eq(&g->sin6_addr, &w->sin6_addr, 16);
		ck_assert_uint_eq(ntohs(g->sin6_port), ntohs(w->sin6_port));
	}
}

/* Parse buf[0..len) with garbage in the outputs first. */
static ssize_t
parse(int allowed, const void *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst)
{
	memset(src, 0xa5, sizeof(*src));
	memset(dst, 0x5a, sizeof(*dst));
	return proxy_parse(allowed, buf, len, src, dst);
}

/* The string s (no NUL) must be rejected under allowed. */
static void
reject_s(int allowed, const char *s)
{
	struct sockaddr_storage src, dst;
	ssize_t r = parse(allowed, s, strlen(s), &src, &dst);

	ck_assert_msg(r == -1, "allowed %d: '%s' gave %zd, not -1", allowed,
	    s, r);
}

static void
reject_v1(const char *s)
{
	reject_s(PROXY_V1, s);
	reject_s(PROXY_ANY, s);
}

static void
reject_bin(int allowed, const unsigned char *b, size_t len, const char *what)
{
	struct sockaddr_storage src, dst;
	ssize_t r = parse(allowed, b, len, &src, &dst);

	ck_assert_msg(r == -1, "allowed %d: %s (%zu bytes) gave %zd, not -1",
	    allowed, what, len, r);
}

static void
reject_v2(const unsigned char *b, size_t len, const char *what)
{
	reject_bin(PROXY_V2, b, len, what);
	reject_bin(PROXY_ANY, b, len, what);
}

/* A v2 header: signature, ver_cmd, fam, len, then body[0..blen). */
static size_t
v2hdr(unsigned char *out, unsigned ver_cmd, unsigned fam, unsigned len,
    const unsigned char *body, size_t blen)
{
	memcpy(out, SIG, 12);
	out[12] = (unsigned char)ver_cmd;
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(len >> 8);
	out[15] = (unsigned char)len;
	if (blen)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* ------------------------------------------------------------- encode */

START_TEST(test_encode_v1_ipv4)
{
	struct sockaddr_storage s = v4("192.0.2.1", 56324),
	    d = v4("198.51.100.22", 443);
	const char *want = "PROXY TCP4 192.0.2.1 198.51.100.22 56324 443\r\n";
	char buf[PROXY_HDR_MAX];
	size_t n;

	memset(buf, 'X', sizeof(buf));
	n = proxy_encode(PROXY_V1, SA(s), SA(d), buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(buf, want, n);

	s = v4("0.0.0.0", 0);
	d = v4("255.255.255.255", 65535);
	want = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
	n = proxy_encode(PROXY_V1, SA(s), SA(d), buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(buf, want, n);
}
END_TEST

START_TEST(test_encode_v1_ipv6)
{
	struct sockaddr_storage s = v6("2001:db8::1", 1),
	    d = v6("2001:db8:0:0:1:0:0:2", 8080);
	const char *want = "PROXY TCP6 2001:db8::1 2001:db8::1:0:0:2 1 8080\r\n";
	char buf[PROXY_HDR_MAX];
	size_t n;

	n = proxy_encode(PROXY_V1, SA(s), SA(d), buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(buf, want, n);

	/* The longest addresses still fit the 107-byte limit. */
	s = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	d = v6("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	n = proxy_encode(PROXY_V1, SA(s), SA(d), buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, PROXY_V1_MAX);
	ck_assert_mem_eq(buf + n - 2, "\r\n", 2);
}
END_TEST

START_TEST(test_encode_v2_ipv4)
{
	struct sockaddr_storage s = v4("192.0.2.1", 56324),
	    d = v4("198.51.100.22", 443);
	unsigned char want[28], buf[PROXY_HDR_MAX];
	size_t n;

	memcpy(want, SIG, 12);
	want[12] = 0x21;	/* version 2, PROXY */
	want[13] = 0x11;	/* AF_INET, STREAM */
	want[14] = 0;
	want[15] = 12;
	memcpy(want + 16, "\xc0\x00\x02\x01", 4);
	memcpy(want + 20, "\xc6\x33\x64\x16", 4);
	want[24] = 56324 >> 8;
	want[25] = 56324 & 0xff;
	want[26] = 443 >> 8;
	want[27] = 443 & 0xff;
	memset(buf, 0xee, sizeof(buf));
	n = proxy_encode(PROXY_V2, SA(s), SA(d), (char *)buf, sizeof(buf));
	ck_assert_uint_eq(n, sizeof(want));
	ck_assert_mem_eq(buf, want, n);
}
END_TEST

START_TEST(test_encode_v2_ipv6)
{
	struct sockaddr_storage s = v6("2001:db8::1", 65535),
	    d = v6("::ffff:10.0.0.1", 2);
	unsigned char want[52], buf[PROXY_HDR_MAX];
	size_t n;

	memset(want, 0, sizeof(want));
	memcpy(want, SIG, 12);
	want[12] = 0x21;
	want[13] = 0x21;	/* AF_INET6, STREAM */
	want[14] = 0;
	want[15] = 36;
	want[16] = 0x20;
	want[17] = 0x01;
	want[18] = 0x0d;
	want[19] = 0xb8;
	want[31] = 0x01;
	want[42] = 0xff;
	want[43] = 0xff;
	memcpy(want + 44, "\x0a\x00\x00\x01", 4);
	want[48] = 0xff;
	want[49] = 0xff;
	want[50] = 0x00;
	want[51] = 0x02;
	n = proxy_encode(PROXY_V2, SA(s), SA(d), (char *)buf, sizeof(buf));
	ck_assert_uint_eq(n, sizeof(want));
	ck_assert_mem_eq(buf, want, n);
}
END_TEST

START_TEST(test_encode_mixed_families)
{
	struct sockaddr_storage s4 = v4("192.0.2.1", 1000),
	    s6 = v6("2001:db8::1", 1000);
	struct sockaddr_un sun;
	unsigned char local[16];
	char buf[PROXY_HDR_MAX];
	size_t n;

	memcpy(local, SIG, 12);
	local[12] = 0x20;	/* version 2, LOCAL */
	local[13] = 0x00;	/* UNSPEC */
	local[14] = 0;
	local[15] = 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/tmp/x");

	const struct sockaddr *pairs[][2] = {
		{ SA(s4), SA(s6) },
		{ SA(s6), SA(s4) },
		{ (const struct sockaddr *)&sun, SA(s4) },
		{ (const struct sockaddr *)&sun,
		    (const struct sockaddr *)&sun },
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		n = proxy_encode(PROXY_V1, pairs[i][0], pairs[i][1], buf,
		    sizeof(buf));
		ck_assert_msg(n == 15 && memcmp(buf, "PROXY UNKNOWN\r\n", 15)
		    == 0, "pair %zu: v1 gave %zu '%.*s'", i, n, (int)n, buf);
		n = proxy_encode(PROXY_V2, pairs[i][0], pairs[i][1], buf,
		    sizeof(buf));
		ck_assert_uint_eq(n, 16);
		ck_assert_mem_eq(buf, local, 16);
	}
}
END_TEST

START_TEST(test_encode_short_buffer)
{
	struct sockaddr_storage s = v4("192.0.2.1", 56324),
	    d = v4("198.51.100.22", 443),
	    s6 = v6("2001:db8::1", 1), d6 = v6("2001:db8::2", 2);
	const char *want = "PROXY TCP4 192.0.2.1 198.51.100.22 56324 443\r\n";
	char buf[PROXY_HDR_MAX];
	size_t len = strlen(want);

	ck_assert_uint_eq(proxy_encode(PROXY_V1, SA(s), SA(d), buf, 0), 0);
	ck_assert_uint_eq(proxy_encode(PROXY_V2, SA(s), SA(d), buf, 0), 0);
	for (size_t sz = 1; sz < len; sz++)
		ck_assert_msg(proxy_encode(PROXY_V1, SA(s), SA(d), buf, sz) ==
		    0, "v1 into %zu bytes did not say short", sz);
	for (size_t sz = 1; sz < 28; sz++)
		ck_assert_msg(proxy_encode(PROXY_V2, SA(s), SA(d), buf, sz) ==
		    0, "v2 ipv4 into %zu bytes did not say short", sz);
	for (size_t sz = 1; sz < 52; sz++)
		ck_assert_msg(proxy_encode(PROXY_V2, SA(s6), SA(d6), buf, sz)
		    == 0, "v2 ipv6 into %zu bytes did not say short", sz);
	/* Large enough: the exact length again. */
	ck_assert_uint_eq(proxy_encode(PROXY_V1, SA(s), SA(d), buf,
	    len + 1), len);
	ck_assert_uint_eq(proxy_encode(PROXY_V2, SA(s6), SA(d6), buf, 52),
	    52);
	/* Not a version to send. */
	ck_assert_uint_eq(proxy_encode(PROXY_OFF, SA(s), SA(d), buf,
	    sizeof(buf)), 0);
}
END_TEST

/* --------------------------------------------------------- round trip */

struct rt {
	int			version;
	struct sockaddr_storage	src, dst;
};

static size_t
rt_cases(struct rt *c)
{
	size_t n = 0;

	for (int v = PROXY_V1; v <= PROXY_V2; v++) {
		c[n].version = v;
		c[n].src = v4("203.0.113.7", 4242);
		c[n++].dst = v4("198.51.100.1", 80);
		c[n].version = v;
		c[n].src = v4("0.0.0.0", 0);
		c[n++].dst = v4("255.255.255.255", 65535);
		c[n].version = v;
		c[n].src = v6("2001:db8::7", 65535);
		c[n++].dst = v6("fe80::1:2:3:4", 1);
		c[n].version = v;
		c[n].src = v6("::", 0);
		c[n++].dst = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		    65535);
		c[n].version = v;
		c[n].src = v6("::ffff:192.0.2.9", 12345);
		c[n++].dst = v6("::1", 9);
	}
	return n;
}

START_TEST(test_roundtrip)
{
	struct rt c[16];
	size_t n = rt_cases(c);
	char buf[PROXY_HDR_MAX];
	struct sockaddr_storage src, dst;
	size_t len;
	ssize_t r;

	for (size_t i = 0; i < n; i++) {
		len = proxy_encode(c[i].version, SA(c[i].src), SA(c[i].dst),
		    buf, sizeof(buf));
		ck_assert_uint_gt(len, 0);
		r = parse(c[i].version, buf, len, &src, &dst);
		ck_assert_msg(r == (ssize_t)len, "case %zu: parse gave %zd of "
		    "%zu", i, r, len);
		assert_same_addr(&src, &c[i].src);
		assert_same_addr(&dst, &c[i].dst);
		r = parse(PROXY_ANY, buf, len, &src, &dst);
		ck_assert_int_eq(r, (ssize_t)len);
		assert_same_addr(&src, &c[i].src);
		assert_same_addr(&dst, &c[i].dst);
	}
}
END_TEST

START_TEST(test_roundtrip_unspec)
{
	struct sockaddr_storage s4 = v4("192.0.2.1", 1), s6 = v6("::1", 2);
	struct sockaddr_storage src, dst;
	char buf[PROXY_HDR_MAX];
	size_t len;

	for (int v = PROXY_V1; v <= PROXY_V2; v++) {
		len = proxy_encode(v, SA(s4), SA(s6), buf, sizeof(buf));
		ck_assert_uint_gt(len, 0);
		ck_assert_int_eq(parse(v, buf, len, &src, &dst), (ssize_t)len);
		ck_assert_int_eq(src.ss_family, AF_UNSPEC);
		ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
	}
}
END_TEST

/* ----------------------------------------------------- partial / extra */

/*
 * Every proper prefix of a valid header needs more (0); the whole header
 * gives its length, also with payload after it, which is never consumed.
 */
static void
check_incremental(int allowed, const void *hdr, size_t len)
{
	static const char payload[] = "PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n"
	    "\r\n\r\n\0\r\nQUIT\nGET / HTTP/1.0\r\n\r\n";
	unsigned char buf[PROXY_HDR_MAX + sizeof(payload)];
	struct sockaddr_storage src, dst;
	ssize_t r;

	memcpy(buf, hdr, len);
	memcpy(buf + len, payload, sizeof(payload));
	for (size_t k = 0; k < len; k++) {
		r = parse(allowed, buf, k, &src, &dst);
		ck_assert_msg(r == 0, "allowed %d: prefix %zu of %zu gave %zd, "
		    "not 0", allowed, k, len, r);
	}
	for (size_t k = len; k <= len + sizeof(payload); k++) {
		r = parse(allowed, buf, k, &src, &dst);
		ck_assert_msg(r == (ssize_t)len, "allowed %d: %zu bytes (header "
		    "%zu) gave %zd", allowed, k, len, r);
	}
}

START_TEST(test_partial_every_length)
{
	struct rt c[16];
	size_t n = rt_cases(c);
	char buf[PROXY_HDR_MAX];
	size_t len;

	for (size_t i = 0; i < n; i++) {
		len = proxy_encode(c[i].version, SA(c[i].src), SA(c[i].dst),
		    buf, sizeof(buf));
		check_incremental(c[i].version, buf, len);
		check_incremental(PROXY_ANY, buf, len);
	}
	check_incremental(PROXY_V1, "PROXY UNKNOWN\r\n", 15);
	check_incremental(PROXY_ANY, "PROXY UNKNOWN\r\n", 15);
}
END_TEST

START_TEST(test_partial_v2_tlv)
{
	unsigned char body[12 + 7], hdr[64];
	size_t len;

	memcpy(body, "\xcb\x00\x71\x07\xc6\x33\x64\x01\x10\x92\x00\x50", 12);
	/* PP2_TYPE_NOOP, length 4 */
	memcpy(body + 12, "\x04\x00\x04\xde\xad\xbe\xef", 7);
	len = v2hdr(hdr, 0x21, 0x11, sizeof(body), body, sizeof(body));
	check_incremental(PROXY_V2, hdr, len);
	check_incremental(PROXY_ANY, hdr, len);
}
END_TEST

START_TEST(test_payload_not_consumed)
{
	const char *in = "PROXY TCP4 203.0.113.7 198.51.100.1 4242 80\r\n"
	    "GET / HTTP/1.1\r\n";
	struct sockaddr_storage src, dst, ws = v4("203.0.113.7", 4242),
	    wd = v4("198.51.100.1", 80);

	ck_assert_int_eq(parse(PROXY_V1, in, strlen(in), &src, &dst), 45);
	assert_same_addr(&src, &ws);
	assert_same_addr(&dst, &wd);
}
END_TEST

/* ------------------------------------------------------------ invalid */

START_TEST(test_v1_bad_signature)
{
	reject_v1("GET / HTTP/1.1\r\n");
	reject_v1("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("XPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_s(PROXY_V1, "\r\n");	/* (for v2, a signature's start) */
	/* Garbage is rejected as soon as it cannot become a header. */
	reject_v1("G");
	reject_v1("PRX");
	reject_v1("PROXX");
	reject_s(PROXY_V2, "P");
	reject_s(PROXY_V2, "PROXY ");
}
END_TEST

START_TEST(test_v1_no_crlf)
{
	char line[512];
	struct sockaddr_storage src, dst;

	/*
	 * 106 bytes, no CR: the CR could only come at byte 107 and the LF
	 * at 108, past the 107-byte limit, so it can never be a header.
	 */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(parse(PROXY_V1, line, 105, &src, &dst), 0);
	ck_assert_int_eq(parse(PROXY_V1, line, 106, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_V1, line, 107, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_ANY, line, 107, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_V1, line, sizeof(line), &src, &dst),
	    -1);
	/* CRLF only past the limit. */
	memcpy(line + 200, "\r\n", 2);
	ck_assert_int_eq(parse(PROXY_V1, line, 202, &src, &dst), -1);
	/* LF without CR. */
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"
	    "and some more bytes to pass the limit of one hundred and seven "
	    "bytes, so that the line can never end...");
	/* CR not followed by LF. */
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n");
	/* A NUL inside the line. */
	ck_assert_int_eq(parse(PROXY_V1, "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n",
	    33, &src, &dst), -1);
}
END_TEST

/* 107 bytes, CRLF included, is the longest line; 108 is too long. */
START_TEST(test_v1_length_limit)
{
	const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:"
	    "ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	char line[128];
	struct sockaddr_storage src, dst;

	ck_assert_uint_eq(strlen(longest), PROXY_V1_MAX);
	ck_assert_int_eq(parse(PROXY_V1, longest, 107, &src, &dst), 107);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	/* One more byte before the CRLF: the CRLF ends at byte 108. */
	memcpy(line, longest, 105);
	line[105] = '0';
	memcpy(line + 106, "\r\n", 2);
	ck_assert_int_eq(parse(PROXY_V1, line, 107, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_V1, line, 108, &src, &dst), -1);
}
END_TEST

START_TEST(test_v1_bad_ports)
{
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 99999999999999999999 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 +80 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 -80 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 80 -1\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 8o 80\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 80 0x50\r\n");
	reject_v1("PROXY TCP6 ::1 ::2 80 65536\r\n");
	reject_v1("PROXY TCP6 ::1 ::2 01 2\r\n");
}
END_TEST

START_TEST(test_v1_good_ports)
{
	struct sockaddr_storage src, dst, ws = v4("1.2.3.4", 0),
	    wd = v4("5.6.7.8", 65535);
	const char *in = "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n";

	ck_assert_int_eq(parse(PROXY_V1, in, strlen(in), &src, &dst),
	    (ssize_t)strlen(in));
	assert_same_addr(&src, &ws);
	assert_same_addr(&dst, &wd);
}
END_TEST

START_TEST(test_v1_bad_addresses)
{
	reject_v1("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 localhost 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8/24 1 2\r\n");
	reject_v1("PROXY TCP6 2001:db8::1::2 ::1 1 2\r\n");
	reject_v1("PROXY TCP6 2001:db8::g ::1 1 2\r\n");
	reject_v1("PROXY TCP6 [::1] ::2 1 2\r\n");
	/* Family and addresses disagree. */
	reject_v1("PROXY TCP4 ::1 ::2 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 ::2 1 2\r\n");
	reject_v1("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP6 ::1 5.6.7.8 1 2\r\n");
	/* Unknown protocol words. */
	reject_v1("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n");
}
END_TEST

START_TEST(test_v1_field_count)
{
	reject_v1("PROXY\r\n");
	reject_v1("PROXY \r\n");
	reject_v1("PROXY TCP4\r\n");
	reject_v1("PROXY TCP4 1.2.3.4\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
	reject_v1("PROXY TCP6 ::1 ::2 1\r\n");
	reject_v1("PROXY TCP6 ::1 ::2 1 2 extra\r\n");
}
END_TEST

/* The spec separates fields by exactly one space. */
START_TEST(test_v1_single_spaces)
{
	reject_v1("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n");
	reject_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");
}
END_TEST

START_TEST(test_v1_unknown)
{
	struct sockaddr_storage src, dst;
	const char *in[] = {
		"PROXY UNKNOWN\r\n",
		/* a receiver ignores whatever follows UNKNOWN */
		"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UNKNOWN ::1 ::2 1 2\r\n",
	};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		ck_assert_int_eq(parse(PROXY_V1, in[i], strlen(in[i]), &src,
		    &dst), (ssize_t)strlen(in[i]));
		ck_assert_int_eq(src.ss_family, AF_UNSPEC);
		ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
	}
}
END_TEST

static const unsigned char ADDR4[12] = {
	203, 0, 113, 7, 198, 51, 100, 1, 0x10, 0x92, 0x00, 0x50
};

START_TEST(test_v2_bad_signature)
{
	unsigned char b[64];
	size_t len;

	for (size_t i = 0; i < 12; i++) {
		len = v2hdr(b, 0x21, 0x11, 12, ADDR4, 12);
		b[i] ^= 0x40;
		reject_v2(b, len, "signature byte changed");
		/* also seen as soon as the byte arrives */
		reject_v2(b, i + 1, "signature prefix changed");
	}
}
END_TEST

START_TEST(test_v2_bad_version_command)
{
	static const unsigned vc[] = {
		0x01, 0x11, 0x31, 0xf1, 0x00, 0x10,	/* versions 0, 1, 3, 15 */
		0x22, 0x23, 0x2f,			/* commands 2, 3, 15 */
	};
	unsigned char b[64];
	size_t len;

	for (size_t i = 0; i < sizeof(vc) / sizeof(vc[0]); i++) {
		len = v2hdr(b, vc[i], 0x11, 12, ADDR4, 12);
		reject_v2(b, len, "bad version/command");
	}
}
END_TEST

START_TEST(test_v2_length_limit)
{
	unsigned char b[PROXY_V2_MAX + 64], body[PROXY_V2_MAX];
	struct sockaddr_storage src, dst;
	size_t len;

	memset(body, 0, sizeof(body));
	/* The largest accepted header: 16 + 216 (LOCAL, no addresses). */
	len = v2hdr(b, 0x20, 0x00, PROXY_V2_MAX - 16, body, PROXY_V2_MAX - 16);
	ck_assert_int_eq(parse(PROXY_V2, b, len, &src, &dst), PROXY_V2_MAX);
	/* One more: rejected, and at once (not waiting for the body). */
	len = v2hdr(b, 0x21, 0x11, PROXY_V2_MAX - 15, body, PROXY_V2_MAX - 15);
	reject_v2(b, len, "length 217");
	reject_v2(b, 16, "length 217, header only");
	v2hdr(b, 0x21, 0x11, 0xffff, NULL, 0);
	reject_v2(b, 16, "length 65535");
}
END_TEST

START_TEST(test_v2_address_block_short)
{
	unsigned char b[128], body[64];
	size_t len;

	memset(body, 0x11, sizeof(body));
	for (unsigned l = 0; l < 12; l++) {
		len = v2hdr(b, 0x21, 0x11, l, body, l);
		reject_v2(b, len, "TCP4 address block short");
	}
	for (unsigned l = 0; l < 36; l++) {
		len = v2hdr(b, 0x21, 0x21, l, body, l);
		reject_v2(b, len, "TCP6 address block short");
	}
}
END_TEST

START_TEST(test_v2_local_unspec)
{
	unsigned char b[128], body[64];
	struct sockaddr_storage src, dst;
	size_t len;

	memset(body, 0x33, sizeof(body));
	/* LOCAL, no addresses. */
	len = v2hdr(b, 0x20, 0x00, 0, NULL, 0);
	ck_assert_int_eq(parse(PROXY_V2, b, len, &src, &dst), 16);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
	/* LOCAL with an address block: ignored, but consumed. */
	len = v2hdr(b, 0x20, 0x11, 12, ADDR4, 12);
	ck_assert_int_eq(parse(PROXY_ANY, b, len, &src, &dst), 28);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
	/* PROXY with UNSPEC family. */
	len = v2hdr(b, 0x21, 0x00, 0, NULL, 0);
	ck_assert_int_eq(parse(PROXY_V2, b, len, &src, &dst), 16);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
	/* UDP over IPv4 and a unix stream: no TCP addresses to adopt. */
	len = v2hdr(b, 0x21, 0x12, 12, ADDR4, 12);
	ck_assert_int_eq(parse(PROXY_V2, b, len, &src, &dst), 28);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	len = v2hdr(b, 0x21, 0x31, 64, body, 64);
	ck_assert_int_eq(parse(PROXY_V2, b, len, &src, &dst), 80);
	ck_assert_int_eq(src.ss_family, AF_UNSPEC);
	ck_assert_int_eq(dst.ss_family, AF_UNSPEC);
}
END_TEST

START_TEST(test_v2_tlvs)
{
	unsigned char b[PROXY_V2_MAX + 16], body[PROXY_V2_MAX];
	struct sockaddr_storage src, dst, ws = v4("203.0.113.7", 4242),
	    wd = v4("198.51.100.1", 80), ws6 = v6("2001:db8::7", 4242),
	    wd6 = v6("2001:db8::1", 80);
	size_t len, blen;

	/* TCP4 + PP2_TYPE_ALPN "h2" + PP2_TYPE_AUTHORITY "example.com" */
	memcpy(body, ADDR4, 12);
	blen = 12;
	memcpy(body + blen, "\x01\x00\x02h2", 5);
	blen += 5;
	memcpy(body + blen, "\x02\x00\x0b" "example.com", 14);
	blen += 14;
	len = v2hdr(b, 0x21, 0x11, (unsigned)blen, body, blen);
	memcpy(b + len, "payload", 7);
	ck_assert_int_eq(parse(PROXY_V2, b, len + 7, &src, &dst),
	    (ssize_t)len);
	assert_same_addr(&src, &ws);
	assert_same_addr(&dst, &wd);

	/* TCP6 with TLVs up to the 216-byte limit. */
	memset(body, 0, sizeof(body));
	body[0] = 0x20; body[1] = 0x01; body[2] = 0x0d; body[3] = 0xb8;
	body[15] = 0x07;
	body[16] = 0x20; body[17] = 0x01; body[18] = 0x0d; body[19] = 0xb8;
	body[31] = 0x01;
	body[32] = 4242 >> 8; body[33] = 4242 & 0xff;
	body[34] = 0; body[35] = 80;
	body[36] = 0x04;	/* PP2_TYPE_NOOP filling the rest */
	body[37] = 0;
	body[38] = (unsigned char)(PROXY_V2_MAX - 16 - 39);
	len = v2hdr(b, 0x21, 0x21, PROXY_V2_MAX - 16, body, PROXY_V2_MAX - 16);
	ck_assert_int_eq(parse(PROXY_ANY, b, len, &src, &dst), PROXY_V2_MAX);
	assert_same_addr(&src, &ws6);
	assert_same_addr(&dst, &wd6);
}
END_TEST

/* ------------------------------------------------------------ allowed */

START_TEST(test_allowed_modes)
{
	struct sockaddr_storage s = v4("203.0.113.7", 4242),
	    d = v4("198.51.100.1", 80), src, dst;
	char h1[PROXY_HDR_MAX], h2[PROXY_HDR_MAX];
	size_t n1, n2;

	n1 = proxy_encode(PROXY_V1, SA(s), SA(d), h1, sizeof(h1));
	n2 = proxy_encode(PROXY_V2, SA(s), SA(d), h2, sizeof(h2));
	ck_assert_int_eq(parse(PROXY_V1, h1, n1, &src, &dst), (ssize_t)n1);
	ck_assert_int_eq(parse(PROXY_V2, h1, n1, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_ANY, h1, n1, &src, &dst), (ssize_t)n1);
	ck_assert_int_eq(parse(PROXY_V2, h2, n2, &src, &dst), (ssize_t)n2);
	ck_assert_int_eq(parse(PROXY_V1, h2, n2, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_ANY, h2, n2, &src, &dst), (ssize_t)n2);
	/* The wrong version is refused from its first byte. */
	ck_assert_int_eq(parse(PROXY_V2, h1, 1, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_V1, h2, 1, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_ANY, "HELLO\r\n", 7, &src, &dst), -1);
	/* UNKNOWN / LOCAL follow the same rule. */
	ck_assert_int_eq(parse(PROXY_V2, "PROXY UNKNOWN\r\n", 15, &src, &dst),
	    -1);
	v2hdr((unsigned char *)h2, 0x20, 0x00, 0, NULL, 0);
	ck_assert_int_eq(parse(PROXY_V1, h2, 16, &src, &dst), -1);
	ck_assert_int_eq(parse(PROXY_ANY, h2, 16, &src, &dst), 16);
}
END_TEST

static Suite *
proxyproto_suite(void)
{
	Suite *s = suite_create("proxyproto");
	TCase *tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, test_encode_v1_ipv4);
	tcase_add_test(tc, test_encode_v1_ipv6);
	tcase_add_test(tc, test_encode_v2_ipv4);
	tcase_add_test(tc, test_encode_v2_ipv6);
	tcase_add_test(tc, test_encode_mixed_families);
	tcase_add_test(tc, test_encode_short_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_roundtrip_unspec);
	tcase_add_test(tc, test_partial_every_length);
	tcase_add_test(tc, test_partial_v2_tlv);
	tcase_add_test(tc, test_payload_not_consumed);
	suite_add_tcase(s, tc);

	tc = tcase_create("v1");
	tcase_add_test(tc, test_v1_bad_signature);
	tcase_add_test(tc, test_v1_no_crlf);
	tcase_add_test(tc, test_v1_length_limit);
	tcase_add_test(tc, test_v1_bad_ports);
	tcase_add_test(tc, test_v1_good_ports);
	tcase_add_test(tc, test_v1_bad_addresses);
	tcase_add_test(tc, test_v1_field_count);
	tcase_add_test(tc, test_v1_single_spaces);
	tcase_add_test(tc, test_v1_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, test_v2_bad_signature);
	tcase_add_test(tc, test_v2_bad_version_command);
	tcase_add_test(tc, test_v2_length_limit);
	tcase_add_test(tc, test_v2_address_block_short);
	tcase_add_test(tc, test_v2_local_unspec);
	tcase_add_test(tc, test_v2_tlvs);
	suite_add_tcase(s, tc);

	tc = tcase_create("allowed");
	tcase_add_test(tc, test_allowed_modes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proxyproto_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
