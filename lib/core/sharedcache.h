/* sharedcache.h: one JSON value cached for every process of a host: a file in the state directory, refreshed by one process at a time. */
#ifndef MCPGW_SHAREDCACHE_H
#define MCPGW_SHAREDCACHE_H

#include <jansson.h>
#include <stddef.h>

/* The file (mode 0600) holds
 *   {"format": "mcpgw-sharedcache-1", "key": KEY, "fetched_ms": T, "failed_ms": F, "value": V}
 * with T the wall-clock time (ms since the epoch: it crosses processes) the
 * value was fetched (0: never), F that of the last failed fetch (0: the last
 * one worked) and V the value (null: none yet). It is replaced whole (a
 * temporary file, then rename), so a reader sees the old or the new file,
 * never half of one. A fetch happens under an flock(2) on PATH.lock: when k
 * processes find the value stale at once, one fetches and the others wait
 * for it (up to wait_ms), then read what it wrote: one fetch, not k.
 *
 * The file is input like any other: one that is not a regular file, is
 * larger than max_bytes, is not JSON of that shape, names another key or
 * holds a value that valid() refuses is ignored (logged) and replaced by the
 * next fetch. */

struct sharedcache {
	const char *path;      /* the cache file; its lock is path + ".lock" (directory: must exist) */
	const char *key;       /* what the value is of (e.g. the upstream URL, no secrets): another key's file is not used */
	long ttl_ms;           /* a value younger than this is used as it is; 0: fetch on every get (the file keeps the last good value) */
	long hold_ms;          /* after a failed fetch no process fetches again for this long (0: no hold) */
	long wait_ms;          /* longest wait for another process's fetch; then the value at hand is used */
	size_t max_bytes;      /* largest file read */
	int (*valid)(const json_t *value);  /* 1 when a value read from the file has the right shape; NULL: any */
	json_t *(*fetch)(void *ud);         /* a fresh value (new reference), or NULL when the source failed (it logs why) */
	void *ud;              /* handed to fetch */
};

enum sharedcache_state {
	SHAREDCACHE_FRESH, /* fetched within ttl_ms (by this or another process) */
	SHAREDCACHE_STALE, /* older: the source failed, is held off after a failure, or another process's fetch took too long */
	SHAREDCACHE_NONE   /* no value: never fetched successfully */
};

/* sharedcache_get: the value, fresh from the file, else fetched (and the
 * file replaced), else the stale one. Returns a new reference (NULL when
 * there is none) and sets *state. Problems with the file itself (cannot be
 * written, bad content, no lock) are logged and never fail the call: at
 * worst the value is fetched without sharing it. */
json_t *sharedcache_get(const struct sharedcache *c, enum sharedcache_state *state);

#endif
