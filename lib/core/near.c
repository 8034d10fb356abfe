/* near.c: "did you mean": optimal string alignment distance over case-folded words. */
#include "core/near.h"

#include <stdint.h>
#include <string.h>

/* near_fold: w lower-cased without '_' and '-' into out (cut to fit) */
static void near_fold(const char *w, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *w && o + 1 < outlen; w++)
		if (*w != '_' && *w != '-')
			out[o++] = (char)(*w >= 'A' && *w <= 'Z' ? *w - 'A' + 'a' : *w);
	out[o] = '\0';
}

/* near_distance: optimal string alignment distance of a and b (edits,
 * adjacent swaps); strings longer than NEAR_WORD_MAX count as far apart */
static size_t near_distance(const char *a, const char *b)
{
	size_t d[NEAR_WORD_MAX + 1][NEAR_WORD_MAX + 1], la = strlen(a), lb = strlen(b), i, j;

	if (la > NEAR_WORD_MAX || lb > NEAR_WORD_MAX)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *near_word(const char *word, const char *const *known, size_t n)
{
	char fw[NEAR_WORD_MAX + 2], fk[NEAR_WORD_MAX + 2];
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	if (strlen(word) > NEAR_WORD_MAX)
		return NULL;
	near_fold(word, fw, sizeof fw);
	for (size_t i = 0; i < n; i++) {
		size_t d;

		if (!known[i] || strlen(known[i]) > NEAR_WORD_MAX)
			continue;
		near_fold(known[i], fk, sizeof fk);
		d = near_distance(fw, fk);
		if (d <= (strlen(fk) <= 4 ? 1u : 2u) && d < best_d) {
			best = known[i];
			best_d = d;
		}
	}
	return best;
}
