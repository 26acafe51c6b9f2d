/* check_config.c -- unit tests for proxy.ini parsing, defaults and errors */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "config.h"
#include "config_dump.h"
#include "log.h"
#include "config_helpers.h"

/* The line reader's buffer is inih's INI_MAX_LINE (200): 198 characters. */
#define LONGEST_LINE	198

static unsigned
cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)n;
}

static void
assert_v4(const struct addr *a, const char *ip, unsigned port)
{
	const struct sockaddr_in *sin = (const void *)&a->ss;
	char buf[INET_ADDRSTRLEN];

	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(a->len, sizeof(*sin));
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, &sin->sin_addr, buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, ip);
	ck_assert_uint_eq(ntohs(sin->sin_port), port);
}

static void
assert_v6(const struct addr *a, const char *ip, unsigned port)
{
	const struct sockaddr_in6 *sin6 = (const void *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(a->len, sizeof(*sin6));
	ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, ip);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
}

/* The example of DESIGN.md, comments and all. */
static const char design_example[] =
    "[global]\n"
    "workers = auto            ; worker processes: auto (= CPU count) or "
    "1..256\n"
    "dispatch = roundrobin     ; how the master picks a worker: roundrobin "
    "| leastconn\n"
    "drain_timeout = 30s       ; old workers after reload / stop\n"
    "user = nobody             ; optional: workers drop privileges to this "
    "user\n"
    "log_level = info          ; debug | info | notice | warning | error\n"
    "log_file = /var/log/baton.log   ; optional, default stderr\n"
    "access_log = off          ; on: one line per finished connection\n"
    "pidfile = /run/baton.pid  ; optional\n"
    "\n"							/* 10 */
    "[stats]\n"
    "listen = 127.0.0.1:9090   ; HTTP stats endpoint, served by the master\n"
    "token = s3cret            ; optional: then every request needs\n"
    "                          ; \"Authorization: Bearer s3cret\"\n"
    "\n"
    "[frontend web]            ; any number of frontends\n"	/* 16 */
    "listen = 0.0.0.0:8080     ; (repeatable) HOST:PORT, [IPv6]:PORT or "
    "*:PORT\n"
    "backend = app             ; which [backend] serves it\n"
    "timeout_idle = 5m         ; close a connection idle both ways this "
    "long\n"
    "max_connections = 10000   ; per frontend, across all workers\n"
    "tls_cert = /etc/baton/site.pem   ; optional: terminate TLS (PEM "
    "chain)\n"
    "tls_key = /etc/baton/site.key\n"
    "accept_proxy = off        ; off | v1 | v2 | any: expect a PROXY "
    "protocol header\n"
    "\n"
    "[backend app]\n"						/* 25 */
    "balance = roundrobin      ; roundrobin | leastconn | source | random\n"
    "server = a1 10.0.0.1:8000 weight=3          ; (repeatable) NAME ADDR "
    "[options]\n"
    "server = a2 10.0.0.2:8000 weight=1 send_proxy=v2\n"
    "server = spare 10.0.0.9:8000 backup         ; used only when no "
    "other is up\n"
    "connect_timeout = 5s\n"					/* 30 */
    "retries = 2               ; connect failures tried on another server\n"
    "check = tcp               ; off | tcp: active health checks by the "
    "master\n"
    "check_interval = 2s\n"
    "check_timeout = 1s\n"
    "rise = 2                  ; consecutive successes to mark a server up\n"
    "fall = 3                  ; consecutive failures to mark it down\n"
    "send_proxy = off          ; off | v1 | v2: default for every server\n";

START_TEST(test_design_example)
{
	struct config *cfg = load_ok(design_example);
	struct frontend_conf *f;
	struct backend_conf *b;

	ck_assert_str_eq(cfg->path, "t.ini");
	ck_assert_uint_eq(cfg->workers, cpu_count());
	ck_assert_int_eq(cfg->dispatch, DISPATCH_ROUNDROBIN);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 30000);
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_int_eq(cfg->log_level, LL_INFO);
	ck_assert_str_eq(cfg->log_file, "/var/log/baton.log");
	ck_assert_int_eq(cfg->access_log, 0);
	ck_assert_str_eq(cfg->pidfile, "/run/baton.pid");

	ck_assert_int_eq(cfg->has_stats, 1);
	ck_assert_str_eq(cfg->stats_listen, "127.0.0.1:9090");
	assert_v4(&cfg->stats_addr, "127.0.0.1", 9090);
	ck_assert_str_eq(cfg->stats_token, "s3cret");

	ck_assert_uint_eq(cfg->nfrontends, 1);
	f = &cfg->frontends[0];
	ck_assert_str_eq(f->name, "web");
	ck_assert_int_eq(f->line, 16);
	ck_assert_uint_eq(f->nlistens, 1);
	ck_assert_str_eq(f->listens[0].text, "0.0.0.0:8080");
	ck_assert_int_eq(f->listens[0].line, 17);
	assert_v4(&f->listens[0].addr, "0.0.0.0", 8080);
	ck_assert_str_eq(f->backend_name, "app");
	ck_assert_int_eq(f->backend_line, 18);
	ck_assert_uint_eq(f->backend, 0);
	ck_assert_uint_eq(f->timeout_idle_ms, 5 * 60 * 1000);
	ck_assert_uint_eq(f->max_connections, 10000);
	ck_assert_uint_eq(f->ntls, 1);
	ck_assert_str_eq(f->tls_pairs[0].cert, "/etc/baton/site.pem");
	ck_assert_str_eq(f->tls_pairs[0].key, "/etc/baton/site.key");
	ck_assert_int_eq(f->accept_proxy, PROXY_OFF);

	ck_assert_uint_eq(cfg->nbackends, 1);
	b = &cfg->backends[0];
	ck_assert_str_eq(b->name, "app");
	ck_assert_int_eq(b->line, 25);
	ck_assert_int_eq(b->balance, BALANCE_ROUNDROBIN);
	ck_assert_uint_eq(b->connect_timeout_ms, 5000);
	ck_assert_uint_eq(b->retries, 2);
	ck_assert_int_eq(b->check, CHECK_TCP);
	ck_assert_uint_eq(b->check_interval_ms, 2000);
	ck_assert_uint_eq(b->check_timeout_ms, 1000);
	ck_assert_uint_eq(b->rise, 2);
	ck_assert_uint_eq(b->fall, 3);
	ck_assert_int_eq(b->send_proxy, PROXY_OFF);

	ck_assert_uint_eq(b->nservers, 3);
	ck_assert_str_eq(b->servers[0].name, "a1");
	ck_assert_str_eq(b->servers[0].addr_text, "10.0.0.1:8000");
	assert_v4(&b->servers[0].addr, "10.0.0.1", 8000);
	ck_assert_uint_eq(b->servers[0].weight, 3);
	ck_assert_int_eq(b->servers[0].backup, 0);
	ck_assert_int_eq(b->servers[0].send_proxy, PROXY_OFF);
	ck_assert_int_eq(b->servers[0].line, 27);
	ck_assert_str_eq(b->servers[1].name, "a2");
	assert_v4(&b->servers[1].addr, "10.0.0.2", 8000);
	ck_assert_uint_eq(b->servers[1].weight, 1);
	ck_assert_int_eq(b->servers[1].backup, 0);
	ck_assert_int_eq(b->servers[1].send_proxy, PROXY_V2);
	ck_assert_int_eq(b->servers[1].line, 28);
	ck_assert_str_eq(b->servers[2].name, "spare");
	assert_v4(&b->servers[2].addr, "10.0.0.9", 8000);
	ck_assert_uint_eq(b->servers[2].weight, 1);
	ck_assert_int_eq(b->servers[2].backup, 1);
	ck_assert_int_eq(b->servers[2].send_proxy, PROXY_OFF);
	ck_assert_int_eq(b->servers[2].line, 29);
	config_free(cfg);
}
END_TEST

