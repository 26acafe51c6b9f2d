/*
 * upgrade.c -- SIGUSR2: re-execute the baton binary in place.
 *
 * The old image checks the new binary first (BINARY -t -c FILE must exit
 * 0 within a few seconds), stops accepting (clients wait in the listen
 * backlog), waits until every accepted socket is acknowledged by a worker,
 * writes what the new image must know into a memfd, lets the listening
 * sockets and the memfd survive exec, and calls execv(). Any failure
 * before execv() returns leaves the old master running as it was.
 *
 * The new image (same pid) finds BATON_UPGRADE=FD in its environment: it
 * takes the listening sockets over by address (no socket ever closes, so
 * no client is refused), carries over the generation number, counters
 * and server health by name, and starts a new generation of workers. The
 * old workers see their channel close (the master's ends are
 * close-on-exec) and drain as on a reload; the new image reaps them and
 * shows them in /stats until they exit.
 */
#include "ac_config.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "endpoint.h"
#include "listeners.h"
#include "log.h"
#include "master_priv.h"
#include "notify.h"
#include "orphans.h"
#include "upgrade.h"

#define UPGRADE_ENV		"BATON_UPGRADE"
#define CHECK_TIMEOUT_MS	5000	/* BINARY -t must answer by then */
#define QUIESCE_MS		2000	/* every socket acknowledged by then */
#define POLL_MS			10
#define STATE_MAX		(1 << 20)

static char	  exe[4096];		/* the binary started, by path */
static char	**saved_argv;

void
upgrade_set_argv(char **argv)
{
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	saved_argv = argv;
	exe[n > 0 ? n : 0] = '\0';
}

/*
 * The checker: a child that runs BINARY -t -c FILE as its own child, waits
 * for it (killing it after CHECK_TIMEOUT_MS) and writes its wait status
 * to the pipe. The master's loop never blocks on it, and the checker
 * itself is reaped like any unknown child.
 */
static void
upgrade_checker(const char *path, int out)
{
	int null = open("/dev/null", O_RDWR), status = -1;
	pid_t pid;

	if (null != -1) {
		dup2(null, 0);
		dup2(null, 1);
	}
	dup2(log_fd(), 2);
	/* Nothing of the master's stays open here: its sockets least. */
	if (dup2(out, 3) == 3)
		out = 3;
	(void)close_range(4, ~0U, 0);
	if ((pid = fork()) == 0) {
		execl(exe, exe, "-t", "-c", path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0) {
		struct timespec pause = { 0, POLL_MS * 1000000L };
		int waited = 0;

		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (waited >= CHECK_TIMEOUT_MS) {
				kill(pid, SIGKILL);
				(void)waitpid(pid, &status, 0);
				status = -2;
				break;
			}
			nanosleep(&pause, NULL);
			waited += POLL_MS;
		}
	}
	(void)write(out, &status, sizeof(status));
	_exit(0);
}

static void upgrade_quiesce(struct master *m);

/* The checker's verdict. */
static void
upgrade_checked_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	int status = -1;

	if (read(fd, &status, sizeof(status)) != (ssize_t)sizeof(status))
		status = -1;
	event_free(m->upgrade_check);
	m->upgrade_check = NULL;
	close(fd);
	if (status == -2)
		log_error("upgrade: %s -t did not finish in %d ms", exe,
		    CHECK_TIMEOUT_MS);
	else if (status == -1)
		log_error("upgrade: cannot check %s", exe);
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_error("upgrade: %s -t -c %s exited with %d%s", exe,
		    m->cfg->path, WEXITSTATUS(status), WEXITSTATUS(status) ==
		    127 ? " (cannot be executed)" : "");
	else if (!WIFEXITED(status))
		log_error("upgrade: %s -t -c %s died of signal %d", exe,
		    m->cfg->path, WTERMSIG(status));
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    m->stopping) {
		m->upgrade_failures++;
		log_error("upgrade failed: %s goes on", PACKAGE_VERSION);
		notify_send("READY=1");
		return;
	}
	upgrade_quiesce(m);
}

