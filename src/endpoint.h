/* endpoint.h -- the stats HTTP endpoint: /stats, /metrics, the dashboard */
#ifndef BATON_ENDPOINT_H
#define BATON_ENDPOINT_H

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
/* The listening socket (for a binary upgrade to pass on). */
int		 endpoint_fd(const struct endpoint *e);
/* Take a new token (NULL: none) from a reloaded configuration; -1 on OOM. */
int		 endpoint_set_token(struct endpoint *e, const char *token);
void		 endpoint_free(struct endpoint *e);

#endif
