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

#define HO_BATCH	128	/* sessions per grant */
#define HO_HOLD_MAX	512	/* sessions queued here or granted */
#define HO_LATER_MS	100	/* nothing could move: ask again after */

/*
 * Whoever is asked for sessions: an old worker, or one the previous
 * binary left (an orphan, after an upgrade). Its frontends and servers,
 * by its own numbering, mapped onto the current configuration.
 */
struct ho_peer {
	struct master		*m;
	const char		*what;		/* for the log */
	int			 id;
	int			 chan;
	struct wproc_ho		*ho;
	size_t			 nfe, nsrv;
	size_t			 nmapped;	/* servers the map covers */
	const size_t		*fe_map;	/* STATS_NOWHERE: gone */
	const size_t		*srv_map;
	const uint8_t		*srv_same;	/* NULL: compare cfg's */
	const struct config	*cfg;		/* its own, or NULL */
	struct dtarget		*t;		/* to send sessions back */
};

static void
peer_of_wproc(struct wproc *wp, struct ho_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->m = wp->m;
	p->what = "worker";
	p->id = wp->id;
	p->chan = wp->chan;
	p->ho = &wp->ho;
	p->cfg = wp->gen->cfg;
	p->nfe = wp->gen->cfg->nfrontends;
	p->nsrv = wp->gen->cfg->nservers;
	/* Servers added at runtime since the map was made stay put. */
	if (wp->gen->map.nfrontends == p->nfe &&
	    wp->gen->map.nservers <= p->nsrv) {
		p->fe_map = wp->gen->map.frontends;
		p->srv_map = wp->gen->map.servers;
		p->nmapped = wp->gen->map.nservers;
	}
	p->t = &wp->t;
}

static void
peer_of_orphan(struct orphan *o, struct ho_peer *p)
{
	memset(p, 0, sizeof(*p));
	p->m = o->m;
	p->what = "worker of the old binary";
	p->id = o->id;
	p->chan = o->chan;
	p->ho = &o->ho;
	if (o->named && o->fe_map != NULL) {
		p->nfe = o->nfe;
		p->nsrv = o->nsrv;
		p->fe_map = o->fe_map;
		p->srv_map = o->srv_map;
		p->nmapped = o->nsrv;
		p->srv_same = o->srv_same;
	}
}

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
	size_t b, j;

	if (config_server_at(cfg, i, &b, &j) == -1)
		return NULL;
	return &cfg->backends[b].servers[j];
}

/*
 * Server i of p: in the current configuration at the same address, and
 * ready there (a drained, maintained or removed server keeps its old
 * sessions where they are, to finish).
 */
static int
handover_same(const struct ho_peer *p, size_t i)
{
	const struct server_conf *a, *b;

	b = handover_server(p->m->cfg, p->srv_map[i]);
	if (b == NULL || b->admin != ADMIN_READY || b->removed)
		return 0;
	if (p->srv_same != NULL)
		return p->srv_same[i];
	a = handover_server(p->cfg, i);
	return a != NULL && addr_equal(&a->addr, &b->addr);
}

/*
 * p's frontends and servers that may move: those the current
 * configuration has, by name, a server at the same address too.
 */
static void
handover_bits(const struct ho_peer *p, uint32_t *words)
{
	for (size_t i = 0; i < p->nfe; i++)
		if (p->fe_map[i] != STATS_NOWHERE)
			words[CHAN_HO_BITS + i / 32] |= 1U << (i % 32);
	for (size_t i = 0; i < p->nmapped; i++) {
		size_t bit = p->nfe + i;
		if (p->srv_map[i] != STATS_NOWHERE && handover_same(p, i))
			words[CHAN_HO_BITS + bit / 32] |= 1U << (bit % 32);
	}
}

