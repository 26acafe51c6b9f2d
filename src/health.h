/* health.h -- server health: active checks by the master, passive failures */
#ifndef BATON_HEALTH_H
#define BATON_HEALTH_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct health;

/* The rise/fall state machine of one server (pure). */
struct health_state {
	unsigned	up;
	unsigned	ok_run;		/* consecutive successes */
	unsigned	fail_run;	/* consecutive failures */
};

/* Count one check result. Returns 1 when the server's state flips. */
int	health_count(struct health_state *h, int ok, unsigned rise,
	    unsigned fall);

/* Called once per change of a server (flat index): up, and soft_down. */
typedef void	(*health_change_fn)(void *arg, size_t server, int up,
		    int soft_down);

/*
 * Start checking every server of cfg whose backend has check = tcp, each
 * once per check_interval, spread over the interval. up[flat] gives the
 * state servers start in (from the previous configuration; new servers
 * are up until proven down). NULL when out of memory.
 */
struct health	*health_new(struct event_base *base, const struct config *cfg,
		    const uint8_t *up, health_change_fn fn, void *arg);
void		 health_free(struct health *h);
/*
 * Check server flat of the configuration health_new() was given, added
 * there at runtime (or brought back), starting from state up. -1 when
 * out of memory or flat is no server of it.
 */
int		 health_add(struct health *h, size_t flat, int up);
/* Stop checking server flat (removed at runtime). */
void		 health_stop(struct health *h, size_t flat);
/*
 * Workers saw n failed connects to a server: they count toward fall with
 * active checks, else max_fails of them within fail_timeout mark it
 * soft-down for fail_timeout (nginx's semantics).
 */
void		 health_failures(struct health *h, size_t server, unsigned n);

#endif
