/* call.h: clients' tools/call requests routed to the owning session, with timeouts, and retries only where a side effect cannot repeat. */
#ifndef MCPGW_CALL_H
#define MCPGW_CALL_H

#include <jansson.h>
#include <stdint.h>

#include "core/settings.h"
#include "evloop.h"

#define CALLS_MAX 4096 /* tool calls in flight in the broker; more are refused at once */

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
 * now (an error) or when the server answers, fails or times out. A call
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

#endif
