/* test_sharedcache.c: unit tests for the state-directory cache shared by processes (lib/sharedcache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sharedcache.h"

/* one test's world: a state directory, a source whose fetches are counted in a file (so forked children count too) */
struct world {
	char dir[64];
	char path[128];
	char counter[128];
	int fail;          /* the source fails */
	int fetch_delay_ms;
	struct sharedcache c;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* fetches: how many fetches happened, in every process */
static long fetches(const struct world *w)
{
	struct stat st;

	return stat(w->counter, &st) == 0 ? (long)st.st_size : 0;
}

static json_t *source_fetch(void *ud)
{
	struct world *w = ud;
	int fd = open(w->counter, O_WRONLY | O_CREAT | O_APPEND, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	if (w->fetch_delay_ms)
		sleep_ms(w->fetch_delay_ms);
	if (w->fail)
		return NULL;
	return json_pack("[{s:s}, {s:s}]", "id", "m1", "id", "m2");
}

/* valid: like the models list: an array of objects with a string "id" */
static int source_valid(const json_t *v)
{
	const json_t *m;
	size_t i;

	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, m)
		if (!json_is_string(json_object_get(m, "id")))
			return 0;
	return 1;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/mcpgw-sc.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->path, sizeof w->path, "%s/cache.json", w->dir);
	snprintf(w->counter, sizeof w->counter, "%s/fetches", w->dir);
	w->c = (struct sharedcache){ .path = w->path, .key = "http://upstream/v1", .ttl_ms = 60000, .hold_ms = 5000,
				     .wait_ms = 5000, .max_bytes = 4096, .valid = source_valid,
				     .fetch = source_fetch, .ud = w };
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

/* get: sharedcache_get, checked to be state st with n models (n 0: NULL) */
static void get(struct world *w, enum sharedcache_state st, size_t n)
{
	enum sharedcache_state got = (enum sharedcache_state)-1;
	json_t *v = sharedcache_get(&w->c, &got);

	assert_int_equal(got, st);
	if (n == 0) {
		assert_null(v);
	} else {
		assert_true(json_is_array(v));
		assert_int_equal(json_array_size(v), n);
	}
	json_decref(v);
}

/* put: the file's content, as a hostile or broken writer left it */
static void put(const struct world *w, const char *text)
{
	FILE *f = fopen(w->path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void test_fresh_within_ttl(void **state)
{
	struct world *w = *state;
	char logpath[160];
	struct stat st;
	json_t *doc;

	snprintf(logpath, sizeof logpath, "%s/log", w->dir);
	assert_int_equal(log_init(NULL, LOGL_DEBUG, logpath), 0);
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 1);
	/* a good file is read without a word */
	assert_int_equal(log_init(NULL, LOGL_ERROR, NULL), 0);
	assert_int_equal(stat(logpath, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(stat(w->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	doc = json_load_file(w->path, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "format")), "mcpgw-sharedcache-1");
	assert_string_equal(json_string_value(json_object_get(doc, "key")), "http://upstream/v1");
	assert_true(json_integer_value(json_object_get(doc, "fetched_ms")) > 1700000000000LL); /* wall clock */
	assert_int_equal(json_integer_value(json_object_get(doc, "failed_ms")), 0);
	json_decref(doc);
}

static void test_expires_after_ttl(void **state)
{
	struct world *w = *state;

	w->c.ttl_ms = 100;
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 1);
	sleep_ms(150);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

static void test_failure_serves_stale_and_holds(void **state)
{
	struct world *w = *state;

	w->c.ttl_ms = 100;
	w->c.hold_ms = 300;
	get(w, SHAREDCACHE_FRESH, 2);
	sleep_ms(150);
	w->fail = 1;
	get(w, SHAREDCACHE_STALE, 2);    /* the source failed: the stale value */
	get(w, SHAREDCACHE_STALE, 2);    /* held off: no second try */
	assert_int_equal(fetches(w), 2);
	sleep_ms(350);
	w->fail = 0;
	get(w, SHAREDCACHE_FRESH, 2);    /* the hold is over */
	assert_int_equal(fetches(w), 3);
}

static void test_never_fetched(void **state)
{
	struct world *w = *state;

	w->fail = 1;
	w->c.hold_ms = 200;
	get(w, SHAREDCACHE_NONE, 0);
	get(w, SHAREDCACHE_NONE, 0);
	assert_int_equal(fetches(w), 1);
	sleep_ms(250);
	w->fail = 0;
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

/* each broken file is ignored (no stale value from it), replaced by the next fetch, then served fresh */
static void test_bad_files_ignored_and_replaced(void **state)
{
	struct world *w = *state;
	char big[8192];
	char future[512];
	const char *const bad[] = {
		"not json",
		"",
		"[1,2]",
		"{\"format\":\"other\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,\"failed_ms\":0,\"value\":[]}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://other/v1\",\"fetched_ms\":1,\"failed_ms\":0,\"value\":[]}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":\"1\",\"failed_ms\":0,\"value\":[]}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":-5,\"failed_ms\":0,\"value\":[]}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,\"failed_ms\":0,\"value\":[{\"id\":7}]}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,\"failed_ms\":0,\"value\":{}}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,\"failed_ms\":0}",
		"{\"format\":\"mcpgw-sharedcache-1\",\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,\"failed_ms\":0,\"value\":[]}",
		big,
		future,
	};
	long n = 0;

	/* a value far too large, and a file "fetched" in the future (a clock that jumped back) */
	snprintf(big, sizeof big, "{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\",\"fetched_ms\":1,"
		 "\"failed_ms\":0,\"value\":[{\"id\":\"%04096d\"}]}", 0);
	snprintf(future, sizeof future, "{\"format\":\"mcpgw-sharedcache-1\",\"key\":\"http://upstream/v1\","
		 "\"fetched_ms\":%lld,\"failed_ms\":%lld,\"value\":[{\"id\":\"stale\"}]}",
		 (long long)time(NULL) * 1000 + 3600000, (long long)time(NULL) * 1000 + 3600000);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		put(w, bad[i]);
		w->fail = 1; /* nothing usable in the file, the source down: no value at all */
		w->c.hold_ms = 0;
		if (i < sizeof bad / sizeof *bad - 1)
			get(w, SHAREDCACHE_NONE, 0);
		else
			get(w, SHAREDCACHE_STALE, 1); /* the future file is well formed: stale, not fresh */
		assert_int_equal(fetches(w), ++n);
		put(w, bad[i]);
		w->fail = 0;
		get(w, SHAREDCACHE_FRESH, 2);    /* fetched and the file replaced ... */
		get(w, SHAREDCACHE_FRESH, 2);    /* ... with a good one */
		assert_int_equal(fetches(w), ++n);
	}
}

/* not a regular file: a symlink (to a good file) and a FIFO are not followed or read */
static void test_special_files_ignored(void **state)
{
	struct world *w = *state;
	char good[160];

	get(w, SHAREDCACHE_FRESH, 2);
	snprintf(good, sizeof good, "%s/good.json", w->dir);
	assert_int_equal(rename(w->path, good), 0);
	assert_int_equal(symlink(good, w->path), 0);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
	assert_int_equal(unlink(w->path), 0);
	assert_int_equal(mkfifo(w->path, 0600), 0);
	get(w, SHAREDCACHE_FRESH, 2); /* would block forever on a FIFO opened for reading */
	assert_int_equal(fetches(w), 3);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 3);
}

/* k processes that find the value stale at once: exactly one fetch, and every one gets the fresh value */
static void test_concurrent_processes_fetch_once(void **state)
{
	enum { K = 8 };
	struct world *w = *state;
	pid_t kids[K];
	int go[2];

	w->fetch_delay_ms = 300; /* the others arrive while the first one fetches */
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < K; i++) {
		fflush(NULL);
		if ((kids[i] = fork()) == 0) {
			enum sharedcache_state st;
			char c;
			json_t *v;

			close(go[1]);
			if (read(go[0], &c, 1) != 0) /* wait until the parent closes its end: all start together */
				_exit(2);
			int ok;

			v = sharedcache_get(&w->c, &st);
			ok = st == SHAREDCACHE_FRESH && json_array_size(v) == 2;
			json_decref(v);
			_exit(ok ? 0 : 1);
		}
		assert_true(kids[i] > 0);
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < K; i++) {
		int status = 0;

		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(fetches(w), 1);
}

/* a fetch of another process that takes longer than wait_ms: the stale value, no second fetch */
static void test_waits_at_most_wait_ms(void **state)
{
	struct world *w = *state;
	char lock[160];
	struct timespec t0, t1;
	int fd;

	w->c.ttl_ms = 50;
	w->c.wait_ms = 200;
	get(w, SHAREDCACHE_FRESH, 2);
	sleep_ms(80);
	snprintf(lock, sizeof lock, "%s.lock", w->path);
	assert_true((fd = open(lock, O_RDWR)) >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0); /* a fetch under way elsewhere */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	get(w, SHAREDCACHE_STALE, 2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(fetches(w), 1);
	assert_in_range((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 190, 2000);
	close(fd);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

/* TTL 0: every get fetches; a failure serves the last good value from the file */
static void test_ttl_zero(void **state)
{
	struct world *w = *state;

	w->c.ttl_ms = 0;
	w->c.hold_ms = 0;
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
	w->fail = 1;
	get(w, SHAREDCACHE_STALE, 2);
	get(w, SHAREDCACHE_STALE, 2);
	assert_int_equal(fetches(w), 4);
}

/* a state directory that cannot hold the file: no error, the value is fetched each time */
static void test_unwritable_directory(void **state)
{
	struct world *w = *state;

	snprintf(w->path, sizeof w->path, "%s/missing/cache.json", w->dir);
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_within_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expires_after_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_serves_stale_and_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_fetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_ignored_and_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_files_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes_fetch_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_at_most_wait_ms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, setup, teardown),
	};

	log_init("test_sharedcache", LOGL_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