/* Every key set to something other than its default. */
static const char full_config[] =
    "[global]\n"
    "workers = 3\n"
    "dispatch = leastconn\n"
    "drain_timeout = 1500ms\n"
    "user = root\n"
    "log_level = debug\n"
    "log_file = /tmp/baton-test.log\n"
    "access_log = on\n"
    "pidfile = /tmp/baton-test.pid\n"
    "[stats]\n"						/* 10 */
    "listen = [::1]:9090\n"
    "[frontend web]\n"
    "listen = 127.0.0.1:8080\n"
    "listen = [::1]:8080\n"
    "listen = *:8081\n"					/* 15 */
    "backend = api\n"
    "timeout_idle = 2h\n"
    "max_connections = 1\n"
    "accept_proxy = any\n"
    "[backend app]\n"					/* 20 */
    "server = a1 127.0.0.1:8000\n"
    "[backend api]\n"
    "balance = source\n"
    "server = b1 127.0.0.1:9001 weight=256 send_proxy=off\n"
    "server = b2 [::1]:9002 backup weight=2\n"		/* 25 */
    "server = b3 localhost:9003 send_proxy=v1 backup\n"
    "connect_timeout = 100ms\n"
    "retries = 0\n"
    "check = tcp\n"
    "check_interval = 1m\n"				/* 30 */
    "check_timeout = 250ms\n"
    "rise = 1\n"
    "fall = 1000\n"
    "send_proxy = v2\n"
    "[frontend second]\n"				/* 35 */
    "listen = 127.0.0.1:8082\n"
    "backend = app\n";

