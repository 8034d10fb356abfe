/* mcptools.h: a responder's cached copy of the broker's MCP tool catalog, in OpenAI function form. */
#ifndef MCPGW_MCPTOOLS_H
#define MCPGW_MCPTOOLS_H

#include <jansson.h>

#include "bclient.h"

struct mcptools {
	json_int_t generation; /* of the cached list; 0 = none */
	json_t *tools;         /* the broker's Tool objects (exposed names), or NULL */
	json_t *by_name;       /* exposed name -> Tool (borrowed from tools) */
};

/* mcptools_refresh: make the cache current: one tools/list round-trip that
 * carries the cached generation, so an unchanged catalog costs no parsing.
 * Returns BC_OK, a bc_status, or 1 when the broker answered with a JSON-RPC
 * error (the cache is kept). */
int mcptools_refresh(struct mcptools *m, struct bclient *bc, long timeout_ms);

/* mcptools_server: the server owning exposed name, or NULL if not an MCP tool. */
const char *mcptools_server(const struct mcptools *m, const char *name);

/* mcptools_openai: the cached tools as OpenAI chat tools
 * ({"type":"function","function":{name,description,parameters}}), keeping
 * only servers listed in the comma-separated servers filter (NULL/"" = all)
 * and skipping names in skip (an object whose keys are names; may be NULL).
 * New reference (an array, possibly empty) or NULL on ENOMEM. */
json_t *mcptools_openai(const struct mcptools *m, const char *servers, const json_t *skip);

void mcptools_free(struct mcptools *m);

#endif
