/* toolloop.h: one chat completion with the server-side MCP tool loop, streaming or not (chat.fcgi, mcpgw-chat). */
#ifndef MCPGW_TOOLLOOP_H
#define MCPGW_TOOLLOOP_H

#include <jansson.h>

#include "mcp/bclient.h"
#include "mcp/mcptools.h"
#include "core/settings.h"
#include "core/statestore.h"
#include "openai/upstream.h"

/* What a run reports, in order: any number of CONTENT, TOOL_START,
 * TOOL_END and TOOL_WAIT events, then exactly one ERROR or DONE (the last
 * event). All pointers are borrowed for the call. */
enum toolloop_event_kind {
	TOOLLOOP_CONTENT,    /* text arrived, and/or a chunk for the client */
	TOOLLOOP_TOOL_START, /* a server-side MCP tool call starts */
	TOOLLOOP_TOOL_END,   /* it ended */
	TOOLLOOP_TOOL_WAIT,  /* MCP calls are still running (toolloop_tick; no field but the common ones):
			      * a stream's moment for a keep-alive */
	TOOLLOOP_ERROR,      /* the run failed: the last event */
	TOOLLOOP_DONE,       /* the run answered: the last event */
};

struct toolloop_event {
	enum toolloop_event_kind kind;
	int stream; /* the request asked for a stream */
	/* every event: the MCP servers whose tools the run could not offer
	 * because they are not ready (names joined by ", "; "*" when the tool
	 * broker could not be reached; "" when every tool asked for was
	 * offered), and why (one sentence, "" likewise) */
	const char *unavailable, *unavailable_why;
	/* CONTENT: text / refusal: the model's new text (a delta when
	 * streamed, a round's whole text when not; NULL when none); chunk: in
	 * a streamed run, the chat.completion.chunk as an OpenAI client should
	 * get it (every member the upstream sent that the gateway does not
	 * interpret passed on, every choice of n > 1, the client's own
	 * tool-call deltas in OpenAI's shape and renumbered, MCP calls left
	 * out, the final finish_reason chunk and the usage chunk included),
	 * NULL in a non-streamed run */
	const char *text;
	size_t text_len;
	const char *refusal;
	const json_t *chunk;
	/* TOOL_START, TOOL_END: the MCP server, the tool's exposed name, the
	 * upstream's own tool-call id, the arguments (JSON text) */
	const char *server, *tool, *id, *arguments;
	/* TOOL_END: the text given to the model (the error's text when it
	 * failed, then is_error is 1) and how long the call took */
	const char *result;
	int is_error;
	long duration_ms;
	/* ERROR: an OpenAI error object {"error": {...}} and the HTTP status
	 * to answer with when nothing was sent to the client yet */
	const json_t *error;
	int status;
	/* DONE: the finish_reason, the usage summed over rounds (NULL when the
	 * upstream sent none), and in a non-streamed run the chat.completion
	 * to answer with (NULL when streamed) */
	const char *finish_reason;
	const json_t *usage;
	const json_t *response;
};

/* Where a run's events go: event returns 0, or non-zero when the client is
 * gone or the user stopped (the run then stops at once, no further event). */
struct toolloop_sink {
	int (*event)(void *ud, const struct toolloop_event *ev);
	void *ud;
};

#define TOOLLOOP_SERVERS_HEADER "X-MCPGW-Servers" /* the header that narrows the MCP servers offered */
#define TOOLLOOP_UNAVAILABLE_MAX 512              /* names of servers whose tools a run could not offer */
#define TOOLLOOP_UNAVAILABLE_WHY_MAX 2048         /* and why */

/* Per-thread handles, owned by the caller and reused across requests (one
 * run at a time for toolloop_run; runs driven step by step may share one). */