/* Grant p credit for n sessions. Returns 0, or -1 when not sent. */
static int
handover_grant_peer(struct ho_peer *p, uint32_t n)
{
	uint32_t words[CHAN_HO_WORDS_MAX];
	char buf[CHAN_MSG_MAX];
	size_t bits = p->nfe + p->nsrv;
	size_t count = CHAN_HO_BITS + (bits + 31) / 32, len;

	if (p->fe_map == NULL || count > CHAN_HO_WORDS_MAX) {
		log_warnx("%s %d: its sessions cannot be handed over (%s): "
		    "they drain", p->what, p->id, p->fe_map == NULL ?
		    "its names are not known" : "too many servers");
		p->ho->asked = 0;
		return -1;
	}
	memset(words, 0, count * sizeof(*words));
	words[CHAN_HO_CREDIT] = n;
	words[CHAN_HO_NFE] = (uint32_t)p->nfe;
	words[CHAN_HO_NSRV] = (uint32_t)p->nsrv;
	handover_bits(p, words);
	len = chan_encode(buf, sizeof(buf), CHAN_HANDOVER, words, count);
	if (len == 0 || chan_send(p->chan, buf, len, NULL, 0) == -1)
		return -1;
	p->ho->granted = n;
	p->ho->arrived = 0;
	return 0;
}

static int
handover_grant(struct master *m, struct wproc *wp, uint32_t n)
{
	struct ho_peer p;

	(void)m;
	peer_of_wproc(wp, &p);
	return handover_grant_peer(&p, n);
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
handover_later(struct master *m, struct wproc_ho *ho)
{
	struct timeval tv = { 0, HO_LATER_MS * 1000 };

	ho->later = 1;
	evtimer_add(m->handover_ev, &tv);
}

/* Whether ho may be granted credit now. */
static int
handover_wants(const struct wproc_ho *ho)
{
	return ho->asked && ho->granted == 0 && !ho->later &&
	    (!ho->replied || ho->last.waiting > 0);
}

void
handover_tick(struct master *m)
{
	uint64_t held = m->d.moving;
	struct ho_peer p;

	if (m->stopping || m->upgrading || !m->cfg->handover ||
	    !handover_has_target(m))
		return;
	for (size_t i = 0; i < m->nworkers; i++)
		held += m->workers[i]->ho.granted;
	for (size_t i = 0; i < m->norphans; i++)
		held += m->orphans[i]->ho.granted;
	for (size_t i = 0; i < m->nworkers + m->norphans &&
	    held < HO_HOLD_MAX; i++) {
		uint32_t n = HO_HOLD_MAX - held < HO_BATCH ?
		    (uint32_t)(HO_HOLD_MAX - held) : HO_BATCH;
		if (i < m->nworkers) {
			struct wproc *wp = m->workers[i];
			if (!handover_asks(m, wp))
				continue;
			peer_of_wproc(wp, &p);
		} else {
			struct orphan *o = m->orphans[i - m->nworkers];
			if (o->chan == -1)
				continue;
			peer_of_orphan(o, &p);
		}
		if (!handover_wants(p.ho))
			continue;
		if (handover_grant_peer(&p, n) == 0)
			held += n;
		else if (p.ho->asked)
			handover_later(m, p.ho);	/* its channel is full */
	}
}

static void
handover_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->nworkers; i++)
		m->workers[i]->ho.later = 0;
	for (size_t i = 0; i < m->norphans; i++)
		m->orphans[i]->ho.later = 0;
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

