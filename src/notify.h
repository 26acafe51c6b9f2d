/*
 * notify.h -- tell the service manager how the master is doing: systemd's
 * notify protocol (Type=notify), through libsystemd's sd_notify() when
 * baton is built with it. Without $NOTIFY_SOCKET, nothing is sent.
 */
#ifndef BATON_NOTIFY_H
#define BATON_NOTIFY_H

/* Whether a service manager listens ($NOTIFY_SOCKET is set). */
int	notify_enabled(void);
/* Send "KEY=VALUE\n..." lines; errors are logged once and ignored. */
void	notify_send(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with the monotonic time systemd 253+ asks for. */
void	notify_reloading(void);

#endif