/* Start the checker; -1 (logged) if it cannot be. */
static int
upgrade_check(struct master *m)
{
	int p[2];
	pid_t pid;

	if (exe[0] == '\0' || saved_argv == NULL) {
		log_error("upgrade: the binary's path is unknown");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("upgrade: pipe");
		return -1;
	}
	if ((m->upgrade_check = event_new(m->base, p[0], EV_READ,
	    upgrade_checked_cb, m)) == NULL ||
	    event_add(m->upgrade_check, NULL) == -1 ||
	    (pid = fork()) == -1) {
		log_warn("upgrade: checker");
		if (m->upgrade_check != NULL)
			event_free(m->upgrade_check);
		m->upgrade_check = NULL;
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		upgrade_checker(m->cfg->path, p[1]);
	}
	close(p[1]);
	return 0;
}

/*
 * Every accepted socket and moving session is in a worker's hands, and
 * no worker may send one more (its hand-over credit is spent): what
 * came after the exec would find no credit and be closed.
 */
static int
upgrade_quiet(const struct master *m)
{
	if (m->d.pend.n > 0 || m->d.held.n > 0)
		return 0;
	for (size_t i = 0; i < m->d.nt; i++)
		if (m->d.t[i]->unacked.n > 0)
			return 0;
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->ho.granted > 0)
			return 0;
	for (size_t i = 0; i < m->norphans; i++)
		if (m->orphans[i]->ho.granted > 0)
			return 0;
	return 1;
}

static int
set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl == -1)
		return -1;
	return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

/*
 * The names of a worker's configuration, frontends and then servers in
 * its own order, so the new image can ask it for its live sessions.
 */
static void
upgrade_write_names(const struct config *cfg, FILE *fp)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		fprintf(fp, "wfe %zu %s\n", i, cfg->frontends[i].name);
	for (size_t flat = 0; flat < cfg->nservers; flat++) {
		const struct backend_conf *bc;
		size_t b, j;
		if (config_server_at(cfg, flat, &b, &j) == -1)
			break;		/* the rest stays unnamed */
		bc = &cfg->backends[b];
		fprintf(fp, "wsrv %zu %s %s %s\n", flat, bc->name,
		    bc->servers[j].name, bc->servers[j].addr_text);
	}
	fprintf(fp, "wend\n");
}

static void
upgrade_write_orphan_names(const struct orphan *o, FILE *fp)
{
	if (!o->named)
		return;
	for (size_t i = 0; i < o->nfe; i++)
		fprintf(fp, "wfe %zu %s\n", i, o->fe_names[i]);
	for (size_t i = 0; i < o->nsrv; i++)
		fprintf(fp, "wsrv %zu %s %s %s\n", i, o->srv[i].backend,
		    o->srv[i].name, o->srv[i].addr);
	fprintf(fp, "wend\n");
}

