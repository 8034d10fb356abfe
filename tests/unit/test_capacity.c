/* test_capacity.c: unit tests for lib/core/capacity.c: slots shared by two openers (two processes' view), given back by a process that dies or left in the file by a crashed holder, a file of another layout refused, two processes taking and giving at once, the fair share when slots are scarce, bad sizes and a symlink refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/capacity.h"
#include "core/statedir.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-capacity.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return statedir_path(path, sizeof path, dir, STATEDIR_CAPACITY);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* two openers of one file are two processes to each other: the slots one holds, the other cannot take */
static void test_slots_shared(void **state)
{
	char err[256];
	struct capacity *a = capacity_open(path, 3, err, sizeof err), *b = capacity_open(path, 3, err, sizeof err);
	int s[4], t;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	for (int i = 0; i < 3; i++)
		assert_int_equal(capacity_take(a, "k1", &s[i]), CAPACITY_TAKEN);
	assert_true(s[0] != s[1] && s[1] != s[2] && s[0] != s[2]);
	assert_int_equal(capacity_take(a, "k1", &s[3]), CAPACITY_FULL);
	assert_int_equal(capacity_take(b, "k2", &t), CAPACITY_FULL);
	assert_int_equal(capacity_held(b), 3);
	capacity_give(a, s[1]);
	assert_int_equal(capacity_held(b), 2);
	assert_int_equal(capacity_take(b, "k2", &t), CAPACITY_TAKEN);
	assert_int_equal(t, s[1]);
	assert_int_equal(capacity_take(a, "k1", &s[3]), CAPACITY_FULL);
	capacity_close(b); /* its slot comes back with its file */
	assert_int_equal(capacity_take(a, "k1", &s[3]), CAPACITY_TAKEN);
	assert_int_equal(capacity_held(a), 3);
	capacity_close(a);
}

/* a process that dies holding slots gives them back (the kernel drops its locks); its records are not counted */
static void test_dead_process_gives_back(void **state)
{
	char err[256];
	struct capacity *a;
	pid_t pid;
	int st, s;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct capacity *c = capacity_open(path, 4, err, sizeof err);
		int x;

		for (int i = 0; i < 4; i++)
			if (!c || capacity_take(c, "child", &x) != CAPACITY_TAKEN)
				_exit(1);
		_exit(0); /* no capacity_give, no close: a crash */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	a = capacity_open(path, 4, err, sizeof err);
	assert_non_null(a);
	assert_int_equal(capacity_held(a), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(capacity_take(a, "k", &s), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "k", &s), CAPACITY_FULL);
	capacity_close(a);
}

/* records left by crashed holders, written into the file directly (not counted in its header):
 * one names a holder id whose lock nobody holds, one an id no opener takes. The quick way passes
 * them by; once every other slot is held the strict way frees them: they are taken, and the host is
 * full only when every slot is */
static void test_stale_records_given_back(void **state)
{
	char err[256];
	struct capacity *a = capacity_open(path, 4, err, sizeof err);
	uint64_t rec[4] = { 0x1234567890abcdefULL, 0x7777, 0x1234567890abcdefULL, 0x100000000ULL };
	int fd, s[4];

	(void)state;
	assert_non_null(a);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, rec, sizeof rec, 64), (ssize_t)sizeof rec); /* slots 0 and 1 */
	close(fd);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(capacity_take(a, "k", &s[i]), CAPACITY_TAKEN);
		assert_true(s[i] >= 2);
	}
	for (int i = 2; i < 4; i++) {
		assert_int_equal(capacity_take(a, "k", &s[i]), CAPACITY_TAKEN);
		assert_true(s[i] < 2);
	}
	assert_int_equal(capacity_take(a, "k", &s[3]), CAPACITY_FULL);
	assert_int_equal(capacity_held(a), 4);
	capacity_close(a);
}

/* a file that is not a table of this layout (an older version's records, damage) is refused, not misread */
static void test_other_layout_refused(void **state)
{
	char err[256];
	uint64_t word = 0x1234567890abcdefULL;
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &word, sizeof word, 0), (ssize_t)sizeof word);
	close(fd);
	assert_null(capacity_open(path, 4, err, sizeof err));
	assert_int_equal(errno, EPROTO);
	assert_non_null(strstr(err, "not a table of this version"));
}

