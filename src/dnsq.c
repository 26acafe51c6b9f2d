/* dnsq.c -- DNS queries through c-ares, driven by a libevent loop */
#include "ac_config.h"

#include <sys/queue.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>
#include <event2/event.h>

#include "dnsq.h"
#include "log.h"

#define DNSQ_MAX_RECORDS	256
#define DNSQ_TIMEOUT_MS		1000
#define DNSQ_TRIES		2

/* A socket c-ares asked us to watch. */
struct dnsq_sock {
	LIST_ENTRY(dnsq_sock)	 entry;
	struct dnsq		*q;
	ares_socket_t		 fd;
	struct event		*ev;
};

struct dnsq {
	struct event_base	*base;
	ares_channel		 chan;
	int			 chan_ok;
	struct event		*timer;
	LIST_HEAD(, dnsq_sock)	 socks;
};

/* A query in flight: what to call with its answer. */
struct dnsq_call {
	struct dnsq	*q;
	unsigned	 port;
	dnsq_addrs_fn	 addrs;
	dnsq_srv_fn	 srv;
	void		*arg;
};

/* c-ares's next deadline, as our timer. */
static void
dnsq_arm(struct dnsq *q)
{
	struct timeval tv, *tvp;

	if ((tvp = ares_timeout(q->chan, NULL, &tv)) != NULL)
		evtimer_add(q->timer, tvp);
	else
		evtimer_del(q->timer);
}

static void
dnsq_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnsq_sock *s = arg;
	struct dnsq *q = s->q;

	ares_process_fd(q->chan, what & EV_READ ? fd : ARES_SOCKET_BAD,
	    what & EV_WRITE ? fd : ARES_SOCKET_BAD);
	dnsq_arm(q);
}

static void
dnsq_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dnsq *q = arg;

	(void)fd, (void)what;
	ares_process_fd(q->chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dnsq_arm(q);
}

static void
dnsq_sock_free(struct dnsq_sock *s)
{
	LIST_REMOVE(s, entry);
	event_free(s->ev);
	free(s);
}

/* c-ares opens, closes or changes interest in a socket. */
static void
dnsq_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnsq *q = data;
	struct dnsq_sock *s;
	short what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	LIST_FOREACH(s, &q->socks, entry)
		if (s->fd == fd)
			break;
	if (what == 0) {
		if (s != NULL)
			dnsq_sock_free(s);
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			log_warn("dns: socket");
			return;
		}
		s->q = q;
		s->fd = fd;
		LIST_INSERT_HEAD(&q->socks, s, entry);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(q->base, fd, what | EV_PERSIST, dnsq_sock_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1) {
		log_warn("dns: socket event");
		if (s->ev == NULL)
			s->ev = event_new(q->base, -1, 0, dnsq_sock_cb, s);
	}
}

struct dnsq *
dnsq_new(struct event_base *base, const char *resolvers)
{
	struct ares_options o;
	struct dnsq *q;
	int mask, rc;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("dns");
		return NULL;
	}
	q->base = base;
	LIST_INIT(&q->socks);
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		log_warnx("dns: %s", ares_strerror(rc));
		free(q);
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dnsq_sock_state;
	o.sock_state_cb_data = q;
	o.timeout = DNSQ_TIMEOUT_MS;
	o.tries = DNSQ_TRIES;
	o.lookups = (char *)"b";	/* DNS only: no /etc/hosts */
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	if (resolvers != NULL)
		mask |= ARES_OPT_LOOKUPS;
	if ((rc = ares_init_options(&q->chan, &o, mask)) != ARES_SUCCESS) {
		log_warnx("dns: %s", ares_strerror(rc));
		goto fail;
	}
	q->chan_ok = 1;
	if (resolvers != NULL && (rc = ares_set_servers_ports_csv(q->chan,
	    resolvers)) != ARES_SUCCESS) {
		log_warnx("dns: resolvers %s: %s", resolvers,
		    ares_strerror(rc));
		goto fail;
	}
	if ((q->timer = evtimer_new(base, dnsq_timer_cb, q)) == NULL) {
		log_warn("dns");
		goto fail;
	}
	return q;
fail:
	dnsq_free(q);
	return NULL;
}

