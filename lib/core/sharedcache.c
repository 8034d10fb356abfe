/* sharedcache.c: a JSON value cached in the state store for every process, one fetch at a time (see sharedcache.h). */
#include "core/sharedcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/randid.h"

#define SC_NS_VALUE "sharedcache"         /* {"source", "value"}: the last good value */
#define SC_NS_FETCH "sharedcache-fetch"   /* the claim of the process fetching */
#define SC_NS_FAILED "sharedcache-failed" /* present for hold_ms after a failed fetch */
#define SC_POLL_MS 10                     /* how often a waiting process looks again */
#define SC_TOKEN_CHARS 24

/* what the store holds for a cache; value NULL when none */
struct sc_entry {
	json_t *value;
	int64_t age_ms;
	int held; /* a failed fetch is being held off */
};

/* sc_warn: a store problem, logged; the cache goes on without it */
static void sc_warn(const struct sharedcache *c, const char *what, enum statestore_status s)
{
	const char *more = statestore_errmsg(c->store);

	log_warn("cache %s: %s: %s%s%s", c->name, what, statestore_strerror(s), *more ? ": " : "", more);
}

/* sc_take: the value of a stored entry, checked (new reference), or NULL with why */
static json_t *sc_take(const struct sharedcache *c, const json_t *doc, const char **why)
{
	const char *source = json_string_value(json_object_get(doc, "source"));
	json_t *v = json_object_get(doc, "value");

	*why = "not a cache entry of this version";
	if (!json_is_object(doc) || !source || !v)
		return NULL;
	*why = "made for another source";
	if (strcmp(source, c->source) != 0)
		return NULL;
	*why = "a value of the wrong shape";
	if (json_is_null(v) || (c->valid && !c->valid(v)))
		return NULL;
	return json_incref(v);
}

