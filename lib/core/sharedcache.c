/* sharedcache.c: a JSON value cached in a state-directory file for every process of a host, one fetch at a time (see sharedcache.h). */
#include "core/sharedcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

#define SC_FORMAT "mcpgw-sharedcache-1"
#define SC_PATH_MAX 4400
#define SC_LOCK_POLL_MS 10

/* what a file holds; value NULL when none */
struct sc_entry {
	int64_t fetched_ms;
	int64_t failed_ms;
	json_t *value;
};

static int64_t sc_wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sc_within: t happened less than span ago (a time in the future counts as not) */
static int sc_within(int64_t now, int64_t t, long span)
{
	return t > 0 && t <= now && now - t < span;
}

/* sc_parse: the entry of a file's bytes; 0, or -1 with why filled (e->value stays NULL) */
static int sc_parse(const struct sharedcache *c, const char *data, size_t len, struct sc_entry *e, const char **why)
{
	json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *format = json_string_value(json_object_get(doc, "format"));
	const char *key = json_string_value(json_object_get(doc, "key"));
	json_t *fetched = json_object_get(doc, "fetched_ms"), *failed = json_object_get(doc, "failed_ms");
	int rc = -1;

	*why = "not JSON";
	if (!doc)
		return -1;
	*why = "not a cache file of this version";
	if (!json_is_object(doc) || !format || strcmp(format, SC_FORMAT) != 0)
		goto out;
	*why = "made for another source";
	if (!key || strcmp(key, c->key) != 0)
		goto out;
	*why = "bad times";
	if (!json_is_integer(fetched) || !json_is_integer(failed) || json_integer_value(fetched) < 0 ||
	    json_integer_value(failed) < 0)
		goto out;
	v = json_object_get(doc, "value");
	*why = "a value of the wrong shape";
	if (!v || (json_is_null(v) ? json_integer_value(fetched) != 0
				   : json_integer_value(fetched) == 0 || (c->valid && !c->valid(v))))
		goto out;
	e->fetched_ms = json_integer_value(fetched);
	e->failed_ms = json_integer_value(failed);
	e->value = json_is_null(v) ? NULL : json_incref(v);
	*why = NULL;
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

/* sc_read: the file's entry. 0; or -1 when it is missing or unusable (logged, e zeroed) */
static int sc_read(const struct sharedcache *c, struct sc_entry *e)
{
	buf_t b = BUF_INIT;
	struct stat st;
	const char *why = NULL;
	ssize_t n;
	int fd, rc = -1;

	memset(e, 0, sizeof *e);
	if ((fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
		if (errno != ENOENT)
			log_warn("cache %s: cannot open: %s", c->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((uint64_t)st.st_size > c->max_bytes)
		why = "larger than the limit";
	else if (buf_reserve(&b, (size_t)st.st_size + 1) < 0)
		why = "out of memory";
	/* one byte more than its size: a file that grows while it is read (never one of ours) is refused */
	while (!why && (n = read(fd, b.data + b.len, (size_t)st.st_size + 1 - b.len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			why = strerror(errno);
		else if ((b.len += (size_t)n) > (size_t)st.st_size)
			why = "changed while read";
	}
	if (!why && sc_parse(c, b.data, b.len, e, &why) == 0)
		rc = 0;
	if (why)
		log_warn("cache %s: ignored (%s); it will be replaced", c->path, why);
	close(fd);
	buf_free(&b);
	return rc;
}

/* sc_write_all: all of len bytes to fd; 0 or -1 */
static int sc_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sc_write: replace the file by one holding e (written to a temporary file, then renamed). Failures are logged. */
static void sc_write(const struct sharedcache *c, const struct sc_entry *e)
{
	char tmp[SC_PATH_MAX];
	json_t *doc;
	char *text = NULL;
	int fd = -1, made = 0, ok = 0;

	doc = json_pack("{s:s, s:s, s:I, s:I, s:O?}", "format", SC_FORMAT, "key", c->key, "fetched_ms",
			(json_int_t)e->fetched_ms, "failed_ms", (json_int_t)e->failed_ms, "value", e->value);
	if (!doc || !(text = json_dumps(doc, JSON_COMPACT))) {
		log_warn("cache %s: not written: out of memory", c->path);
		goto out;
	}
	if (strlen(text) > c->max_bytes) { /* it would be refused on reading */
		log_warn("cache %s: not written: %zu bytes, more than the limit", c->path, strlen(text));
		goto out;
	}
	if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", c->path) >= (int)sizeof tmp) {
		log_warn("cache %s: not written: path too long", c->path);
		goto out;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) { /* mode 0600 */
		log_warn("cache %s: not written: %s", c->path, strerror(errno));
		goto out;
	}
	made = 1;
	if (sc_write_all(fd, text, strlen(text)) < 0) {
		log_warn("cache %s: not written: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		log_warn("cache %s: not written: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, c->path) < 0) {
		log_warn("cache %s: not written: rename: %s", c->path, strerror(errno));
		goto out;
	}
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	if (made && !ok)
		(void)unlink(tmp);
	free(text);
	json_decref(doc);
}

/* sc_lock: the cache's lock, waiting up to c->wait_ms. Its fd; -1 when
 * another process held it all that time (*busy = 1), -2 when it cannot be
 * had at all (logged) */
static int sc_lock(const struct sharedcache *c, int *busy)
{
	char path[SC_PATH_MAX];
	int64_t deadline = sc_wall_ms() + c->wait_ms;
	int fd;

	*busy = 0;
	if (snprintf(path, sizeof path, "%s.lock", c->path) >= (int)sizeof path) {
		log_warn("cache %s: no lock: path too long", c->path);
		return -2;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_warn("cache %s: no lock: %s", path, strerror(errno));
		return -2;
	}
	for (;;) {
		struct timespec pause = { 0, SC_LOCK_POLL_MS * 1000000L };

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			log_warn("cache %s: no lock: %s", path, strerror(errno));
			close(fd);
			return -2;
		}
		if (sc_wall_ms() >= deadline) {
			close(fd);
			*busy = 1;
			return -1;
		}
		(void)nanosleep(&pause, NULL);
	}
}

/* sc_answer: e's value (ownership passes to the caller) with its state */
static json_t *sc_answer(struct sc_entry *e, enum sharedcache_state state, enum sharedcache_state *out)
{
	json_t *v = e->value;

	e->value = NULL;
	*out = v ? state : SHAREDCACHE_NONE;
	return v;
}

/* sc_usable: e answers without a fetch: fresh, or held off after a failure */
static int sc_usable(const struct sharedcache *c, const struct sc_entry *e, int64_t now, enum sharedcache_state *state)
{
	if (e->value && sc_within(now, e->fetched_ms, c->ttl_ms)) {
		*state = SHAREDCACHE_FRESH;
		return 1;
	}
	if (sc_within(now, e->failed_ms, c->hold_ms)) {
		*state = SHAREDCACHE_STALE;
		return 1;
	}
	return 0;
}

/* sc_refresh: fetch, record the outcome in the file; the value to serve */
static json_t *sc_refresh(const struct sharedcache *c, struct sc_entry *e, enum sharedcache_state *state)
{
	json_t *fresh = c->fetch(c->ud);

	if (fresh) {
		json_decref(e->value);
		e->value = fresh;
		e->fetched_ms = sc_wall_ms();
		e->failed_ms = 0;
		sc_write(c, e);
		return sc_answer(e, SHAREDCACHE_FRESH, state);
	}
	e->failed_ms = sc_wall_ms();
	sc_write(c, e);
	return sc_answer(e, SHAREDCACHE_STALE, state);
}

json_t *sharedcache_get(const struct sharedcache *c, enum sharedcache_state *state)
{
	struct sc_entry e;
	enum sharedcache_state st;
	json_t *v;
	int fd, busy;

	(void)sc_read(c, &e);
	if (c->ttl_ms > 0 && sc_usable(c, &e, sc_wall_ms(), &st))
		return sc_answer(&e, st, state);
	if (c->ttl_ms <= 0) /* asked every time: nothing to wait for */
		return sc_refresh(c, &e, state);
	fd = sc_lock(c, &busy);
	if (fd == -1) { /* another process is fetching, too slowly: what we have */
		log_debug("cache %s: another process is still fetching; using the value at hand", c->path);
		return sc_answer(&e, SHAREDCACHE_STALE, state);
	}
	if (fd >= 0) { /* it may have been refreshed while we waited */
		json_decref(e.value);
		(void)sc_read(c, &e);
		if (sc_usable(c, &e, sc_wall_ms(), &st)) {
			close(fd); /* releases the lock */
			return sc_answer(&e, st, state);
		}
	}
	v = sc_refresh(c, &e, state);
	if (fd >= 0)
		close(fd);
	return v;
}
