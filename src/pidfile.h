/* pidfile.h -- the file that holds the master's pid */
#ifndef BATON_PIDFILE_H
#define BATON_PIDFILE_H

/* Write our pid to path (replacing it); -1 with errno on failure. */
int	pidfile_write(const char *path);
/* Remove path if it still holds our pid; logs a failure. */
void	pidfile_remove(const char *path);

#endif
