/* oai.c: OpenAI error responses over hio (the objects come from openai/wire.c) and the request-body check. */
#include "http/oai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int oai_send_error(struct hio *h, int status, const char *param, const char *code, const char *fmt, ...)
{
	static const char oom[] =
		"{\"error\":{\"message\":\"Out of memory.\",\"type\":\"server_error\",\"param\":null,\"code\":\"internal_error\"}}";
	va_list ap;
	json_t *err;
	int rc;

	va_start(ap, fmt);
	err = wire_verrorf(status, param, code, fmt, ap);
	va_end(ap);
	if (!err)
		return hio_send_raw_json(h, 500, oom, sizeof oom - 1);
	rc = hio_send_json(h, status, err);
	json_decref(err);
	return rc;
}

json_t *oai_parse_body(struct hio *h, const char *body, size_t len, int max_depth, size_t max_values)
{
	json_error_t jerr;
	json_t *v;

	switch (wire_json_scan(body, len, max_depth, max_values)) {
	case WIRE_JSON_FITS: break;
	case WIRE_JSON_TOO_DEEP:
		oai_send_error(h, 400, NULL, "json_too_deep",
			       "The request body nests arrays/objects deeper than the limit of %d (MCPGW_MAX_JSON_DEPTH).",
			       max_depth);
		return NULL;
	case WIRE_JSON_TOO_MANY:
		oai_send_error(h, 400, NULL, "json_too_many_values",
			       "The request body holds more than %zu JSON values, the limit (MCPGW_MAX_JSON_VALUES).",
			       max_values);
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
	char line[256];
	json_t *err;
	int rc;

	snprintf(line, sizeof line, "Allow: %.200s\r\n", allow);
	err = wire_errorf(405, NULL, "method_not_allowed", "Method %.64s is not allowed here; Allow: %.200s.",
			  method ? method : "(none)", allow);
	if (!err)
		return oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	rc = hio_send_json_extra(h, 405, err, line);
	json_decref(err);
	return rc;
}