START_TEST(test_full_config)
{
	struct config *cfg = load_ok(full_config);
	struct frontend_conf *f;
	struct backend_conf *b;
	struct server_conf *s;

	ck_assert_uint_eq(cfg->workers, 3);
	ck_assert_int_eq(cfg->dispatch, DISPATCH_LEASTCONN);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 1500);
	ck_assert_str_eq(cfg->user, "root");
	ck_assert_int_eq(cfg->log_level, LL_DEBUG);
	ck_assert_str_eq(cfg->log_file, "/tmp/baton-test.log");
	ck_assert_int_eq(cfg->access_log, 1);
	ck_assert_str_eq(cfg->pidfile, "/tmp/baton-test.pid");
	ck_assert_int_eq(cfg->has_stats, 1);
	ck_assert_str_eq(cfg->stats_listen, "[::1]:9090");
	assert_v6(&cfg->stats_addr, "::1", 9090);
	ck_assert_ptr_null(cfg->stats_token);

	ck_assert_uint_eq(cfg->nfrontends, 2);
	f = &cfg->frontends[0];
	ck_assert_str_eq(f->name, "web");
	ck_assert_int_eq(f->line, 12);
	ck_assert_uint_eq(f->nlistens, 3);
	ck_assert_str_eq(f->listens[0].text, "127.0.0.1:8080");
	ck_assert_int_eq(f->listens[0].line, 13);
	assert_v4(&f->listens[0].addr, "127.0.0.1", 8080);
	ck_assert_str_eq(f->listens[1].text, "[::1]:8080");
	ck_assert_int_eq(f->listens[1].line, 14);
	assert_v6(&f->listens[1].addr, "::1", 8080);
	ck_assert_str_eq(f->listens[2].text, "*:8081");
	ck_assert_int_eq(f->listens[2].line, 15);
	assert_v4(&f->listens[2].addr, "0.0.0.0", 8081);
	ck_assert_str_eq(f->backend_name, "api");
	ck_assert_int_eq(f->backend_line, 16);
	ck_assert_uint_eq(f->backend, 1);
	ck_assert_uint_eq(f->timeout_idle_ms, 2 * 3600 * 1000);
	ck_assert_uint_eq(f->max_connections, 1);
	ck_assert_int_eq(f->accept_proxy, PROXY_ANY);
	ck_assert_uint_eq(f->ntls, 0);

	f = &cfg->frontends[1];
	ck_assert_str_eq(f->name, "second");
	ck_assert_int_eq(f->line, 35);
	ck_assert_uint_eq(f->nlistens, 1);
	ck_assert_uint_eq(f->backend, 0);
	ck_assert_int_eq(f->backend_line, 37);
	ck_assert_uint_eq(f->timeout_idle_ms, 300000);
	ck_assert_uint_eq(f->max_connections, 10000);
	ck_assert_int_eq(f->accept_proxy, PROXY_OFF);

	ck_assert_uint_eq(cfg->nbackends, 2);
	b = &cfg->backends[0];
	ck_assert_str_eq(b->name, "app");
	ck_assert_int_eq(b->line, 20);
	ck_assert_uint_eq(b->nservers, 1);
	ck_assert_uint_eq(b->retries, 2);
	b = &cfg->backends[1];
	ck_assert_str_eq(b->name, "api");
	ck_assert_int_eq(b->line, 22);
	ck_assert_int_eq(b->balance, BALANCE_SOURCE);
	ck_assert_uint_eq(b->connect_timeout_ms, 100);
	ck_assert_uint_eq(b->retries, 0);
	ck_assert_int_eq(b->check, CHECK_TCP);
	ck_assert_uint_eq(b->check_interval_ms, 60000);
	ck_assert_uint_eq(b->check_timeout_ms, 250);
	ck_assert_uint_eq(b->rise, 1);
	ck_assert_uint_eq(b->fall, 1000);
	ck_assert_int_eq(b->send_proxy, PROXY_V2);
	ck_assert_uint_eq(b->nservers, 3);

	s = &b->servers[0];
	ck_assert_str_eq(s->name, "b1");
	assert_v4(&s->addr, "127.0.0.1", 9001);
	ck_assert_uint_eq(s->weight, 256);
	ck_assert_int_eq(s->backup, 0);
	/* An explicit send_proxy=off beats the backend's v2. */
	ck_assert_int_eq(s->send_proxy, PROXY_OFF);
	ck_assert_int_eq(s->line, 24);
	s = &b->servers[1];
	ck_assert_str_eq(s->name, "b2");
	ck_assert_str_eq(s->addr_text, "[::1]:9002");
	assert_v6(&s->addr, "::1", 9002);
	ck_assert_uint_eq(s->weight, 2);
	ck_assert_int_eq(s->backup, 1);
	/* Inherited, although the backend's key comes after the server. */
	ck_assert_int_eq(s->send_proxy, PROXY_V2);
	s = &b->servers[2];
	ck_assert_str_eq(s->name, "b3");
	ck_assert_str_eq(s->addr_text, "localhost:9003");
	ck_assert(s->addr.ss.ss_family == AF_INET ||
	    s->addr.ss.ss_family == AF_INET6);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&s->addr.ss)->sin_port),
	    9003);
	ck_assert_uint_eq(s->weight, 1);
	ck_assert_int_eq(s->backup, 1);
	ck_assert_int_eq(s->send_proxy, PROXY_V1);
	config_free(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *cfg = load_ok(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n");
	struct frontend_conf *f = &cfg->frontends[0];
	struct backend_conf *b = &cfg->backends[0];

	ck_assert_uint_eq(cfg->workers, cpu_count());
	ck_assert_int_eq(cfg->dispatch, DISPATCH_ROUNDROBIN);
	ck_assert_uint_eq(cfg->drain_timeout_ms, 30000);
	ck_assert_ptr_null(cfg->user);
	ck_assert_int_eq(cfg->log_level, LL_INFO);
	ck_assert_ptr_null(cfg->log_file);
	ck_assert_int_eq(cfg->access_log, 0);
	ck_assert_ptr_null(cfg->pidfile);
	ck_assert_int_eq(cfg->has_stats, 0);
	ck_assert_ptr_null(cfg->stats_listen);
	ck_assert_ptr_null(cfg->stats_token);

	ck_assert_int_eq(f->line, 1);
	ck_assert_int_eq(f->backend_line, 3);
	ck_assert_uint_eq(f->backend, 0);
	ck_assert_uint_eq(f->timeout_idle_ms, 5 * 60 * 1000);
	ck_assert_uint_eq(f->max_connections, 10000);
	ck_assert_uint_eq(f->ntls, 0);
	ck_assert_int_eq(f->accept_proxy, PROXY_OFF);

	ck_assert_int_eq(b->line, 4);
	ck_assert_int_eq(b->balance, BALANCE_ROUNDROBIN);
	ck_assert_uint_eq(b->connect_timeout_ms, 5000);
	ck_assert_uint_eq(b->retries, 2);
	ck_assert_int_eq(b->check, CHECK_OFF);
	ck_assert_uint_eq(b->check_interval_ms, 2000);
	ck_assert_uint_eq(b->check_timeout_ms, 1000);
	ck_assert_uint_eq(b->rise, 2);
	ck_assert_uint_eq(b->fall, 3);
	ck_assert_int_eq(b->send_proxy, PROXY_OFF);
	ck_assert_uint_eq(b->nservers, 1);
	ck_assert_uint_eq(b->servers[0].weight, 1);
	ck_assert_int_eq(b->servers[0].backup, 0);
	ck_assert_int_eq(b->servers[0].send_proxy, PROXY_OFF);
	ck_assert_int_eq(b->servers[0].line, 5);
	config_free(cfg);
}
END_TEST

START_TEST(test_send_proxy_inherited)
{
	struct config *cfg = load_ok(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "send_proxy = v1\n"
	    "server = a1 127.0.0.1:8000\n"
	    "server = a2 127.0.0.1:8001 send_proxy=v2\n"
	    "server = a3 127.0.0.1:8002 send_proxy=off\n");
	struct backend_conf *b = &cfg->backends[0];

	ck_assert_int_eq(b->send_proxy, PROXY_V1);
	ck_assert_int_eq(b->servers[0].send_proxy, PROXY_V1);
	ck_assert_int_eq(b->servers[1].send_proxy, PROXY_V2);
	ck_assert_int_eq(b->servers[2].send_proxy, PROXY_OFF);
	config_free(cfg);
}
END_TEST

START_TEST(test_indented_and_comments)
{
	struct config *cfg = load_ok(
	    "# a comment\n"
	    "; another\n"
	    "  [global]\n"
	    "    workers = 2   ; two\n"
	    "\tlog_level = error\n"
	    "[frontend web]   ; the site\n"
	    "listen = 127.0.0.1:8080 ; first\n"
	    "    listen = 127.0.0.1:8081\n"
	    "\t\tbackend = app ; the app\n"
	    "\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000 weight=2 ; primary\n"
	    "\tserver = a2 127.0.0.1:8001\n");
	struct frontend_conf *f = &cfg->frontends[0];
	struct backend_conf *b = &cfg->backends[0];

	/* Indented lines are keys, not continuations of the line before. */
	ck_assert_uint_eq(cfg->workers, 2);
	ck_assert_int_eq(cfg->log_level, LL_ERROR);
	ck_assert_uint_eq(f->nlistens, 2);
	ck_assert_str_eq(f->listens[0].text, "127.0.0.1:8080");
	ck_assert_str_eq(f->listens[1].text, "127.0.0.1:8081");
	ck_assert_int_eq(f->listens[1].line, 8);
	ck_assert_str_eq(f->backend_name, "app");
	ck_assert_int_eq(f->backend_line, 9);
	ck_assert_uint_eq(b->nservers, 2);
	ck_assert_uint_eq(b->servers[0].weight, 2);
	ck_assert_str_eq(b->servers[1].name, "a2");
	ck_assert_int_eq(b->servers[1].line, 13);
	config_free(cfg);
}
END_TEST

START_TEST(test_tls_pairs)
{
	struct config *cfg = load_ok(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8443\n"
	    "backend = app\n"
	    "tls_cert = a.pem\n"
	    "tls_key = a.key\n"
	    "tls_key = b.key\n"	/* a key first: its pair still forms */
	    "tls_cert = b.pem\n"
	    "tls_cert = c.pem\n"
	    "tls_key = c.key\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n");
	const struct frontend_conf *f = &cfg->frontends[0];

	ck_assert_uint_eq(f->ntls, 3);
	ck_assert_str_eq(f->tls_pairs[0].cert, "a.pem");
	ck_assert_str_eq(f->tls_pairs[0].key, "a.key");
	ck_assert_str_eq(f->tls_pairs[1].cert, "b.pem");
	ck_assert_str_eq(f->tls_pairs[1].key, "b.key");
	ck_assert_int_eq(f->tls_pairs[1].key_line, 6);
	ck_assert_str_eq(f->tls_pairs[2].cert, "c.pem");
	config_free(cfg);
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\ntls_cert = a.pem\ntls_key = a.key\n"
	    "tls_cert = b.pem\n[backend app]\nserver = a1 127.0.0.1:8000\n",
	    "t.ini:1: [frontend web] tls_cert and tls_key go together");
}
END_TEST

