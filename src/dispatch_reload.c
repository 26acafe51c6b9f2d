/* dispatch_reload.c -- the dispatch room across a reload: renumbering */
#include "ac_config.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "dispatch_priv.h"
#include "log.h"
#include "stats.h"

/* Reload */

void
dispatch_counts_free(struct dcounts *c)
{
	free(c->accepted);
	free(c->refused);
	memset(c, 0, sizeof(*c));
}

int
dispatch_counts_remap(const struct dcounts *old, const struct stats_map *map,
    size_t nfe, struct dcounts *out)
{
	out->n = nfe;
	out->accepted = calloc(nfe + 1, sizeof(uint64_t));
	out->refused = calloc(nfe + 1, sizeof(uint64_t));
	if (out->accepted == NULL || out->refused == NULL) {
		dispatch_counts_free(out);
		return -1;
	}
	for (size_t i = 0; i < old->n && i < map->nfrontends; i++) {
		size_t to = map->frontends[i];
		if (to == STATS_NOWHERE || to >= nfe)
			continue;
		out->accepted[to] += old->accepted[i];
		out->refused[to] += old->refused[i];
	}
	return 0;
}

/* A moving session's server in the new numbering, or none. */
static void
dmove_renumber(struct dmove *mv, const struct stats_map *map)
{
	size_t to = mv->server < map->nservers ? map->servers[mv->server] :
	    STATS_NOWHERE;

	mv->server = to == STATS_NOWHERE ? CHAN_NO_SERVER : (uint32_t)to;
}

/* Renumber q's sockets by map; close those whose frontend is gone. */
static size_t
dqueue_renumber(struct dispatch *d, struct dqueue *q,
    const struct stats_map *map)
{
	size_t k = 0, dropped = 0;

	for (size_t i = 0; i < q->n; i++) {
		struct dsock s = q->v[i];
		size_t to = s.frontend < map->nfrontends ?
		    map->frontends[s.frontend] : STATS_NOWHERE;
		if (to == STATS_NOWHERE) {
			dsock_close(d, &s);
			dropped++;
			continue;
		}
		s.frontend = (uint32_t)to;
		if (s.mv != NULL)
			dmove_renumber(s.mv, map);
		q->v[k++] = s;
	}
	q->n = k;
	return dropped;
}

void
dispatch_reload(struct dispatch *d, const struct config *cfg,
    const struct stats_map *map, struct dcounts *counts)
{
	size_t dropped;

	dropped = dqueue_renumber(d, &d->pend, map) +
	    dqueue_renumber(d, &d->held, map);
	/*
	 * Sockets in flight keep the frontend they were sent with (the
	 * record); only their number for a re-dispatch changes. One whose
	 * frontend is gone is closed if it comes back.
	 */
	for (size_t i = 0; i < d->nt; i++) {
		struct dqueue *q = &d->t[i]->unacked;
		for (size_t j = 0; j < q->n; j++) {
			uint32_t fe = q->v[j].frontend;
			size_t to = fe < map->nfrontends ?
			    map->frontends[fe] : STATS_NOWHERE;
			q->v[j].frontend = to == STATS_NOWHERE ? UINT32_MAX :
			    (uint32_t)to;
			if (q->v[j].mv != NULL)
				dmove_renumber(q->v[j].mv, map);
		}
	}
	if (dropped > 0)
		log_notice("reload: %zu waiting connections of removed "
		    "frontends closed", dropped);
	dispatch_counts_free(&d->counts);
	d->counts = *counts;
	memset(counts, 0, sizeof(*counts));
	d->cfg = cfg;
}
