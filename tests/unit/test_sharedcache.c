/* test_sharedcache.c: unit tests for the cache shared by processes through the state store (lib/core/sharedcache.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sharedcache.h"
#include "core/statestore.h"

/* one test's world: a state directory, a source whose fetches are counted in a file (so forked children count too) */
struct world {
	char dir[64];
	char url[160];
	char counter[128];
	struct statestore *store;
	int fail; /* the source fails */
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

/* store_open: a handle on the world's store (each process opens its own) */
static struct statestore *store_open(const struct world *w)
{
	struct statestore_opts o = { .url = w->url, .timeout_ms = 5000 };
	char err[512];
	struct statestore *st = statestore_open(&o, err, sizeof err);

	if (!st)
		fprintf(stderr, "%s\n", err);
	return st;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/mcpgw-sc.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->url, sizeof w->url, "sqlite:%s/state.db", w->dir);
	snprintf(w->counter, sizeof w->counter, "%s/fetches", w->dir);
	if (!(w->store = store_open(w)))
		return -1;
	w->c = (struct sharedcache){ .store = w->store,
				     .name = "models",
				     .source = "http://upstream/v1",
				     .ttl_ms = 60000,
				     .hold_ms = 5000,
				     .wait_ms = 5000,
				     .lease_ms = 10000,
				     .max_bytes = 4096,
				     .valid = source_valid,
				     .fetch = source_fetch,
				     .ud = w };
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	statestore_close(w->store);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
	if (system(cmd) != 0)
		return -1;
	free(w);
	return 0;
}

