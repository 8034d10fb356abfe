/* test_randid.c: unit tests for ids and random numbers from getrandom(2) (lib/core/randid.c), and that no other source is used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/randid.h"

#ifndef MCPGW_SRC_ROOT
#error "MCPGW_SRC_ROOT: the checkout the sources are scanned in (set by the Makefile)"
#endif

#define ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* shape_ok: s is prefix followed by exactly n characters of [A-Za-z0-9] */
static int shape_ok(const char *s, const char *prefix, size_t n)
{
	size_t p = strlen(prefix);

	return strncmp(s, prefix, p) == 0 && strlen(s + p) == n && strspn(s + p, ALPHABET) == n;
}

static void test_shapes(void **state)
{
	char id[128];

	(void)state;
	assert_int_equal(randid_new(id, sizeof id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS), 0);
	assert_true(shape_ok(id, "chatcmpl-", 29));
	assert_int_equal(randid_new(id, sizeof id, RANDID_CALL_PREFIX, RANDID_CALL_CHARS), 0);
	assert_true(shape_ok(id, "call_", 24));
	assert_int_equal(randid_new(id, sizeof id, NULL, RANDID_MIN_CHARS), 0);
	assert_true(shape_ok(id, "", RANDID_MIN_CHARS));
	assert_int_equal(randid_new(id, sizeof id, "", RANDID_MAX_CHARS), 0);
	assert_true(shape_ok(id, "", RANDID_MAX_CHARS));
	/* every documented shape carries at least 96 random bits: 62^n >= 2^96 */
	assert_true(RANDID_MIN_CHARS * 5.954 >= 96.0);
	assert_true(RANDID_CALL_CHARS >= RANDID_MIN_CHARS && RANDID_COMPLETION_CHARS >= RANDID_MIN_CHARS);
}

