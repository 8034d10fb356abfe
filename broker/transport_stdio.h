/* transport_stdio.h: an MCP server as a child process of the broker, one JSON-RPC message per line on its stdin and stdout. */
#ifndef MCPGW_TRANSPORT_STDIO_H
#define MCPGW_TRANSPORT_STDIO_H

#include "transport.h"

/* transport_stdio_new: a stdio transport for cfg (command, args, env, cwd):
 * open spawns the command in its own process group (found as --check-config
 * finds it), its exit is learnt through env->sig; stop closes its stdin,
 * then sends SIGTERM, then SIGKILL to the group; its stderr is logged and
 * its telling line kept (diagnostic). NULL on ENOMEM. */
transport_new_fn transport_stdio_new;

#endif
