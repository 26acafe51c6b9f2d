/* channel.h -- master/worker messages: fixed records and fd passing */
#ifndef BATON_CHANNEL_H
#define BATON_CHANNEL_H

#include <sys/socket.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

/*
 * One channel per worker: a SOCK_SEQPACKET socketpair, so every sendmsg is
 * one message. A message is a chan_hdr and then `count` fixed records of
 * the type's size. CHAN_CONN carries one fd per record (SCM_RIGHTS). Both
 * ends check everything on arrival: a peer that sends garbage is cut off.
 *
 * fd ownership: the sender keeps its fds until chan_send() succeeds, then
 * closes its copies (or, later, keeps them until acknowledged). The
 * receiver owns every fd chan_recv() returns, also on a decode error.
 */

#define CHAN_MAX_FDS	64	/* sockets per CHAN_CONN (SCM_MAX_FD is 253) */
#define CHAN_MSG_MAX	8192	/* largest message either side sends */

enum chan_type {
	CHAN_CONN = 1,	/* master -> worker: accepted sockets */
	CHAN_ACK,	/* worker -> master: sockets up to id received */
	CHAN_DRAIN,	/* master -> worker: finish and exit */
	CHAN_READY,	/* worker -> master: loop running */
	CHAN_STATS,	/* worker -> master: counters (struct stat_record) */
	CHAN_LOGFD,	/* master -> worker: the reopened log file, as its fd */
	CHAN_SERVER,	/* master -> worker: server states (struct chan_server) */
	CHAN_BYE,	/* worker -> master: reads no more (what it did not
			   acknowledge is untouched) */
	CHAN_HANDOVER,	/* master -> worker: move live sessions (credit and
			   what may move: chan_handover words) */
	CHAN_SESSION,	/* both ways: one live session and its sockets */
	CHAN_MOVED,	/* worker -> master: the credit is spent */
	CHAN_SRVDEF,	/* master -> worker: servers added at runtime
			   (struct chan_srvdef) */
	CHAN_TYPE_MAX
};

struct chan_hdr {
	uint16_t	type;
	uint16_t	count;		/* records that follow */
	uint32_t	len;		/* whole message, header included */
};

/* One accepted socket (CHAN_CONN record). */
struct chan_conn {
	uint64_t	id;		/* master's sequence number */
	uint32_t	frontend;	/* index in the configuration */
	uint8_t		family;		/* AF_INET or AF_INET6 */
	uint8_t		pad;
	uint16_t	port;		/* network order */
	uint8_t		addr[16];	/* client address */
};

/* CHAN_ACK record: every socket with id <= upto has been received. */
struct chan_ack {
	uint64_t	upto;
};

/* CHAN_SERVER record: a server's state, by flat index (config.h). */
struct chan_server {
	uint32_t	server;
	uint8_t		up;		/* health checks say up */
	uint8_t		soft_down;	/* passive failures: avoid it */
	uint8_t		admin;		/* enum server_admin (the API) */
	uint8_t		removed;	/* removed at runtime */
	uint32_t	weight;		/* 1..CONFIG_MAX_WEIGHT */
};

/*
 * CHAN_HANDOVER: 32-bit words. Word 0 is the credit (sessions the worker
 * may send now), words 1 and 2 the frontend and server counts of the
 * worker's configuration, then a bitmap of those frontends, and after
 * them servers (flat index), whose sessions may move.
 */
#define CHAN_HO_CREDIT	0
#define CHAN_HO_NFE	1
#define CHAN_HO_NSRV	2
#define CHAN_HO_BITS	3	/* first bitmap word */
#define CHAN_HO_WORDS_MAX ((CHAN_MSG_MAX - sizeof(struct chan_hdr)) / 4)

/* Bit i of a CHAN_HANDOVER bitmap (frontends first, then servers). */
#define CHAN_HO_BIT(words, i) \
	(((words)[CHAN_HO_BITS + (i) / 32] >> ((i) % 32)) & 1U)

/*
 * CHAN_SESSION record: a relayed session between two processes. Its
 * descriptors, in order: the client, the server, then a pipe's read end
 * for each direction flagged CS_*_PIPE, holding bytes read and not yet
 * written (*_bytes of them). One record per message. Worker to master:
 * indices in the sender's configuration, conn.id 0; master to worker:
 * in the receiver's, conn.id numbered as CHAN_CONN's are.
 */
struct chan_session {
	struct chan_conn conn;		/* id, frontend, the client */
	uint64_t	session;	/* its own number (the log's) */
	uint64_t	start_ms;	/* wall clock, ms */
	uint64_t	last_ms;	/* last byte moved */
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint32_t	server;		/* flat index; CHAN_NO_SERVER */
	uint32_t	up_bytes;	/* in the client -> server pipe */
	uint32_t	down_bytes;	/* in the server -> client pipe */
	uint16_t	flags;		/* CS_* */
	uint16_t	pad;
};

#define CHAN_NO_SERVER	UINT32_MAX	/* not counted on a server */

#define CS_UP_EOF	0x01	/* the client sent its end */
#define CS_UP_SHUT	0x02	/* the server's write side is shut down */
#define CS_UP_SPLICE	0x04
#define CS_UP_PIPE	0x08	/* bytes for the server, in a pipe */
#define CS_DOWN_EOF	0x10	/* the same, server -> client */
#define CS_DOWN_SHUT	0x20
#define CS_DOWN_SPLICE	0x40
#define CS_DOWN_PIPE	0x80
#define CS_ALL		0xff

