/* config.h -- proxy.ini: the configuration structs, parsing and validation */
#ifndef BATON_CONFIG_H
#define BATON_CONFIG_H

#include <stddef.h>

#include "net.h"

#define CONFIG_MAX_WORKERS	256
#define CONFIG_MAX_RETRIES	16
#define CONFIG_MAX_WEIGHT	256
#define CONFIG_MAX_SERVERS	256	/* per backend */
#define CONFIG_MAX_CERTS	64	/* tls_cert/tls_key pairs per frontend */
#define CONFIG_MAX_ROUTES	64	/* route lines per frontend */
#define CONFIG_MAX_ALPN	16	/* protocols in tls_alpn */
/* Characters a line may hold, its end aside (inih's buffer, 200). */
#define CONFIG_LINE_MAX	198

enum balance_algo {
	BALANCE_ROUNDROBIN,
	BALANCE_LEASTCONN,
	BALANCE_SOURCE,
	BALANCE_RANDOM,
};

enum dispatch_mode {
	DISPATCH_ROUNDROBIN,
	DISPATCH_LEASTCONN,
};

enum io_uring_mode {
	IO_URING_OFF,
	IO_URING_ON,	/* required: no start without it */
	IO_URING_AUTO,	/* when the kernel has it */
};

enum proxy_proto {
	PROXY_OFF,
	PROXY_V1,
	PROXY_V2,
	PROXY_ANY,	/* accept_proxy only */
};

enum check_mode {
	CHECK_OFF,
	CHECK_TCP,
};

enum log_format {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
};

/* Where a server came from. */
enum server_origin {
	ORIGIN_FILE,	/* a server line of proxy.ini */
	ORIGIN_API,	/* added through the stats endpoint's API */
	ORIGIN_DNS,	/* found by DNS (resolve, discover) */
};

/* A server's runtime state, set through the API (ready unless told). */
enum server_admin {
	ADMIN_READY,
	ADMIN_DRAIN,	/* no new connections; open ones finish */
	ADMIN_MAINT,	/* the same, and /stats says maint */
};

struct server_conf {
	char		*name;
	char		*addr_text;	/* as written, for stats and logs */
	struct addr	 addr;
	unsigned	 weight;	/* in force (the API may change it) */
	int		 backup;
	int		 send_proxy;	/* enum proxy_proto */
	unsigned	 max_connections;	/* 0: no limit */
	int		 line;
	size_t		 flat;		/* index over every backend's servers */
	/* Runtime: set by the master, the same in its workers. */
	int		 origin;	/* enum server_origin */
	int		 admin;		/* enum server_admin */
	int		 removed;	/* removed at runtime: drains, then gone */
	unsigned	 file_weight;	/* weight as its origin gave it */
	int		 tls;		/* server ... tls: TLS to the server */
	char		*tls_verify;	/* verify=CAFILE; NULL: system CAs */
	int		 tls_noverify;	/* verify=none */
	char		*tls_sni;	/* sni=NAME, or NULL */
	void		*tls_ctx;	/* made by tls_load() */
};

/*
 * A server line with "resolve": every A and AAAA record of host is a
 * server, named NAME-1, NAME-2, ... (stable by address).
 */
struct resolve_conf {
	char		*name;
	char		*host;
	unsigned	 port;
	unsigned	 weight;
	int		 backup;
	int		 send_proxy;	/* enum proxy_proto */
	unsigned	 max_connections;
	int		 line;
};

#define CONFIG_RESOLVE_NAME_MAX	59	/* so that NAME-256 fits 63 */

struct backend_conf {
	char			*name;
	int			 line;
	int			 balance;	/* enum balance_algo */
	struct server_conf	*servers;
	size_t			 nservers;
	unsigned		 connect_timeout_ms;
	unsigned		 retries;
	int			 check;		/* enum check_mode */
	unsigned		 check_interval_ms;
	unsigned		 check_timeout_ms;
	unsigned		 rise;
	unsigned		 fall;
	char			*check_send;	/* unescaped, may hold NULs */
	size_t			 check_send_len;
	char			*check_expect;
	size_t			 check_expect_len;
	unsigned		 max_fails;	/* 0: passive checks off */
	unsigned		 fail_timeout_ms;
	int			 send_proxy;	/* default for its servers */
	size_t			 server_base;	/* first flat server index */
	struct resolve_conf	*resolves;	/* server ... resolve */
	size_t			 nresolves;
	char			*discover;	/* the SRV name, or NULL */
	int			 discover_line;
	/*
	 * servers has room for CONFIG_MAX_SERVERS from the start, so servers
	 * added at runtime never move the others (health and sessions keep
	 * pointers). Flat indices are server_base + j for the file's servers;
	 * a server added later takes the next free flat index of the whole
	 * configuration (server_conf.flat).
	 */
};

struct listen_conf {
	char		*text;
	struct addr	 addr;
	int		 line;
};

/* Client certificates on a TLS frontend (tls_verify). */
enum tls_verify {
	TLS_VERIFY_NONE = 0,	/* none asked for */
	TLS_VERIFY_OPTIONAL,	/* asked for; a missing one is accepted */
	TLS_VERIFY_REQUIRED	/* a client without a valid one is refused */
};

