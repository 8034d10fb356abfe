/* fuzz_sqlstmt.c: libFuzzer target of the SQLite server's statement classifier (mcp-server-sqlite/sqlstmt.c), checked against SQLite's own parser. */
#include <string.h>

#include <sqlite3.h>

#include "fuzz.h"
#include "sqlstmt.h"

/* Input: one SQL text, as a tool's "query" argument. Checks: the skips stay
 * inside the text and move forward; what sqlstmt calls empty or a trailer
 * (whitespace, comments, semicolons: all a tool's one statement may be
 * followed by) is what SQLite compiles to no statement at all, so no second
 * statement hides behind the first; a statement classified SELECT is one
 * SQLite calls read-only, and DML or CREATE TABLE one it does not. SQLite
 * sees an in-memory database with a table, and never runs a statement. */

static sqlite3 *db;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, "CREATE TABLE t(a INTEGER, b TEXT); CREATE VIEW v AS SELECT a FROM t;", NULL, NULL, NULL) !=
		    SQLITE_OK)
		abort();
	return 0;
}

/* compiles_to_nothing: SQLite finds no statement in [p, end) (or rejects it) */
static int compiles_to_nothing(const char *p, const char *end)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, p, (int)(end - p), &st, NULL);

	sqlite3_finalize(st);
	return rc != SQLITE_OK || st == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sql = (const char *)data, *end = sql + size, *p, *tail = NULL;
	enum sqlstmt_kind k;
	sqlite3_stmt *st = NULL;
	size_t len;

	p = sqlstmt_skip_space(sql, end);
	FUZZ_CHECK(p >= sql && p <= end);
	p = sqlstmt_skip_trailer(sql, end);
	FUZZ_CHECK(p >= sql && p <= end);
	FUZZ_CHECK(sqlstmt_is_trailer(sql, end) == (p == end));
	k = sqlstmt_classify(sql, size);
	FUZZ_CHECK(k >= SQLSTMT_EMPTY && k <= SQLSTMT_OTHER && sqlstmt_kind_name(k) != NULL);
	FUZZ_CHECK((k == SQLSTMT_EMPTY) == (p == end));

	/* against SQLite, as the server calls it: no NUL byte (refused before), from the first statement on */
	if (memchr(sql, '\0', size) || size > 65536)
		return 0;
	len = (size_t)(end - p);
	if (k == SQLSTMT_EMPTY) {
		FUZZ_CHECK(compiles_to_nothing(sql, end));
		return 0;
	}
	if (sqlite3_prepare_v2(db, p, (int)len, &st, &tail) != SQLITE_OK || !st) {
		sqlite3_finalize(st);
		return 0;
	}
	FUZZ_CHECK(tail >= p && tail <= end);
	if (sqlstmt_is_trailer(tail, end))
		FUZZ_CHECK(compiles_to_nothing(tail, end)); /* nothing hides behind the one statement */
	if (k == SQLSTMT_SELECT)
		FUZZ_CHECK(sqlite3_stmt_readonly(st));
	if (k == SQLSTMT_DML || k == SQLSTMT_CREATE_TABLE)
		FUZZ_CHECK(!sqlite3_stmt_readonly(st));
	sqlite3_finalize(st);
	return 0;
}
