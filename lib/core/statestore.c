/* statestore.c: the state-store interface: the backend chosen by URL, arguments checked once, JSON on top of bytes (see statestore.h). */
#include "core/statestore.h"
#include "core/statestore_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the backends this build has, by scheme */
static const struct statestore_ops *const statestore_backends[] = { &statestore_sqlite_ops };

static int64_t statestore_wall_ms(void *ud)
{
	struct timespec ts;

	(void)ud;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t statestore_now(const struct statestore *st)
{
	return st->clock(st->clock_ud);
}

/* statestore_backend: the backend of a checked url's scheme and the rest after "scheme:"; NULL with err */
static const struct statestore_ops *statestore_backend(const char *url, const char **rest, char *err, size_t errlen)
{
	if (statestore_check_url(url, err, errlen) < 0)
		return NULL;
	for (size_t i = 0; i < sizeof statestore_backends / sizeof *statestore_backends; i++)
		if ((*rest = statestore_url_rest(url, statestore_backends[i]->scheme)))
			return statestore_backends[i];
	snprintf(err, errlen, "MCPGW_STATE_STORE: this build has no backend for its scheme");
	return NULL;
}

struct statestore *statestore_open(const struct statestore_opts *o, char *err, size_t errlen)
{
	const char *rest;
	const struct statestore_ops *b = statestore_backend(o->url, &rest, err, errlen);
	struct statestore *st;

	if (!b)
		return NULL;
	if (o->timeout_ms <= 0) {
		snprintf(err, errlen, "state store: the timeout must be positive");
		return NULL;
	}
	if (!(st = calloc(1, sizeof *st))) {
		snprintf(err, errlen, "state store: out of memory");
		return NULL;
	}
	st->ops = b;
	st->clock = o->clock ? o->clock : statestore_wall_ms;
	st->clock_ud = o->clock_ud;
	if (b->open(st, rest, o->timeout_ms, err, errlen) < 0) {
		free(st);
		return NULL;
	}
	return st;
}

void statestore_close(struct statestore *st)
{
	if (!st)
		return;
	st->ops->close(st);
	free(st);
}

const char *statestore_strerror(enum statestore_status s)
{
	switch (s) {
	case STATESTORE_OK: return "done";
	case STATESTORE_NOTFOUND: return "no such entry";
	case STATESTORE_HELD: return "held by another claim, or (add) already there";
	case STATESTORE_EBUSY: return "the state store stayed busy (another process) past its timeout";
	case STATESTORE_ETOOBIG: return "value too large";
	case STATESTORE_EINVAL: return "invalid namespace, key, token or TTL";
	case STATESTORE_ETYPE: return "the entry holds another kind of value";
	case STATESTORE_ENOMEM: return "out of memory";
	case STATESTORE_EBACKEND: return "the state store's backend failed";
	}
	return "unknown status";
}

const char *statestore_errmsg(const struct statestore *st)
{
	return st ? st->errmsg : "no state store";
}

/* statestore_name_ok: a namespace or key: non-empty, at most max bytes */
static int statestore_name_ok(const char *s, size_t max)
{
	return s && *s && strnlen(s, max + 1) <= max;
}

/* statestore_args: the checks every keyed operation shares; clears the last error */
static int statestore_args(struct statestore *st, const char *ns, const char *key)
{
	if (!st)
		return 0;
	st->errmsg[0] = '\0';
	return statestore_name_ok(ns, STATESTORE_NS_MAX) && statestore_name_ok(key, STATESTORE_KEY_MAX);
}

/* statestore_expiry: the absolute expiry of a TTL from now (0: never); -1 when ttl is negative or overflows */
static int64_t statestore_expiry(int64_t now, int64_t ttl_ms)
{
	if (ttl_ms < 0 || ttl_ms > INT64_MAX - now)
		return -1;
	return ttl_ms ? now + ttl_ms : 0;
}

enum statestore_status statestore_get(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
				      char **value, size_t *len, int64_t *age_ms)
{
	int64_t age = 0;
	enum statestore_status s;

	if (value)
		*value = NULL;
	if (!statestore_args(st, ns, key) || !value || !len)
		return STATESTORE_EINVAL;
	s = st->ops->get(st, ns, key, statestore_now(st), max_bytes, value, len, &age);
	if (s == STATESTORE_OK && age_ms)
		*age_ms = age;
	return s;
}

/* statestore_write: put (add 0) or add (add 1) after the one check of
 * their arguments and expiry */
static enum statestore_status statestore_write(struct statestore *st, const char *ns, const char *key,
					       const void *value, size_t len, int64_t ttl_ms, int add)
{
	int64_t now, exp;

	if (!statestore_args(st, ns, key) || (!value && len))
		return STATESTORE_EINVAL;
	now = statestore_now(st);
	if ((exp = statestore_expiry(now, ttl_ms)) < 0)
		return STATESTORE_EINVAL;
	return (add ? st->ops->add : st->ops->put)(st, ns, key, now, value ? value : "", len, exp);
}

enum statestore_status statestore_put(struct statestore *st, const char *ns, const char *key, const void *value,
				      size_t len, int64_t ttl_ms)
{
	return statestore_write(st, ns, key, value, len, ttl_ms, 0);
}

/* statestore_parse: a value's bytes as JSON into *out: OK, ETYPE (no JSON), or ENOMEM (out of
 * memory: the bytes may well be JSON, not to be taken for a corrupt entry) */
static enum statestore_status statestore_parse(const char *text, size_t len, json_t **out)
{
	json_error_t err;

	if ((*out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err)))
		return STATESTORE_OK;
	return json_error_code(&err) == json_error_out_of_memory ? STATESTORE_ENOMEM : STATESTORE_ETYPE;
}

