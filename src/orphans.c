/* orphans.c -- workers of the binary that exec'd this one (orphans.h) */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "master_priv.h"
#include "orphans.h"

static void
orphan_close_chan(struct orphan *o)
{
	if (o->ev != NULL)
		event_free(o->ev);
	o->ev = NULL;
	if (o->chan != -1)
		close(o->chan);
	o->chan = -1;
}

/* Its reports: only its own totals mean anything without its config. */
static void
orphan_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct orphan *o = arg;
	char buf[CHAN_MSG_MAX], err[128];
	int fds[CHAN_MAX_FDS];
	struct chan_msg msg;

	for (int i = 0; i < CHAN_READS; i++) {
		size_t nfds = 0;
		ssize_t n = chan_recv(fd, buf, sizeof(buf), fds, &nfds);

		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			orphan_close_chan(o);	/* gone: SIGCHLD follows */
			return;
		}
		if (chan_decode(buf, (size_t)n, nfds, &msg, err,
		    sizeof(err)) == -1) {
			for (size_t k = 0; k < nfds; k++)
				close(fds[k]);
			continue;
		}
		if (msg.type == CHAN_SESSION &&
		    handover_orphan_session(o, msg.session, fds, nfds) == -1)
			o->ho.asked = 0;	/* its sessions drain there */
		if (msg.type == CHAN_MOVED &&
		    handover_orphan_moved(o, &msg.moved) == -1)
			o->ho.asked = 0;
		if (msg.type != CHAN_STATS)
			continue;	/* ACK, BYE: nothing of ours is left */
		for (size_t k = 0; k < msg.count; k++)
			if (msg.stats[k].kind == STAT_WORKER)
				o->c = msg.stats[k].c;
	}
}

/* Past drain_timeout and the grace: what is left of them is killed. */
static void
orphan_backstop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->norphans; i++) {
		log_warnx("worker %d (pid %d) of baton %s still running after "
		    "drain_timeout: killing it", m->orphans[i]->id,
		    (int)m->orphans[i]->pid, m->orphans[i]->version);
		kill(m->orphans[i]->pid, SIGKILL);
	}
}

static void
orphan_backstop(struct master *m)
{
	struct timeval tv;

	if (m->orphan_ev == NULL && (m->orphan_ev = evtimer_new(m->base,
	    orphan_backstop_cb, m)) == NULL)
		return;
	tv.tv_sec = m->cfg->drain_timeout_ms / 1000 + KILL_GRACE_S;
	tv.tv_usec = (m->cfg->drain_timeout_ms % 1000) * 1000;
	evtimer_add(m->orphan_ev, &tv);
}

void
orphan_adopt(struct master *m, pid_t pid, unsigned gen, int id,
    const char *version, int chan)
{
	struct orphan **v, *o;
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_DRAIN, NULL, 0);

	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (v = realloc(m->orphans, (m->norphans + 1) * sizeof(*v))) ==
	    NULL) {
		log_warn("worker %d (pid %d) of the old binary", id, (int)pid);
		free(o);
		if (chan != -1)
			close(chan);	/* it drains when its channel closes */
		return;
	}
	m->orphans = v;
	m->orphans[m->norphans++] = o;
	o->m = m;
	o->pid = pid;
	o->generation = gen;
	o->id = id;
	o->chan = chan;
	snprintf(o->version, sizeof(o->version), "%s", version);
	if (chan != -1) {
		(void)fcntl(chan, F_SETFD, FD_CLOEXEC);
		/* As on a reload: finish what it has, then exit. */
		if (chan_send(chan, buf, len, NULL, 0) == -1 ||
		    (o->ev = event_new(m->base, chan, EV_READ | EV_PERSIST,
		    orphan_read_cb, o)) == NULL || event_add(o->ev, NULL) == -1)
			orphan_close_chan(o);	/* drains on the close */
	}
	orphan_backstop(m);
}

/* Its names are forgotten: nothing more is asked of it. */
static void
orphan_unname(struct orphan *o)
{
	for (size_t i = 0; i < o->nfe; i++)
		free(o->fe_names[i]);
	for (size_t i = 0; i < o->nsrv; i++) {
		free(o->srv[i].backend);
		free(o->srv[i].name);
		free(o->srv[i].addr);
	}
	free(o->fe_names);
	free(o->srv);
	free(o->fe_map);
	free(o->srv_map);
	free(o->srv_same);
	o->fe_names = NULL;
	o->srv = NULL;
	o->fe_map = o->srv_map = NULL;
	o->srv_same = NULL;
	o->nfe = o->nsrv = 0;
	o->named = 0;
	o->ho.asked = 0;
}

static void
orphan_free(struct orphan *o)
{
	orphan_close_chan(o);
	orphan_unname(o);
	free(o);
}

/* The orphan adopted last, whose names the state lists next. */
static struct orphan *
orphan_last(struct master *m)
{
	struct orphan *o = m->norphans > 0 ? m->orphans[m->norphans - 1] :
	    NULL;

	return o != NULL && !o->named ? o : NULL;
}

