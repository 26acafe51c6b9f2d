/* check_srvset.c -- runtime servers: the set, the API's requests, and
 * their channel record */
#include "ac_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "channel.h"
#include "config_helpers.h"
#include "srvset.h"

static const char base_ini[] =
    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n"
    "[backend app]\nserver = a1 10.0.0.1:80\nserver = a2 10.0.0.2:80\n"
    "[backend db]\nsend_proxy = v1\nserver = d1 10.0.1.1:5432 weight=4\n";

static struct config *
load_base(void)
{
	struct errlist errs;
	struct config *cfg = load(base_ini, &errs);

	ck_assert_msg(cfg != NULL, "%s", joined(&errs));
	errlist_free(&errs);
	return cfg;
}

static struct server_def
def(const char *name, const char *addr)
{
	struct server_def d;
	char err[64];

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", name);
	ck_assert_int_eq(addr_parse(addr, 0, &d.addr, err, sizeof(err)), 0);
	d.weight = 2;
	d.send_proxy = -1;
	d.origin = ORIGIN_API;
	return d;
}

START_TEST(test_flat_indices)
{
	struct config *cfg = load_base();

	ck_assert_uint_eq(cfg->nservers, 3);
	ck_assert_uint_eq(cfg->backends[0].servers[1].flat, 1);
	ck_assert_uint_eq(cfg->backends[1].servers[0].flat, 2);
	ck_assert_uint_eq(cfg->backends[1].servers[0].file_weight, 4);
	config_free(cfg);
}
END_TEST

START_TEST(test_add_takes_next_flat_index)
{
	struct config *cfg = load_base();
	struct server_def d = def("n1", "10.0.0.9:81");
	struct server_conf *s, *a1 = &cfg->backends[0].servers[0];
	size_t b, j;

	/* Added to the first backend, after every file server. */
	s = srvset_add(cfg, 0, &d);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->flat, 3);
	ck_assert_uint_eq(cfg->nservers, 4);
	ck_assert_uint_eq(cfg->backends[0].nservers, 3);
	ck_assert_str_eq(s->addr_text, "10.0.0.9:81");
	ck_assert_uint_eq(s->weight, 2);
	ck_assert_int_eq(s->send_proxy, PROXY_OFF);	/* the backend's */
	ck_assert_int_eq(s->origin, ORIGIN_API);
	/* The others did not move. */
	ck_assert_ptr_eq(a1, &cfg->backends[0].servers[0]);
	ck_assert_int_eq(config_server_at(cfg, 3, &b, &j), 0);
	ck_assert_uint_eq(b, 0);
	ck_assert_uint_eq(j, 2);
	ck_assert_int_eq(config_server_at(cfg, 2, &b, &j), 0);
	ck_assert_uint_eq(b, 1);
	ck_assert_int_eq(config_server_at(cfg, 4, &b, &j), -1);
	/* The db backend's default send_proxy. */
	d = def("d2", "[::1]:5432");
	s = srvset_add(cfg, 1, &d);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->send_proxy, PROXY_V1);
	ck_assert_str_eq(s->addr_text, "[::1]:5432");
	ck_assert_uint_eq(s->flat, 4);
	config_free(cfg);
}
END_TEST

