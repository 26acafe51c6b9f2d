/* fuzz_channel.c -- libFuzzer target: master/worker channel messages */
#include "ac_config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "srvset.h"
#include "stats.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Made once: a channel (sv[0] sends, sv[1] receives as inbox.c and
 * wtable.c do), a descriptor to pass, the batch, and a stats table of
 * 2 frontends and 3 servers for CHAN_STATS records to land in.
 */
static struct {
	int			 sv[2];
	int			 nullfd;
	int			 lowest;	/* the next free descriptor */
	struct chan_batch	*batch;
	struct stats_table	 table;
} fz;

static void
fz_init(void)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fz.sv) ==
	    -1 || (fz.nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		abort();
	if ((fz.batch = calloc(1, sizeof(*fz.batch))) == NULL)
		abort();
	fz.table.nfrontends = 2;
	fz.table.nservers = 3;
	fz.table.frontends = calloc(2, sizeof(*fz.table.frontends));
	fz.table.servers = calloc(3, sizeof(*fz.table.servers));
	if (fz.table.frontends == NULL || fz.table.servers == NULL)
		abort();
	fz.lowest = dup(fz.nullfd);
	close(fz.lowest);
}

/* Act on a decoded message as far as the receivers' own checks go. */
static void
fz_use(const struct chan_msg *m)
{
	struct sockaddr_storage ss;
	char err[64];

	if (m->type == CHAN_CONN)
		for (size_t i = 0; i < m->count; i++)
			if (chan_conn_peer(&m->conns[i], &ss) == 0)
				abort();
	if (m->type == CHAN_STATS)
		(void)stats_apply(&fz.table, m->stats, m->count, err,
		    sizeof(err));
	if (m->type == CHAN_SESSION && (chan_session_nfds(m->session) < 2 ||
	    chan_conn_peer(&m->session->conn, &ss) == 0))
		abort();
	if (m->type == CHAN_HANDOVER) {
		/* Every bit the counts name is inside the message. */
		uint64_t bits = (uint64_t)m->words[CHAN_HO_NFE] +
		    m->words[CHAN_HO_NSRV];
		volatile uint32_t sum = 0;
		if (CHAN_HO_BITS + (bits + 31) / 32 != m->count)
			abort();
		for (uint64_t i = 0; i < bits; i++)
			sum += CHAN_HO_BIT(m->words, i);
		(void)sum;
	}
	/* A definition that passed: a valid name, a usable address. */
	for (size_t i = 0; m->type == CHAN_SRVDEF && i < m->count; i++) {
		struct server_def d;
		if (srvset_from_chan(&m->srvdefs[i], &d) == -1 ||
		    !srvset_valid_name(d.name) || d.weight < 1 ||
		    d.weight > CONFIG_MAX_WEIGHT)
			abort();
	}
	for (size_t i = 0; m->type == CHAN_SERVER && i < m->count; i++)
		if (m->servers[i].weight < 1 || m->servers[i].up > 1 ||
		    m->servers[i].admin > ADMIN_MAINT)
			abort();
}

/* The decoder alone, on a buffer exactly as long as the message. */
static void
fz_decode(const uint8_t *p, size_t len, size_t nfds)
{
	struct chan_msg m;
	char err[128];
	void *buf;

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)	/* 16-aligned */
		return;
	memcpy(buf, p, len);
	if (chan_decode(buf, len, nfds, &m, err, sizeof(err)) == 0) {
		if (len != sizeof(struct chan_hdr) +
		    chan_record_size(m.type) * m.count)
			abort();
		fz_use(&m);
	}
	free(buf);
}

/*
 * Send len bytes at p with nfds copies of a descriptor, as one message.
 * Raw, since chan_send() refuses more than CHAN_MAX_FDS. -1 on failure.
 */
static int
fz_send(const uint8_t *p, size_t len, size_t nfds)
{
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) *
				    (CHAN_MAX_FDS + 8))];
	} cm;
	struct iovec iov = { (void *)p, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds > 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (size_t i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fz.nullfd,
			    sizeof(int));
	}
	return sendmsg(fz.sv[0], &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 ?
	    -1 : 0;
}

/* The same bytes through the channel, received as the processes do. */
static void
fz_channel(const uint8_t *p, size_t len, size_t nfds)
{
	struct chan_batch *b = fz.batch;
	struct chan_msg m;
	char err[128];
	int n;

	if (fz_send(p, len, nfds) == -1)
		return;
	if ((n = chan_recv_batch(fz.sv[1], b)) != 1)
		abort();	/* one message went in, one must come out */
	if (b->len[0] > 0 && chan_decode(b->data[0], (size_t)b->len[0],
	    b->nfds[0], &m, err, sizeof(err)) == 0)
		fz_use(&m);
	chan_batch_close(b, 0, n);	/* the receiver owns them: close */
}

/* First byte: descriptors to attach (past CHAN_MAX_FDS: truncated). */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nfds;
	int probe;

	if (fz.batch == NULL)
		fz_init();
	if (size < 1)
		return 0;
	nfds = data[0] % (CHAN_MAX_FDS + 4);
	fz_decode(data + 1, size - 1, nfds);
	fz_channel(data + 1, size - 1, nfds);
	/* Every descriptor received was closed. */
	if ((probe = dup(fz.nullfd)) != fz.lowest)
		abort();
	close(probe);
	return 0;
}