/* sc_read: the cache's entries as they are now (e zeroed first); problems logged */
static void sc_read(const struct sharedcache *c, struct sc_entry *e)
{
	json_t *doc = NULL;
	char *flag = NULL;
	size_t len;
	const char *why = NULL;
	enum statestore_status s;

	memset(e, 0, sizeof *e);
	s = statestore_get_json(c->store, SC_NS_VALUE, c->name, c->max_bytes, &doc, &e->age_ms);
	if (s == STATESTORE_OK && !(e->value = sc_take(c, doc, &why)))
		log_warn("cache %s: ignored (%s); it will be replaced", c->name, why);
	else if (s == STATESTORE_ETYPE || s == STATESTORE_ETOOBIG)
		log_warn("cache %s: ignored (%s); it will be replaced", c->name,
			 s == STATESTORE_ETYPE ? "not JSON" : "larger than the limit");
	else if (s != STATESTORE_OK && s != STATESTORE_NOTFOUND)
		sc_warn(c, "cannot read", s);
	json_decref(doc);
	s = statestore_get(c->store, SC_NS_FAILED, c->name, 64, &flag, &len, NULL);
	e->held = s == STATESTORE_OK;
	free(flag);
	if (s != STATESTORE_OK && s != STATESTORE_NOTFOUND)
		sc_warn(c, "cannot read", s);
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
static int sc_usable(const struct sharedcache *c, const struct sc_entry *e, enum sharedcache_state *state)
{
	if (e->value && e->age_ms < c->ttl_ms) {
		*state = SHAREDCACHE_FRESH;
		return 1;
	}
	if (e->held) {
		*state = SHAREDCACHE_STALE;
		return 1;
	}
	return 0;
}

/* sc_refresh: fetch, record the outcome in the store; the value to serve */
static json_t *sc_refresh(const struct sharedcache *c, struct sc_entry *e, enum sharedcache_state *state)
{
	json_t *fresh = c->fetch(c->ud), *doc;
	enum statestore_status s;

	if (!c->store) {
		json_decref(e->value);
		e->value = fresh;
		return sc_answer(e, SHAREDCACHE_FRESH, state);
	}
	if (fresh) {
		json_decref(e->value);
		e->value = fresh;
		doc = json_pack("{s:s, s:O}", "source", c->source, "value", fresh);
		s = doc ? statestore_put_json(c->store, SC_NS_VALUE, c->name, doc, 0) : STATESTORE_ENOMEM;
		json_decref(doc);
		if (s != STATESTORE_OK)
			sc_warn(c, "not written", s);
		if (c->hold_ms > 0 && (s = statestore_del(c->store, SC_NS_FAILED, c->name)) != STATESTORE_OK &&
		    s != STATESTORE_NOTFOUND)
			sc_warn(c, "failure mark not removed", s);
		return sc_answer(e, SHAREDCACHE_FRESH, state);
	}
	if (c->hold_ms > 0 && (s = statestore_put(c->store, SC_NS_FAILED, c->name, "1", 1, c->hold_ms)) != STATESTORE_OK)
		sc_warn(c, "failure not recorded", s);
	return sc_answer(e, SHAREDCACHE_STALE, state);
}

/* sc_claim: try to become the fetcher. 1 claimed, 0 another process fetches, -1 the store failed (logged) */
static int sc_claim(const struct sharedcache *c, const char *token)
{
	enum statestore_status s = statestore_claim(c->store, SC_NS_FETCH, c->name, token, c->lease_ms);

	if (s == STATESTORE_OK || s == STATESTORE_HELD)
		return s == STATESTORE_OK;
	sc_warn(c, "cannot claim the fetch", s);
	return -1;
}

/* sc_claimed: 1 while another process's claim to fetch stands, 0 when it is gone (released or lapsed) */
static int sc_claimed(const struct sharedcache *c)
{
	char *holder = NULL;
	size_t len;
	enum statestore_status s =
		statestore_get(c->store, SC_NS_FETCH, c->name, STATESTORE_KEY_MAX, &holder, &len, NULL);

	free(holder);
	return s != STATESTORE_NOTFOUND; /* a store error: as if it stood, the wait is bounded anyway */
}

/* sc_wait: another process fetches: look again until what it wrote is
 * there or its claim is ours to take, at most wait_ms. 1 when e is usable
 * (state set), 0 when we hold the claim now, -1 when the wait ran out or
 * the store failed (e holds what is at hand) */
static int sc_wait(const struct sharedcache *c, const char *token, struct sc_entry *e, enum sharedcache_state *state)
{
	int64_t deadline = clock_now_ms() + c->wait_ms;
	int got;

	for (;;) {
		if (clock_now_ms() >= deadline) {
			log_debug("cache %s: another process is still fetching; using the value at hand", c->name);
			return -1;
		}
		clock_sleep_ms(SC_POLL_MS);
		json_decref(e->value);
		sc_read(c, e);
		if (sc_usable(c, e, state))
			return 1;
		/* only reads while the claim stands: the fetcher's write is not kept waiting by ours */
		if (sc_claimed(c))
			continue;
		if ((got = sc_claim(c, token)) != 0)
			return got > 0 ? 0 : -1;
	}
}

json_t *sharedcache_get(const struct sharedcache *c, enum sharedcache_state *state)
{
	struct sc_entry e = { 0 };
	enum sharedcache_state st;
	char token[RANDID_MAX_CHARS + 1];
	json_t *v;
	int got;

	if (!c->store) /* no store: every get fetches */
		return sc_refresh(c, &e, state);
	sc_read(c, &e);
	if (c->ttl_ms > 0 && sc_usable(c, &e, &st))
		return sc_answer(&e, st, state);
	if (c->ttl_ms <= 0) /* asked every time: nothing to wait for */
		return sc_refresh(c, &e, state);
	if (randid_new(token, sizeof token, NULL, SC_TOKEN_CHARS) < 0) {
		log_warn("cache %s: no claim token (getrandom: %s); fetching without sharing", c->name, strerror(errno));
		return sc_refresh(c, &e, state);
	}
	got = sc_claim(c, token);
	if (got == 0) { /* another process fetches: wait for what it writes */
		int w = sc_wait(c, token, &e, &st);

		if (w != 0)
			return sc_answer(&e, w > 0 ? st : SHAREDCACHE_STALE, state);
		got = 1; /* its claim ended without a value: ours now */
	}
	if (got < 0) /* the store cannot arbitrate: fetch without sharing */
		return sc_refresh(c, &e, state);
	/* ours: another fetch may have ended just before we claimed */
	json_decref(e.value);
	sc_read(c, &e);
	v = sc_usable(c, &e, &st) ? sc_answer(&e, st, state) : sc_refresh(c, &e, state);
	(void)statestore_release(c->store, SC_NS_FETCH, c->name, token);
	return v;
}