/* What the new image needs to know, by name; see upgrade_adopt(). */
static int
upgrade_write_state(struct master *m, FILE *fp)
{
	const struct config *cfg = m->cfg;
	struct stats_view v;
	const struct dcounts *dc = &m->d.counts;

	if (master_stats_view(m, &v) == -1)
		return -1;
	fprintf(fp, "baton-upgrade 1\nversion %s\ngeneration %u\n"
	    "start %lld %ld\nreloads %llu %llu\nredispatched %llu\n"
	    "accepted %llu\n", PACKAGE_VERSION, m->generation,
	    (long long)m->start.tv_sec, (long)m->start.tv_usec,
	    (unsigned long long)m->reloads,
	    (unsigned long long)m->reload_failures,
	    (unsigned long long)m->d.redispatched,
	    (unsigned long long)m->d.accepted);
	fprintf(fp, "all %llu %llu %llu %llu\n",
	    (unsigned long long)v.sum.all.errors,
	    (unsigned long long)v.sum.all.failures,
	    (unsigned long long)v.sum.all.bytes_in,
	    (unsigned long long)v.sum.all.bytes_out);
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct stat_counters *c = &v.sum.frontends[i];
		uint64_t refused = i < dc->n ? dc->refused[i] : 0;

		fprintf(fp, "frontend %s %llu %llu %llu %llu %llu\n",
		    cfg->frontends[i].name,
		    (unsigned long long)(i < dc->n ? dc->accepted[i] : 0),
		    (unsigned long long)refused,
		    (unsigned long long)(c->errors - refused),
		    (unsigned long long)c->bytes_in,
		    (unsigned long long)c->bytes_out);
		fprintf(fp, "handed_over %s %llu\n", cfg->frontends[i].name,
		    (unsigned long long)c->handed_over);
	}
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];
		for (size_t j = 0; j < b->nservers; j++) {
			size_t k = b->servers[j].flat;
			const struct stat_counters *c = &v.sum.servers[k];

			fprintf(fp, "server %s %s %d %d %llu %llu %llu %llu\n",
			    b->name, b->servers[j].name, m->server_up[k],
			    m->server_soft[k], (unsigned long long)c->total,
			    (unsigned long long)c->failures,
			    (unsigned long long)c->bytes_in,
			    (unsigned long long)c->bytes_out);
		}
	}
	for (size_t i = 0; i < m->nworkers; i++) {
		const struct wproc *wp = m->workers[i];

		if (wp->state == WP_EMPTY)
			continue;
		fprintf(fp, "worker %d %u %d %s %d\n", (int)wp->pid,
		    wp->gen->id, wp->id, PACKAGE_VERSION, wp->chan);
		upgrade_write_names(wp->gen->cfg, fp);
	}
	for (size_t i = 0; i < m->norphans; i++) {
		const struct orphan *o = m->orphans[i];

		fprintf(fp, "worker %d %u %d %s %d\n", (int)o->pid,
		    o->generation, o->id, o->version, o->chan);
		upgrade_write_orphan_names(o, fp);
	}
	for (size_t i = 0; m->ls != NULL && i < m->ls->n; i++)
		fprintf(fp, "listen %d\n", m->ls->v[i]->fd);
	if (m->endpoint != NULL)
		fprintf(fp, "stats %d\n", endpoint_fd(m->endpoint));
	master_stats_done(m, &v);
	return fflush(fp) == EOF || ferror(fp) ? -1 : 0;
}

/* Let fds survive exec (on) or not (off): listeners, workers' channels. */
static void
upgrade_inherit(struct master *m, int on)
{
	for (size_t i = 0; m->ls != NULL && i < m->ls->n; i++)
		(void)set_cloexec(m->ls->v[i]->fd, !on);
	if (m->endpoint != NULL)
		(void)set_cloexec(endpoint_fd(m->endpoint), !on);
	for (size_t i = 0; i < m->nworkers; i++)
		if (m->workers[i]->state != WP_EMPTY)
			(void)set_cloexec(m->workers[i]->chan, !on);
	for (size_t i = 0; i < m->norphans; i++)
		if (m->orphans[i]->chan != -1)
			(void)set_cloexec(m->orphans[i]->chan, !on);
}

static void
upgrade_resume(struct master *m, const char *why)
{
	log_error("upgrade failed (%s): %s goes on", why, PACKAGE_VERSION);
	m->upgrading = 0;
	handover_tick(m);	/* what waited for the upgrade */
	m->upgrade_failures++;
	handoff_flush(m);
	notify_send("READY=1");
}