/* Dump CFG as INI and load it again. */
static struct config *
reload_dump(const struct config *cfg)
{
	struct config *again;
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(fp);
	config_dump_ini(fp, cfg);
	ck_assert_int_eq(fclose(fp), 0);
	again = load_ok(text);
	free(text);
	return again;
}

START_TEST(test_tls_client_ca)
{
	static const char head[] =
	    "[frontend web]\nlisten = 127.0.0.1:8443\nbackend = app\n"
	    "tls_cert = a.pem\ntls_key = a.key\n";
	static const char tail[] =
	    "[backend app]\nserver = a1 127.0.0.1:8000\n";
	char text[512];
	struct config *cfg, *again;

	/* tls_client_ca alone: required. */
	snprintf(text, sizeof(text), "%stls_client_ca = ca.pem\n%s", head,
	    tail);
	cfg = load_ok(text);
	ck_assert_str_eq(cfg->frontends[0].tls_client_ca, "ca.pem");
	ck_assert_int_eq(cfg->frontends[0].tls_client_ca_line, 6);
	ck_assert_int_eq(cfg->frontends[0].tls_verify, TLS_VERIFY_REQUIRED);
	again = reload_dump(cfg);
	ck_assert_str_eq(again->frontends[0].tls_client_ca, "ca.pem");
	ck_assert_int_eq(again->frontends[0].tls_verify, TLS_VERIFY_REQUIRED);
	config_free(again);
	config_free(cfg);
	/* optional, and none, read back as written. */
	for (int v = TLS_VERIFY_NONE; v <= TLS_VERIFY_OPTIONAL; v++) {
		snprintf(text, sizeof(text), "%stls_verify = %s\n"
		    "tls_client_ca = ca.pem\n%s", head,
		    config_tls_verify_name(v), tail);
		cfg = load_ok(text);
		ck_assert_int_eq(cfg->frontends[0].tls_verify, v);
		again = reload_dump(cfg);
		ck_assert_int_eq(again->frontends[0].tls_verify, v);
		config_free(again);
		config_free(cfg);
	}
	/* Without one: no client certificates. */
	snprintf(text, sizeof(text), "%s%s", head, tail);
	cfg = load_ok(text);
	ck_assert_ptr_null(cfg->frontends[0].tls_client_ca);
	ck_assert_int_eq(cfg->frontends[0].tls_verify, TLS_VERIFY_NONE);
	config_free(cfg);
	snprintf(text, sizeof(text), "%stls_verify = optional\n%s", head,
	    tail);
	EXPECT_ERRORS(text, "t.ini:6: [frontend web] tls_verify = optional "
	    "needs tls_client_ca");
	snprintf(text, sizeof(text), "%stls_verify = sometimes\n"
	    "tls_client_ca = ca.pem\n%s", head, tail);
	EXPECT_ERRORS(text, "t.ini:6: [frontend web] tls_verify: bad value "
	    "'sometimes' (expected none | optional | required)");
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8443\n"
	    "backend = app\ntls_client_ca = ca.pem\n"
	    "[backend app]\nserver = a1 127.0.0.1:8000\n",
	    "t.ini:4: [frontend web] tls_client_ca needs tls_cert and tls_key");
}
END_TEST

