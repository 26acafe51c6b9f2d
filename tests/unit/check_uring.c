/* check_uring.c -- the master's ring over real sockets on 127.0.0.1 */
#include "ac_config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "uring.h"

#define MAXCONN	64

struct fixture {
	struct event_base	*base;
	struct uring		*u;
	int			 lfd;
	uint16_t		 port;
	int			 fds[MAXCONN];	/* accepted */
	uint16_t		 peer[MAXCONN];	/* their peers' ports */
	int			 n;
	int			 err;		/* last error told */
	int			 rounds;
	int			 clients[MAXCONN];
	int			 nclients;
};

static struct fixture F;

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

static void
on_accept(void *arg, int fd, const struct sockaddr *sa, int err)
{
	struct fixture *f = arg;

	if (fd == -1) {
		ck_assert_ptr_null(sa);
		f->err = err;
		return;
	}
	ck_assert_int_lt(f->n, MAXCONN);
	ck_assert_ptr_nonnull(sa);
	ck_assert_int_eq(sa->sa_family, AF_INET);
	f->peer[f->n] = ntohs(((const struct sockaddr_in *)(const void *)sa)->
	    sin_port);
	f->fds[f->n++] = fd;
}

static void
on_round(void *arg)
{
	((struct fixture *)arg)->rounds++;
}

