/* call.h: clients' tools/call requests routed to the owning session, with timeouts, and retries only where a side effect cannot repeat. */
#ifndef MCPGW_CALL_H
#define MCPGW_CALL_H

#include <jansson.h>
#include <stdint.h>

#include "core/settings.h"
#include "core/evloop.h"

#define CALLS_MAX 16384 /* tool calls in the broker, waiting ones too; more are refused at once */
/* the default of MCPGW_SERVER_MAX_CONCURRENT_CALLS (a settings struct whose field is 0 gets it) */
#define CALLS_SERVER_MAX_DEFAULT 64

struct calls;
struct catalog;
struct session;

/* calls_reply_fn: send msg (borrowed) to the client known as to */
typedef void calls_reply_fn(void *ctx, uint64_t to, const json_t *msg);
/* calls_reply_raw_fn: send the answer made of parts[0..n) (borrowed: slices of shared
 * texts, referenced, not copied; the last ends with the line's '\n') to the client known as to */
struct sharedtext_slice;
typedef void calls_reply_raw_fn(void *ctx, uint64_t to, const struct sharedtext_slice *parts, size_t n);

/* calls_new: the calls in flight, routed by cat (borrowed), answered
 * through reply(ctx, ...), or reply_raw(ctx, ...) for a large result passed on
 * as text (session_raw); its timer runs on l. Free with calls_free (which
 * drops calls unanswered). NULL on ENOMEM. */
struct calls *calls_new(struct evloop *l, const struct settings *set, const struct catalog *cat, calls_reply_fn *reply,
			calls_reply_raw_fn *reply_raw, void *ctx);
void calls_free(struct calls *cs);
/* calls_start: a client's tools/call (id and params borrowed): answered
 * now (an error) or when the server answers, fails or times out. At most the
 * server's maxConcurrentCalls (MCPGW_SERVER_MAX_CONCURRENT_CALLS) calls hold a
 * place on it (sent, or waiting for it to be ready); the next ones wait in its
 * FIFO queue of maxQueuedCalls (MCPGW_SERVER_MAX_QUEUED_CALLS), their first
 * attempt's timeout counted from their arrival (-32001, data.reason "timeout",
 * may_have_run false, when it runs out before their turn). A call that finds the
 * queue full, or whose caller (_meta "mcpgw/caller") holds half of it (rounded
 * up) while other callers' calls wait, is refused at once: -32000 with data
 * {reason "busy", server, limit ("maxQueuedCalls" or "caller_share"),
 * calls_in_flight, calls_queued, max_concurrent_calls, max_queued_calls,
 * may_have_run false}; a full queue takes a call of a caller holding less than
 * that share by refusing (the same error) the newest waiting call of a caller
 * holding more than it. A call
 * that was sent and got no answer (timeout, the server went down) is sent
 * again (up to MCPGW_TOOL_RETRIES times) only when the tool is annotated
 * readOnlyHint or idempotentHint; one that never left the broker waits for
 * its server. Errors carry data {reason, server, state, last_error,
 * waited_ms (since the call began), attempts, may_have_run, timeout_ms
 * (timeouts)} and say the time waited in their message. */
void calls_start(struct calls *cs, uint64_t from, const json_t *id, const json_t *params);
/* calls_start_text: calls_start for a large message (client.h, fn_text): params
 * (borrowed) without "arguments", args (borrowed) their JSON text (checked), kept by
 * reference, never copied, and passed to the server so where its transport takes
 * parts (stdio); dropped once sent when no second attempt may need them (a tool not
 * safe to repeat, no audit payloads). Answered as calls_start answers. */
void calls_start_text(struct calls *cs, uint64_t from, const json_t *id, const json_t *params,
		      const struct sharedtext_slice *args);
/* calls_session_ready: s is ready: send the calls waiting for it */
void calls_session_ready(struct calls *cs, struct session *s);
/* calls_session_failed: s failed to start: waiting calls wait on or fail */
void calls_session_failed(struct calls *cs, struct session *s);
/* calls_shutdown: every call fails with why; no retries from now on */
void calls_shutdown(struct calls *cs, const char *why);
/* calls_set_audit: every call that ends (answered or failed) gets a row in
 * a (borrowed; NULL: none), with the caller the client named in the call's
 * _meta "mcpgw/caller" (removed before the call goes to its server). */
struct audit;
void calls_set_audit(struct calls *cs, struct audit *a);
/* calls_set_metrics: every call that ends is counted in m (borrowed; NULL:
 * none): mcpgw_tool_calls_total{server,tool,outcome} and
 * mcpgw_tool_call_duration_seconds{server}. */
struct metrics;
void calls_set_metrics(struct calls *cs, struct metrics *m);
/* calls_count: calls in flight */
int calls_count(const struct calls *cs);
/* calls_client_gone: client from left: its calls still waiting in a queue are dropped
 * (audited, never sent) at the next pass of the loop; its calls in flight run on */
void calls_client_gone(struct calls *cs, uint64_t from);
/* calls_cancel: client from gave up its call of request id (borrowed; MCP's
 * notifications/cancelled requestId): the call is dropped (audited, never sent,
 * not answered) at the next pass of the loop when it still waits in a queue; a call
 * already sent runs on (its answer goes to the client, which ignores it) */
void calls_cancel(struct calls *cs, uint64_t from, const json_t *id);
/* a server's bound and its use (calls_load) */
struct calls_load {
	int in_flight;     /* calls holding a place */
	int queued;        /* calls waiting for one */
	int max_in_flight; /* its maxConcurrentCalls, or the setting's */
	int max_queued;    /* its maxQueuedCalls, or the setting's */
};
/* calls_load: s's bound and its use now, into *out */
void calls_load(const struct calls *cs, const struct session *s, struct calls_load *out);

#endif
