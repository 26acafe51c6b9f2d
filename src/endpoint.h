/* endpoint.h -- the stats HTTP endpoint: /stats, /metrics, the dashboard */
#ifndef BATON_ENDPOINT_H
#define BATON_ENDPOINT_H

#include <stddef.h>

struct api_req;
struct config;
struct endpoint;
struct event_base;
struct stats_view;

/* Fill a view for one request (0, or -1 when out of memory)... */
typedef int	(*endpoint_view_fn)(void *arg, struct stats_view *v);
/* ...and release it once rendered. */
typedef void	(*endpoint_done_fn)(void *arg, struct stats_view *v);

/*
 * Serve cfg's [stats] listen address on base, on fd when it already
 * listens there (inherited across exec; taken over), else bound here.
 * Returns NULL after logging why (the address cannot be bound, out of
 * memory).
 */
struct endpoint	*endpoint_new(struct event_base *base, const struct config *cfg,
		    int fd, endpoint_view_fn view, endpoint_done_fn done,
		    void *arg);
/*
 * Apply one runtime change (the API, api.h): returns the HTTP status to
 * answer with (200, 201, 404, 409...) and fills msg with what to say.
 */
typedef int	(*endpoint_control_fn)(void *arg, const struct api_req *r,
		    char *msg, size_t msglen);
/* Take API requests to fn; without it they get 503. */
void		 endpoint_set_control(struct endpoint *e,
		    endpoint_control_fn fn, void *arg);

/* The listening socket (for a binary upgrade to pass on). */
int		 endpoint_fd(const struct endpoint *e);
/* Take a new token (NULL: none) from a reloaded configuration; -1 on OOM. */
int		 endpoint_set_token(struct endpoint *e, const char *token);
void		 endpoint_free(struct endpoint *e);

/* What a request is answered with, in the order it is decided. */
enum endpoint_route {
	ROUTE_UNAUTHORIZED,	/* 401: a token is set, not given */
	ROUTE_API,		/* /api/...: the runtime API (api.h) */
	ROUTE_BAD_METHOD,	/* 405: neither GET nor HEAD */
	ROUTE_STATS,		/* /stats */
	ROUTE_METRICS,		/* /metrics */
	ROUTE_DASHBOARD,	/* / */
	ROUTE_NOT_FOUND,	/* 404: any other path */
};

/*
 * Route a request: token is the configured one (NULL: none),
 * authorization the request's header (NULL: absent), get_or_head nonzero
 * for GET and HEAD, path the decoded URI's path (NULL counts as "").
 * Pure, so the fuzzer drives it with any bytes.
 */
enum endpoint_route endpoint_route(const char *token,
		    const char *authorization, int get_or_head,
		    const char *path);

#endif
