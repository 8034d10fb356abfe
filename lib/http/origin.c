/* origin.c: the browser and host checks of every request: Host (DNS rebinding), Origin and CORS, preflights, JSON bodies. */
#include "http/origin.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/oai.h"

/* Why each check is what it is:
 *
 * - Host: a page of evil.example whose name is rebound to 127.0.0.1 (DNS
 *   rebinding) is same-origin with itself: the browser lets it read our
 *   answers, and its requests carry "Host: evil.example". Only the Host says
 *   so, so a Host the operator did not configure is refused, on every route.
 *   403 as the MCP SDKs' DNS-rebinding protection answers (typescript-sdk
 *   hostHeaderValidation: 403, port-agnostic allow-list); RFC 9110 section
 *   15.5.20's 421 would invite the client to retry on another connection,
 *   which reaches us again.
 * - Origin: a cross-origin request that a browser sends without asking first
 *   (a "no-cors" POST) carries Origin (Fetch standard, "append a request
 *   Origin header": every non-GET/HEAD request). The MCP transport spec
 *   (Streamable HTTP, security warning) says: validate Origin, answer 403 when
 *   it is present and invalid. An allowed one gets CORS headers echoing it
 *   and Vary: Origin (Fetch standard, "CORS protocol and HTTP caches").
 *   Access-Control-Allow-Credentials is never sent: the gateway's credential
 *   is a header (Authorization), not a cookie, so "*" stays safe.
 * - Content-Type: a request needs no preflight when its Content-Type is a
 *   CORS-safelisted one (text/plain, application/x-www-form-urlencoded,
 *   multipart/form-data), and a fetch() body of an ArrayBuffer or a typeless
 *   Blob is sent with no Content-Type at all (Fetch standard, "extract a
 *   body": type null). So only application/json is taken: refusing just the
 *   three safelisted types would let the typeless body through. 415 (RFC 9110
 *   section 15.5.16) with OpenAI's own type, code and wording for a wrong
 *   type (invalid_request_error, unsupported_content_type, "Unsupported
 *   content type: '...'. This API method only accepts 'application/json'
 *   requests, ...": openai/openai-openapi issues 194 and 502, where OpenAI
 *   answers it with 400; 415 is the status HTTP has for it). */

#define ORIGIN_EXPOSE "X-Request-Id, Retry-After, retry-after-ms" /* what the OpenAI SDKs read */
#define ORIGIN_SHOW_MAX 120                                       /* a value shown in a message */
#define ORIGIN_HEADER_NAME_MAX 64

static const char *const origin_loopback[] = { "localhost", "127.0.0.1", "[::1]" };

/* split_host: v (n bytes) as "name[:port]" or "[v6][:port]": the name's
 * length in *namelen, the port ("" if none) in *port, *portlen; 0 or -1 */
static int split_host(const char *v, size_t n, size_t *namelen, const char **port, size_t *portlen)
{
	size_t i = 0;

	if (n > 0 && v[0] == '[') {
		for (i = 1; i < n && (isxdigit((unsigned char)v[i]) || v[i] == ':' || v[i] == '.'); i++)
			;
		if (i == 1 || i == n || v[i] != ']')
			return -1;
		i++;
	} else {
		while (i < n && (isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '-'))
			i++;
		if (i == 0)
			return -1;
	}
	*namelen = i;
	*port = v + i;
	*portlen = 0;
	if (i == n)
		return 0;
	if (v[i] != ':' || n - i - 1 < 1 || n - i - 1 > 5)
		return -1;
	for (size_t k = i + 1; k < n; k++)
		if (v[k] < '0' || v[k] > '9')
			return -1;
	*port = v + i + 1;
	*portlen = n - i - 1;
	return 0;
}

/* host_is: the request's host (name, port) against one entry e (n bytes, "name[:port]") */
static int host_is(const char *name, size_t namelen, const char *port, size_t portlen, const char *e, size_t n)
{
	size_t enl, epl;
	const char *ep;

	if (split_host(e, n, &enl, &ep, &epl) < 0 || enl != namelen || strncasecmp(e, name, namelen) != 0)
		return 0;
	return epl == 0 || (epl == portlen && strncmp(ep, port, portlen) == 0);
}

/* in_list: the comma-separated list (blanks around entries) has an entry
 * that match() says is v */
static int in_list(const char *list, int (*match)(const char *e, size_t n, const void *v), const void *v)
{
	const char *p = list ? list : "", *e, *b;

	for (; *p; p = *e ? e + 1 : e) {
		p += strspn(p, " ");
		e = p + strcspn(p, ",");
		for (b = e; b > p && b[-1] == ' '; b--)
			;
		if (b > p && match(p, (size_t)(b - p), v))
			return 1;
	}
	return 0;
}

struct host_req {
	const char *name, *port;
	size_t namelen, portlen;
};

static int host_entry(const char *e, size_t n, const void *v)
{
	const struct host_req *q = v;

	return host_is(q->name, q->namelen, q->port, q->portlen, e, n);
}

