/* handover.c -- live sessions of old generations, moved to the current one */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "master_priv.h"

/*
 * After a reload (handover = on), the workers of older generations are
 * asked for their live sessions, a batch at a time: a CHAN_HANDOVER
 * grants credit and says which of the worker's frontends and servers may
 * move (those the current configuration has, at the same address). The
 * worker sends up to that many sessions (CHAN_SESSION, their sockets
 * attached), then CHAN_MOVED. Each session goes into the dispatch room
 * like an accepted socket, in the current numbering, and to a current
 * worker, acknowledged the same way. The master holds at most
 * HO_HOLD_MAX sessions, in its queues or granted: its descriptors stay
 * bounded whatever the old generation holds.
 */

#define HO_BATCH	64	/* sessions per grant */
#define HO_HOLD_MAX	256	/* sessions queued here or granted */
#define HO_LATER_MS	100	/* nothing could move: ask again after */

static int
handover_asks(const struct master *m, const struct wproc *wp)
{
	return wp->ho.asked && wp->state == WP_DRAINING && wp->chan != -1 &&
	    wp->gen != m->gen && !m->stopping && m->cfg->handover;
}

void
handover_begin(struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = m->workers[i];
		if (wp->state != WP_DRAINING || wp->said_bye ||
		    wp->gen == m->gen || !m->cfg->handover)
			continue;
		wp->ho.asked = 1;
		wp->ho.replied = 0;	/* a new configuration: ask anew */
		wp->ho.later = 0;
	}
	handover_tick(m);
}

/* The server at flat index i of cfg. */
static const struct server_conf *
handover_server(const struct config *cfg, size_t i)
{
	for (size_t b = 0; b < cfg->nbackends; b++) {
		const struct backend_conf *bc = &cfg->backends[b];
		if (i >= bc->server_base && i < bc->server_base + bc->nservers)
			return &bc->servers[i - bc->server_base];
	}
	return NULL;
}

/*
 * wp's frontends and servers that may move: those the current
 * configuration has, by name, a server at the same address too.
 */
static void
handover_bits(const struct master *m, const struct wproc *wp,
    uint32_t *words)
{
	const struct config *old = wp->gen->cfg;
	const struct stats_map *map = &wp->gen->map;
	size_t nfe = old->nfrontends;

	for (size_t i = 0; i < nfe && i < map->nfrontends; i++)
		if (map->frontends[i] != STATS_NOWHERE)
			words[CHAN_HO_BITS + i / 32] |= 1U << (i % 32);
	for (size_t i = 0; i < old->nservers && i < map->nservers; i++) {
		const struct server_conf *a, *b;
		size_t bit = nfe + i;
		if (map->servers[i] == STATS_NOWHERE)
			continue;
		a = handover_server(old, i);
		b = handover_server(m->cfg, map->servers[i]);
		if (a != NULL && b != NULL && addr_equal(&a->addr, &b->addr))
			words[CHAN_HO_BITS + bit / 32] |= 1U << (bit % 32);
	}
}

/* Grant wp credit for n sessions. Returns 0, or -1 when not sent. */
static int
handover_grant(struct master *m, struct wproc *wp, uint32_t n)
{
	uint32_t words[CHAN_HO_WORDS_MAX];
	char buf[CHAN_MSG_MAX];
	const struct config *old = wp->gen->cfg;
	size_t bits = old->nfrontends + old->nservers;
	size_t count = CHAN_HO_BITS + (bits + 31) / 32, len;

	if (count > CHAN_HO_WORDS_MAX) {
		log_warnx("worker %d: too many servers to hand sessions over: "
		    "they drain", wp->id);
		wp->ho.asked = 0;
		return -1;
	}
	memset(words, 0, count * sizeof(*words));
	words[CHAN_HO_CREDIT] = n;
	words[CHAN_HO_NFE] = (uint32_t)old->nfrontends;
	words[CHAN_HO_NSRV] = (uint32_t)old->nservers;
	handover_bits(m, wp, words);
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, words, count);
	if (len == 0 || chan_send(wp->chan, buf, len, NULL, 0) == -1)
		return -1;
	wp->ho.granted = n;
	wp->ho.arrived = 0;
	return 0;
}

/* A current worker that takes sockets: somewhere for sessions to go. */
static int
handover_has_target(const struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->gen == m->gen && m->workers[i]->t.open)
			return 1;
	return 0;
}

static void
handover_later(struct master *m, struct wproc *wp)
{
	struct timeval tv = { 0, HO_LATER_MS * 1000 };

	wp->ho.later = 1;
	evtimer_add(m->handover_ev, &tv);
}

void
handover_tick(struct master *m)
{
	uint64_t held = m->d.moving;

	if (m->stopping || !m->cfg->handover || !handover_has_target(m))
		return;
	for (size_t i = 0; i < m->nworkers; i++)
		held += m->workers[i]->ho.granted;
	for (size_t i = 0; i < m->nworkers && held < HO_HOLD_MAX; i++) {
		struct wproc *wp = m->workers[i];
		uint32_t n = HO_HOLD_MAX - held < HO_BATCH ?
		    (uint32_t)(HO_HOLD_MAX - held) : HO_BATCH;
		if (!handover_asks(m, wp) || wp->ho.granted > 0 ||
		    wp->ho.later || (wp->ho.replied &&
		    wp->ho.last.waiting == 0))
			continue;
		if (handover_grant(m, wp, n) == 0)
			held += n;
		else if (wp->ho.asked)
			handover_later(m, wp);	/* its channel is full */
	}
}

static void
handover_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->nworkers; i++)
		m->workers[i]->ho.later = 0;
	handover_tick(m);
}