static void test_refusals(void **state)
{
	char id[32];

	(void)state;
	errno = 0;
	assert_int_equal(randid_new(id, sizeof id, "x", RANDID_MIN_CHARS - 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(id, "");
	assert_int_equal(randid_new(id, sizeof id, "x", RANDID_MAX_CHARS + 1), -1);
	assert_int_equal(errno, EINVAL);
	/* "call_" + 24 + NUL = 30 bytes fit in 32; "chatcmpl-" + 29 + NUL do not */
	assert_int_equal(randid_new(id, sizeof id, RANDID_CALL_PREFIX, RANDID_CALL_CHARS), 0);
	assert_int_equal(randid_new(id, sizeof id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS), -1);
	assert_int_equal(errno, ENOSPC);
	assert_string_equal(id, "");
	assert_int_equal(randid_new(id, 30, RANDID_CALL_PREFIX, RANDID_CALL_CHARS), 0);
	assert_int_equal(randid_new(id, 29, RANDID_CALL_PREFIX, RANDID_CALL_CHARS), -1);
	assert_int_equal(errno, ENOSPC);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* 4096 ids: all different, and every character of the alphabet shows up in every position's neighbourhood */
static void test_distinct_and_spread(void **state)
{
	enum { N = 4096, LEN = RANDID_MIN_CHARS + 1 };
	char(*ids)[LEN] = calloc(N, LEN);
	unsigned seen[256] = { 0 };

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < N; i++) {
		assert_int_equal(randid_new(ids[i], LEN, NULL, RANDID_MIN_CHARS), 0);
		for (int k = 0; k < RANDID_MIN_CHARS; k++)
			seen[(unsigned char)ids[i][k]]++;
	}
	qsort(ids, N, LEN, cmp_str);
	for (int i = 1; i < N; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	/* 69632 characters, 1123 expected per symbol: each one within a wide margin */
	for (const char *c = ALPHABET; *c; c++)
		assert_in_range(seen[(unsigned char)*c], 800, 1450);
	free(ids);
}

/* mint: in a forked child, one id written to fd; the child exits */
static void mint_in_child(int fd)
{
	char id[64];
	int ok = randid_new(id, sizeof id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS) == 0 &&
		 write(fd, id, strlen(id)) == (ssize_t)strlen(id);

	_exit(ok ? 0 : 1);
}

/* read_child: the id a child wrote (it has exited with 0) */
static void read_child(pid_t pid, int fd, char *id, size_t size)
{
	int status = 0;
	ssize_t n;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	n = read(fd, id, size - 1);
	assert_true(n > 0);
	id[n] = '\0';
	close(fd);
}

/* Two children forked from one parent start with identical memory (any
 * seeded generator would be in the same state in both), and still mint
 * different ids, of the documented shape. Repeated, so a shared sequence
 * could not pass by luck. */
static void test_forked_children_differ(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		char a[64], b[64];
		int pa[2], pb[2];
		pid_t ca, cb;

		assert_int_equal(randid_new(a, sizeof a, "warm-up", RANDID_MIN_CHARS), 0);
		assert_int_equal(pipe(pa), 0);
		assert_int_equal(pipe(pb), 0);
		fflush(NULL);
		if ((ca = fork()) == 0) {
			close(pa[0]);
			mint_in_child(pa[1]);
		}
		assert_true(ca > 0);
		if ((cb = fork()) == 0) {
			close(pb[0]);
			mint_in_child(pb[1]);
		}
		assert_true(cb > 0);
		close(pa[1]);
		close(pb[1]);
		read_child(ca, pa[0], a, sizeof a);
		read_child(cb, pb[0], b, sizeof b);
		assert_true(shape_ok(a, "chatcmpl-", RANDID_COMPLETION_CHARS));
		assert_true(shape_ok(b, "chatcmpl-", RANDID_COMPLETION_CHARS));
		assert_string_not_equal(a, b);
	}
}

static void test_fill_and_below(void **state)
{
	enum { BIG = 1 << 20 };
	unsigned char *p = calloc(1, BIG);
	unsigned counts[7] = { 0 };
	size_t zeros = 0;
	uint32_t x;

	(void)state;
	assert_non_null(p);
	assert_int_equal(randid_fill(p, BIG), 0); /* larger than one getrandom answer may be */
	for (size_t i = 0; i < BIG; i++)
		zeros += p[i] == 0;
	assert_in_range(zeros, BIG / 256 - 600, BIG / 256 + 600);
	assert_int_equal(randid_fill(p, 0), 0);
	free(p);
	errno = 0;
	assert_int_equal(randid_below(0, &x), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(randid_below(1, &x), 0);
	assert_int_equal(x, 0);
	for (int i = 0; i < 7000; i++) {
		assert_int_equal(randid_below(7, &x), 0);
		assert_true(x < 7);
		counts[x]++;
	}
	for (int i = 0; i < 7; i++)
		assert_in_range(counts[i], 800, 1200);
	assert_int_equal(randid_below(UINT32_MAX, &x), 0);
	assert_true(x < UINT32_MAX);
}

/* --- the sources use no other source of randomness -------------------------- */

/* identifiers that name a guessable or repeatable generator (or a raw one that bypasses lib/core/randid.c) */
static const char *const banned[] = {
	"rand",      "srand",      "rand_r",  "random",  "srandom",    "random_r",       "srandom_r",
	"initstate", "setstate",   "drand48", "erand48", "lrand48",    "nrand48",        "mrand48",
	"jrand48",   "srand48",    "seed48",  "lcong48", "arc4random", "arc4random_buf", "arc4random_uniform",
	"getrandom", "getentropy", NULL
};

static int is_banned(const char *id, size_t n)
{
	for (int i = 0; banned[i]; i++)
		if (strlen(banned[i]) == n && memcmp(banned[i], id, n) == 0)
			return 1;
	return 0;
}

static int ident_char(char c)
{
	return c == '_' || isalnum((unsigned char)c);
}

/* scan_text: report (and count) each call of a banned function in text, and each "/dev/urandom" or "/dev/random" */
static int scan_text(const char *path, const char *text, int quiet)
{
	int hits = 0, line = 1;

	for (const char *p = text; *p; p++) {
		const char *e, *q;

		if (*p == '\n')
			line++;
		if (strncmp(p, "/dev/urandom", 12) == 0 || strncmp(p, "/dev/random", 11) == 0) {
			if (!quiet)
				fprintf(stderr, "%s:%d: reads a random device: use lib/core/randid.h\n", path, line);
			hits++;
		}
		if (!ident_char(*p) || (p > text && ident_char(p[-1])))
			continue;
		for (e = p; ident_char(*e); e++)
			;
		for (q = e; *q == ' ' || *q == '\t'; q++)
			;
		if (*q == '(' && is_banned(p, (size_t)(e - p))) {
			if (!quiet)
				fprintf(stderr, "%s:%d: %.*s(): ids and random numbers come from lib/core/randid.h\n",
					path, line, (int)(e - p), p);
			hits++;
		}
		p = e - 1;
	}
	return hits;
}

/* is_randid: path is lib/core/randid.c or lib/core/randid.h of the checkout */
static int is_randid(const char *path)
{
	char c[4200], h[4200];

	snprintf(c, sizeof c, "%s/lib/core/randid.c", MCPGW_SRC_ROOT);
	snprintf(h, sizeof h, "%s/lib/core/randid.h", MCPGW_SRC_ROOT);
	return strcmp(path, c) == 0 || strcmp(path, h) == 0;
}

/* scan_dir: every .c and .h below dir (but lib/core/randid.c, lib/core/randid.h); the number of hits */
static int scan_dir(const char *dir, int *files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int hits = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[4096];
		size_t n = strlen(de->d_name);
		struct stat st;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "node_modules") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			hits += scan_dir(path, files);
		} else if (S_ISREG(st.st_mode) && n > 2 && de->d_name[n - 2] == '.' &&
			   (de->d_name[n - 1] == 'c' || de->d_name[n - 1] == 'h') && !is_randid(path)) {
			buf_t b = BUF_INIT;
			char err[512];

			assert_int_equal(buf_read_file(&b, path, 4 << 20, err, sizeof err), 0);
			hits += scan_text(path, b.data ? b.data : "", 0);
			buf_free(&b);
			(*files)++;
		}
	}
	closedir(d);
	return hits;
}

/* Nothing outside tests/ draws random numbers but lib/core/randid.c: no rand(),
 * random(), srandom(), drand48(), no getrandom() of its own, no random device. */
static void test_sources_use_only_randid(void **state)
{
	static const char *const dirs[] = { "lib",        "broker", "cgi-bin", "chat", "mcp-server-sqlite",
					    "mcp-client", "bench" };
	int hits = 0, files = 0;
	char dir[4096];

	(void)state;
	/* the scanner itself finds what it is to find */
	assert_int_equal(scan_text("sample", "x = random ();\nsrandom(1);\nint y = rand_r(&s);\n", 1), 3);
	assert_int_equal(scan_text("sample", "getrandom(buf, 8, 0); open(\"/dev/urandom\")", 1), 2);
	assert_int_equal(scan_text("sample", "randid_new(a, 1, p, 24); my_rand(1); operand (x); random_state = 1;", 1),
			 0);
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(dir, sizeof dir, "%s/%s", MCPGW_SRC_ROOT, dirs[i]);
		hits += scan_dir(dir, &files);
	}
	assert_true(files > 50);
	assert_int_equal(hits, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_distinct_and_spread),
		cmocka_unit_test(test_forked_children_differ),
		cmocka_unit_test(test_fill_and_below),
		cmocka_unit_test(test_sources_use_only_randid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
