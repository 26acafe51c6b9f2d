/* channel.c -- master/worker messages: fixed records and fd passing */
#include "ac_config.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"

size_t
chan_record_size(int type)
{
	switch (type) {
	case CHAN_CONN:
		return sizeof(struct chan_conn);
	case CHAN_ACK:
		return sizeof(struct chan_ack);
	case CHAN_STATS:
		return sizeof(struct stat_record);
	case CHAN_SERVER:
		return sizeof(struct chan_server);
	case CHAN_HANDOVER:
		return sizeof(uint32_t);
	case CHAN_SESSION:
		return sizeof(struct chan_session);
	case CHAN_MOVED:
		return sizeof(struct chan_moved);
	case CHAN_SRVDEF:
		return sizeof(struct chan_srvdef);
	default:
		return 0;
	}
}

/* How many records a message of the type must (min) and may (max) hold. */
static void
chan_count_range(int type, size_t *min, size_t *max)
{
	switch (type) {
	case CHAN_CONN:
		*min = 1;
		*max = CHAN_MAX_FDS;
		break;
	case CHAN_ACK:
	case CHAN_SESSION:
	case CHAN_MOVED:
		*min = *max = 1;
		break;
	case CHAN_HANDOVER:
		*min = CHAN_HO_BITS;
		*max = CHAN_HO_WORDS_MAX;
		break;
	case CHAN_STATS:
		*min = 1;
		*max = CHAN_MAX_STATS;
		break;
	case CHAN_SERVER:
		*min = 1;
		*max = CHAN_MAX_SERVERS;
		break;
	case CHAN_SRVDEF:
		*min = 1;
		*max = CHAN_MAX_SRVDEFS;
		break;
	default:
		*min = *max = 0;
		break;
	}
}

size_t
chan_encode(void *buf, size_t size, int type, const void *records,
    size_t count)
{
	struct chan_hdr h;
	size_t rsize = chan_record_size(type), min, max, len;

	if (type <= 0 || type >= CHAN_TYPE_MAX)
		return 0;
	chan_count_range(type, &min, &max);
	if (count < min || count > max)
		return 0;
	len = sizeof(h) + rsize * count;
	if (len > size || len > CHAN_MSG_MAX)
		return 0;
	h.type = (uint16_t)type;
	h.count = (uint16_t)count;
	h.len = (uint32_t)len;
	memcpy(buf, &h, sizeof(h));
	if (count > 0)
		memcpy((char *)buf + sizeof(h), records, rsize * count);
	return len;
}

size_t
chan_session_nfds(const struct chan_session *cs)
{
	return 2 + ((cs->flags & CS_UP_PIPE) != 0) +
	    ((cs->flags & CS_DOWN_PIPE) != 0);
}

static int
chan_family_ok(uint8_t fam, char *err, size_t errlen)
{
	if (fam == AF_INET || fam == AF_INET6)
		return 0;
	snprintf(err, errlen, "bad address family %u", fam);
	return -1;
}

/* One session: known flags, its descriptors, bytes only with a pipe. */
static int
chan_decode_session(const void *buf, size_t nfds, struct chan_msg *m,
    char *err, size_t errlen)
{
	const struct chan_session *cs = (const struct chan_session *)
	    (const void *)((const char *)buf + sizeof(struct chan_hdr));

	if (chan_family_ok(cs->conn.family, err, errlen) == -1)
		return -1;
	if ((cs->flags & ~CS_ALL) != 0 ||
	    (!(cs->flags & CS_UP_PIPE) && cs->up_bytes != 0) ||
	    (!(cs->flags & CS_DOWN_PIPE) && cs->down_bytes != 0)) {
		snprintf(err, errlen, "session: bad flags %#x", cs->flags);
		return -1;
	}
	if (nfds != chan_session_nfds(cs)) {
		snprintf(err, errlen, "session: %zu descriptors for %zu",
		    nfds, chan_session_nfds(cs));
		return -1;
	}
	m->type = CHAN_SESSION;
	m->count = 1;
	m->session = cs;
	return 0;
}

/* Credit and a bitmap exactly as long as the counts say. */
static int
chan_decode_handover(const void *buf, size_t nfds, size_t count,
    struct chan_msg *m, char *err, size_t errlen)
{
	const uint32_t *w = (const uint32_t *)
	    (const void *)((const char *)buf + sizeof(struct chan_hdr));
	uint64_t bits = (uint64_t)w[CHAN_HO_NFE] + w[CHAN_HO_NSRV];

