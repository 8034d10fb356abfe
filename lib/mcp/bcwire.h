/* bcwire.h: what the two broker clients (bclient.h: blocking; bcasync.h: on an event loop) share: statuses, the caller's _meta, request lines, an answer line read without a tree. */
#ifndef MCPGW_BCWIRE_H
#define MCPGW_BCWIRE_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "mcp/jsonspan.h"

/* The outcome of a broker request, for both clients. */
enum bc_status {
	BC_OK = 0,        /* answered: a result or a JSON-RPC error object */
	BC_ECONNECT = -1, /* could not connect to the broker socket */
	BC_EIO = -2,      /* connection lost after the request was sent (bcasync: or queued) */
	BC_ETIMEOUT = -3, /* no answer within timeout_ms */
	BC_EPROTO = -4,   /* the broker sent something that is not JSON-RPC */
	BC_ENOMEM = -5,
	BC_EFULL = -6, /* bcasync: its output queue or its table of requests is full; refused at once, nothing sent */
};

/* bc_strerror: text for a bc_status (static). */
const char *bc_strerror(int status);

/* The caller a tools/call is made for: its opaque id (an API key's id) in the
 * params' _meta as "mcpgw/caller" (MCP reserves _meta for such metadata:
 * https://modelcontextprotocol.io/specification/2025-06-18/basic#meta), which
 * the broker writes into its audit table (docs/broker-protocol.md). */
#define BC_CALLER_MAX 64 /* a caller id is cut at BC_CALLER_MAX - 1 bytes */
#define BC_META_CALLER "mcpgw/caller"

/* bc_no_broker_fn: the hook a client runs when connecting finds nobody
 * listening on the socket (bc_on_no_broker, bca_on_no_broker): it may start
 * a broker (lib/mcp/brokerstart.h); 0 when the connect should be tried once
 * more. ud: the hook's, given with it. */
typedef int (*bc_no_broker_fn)(void *ud);

/* bcw_connect: a unix stream socket connected to path, non-blocking and
 * close-on-exec (connect on a unix socket is done at once, or fails). The fd,
 * or -1 with errno (ENAMETOOLONG for a path that does not fit; ENOENT or
 * ECONNREFUSED when nobody listens; EAGAIN when the listener's queue is
 * full). */
int bcw_connect(const char *path);

/* bcw_request_line: the request {jsonrpc, id, method, params} as one line
 * ('\n'-terminated) appended to out; params are stolen (may be NULL). A
 * tools/call's params get caller (NULL or "": anonymous) in their _meta as
 * BC_META_CALLER, replacing one that came with the params (removed when
 * anonymous; when out of memory for it, the call goes anonymous). 0, or -1
 * on ENOMEM (out as it was). */
int bcw_request_line(buf_t *out, long id, const char *method, json_t *params, const char *caller);

/* bcw_tool_line: the tools/call request id of tool with the arguments
 * args[0..args_len) (the JSON text of an object, checked by the caller, no
 * line break in it; NULL: {}), copied as they are, with caller's _meta as
 * bcw_request_line gives it, appended to out as one line. 0, or -1 on ENOMEM
 * or a tool name that is not UTF-8 (out as it was). */
int bcw_tool_line(buf_t *out, long id, const char *tool, const char *args, size_t args_len, const char *caller);

/* bcw_cancel_line: the notification that request id's answer is no longer
 * awaited (MCP 2025-11-25, basic/utilities/cancellation:
 * notifications/cancelled {requestId, reason}; reason static text) appended
 * to out as one line. 0, or -1 on ENOMEM (out as it was). */
int bcw_cancel_line(buf_t *out, long id, const char *reason);

/* One answer line of the broker, read without a tree of its result. */
struct bcw_answer {
	long id;                /* the request answered (> 0) */
	const json_t *error;    /* an error response's error object {code, message, data} (borrowed), else NULL */
	struct jsonspan result; /* a response's "result": its text in the line (line[result.off..+len)) */
	json_t *skel;           /* the line's members but "result" (owned; bcw_answer_free) */
};

/* bcw_answer_free: what bcw_next left in a (a stays reusable). */
void bcw_answer_free(struct bcw_answer *a);

/* bcw_next: the next answer of the broker buffered in rd: 1 and *line (the
 * whole line, NUL-terminated, valid until the next jr_reader call on rd) and
 * *a (free with bcw_answer_free) set; 0 when no whole line is buffered; or a
 * bc_status for a stream that cannot go on: BC_EPROTO for a line over rd's
 * max_line, one that is not JSON (as jsonspan_check checks it) or not a
 * JSON-RPC response (a member name repeated at its top level, as jr_parse
 * refuses it; an error response whose error has no integer code), BC_ENOMEM.
 * A request or notification from the broker (it sends none) and a response
 * whose id is not a positive integer (a parse error about one of our lines:
 * id null) are passed over. Logs what it refuses. */
int bcw_next(struct jr_reader *rd, char **line, struct bcw_answer *a);

#endif
