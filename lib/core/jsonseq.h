/* jsonseq.h: JSON texts one after another in a byte stream (NDJSON, RFC 7464 sequences, one whole document), split as the bytes arrive. */
#ifndef MCPGW_JSONSEQ_H
#define MCPGW_JSONSEQ_H

#include <stddef.h>

#include "core/buf.h"

enum jsonseq_status {
	JSONSEQ_OK = 0,
	JSONSEQ_EBAD, /* a byte outside a value that is not whitespace (or RS), or a value that is no object or array */
	JSONSEQ_ETOOBIG, /* one value longer than the bound */
	JSONSEQ_ENOMEM,
	JSONSEQ_ESTOP, /* the callback returned non-zero */
};

/* jsonseq_cb: one whole value (len bytes, NUL-terminated, borrowed for the
 * call; only split, not validated: parse it). Non-zero stops the parser. */
typedef int (*jsonseq_cb)(const char *text, size_t len, void *ud);

struct jsonseq {
	buf_t buf; /* the value being read */
	size_t max;
	int depth, in_str, esc, failed;
	jsonseq_cb cb;
	void *ud;
};

/* jsonseq_init: a parser of values of at most max bytes each, handing each to cb(…, ud). */
void jsonseq_init(struct jsonseq *j, size_t max, jsonseq_cb cb, void *ud);

/* jsonseq_feed: n more bytes, split anywhere. Returns JSONSEQ_OK or the
 * failure (then every later feed returns it too, until jsonseq_reset). */
enum jsonseq_status jsonseq_feed(struct jsonseq *j, const char *p, size_t n);

/* jsonseq_pending: 1 when a value has begun and not ended (the stream was cut), else 0. */
int jsonseq_pending(const struct jsonseq *j);

/* jsonseq_reset: start over (memory kept); jsonseq_free: release it. */
void jsonseq_reset(struct jsonseq *j);
void jsonseq_free(struct jsonseq *j);

#endif
