/* test_sqlfunc.c: unit tests for the bundled SQLite server's function allow-list and its authorizer (mcp-server-sqlite/sqlfunc.c, sqlitedb.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The server's modules are not in libmcpgw.a: compile them in. */
#include "../../mcp-server-sqlite/sqlfunc.c"
#include "../../mcp-server-sqlite/sqljson.c"
#include "../../mcp-server-sqlite/sqlitedb.c"
#include "../../mcp-server-sqlite/sqlstmt.c"

/* What this SQLite build offers and the list leaves out, each for a reason;
 * a function a newer build adds fails test_every_builtin_judged until it is
 * put on one side or the other. */
static const char *const refused[] = {
	"fts3_tokenizer",            /* a pointer out, a call through a pointer in (sqlite.org/fts3.html#f3tknzr) */
	"fts5",                      /* hands out the fts5_api pointer (a pointer-passing interface) */
	"fts5_source_id",            /* build introspection */
	"load_extension",            /* runs a shared library's code */
	"sqlite_compileoption_get",  /* build introspection: tells an attacker what is compiled in */
	"sqlite_compileoption_used", /* the same */
	"sqlite_source_id",          /* the same */
	"optimize",                  /* FTS3's index merge: a write from inside a read */
	"sqlite_log",                /* writes into the application's error log */
	"rtreecheck",                /* r-tree debugging helpers: parse raw node blobs */
	"rtreedepth",
	"rtreenode",
	"readfile", /* the sqlite3 shell's file functions (not in the library, refused should one appear) */
	"writefile",
	"edit",
};

static int is_refused(const char *name)
{
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		if (strcasecmp(refused[i], name) == 0)
			return 1;
	return 0;
}

static void test_list_sorted_lower_unique(void **state)
{
	(void)state;
	assert_true(sqlfunc_count() > 100);
	for (size_t i = 0; i < sqlfunc_count(); i++) {
		const char *n = sqlfunc_at(i);

		for (const char *c = n; *c; c++)
			assert_false(*c >= 'A' && *c <= 'Z');
		if (i > 0)
			assert_true(strcmp(sqlfunc_at(i - 1), n) < 0); /* bsearch needs the order */
		assert_true(sqlfunc_allowed(n));
		assert_false(is_refused(n));
	}
	assert_null(sqlfunc_at(sqlfunc_count()));
}

static void test_allowed_and_refused(void **state)
{
	(void)state;
	assert_true(sqlfunc_allowed("upper"));
	assert_true(sqlfunc_allowed("UPPER")); /* SQL names are case-blind */
	assert_true(sqlfunc_allowed("json_extract"));
	assert_true(sqlfunc_allowed("->>"));
	assert_true(sqlfunc_allowed("count"));
	assert_true(sqlfunc_allowed("zeroblob"));
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		assert_false(sqlfunc_allowed(refused[i]));
	assert_false(sqlfunc_allowed("FTS3_TOKENIZER"));
	assert_false(sqlfunc_allowed("no_such_function"));
	assert_false(sqlfunc_allowed(""));
	assert_false(sqlfunc_allowed(NULL));
}

/* every function this SQLite build registers is on the list or refused for a reason */
static void test_every_builtin_judged(void **state)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char unjudged[1024] = "";
	int n = 0;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT DISTINCT name FROM pragma_function_list", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (!sqlfunc_allowed(name) && !is_refused(name) && strlen(unjudged) + strlen(name) + 2 < sizeof unjudged) {
			strcat(unjudged, " ");
			strcat(unjudged, name);
		}
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_true(n > 50);
	if (unjudged[0])
		fail_msg("SQLite offers functions neither allowed nor refused (sqlfunc.c):%s", unjudged);
}

/* run: the result of a read (or write) of sql on d */
static enum sqlitedb_err run(struct sqlitedb *d, int write, const char *sql, struct sqlitedb_result *r)
{
	memset(r, 0, sizeof *r);
	return write ? sqlitedb_write(d, sql, strlen(sql), r) : sqlitedb_read(d, sql, strlen(sql), r);
}

static void test_authorizer(void **state)
{
	struct sqlitedb d;
	struct sqlitedb_result r;
	char err[256];

	(void)state;
	assert_int_equal(sqlitedb_open(&d, ":memory:", &(struct sqlitedb_bounds){ .max_rows = 100 }, err, sizeof err), 0);
	/* the pointer form and the call-through form: refused before anything runs */
	assert_int_equal(run(&d, 0, "SELECT hex(fts3_tokenizer('simple'))", &r), SQLITEDB_EREFUSED);
	assert_non_null(strstr(r.msg, "fts3_tokenizer() is not allowed"));
	assert_int_equal(run(&d, 0, "SELECT fts3_tokenizer('simple', x'4141414141414141')", &r), SQLITEDB_EREFUSED);
	assert_non_null(strstr(r.msg, "fts3_tokenizer"));
	assert_int_equal(run(&d, 0, "SELECT Load_Extension('/tmp/x.so')", &r), SQLITEDB_EREFUSED);
	assert_non_null(strcasestr(r.msg, "load_extension() is not allowed"));
	assert_int_equal(run(&d, 0, "SELECT sqlite_compileoption_get(0)", &r), SQLITEDB_EREFUSED);
	/* hidden in a subquery, a CTE or a view's expansion: the same */
	assert_int_equal(run(&d, 0, "WITH t(x) AS (SELECT fts3_tokenizer('porter')) SELECT 1 FROM t", &r),
			 SQLITEDB_EREFUSED);
	assert_int_equal(run(&d, 1, "CREATE TEMP VIEW v AS SELECT 1", &r), SQLITEDB_EREFUSED); /* not DML anyway */
	/* the allowed ones run, and the connection goes on after a refusal */
	assert_int_equal(run(&d, 0, "SELECT upper('a') AS u, json_object('k', 2) ->> '$.k' AS k, 'ab' LIKE 'a%' AS l", &r),
			 SQLITEDB_OK);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r.rows, 0), "k")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r.rows, 0), "u")), "A");
	sqlitedb_result_free(&r);
	/* our own queries are not hindered */
	memset(&r, 0, sizeof r);
	assert_int_equal(sqlitedb_list_tables(&d, &r), SQLITEDB_OK);
	sqlitedb_result_free(&r);
	sqlitedb_close(&d);
}

static void test_created_0600(void **state)
{
	char dir[] = "/tmp/test_sqlfunc.XXXXXX", path[64], link[64], err[256];
	struct sqlitedb d;
	struct stat sb;
	mode_t old = umask(022);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/new.db", dir);
	assert_int_equal(sqlitedb_open(&d, path, &(struct sqlitedb_bounds){ .max_rows = 10 }, err, sizeof err), 0);
	sqlitedb_close(&d);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* an existing file keeps its mode (the operator's choice) */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(sqlitedb_open(&d, path, &(struct sqlitedb_bounds){ .max_rows = 10 }, err, sizeof err), 0);
	sqlitedb_close(&d);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	unlink(path);
	/* a dangling symlink planted where the database goes is not followed to create its target */
	snprintf(link, sizeof link, "%s/planted.db", dir);
	snprintf(path, sizeof path, "%s/victim", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(sqlitedb_create_private(link, err, sizeof err), -1);
	assert_non_null(strstr(err, "symlink"));
	assert_int_not_equal(access(path, F_OK), 0);
	unlink(link);
	rmdir(dir);
	umask(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_sorted_lower_unique),
		cmocka_unit_test(test_allowed_and_refused),
		cmocka_unit_test(test_every_builtin_judged),
		cmocka_unit_test(test_authorizer),
		cmocka_unit_test(test_created_0600),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
