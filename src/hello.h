/* hello.h -- a passed-through TLS client's ClientHello: read whole without
 * terminating TLS, and the server name and protocols it asks for */
#ifndef BATON_HELLO_H
#define BATON_HELLO_H

#include <stddef.h>

/* Bytes of records a ClientHello may take, headers included: what one
 * relay buffer holds, so all of it can wait for a slow server. */
#define HELLO_MAX	(16 * 1024)
/* Bytes of the offered protocol list kept for routing. */
#define HELLO_ALPN_MAX	512

enum hello_state {
	HELLO_BIG = -2,		/* a ClientHello, larger than allowed */
	HELLO_BAD = -1,		/* not a TLS ClientHello */
	HELLO_MORE = 0,		/* one so far: more bytes needed */
	HELLO_DONE = 1,		/* whole */
};

/*
 * The framing: whether buf[0..len) starts with a whole ClientHello in TLS
 * handshake records (one or several; their bytes up to the one that ends
 * it go to *used). Looks at no more than max bytes: a ClientHello whose
 * records need more is HELLO_BIG.
 */
int	hello_frame(const unsigned char *buf, size_t len, size_t max,
	    size_t *used);

/* What a ClientHello asks for. */
struct hello_info {
	char		sni[256];	/* server name, "" when none */
	unsigned char	alpn[HELLO_ALPN_MAX];	/* offered, wire format */
	size_t		alpn_len;
	int		seen;		/* OpenSSL took it for a ClientHello */
};

/* OpenSSL's parser for ClientHellos, one per frontend; NULL on failure. */
void	*hello_ctx_new(void);
void	 hello_ctx_free(void *ctx);
/*
 * Let OpenSSL parse len bytes of whole ClientHello records (hello_frame()
 * said HELLO_DONE) as a TLS server would, and stop there. Returns 0 with
 * *out filled, -1 when OpenSSL would not take them for a ClientHello.
 */
int	hello_parse(void *ctx, const unsigned char *buf, size_t len,
	    struct hello_info *out);

/* The bytes read from a client so far, kept to be sent on. */
struct hello_buf {
	unsigned char	*data;		/* HELLO_MAX bytes once reading */
	size_t		 len;
};

/*
 * Read what non-blocking fd has into hb (its data allocated on first use)
 * until EAGAIN or a whole ClientHello. Returns an enum hello_state, or
 * HELLO_BAD also when the client closed or failed (*why says which).
 */
int	hello_read(struct hello_buf *hb, int fd, const char **why);
/* Free what hb holds. */
void	hello_buf_free(struct hello_buf *hb);

#endif
