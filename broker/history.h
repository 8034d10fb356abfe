/* history.h: mcpgw/sessionGet and mcpgw/sessionPut: the mixed-batch histories the responders keep in the registry. */
#ifndef MCPGW_HISTORY_H
#define MCPGW_HISTORY_H

#include <jansson.h>
#include <stddef.h>

#include "mcp/registry.h"

struct history {
	struct registry *reg;   /* borrowed; NULL: nothing is kept */
	unsigned puts;          /* the store is pruned every 100 puts */
};

/* history_get: params {keys:[...]} -> {sessions:{key: messages}} for the
 * keys found (at most 256 asked). New reference, NULL on ENOMEM. */
json_t *history_get(struct history *h, const json_t *params);
/* history_put: params {key, messages, ttl_s}. 0, or a JSON-RPC error code
 * with err set */
int history_put(struct history *h, const json_t *params, char *err, size_t errlen);

#endif
