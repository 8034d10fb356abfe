/* test_metrics.c: unit tests for lib/core/metrics.c: series names and escaping, counts added from several processes at once, cumulative histograms, the rendered text, a full table, a hostile file, dense claiming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"
#include "core/statedir.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-metrics.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char p[128];

	(void)state;
	snprintf(p, sizeof p, "%s/%s", dir, STATEDIR_METRICS);
	unlink(p);
	rmdir(dir);
	return 0;
}

static void test_series_names(void **state)
{
	char s[METRICS_NAME_MAX], small[20];
	const char *l[] = { "server", "a\"b\\c\nd", "tool", "t", NULL };
	const char *none[] = { NULL };
	char huge[400];

	(void)state;
	assert_int_equal(metrics_series(s, sizeof s, "x_total", l), 0);
	assert_string_equal(s, "x_total{server=\"a\\\"b\\\\c\\nd\",tool=\"t\"}");
	assert_int_equal(metrics_series(s, sizeof s, "x_total", none), 0);
	assert_string_equal(s, "x_total");
	assert_int_equal(metrics_series(s, sizeof s, "x_total", NULL), 0);
	assert_string_equal(s, "x_total");
	assert_int_equal(metrics_series(small, sizeof small, "x_total", l), -1);
	memset(huge, 'v', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	l[1] = huge;
	assert_int_equal(metrics_series(s, sizeof s, "x_total", l), -1); /* over METRICS_NAME_MAX */
}

/* value: the rendered line of series, its value as text ("" when absent) */
static const char *value(const buf_t *b, const char *series)
{
	static char v[64];
	size_t n = strlen(series);

	v[0] = '\0';
	for (const char *p = b->data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			snprintf(v, sizeof v, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			break;
		}
	return v;
}

/* four processes add at once through their own mappings: nothing is lost */
static void test_counts_across_processes(void **state)
{
	char err[256];
	struct metrics *m;
	buf_t b = BUF_INIT;
	pid_t kids[4];

	(void)state;
	for (int k = 0; k < 4; k++) {
		if ((kids[k] = fork()) == 0) {
			struct metrics *c = metrics_open(dir, err, sizeof err);

			for (int i = 0; c && i < 20000; i++) {
				metrics_add(c, "mcpgw_tool_rounds_total", 1);
				if (i % 100 == 0) { /* new series claimed while others add */
					char s[METRICS_NAME_MAX], id[16];
					const char *l[] = { "server", id, NULL };

					snprintf(id, sizeof id, "s%d", i / 100);
					if (metrics_series(s, sizeof s, "mcpgw_mcp_server_restarts_total", l) == 0)
						metrics_add(c, s, 1);
				}
			}
			metrics_close(c);
			_exit(c ? 0 : 1);
		}
		assert_true(kids[k] > 0);
	}
	for (int k = 0; k < 4; k++) {
		int st;

		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	m = metrics_open(dir, err, sizeof err);
	assert_non_null(m);
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(value(&b, "mcpgw_tool_rounds_total"), "80000");
	assert_string_equal(value(&b, "mcpgw_mcp_server_restarts_total{server=\"s0\"}"), "4");
	assert_string_equal(value(&b, "mcpgw_mcp_server_restarts_total{server=\"s199\"}"), "4");
	assert_string_equal(value(&b, "mcpgw_metrics_dropped_total"), "0");
	assert_non_null(strstr(b.data, "# TYPE mcpgw_tool_rounds_total counter\n"));
	assert_non_null(strstr(b.data, "# TYPE mcpgw_mcp_server_restarts_total counter\n"));
	buf_free(&b);
	metrics_close(m);
}

static void test_histogram(void **state)
{
	char err[256];
	struct metrics *m = metrics_open(dir, err, sizeof err);
	const char *l[] = { "endpoint", "/v1/tools", NULL };
	buf_t b = BUF_INIT;
	const char *p, *q, *r;

	(void)state;
	assert_non_null(m);
	metrics_observe(m, "mcpgw_http_request_duration_seconds", l, 3000);      /* 3 ms */
	metrics_observe(m, "mcpgw_http_request_duration_seconds", l, 70000);     /* 70 ms */
	metrics_observe(m, "mcpgw_http_request_duration_seconds", l, 500000000); /* 500 s */
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/v1/tools\",le=\"0.005\"}"),
			    "1");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/v1/tools\",le=\"0.05\"}"),
			    "1");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/v1/tools\",le=\"0.1\"}"),
			    "2");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/v1/tools\",le=\"120\"}"),
			    "2");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/v1/tools\",le=\"+Inf\"}"),
			    "3");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_count{endpoint=\"/v1/tools\"}"), "3");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_sum{endpoint=\"/v1/tools\"}"), "500.073000");
	/* one TYPE for the family, buckets in increasing le (0.05 before 0.1 before 120 before +Inf) */
	assert_non_null(strstr(b.data, "# TYPE mcpgw_http_request_duration_seconds histogram\n"));
	assert_null(strstr(b.data, "# TYPE mcpgw_http_request_duration_seconds_bucket"));
	p = strstr(b.data, "le=\"0.05\"");
	q = strstr(b.data, "le=\"0.1\"");
	r = strstr(b.data, "le=\"+Inf\"");
	assert_true(p && q && r && p < q && q < r);
	assert_true(strstr(b.data, "le=\"120\"") < r && strstr(b.data, "le=\"10\"") < strstr(b.data, "le=\"120\""));
	buf_free(&b);
	metrics_close(m);
}

