/* mcptools.h: a responder's cached copy of the broker's MCP tool catalog, in OpenAI function form. */
#ifndef MCPGW_MCPTOOLS_H
#define MCPGW_MCPTOOLS_H

#include <jansson.h>
#include <stdint.h>

#include "bclient.h"

struct mcptools {
	json_int_t generation; /* of the cached list; 0 = none */
	json_t *tools;         /* the broker's Tool objects (exposed names), or NULL */
	json_t *by_name;       /* exposed name -> Tool (borrowed from tools) */
	char gen_path[4300];   /* $MCPGW_STATE_DIR/catalog.gen, "" if not used */
	const int64_t *gen;    /* that file mapped: the broker's current generation, 0 when it stopped */
};

/* mcptools_use_state_dir: let mcptools_refresh read the broker's current
 * generation from $state_dir/catalog.gen (shared memory the broker
 * updates), so a current cache costs no round trip at all. Optional. */
void mcptools_use_state_dir(struct mcptools *m, const char *state_dir);

/* mcptools_refresh: make the cache current: nothing when catalog.gen shows
 * the cached generation; otherwise one tools/list round-trip that carries
 * the cached generation, so an unchanged catalog costs no parsing.
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
