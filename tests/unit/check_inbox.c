/* check_inbox.c -- unit tests for a worker's inbox over a real channel */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "chan_helpers.h"
#include "channel.h"
#include "inbox.h"
#include "net.h"

#define MAXTAKEN	16

/*
 * The test plays both ends: sv[1] is the master's end of the channel,
 * sv[0] the inbox's. Each socket sent is one end of a stream socketpair
 * whose other end (peer) the test keeps, so it sees when every copy of
 * the sent end is closed.
 */
struct fixture {
	struct chan_rig		 rig;
	struct inbox		 in;
	int			 taken[MAXTAKEN];	/* fds handed over */
	uint64_t		 taken_id[MAXTAKEN];
	int			 ntaken;
	int			 servers;	/* CHAN_SERVER records seen */
	const char		*drained;	/* why, once drain was called */
};

static void
op_take(void *arg, int fd, uint32_t frontend, const struct addr *peer,
    uint64_t id)
{
	struct fixture *f = arg;
	const struct sockaddr_in *sin = (const void *)&peer->ss;

	ck_assert_int_lt(f->ntaken, MAXTAKEN);
	ck_assert_uint_eq(frontend, 0);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 1000 + id);
	f->taken[f->ntaken] = fd;
	f->taken_id[f->ntaken++] = id;
}

static int
op_servers(void *arg, const struct chan_server *v, size_t n)
{
	((struct fixture *)arg)->servers += (int)n;
	return 0;
}

static int
op_srvdefs(void *arg, const struct chan_srvdef *v, size_t n)
{
	((struct fixture *)arg)->servers += (int)n;
	return 0;
}

static void
op_drain(void *arg, const char *why)
{
	struct fixture *f = arg;

	if (f->drained == NULL)
		f->drained = why;
}

static void
op_settled(void *arg)
{
}

/* Sessions and hand-over requests: check_handover.c tests those. */
static void
op_session(void *arg, const struct chan_session *rec, int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

static int
op_handover(void *arg, const uint32_t *words, size_t n)
{
	return -1;
}

static const struct inbox_ops ops = {
	op_take, op_session, op_handover, op_servers, op_drain, op_settled,
	op_srvdefs
};

static void
setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	chan_rig_open(&f->rig);
	ck_assert_int_eq(inbox_init(&f->in, f->rig.base, f->rig.sv[0], 0, 1, 1,
	    &ops, f), 0);
}

/* Everything closed: as many descriptors open as before setup(). */
static void
teardown(struct fixture *f)
{
	for (int i = 0; i < f->ntaken; i++)
		close(f->taken[i]);
	inbox_free(&f->in);
	chan_rig_close(&f->rig);
}

/* Let the inbox run until it has nothing more to do right now. */
static void
pump(struct fixture *f)
{
	chan_rig_run(&f->rig, 20);
}

/*
 * Send sockets first..first+n-1 in one CHAN_CONN; peers[] gets the test's
 * ends. The sent ends are closed here: the inbox has the only copies.
 */
static void
send_conns(struct fixture *f, uint64_t first, int n, int *peers)
{
	struct chan_conn recs[CHAN_MAX_FDS];
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct sockaddr_in sin;
	int fds[CHAN_MAX_FDS], pair[2];
	size_t len;

	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
		fds[i] = pair[0];
		peers[i] = pair[1];
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)(1000 + first + i));
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(chan_conn_set_peer(&recs[i],
		    (struct sockaddr *)&sin), 0);
		recs[i].id = first + (uint64_t)i;
		recs[i].frontend = 0;
	}
	len = chan_encode(buf, sizeof(buf), CHAN_CONN, recs, (size_t)n);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(chan_send(f->rig.sv[1], buf, len, fds, (size_t)n), 0);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void
send_bare(struct fixture *f, int type)
{
	uint64_t buf[2];
	size_t len = chan_encode(buf, sizeof(buf), type, NULL, 0);

	ck_assert_int_eq(chan_send(f->rig.sv[1], buf, len, NULL, 0), 0);
}

/* Every copy of the socket whose other end is peer has been closed. */
static int
peer_sees_eof(int peer)
{
	struct pollfd p = { peer, POLLIN, 0 };
	char c;

	return poll(&p, 1, 0) == 1 && recv(peer, &c, 1, MSG_DONTWAIT) == 0;
}

static void
close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * With the channel back to the master full, socket 1 arrives: it is held,
 * not handed over, since its acknowledgement cannot go out.
 */
static void
setup_held(struct fixture *f, int *peer)
{
	setup(f);
	(void)chan_fill(f->rig.sv[0]);
	send_conns(f, 1, 1, peer);
	pump(f);
	ck_assert_int_eq(f->ntaken, 0);
	ck_assert(!inbox_idle(&f->in));
}

