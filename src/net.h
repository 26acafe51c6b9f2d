/* net.h -- socket addresses and the few socket calls baton makes */
#ifndef BATON_NET_H
#define BATON_NET_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stddef.h>

#define ADDR_STRLEN	64	/* "[ffff:...:ffff]:65535" with room */

struct addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

/* An IPv4 or IPv6 address and port in the least room, to keep many. */
union addr_ip {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

#define ADDR_LISTEN	0x1	/* "*:PORT" allowed (any address) */
#define ADDR_RESOLVE	0x2	/* host names resolved with getaddrinfo */

/*
 * Parse "HOST:PORT", "[IPv6]:PORT" or, with ADDR_LISTEN, "*:PORT" into out.
 * Returns 0, or -1 with a short reason in err ("bad port", ...).
 */
int	addr_parse(const char *s, int flags, struct addr *out, char *err,
	    size_t errlen);
/* Write "1.2.3.4:80" or "[::1]:80" into buf (ADDR_STRLEN bytes). */
void	addr_format(const struct sockaddr *sa, char *buf, size_t len);
/* Equal family, address and port. */
int	addr_equal(const struct addr *a, const struct addr *b);

/*
 * Bind and listen on a non-blocking, close-on-exec TCP socket with
 * SO_REUSEADDR (and IPV6_V6ONLY for IPv6). Returns the fd or -1 with errno.
 */
int	net_listen(const struct addr *a, int backlog);
/*
 * Start a non-blocking connect. Returns the fd (connected or in progress)
 * or -1 with errno set and nothing left open.
 */
int	net_connect(const struct sockaddr *sa, socklen_t len);
/* Collect the result of a non-blocking connect: 0, or -1 with errno. */
int	net_connect_result(int fd);
/*
 * Whether err, from socket() or connect(), is this host's shortage (out of
 * descriptors, buffers, memory or local ports) rather than something the
 * peer or the network did (refused, reset, timed out, unreachable). A
 * local error says nothing about the server and is not counted against it.
 */
int	net_error_is_local(int err);
/*
 * Raise RLIMIT_NOFILE's soft limit to its hard limit, and the hard limit to
 * want when allowed (root). Returns the soft limit now in force.
 */
long	net_raise_nofile(long want);

/*
 * How a worker spends nofile descriptors: NET_OWN_FDS of its own
 * (channel, log, epoll, signals), up to net_nofile_pipes() pipes of two
 * for splice(), and two per connection: net_nofile_conns() connections.
 * The master sends a worker no more than that many at once, so no socket
 * reaches it without its descriptor and every one can connect onward.
 */
#define NET_OWN_FDS	16
#define NET_PIPES_MAX	1024
unsigned	net_nofile_pipes(long nofile);
unsigned long	net_nofile_conns(long nofile);

#endif
