/* statestore.h: one store for every state shared across processes and requests (mixed-batch history, caches, soon keys, counters, sessions): namespaced keys, JSON or byte values, TTLs; backends chosen by URL. */
#ifndef MCPGW_STATESTORE_H
#define MCPGW_STATESTORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What the store holds: entries named by a namespace and a key (ns: what
 * kind of thing, e.g. "mixed-batch"; key: which one), each with a value
 * (bytes; JSON through the _json functions; a counter's value is an
 * integer), the time it was written and, optionally, the time it expires.
 * An expired entry is gone for every operation, whether or not it has been
 * pruned yet.
 *
 * Backends, chosen by the URL given to statestore_open (MCPGW_STATE_STORE):
 *   sqlite:/ABSOLUTE/PATH  one SQLite file (0600, WAL, no symlink) shared by
 *                          every process of one host
 *   postgresql://...       planned (several hosts behind one balancer), not built in
 *
 * Across processes (and, with a shared backend, hosts), every operation is
 * one atomic step on the shared store: a reader sees an entry as a whole,
 * before or after a write, never half of one; claim and incr read and write
 * in one step that no other process can interleave with. No operation waits
 * for another process longer than the timeout given at open
 * (MCPGW_STATE_STORE_TIMEOUT): past it, it fails with STATESTORE_EBUSY and
 * changes nothing. Times are wall-clock milliseconds of the store's clock
 * (sqlite: this host's CLOCK_REALTIME, or opts.clock for tests).
 *
 * A handle is for one thread at a time; open one per thread. */

#include "core/statestore_types.h"
#include "core/statestore_url.h" /* statestore_check_url */

/* how to open a store */
struct statestore_opts {
	const char *url;            /* "sqlite:/path/state.db" (see above) */
	long timeout_ms;            /* longest wait for another process, per operation (> 0) */
	int64_t (*clock)(void *ud); /* wall-clock ms; NULL: CLOCK_REALTIME. Tests inject one */
	void *clock_ud;
};

/* statestore_open: the store o->url names, ready to use (sqlite: the file
 * created 0600 when missing; a symlink, a file that is no SQLite database
 * and an SQLite database that is not a state store are refused). The
 * handle (statestore_close it), or NULL with err ("what: why", no secret). */
struct statestore *statestore_open(const struct statestore_opts *o, char *err, size_t errlen);

/* statestore_close: release the handle (NULL: nothing). */
void statestore_close(struct statestore *st);

/* statestore_strerror: a static sentence for a status. */
const char *statestore_strerror(enum statestore_status s);

/* statestore_errmsg: what the backend said about the last failed operation
 * of this handle (borrowed, valid until the next call; "" when none). */
const char *statestore_errmsg(const struct statestore *st);

/* statestore_get: the value of (ns, key) if it has not expired. *value is a
 * new malloc'd copy of its len bytes plus a NUL after them (free it);
 * *age_ms (may be NULL) how long ago it was written (INT64_MAX when it was
 * written later than now, the clock having gone back: of unknown age, so
 * old for any freshness test). A counter reads as its decimal digits. Values longer than max_bytes
 * are not read: STATESTORE_ETOOBIG. OK, NOTFOUND, or an error (*value NULL). */
enum statestore_status statestore_get(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
				      char **value, size_t *len, int64_t *age_ms);

/* statestore_put: set (ns, key) to len bytes of value, replacing what was
 * there (a claim or counter included), expiring ttl_ms from now (0: never).
 * Also prunes up to STATESTORE_PRUNE_STEP expired entries. OK or an error
 * (then the old entry is untouched). */
enum statestore_status statestore_put(struct statestore *st, const char *ns, const char *key, const void *value,
				      size_t len, int64_t ttl_ms);

/* statestore_get_json / statestore_put_json: the same with a JSON value:
 * *out a new reference (NULL unless OK; ETYPE when the bytes are no JSON,
 * ENOMEM when they could not be parsed for lack of memory); put_json
 * borrows v and writes it compact. */
enum statestore_status statestore_get_json(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
					   json_t **out, int64_t *age_ms);
enum statestore_status statestore_put_json(struct statestore *st, const char *ns, const char *key, const json_t *v,
					   int64_t ttl_ms);

/* statestore_del: remove (ns, key) whatever it holds. OK, NOTFOUND (none,
 * or expired), or an error. */
enum statestore_status statestore_del(struct statestore *st, const char *ns, const char *key);

/* statestore_add: insert-only put: set (ns, key) to len bytes of value,
 * expiring ttl_ms from now (0: never), only when no live entry has that
 * key (absent or expired); a live entry of any kind is left as it is and
 * the answer is HELD. Of any number of processes adding one key at once,
 * exactly one gets OK. For entries that must never be overwritten by
 * another writer (a mixed batch's history: a colliding key is a miss, not
 * an overwrite). Also prunes like put. OK, HELD, or an error. */
enum statestore_status statestore_add(struct statestore *st, const char *ns, const char *key, const void *value,
				      size_t len, int64_t ttl_ms);

/* statestore_take: get and delete (ns, key) in one atomic step: of any
 * number of processes taking one entry at once, exactly one gets it (OK,
 * with *value and *len as statestore_get sets them); the others get
 * NOTFOUND. A live value longer than max_bytes is deleted unread:
 * ETOOBIG. An expired entry is NOTFOUND (and left for pruning). OK,
 * NOTFOUND, or an error (*value NULL; the entry then untouched, ETOOBIG
 * aside). For one-time entries (consumed on use: no replay). */
enum statestore_status statestore_take(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
				       char **value, size_t *len);

/* statestore_add_json / statestore_take_json: the same with a JSON value,
 * as statestore_put_json / statestore_get_json (take_json's ETYPE and ENOMEM:
 * the entry was taken, it is gone; a caller that must keep it on ENOMEM
 * takes the bytes with statestore_take and parses them itself). */
enum statestore_status statestore_add_json(struct statestore *st, const char *ns, const char *key, const json_t *v,
					   int64_t ttl_ms);
enum statestore_status statestore_take_json(struct statestore *st, const char *ns, const char *key, size_t max_bytes,
					    json_t **out);

/* statestore_claim: take (ns, key) for token (a non-empty string the
 * caller makes unique, e.g. a randid, or fixed for a one-time id) for
 * ttl_ms (> 0: a holder that dies is replaced after it; 0: for good) when
 * it is absent or expired, or already held with the same token (then its
 * expiry is renewed). Of any number of processes claiming one key at once,
 * exactly one gets OK; the others get HELD until it is released or expires.
 * For single-flight refreshes (a lease: claim, work, release) and one-time
 * ids (claim for good: a second use is HELD). */
enum statestore_status statestore_claim(struct statestore *st, const char *ns, const char *key, const char *token,
					int64_t ttl_ms);

/* statestore_release: delete (ns, key) only if it is held with token (a
 * holder whose claim expired and was taken by another cannot release the
 * new holder's). OK, NOTFOUND (not held with that token), or an error. */
enum statestore_status statestore_release(struct statestore *st, const char *ns, const char *key, const char *token);

/* statestore_incr: add delta to the counter (ns, key) and set *value (may
 * be NULL) to the result, in one atomic step: concurrent increments from
 * any number of processes are never lost. An absent or expired counter
 * starts from 0 and expires ttl_ms after this increment (0: never); later
 * increments keep that expiry (a fixed window, for rate limits). ETYPE when
 * the entry holds bytes; EINVAL on overflow. Also prunes like put. */
enum statestore_status statestore_incr(struct statestore *st, const char *ns, const char *key, int64_t delta,
				       int64_t ttl_ms, int64_t *value);

/* statestore_list: the live (unexpired) keys of namespace ns, in
 * ascending byte order, starting after the key after (NULL or "": from the
 * first), at most max of them (>= 1): *keys a new JSON array of strings
 * (json_decref it; NULL unless OK). A page of a namespace that may be
 * large: call again with after = the last key for the next page (an empty
 * array: no more). OK or an error. */
enum statestore_status statestore_list(struct statestore *st, const char *ns, const char *after, size_t max,
				       json_t **keys);

/* statestore_prune: delete at most max expired entries, oldest expiry
 * first (bounded work per call: call it again for more). *pruned (may be
 * NULL) is how many went. OK or an error. */
enum statestore_status statestore_prune(struct statestore *st, size_t max, size_t *pruned);

/* ---- the audit table: one row per tool call (issue 14, case 7) ----
 * Rows are appended, never changed, and pruned by age (MCPGW_AUDIT_RETENTION).
 * sqlite: the table "audit" in the same file, made on first use. */

/* struct statestore_audit_row: one tool call as audited (statestore_types.h) */


/* statestore_audit_append: n rows appended in one atomic step (all or
 * none). OK or an error (EINVAL: a NULL string other than arguments/result). */
enum statestore_status statestore_audit_append(struct statestore *st, const struct statestore_audit_row *rows, size_t n);

/* statestore_audit_prune: delete at most max rows whose time is before
 * before_ms, oldest first (bounded work per call: call again while
 * *pruned == max). *pruned (may be NULL): how many went. OK or an error. */
enum statestore_status statestore_audit_prune(struct statestore *st, int64_t before_ms, size_t max, size_t *pruned);

#endif
