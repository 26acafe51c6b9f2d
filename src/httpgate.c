/* httpgate.c -- bounds on an evhttp server's connections (see httpgate.h) */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "httpgate.h"
#include "log.h"

#define GATE_MAX	64
#define BACKOFF_MS	100
#define SWEEP_MS	100

struct gconn {
	struct httpgate		*g;
	struct bufferevent	*bev;		/* evhttp's, plus our reference */
	struct event		*deadline;
	int			 used;
	int			 watched;	/* evhttp tells us of its close */
};

struct httpgate {
	SLIST_ENTRY(httpgate)	 entry;
	struct evhttp		*http;
	struct evconnlistener	*lev;
	struct event		*backoff, *sweep;
	unsigned		 max, open, deadline_ms;
	int			 backing_off, closing;
	struct gconn		 conns[GATE_MAX];
};

/* The listener's error callback is given the evhttp: find its gate. */
static SLIST_HEAD(, httpgate) gates = SLIST_HEAD_INITIALIZER(gates);

unsigned
httpgate_cap(long nofile)
{
	long cap = nofile / 8;

	return cap < 4 ? 4 : cap > GATE_MAX ? GATE_MAX : (unsigned)cap;
}

static void
gate_listen(struct httpgate *g)
{
	if (g->closing)
		return;
	if (g->open < g->max && !g->backing_off)
		evconnlistener_enable(g->lev);
	else
		evconnlistener_disable(g->lev);
}

static void
gate_arm(struct gconn *c)
{
	struct timeval tv = { c->g->deadline_ms / 1000,
	    (c->g->deadline_ms % 1000) * 1000 };

	evtimer_add(c->deadline, &tv);
}

static void
gate_free_events(struct httpgate *g)
{
	for (unsigned i = 0; i < GATE_MAX; i++)
		if (g->conns[i].deadline != NULL)
			event_free(g->conns[i].deadline);
	if (g->backoff != NULL)
		event_free(g->backoff);
	if (g->sweep != NULL)
		event_free(g->sweep);
	free(g);
}

/*
 * The connection is gone from evhttp (or going: its close callback runs
 * before it lets go of the bufferevent): drop our reference, which frees
 * the bufferevent and closes the socket if evhttp already let go.
 */
static void
gate_release(struct gconn *c)
{
	struct httpgate *g = c->g;
	struct bufferevent *bev = c->bev;

	evtimer_del(c->deadline);
	c->used = c->watched = 0;
	c->bev = NULL;
	g->open--;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_decref(bev);
	gate_listen(g);
}

/* evhttp frees a connection's bufferevent by clearing its callbacks. */
static int
gate_dropped(struct gconn *c)
{
	bufferevent_event_cb ecb;

	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;
}

/* Release what evhttp closed before it could tell us (no whole request
 * yet, so no close callback). Returns how many are left unwatched. */
static unsigned
gate_sweep(struct httpgate *g)
{
	unsigned left = 0;

	for (unsigned i = 0; i < GATE_MAX; i++) {
		struct gconn *c = &g->conns[i];

		if (!c->used || c->watched)
			continue;
		if (gate_dropped(c))
			gate_release(c);
		else
			left++;
	}
	return left;
}

static void
gate_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpgate *g = arg;
	struct timeval tv = { 0, SWEEP_MS * 1000 };

	(void)fd, (void)what;
	if (gate_sweep(g) > 0)
		evtimer_add(g->sweep, &tv);
}

/* Too slow: close it the way evhttp closes on its own timeout. */
static void
gate_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gconn *c = arg;

	(void)fd, (void)what;
	if (!gate_dropped(c)) {
		log_info("stats: no whole request within %u ms, closed",
		    c->g->deadline_ms);
		bufferevent_trigger_event(c->bev, BEV_EVENT_READING |
		    BEV_EVENT_TIMEOUT, 0);
	}
	if (c->used && gate_dropped(c))
		gate_release(c);
	else if (c->used)
		gate_arm(c);	/* evhttp held on: try again later */
}

