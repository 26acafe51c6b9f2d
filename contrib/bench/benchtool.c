/*
 * benchtool.c -- backend server and load client for baton's benchmark
 * (contrib/bench/run compiles it into its temporary directory).
 *
 *   benchtool server LIFETIME PORT...
 *	listen on 127.0.0.1:PORT... and serve every connection by the
 *	16-byte header it starts with ("BTB1", mode, 3 pad bytes, a
 *	little-endian uint64 N):
 *	  mode 'B' (bulk): read N bytes, then send N bytes, shut down the
 *	    write side and read until EOF;
 *	  mode 'I' (idle): send one byte 'k', then read until EOF;
 *	  mode 'E' (echo): send back every byte read, in order, until EOF,
 *	    then shut down the write side and close.
 *	Prints "ready" once listening; exits after LIFETIME seconds.
 *
 *   benchtool bulk PORT CONNS BYTES TIMEOUT
 *	open CONNS connections to 127.0.0.1:PORT; on each, send BYTES
 *	bytes and receive BYTES bytes (mode 'B'), all connections at once.
 *	Prints "ok bytes=TOTAL seconds=S up_seconds=U": TOTAL counts both
 *	directions, U is when the last connection saw its first byte back.
 *
 *   benchtool idle PORT COUNT TIMEOUT HOLD
 *	open COUNT connections to 127.0.0.1:PORT (at most 256 handshakes
 *	in flight), each confirmed end to end by the server's 'k'. Prints
 *	"established N failed F retries R seconds S", then holds them until
 *	a line (or EOF) on stdin or HOLD seconds, prints "closed_early C"
 *	(connections the far side closed while held) and exits.
 *
 *   benchtool churn PORT CONNS SECONDS
 *	keep CONNS connections to 127.0.0.1:PORT in flight for SECONDS:
 *	each is opened, sends nothing and waits until the far side closes
 *	it (a proxy whose only server refuses), then is closed and replaced
 *	at once. Prints "ok closed=N failed=F seconds=S": N connections the
 *	far side closed, F that could not connect at all.
 *
 *   benchtool stream PORT CONNS SECONDS INTERVAL_MS
 *	open CONNS echo connections (mode 'E') to 127.0.0.1:PORT (at most
 *	256 handshakes in flight); each sends a 64-byte chunk every
 *	INTERVAL_MS (an 8-byte header: connection index and chunk number,
 *	then a pattern derived from both) and checks every byte echoed
 *	back, in order. Prints "ready established N failed F seconds S"
 *	once each is confirmed end to end (its first chunk came back),
 *	streams for SECONDS more, then half-closes every connection and
 *	waits (at most 10 s) for the echo's EOF. Prints "result
 *	established N intact I cut C corrupted X stuck U bytes_sent B
 *	bytes_lost L": intact = every byte back, then EOF; cut = closed or
 *	reset before that; corrupted = a wrong byte came back; stuck = no
 *	EOF within the 10 s; bytes_lost = sent but never echoed back.
 *
 * Everything binds or connects to 127.0.0.1 only; every loop is bounded
 * in time. Exit status 0 on success, 1 on a failed transfer, 2 on a
 * usage or setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 16
#define BUF_LEN (256 * 1024)
#define MAX_EVENTS 512
#define IDLE_WINDOW 256

static char buf[BUF_LEN];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static void
make_hdr(unsigned char *h, char mode, uint64_t n)
{
	int i;

	memcpy(h, "BTB1", 4);
	h[4] = (unsigned char)mode;
	h[5] = h[6] = h[7] = 0;
	for (i = 0; i < 8; i++)
		h[8 + i] = (unsigned char)(n >> (8 * i));
}

static long
num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "benchtool: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void
ep_set(int ep, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = data;
	if (epoll_ctl(ep, op, fd, &ev) == -1)
		die("epoll_ctl");
}

/* ------------------------------------------------------------------ */
/* server */

enum { S_LISTEN, S_HDR, S_SINK, S_SOURCE, S_DRAIN, S_ECHO };

