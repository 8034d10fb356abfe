/* fuzz_jsonrpc.c: libFuzzer target of the JSON-RPC line reader and message parser (lib/mcp/jsonrpc.c): what an MCP server's stdout and a broker client write. */
#include <string.h>

#include "fuzz.h"
#include "mcp/jsonrpc.h"

/* Input: byte 0 picks the line bound (8..263 bytes, or 16 MiB), bytes 1-2
 * seed how the rest is cut into reads; the rest is the byte stream. Checks:
 * the lines (and over-long line reports) are the same whether the stream
 * arrives in one read or in pieces; each line that parses as JSON is
 * classified, serialised again with jr_append_line, and reads back equal. */

#define MAX_EVENTS 4096

struct seen {
	buf_t log; /* one record per reader result: 'L' + length + bytes, or 'T' */
	size_t n;
};

/* drain: every result the reader has, logged (lines parsed and checked) */
static void drain(struct jr_reader *r, struct seen *s)
{
	char *line;
	size_t len;
	int rc;

	while ((rc = jr_reader_next(r, &line, &len)) != JR_READ_MORE) {
		FUZZ_CHECK(rc == JR_READ_LINE || rc == JR_READ_TOOLONG);
		if (++s->n > MAX_EVENTS)
			continue;
		if (rc == JR_READ_TOOLONG) {
			FUZZ_CHECK(buf_append(&s->log, "T", 1) == 0);
			continue;
		}
		FUZZ_CHECK(len <= r->max_line && line[len] == '\0');
		FUZZ_CHECK(buf_append(&s->log, "L", 1) == 0 && buf_append(&s->log, &len, sizeof len) == 0 &&
			   buf_append(&s->log, line, len) == 0);
	}
}

/* check_message: one line as a message: parse, classify, serialise, read back */
static void check_message(const char *line, size_t len)
{
	json_error_t err;
	json_t *msg = jr_parse(line, len, &err), *again;
	buf_t out = BUF_INIT;

	if (!msg)
		return;
	(void)jr_classify(msg);
	if (jr_append_line(&out, msg) == 0) {
		FUZZ_CHECK(out.len > 0 && out.data[out.len - 1] == '\n');
		FUZZ_CHECK(memchr(out.data, '\n', out.len - 1) == NULL); /* one message, one line */
		again = jr_parse(out.data, out.len - 1, &err);
		FUZZ_CHECK(again && json_equal(msg, again));
		FUZZ_CHECK(jr_classify(again) == jr_classify(msg));
		json_decref(again);
	}
	buf_free(&out);
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jr_reader whole, cut;
	struct seen a = { BUF_INIT, 0 }, b = { BUF_INIT, 0 };
	struct fuzz_cut c;
	size_t max_line, off, n;
	char *line;
	size_t len;

	if (size < 3)
		return 0;
	max_line = data[0] == 255 ? 16u << 20 : 8u + data[0];
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	data += 3;
	size -= 3;

	jr_reader_init(&whole, max_line);
	FUZZ_CHECK(jr_reader_feed(&whole, data, size) == 0);
	drain(&whole, &a);

	jr_reader_init(&cut, max_line);
	for (off = 0; off < size; off += n) {
		n = fuzz_cut_next(&c, size - off);
		FUZZ_CHECK(jr_reader_feed(&cut, data + off, n) == 0);
		drain(&cut, &b);
	}
	FUZZ_CHECK(a.n == b.n && a.log.len == b.log.len && (!a.log.len || memcmp(a.log.data, b.log.data, a.log.len) == 0));

	/* the messages, as the broker reads them */
	jr_reader_free(&whole);
	jr_reader_init(&whole, max_line);
	FUZZ_CHECK(jr_reader_feed(&whole, data, size) == 0);
	for (int rc; (rc = jr_reader_next(&whole, &line, &len)) != JR_READ_MORE;)
		if (rc == JR_READ_LINE)
			check_message(line, len);

	jr_reader_free(&whole);
	jr_reader_free(&cut);
	buf_free(&a.log);
	buf_free(&b.log);
	return 0;
}