static void
setup(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char why[160];

	memset(&F, 0, sizeof(F));
	F.base = event_base_new();
	ck_assert_ptr_nonnull(F.base);
	F.u = uring_new(F.base, why, sizeof(why));
	ck_assert_msg(F.u != NULL, "no ring: %s", why);
	uring_on_round(F.u, on_round, &F);
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	ck_assert_int_ge(F.lfd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(F.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(F.lfd, 128), 0);
	ck_assert_int_eq(getsockname(F.lfd, (struct sockaddr *)&sin, &len),
	    0);
	F.port = ntohs(sin.sin_port);
}

static void
teardown(void)
{
	for (int i = 0; i < F.n; i++)
		close(F.fds[i]);
	for (int i = 0; i < F.nclients; i++)
		close(F.clients[i]);
	uring_free(F.u);
	close(F.lfd);
	event_base_free(F.base);
}

/* A client connected to the listener; returns its local port. */
static uint16_t
connect_one(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(F.port);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	F.clients[F.nclients++] = fd;
	return ntohs(sin.sin_port);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until n sockets were accepted, or ms went by. */
static void
run_until(int n, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (F.n < n && now_ms() < end) {
		struct timeval tv = { 0, 20 * 1000 };
		event_base_loopexit(F.base, &tv);
		event_base_loop(F.base, EVLOOP_ONCE);
	}
}

/* Is the peer of client c closed (EOF or reset)? Waits up to ms. */
static int
closed_by_peer(int c, int ms)
{
	struct pollfd p = { c, POLLIN, 0 };
	char b;

	if (poll(&p, 1, ms) != 1)
		return 0;
	return recv(c, &b, 1, MSG_DONTWAIT) <= 0;
}

START_TEST(accepts_with_each_peer)
{
	uint16_t ports[20];

	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	for (int i = 0; i < 20; i++)
		ports[i] = connect_one();
	run_until(20, 5000);
	ck_assert_int_eq(F.n, 20);
	ck_assert_int_ge(F.rounds, 1);
	/* Each socket comes with its own peer, not the last one's. */
	for (int i = 0; i < 20; i++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		int found = 0;
		ck_assert_int_eq(getpeername(F.fds[i], (struct sockaddr *)&sin,
		    &len), 0);
		ck_assert_uint_eq(ntohs(sin.sin_port), F.peer[i]);
		for (int j = 0; j < 20; j++)
			found += ports[j] == F.peer[i];
		ck_assert_int_eq(found, 1);
	}
}
END_TEST

/* More listeners while accepts are armed: the kernel writes each peer
 * where it was told to, so those buffers must not move. */
START_TEST(listeners_added_while_armed)
{
	int more[6];
	uint16_t port;

	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	run_until(1, 50);	/* the first's accepts are in the kernel */
	for (int i = 0; i < 6; i++) {
		struct sockaddr_in sin;
		more[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(more[i], (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
		ck_assert_int_eq(listen(more[i], 8), 0);
		ck_assert_int_eq(uring_listen(F.u, more[i], on_accept, &F, 1),
		    0);
	}
	run_until(1, 50);
	port = connect_one();
	run_until(1, 5000);
	ck_assert_int_eq(F.n, 1);
	ck_assert_uint_eq(F.peer[0], port);
	for (int i = 0; i < 6; i++) {
		uring_unlisten(F.u, more[i], 1);
		close(more[i]);
	}
}
END_TEST

START_TEST(unlisten_stops_and_listen_resumes)
{
	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	run_until(1, 50);	/* the accepts are in the kernel */
	uring_unlisten(F.u, F.lfd, 0);
	for (int i = 0; i < 3; i++)
		(void)connect_one();
	run_until(1, 200);
	ck_assert_int_eq(F.n, 0);	/* they wait in the backlog */
	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	run_until(3, 5000);
	ck_assert_int_eq(F.n, 3);
}
END_TEST

START_TEST(forgotten_listener_gets_nothing_and_leaks_nothing)
{
	int before = count_fds();

	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	run_until(1, 50);
	for (int i = 0; i < 4; i++)
		(void)connect_one();
	/* Accepted by the kernel or not, nothing reaches the callback. */
	uring_unlisten(F.u, F.lfd, 1);
	close(F.lfd);
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	run_until(1, 200);
	ck_assert_int_eq(F.n, 0);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(closed_by_peer(F.clients[i], 2000),
		    "client %d still connected", i);
	/* The clients' 4, and the listener reopened: no accepted one. */
	ck_assert_int_eq(count_fds(), before + 4);
}
END_TEST

START_TEST(closes_go_out_at_the_round)
{
	int sv[10][2];
	struct uring_stats st;

	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		uring_close(F.u, sv[i][0]);
	}
	event_base_loop(F.base, EVLOOP_NONBLOCK);
	for (int i = 0; i < 10; i++) {
		ck_assert_msg(closed_by_peer(sv[i][1], 2000),
		    "pair %d not closed", i);
		close(sv[i][1]);
	}
	uring_get_stats(F.u, &st);
	ck_assert_uint_eq(st.closed, 10);
	ck_assert_uint_ge(st.submits, 1);
	ck_assert_uint_le(st.submits, 2);	/* together, not one each */
}
END_TEST

START_TEST(out_of_descriptors_is_told_then_recovers)
{
	struct rlimit rl, low;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	for (int i = 0; i < 5; i++)
		(void)connect_one();
	/* Not one descriptor free: the accepts fail with EMFILE. */
	low = rl;
	low.rlim_cur = (rlim_t)count_fds() + 3;
	{
		int pad[8], npad = 0;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
		while (npad < 8 && (pad[npad] = dup(0)) != -1)
			npad++;
		ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1),
		    0);
		run_until(1, 300);
		ck_assert_int_eq(F.n, 0);
		ck_assert_int_eq(F.err, EMFILE);
		for (int i = 0; i < npad; i++)
			close(pad[i]);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	/* Not armed again on its own; armed again when asked. */
	run_until(1, 100);
	ck_assert_int_eq(F.n, 0);
	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	run_until(5, 5000);
	ck_assert_int_eq(F.n, 5);
}
END_TEST

START_TEST(free_with_work_in_flight_leaks_nothing)
{
	int before = count_fds(), sv[2];

	ck_assert_int_eq(uring_listen(F.u, F.lfd, on_accept, &F, 1), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uring_close(F.u, sv[0]);	/* queued, never run by the loop */
	(void)connect_one();
	uring_free(F.u);
	F.u = NULL;
	ck_assert(closed_by_peer(sv[1], 2000));
	close(sv[1]);
	/* The client's one more; the ring and what it accepted are gone. */
	ck_assert_int_eq(count_fds(), before + 1 - 1);
	ck_assert_int_eq(F.n, 0);
}
END_TEST

static Suite *
uring_suite(void)
{
	Suite *s = suite_create("uring");
	TCase *tc = tcase_create("ring");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, accepts_with_each_peer);
	tcase_add_test(tc, listeners_added_while_armed);
	tcase_add_test(tc, unlisten_stops_and_listen_resumes);
	tcase_add_test(tc, forgotten_listener_gets_nothing_and_leaks_nothing);
	tcase_add_test(tc, closes_go_out_at_the_round);
	tcase_add_test(tc, out_of_descriptors_is_told_then_recovers);
	tcase_add_test(tc, free_with_work_in_flight_leaks_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(uring_suite());
	char why[160];
	struct uring *probe;
	struct event_base *base = event_base_new();
	int failed;

	/* A kernel or sandbox without io_uring: nothing to test here. */
	if ((probe = uring_new(base, why, sizeof(why))) == NULL) {
		fprintf(stderr, "check_uring: skipped: %s\n", why);
		event_base_free(base);
		srunner_free(sr);
		return 77;
	}
	uring_free(probe);
	event_base_free(base);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