/* Quiet: hand over to the new image. Returns only if that failed. */
static void
upgrade_exec(struct master *m)
{
	char env[32];
	FILE *fp = NULL;
	int fd;

	if ((fd = memfd_create("baton-upgrade", 0)) == -1 ||
	    (fp = fdopen(dup(fd), "w")) == NULL ||
	    upgrade_write_state(m, fp) == -1) {
		log_warn("upgrade: state");
		if (fp != NULL)
			fclose(fp);
		if (fd != -1)
			close(fd);
		upgrade_resume(m, "cannot write the state");
		return;
	}
	fclose(fp);
	(void)lseek(fd, 0, SEEK_SET);
	snprintf(env, sizeof(env), "%d", fd);
	upgrade_inherit(m, 1);
	if (setenv(UPGRADE_ENV, env, 1) == 0) {
		log_notice("upgrade: executing %s", exe);
		execv(exe, saved_argv);
		log_warn("upgrade: exec %s", exe);
		unsetenv(UPGRADE_ENV);
	}
	upgrade_inherit(m, 0);
	close(fd);
	upgrade_resume(m, "exec failed");
}

static void
upgrade_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval tick = { 0, POLL_MS * 1000 };
	struct master *m = arg;
	struct timeval now, dt;

	if (m->stopping) {
		m->upgrading = 0;
		return;
	}
	handoff_flush(m);
	if (upgrade_quiet(m)) {
		upgrade_exec(m);
		return;
	}
	gettimeofday(&now, NULL);
	timersub(&now, &m->upgrade_began, &dt);
	if (dt.tv_sec * 1000 + dt.tv_usec / 1000 >= QUIESCE_MS)
		upgrade_resume(m, "sockets still unacknowledged");
	else
		evtimer_add(m->upgrade_ev, &tick);
}

void
upgrade_start(struct master *m)
{
	if (m->stopping || m->upgrading || m->upgrade_check != NULL) {
		log_notice("SIGUSR2: %s, not upgrading", m->stopping ?
		    "stopping" : "already upgrading");
		return;
	}
	log_notice("SIGUSR2: upgrading to %s", exe);
	notify_reloading();
	if (upgrade_check(m) == -1) {
		m->upgrade_failures++;
		log_error("upgrade failed: %s goes on", PACKAGE_VERSION);
		notify_send("READY=1");
	}
}

/* The new binary checked out: accept nothing more, hand out the rest. */
static void
upgrade_quiesce(struct master *m)
{
	static const struct timeval now = { 0, 0 };

	if (m->upgrade_ev == NULL &&
	    (m->upgrade_ev = evtimer_new(m->base, upgrade_poll_cb, m)) ==
	    NULL) {
		upgrade_resume(m, "out of memory");
		return;
	}
	m->upgrading = 1;
	gettimeofday(&m->upgrade_began, NULL);
	if (m->ls != NULL)
		lset_pause(m->ls, QUIESCE_MS);
	evtimer_add(m->upgrade_ev, &now);
}

/* The new image's side */

