/* accesslog.c -- the access log's JSON line: one object per connection */
#include "ac_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "log.h"

/* Room kept for what follows a string: the rest of the object. */
#define TAIL_ROOM	256

struct jbuf {
	char	*p;
	size_t	 len;
	size_t	 size;
};

static void
jb_raw(struct jbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n >= b->size)
		n = b->size - b->len - 1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* A JSON string, or null for NULL; cut short rather than overflow. */
static void
jb_str(struct jbuf *b, const char *s)
{
	char esc[8];

	if (s == NULL) {
		jb_raw(b, "null");
		return;
	}
	jb_raw(b, "\"");
	for (; *s != '\0' && b->len + 8 + TAIL_ROOM < b->size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			snprintf(esc, sizeof(esc), "%c", c);
		jb_raw(b, esc);
	}
	jb_raw(b, "\"");
}

static void
jb_key_str(struct jbuf *b, const char *key, const char *v)
{
	jb_raw(b, ",\"");
	jb_raw(b, key);
	jb_raw(b, "\":");
	jb_str(b, v);
}

static void
jb_key_u64(struct jbuf *b, const char *key, uint64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), ",\"%s\":%" PRIu64, key, v);
	jb_raw(b, num);
}

size_t
accesslog_json(const struct access_rec *r, char *buf, size_t size)
{
	struct jbuf b = { buf, 0, size };
	time_t sec = (time_t)(r->end_ms / 1000);
	char when[64];
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03uZ",
	    (unsigned)(r->end_ms % 1000));
	buf[0] = '\0';
	jb_raw(&b, "{\"time\":");
	jb_str(&b, when);
	jb_key_u64(&b, "pid", (uint64_t)getpid());
	jb_key_u64(&b, "id", r->id);
	jb_key_str(&b, "frontend", r->frontend);
	jb_key_str(&b, "client", r->client);
	jb_key_str(&b, "backend", r->backend);
	jb_key_str(&b, "server", r->server);
	jb_key_u64(&b, "bytes_in", r->bytes_in);
	jb_key_u64(&b, "bytes_out", r->bytes_out);
	jb_key_u64(&b, "duration_ms", r->duration_ms);
	jb_key_str(&b, "reason", r->reason);
	jb_key_str(&b, "error", r->err ? strerror(r->err) : NULL);
	jb_raw(&b, "}\n");
	return b.len;
}

void
accesslog_write_json(const struct access_rec *r)
{
	char line[ACCESSLOG_LINE_MAX];
	size_t n;

	if (log_get_level() > LL_INFO)
		return;
	n = accesslog_json(r, line, sizeof(line));
	/* One write per line, as log.c does, so workers never interleave. */
	while (write(log_fd(), line, n) == -1 && errno == EINTR)
		;
}