void
dnsq_free(struct dnsq *q)
{
	if (q == NULL)
		return;
	/* Pending queries end with ARES_EDESTRUCTION: not passed on. */
	if (q->chan_ok)
		ares_destroy(q->chan);
	while (!LIST_EMPTY(&q->socks))
		dnsq_sock_free(LIST_FIRST(&q->socks));
	if (q->timer != NULL)
		event_free(q->timer);
	ares_library_cleanup();
	free(q);
}

static void
dnsq_addrinfo_cb(void *arg, int status, int timeouts,
    struct ares_addrinfo *res)
{
	struct dnsq_call *c = arg;
	struct dnsq_addr *v = NULL;
	size_t n = 0;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION)
		goto out;
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		c->addrs(c->arg, 1, NULL, 0, NULL);
		goto out;
	}
	if (status != ARES_SUCCESS || res == NULL) {
		c->addrs(c->arg, 0, NULL, 0, ares_strerror(status));
		goto out;
	}
	if ((v = calloc(DNSQ_MAX_RECORDS, sizeof(*v))) == NULL) {
		c->addrs(c->arg, 0, NULL, 0, strerror(errno));
		goto out;
	}
	for (struct ares_addrinfo_node *a = res->nodes; a != NULL &&
	    n < DNSQ_MAX_RECORDS; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    a->ai_addrlen > sizeof(v[n].addr.ss))
			continue;
		memcpy(&v[n].addr.ss, a->ai_addr, a->ai_addrlen);
		v[n].addr.len = a->ai_addrlen;
		if (a->ai_family == AF_INET)
			((struct sockaddr_in *)&v[n].addr.ss)->sin_port =
			    htons((uint16_t)c->port);
		else
			((struct sockaddr_in6 *)&v[n].addr.ss)->sin6_port =
			    htons((uint16_t)c->port);
		v[n].ttl = a->ai_ttl > 0 ? (unsigned)a->ai_ttl : 0;
		n++;
	}
	c->addrs(c->arg, 1, v, n, NULL);
out:
	if (res != NULL)
		ares_freeaddrinfo(res);
	free(v);
	free(c);
}

int
dnsq_addrs(struct dnsq *q, const char *host, unsigned port, dnsq_addrs_fn fn,
    void *arg)
{
	struct ares_addrinfo_hints hints;
	struct dnsq_call *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->q = q;
	c->port = port;
	c->addrs = fn;
	c->arg = arg;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(q->chan, host, NULL, &hints, dnsq_addrinfo_cb, c);
	dnsq_arm(q);
	return 0;
}

static void
dnsq_srv_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dnsq_call *c = arg;
	struct ares_srv_reply *reply = NULL;
	struct dnsq_srv *v = NULL;
	size_t n = 0;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION)
		goto out;
	if (status == ARES_SUCCESS)
		status = ares_parse_srv_reply(abuf, alen, &reply);
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		c->srv(c->arg, 1, NULL, 0, NULL);
		goto out;
	}
	if (status != ARES_SUCCESS) {
		c->srv(c->arg, 0, NULL, 0, ares_strerror(status));
		goto out;
	}
	if ((v = calloc(DNSQ_MAX_RECORDS, sizeof(*v))) == NULL) {
		c->srv(c->arg, 0, NULL, 0, strerror(errno));
		goto out;
	}
	for (struct ares_srv_reply *r = reply; r != NULL &&
	    n < DNSQ_MAX_RECORDS; r = r->next) {
		size_t len = strlen(r->host);
		if (len > 0 && r->host[len - 1] == '.')
			len--;
		if (len == 0 || len >= sizeof(v[n].host) || r->port == 0)
			continue;	/* "." means no service there */
		memcpy(v[n].host, r->host, len);
		v[n].host[len] = '\0';
		v[n].port = r->port;
		v[n].weight = r->weight;
		v[n].priority = r->priority;
		n++;
	}
	c->srv(c->arg, 1, v, n, NULL);
out:
	if (reply != NULL)
		ares_free_data(reply);
	free(v);
	free(c);
}

int
dnsq_srv(struct dnsq *q, const char *name, dnsq_srv_fn fn, void *arg)
{
	struct dnsq_call *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->q = q;
	c->srv = fn;
	c->arg = arg;
	ares_query(q->chan, name, ns_c_in, ns_t_srv, dnsq_srv_cb, c);
	dnsq_arm(q);
	return 0;
}
