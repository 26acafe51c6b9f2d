/* check_handover.c -- a live session between processes: its messages, the
 * relay's export and import over real sockets, and the dispatch room's
 * ownership of moving sessions (sent, taken back, sent again, acked) */
#include "ac_config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_helpers.h"
#include "config_helpers.h"
#include "channel.h"
#include "dispatch.h"
#include "relay.h"

static const char cfg_one[] =
    "[frontend web]\n"
    "listen = 127.0.0.1:18080\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

static struct chan_session
session_rec(uint16_t flags, uint32_t up, uint32_t down)
{
	struct chan_session cs;

	memset(&cs, 0, sizeof(cs));
	cs.conn.family = AF_INET;
	cs.conn.port = htons(4000);
	cs.server = 0;
	cs.flags = flags;
	cs.up_bytes = up;
	cs.down_bytes = down;
	cs.bytes_in = 123;
	return cs;
}

/* Encode rec, decode it as if it came with nfds descriptors. */
static int
decode_session(const struct chan_session *rec, size_t nfds,
    struct chan_msg *m)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	char err[128];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_SESSION, rec, 1);

	ck_assert_uint_gt(len, 0);
	return chan_decode(buf, len, nfds, m, err, sizeof(err));
}

START_TEST(test_session_message)
{
	struct chan_session cs = session_rec(CS_UP_PIPE | CS_DOWN_EOF |
	    CS_UP_SPLICE, 10, 0);
	struct chan_msg m;

	ck_assert_int_eq(decode_session(&cs, 3, &m), 0);
	ck_assert_int_eq(m.type, CHAN_SESSION);
	ck_assert_uint_eq(m.session->up_bytes, 10);
	ck_assert_uint_eq(m.session->bytes_in, 123);
	ck_assert_uint_eq(chan_session_nfds(m.session), 3);
	/* Descriptors that do not match the pipes it claims. */
	ck_assert_int_eq(decode_session(&cs, 2, &m), -1);
	ck_assert_int_eq(decode_session(&cs, 4, &m), -1);
	/* Bytes without a pipe to hold them, flags nobody knows. */
	cs = session_rec(0, 0, 5);
	ck_assert_int_eq(decode_session(&cs, 2, &m), -1);
	cs = session_rec(0x100, 0, 0);
	ck_assert_int_eq(decode_session(&cs, 2, &m), -1);
	cs = session_rec(0, 0, 0);
	cs.conn.family = AF_UNIX;
	ck_assert_int_eq(decode_session(&cs, 2, &m), -1);
	/* Both pipes: four descriptors. */
	cs = session_rec(CS_UP_PIPE | CS_DOWN_PIPE, 1, 1);
	ck_assert_int_eq(decode_session(&cs, 4, &m), 0);
}
END_TEST

START_TEST(test_handover_message)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	uint32_t w[8] = { 64, 3, 40, 0x5, 0x1, 0x80 };
	struct chan_msg m;
	char err[128];
	size_t len;

	/* 3 + 40 bits: two bitmap words, five words in all. */
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, w, 5);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m.words[CHAN_HO_CREDIT], 64);
	ck_assert_uint_eq(CHAN_HO_BIT(m.words, 0), 1);
	ck_assert_uint_eq(CHAN_HO_BIT(m.words, 1), 0);
	ck_assert_uint_eq(CHAN_HO_BIT(m.words, 2), 1);
	ck_assert_uint_eq(CHAN_HO_BIT(m.words, 32), 1);
	/* A bitmap longer or shorter than the counts say; descriptors. */
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, w, 6);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), -1);
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, w, 4);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), -1);
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, w, 5);
	ck_assert_int_eq(chan_decode(buf, len, 1, &m, err, sizeof(err)), -1);
	/* Counts that would overflow the words the message can hold. */
	w[CHAN_HO_NFE] = UINT32_MAX;
	w[CHAN_HO_NSRV] = UINT32_MAX;
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, w, 5);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), -1);
}
END_TEST

