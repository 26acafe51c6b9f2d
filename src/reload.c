/* reload.c -- SIGHUP as one transaction: prepare, then commit or abort */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "discover.h"
#include "endpoint.h"
#include "health.h"
#include "listeners.h"
#include "log.h"
#include "master_priv.h"
#include "notify.h"
#include "orphans.h"
#include "pidfile.h"
#include "srvset.h"
#include "tls.h"

/*
 * Everything a reload can fail at, made before anything changes: the new
 * listeners (addresses that stay are only marked for taking over), the
 * stats endpoint if its address moved, the new tables. Nothing the
 * running configuration uses is touched until reload_commit().
 */
struct reload {
	struct config		*cfg;
	struct generation	*gen;		/* owns cfg once made */
	struct lset		*ls;
	struct endpoint		*endpoint;	/* new one, or NULL: keep */
	struct stats_map	 map;		/* old config onto the new */
	struct stats_table	 retired;
	struct dcounts		 counts;
	uint8_t			*up;		/* server_up, carried over */
	uint8_t			*soft;
	struct health		*health;
	int			 logfd;		/* a new log_file, opened */
	int			 new_pidfile;	/* written at cfg->pidfile */
};

static int
str_changed(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/*
 * A new log_file is opened and a new pidfile written before anything
 * changes, so that a path that cannot be had fails the reload.
 */
static int
reload_prepare_files(struct master *m, struct reload *r)
{
	const struct config *old = m->cfg, *cfg = r->cfg;

	if (str_changed(old->log_file, cfg->log_file) && cfg->log_file !=
	    NULL && (r->logfd = open(cfg->log_file, O_WRONLY | O_APPEND |
	    O_CREAT | O_CLOEXEC, 0640)) == -1) {
		log_error("%s: cannot open log_file %s: %s", cfg->path,
		    cfg->log_file, strerror(errno));
		return -1;
	}
	if (str_changed(m->pidfile, cfg->pidfile) && cfg->pidfile != NULL) {
		if (pidfile_write(cfg->pidfile) == -1) {
			log_error("%s: pidfile %s: %s", cfg->path,
			    cfg->pidfile, strerror(errno));
			return -1;
		}
		r->new_pidfile = 1;
	}
	return 0;
}

/* The new files replace the old: nothing here can fail. */
static void
reload_commit_files(struct master *m, struct reload *r,
    const char *old_log)
{
	const struct config *cfg = r->cfg;

	if (str_changed(m->pidfile, cfg->pidfile)) {
		if (m->pidfile != NULL)
			pidfile_remove(m->pidfile);
		free(m->pidfile);
		m->pidfile = NULL;
		if (cfg->pidfile != NULL && (m->pidfile = strdup(cfg->pidfile))
		    == NULL)
			log_warn("pidfile");	/* left behind at exit */
	}
	if (!str_changed(old_log, cfg->log_file))
		return;
	log_notice("log_file: now %s", cfg->log_file ? cfg->log_file :
	    "stderr");
	if (log_switch(cfg->log_file, r->logfd) == -1)
		log_warn("log_file");
	r->logfd = -1;
	wtable_logfd(m, log_fd());
	orphans_logfd(m, log_fd());
	log_notice("log_file: was %s", old_log ? old_log : "stderr");
}

/* Carry server states over to cfg's shape, by name; new servers are up. */
static uint8_t *
reload_remap_up(const struct master *m, const struct stats_map *map,
    const struct config *cfg)
{
	uint8_t *up = malloc(cfg->nservers + 1);

	if (up == NULL)
		return NULL;
	memset(up, 1, cfg->nservers + 1);
	for (size_t i = 0; i < map->nservers; i++)
		if (map->servers[i] != STATS_NOWHERE)
			up[map->servers[i]] = m->server_up[i];
	return up;
}

static int
reload_prepare(struct master *m, struct reload *r)
{
	const struct config *old = m->cfg;

	if (reload_prepare_files(m, r) == -1)
		return -1;
	if (tls_load(r->cfg) == -1)
		return -1;
	if ((r->ls = lset_prepare(m->ls, r->cfg, m->base, m->ring,
	    handoff_accept, handoff_flush, m)) == NULL)
		return -1;
	if (r->cfg->io_uring != old->io_uring)
		log_notice("io_uring = %s: takes effect at the next start or "
		    "binary upgrade", config_io_uring_name(r->cfg->io_uring));
	if (r->cfg->has_stats && (!old->has_stats ||
	    !addr_equal(&old->stats_addr, &r->cfg->stats_addr))) {
		r->endpoint = endpoint_new(m->base, r->cfg, -1, master_stats_view,
		    master_stats_done, m);
		if (r->endpoint == NULL)
			return -1;
	}
	if ((r->gen = gen_new(m->generation + 1, r->cfg)) == NULL)
		return -1;
	if (stats_map_init(&r->map, old, r->cfg) == -1 ||
	    stats_table_init(&r->retired, r->cfg) == -1 ||
	    dispatch_counts_remap(&m->d.counts, &r->map, r->cfg->nfrontends,
	    &r->counts) == -1 ||
	    (r->up = reload_remap_up(m, &r->map, r->cfg)) == NULL ||
	    (r->soft = calloc(r->cfg->nservers + 1, 1)) == NULL ||
	    (r->health = health_new(m->base, r->cfg, r->up,
	    master_server_changed, m)) == NULL) {
		log_warn("reload");
		return -1;
	}
	stats_table_add_mapped(&r->retired, &m->retired, &r->map, 1);
	return 0;
}

/* Undo reload_prepare(): the running configuration never changed. */
static void
reload_abort(struct reload *r)
{
	if (r->logfd != -1)
		close(r->logfd);
	if (r->new_pidfile)
		pidfile_remove(r->cfg->pidfile);
	lset_free(r->ls);
	if (r->endpoint != NULL)
		endpoint_free(r->endpoint);
	if (r->gen != NULL) {
		gen_unref(r->gen);
	} else {
		tls_unload(r->cfg);
		config_free(r->cfg);
	}
	stats_map_free(&r->map);
	stats_table_free(&r->retired);
	dispatch_counts_free(&r->counts);
	free(r->up);
	free(r->soft);
	if (r->health != NULL)
		health_free(r->health);
}

/* Every generation's names onto the new current configuration. */
static void
reload_remap_generations(struct master *m)
{
	for (size_t i = 0; i < m->nworkers; i++) {
		struct generation *g = m->workers[i]->gen;
		stats_map_free(&g->map);
		if (stats_map_init(&g->map, g->cfg, m->cfg) == -1)
			log_warn("stats map");	/* its counters go unshown */
	}
}

/* Switch to the prepared configuration; nothing here can fail halfway. */
static void
reload_commit(struct master *m, struct reload *r)
{
	struct generation *old = m->gen;

	reload_commit_files(m, r, old->cfg->log_file);
	if (lset_commit(r->ls, m->ls) == -1)
		log_warn("reload: a listener cannot accept");
	m->ls = r->ls;
	if (r->endpoint != NULL || !r->cfg->has_stats) {
		if (m->endpoint != NULL)
			endpoint_free(m->endpoint);
		m->endpoint = r->endpoint;
		if (m->endpoint != NULL)
			endpoint_set_control(m->endpoint, srvctl_api, m);
	} else if (endpoint_set_token(m->endpoint, r->cfg->stats_token) ==
	    -1) {
		log_warn("stats token");
	}
	dispatch_reload(&m->d, r->cfg, &r->map, &r->counts);
	stats_map_free(&r->map);
	stats_table_free(&m->retired);
	m->retired = r->retired;
	free(m->server_up);
	m->server_up = r->up;
	free(m->server_soft);
	m->server_soft = r->soft;
	if (m->health != NULL)
		health_free(m->health);
	m->health = r->health;

	m->gen = r->gen;
	m->cfg = r->cfg;
	m->generation = r->gen->id;
	/* DNS follows the new file's names; what it found carried over. */
	discover_free(m->disc);
	m->disc = discover_new(m);
	reload_remap_generations(m);
	orphans_remap(m);
	wtable_drain_old(m);
	gen_unref(old);
	log_set_level(m->cfg->log_level);
	handoff_nofile(m);
	if (wtable_start(m) == -1)
		log_warn("reload: cannot start every worker");
	m->reloads++;
}

void
reload_run(struct master *m)
{
	struct errlist errs = { NULL, 0 };
	struct reload r;

	memset(&r, 0, sizeof(r));
	r.logfd = -1;
	log_notice("SIGHUP: reloading %s", m->cfg->path);
	notify_reloading();
	if ((r.cfg = config_load(m->cfg->path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_error_always("%s", errs.msgs[i]);
		errlist_free(&errs);
		goto failed;
	}
	/* What changed at runtime stays, unless the file changes it. */
	if (srvset_carry(m->cfg, r.cfg) == -1) {
		log_warn("reload");
		config_free(r.cfg);
		goto failed;
	}
	/* Hand out what was accepted under the old configuration first. */
	handoff_flush(m);
	if (reload_prepare(m, &r) == -1) {
		reload_abort(&r);
		goto failed;
	}
	reload_commit(m, &r);
	log_notice("reloaded: generation %u, %u workers", m->generation,
	    m->cfg->workers);
	handover_begin(m);
	notify_send("READY=1");
	master_status(m);
	return;
failed:
	log_error("reload failed: keeping generation %u", m->generation);
	m->reload_failures++;
	notify_send("READY=1");
	master_status(m);
}
