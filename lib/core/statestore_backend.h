/* statestore_backend.h: what a state-store backend implements (the ops table statestore.c dispatches to); callers use statestore.h. */
#ifndef MCPGW_STATESTORE_BACKEND_H
#define MCPGW_STATESTORE_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/statestore_types.h"

#define STATESTORE_ERRMSG_MAX 512

/* One backend. statestore.c checks every argument before calling an op
 * (ns and key non-empty and within bounds, TTLs >= 0, token non-empty,
 * out-pointers set), so an op only does the work, with now the store's
 * time in ms (st->clock: CLOCK_REALTIME or a test's; a backend on a shared
 * server may take its server's clock instead, so that every host ages and
 * expires entries alike, and then ignores now and the injected clock). Each op keeps the guarantees statestore.h states (one atomic
 * step, bounded waits) and, on an error, writes what the backend said into
 * st->errmsg (no secrets). */
struct statestore_ops {
	const char *scheme; /* the URL's scheme, e.g. "sqlite" (its form: statestore_url.c) */
	/* open: set st->impl, the rest of the URL (after "scheme:") checked; 0, or -1 with err */
	int (*open)(struct statestore *st, const char *rest, long timeout_ms, char *err, size_t errlen);
	void (*close)(struct statestore *st);
	/* get: *age_ms as statestore_get defines it, by the backend's clock (a server backend ages entries by its own) */
	enum statestore_status (*get)(struct statestore *st, const char *ns, const char *key, int64_t now,
				      size_t max_bytes, char **value, size_t *len, int64_t *age_ms);
	enum statestore_status (*put)(struct statestore *st, const char *ns, const char *key, int64_t now,
				      const void *value, size_t len, int64_t expires_ms);
	/* add: put only when no live entry has the key (HELD otherwise) */
	enum statestore_status (*add)(struct statestore *st, const char *ns, const char *key, int64_t now,
				      const void *value, size_t len, int64_t expires_ms);
	/* take: get and delete a live entry in one step */
	enum statestore_status (*take)(struct statestore *st, const char *ns, const char *key, int64_t now,
				       size_t max_bytes, char **value, size_t *len);
	enum statestore_status (*del)(struct statestore *st, const char *ns, const char *key, int64_t now);
	enum statestore_status (*claim)(struct statestore *st, const char *ns, const char *key, int64_t now,
					const char *token, int64_t expires_ms);
	enum statestore_status (*release)(struct statestore *st, const char *ns, const char *key, int64_t now,
					  const char *token);
	enum statestore_status (*incr)(struct statestore *st, const char *ns, const char *key, int64_t now,
				       int64_t delta, int64_t expires_ms, int64_t *value);
	/* list: *keys a new array (the caller checked max >= 1; after "" for the first page) */
	enum statestore_status (*list)(struct statestore *st, const char *ns, int64_t now, const char *after,
				       size_t max, json_t **keys);
	enum statestore_status (*prune)(struct statestore *st, int64_t now, size_t max, size_t *pruned);
	/* the audit table (statestore.h): rows checked non-NULL where required */
	enum statestore_status (*audit_append)(struct statestore *st, const struct statestore_audit_row *rows, size_t n);
	enum statestore_status (*audit_prune)(struct statestore *st, int64_t before_ms, size_t max, size_t *pruned);
};

/* a handle: the backend's ops and its own state */
struct statestore {
	const struct statestore_ops *ops;
	void *impl;
	int64_t (*clock)(void *ud);
	void *clock_ud;
	char errmsg[STATESTORE_ERRMSG_MAX];
};

/* the backends built in (statestore_sqlite.c, ...) */
extern const struct statestore_ops statestore_sqlite_ops;

#endif
