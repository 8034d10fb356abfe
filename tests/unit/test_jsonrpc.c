/* test_jsonrpc.c: unit tests for lib/jsonrpc.c (classification, builders, line reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp/jsonrpc.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, 0, &e);

	assert_non_null(v);
	return v;
}

static enum jr_kind kind_of(const char *s)
{
	json_t *v = parse(s);
	enum jr_kind k = jr_classify(v);

	json_decref(v);
	return k;
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"), JR_REQUEST);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\",\"params\":{}}"), JR_REQUEST);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"), JR_NOTIFICATION);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"), JR_RESPONSE);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}"), JR_RESPONSE);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\"}}"),
			 JR_ERROR_RESPONSE);
	assert_int_equal(kind_of("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}"),
			 JR_ERROR_RESPONSE);
	/* invalid shapes */
	assert_int_equal(kind_of("[1,2]"), JR_INVALID);
	assert_int_equal(kind_of("{\"id\":1,\"method\":5}"), JR_INVALID);
	assert_int_equal(kind_of("{\"id\":1.5,\"method\":\"x\"}"), JR_INVALID);
	assert_int_equal(kind_of("{\"id\":true,\"method\":\"x\"}"), JR_INVALID);
	assert_int_equal(kind_of("{\"result\":{}}"), JR_INVALID);
	assert_int_equal(kind_of("{\"id\":3}"), JR_INVALID);
	assert_int_equal(jr_classify(NULL), JR_INVALID);
}

static void test_request_builder(void **state)
{
	json_t *params = json_pack("{s:s}", "name", "x");
	json_t *m = jr_request(7, "tools/call", params); /* params stolen */

	(void)state;
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "jsonrpc")), "2.0");
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 7);
	assert_string_equal(json_string_value(json_object_get(m, "method")), "tools/call");
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "params"), "name")), "x");
	assert_int_equal(jr_classify(m), JR_REQUEST);
	json_decref(m);

	m = jr_request(1, "ping", NULL);
	assert_non_null(m);
	assert_null(json_object_get(m, "params"));
	json_decref(m);

	m = jr_notification("notifications/initialized", NULL);
	assert_non_null(m);
	assert_null(json_object_get(m, "id"));
	assert_int_equal(jr_classify(m), JR_NOTIFICATION);
	json_decref(m);
}

static void test_result_error_builders(void **state)
{
	json_t *id = json_string("abc");
	json_t *m = jr_result(id, NULL);

	(void)state;
	assert_non_null(m);
	assert_true(json_equal(json_object_get(m, "id"), id)); /* copied, not stolen */
	assert_true(json_is_object(json_object_get(m, "result")));
	assert_int_equal(json_object_size(json_object_get(m, "result")), 0);
	assert_int_equal(jr_classify(m), JR_RESPONSE);
	json_decref(m);

	m = jr_error(id, JR_INVALID_PARAMS, "bad", json_pack("{s:s}", "reason", "unknown_tool"));
	assert_non_null(m);
	assert_int_equal(jr_classify(m), JR_ERROR_RESPONSE);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "error"), "code")), -32602);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "error"), "message")), "bad");
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_object_get(m, "error"), "data"), "reason")),
			    "unknown_tool");
	json_decref(m);
	json_decref(id);

	m = jr_error(NULL, JR_PARSE_ERROR, NULL, NULL);
	assert_non_null(m);
	assert_true(json_is_null(json_object_get(m, "id")));
	assert_null(json_object_get(json_object_get(m, "error"), "data"));
	json_decref(m);
}

