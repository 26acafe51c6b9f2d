/* config_util.c -- the configuration reader's pure helpers */
#include "ac_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"
#include "log.h"


void
errlist_free(struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

void
cfg_errlist_add(struct errlist *errs, const char *fmt, ...)
{
	char **m;
	char *s;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		fatalx("out of memory");
	if ((m = realloc(errs->msgs, (errs->n + 1) * sizeof(*m))) == NULL)
		fatalx("out of memory");
	errs->msgs = m;
	errs->msgs[errs->n++] = s;
}

void
cfg_perr(struct parse *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_errlist_add(p->errs, "%s:%d: %s%s%s", p->name, line ? line : p->line,
	    p->label, p->label[0] ? " " : "", msg);
}

void *
cfg_xcalloc(size_t n, size_t size)
{
	void *v = calloc(n, size);

	if (v == NULL)
		fatalx("out of memory");
	return v;
}

char *
cfg_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		fatalx("out of memory");
	return d;
}

void *
cfg_grow(void *arrp, size_t *n, size_t size)
{
	void **arr = arrp;
	char *a;

	if ((a = realloc(*arr, (*n + 1) * size)) == NULL)
		fatalx("out of memory");
	memset(a + *n * size, 0, size);
	*arr = a;
	return a + (*n)++ * size;
}

int
config_parse_duration(const char *s, unsigned *ms)
{
	char *end;
	unsigned long long v, mult;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else
		return -1;
	/* A week is far beyond any sane timeout; it also keeps ms in 32 bits. */
	if (v > 7ULL * 24 * 3600 * 1000 / mult)
		return -1;
	*ms = (unsigned)(v * mult);
	return 0;
}

int
cfg_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
cfg_parse_word(const char *s, const char *const *words)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			return i;
	return -1;
}

char *
config_unescape(const char *s, size_t *len)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (out == NULL)
		fatalx("out of memory");
	while (*s) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r': *o++ = '\r'; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case '\\': *o++ = '\\'; break;
		case 'x':
			if (isxdigit((unsigned char)s[1]) &&
			    isxdigit((unsigned char)s[2])) {
				char hex[3] = { s[1], s[2], 0 };
				*o++ = (char)strtoul(hex, NULL, 16);
				s += 2;
				break;
			}
			/* FALLTHROUGH */
		default:
			free(out);
			return NULL;
		}
		s++;
	}
	*len = (size_t)(o - out);
	return out;
}

int
cfg_valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

/* The length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t
config_utf8_len(const char *s, size_t n)
{
	return n == 0 ? 0 : utf8_seq((const unsigned char *)s, n);
}

const char *
config_check_text(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; i < len;) {
		size_t n;

		if (s[i] == '\0')
			return "NUL byte";
		/* CR only as a line's end (CRLF), not inside it */
		if ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' &&
		    (s[i] != '\r' || (i + 1 < len && s[i + 1] != '\n'))) ||
		    s[i] == 0x7f)
			return "control character";
		if ((n = utf8_seq(s + i, len - i)) == 0)
			return "invalid UTF-8";
		i += n;
	}
	return NULL;
}
