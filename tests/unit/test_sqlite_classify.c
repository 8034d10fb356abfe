/* test_sqlite_classify.c: unit tests for mcp-server-sqlite's statement checks, JSON conversion and memo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* The server's modules are not in libmcpgw.a: compile them in. */
#include "../../mcp-server-sqlite/memo.c"
#include "../../mcp-server-sqlite/sqlfunc.c"
#include "../../mcp-server-sqlite/sqljson.c"
#include "../../mcp-server-sqlite/sqlitedb.c"
#include "../../mcp-server-sqlite/sqlstmt.c"

static enum sqlstmt_kind classify(const char *s)
{
	return sqlstmt_classify(s, strlen(s));
}

static void test_classify(void **state)
{
	static const struct {
		const char *sql;
		enum sqlstmt_kind kind;
	} cases[] = {
		{ "", SQLSTMT_EMPTY },
		{ "  ;; -- only a comment\n /* and another */ ;", SQLSTMT_EMPTY },
		{ "SELECT 1", SQLSTMT_SELECT },
		{ "  select * from t", SQLSTMT_SELECT },
		{ "-- leading\n/* c */SeLeCt 1", SQLSTMT_SELECT },
		{ "VALUES (1), (2)", SQLSTMT_SELECT },
		{ "SELECTX 1", SQLSTMT_OTHER },
		{ "WITH x AS (SELECT 1) SELECT * FROM x", SQLSTMT_WITH },
		{ "insert into t values (1)", SQLSTMT_DML },
		{ "UPDATE t SET a = 1", SQLSTMT_DML },
		{ "DELETE FROM t", SQLSTMT_DML },
		{ "REPLACE INTO t VALUES (1)", SQLSTMT_DML },
		{ "CREATE TABLE t (a)", SQLSTMT_CREATE_TABLE },
		{ "create temp table t (a)", SQLSTMT_CREATE_TABLE },
		{ "CREATE TEMPORARY TABLE t (a)", SQLSTMT_CREATE_TABLE },
		{ "CREATE /* x */ TABLE IF NOT EXISTS t (a)", SQLSTMT_CREATE_TABLE },
		{ "CREATE INDEX i ON t (a)", SQLSTMT_OTHER },
		{ "CREATE VIEW v AS SELECT 1", SQLSTMT_OTHER },
		{ "CREATE TEMP VIEW v AS SELECT 1", SQLSTMT_OTHER },
		{ "CREATE", SQLSTMT_OTHER },
		{ "DROP TABLE t", SQLSTMT_OTHER },
		{ "PRAGMA journal_mode = WAL", SQLSTMT_OTHER },
		{ "ATTACH 'x.db' AS x", SQLSTMT_OTHER },
		{ "BEGIN", SQLSTMT_OTHER },
		{ "\"SELECT\" 1", SQLSTMT_OTHER },
		{ "(SELECT 1)", SQLSTMT_OTHER },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum sqlstmt_kind k = classify(cases[i].sql);

		if (k != cases[i].kind)
			fail_msg("'%s': got %s, want %s", cases[i].sql, sqlstmt_kind_name(k),
				 sqlstmt_kind_name(cases[i].kind));
	}
}

static void test_trailer(void **state)
{
	static const char *const yes[] = { "", ";", " ; ;\n", "-- done", "; /* c */ -- d\n ;", "/* unterminated" };
	static const char *const no[] = { "DROP TABLE t", "; x", "/* c */ SELECT 1", "-- c\nSELECT 1" };

	(void)state;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(sqlstmt_is_trailer(yes[i], yes[i] + strlen(yes[i])));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(sqlstmt_is_trailer(no[i], no[i] + strlen(no[i])));
}

static void test_text_utf8(void **state)
{
	/* valid, then: a stray continuation byte, an overlong '/', a surrogate, a cut sequence */
	static const char in[] = "h\xC3\xA9 \x80|\xC0\xAF|\xED\xA0\x80|\xE2\x82";
	json_t *j = sqljson_text(in, sizeof in - 1);
	const char *s;

	(void)state;
	assert_non_null(j);
	s = json_string_value(j);
	assert_non_null(strstr(s, "h\xC3\xA9 \xEF\xBF\xBD|"));
	assert_non_null(strstr(s, "|\xEF\xBF\xBD\xEF\xBF\xBD|"));
	assert_int_equal(json_string_length(j), strlen("h\xC3\xA9 ") + 3 + 1 + 6 + 1 + 9 + 1 + 6);
	json_decref(j);
}

static void test_hex(void **state)
{
	json_t *j = sqljson_hex("\x00\x01\xAB\xFF", 4);

	(void)state;
	assert_string_equal(json_string_value(j), "0001ABFF");
	json_decref(j);
	j = sqljson_hex("", 0);
	assert_string_equal(json_string_value(j), "");
	json_decref(j);
}

