/*
 * floor.c -- the least a master can spend per connection in baton's shape
 * (contrib/bench/run compiles it beside benchtool for scenario handoff).
 *
 *   floor PORT WORKERS ACKS LIFETIME [REFUSED]
 *	listen on 127.0.0.1:PORT; fork WORKERS children, each with a
 *	SOCK_SEQPACKET socketpair to the parent. The parent waits in
 *	epoll_wait, accepts until EAGAIN (at most 64 a wake-up), and sends
 *	each child its equal share of the batch in one sendmsg (SCM_RIGHTS).
 *	With ACKS 0 it closes its copies right after the sendmsg; with ACKS
 *	1 it keeps them until the child's acknowledgement (an 8-byte count,
 *	one message per batch received) and closes them then, as baton's
 *	master does. A child closes every descriptor it receives, which the
 *	client (benchtool churn) sees as the far side closing; with REFUSED
 *	(a port on 127.0.0.1 nothing listens on) it first tries to connect
 *	there, as a baton worker does whose only server refuses, so both
 *	run at about the same rate.
 *	Prints "ready" once listening; exits after LIFETIME seconds, on
 *	SIGTERM, or on any error (status 1; 2 for a usage error).
 *
 * No libevent, no configuration, no statistics, no io_uring: only the
 * system calls the hand-off cannot do without, so the benchmark can put
 * baton's master beside what the kernel charges for the same work on the
 * same machine. Everything binds to 127.0.0.1; every loop is bounded.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS	16
#define BATCH		64	/* accepts per wake-up */

static volatile sig_atomic_t stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static long
num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "floor: bad number %s (%ld..%ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Send n descriptors in one message; -1 on error. */
static int
send_fds(int chan, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BATCH)];
	uint64_t count = (uint64_t)n;
	struct iovec iov = { &count, sizeof(count) };
	struct msghdr mh;
	struct cmsghdr *cm;
	ssize_t rc;

	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	do
		rc = sendmsg(chan, &mh, MSG_NOSIGNAL);
	while (rc == -1 && errno == EINTR);
	return rc == -1 ? -1 : 0;
}

/* A child: close whatever arrives; acknowledge each batch if asked. */
static void
refused(int port)
{
	struct sockaddr_in sin;
	int s;

	if (port == 0)
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		_exit(1);
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		_exit(1);	/* something listens there after all */
	close(s);
}

static void
child(int chan, int acks, int rport)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BATCH)];

	for (;;) {
		uint64_t count;
		struct iovec iov = { &count, sizeof(count) };
		struct msghdr mh;
		struct cmsghdr *cm;
		ssize_t rc;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		rc = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			_exit(rc == 0 ? 0 : 1);
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
		    cm = CMSG_NXTHDR(&mh, cm)) {
			int n, fd;
			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < n; i++) {
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				    sizeof(int));
				refused(rport);
				close(fd);
			}
		}
		if (acks && send(chan, &count, sizeof(count), MSG_NOSIGNAL) ==
		    -1)
			_exit(1);
	}
}

/* Descriptors sent to one child and not acknowledged yet, oldest first. */
struct unacked {
	int	fd[1 << 14];
	int	head, n;
};

static int
unacked_close(struct unacked *u, uint64_t count)
{
	if (count > (uint64_t)u->n)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		close(u->fd[u->head]);
		u->head = (u->head + 1) % (int)(sizeof(u->fd) / sizeof(int));
	}
	u->n -= (int)count;
	return 0;
}

static int
unacked_push(struct unacked *u, const int *fds, int n)
{
	int cap = (int)(sizeof(u->fd) / sizeof(int));

	if (u->n + n > cap)
		return -1;
	for (int i = 0; i < n; i++)
		u->fd[(u->head + u->n + i) % cap] = fds[i];
	u->n += n;
	return 0;
}

int
main(int argc, char **argv)
{
	static struct unacked un[MAX_WORKERS];
	struct sockaddr_in sin;
	struct epoll_event ev, evs[MAX_WORKERS + 1];
	int port, nw, acks, rport = 0, lfd, ep, chan[MAX_WORKERS], rr = 0;
	int one = 1;
	pid_t pid[MAX_WORKERS];
	double lifetime, end;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: floor PORT WORKERS ACKS LIFETIME "
		    "[REFUSED]\n");
		return 2;
	}
	if (argc == 6)
		rport = (int)num_arg(argv[5], 1, 65535);
	port = (int)num_arg(argv[1], 1, 65535);
	nw = (int)num_arg(argv[2], 1, MAX_WORKERS);
	acks = (int)num_arg(argv[3], 0, 1);
	lifetime = (double)num_arg(argv[4], 1, 3600);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1 || bind(lfd, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1 || listen(lfd, 4096) == -1) {
		perror("floor: listen");
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("floor: epoll_create1");
		return 1;
	}
	for (int i = 0; i < nw; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ==
		    -1 || (pid[i] = fork()) == -1) {
			perror("floor: worker");
			return 1;
		}
		if (pid[i] == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			close(sv[0]);
			close(lfd);
			close(ep);
			for (int j = 0; j < i; j++)
				close(chan[j]);
			child(sv[1], acks, rport);
		}
		close(sv[1]);
		chan[i] = sv[0];
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i + 1;
		if (acks && epoll_ctl(ep, EPOLL_CTL_ADD, chan[i], &ev) == -1) {
			perror("floor: epoll_ctl");
			return 1;
		}
	}
	ev.events = EPOLLIN;
	ev.data.u32 = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("floor: epoll_ctl");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	end = now() + lifetime;
	while (!stopping && now() < end) {
		int n = epoll_wait(ep, evs, MAX_WORKERS + 1, 200);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			perror("floor: epoll_wait");
			break;
		}
		for (int k = 0; k < n; k++) {
			uint32_t w = evs[k].data.u32;
			int fds[BATCH], got = 0, done = 0;

			if (w > 0) {		/* acknowledgements */
				uint64_t c;
				ssize_t rc;
				while ((rc = recv(chan[w - 1], &c, sizeof(c),
				    MSG_DONTWAIT)) == (ssize_t)sizeof(c))
					if (unacked_close(&un[w - 1], c) == -1) {
						fprintf(stderr, "floor: child %u "
						    "acknowledged more than it "
						    "got\n", w);
						goto out;
					}
				if (rc == 0 || (rc == -1 && errno != EAGAIN &&
				    errno != EINTR)) {
					fprintf(stderr, "floor: child %u gone\n",
					    w);
					goto out;
				}
				continue;
			}
			while (got < BATCH) {
				int fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd == -1)
					break;
				fds[got++] = fd;
			}
			/* An equal share each, the remainder to the next. */
			for (int left = nw; done < got; left--) {
				int share = (got - done) / (left > 0 ? left :
				    1);
				int c = rr;
				if (share == 0)
					share = 1;
				rr = (rr + 1) % nw;
				if (send_fds(chan[c], fds + done, share) == -1) {
					perror("floor: sendmsg");
					goto out;
				}
				if (!acks)
					for (int i = 0; i < share; i++)
						close(fds[done + i]);
				else if (unacked_push(&un[c], fds + done,
				    share) == -1) {
					fprintf(stderr, "floor: more than %d "
					    "unacknowledged\n", (int)(sizeof(
					    un[c].fd) / sizeof(int)));
					goto out;
				}
				done += share;
			}
		}
	}
out:
	for (int i = 0; i < nw; i++) {
		close(chan[i]);
		(void)waitpid(pid[i], NULL, 0);
	}
	return stopping || now() >= end ? 0 : 1;
}
