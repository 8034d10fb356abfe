/* near.h: "did you mean": the known word a misspelt one most likely stands for. */
#ifndef MCPGW_NEAR_H
#define MCPGW_NEAR_H

#include <stddef.h>

#define NEAR_WORD_MAX 64 /* longer words are never near anything */

/* near_word: the entry of known[0..n-1] that word is most likely a
 * misspelling of: the same but for case, '_' and '-'; else one edit
 * (insert, delete, change, swap of neighbours) away from a known word of
 * up to 4 letters, two from a longer one; the closest wins, the first of
 * equals. Returns a pointer into known (borrowed), or NULL when none is
 * near (also for words longer than NEAR_WORD_MAX). */
const char *near_word(const char *word, const char *const *known, size_t n);

#endif
