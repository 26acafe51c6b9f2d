/* balance.c -- choosing a backend server: the pure balancing algorithms */
#include "ac_config.h"

#include <math.h>

#include "balance.h"
#include "config.h"

uint32_t
lb_hash(const void *data, size_t len, uint32_t h)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int
lb_was_tried(size_t i, const uint8_t *tried, size_t ntried)
{
	for (size_t k = 0; k < ntried; k++)
		if (tried[k] == i)
			return 1;
	return 0;
}

static int
lb_usable(const struct lb_server *s, int backup, int strict)
{
	return s->up && s->backup == backup && (!strict || !s->soft_down) &&
	    (s->max_active == 0 || s->active < s->max_active);
}

/*
 * Mark in cand[] the servers that may be picked: up primaries, else up
 * backups (health alone decides between the two). Among those, in order of
 * preference: untried and not soft-down, untried, not the one just tried
 * (never the same server twice in a row), any. Returns how many.
 */
static size_t
lb_candidates(const struct lb *lb, const uint8_t *tried, size_t ntried,
    unsigned char *cand)
{
	static const struct { int strict, avoid; } passes[] = {
		{ 1, 2 }, { 0, 2 }, { 1, 1 }, { 0, 1 }, { 1, 0 }, { 0, 0 },
	};
	int backup = 1;

	for (size_t i = 0; i < lb->n; i++)
		if (lb->servers[i].up && !lb->servers[i].backup)
			backup = 0;
	for (size_t p = 0; p < sizeof(passes) / sizeof(*passes); p++) {
		size_t n = 0;
		for (size_t i = 0; i < lb->n; i++) {
			int skip = passes[p].avoid == 2 ?
			    lb_was_tried(i, tried, ntried) :
			    passes[p].avoid == 1 && ntried > 0 &&
			    tried[ntried - 1] == i;
			cand[i] = !skip && lb_usable(&lb->servers[i], backup,
			    passes[p].strict);
			n += cand[i];
		}
		if (n > 0)
			return n;
	}
	return 0;
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

/* Is a less loaded than b, relative to their weights? */
static int
lb_lighter(const struct lb_server *a, const struct lb_server *b)
{
	return (uint64_t)a->active * (uint64_t)b->weight <
	    (uint64_t)b->active * (uint64_t)a->weight;
}

/* Fewest active connections per weight; ties go round-robin. */
static int
lb_leastconn(struct lb *lb, const unsigned char *cand)
{
	int best = -1;

	for (size_t k = 0; k < lb->n; k++) {
		size_t i = (lb->rr + k) % lb->n;
		if (cand[i] && (best == -1 ||
		    lb_lighter(&lb->servers[i], &lb->servers[best])))
			best = (int)i;
	}
	if (best != -1)
		lb->rr = (size_t)best + 1;
	return best;
}

static uint64_t
lb_mix(uint64_t x)
{
	/* splitmix64's finaliser: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/*
 * Weighted rendezvous hashing: each candidate scores the client key, the
 * highest score wins. Adding or removing a server moves only the clients
 * that it wins or won: about 1/N of them. score = weight / -ln(u), u in
 * (0, 1] from the hash, gives each server a share equal to its weight.
 */
static int
lb_source(struct lb *lb, uint32_t key, const unsigned char *cand)
{
	int best = -1;
	double best_score = 0;

	for (size_t i = 0; i < lb->n; i++) {
		const struct lb_server *s = &lb->servers[i];
		uint64_t h;
		double u, score;

		if (!cand[i])
			continue;
		h = lb_mix(((uint64_t)s->seed << 32) | key);
		u = ((double)(h >> 11) + 1.0) / 9007199254740992.0;
		score = (double)s->weight / -log(u);
		if (best == -1 || score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}

static uint64_t
lb_random_next(struct lb *lb)
{
	uint64_t x = lb->rng ? lb->rng : 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	lb->rng = x;
	return x;
}

/* One candidate at random, in proportion to the weights. */
static int
lb_random_one(struct lb *lb, const unsigned char *cand, uint64_t total)
{
	uint64_t r = lb_random_next(lb) % total;

	for (size_t i = 0; i < lb->n; i++) {
		if (!cand[i])
			continue;
		if (r < (uint64_t)lb->servers[i].weight)
			return (int)i;
		r -= (uint64_t)lb->servers[i].weight;
	}
	return -1;
}

/* Power of two choices: two at random, the less loaded of them. */
static int
lb_random(struct lb *lb, const unsigned char *cand, size_t ncand)
{
	uint64_t total = 0;
	int a, b;

	for (size_t i = 0; i < lb->n; i++)
		if (cand[i])
			total += (uint64_t)lb->servers[i].weight;
	a = lb_random_one(lb, cand, total);
	if (ncand < 2)
		return a;
	do
		b = lb_random_one(lb, cand, total);
	while (b == a);
	return lb_lighter(&lb->servers[b], &lb->servers[a]) ? b : a;
}

int
lb_pick(struct lb *lb, uint32_t key, const uint8_t *tried, size_t ntried)
{
	unsigned char cand[CONFIG_MAX_SERVERS];
	size_t n;

	if (lb->n > CONFIG_MAX_SERVERS)
		return -1;
	if ((n = lb_candidates(lb, tried, ntried, cand)) == 0)
		return -1;
	switch (lb->algo) {
	case BALANCE_LEASTCONN:
		return lb_leastconn(lb, cand);
	case BALANCE_SOURCE:
		return lb_source(lb, key, cand);
	case BALANCE_RANDOM:
		return lb_random(lb, cand, n);
	default:
		return lb_swrr(lb, cand);
	}
}
