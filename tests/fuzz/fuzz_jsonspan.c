/* fuzz_jsonspan.c: libFuzzer target of lib/mcp/jsonspan.c: its check of a JSON text agrees with jansson's parse, and its walks give each member and element whole. */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mcp/jsonspan.h"

/* Input: a JSON text. Checks: jsonspan_check accepts exactly what jansson
 * (JSON_DECODE_ANY) parses, for a text without NUL bytes (jansson's reader
 * steps over a NUL byte as if it were not there: "[1\0]" is [1] to it;
 * jsonspan refuses one, the stricter reading); for an accepted object or array, jsonspan_members
 * or jsonspan_elements walks as many as jansson holds (an object without
 * repeated names), each value a text jansson parses on its own, equal to the
 * member or element jansson has there, and jsonspan_load of it equal to that parse. */

struct walk {
	const char *text;
	const json_t *whole;
	int unique; /* no repeated member names (jansson keeps the last of those) */
	size_t n;
};

static int each(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct walk *w = ctx;
	json_t *part = json_loadb(w->text + v.off, v.len, JSON_DECODE_ANY, NULL), *there;

	json_t *loaded = jsonspan_load(w->text, v, 0);

	FUZZ_CHECK(part != NULL);
	FUZZ_CHECK(loaded != NULL && json_equal(loaded, part)); /* without a parser where it can */
	json_decref(loaded);
	FUZZ_CHECK(m.off <= v.off && m.off + m.len == v.off + v.len);
	there = key ? (strlen(key) ? json_object_get(w->whole, key) : NULL) : json_array_get(w->whole, w->n);
	if (there && (w->unique || !key))
		FUZZ_CHECK(json_equal(part, there));
	json_decref(part);
	w->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_t *j = json_loadb(text, size, JSON_DECODE_ANY, NULL);
	json_t *strict = j ? json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL) : NULL;
	struct jsonspan all = { 0, size };
	struct walk w = { .text = text, .whole = j, .unique = strict != NULL };

	if (memchr(data, 0, size)) {
		FUZZ_CHECK(jsonspan_check(text, size) == -1);
		json_decref(strict);
		json_decref(j);
		return 0;
	}
	FUZZ_CHECK((jsonspan_check(text, size) == 0) == (j != NULL));
	if (json_is_object(j)) {
		FUZZ_CHECK(jsonspan_members(text, all, each, &w) == 0);
		if (strict)
			FUZZ_CHECK(w.n == json_object_size(j));
	} else if (json_is_array(j)) {
		FUZZ_CHECK(jsonspan_elements(text, all, each, &w) == 0);
		FUZZ_CHECK(w.n == json_array_size(j));
	}
	json_decref(strict);
	json_decref(j);
	return 0;
}
