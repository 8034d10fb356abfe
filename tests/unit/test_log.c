/* test_log.c: unit tests for lib/core/log.c: escaped lines, the pid of a forked child, the spool (lines from many threads written whole, each once, by its thread; at once after log_spool_flush), reopening after logrotate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"

#define THREADS 4
#define LINES 1000

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_log.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/x.log", dir);
	return log_init("test_log", LOGL_INFO, path);
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	log_close();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* slurp: the log file's text (caller frees) */
static char *slurp(void)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 4 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (4 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void test_escaped_and_forked_pid(void **state)
{
	char want[64], *text;
	pid_t pid;
	int st;

	(void)state;
	log_write(LOGL_WARN, "two\nlines %s", "x\x01");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		log_write(LOGL_INFO, "from the child");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	text = slurp();
	assert_non_null(strstr(text, " WARN two\\nlines x\\x01\n"));
	snprintf(want, sizeof want, "test_log[%ld] INFO from the child\n", (long)pid);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof want, "test_log[%ld] WARN two", (long)getpid());
	assert_non_null(strstr(text, want));
	free(text);
}

static void *spooler(void *arg)
{
	long t = (long)(intptr_t)arg;

	for (int i = t == 0; i < LINES; i++) { /* thread 0's line 0 was spooled first */
		char line[256];

		if (i % 2) {
			log_spool(LOGL_INFO, "access t=%ld n=%d pad=%0200d", t, i, 0);
			continue;
		}
		snprintf(line, sizeof line, "access t=%ld n=%d pad=%0200d", t, i, 0); /* a line made by the caller */
		log_spool_text(LOGL_INFO, line);
	}
	return NULL;
}

/* every spooled line of every thread is in the file once, whole, after log_spool_flush;
 * after it, a spooled line is written at once */
static void test_spool(void **state)
{
	pthread_t th[THREADS];
	char *text, *p, want[64];
	int seen[THREADS][LINES] = { { 0 } };
	size_t lines = 0;

	(void)state;
	/* the spool's thread writes a line within about 100 ms, without a flush */
	log_spool(LOGL_INFO, "access t=0 n=0 pad=%0200d", 0);
	usleep(400 * 1000);
	text = slurp();
	assert_non_null(strstr(text, " INFO access t=0 n=0 pad="));
	free(text);
	for (long t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, spooler, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	log_spool_flush();
	text = slurp();
	for (p = text; *p; p = strchr(p, '\n') + 1) {
		long t;
		int n;
		char *q = strstr(p, " INFO access t=");

		assert_non_null(q);
		assert_true(q < strchr(p, '\n'));
		assert_int_equal(sscanf(q, " INFO access t=%ld n=%d", &t, &n), 2);
		assert_true(t >= 0 && t < THREADS && n >= 0 && n < LINES);
		assert_int_equal(strchr(p, '\n') - strstr(p, " pad=") - 5, 200); /* whole */
		seen[t][n]++;
		lines++;
	}
	assert_int_equal(lines, THREADS * LINES);
	for (int t = 0; t < THREADS; t++)
		for (int n = 0; n < LINES; n++)
			assert_int_equal(seen[t][n], 1);
	free(text);
	log_spool(LOGL_INFO, "after the flush");
	log_spool_text(LOGL_WARN, "text\nas it is\x01 %s");
	text = slurp();
	snprintf(want, sizeof want, " INFO after the flush\n");
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, " WARN text\\nas it is\\x01 %s\n")); /* escaped, never a format */
	free(text);
}

/* slurp_at: the text of file at (caller frees) */
static char *slurp_at(const char *at)
{
	FILE *f = fopen(at, "r");
	char *text = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* logrotate: the file moved away, log_reopen (or a line after log_reopen_ask): the lines before
 * stay in the moved file, spooled ones included, the lines after go to a new file of the same name */
static void test_reopen(void **state)
{
	char moved[160], *text;

	(void)state;
	snprintf(moved, sizeof moved, "%s.1", path);
	log_write(LOGL_INFO, "before the rotation");
	log_spool(LOGL_INFO, "spooled before the rotation");
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(log_reopen(), 0);
	log_write(LOGL_INFO, "after the rotation");
	log_spool_flush();
	text = slurp_at(moved);
	assert_non_null(strstr(text, " INFO before the rotation\n"));
	assert_non_null(strstr(text, " INFO spooled before the rotation\n"));
	assert_null(strstr(text, "after the rotation"));
	free(text);
	text = slurp();
	assert_non_null(strstr(text, " INFO after the rotation\n"));
	assert_null(strstr(text, "before the rotation"));
	free(text);
	/* asked from a signal handler: the next line reopens first */
	assert_int_equal(rename(path, moved), 0);
	log_reopen_ask();
	log_write(LOGL_INFO, "after the second rotation");
	text = slurp();
	assert_non_null(strstr(text, " INFO after the second rotation\n"));
	free(text);
	/* a path that cannot be opened any more: -1, the old file kept */
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(log_reopen(), -1);
	log_write(LOGL_INFO, "still the old file");
	text = slurp_at(moved);
	assert_non_null(strstr(text, " INFO still the old file\n"));
	free(text);
	assert_int_equal(rmdir(path), 0);
}

/* stderr a file (a shell's 2>>FILE), no path: log_reopen opens that file's name again as the new stderr */
static void test_reopen_stderr(void **state)
{
	char moved[160], *text;
	int fd, pfd[2], saved = dup(2);

	(void)state;
	assert_true(saved >= 0);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	assert_int_equal(log_init("test_log", LOGL_INFO, NULL), 0);
	log_write(LOGL_INFO, "stderr before");
	snprintf(moved, sizeof moved, "%s.1", path);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(log_reopen(), 0);
	log_write(LOGL_INFO, "stderr after");
	text = slurp();
	assert_non_null(strstr(text, " INFO stderr after\n"));
	assert_null(strstr(text, "stderr before"));
	free(text);
	text = slurp_at(moved);
	assert_non_null(strstr(text, " INFO stderr before\n"));
	free(text);
	/* stderr not a file (a pipe): nothing to reopen */
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(dup2(pfd[1], 2), 2);
	assert_int_equal(log_init("test_log", LOGL_INFO, NULL), 0);
	assert_int_equal(log_reopen(), 1);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(pfd[0]);
	close(pfd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escaped_and_forked_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_stderr, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
