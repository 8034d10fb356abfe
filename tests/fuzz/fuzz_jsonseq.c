/* fuzz_jsonseq.c: libFuzzer target of the JSON text splitter (lib/core/jsonseq.c) that reads an upstream's NDJSON, RFC 7464 or whole-document answers. */
#include <string.h>

#include <jansson.h>

#include "core/jsonseq.h"
#include "fuzz.h"

/* Input: byte 0 picks the value bound (1..256 bytes, or 1 MiB), bytes 1-2
 * seed how the rest is cut; the rest is the body. Checks: the values and
 * the status are the same however the body is cut; each value is within
 * the bound, NUL-terminated, and starts with '{' or '['; each is parsed as
 * the upstream client then does. */

#define MAX_VALUES 4096

struct seen {
	buf_t log;
	size_t n, max;
};

static int on_value(const char *text, size_t len, void *ud)
{
	struct seen *s = ud;
	json_t *v;

	FUZZ_CHECK(len > 0 && len <= s->max && text[len] == '\0');
	FUZZ_CHECK(text[0] == '{' || text[0] == '[');
	if (++s->n > MAX_VALUES)
		return 1;
	FUZZ_CHECK(buf_append(&s->log, &len, sizeof len) == 0 && buf_append(&s->log, text, len) == 0);
	v = json_loadb(text, len, 0, NULL);
	json_decref(v);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonseq whole, cut;
	struct seen a = { BUF_INIT, 0, 0 }, b = { BUF_INIT, 0, 0 };
	struct fuzz_cut c;
	size_t max, off, n;
	enum jsonseq_status ra, rb = JSONSEQ_OK;

	if (size < 3)
		return 0;
	max = data[0] == 255 ? 1u << 20 : 1u + data[0];
	a.max = b.max = max;
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	data += 3;
	size -= 3;

	jsonseq_init(&whole, max, on_value, &a);
	ra = jsonseq_feed(&whole, (const char *)data, size);
	if (ra != JSONSEQ_OK)
		FUZZ_CHECK(jsonseq_feed(&whole, "{}", 2) == ra); /* sticky */

	jsonseq_init(&cut, max, on_value, &b);
	for (off = 0; off < size && rb == JSONSEQ_OK; off += n) {
		n = fuzz_cut_next(&c, size - off);
		rb = jsonseq_feed(&cut, (const char *)data + off, n);
	}
	FUZZ_CHECK(ra == rb);
	FUZZ_CHECK(a.n == b.n && a.log.len == b.log.len && (!a.log.len || memcmp(a.log.data, b.log.data, a.log.len) == 0));
	if (ra == JSONSEQ_OK)
		FUZZ_CHECK(jsonseq_pending(&whole) == jsonseq_pending(&cut));

	jsonseq_reset(&cut);
	b.n = 0;
	if (max >= 7)
		FUZZ_CHECK(jsonseq_feed(&cut, "{\"a\":1}\n", 8) == JSONSEQ_OK && b.n == 1);

	jsonseq_free(&whole);
	jsonseq_free(&cut);
	buf_free(&a.log);
	buf_free(&b.log);
	return 0;
}
