/* origin.h: the browser and host checks of every request (Host, Origin, CORS and its preflights, JSON bodies), once for every responder. */
#ifndef MCPGW_ORIGIN_H
#define MCPGW_ORIGIN_H

#include <stddef.h>

#include "core/settings.h"
#include "http/hio.h"

/* Seconds a browser may keep a preflight's answer (Access-Control-Max-Age);
 * Chromium caps it at 7200, Firefox at 86400. */
#define ORIGIN_PREFLIGHT_MAX_AGE 7200

/* The longest Host or Origin value looked at; a longer one is foreign. */
#define ORIGIN_VALUE_MAX 512

/* The longest Access-Control-Allow-Headers a preflight answers with. */
#define ORIGIN_ALLOW_HEADERS_MAX 1024

/* What an Origin header is to the allow-list (origin_check). */
enum origin_verdict {
	ORIGIN_ABSENT = 0, /* no Origin header: not a cross-origin browser request */
	ORIGIN_ALLOWED,    /* on the list: CORS headers echo it */
	ORIGIN_ANY,        /* the list is "*": Access-Control-Allow-Origin: * */
	ORIGIN_FOREIGN,    /* anything else, "null" included: 403 */
};

/* origin_host_allowed: whether a request whose Host header is host is
 * served. allowed: MCPGW_ALLOWED_HOSTS ("*", or "name[:port],..."; NULL or
 * "": none); listen: MCPGW_LISTEN ("HOST:PORT" or "PORT"; NULL: none).
 * Served: no Host header (host NULL: HTTP/1.0; a browser always sends one),
 * the loopback names localhost, 127.0.0.1 and [::1] on any port, the HOST of
 * listen on any port (not 0.0.0.0), an entry of allowed (without a port: any
 * port; names compare case-insensitively), or anything when allowed is "*".
 * A malformed Host (not "name[:port]" or "[v6][:port]") is never served.
 * Returns 1 (served) or 0. */
int origin_host_allowed(const char *allowed, const char *listen, const char *host);

/* origin_check: what origin (an Origin header's value, NULL: none) is to
 * list (MCPGW_CORS_ORIGINS: "*", or "scheme://host[:port],..."; NULL or "":
 * none). Entries compare with the whole value, case-insensitively. */
enum origin_verdict origin_check(const char *list, const char *origin);

/* origin_is_json: content_type (a Content-Type header's value, NULL: none)
 * names application/json, parameters such as charset allowed
 * ("application/json; charset=utf-8"). Returns 1 or 0 (none, or another type). */
int origin_is_json(const char *content_type);

/* origin_allow_headers: the header names of requested (a preflight's
 * Access-Control-Request-Headers, "a,b"; NULL: none) the gateway takes
 * (Authorization, Content-Type, Accept, User-Agent, Idempotency-Key, and the
 * OpenAI SDKs' OpenAI-* and X-Stainless-*), joined by ", " into out (outlen
 * > 0); a name that would not fit is left out. Returns the length written. */
size_t origin_allow_headers(const char *requested, char *out, size_t outlen);

/* origin_guard: the browser and host checks of the request in h, before its
 * handler: a foreign Host gets 403 host_not_allowed, a foreign Origin 403
 * origin_not_allowed; an allowed Origin's answer (whatever it is) carries
 * the CORS headers (hio_add_headers); OPTIONS is answered here (204, Allow,
 * and for a preflight Access-Control-Allow-Methods/-Headers/-Max-Age); a
 * request body that is not application/json gets 415 unsupported_content_type.
 * s: the settings (NULL when they did not load: loopback only, no origins);
 * method: REQUEST_METHOD; methods: those of the path's routes ("GET, HEAD"),
 * "" when no route has the path (OPTIONS is then left to the 404);
 * takes_body: the route reads a body. Returns 0: go on, or 1: answered. */
int origin_guard(struct hio *h, const struct settings *s, const char *method, const char *methods, int takes_body);

#endif