void
orphan_name_frontend(struct master *m, size_t i, const char *name)
{
	struct orphan *o = orphan_last(m);
	char **v;

	if (o == NULL || i != o->nfe)
		return;		/* out of order: it stays unnamed */
	if ((v = realloc(o->fe_names, (o->nfe + 1) * sizeof(*v))) == NULL)
		return;
	o->fe_names = v;
	if ((v[o->nfe] = strdup(name)) != NULL)
		o->nfe++;
}

void
orphan_name_server(struct master *m, size_t i, const char *backend,
    const char *name, const char *addr)
{
	struct orphan *o = orphan_last(m);
	struct orphan_srv *v, *s;

	if (o == NULL || i != o->nsrv)
		return;
	if ((v = realloc(o->srv, (o->nsrv + 1) * sizeof(*v))) == NULL)
		return;
	o->srv = v;
	s = &v[o->nsrv];
	s->backend = strdup(backend);
	s->name = strdup(name);
	s->addr = strdup(addr);
	if (s->backend == NULL || s->name == NULL || s->addr == NULL) {
		free(s->backend);
		free(s->name);
		free(s->addr);
		return;
	}
	o->nsrv++;
}

/* o's names onto cfg: by name, a server also at the same address. */
static int
orphan_map(struct orphan *o, const struct config *cfg)
{
	free(o->fe_map);
	free(o->srv_map);
	free(o->srv_same);
	o->fe_map = calloc(o->nfe + 1, sizeof(*o->fe_map));
	o->srv_map = calloc(o->nsrv + 1, sizeof(*o->srv_map));
	o->srv_same = calloc(o->nsrv + 1, 1);
	if (o->fe_map == NULL || o->srv_map == NULL || o->srv_same == NULL)
		return -1;
	for (size_t i = 0; i < o->nfe; i++) {
		o->fe_map[i] = STATS_NOWHERE;
		for (size_t j = 0; j < cfg->nfrontends; j++)
			if (strcmp(o->fe_names[i], cfg->frontends[j].name) == 0)
				o->fe_map[i] = j;
	}
	for (size_t i = 0; i < o->nsrv; i++) {
		o->srv_map[i] = STATS_NOWHERE;
		for (size_t b = 0; b < cfg->nbackends; b++) {
			const struct backend_conf *bc = &cfg->backends[b];
			if (strcmp(bc->name, o->srv[i].backend) != 0)
				continue;
			for (size_t j = 0; j < bc->nservers; j++) {
				if (strcmp(bc->servers[j].name,
				    o->srv[i].name) != 0)
					continue;
				o->srv_map[i] = bc->servers[j].flat;
				o->srv_same[i] = strcmp(bc->servers[j].addr_text,
				    o->srv[i].addr) == 0;
			}
		}
	}
	return 0;
}

void
orphan_named(struct master *m)
{
	struct orphan *o = orphan_last(m);

	if (o == NULL)
		return;
	o->named = 1;
	if (orphan_map(o, m->cfg) == -1) {
		log_warn("worker %d (pid %d) of the old binary", o->id,
		    (int)o->pid);
		orphan_unname(o);
		return;
	}
	o->ho.asked = m->cfg->handover && o->chan != -1;
}

void
orphans_remap(struct master *m)
{
	for (size_t i = 0; i < m->norphans; i++) {
		struct orphan *o = m->orphans[i];
		if (o->named && orphan_map(o, m->cfg) == -1) {
			log_warn("worker %d (pid %d) of the old binary", o->id,
			    (int)o->pid);
			orphan_unname(o);
		}
	}
}

void
orphan_reaped(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->norphans; i++) {
		struct orphan *o = m->orphans[i];

		if (o->pid != pid)
			continue;
		log_info("worker %d (pid %d, generation %u, baton %s) "
		    "finished", o->id, (int)pid, o->generation, o->version);
		orphan_free(o);
		m->orphans[i] = m->orphans[--m->norphans];
		if (m->norphans == 0 && m->orphan_ev != NULL)
			evtimer_del(m->orphan_ev);
		return;
	}
}

void
orphans_logfd(struct master *m, int fd)
{
	char buf[64];
	size_t len = chan_encode(buf, sizeof(buf), CHAN_LOGFD, NULL, 0);

	for (size_t i = 0; i < m->norphans; i++)
		if (m->orphans[i]->chan != -1 &&
		    chan_send(m->orphans[i]->chan, buf, len, &fd, 1) == -1)
			log_warn("worker %d (pid %d): cannot pass the log file",
			    m->orphans[i]->id, (int)m->orphans[i]->pid);
}

void
orphans_free(struct master *m)
{
	for (size_t i = 0; i < m->norphans; i++)
		orphan_free(m->orphans[i]);
	free(m->orphans);
	m->orphans = NULL;
	m->norphans = 0;
	if (m->orphan_ev != NULL)
		event_free(m->orphan_ev);
	m->orphan_ev = NULL;
}