	if (nfds != 0 || count != CHAN_HO_BITS + (bits + 31) / 32) {
		snprintf(err, errlen, "handover: %zu words for %llu bits",
		    count, (unsigned long long)bits);
		return -1;
	}
	m->type = CHAN_HANDOVER;
	m->count = count;
	m->words = w;
	return 0;
}

/* A server state record: flags are 0 or 1, the rest in range. */
static int
chan_server_check(const struct chan_server *s, char *err, size_t errlen)
{
	if (s->up > 1 || s->soft_down > 1 || s->removed > 1 ||
	    s->admin > ADMIN_MAINT || s->weight < 1 ||
	    s->weight > CONFIG_MAX_WEIGHT) {
		snprintf(err, errlen, "server %u: bad state", s->server);
		return -1;
	}
	return 0;
}

/* A server definition: every field in range, the name a valid one. */
static int
chan_srvdef_check(const struct chan_srvdef *d, char *err, size_t errlen)
{
	size_t n = 0;

	while (n < sizeof(d->name) && d->name[n] != '\0')
		n++;
	if (n == 0 || n == sizeof(d->name)) {
		snprintf(err, errlen, "server %u: bad name", d->server);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)d->name[i]) &&
		    strchr("_.-", d->name[i]) == NULL) {
			snprintf(err, errlen, "server %u: bad name", d->server);
			return -1;
		}
	for (size_t i = n; i < sizeof(d->name); i++)
		if (d->name[i] != '\0') {
			snprintf(err, errlen, "server %u: bad name", d->server);
			return -1;
		}
	if ((d->family != AF_INET && d->family != AF_INET6) || d->port == 0 ||
	    d->pad != 0 || d->backup > 1 || d->send_proxy > PROXY_V2 ||
	    d->admin > ADMIN_MAINT || d->origin > ORIGIN_DNS ||
	    d->weight < 1 || d->weight > CONFIG_MAX_WEIGHT ||
	    d->max_connections > 10000000) {
		snprintf(err, errlen, "server %u: bad definition", d->server);
		return -1;
	}
	return 0;
}

int
chan_decode(const void *buf, size_t len, size_t nfds, struct chan_msg *m,
    char *err, size_t errlen)
{
	struct chan_hdr h;
	size_t min, max;

	memset(m, 0, sizeof(*m));
	if (len < sizeof(h)) {
		snprintf(err, errlen, "short message (%zu bytes)", len);
		return -1;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.type == 0 || h.type >= CHAN_TYPE_MAX) {
		snprintf(err, errlen, "unknown message type %u", h.type);
		return -1;
	}
	chan_count_range(h.type, &min, &max);
	if (h.count < min || h.count > max) {
		snprintf(err, errlen, "type %u: bad record count %u", h.type,
		    h.count);
		return -1;
	}
	if (h.len != len || len != sizeof(h) + chan_record_size(h.type) *
	    h.count) {
		snprintf(err, errlen, "type %u: bad length %zu", h.type, len);
		return -1;
	}
	if (h.type == CHAN_SESSION)
		return chan_decode_session(buf, nfds, m, err, errlen);
	if (h.type == CHAN_HANDOVER)
		return chan_decode_handover(buf, nfds, h.count, m, err,
		    errlen);
	if (nfds != (h.type == CHAN_CONN ? h.count : h.type == CHAN_LOGFD)) {
		snprintf(err, errlen, "type %u: %zu descriptors for %u records",
		    h.type, nfds, h.count);
		return -1;
	}
	m->type = h.type;
	m->count = h.count;
	if (h.type == CHAN_CONN) {
		/* Records are 8-byte aligned when buf is (the header is 8). */
		m->conns = (const struct chan_conn *)
		    (const void *)((const char *)buf + sizeof(h));
		for (size_t i = 0; i < m->count; i++)
			if (chan_family_ok(m->conns[i].family, err, errlen) ==
			    -1)
				return -1;
	} else if (h.type == CHAN_SERVER) {
		m->servers = (const struct chan_server *)
		    (const void *)((const char *)buf + sizeof(h));
		for (size_t i = 0; i < m->count; i++)
			if (chan_server_check(&m->servers[i], err, errlen) ==
			    -1)
				return -1;
	} else if (h.type == CHAN_SRVDEF) {
		m->srvdefs = (const struct chan_srvdef *)
		    (const void *)((const char *)buf + sizeof(h));
		for (size_t i = 0; i < m->count; i++)
			if (chan_srvdef_check(&m->srvdefs[i], err, errlen) ==
			    -1)
				return -1;
	} else if (h.type == CHAN_STATS) {
		m->stats = (const struct stat_record *)
		    (const void *)((const char *)buf + sizeof(h));
	} else if (h.type == CHAN_MOVED) {
		memcpy(&m->moved, (const char *)buf + sizeof(h),
		    sizeof(m->moved));
	} else if (h.type == CHAN_ACK) {
		struct chan_ack a;
		memcpy(&a, (const char *)buf + sizeof(h), sizeof(a));
		m->ack = a.upto;
	}
	return 0;
}

