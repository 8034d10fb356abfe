/* bstatus.h: the MCP servers' state as the running broker reports it, one line per server, for scripts (mcpgw-broker --status). */
#ifndef MCPGW_BSTATUS_H
#define MCPGW_BSTATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "core/settings.h"

/* The lines, one per configured server in the config's order, fields
 * separated by one tab, none empty:
 *   NAME  STATE  TOOLS  RESTARTS  LAST_ERROR
 * STATE as in mcpgw/status (starting, ready, backoff, disabled, stopping,
 * stopped); TOOLS and RESTARTS decimal; LAST_ERROR the reason of the last
 * failure with the server's stderr line (mcpgw/status "detail", else
 * "last_error"), "-" when there is none (a ready server has none). Control bytes
 * (tab, newline, ...) in NAME and LAST_ERROR are written as spaces, so each
 * line is one record and `read` can split it. */

/* bstatus_write: the lines for a mcpgw/status result (borrowed) to f.
 * 0, or -1 when result has no "servers" array. */
int bstatus_write(FILE *f, const json_t *result);

/* bstatus_query: ask the broker at s->socket_path for mcpgw/status (within
 * s->broker_timeout_ms, at least 1 s) and write the lines to f. 0; 1 when no
 * broker listens there; -1 on any other failure. Either non-zero return fills
 * err with what happened, naming the socket. Never starts a broker. */
int bstatus_query(FILE *f, const struct settings *s, char *err, size_t errlen);

#endif