/* evhttp asks for a bufferevent for each connection it accepted. */
static struct bufferevent *
gate_bevcb(struct event_base *base, void *arg)
{
	struct httpgate *g = arg;
	struct timeval tv = { 0, SWEEP_MS * 1000 };
	struct bufferevent *bev;
	struct gconn *c = NULL;

	for (unsigned i = 0; i < GATE_MAX && c == NULL; i++)
		if (!g->conns[i].used)
			c = &g->conns[i];
	if (c == NULL)
		return NULL;	/* cannot be: the listener is off at the cap */
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;
	bufferevent_incref(bev);
	c->used = 1;
	c->bev = bev;
	g->open++;
	gate_arm(c);
	if (!evtimer_pending(g->sweep, NULL))
		evtimer_add(g->sweep, &tv);
	gate_listen(g);
	return bev;
}

static void
gate_closecb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	gate_release(arg);
}

void
httpgate_request(struct httpgate *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;

	if (evcon == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(evcon);
	for (unsigned i = 0; i < GATE_MAX; i++) {
		struct gconn *c = &g->conns[i];

		if (!c->used || c->bev != bev)
			continue;
		if (!c->watched)
			evhttp_connection_set_closecb(evcon, gate_closecb, c);
		c->watched = 1;
		gate_arm(c);
		return;
	}
}

static void
gate_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpgate *g = arg;

	(void)fd, (void)what;
	g->backing_off = 0;
	gate_listen(g);
}

/* accept() failed with something other than a retriable error. */
static void
gate_accept_error(struct evconnlistener *lev, void *arg)
{
	struct timeval tv = { 0, BACKOFF_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();
	struct httpgate *g;

	SLIST_FOREACH(g, &gates, entry)
		if (g->lev == lev)
			break;
	(void)arg;
	log_warnx("stats: accept: %s; pausing %d ms", strerror(err),
	    BACKOFF_MS);
	if (g == NULL) {
		evconnlistener_disable(lev);
		return;
	}
	g->backing_off = 1;
	gate_listen(g);
	evtimer_add(g->backoff, &tv);
}

struct httpgate *
httpgate_new(struct event_base *base, struct evhttp *http,
    struct evhttp_bound_socket *bound, unsigned max, unsigned deadline_ms)
{
	struct httpgate *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->http = http;
	g->lev = evhttp_bound_socket_get_listener(bound);
	g->max = max < 1 ? 1 : max > GATE_MAX ? GATE_MAX : max;
	g->deadline_ms = deadline_ms;
	if ((g->backoff = evtimer_new(base, gate_backoff_cb, g)) == NULL ||
	    (g->sweep = evtimer_new(base, gate_sweep_cb, g)) == NULL)
		goto fail;
	for (unsigned i = 0; i < GATE_MAX; i++) {
		g->conns[i].g = g;
		if ((g->conns[i].deadline = evtimer_new(base, gate_deadline_cb,
		    &g->conns[i])) == NULL)
			goto fail;
	}
	SLIST_INSERT_HEAD(&gates, g, entry);
	evhttp_set_bevcb(http, gate_bevcb, g);
	evconnlistener_set_error_cb(g->lev, gate_accept_error);
	return g;
fail:
	gate_free_events(g);
	return NULL;
}

unsigned
httpgate_open(const struct httpgate *g)
{
	return g->open;
}

void
httpgate_free(struct httpgate *g)
{
	if (g == NULL)
		return;
	g->closing = 1;
	SLIST_REMOVE(&gates, g, httpgate, entry);
	evtimer_del(g->backoff);
	evtimer_del(g->sweep);
	/* Watched connections are released from its close callback. */
	evhttp_free(g->http);
	for (unsigned i = 0; i < GATE_MAX; i++)
		if (g->conns[i].used)
			gate_release(&g->conns[i]);
	gate_free_events(g);
}
