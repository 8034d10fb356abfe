/* wire.c: OpenAI error objects, the status-to-type table and the JSON depth and value-count check, for every side that speaks OpenAI. */
#include "openai/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"

json_t *wire_error(const char *message, const char *type, const char *param, const char *code)
{
	json_t *outer = json_object(), *e = json_object();

	if (!outer || !e)
		goto err;
	if (json_object_set_new(e, "message", jr_string_lossy(message ? message : "")) < 0 ||
	    json_object_set_new(e, "type", json_string(type ? type : "server_error")) < 0 ||
	    json_object_set_new(e, "param", param ? jr_string_lossy(param) : json_null()) < 0 ||
	    json_object_set_new(e, "code", code ? json_string(code) : json_null()) < 0)
		goto err;
	if (json_object_set_new(outer, "error", e) < 0) {
		e = NULL; /* stolen even on failure */
		goto err;
	}
	return outer;
err:
	json_decref(e);
	json_decref(outer);
	return NULL;
}

json_t *wire_verrorf(int status, const char *param, const char *code, const char *fmt, va_list ap)
{
	va_list ap2;
	json_t *e;
	char *msg;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !(msg = malloc((size_t)n + 1)))
		return NULL;
	if (vsnprintf(msg, (size_t)n + 1, fmt, ap) < 0) {
		free(msg);
		return NULL;
	}
	e = wire_error(msg, wire_error_type(status), param, code);
	free(msg);
	return e;
}

json_t *wire_errorf(int status, const char *param, const char *code, const char *fmt, ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = wire_verrorf(status, param, code, fmt, ap);
	va_end(ap);
	return e;
}

