/* randid.c: identifiers and random numbers from getrandom(2): no seed, no state, no weaker fallback. */
#include "core/randid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char randid_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#define RANDID_ALPHABET_LEN 62
#define RANDID_ACCEPT 248 /* the largest multiple of 62 <= 256: bytes above it are drawn again */

int randid_fill(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) { /* never documented, but a loop that cannot advance must not spin */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int randid_new(char *out, size_t size, const char *prefix, size_t nchars)
{
	unsigned char pool[RANDID_MAX_CHARS * 2];
	size_t plen = prefix ? strlen(prefix) : 0, have = 0, used = sizeof pool;

	if (size > 0)
		out[0] = '\0';
	if (nchars < RANDID_MIN_CHARS || nchars > RANDID_MAX_CHARS) {
		errno = EINVAL;
		return -1;
	}
	if (size < plen + nchars + 1) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(out, prefix ? prefix : "", plen);
	while (have < nchars) {
		if (used == sizeof pool) {
			if (randid_fill(pool, sizeof pool) < 0) {
				out[0] = '\0';
				return -1;
			}
			used = 0;
		}
		if (pool[used] < RANDID_ACCEPT)
			out[plen + have++] = randid_alphabet[pool[used] % RANDID_ALPHABET_LEN];
		used++;
	}
	out[plen + nchars] = '\0';
	return 0;
}

int randid_below(uint32_t bound, uint32_t *out)
{
	uint32_t x, limit;

	if (bound == 0) {
		errno = EINVAL;
		return -1;
	}
	limit = UINT32_MAX - (uint32_t)(((uint64_t)UINT32_MAX + 1) % bound); /* accept 0..limit: a multiple of bound */
	do {
		if (randid_fill(&x, sizeof x) < 0)
			return -1;
	} while (x > limit);
	*out = x % bound;
	return 0;
}
