/* test_sse.c: unit tests for the Server-Sent Events parser (lib/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/sse.h"

/* every event as "event|id|data" lines, plus a count and an abort trigger */
struct seen {
	buf_t log;
	int n;
	int abort_at; /* return 7 from the callback on this event (1-based); 0 never */
	size_t last_len;
};

static int on_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct seen *s = ud;

	s->n++;
	s->last_len = len;
	assert_int_equal(strlen(data), len);
	assert_int_equal(buf_printf(&s->log, "%s|%s|%s\n", event, id, data), 0);
	return s->n == s->abort_at ? 7 : 0;
}

/* feed text in pieces of step bytes (0: all at once); returns the last result */
static int feed(struct sse_parser *p, const char *text, size_t step)
{
	size_t n = strlen(text), i;
	int rc = SSE_OK;

	if (step == 0)
		return sse_feed(p, text, n);
	for (i = 0; i < n && rc == SSE_OK; i += step)
		rc = sse_feed(p, text + i, n - i < step ? n - i : step);
	return rc;
}

/* parse text with every split size 0..8 and expect the same log each time */
static void expect_log(const char *text, const char *want)
{
	for (size_t step = 0; step <= 8; step++) {
		struct seen s = { BUF_INIT, 0, 0, 0 };
		struct sse_parser p;

		sse_init(&p, 1024, on_event, &s);
		assert_int_equal(feed(&p, text, step), SSE_OK);
		if (strcmp(s.log.data ? s.log.data : "", want) != 0)
			fail_msg("step %zu\n got: [%s]\nwant: [%s]", step, s.log.data ? s.log.data : "", want);
		sse_free(&p);
		buf_free(&s.log);
	}
}

static void test_basic_and_byte_by_byte(void **state)
{
	(void)state;
	expect_log("data: hello\n\n", "message||hello\n");
	expect_log("data:hello\n\n", "message||hello\n"); /* no space */
	expect_log("data:  two\n\n", "message|| two\n");  /* only one space is removed */
	expect_log("data: a\n\ndata: b\n\n", "message||a\nmessage||b\n");
	expect_log("data: {\"x\":1}\n\ndata: [DONE]\n\n", "message||{\"x\":1}\nmessage||[DONE]\n");
	expect_log("data: no blank line yet\n", "");
	expect_log("\xEF\xBB\xBF"
		   "data: bom\n\n",
		   "message||bom\n");
	expect_log("data: x\xEF\xBB\xBF\n\n", "message||x\xEF\xBB\xBF\n"); /* only a leading BOM goes */
}

static void test_line_ends(void **state)
{
	(void)state;
	expect_log("data: crlf\r\n\r\n", "message||crlf\n");
	expect_log("data: cr\r\rdata: next\r\r", "message||cr\nmessage||next\n");
	expect_log("data: a\r\ndata: b\rdata: c\n\r\n", "message||a\nb\nc\n");
	/* "\r" then "\n" in separate feeds is one line end, not two */
	expect_log("data: x\r\n\r\ndata: y\r\n\r\n", "message||x\nmessage||y\n");
}

static void test_multiline_and_fields(void **state)
{
	(void)state;
	expect_log("data: one\ndata: two\ndata\ndata: three\n\n", "message||one\ntwo\n\nthree\n");
	expect_log(": a comment\ndata: x\n: another\n\n", "message||x\n");
	expect_log(":\n\n", "");
	expect_log("event: ping\ndata: p\n\ndata: m\n\n", "ping||p\nmessage||m\n");
	expect_log("event: only-type\n\ndata: m\n\n", "message||m\n"); /* no data: no dispatch, type reset */
	expect_log("foo: bar\ndata: x\n\n", "message||x\n");           /* unknown field ignored */
	expect_log("data : x\n\n", "");                                /* field "data " is unknown */
	expect_log("DATA: x\n\n", "");                                 /* names are case-sensitive */
}

static void test_id_kept(void **state)
{
	(void)state;
	expect_log("id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n", "message|1|a\nmessage|1|b\nmessage||c\n");
	expect_log("id: 5\n\ndata: a\n\n", "message|5|a\n"); /* set by an event that is not dispatched */
}

static void test_retry(void **state)
{
	struct seen s = { BUF_INIT, 0, 0, 0 };
	struct sse_parser p;

	(void)state;
	sse_init(&p, 1024, on_event, &s);
	assert_int_equal(p.retry_ms, -1);
	assert_int_equal(feed(&p, "retry: 1500\n", 1), SSE_OK);
	assert_int_equal(p.retry_ms, 1500);
	assert_int_equal(feed(&p, "retry: 15x\nretry: -1\nretry: 1.5\nretry:\nretry:  7\n", 0), SSE_OK);
	assert_int_equal(p.retry_ms, 1500);
	assert_int_equal(feed(&p, "retry: 99999999999999999999999999\n", 0), SSE_OK);
	assert_int_equal(p.retry_ms, 1500);
	assert_int_equal(feed(&p, "retry:20\n", 0), SSE_OK);
	assert_int_equal(p.retry_ms, 20);
	assert_int_equal(s.n, 0);
	sse_reset(&p);
	assert_int_equal(p.retry_ms, -1);
	sse_free(&p);
	buf_free(&s.log);
}