static int
upgrade_frontend(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		if (strcmp(cfg->frontends[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
upgrade_server(const struct config *cfg, const char *be, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];
		if (strcmp(b->name, be) != 0)
			continue;
		for (size_t j = 0; j < b->nservers; j++)
			if (strcmp(b->servers[j].name, name) == 0)
				return (int)b->servers[j].flat;
	}
	return -1;
}

/* One line of the state; unknown or stale names are skipped. */
static void
upgrade_line(struct master *m, const char *line, int *fds, size_t *nfds,
    char *version, size_t vlen)
{
	unsigned long long a, b, c, d, e;
	char n1[128], n2[128], n3[128], ver[32];
	size_t k;
	long long sec;
	long usec;
	int i, x, y, pid, id;
	unsigned gen;

	if (sscanf(line, "version %31s", ver) == 1)
		snprintf(version, vlen, "%s", ver);
	else if (sscanf(line, "generation %u", &gen) == 1)
		m->generation = gen;
	else if (sscanf(line, "start %lld %ld", &sec, &usec) == 2) {
		m->start.tv_sec = (time_t)sec;
		m->start.tv_usec = (suseconds_t)usec;
	} else if (sscanf(line, "reloads %llu %llu", &a, &b) == 2) {
		m->reloads = a;
		m->reload_failures = b;
	} else if (sscanf(line, "redispatched %llu", &a) == 1)
		m->d.redispatched = a;
	else if (sscanf(line, "accepted %llu", &a) == 1)
		m->d.accepted = a;
	else if (sscanf(line, "all %llu %llu %llu %llu", &a, &b, &c, &d) ==
	    4) {
		m->retired.all.errors = a;
		m->retired.all.failures = b;
		m->retired.all.bytes_in = c;
		m->retired.all.bytes_out = d;
	} else if (sscanf(line, "frontend %127s %llu %llu %llu %llu %llu", n1,
	    &a, &b, &c, &d, &e) == 6) {
		if ((i = upgrade_frontend(m->cfg, n1)) == -1 ||
		    (size_t)i >= m->d.counts.n)
			return;
		m->d.counts.accepted[i] = a;
		m->d.counts.refused[i] = b;
		m->retired.frontends[i].errors = c;
		m->retired.frontends[i].bytes_in = d;
		m->retired.frontends[i].bytes_out = e;
	} else if (sscanf(line, "server %127s %127s %d %d %llu %llu %llu %llu",
	    n1, n2, &x, &y, &a, &b, &c, &d) == 8) {
		if ((i = upgrade_server(m->cfg, n1, n2)) == -1)
			return;
		m->server_up[i] = x != 0;
		m->server_soft[i] = y != 0;
		m->retired.servers[i].total = a;
		m->retired.servers[i].failures = b;
		m->retired.servers[i].bytes_in = c;
		m->retired.servers[i].bytes_out = d;
	} else if (sscanf(line, "worker %d %u %d %31s %d", &pid, &gen, &id,
	    ver, &x) == 5) {
		orphan_adopt(m, pid, gen, id, ver, x);
	} else if (sscanf(line, "handed_over %127s %llu", n1, &a) == 2) {
		if ((i = upgrade_frontend(m->cfg, n1)) != -1)
			m->retired.frontends[i].handed_over = a;
	} else if (sscanf(line, "wfe %zu %127s", &k, n1) == 2) {
		orphan_name_frontend(m, k, n1);
	} else if (sscanf(line, "wsrv %zu %127s %127s %127s", &k, n1, n2,
	    n3) == 4) {
		orphan_name_server(m, k, n1, n2, n3);
	} else if (strcmp(line, "wend\n") == 0) {
		orphan_named(m);
	} else if (sscanf(line, "listen %d", &x) == 1) {
		if (*nfds < UPGRADE_MAX_LISTEN)
			fds[(*nfds)++] = x;
		else
			close(x);
	} else if (sscanf(line, "stats %d", &x) == 1) {
		m->inherited_stats = x;
	}
}

int
upgrade_adopt(struct master *m)
{
	const char *env = getenv(UPGRADE_ENV);
	int fds[UPGRADE_MAX_LISTEN], fd;
	char line[512], version[32] = "?";
	size_t nfds = 0;
	FILE *fp;

	m->inherited_stats = -1;
	if (env == NULL)
		return 0;
	fd = atoi(env);
	unsetenv(UPGRADE_ENV);		/* not for the workers */
	if (fd < 3 || (fp = fdopen(fd, "r")) == NULL) {
		log_error("upgrade: no state at descriptor %s", env);
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL ||
	    strcmp(line, "baton-upgrade 1\n") != 0) {
		log_error("upgrade: the state is not in a format %s reads",
		    PACKAGE_VERSION);
		fclose(fp);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL)
		upgrade_line(m, line, fds, &nfds, version, sizeof(version));
	fclose(fp);
	for (size_t i = 0; i < nfds; i++)
		(void)set_cloexec(fds[i], 1);
	if (m->inherited_stats != -1)
		(void)set_cloexec(m->inherited_stats, 1);
	if ((m->inherited = lset_inherit(m->base, fds, nfds)) == NULL) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	/* Its workers are the next generation. */
	m->generation++;
	m->gen->id = m->generation;
	log_notice("upgraded from %s: generation %u, %zu listening sockets "
	    "kept", version, m->generation, nfds);
	return 0;
}
