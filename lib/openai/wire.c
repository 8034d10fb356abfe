/* wire.c: OpenAI error objects, the status-to-type table and the JSON depth check, for every side that speaks OpenAI. */
#include "openai/wire.h"

#include <stdio.h>
#include <stdlib.h>

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

int wire_json_depth_ok(const char *text, size_t len, int max_depth)
{
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		switch (text[i]) {
		case '"':
			/* skip the string: a backslash escapes the next byte, whatever it is */
			for (i++; i < len && text[i] != '"'; i++)
				if (text[i] == '\\')
					i++;
			break;
		case '[':
		case '{':
			if (++depth > max_depth)
				return 0;
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		default: break;
		}
	}
	return 1;
}