/* values looked up once (metrics_ref, metrics_hist_ref) count as metrics_add and metrics_observe do */
static void test_refs(void **state)
{
	char err[256], series[METRICS_NAME_MAX];
	struct metrics *m = metrics_open(dir, err, sizeof err);
	const char *a[] = { "endpoint", "/a", NULL }, *b2[] = { "endpoint", "/b", NULL };
	const int64_t obs[] = { 3000, 70000, 70000, 500000000, 5000 };
	struct metrics_hist h;
	buf_t b = BUF_INIT;
	int64_t *r;
	char want[128];

	(void)state;
	assert_non_null(m);
	assert_int_equal(metrics_series(series, sizeof series, "mcpgw_tool_rounds_total", NULL), 0);
	assert_non_null(r = metrics_ref(m, series));
	metrics_ref_add(r, 2);
	metrics_add(m, "mcpgw_tool_rounds_total", 3);
	metrics_ref_add(NULL, 1); /* nothing */
	assert_int_equal(metrics_hist_ref(m, "mcpgw_http_request_duration_seconds", a, &h), 0);
	for (size_t i = 0; i < sizeof obs / sizeof *obs; i++) {
		metrics_hist_observe(&h, obs[i]);
		metrics_observe(m, "mcpgw_http_request_duration_seconds", b2, obs[i]);
	}
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(value(&b, "mcpgw_tool_rounds_total"), "5");
	for (const char *le = "0.005\0000.01\0000.05\0000.1\0001\000120\000+Inf\000"; *le; le += strlen(le) + 1) {
		char other[128];

		char va[64];

		snprintf(want, sizeof want, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/a\",le=\"%s\"}", le);
		snprintf(other, sizeof other, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/b\",le=\"%s\"}",
			 le);
		snprintf(va, sizeof va, "%s", value(&b, want)); /* value's buffer is static */
		assert_true(*va);
		assert_string_equal(va, value(&b, other));
	}
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_bucket{endpoint=\"/a\",le=\"0.1\"}"), "4");
	assert_string_equal(value(&b, "mcpgw_http_request_duration_seconds_count{endpoint=\"/a\"}"), "5");
	snprintf(want, sizeof want, "%s", value(&b, "mcpgw_http_request_duration_seconds_sum{endpoint=\"/a\"}"));
	assert_string_equal(want, "500.148000");
	assert_string_equal(want, value(&b, "mcpgw_http_request_duration_seconds_sum{endpoint=\"/b\"}"));
	buf_free(&b);
	metrics_close(m);
}