/* we_text: v as message text: a string as it is, anything else as its JSON text; new reference */
static json_t *we_text(const json_t *v)
{
	char *s;
	json_t *out;

	if (json_is_string(v))
		return json_incref((json_t *)v);
	if (!(s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
		return NULL;
	out = jr_string_lossy(s);
	free(s);
	return out;
}

/* we_detail: FastAPI's "detail": a text, a list of {"msg", "loc", ...} (their msgs joined), or anything else */
static json_t *we_detail(const json_t *detail)
{
	const json_t *d;
	size_t i;
	char *joined = NULL;
	size_t len = 0;
	FILE *f;
	json_t *out;

	if (!json_is_array(detail) || !(f = open_memstream(&joined, &len)))
		return we_text(detail);
	json_array_foreach(detail, i, d) {
		const char *msg = json_string_value(json_object_get(d, "msg"));
		const json_t *where = json_object_get(d, "loc");
		char *loc = where ? json_dumps(where, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

		if (where && !loc) /* out of memory: no message rather than one missing its place */
			break;
		fprintf(f, "%s%s%s%s", i ? "; " : "", msg ? msg : "", loc ? " at " : "", loc ? loc : "");
		free(loc);
	}
	if (fclose(f) != 0 || i < json_array_size(detail)) {
		free(joined);
		return NULL;
	}
	out = jr_string_lossy(joined);
	free(joined);
	return out;
}

/* we_fill: e (an error's members, changed) given OpenAI's four; 0 or -1 */
static int we_fill(json_t *e, int status)
{
	json_t *v = json_object_get(e, "message");

	if (!json_is_string(v) && json_object_set_new(e, "message", v ? we_text(v) : json_string("")) < 0)
		return -1;
	if (!json_is_string(json_object_get(e, "type")) &&
	    json_object_set_new(e, "type", json_string(wire_error_type(status))) < 0)
		return -1;
	if (!json_object_get(e, "param") && json_object_set_new(e, "param", json_null()) < 0)
		return -1;
	v = json_object_get(e, "code");
	if (!v && json_object_set_new(e, "code", json_null()) < 0)
		return -1;
	if (v && !json_is_string(v) && !json_is_null(v) && json_object_set_new(e, "code", we_text(v)) < 0)
		return -1;
	return 0;
}

/* we_from: wire_error_from's work; NULL with *nomem set when out of memory */
static json_t *we_from(const json_t *body, int status, int *nomem)
{
	const json_t *e;
	json_t *copy, *out;

	/* Gemini's OpenAI endpoint: [{"error": {"code": 400, "message", "status"}}]
	 * (seen in https://github.com/SuzumiyaAkizuki/ComfyUI-NewBie-LLM-Formatter/issues/3) */
	if (json_is_array(body))
		return json_array_size(body) ? we_from(json_array_get(body, 0), status, nomem) : NULL;
	if (!json_is_object(body))
		return NULL;
	if ((e = json_object_get(body, "error")) && !json_is_null(e)) {
		if (!json_is_object(e)) { /* {"error": "text"} */
			json_t *text = we_text(e);

			out = text ? wire_error(json_string_value(text), wire_error_type(status), NULL, NULL) : NULL;
			json_decref(text);
			*nomem = !out;
			return out;
		}
		copy = json_deep_copy(e);
	} else if ((e = json_object_get(body, "detail")) && !json_is_null(e)) {
		copy = json_object();
		if (copy && json_object_set_new(copy, "message", we_detail(e)) < 0) {
			json_decref(copy);
			*nomem = 1;
			return NULL;
		}
	} else if (json_object_get(body, "message")) { /* vLLM, Mistral: the error's members at the top */
		copy = json_deep_copy(body);
		if (copy)
			json_object_del(copy, "object");
	} else {
		return NULL;
	}
	if (!copy || we_fill(copy, status) < 0) {
		json_decref(copy);
		*nomem = 1;
		return NULL;
	}
	out = json_pack("{s:o}", "error", copy); /* copy stolen, even on failure */
	*nomem = !out;
	return out;
}

json_t *wire_error_from(const json_t *body, int status)
{
	int nomem = 0;
	json_t *e = we_from(body, status, &nomem);

	if (!e)
		errno = nomem ? ENOMEM : 0;
	return e;
}

const char *wire_error_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 429: return "rate_limit_error";
	default: break;
	}
	if (status >= 500)
		return "server_error";
	return "invalid_request_error";
}

/* ws_space: JSON's whitespace */
static int ws_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ws_delim: a byte that ends a number or a literal (true, false, null) */
static int ws_delim(char c)
{
	return ws_space(c) || c == ',' || c == ':' || c == '[' || c == ']' || c == '{' || c == '}' || c == '"';
}

/* ws_string_end: the index of the quote closing the string that opens at
 * text[i] (a backslash escapes the next byte, whatever it is), len when it
 * is not closed. The next quote is found with memchr; it closes the string
 * when an even number of backslashes stands right before it (each run of
 * backslashes is counted once: linear) */
static size_t ws_string_end(const char *text, size_t len, size_t i)
{
	size_t from = i + 1;

	for (;;) {
		const char *q = from < len ? memchr(text + from, '"', len - from) : NULL;
		size_t k, bs = 0;

		if (!q)
			return len;
		k = (size_t)(q - text);
		while (k - bs > i + 1 && text[k - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0)
			return k;
		from = k + 1;
	}
}

/* ws_is_key: the string closing at text[end] is a member name (a ':' follows it) */
static int ws_is_key(const char *text, size_t len, size_t end)
{
	size_t j = end + 1;

	while (j < len && ws_space(text[j]))
		j++;
	return j < len && text[j] == ':';
}

enum wire_json_fit wire_json_scan(const char *text, size_t len, int max_depth, size_t max_values)
{
	size_t values = 0;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '"') {
			i = ws_string_end(text, len, i);
			if (i < len && ws_is_key(text, len, i))
				continue;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return WIRE_JSON_TOO_DEEP;
		} else if (c == ']' || c == '}') {
			if (depth > 0)
				depth--;
			continue;
		} else if (ws_delim(c)) {
			continue;
		} else {
			/* a number or literal: one value however long its run of bytes */
			while (i + 1 < len && !ws_delim(text[i + 1]))
				i++;
		}
		if (++values > max_values)
			return WIRE_JSON_TOO_MANY;
	}
	return WIRE_JSON_FITS;
}

int wire_json_depth_ok(const char *text, size_t len, int max_depth)
{
	return wire_json_scan(text, len, max_depth, (size_t)-1) != WIRE_JSON_TOO_DEEP;
}
