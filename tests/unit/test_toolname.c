/* test_toolname.c: unit tests for exposed tool names (lib/toolname.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/toolname.h"

/* fnv: the FNV-1a-32 of "<server>\0<mcp_name>" the header specifies. */
static uint32_t fnv(const char *server, const char *mcp)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i <= strlen(server); i++)
		h = (h ^ (unsigned char)server[i]) * 16777619u;
	for (i = 0; mcp[i]; i++)
		h = (h ^ (unsigned char)mcp[i]) * 16777619u;
	return h;
}

/* exposed_of: the exposed name of (server, mcp) in t, NULL if absent. */
static const char *exposed_of(const struct toolname *t, size_t n, const char *server, const char *mcp)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].server, server) == 0 && strcmp(t[i].mcp_name, mcp) == 0)
			return t[i].exposed;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* assert_all_ok: every name valid and no two equal. */
static void assert_all_ok(const struct toolname *t, size_t n)
{
	const char **v = malloc(n * sizeof *v);

	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		if (!toolname_valid(t[i].exposed))
			fail_msg("invalid exposed name [%s] for %s/%s", t[i].exposed, t[i].server, t[i].mcp_name);
		v[i] = t[i].exposed;
	}
	qsort(v, n, sizeof *v, cmp_str);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) == 0)
			fail_msg("duplicate exposed name [%s]", v[i]);
	free(v);
}

static void test_valid(void **state)
{
	char s[70];

	(void)state;
	assert_true(toolname_valid("read_query"));
	assert_true(toolname_valid("a-B_9"));
	assert_true(toolname_valid("_"));
	assert_false(toolname_valid(""));
	assert_false(toolname_valid(NULL));
	assert_false(toolname_valid("a.b"));
	assert_false(toolname_valid("a b"));
	assert_false(toolname_valid("a/b"));
	assert_false(toolname_valid("caf\xc3\xa9"));
	memset(s, 'x', 64);
	s[64] = '\0';
	assert_true(toolname_valid(s));
	s[64] = 'x';
	s[65] = '\0';
	assert_false(toolname_valid(s));
}

static void test_plain_and_clash(void **state)
{
	struct toolname t[] = {
		{ "sqlite", "read_query", "" }, { "sqlite", "list_tables", "" }, { "fs", "read_file", "" },
		{ "fs", "list_tables", "" },    { "git", "list_tables", "" },
	};

	(void)state;
	assert_int_equal(toolname_assign(t, 5), 0);
	assert_string_equal(t[0].exposed, "read_query");
	assert_string_equal(t[1].exposed, "sqlite_list_tables");
	assert_string_equal(t[2].exposed, "read_file");
	assert_string_equal(t[3].exposed, "fs_list_tables");
	assert_string_equal(t[4].exposed, "git_list_tables");
	assert_int_equal(toolname_assign(t, 0), 0);
}

static void test_invalid_names(void **state)
{
	struct toolname t[] = {
		{ "gh", "repo.search", "" },
		{ "my server", "a/b c", "" },
		{ "x", "", "" },
	};

	(void)state;
	assert_int_equal(toolname_assign(t, 3), 0);
	assert_string_equal(t[0].exposed, "gh_repo_search");
	assert_string_equal(t[1].exposed, "my_server_a_b_c");
	assert_string_equal(t[2].exposed, "x_");
	assert_all_ok(t, 3);
}

static void test_long(void **state)
{
	char longname[200], want[80];
	struct toolname t[] = {
		{ "srv", longname, "" },
		{ "other", "x.y", "" },
	};

	(void)state;
	memset(longname, 'a', 150);
	longname[150] = '\0';
	assert_int_equal(toolname_assign(t, 2), 0);
	snprintf(want, sizeof want, "srv_%.51s_%08x", longname, (unsigned)fnv("srv", longname));
	assert_string_equal(t[0].exposed, want);
	assert_int_equal(strlen(t[0].exposed), 64);
	assert_all_ok(t, 2);

	/* exactly 64 after prefixing is kept whole; 65 is hashed */
	longname[60] = '\0'; /* "srv_" + 60 = 64 */
	longname[0] = '.';
	assert_int_equal(toolname_assign(t, 2), 0);
	snprintf(want, sizeof want, "srv__%.59s", longname + 1);
	assert_string_equal(t[0].exposed, want);
	longname[60] = 'a';
	longname[61] = '\0';
	assert_int_equal(toolname_assign(t, 2), 0);
	assert_int_equal(strlen(t[0].exposed), 64);
	snprintf(want, sizeof want, "_%08x", (unsigned)fnv("srv", longname));
	assert_string_equal(t[0].exposed + 55, want);
}