START_TEST(test_add_existing_refused_removed_comes_back)
{
	struct config *cfg = load_base();
	struct server_def d = def("a2", "10.0.0.7:80");
	struct server_conf *s;

	errno = 0;
	ck_assert_ptr_null(srvset_add(cfg, 0, &d));
	ck_assert_int_eq(errno, EEXIST);
	srvset_remove(&cfg->backends[0].servers[1]);
	ck_assert_int_eq(srvset_admitting(&cfg->backends[0].servers[1]), 0);
	s = srvset_add(cfg, 0, &d);
	ck_assert_ptr_eq(s, &cfg->backends[0].servers[1]);
	ck_assert_uint_eq(s->flat, 1);
	ck_assert_uint_eq(cfg->nservers, 3);
	ck_assert_int_eq(s->removed, 0);
	ck_assert_str_eq(s->addr_text, "10.0.0.7:80");
	ck_assert_int_eq(srvset_admitting(s), 1);
	s->admin = ADMIN_DRAIN;
	ck_assert_int_eq(srvset_admitting(s), 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_backend_full)
{
	struct config *cfg = load_base();
	char name[16];

	for (int i = 0; i < CONFIG_MAX_SERVERS - 2; i++) {
		struct server_def d = def("x", "10.1.0.1:80");
		snprintf(name, sizeof(name), "x%d", i);
		snprintf(d.name, sizeof(d.name), "%s", name);
		ck_assert_ptr_nonnull(srvset_add(cfg, 0, &d));
	}
	struct server_def d = def("one-more", "10.1.0.1:80");
	errno = 0;
	ck_assert_ptr_null(srvset_add(cfg, 0, &d));
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(cfg->backends[0].nservers, CONFIG_MAX_SERVERS);
	config_free(cfg);
}
END_TEST

START_TEST(test_names)
{
	char n63[64], n64[65];

	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	ck_assert_int_eq(srvset_valid_name("web-1.a_b"), 1);
	ck_assert_int_eq(srvset_valid_name(n63), 1);
	ck_assert_int_eq(srvset_valid_name(n64), 0);
	ck_assert_int_eq(srvset_valid_name(""), 0);
	ck_assert_int_eq(srvset_valid_name("a b"), 0);
	ck_assert_int_eq(srvset_valid_name("a/b"), 0);
}
END_TEST

/* A definition through the channel's encoder and decoder, and back. */
START_TEST(test_srvdef_roundtrip)
{
	struct config *cfg = load_base();
	struct server_def d = def("n1", "[2001:db8::1]:8443"), back;
	struct chan_srvdef rec;
	struct chan_msg m;
	uint64_t buf[64];
	char err[128];
	size_t len;
	struct server_conf *s;

	d.backup = 1;
	d.max_connections = 77;
	d.admin = ADMIN_MAINT;
	s = srvset_add(cfg, 1, &d);
	ck_assert_ptr_nonnull(s);
	srvset_to_chan(s, 1, &rec);
	len = chan_encode(buf, sizeof(buf), CHAN_SRVDEF, &rec, 1);
	ck_assert_uint_eq(len, sizeof(struct chan_hdr) + sizeof(rec));
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(m.type, CHAN_SRVDEF);
	ck_assert_uint_eq(m.srvdefs[0].backend, 1);
	ck_assert_uint_eq(m.srvdefs[0].server, s->flat);
	ck_assert_int_eq(srvset_from_chan(&m.srvdefs[0], &back), 0);
	ck_assert_str_eq(back.name, "n1");
	ck_assert_int_eq(addr_equal(&back.addr, &d.addr), 1);
	ck_assert_uint_eq(back.weight, 2);
	ck_assert_int_eq(back.backup, 1);
	ck_assert_uint_eq(back.max_connections, 77);
	ck_assert_int_eq(back.send_proxy, PROXY_V1);
	ck_assert_int_eq(back.admin, ADMIN_MAINT);
	config_free(cfg);
}
END_TEST

/* Every field of a definition is checked on arrival. */
START_TEST(test_srvdef_rejects)
{
	struct chan_srvdef good, r;
	struct chan_msg m;
	uint64_t buf[64];
	char err[128];
	size_t len;

	memset(&good, 0, sizeof(good));
	good.weight = 1;
	good.family = AF_INET;
	good.port = htons(80);
	strcpy(good.name, "ok");
	len = chan_encode(buf, sizeof(buf), CHAN_SRVDEF, &good, 1);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), 0);
	for (int i = 0; i < 12; i++) {
		r = good;
		switch (i) {
		case 0: r.weight = 0; break;
		case 1: r.weight = CONFIG_MAX_WEIGHT + 1; break;
		case 2: r.family = AF_UNIX; break;
		case 3: r.port = 0; break;
		case 4: r.backup = 2; break;
		case 5: r.send_proxy = PROXY_ANY; break;
		case 6: r.admin = ADMIN_MAINT + 1; break;
		case 7: r.name[0] = '\0'; break;
		case 8: memset(r.name, 'a', sizeof(r.name)); break;
		case 9: r.name[5] = 'x'; break;	/* after its NUL */
		case 10: strcpy(r.name, "a b"); break;
		case 11: r.pad = 1; break;
		}
		len = chan_encode(buf, sizeof(buf), CHAN_SRVDEF, &r, 1);
		ck_assert_int_eq(chan_decode(buf, len, 0, &m, err,
		    sizeof(err)), -1);
	}
	/* With a descriptor, or cut short: refused too. */
	len = chan_encode(buf, sizeof(buf), CHAN_SRVDEF, &good, 1);
	ck_assert_int_eq(chan_decode(buf, len, 1, &m, err, sizeof(err)), -1);
	ck_assert_int_eq(chan_decode(buf, len - 1, 0, &m, err, sizeof(err)),
	    -1);
}
END_TEST

