/* persist.h: the broker's write-through to the registry (lib/mcp/registry), off the event loop: each server's state, the tool catalog, cached tools. */
#ifndef MCPGW_PERSIST_H
#define MCPGW_PERSIST_H

#include <jansson.h>
#include <stddef.h>

#include "mcp/registry.h"

struct session;
struct persist;

/* persist_new: writes to reg (borrowed; it must outlive the persist) made by
 * a worker thread from persist_start on, so that the loop never waits on the
 * disk or on a lock another process holds. Until then writes are queued and
 * reg may be read (persist_cached_tools). NULL on ENOMEM. A NULL persist is
 * valid everywhere below: nothing is saved, nothing loaded. */
struct persist *persist_new(struct registry *reg);
/* persist_start: start the worker. 0, or -1 (no thread: writes are dropped,
 * logged) */
int persist_start(struct persist *p);
/* persist_free: stop the worker after the writes queued (a lock another
 * process holds is not waited for then: those writes are dropped, logged),
 * and free. Returns once the worker has ended. */
void persist_free(struct persist *p);

/* persist_cached_tools: the tools s listed last time with the same config
 * entry (new reference), or NULL; read at once, so only before persist_start */
json_t *persist_cached_tools(struct persist *p, const struct session *s);

/* The writes: each copies what it needs and returns at once; a newer row
 * of the same server, or a newer catalog, replaces one still queued. Errors
 * are logged by the worker. */
/* persist_server: save s's state, pid, protocol, last error */
void persist_server(struct persist *p, const struct session *s);
/* persist_server_row: the same from a row (borrowed) */
void persist_server_row(struct persist *p, const struct registry_server *rs);
/* persist_tools: replace the catalog with rt[0..n) (borrowed; copied for the writer),
 * where texts (may be NULL) gives tool i as a shared text (texts[i] not NULL): the
 * writer takes a reference and parses it row by row instead of a copy of rt[i].tool */
struct sharedtext;
void persist_tools(struct persist *p, const struct registry_tool *rt, struct sharedtext *const *texts, size_t n);
/* persist_prune: forget servers not among sessions[0..n) */
void persist_prune(struct persist *p, struct session *const *sessions, size_t n);

/* persist_wait_idle: wait up to max_ms for the queue to be empty and the
 * worker idle (tests). 1 idle, 0 not yet */
int persist_wait_idle(struct persist *p, long max_ms);

#endif