static void test_sanitise_collision(void **state)
{
	char want[80];
	struct toolname t[] = {
		{ "a", "b.c", "" },                       /* -> a_b_c */
		{ "a", "b/c", "" },                       /* -> a_b_c */
		{ "a.b", "c", "" },                       /* c is shared -> a_b_c */
		{ "z", "c", "" },   { "q", "a_b_c", "" }, /* plain a_b_c, also meets them */
	};

	(void)state;
	assert_int_equal(toolname_assign(t, 5), 0);
	assert_all_ok(t, 5);
	snprintf(want, sizeof want, "a_b_c_%08x", (unsigned)fnv("a", "b.c"));
	assert_string_equal(t[0].exposed, want);
	snprintf(want, sizeof want, "a_b_c_%08x", (unsigned)fnv("a", "b/c"));
	assert_string_equal(t[1].exposed, want);
	snprintf(want, sizeof want, "a_b_c_%08x", (unsigned)fnv("a.b", "c"));
	assert_string_equal(t[2].exposed, want);
	assert_string_equal(t[3].exposed, "z_c");
	snprintf(want, sizeof want, "q_a_b_c_%08x", (unsigned)fnv("q", "a_b_c"));
	assert_string_equal(t[4].exposed, want);
}

static void test_duplicates(void **state)
{
	struct toolname t[] = {
		{ "s", "dup", "" },
		{ "s", "dup", "" },
		{ "s", "dup", "" },
		{ NULL, NULL, "" },
	};

	(void)state;
	assert_int_equal(toolname_assign(t, 4), 0);
	for (int i = 0; i < 4; i++)
		assert_true(toolname_valid(t[i].exposed));
	assert_string_not_equal(t[0].exposed, t[1].exposed);
	assert_string_not_equal(t[1].exposed, t[2].exposed);
	assert_string_not_equal(t[0].exposed, t[2].exposed);
	assert_string_equal(t[3].exposed, "_");
}

/* make_set: n entries over 10 servers with shared, invalid and long names. */
static void make_set(struct toolname *t, size_t n, char (*names)[160], unsigned seed)
{
	static const char *const servers[] = {
		"sqlite", "fs", "git",   "my.srv", "a",
		"a_b",    "gh", "web-1", "x",      "long-server-name-for-testing-the-limits-of-the-prefix"
	};
	static const char *const pool[] = { "read", "write", "list.tables", "search", "b_c",
					    "c",    "a_c",   "get/item",    "x_read", "" };

	srand(seed);
	for (size_t i = 0; i < n; i++) {
		unsigned r = (unsigned)rand();

		switch (r % 4) {
		case 0: /* shared across servers */ snprintf(names[i], 160, "%s", pool[(r / 4) % 10]); break;
		case 1: /* unique and plain */ snprintf(names[i], 160, "tool_%zu", i); break;
		case 2: /* long, sharing a 100-byte prefix */ snprintf(names[i], 160, "%0100d.%zu", 0, i); break;
		default: /* invalid characters */ snprintf(names[i], 160, "t.%zu/%u", i % 50, r % 7); break;
		}
		t[i].server = servers[(r / 64) % 10];
		t[i].mcp_name = names[i];
		t[i].exposed[0] = '\0';
	}
}

static void test_random_and_order(void **state)
{
	enum { N = 1000 };
	struct toolname *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b);
	char(*names)[160] = calloc(N, sizeof *names);

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(names);
	make_set(a, N, names, 42);
	assert_int_equal(toolname_assign(a, N), 0);
	assert_all_ok(a, N);
	/* the same set shuffled gives the same names */
	memcpy(b, a, N * sizeof *a);
	srand(7);
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		struct toolname tmp = b[i];

		b[i] = b[j];
		b[j] = tmp;
	}
	for (size_t i = 0; i < N; i++)
		memset(b[i].exposed, 'Z', sizeof b[i].exposed);
	assert_int_equal(toolname_assign(b, N), 0);
	assert_all_ok(b, N);
	/* each (server, mcp_name, exposed) of b is in a (exact duplicates may
	 * swap names among themselves, which no one can tell apart) */
	for (size_t i = 0; i < N; i++) {
		size_t j;

		for (j = 0; j < N; j++)
			if (strcmp(a[j].server, b[i].server) == 0 && strcmp(a[j].mcp_name, b[i].mcp_name) == 0 &&
			    strcmp(a[j].exposed, b[i].exposed) == 0)
				break;
		if (j == N)
			fail_msg("%s/%s got %s after shuffling", b[i].server, b[i].mcp_name, b[i].exposed);
	}
	free(a);
	free(b);
	free(names);
}

static void test_order_small(void **state)
{
	struct toolname x[] = {
		{ "a", "b.c", "" }, { "a.b", "c", "" }, { "z", "c", "" }, { "q", "ok", "" }, { "r", "ok", "" },
	};
	struct toolname y[] = {
		{ "r", "ok", "" }, { "z", "c", "" }, { "q", "ok", "" }, { "a.b", "c", "" }, { "a", "b.c", "" },
	};

	(void)state;
	assert_int_equal(toolname_assign(x, 5), 0);
	assert_int_equal(toolname_assign(y, 5), 0);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(exposed_of(y, 5, x[i].server, x[i].mcp_name), x[i].exposed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_plain_and_clash),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_sanitise_collision),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_random_and_order),
		cmocka_unit_test(test_order_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
