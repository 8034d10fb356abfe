/* turn.h: one question of mcpgw-chat through the shared tool loop: the answer streamed to the display, the new messages kept. */
#ifndef MCPGW_CHAT_TURN_H
#define MCPGW_CHAT_TURN_H

#include <jansson.h>
#include <signal.h>

#include "display.h"
#include "openai/toolloop.h"

enum turn_status {
	TURN_OK = 0,          /* answered: *added holds the turn's messages */
	TURN_EMPTY = 1,       /* the model answered nothing (the user is asked to rephrase) */
	TURN_ERROR = 2,       /* an upstream or broker error, shown */
	TURN_INTERRUPTED = 3, /* stopped by *stop */
};

struct turn_opts {
	const char *model;                /* NULL: DEFAULT_MODEL (aliases apply) */
	const char *system_prompt;        /* sent first; NULL or "": none */
	volatile sig_atomic_t *stop;      /* non-zero (set by a signal handler): cut the answer short */
	volatile sig_atomic_t *stop_also; /* a second such flag, may be NULL */
};

/* turn_run: ask question after past (the conversation so far, an array of
 * messages without the system prompt; borrowed) with every MCP tool
 * offered and run by toolloop_run (streaming). The answer's text goes to d
 * as it arrives, each MCP call as a line when it starts (replaced by its
 * result on a terminal) and one when it ends, an error as a
 * notice. On TURN_OK *added is a new array of the turn's messages to keep:
 * the user message, then the messages the tool loop added (for each tool
 * round the assistant message with its tool_calls, under the upstream's
 * own ids, and the tool results), then the answer. *added
 * is NULL otherwise. Returns an enum turn_status. */
int turn_run(struct toolloop *tl, const struct turn_opts *o, const json_t *past, const char *question,
	     struct display *d, json_t **added);

#endif