static void test_append_line_and_versions(void **state)
{
	buf_t b = BUF_INIT;
	json_t *m = jr_request(1, "ping", NULL);

	(void)state;
	assert_int_equal(jr_append_line(&b, m), 0);
	assert_int_equal(jr_append_line(&b, m), 0);
	assert_string_equal(b.data, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"
				    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
	json_decref(m);
	buf_free(&b);

	assert_true(jr_mcp_version_supported(JR_MCP_LATEST));
	assert_true(jr_mcp_version_supported("2024-11-05"));
	assert_false(jr_mcp_version_supported("1999-01-01"));
	assert_false(jr_mcp_version_supported(NULL));
}

/* next line as a string, or NULL for JR_READ_MORE; fails on other results */
static const char *next_line(struct jr_reader *r)
{
	char *line;
	size_t len;
	int rc = jr_reader_next(r, &line, &len);

	if (rc == JR_READ_MORE)
		return NULL;
	assert_int_equal(rc, JR_READ_LINE);
	assert_int_equal(strlen(line), len);
	return line;
}

static int feed(struct jr_reader *r, const char *s)
{
	return jr_reader_feed(r, s, strlen(s));
}

static void test_reader_split_and_crlf(void **state)
{
	struct jr_reader r;
	const char *l;

	(void)state;
	jr_reader_init(&r, 1024);
	assert_int_equal(feed(&r, "{\"a\":"), 0);
	assert_null(next_line(&r));
	assert_int_equal(feed(&r, "1}\r\n{\"b\""), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"a\":1}");
	assert_null(next_line(&r));
	assert_int_equal(feed(&r, ":2}\n\n   \n\r\n\t\n{\"c\":3}\n"), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"b\":2}");
	l = next_line(&r); /* blank and whitespace-only lines are skipped */
	assert_non_null(l);
	assert_string_equal(l, "{\"c\":3}");
	assert_null(next_line(&r));
	jr_reader_free(&r);
}

static void test_reader_many_in_one_feed(void **state)
{
	struct jr_reader r;
	buf_t in = BUF_INIT;
	int count = 0;
	char want[32];

	(void)state;
	jr_reader_init(&r, 64);
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_printf(&in, "{\"n\":%d}\n", i), 0);
	assert_int_equal(jr_reader_feed(&r, in.data, in.len), 0);
	for (const char *l; (l = next_line(&r)); count++) {
		snprintf(want, sizeof want, "{\"n\":%d}", count);
		assert_string_equal(l, want);
	}
	assert_int_equal(count, 500);
	buf_free(&in);
	jr_reader_free(&r);
}

/* a too long line that is complete in the buffer: error, then the next line */
static void test_reader_too_long_complete(void **state)
{
	struct jr_reader r;
	char big[200];
	char *line;
	size_t len;
	const char *l;

	(void)state;
	memset(big, 'x', sizeof big);
	big[sizeof big - 1] = '\n';
	jr_reader_init(&r, 32);
	assert_int_equal(jr_reader_feed(&r, big, sizeof big), 0);
	assert_int_equal(jr_reader_feed(&r, "{\"ok\":1}\n", 9), 0);
	assert_int_equal(jr_reader_next(&r, &line, &len), JR_READ_TOOLONG);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"ok\":1}");
	assert_null(next_line(&r));
	jr_reader_free(&r);
}

/* a too long line still arriving: error once the buffer passes the limit;
 * a line of exactly max_line bytes is fine */