/* a full table: updates of new series are dropped and counted, old ones still count */
static void test_full_table(void **state)
{
	char err[256], s[METRICS_NAME_MAX], id[16];
	struct metrics *m = metrics_open(dir, err, sizeof err);
	const char *l[] = { "n", id, NULL };
	buf_t b = BUF_INIT;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < METRICS_SLOTS + 5; i++) {
		snprintf(id, sizeof id, "%d", i);
		assert_int_equal(metrics_series(s, sizeof s, "t_total", l), 0);
		metrics_add(m, s, 1);
	}
	metrics_add(m, "t_total{n=\"0\"}", 1);
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(value(&b, "mcpgw_metrics_dropped_total"), "5");
	assert_string_equal(value(&b, "t_total{n=\"0\"}"), "2");
	assert_non_null(strstr(b.data, "# TYPE t_total untyped\n"));
	buf_free(&b);
	metrics_close(m);
}

/* a file of another layout, or a symlink, is refused */
static void test_refused(void **state)
{
	char err[256], p[128];
	FILE *f;

	(void)state;
	snprintf(p, sizeof p, "%s/%s", dir, STATEDIR_METRICS);
	assert_non_null(f = fopen(p, "w"));
	fputs("not a metrics file", f);
	fclose(f);
	assert_null(metrics_open(dir, err, sizeof err));
	assert_non_null(strstr(err, "not a metrics file"));
	unlink(p);
	assert_int_equal(symlink("/tmp/elsewhere", p), 0);
	assert_null(metrics_open(dir, err, sizeof err));
	unlink(p);
	metrics_add(NULL, "x", 1); /* no handle: nothing */
}

/* a file whose index and names were written by something else (out-of-range
 * slots, names without their NUL): rendered without reading past the file */
static void test_hostile_file(void **state)
{
	char err[256], p[128];
	struct metrics *m;
	buf_t b = BUF_INIT;
	FILE *f;
	uint32_t word;

	(void)state;
	assert_non_null(m = metrics_open(dir, err, sizeof err));
	metrics_add(m, "good_total", 3);
	metrics_close(m);
	snprintf(p, sizeof p, "%s/%s", dir, STATEDIR_METRICS);
	assert_non_null(f = fopen(p, "r+"));
	/* index entries after the 64-byte header: one naming slot 2^32-2, one slot 1 whose name fills it */
	word = 7u << 16 | 0xffffu;
	assert_int_equal(fseek(f, 64 + 4 * 100, SEEK_SET), 0);
	assert_int_equal(fwrite(&word, sizeof word, 1, f), 1);
	word = 9u << 16 | 2;
	assert_int_equal(fwrite(&word, sizeof word, 1, f), 1);
	assert_int_equal(fseek(f, 64 + 4 * 2 * METRICS_SLOTS + 8 * METRICS_SLOTS + METRICS_NAME_MAX, SEEK_SET), 0);
	for (int i = 0; i < METRICS_NAME_MAX; i++)
		assert_int_equal(fputc('x', f), 'x');
	fclose(f);
	assert_non_null(m = metrics_open(dir, err, sizeof err));
	assert_int_equal(metrics_render(m, &b), 0);
	assert_string_equal(value(&b, "good_total"), "3");
	assert_non_null(strstr(b.data, "xxxxxxxx"));
	buf_free(&b);
	metrics_close(m);
}

/* the series one process claims sit side by side: 200 series, their values on at most 2 pages */
static void test_dense(void **state)
{
	char err[256], s[METRICS_NAME_MAX], id[16];
	struct metrics *m = metrics_open(dir, err, sizeof err);
	const char *l[] = { "n", id, NULL };
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 200; i++) {
		int64_t *v;

		snprintf(id, sizeof id, "%d", i);
		assert_int_equal(metrics_series(s, sizeof s, "d_total", l), 0);
		assert_non_null(v = metrics_ref(m, s));
		lo = (uintptr_t)v < lo ? (uintptr_t)v : lo;
		hi = (uintptr_t)v > hi ? (uintptr_t)v : hi;
	}
	assert_true(hi - lo < 200 * sizeof(int64_t));
	metrics_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_series_names),
		cmocka_unit_test_setup_teardown(test_counts_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dense, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
