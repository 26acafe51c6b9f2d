/*
 * httpgate.h -- bounds on an evhttp server's connections: how many may be
 * open at once, how long each request may take to arrive whole, and a
 * pause of the listener when accept fails for want of descriptors.
 *
 * libevent's own timeout is restarted by every byte, so a client sending
 * one byte a second holds its descriptor forever; and its listener, on
 * EMFILE, retries at once and logs every time. The gate makes each new
 * connection's bufferevent itself and keeps a reference to it, learns of
 * its close from evhttp's close callback (once a whole request came) or
 * by seeing evhttp's callbacks gone (before), arms one deadline per
 * request, and switches the listener off while at the cap or backing off.
 */
#ifndef BATON_HTTPGATE_H
#define BATON_HTTPGATE_H

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct httpgate;

/* Gate http, which listens on bound: at most max connections (1..64),
 * each request whole within deadline_ms of the connection's start or of
 * the previous request. NULL when out of memory. */
struct httpgate	*httpgate_new(struct event_base *base, struct evhttp *http,
		    struct evhttp_bound_socket *bound, unsigned max,
		    unsigned deadline_ms);
/* A request arrived whole: the next one has deadline_ms from now. */
void		 httpgate_request(struct httpgate *g, struct evhttp_request *req);
/* Connections open now. */
unsigned	 httpgate_open(const struct httpgate *g);
/* Free http (which closes its listener and connections) and the gate. */
void		 httpgate_free(struct httpgate *g);

/* The cap for a process whose descriptor limit is nofile. */
unsigned	 httpgate_cap(long nofile);

#endif
