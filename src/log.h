/* log.h -- leveled logging to stderr or a file, one write(2) per line */
#ifndef BATON_LOG_H
#define BATON_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level {
	LL_DEBUG,
	LL_INFO,
	LL_NOTICE,
	LL_WARNING,
	LL_ERROR,
};

/* Set the name ("baton") printed on every line and reset to stderr, info. */
void	log_init(const char *name);
void	log_set_level(enum log_level level);
int	log_get_level(void);
/* Parse "debug".."error"; returns the level or -1. */
int	log_level_parse(const char *s);
const char *log_level_name(enum log_level level);
/* Log to path (append) instead of stderr; NULL means stderr. -1 on error. */
int	log_set_file(const char *path);
/* Log to path through fd, already opened (path NULL: stderr, fd unused). */
int	log_switch(const char *path, int fd);
/* Reopen the log file (logrotate); a no-op on stderr. -1 on error. */
int	log_reopen(void);
/* The descriptor log lines go to (2 for stderr). */
int	log_fd(void);
/* Write to fd (an already opened log file) from now on; takes it over. */
int	log_adopt_fd(int fd);
/* Release the log file name and descriptor. */
void	log_close(void);
/*
 * Warnings and errors (not fatal) are rate-limited by call site: the first
 * of a one-second window is written, the others only counted. Once the
 * window has passed, the next log call or log_tick() writes the first's
 * text with "... N more like this in the last second" and starts a new
 * window. Call log_tick() once a second so that no count waits long.
 */
void	log_tick(void);
/* For tests: CLOCK gives monotonic milliseconds (NULL: the system's);
 * forgets every window. */
void	log_set_clock(uint64_t (*clock)(void));

void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends strerror(errno); log_warnx does not. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_error, never rate-limited: for a report that must list every item
 * (the errors of a configuration file), all from one call site. */
void	log_error_always(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* Log at error level and exit(2): only at start-up or on a broken invariant. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