struct toolloop {
	const struct settings *set;
	struct upstream *up;
	struct bclient *bc;
	struct mcptools tools;
	struct statestore *store; /* the hidden rounds of mixed batches; opened on first use (NULL until then), statestore_close it */
	/* the caller's tool policy (its API key's allow-lists), set before each run and
	 * borrowed until it ends; NULL: every tool. Only allowed tools are offered; a
	 * model that calls another MCP tool gets an error result for it (not run) */
	const struct toolpolicy *policy;
	/* the caller's API key id (an opaque string: the id the responder's key
	 * check, lib/http/auth, gives the request's Authorization key; the
	 * responder sets it before each run), borrowed for toolloop_open (the
	 * run keeps a copy); NULL or "": anonymous. A mixed batch's hidden
	 * history is bound to it: only a request with the same key id gets it
	 * back (see toolloop_restore) */
	const char *key_id;
	/* set by each toolloop_run when it returns: the MCP servers whose
	 * tools it could not offer (see struct toolloop_event) and why */
	char unavailable[TOOLLOOP_UNAVAILABLE_MAX];
	char unavailable_why[TOOLLOOP_UNAVAILABLE_WHY_MAX];
	/* the upstream's chat URL without credentials (set->openai_base_url's), for the runs' log
	 * lines: written by each toolloop_open, borrowed by its runs */
	char origin[UPSTREAM_URL_MAX];
};

/* toolloop_run: run the chat completion request body (a JSON object, borrowed).
 * servers: comma-separated MCP servers to offer (the X-MCPGW-Servers
 * header; NULL or "": the request's "mcp":{"servers":[...]} or all). The
 * request's "mcp" object is checked like the rest of an OpenAI request: an
 * unknown key, a wrong type, an empty list of servers, a header naming no
 * server, and (once the broker's catalog is read) a server name that is
 * not configured fail with 400 invalid_request_error, param naming the
 * field ("mcp.tool", "mcp.servers", "X-MCPGW-Servers"), before the
 * upstream is asked. MCP servers still coming up are waited
 * for (MCPGW_STARTUP_WAIT). A server that is not ready then: when the
 * client named it (servers, or "mcp":{"servers"}) the run fails with 503
 * server_unavailable (broker_unavailable when the broker cannot be
 * reached): the tools asked for cannot be offered; otherwise the
 * completion goes on with the tools of the servers that are ready, a
 * warning is logged and every event's unavailable / unavailable_why
 * (and t->unavailable / t->unavailable_why once it returns) say which
 * servers are missing (the caller tells the client). Every outcome reaches sink (see struct toolloop_event).
 * added (may be NULL): set to a new array of the messages the run added to
 * the conversation, in order: per MCP round the assistant message (its
 * tool_calls with the upstream's ids) and the tool messages (and a user
 * message with the tools' images), then, unless the run ended in a mixed
 * batch (the client's own calls with MCP calls: the client answers those),
 * the final assistant message as the client got it; also after an error
 * (the rounds done so far); NULL only when out of memory.
 * Returns 0 when the run ended (its last event was ERROR or DONE), -1 when
 * the sink stopped it. This is the blocking driver of the run below: it
 * reads the catalog with mcptools_wait, asks the upstream with
 * upstream_stream / upstream_request and calls tools with bc_send /
 * bc_poll / bc_wait, holding the calling thread until the run ends; while
 * tool results are awaited it ticks (toolloop_tick) whenever nothing was
 * sent for MCPGW_STREAM_KEEPALIVE. */
int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **added);

/* toolloop_run_owned: toolloop_run of a body the run takes over (stolen,
 * even on failure; changed by the run; NULL: out of memory, a 500): one
 * parsed request in memory instead of two (a responder that has no more
 * use for it). */
int toolloop_run_owned(struct toolloop *t, json_t *body, const char *servers, const struct toolloop_sink *sink,
		       json_t **added);

/* ---- One run driven step by step ("sans I/O"): the run never does I/O
 * of its own and never blocks; it says what it needs next, the driver does
 * it (in an event loop, or blocking as toolloop_run does) and feeds the
 * outcome back; events reach the sink from inside the feed calls. Short
 * state-store steps stay inside the run: the mixed-batch history (taken
 * when the run opens or its catalog is fed, kept after a mixed batch or a
 * streamed answer with the client's calls, put back when the run closes
 * before the upstream answered), skipped when t->set->state_store is "".
 * See docs/concurrency.md. ---- */