static int db_setup(void **state)
{
	struct sqlitedb *d = calloc(1, sizeof *d);
	char err[256];

	if (!d || sqlitedb_open(d, ":memory:", &(struct sqlitedb_bounds){ .max_rows = 5, .timeout_ms = 300 }, err,
				sizeof err) < 0) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int db_teardown(void **state)
{
	sqlitedb_close(*state);
	free(*state);
	return 0;
}

/* run one tool call and return its status; r is freed */
static enum sqlitedb_err run(struct sqlitedb *d,
			     enum sqlitedb_err (*fn)(struct sqlitedb *, const char *, size_t, struct sqlitedb_result *),
			     const char *sql, json_t **rows)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = fn(d, sql, strlen(sql), &r);

	if (rows)
		*rows = json_incref(r.rows);
	sqlitedb_result_free(&r);
	return e;
}

static size_t count_rows(struct sqlitedb *d, const char *table)
{
	char sql[128];
	json_t *rows = NULL;
	size_t n;

	snprintf(sql, sizeof sql, "SELECT count(*) AS n FROM %s", table);
	assert_int_equal(run(d, sqlitedb_read, sql, &rows), SQLITEDB_OK);
	n = (size_t)json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
	json_decref(rows);
	return n;
}

static void test_refusals(void **state)
{
	struct sqlitedb *d = *state;

	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TABLE t (a INTEGER, b TEXT)", NULL), SQLITEDB_OK);
	assert_int_equal(run(d, sqlitedb_write, "INSERT INTO t VALUES (1, 'x')", NULL), SQLITEDB_OK);
	/* wrong kind for the tool */
	assert_int_equal(run(d, sqlitedb_read, "INSERT INTO t VALUES (2, 'y')", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_read, "WITH x AS (SELECT 1) DELETE FROM t", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_read, "PRAGMA table_info(t)", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_write, "DROP TABLE t", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_write, "SELECT * FROM t", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_write, "WITH x AS (SELECT 1) SELECT * FROM x", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_create_table, "CREATE INDEX i ON t (a)", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_create_table, "DROP TABLE t", NULL), SQLITEDB_EREFUSED);
	/* several statements, empty queries */
	assert_int_equal(run(d, sqlitedb_read, "SELECT 1; DROP TABLE t", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_write, "DELETE FROM t; DROP TABLE t;", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TABLE u (a); DROP TABLE t", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_read, "", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_read, " ; -- nothing\n", NULL), SQLITEDB_EREFUSED);
	/* nothing above ran */
	assert_int_equal(count_rows(d, "t"), 1);
	assert_int_equal(run(d, sqlitedb_read, "SELECT * FROM u", NULL), SQLITEDB_ESQL);
	/* trailing semicolons and comments are fine */
	assert_int_equal(run(d, sqlitedb_read, "SELECT * FROM t; -- done\n;", NULL), SQLITEDB_OK);
	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TEMP TABLE tt (a);", NULL), SQLITEDB_OK);
	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TABLE IF NOT EXISTS t (a)", NULL), SQLITEDB_OK);
	/* SQL errors */
	assert_int_equal(run(d, sqlitedb_read, "SELEC 1", NULL), SQLITEDB_EREFUSED);
	assert_int_equal(run(d, sqlitedb_read, "SELECT FROM", NULL), SQLITEDB_ESQL);
	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TABLE t (a)", NULL), SQLITEDB_ESQL);
}

static void test_write_changes(void **state)
{
	struct sqlitedb *d = *state;
	struct sqlitedb_result r = { 0 };
	const char *q = "WITH n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) "
			"INSERT INTO w SELECT x FROM n RETURNING x";

	assert_int_equal(run(d, sqlitedb_create_table, "CREATE TABLE w (x)", NULL), SQLITEDB_OK);
	assert_int_equal(sqlitedb_write(d, q, strlen(q), &r), SQLITEDB_OK);
	assert_int_equal(r.changes, 3);
	sqlitedb_result_free(&r);
	assert_int_equal(count_rows(d, "w"), 3);
}

static void test_read_values_and_bounds(void **state)
{
	struct sqlitedb *d = *state;
	struct sqlitedb_result r = { 0 };
	const char *q = "SELECT 1 AS i, 2.5 AS f, NULL AS n, 'txt' AS s, x'0aff' AS b, 1e999 AS inf";
	const char *many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) SELECT x FROM c";
	const char *forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
	json_t *row;

	assert_int_equal(sqlitedb_read(d, q, strlen(q), &r), SQLITEDB_OK);
	row = json_array_get(r.rows, 0);
	assert_true(json_is_integer(json_object_get(row, "i")));
	assert_true(json_is_real(json_object_get(row, "f")));
	assert_true(json_is_null(json_object_get(row, "n")));
	assert_string_equal(json_string_value(json_object_get(row, "s")), "txt");
	assert_string_equal(json_string_value(json_object_get(row, "b")), "0AFF");
	assert_string_equal(json_string_value(json_object_get(row, "inf")), "Infinity");
	assert_true(r.exact15);
	sqlitedb_result_free(&r);

	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_read(d, many, strlen(many), &r), SQLITEDB_OK);
	assert_int_equal(json_array_size(r.rows), 5); /* max_rows */
	assert_true(r.truncated);
	assert_false(r.over_bytes);
	sqlitedb_result_free(&r);

	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_read(d, forever, strlen(forever), &r), SQLITEDB_ESQL);
	assert_non_null(strstr(r.msg, "MCP_SQLITE_TIMEOUT_MS"));
	sqlitedb_result_free(&r);
}

