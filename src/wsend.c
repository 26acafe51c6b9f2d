/* wsend.c -- what the master tells its workers: server states
 * (CHAN_SERVER), definitions of added ones (CHAN_SRVDEF), and drain */
#include "ac_config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "master_priv.h"
#include "srvset.h"

void
wsend_states(struct wproc *wp, size_t first, size_t n)
{
	struct master *m = wp->m;
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_server recs[CHAN_MAX_SERVERS];

	while (n > 0) {
		size_t k = n < CHAN_MAX_SERVERS ? n : CHAN_MAX_SERVERS, len;
		for (size_t i = 0; i < k; i++) {
			const struct server_conf *sc;
			size_t b, j;
			memset(&recs[i], 0, sizeof(recs[i]));
			recs[i].server = (uint32_t)(first + i);
			recs[i].up = m->server_up[first + i];
			recs[i].soft_down = m->server_soft[first + i];
			recs[i].weight = 1;
			if (config_server_at(m->cfg, first + i, &b, &j) == -1)
				continue;
			sc = &m->cfg->backends[b].servers[j];
			recs[i].admin = (uint8_t)sc->admin;
			recs[i].removed = (uint8_t)sc->removed;
			recs[i].weight = sc->weight;
		}
		len = chan_encode(buf, sizeof(buf), CHAN_SERVER, recs, k);
		if (len == 0 || chan_send(wp->chan, buf, len, NULL, 0) == -1)
			log_warn("worker %d: cannot send server states",
			    wp->id);
		first += k;
		n -= k;
	}
}

/* Whether wp is of the current generation and takes sockets. */
static int
wsend_takes(const struct wproc *wp)
{
	return (wp->state == WP_STARTING || wp->state == WP_RUNNING) &&
	    wp->gen == wp->m->gen;
}

void
wsend_servers(struct master *m, size_t server)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (wsend_takes(m->workers[i]))
			wsend_states(m->workers[i], server, 1);
}

/*
 * A server was added (or brought back): the current generation's workers
 * hear of it, then of its state. A worker the definition cannot reach
 * would disagree with the master on server indices from now on: it
 * drains, and a new one (which has the server from birth) takes its
 * place.
 */
void
wsend_srvdef(struct master *m, size_t b, const struct server_conf *sc)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct chan_srvdef rec;
	size_t len;

	srvset_to_chan(sc, b, &rec);
	len = chan_encode(buf, sizeof(buf), CHAN_SRVDEF, &rec, 1);
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = m->workers[i];
		if (!wsend_takes(wp))
			continue;
		if (len == 0 || chan_send(wp->chan, buf, len, NULL, 0) == -1) {
			log_warn("worker %d: cannot send server %s: replacing "
			    "it", wp->id, sc->name);
			wtable_retire(wp);
			continue;
		}
		wsend_states(wp, sc->flat, 1);
	}
}

#define DRAIN_RETRY_MS	20

static void
wsend_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->drain_due)
			wsend_drain(m->workers[i]);
}

/*
 * A full channel (the worker is busy taking sockets or sessions) is tried
 * again shortly: a SIGTERM instead would make it drain on its own, say
 * bye and hand none of its sessions over.
 */
void
wsend_drain(struct wproc *wp)
{
	static const struct timeval later = { 0, DRAIN_RETRY_MS * 1000 };
	struct master *m = wp->m;
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_DRAIN, NULL, 0);

	wp->drain_due = 0;
	if (wp->chan == -1 || chan_send(wp->chan, buf, len, NULL, 0) == 0)
		return;
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
		kill(wp->pid, SIGTERM);	/* drains too */
		return;
	}
	wp->drain_due = 1;
	if (m->drain_ev == NULL &&
	    (m->drain_ev = evtimer_new(m->base, wsend_drain_cb, m)) == NULL) {
		wp->drain_due = 0;
		kill(wp->pid, SIGTERM);
		return;
	}
	evtimer_add(m->drain_ev, &later);
}
