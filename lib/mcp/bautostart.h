/* bautostart.h: a responder that finds no mcpgw-broker starts one (MCPGW_BROKER_AUTOSTART), once, under brokerstart's lock. */
#ifndef MCPGW_BAUTOSTART_H
#define MCPGW_BAUTOSTART_H

#include <stddef.h>

#include "mcp/bclient.h"
#include "core/settings.h"

/* After a failed start, calls within this many ms fail at once (no new attempt). */
#define BAUTOSTART_RETRY_MS 2000

/* bautostart_attach: when s->broker_autostart is set, make bc start a broker
 * whenever it finds none listening on s->socket_path (bc_on_no_broker), then
 * retry its call once. The broker is found by brokerstart_find_bin
 * ($MCPGW_BROKER_BIN, else mcpgw's own program directories, then $PATH)
 * and started detached (it outlives this process, re-parented to
 * init) with brokerstart_ensure: at most one start at a time in this
 * process (a mutex, so threaded responders fork from one thread at a time)
 * and across processes (its flock); then it waits (at most
 * MCPGW_STARTUP_WAIT) until no MCP server is still coming up
 * (brokerstart_wait_ready), so that the call sees every tool. s must outlive bc.
 * cgi: 1 when this process is plain CGI and single-threaded: the CGI request
 * variables (REQUEST_*, HTTP_*, CONTENT_*, ...) are then removed from the
 * environment before the broker inherits it. */
void bautostart_attach(struct bclient *bc, const struct settings *s, int cgi);

/* bautostart_last_error: why the last start attempt of this process failed
 * ("" when none failed), into out. */
void bautostart_last_error(char *out, size_t outlen);

#endif
