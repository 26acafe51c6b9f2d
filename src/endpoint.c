/* endpoint.c -- the stats HTTP endpoint: /stats, /metrics, the dashboard */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api.h"
#include "config.h"
#include "dashboard.h"
#include "endpoint.h"
#include "httpgate.h"
#include "log.h"
#include "net.h"
#include "stats.h"

/* A request must arrive whole this soon after the previous one. */
#define REQUEST_DEADLINE_MS	5000

struct endpoint {
	struct evhttp		*http;
	struct httpgate		*gate;
	int			 fd;
	struct addr		 addr;
	char			*token;
	endpoint_view_fn	 view;
	endpoint_done_fn	 done;
	void			*arg;
	endpoint_control_fn	 control;
	void			*control_arg;
};

/* Compare without leaking, through timing, how much of the token matched. */
static int
endpoint_token_ok(const char *want, const char *got)
{
	size_t wl = strlen(want), gl = strlen(got);
	unsigned char diff = wl != gl;

	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^
		    (unsigned char)(i < gl ? got[i] : 0);
	return diff == 0;
}

static int
endpoint_authorized(const char *token, const char *authorization)
{
	if (token == NULL)
		return 1;
	if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
		return 0;
	return endpoint_token_ok(token, authorization + 7);
}

enum endpoint_route
endpoint_route(const char *token, const char *authorization, int get_or_head,
    const char *path)
{
	if (!endpoint_authorized(token, authorization))
		return ROUTE_UNAUTHORIZED;
	if (path == NULL)
		path = "";
	if (strncmp(path, "/api/", 5) == 0)
		return ROUTE_API;
	if (!get_or_head)
		return ROUTE_BAD_METHOD;
	if (strcmp(path, "/stats") == 0)
		return ROUTE_STATS;
	if (strcmp(path, "/metrics") == 0)
		return ROUTE_METRICS;
	if (strcmp(path, "/") == 0)
		return ROUTE_DASHBOARD;
	return ROUTE_NOT_FOUND;
}

static void
endpoint_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *body, size_t len)
{
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(hdrs, "Content-Type", type);
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	if (out != NULL && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	if (out != NULL)
		evbuffer_free(out);
}

static void
endpoint_error(struct evhttp_request *req, int code, const char *reason)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);

	endpoint_reply(req, code, reason, "text/plain; charset=utf-8", body,
	    (size_t)n);
}

static void
endpoint_render(struct endpoint *e, struct evhttp_request *req, int metrics)
{
	struct stats_view v;
	struct sbuf b = { NULL, 0, 0, 0 };

	if (e->view(e->arg, &v) == -1) {
		endpoint_error(req, 500, "Internal Server Error");
		return;
	}
	if (metrics)
		stats_render_prometheus(&v, &b);
	else
		stats_render_json(&v, &b);
	e->done(e->arg, &v);
	if (b.oom)
		endpoint_error(req, 500, "Internal Server Error");
	else
		endpoint_reply(req, 200, "OK", metrics ?
		    "text/plain; version=0.0.4; charset=utf-8" :
		    "application/json", b.s, b.len);
	sbuf_free(&b);
}

/* A JSON answer {"error": msg} or {"ok": msg}. */
static void
endpoint_json(struct evhttp_request *req, int code, const char *msg)
{
	static const char oom[] = "{\"error\":\"cannot say\"}";
	const char *reason = code == 200 ? "OK" : code == 201 ? "Created" :
	    code == 400 ? "Bad Request" : code == 401 ? "Unauthorized" :
	    code == 403 ? "Forbidden" : code == 404 ? "Not Found" :
	    code == 405 ? "Method Not Allowed" : code == 409 ? "Conflict" :
	    code == 503 ? "Service Unavailable" : "Internal Server Error";
	char *body = api_message(code < 300, msg);

	if (body == NULL)
		endpoint_reply(req, code, reason, "application/json", oom,
		    sizeof(oom) - 1);
	else
		endpoint_reply(req, code, reason, "application/json", body,
		    strlen(body));
	free(body);
}

/* Whether the endpoint listens on a loopback address only. */
static int
endpoint_loopback(const struct addr *a)
{
	const struct sockaddr_in *sin = (const void *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const void *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	return 0;
}

/* Who asked, for the log: the client's address and port. */
static void
endpoint_peer(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *host = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &host, &port);
	snprintf(buf, len, "%s:%u", host != NULL ? host : "?",
	    (unsigned)port);
}

/*
 * The runtime API: changes need the token when one is set (checked by
 * the router), or else an endpoint on loopback, where only this host's
 * users reach it.
 */
static void
endpoint_api(struct endpoint *e, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct api_req r;
	char msg[256], who[80];
	size_t len = evbuffer_get_length(in);
	int code;

	memset(&r, 0, sizeof(r));
	if (e->token == NULL && !endpoint_loopback(&e->addr)) {
		endpoint_json(req, 403, "changes need [stats] token, or the "
		    "endpoint on a loopback address");
		return;
	}
	if (cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PUT &&
	    cmd != EVHTTP_REQ_DELETE) {
		evhttp_add_header(hdrs, "Allow", "POST, PUT, DELETE");
		endpoint_json(req, 405, "use POST (state, weight), PUT (add) "
		    "or DELETE (remove)");
		return;
	}
	if (api_path(evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)),
	    &r) == -1) {
		endpoint_json(req, 404, "no such resource: use "
		    "/api/backends/NAME/servers/NAME");
		return;
	}
	r.op = cmd == EVHTTP_REQ_POST ? API_SET : cmd == EVHTTP_REQ_PUT ?
	    API_ADD : API_REMOVE;
	if (api_parse(&r, (const char *)evbuffer_pullup(in, -1), len, msg,
	    sizeof(msg)) == -1) {
		endpoint_json(req, 400, msg);
		return;
	}
	if (e->control == NULL) {
		endpoint_json(req, 503, "runtime changes are not available");
		return;
	}
	endpoint_peer(req, who, sizeof(who));
	r.who = who;
	code = e->control(e->control_arg, &r, msg, sizeof(msg));
	endpoint_json(req, code, msg);
}

