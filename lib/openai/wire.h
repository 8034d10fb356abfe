/* wire.h: the OpenAI wire format's error object, status-to-type table and JSON depth and value-count check (no HTTP, no libfcgi below it). */
#ifndef MCPGW_WIRE_H
#define MCPGW_WIRE_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

/* wire_error: the one builder of OpenAI's error object
 * {"error":{"message","type","param","code"}}. message and param are copied
 * (invalid UTF-8 replaced), type NULL is "server_error", param/code NULL are
 * JSON null. New reference, or NULL on ENOMEM. */
json_t *wire_error(const char *message, const char *type, const char *param, const char *code);

/* wire_errorf: wire_error with the type for status (wire_error_type) and a
 * printf-formatted message. New reference, or NULL on ENOMEM. */
json_t *wire_errorf(int status, const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* wire_verrorf: the same with a va_list. */
json_t *wire_verrorf(int status, const char *param, const char *code, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/* wire_error_from: an OpenAI error object from a provider's error body
 * (borrowed), whatever its shape: {"error": {...}} (kept, with message,
 * type, param and code filled in where missing: type from status, a code
 * that is not text as its JSON text), {"error": "text"}, a JSON list of
 * those (Gemini), {"detail": text, or a list of {"msg", "loc"}, or an
 * object} (FastAPI-based servers), {"object": "error", "message", ...}
 * (vLLM, Mistral), {"message": ...}. New reference; NULL when body holds
 * no error in any of these shapes (errno 0), or on ENOMEM (errno ENOMEM). */
json_t *wire_error_from(const json_t *body, int status);

/* wire_error_type: the OpenAI "type" for an HTTP status: 401
 * authentication_error, 403 permission_error, 429 rate_limit_error, 5xx
 * server_error, every other status invalid_request_error. Static string. */
const char *wire_error_type(int status);

/* What wire_json_scan found. */
enum wire_json_fit {
	WIRE_JSON_FITS = 0, /* within both bounds */
	WIRE_JSON_TOO_DEEP, /* arrays/objects nest deeper than max_depth */
	WIRE_JSON_TOO_MANY, /* more than max_values values */
};

/* wire_json_scan: the bounds of a JSON text (len bytes) checked before a
 * parser builds its tree, in one linear pass: nesting of arrays/objects at
 * most max_depth, and at most max_values values (each object, array,
 * string, number, true, false and null counts one, at any depth; member
 * names do not count, nor does anything inside a string: an escaped quote
 * does not end one). Stops at the first bound passed. A cheap check, not a
 * validation: invalid text is counted as best it can be (an unterminated
 * string swallows the rest) and left to the parser to refuse. */
enum wire_json_fit wire_json_scan(const char *text, size_t len, int max_depth, size_t max_values);

/* wire_json_depth_ok: 1 if the JSON text (len bytes) nests arrays/objects no
 * deeper than max_depth, else 0 (strings are skipped correctly). A cheap
 * check before parsing: it does not validate the text. */
int wire_json_depth_ok(const char *text, size_t len, int max_depth);

#endif
