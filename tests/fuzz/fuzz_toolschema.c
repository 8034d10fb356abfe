/* fuzz_toolschema.c: libFuzzer target of the MCP tool mapping (lib/mcp/toolschema.c): a server's inputSchema made into the function parameters offered upstream. */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mcp/toolschema.h"

/* Input: a JSON value as a tool's "inputSchema" (any shape, $refs
 * included). Checks: a result is an object with "type": "object" and an
 * object "properties", at most TOOLSCHEMA_MAX_NODES values, and mapping it
 * again gives it back unchanged (the mapping is idempotent); no result
 * comes with a reason that fits TOOLSCHEMA_WHY_MAX. */

/* nodes: the JSON values in v, v included (stops counting past limit) */
static size_t nodes(const json_t *v, size_t limit)
{
	size_t n = 1, i;
	const char *k;
	const json_t *x;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			if (n > limit)
				break;
			n += nodes(x, limit);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			if (n > limit)
				break;
			n += nodes(x, limit);
		}
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[TOOLSCHEMA_WHY_MAX];
	json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *out, *again;

	if (!in && size)
		return 0;
	why[0] = '\0';
	out = toolschema_params(in, why, sizeof why);
	if (!out) {
		FUZZ_CHECK(why[0] != '\0' && strlen(why) < sizeof why);
	} else {
		FUZZ_CHECK(json_is_object(out));
		FUZZ_CHECK(strcmp(json_string_value(json_object_get(out, "type")) ?: "", "object") == 0);
		FUZZ_CHECK(json_is_object(json_object_get(out, "properties")));
		FUZZ_CHECK(nodes(out, TOOLSCHEMA_MAX_NODES + 1) <= TOOLSCHEMA_MAX_NODES);
		again = toolschema_params(out, why, sizeof why);
		FUZZ_CHECK(again && json_equal(out, again));
		json_decref(again);
	}
	json_decref(out);
	json_decref(in);
	return 0;
}