/* Read exactly n bytes from fd (blocking sockets) and compare. */
static void
expect_bytes(int fd, const char *want, size_t n)
{
	char got[256];
	size_t have = 0;

	ck_assert_uint_le(n, sizeof(got));
	while (have < n) {
		ssize_t k = recv(fd, got + have, n - have, 0);
		ck_assert_int_gt(k, 0);
		have += (size_t)k;
	}
	ck_assert_mem_eq(got, want, n);
}

/* Pass fds over a channel, as the master would: the copies that came. */
static size_t
pass_fds(const int *fds, size_t n, int *out)
{
	int sv[2];
	char buf[16] = "x";
	size_t nout = CHAN_MAX_FDS;

	chan_pair(sv);
	ck_assert_int_eq(chan_send(sv[0], buf, 1, fds, n), 0);
	ck_assert_int_eq(chan_recv(sv[1], buf, sizeof(buf), out, &nout), 1);
	close(sv[0]);
	close(sv[1]);
	return nout;
}

/*
 * A relay with bytes waiting both ways (a buffer for the server, a full
 * pipe for the client) moves to another "process" (another pool, the
 * descriptors passed with SCM_RIGHTS); there every waiting byte goes out
 * first, in order, and the relay goes on; the first relay's copies are
 * all closed.
 */
START_TEST(test_relay_export_import)
{
	struct relay_pool pa, pb;
	struct relay ra, rb;
	struct relay_export ex;
	int client[2], server[2], got[CHAN_MAX_FDS], before = open_fds();
	const char *why = NULL;
	size_t n;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, client), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, server), 0);
	ck_assert_int_eq(relay_pool_init(&pa, 1, 8), 0);
	ck_assert_int_eq(relay_pool_init(&pb, 1, 8), 0);
	relay_init(&ra, &pa, client[1]);
	ra.server.fd = server[1];
	ra.up.buf = calloc(1, sizeof(*ra.up.buf));
	memcpy(ra.up.buf->data, "xxfor the server", 16);
	ra.up.buf->off = 2;
	ra.up.buf->len = 16;
	ra.down.pipe = calloc(1, sizeof(*ra.down.pipe));
	ck_assert_int_eq(pipe2(ra.down.pipe->fd, O_NONBLOCK | O_CLOEXEC), 0);
	ck_assert_int_eq(write(ra.down.pipe->fd[1], "for the client", 14), 14);
	ra.down.inpipe = 14;
	ra.down.splice = 1;
	ra.up.eof = 1;
	pa.npipes = 1;

	ck_assert_int_eq(relay_export(&ra, &ex), 0);
	ck_assert_uint_eq(ex.nfds, 4);
	ck_assert_uint_eq(ex.flags, CS_UP_PIPE | CS_DOWN_PIPE | CS_UP_EOF |
	    CS_DOWN_SPLICE);
	ck_assert_uint_eq(ex.up_bytes, 14);
	ck_assert_uint_eq(ex.down_bytes, 14);
	n = pass_fds(ex.fds, ex.nfds, got);
	ck_assert_uint_eq(n, 4);
	relay_export_done(&ra, &ex, 1);
	ck_assert_uint_eq(pa.npipes, 0);

	ck_assert_int_eq(relay_import(&rb, &pb, got, n, ex.flags, ex.up_bytes,
	    ex.down_bytes), 0);
	ck_assert_uint_eq(pb.npipes, 2);	/* both imported read ends count */
	ck_assert_int_eq(relay_run(&rb, &why), 0);
	expect_bytes(server[0], "for the server", 14);
	expect_bytes(client[0], "for the client", 14);
	/* The client had sent its end: the server's write side is shut. */
	ck_assert_int_eq(recv(server[0], got, 1, MSG_DONTWAIT), 0);
	/* And the other way goes on, spliced. */
	ck_assert_int_eq(send(server[0], "more", 4, 0), 4);
	rb.server.readable = 1;
	ck_assert_int_eq(relay_run(&rb, &why), 0);
	expect_bytes(client[0], "more", 4);
	shutdown(server[0], SHUT_WR);
	rb.server.readable = 1;
	ck_assert_int_eq(relay_run(&rb, &why), 1);
	relay_free(&rb);
	ck_assert_uint_eq(pb.npipes, 1);	/* ours kept, theirs closed */
	relay_pool_free(&pa);
	relay_pool_free(&pb);
	close(client[0]);
	close(server[0]);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* What cannot move now stays exactly as it was. */