int
handover_init(struct master *m)
{
	m->handover_ev = evtimer_new(m->base, handover_later_cb, m);
	return m->handover_ev == NULL ? -1 : 0;
}

void
handover_free(struct master *m)
{
	if (m->handover_ev != NULL)
		event_free(m->handover_ev);
	m->handover_ev = NULL;
}

/*
 * A session whose frontend the current configuration no longer has (a
 * reload came between the grant and the session): back to its worker,
 * which runs it on.
 */
static void
handover_return(struct master *m, struct wproc *wp, struct dmove *mv,
    int fd)
{
	if (dispatch_return(&m->d, &wp->t, fd, mv) == -1)
		log_warn("worker %d: a session it handed over could not go "
		    "back to it", wp->id);
}

int
handover_session(struct wproc *wp, const struct chan_session *cs, int *fds,
    size_t nfds)
{
	struct master *m = wp->m;
	const struct stats_map *map = &wp->gen->map;
	struct dmove *mv;
	size_t fe;

	if (wp->ho.arrived >= wp->ho.granted ||
	    cs->conn.frontend >= wp->gen->cfg->nfrontends ||
	    (cs->server != CHAN_NO_SERVER && cs->server >=
	    wp->gen->cfg->nservers)) {
		log_warnx("worker %d: a session it had no credit for, or of "
		    "no frontend or server of its own", wp->id);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	wp->ho.arrived++;
	wp->ho.moved++;
	if ((mv = calloc(1, sizeof(*mv))) == NULL) {
		log_warn("worker %d: a session it handed over is lost", wp->id);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return 0;
	}
	mv->rec = *cs;
	for (size_t i = 0; i < 3; i++)
		mv->fds[i] = i + 1 < nfds ? fds[i + 1] : -1;
	fe = cs->conn.frontend < map->nfrontends ?
	    map->frontends[cs->conn.frontend] : STATS_NOWHERE;
	mv->server = cs->server < map->nservers &&
	    map->servers[cs->server] != STATS_NOWHERE ?
	    (uint32_t)map->servers[cs->server] : CHAN_NO_SERVER;
	if (fe == STATS_NOWHERE) {
		handover_return(m, wp, mv, fds[0]);
		return 0;
	}
	if (wp->ho.to != NULL && wp->ho.to->t.open) {
		/* Rebalancing: to the worker that has too few. */
		if (dispatch_send_to(&m->d, &wp->ho.to->t, fds[0], mv,
		    (uint32_t)fe) == -1)
			log_warn("worker %d: a session it handed over is lost",
			    wp->id);
		return 0;
	}
	if (dispatch_move(&m->d, fds[0], mv, (uint32_t)fe) == -1)
		log_warn("worker %d: a session it handed over is lost", wp->id);
	handoff_flush(m);
	return 0;
}

int
handover_moved(struct wproc *wp, const struct chan_moved *mv)
{
	struct master *m = wp->m;

	if (wp->ho.granted == 0) {
		log_warnx("worker %d: hand-over report without credit", wp->id);
		return -1;
	}
	if (mv->sent != wp->ho.arrived)
		log_warnx("worker %d: says %u sessions handed over, %u came",
		    wp->id, mv->sent, wp->ho.arrived);
	wp->ho.granted = 0;
	wp->ho.replied = 1;
	wp->ho.last = *mv;
	wp->ho.to = NULL;		/* a rebalancing asks once */
	if (mv->sent == 0 && mv->waiting > 0)
		handover_later(m, wp);
	handover_tick(m);
	return 0;
}

/* The worker said bye: it reads nothing more, so it is asked no more. */
void
handover_bye(struct wproc *wp)
{
	wp->ho.asked = 0;
	wp->ho.granted = 0;
}

/* Open sessions of a current worker, by its latest report. */
static uint64_t
handover_load(const struct wproc *wp)
{
	return wp->st.all.active;
}

void
handover_rebalance(struct wproc *to)
{
	struct master *m = to->m;
	uint64_t sum = 0, n = 0, avg;

	if (m->stopping || !m->cfg->handover || to->gen != m->gen)
		return;
	for (size_t i = 0; i < m->nworkers; i++) {
		const struct wproc *wp = m->workers[i];
		if (wp->gen != m->gen || wp->state != WP_RUNNING)
			continue;
		sum += handover_load(wp);
		n++;
	}
	if (n < 2)
		return;
	avg = sum / n;
	for (size_t i = 0; i < m->nworkers; i++) {
		struct wproc *wp = m->workers[i];
		uint64_t over = handover_load(wp) > avg ? handover_load(wp) -
		    avg : 0;
		if (wp == to || wp->gen != m->gen || wp->state != WP_RUNNING ||
		    wp->ho.granted > 0 || over == 0)
			continue;
		if (over > HO_BATCH)
			over = HO_BATCH;
		if (handover_grant(m, wp, (uint32_t)over) == 0) {
			wp->ho.to = to;
			log_info("worker %d (pid %d): %llu sessions to move to "
			    "worker %d", wp->id, (int)wp->pid,
			    (unsigned long long)over, to->id);
		}
	}
}

void
handover_forget(struct master *m, struct wproc *gone)
{
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->ho.to == gone)
			m->workers[i]->ho.to = NULL;
}

void
handover_view(const struct wproc *wp, struct stats_handover *out)
{
	memset(out, 0, sizeof(*out));
	if (!wp->ho.asked && wp->ho.moved == 0)
		return;
	out->asked = 1;
	out->moved = wp->ho.moved;
	out->waiting = wp->ho.last.waiting;
	out->tls = wp->ho.last.tls;
	out->pinned = wp->ho.last.pinned;
}