/* One certificate of a TLS frontend: the i-th tls_cert with the i-th
 * tls_key. The first is served when no other matches the client's SNI. */
struct tls_pair {
	char	*cert;
	char	*key;
	int	 cert_line;
	int	 key_line;
};

/*
 * One route line: a TLS connection whose server name matches name (exact
 * or "*.suffix", lowercase; NULL: any) and whose protocol is alpn (NULL:
 * any) goes to backend instead of the frontend's. First match wins.
 */
struct route_conf {
	char	*name;
	char	*alpn;
	char	*backend_name;
	size_t	 backend;	/* index into backends */
	int	 line;
};

struct frontend_conf {
	char			*name;
	int			 line;
	struct listen_conf	*listens;
	size_t			 nlistens;
	char			*backend_name;
	int			 backend_line;
	size_t			 backend;	/* index into backends */
	unsigned		 timeout_idle_ms;
	unsigned		 max_connections;
	struct tls_pair		*tls_pairs;	/* tls_cert/tls_key, in order */
	size_t			 ntls;
	void			*tls;		/* made by tls_load() */
	int			 accept_proxy;	/* enum proxy_proto */
	struct route_conf	*routes;	/* in order */
	size_t			 nroutes;
	size_t			 route_base;	/* first flat route slot */
	int			 tls_passthrough; /* route TLS undecrypted */
	int			 tls_passthrough_line;
	char			*tls_alpn;	/* as written, or NULL */
	unsigned char		*alpn_wire;	/* ALPN wire format of it */
	size_t			 alpn_wire_len;
	int			 tls_alpn_line;
	void			*hello;		/* made by tls_load() */
	char			*tls_client_ca;	/* PEM CA bundle, or NULL */
	int			 tls_client_ca_line;
	int			 tls_verify;	/* enum tls_verify */
	int			 tls_verify_line; /* 0: not given */
};

struct config {
	char			*path;
	unsigned		 workers;	/* "auto" resolved */
	int			 workers_auto;	/* workers came from "auto" */
	int			 dispatch;	/* enum dispatch_mode */
	unsigned		 drain_timeout_ms;
	char			*user;
	int			 log_level;	/* enum log_level */
	char			*log_file;
	int			 access_log;
	int			 log_format;	/* enum log_format */
	char			*pidfile;
	int			 splice;	/* splice() for bulk data */
	int			 handover;	/* reload moves live sessions */
	int			 io_uring;	/* IO_URING_*: the master's accepts
						   and closes (at start only) */
	unsigned		 resolve_interval_ms;	/* DNS: at most */
	char			*resolvers;	/* "IP:PORT,..." or NULL */

	int			 has_stats;
	char			*stats_listen;
	struct addr		 stats_addr;
	char			*stats_token;

	struct frontend_conf	*frontends;
	size_t			 nfrontends;
	struct backend_conf	*backends;
	size_t			 nbackends;
	size_t			 nservers;	/* over all backends */
	/* Route slots over all frontends: each frontend's routes, then one
	 * for its default backend (frontend_conf.route_base). */
	size_t			 nroute_slots;
};

/*
 * The server with flat index flat: its backend's index to *b and its own
 * to *j. Returns 0, or -1 when there is none.
 */
int	config_server_at(const struct config *cfg, size_t flat, size_t *b,
	    size_t *j);

/* Error messages, each "FILE:LINE: text", in the order found. */
struct errlist {
	char	**msgs;
	size_t	  n;
};

void	errlist_free(struct errlist *errs);

/*
 * Read, parse and validate path. Returns the configuration, or NULL with
 * every problem appended to errs (which the caller frees).
 */
struct config	*config_load(const char *path, struct errlist *errs);
/* The same for a configuration held in memory; name stands for the file. */
struct config	*config_load_string(const char *text, const char *name,
		    struct errlist *errs);
/* The same for len bytes at buf, which may hold anything, NULs included. */
struct config	*config_load_buffer(const char *buf, size_t len,
		    const char *name, struct errlist *errs);
void		 config_free(struct config *cfg);

/*
 * Decode C escapes (\r \n \t \\ \xHH) of s into a new buffer; its length
 * goes to *len. NULL when an escape is malformed.
 */
char	*config_unescape(const char *s, size_t *len);
/* "30s", "500ms", "5m", "2h" or a bare number of seconds, into ms. */
int	config_parse_duration(const char *s, unsigned *ms);
/*
 * What is wrong with len bytes of a line, or NULL: "NUL byte", "control
 * character" (tab and LF are fine, CR only before LF or at the end) or
 * "invalid UTF-8".
 */
const char	*config_check_text(const char *s, size_t len);
/* The length of the valid UTF-8 sequence at s (n bytes there), or 0. */
size_t		 config_utf8_len(const char *s, size_t n);
/* The proxy.ini word for a value of these enums. */
const char	*config_balance_name(int balance);
const char	*config_dispatch_name(int dispatch);
const char	*config_io_uring_name(int mode);
const char	*config_proxy_name(int proxy);
const char	*config_check_name(int check);
const char	*config_tls_verify_name(int verify);
const char	*config_log_format_name(int format);
/* Descriptors a worker may need: two per connection any frontend allows. */
long		 config_nofile(const struct config *cfg);

#endif
