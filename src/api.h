/* api.h -- the runtime API of the stats endpoint: requests, checked (pure) */
#ifndef BATON_API_H
#define BATON_API_H

#include <stddef.h>

#include "srvset.h"

/*
 * POST   /api/backends/B/servers/S  {"state": "drain", "weight": 2}
 * PUT    /api/backends/B/servers/S  {"address": "10.0.0.5:80", ...}
 * DELETE /api/backends/B/servers/S
 */
enum api_op {
	API_SET,	/* POST: state and/or weight */
	API_ADD,	/* PUT */
	API_REMOVE,	/* DELETE */
};

#define API_NAME_MAX	128

struct api_req {
	int		 op;		/* enum api_op */
	char		 backend[API_NAME_MAX];
	char		 server[API_NAME_MAX];
	int		 has_state;
	int		 state;		/* enum server_admin */
	int		 has_weight;
	unsigned	 weight;
	struct server_def def;		/* API_ADD: the new server */
	const char	*who;		/* the client's address, for the log */
};

/*
 * Split "/api/backends/B/servers/S" into r's names. Returns 0, or -1
 * when path has another shape or a name is empty or too long.
 */
int	api_path(const char *path, struct api_req *r);
/*
 * Parse and check the JSON body (len bytes, any bytes) of a request of
 * r->op into r: known fields only, each of its type and range; an add
 * needs "address", a numeric IPv4 or IPv6 address with a port. Returns
 * 0, or -1 with the reason in err.
 */
int	api_parse(struct api_req *r, const char *body, size_t len, char *err,
	    size_t errlen);
/* The state's name: ready, drain, maint. */
const char *api_state_name(int state);
/*
 * A JSON document {"error": msg} (or, with ok, {"ok": msg}) in a new
 * string; NULL when out of memory.
 */
char	*api_message(int ok, const char *msg);

#endif