/* listen_host: the HOST of listen ("HOST:PORT"; a bare PORT is 127.0.0.1) into out, "" if none worth serving */
static void listen_host(const char *listen, char *out, size_t outlen)
{
	const char *c = listen ? strrchr(listen, ':') : NULL;
	size_t n = c ? (size_t)(c - listen) : 0;

	out[0] = '\0';
	if (!c || n == 0 || n >= outlen)
		return;
	memcpy(out, listen, n);
	out[n] = '\0';
	if (strcmp(out, "0.0.0.0") == 0) /* every address, not a name a client uses */
		out[0] = '\0';
}

int origin_host_allowed(const char *allowed, const char *listen, const char *host)
{
	struct host_req q;
	char lh[256];
	size_t n;

	if (!host)
		return 1;
	if (allowed && strcmp(allowed, "*") == 0)
		return 1;
	n = strlen(host);
	if (n > ORIGIN_VALUE_MAX || split_host(host, n, &q.namelen, &q.port, &q.portlen) < 0)
		return 0;
	q.name = host;
	for (size_t i = 0; i < sizeof origin_loopback / sizeof *origin_loopback; i++)
		if (host_is(q.name, q.namelen, q.port, q.portlen, origin_loopback[i], strlen(origin_loopback[i])))
			return 1;
	listen_host(listen, lh, sizeof lh);
	if (lh[0] && host_is(q.name, q.namelen, q.port, q.portlen, lh, strlen(lh)))
		return 1;
	return in_list(allowed, host_entry, &q);
}

static int origin_entry(const char *e, size_t n, const void *v)
{
	const char *origin = v;

	return strlen(origin) == n && strncasecmp(e, origin, n) == 0;
}

enum origin_verdict origin_check(const char *list, const char *origin)
{
	if (!origin)
		return ORIGIN_ABSENT;
	if (list && strcmp(list, "*") == 0)
		return ORIGIN_ANY;
	if (strlen(origin) > ORIGIN_VALUE_MAX || strcmp(origin, "null") == 0)
		return ORIGIN_FOREIGN;
	return in_list(list, origin_entry, origin) ? ORIGIN_ALLOWED : ORIGIN_FOREIGN;
}

