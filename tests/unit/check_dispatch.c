/* check_dispatch.c -- unit tests for the master's dispatch room over sockets */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan_helpers.h"
#include "channel.h"
#include "config.h"
#include "dispatch.h"
#include "stats.h"
#include "config_helpers.h"

/*
 * Every test plays the master (the dispatch room), its workers (the far
 * end of each channel, read with chan_recv_batch() the way a worker does)
 * and the clients (the far end of each accepted socket). A client is a
 * SOCK_STREAM socketpair: the room gets one end, the test keeps the other,
 * which sees end of file only when every copy of the room's end, the
 * master's and the worker's, is closed.
 */

#define MAX_GOT		512	/* sockets one fake worker may receive */
#define T0		100000	/* a start time, in ms */

static const char cfg_one[] =
    "[frontend web]\n"
    "listen = 127.0.0.1:18080\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

static const char cfg_leastconn[] =
    "[global]\n"
    "dispatch = leastconn\n"
    "[frontend web]\n"
    "listen = 127.0.0.1:18080\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

/* web is limited to 2 connections, api is not. */
static const char cfg_limit[] =
    "[frontend web]\n"
    "listen = 127.0.0.1:18080\n"
    "backend = app\n"
    "max_connections = 2\n"
    "[frontend api]\n"
    "listen = 127.0.0.1:18081\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

/* Before a reload: web (limited to 1), api, old. */
static const char cfg_three[] =
    "[frontend web]\n"
    "listen = 127.0.0.1:18080\n"
    "backend = app\n"
    "max_connections = 1\n"
    "[frontend api]\n"
    "listen = 127.0.0.1:18081\n"
    "backend = app\n"
    "[frontend old]\n"
    "listen = 127.0.0.1:18082\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

/* After it: web removed, the others in another order. */
static const char cfg_two[] =
    "[frontend old]\n"
    "listen = 127.0.0.1:18082\n"
    "backend = app\n"
    "[frontend api]\n"
    "listen = 127.0.0.1:18081\n"
    "backend = app\n"
    "[backend app]\n"
    "server = a 127.0.0.1:18001\n";

/* A client connection: the room's end (mine) and the client's (peer). */
struct client {
	int		 mine;	/* handed to the room, never closed here */
	int		 peer;
	uint16_t	 port;	/* in its fake address: tells clients apart */
	ino_t		 ino;	/* of mine: the same socket, whatever its fd */
};

/* A fake worker: its channel and what it received, in order. */
struct worker {
	int		 sv[2];	/* [0]: the master's end, [1]: the worker's */
	struct dtarget	 t;
	struct chan_conn rec[MAX_GOT];
	int		 fd[MAX_GOT];	/* -1 once the worker closed it */
	size_t		 n;
	size_t		 msgs;		/* CHAN_CONN messages read */
	size_t		 dummies;	/* CHAN_READY messages read */
};

/* What open_fn reports, per frontend. */
struct opens {
	uint64_t	 n[4];
};

static uint64_t
opens_fn(void *arg, uint32_t fe)
{
	struct opens *o = arg;

	ck_assert_uint_lt(fe, 4);
	return o->n[fe];
}

static int
fd_closed(int fd)
{
	errno = 0;
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/*
 * Open /dev/null at exactly fd, a number the room has just closed: were
 * the room to close its copy again, this is what it would close.
 */
static int
reuse(int fd)
{
	int n;

	ck_assert(fd_closed(fd));
	ck_assert_int_ne(n = open("/dev/null", O_RDONLY | O_CLOEXEC), -1);
	if (n != fd) {
		ck_assert_int_eq(dup3(n, fd, O_CLOEXEC), fd);
		ck_assert_int_eq(close(n), 0);
	}
	return fd;
}

static void
client_new(struct client *c, uint16_t port)
{
	int sv[2];
	struct stat st;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	c->mine = sv[0];
	c->peer = sv[1];
	c->port = port;
	ck_assert_int_eq(fstat(c->mine, &st), 0);
	c->ino = st.st_ino;
}

static void
clients_new(struct client *c, size_t n, uint16_t first_port)
{
	for (size_t i = 0; i < n; i++)
		client_new(&c[i], (uint16_t)(first_port + i));
}

/* 1 when every copy of the client's socket is closed, 0 while one lives. */
static int
peer_eof(const struct client *c)
{
	char b;
	ssize_t n = read(c->peer, &b, 1);

	if (n == 0)
		return 1;
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	return 0;
}

static void
client_accept(struct dispatch *d, const struct client *c, uint32_t fe,
    uint64_t now, int want)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(c->port);
	ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr), 1);
	ck_assert_int_eq(dispatch_accept(d, c->mine, (struct sockaddr *)&sin,
	    fe, now), want);
}

static void
clients_free(struct client *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(close(c[i].peer), 0);
}

static void
worker_new(struct worker *w, struct dispatch *d, size_t nfe)
{
	memset(w, 0, sizeof(*w));
	chan_pair(w->sv);
	ck_assert_int_eq(dtarget_init(&w->t, w->sv[0], nfe), 0);
	w->t.open = 1;
	ck_assert_int_eq(dispatch_attach(d, &w->t), 0);
}