START_TEST(test_take_after_ack)
{
	struct fixture f;
	int peers[2];

	setup(&f);
	send_conns(&f, 1, 2, peers);
	pump(&f);
	ck_assert_int_eq(f.ntaken, 2);
	ck_assert_uint_eq(f.taken_id[0], 1);
	ck_assert_uint_eq(f.taken_id[1], 2);
	chan_expect(f.rig.sv[1], CHAN_ACK, 2);
	chan_expect(f.rig.sv[1], 0, 0);
	ck_assert(inbox_idle(&f.in));
	/* What was handed over is the socket that was sent. */
	ck_assert_int_eq(write(f.taken[1], "x", 1), 1);
	ck_assert(!peer_sees_eof(peers[1]));
	ck_assert_ptr_null(f.drained);
	close_all(peers, 2);
	teardown(&f);
}
END_TEST

START_TEST(test_full_channel_holds_until_acked)
{
	struct fixture f;
	int peers[2];

	/* Not acknowledged, so not ours: nothing is handed over ... */
	setup_held(&f, &peers[0]);
	/* ... and nothing more is read meanwhile. */
	send_conns(&f, 2, 1, &peers[1]);
	pump(&f);
	ck_assert_int_eq(f.ntaken, 0);
	/* Room on the channel: the ack goes out, then the sockets. */
	chan_expect(f.rig.sv[1], 0, 0);
	pump(&f);
	ck_assert_int_eq(f.ntaken, 2);
	ck_assert_uint_eq(f.taken_id[0], 1);
	ck_assert_uint_eq(f.taken_id[1], 2);
	chan_expect(f.rig.sv[1], CHAN_ACK, 1);
	chan_expect(f.rig.sv[1], CHAN_ACK, 2);
	chan_expect(f.rig.sv[1], 0, 0);
	ck_assert(inbox_idle(&f.in));
	close_all(peers, 2);
	teardown(&f);
}
END_TEST

START_TEST(test_goodbye_then_discard)
{
	struct fixture f;
	int peers[3];

	setup(&f);
	send_conns(&f, 1, 1, &peers[0]);
	pump(&f);
	ck_assert_int_eq(f.ntaken, 1);
	inbox_goodbye(&f.in, "SIGTERM");
	ck_assert_str_eq(f.drained, "SIGTERM");
	chan_expect(f.rig.sv[1], CHAN_ACK, 1);
	chan_expect(f.rig.sv[1], CHAN_BYE, 0);
	/* What arrives now is closed unread and never acknowledged. */
	send_conns(&f, 2, 2, &peers[1]);
	send_bare(&f, CHAN_DRAIN);
	pump(&f);
	ck_assert_int_eq(f.ntaken, 1);
	ck_assert(peer_sees_eof(peers[1]));
	ck_assert(peer_sees_eof(peers[2]));
	ck_assert(!peer_sees_eof(peers[0]));
	chan_expect(f.rig.sv[1], 0, 0);
	ck_assert(inbox_idle(&f.in));
	close_all(peers, 3);
	teardown(&f);
}
END_TEST

START_TEST(test_goodbye_waits_behind_the_ack)
{
	struct fixture f;
	int peer;

	setup_held(&f, &peer);
	inbox_goodbye(&f.in, "SIGTERM");
	ck_assert(!inbox_idle(&f.in));
	chan_expect(f.rig.sv[1], 0, 0);
	pump(&f);
	/* Taken before bye: acknowledged, so ours to finish. */
	ck_assert_int_eq(f.ntaken, 1);
	chan_expect_bye(f.rig.sv[1], 1);
	ck_assert(inbox_idle(&f.in));
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_garbage_cuts_after_what_came_before)
{
	static const uint32_t junk[2] = { 0x7777, 8 };
	struct fixture f;
	int peers[2];

	setup(&f);
	send_conns(&f, 1, 1, &peers[0]);
	ck_assert_int_eq(chan_send(f.rig.sv[1], junk, sizeof(junk), NULL, 0),
	    0);
	send_conns(&f, 2, 1, &peers[1]);
	pump(&f);
	ck_assert_str_eq(f.drained, "garbage from master");
	ck_assert_int_eq(f.ntaken, 1);
	ck_assert_uint_eq(f.taken_id[0], 1);
	ck_assert(peer_sees_eof(peers[1]));
	chan_expect_bye(f.rig.sv[1], 1);
	close_all(peers, 2);
	teardown(&f);
}
END_TEST

