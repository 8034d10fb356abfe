/* persist.h: the broker's write-through to the registry (lib/mcp/registry): each server's state, the tool catalog, cached tools. */
#ifndef MCPGW_PERSIST_H
#define MCPGW_PERSIST_H

#include <jansson.h>
#include <stddef.h>

#include "mcp/registry.h"

struct session;

/* persist_server: save s's state, pid, protocol, last error (reg NULL:
 * nothing; errors logged) */
void persist_server(struct registry *reg, const struct session *s);
/* persist_cached_tools: the tools s listed last time with the same config
 * entry (new reference), or NULL */
json_t *persist_cached_tools(struct registry *reg, const struct session *s);
/* persist_tools: replace the catalog (rt[0..n), borrowed); errors logged */
void persist_tools(struct registry *reg, const struct registry_tool *rt, size_t n);
/* persist_prune: forget servers not among sessions[0..n) (errors logged) */
void persist_prune(struct registry *reg, struct session *const *sessions, size_t n);

#endif