#define ECHO_LEN 16384

struct sconn {
	int fd;
	int state;
	unsigned char hdr[HDR_LEN];
	size_t hlen;
	uint64_t n, left;
	unsigned char *eb;	/* echo: bytes read, not yet written back */
	size_t elen, eoff;
	int eof;
};

static void
sconn_close(int ep, struct sconn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->eb);
	free(c);
}

/* Moves one connection as far as it goes without blocking. */
static void
sconn_run(int ep, struct sconn *c)
{
	ssize_t r;
	size_t want;
	uint64_t n;
	int i, rounds;

	/* bounded: a busy connection yields to the others after 64 calls */
	for (rounds = 0; rounds < 64; rounds++) {
		switch (c->state) {
		case S_HDR:
			r = read(c->fd, c->hdr + c->hlen, HDR_LEN - c->hlen);
			if (r <= 0)
				goto rd_end;
			c->hlen += (size_t)r;
			if (c->hlen < HDR_LEN)
				break;
			if (memcmp(c->hdr, "BTB1", 4) != 0)
				goto bad;
			for (n = 0, i = 7; i >= 0; i--)
				n = (n << 8) | c->hdr[8 + i];
			if (c->hdr[4] == 'B') {
				c->n = c->left = n;
				c->state = S_SINK;
			} else if (c->hdr[4] == 'E') {
				if ((c->eb = malloc(ECHO_LEN)) == NULL)
					goto bad;
				c->state = S_ECHO;
			} else if (c->hdr[4] == 'I') {
				if (write(c->fd, "k", 1) != 1)
					goto bad;
				c->state = S_DRAIN;
			} else
				goto bad;
			break;
		case S_SINK:
			if (c->left == 0) {
				c->left = c->n;
				c->state = S_SOURCE;
				ep_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLOUT,
				    (uint64_t)(uintptr_t)c);
				break;
			}
			want = c->left < BUF_LEN ? (size_t)c->left : BUF_LEN;
			r = read(c->fd, buf, want);
			if (r <= 0)
				goto rd_end;
			c->left -= (uint64_t)r;
			break;
		case S_SOURCE:
			if (c->left == 0) {
				(void)shutdown(c->fd, SHUT_WR);
				c->state = S_DRAIN;
				ep_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN,
				    (uint64_t)(uintptr_t)c);
				break;
			}
			want = c->left < BUF_LEN ? (size_t)c->left : BUF_LEN;
			r = write(c->fd, buf, want);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				goto bad;
			}
			c->left -= (uint64_t)r;
			break;
		case S_DRAIN:
			r = read(c->fd, buf, BUF_LEN);
			if (r <= 0)
				goto rd_end;
			break;
		case S_ECHO:
			if (c->eoff < c->elen) {
				r = write(c->fd, c->eb + c->eoff,
				    c->elen - c->eoff);
				if (r < 0) {
					if (errno != EAGAIN && errno != EINTR)
						goto bad;
					/* wait for room, reading nothing */
					ep_set(ep, EPOLL_CTL_MOD, c->fd,
					    EPOLLOUT, (uint64_t)(uintptr_t)c);
					return;
				}
				c->eoff += (size_t)r;
				if (c->eoff < c->elen)
					break;
				c->eoff = c->elen = 0;
				ep_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN,
				    (uint64_t)(uintptr_t)c);
			}
			if (c->eof) {
				(void)shutdown(c->fd, SHUT_WR);
				goto bad;	/* done: close */
			}
			r = read(c->fd, c->eb, ECHO_LEN);
			if (r == 0) {
				c->eof = 1;
				break;
			}
			if (r < 0)
				goto rd_end;
			c->elen = (size_t)r;
			c->eoff = 0;
			break;
		}
	}
	return;
rd_end:
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
bad:
	sconn_close(ep, c);
}

