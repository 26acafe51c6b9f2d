/* orphans.c -- workers of the binary that exec'd this one */
#include "ac_config.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "master_priv.h"
#include "orphans.h"

void
orphan_adopt(struct master *m, pid_t pid, unsigned gen, int id,
    const char *version)
{
	struct orphan *o;

	if ((o = realloc(m->orphans, (m->norphans + 1) * sizeof(*o))) ==
	    NULL) {
		log_warn("worker %d (pid %d) of the old binary", id, (int)pid);
		return;
	}
	m->orphans = o;
	o = &m->orphans[m->norphans++];
	o->pid = pid;
	o->generation = gen;
	o->id = id;
	snprintf(o->version, sizeof(o->version), "%s", version);
}

void
orphan_reaped(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->norphans; i++) {
		struct orphan *o = &m->orphans[i];

		if (o->pid != pid)
			continue;
		log_info("worker %d (pid %d, generation %u, baton %s) "
		    "finished", o->id, (int)pid, o->generation, o->version);
		*o = m->orphans[--m->norphans];
		return;
	}
}

void
orphans_free(struct master *m)
{
	free(m->orphans);
	m->orphans = NULL;
	m->norphans = 0;
}
