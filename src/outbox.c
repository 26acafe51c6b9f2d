/* outbox.c -- a worker's acknowledgements and goodbye: in order, never lost */
#include "ac_config.h"

#include <errno.h>
#include <string.h>

#include <event2/event.h>

#include "channel.h"
#include "log.h"
#include "outbox.h"

/* Send one message: 0 sent, 1 the channel is full, -1 the master is gone. */
static int
outbox_send(struct outbox *o, int type, const void *rec, size_t count)
{
	uint64_t buf[4];
	size_t len = chan_encode(buf, sizeof(buf), type, rec, count);

	if (len != 0 && chan_send(o->fd, buf, len, NULL, 0) == 0)
		return 0;
	if (len != 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == ENOBUFS || errno == ENOMEM))
		return 1;
	if (len == 0 || (errno != EPIPE && errno != ECONNRESET))
		log_warn("cannot send message %d to the master", type);
	return -1;
}

/*
 * Send what waits, in order, until the channel is full: then the EV_WRITE
 * event tries again. A master that is gone takes nothing more.
 */
static void
outbox_flush(struct outbox *o)
{
	struct chan_ack a;
	int rc = 0;

	if (o->gone || o->blocked)
		return;
	if (o->ack_sent != o->ack) {
		a.upto = o->ack;
		if ((rc = outbox_send(o, CHAN_ACK, &a, 1)) == 0)
			o->ack_sent = a.upto;
	}
	if (rc == 0 && o->bye && !o->bye_sent &&
	    (rc = outbox_send(o, CHAN_BYE, NULL, 0)) == 0)
		o->bye_sent = 1;
	if (rc == -1)
		o->gone = 1;
	else if (rc == 1 && event_add(o->ev, NULL) == -1)
		log_warn("outbox: cannot wait for the channel");
	else if (rc == 1)
		o->blocked = 1;
}

static void
outbox_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct outbox *o = arg;

	o->blocked = 0;
	outbox_flush(o);
	o->sent(o->arg);
}

int
outbox_init(struct outbox *o, struct event_base *base, int fd,
    void (*sent)(void *), void *arg)
{
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	o->sent = sent;
	o->arg = arg;
	if ((o->ev = event_new(base, fd, EV_WRITE, outbox_write_cb, o)) ==
	    NULL)
		return -1;
	return 0;
}

void
outbox_free(struct outbox *o)
{
	if (o->ev != NULL)
		event_free(o->ev);
	o->ev = NULL;
}

void
outbox_ack(struct outbox *o, uint64_t upto)
{
	if (o->bye || upto <= o->ack)
		return;
	o->ack = upto;
	outbox_flush(o);
}

void
outbox_bye(struct outbox *o)
{
	if (o->bye)
		return;
	o->bye = 1;
	outbox_flush(o);
}

int
outbox_acked(const struct outbox *o)
{
	return o->gone || o->ack_sent == o->ack;
}

int
outbox_empty(const struct outbox *o)
{
	return o->gone || (o->ack_sent == o->ack && o->bye == o->bye_sent);
}