START_TEST(test_server_tls)
{
	struct config *cfg = load_ok(
	    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8443 tls\n"
	    "server = a2 127.0.0.1:8444 tls verify=/etc/ca.pem sni=b.example\n"
	    "server = a3 127.0.0.1:8445 tls verify=none weight=2\n"
	    "server = a4 127.0.0.1:8000\n"), *again;
	const struct server_conf *sv;

	for (int round = 0; round < 2; round++) {
		sv = cfg->backends[0].servers;
		ck_assert_int_eq(sv[0].tls, 1);
		ck_assert_ptr_null(sv[0].tls_verify);
		ck_assert_int_eq(sv[0].tls_noverify, 0);
		ck_assert_ptr_null(sv[0].tls_sni);
		ck_assert_str_eq(sv[1].tls_verify, "/etc/ca.pem");
		ck_assert_str_eq(sv[1].tls_sni, "b.example");
		ck_assert_int_eq(sv[2].tls_noverify, 1);
		ck_assert_ptr_null(sv[2].tls_verify);
		ck_assert_uint_eq(sv[2].weight, 2);
		ck_assert_int_eq(sv[3].tls, 0);
		/* The -T dump reads back the same. */
		again = reload_dump(cfg);
		config_free(cfg);
		cfg = again;
	}
	config_free(cfg);
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8080\n"
	    "backend = app\n[backend app]\n"
	    "server = a1 127.0.0.1:8443 sni=x.example\n",
	    "t.ini:5: [backend app] server: verify= and sni= need the tls "
	    "option");
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8080\n"
	    "backend = app\n[backend app]\n"
	    "server = a1 127.0.0.1:8443 tls sni=bad/name\n",
	    "t.ini:5: [backend app] server: bad sni 'bad/name'");
	EXPECT_ERRORS("[frontend web]\nlisten = 127.0.0.1:8080\n"
	    "backend = app\n[backend app]\n"
	    "server = a1 127.0.0.1:8443 tls verify=\n",
	    "t.ini:5: [backend app] server: unknown option 'verify='");
}
END_TEST

START_TEST(test_crlf)
{
	struct config *cfg = load_ok(
	    "[frontend web]\r\n"
	    "listen = 127.0.0.1:8080\r\n"
	    "backend = app\r\n"
	    "[backend app]\r\n"
	    "server = a1 127.0.0.1:8000 weight=4\r\n"
	    "connect_timeout = 3s\r\n");

	ck_assert_str_eq(cfg->frontends[0].backend_name, "app");
	ck_assert_uint_eq(cfg->backends[0].servers[0].weight, 4);
	ck_assert_uint_eq(cfg->backends[0].connect_timeout_ms, 3000);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_unknown_section)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = 2\n"
	    "[bogus]\n"
	    "foo = bar\n"		/* skipped with its section */
	    "[global extra]\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:3: unknown section [bogus]",
	    "t.ini:5: unknown section [global extra]");
}
END_TEST

START_TEST(test_err_unknown_key)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "wrokers = 2\n"
	    "[stats]\n"
	    "listen = 127.0.0.1:9090\n"
	    "tokn = x\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "listn = 127.0.0.1:8081\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "balanse = roundrobin\n",
	    "t.ini:2: [global] unknown key 'wrokers'",
	    "t.ini:5: [stats] unknown key 'tokn'",
	    "t.ini:9: [frontend web] unknown key 'listn'",
	    "t.ini:12: [backend app] unknown key 'balanse'");
}
END_TEST

START_TEST(test_err_duplicate_key)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = 2\n"
	    "workers = 3\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "retries = 1\n"
	    "retries = 1\n"
	    "[frontend two]\n"		/* a key per section, not per file */
	    "listen = 127.0.0.1:8081\n"
	    "backend = app\n",
	    "t.ini:3: [global] workers: duplicate key",
	    "t.ini:7: [frontend web] backend: duplicate key",
	    "t.ini:11: [backend app] retries: duplicate key");
}
END_TEST

START_TEST(test_err_bad_address)
{
	/* Literal addresses only: nothing here may reach a DNS server. */
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 10.0.0.300:8080\n"
	    "listen = [::1:8081\n"
	    "listen = :8082\n"
	    "listen = 127.0.0.1:8083\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 [fe80::zz]:8000\n"
	    "server = a2 8000\n"
	    "server = a3 [10.0.0.1]:8000\n"
	    "server = a4 127.0.0.1:8000\n",
	    "t.ini:2: [frontend web] listen: bad address '10.0.0.300:8080'",
	    "t.ini:3: [frontend web] listen: bad address '[::1:8081'",
	    "t.ini:4: [frontend web] listen: bad address ':8082'",
	    "t.ini:8: [backend app] server: bad address '[fe80::zz]:8000'",
	    "t.ini:9: [backend app] server: bad address '8000'",
	    "t.ini:10: [backend app] server: bad address '[10.0.0.1]:8000'");
}
END_TEST

START_TEST(test_err_bad_port)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:0\n"
	    "listen = 127.0.0.1:65536\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 10.0.0.1:99999\n"
	    "server = a2 10.0.0.2:http\n"
	    "server = a3 10.0.0.3:\n"
	    "server = a4 10.0.0.4:8000\n",
	    "t.ini:2: [frontend web] listen: bad address '127.0.0.1:0'",
	    "t.ini:3: [frontend web] listen: bad address '127.0.0.1:65536'",
	    "t.ini:7: [backend app] server: bad address '10.0.0.1:99999'",
	    "t.ini:8: [backend app] server: bad address '10.0.0.2:http'",
	    "t.ini:9: [backend app] server: bad address '10.0.0.3:'");
}
END_TEST

START_TEST(test_err_bad_duration)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "drain_timeout = soon\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "timeout_idle = 5 minutes\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "connect_timeout = 0ms\n"
	    "check_interval = -2s\n"
	    "check_timeout = 1.5s\n",
	    "t.ini:2: [global] drain_timeout: bad duration 'soon'",
	    "t.ini:6: [frontend web] timeout_idle: bad duration '5 minutes'",
	    "t.ini:9: [backend app] connect_timeout: bad duration '0ms'",
	    "t.ini:10: [backend app] check_interval: bad duration '-2s'",
	    "t.ini:11: [backend app] check_timeout: bad duration '1.5s'");
}
END_TEST

