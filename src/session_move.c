/* session_move.c -- a live session between processes: sent whole, taken whole */
#include "ac_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balance.h"
#include "channel.h"
#include "log.h"
#include "session_priv.h"

/*
 * A relaying session is two sockets, what one direction read and the
 * other did not yet write (a buffer or a pipe), a few flags and counters.
 * Between two event callbacks nothing else is in flight, so that is a
 * safe point: the whole of it goes in one CHAN_SESSION message, and once
 * the message is sent this process forgets the session without closing
 * anything the peers could notice (the kernel keeps the sockets open in
 * the receiver's hands).
 */

enum session_move
session_movable(const struct session *s, const uint32_t *words)
{
	const struct config *cfg = s->x->cfg;
	uint32_t nfe = words[CHAN_HO_NFE];

	if (s->r.ssl != NULL || s->r.server_ssl != NULL ||
	    cfg->frontends[s->frontend].tls != NULL)
		return MOVE_TLS;	/* to the client or to the server */
	if (!s->connected)
		return MOVE_LATER;
	if (s->frontend >= nfe || !CHAN_HO_BIT(words, s->frontend))
		return MOVE_PINNED;
	if (s->srv >= 0 && (session_backend_conf(s)->servers[s->srv].flat >=
	    words[CHAN_HO_NSRV] || !CHAN_HO_BIT(words, nfe +
	    session_backend_conf(s)->servers[s->srv].flat)))
		return MOVE_PINNED;
	return MOVE_NOW;
}

/* The record that describes s; the relay's part comes from ex. */
static void
session_record(const struct session *s, const struct relay_export *ex,
    struct chan_session *rec)
{
	memset(rec, 0, sizeof(*rec));
	if (chan_conn_set_peer(&rec->conn, &s->peer.sa) == -1)
		rec->conn.family = AF_INET;	/* declared unknown: 0.0.0.0 */
	rec->conn.frontend = s->frontend;
	rec->session = s->id;
	rec->start_ms = s->start_ms;
	rec->last_ms = s->last_ms;
	rec->bytes_in = s->r.bytes_in;
	rec->bytes_out = s->r.bytes_out;
	rec->server = s->srv < 0 ? CHAN_NO_SERVER :
	    (uint32_t)session_backend_conf(s)->servers[s->srv].flat;
	rec->flags = ex->flags;
	rec->up_bytes = ex->up_bytes;
	rec->down_bytes = ex->down_bytes;
}

int
session_send(struct session *s, int chan)
{
	uint64_t buf[CHAN_MSG_MAX / sizeof(uint64_t)];
	struct relay_export ex;
	struct chan_session rec;
	size_t len;
	int rc, err;

	if (relay_export(&s->r, &ex) == -1)
		return -1;
	session_record(s, &ex, &rec);
	len = chan_encode(buf, sizeof(buf), CHAN_SESSION, &rec, 1);
	rc = len == 0 ? -1 : chan_send(chan, buf, len, ex.fds, ex.nfds);
	err = len == 0 ? EINVAL : errno;
	relay_export_done(&s->r, &ex, rc == 0);
	if (rc == -1) {
		errno = err;
		return -1;
	}
	log_debug("session %llu handed over", (unsigned long long)s->id);
	session_release(s);
	return 0;
}

/* Counted here from now on: active, and once as handed over. */
static void
session_count_in(struct session *s, const struct chan_session *rec)
{
	struct session_ctx *x = s->x;
	size_t b, j;
	int found = rec->server != CHAN_NO_SERVER &&
	    config_server_at(x->cfg, rec->server, &b, &j) == 0;

	s->fc = &x->stats.frontends[s->frontend];
	s->fc->active++;
	s->fc->handed_over++;
	x->stats.all.active++;
	x->stats.all.handed_over++;
	s->backend = x->cfg->frontends[s->frontend].backend;
	s->srv = -1;
	if (found) {
		s->backend = (uint32_t)b;
		s->srv = (int)j;
		s->sc = session_server_counters(s, s->srv);
		s->sc->active++;
		s->sc->handed_over++;
		session_lb(s)->servers[s->srv].active++;
		s->picked = 1;
	}
	session_note(x, SESSION_COUNTED);
}

/* Watch both sockets and the idle deadline, as session.c would. */
static int
session_watch(struct session *s)
{
	struct session_ctx *x = s->x;
	uint64_t limit = x->cfg->frontends[s->frontend].timeout_idle_ms;
	uint64_t now = session_now(x);
	uint64_t idle = now > s->last_ms ? now - s->last_ms : 0;
	struct timeval tv;

	event_assign(&s->r.client.ev, x->base, s->r.client.fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
	    session_client_cb, s);
	event_assign(&s->r.server.ev, x->base, s->r.server.fd,
	    EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST,
	    session_server_cb, s);
	ms_to_tv(idle < limit ? limit - idle : 0, &tv);
	if (event_add(&s->r.client.ev, NULL) == -1 ||
	    event_add(&s->r.server.ev, NULL) == -1 ||
	    event_add(&s->timer, &tv) == -1)
		return -1;
	/* Whatever the sockets can do now, find out now. */
	event_active(&s->r.server.ev, EV_READ | EV_WRITE, 0);
	return 0;
}

void
session_take(struct session_ctx *x, const struct chan_session *rec,
    int *fds, size_t nfds)
{
	struct sockaddr_storage ss;
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session %llu cannot be taken over",
		    (unsigned long long)rec->session);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return;
	}
	s->x = x;
	s->id = rec->session;
	s->frontend = rec->conn.frontend;
	s->connected = 1;
	s->start_ms = rec->start_ms;
	s->last_ms = rec->last_ms;
	(void)chan_conn_peer(&rec->conn, &ss);
	memcpy(&s->peer, &ss, sizeof(s->peer));
	s->dst.sa.sa_family = AF_UNSPEC;
	TAILQ_INSERT_TAIL(&x->sessions, s, entry);
	session_count_in(s, rec);
	evtimer_assign(&s->timer, x->base, session_timer_cb, s);
	if (relay_import(&s->r, &x->pool, fds, nfds, rec->flags,
	    rec->up_bytes, rec->down_bytes) == -1) {
		session_close(s, "out of memory taking it over");
		return;
	}
	s->r.bytes_in = rec->bytes_in;
	s->r.bytes_out = rec->bytes_out;
	log_debug("session %llu taken over: %u bytes on their way to the "
	    "server, %u to the client", (unsigned long long)s->id,
	    rec->up_bytes, rec->down_bytes);
	if (session_watch(s) == -1)
		session_close(s, "event_add failed");
}

void
session_move_all(struct session_ctx *x, const uint32_t *words, int chan,
    struct chan_moved *mv)
{
	struct session *s, *next;

	memset(mv, 0, sizeof(*mv));
	for (s = TAILQ_FIRST(&x->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		switch (session_movable(s, words)) {
		case MOVE_TLS:
			mv->tls++;
			continue;
		case MOVE_PINNED:
			mv->pinned++;
			continue;
		case MOVE_LATER:
			mv->waiting++;
			continue;
		case MOVE_NOW:
			break;
		}
		if (mv->sent >= words[CHAN_HO_CREDIT] ||
		    session_send(s, chan) == -1)
			mv->waiting++;
		else
			mv->sent++;
	}
}
