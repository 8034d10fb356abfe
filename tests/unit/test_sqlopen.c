/* test_sqlopen.c: unit tests for lib/sqlopen: a new database is private whatever the umask, WAL, schema applied, symlinks refused, set up by racing processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sqlopen.h"

static const char schema[] = "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v TEXT);";

struct world {
	char dir[64];
	char db[128];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/mcpgw-sqlopen.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->db, sizeof w->db, "%s/state.db", w->dir);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
	if (system(cmd) != 0)
		return -1;
	free(w);
	return 0;
}

/* text: the first column of the first row of sql, copied into out */
static void text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void test_new_is_private_wal_with_schema(void **state)
{
	struct world *w = *state;
	char err[256], mode[32], wal[160];
	struct stat st;
	mode_t old = umask(0);
	sqlite3 *db = sqlopen(w->db, schema, err, sizeof err);

	umask(old);
	assert_non_null(db);
	assert_int_equal(stat(w->db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text(db, "PRAGMA journal_mode", mode, sizeof mode);
	assert_string_equal(mode, "wal");
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES('a', 'b')", NULL, NULL, NULL), SQLITE_OK);
	/* the -wal file SQLite makes has the database's mode */
	snprintf(wal, sizeof wal, "%s-wal", w->db);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	sqlite3_close(db);
	/* opened again: the data is there, the schema statement is harmless */
	db = sqlopen(w->db, schema, err, sizeof err);
	assert_non_null(db);
	text(db, "SELECT v FROM t WHERE k = 'a'", mode, sizeof mode);
	assert_string_equal(mode, "b");
	sqlite3_close(db);
}

static void test_symlink_and_errors(void **state)
{
	struct world *w = *state;
	char err[256], target[160];

	snprintf(target, sizeof target, "%s/elsewhere.db", w->dir);
	assert_int_equal(symlink(target, w->db), 0);
	assert_null(sqlopen(w->db, schema, err, sizeof err));
	assert_non_null(strstr(err, w->db));
	assert_int_equal(access(target, F_OK), -1); /* nothing made through the link */
	/* a directory that does not exist: the path and the reason */
	snprintf(target, sizeof target, "%s/no/such/dir.db", w->dir);
	assert_null(sqlopen(target, schema, err, sizeof err));
	assert_non_null(strstr(err, "No such file or directory"));
	/* a schema SQLite refuses: its message */
	assert_int_equal(unlink(w->db), 0);
	assert_null(sqlopen(w->db, "CREATE TABLE (", err, sizeof err));
	assert_non_null(strstr(err, "syntax error"));
}

static void test_racing_processes_all_open(void **state)
{
	struct world *w = *state;
	pid_t kids[8];

	for (int i = 0; i < 8; i++) {
		if ((kids[i] = fork()) == 0) {
			char err[256];
			sqlite3 *db = sqlopen(w->db, schema, err, sizeof err);

			_exit(db && sqlite3_close(db) == SQLITE_OK ? 0 : 1);
		}
		assert_true(kids[i] > 0);
	}
	for (int i = 0; i < 8; i++) {
		int status = -1;

		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_is_private_wal_with_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_processes_all_open, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