START_TEST(test_err_bad_number)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = 0\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "max_connections = lots\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000 weight=0\n"
	    "server = a2 127.0.0.1:8001 weight=257\n"
	    "retries = 17\n"
	    "rise = -1\n"
	    "fall = 3x\n"
	    "[frontend two]\n"
	    "listen = 127.0.0.1:8081\n"
	    "backend = app\n"
	    "max_connections = 0\n"
	    "[global]\n"
	    "workers = 257\n",
	    "t.ini:2: [global] workers: bad number '0'",
	    "t.ini:6: [frontend web] max_connections: bad number 'lots'",
	    "t.ini:8: [backend app] server: bad weight '0'",
	    "t.ini:9: [backend app] server: bad weight '257'",
	    "t.ini:10: [backend app] retries: bad number '17'",
	    "t.ini:11: [backend app] rise: bad number '-1'",
	    "t.ini:12: [backend app] fall: bad number '3x'",
	    "t.ini:16: [frontend two] max_connections: bad number '0'",
	    "t.ini:17: [global] duplicate section",
	    "t.ini:18: [global] workers: bad number '257'");
}
END_TEST

START_TEST(test_err_bad_enum)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "dispatch = random\n"
	    "log_level = verbose\n"
	    "access_log = yes\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "accept_proxy = v3\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000 send_proxy=any\n"
	    "balance = fastest\n"
	    "check = http\n"
	    "send_proxy = any\n",
	    "t.ini:2: [global] dispatch: bad value 'random'",
	    "t.ini:3: [global] log_level: bad value 'verbose'",
	    "t.ini:4: [global] access_log: bad value 'yes'",
	    "t.ini:8: [frontend web] accept_proxy: bad value 'v3'",
	    "t.ini:10: [backend app] server: bad send_proxy 'any'",
	    "t.ini:11: [backend app] balance: bad value 'fastest'",
	    "t.ini:12: [backend app] check: bad value 'http'",
	    "t.ini:13: [backend app] send_proxy: bad value 'any'");
}
END_TEST

START_TEST(test_io_uring_modes)
{
	static const char *const words[] = { "off", "on", "auto" };
	static const int modes[] = { IO_URING_OFF, IO_URING_ON,
	    IO_URING_AUTO };
	static const char tail[] = "[frontend web]\nlisten = 127.0.0.1:8080\n"
	    "backend = app\n[backend app]\nserver = a1 127.0.0.1:8000\n";
	char text[512];
	struct config *cfg;

	cfg = load_ok(tail);
	ck_assert_int_eq(cfg->io_uring, IO_URING_AUTO);	/* the default */
	config_free(cfg);
	for (size_t i = 0; i < 3; i++) {
		snprintf(text, sizeof(text), "[global]\nio_uring = %s\n%s",
		    words[i], tail);
		cfg = load_ok(text);
		ck_assert_int_eq(cfg->io_uring, modes[i]);
		ck_assert_str_eq(config_io_uring_name(cfg->io_uring),
		    words[i]);
		config_free(cfg);
	}
	EXPECT_ERRORS(
	    "[global]\n"
	    "io_uring = yes\n"
	    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n"
	    "[backend app]\nserver = a1 127.0.0.1:8000\n",
	    "t.ini:2: [global] io_uring: bad value 'yes'");
}
END_TEST

START_TEST(test_err_bad_server)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1\n"
	    "server = a2 127.0.0.1:8000 heavy\n"
	    "server = a3 127.0.0.1:8000 weight\n"
	    "server = a4 127.0.0.1:8000\n"
	    "server = a4 127.0.0.1:8001\n"
	    "server =\n",
	    "t.ini:5: [backend app] server: expected NAME ADDRESS",
	    "t.ini:6: [backend app] server: unknown option 'heavy'",
	    "t.ini:7: [backend app] server: unknown option 'weight'",
	    "t.ini:9: [backend app] server: duplicate server name 'a4'",
	    "t.ini:10: [backend app] server: expected NAME ADDRESS");
}
END_TEST

START_TEST(test_err_empty_value_and_user)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "user = no-such-user-baton-test\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend =\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:2: [global] user: unknown user 'no-such-user-baton-test'",
	    "t.ini:5: [frontend web] backend: empty value",
	    "t.ini:3: [frontend web] no backend");
}
END_TEST

START_TEST(test_err_missing_backend)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "timeout_idle = 1m\n"
	    "backend = nope\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:4: [frontend web] backend: no backend named 'nope'");
}
END_TEST

START_TEST(test_err_backend_without_server)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "balance = roundrobin\n"
	    "[backend spare]\n"
	    "server = s1 127.0.0.1:8001\n"
	    "[backend empty]\n",
	    "t.ini:4: [backend app] no server",
	    "t.ini:8: [backend empty] no server");
}
END_TEST

START_TEST(test_err_frontend_without_listen)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "backend = app\n"
	    "[frontend api]\n"
	    "listen = 127.0.0.1:8081\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "[frontend none]\n",
	    "t.ini:1: [frontend web] no listen address",
	    "t.ini:8: [frontend none] no listen address",
	    "t.ini:8: [frontend none] no backend");
}
END_TEST

START_TEST(test_err_no_frontend)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = 1\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:4: no [frontend NAME] section");
}
END_TEST

START_TEST(test_err_duplicate_listen)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 0.0.0.0:8080\n"
	    "listen = *:8080\n"
	    "backend = app\n"
	    "[frontend api]\n"
	    "listen = [::1]:8081\n"
	    "listen = 127.0.0.1:8081\n"	/* another family: fine */
	    "backend = app\n"
	    "[frontend admin]\n"
	    "listen = [0:0::1]:8081\n"
	    "listen = 127.0.0.1:8082\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:3: [frontend web] listen: '*:8080' is already used",
	    "t.ini:10: [frontend admin] listen: '[0:0::1]:8081' is already "
	    "used");
}
END_TEST

START_TEST(test_err_duplicate_names)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8081\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:6: [frontend web] duplicate frontend name 'web'",
	    "t.ini:9: [backend app] duplicate backend name 'app'");
}
END_TEST

START_TEST(test_err_tls_pair)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "tls_cert = /etc/baton/site.pem\n"
	    "[frontend api]\n"
	    "listen = 127.0.0.1:8443\n"
	    "backend = app\n"
	    "tls_key = /etc/baton/site.key\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:1: [frontend web] tls_cert and tls_key go together",
	    "t.ini:5: [frontend api] tls_cert and tls_key go together");
}
END_TEST