START_TEST(test_relay_export_refused)
{
	struct relay_pool p;
	struct relay r;
	struct relay_export ex;
	int sv[2], before = open_fds();

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(relay_pool_init(&p, 1, 8), 0);
	relay_init(&r, &p, sv[0]);
	/* No server yet. */
	ck_assert_int_eq(relay_export(&r, &ex), -1);
	r.server.fd = sv[1];
	/* A buffer and a full pipe the same way: not now. */
	r.up.buf = calloc(1, sizeof(*r.up.buf));
	r.up.buf->len = 3;
	r.up.pipe = calloc(1, sizeof(*r.up.pipe));
	ck_assert_int_eq(pipe2(r.up.pipe->fd, O_CLOEXEC), 0);
	r.up.inpipe = 1;
	p.npipes = 1;
	ck_assert_int_eq(relay_export(&r, &ex), -1);
	ck_assert_ptr_nonnull(r.up.buf);
	ck_assert_int_ne(fcntl(sv[1], F_GETFD), -1);	/* still open */
	relay_free(&r);
	relay_pool_free(&p);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* The inode behind fd, to know a passed descriptor for the same socket. */
static ino_t
inode(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

/* One CHAN_SESSION from channel fd: its record, and its descriptors. */
static size_t
recv_session(int fd, struct chan_session *rec, int *fds)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_msg m;
	char err[128];
	size_t nfds = CHAN_MAX_FDS;
	ssize_t len = chan_recv(fd, buf, sizeof(buf), fds, &nfds);

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(chan_decode(buf, (size_t)len, nfds, &m, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(m.type, CHAN_SESSION);
	*rec = *m.session;
	return nfds;
}

/*
 * A moving session goes to worker A, which dies before acknowledging it:
 * taken back, it goes to B with the same sockets, numbered on B's
 * channel; B's acknowledgement closes the room's copies, once.
 */
START_TEST(test_dispatch_move_take_back)
{
	struct errlist errs;
	struct config *cfg = load(cfg_one, &errs);
	struct dispatch d;
	struct dtarget a, b;
	struct dmove *mv;
	struct chan_session rec;
	int ca[2], cb[2], client[2], server[2], fds[CHAN_MAX_FDS];
	int before = open_fds();
	ino_t ci, si;
	size_t n;

	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, client), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, server), 0);
	ci = inode(client[1]);
	si = inode(server[1]);
	chan_pair(ca);
	chan_pair(cb);
	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	ck_assert_int_eq(dtarget_init(&a, ca[0], 1), 0);
	ck_assert_int_eq(dtarget_init(&b, cb[0], 1), 0);
	ck_assert_int_eq(dispatch_attach(&d, &a), 0);
	a.open = 1;

	mv = calloc(1, sizeof(*mv));
	mv->rec = session_rec(0, 0, 0);
	mv->fds[0] = server[1];
	mv->fds[1] = mv->fds[2] = -1;
	mv->server = 0;
	ck_assert_int_eq(dispatch_move(&d, client[1], mv, 0), 0);
	ck_assert_uint_eq(d.moving, 1);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	n = recv_session(ca[1], &rec, fds);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rec.conn.id, 1);
	ck_assert_uint_eq(rec.bytes_in, 123);
	close(fds[0]);		/* A dies with them unacknowledged */
	close(fds[1]);

	ck_assert_uint_eq(dispatch_take_back(&d, &a, 0), 1);
	dispatch_detach(&d, &a);
	ck_assert_int_eq(dispatch_attach(&d, &b), 0);
	b.open = 1;
	ck_assert_uint_eq(dispatch_run(&d), 0);
	n = recv_session(cb[1], &rec, fds);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rec.conn.id, 1);	/* B's numbering */
	ck_assert_uint_eq(inode(fds[0]), ci);
	ck_assert_uint_eq(inode(fds[1]), si);
	ck_assert_uint_eq(d.moving, 1);
	/* B acknowledges: the room's copies are closed, and only those. */
	ck_assert_int_eq(dispatch_ack(&d, &b, 1), 0);
	ck_assert_uint_eq(d.moving, 0);
	ck_assert_int_eq(fcntl(client[1], F_GETFD), -1);
	ck_assert_int_eq(fcntl(server[1], F_GETFD), -1);
	ck_assert_int_eq(send(fds[0], "ok", 2, 0), 2);
	expect_bytes(client[0], "ok", 2);
	close(fds[0]);
	close(fds[1]);

	dispatch_free(&d);
	dtarget_free(&a);
	dtarget_free(&b);
	close(ca[0]);
	close(ca[1]);
	close(cb[0]);
	close(cb[1]);
	close(client[0]);
	close(server[0]);
	config_free(cfg);
	errlist_free(&errs);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* Sessions and accepted sockets in one queue: never in one message. */
