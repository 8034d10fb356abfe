/* fuzz_toolresult.c: libFuzzer target of the MCP result mapping (lib/openai/toolresult.c): a tools/call result or error from any MCP server made into an OpenAI tool message and image parts. */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "openai/toolresult.h"

/* Input: byte 0 picks the output bound (16..4111 bytes), the rest is JSON:
 * a CallToolResult as a server sends it (any shape: an object, a number,
 * null, blocks of unknown types). It is mapped as a result and as an
 * error. Checks: the text is valid UTF-8 (it becomes a JSON string), at
 * most the bound, truncation note included (for a bound of 128 bytes or
 * more: a smaller one has no room for the note); the image parts added
 * are counted right and each is {"type":"image_url","image_url":{"url"}}. */

/* check_text: one mapping's output */
static void check_text(const buf_t *out, size_t max)
{
	json_t *s = json_stringn(out->data ? out->data : "", out->len);

	FUZZ_CHECK(s != NULL); /* valid UTF-8, no NUL lost */
	json_decref(s);
	if (max >= 128) /* room for the truncation note: then the bound holds to the byte */
		FUZZ_CHECK(out->len <= max);
	else
		FUZZ_CHECK(out->len <= max + 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v, *parts;
	buf_t out = BUF_INIT;
	size_t max, added;

	if (size < 1)
		return 0;
	max = 16u + (size_t)data[0] * 16u;
	v = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!v)
		return 0;
	if (toolresult_text(v, NULL, max, &out) == 0)
		check_text(&out, max);
	buf_reset(&out);
	if (toolresult_text(NULL, v, max, &out) == 0)
		check_text(&out, max);
	buf_reset(&out);
	if (toolresult_text(v, v, max, &out) == 0)
		check_text(&out, max);

	parts = json_array();
	FUZZ_CHECK(parts);
	added = toolresult_images(v, parts);
	FUZZ_CHECK(added == json_array_size(parts));
	for (size_t i = 0; i < added; i++) {
		const json_t *p = json_array_get(parts, i);

		FUZZ_CHECK(strcmp(json_string_value(json_object_get(p, "type")) ?: "", "image_url") == 0);
		FUZZ_CHECK(json_is_string(json_object_get(json_object_get(p, "image_url"), "url")));
	}
	json_decref(parts);
	buf_free(&out);
	json_decref(v);
	return 0;
}
