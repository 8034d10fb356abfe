/* memo.h: the in-memory business insights memo behind the memo://insights resource. */
#ifndef MCPSQLITE_MEMO_H
#define MCPSQLITE_MEMO_H

#include <stddef.h>

#include "core/buf.h"

#define MEMO_URI "memo://insights"
#define MEMO_MAX_INSIGHTS 1000       /* insights kept at most */
#define MEMO_MAX_BYTES (1024 * 1024) /* bytes of insight text kept at most */

enum memo_err { MEMO_OK = 0, MEMO_EEMPTY, MEMO_EFULL, MEMO_ENOMEM };

struct memo {
	buf_t items; /* "- insight\n" per insight, in the order added */
	size_t count;
};

/* memo_init / memo_free: an empty memo; release its memory. */
void memo_init(struct memo *m);
void memo_free(struct memo *m);

/* memo_add: append insight s[0..n) (copied).  MEMO_EEMPTY for an empty
 * insight, MEMO_EFULL past MEMO_MAX_INSIGHTS / MEMO_MAX_BYTES (the memo is
 * then unchanged), MEMO_ENOMEM. */
enum memo_err memo_add(struct memo *m, const char *s, size_t n);

/* memo_render: append the memo as text (the reference server's "Business
 * Intelligence Memo" layout) to out.  0, or -1 on ENOMEM. */
int memo_render(const struct memo *m, buf_t *out);

/* memo_strerror: a static description of e. */
const char *memo_strerror(enum memo_err e);

#endif
