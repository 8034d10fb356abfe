/* toolanswer.h: POST /v1/tools as text: the request's tool and arguments found without a tree, the broker's tools/call result spliced into the answer without one. */
#ifndef MCPGW_TOOLANSWER_H
#define MCPGW_TOOLANSWER_H

#include <stddef.h>

#include "core/buf.h"
#include "mcp/jsonspan.h"

/* what toolanswer_read_call found */
enum toolanswer_read {
	TOOLANSWER_CALL = 0,      /* a tool named by a string; arguments an object, null or missing */
	TOOLANSWER_OTHER = -1,    /* not one JSON object (jsonspan_check): let a parser say why */
	TOOLANSWER_NO_TOOL = 1,   /* no "tool" */
	TOOLANSWER_TOOL_TYPE = 2, /* "tool" is no string */
	TOOLANSWER_ARGS_TYPE = 3, /* "arguments" is neither an object nor null */
};

/* the request's members: the last of each name, as jansson keeps the last of a repeated one */
struct toolanswer_call {
	struct jsonspan tool; /* a JSON string's text */
	struct jsonspan args; /* an object's text; len 0: none (missing or null) */
	int args_lines;       /* the arguments' text holds a line break (between its tokens) */
};

/* toolanswer_read_call: body[0..len) checked (jsonspan_check: as jansson parses it,
 * but a NUL byte refused) and read without a tree as POST /v1/tools reads
 * {"tool": NAME, "arguments": {...}}: *c set on TOOLANSWER_CALL; the other
 * values say what is wrong (in the order the route checks them). The bounds of
 * the body (depth, values) are the caller's. */
int toolanswer_read_call(const char *body, size_t len, struct toolanswer_call *c);

/* what toolanswer_result made */
enum toolanswer_result {
	TOOLANSWER_OK = 0,         /* out holds the 200 answer */
	TOOLANSWER_NOMEM = -1,     /* out as it was */
	TOOLANSWER_IS_ERROR = 1,   /* an object with "isError": true: the caller answers 422 (out untouched) */
	TOOLANSWER_NOT_OBJECT = 2, /* the result is no object */
	TOOLANSWER_REPEATED = 3,   /* a member name twice at its top level (a tree of it is refused) */
};

/* toolanswer_result: POST /v1/tools's 200 answer to a call of tool from the
 * broker's result text[0..len) (one checked JSON value, blanks around it allowed,
 * not parsed here) onto
 * out: {"object": "tool.result", "tool": TOOL, "server": its
 * _meta["mcpgw/server"] or null, then every member of the result but those
 * three names, as the server wrote them} — what json_pack + json_object_update_missing
 * + JSON_COMPACT made of a tree, without one: the same bytes for a result in
 * compact form, the server's own spelling of each member otherwise. */
int toolanswer_result(buf_t *out, const char *tool, const char *text, size_t len);

#endif
