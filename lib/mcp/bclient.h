/* bclient.h: a responder's persistent connection to mcpgw-broker (unix socket, JSON-RPC lines). */
#ifndef MCPGW_BCLIENT_H
#define MCPGW_BCLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "mcp/bcwire.h" /* enum bc_status, bc_strerror, BC_META_CALLER, bc_no_broker_fn */

struct bclient;

/* bc_new: a client for the socket at path; connects lazily. NULL on ENOMEM. */
struct bclient *bc_new(const char *socket_path, size_t max_message_bytes);
void bc_free(struct bclient *bc);

/* bc_call: send one request and wait for its answer. params are stolen
 * (may be NULL). On BC_OK exactly one of *result / *error is set (new
 * references: the JSON-RPC "result", or the "error" object {code,message,data}).
 * A dead connection found before sending (the broker restarted) is
 * reconnected transparently once; after sending, a lost connection is BC_EIO.
 * Responses to other ids are kept for bc_wait. */
int bc_call(struct bclient *bc, const char *method, json_t *params, long timeout_ms, json_t **result, json_t **error);

/* bc_call_tool: tools/call of tool with the arguments args[0..args_len) (the JSON text
 * of an object, checked, with no line break in it; NULL: {}), sent as they are, never
 * parsed or re-encoded, with the caller's _meta as bc_call marks it (bc_set_caller).
 * The result comes back as the broker wrote it, never made a tree: the text of the
 * JSON-RPC "result", checked as jansson parses it (lib/mcp/jsonspan.h) but for names
 * repeated inside it (the message's own members are looked at: one twice is BC_EPROTO,
 * as for bc_call). On BC_OK exactly one of *result (that text, NUL-terminated,
 * *result_len bytes; the caller frees it) / *error (a new reference, as bc_call gives
 * it) is set. Errors as bc_call's; BC_ENOMEM also for a tool name that is not UTF-8. */
int bc_call_tool(struct bclient *bc, const char *tool, const char *args, size_t args_len, long timeout_ms,
		 char **result, size_t *result_len, json_t **error);

/* bc_send + bc_wait: several requests in flight at once (parallel tool calls).
 * bc_send returns the request id (>0) or a negative bc_status. */
long bc_send(struct bclient *bc, const char *method, json_t *params);

/* bc_set_caller: the opaque id of the caller the next requests are made
 * for (NULL or "": anonymous); each tools/call then carries it in its
 * params' _meta as "mcpgw/caller" (BC_META_CALLER, bcwire.h), which the
 * broker writes into its audit table. Copied (cut at BC_CALLER_MAX - 1 bytes). */
void bc_set_caller(struct bclient *bc, const char *id);
int bc_wait(struct bclient *bc, long id, long timeout_ms, json_t **result, json_t **error);

/* bc_poll: wait up to timeout_ms for the answer to id without collecting
 * it, so a caller can do something else meanwhile (a stream's keep-alive)
 * and wait again. Returns 1 when bc_wait(id) will return at once (the
 * answer came, or the connection failed), 0 when it is still awaited
 * (the request stays in flight), or BC_EIO when id is not in flight. */
int bc_poll(struct bclient *bc, long id, long timeout_ms);

/* bc_on_no_broker: fn runs when connecting finds nobody listening on the
 * socket (no socket file, or refused) and may start a broker (see
 * lib/mcp/brokerstart.h); when it returns 0 the connect is tried once more, else
 * the call fails with BC_ECONNECT. It runs at most once per bc_call/bc_send,
 * and the time it takes is added to that call's deadline. NULL removes it. */
void bc_on_no_broker(struct bclient *bc, bc_no_broker_fn fn, void *ud);

#endif