struct tl_run;

/* one MCP tool call the driver is to make: tools/call {name, arguments}
 * with the broker; all borrowed from the run until its result is fed */
struct toolloop_tool_call {
	const char *id;          /* the upstream's tool-call id: the key to feed its result with */
	const char *server;      /* the MCP server that owns the tool */
	const char *name;        /* the tool's exposed name */
	const json_t *arguments; /* a JSON object */
};

enum toolloop_need_kind {
	TOOLLOOP_NEED_CATALOG,  /* make t->tools current: mcptools_wait(&t->tools, t->bc, broker timeout,
				 * wait_ms); feed what it returned with toolloop_feed_catalog */
	TOOLLOOP_NEED_UPSTREAM, /* POST body to the upstream's base URL + path (Accept: text/event-stream
				 * when stream); feed the answer with toolloop_feed_upstream(_event)
				 * (streamed) and toolloop_feed_upstream_end (always) */
	TOOLLOOP_NEED_TOOLS,    /* make the calls (at once, each within timeout_ms); feed each outcome
				 * with toolloop_feed_tool_result, in any order */
	TOOLLOOP_NEED_WAIT,     /* what was asked has not been fed in full yet */
	TOOLLOOP_NEED_NOTHING,  /* the run ended: its last event went to the sink (or the sink stopped it) */
};

/* What the run needs next; every pointer borrowed from the run until the
 * need is fed. */
struct toolloop_need {
	enum toolloop_need_kind kind;
	long wait_ms;     /* CATALOG: how long to wait for servers coming up (0: just refresh) */
	const char *path; /* UPSTREAM: "/chat/completions" */
	const char *body; /* UPSTREAM: the JSON request body, body_len bytes */
	size_t body_len;
	int stream;                             /* UPSTREAM: the answer is an event stream */
	const struct toolloop_tool_call *calls; /* TOOLS: ncalls calls */
	int ncalls;
	long timeout_ms; /* TOOLS: the bound of one call, retries included */
};

/* toolloop_open: a run of the request body (borrowed; copied) for t
 * (borrowed, must outlive the run: its settings, its catalog t->tools,
 * t->store for the mixed-batch history, t->key_id copied) with the servers filter
 * as toolloop_run takes it; events go to sink (copied). The request is
 * checked here: a bad one ends the run at once with an ERROR event.
 * Returns the run (free with toolloop_close), or NULL when out of memory
 * (no event was sent). */
struct tl_run *toolloop_open(struct toolloop *t, const json_t *body, const char *servers,
			     const struct toolloop_sink *sink);

/* toolloop_open_owned: toolloop_open of a body the run takes over (stolen,
 * even on failure; changed by the run; NULL: out of memory, the run ends
 * with a 500 ERROR event): one parsed request in memory instead of two. NULL
 * when out of memory (no event was sent). */
struct tl_run *toolloop_open_owned(struct toolloop *t, json_t *body, const char *servers,
				   const struct toolloop_sink *sink);

/* toolloop_step: what the run needs next, filled into *need (pointers
 * borrowed from the run until fed). Sends the TOOL_START events of a batch
 * before handing it out (a call whose arguments are not a JSON object ends
 * at once, unasked). Returns need->kind. */
enum toolloop_need_kind toolloop_step(struct tl_run *r, struct toolloop_need *need);

/* toolloop_feed_catalog: CATALOG done; rc is what mcptools_wait (or
 * mcptools_refresh) returned: BC_OK, a bc_status, or 1 (a JSON-RPC
 * error). Returns 0, or -1 when the run ended (a server the client named
 * is unknown or not ready: the ERROR event went out) or nothing was asked. */
int toolloop_feed_catalog(struct tl_run *r, int rc);

