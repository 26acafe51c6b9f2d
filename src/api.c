/* api.c -- the runtime API of the stats endpoint: requests, checked (pure) */
#include "ac_config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

static const char *const state_names[] = { "ready", "drain", "maint" };
static const char *const proxy_names[] = { "off", "v1", "v2" };

const char *
api_state_name(int state)
{
	if (state < ADMIN_READY || state > ADMIN_MAINT)
		return "unknown";
	return state_names[state];
}

/* Copy the segment [s, end) into out (size API_NAME_MAX) as a name. */
static int
api_segment(const char *s, const char *end, char *out)
{
	size_t n = (size_t)(end - s);

	if (n == 0 || n >= API_NAME_MAX || memchr(s, '/', n) != NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int
api_path(const char *path, struct api_req *r)
{
	static const char pre[] = "/api/backends/", mid[] = "/servers/";
	const char *b, *s;

	if (path == NULL || strncmp(path, pre, sizeof(pre) - 1) != 0)
		return -1;
	b = path + sizeof(pre) - 1;
	if ((s = strstr(b, mid)) == NULL)
		return -1;
	if (api_segment(b, s, r->backend) == -1)
		return -1;
	s += sizeof(mid) - 1;
	return api_segment(s, s + strlen(s), r->server);
}

/* The index of word s in words[0..n), or -1. */
static int
api_word(const char *s, const char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, words[i]) == 0)
			return i;
	return -1;
}

static int
api_uint(json_t *v, unsigned lo, unsigned hi, unsigned *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < (json_int_t)lo || i > (json_int_t)hi)
		return -1;
	*out = (unsigned)i;
	return 0;
}

/* One field of a body; -1 with err for a bad or unknown one. */
static int
api_field(struct api_req *r, const char *key, json_t *v, char *err,
    size_t errlen)
{
	struct server_def *d = &r->def;
	char why[64];

	if (r->op == API_REMOVE) {
		goto unknown;
	} else if (strcmp(key, "state") == 0) {
		if (!json_is_string(v) || (r->state = api_word(
		    json_string_value(v), state_names, 3)) == -1)
			goto bad;
		r->has_state = 1;
	} else if (strcmp(key, "weight") == 0) {
		if (api_uint(v, 1, CONFIG_MAX_WEIGHT, &r->weight) == -1)
			goto bad;
		r->has_weight = 1;
	} else if (r->op != API_ADD) {
		goto unknown;
	} else if (strcmp(key, "address") == 0) {
		if (!json_is_string(v) || addr_parse(json_string_value(v), 0,
		    &d->addr, why, sizeof(why)) == -1)
			goto bad;
	} else if (strcmp(key, "backup") == 0) {
		if (!json_is_boolean(v))
			goto bad;
		d->backup = json_is_true(v);
	} else if (strcmp(key, "send_proxy") == 0) {
		if (!json_is_string(v) || (d->send_proxy = api_word(
		    json_string_value(v), proxy_names, 3)) == -1)
			goto bad;
	} else if (strcmp(key, "max_connections") == 0) {
		if (api_uint(v, 0, 10000000, &d->max_connections) == -1)
			goto bad;
	} else {
		goto unknown;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad value for \"%s\"", key);
	return -1;
unknown:
	snprintf(err, errlen, "unknown field \"%s\"", key);
	return -1;
}

int
api_parse(struct api_req *r, const char *body, size_t len, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int rc = -1;

	memset(&r->def, 0, sizeof(r->def));
	r->def.weight = 1;
	r->def.send_proxy = -1;
	r->def.origin = ORIGIN_API;
	r->has_state = r->has_weight = 0;
	if (r->op == API_REMOVE && len == 0)
		return 0;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "bad JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the body must be a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v)
		if (api_field(r, key, v, err, errlen) == -1)
			goto out;
	if (r->op == API_SET && !r->has_state && !r->has_weight) {
		snprintf(err, errlen, "nothing to change: give \"state\" or "
		    "\"weight\"");
		goto out;
	}
	if (r->op == API_ADD && r->def.addr.len == 0) {
		snprintf(err, errlen, "\"address\" is required");
		goto out;
	}
	if (r->op == API_ADD) {
		size_t n = strlen(r->server);
		if (n >= sizeof(r->def.name)) {
			snprintf(err, errlen, "server name too long (at most "
			    "%zu characters)", sizeof(r->def.name) - 1);
			goto out;
		}
		memcpy(r->def.name, r->server, n + 1);
		r->def.weight = r->has_weight ? r->weight : 1;
		r->def.admin = r->has_state ? r->state : ADMIN_READY;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

char *
api_message(int ok, const char *msg)
{
	json_t *o = json_pack("{s:s}", ok ? "ok" : "error", msg);
	char *s;

	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}
