/* oai.c: OpenAI error objects, status-to-type mapping and request-body checks for the responders. */
#include "http/oai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"


json_t *oai_error(const char *message, const char *type, const char *param, const char *code)
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

const char *oai_error_type_for_status(int status)
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

/* format into a malloc'd string; NULL on ENOMEM or a bad format */
static char *oai_vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	char *s;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	if (vsnprintf(s, (size_t)n + 1, fmt, ap) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

int oai_send_error(struct hio *h, int status, const char *param, const char *code, const char *fmt, ...)
{
	static const char oom[] =
		"{\"error\":{\"message\":\"Out of memory.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
	va_list ap;
	char *msg;
	json_t *err;
	int rc;

	va_start(ap, fmt);
	msg = oai_vformat(fmt, ap);
	va_end(ap);
	err = msg ? oai_error(msg, oai_error_type_for_status(status), param, code) : NULL;
	free(msg);
	if (!err)
		return hio_send_raw_json(h, 500, oom, sizeof oom - 1);
	rc = hio_send_json(h, status, err);
	json_decref(err);
	return rc;
}

int oai_json_depth_ok(const char *text, size_t len, int max_depth)
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
		default:
			break;
		}
	}
	return 1;
}

json_t *oai_parse_body(struct hio *h, const char *body, size_t len, int max_depth)
{
	json_error_t jerr;
	json_t *v;

	if (!oai_json_depth_ok(body, len, max_depth)) {
		oai_send_error(h, 400, NULL, "json_too_deep",
			       "The request body nests arrays/objects deeper than the limit of %d.", max_depth);
		return NULL;
	}
	v = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
	if (!v) {
		oai_send_error(h, 400, NULL, "invalid_json",
			       "We could not parse the JSON body of your request: %s (line %d, column %d, position %d).",
			       jerr.text, jerr.line, jerr.column, jerr.position);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		oai_send_error(h, 400, NULL, "invalid_request", "The request body must be a JSON object.");
		return NULL;
	}
	return v;
}

int oai_send_405(struct hio *h, const char *allow, const char *method)
{
	char msg[256];
	json_t *err;
	char *s;
	int rc = -1;

	snprintf(msg, sizeof msg, "Method %.64s is not allowed here; %.*s.", method ? method : "(none)",
		 (int)strcspn(allow, "\r"), allow);
	err = oai_error(msg, "invalid_request_error", NULL, "method_not_allowed");
	s = err ? json_dumps(err, JSON_COMPACT) : NULL;
	if (!s)
		rc = oai_send_error(h, 500, NULL, NULL, "Out of memory.");
	else if (hio_headers(h, 405, "application/json", allow) == 0 && hio_write(h, s, strlen(s)) == 0)
		rc = hio_write(h, "\n", 1);
	free(s);
	json_decref(err);
	return rc;
}