/* Read what is waiting, as a worker does; returns how many sockets. */
static size_t
worker_read(struct worker *w)
{
	static struct chan_batch b;
	struct chan_msg m;
	char err[128];
	size_t got = 0;
	int n;

	do {
		n = chan_recv_batch(w->sv[1], &b);
		if (n == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			break;
		}
		for (int k = 0; k < n; k++) {
			ck_assert_int_gt(b.len[k], 0);
			ck_assert_msg(chan_decode(b.data[k], (size_t)b.len[k],
			    b.nfds[k], &m, err, sizeof(err)) == 0, "%s", err);
			if (m.type == CHAN_READY) {
				w->dummies++;
				continue;
			}
			ck_assert_int_eq(m.type, CHAN_CONN);
			w->msgs++;
			for (size_t i = 0; i < m.count; i++) {
				ck_assert_uint_lt(w->n, MAX_GOT);
				w->rec[w->n] = m.conns[i];
				w->fd[w->n++] = b.fds[k][i];
				got++;
			}
		}
	} while (n == CHAN_BATCH);
	return got;
}

/* The worker is done with the i-th socket it received (0-based). */
static void
worker_close(struct worker *w, size_t i)
{
	ck_assert_int_ne(w->fd[i], -1);
	ck_assert_int_eq(close(w->fd[i]), 0);
	w->fd[i] = -1;
}

static void
worker_close_all(struct worker *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->fd[i] != -1)
			worker_close(w, i);
}

/*
 * The i-th socket the worker received is client c's: the record says
 * so, the id is its place on this channel, the descriptor is c's socket.
 */
static void
worker_has(const struct worker *w, size_t i, const struct client *c,
    uint32_t fe)
{
	struct stat st;
	struct in_addr a;

	ck_assert_uint_lt(i, w->n);
	ck_assert_uint_eq(w->rec[i].id, i + 1);
	ck_assert_uint_eq(w->rec[i].frontend, fe);
	ck_assert_uint_eq(w->rec[i].family, AF_INET);
	ck_assert_uint_eq(ntohs(w->rec[i].port), c->port);
	ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &a), 1);
	ck_assert_mem_eq(w->rec[i].addr, &a, 4);
	ck_assert_int_eq(fstat(w->fd[i], &st), 0);
	ck_assert_uint_eq(st.st_ino, c->ino);
}

/* A worker's teardown: the room keeps nothing of it, then it exits. */
static void
worker_free(struct dispatch *d, struct worker *w)
{
	dispatch_take_back(d, &w->t, 1);
	dispatch_detach(d, &w->t);
	dtarget_free(&w->t);
	worker_close_all(w);
	ck_assert_int_eq(close(w->sv[0]), 0);
	if (w->sv[1] != -1)
		ck_assert_int_eq(close(w->sv[1]), 0);
}

/* The worker process died: what it received is gone with it. */
static void
worker_dies(struct worker *w)
{
	worker_read(w);
	worker_close_all(w);
	ck_assert_int_eq(close(w->sv[1]), 0);
	w->sv[1] = -1;
}

/* Fill the master's end of w's channel until a send would block. */
static size_t
worker_fill(struct worker *w)
{
	long sent = chan_fill(w->sv[0]);

	ck_assert_int_lt(sent, 100000);
	return (size_t)sent;
}

START_TEST(test_roundrobin_two_targets)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[4];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	worker_new(&b, &d, 1);
	clients_new(c, 4, 1000);
	/* Two rounds of two: the turn goes on from where it was. */
	for (size_t i = 0; i < 4; i += 2) {
		client_accept(&d, &c[i], 0, T0, 0);
		client_accept(&d, &c[i + 1], 0, T0, 0);
		ck_assert_uint_eq(dispatch_pending(&d, 0), 2);
		ck_assert_uint_eq(dispatch_run(&d), 0);
		ck_assert_uint_eq(dispatch_pending(&d, 0), 0);
	}
	ck_assert_uint_eq(d.counts.accepted[0], 4);
	ck_assert_uint_eq(d.accepted, 4);
	/* Each channel numbered from 1, in send order. */
	ck_assert_uint_eq(worker_read(&a), 2);
	ck_assert_uint_eq(worker_read(&b), 2);
	ck_assert_uint_eq(a.t.sent, 2);
	ck_assert_uint_eq(b.t.sent, 2);
	ck_assert_uint_eq(a.t.fe_sent[0], 2);
	ck_assert_uint_eq(b.t.fe_sent[0], 2);
	worker_has(&a, 0, &c[0], 0);
	worker_has(&b, 0, &c[1], 0);
	worker_has(&a, 1, &c[2], 0);
	worker_has(&b, 1, &c[3], 0);
	ck_assert_uint_eq(worker_read(&a), 0);

	/* Until acknowledged, the master keeps its copy. */
	for (size_t i = 0; i < 4; i++)
		ck_assert(!fd_closed(c[i].mine));
	/* The worker's session ends first: the master's copy holds it. */
	worker_close(&a, 0);
	ck_assert(!peer_eof(&c[0]));
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), 0);
	ck_assert(fd_closed(c[0].mine));
	ck_assert(!fd_closed(c[2].mine));
	ck_assert(peer_eof(&c[0]));
	/* Acknowledged first: the worker's copy holds it. */
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 2), 0);
	ck_assert(fd_closed(c[2].mine));
	ck_assert(!peer_eof(&c[2]));
	worker_close(&a, 1);
	ck_assert(peer_eof(&c[2]));
	/* One target's acknowledgement closes nothing of the other's. */
	ck_assert(!fd_closed(c[1].mine));
	ck_assert(!fd_closed(c[3].mine));
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 2), 0);
	ck_assert(fd_closed(c[1].mine));
	ck_assert(fd_closed(c[3].mine));
	ck_assert_uint_eq(a.t.unacked.n, 0);
	ck_assert_uint_eq(b.t.unacked.n, 0);
	worker_close_all(&b);
	ck_assert(peer_eof(&c[1]));
	ck_assert(peer_eof(&c[3]));

	worker_free(&d, &a);
	worker_free(&d, &b);
	dispatch_free(&d);
	clients_free(c, 4);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/*
 * Round-robin in equal shares, one message per target per round: 8
 * sockets over 4 workers are 2 each, each share one sendmsg, slices of
 * pend in turn.
 */
