/* fuzz.h: what the libFuzzer targets share: the entry point's prototype, cutting an input into chunks, and a check that aborts. */
#ifndef MCPGW_FUZZ_H
#define MCPGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* FUZZ_CHECK: a property of the code under test; a failure aborts (libFuzzer keeps the input as a crash) */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* A deterministic cutter: the chunk lengths of a stream fed in pieces, drawn
 * from a seed (so one input always splits the same way). */
struct fuzz_cut {
	uint32_t state;
};

/* fuzz_cut_init: a cutter seeded with seed (any value) */
static inline void fuzz_cut_init(struct fuzz_cut *c, uint32_t seed)
{
	c->state = seed * 2654435761u + 0x9e3779b9u;
	if (!c->state)
		c->state = 1;
}

/* fuzz_cut_next: the next chunk's length, 1..max (max > 0): mostly short, now and then long */
static inline size_t fuzz_cut_next(struct fuzz_cut *c, size_t max)
{
	uint32_t x = c->state;
	size_t n;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	c->state = x;
	n = (x & 7) == 0 ? (x >> 8) % 4096 + 1 : (x >> 8) % 9 + 1;
	return n < max ? n : max;
}

#endif
