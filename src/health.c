/* health.c -- server health: active checks by the master, passive failures */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "health.h"
#include "log.h"
#include "net.h"

/* One server's checks and failure window. */
struct hcheck {
	struct health			*h;
	size_t				 server;	/* flat index */
	const struct backend_conf	*bc;
	const struct server_conf	*sc;
	struct health_state		 st;
	int				 fd;
	struct event			*io;
	struct event			*timer;		/* next check */
	struct timeval			 deadline;
	size_t				 sent;
	size_t				 got;
	/* passive failures */
	unsigned			 fails;
	struct timeval			 window;	/* first failure */
	int				 soft_down;
	struct event			*soft_timer;	/* end of soft-down */
	int				 stopped;	/* removed at runtime */
};

struct health {
	struct event_base	*base;
	const struct config	*cfg;
	health_change_fn	 fn;
	void			*arg;
	struct hcheck		*checks;	/* one per flat server */
	size_t			 n;		/* servers set up */
	size_t			 cap;		/* room in checks */
	uint64_t		 rng;
};

int
health_count(struct health_state *h, int ok, unsigned rise, unsigned fall)
{
	if (ok) {
		h->fail_run = 0;
		if (++h->ok_run >= rise && !h->up) {
			h->up = 1;
			return 1;
		}
	} else {
		h->ok_run = 0;
		if (++h->fail_run >= fall && h->up) {
			h->up = 0;
			return 1;
		}
	}
	return 0;
}

static unsigned
health_random(struct health *h, unsigned below)
{
	h->rng ^= h->rng << 13;
	h->rng ^= h->rng >> 7;
	h->rng ^= h->rng << 17;
	return below ? (unsigned)(h->rng % below) : 0;
}

static void
ms_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void
health_changed(struct hcheck *c)
{
	c->h->fn(c->h->arg, c->server, c->st.up, c->soft_down);
}

static void
health_schedule(struct hcheck *c, unsigned delay_ms)
{
	struct timeval tv;

	ms_tv(delay_ms, &tv);
	evtimer_add(c->timer, &tv);
}

/* A check ended: count it, and plan the next one about an interval on. */
static void
health_done(struct hcheck *c, int ok, const char *why)
{
	unsigned iv = c->bc->check_interval_ms;

	if (c->fd != -1) {
		event_del(c->io);
		close(c->fd);
		c->fd = -1;
	}
	if (health_count(&c->st, ok, c->bc->rise, c->bc->fall)) {
		if (c->st.up)
			log_notice("server %s/%s (%s) is up: %u checks passed",
			    c->bc->name, c->sc->name, c->sc->addr_text,
			    c->bc->rise);
		else
			log_warnx("server %s/%s (%s) is down: %u checks "
			    "failed, last: %s", c->bc->name, c->sc->name,
			    c->sc->addr_text, c->bc->fall, why);
		health_changed(c);
	}
	/* +-5% so that checks started together drift apart */
	health_schedule(c, iv - iv / 20 + health_random(c->h, iv / 10 + 1));
}

static void	health_io(evutil_socket_t, short, void *);

static int
health_remaining(struct hcheck *c, struct timeval *left)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	timersub(&c->deadline, &now, left);
	return left->tv_sec >= 0;
}

/* Wait for the socket (what) until the check's deadline. */
static void
health_wait(struct hcheck *c, short what)
{
	struct timeval left;

	if (!health_remaining(c, &left)) {
		health_done(c, 0, "timeout");
		return;
	}
	event_del(c->io);
	event_assign(c->io, c->h->base, c->fd, what, health_io, c);
	event_add(c->io, &left);
}

static void
health_send_or_expect(struct hcheck *c)
{
	const struct backend_conf *bc = c->bc;
	ssize_t n;

	while (c->sent < bc->check_send_len) {
		n = send(c->fd, bc->check_send + c->sent,
		    bc->check_send_len - c->sent, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			health_wait(c, EV_WRITE);
			return;
		}
		if (n == -1) {
			health_done(c, 0, strerror(errno));
			return;
		}
		c->sent += (size_t)n;
	}
	if (c->got < bc->check_expect_len) {
		health_wait(c, EV_READ);
		return;
	}
	health_done(c, 1, "ok");
}