static void test_reader_too_long_partial(void **state)
{
	struct jr_reader r;
	char big[100];
	char *line;
	size_t len;
	const char *l;

	(void)state;
	memset(big, 'y', sizeof big);
	jr_reader_init(&r, 32);
	assert_int_equal(jr_reader_feed(&r, big, 32), 0);
	assert_null(next_line(&r));
	assert_int_equal(jr_reader_feed(&r, big, sizeof big), 0);
	assert_int_equal(jr_reader_next(&r, &line, &len), JR_READ_TOOLONG);
	assert_int_equal(r.buf.len, 0); /* memory given back */
	/* the rest of the dropped line, arriving later, is skipped up to its newline */
	assert_int_equal(jr_reader_feed(&r, "yyy", 3), 0);
	assert_null(next_line(&r));
	assert_int_equal(jr_reader_feed(&r, "yy\n{\"next\":1}\n", 14), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"next\":1}");
	/* and lines up to max_line bytes work again */
	assert_int_equal(jr_reader_feed(&r, big, 32), 0);
	assert_int_equal(jr_reader_feed(&r, "\n", 1), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_int_equal(strlen(l), 32);
	jr_reader_free(&r);
}

/* cpu_ms: this process's CPU time so far */
static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* read_all: feed n bytes of s in chunks of 64 KiB (as the broker reads),
 * taking every line after each feed; returns the number of lines */
static size_t read_all(struct jr_reader *r, const char *s, size_t n)
{
	size_t lines = 0;
	char *line;
	size_t len;

	for (size_t at = 0; at < n; at += 65536) {
		assert_int_equal(jr_reader_feed(r, s + at, n - at < 65536 ? n - at : 65536), 0);
		while (jr_reader_next(r, &line, &len) == JR_READ_LINE)
			lines++;
	}
	return lines;
}

/* the flood: 4 MiB of 2-byte lines ("1\n") costs about what one 4 MiB line
 * does; before, every line moved the rest of the buffer (quadratic: 64 GiB
 * of memmove for this input, in 64 KiB reads) */
static void test_reader_linear_in_short_lines(void **state)
{
	const size_t total = 4u << 20;
	char *flood = malloc(total), *one = malloc(total);
	struct jr_reader r;
	double t0, t_flood, t_one, t_empty;

	(void)state;
	assert_non_null(flood);
	assert_non_null(one);
	for (size_t i = 0; i < total; i += 2)
		flood[i] = '1', flood[i + 1] = '\n';
	memset(one, '1', total - 1);
	one[total - 1] = '\n';
	jr_reader_init(&r, total);
	t0 = cpu_ms();
	assert_int_equal(read_all(&r, flood, total), total / 2);
	t_flood = cpu_ms() - t0;
	jr_reader_free(&r);
	jr_reader_init(&r, total);
	t0 = cpu_ms();
	assert_int_equal(read_all(&r, one, total), 1);
	t_one = cpu_ms() - t0;
	jr_reader_free(&r);
	/* and empty lines (what a flood of "\n" is): stepped over in one loop */
	memset(flood, '\n', total);
	jr_reader_init(&r, total);
	t0 = cpu_ms();
	assert_int_equal(read_all(&r, flood, total), 0);
	t_empty = cpu_ms() - t0;
	jr_reader_free(&r);
	print_message("reader: %zu one-byte lines %.1f ms, %zu empty lines %.1f ms, one line of %zu bytes %.1f ms\n",
		      total / 2, t_flood, total, t_empty, total, t_one);
	/* per line work is a few calls (10x to 20x the one line's memchr,
	 * natively and under valgrind); the quadratic reader took 300x.
	 * Empty lines: 2x natively, more under valgrind, whose strspn is a
	 * plain loop */
	assert_true(t_flood < 30 * t_one + 200);
	assert_true(t_empty < 10 * t_one + 50);
	free(flood);
	free(one);
}

/* lines cut anywhere across feeds, with some taken late: every line
 * comes out whole, in order, and the buffer stays bounded by what is unread */
static void test_reader_offsets_across_feeds(void **state)
{
	struct jr_reader r;
	buf_t in = BUF_INIT;
	size_t at = 0, step = 1;
	int count = 0;
	char want[32];
	const char *l;

	(void)state;
	jr_reader_init(&r, 64);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(buf_printf(&in, "{\"n\":%d}\n", i), 0);
	while (at < in.len) {
		size_t n = in.len - at < step ? in.len - at : step;

		assert_int_equal(jr_reader_feed(&r, in.data + at, n), 0);
		at += n;
		step = step * 7 % 61 + 1;
		if (at % 3 == 0) /* now and then the caller takes nothing */
			continue;
		while ((l = next_line(&r))) {
			snprintf(want, sizeof want, "{\"n\":%d}", count++);
			assert_string_equal(l, want);
		}
		assert_true(r.buf.len - r.off <= 64 + 61);
	}
	while ((l = next_line(&r))) {
		snprintf(want, sizeof want, "{\"n\":%d}", count++);
		assert_string_equal(l, want);
	}
	assert_int_equal(count, 3000);
	buf_free(&in);
	jr_reader_free(&r);
}

/* after a large message the reader gives its memory back as soon as every byte
 * was handed out (a connection, busy or quiet, does not keep a 16 MiB buffer
 * for its life); a part of a next line held keeps the buffer until it is read */
static void test_reader_gives_memory_back(void **state)
{
	const size_t big = 4u << 20;
	char *line = malloc(big + 1);
	struct jr_reader r;
	const char *l;

	(void)state;
	assert_non_null(line);
	memset(line, 'x', big);
	line[big] = '\n';
	jr_reader_init(&r, big + 16);
	assert_int_equal(jr_reader_feed(&r, line, big + 1), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_int_equal(strlen(l), big);
	assert_null(next_line(&r)); /* all read: released, the peer may stay quiet now */
	assert_int_equal(r.buf.cap, 0);
	assert_int_equal(feed(&r, "{\"small\":1}\n"), 0);
	assert_true(r.buf.cap <= BUF_KEEP_MAX);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"small\":1}");
	assert_null(next_line(&r));
	/* a large line followed by the start of another: kept until that one is read */
	line[big] = '\n';
	assert_int_equal(jr_reader_feed(&r, line, big + 1), 0);
	assert_int_equal(feed(&r, "{\"next\":"), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_int_equal(strlen(l), big);
	assert_null(next_line(&r));
	assert_true(r.buf.cap > BUF_KEEP_MAX);
	assert_int_equal(feed(&r, "2}\n"), 0);
	l = next_line(&r);
	assert_non_null(l);
	assert_string_equal(l, "{\"next\":2}");
	assert_null(next_line(&r));
	assert_true(r.buf.cap <= BUF_KEEP_MAX);
	jr_reader_free(&r);
	free(line);
}

/* jr_reader_take hands the block holding the last line over (the line's pointer stays
 * valid in it); the bytes after that line stay in the reader */
static void test_reader_take(void **state)
{
	struct jr_reader r;
	size_t size = 0;
	char *line, *block;
	size_t len;

	(void)state;
	jr_reader_init(&r, 1024);
	assert_null(jr_reader_take(&r, &size)); /* nothing held */
	assert_int_equal(feed(&r, "{\"a\":1}\n{\"b\""), 0);
	assert_int_equal(jr_reader_next(&r, &line, &len), JR_READ_LINE);
	block = jr_reader_take(&r, &size);
	assert_non_null(block);
	assert_true(line >= block && line + len < block + size);
	assert_string_equal(line, "{\"a\":1}");
	assert_int_equal(feed(&r, ":2}\n"), 0);
	assert_string_equal(next_line(&r), "{\"b\":2}");
	assert_null(next_line(&r));
	free(block);
	jr_reader_free(&r);
}

static void test_parse(void **state)
{
	json_error_t e;
	json_t *v = jr_parse("{\"a\":1}", 7, &e);

	(void)state;
	assert_non_null(v);
	json_decref(v);
	assert_null(jr_parse("{\"a\":1,\"a\":2}", 13, &e)); /* duplicates rejected */
	assert_null(jr_parse("{nope", 5, &e));
	assert_true(strlen(e.text) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_request_builder),
		cmocka_unit_test(test_result_error_builders),
		cmocka_unit_test(test_append_line_and_versions),
		cmocka_unit_test(test_reader_split_and_crlf),
		cmocka_unit_test(test_reader_many_in_one_feed),
		cmocka_unit_test(test_reader_too_long_complete),
		cmocka_unit_test(test_reader_too_long_partial),
		cmocka_unit_test(test_reader_linear_in_short_lines),
		cmocka_unit_test(test_reader_offsets_across_feeds),
		cmocka_unit_test(test_reader_gives_memory_back),
		cmocka_unit_test(test_reader_take),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