START_TEST(test_roundrobin_equal_shares)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker w[4];
	struct client c[8];
	size_t total = 0, next = 0;
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	for (size_t k = 0; k < 4; k++)
		worker_new(&w[k], &d, 1);
	clients_new(c, 8, 1500);
	for (size_t i = 0; i < 8; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	for (size_t k = 0; k < 4; k++) {
		size_t n = worker_read(&w[k]);
		ck_assert_msg(n == 2, "worker %zu got %zu of 8", k, n);
		ck_assert_msg(w[k].msgs == 1, "worker %zu: %zu messages", k,
		    w[k].msgs);
		total += n;
	}
	ck_assert_uint_eq(total, 8);
	/* The shares are slices of pend, in turn. */
	for (size_t k = 0; k < 4; k++)
		for (size_t i = 0; i < w[k].n; i++)
			worker_has(&w[k], i, &c[next++], 0);

	for (size_t k = 0; k < 4; k++)
		worker_free(&d, &w[k]);
	dispatch_free(&d);
	clients_free(c, 8);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/*
 * Finding 1: a worker dies, its sockets go to another behind that one's
 * own, and that one acknowledges all it has: every copy must close.
 */
START_TEST(test_redispatch_then_ack)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[6];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	worker_new(&b, &d, 1);
	clients_new(c, 6, 2000);
	/* In two rounds: a has 0 and 2, b has 1 and 3. */
	for (size_t i = 0; i < 4; i += 2) {
		client_accept(&d, &c[i], 0, T0, 0);
		client_accept(&d, &c[i + 1], 0, T0, 0);
		ck_assert_uint_eq(dispatch_run(&d), 0);
	}
	ck_assert_uint_eq(worker_read(&a), 2);
	ck_assert_uint_eq(worker_read(&b), 2);
	worker_has(&a, 0, &c[0], 0);
	worker_has(&a, 1, &c[2], 0);
	worker_has(&b, 0, &c[1], 0);
	worker_has(&b, 1, &c[3], 0);
	/* Accepted meanwhile, not sent yet. */
	client_accept(&d, &c[4], 0, T0, 0);
	client_accept(&d, &c[5], 0, T0, 0);

	/* a dies before acknowledging anything. */
	worker_dies(&a);
	ck_assert(!peer_eof(&c[0]));	/* the master still has it */
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 0), 2);
	dispatch_detach(&d, &a.t);
	ck_assert_uint_eq(d.nt, 1);
	ck_assert_ptr_eq(d.t[0], &b.t);
	ck_assert_uint_eq(a.t.unacked.n, 0);
	ck_assert_uint_eq(d.pend.n, 4);
	/* The worker is dead and lies if it says anything more. */
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), -1);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 2), -1);
	ck_assert(!fd_closed(c[0].mine));
	ck_assert(!fd_closed(c[2].mine));

	/* Taken back oldest first, ahead of what came since; b's ids go on. */
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&b), 4);
	ck_assert_uint_eq(b.t.sent, 6);
	ck_assert_uint_eq(d.redispatched, 2);
	worker_has(&b, 2, &c[0], 0);
	worker_has(&b, 3, &c[2], 0);
	worker_has(&b, 4, &c[4], 0);
	worker_has(&b, 5, &c[5], 0);
	ck_assert_uint_eq(a.t.sent, 2);	/* a got nothing more */

	/* b acknowledges its own two: exactly those close. */
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 2), 0);
	ck_assert(fd_closed(c[1].mine));
	ck_assert(fd_closed(c[3].mine));
	ck_assert(!fd_closed(c[0].mine));
	ck_assert(!fd_closed(c[2].mine));
	ck_assert(!fd_closed(c[4].mine));
	ck_assert(!fd_closed(c[5].mine));
	/* Then everything: the re-dispatched ones too. */
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 6), 0);
	for (size_t i = 0; i < 6; i++)
		ck_assert_msg(fd_closed(c[i].mine), "client %zu", i);
	ck_assert_uint_eq(b.t.unacked.n, 0);
	ck_assert_uint_eq(b.t.acked, 6);
	/* The sessions end: every client sees it. */
	worker_close_all(&b);
	for (size_t i = 0; i < 6; i++)
		ck_assert_msg(peer_eof(&c[i]), "client %zu", i);
	/* b dies too: nothing of what it took may go to a third worker. */
	ck_assert_uint_eq(dispatch_take_back(&d, &b.t, 0), 0);
	ck_assert_uint_eq(d.pend.n, 0);

	dtarget_free(&a.t);
	ck_assert_int_eq(close(a.sv[0]), 0);
	worker_free(&d, &b);
	dispatch_free(&d);
	clients_free(c, 6);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* A worker acknowledges part, then dies: only the rest comes back. */