/* Sockets come numbered 1, 2, 3... on a channel: anything else is garbage. */
static void
out_of_order(uint64_t first_ok, uint64_t then)
{
	struct fixture f;
	int peers[3];

	setup(&f);
	if (first_ok > 0)
		send_conns(&f, 1, (int)first_ok, peers);
	send_conns(&f, then, 2, &peers[first_ok]);
	pump(&f);
	ck_assert_str_eq(f.drained, "garbage from master");
	ck_assert_int_eq(f.ntaken, (int)first_ok);
	ck_assert(peer_sees_eof(peers[first_ok]));
	ck_assert(peer_sees_eof(peers[first_ok + 1]));
	chan_expect_bye(f.rig.sv[1], first_ok);
	close_all(peers, (int)first_ok + 2);
	teardown(&f);
}

START_TEST(test_ids_in_order_only)
{
	out_of_order(0, 0);	/* the first is 1 */
	out_of_order(0, 2);
	out_of_order(1, 3);	/* a gap */
	out_of_order(1, 1);	/* again */
}
END_TEST

START_TEST(test_records_without_descriptors)
{
	struct chan_conn rec;
	uint64_t buf[8];
	struct fixture f;
	size_t len;

	setup(&f);
	memset(&rec, 0, sizeof(rec));
	rec.family = AF_INET;
	rec.id = 1;
	len = chan_encode(buf, sizeof(buf), CHAN_CONN, &rec, 1);
	ck_assert_int_eq(chan_send(f.rig.sv[1], buf, len, NULL, 0), 0);
	pump(&f);
	ck_assert_str_eq(f.drained, "garbage from master");
	ck_assert_int_eq(f.ntaken, 0);
	chan_expect_bye(f.rig.sv[1], 0);
	teardown(&f);
}
END_TEST

START_TEST(test_drain_keeps_taking)
{
	struct chan_server srv;
	uint64_t buf[8];
	struct fixture f;
	size_t len;
	int peer;

	setup(&f);
	memset(&srv, 0, sizeof(srv));
	srv.weight = 1;
	len = chan_encode(buf, sizeof(buf), CHAN_SERVER, &srv, 1);
	ck_assert_int_eq(chan_send(f.rig.sv[1], buf, len, NULL, 0), 0);
	send_bare(&f, CHAN_DRAIN);
	send_conns(&f, 1, 1, &peer);
	pump(&f);
	ck_assert_int_eq(f.servers, 1);
	ck_assert_str_eq(f.drained, "master asked");
	/* Already in flight: still taken and acknowledged, and no bye. */
	ck_assert_int_eq(f.ntaken, 1);
	chan_expect(f.rig.sv[1], CHAN_ACK, 1);
	chan_expect(f.rig.sv[1], 0, 0);
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_master_gone)
{
	struct fixture f;
	int peer;

	setup(&f);
	send_conns(&f, 1, 1, &peer);
	chan_rig_hang_up(&f.rig);
	pump(&f);
	ck_assert_str_eq(f.drained, "master gone");
	/* Its copy is gone with it: the socket is ours alone now. */
	ck_assert_int_eq(f.ntaken, 1);
	ck_assert(inbox_idle(&f.in));
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_held_at_exit_are_closed)
{
	struct fixture f;
	int peer;

	setup_held(&f, &peer);
	inbox_free(&f.in);
	ck_assert(peer_sees_eof(peer));
	close(peer);
	teardown(&f);
}
END_TEST

START_TEST(test_exit_leaves_nothing_unread)
{
	struct chan_batch *b = malloc(sizeof(*b));
	struct fixture f;
	int peer;

	ck_assert_ptr_nonnull(b);
	setup(&f);
	send_conns(&f, 1, 1, &peer);
	inbox_free(&f.in);
	ck_assert(peer_sees_eof(peer));
	close(f.rig.sv[0]);
	f.rig.sv[0] = -1;
	/* The master reads a plain end of file, not ECONNRESET. */
	ck_assert_int_ge(chan_recv_batch(f.rig.sv[1], b), 1);
	ck_assert_int_eq(b->len[0], 0);
	free(b);
	close(peer);
	teardown(&f);
}
END_TEST

static Suite *
inbox_suite(void)
{
	Suite *s = suite_create("inbox");
	TCase *tc = tcase_create("channel");

	tcase_add_test(tc, test_take_after_ack);
	tcase_add_test(tc, test_full_channel_holds_until_acked);
	tcase_add_test(tc, test_goodbye_then_discard);
	tcase_add_test(tc, test_goodbye_waits_behind_the_ack);
	tcase_add_test(tc, test_garbage_cuts_after_what_came_before);
	tcase_add_test(tc, test_ids_in_order_only);
	tcase_add_test(tc, test_records_without_descriptors);
	tcase_add_test(tc, test_drain_keeps_taking);
	tcase_add_test(tc, test_master_gone);
	tcase_add_test(tc, test_held_at_exit_are_closed);
	tcase_add_test(tc, test_exit_leaves_nothing_unread);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(inbox_suite());
}
