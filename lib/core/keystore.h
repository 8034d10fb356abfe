/* keystore.h: API keys in the state store: records, the generation that says they changed, usage counters and rate windows. */
#ifndef MCPGW_KEYSTORE_H
#define MCPGW_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/apikey.h"
#include "core/changehint.h"
#include "core/statestore.h"

/* What the store holds (namespaces of lib/core/statestore.h), every
 * operation one of the store interface's, so any backend serves it:
 *   apikey        id -> the record (apikey_to_json), never the key itself
 *   apikey-gen    "generation": a counter bumped by every change of a record
 *                 (create, revoke): a process that cached the records reads
 *                 it when the change hint moved (and once a second) and
 *                 reloads when it moved
 *   apikey-usage  "ID/requests", "ID/tokens", "ID/tool_calls": counters, kept
 *   apikey-rate   "ID/KIND/MINUTE": the fixed one-minute windows of the rates,
 *                 expiring two minutes after they start */
#define KEYSTORE_NS "apikey"
#define KEYSTORE_GEN_NS "apikey-gen"
#define KEYSTORE_GEN_KEY "generation"
#define KEYSTORE_USAGE_NS "apikey-usage"
#define KEYSTORE_RATE_NS "apikey-rate"
#define KEYSTORE_MAX_KEYS 4096   /* records loaded at most (more are ignored, logged by the caller) */
#define KEYSTORE_WINDOW_MS 60000 /* the rate window: a minute, as rpm/tpm say */

/* what is counted per key, in usage and in rate windows */
enum keystore_kind { KEYSTORE_REQUESTS = 0, KEYSTORE_TOKENS, KEYSTORE_TOOL_CALLS, KEYSTORE_NKINDS };

/* keystore_kind_name: "requests", "tokens", "tool_calls". */
const char *keystore_kind_name(enum keystore_kind kind);

/* keystore_put: mark the hint's presence word SOME, store the record k (a new
 * key, or a changed one: a revocation), bump the generation, then the
 * change hint (changehint.h: hint is that of
 * the state directory, STATEDIR_KEYS_HINT, so that every process caching
 * the keys re-reads them at its next request; NULL only where no process
 * caches them). OK or the store's error. */
enum statestore_status keystore_put(struct statestore *st, struct changehint *hint, const struct apikey *k);

/* keystore_note_presence: the presence word of state_dir's key hint
 * (STATEDIR_KEYS_HINT, opened and closed here) made to agree with the
 * store: SOME when a key was ever stored (generation > 0), else NONE (from
 * UNKNOWN only). For a process that opened the store anyway (mcpgw-keys'
 * every command, the broker at its start; after a state store was restored
 * from a backup). OK, the store's error, or STATESTORE_EBACKEND when the
 * hint cannot be opened (the word then unchanged). */
enum statestore_status keystore_note_presence(struct statestore *st, const char *state_dir);

/* keystore_get: the record of id into *k. OK, NOTFOUND, ETYPE (a record
 * that is no valid record), or the store's error. */
enum statestore_status keystore_get(struct statestore *st, const char *id, struct apikey *k);

/* keystore_generation: the current generation into *gen (0 when no key was
 * ever stored). OK or the store's error. */
enum statestore_status keystore_generation(struct statestore *st, int64_t *gen);

/* keystore_load: every record (revoked ones too), in id order, at most
 * KEYSTORE_MAX_KEYS: *keys a malloc'd array of *n (free it; NULL when 0).
 * A malformed record is skipped. OK or the store's error (*keys NULL). */
enum statestore_status keystore_load(struct statestore *st, struct apikey **keys, size_t *n);

/* keystore_count: add n to id's usage counter of kind. OK or an error. */
enum statestore_status keystore_count(struct statestore *st, const char *id, enum keystore_kind kind, int64_t n);

/* keystore_usage: id's usage counters into out (0 for those never counted). */
enum statestore_status keystore_usage(struct statestore *st, const char *id, int64_t out[KEYSTORE_NKINDS]);

/* keystore_window: add n (>= 0; 0: only read) to id's rate window of kind
 * at now (wall-clock ms), the window's total after it into *total, and the
 * ms until the window ends into *retry_ms. Every process of every host
 * sharing the store counts in the same window. OK or an error. */
enum statestore_status keystore_window(struct statestore *st, const char *id, enum keystore_kind kind, int64_t n,
				       int64_t now, int64_t *total, int64_t *retry_ms);

#endif