/* Descriptors a session record comes with. */
size_t	chan_session_nfds(const struct chan_session *cs);

/* CHAN_MOVED record: what the credit became, and what stays, and why. */
struct chan_moved {
	uint32_t	sent;		/* CHAN_SESSION messages before it */
	uint32_t	waiting;	/* may move later (not yet relaying,
					   or out of credit) */
	uint32_t	tls;		/* stay: TLS */
	uint32_t	pinned;		/* stay: server or frontend gone */
};

/*
 * CHAN_SRVDEF record: a server added to a backend at runtime, or a
 * removed one brought back. server is the flat index the worker must
 * arrive at by the same addition (srvset_add()): anything else means the
 * two disagree, and the worker stops.
 */
#define CHAN_NAME_MAX	64
struct chan_srvdef {
	uint32_t	backend;	/* index in the configuration */
	uint32_t	server;		/* flat index */
	uint32_t	weight;		/* 1..CONFIG_MAX_WEIGHT */
	uint32_t	max_connections;	/* 0: no limit */
	uint8_t		backup;		/* 0 or 1 */
	uint8_t		send_proxy;	/* off, v1, v2 */
	uint8_t		admin;		/* enum server_admin */
	uint8_t		origin;		/* enum server_origin */
	uint8_t		family;		/* AF_INET or AF_INET6 */
	uint8_t		pad;
	uint16_t	port;		/* network order */
	uint8_t		addr[16];
	char		name[CHAN_NAME_MAX];	/* NUL-terminated and -padded */
};

#define CHAN_MAX_SRVDEFS	16

#define CHAN_MAX_SERVERS ((CHAN_MSG_MAX - sizeof(struct chan_hdr)) / \
			    sizeof(struct chan_server))

/* Most stat records one CHAN_STATS message carries. */
#define CHAN_MAX_STATS	((CHAN_MSG_MAX - sizeof(struct chan_hdr)) / \
			    sizeof(struct stat_record))

/* A decoded message; records point into the caller's buffer. */
struct chan_msg {
	int			 type;
	size_t			 count;
	const struct chan_conn	*conns;
	const struct stat_record *stats;
	const struct chan_server *servers;
	const struct chan_session *session;
	const uint32_t		*words;		/* CHAN_HANDOVER */
	struct chan_moved	 moved;
	const struct chan_srvdef *srvdefs;
	uint64_t		 ack;
};

/* Record size for a message type, 0 for types without records. */
size_t	chan_record_size(int type);
/*
 * Encode a header and count records of the type into buf; returns the
 * length, or 0 when it does not fit or count is out of range.
 */
size_t	chan_encode(void *buf, size_t size, int type, const void *records,
	    size_t count);
/*
 * Check and decode a message that arrived with nfds descriptors. Returns 0,
 * or -1 with the reason in err: wrong length, unknown type, a record count
 * beyond limits, fds that do not match the records, a field out of its
 * range (server states and definitions are checked field by field).
 */
int	chan_decode(const void *buf, size_t len, size_t nfds,
	    struct chan_msg *m, char *err, size_t errlen);

/* Fill a CHAN_CONN record's address from a sockaddr; -1 if not IP. */
int	chan_conn_set_peer(struct chan_conn *c, const struct sockaddr *sa);
/* The record's client address as a sockaddr; returns its length. */
socklen_t chan_conn_peer(const struct chan_conn *c,
	    struct sockaddr_storage *ss);

/*
 * Send one message with nfds descriptors, never blocking. Returns 0, or -1
 * with errno (EAGAIN: the channel is full, try later or elsewhere).
 */
int	chan_send(int fd, const void *buf, size_t len, const int *fds,
	    size_t nfds);
/*
 * Receive one message and up to CHAN_MAX_FDS descriptors into fds. Returns
 * the length, 0 at end of file, or -1 with errno (EAGAIN; EMSGSIZE when the
 * message or its descriptors were truncated: what arrived is closed).
 */
ssize_t	chan_recv(int fd, void *buf, size_t size, int *fds, size_t *nfds);

/*
 * Up to CHAN_BATCH messages received with one recvmmsg(). A batch that
 * comes back less than full means the channel was empty at that moment:
 * no further call (and no EAGAIN) is needed to know it.
 */
#define CHAN_BATCH	16
/* Messages either side reads per wake-up before yielding. */
#define CHAN_READS	64

/* Control data room for the most descriptors one message carries. */
union chan_cmsg {
	struct cmsghdr	align;
	char		buf[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
};

struct chan_batch {
	struct mmsghdr	hdr[CHAN_BATCH];
	struct iovec	iov[CHAN_BATCH];
	union chan_cmsg	cmsg[CHAN_BATCH];
	/* 8-byte aligned, so records can be read in place */
	uint64_t	data[CHAN_BATCH][CHAN_MSG_MAX / sizeof(uint64_t)];
	int		fds[CHAN_BATCH][CHAN_MAX_FDS];
	size_t		nfds[CHAN_BATCH];
	ssize_t		len[CHAN_BATCH];	/* -1: truncated, fds closed */
};

/*
 * Receive what is waiting, without blocking, into b: returns how many
 * messages (b->len[i] is each one's length, 0 at end of file, -1 when it
 * or its descriptors were truncated), or -1 with errno (EAGAIN: none).
 */
int	chan_recv_batch(int fd, struct chan_batch *b);
/* Close the descriptors of messages first..n-1, not to be dispatched. */
void	chan_batch_close(struct chan_batch *b, int first, int n);

#endif
