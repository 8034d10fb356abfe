/* history.c: mcpgw/sessionGet and mcpgw/sessionPut over the registry (the mixed-batch histories). */
#include "history.h"

#include <stdio.h>

#include "core/log.h"
#include "mcp/jsonrpc.h"

json_t *history_get(struct history *h, const json_t *params)
{
	json_t *out = json_object(), *k;
	size_t i;

	json_array_foreach(json_object_get(params, "keys"), i, k) {
		json_t *m;

		if (i >= 256 || !json_is_string(k) || !h->reg)
			break;
		if ((m = registry_session_get(h->reg, json_string_value(k))))
			json_object_set_new(out, json_string_value(k), m);
	}
	return json_pack("{s:o}", "sessions", out ? out : json_object());
}

int history_put(struct history *h, const json_t *params, char *err, size_t errlen)
{
	const char *key = json_string_value(json_object_get(params, "key"));
	const json_t *msgs = json_object_get(params, "messages");
	json_int_t ttl = json_integer_value(json_object_get(params, "ttl_s"));

	if (!key || !*key || !json_is_array(msgs) || ttl <= 0) {
		snprintf(err, errlen, "sessionPut needs key, messages (array) and ttl_s > 0");
		return JR_INVALID_PARAMS;
	}
	if (!h->reg || registry_session_put(h->reg, key, msgs, (long)ttl) < 0) {
		snprintf(err, errlen, "%s", h->reg ? registry_errmsg(h->reg) : "no registry");
		return JR_INTERNAL_ERROR;
	}
	if (++h->puts % 100 == 1 && registry_session_prune(h->reg) < 0)
		log_warn("registry: pruning sessions: %s", registry_errmsg(h->reg));
	return 0;
}
