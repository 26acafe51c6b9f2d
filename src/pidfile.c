/* pidfile.c -- the file that holds the master's pid */
#include "ac_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pidfile.h"

int
pidfile_write(const char *path)
{
	char tmp[4096], buf[32];
	int fd, n, saved, written;

	/* Whole or not at all: a reader never sees it half written. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1)
		return -1;
	errno = EIO;
	written = write(fd, buf, (size_t)n) == n;
	if (close(fd) == -1 || !written) {
		saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	if (rename(tmp, path) == -1) {
		saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

void
pidfile_remove(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	/* Another master may have taken the name since: leave its file. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("pidfile %s", path);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (atoi(buf) != (int)getpid())
		return;
	if (unlink(path) == -1)
		log_warn("remove pidfile %s", path);
}