/* get: sharedcache_get, checked to be state st with n models (n 0: NULL) */
static void get(struct world *w, enum sharedcache_state st, size_t n)
{
	enum sharedcache_state got = (enum sharedcache_state) - 1;
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

/* put: the cache's entry, as a hostile or broken writer left it */
static void put(const struct world *w, const char *text)
{
	assert_int_equal(statestore_put(w->store, "sharedcache", "models", text, strlen(text), 0), STATESTORE_OK);
}

static void test_fresh_within_ttl(void **state)
{
	struct world *w = *state;
	char logpath[160];
	struct stat st;
	json_t *doc = NULL;
	int64_t age = -1;

	snprintf(logpath, sizeof logpath, "%s/log", w->dir);
	assert_int_equal(log_init(NULL, LOGL_DEBUG, logpath), 0);
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 1);
	/* a good entry is read without a word */
	assert_int_equal(log_init(NULL, LOGL_ERROR, NULL), 0);
	assert_int_equal(stat(logpath, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* what the store holds: the source and the value, aged by the store */
	assert_int_equal(statestore_get_json(w->store, "sharedcache", "models", 4096, &doc, &age), STATESTORE_OK);
	assert_string_equal(json_string_value(json_object_get(doc, "source")), "http://upstream/v1");
	assert_int_equal(json_array_size(json_object_get(doc, "value")), 2);
	assert_in_range(age, 0, 5000);
	json_decref(doc);
	/* no fetch claim is left behind */
	assert_int_equal(statestore_claim(w->store, "sharedcache-fetch", "models", "probe", 10), STATESTORE_OK);
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
	get(w, SHAREDCACHE_STALE, 2); /* the source failed: the stale value */
	get(w, SHAREDCACHE_STALE, 2); /* held off: no second try */
	assert_int_equal(fetches(w), 2);
	sleep_ms(350);
	w->fail = 0;
	get(w, SHAREDCACHE_FRESH, 2); /* the hold is over */
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

/* each broken entry is ignored (no stale value from it), replaced by the next fetch, then served fresh */
static void test_bad_entries_ignored_and_replaced(void **state)
{
	struct world *w = *state;
	char big[8192];
	const char *const bad[] = {
		"not json",
		"",
		"[1,2]",
		"{\"source\":\"http://other/v1\",\"value\":[]}",
		"{\"source\":7,\"value\":[]}",
		"{\"source\":\"http://upstream/v1\",\"value\":[{\"id\":7}]}",
		"{\"source\":\"http://upstream/v1\",\"value\":{}}",
		"{\"source\":\"http://upstream/v1\",\"value\":null}",
		"{\"source\":\"http://upstream/v1\"}",
		"{\"source\":\"http://upstream/v1\",\"source\":\"http://upstream/v1\",\"value\":[]}",
		big,
	};
	long n = 0;

	/* a value far too large */
	snprintf(big, sizeof big, "{\"source\":\"http://upstream/v1\",\"value\":[{\"id\":\"%04096d\"}]}", 0);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		put(w, bad[i]);
		w->fail = 1; /* nothing usable in the store, the source down: no value at all */
		w->c.hold_ms = 0;
		get(w, SHAREDCACHE_NONE, 0);
		assert_int_equal(fetches(w), ++n);
		put(w, bad[i]);
		w->fail = 0;
		get(w, SHAREDCACHE_FRESH, 2); /* fetched and the entry replaced ... */
		get(w, SHAREDCACHE_FRESH, 2); /* ... with a good one */
		assert_int_equal(fetches(w), ++n);
	}
}

/* wall_plus_hour: a clock an hour ahead of this host's */
static int64_t wall_plus_hour(void *ud)
{
	struct timespec ts;

	(void)ud;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 3600000;
}

/* an entry written "later" than now (by a clock that was ahead, then set back) is of unknown age: stale, not fresh */
static void test_future_entry_is_stale(void **state)
{
	struct world *w = *state;
	struct statestore_opts o = { .url = w->url, .timeout_ms = 5000, .clock = wall_plus_hour };
	char err[512];
	struct statestore *ahead = statestore_open(&o, err, sizeof err);
	static const char doc[] = "{\"source\":\"http://upstream/v1\",\"value\":[{\"id\":\"stale\"}]}";

	assert_non_null(ahead);
	assert_int_equal(statestore_put(ahead, "sharedcache", "models", doc, strlen(doc), 0), STATESTORE_OK);
	statestore_close(ahead);
	w->fail = 1;
	w->c.hold_ms = 0;
	get(w, SHAREDCACHE_STALE, 1); /* well formed, so served when the source is down; but a fetch was tried */
	assert_int_equal(fetches(w), 1);
	w->fail = 0;
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

/* no store (it cannot be opened): no error, the value is fetched each time */
static void test_no_store(void **state)
{
	struct world *w = *state;

	w->c.store = NULL;
	get(w, SHAREDCACHE_FRESH, 2);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
	w->fail = 1;
	get(w, SHAREDCACHE_NONE, 0);
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
			int ok;

			close(go[1]);
			if (read(go[0], &c, 1) != 0) /* wait until the parent closes its end: all start together */
				_exit(2);
			if (!(w->c.store = store_open(w))) /* a handle of its own, as every process has */
				_exit(3);
			v = sharedcache_get(&w->c, &st);
			ok = st == SHAREDCACHE_FRESH && json_array_size(v) == 2;
			json_decref(v);
			statestore_close(w->c.store);
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

/* ms_since: milliseconds since t0 (monotonic) */
static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* a fetch of another process that takes longer than wait_ms: the stale value, no second fetch */
static void test_waits_at_most_wait_ms(void **state)
{
	struct world *w = *state;
	struct timespec t0;

	w->c.ttl_ms = 50;
	w->c.wait_ms = 200;
	get(w, SHAREDCACHE_FRESH, 2);
	sleep_ms(80);
	/* a fetch under way elsewhere */
	assert_int_equal(statestore_claim(w->store, "sharedcache-fetch", "models", "elsewhere", 60000), STATESTORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	get(w, SHAREDCACHE_STALE, 2);
	assert_int_equal(fetches(w), 1);
	assert_in_range(ms_since(&t0), 190, 2000);
	assert_int_equal(statestore_release(w->store, "sharedcache-fetch", "models", "elsewhere"), STATESTORE_OK);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_int_equal(fetches(w), 2);
}

/* a process that died fetching: its claim runs out (its lease) and a waiting process fetches instead */
static void test_dead_fetcher_replaced(void **state)
{
	struct world *w = *state;
	struct timespec t0;

	w->c.wait_ms = 3000;
	assert_int_equal(statestore_claim(w->store, "sharedcache-fetch", "models", "dead", 150), STATESTORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	get(w, SHAREDCACHE_FRESH, 2);
	assert_in_range(ms_since(&t0), 140, 2000);
	assert_int_equal(fetches(w), 1);
}

/* TTL 0: every get fetches; a failure serves the last good value from the store */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_within_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expires_after_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_serves_stale_and_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_fetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_entries_ignored_and_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_entry_is_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes_fetch_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_at_most_wait_ms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_fetcher_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_zero, setup, teardown),
	};

	log_init("test_sharedcache", LOGL_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
