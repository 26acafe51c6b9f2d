/* log.c -- leveled logging to stderr or a file, one write(2) per line */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	const char	*name;
	int		 level;
	int		 fd;		/* 2 or the opened log_file */
	char		*path;
} lg = { "baton", LL_INFO, 2, NULL };

static const char *const level_names[] = {
	"debug", "info", "notice", "warning", "error",
};

void
log_init(const char *name)
{
	lg.name = name;
	lg.level = LL_INFO;
}

void
log_set_level(enum log_level level)
{
	lg.level = level;
}

int
log_get_level(void)
{
	return lg.level;
}

int
log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return level_names[level];
}

static int
log_open(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_set_file(const char *path)
{
	int fd = 2;
	char *copy = NULL;

	if (path != NULL) {
		if ((copy = strdup(path)) == NULL)
			return -1;
		if ((fd = log_open(path)) == -1) {
			free(copy);
			return -1;
		}
	}
	if (lg.fd != 2)
		close(lg.fd);
	free(lg.path);
	lg.fd = fd;
	lg.path = copy;
	return 0;
}

int
log_reopen(void)
{
	int fd;

	if (lg.path == NULL)
		return 0;
	if ((fd = log_open(lg.path)) == -1)
		return -1;
	if (dup2(fd, lg.fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
log_fd(void)
{
	return lg.fd;
}

int
log_switch(const char *path, int fd)
{
	char *copy = NULL;

	if (path != NULL && (copy = strdup(path)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (lg.fd != 2)
		close(lg.fd);
	free(lg.path);
	lg.fd = path != NULL ? fd : 2;
	lg.path = copy;
	return 0;
}

int
log_adopt_fd(int fd)
{
	int rc = 0;

	if (lg.fd == 2)
		rc = (lg.fd = fd) == -1 ? -1 : 0;
	else if (dup2(fd, lg.fd) == -1)
		rc = -1;
	if (lg.fd != fd)
		close(fd);
	return rc;
}

void
log_close(void)
{
	if (lg.fd != 2)
		close(lg.fd);
	lg.fd = 2;
	free(lg.path);
	lg.path = NULL;
}

/*
 * Rate limiting of warnings and errors: each call site (its format string)
 * has a slot; the first line of a one-second window is written, the rest
 * are counted and summed up in one line once the window has passed.
 */
#define LOG_RL_SLOTS	32		/* call sites remembered at once */
#define LOG_RL_MS	1000		/* the window */
#define LOG_TEXT_MAX	1024		/* a message, after the prefix */

struct log_rl {
	const char	*fmt;		/* the call site; NULL: a free slot */
	int		 level;
	uint64_t	 start_ms;	/* this window began */
	unsigned long	 dropped;	/* lines not written in it */
	char		 text[256];	/* the window's first message */
};

static struct {
	struct log_rl	 slot[LOG_RL_SLOTS];
	size_t		 npending;	/* slots with dropped > 0 */
	pid_t		 pid;		/* whose table: a forked child forgets */
	uint64_t	(*clock)(void);	/* a test's clock, or NULL */
} rl;

static uint64_t
log_clock_ms(void)
{
	struct timespec ts;

	if (rl.clock != NULL)
		return rl.clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
log_set_clock(uint64_t (*clock)(void))
{
	memset(&rl, 0, sizeof(rl));
	rl.clock = clock;
}

/* Write one line: the prefix, then TEXT. */
static void
log_line(int level, const char *text)
{
	char line[LOG_TEXT_MAX + 128];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	if (level < lg.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s[%d] %s: %s\n",
	    (int)(tv.tv_usec / 1000), lg.name, (int)getpid(),
	    level_names[level], text);
	n = r < 0 ? n : n + (size_t)r;
	if (n >= sizeof(line)) {
		n = sizeof(line);
		line[n - 1] = '\n';
	}
	while (write(lg.fd, line, n) == -1 && errno == EINTR)
		;
}

/* Say how many lines like the slot's first were not written. */
static void
log_rl_summary(struct log_rl *r)
{
	char text[sizeof(r->text) + 64];

	snprintf(text, sizeof(text),
	    "%s ... %lu more like this in the last second", r->text,
	    r->dropped);
	r->dropped = 0;
	rl.npending--;
	log_line(r->level, text);
}

/* Sum up every window that has passed; each begins a new one. */
static void
log_rl_flush(uint64_t now)
{
	for (size_t i = 0; i < LOG_RL_SLOTS && rl.npending > 0; i++) {
		struct log_rl *r = &rl.slot[i];
		if (r->dropped > 0 && now - r->start_ms >= LOG_RL_MS) {
			r->start_ms = now;
			log_rl_summary(r);
		}
	}
}

/* A forked child starts with no windows of its parent's. */
static void
log_rl_own(void)
{
	pid_t pid = getpid();

	if (rl.pid != pid) {
		memset(rl.slot, 0, sizeof(rl.slot));
		rl.npending = 0;
		rl.pid = pid;
	}
}

void
log_tick(void)
{
	if (rl.npending > 0) {
		log_rl_own();
		log_rl_flush(log_clock_ms());
	}
}

/* The call site's slot, or a free one, or the oldest (summed up first). */
static struct log_rl *
log_rl_slot(const char *fmt, int level)
{
	struct log_rl *oldest = &rl.slot[0];

	for (size_t i = 0; i < LOG_RL_SLOTS; i++) {
		struct log_rl *r = &rl.slot[i];
		if (r->fmt == fmt && r->level == level)
			return r;
		if (oldest->fmt != NULL &&
		    (r->fmt == NULL || r->start_ms < oldest->start_ms))
			oldest = r;
	}
	if (oldest->dropped > 0)
		log_rl_summary(oldest);
	oldest->fmt = NULL;
	return oldest;
}

/* Format the message: FMT, then ": strerror(errnum)" unless 0. */
static void
log_format(char *text, size_t size, const char *fmt, va_list ap, int errnum)
{
	int r = vsnprintf(text, size, fmt, ap);
	size_t n = r < 0 ? 0 : (size_t)r;

	if (n > size - 64)
		n = size - 64;
	if (errnum != 0)
		snprintf(text + n, size - n, ": %s", strerror(errnum));
}

/* Log one message; LIMIT: rate-limited by its call site, FMT. */
static void
log_vwrite(int level, const char *fmt, va_list ap, int errnum, int limit)
{
	char text[LOG_TEXT_MAX];
	struct log_rl *r = NULL;
	uint64_t now = 0;
	size_t len;

	if (rl.npending > 0 || (limit && level >= lg.level)) {
		log_rl_own();
		now = log_clock_ms();
		log_rl_flush(now);
	}
	if (level < lg.level)
		return;
	if (limit) {
		r = log_rl_slot(fmt, level);
		if (r->fmt != NULL && now - r->start_ms < LOG_RL_MS) {
			if (r->dropped++ == 0)
				rl.npending++;
			return;
		}
	}
	log_format(text, sizeof(text), fmt, ap, errnum);
	if (r != NULL) {
		r->fmt = fmt;
		r->level = level;
		r->start_ms = now;
		len = strnlen(text, sizeof(r->text) - 1);	/* may cut it */
		memcpy(r->text, text, len);
		r->text[len] = '\0';
	}
	log_line(level, text);
}

#define LOG_FN(fn, level, witherr, limit)			\
void								\
fn(const char *fmt, ...)					\
{								\
	int saved = errno;					\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	log_vwrite(level, fmt, ap, witherr ? saved : 0, limit);	\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_debug, LL_DEBUG, 0, 0)
LOG_FN(log_info, LL_INFO, 0, 0)
LOG_FN(log_notice, LL_NOTICE, 0, 0)
LOG_FN(log_warn, LL_WARNING, 1, 1)
LOG_FN(log_warnx, LL_WARNING, 0, 1)
LOG_FN(log_error, LL_ERROR, 0, 1)
LOG_FN(log_error_always, LL_ERROR, 0, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LL_ERROR, fmt, ap, saved, 0);
	va_end(ap);
	exit(2);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LL_ERROR, fmt, ap, 0, 0);
	va_end(ap);
	exit(2);
}
