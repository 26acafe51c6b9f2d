/* rpool.c -- a worker's relay buffers and splice pipes, reused */
#include "ac_config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpool.h"

#define POOL_MAX	64	/* free relay buffers a pool keeps */

struct rbuf *
rpool_buf_get(struct relay_pool *p)
{
	struct rbuf *b = p->free_bufs;

	if (b != NULL) {
		p->free_bufs = b->next;
		p->nfree_bufs--;
	} else if ((b = malloc(sizeof(*b))) == NULL) {
		return NULL;
	}
	b->next = NULL;
	b->off = b->len = 0;
	return b;
}

void
rpool_buf_put(struct relay_pool *p, struct rbuf *b)
{
	if (p->nfree_bufs >= POOL_MAX) {
		free(b);
		return;
	}
	b->next = p->free_bufs;
	p->free_bufs = b;
	p->nfree_bufs++;
}

/* A pipe for splice(), from the pool; NULL when the pool is used up. */
struct rpipe *
rpool_pipe_get(struct relay_pool *pool)
{
	struct rpipe *p = pool->free_pipes;

	if (p != NULL) {
		pool->free_pipes = p->next;
		return p;
	}
	if (pool->npipes >= pool->pipes_max || (p = malloc(sizeof(*p))) ==
	    NULL)
		return NULL;
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		free(p);
		return NULL;
	}
	/* Fewer, larger splices; the pages are only used while data flows. */
	(void)fcntl(p->fd[0], F_SETPIPE_SZ, RPOOL_PIPE_SIZE);
	pool->npipes++;
	return p;
}

/* A read end that came from another process, its writer left there. */
struct rpipe *
rpool_pipe_adopt(struct relay_pool *pool, int fd)
{
	struct rpipe *p;

	if ((p = malloc(sizeof(*p))) == NULL) {
		close(fd);
		return NULL;
	}
	p->next = NULL;
	p->fd[0] = fd;
	p->fd[1] = -1;
	pool->npipes++;
	return p;
}

/* A pipe that still holds bytes cannot be reused: close it. */
void
rpool_pipe_discard(struct relay_pool *pool, struct rpipe *p)
{
	close(p->fd[0]);
	if (p->fd[1] != -1)
		close(p->fd[1]);
	free(p);
	pool->npipes--;
}

/* Back to the pool; a read end that came alone (imported) is closed. */
void
rpool_pipe_put(struct relay_pool *pool, struct rpipe *p)
{
	if (p->fd[1] == -1) {
		rpool_pipe_discard(pool, p);
		return;
	}
	p->next = pool->free_pipes;
	pool->free_pipes = p;
}

int
relay_pool_init(struct relay_pool *p, int splice, unsigned pipes_max)
{
	memset(p, 0, sizeof(*p));
	p->splice = splice;
	p->pipes_max = pipes_max;
	if ((p->scratch = malloc(RELAY_BUF_SIZE)) == NULL)
		return -1;
	return 0;
}

void
relay_pool_free(struct relay_pool *p)
{
	struct rbuf *b;
	struct rpipe *pp;

	while ((b = p->free_bufs) != NULL) {
		p->free_bufs = b->next;
		free(b);
	}
	p->nfree_bufs = 0;
	while ((pp = p->free_pipes) != NULL) {
		p->free_pipes = pp->next;
		rpool_pipe_discard(p, pp);
	}
	free(p->scratch);
	p->scratch = NULL;
}
