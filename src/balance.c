/* balance.c -- choosing a backend server: the pure balancing algorithms */
#include "ac_config.h"

#include "balance.h"
#include "config.h"

static int
lb_was_tried(int i, const uint8_t *tried, size_t ntried)
{
	for (size_t k = 0; k < ntried; k++)
		if (tried[k] == i)
			return 1;
	return 0;
}

/*
 * Mark in cand[] the servers that may be picked: up primaries, or up
 * backups when no primary is up; untried ones first. Returns how many.
 */
static size_t
lb_candidates(const struct lb *lb, const uint8_t *tried, size_t ntried,
    unsigned char *cand)
{
	size_t n = 0;
	int want_backup;

	for (want_backup = 0; want_backup <= 1 && n == 0; want_backup++) {
		for (size_t i = 0; i < lb->n; i++) {
			const struct lb_server *s = &lb->servers[i];
			cand[i] = s->up && s->backup == want_backup;
			n += cand[i];
		}
	}
	if (n == 0 || ntried == 0)
		return n;
	size_t untried = 0;
	for (size_t i = 0; i < lb->n; i++)
		if (cand[i] && !lb_was_tried((int)i, tried, ntried))
			untried++;
	if (untried == 0)
		return n;
	for (size_t i = 0; i < lb->n; i++)
		if (cand[i] && lb_was_tried((int)i, tried, ntried))
			cand[i] = 0;
	return untried;
}

/*
 * Smooth weighted round-robin (as in nginx): every candidate gains its
 * weight, the richest is picked and pays the total. Over a cycle each
 * server is picked weight times, interleaved rather than in bursts.
 */
static int
lb_swrr(struct lb *lb, const unsigned char *cand)
{
	int best = -1, total = 0;

	for (size_t i = 0; i < lb->n; i++) {
		struct lb_server *s = &lb->servers[i];
		if (!cand[i])
			continue;
		s->current += s->weight;
		total += s->weight;
		if (best == -1 || s->current > lb->servers[best].current)
			best = (int)i;
	}
	if (best != -1)
		lb->servers[best].current -= total;
	return best;
}

int
lb_pick(struct lb *lb, uint32_t key, const uint8_t *tried, size_t ntried)
{
	unsigned char stackcand[256], *cand = stackcand;
	int pick;

	(void)key;
	if (lb->n > sizeof(stackcand))
		return -1;	/* config caps servers per backend */
	if (lb_candidates(lb, tried, ntried, cand) == 0)
		return -1;
	switch (lb->algo) {
	default:
		pick = lb_swrr(lb, cand);
		break;
	}
	return pick;
}