/* many takes and gives from two processes at once keep the count exact: every slot comes back */
static void test_two_processes_churn(void **state)
{
	char err[256];
	struct capacity *a;
	pid_t pid;
	int st, s[8];

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct capacity *c = capacity_open(path, 8, err, sizeof err);
		int x;

		if (!c)
			_exit(1);
		for (int i = 0; i < 20000; i++) {
			int rc = capacity_take(c, "child", &x);

			if (rc == CAPACITY_TAKEN)
				capacity_give(c, x);
			else if (rc < 0)
				_exit(1);
		}
		capacity_close(c);
		_exit(0);
	}
	a = capacity_open(path, 8, err, sizeof err);
	assert_non_null(a);
	for (int i = 0; i < 20000; i++) {
		int x, rc = capacity_take(a, "parent", &x);

		assert_true(rc >= 0);
		if (rc == CAPACITY_TAKEN)
			capacity_give(a, x);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(capacity_held(a), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(capacity_take(a, "k", &s[i]), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "k", &s[0]), CAPACITY_FULL);
	capacity_close(a);
}

/* a holder that runs (another process, its pid and start time in its records) keeps its slots
 * counted whatever its name (proc(5): a comm with ") " in it does not shift the fields read) */
static void test_running_holder(void **state)
{
	char err[256];
	struct capacity *a;
	int to_parent[2], to_child[2], s;
	pid_t pid;
	char b;

	(void)state;
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct capacity *c;
		int x;

		(void)prctl(PR_SET_NAME, "a) b 9 9 9", 0, 0, 0);
		c = capacity_open(path, 4, err, sizeof err);
		for (int i = 0; i < 3; i++)
			if (!c || capacity_take(c, "child", &x) != CAPACITY_TAKEN)
				_exit(1);
		if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &b, 1) != 1)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(read(to_parent[0], &b, 1), 1);
	a = capacity_open(path, 4, err, sizeof err);
	assert_non_null(a);
	assert_int_equal(capacity_take(a, "k", &s), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "k", &s), CAPACITY_FULL);
	assert_int_equal(capacity_held(a), 4);
	assert_int_equal(write(to_child[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(capacity_take(a, "k", &s), CAPACITY_TAKEN); /* its slots came back with it */
	capacity_close(a);
	close(to_parent[0]);
	close(to_parent[1]);
	close(to_child[0]);
	close(to_child[1]);
}

/* while fewer than an eighth of the slots are free, a caller at its share is refused, another is not */
static void test_fair_share(void **state)
{
	char err[256];
	struct capacity *a = capacity_open(path, 16, err, sizeof err);
	int s;

	(void)state;
	assert_non_null(a);
	for (int i = 0; i < 12; i++)
		assert_int_equal(capacity_take(a, "big", &s), CAPACITY_TAKEN);
	for (int i = 0; i < 2; i++)
		assert_int_equal(capacity_take(a, "small", &s), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "big", &s), CAPACITY_TAKEN); /* 2 free: not scarce yet */
	assert_int_equal(capacity_take(a, "big", &s), CAPACITY_OVER_SHARE);
	assert_int_equal(capacity_take(a, "small", &s), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "small", &s), CAPACITY_FULL);
	capacity_close(a);
}

/* one caller alone may use every slot: a share is of callers that hold slots */
static void test_alone_takes_all(void **state)
{
	char err[256];
	struct capacity *a = capacity_open(path, 8, err, sizeof err);
	int s;

	(void)state;
	assert_non_null(a);
	for (int i = 0; i < 8; i++)
		assert_int_equal(capacity_take(a, NULL, &s), CAPACITY_TAKEN);
	assert_int_equal(capacity_take(a, "", &s), CAPACITY_FULL);
	capacity_close(a);
}

static void test_refused(void **state)
{
	char err[256], link[160];

	(void)state;
	assert_null(capacity_open(path, 0, err, sizeof err));
	assert_null(capacity_open(path, CAPACITY_MAX + 1, err, sizeof err));
	snprintf(link, sizeof link, "%s/link", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_null(capacity_open(link, 4, err, sizeof err));
	assert_int_equal(errno, ELOOP);
	assert_non_null(strstr(err, link));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slots_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_process_gives_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_records_given_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_layout_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_processes_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fair_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alone_takes_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