START_TEST(test_dispatch_move_alone)
{
	struct errlist errs;
	struct config *cfg = load(cfg_one, &errs);
	struct sockaddr_in sin;
	struct dispatch d;
	struct dtarget a;
	struct dmove *mv;
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	int ca[2], s1[2], s2[2], fds[CHAN_MAX_FDS], before = open_fds();
	size_t nfds;
	struct chan_msg m;
	char err[128];
	ssize_t len;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s1), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s2), 0);
	chan_pair(ca);
	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	ck_assert_int_eq(dtarget_init(&a, ca[0], 1), 0);
	ck_assert_int_eq(dispatch_attach(&d, &a), 0);
	a.open = 1;
	ck_assert_int_eq(dispatch_accept(&d, s1[0], (void *)&sin, 0, 0), 0);
	mv = calloc(1, sizeof(*mv));
	mv->rec = session_rec(0, 0, 0);
	mv->fds[0] = s2[0];
	mv->fds[1] = mv->fds[2] = -1;
	ck_assert_int_eq(dispatch_move(&d, s2[1], mv, 0), 0);
	ck_assert_int_eq(dispatch_accept(&d, s1[1], (void *)&sin, 0, 0), 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	/* Three messages: a socket, the session, a socket; ids 1, 2, 3. */
	for (int i = 0; i < 3; i++) {
		nfds = CHAN_MAX_FDS;
		len = chan_recv(ca[1], buf, sizeof(buf), fds, &nfds);
		ck_assert_int_gt(len, 0);
		ck_assert_int_eq(chan_decode(buf, (size_t)len, nfds, &m, err,
		    sizeof(err)), 0);
		ck_assert_int_eq(m.type, i == 1 ? CHAN_SESSION : CHAN_CONN);
		ck_assert_uint_eq(i == 1 ? m.session->conn.id : m.conns[0].id,
		    (uint64_t)i + 1);
		for (size_t k = 0; k < nfds; k++)
			close(fds[k]);
	}
	ck_assert_int_eq(dispatch_ack(&d, &a, 3), 0);
	ck_assert_uint_eq(d.moving, 0);
	dispatch_free(&d);
	dtarget_free(&a);
	close(ca[0]);
	close(ca[1]);
	config_free(cfg);
	errlist_free(&errs);
	ck_assert_int_eq(open_fds(), before);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("handover");

	tcase_add_test(tc, test_session_message);
	tcase_add_test(tc, test_handover_message);
	tcase_add_test(tc, test_relay_export_import);
	tcase_add_test(tc, test_relay_export_refused);
	tcase_add_test(tc, test_dispatch_move_take_back);
	tcase_add_test(tc, test_dispatch_move_alone);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