/* Close what came with a session that goes nowhere. */
static void
handover_drop(int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

/*
 * One session from p, its indices p's own. A session whose frontend the
 * current configuration no longer has (a reload came between the grant
 * and the session), or one that comes while the master stops, goes back
 * to its sender, which runs it on.
 */
static int
handover_session_peer(struct ho_peer *p, struct wproc *to,
    const struct chan_session *cs, int *fds, size_t nfds)
{
	struct master *m = p->m;
	struct dmove *mv;
	size_t fe;

	if (p->ho->arrived >= p->ho->granted || p->fe_map == NULL ||
	    cs->conn.frontend >= p->nfe || (cs->server != CHAN_NO_SERVER &&
	    cs->server >= p->nsrv)) {
		log_warnx("%s %d: a session it had no credit for, or of no "
		    "frontend or server of its own", p->what, p->id);
		handover_drop(fds, nfds);
		return -1;
	}
	p->ho->arrived++;
	p->ho->moved++;
	if ((mv = calloc(1, sizeof(*mv))) == NULL) {
		log_warn("%s %d: a session it handed over is lost", p->what,
		    p->id);
		handover_drop(fds, nfds);
		return 0;
	}
	mv->rec = *cs;
	for (size_t i = 0; i < 3; i++)
		mv->fds[i] = i + 1 < nfds ? fds[i + 1] : -1;
	fe = p->fe_map[cs->conn.frontend];
	mv->server = cs->server != CHAN_NO_SERVER &&
	    cs->server < p->nmapped &&
	    p->srv_map[cs->server] != STATS_NOWHERE ?
	    (uint32_t)p->srv_map[cs->server] : CHAN_NO_SERVER;
	/* Stopping, the current workers take nothing: it drains at home. */
	if (fe == STATS_NOWHERE || m->stopping) {
		if (p->t == NULL ||
		    dispatch_return(&m->d, p->t, fds[0], mv) == -1)
			log_warnx("%s %d: a session of a removed frontend "
			    "could not go back to it", p->what, p->id);
		if (p->t == NULL) {
			dmove_free(mv);
			close(fds[0]);
		}
		return 0;
	}
	if (to != NULL && to->t.open) {
		/* Rebalancing: to the worker that has too few. */
		if (dispatch_send_to(&m->d, &to->t, fds[0], mv,
		    (uint32_t)fe) == -1)
			log_warn("%s %d: a session it handed over is lost",
			    p->what, p->id);
		return 0;
	}
	if (dispatch_move(&m->d, fds[0], mv, (uint32_t)fe) == -1)
		log_warn("%s %d: a session it handed over is lost", p->what,
		    p->id);
	handoff_flush(m);
	return 0;
}

int
handover_session(struct wproc *wp, const struct chan_session *cs, int *fds,
    size_t nfds)
{
	struct ho_peer p;

	peer_of_wproc(wp, &p);
	return handover_session_peer(&p, wp->ho.to, cs, fds, nfds);
}

int
handover_orphan_session(struct orphan *o, const struct chan_session *cs,
    int *fds, size_t nfds)
{
	struct ho_peer p;

	peer_of_orphan(o, &p);
	return handover_session_peer(&p, NULL, cs, fds, nfds);
}

static int
handover_moved_peer(struct ho_peer *p, const struct chan_moved *mv)
{
	struct wproc_ho *ho = p->ho;

	if (ho->granted == 0) {
		log_warnx("%s %d: hand-over report without credit", p->what,
		    p->id);
		return -1;
	}
	if (mv->sent != ho->arrived)
		log_warnx("%s %d: says %u sessions handed over, %u came",
		    p->what, p->id, mv->sent, ho->arrived);
	ho->granted = 0;
	ho->replied = 1;
	ho->last = *mv;
	ho->to = NULL;		/* a rebalancing asks once */
	/*
	 * No credit: "heard". What it sent and came back (handover_return)
	 * went before this, so once it reads this the worker may exit.
	 */
	(void)handover_grant_peer(p, 0);
	ho->granted = 0;
	if (mv->sent == 0 && mv->waiting > 0)
		handover_later(p->m, ho);
	handover_tick(p->m);
	return 0;
}

int
handover_moved(struct wproc *wp, const struct chan_moved *mv)
{
	struct ho_peer p;

	peer_of_wproc(wp, &p);
	return handover_moved_peer(&p, mv);
}

int
handover_orphan_moved(struct orphan *o, const struct chan_moved *mv)
{
	struct ho_peer p;

	peer_of_orphan(o, &p);
	return handover_moved_peer(&p, mv);
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
handover_view(const struct wproc_ho *ho, struct stats_handover *out)
{
	memset(out, 0, sizeof(*out));
	if (!ho->asked && ho->moved == 0)
		return;
	out->asked = 1;
	out->moved = ho->moved;
	out->waiting = ho->last.waiting;
	out->tls = ho->last.tls;
	out->pinned = ho->last.pinned;
}
