/* fuzz_api.c -- libFuzzer target: the runtime API's paths and bodies */
#include "ac_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * First byte: the operation (POST, PUT, DELETE). Then a path up to the
 * first newline, then the body, any bytes. What api_path() and
 * api_parse() accept must hold up: names within bounds and NUL-
 * terminated, values in their ranges.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_req r;
	const char *body;
	char *text, *nl, err[256];
	size_t blen;

	if (size < 1)
		return 0;
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	memset(&r, 0, sizeof(r));
	r.op = data[0] % 3;
	nl = memchr(text, '\n', size - 1);
	if (nl != NULL) {
		*nl = '\0';
		body = nl + 1;
		blen = (size_t)(text + size - 1 - body);
	} else {
		body = "";
		blen = 0;
	}
	if (api_path(text, &r) == 0 && (strlen(r.backend) == 0 ||
	    strlen(r.backend) >= API_NAME_MAX || strlen(r.server) == 0 ||
	    strchr(r.server, '/') != NULL))
		abort();
	if (api_parse(&r, body, blen, err, sizeof(err)) == 0) {
		if (r.has_weight && (r.weight < 1 ||
		    r.weight > CONFIG_MAX_WEIGHT))
			abort();
		if (r.has_state && (r.state < ADMIN_READY ||
		    r.state > ADMIN_MAINT))
			abort();
		if (r.op == API_ADD && r.def.addr.len == 0)
			abort();
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	free(text);
	return 0;
}
