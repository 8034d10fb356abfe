/* chatstream.h: a tool-loop run's events as the HTTP answer to POST /v1/chat/completions: SSE chunks, comments and [DONE], or one JSON body. */
#ifndef MCPGW_CHATSTREAM_H
#define MCPGW_CHATSTREAM_H

#include <stdint.h>

#include "core/metrics.h"
#include "http/accesslog.h"
#include "http/auth.h"
#include "http/hio.h"
#include "openai/toolloop.h"

/* One answer in progress; lives as long as the run it serialises. */
struct chatstream {
	struct hio *h;
	int headers; /* the event stream's headers went out */
};

/* chatstream_init: answer on h (borrowed, kept) for one run. */
void chatstream_init(struct chatstream *cs, struct hio *h);

/* chatstream_sink: the toolloop_sink that writes cs's answer. In a
 * streamed run: the headers (200 text/event-stream, no caching,
 * X-MCPGW-Tools-Unavailable when servers' tools were not offered: the
 * event's unavailable) and an SSE comment saying why, once before the first line; each chunk as
 * "data: {chunk}"; each MCP call's start and end as a comment
 * ": mcpgw: tool NAME (SERVER) running|done|failed"; each TOOL_WAIT (the
 * tools still run, see MCPGW_STREAM_KEEPALIVE) as ": keep-alive"; DONE as "data:
 * [DONE]"; an error as "data: {error}" (the HTTP status and the error
 * object as the whole answer when nothing was written yet). In a
 * non-streamed run: DONE's response as the 200 JSON body (with
 * X-MCPGW-Tools-Unavailable), an error as its status and JSON body. The
 * event callback returns non-zero when the client is gone. */
struct toolloop_sink chatstream_sink(struct chatstream *cs);

/* chatstream_event: the sink's event callback (ud is a struct chatstream). */
int chatstream_event(void *ud, const struct toolloop_event *ev);

/* A sink in front of another (chatstream's) that notes what the access log
 * tells (the tools run, the tokens) and what the run spent for the caller's
 * API key: what both chat.fcgi drivers (threads and the event loop) keep of
 * a run. Lives as long as the run. */
struct chatnote {
	struct toolloop_sink inner; /* where events go on */
	struct accesslog *log;      /* borrowed */
	struct metrics *metrics;    /* borrowed; may be NULL */
	int64_t tokens, tool_calls;
};

/* chatnote_init: n notes into log (borrowed) and metrics (may be NULL), then
 * passes each event on to inner. */
void chatnote_init(struct chatnote *n, struct accesslog *log, struct metrics *metrics, struct toolloop_sink inner);

/* chatnote_sink: the toolloop_sink of n: an ERROR of the gateway's upstream
 * client counted in mcpgw_upstream_errors_total{code}; each TOOL_END into the
 * access log; DONE's usage into the access log and n->tokens; then the
 * event passed on (what inner returns is returned). */
struct toolloop_sink chatnote_sink(struct chatnote *n);

/* chatnote_end: the run ended having added the messages added (may be NULL;
 * borrowed): what it spent counted for auth's key (auth_count) and its MCP
 * rounds (an assistant message followed by tool messages) into the access log. */
void chatnote_end(struct chatnote *n, const struct auth_caller *auth, const json_t *added);

#endif