START_TEST(test_server_state_rejects)
{
	struct chan_server s;
	struct chan_msg m;
	uint64_t buf[8];
	char err[128];
	size_t len;

	memset(&s, 0, sizeof(s));
	s.weight = 3;
	s.admin = ADMIN_DRAIN;
	len = chan_encode(buf, sizeof(buf), CHAN_SERVER, &s, 1);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m.servers[0].admin, ADMIN_DRAIN);
	s.weight = 0;
	len = chan_encode(buf, sizeof(buf), CHAN_SERVER, &s, 1);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), -1);
	s.weight = 1;
	s.removed = 2;
	len = chan_encode(buf, sizeof(buf), CHAN_SERVER, &s, 1);
	ck_assert_int_eq(chan_decode(buf, len, 0, &m, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_api_path)
{
	struct api_req r;

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(api_path("/api/backends/app/servers/a1", &r), 0);
	ck_assert_str_eq(r.backend, "app");
	ck_assert_str_eq(r.server, "a1");
	ck_assert_int_eq(api_path("/api/backends/app/servers/", &r), -1);
	ck_assert_int_eq(api_path("/api/backends//servers/a1", &r), -1);
	ck_assert_int_eq(api_path("/api/backends/app/servers/a/b", &r), -1);
	ck_assert_int_eq(api_path("/api/backends/app", &r), -1);
	ck_assert_int_eq(api_path("/stats", &r), -1);
	ck_assert_int_eq(api_path(NULL, &r), -1);
}
END_TEST

static int
parse(int op, const char *body, struct api_req *r, char *err)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	strcpy(r->server, "n1");
	return api_parse(r, body, strlen(body), err, 128);
}