/* one value, one statement and the first row over their bounds: ETOOBIG naming the setting */
static void test_value_and_statement_bounds(void **state)
{
	struct sqlitedb *d = *state;
	struct sqlitedb_result r = { 0 };
	const char *huge = "SELECT randomblob(400000000) AS b", *ok = "SELECT length(randomblob(1048576)) AS n";
	size_t n = 1048576 + 32;
	char *sql = malloc(n + 1);

	assert_non_null(sql);
	assert_int_equal(sqlitedb_read(d, huge, strlen(huge), &r), SQLITEDB_ETOOBIG);
	assert_non_null(strstr(r.msg, "MCP_SQLITE_MAX_VALUE_BYTES"));
	assert_null(r.rows);
	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_read(d, ok, strlen(ok), &r), SQLITEDB_OK);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r.rows, 0), "n")), 1048576);
	sqlitedb_result_free(&r);
	/* a statement longer than the bound is refused before SQLite parses it */
	memset(sql, ' ', n);
	memcpy(sql, "SELECT 1 AS x /*", 16);
	memcpy(sql + n - 2, "*/", 2);
	sql[n] = '\0';
	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_read(d, sql, n, &r), SQLITEDB_ETOOBIG);
	assert_non_null(strstr(r.msg, "MCP_SQLITE_MAX_VALUE_BYTES"));
	/* a first row of 8 values of 1 MiB (16 MiB of hex) passes MCP_SQLITE_MAX_RESULT_BYTES */
	snprintf(sql, n, "SELECT %s",
		 "randomblob(1048576) AS a, randomblob(1048576) AS b, randomblob(1048576) AS c, "
		 "randomblob(1048576) AS d, randomblob(1048576) AS e");
	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_read(d, sql, strlen(sql), &r), SQLITEDB_ETOOBIG);
	assert_non_null(strstr(r.msg, "MCP_SQLITE_MAX_RESULT_BYTES"));
	free(sql);
}

static void test_tables(void **state)
{
	struct sqlitedb *d = *state;
	struct sqlitedb_result r = { 0 };
	char *s;

	assert_int_equal(run(d, sqlitedb_create_table,
			     "CREATE TABLE \"we\"\"ird\" (id INTEGER PRIMARY KEY AUTOINCREMENT)", NULL),
			 SQLITEDB_OK);
	assert_int_equal(sqlitedb_list_tables(d, &r), SQLITEDB_OK);
	s = json_dumps(r.rows, JSON_COMPACT);
	assert_string_equal(s, "[{\"name\":\"we\\\"ird\"}]"); /* no sqlite_sequence */
	free(s);
	sqlitedb_result_free(&r);

	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_describe_table(d, "we\"ird", 6, &r), SQLITEDB_OK);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r.rows, 0), "name")), "id");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r.rows, 0), "pk")), 1);
	sqlitedb_result_free(&r);

	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_describe_table(d, "x'); DROP TABLE t; --", 21, &r), SQLITEDB_ENOTFOUND);
	sqlitedb_result_free(&r);
}

static void test_memo(void **state)
{
	struct memo m;
	buf_t b = BUF_INIT;

	(void)state;
	memo_init(&m);
	assert_int_equal(memo_render(&m, &b), 0);
	assert_string_equal(b.data, "No business insights have been discovered yet.");
	assert_int_equal(memo_add(&m, "", 0), MEMO_EEMPTY);
	assert_int_equal(memo_add(&m, "one", 3), MEMO_OK);
	buf_reset(&b);
	assert_int_equal(memo_render(&m, &b), 0);
	assert_non_null(strstr(b.data, "Business Intelligence Memo"));
	assert_non_null(strstr(b.data, "\n- one"));
	assert_null(strstr(b.data, "Summary"));
	assert_int_equal(memo_add(&m, "two", 3), MEMO_OK);
	buf_reset(&b);
	assert_int_equal(memo_render(&m, &b), 0);
	assert_non_null(strstr(b.data, "- one\n- two\nSummary:\n"));
	for (size_t i = m.count; i < MEMO_MAX_INSIGHTS; i++)
		assert_int_equal(memo_add(&m, "x", 1), MEMO_OK);
	assert_int_equal(memo_add(&m, "x", 1), MEMO_EFULL);
	buf_free(&b);
	memo_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_trailer),
		cmocka_unit_test(test_text_utf8),
		cmocka_unit_test(test_hex),
		cmocka_unit_test_setup_teardown(test_refusals, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_write_changes, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_read_values_and_bounds, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_value_and_statement_bounds, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_tables, db_setup, db_teardown),
		cmocka_unit_test(test_memo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
