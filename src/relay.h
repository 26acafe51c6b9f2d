/* relay.h -- the byte-moving core: both ways, backpressure, half-close */
#ifndef BATON_RELAY_H
#define BATON_RELAY_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>

#include "rpool.h"
#include "tls.h"

/*
 * One end of a relay. Its event is edge-triggered and registered once
 * for read and write (by the owner of the relay, with its own callback);
 * readable/writable remember what the kernel said until a call returns
 * EAGAIN, so no epoll_ctl is made while relaying.
 */
struct relay_side {
	int		fd;
	struct event	ev;
	unsigned	readable:1;
	unsigned	writable:1;
	unsigned	rdhup:1;	/* peer shut down: read until EOF */
	unsigned	fin:1;		/* EPOLLRDHUP itself: nothing follows
					   what is queued now */
};

/* One direction, src -> dst. */
struct relay_half {
	struct rbuf	*buf;		/* read from src, not yet written */
	struct rpipe	*pipe;		/* or spliced from src, not yet out */
	size_t		 inpipe;
	unsigned	 eof:1;		/* src reached end of file */
	unsigned	 shut:1;	/* dst's write side shut down */
	unsigned	 splice:1;	/* bulk data seen: splice from now on */
};

/*
 * A client and a server socket, and what is on its way between them. The
 * relay owns both sockets and closes them; the TLS sessions (ssl for the
 * client, server_ssl for the server) belong to whoever set them. A side
 * with TLS never splices.
 */
struct relay {
	struct relay_pool	*pool;
	struct relay_side	 client;
	struct relay_side	 server;
	struct relay_half	 up;		/* client -> server */
	struct relay_half	 down;		/* server -> client */
	SSL			*ssl;		/* the client's TLS, or NULL */
	SSL			*server_ssl;	/* TLS to the server, or NULL */
	uint64_t		 bytes_in;	/* from the client */
	uint64_t		 bytes_out;	/* to the client */
	int			 err;		/* errno behind the end */
	unsigned		 moved:1;	/* bytes moved; owner clears */
};

/* A relay for client socket fd, no server yet; it owns fd from now on. */
void	relay_init(struct relay *r, struct relay_pool *pool, int fd);
/*
 * Send p[0..n) to the server ahead of any client byte: what the socket
 * does not take at once waits in the up direction. Returns 0 or -1.
 */
int	relay_queue(struct relay *r, const char *p, size_t n);
/*
 * Relay both ways as far as the sockets allow. Returns 1 when both ways
 * are done, 0 when more is to come, -1 on an error (*why says which).
 */
int	relay_run(struct relay *r, const char **why);
/*
 * Record what the kernel reported for one side (an event's what); wshut:
 * its write side is shut down already, so a read event means hang-up.
 */
void	relay_mark(struct relay_side *sd, short what, int wshut);
/* Close one side's socket and remove its event; harmless when closed. */
void	relay_side_close(struct relay_side *sd);
/* Close both sockets and give the buffers back; the TLS is not freed. */
void	relay_free(struct relay *r);

/*
 * A plain relay on its way to another process: its two sockets and, per
 * direction, what was read and not yet written, as a pipe's read end.
 * Flags and byte counts are the CS_* ones of channel.h.
 */
struct relay_export {
	int		 fds[4];	/* client, server, then the pipes */
	size_t		 nfds;
	int		 made[2];	/* pipes made for buffered bytes:
					   this side's copies, -1: none */
	uint16_t	 flags;
	uint32_t	 up_bytes, down_bytes;
};

/*
 * Describe r for sending, without changing it: -1 (errno) when it cannot
 * be carried now (a buffer and a pipe both hold bytes, no pipe to be
 * had). Then relay_export_done(): after a send that worked (sent), r is
 * freed as relay_free() does (the receiver has every byte); else r goes
 * on as before. Either way the pipes made here are closed.
 */
int	relay_export(struct relay *r, struct relay_export *x);
void	relay_export_done(struct relay *r, struct relay_export *x, int sent);
/*
 * Set r up from what another process exported (fds in relay_export's
 * order, n of them). r owns them from now on, also on error (-1: out of
 * memory, all closed). The sides are marked ready: the first calls find
 * out what the sockets can do.
 */
int	relay_import(struct relay *r, struct relay_pool *pool, const int *fds,
	    size_t n, uint16_t flags, uint32_t up_bytes, uint32_t down_bytes);

#endif
