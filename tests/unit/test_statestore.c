/* test_statestore.c: unit tests for the state store (lib/core/statestore.c, statestore_sqlite.c): every op, TTLs on an injected clock, processes racing, hostile files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/statestore.h"

#define T_TIMEOUT_MS 5000

/* one test's world: a directory, the store's URL in it, a clock the test moves */
struct world {
	char dir[64];
	char path[128];
	char url[160];
	int64_t now;
	struct statestore *st;
};

static int64_t fake_clock(void *ud)
{
	return ((struct world *)ud)->now;
}

/* w_open: a handle on the world's store with its fake clock; NULL with err */
static struct statestore *w_open(struct world *w, char *err, size_t errlen)
{
	struct statestore_opts o = { .url = w->url, .timeout_ms = T_TIMEOUT_MS, .clock = fake_clock, .clock_ud = w };

	return statestore_open(&o, err, errlen);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);
	char err[512];

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/test_statestore.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->path, sizeof w->path, "%s/state.db", w->dir);
	snprintf(w->url, sizeof w->url, "sqlite:%s", w->path);
	w->now = 1000000;
	if (!(w->st = w_open(w, err, sizeof err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	statestore_close(w->st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", w->dir);
	if (system(cmd) != 0)
		return -1;
	free(w);
	return 0;
}

/* assert_value: the value of (ns, key) as a string compared with want (NULL: absent) */
static void assert_value(struct statestore *st, const char *ns, const char *key, const char *want)
{
	char *v = NULL;
	size_t len = 0;
	enum statestore_status s = statestore_get(st, ns, key, 1 << 20, &v, &len, NULL);

	if (!want) {
		assert_int_equal(s, STATESTORE_NOTFOUND);
		assert_null(v);
		return;
	}
	assert_int_equal(s, STATESTORE_OK);
	assert_int_equal(len, strlen(want));
	assert_string_equal(v, want);
	free(v);
}

static void test_put_get_del(void **state)
{
	struct world *w = *state;
	char *v = NULL;
	size_t len = 0;
	int64_t age = -1;
	static const char bytes[] = { 'a', 0, 'b', (char)0xff };

	assert_value(w->st, "ns", "k", NULL);
	assert_int_equal(statestore_put(w->st, "ns", "k", "one", 3, 0), STATESTORE_OK);
	assert_value(w->st, "ns", "k", "one");
	assert_value(w->st, "other", "k", NULL); /* namespaces are apart */
	assert_int_equal(statestore_put(w->st, "ns", "k", "two", 3, 0), STATESTORE_OK);
	w->now += 1234;
	assert_int_equal(statestore_get(w->st, "ns", "k", 100, &v, &len, &age), STATESTORE_OK);
	assert_string_equal(v, "two");
	assert_int_equal(age, 1234);
	free(v);
	/* the clock went back: written "later" than now is of unknown age, old */
	w->now -= 5000;
	assert_int_equal(statestore_get(w->st, "ns", "k", 100, &v, &len, &age), STATESTORE_OK);
	assert_int_equal(age, INT64_MAX);
	free(v);
	w->now += 5000;
	/* bytes with a NUL in them come back whole */
	assert_int_equal(statestore_put(w->st, "ns", "b", bytes, sizeof bytes, 0), STATESTORE_OK);
	assert_int_equal(statestore_get(w->st, "ns", "b", 100, &v, &len, NULL), STATESTORE_OK);
	assert_int_equal(len, sizeof bytes);
	assert_memory_equal(v, bytes, sizeof bytes);
	free(v);
	/* an empty value is a value */
	assert_int_equal(statestore_put(w->st, "ns", "e", NULL, 0, 0), STATESTORE_OK);
	assert_value(w->st, "ns", "e", "");
	/* larger than the caller's bound: not read */
	assert_int_equal(statestore_get(w->st, "ns", "k", 2, &v, &len, NULL), STATESTORE_ETOOBIG);
	assert_null(v);
	assert_int_equal(statestore_del(w->st, "ns", "k"), STATESTORE_OK);
	assert_int_equal(statestore_del(w->st, "ns", "k"), STATESTORE_NOTFOUND);
	assert_value(w->st, "ns", "k", NULL);
}

static void test_json(void **state)
{
	struct world *w = *state;
	json_t *in = json_pack("[{s:s, s:i}, n, s]", "role", "tool", "n", 3, "x"), *out = NULL;

	assert_non_null(in);
	assert_int_equal(statestore_put_json(w->st, "j", "a", in, 0), STATESTORE_OK);
	assert_int_equal(statestore_get_json(w->st, "j", "a", 1000, &out, NULL), STATESTORE_OK);
	assert_true(json_equal(in, out));
	json_decref(out);
	assert_int_equal(statestore_put(w->st, "j", "bad", "{nope", 5, 0), STATESTORE_OK);
	assert_int_equal(statestore_get_json(w->st, "j", "bad", 1000, &out, NULL), STATESTORE_ETYPE);
	assert_null(out);
	assert_int_equal(statestore_get_json(w->st, "j", "none", 1000, &out, NULL), STATESTORE_NOTFOUND);
	json_decref(in);
}

static void test_bad_arguments(void **state)
{
	struct world *w = *state;
	char longkey[STATESTORE_KEY_MAX + 2], longns[STATESTORE_NS_MAX + 2];
	char *v;
	size_t len;

	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	memset(longns, 'n', sizeof longns - 1);
	longns[sizeof longns - 1] = '\0';
	assert_int_equal(statestore_put(w->st, "", "k", "v", 1, 0), STATESTORE_EINVAL);
	assert_int_equal(statestore_put(w->st, "ns", "", "v", 1, 0), STATESTORE_EINVAL);
	assert_int_equal(statestore_put(w->st, "ns", NULL, "v", 1, 0), STATESTORE_EINVAL);
	assert_int_equal(statestore_put(w->st, "ns", longkey, "v", 1, 0), STATESTORE_EINVAL);
	assert_int_equal(statestore_put(w->st, longns, "k", "v", 1, 0), STATESTORE_EINVAL);
	longkey[STATESTORE_KEY_MAX] = '\0'; /* exactly the limit: fine */
	assert_int_equal(statestore_put(w->st, "ns", longkey, "v", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_put(w->st, "ns", "k", "v", 1, -1), STATESTORE_EINVAL);
	assert_int_equal(statestore_put(w->st, "ns", "k", "v", 1, INT64_MAX), STATESTORE_EINVAL);
	assert_int_equal(statestore_claim(w->st, "ns", "c", "", 10), STATESTORE_EINVAL);
	assert_int_equal(statestore_get(NULL, "ns", "k", 10, &v, &len, NULL), STATESTORE_EINVAL);
	assert_int_equal(statestore_incr(w->st, "ns", "k", 1, -5, NULL), STATESTORE_EINVAL);
	assert_string_not_equal(statestore_strerror(STATESTORE_EBUSY), "");
}

static void test_ttl_expiry(void **state)
{
	struct world *w = *state;

	assert_int_equal(statestore_put(w->st, "t", "short", "s", 1, 100), STATESTORE_OK);
	assert_int_equal(statestore_put(w->st, "t", "forever", "f", 1, 0), STATESTORE_OK);
	w->now += 99;
	assert_value(w->st, "t", "short", "s");
	w->now += 1; /* expires exactly ttl later */
	assert_value(w->st, "t", "short", NULL);
	assert_int_equal(statestore_del(w->st, "t", "short"), STATESTORE_NOTFOUND); /* expired counts as gone */
	w->now += 1000000000;
	assert_value(w->st, "t", "forever", "f");
	/* put over an expired entry, with a new TTL */
	assert_int_equal(statestore_put(w->st, "t", "short", "s2", 2, 50), STATESTORE_OK);
	assert_value(w->st, "t", "short", "s2");
}

/* list: the live keys of one namespace, in order, page by page; expired and other namespaces' left out */
static void test_list(void **state)
{
	struct world *w = *state;
	json_t *k = NULL;

	assert_int_equal(statestore_put(w->st, "l", "b", "1", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_put(w->st, "l", "a", "1", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_incr(w->st, "l", "c", 1, 0, NULL), STATESTORE_OK);
	assert_int_equal(statestore_put(w->st, "l", "gone", "1", 1, 10), STATESTORE_OK);
	assert_int_equal(statestore_put(w->st, "l2", "x", "1", 1, 0), STATESTORE_OK);
	w->now += 10;
	assert_int_equal(statestore_list(w->st, "l", NULL, 2, &k), STATESTORE_OK);
	assert_int_equal(json_array_size(k), 2);
	assert_string_equal(json_string_value(json_array_get(k, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(k, 1)), "b");
	json_decref(k);
	assert_int_equal(statestore_list(w->st, "l", "b", 2, &k), STATESTORE_OK);
	assert_int_equal(json_array_size(k), 1);
	assert_string_equal(json_string_value(json_array_get(k, 0)), "c");
	json_decref(k);
	assert_int_equal(statestore_list(w->st, "l", "c", 2, &k), STATESTORE_OK);
	assert_int_equal(json_array_size(k), 0);
	json_decref(k);
	assert_int_equal(statestore_list(w->st, "none", "", 5, &k), STATESTORE_OK);
	assert_int_equal(json_array_size(k), 0);
	json_decref(k);
	assert_int_equal(statestore_list(w->st, "l", NULL, 0, &k), STATESTORE_EINVAL);
	assert_null(k);
	assert_int_equal(statestore_list(w->st, "", NULL, 1, &k), STATESTORE_EINVAL);
}

static void test_claim_release(void **state)
{
	struct world *w = *state;

	assert_int_equal(statestore_claim(w->st, "lock", "refresh", "tokA", 1000), STATESTORE_OK);
	assert_int_equal(statestore_claim(w->st, "lock", "refresh", "tokB", 1000), STATESTORE_HELD);
	assert_int_equal(statestore_claim(w->st, "lock", "refresh", "tokA", 1000), STATESTORE_OK); /* renewed */
	assert_value(w->st, "lock", "refresh", "tokA");
	assert_int_equal(statestore_release(w->st, "lock", "refresh", "tokB"), STATESTORE_NOTFOUND);
	assert_int_equal(statestore_release(w->st, "lock", "refresh", "tokA"), STATESTORE_OK);
	assert_int_equal(statestore_claim(w->st, "lock", "refresh", "tokB", 1000), STATESTORE_OK);
	/* a holder that died: its claim expires and another takes it; the old one cannot release the new */
	w->now += 1000;
	assert_int_equal(statestore_claim(w->st, "lock", "refresh", "tokC", 1000), STATESTORE_OK);
	assert_int_equal(statestore_release(w->st, "lock", "refresh", "tokB"), STATESTORE_NOTFOUND);
	assert_value(w->st, "lock", "refresh", "tokC");
	/* one-time ids: claimed for good, a second use is held */
	assert_int_equal(statestore_claim(w->st, "once", "id-1", "used", 0), STATESTORE_OK);
	w->now += 1000000000;
	assert_int_equal(statestore_claim(w->st, "once", "id-1", "again", 0), STATESTORE_HELD);
	/* a key holding bytes is taken too */
	assert_int_equal(statestore_put(w->st, "lock", "data", "x", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_claim(w->st, "lock", "data", "x", 10), STATESTORE_HELD);
	assert_int_equal(statestore_release(w->st, "lock", "data", "x"), STATESTORE_NOTFOUND);
}

/* add is insert-only: a live entry is never overwritten, an expired one is; take reads and deletes once */
static void test_add_take(void **state)
{
	struct world *w = *state;
	char *v = NULL;
	size_t len = 0;
	json_t *in = json_pack("{s:[s]}", "hidden", "row"), *out = NULL;

	assert_int_equal(statestore_add(w->st, "hist", "k", "mine", 4, 1000), STATESTORE_OK);
	assert_int_equal(statestore_add(w->st, "hist", "k", "theirs", 6, 1000), STATESTORE_HELD);
	assert_value(w->st, "hist", "k", "mine");
	assert_int_equal(statestore_incr(w->st, "hist", "n", 1, 0, NULL), STATESTORE_OK);
	assert_int_equal(statestore_add(w->st, "hist", "n", "x", 1, 0), STATESTORE_HELD); /* any kind */
	assert_int_equal(statestore_take(w->st, "hist", "k", 100, &v, &len), STATESTORE_OK);
	assert_int_equal(len, 4);
	assert_string_equal(v, "mine");
	free(v);
	assert_int_equal(statestore_take(w->st, "hist", "k", 100, &v, &len), STATESTORE_NOTFOUND); /* once */
	assert_null(v);
	assert_value(w->st, "hist", "k", NULL);
	/* expired: not taken, and free for a new add */
	assert_int_equal(statestore_add(w->st, "hist", "e", "old", 3, 10), STATESTORE_OK);
	w->now += 10;
	assert_int_equal(statestore_take(w->st, "hist", "e", 100, &v, &len), STATESTORE_NOTFOUND);
	assert_int_equal(statestore_add(w->st, "hist", "e", "new", 3, 10), STATESTORE_OK);
	assert_value(w->st, "hist", "e", "new");
	/* over the bound: deleted unread */
	assert_int_equal(statestore_add(w->st, "hist", "big", "0123456789", 10, 0), STATESTORE_OK);
	assert_int_equal(statestore_take(w->st, "hist", "big", 4, &v, &len), STATESTORE_ETOOBIG);
	assert_null(v);
	assert_value(w->st, "hist", "big", NULL);
	/* JSON */
	assert_int_equal(statestore_add_json(w->st, "hist", "j", in, 0), STATESTORE_OK);
	assert_int_equal(statestore_add_json(w->st, "hist", "j", in, 0), STATESTORE_HELD);
	assert_int_equal(statestore_take_json(w->st, "hist", "j", 1000, &out), STATESTORE_OK);
	assert_true(json_equal(in, out));
	json_decref(out);
	assert_int_equal(statestore_take_json(w->st, "hist", "j", 1000, &out), STATESTORE_NOTFOUND);
	assert_null(out);
	/* arguments checked like the others */
	assert_int_equal(statestore_add(w->st, "hist", "", "x", 1, 0), STATESTORE_EINVAL);
	assert_int_equal(statestore_add(w->st, "hist", "z", "x", 1, -1), STATESTORE_EINVAL);
	assert_int_equal(statestore_take(w->st, "hist", "", 10, &v, &len), STATESTORE_EINVAL);
	assert_int_equal(statestore_take(NULL, "hist", "z", 10, &v, &len), STATESTORE_EINVAL);
	json_decref(in);
}

static void test_counter(void **state)
{
	struct world *w = *state;
	int64_t v = 0;

	assert_int_equal(statestore_incr(w->st, "rate", "key1", 1, 60000, &v), STATESTORE_OK);
	assert_int_equal(v, 1);
	w->now += 30000;
	assert_int_equal(statestore_incr(w->st, "rate", "key1", 5, 60000, &v), STATESTORE_OK);
	assert_int_equal(v, 6);
	assert_value(w->st, "rate", "key1", "6");
	/* a fixed window: the expiry of the first increment holds */
	w->now += 30000;
	assert_int_equal(statestore_incr(w->st, "rate", "key1", 1, 60000, &v), STATESTORE_OK);
	assert_int_equal(v, 1);
	assert_int_equal(statestore_incr(w->st, "rate", "key1", -3, 60000, &v), STATESTORE_OK);
	assert_int_equal(v, -2);
	/* bytes are no counter; overflow refused and nothing changed */
	assert_int_equal(statestore_put(w->st, "rate", "b", "7", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_incr(w->st, "rate", "b", 1, 0, &v), STATESTORE_ETYPE);
	assert_value(w->st, "rate", "b", "7");
	assert_int_equal(statestore_incr(w->st, "rate", "big", INT64_MAX, 0, &v), STATESTORE_OK);
	assert_int_equal(statestore_incr(w->st, "rate", "big", 1, 0, &v), STATESTORE_EINVAL);
	assert_int_equal(statestore_incr(w->st, "rate", "big", 0, 0, &v), STATESTORE_OK);
	assert_int_equal(v, INT64_MAX);
	/* put replaces a counter; the handle still works after every error */
	assert_int_equal(statestore_put(w->st, "rate", "key1", "z", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_incr(w->st, "rate", "key1", 1, 0, &v), STATESTORE_ETYPE);
}

/* count_rows: entries in the file, expired or not (what prune has left) */
static long count_rows(const struct world *w)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void test_prune_bounded(void **state)
{
	struct world *w = *state;
	char key[32];
	size_t n = 99;

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		/* the writes themselves prune nothing: nothing has expired yet */
		assert_int_equal(statestore_put(w->st, "p", key, "v", 1, i < 90 ? 10 + i : 0), STATESTORE_OK);
	}
	assert_int_equal(count_rows(w), 100);
	w->now += 1000;
	assert_int_equal(statestore_prune(w->st, 25, &n), STATESTORE_OK);
	assert_int_equal(n, 25);
	assert_int_equal(count_rows(w), 75);
	assert_int_equal(statestore_prune(w->st, 0, &n), STATESTORE_OK);
	assert_int_equal(n, 0);
	/* each write prunes at most STATESTORE_PRUNE_STEP */
	assert_int_equal(statestore_put(w->st, "p", "new", "v", 1, 0), STATESTORE_OK);
	assert_int_equal(count_rows(w), 75 + 1 - STATESTORE_PRUNE_STEP);
	assert_int_equal(statestore_prune(w->st, 1000, &n), STATESTORE_OK);
	assert_int_equal(n, 90 - 25 - STATESTORE_PRUNE_STEP);
	assert_int_equal(count_rows(w), 11);
	assert_value(w->st, "p", "k95", "v");
}

/* race: n children each run body(child handle, i) k times; every child must exit 0 */
static void race(struct world *w, int n, void (*body)(struct statestore *st, int child, int k), int k)
{
	pid_t kids[16];
	int status;

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		if ((kids[i] = fork()) == 0) {
			char err[512];
			struct statestore_opts o = { .url = w->url, .timeout_ms = T_TIMEOUT_MS };
			struct statestore *st = statestore_open(&o, err, sizeof err);

			if (!st)
				_exit(2);
			body(st, i, k);
			statestore_close(st);
			_exit(0);
		}
		assert_true(kids[i] > 0);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

static void incr_body(struct statestore *st, int child, int k)
{
	(void)child;
	for (int i = 0; i < k; i++)
		if (statestore_incr(st, "race", "counter", 1, 0, NULL) != STATESTORE_OK)
			_exit(3);
}

static void claim_body(struct statestore *st, int child, int k)
{
	char token[16], key[32];

	snprintf(token, sizeof token, "child%d", child);
	for (int i = 0; i < k; i++) {
		enum statestore_status s;

		snprintf(key, sizeof key, "id%d", i);
		s = statestore_claim(st, "race", key, token, 0);
		if (s == STATESTORE_OK && statestore_incr(st, "race-won", key, 1, 0, NULL) != STATESTORE_OK)
			_exit(4);
		if (s != STATESTORE_OK && s != STATESTORE_HELD)
			_exit(5);
	}
}

/* every child adds its own value under the same keys: one add wins per key, never overwritten */
static void add_body(struct statestore *st, int child, int k)
{
	char token[16], key[32];

	snprintf(token, sizeof token, "child%d", child);
	for (int i = 0; i < k; i++) {
		enum statestore_status s;

		snprintf(key, sizeof key, "h%d", i);
		s = statestore_add(st, "race-add", key, token, strlen(token), 0);
		if (s == STATESTORE_OK && statestore_put(st, "race-added", key, token, strlen(token), 0) != STATESTORE_OK)
			_exit(4);
		if (s != STATESTORE_OK && s != STATESTORE_HELD)
			_exit(5);
	}
}

/* then every child takes them: one take gets each, never two */
static void take_body(struct statestore *st, int child, int k)
{
	char key[32], *v;
	size_t len;

	(void)child;
	for (int i = 0; i < k; i++) {
		enum statestore_status s;

		snprintf(key, sizeof key, "h%d", i);
		s = statestore_take(st, "race-add", key, 64, &v, &len);
		if (s == STATESTORE_OK)
			free(v);
		if (s == STATESTORE_OK && statestore_incr(st, "race-taken", key, 1, 0, NULL) != STATESTORE_OK)
			_exit(6);
		if (s != STATESTORE_OK && s != STATESTORE_NOTFOUND)
			_exit(7);
	}
}

static void test_processes_add_take_exactly_one(void **state)
{
	struct world *w = *state;
	char key[32], *won = NULL;
	size_t len;

	race(w, 8, add_body, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "h%d", i);
		/* the value kept is the winner's: the first add, not the last */
		assert_int_equal(statestore_get(w->st, "race-added", key, 64, &won, &len, NULL), STATESTORE_OK);
		assert_value(w->st, "race-add", key, won);
		free(won);
	}
	race(w, 8, take_body, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "h%d", i);
		assert_value(w->st, "race-taken", key, "1");
		assert_value(w->st, "race-add", key, NULL);
	}
}

static void test_processes_counter_no_lost_updates(void **state)
{
	struct world *w = *state;
	char *v = NULL;
	size_t len;

	race(w, 8, incr_body, 200);
	assert_int_equal(statestore_get(w->st, "race", "counter", 64, &v, &len, NULL), STATESTORE_OK);
	assert_string_equal(v, "1600");
	free(v);
}

static void test_processes_claim_exactly_one(void **state)
{
	struct world *w = *state;
	char key[32];

	race(w, 8, claim_body, 100);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "id%d", i);
		assert_value(w->st, "race-won", key, "1"); /* one winner per key, never two */
	}
}

/* a second handle: the store held by another (a transaction left open) makes ops wait, then EBUSY, bounded */
static void test_busy_is_bounded(void **state)
{
	struct world *w = *state;
	sqlite3 *db = NULL;
	struct statestore_opts o = { .url = w->url, .timeout_ms = 200, .clock = fake_clock, .clock_ud = w };
	char err[512];
	struct statestore *st2 = statestore_open(&o, err, sizeof err);
	long t0;
	char *v = NULL;
	size_t len;

	assert_non_null(st2);
	assert_int_equal(sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	t0 = clock_now_ms();
	assert_int_equal(statestore_put(st2, "b", "k", "v", 1, 0), STATESTORE_EBUSY);
	assert_true(clock_now_ms() - t0 >= 150 && clock_now_ms() - t0 < 2000);
	assert_string_not_equal(statestore_errmsg(st2), "");
	assert_int_equal(statestore_incr(st2, "b", "n", 1, 0, NULL), STATESTORE_EBUSY);
	assert_int_equal(statestore_claim(st2, "b", "c", "t", 0), STATESTORE_EBUSY);
	/* readers are not blocked by a writer (WAL) */
	assert_int_equal(statestore_get(st2, "b", "k", 10, &v, &len, NULL), STATESTORE_NOTFOUND);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(statestore_put(st2, "b", "k", "v", 1, 0), STATESTORE_OK);
	assert_int_equal(statestore_incr(st2, "b", "n", 1, 0, NULL), STATESTORE_OK);
	statestore_close(st2);
}

static void test_file_private(void **state)
{
	struct world *w = *state;
	struct stat sb;

	assert_int_equal(stat(w->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_symlink_refused(void **state)
{
	struct world *w = *state;
	char target[160], link[160], url[200], err[512];
	struct statestore_opts o = { .url = url, .timeout_ms = T_TIMEOUT_MS };

	snprintf(target, sizeof target, "%s/elsewhere.db", w->dir);
	snprintf(link, sizeof link, "%s/planted.db", w->dir);
	snprintf(url, sizeof url, "sqlite:%s", link);
	assert_int_equal(symlink(target, link), 0);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(access(target, F_OK), -1); /* nothing was created through it */
	/* a link to an existing state store is refused as well */
	snprintf(url, sizeof url, "sqlite:%s", link);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(w->path, link), 0);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "symbolic link"));
}

static void test_corrupt_and_foreign_refused(void **state)
{
	struct world *w = *state;
	char path[160], url[200], err[512];
	struct statestore_opts o = { .url = url, .timeout_ms = T_TIMEOUT_MS };
	sqlite3 *db = NULL;
	FILE *f;
	struct stat sb;

	/* not a database at all */
	snprintf(path, sizeof path, "%s/garbage.db", w->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 0; i < 50; i++)
		fputs("this is no database, ", f);
	fclose(f);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "not an SQLite database"));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 50 * 21); /* left as it was */
	/* an SQLite database of another program (the registry, the chat history, ...) */
	snprintf(path, sizeof path, "%s/foreign.db", w->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES(1);", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "another program"));
	/* and one that says so in its header */
	snprintf(path, sizeof path, "%s/foreign2.db", w->dir);
	snprintf(url, sizeof url, "sqlite:%s", path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1234; CREATE TABLE t(x);", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "another program"));
	/* a directory */
	snprintf(url, sizeof url, "sqlite:%s", w->dir);
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_urls(void **state)
{
	char err[512];
	struct statestore_opts o = { .timeout_ms = T_TIMEOUT_MS };

	(void)state;
	assert_int_equal(statestore_check_url("sqlite:/var/lib/mcpgw/state.db", err, sizeof err), 0);
	assert_int_equal(statestore_check_url("sqlite:relative.db", err, sizeof err), -1);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(statestore_check_url("sqlite://host/x", err, sizeof err), -1);
	assert_int_equal(statestore_check_url("postgresql://u:secretpw@db/mcpgw", err, sizeof err), -1);
	assert_non_null(strstr(err, "unknown scheme 'postgresql'"));
	assert_non_null(strstr(err, "supported: sqlite:"));
	assert_null(strstr(err, "secretpw")); /* only the scheme is repeated */
	assert_int_equal(statestore_check_url("/var/lib/state.db", err, sizeof err), -1);
	assert_non_null(strstr(err, "no scheme"));
	assert_int_equal(statestore_check_url("", err, sizeof err), -1);
	o.url = "redis://x";
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "unknown scheme 'redis'"));
	o.url = "sqlite:/nonexistent-dir-for-test/state.db";
	assert_null(statestore_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent-dir-for-test/state.db"));
}

/* a second process opening the same file reads what the first wrote, and both create it at once without harm */
static void open_body(struct statestore *st, int child, int k)
{
	char key[16];

	(void)k;
	snprintf(key, sizeof key, "c%d", child);
	if (statestore_put(st, "open", key, "x", 1, 0) != STATESTORE_OK)
		_exit(6);
}

static void test_processes_create_at_once(void **state)
{
	struct world *w = *state;
	char key[16];

	statestore_close(w->st);
	assert_int_equal(unlink(w->path), 0);
	w->st = NULL;
	race(w, 8, open_body, 0);
	{
		char err[512];

		assert_non_null(w->st = w_open(w, err, sizeof err));
	}
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "c%d", i);
		assert_value(w->st, "open", key, "x");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_counter_no_lost_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_claim_exactly_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_add_take_exactly_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_and_foreign_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_create_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
