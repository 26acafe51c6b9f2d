/* inbox.h -- a worker's end of the channel: messages in, sockets taken */
#ifndef BATON_INBOX_H
#define BATON_INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "outbox.h"

struct addr;
struct event;
struct event_base;

/* What the inbox asks of its owner (the worker). */
struct inbox_ops {
	/* A socket is acknowledged: it is the owner's now, to run. */
	void	(*take)(void *arg, int fd, uint32_t frontend,
		    const struct addr *peer, uint64_t id);
	/*
	 * A live session from an older generation is acknowledged: its
	 * descriptors are the owner's now (CHAN_SESSION).
	 */
	void	(*session)(void *arg, const struct chan_session *rec,
		    int *fds, size_t nfds);
	/*
	 * The master asks for live sessions (CHAN_HANDOVER words, checked
	 * for length only). Returns -1 when they do not fit this worker's
	 * configuration.
	 */
	int	(*handover)(void *arg, const uint32_t *words, size_t n);
	/* Server states from the master: its health checks and the API
	 * (CHAN_SERVER). -1 when one names a server the owner lacks. */
	int	(*servers)(void *arg, const struct chan_server *v, size_t n);
	/* Finish and exit: the master asked, sent garbage, or is gone. */
	void	(*drain)(void *arg, const char *why);
	/* The inbox woke up and did something: check whether to exit. */
	void	(*settled)(void *arg);
	/* Servers added at runtime (CHAN_SRVDEF); -1 when the owner cannot
	 * add one where the master did. */
	int	(*srvdefs)(void *arg, const struct chan_srvdef *v, size_t n);
};

/*
 * The inbox owns every socket the master sent until it is acknowledged;
 * then ops->take() gets it. Received sockets wait (held, with the channel
 * not read meanwhile) while their acknowledgement waits in the outbox for
 * room on the channel. After inbox_goodbye(), or garbage from the master,
 * the inbox takes nothing more: it reads on only to close every
 * descriptor that arrives (discard), so none that the master hands to
 * another worker stays open here.
 */
struct inbox {
	int			 fd;		/* the channel; not ours */
	int			 id;		/* the worker's, for the log */
	uint32_t		 nfrontends;
	uint32_t		 nservers;
	struct event		*ev;		/* EV_READ, while reading */
	struct outbox		 out;		/* CHAN_ACK, then CHAN_BYE */
	struct chan_batch	*batch;		/* messages being read */
	struct chan_msg		 msgs[CHAN_BATCH];	/* the batch, decoded */
	int			 held;		/* msgs[0, held) await ack */
	uint64_t		 last_id;	/* last socket received */
	unsigned		 discarding:1;	/* said bye: takes no socket */
	unsigned		 stopped:1;	/* reads no more */
	const struct inbox_ops	*ops;
	void			*arg;
};

/*
 * Start reading channel fd of worker id, whose configuration has
 * nfrontends frontends and nservers servers. Returns 0, or -1 when out
 * of memory.
 */
int	inbox_init(struct inbox *in, struct event_base *base, int fd, int id,
	    uint32_t nfrontends, uint32_t nservers,
	    const struct inbox_ops *ops, void *arg);
/*
 * Stop: the sockets still held, and what is still queued on the channel,
 * are closed unacknowledged (the master has them).
 */
void	inbox_free(struct inbox *in);
/*
 * Take no more sockets: acknowledge what was received, then CHAN_BYE,
 * then discard whatever arrives. Calls ops->drain().
 */
void	inbox_goodbye(struct inbox *in, const char *why);
/* Nothing held and nothing waiting to be sent: the owner may exit. */
int	inbox_idle(const struct inbox *in);

#endif
