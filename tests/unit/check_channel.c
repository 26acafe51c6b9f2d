/* check_channel.c -- unit tests for channel framing and fd passing */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chan_helpers.h"
#include "channel.h"

/* Message buffers are 8-byte aligned, as chan_decode() expects. */
union msgbuf {
	uint64_t	align;
	char		buf[CHAN_MSG_MAX];
};

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void
conn_record(struct chan_conn *c, uint64_t id, uint32_t frontend,
    const char *ip, uint16_t port)
{
	struct sockaddr_in sin;

	memset(c, 0xa5, sizeof(*c));	/* set_peer must clear the rest */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	ck_assert_int_eq(chan_conn_set_peer(c, (struct sockaddr *)&sin), 0);
	c->id = id;
	c->frontend = frontend;
}

/* Rewrite the header of an encoded message. */
static void
set_hdr(void *buf, unsigned type, unsigned count, size_t len)
{
	struct chan_hdr h;

	h.type = (uint16_t)type;
	h.count = (uint16_t)count;
	h.len = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
}

/* chan_decode() must fail, saying something that contains what. */
static void
expect_reject(const void *buf, size_t len, size_t nfds, const char *what)
{
	struct chan_msg m;
	char err[128] = "";

	ck_assert_int_eq(chan_decode(buf, len, nfds, &m, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, what) != NULL, "error '%s' lacks '%s'",
	    err, what);
}

START_TEST(test_record_size)
{
	ck_assert_uint_eq(sizeof(struct chan_hdr), 8);
	ck_assert_uint_eq(sizeof(struct chan_conn), 32);
	ck_assert_uint_eq(chan_record_size(CHAN_CONN),
	    sizeof(struct chan_conn));
	ck_assert_uint_eq(chan_record_size(CHAN_ACK), sizeof(struct chan_ack));
	ck_assert_uint_eq(chan_record_size(CHAN_DRAIN), 0);
	ck_assert_uint_eq(chan_record_size(CHAN_READY), 0);
	ck_assert_uint_eq(chan_record_size(0), 0);
	ck_assert_uint_eq(chan_record_size(CHAN_TYPE_MAX), 0);
}
END_TEST

START_TEST(test_roundtrip_conn)
{
	struct chan_conn recs[CHAN_MAX_FDS];
	union msgbuf b;
	struct chan_msg m;
	char err[128];
	size_t len;

	for (size_t n = 1; n <= CHAN_MAX_FDS; n += CHAN_MAX_FDS - 1) {
		for (size_t i = 0; i < n; i++)
			conn_record(&recs[i], 1000 + i, (uint32_t)i * 7,
			    "192.0.2.33", (uint16_t)(40000 + i));
		len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, n);
		ck_assert_uint_eq(len, sizeof(struct chan_hdr) +
		    n * sizeof(struct chan_conn));
		ck_assert_int_eq(chan_decode(b.buf, len, n, &m, err,
		    sizeof(err)), 0);
		ck_assert_int_eq(m.type, CHAN_CONN);
		ck_assert_uint_eq(m.count, n);
		ck_assert_ptr_nonnull(m.conns);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(m.conns[i].id, 1000 + i);
			ck_assert_uint_eq(m.conns[i].frontend, i * 7);
			ck_assert_uint_eq(m.conns[i].family, AF_INET);
			ck_assert_uint_eq(ntohs(m.conns[i].port), 40000 + i);
			ck_assert_mem_eq(&m.conns[i], &recs[i],
			    sizeof(recs[i]));
		}
	}
}
END_TEST

START_TEST(test_roundtrip_ack)
{
	struct chan_ack a = { 0x1122334455667788ULL };
	union msgbuf b;
	struct chan_msg m;
	char err[128];
	size_t len;

	len = chan_encode(b.buf, sizeof(b.buf), CHAN_ACK, &a, 1);
	ck_assert_uint_eq(len, sizeof(struct chan_hdr) + sizeof(a));
	ck_assert_int_eq(chan_decode(b.buf, len, 0, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.type, CHAN_ACK);
	ck_assert_uint_eq(m.count, 1);
	ck_assert_uint_eq(m.ack, 0x1122334455667788ULL);
	ck_assert_ptr_null(m.conns);
}
END_TEST

START_TEST(test_roundtrip_bare)
{
	static const int types[] = { CHAN_DRAIN, CHAN_READY, CHAN_BYE };
	union msgbuf b;
	struct chan_msg m;
	char err[128];
	size_t len;

	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++) {
		memset(&m, 0xff, sizeof(m));
		len = chan_encode(b.buf, sizeof(b.buf), types[i], NULL, 0);
		ck_assert_uint_eq(len, sizeof(struct chan_hdr));
		ck_assert_int_eq(chan_decode(b.buf, len, 0, &m, err,
		    sizeof(err)), 0);
		ck_assert_int_eq(m.type, types[i]);
		ck_assert_uint_eq(m.count, 0);
		ck_assert_ptr_null(m.conns);
		ck_assert_uint_eq(m.ack, 0);
	}
}
END_TEST

