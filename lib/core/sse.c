/* sse.c: incremental Server-Sent Events parsing by the WHATWG rules, bytes in, events out. */
#include "core/sse.h"

#include <limits.h>
#include <string.h>

void sse_init(struct sse_parser *p, size_t max_event, sse_event_cb cb, void *ud)
{
	memset(p, 0, sizeof *p);
	p->max_event = max_event;
	p->cb = cb;
	p->ud = ud;
	p->retry_ms = -1;
}

void sse_reset(struct sse_parser *p)
{
	buf_reset(&p->line);
	buf_reset(&p->data);
	buf_reset(&p->event);
	buf_reset(&p->id);
	p->retry_ms = -1;
	p->after_cr = 0;
	p->started = 0;
	p->err = SSE_OK;
}

void sse_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
	buf_free(&p->event);
	buf_free(&p->id);
}

int sse_pending(const struct sse_parser *p)
{
	return p->line.len > 0 || p->data.len > 0;
}

const char *sse_strerror(int err)
{
	switch (err) {
	case SSE_OK: return "no error";
	case SSE_ETOOBIG: return "event too large";
	case SSE_ENOMEM: return "out of memory";
	default: return "aborted by the event handler";
	}
}

/* sse_set: replace b's content with n bytes of v. 0 or SSE_ENOMEM. */
static int sse_set(buf_t *b, const char *v, size_t n)
{
	buf_reset(b);
	return buf_append(b, v, n) < 0 ? SSE_ENOMEM : SSE_OK;
}

/* sse_dispatch: a blank line: hand out the event if a data: field came. */
static int sse_dispatch(struct sse_parser *p)
{
	int rc = SSE_OK;

	if (p->data.len > 0) {
		/* every data: field appended a '\n': drop the last one */
		p->data.data[--p->data.len] = '\0';
		rc = p->cb(p->event.len ? p->event.data : "message", p->data.data, p->data.len,
			   p->id.len ? p->id.data : "", p->ud);
	}
	buf_reset(&p->data);
	buf_reset(&p->event);
	return rc;
}

/* sse_retry: a retry: value made of ASCII digits only sets retry_ms. */
static void sse_retry(struct sse_parser *p, const char *v, size_t n)
{
	long ms = 0;
	size_t i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || ms > (LONG_MAX - (v[i] - '0')) / 10)
			return;
		ms = ms * 10 + (v[i] - '0');
	}
	p->retry_ms = ms;
}

/* sse_field: one "name: value" line. */
static int sse_field(struct sse_parser *p, const char *name, size_t nn, const char *v, size_t vn)
{
	if (nn == 4 && memcmp(name, "data", 4) == 0) {
		if (p->data.len + vn + 1 > p->max_event)
			return SSE_ETOOBIG;
		if (buf_append(&p->data, v, vn) < 0 || buf_append(&p->data, "\n", 1) < 0)
			return SSE_ENOMEM;
	} else if (nn == 5 && memcmp(name, "event", 5) == 0) {
		return sse_set(&p->event, v, vn);
	} else if (nn == 2 && memcmp(name, "id", 2) == 0) {
		if (!memchr(v, '\0', vn))
			return sse_set(&p->id, v, vn);
	} else if (nn == 5 && memcmp(name, "retry", 5) == 0) {
		sse_retry(p, v, vn);
	}
	return SSE_OK;
}

/* sse_line: act on the completed line in p->line, then empty it. */
static int sse_line(struct sse_parser *p)
{
	const char *l = p->line.data ? p->line.data : "", *colon;
	size_t n = p->line.len, nn;
	int rc = SSE_OK;

	if (!p->started) {
		p->started = 1;
		if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0) {
			l += 3;
			n -= 3;
		}
	}
	if (n == 0) {
		rc = sse_dispatch(p);
	} else if (l[0] != ':') {
		colon = memchr(l, ':', n);
		nn = colon ? (size_t)(colon - l) : n;
		if (!colon)
			rc = sse_field(p, l, nn, "", 0);
		else if (nn + 1 < n && colon[1] == ' ')
			rc = sse_field(p, l, nn, colon + 2, n - nn - 2);
		else
			rc = sse_field(p, l, nn, colon + 1, n - nn - 1);
	}
	buf_reset(&p->line);
	return rc;
}

/* sse_eol: the first '\r' or '\n' in [s, end), or end. */
static const char *sse_eol(const char *s, const char *end)
{
	while (s < end && *s != '\n' && *s != '\r')
		s++;
	return s;
}

int sse_feed(struct sse_parser *p, const void *bytes, size_t n)
{
	const char *s = bytes, *end = s + n, *e;
	int rc;

	if (p->err)
		return p->err;
	while (s < end) {
		if (p->after_cr) {
			p->after_cr = 0;
			if (*s == '\n') {
				s++;
				continue;
			}
		}
		e = sse_eol(s, end);
		if (p->line.len + (size_t)(e - s) > p->max_event + SSE_LINE_SLACK)
			return p->err = SSE_ETOOBIG;
		if (e > s && buf_append(&p->line, s, (size_t)(e - s)) < 0)
			return p->err = SSE_ENOMEM;
		if (e == end)
			break;
		p->after_cr = *e == '\r';
		s = e + 1;
		if ((rc = sse_line(p)) != SSE_OK)
			return p->err = rc;
	}
	return SSE_OK;
}