/* Whether req is for the runtime API (its errors are JSON). */
static int
endpoint_is_api(struct evhttp_request *req)
{
	const char *path = evhttp_uri_get_path(
	    evhttp_request_get_evhttp_uri(req));

	return path != NULL && strncmp(path, "/api/", 5) == 0;
}

void
endpoint_set_control(struct endpoint *e, endpoint_control_fn fn, void *arg)
{
	e->control = fn;
	e->control_arg = arg;
}

static void
endpoint_cb(struct evhttp_request *req, void *arg)
{
	struct endpoint *e = arg;
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *authorization;

	httpgate_request(e->gate, req);
	authorization = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Authorization");
	switch (endpoint_route(e->token, authorization,
	    cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD,
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)))) {
	case ROUTE_UNAUTHORIZED:
		evhttp_add_header(hdrs, "WWW-Authenticate",
		    "Bearer realm=\"baton\"");
		if (endpoint_is_api(req))
			endpoint_json(req, 401, "a change needs the token: "
			    "Authorization: Bearer TOKEN");
		else
			endpoint_error(req, 401, "Unauthorized");
		break;
	case ROUTE_BAD_METHOD:
		evhttp_add_header(hdrs, "Allow", "GET, HEAD");
		endpoint_error(req, 405, "Method Not Allowed");
		break;
	case ROUTE_API:
		endpoint_api(e, req);
		break;
	case ROUTE_STATS:
		endpoint_render(e, req, 0);
		break;
	case ROUTE_METRICS:
		endpoint_render(e, req, 1);
		break;
	case ROUTE_DASHBOARD:
		endpoint_reply(req, 200, "OK", "text/html; charset=utf-8",
		    dashboard_html, sizeof(dashboard_html) - 1);
		break;
	case ROUTE_NOT_FOUND:
		endpoint_error(req, 404, "Not Found");
		break;
	}
}

int
endpoint_set_token(struct endpoint *e, const char *token)
{
	char *copy = NULL;

	if (token != NULL && (copy = strdup(token)) == NULL)
		return -1;
	free(e->token);
	e->token = copy;
	return 0;
}

int
endpoint_fd(const struct endpoint *e)
{
	return e->fd;
}

struct endpoint *
endpoint_new(struct event_base *base, const struct config *cfg, int fd,
    endpoint_view_fn view, endpoint_done_fn done, void *arg)
{
	struct evhttp_bound_socket *bound;
	struct endpoint *e;
	struct rlimit rl;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warn("stats endpoint");
		return NULL;
	}
	e->fd = -1;
	e->addr = cfg->stats_addr;
	e->view = view;
	e->done = done;
	e->arg = arg;
	if (endpoint_set_token(e, cfg->stats_token) == -1 ||
	    (e->http = evhttp_new(base)) == NULL) {
		log_warn("stats endpoint");
		goto fail;
	}
	if (fd != -1)
		e->fd = fd;		/* inherited across exec, listening */
	else if ((e->fd = net_listen(&cfg->stats_addr, 128)) == -1) {
		log_error("%s: [stats] cannot listen on %s: %s", cfg->path,
		    cfg->stats_listen, strerror(errno));
		goto fail;
	}
	/*
	 * Every method reaches endpoint_cb, which answers 405 to all but GET
	 * and HEAD. libevent 2.1 parses a method it does not know as its
	 * internal "unknown" type, bit 15, and answers 501 itself unless
	 * that bit is allowed too: allow every bit.
	 */
	evhttp_set_allowed_methods(e->http, 0xffff);
	evhttp_set_timeout(e->http, 10);
	evhttp_set_max_headers_size(e->http, 8192);
	evhttp_set_max_body_size(e->http, 65536);
	evhttp_set_gencb(e->http, endpoint_cb, e);
	if ((bound = evhttp_accept_socket_with_handle(e->http, e->fd)) ==
	    NULL) {
		log_warnx("stats endpoint: cannot accept on %s",
		    cfg->stats_listen);
		close(e->fd);
		e->fd = -1;
		goto fail;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 1024;
	if ((e->gate = httpgate_new(base, e->http, bound,
	    httpgate_cap((long)rl.rlim_cur), REQUEST_DEADLINE_MS)) == NULL) {
		log_warn("stats endpoint");
		goto fail;
	}
	log_info("stats listening on %s", cfg->stats_listen);
	return e;
fail:
	endpoint_free(e);
	return NULL;
}

void
endpoint_free(struct endpoint *e)
{
	/* evhttp_free() closes the bound socket it was given. */
	if (e->gate != NULL)
		httpgate_free(e->gate);		/* evhttp's too */
	else if (e->http != NULL)
		evhttp_free(e->http);
	else if (e->fd != -1)
		close(e->fd);
	free(e->token);
	free(e);
}
