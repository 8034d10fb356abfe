/* toolset.h: a server's tools as the broker keeps them: each Tool object as its compact JSON text (a parsed tree costs several times its text), with its name and whether a repeat is safe. */
#ifndef MCPGW_TOOLSET_H
#define MCPGW_TOOLSET_H

#include <jansson.h>
#include <stddef.h>

struct sharedtext;

struct toolset_tool {
	char *name;              /* its "name" (the server's) */
	struct sharedtext *json; /* the Tool object, compact JSON (shared with the registry's writer) */
	int retry_safe;          /* annotations readOnlyHint or idempotentHint: a call that may have
			 * reached the server may be sent again */
};

struct toolset {
	struct toolset_tool *v;
	size_t n, cap;
	size_t bytes; /* the tools' compact JSON, summed */
};

#define TOOLSET_INIT \
	{ \
		NULL, 0, 0, 0 \
	}

/* toolset_add: tool (borrowed: an object with a string "name") appended, as its text
 * (json, len: its compact JSON, malloc'd, taken: freed on failure too). 0, or -1 on
 * ENOMEM or when tool has no string name. */
int toolset_add(struct toolset *ts, const json_t *tool, char *json, size_t len);
/* toolset_parse: tool i as a tree (new reference; NULL on ENOMEM) */
json_t *toolset_parse(const struct toolset *ts, size_t i);
/* toolset_move: *to freed, then given what *from holds; *from emptied */
void toolset_move(struct toolset *to, struct toolset *from);
/* toolset_free: release every tool; ts empty after */
void toolset_free(struct toolset *ts);

#endif
