/* main.c -- command line: check the configuration or run the master */
#include "ac_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "config_dump.h"
#include "log.h"
#include "master.h"
#include "tls.h"
#include "upgrade.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: baton [-c FILE] [-t | -T] [-V] [-h]\n"
	    "  -c FILE   configuration file (default: %s/baton/proxy.ini)\n"
	    "  -t        check the configuration, say what it will do, exit\n"
	    "  -T        check it and print it as understood, defaults filled "
	    "in\n"
	    "  -V        print the version and exit\n"
	    "  -h        this help\n", SYSCONFDIR);
}

int
main(int argc, char *argv[])
{
	const char *path = SYSCONFDIR "/baton/proxy.ini";
	struct errlist errs = { NULL, 0 };
	struct config *cfg;
	int ch, test = 0, dump = 0;

	log_init("baton");
	while ((ch = getopt(argc, argv, "c:tTVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			dump = 1;
			break;
		case 'V':
			printf("baton %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if ((cfg = config_load(path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		errlist_free(&errs);
		return 1;
	}
	if (test || dump) {
		/* -t loads certificates too: what would fail at start fails
		 * here (a binary upgrade trusts it). */
		if (test && tls_load(cfg) == -1) {
			config_free(cfg);
			return 1;
		}
		tls_unload(cfg);
		if (dump) {
			config_dump_ini(stdout, cfg);
		} else {
			printf("%s: configuration ok\n", path);
			config_dump_summary(stdout, cfg);
		}
		config_free(cfg);
		return fflush(stdout) == EOF ? 1 : 0;
	}
	log_set_level(cfg->log_level);
	if (cfg->log_file != NULL && log_set_file(cfg->log_file) == -1) {
		log_warn("cannot open log_file %s", cfg->log_file);
		config_free(cfg);
		return 2;
	}
	upgrade_set_argv(argv);
	ch = master_main(cfg);
	log_close();
	return ch;
}
