/* leftover.h: MCP server processes that a broker which died (SIGKILL) left running, found by the registry's pids and killed at start. */
#ifndef MCPGW_LEFTOVER_H
#define MCPGW_LEFTOVER_H

#include "mcp/config.h"
#include "mcp/registry.h"

/* leftover_kill: for every stdio server of cfg whose registry row (reg)
 * names a pid, kill that process group (SIGKILL) when it is still the one
 * an earlier broker started: it leads its own process group, its parent is
 * not this process (it was orphaned), it started no later than its row was
 * written (a pid used again since started later), and one of its argv
 * words has the basename of the server's command. Each kill is logged.
 * Call once at start, holding the state directory's lock (no other broker
 * serves it), before any server is started. */
void leftover_kill(struct registry *reg, const struct cfg *cfg);

#endif
