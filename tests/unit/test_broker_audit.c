/* test_broker_audit.c: unit tests for broker/audit.c and the state store's audit table: a row per call with sizes and outcome, payloads only when enabled, pruning by retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "core/statestore.h"
#include "sharedtext.h"

#define DAY_MS 86400000LL

struct world {
	char dir[64];
	char path[128];
	char url[160];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/mcpgw-audit.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->path, sizeof w->path, "%s/state.db", w->dir);
	snprintf(w->url, sizeof w->url, "sqlite:%s", w->path);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char p[200];

	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		snprintf(p, sizeof p, "%s%s", w->path, sfx[i]);
		unlink(p);
	}
	rmdir(w->dir);
	free(w);
	return 0;
}

/* query: the first column of the first row of sql on the store, as text into out */
static void query(const struct world *w, const char *sql, char *out, size_t outlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static int64_t now_ms = 1000 * DAY_MS;
static int64_t fixed_clock(void)
{
	return now_ms;
}

/* calls: an ok call, an isError result, a JSON-RPC error and a failure without one */
static void four_calls(struct audit *a)
{
	json_t *args = json_pack("{s:s}", "query", "SELECT 'payload-canary'");
	json_t *ok = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", "[{\"x\":1}]");
	json_t *bad = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", "no", "isError", 1);
	json_t *err = json_pack("{s:i, s:s}", "code", -32602, "message", "Unknown tool");

	audit_call(a, "key_1", "sqlite", "read_query", now_ms - 5, 5, args, ok, NULL, 0);
	audit_call(a, "", "sqlite", "read_query", now_ms - 3, 3, args, bad, NULL, 0);
	audit_call(a, NULL, "everything", "echo", now_ms - 2, 2, NULL, NULL, err, -32603);
	audit_call(a, "key_2", "everything", "slow", now_ms - 1000, 1000, args, NULL, NULL, -32001);
	json_decref(args);
	json_decref(ok);
	json_decref(bad);
	json_decref(err);
}

static void test_rows_sizes_no_payloads(void **state)
{
	struct world *w = *state;
	struct audit_opts o = {
		.store_url = w->url, .store_timeout_ms = 2000, .retention_ms = 30 * DAY_MS, .clock = fixed_clock
	};
	struct audit *a = audit_new(&o);
	char out[512];

	assert_non_null(a);
	four_calls(a);
	audit_flush(a);
	assert_int_equal(audit_dropped(a), 0);
	audit_free(a);
	query(w,
	      "SELECT group_concat(key_id || '/' || server || '/' || tool || '/' || outcome || '/' || error_code, ' ')"
	      " FROM (SELECT * FROM audit ORDER BY id)",
	      out, sizeof out);
	assert_string_equal(out, "key_1/sqlite/read_query/ok/0 /sqlite/read_query/is_error/0 "
				 "/everything/echo/error/-32602 key_2/everything/slow/error/-32001");
	/* sizes: compact JSON, {"query":"SELECT 'payload-canary'"} is 35 bytes */
	query(w,
	      "SELECT group_concat(args_bytes || ':' || (result_bytes > 0), ' ') FROM (SELECT * FROM audit ORDER BY id)",
	      out, sizeof out);
	assert_string_equal(out, "35:1 35:1 0:1 35:0");
	query(w, "SELECT count(*) FROM audit WHERE arguments IS NOT NULL OR result IS NOT NULL", out, sizeof out);
	assert_string_equal(out, "0");
	query(w, "SELECT time_ms || '/' || duration_ms FROM audit WHERE tool = 'slow'", out, sizeof out);
	assert_string_equal(out, "86399999000/1000");
}

static void test_payloads_when_enabled(void **state)
{
	struct world *w = *state;
	struct audit_opts o = { .store_url = w->url,
				.store_timeout_ms = 2000,
				.payloads = 1,
				.retention_ms = 30 * DAY_MS,
				.clock = fixed_clock };
	struct audit *a = audit_new(&o);
	char out[512];

	assert_non_null(a);
	four_calls(a);
	audit_free(a); /* writes what is queued */
	query(w, "SELECT arguments FROM audit WHERE key_id = 'key_1'", out, sizeof out);
	assert_string_equal(out, "{\"query\":\"SELECT 'payload-canary'\"}");
	query(w, "SELECT result FROM audit WHERE tool = 'echo'", out, sizeof out);
	assert_string_equal(out, "{\"code\":-32602,\"message\":\"Unknown tool\"}");
	query(w, "SELECT count(*) FROM audit WHERE result IS NULL", out, sizeof out);
	assert_string_equal(out, "1"); /* the failure without an answer */
}

/* a result given as text (a large one the broker passes on without a tree): its size is
 * its length, its outcome says isError, and its text is kept only with payloads */
static void test_result_as_text(void **state)
{
	struct world *w = *state;
	static const char text[] = "{\"content\":[{\"type\":\"text\",\"text\":\"big\"}],\"isError\":true}";
	char out[512];

	for (int payloads = 0; payloads <= 1; payloads++) {
		struct audit_opts o = { .store_url = w->url,
					.store_timeout_ms = 2000,
					.payloads = payloads,
					.retention_ms = 30 * DAY_MS,
					.clock = fixed_clock };
		struct audit *a = audit_new(&o);
		char sql[200];

		assert_non_null(a);
		audit_call_text(a, "key_t", "fault", payloads ? "bigline2" : "bigline", now_ms - 4, 4, NULL, text,
				strlen(text), payloads);
		audit_free(a);
		snprintf(sql, sizeof sql,
			 "SELECT result_bytes || '/' || outcome || '/' || ifnull(result, '-') FROM audit WHERE tool = '%s'",
			 payloads ? "bigline2" : "bigline");
		query(w, sql, out, sizeof out);
		snprintf(sql, sizeof sql, "%zu/%s/%s", strlen(text), payloads ? "is_error" : "ok", payloads ? text : "-");
		assert_string_equal(out, sql);
	}
}

/* arguments given as text (a large call the broker never parsed): their size is the
 * text's length, their text kept only with payloads (the shared text referenced, not
 * copied, until the writer has it); with a result as a tree, and with one as text */
static void test_arguments_as_text(void **state)
{
	struct world *w = *state;
	static const char args[] = "{\"text\" : \"big arguments\"}";
	static const char text[] = "{\"content\":[]}";
	json_t *ok = json_pack("{s:[]}", "content");
	char out[512];

	assert_non_null(ok);
	for (int payloads = 0; payloads <= 1; payloads++) {
		struct audit_opts o = { .store_url = w->url,
					.store_timeout_ms = 2000,
					.payloads = payloads,
					.retention_ms = 30 * DAY_MS,
					.clock = fixed_clock };
		struct audit *a = audit_new(&o);
		struct sharedtext *t = sharedtext_copy(args, strlen(args));
		struct sharedtext_slice slice = { t, 0, strlen(args) };
		char sql[300];

		assert_non_null(a);
		assert_non_null(t);
		assert_int_equal(audit_keeps_payloads(a), payloads);
		audit_call_args_text(a, "key_a", "fault", payloads ? "argtree2" : "argtree", now_ms - 4, 4, &slice,
				     slice.len, ok, NULL, 0, NULL, 0, 0);
		audit_call_args_text(a, "key_a", "fault", payloads ? "argtext2" : "argtext", now_ms - 4, 4, &slice,
				     slice.len, NULL, NULL, 0, text, strlen(text), 1);
		slice.t = NULL; /* dropped before the call ended: only the size */
		audit_call_args_text(a, "key_a", "fault", payloads ? "argnone2" : "argnone", now_ms - 4, 4, &slice,
				     strlen(args), NULL, NULL, -32001, NULL, 0, 0);
		sharedtext_unref(t); /* the audit holds its own reference while it needs one */
		audit_free(a);
		for (int i = 0; i < 3; i++) {
			static const char *const tools[] = { "argtree", "argtext", "argnone" };
			static const char *const outcomes[] = { "ok", "is_error", "error" };

			snprintf(sql, sizeof sql,
				 "SELECT args_bytes || '/' || outcome || '/' || ifnull(arguments, '-') FROM audit "
				 "WHERE tool = '%s%s'",
				 tools[i], payloads ? "2" : "");
			query(w, sql, out, sizeof out);
			snprintf(sql, sizeof sql, "%zu/%s/%s", strlen(args), outcomes[i], payloads && i < 2 ? args : "-");
			assert_string_equal(out, sql);
		}
	}
	json_decref(ok);
}

/* pruning: rows older than the retention go (in bounded steps), newer ones stay */
static void test_pruning(void **state)
{
	struct world *w = *state;
	struct statestore_opts so = { .url = w->url, .timeout_ms = 2000 };
	char err[512], out[64];
	struct statestore *st = statestore_open(&so, err, sizeof err);
	struct statestore_audit_row rows[50];
	size_t pruned;
	struct audit *a;
	struct audit_opts o = {
		.store_url = w->url, .store_timeout_ms = 2000, .retention_ms = 30 * DAY_MS, .clock = fixed_clock
	};

	assert_non_null(st);
	for (int i = 0; i < 50; i++)
		rows[i] = (struct statestore_audit_row){ .time_ms = now_ms - (i < 30 ? 40 : 10) * DAY_MS - i,
							 .caller = "",
							 .server = "s",
							 .tool = "t",
							 .outcome = "ok" };
	assert_int_equal(statestore_audit_append(st, rows, 50), STATESTORE_OK);
	/* bounded: at most max per call, oldest first */
	assert_int_equal(statestore_audit_prune(st, now_ms - 35 * DAY_MS, 7, &pruned), STATESTORE_OK);
	assert_int_equal(pruned, 7);
	query(w, "SELECT count(*) FROM audit", out, sizeof out);
	assert_string_equal(out, "43");
	rows[0].tool = NULL;
	assert_int_equal(statestore_audit_append(st, rows, 1), STATESTORE_EINVAL);
	statestore_close(st);
	/* the writer prunes at start by MCPGW_AUDIT_RETENTION */
	a = audit_new(&o);
	assert_non_null(a);
	for (int i = 0; i < 100; i++) {
		query(w, "SELECT count(*) FROM audit", out, sizeof out);
		if (strcmp(out, "20") == 0)
			break;
		usleep(20000);
	}
	audit_free(a);
	query(w, "SELECT count(*) || '/' || min(time_ms) FROM audit", out, sizeof out);
	assert_string_equal(out, "20/85535999951");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows_sizes_no_payloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payloads_when_enabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_result_as_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arguments_as_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pruning, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