START_TEST(test_err_key_outside_section)
{
	EXPECT_ERRORS(
	    "; leading comment\n"
	    "workers = 2\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:2: 'workers' outside of any section");
}
END_TEST

START_TEST(test_err_section_header)
{
	EXPECT_ERRORS(
	    "[frontend web\n"
	    "listen = 127.0.0.1:8080\n"	/* skipped with the bad section */
	    "[frontend]\n"
	    "[backend a b]\n"
	    "[frontend we/b]\n"
	    "listen = 127.0.0.1:8081\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:1: malformed section header",
	    "t.ini:3: [frontend] expected [frontend NAME]",
	    "t.ini:4: [backend a b] expected [backend NAME]",
	    "t.ini:5: [frontend we/b] bad name 'we/b'");
}
END_TEST

START_TEST(test_err_syntax)
{
	EXPECT_ERRORS(
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "this line has no separator\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:4: [frontend web] syntax error");
}
END_TEST

/* "[frontend web]\n...tls_cert = /aaa...\n": the tls line is n long. */
static char *
long_line_config(size_t n, const char *after)
{
	static const char head[] =
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "tls_key = /k\n"
	    "tls_cert = /";
	static const char tail[] =
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n";
	size_t hl = strlen(head);
	size_t fill = n - strlen(strrchr(head, '\n') + 1);
	char *s;

	s = malloc(hl + fill + 1 + strlen(after) + sizeof(tail));
	ck_assert_ptr_nonnull(s);
	memcpy(s, head, hl);
	memset(s + hl, 'a', fill);
	s[hl + fill] = '\n';
	strcpy(s + hl + fill + 1, after);
	strcat(s, tail);
	return s;
}

START_TEST(test_longest_line)
{
	char *text = long_line_config(LONGEST_LINE, "");
	struct config *cfg = load_ok(text);

	ck_assert_uint_eq(cfg->frontends[0].ntls, 1);
	ck_assert_uint_eq(strlen(cfg->frontends[0].tls_pairs[0].cert),
	    LONGEST_LINE - strlen("tls_cert = "));
	ck_assert_int_eq(cfg->backends[0].line, 6);
	config_free(cfg);
	free(text);
}
END_TEST

START_TEST(test_err_line_too_long)
{
	char *text;

	/*
	 * One past the limit, then far past: no tail is read as a line, and
	 * the cut line sets nothing (so tls_key is alone).
	 */
	text = long_line_config(LONGEST_LINE + 1, "bogus = 1\n");
	EXPECT_ERRORS(text,
	    "t.ini:5: [frontend web] line too long",
	    "t.ini:6: [frontend web] unknown key 'bogus'",
	    "t.ini:1: [frontend web] tls_cert and tls_key go together");
	free(text);
	text = long_line_config(1000, "bogus = 1\n");
	EXPECT_ERRORS(text,
	    "t.ini:5: [frontend web] line too long",
	    "t.ini:6: [frontend web] unknown key 'bogus'",
	    "t.ini:1: [frontend web] tls_cert and tls_key go together");
	free(text);
}
END_TEST

START_TEST(test_err_all_reported_in_order)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = lots\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:99999\n"
	    "backend = nope\n"
	    "timeout_idle = soon\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000 weight=0\n"
	    "balance = fastest\n"
	    "[mystery]\n"
	    "[backend empty]\n",
	    "t.ini:2: [global] workers: bad number 'lots'",
	    "t.ini:4: [frontend web] listen: bad address '127.0.0.1:99999'",
	    "t.ini:6: [frontend web] timeout_idle: bad duration 'soon'",
	    "t.ini:8: [backend app] server: bad weight '0'",
	    "t.ini:9: [backend app] balance: bad value 'fastest'",
	    "t.ini:10: unknown section [mystery]",
	    "t.ini:11: [backend empty] no server",
	    "t.ini:3: [frontend web] no listen address",
	    "t.ini:5: [frontend web] backend: no backend named 'nope'");
}
END_TEST

