/* tools.h: the six SQLite tools: their listing and tools/call. */
#ifndef MCPSQLITE_TOOLS_H
#define MCPSQLITE_TOOLS_H

#include <jansson.h>
#include <stddef.h>

#include "memo.h"
#include "sqlitedb.h"

struct tools_ctx {
	struct sqlitedb *db; /* borrowed */
	struct memo *memo;   /* borrowed */
	int memo_changed;    /* set to 1 by a call that changed the memo; the caller clears it */
};

/* tools_list: a new tools/list result {"tools": [...]}, NULL on ENOMEM. */
json_t *tools_list(const struct tools_ctx *c);

/* tools_call: run tool name with arguments args (borrowed; an object, or
 * NULL for none) and return a new CallToolResult.  Refused statements, SQL
 * errors and bad arguments are results with "isError": true.  Returns NULL
 * with msg filled and *code set to -32602 for an unknown tool, or to -32603
 * on ENOMEM. */
json_t *tools_call(struct tools_ctx *c, const char *name, const json_t *args, int *code, char *msg, size_t msglen);

#endif