static int
cmd_server(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	double deadline;
	int ep, i, n, one = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: benchtool server LIFETIME PORT...\n");
		return 2;
	}
	raise_nofile();
	deadline = now() + num_arg(argv[0], 1, 86400);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	for (i = 1; i < argc; i++) {
		struct sockaddr_in sin = loopback((int)num_arg(argv[i], 1, 65535));
		struct sconn *l = malloc(sizeof(*l));
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);

		if (fd == -1 || l == NULL)
			die("socket");
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			die("bind");
		if (listen(fd, 4096) == -1)
			die("listen");
		memset(l, 0, sizeof(*l));
		l->fd = fd;
		l->state = S_LISTEN;
		ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLIN, (uint64_t)(uintptr_t)l);
	}
	printf("ready\n");
	fflush(stdout);
	while (now() < deadline) {
		n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			struct sconn *c = (struct sconn *)(uintptr_t)evs[i].data.u64;
			int k;

			if (c->state != S_LISTEN) {
				sconn_run(ep, c);
				continue;
			}
			for (k = 0; k < 256; k++) {
				int fd = accept4(c->fd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC);
				struct sconn *nc;

				if (fd == -1)
					break;
				if ((nc = calloc(1, sizeof(*nc))) == NULL) {
					close(fd);
					break;
				}
				nc->fd = fd;
				nc->state = S_HDR;
				ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLIN,
				    (uint64_t)(uintptr_t)nc);
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* bulk client */

struct bconn {
	int fd;
	uint64_t sent, recvd;
	double first, done;
	int finished;
};

static int
cmd_bulk(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sin;
	struct bconn *cs;
	unsigned char hdr[HDR_LEN];
	uint64_t bytes, total;
	double t0, deadline, up = 0, end;
	int port, conns, timeout, ep, i, n, left;

	if (argc != 4) {
		fprintf(stderr, "usage: benchtool bulk PORT CONNS BYTES "
				"TIMEOUT\n");
		return 2;
	}
	port = (int)num_arg(argv[0], 1, 65535);
	conns = (int)num_arg(argv[1], 1, 1024);
	bytes = (uint64_t)num_arg(argv[2], 1, (long)1 << 40);
	timeout = (int)num_arg(argv[3], 1, 3600);
	sin = loopback(port);
	memset(buf, 'x', sizeof(buf));
	make_hdr(hdr, 'B', bytes);
	if ((cs = calloc((size_t)conns, sizeof(*cs))) == NULL)
		die("calloc");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	for (i = 0; i < conns; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd == -1)
			die("socket");
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			die("connect");
		if (write(fd, hdr, HDR_LEN) != HDR_LEN)
			die("write header");
		if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
			die("fcntl");
		cs[i].fd = fd;
		ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, (uint64_t)i);
	}
	t0 = now();
	deadline = t0 + timeout;
	left = conns;
	while (left > 0) {
		if (now() > deadline) {
			fprintf(stderr, "benchtool bulk: timeout after %d s, "
					"%d of %d connections unfinished\n",
			    timeout, left, conns);
			return 1;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, 200);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			struct bconn *c = &cs[evs[i].data.u64];
			ssize_t r;
			size_t want;

			if (c->finished)
				continue;
			if ((evs[i].events & EPOLLOUT) && c->sent < bytes) {
				want = bytes - c->sent < BUF_LEN ?
				    (size_t)(bytes - c->sent) : BUF_LEN;
				r = write(c->fd, buf, want);
				if (r > 0) {
					c->sent += (uint64_t)r;
					if (c->sent == bytes)
						ep_set(ep, EPOLL_CTL_MOD, c->fd,
						    EPOLLIN, evs[i].data.u64);
				} else if (errno != EAGAIN && errno != EINTR) {
					fprintf(stderr, "benchtool bulk: "
							"write: %s after %llu "
							"bytes\n",
					    strerror(errno),
					    (unsigned long long)c->sent);
					return 1;
				}
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			r = read(c->fd, buf, BUF_LEN);
			if (r > 0) {
				if (c->recvd == 0)
					c->first = now();
				c->recvd += (uint64_t)r;
				if (c->recvd > bytes) {
					fprintf(stderr, "benchtool bulk: "
							"received more than "
							"%llu bytes\n",
					    (unsigned long long)bytes);
					return 1;
				}
			} else if (r == 0) {
				if (c->recvd != bytes || c->sent != bytes) {
					fprintf(stderr, "benchtool bulk: "
							"connection closed "
							"after sending %llu "
							"and receiving %llu "
							"of %llu bytes\n",
					    (unsigned long long)c->sent,
					    (unsigned long long)c->recvd,
					    (unsigned long long)bytes);
					return 1;
				}
				c->done = now();
				c->finished = 1;
				close(c->fd);
				left--;
			} else if (errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "benchtool bulk: read: %s "
						"after %llu bytes\n",
				    strerror(errno),
				    (unsigned long long)c->recvd);
				return 1;
			}
		}
	}
	end = t0;
	for (i = 0; i < conns; i++) {
		if (cs[i].first - t0 > up)
			up = cs[i].first - t0;
		if (cs[i].done > end)
			end = cs[i].done;
	}
	total = 2 * bytes * (uint64_t)conns;
	printf("ok bytes=%llu seconds=%.6f up_seconds=%.6f\n",
	    (unsigned long long)total, end - t0, up);
	return 0;
}