START_TEST(test_partial_ack_then_take_back)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[3];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	clients_new(c, 3, 2500);
	for (size_t i = 0; i < 3; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), 0);
	ck_assert(fd_closed(c[0].mine));
	worker_dies(&a);
	ck_assert(peer_eof(&c[0]));	/* a had it alone: gone with it */
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 0), 2);
	dispatch_detach(&d, &a.t);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), -1);
	ck_assert(!fd_closed(c[1].mine));
	ck_assert(!fd_closed(c[2].mine));

	worker_new(&b, &d, 1);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&b), 2);
	worker_has(&b, 0, &c[1], 0);
	worker_has(&b, 1, &c[2], 0);
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 2), 0);
	ck_assert(fd_closed(c[1].mine));
	ck_assert(fd_closed(c[2].mine));

	dtarget_free(&a.t);
	ck_assert_int_eq(close(a.sv[0]), 0);
	worker_free(&d, &b);
	dispatch_free(&d);
	clients_free(c, 3);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

START_TEST(test_ack_stale_and_bogus)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a;
	struct client c[3];
	int before = open_fds(), s[2];

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	clients_new(c, 3, 3000);
	for (size_t i = 0; i < 3; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);

	/* Beyond what was sent: refused, nothing closed. */
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 4), -1);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, UINT64_MAX), -1);
	for (size_t i = 0; i < 3; i++)
		ck_assert(!fd_closed(c[i].mine));
	ck_assert_uint_eq(a.t.acked, 0);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 0), 0);
	ck_assert_uint_eq(a.t.unacked.n, 3);

	ck_assert_int_eq(dispatch_ack(&d, &a.t, 2), 0);
	ck_assert(fd_closed(c[0].mine));
	ck_assert(fd_closed(c[1].mine));
	s[0] = reuse(c[0].mine);
	s[1] = reuse(c[1].mine);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 2), 0);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), 0);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 0), 0);
	ck_assert(!fd_closed(s[0]));
	ck_assert(!fd_closed(s[1]));
	ck_assert(!fd_closed(c[2].mine));
	ck_assert_uint_eq(a.t.acked, 2);
	ck_assert_uint_eq(a.t.unacked.n, 1);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 4), -1);
	ck_assert(!fd_closed(c[2].mine));
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), 0);
	ck_assert(fd_closed(c[2].mine));
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), 0);
	ck_assert(!fd_closed(s[0]));
	ck_assert(!fd_closed(s[1]));
	ck_assert_int_eq(close(s[0]), 0);
	ck_assert_int_eq(close(s[1]), 0);

	worker_free(&d, &a);
	dispatch_free(&d);
	for (size_t i = 0; i < 3; i++)
		ck_assert(peer_eof(&c[i]));
	clients_free(c, 3);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

START_TEST(test_full_channel)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a;
	struct client c[3];
	size_t filled;
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	filled = worker_fill(&a);
	clients_new(c, 3, 4000);
	for (size_t i = 0; i < 3; i++)
		client_accept(&d, &c[i], 0, T0, 0);

	/* Nothing goes, nothing is lost or closed. */
	ck_assert_uint_eq(dispatch_run(&d), 3);
	ck_assert_uint_eq(dispatch_run(&d), 3);
	ck_assert_uint_eq(a.t.sent, 0);
	ck_assert_uint_eq(a.t.unacked.n, 0);
	ck_assert_uint_eq(d.pend.n, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert(!fd_closed(c[i].mine));
	ck_assert_uint_eq(worker_read(&a), 0);
	ck_assert_uint_eq(a.dummies, filled);

	/* The worker has read: the next round sends them, ids from 1. */
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);
	for (size_t i = 0; i < 3; i++)
		worker_has(&a, i, &c[i], 0);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), 0);
	for (size_t i = 0; i < 3; i++)
		ck_assert(fd_closed(c[i].mine));

	worker_free(&d, &a);
	dispatch_free(&d);
	for (size_t i = 0; i < 3; i++)
		ck_assert(peer_eof(&c[i]));
	clients_free(c, 3);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* One channel full: the other takes everything, in order. */
START_TEST(test_full_channel_goes_elsewhere)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[5];
	size_t left = 5;
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	worker_new(&b, &d, 1);
	worker_fill(&a);
	clients_new(c, 5, 4500);
	for (size_t i = 0; i < 5; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	for (int round = 0; round < 3 && left > 0; round++)
		left = dispatch_run(&d);
	ck_assert_uint_eq(left, 0);
	ck_assert_uint_eq(a.t.sent, 0);
	ck_assert_uint_eq(worker_read(&b), 5);
	for (size_t i = 0; i < 5; i++)
		worker_has(&b, i, &c[i], 0);
	ck_assert_uint_eq(worker_read(&a), 0);

	worker_free(&d, &a);
	worker_free(&d, &b);
	dispatch_free(&d);
	for (size_t i = 0; i < 5; i++)
		ck_assert(peer_eof(&c[i]));
	clients_free(c, 5);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

START_TEST(test_broken_channel)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[3];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	ck_assert_int_eq(close(a.sv[1]), 0);	/* the worker is gone */
	a.sv[1] = -1;
	clients_new(c, 3, 5000);
	client_accept(&d, &c[0], 0, T0, 0);
	client_accept(&d, &c[1], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 2);
	ck_assert_int_eq(a.t.open, 0);		/* closed to sends */
	ck_assert_uint_eq(a.t.sent, 0);
	ck_assert(!fd_closed(c[0].mine));
	ck_assert(!fd_closed(c[1].mine));
	client_accept(&d, &c[2], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 3);
	ck_assert_uint_eq(a.t.sent, 0);

	/* A new worker gets them all, in accept order. */
	worker_new(&b, &d, 1);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&b), 3);
	for (size_t i = 0; i < 3; i++)
		worker_has(&b, i, &c[i], 0);
	ck_assert_uint_eq(a.t.sent, 0);
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 3), 0);

	worker_free(&d, &a);
	worker_free(&d, &b);
	dispatch_free(&d);
	for (size_t i = 0; i < 3; i++)
		ck_assert(peer_eof(&c[i]));
	clients_free(c, 3);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/*
 * A worker dies with sockets sent and not acknowledged, sockets wait in
 * pend and in held, and the master stops: dispatch_free() closes every
 * copy once. Descriptors opened after the first closes take the freed
 * numbers; a second close would hit them.
 */