/* toolloop_feed_upstream: n more bytes of a streamed answer's 2xx
 * text/event-stream body, split anywhere (parsed with lib/core/sse, one
 * event bounded by MCPGW_MAX_RESPONSE_BYTES). Returns 0, or -1 when the
 * run ended (the sink stopped it, or the upstream sent an error event, or
 * an event was too big): stop the transfer and still call
 * toolloop_feed_upstream_end, which then does nothing. */
int toolloop_feed_upstream(struct tl_run *r, const void *bytes, size_t n);

/* toolloop_feed_upstream_event: the same for a driver whose HTTP client
 * parses SSE itself (lib/openai/upstream): one event's data, len bytes,
 * "[DONE]" included. */
int toolloop_feed_upstream_event(struct tl_run *r, const char *data, size_t len);

/* toolloop_feed_upstream_end: the upstream exchange ended; res as
 * lib/openai/upstream fills it: res->err UPSTREAM_OK, or the failure
 * (status, body, message: the run fails with upstream_error_json's
 * object). A non-streamed answer is res->body (parsed here; an event
 * stream there is read as one answer; res->err and res->message are set
 * when it is neither). A stream is complete after data: [DONE], or after a
 * finish_reason when it ended OK or UPSTREAM_ETRUNCATED with
 * res->clean_end; else it fails 502 upstream_truncated. Returns 0, or -1
 * when the run ended. */
int toolloop_feed_upstream_end(struct tl_run *r, struct upstream_result *res);

/* toolloop_feed_tool_result: the call id of the batch ended: result (the
 * broker's tools/call result, borrowed) or error (an object whose
 * "message" says why, e.g. the tool broker failed; borrowed). Sends
 * TOOL_END; after the batch's last result the round goes on. Returns 0, or
 * -1 when id is not a call the run waits for, or the sink stopped the run. */
int toolloop_feed_tool_result(struct tl_run *r, const char *id, const json_t *result, const json_t *error);

/* toolloop_tick: the driver still waits for the batch's tool results
 * (call it at least every MCPGW_STREAM_KEEPALIVE while it waits): a
 * TOOL_WAIT event goes to the sink. Returns 0, or -1 when the run waits
 * for no tool result (nothing sent) or the sink stopped it (the client
 * is gone: the driver may stop waiting). */
int toolloop_tick(struct tl_run *r);

/* toolloop_added: the messages the run added so far (see toolloop_run);
 * borrowed, valid until toolloop_close. */
const json_t *toolloop_added(const struct tl_run *r);

/* toolloop_stopped: 1 when the sink stopped the run (the client went away). */
int toolloop_stopped(const struct tl_run *r);

/* toolloop_unavailable: the servers whose tools the run could not offer
 * ("" when none) and, in *why (may be NULL), why; borrowed. */
const char *toolloop_unavailable(const struct tl_run *r, const char **why);

/* toolloop_close: free the run (NULL: nothing). */
void toolloop_close(struct tl_run *r);

/* toolloop_usage_add: add every number of usage (nested objects too) into sum.
 * 0, or -1 on ENOMEM (sum then holds part of usage). */
int toolloop_usage_add(json_t *sum, const json_t *usage);

/* toolloop_restore: splice histories of mixed batches back into messages
 * (an array, changed in place). sessions maps the first tool call id of an
 * assistant message (the id the client saw, minted by the gateway) to a
 * history {"hidden": [messages], "ids": {client's id: upstream's id}}: the
 * first assistant message whose tool_calls[0].id is a key is replaced by
 * the hidden messages (the MCP rounds, the assistant message with every
 * call under the upstream's ids), or, when hidden is empty, keeps its place
 * with its calls' ids mapped back; the tool messages after it get their
 * tool_call_id mapped back. Each history is used once. The run looks the
 * histories up itself (taken from the state store: the key is a digest of
 * the caller's key id, the conversation before the message and that id),
 * so a client gets only the histories of answers it got. Returns how many
 * were restored, or -1 on ENOMEM (messages may then be partly restored:
 * not to be sent). */
int toolloop_restore(json_t *messages, const json_t *sessions);

#endif