/* ------------------------------------------------------------------ */
/* idle client */

enum { I_FREE, I_CONNECTING, I_WAITING, I_OPEN, I_CLOSED };

struct iconn {
	int fd;
	int state;
};

static int
cmd_idle(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sin;
	struct iconn *cs;
	unsigned char hdr[HDR_LEN];
	double t0, deadline;
	int port, count, timeout, hold, ep, i, n;
	int next = 0, pending = 0, established = 0, failed = 0, retries = 0;
	int max_retries, closed_early = 0, stop = 0;
	int *redo, nredo = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: benchtool idle PORT COUNT TIMEOUT "
				"HOLD\n");
		return 2;
	}
	port = (int)num_arg(argv[0], 1, 65535);
	count = (int)num_arg(argv[1], 1, 1000000);
	timeout = (int)num_arg(argv[2], 1, 3600);
	hold = (int)num_arg(argv[3], 1, 3600);
	max_retries = count / 10 + 10;
	raise_nofile();
	sin = loopback(port);
	make_hdr(hdr, 'I', 0);
	cs = calloc((size_t)count, sizeof(*cs));
	redo = calloc((size_t)count, sizeof(*redo));
	if (cs == NULL || redo == NULL)
		die("calloc");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	t0 = now();
	deadline = t0 + timeout;
	while (established + failed < count && now() < deadline) {
		/* start connections while the window has room */
		while (pending < IDLE_WINDOW && (nredo > 0 || next < count)) {
			int idx = nredo > 0 ? redo[--nredo] : next++;
			struct iconn *c = &cs[idx];
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);

			if (fd == -1)
				die("socket (is RLIMIT_NOFILE high enough?)");
			if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ==
			        -1 &&
			    errno != EINPROGRESS)
				die("connect");
			c->fd = fd;
			c->state = I_CONNECTING;
			ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLOUT, (uint64_t)idx);
			pending++;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, 100);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			int idx = (int)evs[i].data.u64;
			struct iconn *c = &cs[idx];
			int err = 0;
			socklen_t len = sizeof(err);
			char b;
			ssize_t r;

			switch (c->state) {
			case I_CONNECTING:
				if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR,
				        &err, &len) == -1 ||
				    err != 0 ||
				    write(c->fd, hdr, HDR_LEN) != HDR_LEN)
					goto fail;
				c->state = I_WAITING;
				ep_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN,
				    (uint64_t)idx);
				continue;
			case I_WAITING:
				r = read(c->fd, &b, 1);
				if (r == -1 && errno == EAGAIN)
					continue;
				if (r != 1 || b != 'k')
					goto fail;
				c->state = I_OPEN;
				pending--;
				established++;
				continue;
			case I_OPEN:
				r = read(c->fd, &b, 1);
				if (r == -1 && errno == EAGAIN)
					continue;
				closed_early++;
				established--;
				failed++;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->state = I_CLOSED;
				continue;
			default:
				continue;
			}
		fail:
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			pending--;
			if (retries < max_retries) {
				retries++;
				c->state = I_FREE;
				redo[nredo++] = idx;
			} else {
				c->state = I_CLOSED;
				failed++;
			}
		}
	}
	printf("established %d failed %d retries %d seconds %.3f\n",
	    established, count - established, retries, now() - t0);
	fflush(stdout);

	/* hold until told (a line or EOF on stdin) or HOLD seconds */
	ep_set(ep, EPOLL_CTL_ADD, 0, EPOLLIN, (uint64_t)-1);
	deadline = now() + hold;
	closed_early = 0;
	while (!stop && now() < deadline) {
		n = epoll_wait(ep, evs, MAX_EVENTS, 200);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			struct iconn *c;
			char b;
			ssize_t r;

			if (evs[i].data.u64 == (uint64_t)-1) {
				stop = 1;
				continue;
			}
			c = &cs[evs[i].data.u64];
			if (c->state != I_OPEN)
				continue;
			r = read(c->fd, &b, 1);
			if (r == -1 && errno == EAGAIN)
				continue;
			closed_early++;
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->state = I_CLOSED;
		}
	}
	printf("closed_early %d\n", closed_early);
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------ */
/* churn */