START_TEST(test_dies_queued_then_free)
{
	struct config *cfg = load_ok(cfg_limit);
	struct opens o = { { 0, 0, 0, 0 } };
	struct dispatch d;
	struct worker a, b;
	struct client c[7];
	int before = open_fds(), s[2];

	ck_assert_int_eq(dispatch_init(&d, cfg, opens_fn, &o), 0);
	worker_new(&a, &d, 2);
	worker_new(&b, &d, 2);
	clients_new(c, 7, 6000);
	/* In two rounds: a has 0 and 2, b has 1 and 3. */
	for (size_t i = 0; i < 4; i += 2) {
		client_accept(&d, &c[i], 1, T0, 0);
		client_accept(&d, &c[i + 1], 1, T0, 0);
		ck_assert_uint_eq(dispatch_run(&d), 0);
	}
	ck_assert_uint_eq(worker_read(&a), 2);
	ck_assert_uint_eq(worker_read(&b), 2);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), 0);
	client_accept(&d, &c[4], 1, T0, 0);	/* pend */
	o.n[0] = 2;
	client_accept(&d, &c[5], 0, T0, 0);	/* held: web is full */
	client_accept(&d, &c[6], 0, T0, 0);	/* held */
	ck_assert_uint_eq(d.pend.n, 1);
	ck_assert_uint_eq(d.held.n, 2);

	worker_dies(&a);
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 1), 0);
	dispatch_detach(&d, &a.t);
	ck_assert(fd_closed(c[0].mine));
	ck_assert(fd_closed(c[2].mine));
	ck_assert(peer_eof(&c[0]));
	ck_assert(peer_eof(&c[2]));
	ck_assert_uint_eq(d.pend.n, 1);	/* nothing came back */
	ck_assert_uint_eq(d.counts.refused[1], 1);
	s[0] = reuse(c[0].mine);
	s[1] = reuse(c[2].mine);

	dispatch_free(&d);
	for (size_t i = 1; i < 7; i += 1 + (i == 1))
		ck_assert_msg(fd_closed(c[i].mine), "client %zu", i);
	for (size_t i = 0; i < 2; i++) {
		ck_assert(!fd_closed(s[i]));
		ck_assert_int_eq(close(s[i]), 0);
	}
	for (size_t i = 4; i < 7; i++)
		ck_assert_msg(peer_eof(&c[i]), "client %zu", i);
	/* b still has its copies of 1 and 3 until it exits. */
	ck_assert(!peer_eof(&c[1]));
	ck_assert(!peer_eof(&c[3]));
	worker_close_all(&b);
	ck_assert(peer_eof(&c[1]));
	ck_assert(peer_eof(&c[3]));

	dtarget_free(&a.t);
	dtarget_free(&b.t);
	ck_assert_int_eq(close(a.sv[0]), 0);
	ck_assert_int_eq(close(b.sv[0]), 0);
	ck_assert_int_eq(close(b.sv[1]), 0);
	clients_free(c, 7);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* The same stop done piece by piece, every refusal counted. */
START_TEST(test_stop_take_back_close_queued)
{
	struct config *cfg = load_ok(cfg_limit);
	struct opens o = { { 2, 0, 0, 0 } };
	struct dispatch d;
	struct worker a, b;
	struct client c[6];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, opens_fn, &o), 0);
	worker_new(&a, &d, 2);
	worker_new(&b, &d, 2);
	clients_new(c, 6, 6500);
	for (size_t i = 0; i < 4; i++)
		client_accept(&d, &c[i], 1, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	client_accept(&d, &c[4], 1, T0, 0);
	client_accept(&d, &c[5], 0, T0, 0);	/* held */
	ck_assert_uint_eq(d.held.n, 1);
	/* Neither worker read its channel: the sockets are in flight. */
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 1), 0);
	ck_assert_uint_eq(dispatch_take_back(&d, &b.t, 1), 0);
	for (size_t i = 0; i < 4; i++)
		ck_assert(fd_closed(c[i].mine));
	ck_assert_uint_eq(d.counts.refused[1], 4);
	dispatch_close_queued(&d);
	ck_assert(fd_closed(c[4].mine));
	ck_assert(fd_closed(c[5].mine));
	ck_assert_uint_eq(d.pend.n, 0);
	ck_assert_uint_eq(d.held.n, 0);
	ck_assert_uint_eq(d.counts.refused[1], 5);
	ck_assert_uint_eq(d.counts.refused[0], 1);
	ck_assert_uint_eq(d.counts.accepted[1], 5);
	ck_assert_uint_eq(d.counts.accepted[0], 1);
	ck_assert(peer_eof(&c[4]));
	ck_assert(peer_eof(&c[5]));

	worker_free(&d, &a);	/* their channels close: in flight ends */
	worker_free(&d, &b);
	dispatch_free(&d);
	for (size_t i = 0; i < 6; i++)
		ck_assert_msg(peer_eof(&c[i]), "client %zu", i);
	clients_free(c, 6);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