static void test_empty_data(void **state)
{
	struct seen s = { BUF_INIT, 0, 0, 99 };
	struct sse_parser p;

	(void)state;
	sse_init(&p, 1024, on_event, &s);
	assert_int_equal(feed(&p, "data:\n\n", 1), SSE_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last_len, 0);
	assert_int_equal(feed(&p, "data\n\n", 0), SSE_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.last_len, 0);
	assert_int_equal(feed(&p, "data\ndata\n\n", 0), SSE_OK);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.last_len, 1);                 /* "\n" */
	assert_int_equal(feed(&p, "\n\n\n", 0), SSE_OK); /* blank lines alone dispatch nothing */
	assert_int_equal(s.n, 3);
	sse_free(&p);
	buf_free(&s.log);
}

static void test_oversized(void **state)
{
	struct seen s = { BUF_INIT, 0, 0, 0 };
	struct sse_parser p;
	char big[64];

	(void)state;
	/* a data field that fits the bound exactly: 10 bytes + '\n' = 11 */
	sse_init(&p, 11, on_event, &s);
	assert_int_equal(feed(&p, "data:0123456789\n\n", 1), SSE_OK);
	assert_int_equal(s.n, 1);
	/* two lines that together exceed it */
	assert_int_equal(feed(&p, "data:01234\ndata:56789\n\n", 0), SSE_ETOOBIG);
	assert_int_equal(feed(&p, "data: x\n\n", 0), SSE_ETOOBIG); /* sticky */
	assert_int_equal(s.n, 1);
	sse_reset(&p);
	assert_int_equal(feed(&p, "data: x\n\n", 0), SSE_OK);
	assert_int_equal(s.n, 2);
	/* one endless line without a line end (also a comment) */
	memset(big, 'x', sizeof big);
	sse_reset(&p);
	assert_int_equal(sse_feed(&p, ":", 1), SSE_OK);
	assert_int_equal(sse_feed(&p, big, 10 + SSE_LINE_SLACK), SSE_OK);
	assert_int_equal(sse_pending(&p), 1);
	assert_int_equal(sse_feed(&p, big, 1), SSE_ETOOBIG);
	assert_string_equal(sse_strerror(SSE_ETOOBIG), "event too large");
	sse_free(&p);
	buf_free(&s.log);
}

static void test_callback_abort(void **state)
{
	struct seen s = { BUF_INIT, 0, 2, 0 };
	struct sse_parser p;

	(void)state;
	sse_init(&p, 1024, on_event, &s);
	assert_int_equal(feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 0), 7);
	assert_int_equal(s.n, 2);
	assert_int_equal(feed(&p, "data: 4\n\n", 0), 7);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.log.data, "message||1\nmessage||2\n");
	sse_free(&p);
	buf_free(&s.log);
}

static void test_pending(void **state)
{
	struct seen s = { BUF_INIT, 0, 0, 0 };
	struct sse_parser p;

	(void)state;
	sse_init(&p, 1024, on_event, &s);
	assert_int_equal(sse_pending(&p), 0);
	assert_int_equal(feed(&p, "data: x", 0), SSE_OK);
	assert_int_equal(sse_pending(&p), 1);
	assert_int_equal(feed(&p, "\n", 0), SSE_OK);
	assert_int_equal(sse_pending(&p), 1);
	assert_int_equal(feed(&p, "\n", 0), SSE_OK);
	assert_int_equal(sse_pending(&p), 0);
	assert_int_equal(s.n, 1);
	sse_free(&p);
	buf_free(&s.log);
}

static int count_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	(void)event, (void)data, (void)len, (void)id;
	++*(size_t *)ud;
	return 0;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* sse_cost: CPU ms to feed s (n bytes) in 16 KiB pieces (libcurl's), events counted */
static double sse_cost(const char *s, size_t n, size_t *events)
{
	struct sse_parser p;
	double t0 = cpu_ms();

	*events = 0;
	sse_init(&p, n, count_event, events);
	for (size_t at = 0; at < n; at += 16384)
		assert_int_equal(sse_feed(&p, s + at, n - at < 16384 ? n - at : 16384), SSE_OK);
	sse_free(&p);
	return cpu_ms() - t0;
}

/* many short lines (a flood of tiny events and comments) cost about what one
 * long data line does: the parser is linear in the bytes (no per-line move of
 * what follows, as the JSON-RPC line reader once did: issue 15) */
static void test_linear_in_short_lines(void **state)
{
	const size_t total = 4u << 20;
	char *flood = malloc(total + 2), *one = malloc(total + 2);
	size_t ev_flood, ev_one;
	double t_flood, t_one;

	(void)state;
	assert_non_null(flood);
	assert_non_null(one);
	for (size_t i = 0; i < total; i += 8)
		memcpy(flood + i, i % 16 ? ":\n\n\n\n\n\n\n" : "data:x\n\n", 8); /* comments, blank lines, events */
	memcpy(one, "data:", 5);
	memset(one + 5, 'x', total - 5);
	memcpy(one + total - 2, "\n\n", 2);
	t_flood = sse_cost(flood, total, &ev_flood);
	t_one = sse_cost(one, total, &ev_one);
	print_message("sse: %zu events in short lines %.1f ms, one event of %zu bytes %.1f ms\n", ev_flood, t_flood,
		      total, t_one);
	assert_int_equal(ev_flood, total / 16);
	assert_int_equal(ev_one, 1);
	assert_true(t_flood < 40 * t_one + 200);
	free(flood);
	free(one);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_and_byte_by_byte),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_multiline_and_fields),
		cmocka_unit_test(test_id_kept),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_empty_data),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_callback_abort),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_linear_in_short_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