static int
churn_open(int ep, const struct sockaddr_in *sin, int slot)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP,
	    ((uint64_t)slot << 32) | (uint32_t)fd);
	return fd;
}

static int
cmd_churn(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sin;
	long conns, seconds, closed = 0, failed = 0;
	double t0, end;
	int ep;

	if (argc != 3) {
		fprintf(stderr, "usage: benchtool churn PORT CONNS SECONDS\n");
		return 2;
	}
	sin = loopback((int)num_arg(argv[0], 1, 65535));
	conns = num_arg(argv[1], 1, 4096);
	seconds = num_arg(argv[2], 1, 3600);
	raise_nofile();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	for (long i = 0; i < conns; i++)
		while (churn_open(ep, &sin, (int)i) == -1 && failed < 1000000)
			failed++;
	t0 = now();
	end = t0 + seconds;
	while (now() < end) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 100);

		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)evs[i].data.u64;
			int slot = (int)(evs[i].data.u64 >> 32);
			char b[512];
			ssize_t r = read(fd, b, sizeof(b));

			if (r > 0)
				continue;	/* not expected: ignore bytes */
			if (r == -1 && errno == EAGAIN)
				continue;
			if (r == -1 && errno == ECONNREFUSED)
				failed++;
			else
				closed++;
			close(fd);
			while (churn_open(ep, &sin, slot) == -1 &&
			    failed < 1000000)
				failed++;
		}
	}
	printf("ok closed=%ld failed=%ld seconds=%.3f\n", closed, failed,
	    now() - t0);
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------ */
/* stream client: slow echo streams, every byte checked */

#define CHUNK 64
#define STREAM_SETUP 60		/* seconds to establish them all */
#define STREAM_DRAIN 10		/* seconds to wait for the EOFs */

enum { T_FREE, T_CONNECTING, T_WAITING, T_OPEN, T_HALF, T_DONE };

struct tconn {
	int fd;
	int state;
	uint64_t sent, due, recvd;
	double next;		/* when the next chunk is due */
};

/* Byte OFF of connection IDX's stream: chunk k = OFF / CHUNK starts
 * with IDX and k (little-endian, 4 bytes each), then a pattern. */
static unsigned char
stream_byte(uint32_t idx, uint64_t off)
{
	uint32_t k = (uint32_t)(off / CHUNK);
	unsigned int j = (unsigned int)(off % CHUNK);

	if (j < 4)
		return (unsigned char)(idx >> (8 * j));
	if (j < 8)
		return (unsigned char)(k >> (8 * (j - 4)));
	return (unsigned char)(idx * 131u + k * 31u + j * 7u + (k >> 8));
}