START_TEST(test_encode_rejects)
{
	struct chan_conn recs[CHAN_MAX_FDS + 1];
	struct chan_ack acks[2] = { { 1 }, { 2 } };
	union msgbuf b;
	size_t one = sizeof(struct chan_hdr) + sizeof(struct chan_conn);

	memset(recs, 0, sizeof(recs));
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), 0, NULL, 0), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_TYPE_MAX,
	    NULL, 0), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), -1, NULL, 0), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs,
	    0), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs,
	    CHAN_MAX_FDS + 1), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_ACK, acks,
	    0), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_ACK, acks,
	    2), 0);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(b.buf), CHAN_DRAIN, acks,
	    1), 0);
	/* Too small a buffer, by one byte; exactly enough is fine. */
	ck_assert_uint_eq(chan_encode(b.buf, one - 1, CHAN_CONN, recs, 1), 0);
	ck_assert_uint_eq(chan_encode(b.buf, one, CHAN_CONN, recs, 1), one);
	ck_assert_uint_eq(chan_encode(b.buf, sizeof(struct chan_hdr) - 1,
	    CHAN_READY, NULL, 0), 0);
}
END_TEST

START_TEST(test_decode_rejects)
{
	struct chan_conn recs[2];
	struct chan_ack a = { 7 };
	union msgbuf b;
	size_t len, hl = sizeof(struct chan_hdr);

	conn_record(&recs[0], 1, 0, "127.0.0.1", 1);
	conn_record(&recs[1], 2, 0, "127.0.0.1", 2);
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, 2);
	ck_assert_uint_eq(len, hl + 2 * sizeof(recs[0]));

	/* short */
	expect_reject(b.buf, 0, 0, "short");
	expect_reject(b.buf, hl - 1, 0, "short");
	/* unknown type */
	set_hdr(b.buf, 0, 0, hl);
	expect_reject(b.buf, hl, 0, "unknown");
	set_hdr(b.buf, CHAN_TYPE_MAX, 0, hl);
	expect_reject(b.buf, hl, 0, "unknown");
	set_hdr(b.buf, 0xffff, 0, hl);
	expect_reject(b.buf, hl, 0, "unknown");
	/* count out of range */
	set_hdr(b.buf, CHAN_CONN, 0, hl);
	expect_reject(b.buf, hl, 0, "count");
	set_hdr(b.buf, CHAN_CONN, CHAN_MAX_FDS + 1,
	    hl + (CHAN_MAX_FDS + 1) * sizeof(recs[0]));
	expect_reject(b.buf, hl + (CHAN_MAX_FDS + 1) * sizeof(recs[0]),
	    CHAN_MAX_FDS + 1, "count");
	set_hdr(b.buf, CHAN_ACK, 0, hl);
	expect_reject(b.buf, hl, 0, "count");
	set_hdr(b.buf, CHAN_DRAIN, 1, hl + 8);
	expect_reject(b.buf, hl + 8, 0, "count");
	/* wrong length: header and size disagree, or count and size do */
	set_hdr(b.buf, CHAN_CONN, 2, len);
	expect_reject(b.buf, len - 1, 2, "length");
	expect_reject(b.buf, len + 1, 2, "length");
	set_hdr(b.buf, CHAN_CONN, 2, len + 8);
	expect_reject(b.buf, len + 8, 2, "length");
	expect_reject(b.buf, len, 2, "length");	/* only the header lies */
	set_hdr(b.buf, CHAN_CONN, 2, len - 32);
	expect_reject(b.buf, len, 2, "length");
	set_hdr(b.buf, CHAN_CONN, 1, len);
	expect_reject(b.buf, len, 1, "length");
	set_hdr(b.buf, CHAN_READY, 0, hl + 1);
	expect_reject(b.buf, hl + 1, 0, "length");
	/* descriptors and records do not match */
	set_hdr(b.buf, CHAN_CONN, 2, len);
	expect_reject(b.buf, len, 1, "descriptors");
	expect_reject(b.buf, len, 3, "descriptors");
	expect_reject(b.buf, len, 0, "descriptors");
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_ACK, &a, 1);
	expect_reject(b.buf, len, 1, "descriptors");
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_DRAIN, NULL, 0);
	expect_reject(b.buf, len, 1, "descriptors");
	/* bad address family, in the second record */
	recs[1].family = AF_UNIX;
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, 2);
	expect_reject(b.buf, len, 2, "family");
	recs[1].family = 0;
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, 2);
	expect_reject(b.buf, len, 2, "family");
}
END_TEST

