/* test_accesslog.c: unit tests for lib/http/accesslog.c: the logfmt line's fields, quoting, bounds, and ids that cannot break a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "http/accesslog.h"

/* fmt: the line for a with a fixed clock (start 1 s, end 1.25 s) */
static const char *fmt(struct accesslog *a, const char *method, const char *endpoint, int status, size_t bytes)
{
	static char line[ACCESSLOG_LINE_MAX];

	a->start_us = 1000000;
	accesslog_format(a, method, endpoint, status, bytes, 1250000, line, sizeof line);
	return line;
}

static void test_chat_line(void **state)
{
	struct accesslog a;

	(void)state;
	accesslog_begin(&a);
	accesslog_set_caller(&a, "key_7f3a");
	accesslog_set_model(&a, "gpt-4o");
	accesslog_add_round(&a);
	accesslog_add_tool(&a, "sqlite", "read_query", 0);
	accesslog_add_tool(&a, "everything", "echo", 1);
	accesslog_set_usage(&a, 31, 7);
	assert_string_equal(fmt(&a, "POST", "/v1/chat/completions", 200, 345),
			    "access method=POST endpoint=/v1/chat/completions status=200 key=key_7f3a model=gpt-4o "
			    "duration_ms=250 bytes_out=345 rounds=1 tools=2 tool_errors=1 "
			    "tool_names=sqlite.read_query,everything.echo prompt_tokens=31 completion_tokens=7");
}

static void test_anonymous_and_unrouted(void **state)
{
	struct accesslog a;

	(void)state;
	accesslog_begin(&a);
	accesslog_set_caller(&a, NULL);
	assert_string_equal(fmt(&a, "GET", NULL, 404, 0),
			    "access method=GET endpoint=- status=404 key=- model=- duration_ms=250 bytes_out=0 "
			    "rounds=0 tools=0 tool_errors=0 tool_names=- prompt_tokens=- completion_tokens=-");
}

/* a model or caller with spaces, quotes, '=' or newlines cannot add a field or a line */
static void test_hostile_ids(void **state)
{
	struct accesslog a;
	const char *line;

	(void)state;
	accesslog_begin(&a);
	accesslog_set_model(&a, "m status=999\n\"x\"");
	accesslog_set_caller(&a, "a b");
	accesslog_add_tool(&a, "s=1", "t x", 0);
	line = fmt(&a, "PO ST", "/v1/tools", 200, 1);
	assert_null(strchr(line, '\n'));
	assert_null(strchr(line, '"'));
	assert_non_null(strstr(line, " model=m_status_999__x_ "));
	assert_non_null(strstr(line, " key=a_b "));
	assert_non_null(strstr(line, " method=PO_ST "));
	assert_non_null(strstr(line, " tool_names=s_1.t_x "));
	assert_null(strstr(line, "status=999"));
}

/* many tools: the names are cut with "...", the count stays right, the line fits */
static void test_many_tools(void **state)
{
	struct accesslog a;
	const char *line;
	char want[32];

	(void)state;
	accesslog_begin(&a);
	for (int i = 0; i < 200; i++)
		accesslog_add_tool(&a, "server_with_a_long_name", "tool_with_a_long_name", i % 2);
	assert_true(strlen(a.tools) < sizeof a.tools);
	assert_string_equal(a.tools + strlen(a.tools) - 4, ",...");
	line = fmt(&a, "POST", "/v1/chat/completions", 200, 1);
	snprintf(want, sizeof want, " tools=200 tool_errors=100 ");
	assert_non_null(strstr(line, want));
	assert_true(strlen(line) < ACCESSLOG_LINE_MAX);
}

/* a small buffer: cut, terminated, never overrun */
static void test_small_buffer(void **state)
{
	struct accesslog a;
	char out[24];
	size_t n;

	(void)state;
	accesslog_begin(&a);
	accesslog_set_model(&a, "a-model-with-a-long-name");
	memset(out, 'Z', sizeof out);
	n = accesslog_format(&a, "POST", "/v1/chat/completions", 200, 1, a.start_us, out, sizeof out - 4);
	assert_true(n < sizeof out - 4);
	assert_int_equal(out[n], '\0');
	assert_int_equal(out[sizeof out - 1], 'Z');
}

/* accesslog_end keeps how the request ended; accesslog_write writes it once */
static void test_end_then_write_once(void **state)
{
	struct accesslog a;
	char line[ACCESSLOG_LINE_MAX];

	(void)state;
	accesslog_begin(&a);
	accesslog_write(&a, NULL); /* not ended: nothing */
	accesslog_end(&a, "GET", "/health", 503, 77);
	assert_int_equal(a.ended, 1);
	assert_string_equal(a.method, "GET");
	accesslog_format(&a, a.method, a.endpoint, a.status, a.bytes_out, a.end_us, line, sizeof line);
	assert_non_null(strstr(line, "access method=GET endpoint=/health status=503 "));
	assert_non_null(strstr(line, " bytes_out=77 "));
	log_init("test_accesslog", LOGL_ERROR, NULL); /* the line itself is not looked at here */
	accesslog_write(&a, NULL);
	assert_int_equal(a.ended, 0);
}

/* the counts of each request: by endpoint, method and status, each kind counted apart (what a
 * thread remembers of the kinds it saw never mixes two of them) */
static void test_counts(void **state)
{
	static const char *const endpoints[] = { "/v1/tools", "/health" }; /* a route's pattern outlives requests */
	char dir[] = "/tmp/test_accesslog.XXXXXX", err[256], cmd[64];
	struct metrics *m;
	struct accesslog a;
	buf_t b = BUF_INIT;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(m = metrics_open(dir, err, sizeof err));
	log_init("test_accesslog", LOGL_ERROR, NULL);
	for (int i = 0; i < 40; i++) {
		accesslog_begin(&a);
		accesslog_end(&a, i % 4 == 3 ? "GET" : "POST", endpoints[i % 2], i % 5 == 0 ? 404 : 200, 10);
		accesslog_write(&a, m);
	}
	accesslog_begin(&a);
	accesslog_end(&a, "BREW", NULL, 404, 10); /* no route: method "other", endpoint "-" */
	accesslog_write(&a, m);
	assert_int_equal(metrics_render(m, &b), 0);
	/* i even: /v1/tools, odd: /health; i % 4 == 3 (odd): GET; i % 5 == 0: 404 */
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/v1/tools\",method=\"POST\",status=\"200\"} 16\n"));
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/v1/tools\",method=\"POST\",status=\"404\"} 4\n"));
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/health\",method=\"POST\",status=\"200\"} 8\n"));
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/health\",method=\"POST\",status=\"404\"} 2\n"));
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/health\",method=\"GET\",status=\"200\"} 8\n"));
	assert_non_null(
		strstr(b.data, "mcpgw_http_requests_total{endpoint=\"/health\",method=\"GET\",status=\"404\"} 2\n"));
	assert_non_null(strstr(b.data, "mcpgw_http_requests_total{endpoint=\"-\",method=\"other\",status=\"404\"} 1\n"));
	assert_non_null(strstr(b.data, "mcpgw_http_request_duration_seconds_count{endpoint=\"/v1/tools\"} 20\n"));
	assert_non_null(strstr(b.data, "mcpgw_http_request_duration_seconds_count{endpoint=\"/health\"} 20\n"));
	buf_free(&b);
	metrics_close(m);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chat_line),    cmocka_unit_test(test_anonymous_and_unrouted),
		cmocka_unit_test(test_hostile_ids),  cmocka_unit_test(test_many_tools),
		cmocka_unit_test(test_small_buffer), cmocka_unit_test(test_end_then_write_once),
		cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
