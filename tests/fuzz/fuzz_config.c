/* fuzz_config.c -- libFuzzer target: proxy.ini, and what is made of it */
#include "ac_config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_dump.h"
#include "stats.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * No name lookups while fuzzing: a made-up host name would go out to the
 * resolver, slowly and to the network. These replace libc's (and ASan's
 * weak interceptors) in this program only: numeric addresses and
 * "localhost" resolve, any other name is not found, as an unknown one is.
 */
int
getaddrinfo(const char *host, const char *serv, const struct addrinfo *hints,
    struct addrinfo **res)
{
	struct {
		struct addrinfo		ai;
		struct sockaddr_in6	sa;	/* room for either family */
	} *r;
	struct sockaddr_in *sin;

	(void)serv;
	(void)hints;
	if (host == NULL || (r = calloc(1, sizeof(*r))) == NULL)
		return EAI_NONAME;
	sin = (void *)&r->sa;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_addr = (void *)&r->sa;
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = r->ai.ai_family = AF_INET;
		r->ai.ai_addrlen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &r->sa.sin6_addr) == 1) {
		r->sa.sin6_family = r->ai.ai_family = AF_INET6;
		r->ai.ai_addrlen = sizeof(r->sa);
	} else {
		free(r);
		return EAI_NONAME;
	}
	*res = &r->ai;
	return 0;
}

void
freeaddrinfo(struct addrinfo *ai)
{
	free(ai);	/* the block getaddrinfo() above made */
}

/* cfg in proxy.ini syntax (baton -T), as a new string; NULL on OOM. */
static char *
fz_dump(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = open_memstream(&text, &len)) == NULL)
		return NULL;
	config_dump_ini(fp, cfg);
	fclose(fp);
	return text;
}

/*
 * Render baton -t's summary, /stats and /metrics over cfg: its names are
 * outside bytes too.
 */
static void
fz_render(const struct config *cfg)
{
	struct stats_view v;
	struct sbuf b = { NULL, 0, 0, 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = open_memstream(&text, &len)) != NULL) {
		config_dump_summary(fp, cfg);
		fclose(fp);
		free(text);
	}
	memset(&v, 0, sizeof(v));
	v.version = "fuzz";
	v.cfg = cfg;
	if (stats_table_init(&v.sum, cfg) == -1)
		return;
	if ((v.server_status = calloc(cfg->nservers + 1, 1)) != NULL) {
		stats_render_json(&v, &b);
		stats_render_prometheus(&v, &b);
		sbuf_free(&b);
		free(v.server_status);
	}
	stats_table_free(&v.sum);
}

/*
 * `baton -T` output must load again (the manual promises that
 * `baton -T -c x > y; baton -t -c y` works) and dump the same. The
 * crash-dump-*.ini inputs of the corpus are what this found: lines -T
 * made too long to read, and a value starting with ';' written where it
 * read as a comment.
 */
static void
fz_roundtrip(const struct config *cfg)
{
	struct errlist errs = { NULL, 0 };
	struct config *again;
	char *one, *two;

	if ((one = fz_dump(cfg)) == NULL)
		return;
	again = config_load_string(one, "dump.ini", &errs);
	if (again == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, "-T output does not load:\n%s", one);
		abort();
	}
	errlist_free(&errs);
	if ((two = fz_dump(again)) != NULL &&
	    strcmp(strstr(one, "\n"), strstr(two, "\n")) != 0) {
		fprintf(stderr, "-T output changes:\n%s----\n%s", one, two);
		abort();
	}
	free(two);
	config_free(again);
	free(one);
}

/* The input is the file; with a NUL in it, the buffer reader takes it. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = { NULL, 0 };
	struct config *cfg;
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (memchr(data, '\0', size) == NULL)
		cfg = config_load_string(text, "fuzz.ini", &errs);
	else
		cfg = config_load_buffer(text, size, "fuzz.ini", &errs);
	if (cfg == NULL && errs.n == 0)
		abort();	/* refused without saying why */
	errlist_free(&errs);
	if (cfg != NULL) {
		fz_render(cfg);
		fz_roundtrip(cfg);
		config_free(cfg);
	}
	free(text);
	return 0;
}
