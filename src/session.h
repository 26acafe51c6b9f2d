/* session.h -- one relayed connection: connect, relay, half-close, close */
#ifndef BATON_SESSION_H
#define BATON_SESSION_H

struct worker;
struct chan_conn;
struct session;

/* Relay buffers: taken from the worker's pool while data waits, then back. */
#define RBUF_SIZE	(16 * 1024)

struct rbuf {
	struct rbuf	*next;		/* in the free pool */
	unsigned	 off, len;
	char		 data[RBUF_SIZE];
};

/* A pipe for splice(), pooled by the worker like the buffers. */
struct wpipe {
	struct wpipe	*next;		/* in the free pool */
	int		 fd[2];
};

/*
 * Take ownership of an accepted client socket described by c and start
 * connecting it to a server of its frontend's backend. Never fails: on any
 * error the client is closed and the failure counted.
 */
void	session_start(struct worker *w, int fd, const struct chan_conn *c);
/* End a session for the given reason: close both sockets, free it all. */
void	session_close(struct session *s, const char *reason);
/* Give the worker's pooled buffers back to the system. */
void	session_free_pool(struct worker *w);

#endif
