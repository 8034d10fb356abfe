/* test_changehint.c: unit tests for lib/core/changehint.c: a bump seen through another mapping (another process), the presence word, a symlink and a foreign file refused. */
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

#include "core/changehint.h"
#include "core/statedir.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-changehint.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* a bump by a child process is seen by the parent's mapping; a new file starts at 0 */
static void test_bump_seen_across_processes(void **state)
{
	char err[256];
	struct changehint *a = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err), *b;
	uint64_t before;
	pid_t pid;
	int st;

	(void)state;
	assert_non_null(a);
	before = changehint_read(a);
	assert_int_equal(before, 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct changehint *c = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err);

		if (!c)
			_exit(1);
		changehint_bump(c);
		changehint_bump(c);
		changehint_close(c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(changehint_read(a), before + 2);
	/* a handle opened later sees the same value; NULL bumps nothing */
	b = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err);
	assert_non_null(b);
	assert_int_equal(changehint_read(b), before + 2);
	changehint_bump(NULL);
	changehint_close(a);
	changehint_close(b);
	changehint_close(NULL);
}

/* the presence word: UNKNOWN in a new file; a reader's NONE only from UNKNOWN,
 * a writer's SOME always and for good; another process sees it; a file made
 * anew under the same name is noticed */
static void test_presence(void **state)
{
	char err[256], path[128];
	struct changehint *a = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err), *b;
	pid_t pid;
	int st;

	(void)state;
	assert_non_null(a);
	assert_int_equal(changehint_presence(a), CHANGEHINT_UNKNOWN);
	changehint_mark_none(a);
	assert_int_equal(changehint_presence(a), CHANGEHINT_NONE);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct changehint *c = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err);

		changehint_close(a); /* the parent's handle, not the child's to keep */
		if (!c || changehint_presence(c) != CHANGEHINT_NONE)
			_exit(1);
		changehint_mark_some(c);
		changehint_close(c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(changehint_presence(a), CHANGEHINT_SOME);
	changehint_mark_none(a); /* a reader's NONE never undoes a writer's SOME */
	assert_int_equal(changehint_presence(a), CHANGEHINT_SOME);
	changehint_mark_some(NULL);
	changehint_mark_none(NULL);
	assert_int_equal(changehint_replaced(a), 0);
	snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_KEYS_HINT);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(changehint_replaced(a), 1); /* gone */
	assert_non_null(b = changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err));
	assert_int_equal(changehint_replaced(a), 1); /* another file now */
	assert_int_equal(changehint_replaced(b), 0);
	assert_int_equal(changehint_presence(b), CHANGEHINT_UNKNOWN);
	changehint_close(a);
	changehint_close(b);
}

/* a symlink in its place is refused (never followed); so is a file of another layout */
static void test_refused(void **state)
{
	char err[256], path[128];
	FILE *f;

	(void)state;
	snprintf(path, sizeof path, "%s/%s", dir, STATEDIR_KEYS_HINT);
	assert_int_equal(symlink("/tmp/elsewhere", path), 0);
	assert_null(changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err));
	assert_non_null(strstr(err, STATEDIR_KEYS_HINT));
	assert_int_equal(unlink(path), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a hint file, but long enough to have a magic number of its own here", f);
	fclose(f);
	assert_null(changehint_open(dir, STATEDIR_KEYS_HINT, err, sizeof err));
	assert_non_null(strstr(err, "not a hint file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bump_seen_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
