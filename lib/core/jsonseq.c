/* jsonseq.c: a byte stream split into the JSON objects and arrays it holds, one after another, as the bytes arrive. */
#include "core/jsonseq.h"

#include <string.h>

void jsonseq_init(struct jsonseq *j, size_t max, jsonseq_cb cb, void *ud)
{
	memset(j, 0, sizeof *j);
	j->max = max;
	j->cb = cb;
	j->ud = ud;
}

void jsonseq_reset(struct jsonseq *j)
{
	buf_reset(&j->buf);
	j->depth = j->in_str = j->esc = j->failed = 0;
}

void jsonseq_free(struct jsonseq *j)
{
	buf_free(&j->buf);
}

int jsonseq_pending(const struct jsonseq *j)
{
	return j->depth > 0;
}

/* js_take: bytes [p, p + n) of the value being read; 0 or a status */
static enum jsonseq_status js_take(struct jsonseq *j, const char *p, size_t n)
{
	if (j->buf.len + n > j->max)
		return JSONSEQ_ETOOBIG;
	return buf_append(&j->buf, p, n) < 0 ? JSONSEQ_ENOMEM : JSONSEQ_OK;
}

/* js_step: byte c inside a value: the string and nesting state; 1 when the value ended */
static int js_step(struct jsonseq *j, char c)
{
	if (j->in_str) {
		if (j->esc)
			j->esc = 0;
		else if (c == '\\')
			j->esc = 1;
		else if (c == '"')
			j->in_str = 0;
		return 0;
	}
	if (c == '"')
		j->in_str = 1;
	else if (c == '{' || c == '[')
		j->depth++;
	else if (c == '}' || c == ']')
		return --j->depth == 0;
	return 0;
}

enum jsonseq_status jsonseq_feed(struct jsonseq *j, const char *p, size_t n)
{
	size_t start = 0, i = 0;
	enum jsonseq_status st;

	if (j->failed)
		return (enum jsonseq_status)j->failed;
	while (i < n) {
		if (j->depth == 0) { /* between values: whitespace and RFC 7464's RS only */
			if (strchr(" \t\r\n\x1e", p[i]) && p[i]) {
				i++;
				continue;
			}
			if (p[i] != '{' && p[i] != '[')
				return (enum jsonseq_status)(j->failed = JSONSEQ_EBAD);
			start = i;
		}
		while (i < n && !js_step(j, p[i]))
			i++;
		if ((st = js_take(j, p + start, (i < n ? i + 1 : n) - start)) != JSONSEQ_OK)
			return (enum jsonseq_status)(j->failed = (int)st);
		start = 0;
		if (i == n)
			break;
		i++; /* the value's last byte */
		st = j->cb(j->buf.data, j->buf.len, j->ud) ? JSONSEQ_ESTOP : JSONSEQ_OK;
		buf_reset(&j->buf);
		if (st != JSONSEQ_OK)
			return (enum jsonseq_status)(j->failed = (int)st);
	}
	return JSONSEQ_OK;
}
