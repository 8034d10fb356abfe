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

/* oai_parse_body: depth check + parse of a request body that must be a JSON
 * object. On error sends a 400 (invalid JSON / too deep / not an object)
 * itself and returns NULL. New reference. */
json_t *oai_parse_body(struct hio *h, const char *body, size_t len, int max_depth);

#endif
