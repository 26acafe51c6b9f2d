/* outbox.h -- a worker's acknowledgements and goodbye: in order, never lost */
#ifndef BATON_OUTBOX_H
#define BATON_OUTBOX_H

#include <stdint.h>

struct event;
struct event_base;

/*
 * CHAN_ACK and CHAN_BYE on their way to the master. What a full channel
 * does not take now waits here, and a one-shot EV_WRITE event on the
 * channel sends it as soon as there is room. Acknowledgements are
 * cumulative, so only the newest one waits; BYE goes strictly after every
 * acknowledgement queued before it, and none is queued after it.
 */
struct outbox {
	int		 fd;		/* the channel; not ours to close */
	struct event	*ev;		/* EV_WRITE, added while blocked */
	uint64_t	 ack;		/* newest id to acknowledge */
	uint64_t	 ack_sent;	/* newest id acknowledged */
	unsigned	 bye:1;		/* BYE queued */
	unsigned	 bye_sent:1;
	unsigned	 blocked:1;	/* the channel was full: ev added */
	unsigned	 gone:1;	/* the master is gone: send nothing */
	void		(*sent)(void *arg);	/* after a retry */
	void		*arg;
};

/*
 * Set up an empty outbox on channel fd. sent(arg) is called after the
 * EV_WRITE event sent something that waited (or found the master gone).
 * Returns 0, or -1 when out of memory.
 */
int	outbox_init(struct outbox *o, struct event_base *base, int fd,
	    void (*sent)(void *), void *arg);
/* Free the event; what still waits is dropped. */
void	outbox_free(struct outbox *o);
/*
 * Acknowledge every socket up to id upto, now or as soon as the channel
 * has room. Ignored after outbox_bye().
 */
void	outbox_ack(struct outbox *o, uint64_t upto);
/* Say goodbye after the acknowledgements queued so far. */
void	outbox_bye(struct outbox *o);
/* The newest acknowledgement is out (or the master is gone). */
int	outbox_acked(const struct outbox *o);
/* Everything queued is out (or the master is gone). */
int	outbox_empty(const struct outbox *o);

#endif
