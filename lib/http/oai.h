/* oai.h: the OpenAI wire format shared by the responders: error objects and request checks. */
#ifndef MCPGW_OAI_H
#define MCPGW_OAI_H

#include <jansson.h>
#include <stddef.h>

#include "http/hio.h"

/* oai_error: {"error":{"message","type","param","code"}} (param/code may be
 * NULL -> JSON null). New reference or NULL (ENOMEM). */
json_t *oai_error(const char *message, const char *type, const char *param, const char *code);

/* oai_error_type_for_status: the OpenAI "type" for an HTTP status:
 * 400/404/409/413/415/422 invalid_request_error, 401 authentication_error,
 * 403 permission_error, 429 rate_limit_error, 5xx server_error (503 too). */
const char *oai_error_type_for_status(int status);

/* oai_send_error: write an error response with that status; message is
 * printf-formatted. code/param may be NULL. Returns hio's result. */
int oai_send_error(struct hio *h, int status, const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* oai_send_405: 405 method_not_allowed with the Allow header line allow
 * ("Allow: GET, HEAD\r\n"), naming method. Returns hio's result. */
int oai_send_405(struct hio *h, const char *allow, const char *method);

/* oai_json_depth_ok: 1 if the JSON text nests arrays/objects no deeper than
 * max_depth (strings are skipped correctly). Cheap pre-check before parsing. */
int oai_json_depth_ok(const char *text, size_t len, int max_depth);

/* oai_parse_body: depth check + parse of a request body that must be a JSON
 * object. On error sends a 400 (invalid JSON / too deep / not an object)
 * itself and returns NULL. New reference. */
json_t *oai_parse_body(struct hio *h, const char *body, size_t len, int max_depth);

#endif
