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

/* base64_bytes: the decoded size of n base64 characters (padding counted off) */
static size_t base64_bytes(const char *b64)
{
	size_t n = strlen(b64 ? b64 : "");

	while (n > 0 && b64[n - 1] == '=')
		n--;
	return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

/* item_text: one content block of the MCP 2025-11-25 CallToolResult
 * (TextContent, ImageContent, AudioContent, ResourceLink, EmbeddedResource
 * with TextResourceContents or BlobResourceContents) as text; a block of a
 * kind the spec does not know is named, never dropped */
static int item_text(const json_t *item, buf_t *out)
{
	const char *type = json_string_value(json_object_get(item, "type"));
	const char *mime = json_string_value(json_object_get(item, "mimeType"));
	const json_t *res = json_object_get(item, "resource");

	if (!type)
		return add_sep(out) | buf_puts(out, "[content block without a type]");
	if (strcmp(type, "text") == 0)
		return add_sep(out) | buf_puts(out, json_string_value(json_object_get(item, "text")) ?: "");
	if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0)
		return add_sep(out) | buf_printf(out, "[%s: %s, %zu bytes]", type, mime ? mime : "?",
						 base64_bytes(json_string_value(json_object_get(item, "data"))));
	if (strcmp(type, "resource_link") == 0) {
		const char *name = json_string_value(json_object_get(item, "name"));
		const char *desc = json_string_value(json_object_get(item, "description"));

		return add_sep(out) | buf_printf(out, "[resource link: %s%s%s%s%s%s]%s%s",
						 json_string_value(json_object_get(item, "uri")) ?: "?",
						 name ? " " : "", name ? name : "", mime ? " (" : "", mime ? mime : "",
						 mime ? ")" : "", desc ? "\n" : "", desc ? desc : "");
	}
	if (strcmp(type, "resource") == 0 && json_is_object(res)) {
		const char *uri = json_string_value(json_object_get(res, "uri")) ?: "?";
		const char *text = json_string_value(json_object_get(res, "text"));

		if (text)
			return add_sep(out) | buf_printf(out, "[resource %s]\n%s", uri, text);
		return add_sep(out) | buf_printf(out, "[resource %s: %s, %zu bytes]", uri,
						 json_string_value(json_object_get(res, "mimeType")) ?: "?",
						 base64_bytes(json_string_value(json_object_get(res, "blob"))));
	}
	return add_sep(out) | buf_printf(out, "[%s content]", type);
}

/* said_in_text: one text block of content is structuredContent serialised
 * (the spec asks tools to send it so, for clients that do not read it) */
static int said_in_text(const json_t *content, const json_t *sc)
{
	const json_t *item;
	size_t i;

	json_array_foreach(content, i, item) {
		const char *text = json_string_value(json_object_get(item, "text"));
		json_t *v;
		int same;

		if (!text || strcmp(json_string_value(json_object_get(item, "type")) ?: "", "text") != 0)
			continue;
		v = json_loads(text, JSON_DECODE_ANY, NULL);
		same = v && json_equal(v, sc);
		json_decref(v);
		if (same)
			return 1;
	}
	return 0;
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
	const json_t *content = json_object_get(result, "content");
	buf_t body = BUF_INIT;
	int rc = 0;
	size_t i;

	buf_reset(out);
	if (!result || error) {
		const char *msg = json_string_value(json_object_get(error, "message"));

		rc = buf_printf(out, "Tool error: %s", msg ? msg : "the tool call failed");
		return rc < 0 ? -1 : truncate_to(out, max_bytes);
	}
	json_array_foreach(content, i, item)
		rc |= item_text(item, &body);
	if (sc && !json_is_null(sc) && !said_in_text(content, sc)) {
		char *s = json_dumps(sc, JSON_COMPACT | JSON_ENCODE_ANY);

		rc |= s ? add_sep(&body) | buf_puts(&body, s) : -1;
		free(s);
	}
	if (json_is_true(json_object_get(result, "isError")))
		rc |= buf_puts(out, "Tool error: ");
	rc |= buf_append(out, body.data ? body.data : "", body.len);
	buf_free(&body);
	if (rc < 0)
		return -1;
	return truncate_to(out, max_bytes);
}

/* image_of: the base64 data and MIME type of an image block, or of an
 * embedded blob resource whose MIME type is an image; 0, or -1 when item is neither */
static int image_of(const json_t *item, const char **data, const char **mime)
{
	const char *type = json_string_value(json_object_get(item, "type")) ?: "";
	const json_t *res = json_object_get(item, "resource");

	if (strcmp(type, "image") == 0) {
		*data = json_string_value(json_object_get(item, "data"));
		*mime = json_string_value(json_object_get(item, "mimeType"));
	} else if (strcmp(type, "resource") == 0) {
		*data = json_string_value(json_object_get(res, "blob"));
		*mime = json_string_value(json_object_get(res, "mimeType"));
	} else {
		return -1;
	}
	return *data && *data[0] && *mime && strncmp(*mime, "image/", 6) == 0 ? 0 : -1;
}

int toolresult_images(const json_t *result, json_t *parts)
{
	const json_t *item;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(result, "content"), i, item) {
		const char *data, *mime;
		buf_t url = BUF_INIT;

		if (image_of(item, &data, &mime) < 0)
			continue;
		if (buf_printf(&url, "data:%s;base64,%s", mime, data) < 0 ||
		    json_array_append_new(parts, json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url",
							   url.data)) < 0)
			n = -1; /* no image left out silently */
		else
			n++;
		buf_free(&url);
		if (n < 0)
			break;
	}
	return n;
}