static void
health_read(struct hcheck *c)
{
	const struct backend_conf *bc = c->bc;
	char buf[512];
	size_t want = bc->check_expect_len - c->got;
	ssize_t n;

	n = recv(c->fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		health_wait(c, EV_READ);
		return;
	}
	if (n <= 0) {
		health_done(c, 0, n == 0 ? "closed before the expected reply" :
		    strerror(errno));
		return;
	}
	if (memcmp(buf, bc->check_expect + c->got, (size_t)n) != 0) {
		health_done(c, 0, "unexpected reply");
		return;
	}
	c->got += (size_t)n;
	health_send_or_expect(c);
}

static void
health_io(evutil_socket_t fd, short what, void *arg)
{
	struct hcheck *c = arg;

	if (what & EV_TIMEOUT) {
		health_done(c, 0, "timeout");
		return;
	}
	if (c->sent == 0 && c->got == 0 && (what & EV_WRITE) &&
	    net_connect_result(c->fd) == -1) {
		health_done(c, 0, strerror(errno));
		return;
	}
	if (what & EV_READ)
		health_read(c);
	else
		health_send_or_expect(c);
}

static void
health_start(evutil_socket_t fd, short what, void *arg)
{
	struct hcheck *c = arg;
	struct timeval tv;

	c->sent = c->got = 0;
	c->fd = net_connect((const struct sockaddr *)&c->sc->addr.ss,
	    c->sc->addr.len);
	if (c->fd == -1 && net_error_is_local(errno)) {
		/* The master's shortage says nothing of the server: skip. */
		log_warnx("cannot check %s/%s (%s): %s (a local error, not "
		    "counted against the server)", c->bc->name, c->sc->name,
		    c->sc->addr_text, strerror(errno));
		health_schedule(c, c->bc->check_interval_ms);
		return;
	}
	if (c->fd == -1) {
		health_done(c, 0, strerror(errno));
		return;
	}
	gettimeofday(&tv, NULL);
	ms_tv(c->bc->check_timeout_ms, &c->deadline);
	timeradd(&tv, &c->deadline, &c->deadline);
	event_assign(c->io, c->h->base, c->fd, EV_WRITE, health_io, c);
	ms_tv(c->bc->check_timeout_ms, &tv);
	event_add(c->io, &tv);
}

static void
health_soft_end(evutil_socket_t fd, short what, void *arg)
{
	struct hcheck *c = arg;

	c->soft_down = 0;
	c->fails = 0;
	log_notice("server %s/%s (%s): fail_timeout over, trying it again",
	    c->bc->name, c->sc->name, c->sc->addr_text);
	health_changed(c);
}

void
health_failures(struct health *h, size_t server, unsigned n)
{
	struct hcheck *c;
	struct timeval now, age, tv;

	if (h == NULL || server >= h->n || n == 0)
		return;
	c = &h->checks[server];
	if (c->h == NULL || c->stopped)
		return;
	if (c->bc->check == CHECK_TCP) {
		while (n-- > 0)
			if (health_count(&c->st, 0, c->bc->rise,
			    c->bc->fall)) {
				log_warnx("server %s/%s (%s) is down: connects "
				    "from workers failed", c->bc->name,
				    c->sc->name, c->sc->addr_text);
				health_changed(c);
			}
		return;
	}
	if (c->bc->max_fails == 0 || c->soft_down)
		return;
	gettimeofday(&now, NULL);
	timersub(&now, &c->window, &age);
	if (c->fails == 0 || (unsigned)(age.tv_sec * 1000 + age.tv_usec /
	    1000) > c->bc->fail_timeout_ms) {
		c->window = now;
		c->fails = 0;
	}
	c->fails += n;
	if (c->fails < c->bc->max_fails)
		return;
	c->soft_down = 1;
	log_warnx("server %s/%s (%s): %u failed connects, avoided for %u ms",
	    c->bc->name, c->sc->name, c->sc->addr_text, c->fails,
	    c->bc->fail_timeout_ms);
	ms_tv(c->bc->fail_timeout_ms, &tv);
	evtimer_add(c->soft_timer, &tv);
	health_changed(c);
}

