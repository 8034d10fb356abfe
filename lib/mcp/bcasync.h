/* bcasync.h: the asynchronous, multiplexed broker client: one connection to mcpgw-broker on an event loop, many requests in flight, each with its completion callback. */
#ifndef MCPGW_BCASYNC_H
#define MCPGW_BCASYNC_H

#include <jansson.h>
#include <stddef.h>

#include "core/evloop.h"
#include "mcp/bcwire.h" /* enum bc_status, bc_strerror, BC_CALLER_MAX, bc_no_broker_fn */

/* The form of bclient.h for a loop that drives many tool-loop runs at once
 * (docs/concurrency.md): one client per process, one unix-socket connection
 * to the broker (docs/broker-protocol.md: JSON-RPC 2.0, one message a line),
 * registered on the caller's struct evloop, non-blocking: EVLOOP_READ
 * always, EVLOOP_WRITE while output is queued. Requests of many runs (and
 * of different callers: the caller is per request) go out on it at once and
 * their answers come back in any order, matched by JSON-RPC id. Nothing
 * blocks but the no-broker hook (bca_on_no_broker). One thread uses a
 * client and its loop.
 *
 * Each request accepted (a submit returned an id > 0) ends exactly once:
 *   answered          done(ctx, id, BC_OK, result text | error object)
 *   its deadline      done(ctx, id, BC_ETIMEOUT), and the broker is told
 *                     (notifications/cancelled) when any of it was sent
 *   connection lost   done(ctx, id, BC_EIO) (EOF, a read or write error;
 *                     also the requests queued but not yet written), or
 *                     BC_EPROTO / BC_ENOMEM when the broker's stream could not
 *                     be read on (a line over max_message_bytes, not JSON-RPC)
 *   cancelled         bca_cancel: done is NOT called (the owner is leaving)
 *   client freed      bca_free: done is NOT called
 * done runs from within evloop_step (the client's fd or timer callback),
 * never from within a submit or bca_cancel. It may submit, and cancel any
 * request (another one whose end is already decided but not yet told
 * included: its done is then not called); it may not free the client. After
 * done returns, the id is forgotten. The next request after a lost
 * connection connects anew. */

/* Bounds with their defaults (bca_new's 0) */
#define BCA_MAX_MESSAGE_DEFAULT 16777216 /* an answer line's bytes (MCPGW_MAX_MESSAGE_BYTES' default) */
#define BCA_MAX_PENDING 4096             /* requests accepted and not yet ended, at once (bclient's bound) */
/* The output queue (request lines not yet written to the broker) holds at most max_queued_bytes
 * (bca_new; BCA_QUEUE_DEFAULT: as many as max_message_bytes, the largest line the broker reads); a
 * request that would pass it is refused at once with BC_EFULL. A notifications/cancelled (a hundred
 * bytes, at most one per request) is queued past it. */
#define BCA_QUEUE_DEFAULT 0

struct bcasync;

/* bca_done_fn: request id ended with status (enum bc_status). BC_OK: exactly
 * one of result (the JSON-RPC "result" as the broker wrote it, result_len
 * bytes, NUL-terminated, checked as jansson parses it but for names repeated
 * inside it, never made a tree) / error (the JSON-RPC error object
 * {code, message, data}) is set; both are borrowed: valid only until done
 * returns (copy, or json_incref the error). Otherwise both are NULL / 0. */
typedef void bca_done_fn(void *ctx, long id, int status, const char *result, size_t result_len, const json_t *error);

/* bca_new: a client of the broker socket at socket_path on loop (the
 * caller's, which must outlive the client): it registers its timer now and
 * connects lazily (at the first request). max_message_bytes bounds an
 * answer line (0: BCA_MAX_MESSAGE_DEFAULT); max_queued_bytes the output
 * queue (BCA_QUEUE_DEFAULT, 0: max_message_bytes). Free with
 * bca_free. NULL on ENOMEM. */
struct bcasync *bca_new(struct evloop *loop, const char *socket_path, size_t max_message_bytes, size_t max_queued_bytes);

/* bca_free: close the connection, unregister from the loop and free the
 * client; the requests not ended are dropped without their done being
 * called (the broker drops the waiting calls of a connection that closes).
 * NULL is ignored. Not from within a done callback. */
void bca_free(struct bcasync *c);

/* bca_call_tool: tools/call of tool with the arguments args[0..args_len)
 * (the JSON text of an object, checked by the caller, with no line break in
 * it; NULL: {}), sent as they are, never parsed or re-encoded, made for
 * caller (an opaque id, an API key's; NULL or "": anonymous; cut at
 * BC_CALLER_MAX - 1 bytes), which goes in the request's own params' _meta
 * as BC_META_CALLER (a request's caller is its own: nothing of it is kept
 * for the next). timeout_ms > 0: the request ends with BC_ETIMEOUT if not
 * answered by then (counted from after connecting); <= 0: no deadline of
 * its own. done(ctx, ...) is called once when it ends (see the top of this
 * file; NULL: nobody is told, the request is sent and its answer dropped). All arguments are copied or used before it returns.
 * Returns the request's id (> 0), or without calling done a negative
 * bc_status: BC_ECONNECT (no broker listens, even after the no-broker hook;
 * or its listen queue is full), BC_EFULL (the output queue would pass its
 * bound, or BCA_MAX_PENDING requests are in flight), BC_ENOMEM (also a tool
 * name that is not UTF-8). */
long bca_call_tool(struct bcasync *c, const char *tool, const char *args, size_t args_len, const char *caller,
		   long timeout_ms, bca_done_fn *done, void *ctx);

/* bca_call: any request: method with params (stolen, even on failure; may
 * be NULL), the result as text as bca_call_tool gives it (tools/list, or
 * mcpgw/status: docs/broker-protocol.md). A tools/call's params get
 * caller's _meta as bca_call_tool's (replacing one that came with them,
 * removed when caller is anonymous); other methods carry no caller.
 * timeout_ms, done, ctx and the returns as bca_call_tool's. */
long bca_call(struct bcasync *c, const char *method, json_t *params, const char *caller, long timeout_ms,
	      bca_done_fn *done, void *ctx);

/* bca_cancel: the owner no longer awaits request id (its run ended, its
 * client left): done is never called for it. A request none of whose bytes
 * were written is taken out of the queue and never sent; one sent (even in
 * part) is followed by notifications/cancelled {requestId, reason} (MCP
 * 2025-11-25, basic/utilities/cancellation: the broker then never sends a
 * tools/call still waiting for a place on its server), and its late answer
 * is dropped. 0, or -1 when id is not a request of c that has not ended
 * (never accepted, or its done already called). May be called from a done
 * callback. */
int bca_cancel(struct bcasync *c, long id);

/* bca_pending: how many requests were accepted and have not ended (their
 * done still due). */
size_t bca_pending(const struct bcasync *c);

/* bca_queued: bytes in the output queue, not yet written to the broker. */
size_t bca_queued(const struct bcasync *c);

/* bca_on_no_broker: fn runs when connecting finds nobody listening on the
 * socket (no socket file, or refused) and may start a broker (see
 * lib/mcp/brokerstart.h); when it returns 0 the connect is tried once more,
 * else the submit fails with BC_ECONNECT. It BLOCKS the loop for as long as
 * it takes (brokerstart's hook waits for the new broker's socket, bounded by
 * its timeout): a loop driver sets it only where that is acceptable (the
 * first request of a process), or starts the broker beforehand. It runs at
 * most once per submit. NULL removes it. */
void bca_on_no_broker(struct bcasync *c, bc_no_broker_fn fn, void *ud);

#endif
