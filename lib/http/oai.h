/* oai.h: sending OpenAI error objects (openai/wire.h) over hio, and the responders' JSON request-body check. */
#ifndef MCPGW_OAI_H
#define MCPGW_OAI_H

#include <jansson.h>
#include <stddef.h>

#include "http/hio.h"
#include "openai/wire.h"

/* oai_send_error: write an error response with that status (its type from
 * wire_error_type); message is printf-formatted. code/param may be NULL.
 * Returns hio's result (0, or -1 when the response could not be written). */
int oai_send_error(struct hio *h, int status, const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* oai_send_405: the one 405: method_not_allowed with an Allow header of the
 * methods allow ("GET, HEAD"), naming method. Returns hio's result. */
int oai_send_405(struct hio *h, const char *allow, const char *method);

/* oai_parse_body: parse a request body that must be a JSON object, its
 * depth (max_depth, MCPGW_MAX_JSON_DEPTH) and number of values (max_values,
 * MCPGW_MAX_JSON_VALUES) checked before the tree is built (wire_json_scan).
 * On error sends a 400 itself (invalid_json, json_too_deep,
 * json_too_many_values, or invalid_request: not an object) and returns
 * NULL. New reference. */
json_t *oai_parse_body(struct hio *h, const char *body, size_t len, int max_depth, size_t max_values);

#endif
