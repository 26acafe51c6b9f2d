/* rpool.h -- a worker's relay buffers and splice pipes, reused */
#ifndef BATON_RPOOL_H
#define BATON_RPOOL_H

#define RPOOL_PIPE_SIZE	(256 * 1024)	/* a pipe's size: bytes per splice() */

/* Relay buffers: taken from the pool while data waits, then back. */
#define RELAY_BUF_SIZE	(16 * 1024)

struct rbuf {
	struct rbuf	*next;		/* in the free pool */
	unsigned	 off, len;
	char		 data[RELAY_BUF_SIZE];
};

/* A pipe for splice(), pooled like the buffers. */
struct rpipe {
	struct rpipe	*next;		/* in the free pool */
	int		 fd[2];
};

/* What every relay of a process shares: one read at a time. */
struct relay_pool {
	struct rbuf	*free_bufs;
	unsigned	 nfree_bufs;
	struct rpipe	*free_pipes;
	unsigned	 npipes;	/* created, in use or free */
	unsigned	 pipes_max;	/* npipes at most */
	char		*scratch;	/* RELAY_BUF_SIZE bytes */
	int		 splice;	/* splice() for bulk data */
};

/* Allocate the pool's scratch buffer; at most pipes_max pipes. Returns 0,
 * or -1 with errno. */
int	relay_pool_init(struct relay_pool *p, int splice, unsigned pipes_max);
/* Give the pooled buffers and pipes back to the system. */
void	relay_pool_free(struct relay_pool *p);

/* A buffer, empty; NULL when memory is short. */
struct rbuf	*rpool_buf_get(struct relay_pool *p);
void		 rpool_buf_put(struct relay_pool *p, struct rbuf *b);
/* A pipe for splice(), empty; NULL when the pool is used up (pipes_max). */
struct rpipe	*rpool_pipe_get(struct relay_pool *p);
/*
 * A pipe for a read end that came from another process (its bytes still
 * to be read); it counts against pipes_max. NULL, fd closed, when memory
 * is short.
 */
struct rpipe	*rpool_pipe_adopt(struct relay_pool *p, int fd);
/* Back to the pool; one that came as a read end alone is closed. */
void		 rpool_pipe_put(struct relay_pool *p, struct rpipe *pp);
/* Close a pipe that still holds bytes (it cannot be reused). */
void		 rpool_pipe_discard(struct relay_pool *p, struct rpipe *pp);

#endif
