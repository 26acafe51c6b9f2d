/* log.c -- leveled logging to stderr or a file, one write(2) per line */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
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

static void
log_vwrite(int level, const char *fmt, va_list ap, int errnum)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	if (level < lg.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s[%d] %s: ",
	    (int)(tv.tv_usec / 1000), lg.name, (int)getpid(),
	    level_names[level]);
	n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = r < 0 ? n : n + (size_t)r;
	if (n > sizeof(line) - 64)
		n = sizeof(line) - 64;
	if (errnum != 0)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s",
		    strerror(errnum));
	line[n++] = '\n';
	while (write(lg.fd, line, n) == -1 && errno == EINTR)
		;
}

#define LOG_FN(fn, level, witherr)				\
void								\
fn(const char *fmt, ...)					\
{								\
	int saved = errno;					\
	va_list ap;						\
								\
	va_start(ap, fmt);					\
	log_vwrite(level, fmt, ap, witherr ? saved : 0);	\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_debug, LL_DEBUG, 0)
LOG_FN(log_info, LL_INFO, 0)
LOG_FN(log_notice, LL_NOTICE, 0)
LOG_FN(log_warn, LL_WARNING, 1)
LOG_FN(log_warnx, LL_WARNING, 0)
LOG_FN(log_error, LL_ERROR, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LL_ERROR, fmt, ap, saved);
	va_end(ap);
	exit(2);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LL_ERROR, fmt, ap, 0);
	va_end(ap);
	exit(2);
}
