/* toolresult.c: MCP tool results mapped faithfully to text a model can use, bounded in size. */
#include "openai/toolresult.h"
#include "core/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_sep(buf_t *out)
{
	return out->len ? buf_puts(out, "\n") : 0;
}

/* one content item */
static int item_text(const json_t *item, buf_t *out)
{
	const char *type = json_string_value(json_object_get(item, "type"));
	const char *mime = json_string_value(json_object_get(item, "mimeType"));
	const json_t *res = json_object_get(item, "resource");

	if (!type)
		return 0;
	if (strcmp(type, "text") == 0)
		return add_sep(out) | buf_puts(out, json_string_value(json_object_get(item, "text")) ?: "");
	if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0)
		return add_sep(out) | buf_printf(out, "[%s: %s, %zu bytes of base64 data]", type, mime ? mime : "?",
						 strlen(json_string_value(json_object_get(item, "data")) ?: ""));
	if (strcmp(type, "resource_link") == 0)
		return add_sep(out) | buf_printf(out, "[resource link: %s%s%s]",
						 json_string_value(json_object_get(item, "uri")) ?: "?",
						 json_object_get(item, "name") ? " " : "",
						 json_string_value(json_object_get(item, "name")) ?: "");
	if (strcmp(type, "resource") == 0 && json_is_object(res)) {
		const char *uri = json_string_value(json_object_get(res, "uri")) ?: "?";
		const char *text = json_string_value(json_object_get(res, "text"));

		if (text)
			return add_sep(out) | buf_printf(out, "[resource %s]\n%s", uri, text);
		return add_sep(out) | buf_printf(out, "[resource %s: %s, %zu bytes of base64 data]", uri,
						 json_string_value(json_object_get(res, "mimeType")) ?: "?",
						 strlen(json_string_value(json_object_get(res, "blob")) ?: ""));
	}
	return add_sep(out) | buf_printf(out, "[%s content]", type);
}

static int truncate_to(buf_t *out, size_t max_bytes)
{
	size_t total = out->len, keep;
	char note[96];
	int n;

	if (total <= max_bytes)
		return 0;
	n = snprintf(note, sizeof note, "\n[output truncated by mcpgw: %zu of %zu bytes]", (size_t)0, total);
	keep = max_bytes > (size_t)n + 8 ? max_bytes - (size_t)n - 8 : 0; /* room for the note's digits */
	keep = utf8_cut(out->data, keep);
	out->len = keep;
	out->data[keep] = '\0';
	return buf_printf(out, "\n[output truncated by mcpgw: %zu of %zu bytes]", keep, total);
}

int toolresult_text(const json_t *result, const json_t *error, size_t max_bytes, buf_t *out)
{
	const json_t *sc = json_object_get(result, "structuredContent"), *item;
	buf_t body = BUF_INIT;
	int rc = 0;
	size_t i;

	buf_reset(out);
	if (!result || error) {
		const char *msg = json_string_value(json_object_get(error, "message"));

		rc = buf_printf(out, "Tool error: %s", msg ? msg : "the tool call failed");
		return rc < 0 ? -1 : truncate_to(out, max_bytes);
	}
	if (sc && !json_is_null(sc)) {
		char *s = json_dumps(sc, JSON_COMPACT | JSON_ENCODE_ANY);

		rc |= s ? buf_puts(&body, s) : -1;
		free(s);
	} else {
		json_array_foreach(json_object_get(result, "content"), i, item)
			rc |= item_text(item, &body);
	}
	if (json_is_true(json_object_get(result, "isError")))
		rc |= buf_puts(out, "Tool error: ");
	rc |= buf_append(out, body.data ? body.data : "", body.len);
	buf_free(&body);
	if (rc < 0)
		return -1;
	return truncate_to(out, max_bytes);
}

size_t toolresult_images(const json_t *result, json_t *parts)
{
	const json_t *item;
	size_t i, n = 0;

	json_array_foreach(json_object_get(result, "content"), i, item) {
		const char *data = json_string_value(json_object_get(item, "data"));
		const char *mime = json_string_value(json_object_get(item, "mimeType"));
		buf_t url = BUF_INIT;

		if (!data || !mime || strcmp(json_string_value(json_object_get(item, "type")) ?: "", "image") != 0)
			continue;
		if (buf_printf(&url, "data:%s;base64,%s", mime, data) == 0 &&
		    json_array_append_new(parts, json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url",
							   url.data)) == 0)
			n++;
		buf_free(&url);
	}
	return n;
}