START_TEST(test_stats)
{
	struct config *cfg;

	cfg = load_ok(
	    "[stats]\n"
	    "listen = *:9090\n"
	    "token = abc;def\n"		/* ';' after a blank starts a comment */
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n");
	ck_assert_int_eq(cfg->has_stats, 1);
	assert_v4(&cfg->stats_addr, "0.0.0.0", 9090);
	ck_assert_str_eq(cfg->stats_token, "abc;def");
	config_free(cfg);

	EXPECT_ERRORS(
	    "[stats]\n"
	    "listen = 127.0.0.1:8080\n"
	    "token =\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n"
	    "[stats]\n",
	    "t.ini:3: [stats] token: empty value",
	    "t.ini:9: [stats] duplicate section",
	    "t.ini:5: [frontend web] listen: '127.0.0.1:8080' is the stats "
	    "address");
}
END_TEST

/* The contract: every error says FILE:LINE. */
START_TEST(test_err_stats_without_listen)
{
	EXPECT_ERRORS(
	    "[global]\n"
	    "workers = 1\n"
	    "[stats]\n"
	    "token = x\n"
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n",
	    "t.ini:3: [stats] ");
}
END_TEST

START_TEST(test_errlist_appends)
{
	struct errlist errs;
	struct config *cfg;
	const char *bad = "[frontend web]\nlisten = 1.2.3.4:0\n";
	const char *good =
	    "[frontend web]\n"
	    "listen = 127.0.0.1:8080\n"
	    "backend = app\n"
	    "[backend app]\n"
	    "server = a1 127.0.0.1:8000\n";

	memset(&errs, 0, sizeof(errs));
	/* bad port, then no listen address and no backend */
	ck_assert_ptr_null(config_load_string(bad, "one.ini", &errs));
	ck_assert_uint_eq(errs.n, 3);
	/* Earlier errors in the list do not fail a good file... */
	cfg = config_load_string(good, "two.ini", &errs);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(errs.n, 3);
	config_free(cfg);
	/* ...and a bad one appends its own, with its name. */
	ck_assert_ptr_null(config_load_string(bad, "three.ini", &errs));
	ck_assert_uint_eq(errs.n, 6);
	ck_assert_str_eq(errs.msgs[0],
	    "one.ini:2: [frontend web] listen: bad address '1.2.3.4:0' "
	    "(port must be 1..65535)");
	ck_assert_str_eq(errs.msgs[3],
	    "three.ini:2: [frontend web] listen: bad address '1.2.3.4:0' "
	    "(port must be 1..65535)");
	errlist_free(&errs);
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_ptr_null(errs.msgs);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/check_config.XXXXXX";
	struct errlist errs;
	struct config *cfg;
	char *text;
	FILE *fp;
	int fd;

	/* The file reader counts lines and cuts long ones like the other. */
	text = long_line_config(LONGEST_LINE + 50, "tls_key = /k2\n");
	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_ne(fputs(text, fp), EOF);
	ck_assert_int_eq(fclose(fp), 0);
	free(text);

	memset(&errs, 0, sizeof(errs));
	cfg = config_load(path, &errs);
	unlink(path);
	ck_assert_ptr_null(cfg);
	/* The cut line set nothing: tls_cert is missing (for both keys). */
	ck_assert_msg(errs.n == 2, "errors:%s", joined(&errs));
	ck_assert_int_eq(strncmp(errs.msgs[0], path, strlen(path)), 0);
	ck_assert_str_eq(errs.msgs[0] + strlen(path),
	    ":5: [frontend web] line too long (at most 198 characters)");
	ck_assert_str_eq(errs.msgs[1] + strlen(path),
	    ":1: [frontend web] tls_cert and tls_key go together");
	errlist_free(&errs);
}
END_TEST

START_TEST(test_load_file_ok)
{
	char path[] = "/tmp/check_config.XXXXXX";
	struct errlist errs;
	struct config *cfg;
	FILE *fp;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_ne(fputs(design_example, fp), EOF);
	ck_assert_int_eq(fclose(fp), 0);
	memset(&errs, 0, sizeof(errs));
	cfg = config_load(path, &errs);
	unlink(path);
	ck_assert_msg(cfg != NULL, "rejected:%s", joined(&errs));
	ck_assert_str_eq(cfg->path, path);
	ck_assert_int_eq(cfg->backends[0].servers[2].line, 29);
	ck_assert_uint_eq(cfg->backends[0].servers[0].weight, 3);
	config_free(cfg);
}
END_TEST

START_TEST(test_load_missing_file)
{
	struct errlist errs;

	memset(&errs, 0, sizeof(errs));
	ck_assert_ptr_null(config_load("/nonexistent/baton/proxy.ini", &errs));
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msgs[0],
	    "/nonexistent/baton/proxy.ini: No such file or directory");
	errlist_free(&errs);
}
END_TEST

START_TEST(test_duration)
{
	static const struct {
		const char	*s;
		unsigned	 ms;
	} good[] = {
		{ "0", 0 }, { "5", 5000 }, { "30s", 30000 }, { "1s", 1000 },
		{ "250ms", 250 }, { "0ms", 0 }, { "5m", 300000 },
		{ "2h", 7200000 }, { "007s", 7000 },
		{ "604800", 604800000 }, { "604800000ms", 604800000 },
		{ "10080m", 604800000 }, { "168h", 604800000 },
	};
	static const char *const bad[] = {
		"", "s", "ms", "-1", "-1s", "+5s", " 5s", "5s ", "5 s", "1.5s",
		"5x", "5sec", "5S", "5M", "5d", "0x10", "abc", "5ms5",
		"604801", "604800001ms", "10081m", "169h",
		"4294967296", "18446744073709551616",
		"99999999999999999999999h",
	};
	unsigned ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		ck_assert_msg(config_parse_duration(good[i].s, &ms) == 0,
		    "'%s' rejected", good[i].s);
		ck_assert_msg(ms == good[i].ms, "'%s' gave %u ms, not %u",
		    good[i].s, ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		ck_assert_msg(config_parse_duration(bad[i], &ms) == -1,
		    "'%s' accepted (%u ms)", bad[i], ms);
		ck_assert_uint_eq(ms, 12345);
	}
}
END_TEST

START_TEST(test_balance_name)
{
	ck_assert_str_eq(config_balance_name(BALANCE_ROUNDROBIN), "roundrobin");
	ck_assert_str_eq(config_balance_name(BALANCE_LEASTCONN), "leastconn");
	ck_assert_str_eq(config_balance_name(BALANCE_SOURCE), "source");
	ck_assert_str_eq(config_balance_name(BALANCE_RANDOM), "random");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_design_example);
	tcase_add_test(tc, test_full_config);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_send_proxy_inherited);
	tcase_add_test(tc, test_indented_and_comments);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_tls_pairs);
	tcase_add_test(tc, test_tls_client_ca);
	tcase_add_test(tc, test_server_tls);
	tcase_add_test(tc, test_longest_line);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_errlist_appends);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_file_ok);
	tcase_add_test(tc, test_load_missing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_err_unknown_section);
	tcase_add_test(tc, test_err_unknown_key);
	tcase_add_test(tc, test_err_duplicate_key);
	tcase_add_test(tc, test_err_bad_address);
	tcase_add_test(tc, test_err_bad_port);
	tcase_add_test(tc, test_err_bad_duration);
	tcase_add_test(tc, test_err_bad_number);
	tcase_add_test(tc, test_err_bad_enum);
	tcase_add_test(tc, test_io_uring_modes);
	tcase_add_test(tc, test_err_bad_server);
	tcase_add_test(tc, test_err_empty_value_and_user);
	tcase_add_test(tc, test_err_missing_backend);
	tcase_add_test(tc, test_err_backend_without_server);
	tcase_add_test(tc, test_err_frontend_without_listen);
	tcase_add_test(tc, test_err_no_frontend);
	tcase_add_test(tc, test_err_duplicate_listen);
	tcase_add_test(tc, test_err_duplicate_names);
	tcase_add_test(tc, test_err_tls_pair);
	tcase_add_test(tc, test_err_key_outside_section);
	tcase_add_test(tc, test_err_section_header);
	tcase_add_test(tc, test_err_syntax);
	tcase_add_test(tc, test_err_line_too_long);
	tcase_add_test(tc, test_err_all_reported_in_order);
	tcase_add_test(tc, test_err_stats_without_listen);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_balance_name);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
