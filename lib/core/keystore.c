/* keystore.c: API key records, their generation, usage and rate windows on the state-store interface (see keystore.h). */
#include "core/keystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/statedir.h"


#define KEYSTORE_RECORD_MAX 8192 /* bytes of one stored record at most */
#define KEYSTORE_PAGE 256        /* ids listed per statestore_list call */

static const char *const keystore_kinds[KEYSTORE_NKINDS] = { "requests", "tokens", "tool_calls" };

const char *keystore_kind_name(enum keystore_kind kind)
{
	return kind < KEYSTORE_NKINDS ? keystore_kinds[kind] : "?";
}

enum statestore_status keystore_put(struct statestore *st, struct changehint *hint, const struct apikey *k)
{
	json_t *j = apikey_to_json(k);
	enum statestore_status s;

	if (!j)
		return STATESTORE_ENOMEM;
	/* before the record exists: a reader that finds none cannot then mark NONE over it */
	changehint_mark_some(hint);
	s = statestore_put_json(st, KEYSTORE_NS, k->id, j, 0);
	json_decref(j);
	if (s == STATESTORE_OK)
		s = statestore_incr(st, KEYSTORE_GEN_NS, KEYSTORE_GEN_KEY, 1, 0, NULL);
	/* after the store holds it (bumped even on a failure: the record may be there) */
	changehint_bump(hint);
	return s;
}

enum statestore_status keystore_get(struct statestore *st, const char *id, struct apikey *k)
{
	json_t *j = NULL;
	char err[128];
	enum statestore_status s = statestore_get_json(st, KEYSTORE_NS, id, KEYSTORE_RECORD_MAX, &j, NULL);

	if (s != STATESTORE_OK)
		return s;
	s = apikey_from_json(j, k, err, sizeof err) == 0 && strcmp(k->id, id) == 0 ? STATESTORE_OK : STATESTORE_ETYPE;
	json_decref(j);
	return s;
}

/* read_counter: the counter (ns, key) into *v (0 when absent) */
static enum statestore_status read_counter(struct statestore *st, const char *ns, const char *key, int64_t *v)
{
	char *text = NULL;
	size_t len = 0;
	long long x;
	enum statestore_status s = statestore_get(st, ns, key, 32, &text, &len, NULL);

	*v = 0;
	if (s == STATESTORE_NOTFOUND)
		return STATESTORE_OK;
	if (s != STATESTORE_OK)
		return s;
	if (sscanf(text, "%lld", &x) == 1)
		*v = x;
	else
		s = STATESTORE_ETYPE;
	free(text);
	return s;
}

enum statestore_status keystore_generation(struct statestore *st, int64_t *gen)
{
	return read_counter(st, KEYSTORE_GEN_NS, KEYSTORE_GEN_KEY, gen);
}

enum statestore_status keystore_note_presence(struct statestore *st, const char *state_dir)
{
	char err[512];
	int64_t gen;
	enum statestore_status s = keystore_generation(st, &gen);
	struct changehint *hint;

	if (s != STATESTORE_OK)
		return s;
	if (!(hint = changehint_open(state_dir, STATEDIR_KEYS_HINT, err, sizeof err)))
		return STATESTORE_EBACKEND;
	if (gen > 0)
		changehint_mark_some(hint);
	else
		changehint_mark_none(hint);
	changehint_close(hint);
	return STATESTORE_OK;
}

/* load_page: the records of the ids in page appended to keys (n of them so far) */
static enum statestore_status load_page(struct statestore *st, const json_t *page, struct apikey *keys, size_t *n)
{
	size_t i;
	const json_t *v;

	json_array_foreach(page, i, v) {
		enum statestore_status s;

		if (*n >= KEYSTORE_MAX_KEYS)
			break;
		s = keystore_get(st, json_string_value(v), &keys[*n]);
		if (s == STATESTORE_OK)
			(*n)++;
		else if (s != STATESTORE_NOTFOUND && s != STATESTORE_ETYPE)
			return s; /* gone since the listing, or malformed: skipped */
	}
	return STATESTORE_OK;
}

enum statestore_status keystore_load(struct statestore *st, struct apikey **keys, size_t *n)
{
	char after[STATESTORE_KEY_MAX + 1] = "";
	struct apikey *all = NULL;
	size_t cap = 0;
	enum statestore_status s = STATESTORE_OK;

	*keys = NULL;
	*n = 0;
	for (;;) {
		json_t *page = NULL;
		size_t got;

		if ((s = statestore_list(st, KEYSTORE_NS, after, KEYSTORE_PAGE, &page)) != STATESTORE_OK)
			break;
		got = json_array_size(page);
		if (got == 0 || *n >= KEYSTORE_MAX_KEYS) {
			json_decref(page);
			break;
		}
		if (*n + got > cap) {
			struct apikey *more = realloc(all, (*n + got) * sizeof *all);

			if (!more) {
				json_decref(page);
				s = STATESTORE_ENOMEM;
				break;
			}
			all = more;
			cap = *n + got;
		}
		snprintf(after, sizeof after, "%s", json_string_value(json_array_get(page, got - 1)));
		s = load_page(st, page, all, n);
		json_decref(page);
		if (s != STATESTORE_OK)
			break;
	}
	if (s != STATESTORE_OK) {
		free(all);
		*n = 0;
		return s;
	}
	if (*n == 0)
		free(all);
	else
		*keys = all;
	return STATESTORE_OK;
}

enum statestore_status keystore_count(struct statestore *st, const char *id, enum keystore_kind kind, int64_t n)
{
	char key[APIKEY_ID_MAX + 32];

	snprintf(key, sizeof key, "%s/%s", id, keystore_kind_name(kind));
	return statestore_incr(st, KEYSTORE_USAGE_NS, key, n, 0, NULL);
}

enum statestore_status keystore_usage(struct statestore *st, const char *id, int64_t out[KEYSTORE_NKINDS])
{
	for (int k = 0; k < KEYSTORE_NKINDS; k++) {
		char key[APIKEY_ID_MAX + 32];
		enum statestore_status s;

		snprintf(key, sizeof key, "%s/%s", id, keystore_kind_name((enum keystore_kind)k));
		if ((s = read_counter(st, KEYSTORE_USAGE_NS, key, &out[k])) != STATESTORE_OK)
			return s;
	}
	return STATESTORE_OK;
}

enum statestore_status keystore_window(struct statestore *st, const char *id, enum keystore_kind kind, int64_t n,
				       int64_t now, int64_t *total, int64_t *retry_ms)
{
	char key[APIKEY_ID_MAX + 64];
	int64_t w = now / KEYSTORE_WINDOW_MS;

	snprintf(key, sizeof key, "%s/%s/%lld", id, keystore_kind_name(kind), (long long)w);
	*retry_ms = (w + 1) * KEYSTORE_WINDOW_MS - now;
	if (n == 0)
		return read_counter(st, KEYSTORE_RATE_NS, key, total);
	/* the window's counter outlives the window by one more (a late writer's clock) */
	return statestore_incr(st, KEYSTORE_RATE_NS, key, n, 2 * KEYSTORE_WINDOW_MS, total);
}
