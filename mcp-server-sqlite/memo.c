/* memo.c: collect insights and render them as the memo://insights text. */
#include "memo.h"

#include <string.h>

void memo_init(struct memo *m)
{
	memset(m, 0, sizeof *m);
}

void memo_free(struct memo *m)
{
	buf_free(&m->items);
	m->count = 0;
}

enum memo_err memo_add(struct memo *m, const char *s, size_t n)
{
	size_t old = m->items.len;

	if (n == 0)
		return MEMO_EEMPTY;
	if (m->count >= MEMO_MAX_INSIGHTS || n > MEMO_MAX_BYTES || m->items.len + n + 3 > MEMO_MAX_BYTES)
		return MEMO_EFULL;
	if (buf_append(&m->items, "- ", 2) < 0 || buf_append(&m->items, s, n) < 0 || buf_append(&m->items, "\n", 1) < 0) {
		m->items.len = old;
		if (m->items.data)
			m->items.data[old] = '\0';
		return MEMO_ENOMEM;
	}
	m->count++;
	return MEMO_OK;
}

int memo_render(const struct memo *m, buf_t *out)
{
	if (m->count == 0)
		return buf_puts(out, "No business insights have been discovered yet.");
	if (buf_puts(out, "\xF0\x9F\x93\x8A Business Intelligence Memo \xF0\x9F\x93\x8A\n\n"
			  "Key Insights Discovered:\n\n") < 0 ||
	    buf_append(out, m->items.data, m->items.len - 1) < 0) /* without the last '\n' */
		return -1;
	if (m->count > 1 && buf_printf(out,
				       "\nSummary:\nThe analysis so far has produced %zu key business insights, "
				       "pointing to opportunities for strategic optimization and growth.",
				       m->count) < 0)
		return -1;
	return 0;
}

const char *memo_strerror(enum memo_err e)
{
	switch (e) {
	case MEMO_OK: return "success";
	case MEMO_EEMPTY: return "the insight is empty";
	case MEMO_EFULL: return "the memo is full";
	case MEMO_ENOMEM: return "out of memory";
	}
	return "unknown error";
}
