/* toolloop.h: one chat completion with the server-side MCP tool loop, streaming or not (chat.fcgi, mcpgw-chat). */
#ifndef MCPGW_TOOLLOOP_H
#define MCPGW_TOOLLOOP_H

#include <jansson.h>

#include "mcp/bclient.h"
#include "mcp/mcptools.h"
#include "core/settings.h"
#include "openai/upstream.h"

/* What a run reports, in order: any number of CONTENT, TOOL_START and
 * TOOL_END events, then exactly one ERROR or DONE (the last event). All
 * pointers are borrowed for the call. */
enum toolloop_event_kind {
	TOOLLOOP_CONTENT,    /* text arrived, and/or a chunk for the client */
	TOOLLOOP_TOOL_START, /* a server-side MCP tool call starts */
	TOOLLOOP_TOOL_END,   /* it ended */
	TOOLLOOP_ERROR,      /* the run failed: the last event */
	TOOLLOOP_DONE,       /* the run answered: the last event */
};

struct toolloop_event {
	enum toolloop_event_kind kind;
	int stream; /* the request asked for a stream */
	/* CONTENT: text / refusal: the model's new text (a delta when
	 * streamed, a round's whole text when not; NULL when none); chunk: in
	 * a streamed run, the chat.completion.chunk as an OpenAI client should
	 * get it (the client's own tool-call deltas renumbered, MCP calls left
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
#define TOOLLOOP_UNAVAILABLE_MAX 512      /* names of servers whose tools a run could not offer */
#define TOOLLOOP_UNAVAILABLE_WHY_MAX 2048 /* and why */

/* Per-thread handles, owned by the caller and reused across requests. */
struct toolloop {
	const struct settings *set;
	struct upstream *up;
	struct bclient *bc;
	struct mcptools tools;
	/* set by each toolloop_run before anything is written: the MCP servers
	 * whose tools it could not offer because they are not ready (names
	 * joined by ", "; "*" when the tool broker could not be reached; ""
	 * when every tool asked for was offered), and why (one sentence) */
	char unavailable[TOOLLOOP_UNAVAILABLE_MAX];
	char unavailable_why[TOOLLOOP_UNAVAILABLE_WHY_MAX];
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
 * warning is logged and t->unavailable / t->unavailable_why say which
 * servers are missing (set before the first event; the caller tells the
 * client). Every outcome reaches sink (see struct toolloop_event).
 * added (may be NULL): set to a new array of the messages the run added to
 * the conversation, in order: per MCP round the assistant message (its
 * tool_calls with the upstream's ids) and the tool messages (and a user
 * message with the tools' images), then, unless the run ended in a mixed
 * batch (the client's own calls with MCP calls: the client answers those),
 * the final assistant message as the client got it; also after an error
 * (the rounds done so far); NULL only when out of memory.
 * Returns 0 when the run ended (its last event was ERROR or DONE), -1 when
 * the sink stopped it. */
int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **added);

/* toolloop_usage_add: add every integer of usage (nested objects too) into sum. */
void toolloop_usage_add(json_t *sum, const json_t *usage);

/* toolloop_restore: replace, in messages (an array, changed in place), each
 * assistant message whose first tool call id is a key of sessions by the
 * stored messages (the hidden MCP rounds of a mixed batch). Returns how many
 * were restored. */
int toolloop_restore(json_t *messages, const json_t *sessions);

#endif