START_TEST(test_api_parse)
{
	struct api_req r;
	char err[128];

	ck_assert_int_eq(parse(API_SET, "{\"state\":\"drain\",\"weight\":2}",
	    &r, err), 0);
	ck_assert_int_eq(r.has_state, 1);
	ck_assert_int_eq(r.state, ADMIN_DRAIN);
	ck_assert_int_eq(r.has_weight, 1);
	ck_assert_uint_eq(r.weight, 2);
	ck_assert_int_eq(parse(API_SET, "{\"state\":\"maint\"}", &r, err), 0);
	ck_assert_int_eq(r.has_weight, 0);
	ck_assert_int_eq(parse(API_SET, "{}", &r, err), -1);
	ck_assert_int_eq(parse(API_SET, "{\"address\":\"1.2.3.4:5\"}", &r,
	    err), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown field"));
	ck_assert_int_eq(parse(API_SET, "{\"weight\":2.5}", &r, err), -1);
	ck_assert_int_eq(parse(API_SET, "{\"weight\":-1}", &r, err), -1);
	ck_assert_int_eq(parse(API_SET, "nul", &r, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad JSON"));

	ck_assert_int_eq(parse(API_ADD, "{\"address\":\"[::1]:9000\","
	    "\"backup\":true,\"send_proxy\":\"v2\",\"max_connections\":9}",
	    &r, err), 0);
	ck_assert_str_eq(r.def.name, "n1");
	ck_assert_int_eq(r.def.backup, 1);
	ck_assert_int_eq(r.def.send_proxy, PROXY_V2);
	ck_assert_uint_eq(r.def.max_connections, 9);
	ck_assert_uint_eq(r.def.weight, 1);
	ck_assert_int_eq(r.def.admin, ADMIN_READY);
	ck_assert_int_eq(r.def.origin, ORIGIN_API);
	ck_assert_int_eq(parse(API_ADD, "{\"weight\":3}", &r, err), -1);
	ck_assert_int_eq(parse(API_ADD, "{\"address\":\"example.org:80\"}",
	    &r, err), -1);

	ck_assert_int_eq(parse(API_REMOVE, "", &r, err), 0);
	ck_assert_int_eq(parse(API_REMOVE, "{}", &r, err), 0);
	ck_assert_int_eq(parse(API_REMOVE, "{\"state\":\"drain\"}", &r, err),
	    -1);
}
END_TEST

START_TEST(test_api_message)
{
	char *s = api_message(0, "quote \" and \\ here");

	ck_assert_str_eq(s, "{\"error\":\"quote \\\" and \\\\ here\"}");
	free(s);
	s = api_message(1, "done");
	ck_assert_str_eq(s, "{\"ok\":\"done\"}");
	free(s);
}
END_TEST

/* A reload: runtime changes carried over by name, the file winning. */
START_TEST(test_carry)
{
	static const char changed[] =
	    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n"
	    "[backend app]\nserver = a1 10.0.0.1:80\n"
	    "server = a2 10.0.0.2:80 weight=2\nserver = n2 10.0.0.8:80\n"
	    "[backend db]\nserver = d1 10.0.1.1:5432 weight=4\n";
	struct config *old = load_base(), *same = load_base(), *cfg;
	struct server_def d1 = def("n1", "10.0.0.9:81");
	struct server_def d2 = def("n2", "10.0.0.10:81");
	struct server_conf *s;
	struct errlist errs;
	int j;

	old->backends[0].servers[0].admin = ADMIN_DRAIN;
	old->backends[0].servers[1].weight = 7;
	old->backends[1].servers[0].removed = 1;
	ck_assert_ptr_nonnull(srvset_add(old, 0, &d1));
	ck_assert_ptr_nonnull(s = srvset_add(old, 0, &d2));
	s->weight = 9;
	ck_assert_ptr_nonnull(s = srvset_add(old, 1, &d1));
	srvset_remove(s);		/* removed: not carried */

	ck_assert_int_eq(srvset_carry(old, same), 0);
	ck_assert_int_eq(same->backends[0].servers[0].admin, ADMIN_DRAIN);
	ck_assert_uint_eq(same->backends[0].servers[1].weight, 7);
	ck_assert_int_eq(same->backends[1].servers[0].removed, 1);
	ck_assert_uint_eq(same->backends[0].nservers, 4);
	ck_assert_uint_eq(same->backends[1].nservers, 1);
	j = srvset_server(&same->backends[0], "n2");
	ck_assert_int_eq(j, 3);
	ck_assert_uint_eq(same->backends[0].servers[j].weight, 9);
	ck_assert_uint_eq(same->backends[0].servers[j].flat, 4);
	ck_assert_int_eq(same->backends[0].servers[j].origin, ORIGIN_API);
	ck_assert_uint_eq(same->nservers, 5);

	/* a2 changed in the file, n2 now in it: the file wins for both. */
	cfg = load(changed, &errs);
	ck_assert_msg(cfg != NULL, "%s", joined(&errs));
	errlist_free(&errs);
	ck_assert_int_eq(srvset_carry(old, cfg), 0);
	ck_assert_int_eq(cfg->backends[0].servers[0].admin, ADMIN_DRAIN);
	ck_assert_uint_eq(cfg->backends[0].servers[1].weight, 2);
	j = srvset_server(&cfg->backends[0], "n2");
	ck_assert_str_eq(cfg->backends[0].servers[j].addr_text, "10.0.0.8:80");
	ck_assert_int_eq(cfg->backends[0].servers[j].origin, ORIGIN_FILE);
	ck_assert_int_ne(srvset_server(&cfg->backends[0], "n1"), -1);
	ck_assert_uint_eq(cfg->backends[0].nservers, 4);
	config_free(old);
	config_free(same);
	config_free(cfg);
}
END_TEST

/* The keys of DNS discovery: good ones parsed, bad ones with a line. */
START_TEST(test_dns_keys)
{
	static const char good[] =
	    "[global]\nresolve_interval = 2s\n"
	    "resolvers = 127.0.0.1:5353, [::1]:53\n"
	    "[frontend web]\nlisten = 127.0.0.1:8080\nbackend = app\n"
	    "[backend app]\nserver = web web.example.test:8080 resolve "
	    "weight=3 backup\nserver = a1 10.0.0.1:80\n"
	    "[backend srv]\ndiscover = dns-srv:_app._tcp.example.test\n"
	    "[frontend f2]\nlisten = 127.0.0.1:8081\nbackend = srv\n";
	static const char *const bad[] = {
	    "[global]\nresolve_interval = 0s\n",
	    "[global]\nresolve_interval = 500ms\n",
	    "[global]\nresolvers = dns.example:53\n",
	    "[global]\nresolvers = 127.0.0.1\n",
	    "[backend app]\ndiscover = srv:_a._tcp.x\n",
	    "[backend app]\ndiscover = dns-srv:bad..name\n",
	    "[backend app]\nserver = w host:0 resolve\n",
	    "[backend app]\nserver = w host resolve\n",
	    "[backend app]\nserver = w [::1]:80 resolve\n",
	    "[backend app]\nserver = "
	    "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww "
	    "h.example:80 resolve\n",
	    "[backend app]\nserver = w h.example:80 resolve\n"
	    "server = w 10.0.0.1:80\n",
	};
	struct errlist errs;
	struct config *cfg = load(good, &errs);
	char text[1024];

	ck_assert_msg(cfg != NULL, "%s", joined(&errs));
	errlist_free(&errs);
	ck_assert_uint_eq(cfg->resolve_interval_ms, 2000);
	ck_assert_str_eq(cfg->resolvers, "127.0.0.1:5353,[::1]:53");
	ck_assert_uint_eq(cfg->backends[0].nresolves, 1);
	ck_assert_str_eq(cfg->backends[0].resolves[0].host, "web.example.test");
	ck_assert_uint_eq(cfg->backends[0].resolves[0].port, 8080);
	ck_assert_uint_eq(cfg->backends[0].resolves[0].weight, 3);
	ck_assert_int_eq(cfg->backends[0].resolves[0].backup, 1);
	ck_assert_uint_eq(cfg->backends[0].nservers, 1);
	ck_assert_uint_eq(cfg->backends[1].nservers, 0);
	ck_assert_str_eq(cfg->backends[1].discover, "_app._tcp.example.test");
	config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(text, sizeof(text), "[frontend web]\nlisten = "
		    "127.0.0.1:8080\nbackend = app\n%s%s", bad[i],
		    strncmp(bad[i], "[backend", 8) == 0 ? "" :
		    "[backend app]\nserver = a1 10.0.0.1:80\n");
		cfg = load(text, &errs);
		ck_assert_msg(cfg == NULL, "accepted: %s", bad[i]);
		ck_assert_msg(errs.n >= 1 && strstr(errs.msgs[0], "t.ini:") ==
		    errs.msgs[0], "no file:line for %s", bad[i]);
		errlist_free(&errs);
	}
}
END_TEST

static Suite *
srvset_suite(void)
{
	Suite *s = suite_create("srvset");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_flat_indices);
	tcase_add_test(tc, test_add_takes_next_flat_index);
	tcase_add_test(tc, test_add_existing_refused_removed_comes_back);
	tcase_add_test(tc, test_backend_full);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_srvdef_roundtrip);
	tcase_add_test(tc, test_srvdef_rejects);
	tcase_add_test(tc, test_server_state_rejects);
	tcase_add_test(tc, test_api_path);
	tcase_add_test(tc, test_api_parse);
	tcase_add_test(tc, test_api_message);
	tcase_add_test(tc, test_carry);
	tcase_add_test(tc, test_dns_keys);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(srvset_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures == 0 ? 0 : 1;
}