START_TEST(test_peer_v4)
{
	struct sockaddr_in sin, *out;
	struct sockaddr_storage ss;
	struct chan_conn c;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(54321);
	ck_assert_int_eq(inet_pton(AF_INET, "203.0.113.9", &sin.sin_addr), 1);
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(chan_conn_set_peer(&c, (struct sockaddr *)&sin), 0);
	ck_assert_uint_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.pad, 0);
	for (size_t i = 4; i < sizeof(c.addr); i++)
		ck_assert_uint_eq(c.addr[i], 0);
	memset(&ss, 0xa5, sizeof(ss));
	ck_assert_uint_eq(chan_conn_peer(&c, &ss), sizeof(sin));
	out = (struct sockaddr_in *)&ss;
	ck_assert_int_eq(out->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(out->sin_port), 54321);
	ck_assert_uint_eq(out->sin_addr.s_addr, sin.sin_addr.s_addr);
	ck_assert_mem_eq(out, &sin, sizeof(sin));
}
END_TEST

START_TEST(test_peer_v6)
{
	struct sockaddr_in6 sin6, *out;
	struct sockaddr_storage ss;
	struct chan_conn c;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::dead:beef",
	    &sin6.sin6_addr), 1);
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(chan_conn_set_peer(&c, (struct sockaddr *)&sin6), 0);
	ck_assert_uint_eq(c.family, AF_INET6);
	memset(&ss, 0xa5, sizeof(ss));
	ck_assert_uint_eq(chan_conn_peer(&c, &ss), sizeof(sin6));
	out = (struct sockaddr_in6 *)&ss;
	ck_assert_int_eq(out->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(out->sin6_port), 443);
	ck_assert_mem_eq(&out->sin6_addr, &sin6.sin6_addr, 16);
	ck_assert_mem_eq(out, &sin6, sizeof(sin6));
}
END_TEST

START_TEST(test_peer_not_ip)
{
	struct sockaddr_un sun;
	struct chan_conn c;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(chan_conn_set_peer(&c, (struct sockaddr *)&sun), -1);
}
END_TEST

/*
 * Send a CHAN_CONN with n pipe write ends, receive it, and prove each
 * received descriptor is a new number for the same pipe.
 */