int origin_is_json(const char *ct)
{
	static const char json[] = "application/json";
	size_t n = sizeof json - 1;

	if (!ct)
		return 0;
	ct += strspn(ct, " \t"); /* HTTP whitespace around the essence (MIME Sniffing, "parse a MIME type") */
	if (strncasecmp(ct, json, n) != 0)
		return 0;
	ct += n;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

/* header_taken: a request header name (n bytes) a browser client of the gateway may send */
static int header_taken(const char *name, size_t n)
{
	static const char *const exact[] = { "authorization", "content-type", "accept", "user-agent", "idempotency-key" };
	static const char *const prefix[] = { "x-stainless-", "openai-" };

	for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
		if (strlen(exact[i]) == n && strncasecmp(name, exact[i], n) == 0)
			return 1;
	for (size_t i = 0; i < sizeof prefix / sizeof *prefix; i++)
		if (n > strlen(prefix[i]) && strncasecmp(name, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	return 0;
}

size_t origin_allow_headers(const char *requested, char *out, size_t outlen)
{
	const char *p = requested ? requested : "", *e, *b;
	size_t o = 0;

	out[0] = '\0';
	for (; *p; p = *e ? e + 1 : e) {
		size_t n, k;

		p += strspn(p, " \t");
		e = p + strcspn(p, ",");
		for (b = e; b > p && (b[-1] == ' ' || b[-1] == '\t'); b--)
			;
		n = (size_t)(b - p);
		for (k = 0; k < n && (isalnum((unsigned char)p[k]) || p[k] == '-'); k++)
			;
		if (n == 0 || k != n || n > ORIGIN_HEADER_NAME_MAX || !header_taken(p, n))
			continue;
		if (o + (o ? 2 : 0) + n >= outlen)
			continue;
		if (o) {
			memcpy(out + o, ", ", 2);
			o += 2;
		}
		memcpy(out + o, p, n);
		o += n;
		out[o] = '\0';
	}
	return o;
}

/* shown: v for a message: at most ORIGIN_SHOW_MAX printable ASCII bytes, others as '?' */
static const char *shown(const char *v, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; v[i] && i < ORIGIN_SHOW_MAX && i + 1 < outlen; i++)
		out[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	out[i] = '\0';
	return out;
}

/* has_body: the request announces a body (a non-zero Content-Length, or a chunked upload) */
static int has_body(struct hio *h)
{
	const char *cl = hio_param(h, "CONTENT_LENGTH"), *te = hio_param(h, "HTTP_TRANSFER_ENCODING");

	if (te && *te)
		return 1;
	if (!cl)
		return 0;
	cl += strspn(cl, "0");
	return *cl != '\0';
}

/* cors_headers: the CORS lines of every answer to a request with verdict v
 * (origin: its Origin) onto h; list: MCPGW_CORS_ORIGINS */
static void cors_headers(struct hio *h, enum origin_verdict v, const char *origin, const char *list)
{
	char lines[ORIGIN_VALUE_MAX + 256];
	int n = 0;

	if (v == ORIGIN_ALLOWED)
		n = snprintf(lines, sizeof lines,
			     "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\nAccess-Control-Expose-Headers: " ORIGIN_EXPOSE
			     "\r\n",
			     origin);
	else if (v == ORIGIN_ANY)
		n = snprintf(lines, sizeof lines,
			     "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: " ORIGIN_EXPOSE "\r\n");
	else if (list && *list && strcmp(list, "*") != 0)
		n = snprintf(lines, sizeof lines, "Vary: Origin\r\n"); /* the answer would differ with one */
	if (n > 0 && (size_t)n < sizeof lines && hio_add_headers(h, lines) < 0)
		log_error("the CORS headers do not fit in HIO_ADDED_MAX");
}

/* send_options: the answer to OPTIONS on a path with methods; for a preflight
 * (v allows the origin, Access-Control-Request-Method given) the CORS grants */
static void send_options(struct hio *h, enum origin_verdict v, const char *methods)
{
	char extra[ORIGIN_ALLOW_HEADERS_MAX + 1024], allow[ORIGIN_ALLOW_HEADERS_MAX];
	const char *acrm = hio_param(h, "HTTP_ACCESS_CONTROL_REQUEST_METHOD");
	const char *pna = hio_param(h, "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK");
	int n;

	n = snprintf(extra, sizeof extra, "Allow: %.200s, OPTIONS\r\n", methods);
	if ((v == ORIGIN_ALLOWED || v == ORIGIN_ANY) && acrm && *acrm) {
		origin_allow_headers(hio_param(h, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS"), allow, sizeof allow);
		/* Private Network Access (WICG): a public page's preflight to a loopback gateway asks for this grant */
		n += snprintf(extra + n, sizeof extra - (size_t)n,
			      "Access-Control-Allow-Methods: %.200s\r\n%s%s%sAccess-Control-Max-Age: %d\r\n"
			      "Vary: Access-Control-Request-Headers\r\n%s",
			      methods, allow[0] ? "Access-Control-Allow-Headers: " : "", allow, allow[0] ? "\r\n" : "",
			      ORIGIN_PREFLIGHT_MAX_AGE,
			      pna && strcasecmp(pna, "true") == 0 ? "Access-Control-Allow-Private-Network: true\r\n"
								  : "");
	}
	(void)n; /* extra is sized for the most it can hold */
	(void)hio_headers(h, 204, "application/json", extra);
}

/* send_unsupported_type: the 415 for a body of another type than JSON (ct NULL: none) */
static void send_unsupported_type(struct hio *h, const char *ct)
{
	char show[ORIGIN_SHOW_MAX + 1];

	if (!ct || !*ct)
		oai_send_error(h, 415, NULL, "unsupported_content_type",
			       "Unsupported content type: none. This API method only accepts 'application/json' requests, "
			       "but the request has no Content-Type header. Please try again with the header "
			       "'Content-Type: application/json'.");
	else
		oai_send_error(h, 415, NULL, "unsupported_content_type",
			       "Unsupported content type: '%s'. This API method only accepts 'application/json' requests, "
			       "but you specified the header 'Content-Type: %s'. Please try again with a supported content "
			       "type%s.",
			       shown(ct, show, sizeof show), show,
			       strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0
				       ? " (curl -d sends this one: add -H 'Content-Type: application/json')"
				       : "");
}

int origin_guard(struct hio *h, const struct settings *s, const char *method, const char *methods, int takes_body)
{
	const char *host = hio_param(h, "HTTP_HOST"), *origin = hio_param(h, "HTTP_ORIGIN");
	const char *list = s ? s->cors_origins : NULL;
	char show[ORIGIN_SHOW_MAX + 1];
	enum origin_verdict v;

	if (!origin_host_allowed(s ? s->allowed_hosts : NULL, s ? s->listen : NULL, host)) {
		log_warn("%s: refused: Host '%s' is not served (MCPGW_ALLOWED_HOSTS)", method,
			 shown(host, show, sizeof show));
		oai_send_error(h, 403, NULL, "host_not_allowed",
			       "This gateway does not answer to the host name '%s': a web page reaching it under another "
			       "name (DNS rebinding) looks like this. If the name is right, add it to MCPGW_ALLOWED_HOSTS.",
			       show);
		return 1;
	}
	v = origin_check(list, origin);
	if (v == ORIGIN_FOREIGN) {
		log_warn("%s: refused: Origin '%s' is not allowed (MCPGW_CORS_ORIGINS)", method,
			 shown(origin, show, sizeof show));
		oai_send_error(h, 403, NULL, "origin_not_allowed",
			       "Requests from the web page origin '%s' are not allowed here. If that page's scripts are "
			       "meant to call this gateway, add the origin to MCPGW_CORS_ORIGINS.",
			       show);
		return 1;
	}
	cors_headers(h, v, origin, list);
	if (strcmp(method, "OPTIONS") == 0 && *methods) {
		send_options(h, v, methods);
		return 1;
	}
	if (takes_body && has_body(h) && !origin_is_json(hio_param(h, "CONTENT_TYPE"))) {
		send_unsupported_type(h, hio_param(h, "CONTENT_TYPE"));
		return 1;
	}
	return 0;
}
