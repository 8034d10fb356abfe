/* server.h: MCP over JSON-RPC 2.0: one received line in, response lines out. */
#ifndef MCPSQLITE_SERVER_H
#define MCPSQLITE_SERVER_H

#include "core/version.h"
#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "memo.h"
#include "sqlitedb.h"
#include "tools.h"

#define SERVER_NAME "mcp-server-sqlite"
#define SERVER_VERSION MCPGW_VERSION
#define SERVER_RESOURCE_NOT_FOUND -32002 /* MCP's code for an unknown resource URI */

struct server {
	struct memo memo;
	struct tools_ctx tools; /* points at memo: a server must not be moved once initialised */
	int subscribed;         /* the client subscribed to memo://insights */
	int initialized;        /* initialize was answered (requests are served either way) */
	const json_t *serving;  /* the id of the request being served (borrowed while it is), else NULL */
	int cancelled;          /* the client cancelled it (server_cancels): it gets no answer */
};

/* server_cancels: does the message line[0..len) cancel the request being
 * served (MCP notifications/cancelled whose params.requestId is its id; MCP
 * 2025-11-25, "Cancellation")? Then s->cancelled is set and 1 is returned:
 * the request is stopped and, as the specification asks, not answered.
 * Any other line: 0 (it is served in its turn). */
int server_cancels(struct server *s, const char *line, size_t len);

/* server_init: a server using db (borrowed, must outlive it). */
void server_init(struct server *s, struct sqlitedb *db);

/* server_free: release the memo. */
void server_free(struct server *s);

/* server_handle_line: handle one received line line[0..len).  Appends to
 * out any notification it causes and then the response, if the message is
 * a request or is malformed (a parse error gets -32700 with id null).
 * Notifications and responses from the client get no answer.
 * 0, or -1 on ENOMEM (out may then hold only part of the answer). */
int server_handle_line(struct server *s, const char *line, size_t len, buf_t *out);

/* server_reply_error: append an error response for id (borrowed; NULL means
 * null) to out.  0 or -1 (ENOMEM). */
int server_reply_error(buf_t *out, const json_t *id, int code, const char *message);

#endif