START_TEST(test_leastconn)
{
	struct config *cfg = load_ok(cfg_leastconn);
	struct dispatch d;
	struct worker a, b;
	struct client c[7];
	int before = open_fds();

	ck_assert_int_eq(cfg->dispatch, DISPATCH_LEASTCONN);
	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	worker_new(&a, &d, 1);
	worker_new(&b, &d, 1);
	clients_new(c, 7, 7000);
	for (size_t i = 0; i < 4; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(a.t.sent, 2);
	ck_assert_uint_eq(b.t.sent, 2);
	/* a's two sessions ended: it is the least loaded by two. */
	a.t.closed = 2;
	client_accept(&d, &c[4], 0, T0, 0);
	client_accept(&d, &c[5], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(a.t.sent, 4);
	ck_assert_uint_eq(b.t.sent, 2);
	/* Now b is: 2 open against a's 2, then b's closes count. */
	b.t.closed = 1;
	client_accept(&d, &c[6], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(b.t.sent, 3);
	ck_assert_uint_eq(worker_read(&a), 4);
	ck_assert_uint_eq(worker_read(&b), 3);
	for (size_t i = 0; i < 4; i++)
		ck_assert_uint_eq(a.rec[i].id, i + 1);
	worker_has(&b, 2, &c[6], 0);

	worker_free(&d, &a);
	worker_free(&d, &b);
	dispatch_free(&d);
	clients_free(c, 7);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/*
 * A target with target_cap sockets open gets none more: they wait in
 * pend (none lost) until its reports show some closed.
 */
START_TEST(test_target_cap)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a, b;
	struct client c[7];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	d.target_cap = 3;
	worker_new(&a, &d, 1);
	worker_new(&b, &d, 1);
	clients_new(c, 7, 9100);
	for (size_t i = 0; i < 7; i++)
		client_accept(&d, &c[i], 0, T0, 0);
	ck_assert_uint_eq(dispatch_run(&d), 1);
	ck_assert_uint_eq(a.t.sent, 3);
	ck_assert_uint_eq(b.t.sent, 3);
	ck_assert_uint_eq(dispatch_run(&d), 1);
	ck_assert_uint_eq(a.t.sent + b.t.sent, 6);
	/* b's report says one of its sessions ended: room for one. */
	b.t.closed = 1;
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(b.t.sent, 4);
	ck_assert_uint_eq(worker_read(&a), 3);
	ck_assert_uint_eq(worker_read(&b), 4);
	worker_has(&b, 3, &c[6], 0);

	worker_free(&d, &a);
	worker_free(&d, &b);
	dispatch_free(&d);
	clients_free(c, 7);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

START_TEST(test_frontend_limit)
{
	struct config *cfg = load_ok(cfg_limit);
	struct opens o = { { 0, 0, 0, 0 } };
	struct dispatch d;
	struct worker a;
	struct client c[5];
	int before = open_fds();

	ck_assert_uint_eq(cfg->frontends[0].max_connections, 2);
	ck_assert_int_eq(dispatch_init(&d, cfg, opens_fn, &o), 0);
	worker_new(&a, &d, 2);
	clients_new(c, 5, 8000);
	client_accept(&d, &c[0], 0, T0, 0);
	client_accept(&d, &c[1], 0, T0, 0);
	ck_assert_uint_eq(d.held.n, 0);
	/* The third is over the limit (two are on their way). */
	client_accept(&d, &c[2], 0, T0, 0);
	ck_assert_uint_eq(d.held.n, 1);
	ck_assert_uint_eq(dispatch_pending(&d, 0), 2);
	/* Another frontend is not held up by it. */
	client_accept(&d, &c[3], 1, T0, 0);
	ck_assert_uint_eq(dispatch_pending(&d, 1), 1);
	ck_assert_uint_eq(d.held.n, 1);

	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);
	worker_has(&a, 0, &c[0], 0);
	worker_has(&a, 1, &c[1], 0);
	worker_has(&a, 2, &c[3], 1);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), 0);
	o.n[0] = 2;
	o.n[1] = 1;
	ck_assert_uint_eq(dispatch_hold_tick(&d, T0 + 10), 1);
	ck_assert(!fd_closed(c[2].mine));
	/* One ends: the held one gets in. */
	o.n[0] = 1;
	ck_assert_uint_eq(dispatch_hold_tick(&d, T0 + 20), 0);
	ck_assert_uint_eq(dispatch_pending(&d, 0), 1);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 1);
	worker_has(&a, 3, &c[2], 0);
	o.n[0] = 2;

	/* Held too long: refused, closed, counted. */
	client_accept(&d, &c[4], 0, T0 + 5000, 0);
	ck_assert_uint_eq(d.held.n, 1);
	ck_assert_uint_eq(dispatch_hold_tick(&d, T0 + 5000 +
	    DISPATCH_HOLD_MS - 1), 1);
	ck_assert(!fd_closed(c[4].mine));
	ck_assert(!peer_eof(&c[4]));
	ck_assert_uint_eq(d.counts.refused[0], 0);
	ck_assert_uint_eq(dispatch_hold_tick(&d, T0 + 5000 +
	    DISPATCH_HOLD_MS + 1), 0);
	ck_assert(fd_closed(c[4].mine));
	ck_assert(peer_eof(&c[4]));
	ck_assert_uint_eq(d.counts.refused[0], 1);
	ck_assert_uint_eq(d.counts.refused[1], 0);
	ck_assert_uint_eq(d.counts.accepted[0], 4);
	ck_assert_uint_eq(d.counts.accepted[1], 1);
	ck_assert_uint_eq(d.pend.n, 0);

	worker_free(&d, &a);
	dispatch_free(&d);
	clients_free(c, 5);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* Past DISPATCH_HOLD_MAX held, the next is refused at once. */
START_TEST(test_hold_queue_full)
{
	struct config *cfg = load_ok(cfg_limit);
	struct opens o = { { 2, 0, 0, 0 } };
	struct dispatch d;
	struct client c;
	int before = open_fds(), fd[DISPATCH_HOLD_MAX + 1];

	ck_assert_int_eq(dispatch_init(&d, cfg, opens_fn, &o), 0);
	client_new(&c, 9000);
	for (size_t i = 0; i <= DISPATCH_HOLD_MAX; i++) {
		struct client cd = c;
		ck_assert_int_ne(cd.mine = fd[i] = dup(c.mine), -1);
		client_accept(&d, &cd, 0, T0, 0);
	}
	ck_assert_uint_eq(d.held.n, DISPATCH_HOLD_MAX);
	ck_assert(fd_closed(fd[DISPATCH_HOLD_MAX]));
	ck_assert(!fd_closed(fd[DISPATCH_HOLD_MAX - 1]));
	ck_assert(!fd_closed(fd[0]));
	ck_assert_uint_eq(d.counts.refused[0], 1);
	ck_assert_uint_eq(d.counts.accepted[0], DISPATCH_HOLD_MAX + 1);
	dispatch_free(&d);
	for (size_t i = 0; i < DISPATCH_HOLD_MAX; i++)
		ck_assert(fd_closed(fd[i]));
	ck_assert_int_eq(close(c.mine), 0);
	ck_assert(peer_eof(&c));
	ck_assert_int_eq(close(c.peer), 0);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* pend says "stop accepting" at DISPATCH_PENDING_MAX; order is kept. */
START_TEST(test_pending_full)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a;
	struct client c;
	size_t left = 1;
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	client_new(&c, 0);
	for (size_t i = 0; i < DISPATCH_PENDING_MAX; i++) {
		struct client cd = c;
		ck_assert_int_ne(cd.mine = dup(c.mine), -1);
		cd.port = (uint16_t)(i + 1);
		client_accept(&d, &cd, 0, T0,
		    i + 1 == DISPATCH_PENDING_MAX ? -1 : 0);
	}
	ck_assert_uint_eq(dispatch_run(&d), DISPATCH_PENDING_MAX);
	worker_new(&a, &d, 1);
	for (int round = 0; round < 8 && left > 0; round++) {
		left = dispatch_run(&d);
		worker_read(&a);
	}
	ck_assert_uint_eq(left, 0);
	ck_assert_uint_eq(a.n, DISPATCH_PENDING_MAX);
	for (size_t i = 0; i < a.n; i++) {
		ck_assert_uint_eq(a.rec[i].id, i + 1);
		ck_assert_uint_eq(ntohs(a.rec[i].port), i + 1);
	}
	ck_assert_int_eq(dispatch_ack(&d, &a.t, DISPATCH_PENDING_MAX), 0);
	ck_assert_uint_eq(a.t.unacked.n, 0);
	worker_free(&d, &a);
	dispatch_free(&d);
	ck_assert_int_eq(close(c.mine), 0);
	ck_assert(peer_eof(&c));
	ck_assert_int_eq(close(c.peer), 0);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

/* Switch d to text's configuration, by frontend name. */
static struct config *
reload(struct dispatch *d, const char *text)
{
	struct config *cfg = load_ok(text);
	struct stats_map map;
	struct dcounts counts;

	ck_assert_int_eq(stats_map_init(&map, d->cfg, cfg), 0);
	ck_assert_int_eq(dispatch_counts_remap(&d->counts, &map,
	    cfg->nfrontends, &counts), 0);
	dispatch_reload(d, cfg, &map, &counts);
	stats_map_free(&map);
	return cfg;
}

START_TEST(test_reload_removes_frontend)
{
	struct config *old = load_ok(cfg_three), *cfg;
	struct opens o = { { 0, 0, 0, 0 } };
	struct dispatch d;
	struct worker a;
	struct client c[5];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, old, opens_fn, &o), 0);
	clients_new(c, 5, 10000);
	client_accept(&d, &c[0], 0, T0, 0);	/* web: pend */
	client_accept(&d, &c[1], 0, T0, 0);	/* web: held */
	client_accept(&d, &c[2], 1, T0, 0);	/* api */
	client_accept(&d, &c[3], 2, T0, 0);	/* old */
	client_accept(&d, &c[4], 1, T0, 0);	/* api */
	ck_assert_uint_eq(d.pend.n, 4);
	ck_assert_uint_eq(d.held.n, 1);

	cfg = reload(&d, cfg_two);	/* web gone; old is 0, api is 1 */
	ck_assert_ptr_eq(d.cfg, cfg);
	ck_assert(fd_closed(c[0].mine));
	ck_assert(fd_closed(c[1].mine));
	ck_assert(peer_eof(&c[0]));
	ck_assert(peer_eof(&c[1]));
	ck_assert_uint_eq(d.pend.n, 3);
	ck_assert_uint_eq(d.held.n, 0);
	ck_assert_uint_eq(dispatch_pending(&d, 0), 1);
	ck_assert_uint_eq(dispatch_pending(&d, 1), 2);
	ck_assert_uint_eq(d.counts.n, 2);
	ck_assert_uint_eq(d.counts.accepted[0], 1);
	ck_assert_uint_eq(d.counts.accepted[1], 2);
	ck_assert_uint_eq(d.accepted, 5);
	for (size_t i = 2; i < 5; i++)
		ck_assert(!fd_closed(c[i].mine));

	worker_new(&a, &d, 2);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);
	worker_has(&a, 0, &c[2], 1);
	worker_has(&a, 1, &c[3], 0);
	worker_has(&a, 2, &c[4], 1);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 3), 0);

	worker_free(&d, &a);
	dispatch_free(&d);
	clients_free(c, 5);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
	config_free(old);
}
END_TEST

