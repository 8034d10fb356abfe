/* test_broker_persist.c: the broker's registry writer: writes return at once while another process holds the database, are made once it is free (the newest row of a server), and a stop never waits on the lock (a write tried again after a lock longer than 5 s: faults.bats). */
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

#include "core/clock.h"
#include "persist.h"

static char dbdir[64];
static char dbpath[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dbdir, sizeof dbdir, "/tmp/mcpgw-persist-XXXXXX");
	if (!mkdtemp(dbdir))
		return -1;
	snprintf(dbpath, sizeof dbpath, "%s/t.db", dbdir);
	return 0;
}

static int teardown(void **state)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char p[160];
	(void)state;

	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
		unlink(p);
	}
	rmdir(dbdir);
	return 0;
}

/* locker: another connection (as another process would be) holding the write lock */
static sqlite3 *locker(void)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

/* state_of: the stored state of server name ("" when there is no row) */
static void state_of(const char *name, char *out, size_t outlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	*out = '\0';
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state FROM servers WHERE name = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void put(struct persist *p, const char *name, const char *state)
{
	struct registry_server rs = { .name = name, .transport = "stdio", .fingerprint = "fp", .state = state };

	persist_server_row(p, &rs);
}

static void test_writes_do_not_wait_for_a_lock(void **state)
{
	char err[256], got[32];
	struct registry *reg = registry_open(dbpath, err, sizeof err);
	struct persist *p = persist_new(reg);
	sqlite3 *other;
	int64_t t0;
	(void)state;

	assert_non_null(reg);
	assert_non_null(p);
	assert_int_equal(persist_start(p), 0);
	other = locker();
	t0 = clock_now_ms();
	put(p, "a", "starting");
	put(p, "b", "ready");
	put(p, "a", "ready"); /* replaces a's row still queued */
	assert_true(clock_now_ms() - t0 < 100);
	assert_int_equal(persist_wait_idle(p, 300), 0); /* the worker waits on the lock, not the caller */
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(persist_wait_idle(p, 8000), 1);
	state_of("a", got, sizeof got);
	assert_string_equal(got, "ready");
	state_of("b", got, sizeof got);
	assert_string_equal(got, "ready");
	persist_free(p);
	registry_close(reg);
}

/* a stop while the lock is held: returns at once (the write is dropped, logged), nothing leaks */
static void test_stop_does_not_wait_for_a_lock(void **state)
{
	char err[256], got[32];
	struct registry *reg = registry_open(dbpath, err, sizeof err);
	struct persist *p = persist_new(reg);
	sqlite3 *other;
	int64_t t0;
	(void)state;

	assert_non_null(p);
	assert_int_equal(persist_start(p), 0);
	other = locker();
	put(p, "a", "stopped");
	clock_sleep_ms(50);
	t0 = clock_now_ms();
	persist_free(p);
	assert_true(clock_now_ms() - t0 < 1000);
	registry_close(reg);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	state_of("a", got, sizeof got);
	assert_string_equal(got, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_do_not_wait_for_a_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_does_not_wait_for_a_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
