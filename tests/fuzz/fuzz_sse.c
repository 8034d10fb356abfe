/* fuzz_sse.c: libFuzzer target of the Server-Sent Events parser (lib/core/sse.c) that reads upstream chat streams and remote MCP servers' SSE. */
#include <string.h>

#include "core/sse.h"
#include "fuzz.h"

/* Input: byte 0 picks the event bound (1..256 bytes, or 1 MiB), bytes 1-2
 * seed how the rest is cut; the rest is the stream. Checks: the events
 * (type, data, last id) and the final status are the same whether the
 * stream arrives in one piece or cut anywhere; an event's data never
 * exceeds the bound and is NUL-terminated; after an error every feed
 * returns the same error; sse_reset makes the parser usable again. */

#define MAX_EVENTS 4096

struct seen {
	buf_t log;
	size_t n, max;
};

static int on_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct seen *s = ud;
	size_t el = strlen(event), il = strlen(id);

	FUZZ_CHECK(len <= s->max && data[len] == '\0');
	if (++s->n > MAX_EVENTS)
		return 7; /* a callback's own stop value comes back from sse_feed */
	FUZZ_CHECK(buf_append(&s->log, &el, sizeof el) == 0 && buf_append(&s->log, event, el) == 0);
	FUZZ_CHECK(buf_append(&s->log, &len, sizeof len) == 0 && buf_append(&s->log, data, len) == 0);
	FUZZ_CHECK(buf_append(&s->log, &il, sizeof il) == 0 && buf_append(&s->log, id, il) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sse_parser whole, cut;
	struct seen a = { BUF_INIT, 0, 0 }, b = { BUF_INIT, 0, 0 };
	struct fuzz_cut c;
	size_t max, off, n;
	int ra, rb = SSE_OK;

	if (size < 3)
		return 0;
	max = data[0] == 255 ? 1u << 20 : 1u + data[0];
	a.max = b.max = max;
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	data += 3;
	size -= 3;

	sse_init(&whole, max, on_event, &a);
	ra = sse_feed(&whole, data, size);
	FUZZ_CHECK(ra == SSE_OK || ra == SSE_ETOOBIG || ra == 7);
	if (ra != SSE_OK)
		FUZZ_CHECK(sse_feed(&whole, "data: x\n\n", 9) == ra); /* sticky */
	(void)sse_strerror(ra);

	sse_init(&cut, max, on_event, &b);
	for (off = 0; off < size && rb == SSE_OK; off += n) {
		n = fuzz_cut_next(&c, size - off);
		rb = sse_feed(&cut, data + off, n);
	}
	FUZZ_CHECK(ra == rb);
	FUZZ_CHECK(a.n == b.n && a.log.len == b.log.len && (!a.log.len || memcmp(a.log.data, b.log.data, a.log.len) == 0));
	if (ra == SSE_OK)
		FUZZ_CHECK(sse_pending(&whole) == sse_pending(&cut) && whole.retry_ms == cut.retry_ms);

	/* a new stream on the same parser */
	sse_reset(&cut);
	b.n = 0;
	buf_reset(&b.log);
	if (max >= 2)
		FUZZ_CHECK(sse_feed(&cut, "id: 1\ndata: a\n\n", 15) == SSE_OK && b.n == 1);

	sse_free(&whole);
	sse_free(&cut);
	buf_free(&a.log);
	buf_free(&b.log);
	return 0;
}