/*
 * Sockets in flight across a reload: when their worker dies, one whose
 * frontend is gone is closed, the other comes back renumbered.
 */
START_TEST(test_reload_then_take_back)
{
	struct config *old = load_ok(cfg_three), *cfg;
	struct dispatch d;
	struct worker a, b;
	struct client c[3];
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, old, NULL, NULL), 0);
	worker_new(&a, &d, 3);
	clients_new(c, 3, 11000);
	client_accept(&d, &c[0], 0, T0, 0);	/* web */
	client_accept(&d, &c[1], 2, T0, 0);	/* old */
	client_accept(&d, &c[2], 1, T0, 0);	/* api */
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&a), 3);
	worker_has(&a, 1, &c[1], 2);

	cfg = reload(&d, cfg_two);
	ck_assert(!fd_closed(c[0].mine));	/* a may still have it */
	worker_dies(&a);
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 0), 2);
	dispatch_detach(&d, &a.t);
	ck_assert(fd_closed(c[0].mine));
	ck_assert(peer_eof(&c[0]));
	ck_assert_uint_eq(dispatch_pending(&d, 0), 1);
	ck_assert_uint_eq(dispatch_pending(&d, 1), 1);

	worker_new(&b, &d, 2);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(worker_read(&b), 2);
	worker_has(&b, 0, &c[1], 0);
	worker_has(&b, 1, &c[2], 1);
	ck_assert_int_eq(dispatch_ack(&d, &b.t, 2), 0);

	dtarget_free(&a.t);
	ck_assert_int_eq(close(a.sv[0]), 0);
	worker_free(&d, &b);
	dispatch_free(&d);
	for (size_t i = 0; i < 3; i++)
		ck_assert(peer_eof(&c[i]));
	clients_free(c, 3);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
	config_free(old);
}
END_TEST