/* Writes what is due; 0, or -1 when the connection failed. */
static int
stream_send(struct tconn *c, uint32_t idx)
{
	unsigned char out[CHUNK * 16];
	size_t n = 0;
	ssize_t r;

	while (c->sent + n < c->due && n < sizeof(out)) {
		out[n] = stream_byte(idx, c->sent + n);
		n++;
	}
	if (n == 0)
		return 0;
	r = write(c->fd, out, n);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->sent += (uint64_t)r;
	return 0;
}

/* Reads and checks what came back: 1 data (or nothing yet), 0 EOF,
 * -1 error, -2 a wrong byte. */
static int
stream_recv(struct tconn *c, uint32_t idx)
{
	unsigned char in[4096];
	ssize_t r;
	int rounds;

	for (rounds = 0; rounds < 16; rounds++) {
		r = read(c->fd, in, sizeof(in));
		if (r == 0)
			return 0;
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : -1;
		for (ssize_t i = 0; i < r; i++)
			if (c->recvd + (uint64_t)i >= c->sent ||
			    in[i] != stream_byte(idx, c->recvd + (uint64_t)i))
				return -2;
		c->recvd += (uint64_t)r;
	}
	return 1;
}

static int
cmd_stream(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct sockaddr_in sin;
	struct tconn *cs;
	unsigned char hdr[HDR_LEN];
	double t0, t, deadline, interval;
	int port, count, seconds, ep, i, n;
	int next = 0, pending = 0, established = 0, failed = 0, retries = 0;
	int max_retries, intact = 0, cut = 0, corrupted = 0, stuck = 0;
	int *redo, nredo = 0, phase, left;
	uint64_t bytes_sent = 0, bytes_lost = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: benchtool stream PORT CONNS SECONDS "
				"INTERVAL_MS\n");
		return 2;
	}
	port = (int)num_arg(argv[0], 1, 65535);
	count = (int)num_arg(argv[1], 1, 1000000);
	seconds = (int)num_arg(argv[2], 1, 3600);
	interval = num_arg(argv[3], 1, 60000) / 1e3;
	max_retries = count / 10 + 10;
	raise_nofile();
	sin = loopback(port);
	make_hdr(hdr, 'E', 0);
	cs = calloc((size_t)count, sizeof(*cs));
	redo = calloc((size_t)count, sizeof(*redo));
	if (cs == NULL || redo == NULL)
		die("calloc");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");

	/*
	 * phase 0: establish (each confirmed by its first chunk's echo);
	 * phase 1: stream for SECONDS; phase 2: half-closed, wait for EOFs.
	 */
	t0 = now();
	deadline = t0 + STREAM_SETUP;
	phase = 0;
	for (;;) {
		t = now();
		if (phase == 0 && (established + failed >= count ||
		    t >= deadline)) {
			/* those not confirmed by now count as failed */
			for (i = 0; i < count; i++) {
				struct tconn *c = &cs[i];

				if (c->state != T_CONNECTING &&
				    c->state != T_WAITING)
					continue;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->state = T_DONE;
			}
			failed = count - established;
			printf("ready established %d failed %d retries %d "
			       "seconds %.3f\n", established, failed, retries,
			    t - t0);
			fflush(stdout);
			phase = 1;
			deadline = t + seconds;
		} else if (phase == 1 && t >= deadline) {
			/* flush what is due, then half-close */
			for (i = 0; i < count; i++) {
				struct tconn *c = &cs[i];

				if (c->state != T_OPEN)
					continue;
				if (stream_send(c, (uint32_t)i) == -1 ||
				    shutdown(c->fd, SHUT_WR) == -1) {
					cut++;
					bytes_sent += c->sent;
					bytes_lost += c->sent - c->recvd;
					(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd,
					    NULL);
					close(c->fd);
					c->state = T_DONE;
					continue;
				}
				c->state = T_HALF;
			}
			phase = 2;
			deadline = t + STREAM_DRAIN;
		} else if (phase == 2 && t >= deadline)
			break;
		if (phase == 2) {
			for (left = 0, i = 0; i < count; i++)
				if (cs[i].state == T_HALF)
					left++;
			if (left == 0)
				break;
		}
		/* start connections while the window has room */
		while (phase == 0 && pending < IDLE_WINDOW &&
		    (nredo > 0 || next < count)) {
			int idx = nredo > 0 ? redo[--nredo] : next++;
			struct tconn *c = &cs[idx];
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);

			if (fd == -1)
				die("socket (is RLIMIT_NOFILE high enough?)");
			if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) ==
			        -1 &&
			    errno != EINPROGRESS)
				die("connect");
			memset(c, 0, sizeof(*c));
			c->fd = fd;
			c->state = T_CONNECTING;
			ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLOUT, (uint64_t)idx);
			pending++;
		}
		/* chunks due (phase 0 and 1) */
		if (phase < 2) {
			for (i = 0; i < count; i++) {
				struct tconn *c = &cs[i];

				if (c->state != T_OPEN || c->next > t)
					continue;
				c->due += CHUNK;
				c->next += interval;
				if (c->next < t)
					c->next = t + interval;
				if (stream_send(c, (uint32_t)i) == -1)
					goto cut_now;
				continue;
			cut_now:
				cut++;
				bytes_sent += c->sent;
				bytes_lost += c->sent - c->recvd;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->state = T_DONE;
			}
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, 10);
		if (n == -1 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			int idx = (int)evs[i].data.u64;
			struct tconn *c = &cs[idx];
			int err = 0, rv;
			socklen_t len = sizeof(err);

			switch (c->state) {
			case T_CONNECTING:
				if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR,
				        &err, &len) == -1 ||
				    err != 0 ||
				    write(c->fd, hdr, HDR_LEN) != HDR_LEN)
					goto fail;
				c->due = CHUNK;
				if (stream_send(c, (uint32_t)idx) == -1)
					goto fail;
				c->state = T_WAITING;
				ep_set(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN,
				    (uint64_t)idx);
				continue;
			case T_WAITING:
				rv = stream_recv(c, (uint32_t)idx);
				if (rv == -2) {
					corrupted++;
					goto fail;
				}
				if (rv != 1)
					goto fail;
				if (c->recvd == 0)
					continue;
				c->state = T_OPEN;
				/* spread the chunks over the interval */
				c->next = now() + interval *
				    (double)(idx % 97) / 97.0;
				pending--;
				established++;
				continue;
			case T_OPEN:
			case T_HALF:
				rv = stream_recv(c, (uint32_t)idx);
				if (rv == 1)
					continue;
				if (rv == -2)
					corrupted++;
				else if (rv == 0 && c->state == T_HALF &&
				    c->recvd == c->sent)
					intact++;
				else
					cut++;
				bytes_sent += c->sent;
				bytes_lost += c->sent - c->recvd;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->state = T_DONE;
				continue;
			default:
				continue;
			}
		fail:
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			pending--;
			if (phase == 0 && retries < max_retries) {
				retries++;
				c->state = T_FREE;
				redo[nredo++] = idx;
			} else {
				c->state = T_DONE;
				failed++;
			}
		}
	}
	for (i = 0; i < count; i++) {
		struct tconn *c = &cs[i];

		if (c->state != T_HALF && c->state != T_OPEN)
			continue;
		stuck++;
		bytes_sent += c->sent;
		bytes_lost += c->sent - c->recvd;
		close(c->fd);
	}
	printf("result established %d intact %d cut %d corrupted %d stuck %d "
	       "bytes_sent %llu bytes_lost %llu seconds %.3f\n",
	    established, intact, cut, corrupted, stuck,
	    (unsigned long long)bytes_sent, (unsigned long long)bytes_lost,
	    now() - t0);
	fflush(stdout);
	return corrupted > 0 || cut > 0 || stuck > 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return cmd_server(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "bulk") == 0)
		return cmd_bulk(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "idle") == 0)
		return cmd_idle(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "churn") == 0)
		return cmd_churn(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "stream") == 0)
		return cmd_stream(argc - 2, argv + 2);
	fprintf(stderr, "usage: benchtool server|bulk|idle|churn|stream "
			"...\n");
	return 2;
}
