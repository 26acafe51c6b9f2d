/* notify.c -- systemd's notify protocol (see notify.h) */
#include "ac_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "notify.h"

int
notify_enabled(void)
{
	const char *p = getenv("NOTIFY_SOCKET");

	return p != NULL && *p != '\0';
}

#ifdef HAVE_LIBSYSTEMD
static int
notify_raw(const char *msg)
{
	return sd_notify(0, msg);
}
#else
/* The protocol itself: one datagram to $NOTIFY_SOCKET ('@': abstract). */
static int
notify_raw(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	rc = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1 ? -errno : 1;
	close(fd);
	return rc;
}
#endif

void
notify_send(const char *fmt, ...)
{
	static int warned;
	char msg[512];
	va_list ap;
	int rc;

	if (!notify_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((rc = notify_raw(msg)) < 0 && !warned) {
		warned = 1;
		log_warnx("cannot notify the service manager: %s",
		    strerror(-rc));
	}
}

void
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000);
}
