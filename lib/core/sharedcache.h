/* sharedcache.h: one JSON value cached for every process (of a host, or of every host sharing the state store), refreshed by one process at a time. */
#ifndef MCPGW_SHAREDCACHE_H
#define MCPGW_SHAREDCACHE_H

#include <jansson.h>
#include <stddef.h>

#include "core/statestore.h"

/* The value lives in the state store (statestore.h), in three entries
 * named by the cache's name:
 *   ("sharedcache", name)         {"source": SOURCE, "value": V}, written
 *                                 after each good fetch; its age is the
 *                                 value's age
 *   ("sharedcache-fetch", name)   the claim of the process fetching now
 *                                 (lease_ms: one that dies is replaced)
 *   ("sharedcache-failed", name)  after a failed fetch, for hold_ms
 * Each is written in one atomic step, so a reader sees the old or the new
 * value, never half of one. When k processes find the value stale at once,
 * one claims the fetch and the others wait for it (up to wait_ms), then
 * read what it wrote: one fetch, not k.
 *
 * The entry is input like any other: one larger than max_bytes, not JSON
 * of that shape, of another source, or whose value valid() refuses is
 * ignored (logged) and replaced by the next fetch. */

struct sharedcache {
	struct statestore *store; /* borrowed; NULL: the store cannot be had (the value is fetched every time) */
	const char *name;         /* which cache (the store's key, e.g. "models") */
	const char *source; /* what the value is of (e.g. the upstream URL, no secrets): another source's value is not used */
	long ttl_ms; /* a value younger than this is used as it is; 0: fetch on every get (the store keeps the last good value) */
	long hold_ms;     /* after a failed fetch no process fetches again for this long (0: no hold) */
	long wait_ms;     /* longest wait for another process's fetch; then the value at hand is used */
	long lease_ms;    /* how long a fetch may hold the claim: a fetcher that died is replaced after this */
	size_t max_bytes; /* largest entry read */
	int (*valid)(const json_t *value); /* 1 when a value read from the store has the right shape; NULL: any */
	json_t *(*fetch)(void *ud); /* a fresh value (new reference), or NULL when the source failed (it logs why) */
	void *ud;                   /* handed to fetch */
};

enum sharedcache_state {
	SHAREDCACHE_FRESH, /* fetched within ttl_ms (by this or another process) */
	SHAREDCACHE_STALE, /* older: the source failed, is held off after a failure, or another process's fetch took too long */
	SHAREDCACHE_NONE /* no value: never fetched successfully */
};

/* sharedcache_get: the value, fresh from the store, else fetched (and
 * stored), else the stale one. Returns a new reference (NULL when there is
 * none) and sets *state. Problems with the store (busy past its timeout,
 * bad entries, cannot be written) are logged and never fail the call: at
 * worst the value is fetched without sharing it. */
json_t *sharedcache_get(const struct sharedcache *c, enum sharedcache_state *state);

#endif