void	health_stop(struct health *, size_t);

/*
 * Set up the checks of server sc (flat index sc->flat), starting from
 * state up; a slot used before (a server brought back) starts over.
 */
static int
health_setup(struct health *h, const struct backend_conf *bc,
    const struct server_conf *sc, int up)
{
	struct hcheck *c = &h->checks[sc->flat];

	if (c->h != NULL) {
		health_stop(h, sc->flat);
	} else {
		c->h = h;
		c->fd = -1;
		c->io = event_new(h->base, -1, 0, health_io, c);
		c->timer = evtimer_new(h->base, health_start, c);
		c->soft_timer = evtimer_new(h->base, health_soft_end, c);
		if (c->io == NULL || c->timer == NULL || c->soft_timer == NULL)
			return -1;
	}
	c->server = sc->flat;
	c->bc = bc;
	c->sc = sc;
	c->stopped = 0;
	c->soft_down = 0;
	c->fails = 0;
	memset(&c->st, 0, sizeof(c->st));
	c->st.up = up != 0;
	/* the first check at a random point of the interval */
	if (bc->check == CHECK_TCP)
		health_schedule(c, health_random(h, bc->check_interval_ms));
	return 0;
}

struct health *
health_new(struct event_base *base, const struct config *cfg,
    const uint8_t *up, health_change_fn fn, void *arg)
{
	struct health *h;
	struct timeval now;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->base = base;
	h->cfg = cfg;
	h->fn = fn;
	h->arg = arg;
	h->n = cfg->nservers;
	/* Room for every server the backends may come to hold. */
	h->cap = cfg->nbackends * CONFIG_MAX_SERVERS + 1;
	gettimeofday(&now, NULL);
	h->rng = ((uint64_t)now.tv_usec << 20) ^ (uint64_t)getpid() ^ 1;
	if ((h->checks = calloc(h->cap, sizeof(*h->checks))) == NULL) {
		free(h);
		return NULL;
	}
	for (size_t b = 0; b < cfg->nbackends; b++) {
		const struct backend_conf *bc = &cfg->backends[b];
		for (size_t j = 0; j < bc->nservers; j++) {
			if (health_setup(h, bc, &bc->servers[j],
			    up[bc->servers[j].flat]) == -1) {
				health_free(h);
				return NULL;
			}
			/* removed at runtime, and kept so over a reload */
			if (bc->servers[j].removed)
				health_stop(h, bc->servers[j].flat);
		}
	}
	return h;
}

int
health_add(struct health *h, size_t flat, int up)
{
	size_t b, j;

	if (flat >= h->cap || config_server_at(h->cfg, flat, &b, &j) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (flat >= h->n)
		h->n = flat + 1;
	return health_setup(h, &h->cfg->backends[b],
	    &h->cfg->backends[b].servers[j], up);
}

void
health_stop(struct health *h, size_t flat)
{
	struct hcheck *c;

	if (flat >= h->n || (c = &h->checks[flat])->h == NULL)
		return;
	c->stopped = 1;
	evtimer_del(c->timer);
	evtimer_del(c->soft_timer);
	if (c->fd != -1) {
		event_del(c->io);
		close(c->fd);
		c->fd = -1;
	}
}

void
health_free(struct health *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		struct hcheck *c = &h->checks[i];
		if (c->h == NULL)
			continue;	/* never set up */
		if (c->fd != -1)
			close(c->fd);
		if (c->io != NULL)
			event_free(c->io);
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->soft_timer != NULL)
			event_free(c->soft_timer);
	}
	free(h->checks);
	free(h);
}