enum statestore_status statestore_get_json(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
					   json_t **out, int64_t *age_ms)
{
	char *text = NULL;
	size_t len = 0;
	enum statestore_status s;

	if (!out)
		return STATESTORE_EINVAL;
	*out = NULL;
	if ((s = statestore_get(st, ns, key, max_bytes, &text, &len, age_ms)) != STATESTORE_OK)
		return s;
	s = statestore_parse(text, len, out);
	free(text);
	return s;
}

/* statestore_write_json: v as compact JSON through statestore_write */
static enum statestore_status statestore_write_json(struct statestore *st, const char *ns, const char *key,
						    const json_t *v, int64_t ttl_ms, int add)
{
	char *text;
	enum statestore_status s;

	if (!v)
		return STATESTORE_EINVAL;
	if (!(text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
		return STATESTORE_ENOMEM;
	s = statestore_write(st, ns, key, text, strlen(text), ttl_ms, add);
	free(text);
	return s;
}

enum statestore_status statestore_put_json(struct statestore *st, const char *ns, const char *key, const json_t *v,
					   int64_t ttl_ms)
{
	return statestore_write_json(st, ns, key, v, ttl_ms, 0);
}

enum statestore_status statestore_add(struct statestore *st, const char *ns, const char *key, const void *value,
				      size_t len, int64_t ttl_ms)
{
	return statestore_write(st, ns, key, value, len, ttl_ms, 1);
}

enum statestore_status statestore_take(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
				       char **value, size_t *len)
{
	if (value)
		*value = NULL;
	if (!statestore_args(st, ns, key) || !value || !len)
		return STATESTORE_EINVAL;
	return st->ops->take(st, ns, key, statestore_now(st), max_bytes, value, len);
}

enum statestore_status statestore_add_json(struct statestore *st, const char *ns, const char *key, const json_t *v,
					   int64_t ttl_ms)
{
	return statestore_write_json(st, ns, key, v, ttl_ms, 1);
}

enum statestore_status statestore_take_json(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
					    json_t **out)
{
	char *text = NULL;
	size_t len = 0;
	enum statestore_status s;

	if (!out)
		return STATESTORE_EINVAL;
	*out = NULL;
	if ((s = statestore_take(st, ns, key, max_bytes, &text, &len)) != STATESTORE_OK)
		return s;
	s = statestore_parse(text, len, out);
	free(text);
	return s;
}

enum statestore_status statestore_del(struct statestore *st, const char *ns, const char *key)
{
	if (!statestore_args(st, ns, key))
		return STATESTORE_EINVAL;
	return st->ops->del(st, ns, key, statestore_now(st));
}

enum statestore_status statestore_claim(struct statestore *st, const char *ns, const char *key, const char *token,
					int64_t ttl_ms)
{
	int64_t now, exp;

	if (!statestore_args(st, ns, key) || !statestore_name_ok(token, STATESTORE_KEY_MAX))
		return STATESTORE_EINVAL;
	now = statestore_now(st);
	if ((exp = statestore_expiry(now, ttl_ms)) < 0)
		return STATESTORE_EINVAL;
	return st->ops->claim(st, ns, key, now, token, exp);
}

enum statestore_status statestore_release(struct statestore *st, const char *ns, const char *key, const char *token)
{
	if (!statestore_args(st, ns, key) || !statestore_name_ok(token, STATESTORE_KEY_MAX))
		return STATESTORE_EINVAL;
	return st->ops->release(st, ns, key, statestore_now(st), token);
}

enum statestore_status statestore_incr(struct statestore *st, const char *ns, const char *key, int64_t delta,
				       int64_t ttl_ms, int64_t *value)
{
	int64_t now, exp, v = 0;
	enum statestore_status s;

	if (!statestore_args(st, ns, key))
		return STATESTORE_EINVAL;
	now = statestore_now(st);
	if ((exp = statestore_expiry(now, ttl_ms)) < 0)
		return STATESTORE_EINVAL;
	s = st->ops->incr(st, ns, key, now, delta, exp, &v);
	if (s == STATESTORE_OK && value)
		*value = v;
	return s;
}

enum statestore_status statestore_list(struct statestore *st, const char *ns, const char *after, size_t max, json_t **keys)
{
	if (keys)
		*keys = NULL;
	if (!st || !keys || !max || !statestore_name_ok(ns, STATESTORE_NS_MAX) ||
	    (after && strnlen(after, STATESTORE_KEY_MAX + 1) > STATESTORE_KEY_MAX))
		return STATESTORE_EINVAL;
	st->errmsg[0] = '\0';
	return st->ops->list(st, ns, statestore_now(st), after ? after : "", max, keys);
}

enum statestore_status statestore_prune(struct statestore *st, size_t max, size_t *pruned)
{
	size_t n = 0;
	enum statestore_status s;

	if (!st)
		return STATESTORE_EINVAL;
	st->errmsg[0] = '\0';
	s = max ? st->ops->prune(st, statestore_now(st), max, &n) : STATESTORE_OK;
	if (pruned)
		*pruned = n;
	return s;
}

enum statestore_status statestore_audit_append(struct statestore *st, const struct statestore_audit_row *rows, size_t n)
{
	if (!st || (n && !rows))
		return STATESTORE_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!rows[i].caller || !rows[i].server || !rows[i].tool || !rows[i].outcome)
			return STATESTORE_EINVAL;
	return n ? st->ops->audit_append(st, rows, n) : STATESTORE_OK;
}

enum statestore_status statestore_audit_prune(struct statestore *st, int64_t before_ms, size_t max, size_t *pruned)
{
	size_t n = 0;
	enum statestore_status s;

	if (!st)
		return STATESTORE_EINVAL;
	s = max ? st->ops->audit_prune(st, before_ms, max, &n) : STATESTORE_OK;
	if (pruned)
		*pruned = n;
	return s;
}
