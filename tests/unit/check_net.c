/* check_net.c -- unit tests for address parsing and the socket helpers */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chan_helpers.h"
#include "net.h"

/* addr_parse(s) must succeed and format back to want. */
static struct addr
parse_ok(const char *s, int flags, int family, const char *want)
{
	struct addr a;
	char err[64] = "", buf[ADDR_STRLEN];

	ck_assert_msg(addr_parse(s, flags, &a, err, sizeof(err)) == 0,
	    "'%s' rejected: %s", s, err);
	ck_assert_int_eq(a.ss.ss_family, family);
	ck_assert_uint_eq(a.len, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
	return a;
}

static void
parse_bad(const char *s, int flags, const char *reason)
{
	struct addr a;
	char err[64] = "";

	ck_assert_msg(addr_parse(s, flags, &a, err, sizeof(err)) == -1,
	    "'%s' accepted", s);
	ck_assert_msg(strcmp(err, reason) == 0, "'%s': '%s', expected '%s'",
	    s, err, reason);
}

static struct addr
loopback(unsigned port)
{
	struct addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

	memset(&a, 0, sizeof(a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(port);
	a.len = sizeof(*sin);
	return a;
}

/* The port the kernel gave a bound socket. */
static unsigned
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Wait for a non-blocking connect to finish; its net_connect_result(). */
static int
connect_wait(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	ck_assert_int_eq(poll(&pfd, 1, 1000), 1);
	return net_connect_result(fd);
}

START_TEST(test_parse_good)
{
	struct addr a;
	const struct sockaddr_in *sin = (const void *)&a.ss;
	const struct sockaddr_in6 *sin6 = (const void *)&a.ss;

	a = parse_ok("127.0.0.1:80", 0, AF_INET, "127.0.0.1:80");
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	ck_assert_uint_eq(ntohs(sin->sin_port), 80);
	parse_ok("0.0.0.0:1", 0, AF_INET, "0.0.0.0:1");
	parse_ok("255.255.255.255:65535", 0, AF_INET, "255.255.255.255:65535");
	a = parse_ok("[::1]:80", 0, AF_INET6, "[::1]:80");
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 80);
	parse_ok("[::]:8080", 0, AF_INET6, "[::]:8080");
	parse_ok("[2001:DB8:0:0::1]:443", 0, AF_INET6, "[2001:db8::1]:443");
	parse_ok("[::ffff:10.1.2.3]:80", 0, AF_INET6, "[::ffff:10.1.2.3]:80");
	/* Flags only widen what is accepted. */
	parse_ok("127.0.0.1:80", ADDR_LISTEN | ADDR_RESOLVE, AF_INET,
	    "127.0.0.1:80");
	parse_ok("[::1]:80", ADDR_LISTEN | ADDR_RESOLVE, AF_INET6, "[::1]:80");
}
END_TEST

START_TEST(test_parse_any)
{
	struct addr a, b;
	char err[64];

	a = parse_ok("*:80", ADDR_LISTEN, AF_INET, "0.0.0.0:80");
	b = parse_ok("0.0.0.0:80", 0, AF_INET, "0.0.0.0:80");
	ck_assert(addr_equal(&a, &b));
	parse_bad("*:80", 0, "bad host");
	parse_bad("*:80", ADDR_RESOLVE, "bad host");
	parse_bad("*:0", ADDR_LISTEN, "port must be 1..65535");
	parse_bad("*:", ADDR_LISTEN, "port must be 1..65535");
	ck_assert_int_eq(addr_parse("**:80", ADDR_LISTEN, &a, err,
	    sizeof(err)), -1);
}
END_TEST

START_TEST(test_parse_resolve)
{
	struct addr a;
	char err[64] = "", buf[ADDR_STRLEN];

	parse_bad("localhost:80", 0, "bad host");
	parse_bad("localhost:80", ADDR_LISTEN, "bad host");
	ck_assert_msg(addr_parse("localhost:80", ADDR_RESOLVE, &a, err,
	    sizeof(err)) == 0, "localhost: %s", err);
	addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, "127.0.0.1:80") == 0 ||
	    strcmp(buf, "[::1]:80") == 0, "localhost is %s", buf);
	ck_assert_uint_eq(a.len, a.ss.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	/* The port is checked before any name is looked up. */
	parse_bad("localhost:0", ADDR_RESOLVE, "port must be 1..65535");
	parse_bad("localhost", ADDR_RESOLVE, "missing port");
	/* No resolving inside brackets or of an unbracketed IPv6. */
	parse_bad("[localhost]:80", ADDR_RESOLVE, "bad host");
	parse_bad("::1:80", ADDR_RESOLVE, "bad host");
}
END_TEST

START_TEST(test_parse_bad)
{
	parse_bad("127.0.0.1:0", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:65536", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:99999", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:4294967376", 0, "port must be 1..65535");	/* 2^32 + 80 */
	parse_bad("127.0.0.1:", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:-80", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:+80", 0, "port must be 1..65535");
	parse_bad("127.0.0.1: 80", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:80 ", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:80x", 0, "port must be 1..65535");
	parse_bad("127.0.0.1:http", 0, "port must be 1..65535");
	parse_bad("[::1]:0", 0, "port must be 1..65535");
	parse_bad("[::1]:", 0, "port must be 1..65535");
	parse_bad("127.0.0.1", 0, "missing port");
	parse_bad("", 0, "missing port");
	parse_bad(":80", 0, "bad host");
	parse_bad(":80", ADDR_LISTEN, "bad host");
	parse_bad("[]:80", 0, "bad host");
	parse_bad("[::1]", 0, "bad host");
	parse_bad("[::1]80", 0, "bad host");
	parse_bad("[::1:80", 0, "bad host");
	parse_bad("::1:80", 0, "bad host");
	parse_bad("[127.0.0.1]:80", 0, "bad host");
	parse_bad("[::g]:80", 0, "bad host");
	parse_bad("256.0.0.1:80", 0, "bad host");
	parse_bad("1.2.3:80", 0, "bad host");
	parse_bad(" 127.0.0.1:80", 0, "bad host");
	parse_bad("localhost:80", 0, "bad host");
}
END_TEST

START_TEST(test_format)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	char buf[ADDR_STRLEN];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(65535);
	inet_pton(AF_INET, "192.168.100.200", &sin.sin_addr);
	addr_format((struct sockaddr *)&sin, buf, sizeof(buf));
	ck_assert_str_eq(buf, "192.168.100.200:65535");

	/* The longest form fits ADDR_STRLEN. */
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
	    &sin6.sin6_addr);
	addr_format((struct sockaddr *)&sin6, buf, sizeof(buf));
	ck_assert_str_eq(buf,
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	addr_format((struct sockaddr *)&sun, buf, sizeof(buf));
	ck_assert_str_eq(buf, "unknown");

	/* A short buffer is cut, never overrun. */
	memset(buf, 'x', sizeof(buf));
	addr_format((struct sockaddr *)&sin, buf, 8);
	ck_assert_str_eq(buf, "192.168");
	ck_assert_int_eq(buf[8], 'x');
}
END_TEST

START_TEST(test_format_roundtrip)
{
	static const char *const forms[] = {
		"127.0.0.1:80", "10.20.30.40:8080", "0.0.0.0:1",
		"[::1]:443", "[2001:db8::8:800:200c:417a]:9999", "[fe80::1]:22",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct addr a, b;
		char err[64], buf[ADDR_STRLEN];

		ck_assert_int_eq(addr_parse(forms[i], 0, &a, err, sizeof(err)),
		    0);
		addr_format((struct sockaddr *)&a.ss, buf, sizeof(buf));
		ck_assert_str_eq(buf, forms[i]);
		ck_assert_int_eq(addr_parse(buf, 0, &b, err, sizeof(err)), 0);
		ck_assert(addr_equal(&a, &b));
	}
}
END_TEST

START_TEST(test_equal)
{
	struct addr a, b;
	char err[64];

#define P(s, x)	ck_assert_int_eq(addr_parse((s), ADDR_LISTEN, (x), err, \
	    sizeof(err)), 0)
	P("127.0.0.1:80", &a);
	P("127.0.0.1:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 1);
	ck_assert_int_eq(addr_equal(&a, &a), 1);
	P("127.0.0.1:81", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
	P("127.0.0.2:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
	P("[::ffff:127.0.0.1]:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
	ck_assert_int_eq(addr_equal(&b, &a), 0);
	P("[::1]:80", &a);
	P("[0:0:0:0:0:0:0:1]:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 1);
	P("[::1]:81", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
	P("[::2]:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
	P("*:80", &a);
	P("0.0.0.0:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 1);
	P("[::]:80", &b);
	ck_assert_int_eq(addr_equal(&a, &b), 0);
#undef P
	/* Neither IPv4 nor IPv6: never equal, not even to itself. */
	memset(&a, 0, sizeof(a));
	a.ss.ss_family = AF_UNIX;
	b = a;
	ck_assert_int_eq(addr_equal(&a, &b), 0);
}
END_TEST

START_TEST(test_listen_connect)
{
	struct addr a = loopback(0);
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int lfd, cfd, afd, on = 0, flags;
	socklen_t olen = sizeof(on);
	char buf[8];
	unsigned port;

	lfd = net_listen(&a, 16);
	ck_assert_int_ge(lfd, 0);
	port = bound_port(lfd);
	ck_assert_uint_gt(port, 0);
	ck_assert_int_ne((flags = fcntl(lfd, F_GETFL)), -1);
	ck_assert(flags & O_NONBLOCK);
	ck_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &olen),
	    0);
	ck_assert_int_ne(on, 0);
	ck_assert_int_eq(getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen),
	    0);
	ck_assert_int_ne(on, 0);
	/* Nothing waiting: accept does not block. */
	ck_assert_int_eq(accept(lfd, NULL, NULL), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);

	a = loopback(port);
	cfd = net_connect((struct sockaddr *)&a.ss, a.len);
	ck_assert_int_ge(cfd, 0);
	ck_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(connect_wait(cfd), 0);
	ck_assert_int_eq(getpeername(cfd, (struct sockaddr *)&sin, &slen), 0);
	ck_assert_uint_eq(ntohs(sin.sin_port), port);

	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(write(cfd, "ping", 4), 4);
	ck_assert_int_eq(read(afd, buf, sizeof(buf)), 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

START_TEST(test_listen_v6)
{
	struct addr a;
	char err[64];
	int lfd, cfd, afd, on = 0;
	socklen_t olen = sizeof(on);
	unsigned port;

	ck_assert_int_eq(addr_parse("[::1]:1", 0, &a, err, sizeof(err)), 0);
	((struct sockaddr_in6 *)&a.ss)->sin6_port = 0;
	if ((lfd = net_listen(&a, 16)) == -1 && (errno == EAFNOSUPPORT ||
	    errno == EADDRNOTAVAIL))
		return;		/* no IPv6 here */
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &olen),
	    0);
	ck_assert_int_ne(on, 0);
	port = bound_port(lfd);
	((struct sockaddr_in6 *)&a.ss)->sin6_port = htons(port);
	cfd = net_connect((struct sockaddr *)&a.ss, a.len);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(connect_wait(cfd), 0);
	ck_assert_int_ge(afd = accept(lfd, NULL, NULL), 0);
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

START_TEST(test_listen_in_use)
{
	struct addr a = loopback(0);
	int lfd, before;

	ck_assert_int_ge(lfd = net_listen(&a, 16), 0);
	a = loopback(bound_port(lfd));
	before = open_fds();
	errno = 0;
	ck_assert_int_eq(net_listen(&a, 16), -1);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_int_eq(open_fds(), before);
	close(lfd);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct addr a = loopback(0);
	int lfd, cfd, before;
	unsigned port;

	/* A port that was just free: nobody listens there now. */
	ck_assert_int_ge(lfd = net_listen(&a, 1), 0);
	port = bound_port(lfd);
	close(lfd);
	a = loopback(port);
	before = open_fds();
	errno = 0;
	cfd = net_connect((struct sockaddr *)&a.ss, a.len);
	if (cfd == -1) {
		ck_assert_int_eq(errno, ECONNREFUSED);
		ck_assert_int_eq(open_fds(), before);
		return;
	}
	errno = 0;
	ck_assert_int_eq(connect_wait(cfd), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(cfd);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_connect_fails_clean)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	int before = open_fds();

	/* A socket that cannot be made, and one that cannot connect. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = 0xfff;
	errno = 0;
	ck_assert_int_eq(net_connect((struct sockaddr *)&sin, sizeof(sin)), -1);
	ck_assert_int_ne(errno, 0);
	ck_assert_int_eq(open_fds(), before);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/nonexistent/baton.sock");
	errno = 0;
	ck_assert_int_eq(net_connect((struct sockaddr *)&sun, sizeof(sun)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_connect_result_bad_fd)
{
	int p[2];

	errno = 0;
	ck_assert_int_eq(net_connect_result(-1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(pipe(p), 0);
	errno = 0;
	ck_assert_int_eq(net_connect_result(p[0]), -1);
	ck_assert_int_eq(errno, ENOTSOCK);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_nofile_budget)
{
	static const long limits[] = { 1, 16, 17, 64, 128, 1024, 20000,
	    65536, 1048576 };

	/* Everything fits: own + pipes + connections within the limit. */
	for (size_t i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
		long n = limits[i];
		unsigned long c = net_nofile_conns(n);
		unsigned p = net_nofile_pipes(n);

		ck_assert_uint_ge(c, 1);
		ck_assert_uint_le(p, NET_PIPES_MAX);
		if (n > NET_OWN_FDS + 2)
			ck_assert_int_le(NET_OWN_FDS + 2 * (long)p +
			    2 * (long)c, n);
	}
	ck_assert_uint_eq(net_nofile_pipes(128), 14);
	ck_assert_uint_eq(net_nofile_conns(128), 42);
	ck_assert_uint_eq(net_nofile_pipes(65536), NET_PIPES_MAX);
	ck_assert_uint_eq(net_nofile_conns(65536), (65536 - 16 - 2048) / 2);
	ck_assert_uint_eq(net_nofile_pipes(10), 0);
	ck_assert_uint_eq(net_nofile_conns(10), 1);
}
END_TEST

START_TEST(test_raise_nofile)
{
	struct rlimit rl;
	long n = net_raise_nofile(0);

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(n, (long)rl.rlim_cur);
	/* The hard limit is the target unless it is beyond the kernel's. */
	if (rl.rlim_max != RLIM_INFINITY)
		ck_assert(rl.rlim_cur == rl.rlim_max);
}
END_TEST

static Suite *
net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc;

	tc = tcase_create("addr");
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_any);
	tcase_add_test(tc, test_parse_resolve);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_format_roundtrip);
	tcase_add_test(tc, test_equal);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, test_listen_connect);
	tcase_add_test(tc, test_listen_v6);
	tcase_add_test(tc, test_listen_in_use);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_connect_fails_clean);
	tcase_add_test(tc, test_connect_result_bad_fd);
	tcase_add_test(tc, test_raise_nofile);
	tcase_add_test(tc, test_nofile_budget);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(net_suite());
}
