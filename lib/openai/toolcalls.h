/* toolcalls.h: one assistant turn's tool calls assembled from whatever shape a provider sends them in, streamed or whole. */
#ifndef MCPGW_TOOLCALLS_H
#define MCPGW_TOOLCALLS_H

#include <jansson.h>

#include "core/buf.h"

#define TOOLCALLS_EXCERPT_MAX 200 /* bytes of a tool call the gateway cannot read quoted in its log line */

/* One tool call as assembled so far. */
struct toolcall {
	char *id;      /* the upstream's id, or one minted here ("call_" + 24 random characters) when it sent none */
	char *name;    /* the function's name, "" until a delta names it */
	buf_t args;    /* the arguments as JSON text (fragments joined; an object the upstream sent, serialised) */
	json_t *extra; /* the call's other members, NULL if none: provider extras that must go back with it
			* (Gemini's extra_content.google.thought_signature, ...), merged over its deltas; a
			* "function" member in it holds the function's members other than name and arguments */
	long index;    /* the upstream's "index" of the call, -1 when it sent none */
	int minted;    /* id was minted here */
};

/* The calls of one assistant turn (one upstream answer). */
struct toolcalls {
	struct toolcall *calls; /* n of them, in the order they first appeared */
	int n, cap, max;
	int last;           /* the call the latest delta went to, -1 before the first */
	const char *origin; /* borrowed: where the calls come from (the upstream's URL without credentials), for logs */
};

enum toolcalls_status {
	TOOLCALLS_OK = 0,
	TOOLCALLS_EBAD,   /* (part of) a call could not be read: logged with origin and an excerpt, that part skipped */
	TOOLCALLS_EFULL,  /* more calls than max: logged, the call skipped */
	TOOLCALLS_ENOMEM, /* out of memory, or no random bytes for a minted id (errno says which) */
};

/* toolcalls_init: an empty set of at most max calls (> 0) whose log lines
 * name origin (borrowed, must outlive tc; NULL logs "the upstream"). */
void toolcalls_init(struct toolcalls *tc, int max, const char *origin);

/* toolcalls_reset: forget every call (memory kept for the next turn). */
void toolcalls_reset(struct toolcalls *tc);

/* toolcalls_free: free everything (tc may be reused after toolcalls_init). */
void toolcalls_free(struct toolcalls *tc);

/* toolcalls_delta: fold one streamed tool-call delta (an element of a
 * chunk's delta.tool_calls, borrowed) into the calls. Which call it
 * continues: a non-empty id names its call (a new id starts a new call,
 * the same id again continues it: DashScope/Qwen restate it); without one
 * (absent or "": DashScope again) the latest call with the same "index";
 * without id and index (Ollama, Gemini) the latest call, unless the delta
 * names a function and that call already has its name and some arguments:
 * then it is the next call. (Ollama sent no index, then index 0 for every
 * call: https://github.com/ollama/ollama/issues/7881, /issues/15457;
 * DashScope's streamed calls restate "id": "" on every argument delta:
 * https://www.alibabacloud.com/help/en/model-studio/qwen-function-calling) Arguments come as text fragments (joined) or
 * as a JSON object (serialised; the whole arguments). A new call without an
 * id gets one minted. *which is set to the call it went to, -1 when none.
 * Returns TOOLCALLS_OK, or a status above (EBAD: nothing it could continue,
 * or a member of the wrong type; the rest of the delta still counts). */
enum toolcalls_status toolcalls_delta(struct toolcalls *tc, const json_t *delta, int *which);

/* toolcalls_message: a whole message's "tool_calls" (borrowed; an array, or
 * one call object), each element one new call (an id that an earlier call
 * of the turn already has is replaced by a minted one, logged: the tool
 * results could not be told apart). Returns TOOLCALLS_OK or the first
 * failure (the other elements are still read). */
enum toolcalls_status toolcalls_message(struct toolcalls *tc, const json_t *tool_calls);

/* toolcalls_json: call i as an OpenAI message tool call {"id", "type":
 * "function", "function": {"name", "arguments"}} with its extras. New
 * reference, NULL on ENOMEM. */
json_t *toolcalls_json(const struct toolcalls *tc, int i);

/* toolcalls_strip: o (a tool call or a delta of one, modified in place)
 * without the members the assembler owns: id, index, type, and the
 * function's name and arguments; what is left are the provider's extras.
 * Returns o's "function" (borrowed) when it is an object, else NULL. */
json_t *toolcalls_strip(json_t *o);

/* toolcalls_args: call i's arguments as text ("" when none came; borrowed). */
const char *toolcalls_args(const struct toolcalls *tc, int i);

#endif
