/* catalog.h: the aggregated tool list of every session: exposed names, lookup by name, the cached tools/list answer and its generation. */
#ifndef MCPGW_CATALOG_H
#define MCPGW_CATALOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct catalog;
struct persist;

struct catalog_entry {
	char exposed[65];
	struct session *session;
	const char *mcp_name; /* borrowed from the session's tools */
	int retry_safe;       /* its annotations say readOnlyHint or idempotentHint: a call
			       * that may have reached the server may be sent again */
};

/* catalog_new: the catalog of sessions[0..n) (borrowed, as persist (NULL: not saved) and
 * gen_map: where the generation is published to the responders, may be
 * NULL), starting after generation. The listed tools are kept within
 * max_bytes (their compact JSON; 0: no bound): when the ready servers
 * together list more, the largest servers are left out of the list, one
 * logged error each, so every other server keeps its tools. Free with
 * catalog_free. NULL on ENOMEM. */
struct catalog *catalog_new(struct session *const *sessions, size_t n, struct persist *persist, int64_t *gen_map,
			    json_int_t generation, size_t max_bytes);
void catalog_free(struct catalog *c);
/* catalog_rebuild: the sessions' tools changed: new names, a new answer
 * (saved to the registry); on ENOMEM the previous list stays (logged) */
void catalog_rebuild(struct catalog *c);
/* catalog_states_changed: a session changed state: when the set of servers
 * that are not ready (or why) changed, re-render the tools/list answer and
 * bump the generation (no registry write, the tools are the same) */
void catalog_states_changed(struct catalog *c);
/* catalog_freeze: shutting down: states no longer change the answer */
void catalog_freeze(struct catalog *c);
/* catalog_find: the routable tool exposed as name, or NULL (borrowed: valid until the next rebuild) */
const struct catalog_entry *catalog_find(const struct catalog *c, const char *exposed);
/* catalog_tools, catalog_meta: the tools/list result {"tools":TOOLS,"_meta":META} in its
 * two serialised parts: TOOLS shared (borrowed: sharedtext_ref it to keep it past the next
 * rebuild; clients_send_shared does), META borrowed until the next change; both NULL
 * before the first answer */
struct sharedtext;
struct sharedtext *catalog_tools(const struct catalog *c);
const char *catalog_meta(const struct catalog *c);
json_int_t catalog_generation(const struct catalog *c);
/* catalog_listed: the tools of ready servers (listed) */
size_t catalog_listed(const struct catalog *c);

#endif
