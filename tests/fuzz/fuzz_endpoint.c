/* fuzz_endpoint.c -- libFuzzer target: the stats endpoint's routing */
#include "ac_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "endpoint.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN	"s3cr3t-t0ken"

/*
 * What endpoint_route() must answer, said the slow, obvious way: the
 * constant-time token comparison must agree with strcmp().
 */
static enum endpoint_route
fz_expect(const char *token, const char *authz, int get_or_head,
    const char *path)
{
	if (token != NULL && (authz == NULL ||
	    strncmp(authz, "Bearer ", 7) != 0 || strcmp(authz + 7, token) != 0))
		return ROUTE_UNAUTHORIZED;
	if (path != NULL && strncmp(path, "/api/", 5) == 0)
		return ROUTE_API;
	if (!get_or_head)
		return ROUTE_BAD_METHOD;
	if (path != NULL && strcmp(path, "/stats") == 0)
		return ROUTE_STATS;
	if (path != NULL && strcmp(path, "/metrics") == 0)
		return ROUTE_METRICS;
	if (path != NULL && strcmp(path, "/") == 0)
		return ROUTE_DASHBOARD;
	return ROUTE_NOT_FOUND;
}

/*
 * First byte: bit 0 a token is configured, bit 1 GET or HEAD, bit 2 an
 * Authorization header is present. Then the header's value up to the
 * first newline, then the request-URI, parsed as libevent 2.1 parses it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *token, *authz = NULL, *path = NULL;
	struct evhttp_uri *uri;
	char *text, *nl;
	int flags;

	if (size < 1)
		return 0;
	flags = data[0];
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	token = flags & 1 ? TOKEN : NULL;
	nl = strchr(text, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (flags & 4)
		authz = text;
	uri = evhttp_uri_parse_with_flags(nl != NULL ? nl + 1 : "",
	    EVHTTP_URI_NONCONFORMANT);
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (endpoint_route(token, authz, flags & 2, path) !=
	    fz_expect(token, authz, flags & 2, path))
		abort();
	if (uri != NULL)
		evhttp_uri_free(uri);
	free(text);
	return 0;
}
