/* toolloop.h: one chat completion with the server-side MCP tool loop, streaming or not (chat.fcgi, mcpgw-chat). */
#ifndef MCPGW_TOOLLOOP_H
#define MCPGW_TOOLLOOP_H

#include <jansson.h>

#include "mcp/bclient.h"
#include "mcp/mcptools.h"
#include "core/settings.h"
#include "core/statestore.h"
#include "openai/upstream.h"

/* What a streaming run writes, and progress of server-side tool calls.
 * Every callback returns 0, or non-zero when the client is gone (the run
 * then stops at once). Callbacks may be NULL except data for streams. */
struct toolloop_sink {
	/* one SSE data payload: a chat.completion.chunk, an error object, or "[DONE]" */
	int (*data)(void *ud, const char *payload, size_t len);
	/* a server-side tool call starts (result NULL) or ends (result set:
	 * the text given to the model; is_error 1 when the call failed); called
	 * for streaming and non-streaming runs alike. In a streaming run it may
	 * write to the client: later errors then arrive as error events. */
	int (*tool)(void *ud, const char *server, const char *name, const char *arguments, const char *result,
		    int is_error);
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
	struct statestore *store;  /* the hidden rounds of mixed batches; opened on first use (NULL until then), statestore_close it */
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
 * servers are missing (the caller tells the client). Returns:
 *   0: done. Non-streaming: *response is the chat.completion (new reference)
 *      to send with status 200. Streaming: everything went through sink
 *      (ending with [DONE], or with an error event if it failed mid-way).
 *  -1: failed before anything was written: *status and *error (an OpenAI
 *      error object, new reference) are to be sent as the HTTP answer.
 *  -2: the client went away (a sink callback returned non-zero). */
int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **response, int *status, json_t **error);

/* toolloop_usage_add: add every integer of usage (nested objects too) into sum. */
void toolloop_usage_add(json_t *sum, const json_t *usage);

/* toolloop_restore: replace, in messages (an array, changed in place), each
 * assistant message whose first tool call id is a key of sessions by the
 * stored messages (the hidden MCP rounds of a mixed batch). Returns how many
 * were restored. */
int toolloop_restore(json_t *messages, const json_t *sessions);

#endif
