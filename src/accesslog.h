/* accesslog.h -- the access log's JSON line: one object per connection */
#ifndef BATON_ACCESSLOG_H
#define BATON_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

/* What is known of a connection when it ends. */
struct access_rec {
	uint64_t	 end_ms;	/* wall clock, ms since the epoch */
	uint64_t	 duration_ms;
	uint64_t	 id;		/* the session's id in its worker */
	const char	*frontend;
	const char	*client;	/* "1.2.3.4:5678" */
	const char	*backend;
	const char	*server;	/* NULL: none was connected */
	uint64_t	 bytes_in;	/* from the client */
	uint64_t	 bytes_out;	/* to the client */
	const char	*reason;	/* what session_close() was given */
	int		 err;		/* errno behind it, or 0 */
};

#define ACCESSLOG_LINE_MAX	2048

/*
 * Format r as one JSON object and a newline into buf (size bytes, at least
 * 512). The result is valid JSON whatever the strings hold: every one is
 * escaped and, if the buffer would overflow, cut short inside its quotes.
 * Returns the length written, without a NUL.
 */
size_t	accesslog_json(const struct access_rec *r, char *buf, size_t size);

/* Write r as a JSON line to the log (level info, like the text line). */
void	accesslog_write_json(const struct access_rec *r);

#endif