static void
pass_fds(size_t n)
{
	int sv[2], (*pipes)[2], sent[CHAN_MAX_FDS], got[CHAN_MAX_FDS];
	struct chan_conn recs[CHAN_MAX_FDS];
	union msgbuf b, r;
	struct chan_msg m;
	char err[128], c;
	size_t len, nfds = 999;
	ssize_t rn;

	chan_pair(sv);
	ck_assert_ptr_nonnull(pipes = calloc(n, sizeof(*pipes)));
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC), 0);
		sent[i] = pipes[i][1];
		conn_record(&recs[i], i + 1, 0, "127.0.0.1", (uint16_t)i + 1);
	}
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, n);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, sent, n), 0);
	/* The sender's copies stay open until it closes them. */
	for (size_t i = 0; i < n; i++)
		ck_assert(fd_is_open(sent[i]));

	rn = chan_recv(sv[1], r.buf, sizeof(r.buf), got, &nfds);
	ck_assert_int_eq(rn, (ssize_t)len);
	ck_assert_uint_eq(nfds, n);
	ck_assert_int_eq(chan_decode(r.buf, (size_t)rn, nfds, &m, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(m.count, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(m.conns[i].id, i + 1);
		for (size_t k = 0; k < n; k++) {
			ck_assert_int_ne(got[i], pipes[k][0]);
			ck_assert_int_ne(got[i], pipes[k][1]);
		}
		/* close-on-exec, so a forked helper cannot inherit it */
		ck_assert_int_eq(fcntl(got[i], F_GETFD) & FD_CLOEXEC,
		    FD_CLOEXEC);
	}
	/* The sender hands over: close its copies, the received ones work. */
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(close(pipes[i][1]), 0);
	for (size_t i = 0; i < n; i++) {
		c = (char)('A' + i % 26);
		ck_assert_int_eq(write(got[i], &c, 1), 1);
		ck_assert_int_eq(close(got[i]), 0);
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(read(pipes[i][0], &c, 1), 1);
		ck_assert_int_eq(c, 'A' + i % 26);
		/* every write end is closed now: end of file */
		ck_assert_int_eq(read(pipes[i][0], &c, 1), 0);
		close(pipes[i][0]);
	}
	free(pipes);
	close(sv[0]);
	close(sv[1]);
}

START_TEST(test_pass_one_fd)
{
	int before = open_fds();

	pass_fds(1);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_pass_max_fds)
{
	int before = open_fds();

	pass_fds(CHAN_MAX_FDS);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

START_TEST(test_send_too_many_fds)
{
	int sv[2], fds[CHAN_MAX_FDS + 1];
	union msgbuf b;
	size_t len;

	chan_pair(sv);
	for (size_t i = 0; i < CHAN_MAX_FDS + 1; i++)
		fds[i] = sv[0];
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_READY, NULL, 0);
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, fds, CHAN_MAX_FDS + 1),
	    -1);
	ck_assert_int_eq(errno, EINVAL);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_messages_keep_boundaries)
{
	struct chan_ack a = { 42 };
	union msgbuf b, r;
	struct chan_msg m;
	char err[128];
	int sv[2], fd;
	size_t l1, l2, nfds;

	chan_pair(sv);
	l1 = chan_encode(b.buf, sizeof(b.buf), CHAN_READY, NULL, 0);
	ck_assert_int_eq(chan_send(sv[1], b.buf, l1, NULL, 0), 0);
	l2 = chan_encode(b.buf, sizeof(b.buf), CHAN_ACK, &a, 1);
	ck_assert_int_eq(chan_send(sv[1], b.buf, l2, NULL, 0), 0);

	ck_assert_int_eq(chan_recv(sv[0], r.buf, sizeof(r.buf), &fd, &nfds),
	    (ssize_t)l1);
	ck_assert_uint_eq(nfds, 0);
	ck_assert_int_eq(chan_decode(r.buf, l1, nfds, &m, err, sizeof(err)),
	    0);
	ck_assert_int_eq(m.type, CHAN_READY);
	ck_assert_int_eq(chan_recv(sv[0], r.buf, sizeof(r.buf), &fd, &nfds),
	    (ssize_t)l2);
	ck_assert_int_eq(chan_decode(r.buf, l2, nfds, &m, err, sizeof(err)),
	    0);
	ck_assert_int_eq(m.type, CHAN_ACK);
	ck_assert_uint_eq(m.ack, 42);
	/* Nothing more: EAGAIN, never a block. */
	errno = 0;
	ck_assert_int_eq(chan_recv(sv[0], r.buf, sizeof(r.buf), &fd, &nfds),
	    -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_full_channel)
{
	union msgbuf b, r;
	int sv[2], p[2], got[CHAN_MAX_FDS];
	long sent = 0, received = 0;
	size_t len, nfds;
	ssize_t n;

	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_READY, NULL, 0);
	/* Both ends are blocking sockets: chan_send() must not block. */
	while (sent < 1000000 && chan_send(sv[0], b.buf, len, NULL, 0) == 0)
		sent++;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_gt(sent, 0);
	ck_assert_int_lt(sent, 1000000);

	/* A message with a descriptor fails too; the sender keeps its fd. */
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, &p[1], 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(fd_is_open(p[1]));

	while ((n = chan_recv(sv[1], r.buf, sizeof(r.buf), got, &nfds)) > 0) {
		ck_assert_int_eq(n, (ssize_t)len);
		ck_assert_uint_eq(nfds, 0);
		received++;
	}
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(received, sent);
	/* Drained: sending works again. */
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, NULL, 0), 0);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_recv_eof)
{
	union msgbuf r;
	int sv[2], got[CHAN_MAX_FDS];
	size_t nfds = 5;

	chan_pair(sv);
	close(sv[0]);
	ck_assert_int_eq(chan_recv(sv[1], r.buf, sizeof(r.buf), got, &nfds),
	    0);
	ck_assert_uint_eq(nfds, 0);
	close(sv[1]);
}
END_TEST