int
chan_conn_set_peer(struct chan_conn *c, const struct sockaddr *sa)
{
	memset(c->addr, 0, sizeof(c->addr));
	c->pad = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		c->family = AF_INET;
		c->port = sin->sin_port;
		memcpy(c->addr, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		c->family = AF_INET6;
		c->port = sin6->sin6_port;
		memcpy(c->addr, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

socklen_t
chan_conn_peer(const struct chan_conn *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (c->family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = c->port;
		memcpy(&sin->sin_addr, c->addr, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = c->port;
	memcpy(&sin6->sin6_addr, c->addr, 16);
	return sizeof(*sin6);
}

int
chan_send(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union chan_cmsg cmsgbuf;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;

	if (nfds > CHAN_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void
chan_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Move the descriptors a received message carried into fds. Returns 0, or
 * -1 when the message or its descriptors were truncated: then what did
 * arrive is closed.
 */
static int
chan_take_fds(struct msghdr *msg, int *fds, size_t *nfds)
{
	struct cmsghdr *cmsg;

	*nfds = 0;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t k;
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		k = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (*nfds + k > CHAN_MAX_FDS) {
			/* Cannot happen with our buffer; never overflow fds. */
			int tmp[CHAN_MAX_FDS];
			memcpy(tmp, CMSG_DATA(cmsg), sizeof(int) *
			    (k > CHAN_MAX_FDS ? CHAN_MAX_FDS : k));
			chan_close_fds(tmp, k > CHAN_MAX_FDS ? CHAN_MAX_FDS :
			    k);
			continue;
		}
		memcpy(fds + *nfds, CMSG_DATA(cmsg), sizeof(int) * k);
		*nfds += k;
	}
	if (msg->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		chan_close_fds(fds, *nfds);
		*nfds = 0;
		return -1;
	}
	return 0;
}

ssize_t
chan_recv(int fd, void *buf, size_t size, int *fds, size_t *nfds)
{
	union chan_cmsg cmsgbuf;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;

	*nfds = 0;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = size;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do
		n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (chan_take_fds(&msg, fds, nfds) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}

int
chan_recv_batch(int fd, struct chan_batch *b)
{
	int n;

	for (int i = 0; i < CHAN_BATCH; i++) {
		struct msghdr *msg = &b->hdr[i].msg_hdr;
		memset(msg, 0, sizeof(*msg));
		b->iov[i].iov_base = b->data[i];
		b->iov[i].iov_len = sizeof(b->data[i]);
		msg->msg_iov = &b->iov[i];
		msg->msg_iovlen = 1;
		msg->msg_control = b->cmsg[i].buf;
		msg->msg_controllen = sizeof(b->cmsg[i].buf);
		b->hdr[i].msg_len = 0;
	}
	do
		n = recvmmsg(fd, b->hdr, CHAN_BATCH,
		    MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	for (int i = 0; i < n; i++) {
		b->len[i] = (ssize_t)b->hdr[i].msg_len;
		if (chan_take_fds(&b->hdr[i].msg_hdr, b->fds[i],
		    &b->nfds[i]) == -1)
			b->len[i] = -1;
	}
	return n;
}

void
chan_batch_close(struct chan_batch *b, int first, int n)
{
	for (int k = first; k < n; k++) {
		chan_close_fds(b->fds[k], b->nfds[k]);
		b->nfds[k] = 0;
	}
}
