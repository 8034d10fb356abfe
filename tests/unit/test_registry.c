/* test_registry.c: unit tests of lib/registry.c (SQLite registry of servers and tools). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcp/registry.h"

static char dbdir[64];
static char dbpath[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dbdir, sizeof dbdir, "/tmp/mcpgw-reg-XXXXXX");
	if (!mkdtemp(dbdir))
		return -1;
	snprintf(dbpath, sizeof dbpath, "%s/t.db", dbdir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];
	(void)state;
	const char *suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
		unlink(p);
	}
	rmdir(dbdir);
	return 0;
}

static void put(struct registry *r, const char *name, const char *fp)
{
	struct registry_server s = { .name = name,
				     .transport = "stdio",
				     .fingerprint = fp,
				     .state = "ready",
				     .protocol_version = "2025-06-18",
				     .restarts = 1,
				     .pid = 42 };
	assert_int_equal(registry_put_server(r, &s), 0);
}

static void test_open_error_names_path(void **state)
{
	char err[256];
	(void)state;
	assert_null(registry_open("/nonexistent-dir/x/y.db", err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent-dir/x/y.db"));
}

/* a file that is no SQLite database where the registry goes: set aside (kept, renamed), a new one made and used */
static void test_damaged_file_is_set_aside(void **state)
{
	char err[256], cmd[600];
	struct registry *r;
	FILE *f;
	(void)state;

	assert_non_null(f = fopen(dbpath, "w"));
	for (int i = 0; i < 4096; i++)
		fputc("not a database"[i % 14], f);
	assert_int_equal(fclose(f), 0);
	r = registry_open(dbpath, err, sizeof err);
	assert_non_null(r);
	put(r, "s1", "fp1");
	registry_close(r);
	/* the damaged file is kept, whole, beside it */
	snprintf(cmd, sizeof cmd, "test \"$(cat %s.corrupt-* | head -c 14)\" = 'not a database' && rm %s.corrupt-*",
		 dbpath, dbpath);
	assert_int_equal(system(cmd), 0);
}

static void test_new_files_are_private(void **state)
{
	char err[256], p[160];
	struct registry *r;
	struct stat st;
	mode_t old = umask(022);
	(void)state;

	r = registry_open(dbpath, err, sizeof err);
	umask(old);
	assert_non_null(r);
	put(r, "s1", "fp1"); /* a write: the -wal file exists now */
	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof p, "%s-wal", dbpath);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	registry_close(r);
}

static void test_tools_roundtrip_and_fingerprint(void **state)
{
	char err[256];
	struct registry *r;
	json_t *t1 = json_pack("{s:s, s:s, s:{s:s}}", "name", "a.b", "description", "d", "inputSchema", "type", "object");
	json_t *t2 = json_pack("{s:s}", "name", "c");
	json_t *got;
	(void)state;

	r = registry_open(dbpath, err, sizeof err);
	assert_non_null(r);
	put(r, "s1", "fp1");
	struct registry_tool tools[] = {
		{ .server = "s1", .mcp_name = "a.b", .exposed_name = "s1_a_b", .tool = t1 },
		{ .server = "s1", .mcp_name = "c", .exposed_name = "c", .tool = t2 },
	};
	assert_int_equal(registry_replace_tools(r, tools, 2), 0);
	registry_close(r);

	/* survives a reopen; order kept; a different fingerprint gets nothing */
	r = registry_open(dbpath, err, sizeof err);
	assert_non_null(r);
	got = registry_load_tools(r, "s1", "fp1");
	assert_non_null(got);
	assert_int_equal(json_array_size(got), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "name")), "a.b");
	assert_true(json_equal(json_array_get(got, 0), t1));
	json_decref(got);
	assert_null(registry_load_tools(r, "s1", "other"));
	assert_null(registry_load_tools(r, "nope", "fp1"));
	registry_close(r);
	json_decref(t1);
	json_decref(t2);
}

static void test_duplicate_exposed_name_rolls_back(void **state)
{
	char err[256];
	struct registry *r = registry_open(dbpath, err, sizeof err);
	json_t *t = json_pack("{s:s}", "name", "x");
	json_t *got;
	(void)state;

	assert_non_null(r);
	put(r, "s1", "fp");
	put(r, "s2", "fp");
	struct registry_tool one[] = { { .server = "s1", .mcp_name = "x", .exposed_name = "x", .tool = t } };
	assert_int_equal(registry_replace_tools(r, one, 1), 0);
	struct registry_tool dup[] = {
		{ .server = "s1", .mcp_name = "x", .exposed_name = "same", .tool = t },
		{ .server = "s2", .mcp_name = "x", .exposed_name = "same", .tool = t },
	};
	assert_int_equal(registry_replace_tools(r, dup, 2), -1);
	got = registry_load_tools(r, "s1", "fp"); /* the earlier state is intact */
	assert_non_null(got);
	assert_int_equal(json_array_size(got), 1);
	json_decref(got);
	registry_close(r);
	json_decref(t);
}

static void test_prune_removes_servers_and_their_tools(void **state)
{
	char err[256];
	struct registry *r = registry_open(dbpath, err, sizeof err);
	json_t *t = json_pack("{s:s}", "name", "x");
	const char *keep[] = { "s2" };
	json_t *got;
	(void)state;

	assert_non_null(r);
	put(r, "s1", "fp");
	put(r, "s2", "fp");
	struct registry_tool tools[] = {
		{ .server = "s1", .mcp_name = "x", .exposed_name = "s1_x", .tool = t },
		{ .server = "s2", .mcp_name = "x", .exposed_name = "s2_x", .tool = t },
	};
	assert_int_equal(registry_replace_tools(r, tools, 2), 0);
	assert_int_equal(registry_prune_servers(r, keep, 1), 0);
	assert_null(registry_load_tools(r, "s1", "fp"));
	got = registry_load_tools(r, "s2", "fp");
	assert_non_null(got);
	json_decref(got);
	registry_close(r);
	json_decref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_error_names_path),
		cmocka_unit_test_setup_teardown(test_new_files_are_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file_is_set_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tools_roundtrip_and_fingerprint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_exposed_name_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_removes_servers_and_their_tools, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