START_TEST(test_send_to_closed_peer)
{
	union msgbuf b;
	int sv[2];
	size_t len;

	/* EPIPE, and no SIGPIPE to kill the master. */
	chan_pair(sv);
	close(sv[1]);
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_DRAIN, NULL, 0);
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, NULL, 0), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(sv[0]);
}
END_TEST

START_TEST(test_truncated_closes_fds)
{
	struct chan_conn recs[4];
	union msgbuf b, r;
	int sv[2], p[2], sent[4], got[CHAN_MAX_FDS];
	size_t len, nfds = 99;
	int before;

	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	for (size_t i = 0; i < 4; i++) {
		sent[i] = p[1];
		conn_record(&recs[i], i, 0, "127.0.0.1", 80);
	}
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, 4);
	ck_assert_int_eq(chan_send(sv[0], b.buf, len, sent, 4), 0);
	before = open_fds();
	errno = 0;
	ck_assert_int_eq(chan_recv(sv[1], r.buf, sizeof(struct chan_hdr), got,
	    &nfds), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(nfds, 0);
	ck_assert_int_eq(open_fds(), before);
	/* The message is gone, not half-read. */
	errno = 0;
	ck_assert_int_eq(chan_recv(sv[1], r.buf, sizeof(r.buf), got, &nfds),
	    -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Send a CHAN_CONN with id and two copies of fd. */
static void
send_conn_pair(int sock, uint64_t id, int fd)
{
	struct chan_conn recs[2];
	union msgbuf b;
	int fds[2] = { fd, fd };
	size_t len;

	conn_record(&recs[0], id, 0, "127.0.0.1", 80);
	conn_record(&recs[1], id, 0, "127.0.0.1", 81);
	len = chan_encode(b.buf, sizeof(b.buf), CHAN_CONN, recs, 2);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(chan_send(sock, b.buf, len, fds, 2), 0);
}

START_TEST(test_batch_reads_many)
{
	struct chan_batch *b;
	struct chan_msg m;
	char err[128];
	int sv[2], p[2], before, n, total = CHAN_BATCH + 5;
	uint64_t next = 1;

	ck_assert_ptr_nonnull(b = malloc(sizeof(*b)));
	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	before = open_fds();
	for (int i = 0; i < total; i++)
		send_conn_pair(sv[0], (uint64_t)i + 1, p[1]);
	/* A full batch, then the rest: less than full means drained. */
	for (int round = 0; round < 2; round++) {
		n = chan_recv_batch(sv[1], b);
		ck_assert_int_eq(n, round == 0 ? CHAN_BATCH : 5);
		for (int k = 0; k < n; k++) {
			ck_assert_int_gt(b->len[k], 0);
			ck_assert_uint_eq(b->nfds[k], 2);
			ck_assert_int_eq(chan_decode(b->data[k],
			    (size_t)b->len[k], b->nfds[k], &m, err,
			    sizeof(err)), 0);
			ck_assert_int_eq(m.type, CHAN_CONN);
			ck_assert_uint_eq(m.conns[0].id, next);
			next++;
			for (size_t f = 0; f < 2; f++) {
				ck_assert_int_eq(fcntl(b->fds[k][f], F_GETFD) &
				    FD_CLOEXEC, FD_CLOEXEC);
				ck_assert_int_eq(close(b->fds[k][f]), 0);
			}
		}
	}
	ck_assert_uint_eq(next, (uint64_t)total + 1);
	errno = 0;
	ck_assert_int_eq(chan_recv_batch(sv[1], b), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(open_fds(), before);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(b);
}
END_TEST

START_TEST(test_batch_close_rest)
{
	struct chan_batch *b;
	int sv[2], p[2], before, n;

	ck_assert_ptr_nonnull(b = malloc(sizeof(*b)));
	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	before = open_fds();
	for (int i = 0; i < 3; i++)
		send_conn_pair(sv[0], (uint64_t)i + 1, p[1]);
	ck_assert_int_eq(n = chan_recv_batch(sv[1], b), 3);
	ck_assert_int_eq(open_fds(), before + 6);
	/* The first is dispatched (here: closed by hand), the rest dropped. */
	close(b->fds[0][0]);
	close(b->fds[0][1]);
	chan_batch_close(b, 1, n);
	ck_assert_uint_eq(b->nfds[1], 0);
	ck_assert_int_eq(open_fds(), before);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(b);
}
END_TEST

START_TEST(test_batch_truncated_and_eof)
{
	static char big[CHAN_MSG_MAX + 64];
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct chan_batch *b;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	int sv[2], p[2], before, n;

	ck_assert_ptr_nonnull(b = malloc(sizeof(*b)));
	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	before = open_fds();
	/* Too long for a batch slot, with a descriptor: it must be closed. */
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = big;
	iov.iov_len = sizeof(big);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &p[1], sizeof(int));
	ck_assert_int_eq(sendmsg(sv[0], &msg, 0), (ssize_t)sizeof(big));
	send_conn_pair(sv[0], 7, p[1]);
	close(sv[0]);

	n = chan_recv_batch(sv[1], b);
	ck_assert_int_ge(n, 3);
	ck_assert_int_eq(b->len[0], -1);
	ck_assert_uint_eq(b->nfds[0], 0);
	ck_assert_int_gt(b->len[1], 0);
	ck_assert_uint_eq(b->nfds[1], 2);
	close(b->fds[1][0]);
	close(b->fds[1][1]);
	/* Then the end of file, as a message of length 0. */
	ck_assert_int_eq(b->len[2], 0);
	ck_assert_uint_eq(b->nfds[2], 0);
	ck_assert_int_eq(open_fds(), before - 1);	/* sv[0] is closed */
	close(p[0]);
	close(p[1]);
	close(sv[1]);
	free(b);
}
END_TEST

START_TEST(test_too_many_fds_closes_all)
{
	enum { N = CHAN_MAX_FDS + 36 };
	char cbuf[CMSG_SPACE(sizeof(int) * N)];
	union msgbuf r;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	struct iovec iov;
	int sv[2], p[2], fds[N], got[CHAN_MAX_FDS];
	size_t nfds = 99;
	char byte = 0;
	int before;

	/* A peer sends more descriptors than a channel message may carry. */
	chan_pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	for (size_t i = 0; i < N; i++)
		fds[i] = p[1];
	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int) * N);
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	ck_assert_int_eq(sendmsg(sv[0], &msg, 0), 1);

	before = open_fds();
	errno = 0;
	ck_assert_int_eq(chan_recv(sv[1], r.buf, sizeof(r.buf), got, &nfds),
	    -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(nfds, 0);
	ck_assert_int_eq(open_fds(), before);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static Suite *
channel_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *tc;

	tc = tcase_create("framing");
	tcase_add_test(tc, test_record_size);
	tcase_add_test(tc, test_roundtrip_conn);
	tcase_add_test(tc, test_roundtrip_ack);
	tcase_add_test(tc, test_roundtrip_bare);
	tcase_add_test(tc, test_encode_rejects);
	tcase_add_test(tc, test_decode_rejects);
	tcase_add_test(tc, test_peer_v4);
	tcase_add_test(tc, test_peer_v6);
	tcase_add_test(tc, test_peer_not_ip);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, test_pass_one_fd);
	tcase_add_test(tc, test_pass_max_fds);
	tcase_add_test(tc, test_send_too_many_fds);
	tcase_add_test(tc, test_messages_keep_boundaries);
	tcase_add_test(tc, test_full_channel);
	tcase_add_test(tc, test_recv_eof);
	tcase_add_test(tc, test_send_to_closed_peer);
	tcase_add_test(tc, test_truncated_closes_fds);
	tcase_add_test(tc, test_too_many_fds_closes_all);
	tcase_add_test(tc, test_batch_reads_many);
	tcase_add_test(tc, test_batch_truncated_and_eof);
	tcase_add_test(tc, test_batch_close_rest);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(channel_suite());
}