/* A worker dies before it ever got a socket, before any accept. */
START_TEST(test_empty_room)
{
	struct config *cfg = load_ok(cfg_one);
	struct dispatch d;
	struct worker a;
	int before = open_fds();

	ck_assert_int_eq(dispatch_init(&d, cfg, NULL, NULL), 0);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_uint_eq(dispatch_hold_tick(&d, T0), 0);
	worker_new(&a, &d, 1);
	ck_assert_uint_eq(dispatch_run(&d), 0);
	ck_assert_int_eq(dispatch_ack(&d, &a.t, 1), -1);
	ck_assert_uint_eq(dispatch_take_back(&d, &a.t, 0), 0);
	dispatch_close_queued(&d);
	worker_free(&d, &a);
	dispatch_free(&d);
	ck_assert_int_eq(open_fds(), before);
	config_free(cfg);
}
END_TEST

static Suite *
dispatch_suite(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc;

	tc = tcase_create("ack");
	tcase_add_test(tc, test_roundrobin_two_targets);
	tcase_add_test(tc, test_roundrobin_equal_shares);
	tcase_add_test(tc, test_redispatch_then_ack);
	tcase_add_test(tc, test_partial_ack_then_take_back);
	tcase_add_test(tc, test_ack_stale_and_bogus);
	tcase_add_test(tc, test_empty_room);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel");
	tcase_add_test(tc, test_full_channel);
	tcase_add_test(tc, test_full_channel_goes_elsewhere);
	tcase_add_test(tc, test_broken_channel);
	tcase_add_test(tc, test_dies_queued_then_free);
	tcase_add_test(tc, test_stop_take_back_close_queued);
	suite_add_tcase(s, tc);

	tc = tcase_create("queues");
	tcase_add_test(tc, test_leastconn);
	tcase_add_test(tc, test_frontend_limit);
	tcase_add_test(tc, test_hold_queue_full);
	tcase_add_test(tc, test_pending_full);
	tcase_add_test(tc, test_reload_removes_frontend);
	tcase_add_test(tc, test_reload_then_take_back);
	tcase_add_test(tc, test_target_cap);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(dispatch_suite());
}
