/* upstream.h: the client of the OpenAI-compatible upstream LLM API (libcurl, one reused connection per handle). */
#ifndef MCPGW_UPSTREAM_H
#define MCPGW_UPSTREAM_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/settings.h"

/* What went wrong with a request. */
enum upstream_err {
	UPSTREAM_OK = 0,
	UPSTREAM_ECONNECT,   /* no connection: refused, DNS, TLS handshake, connect timeout */
	UPSTREAM_ETIMEOUT,   /* connected, then no byte for idle_timeout_ms */
	UPSTREAM_EHTTP,      /* a non-2xx status; body/content_type hold the upstream's answer */
	UPSTREAM_ETOOBIG,    /* body (or one SSE event) over max_response_bytes */
	UPSTREAM_EBADRESP,   /* 2xx but unusable: not JSON (upstream_result_json), or not
			      * text/event-stream on a stream request (body holds what came) */
	UPSTREAM_ETRUNCATED, /* a stream ended (closed or broken) before data: [DONE] */
	UPSTREAM_EIO,        /* the connection broke or another transport error */
	UPSTREAM_EABORTED,   /* the event callback returned non-zero (res->cb_rc) */
	UPSTREAM_ENOMEM,
	UPSTREAM_ECLIENTGONE, /* the watched client went away (upstream_watch): stopped, not retried */
};

/* The URL shapes and authentication of an upstream (MCPGW_UPSTREAM_DIALECT). */
enum upstream_dialect {
	UPSTREAM_DIALECT_AUTO = 0, /* Azure OpenAI when the base URL's host is Azure's (upstream_dialect_of), else OpenAI */
	UPSTREAM_DIALECT_OPENAI, /* base URL + path, Authorization: Bearer */
	UPSTREAM_DIALECT_AZURE,  /* Azure OpenAI: api-key header, api-version, deployment paths (upstream_request) */
};

/* How the key is sent (MCPGW_UPSTREAM_AUTH). */
enum upstream_auth {
	UPSTREAM_AUTH_AUTO = 0, /* api-key for Azure OpenAI, else bearer */
	UPSTREAM_AUTH_BEARER,   /* Authorization: Bearer KEY */
	UPSTREAM_AUTH_API_KEY,  /* api-key: KEY (Azure OpenAI's key header) */
};

/* The api-version of Azure OpenAI's deployment paths when none is set: the
 * newest GA version of its data plane inference API. */
#define UPSTREAM_AZURE_API_VERSION "2024-10-21"

struct upstream_opts {
	const char *base_url;      /* e.g. "http://127.0.0.1:8080/v1"; trailing '/' ignored; < 2048 bytes;
				    * may hold a query string (kept on every request) and user:password@
				    * (sent, never shown: messages and logs show the URL without them) */
	const char *api_key;       /* NULL or "": no Authorization (or api-key) header */
	long connect_timeout_ms;   /* TCP (+TLS) connect, > 0 */
	long idle_timeout_ms;      /* connected, no byte sent or received for this long: ETIMEOUT; > 0 */
	int retries;               /* further attempts after the first, 0..10 */
	long retry_max_wait_ms;    /* cap of one wait between attempts */
	long backoff_base_ms;      /* first backoff without Retry-After; 0 means 500 (tests set less) */
	size_t max_response_bytes; /* bound of a body and of one SSE event; 0 means 32 MiB */
	int dialect;               /* enum upstream_dialect */
	int auth;                  /* enum upstream_auth */
	const char *api_version;   /* NULL or "": Azure's deployment paths use UPSTREAM_AZURE_API_VERSION,
				    * its /openai/v1 paths none; else the api-version query of every request */
	size_t max_json_values;    /* bound of the JSON values of a body (upstream_result_json, and the error
				    * body upstream_error_json reads); 0 means UPSTREAM_DEFAULT_MAX_VALUES */
};

#define UPSTREAM_DEFAULT_MAX_VALUES 1000000 /* max_json_values when 0 (MCPGW_MAX_UPSTREAM_JSON_VALUES' default) */
#define UPSTREAM_URL_MAX 4096
#define UPSTREAM_REQUEST_ID_MAX 129 /* an upstream request id kept (longer ones are cut) */

/* The outcome of one upstream_request / upstream_stream, all attempts included. */
struct upstream_result {
	enum upstream_err err;
	long status;                              /* HTTP status of the last attempt; 0 if none came */
	buf_t body;                               /* the response body (non-stream, or a stream's non-SSE answer) */
	char content_type[128];                   /* of the last response, "" if none */
	char url[UPSTREAM_URL_MAX];               /* the URL requested, as shown: without user:password@ and
					       * with query values other than api-version as "***" */
	char message[UPSTREAM_URL_MAX + 512];     /* what went wrong, naming the URL; "" when OK */
	int attempts;                             /* requests made (1 + retries used) */
	long events;                              /* stream: events handed to the callback */
	int cb_rc;                                /* the callback's non-zero return (UPSTREAM_EABORTED) */
	char request_id[UPSTREAM_REQUEST_ID_MAX]; /* the last answer's x-request-id (else request-id, else
						   * apim-request-id), printable ASCII; "" if none */
	long retry_after_ms; /* the last answer's retry-after-ms, else Retry-After, in ms; -1 if none */
	int clean_end;       /* stream, UPSTREAM_ETRUNCATED: the body ended as HTTP ends one (not broken, not cut
			* inside a JSON text), only [DONE] was missing: complete if the answer was finished */
	size_t max_values;   /* the upstream's max_json_values, set by every request: the bound its body is read with */
};

#define UPSTREAM_RESULT_INIT \
	{ \
		UPSTREAM_OK, 0, BUF_INIT, "", "", "", 0, 0, 0, "", -1, 0, 0 \
	}

/* upstream_event_cb: one SSE event's data (len bytes, NUL-terminated,
 * borrowed for the call), "[DONE]" included, empty ones skipped. Return 0 to
 * go on, non-zero to abort the transfer (the value ends up in res->cb_rc). */
typedef int (*upstream_event_cb)(const char *data, size_t len, void *ud);

/* upstream_global_init / upstream_global_cleanup: curl_global_init and its
 * cleanup. Call each once per process from main before any thread starts
 * (the responders' main does it); 0 or -1. */
int upstream_global_init(void);
void upstream_global_cleanup(void);

/* upstream_opts_from_settings: fill o from the MCPGW_* / OPENAI_* settings
 * (o borrows the strings of s). */
void upstream_opts_from_settings(struct upstream_opts *o, const struct settings *s);

/* upstream_new: a client with one libcurl easy handle, reused for every
 * request, driven by a private multi handle that holds the connection pool
 * (keep-alive across requests) and lets the idle timeout be checked to the
 * millisecond (curl_easy_perform's progress callback runs only about once a
 * second while nothing arrives). Copies what it needs from o. NULL on
 * ENOMEM, a libcurl failure, an empty or too long base URL (or query) or a
 * too long api_version. The dialect is fixed here (o->dialect, else
 * upstream_dialect_of the base URL). One thread at a time may use a
 * handle. Free with upstream_free. */
struct upstream *upstream_new(const struct upstream_opts *o);
void upstream_free(struct upstream *u);

/* upstream_base_url: the base URL as shown (see redact_url, core/redact.h), without a
 * trailing '/' and without its query string (borrowed). */
const char *upstream_base_url(const struct upstream *u);

/* upstream_dialect_of: the dialect UPSTREAM_DIALECT_AUTO stands for with base
 * URL url: UPSTREAM_DIALECT_AZURE when its host ends in .openai.azure.com or
 * .cognitiveservices.azure.com (Azure OpenAI's endpoints), else
 * UPSTREAM_DIALECT_OPENAI. */
enum upstream_dialect upstream_dialect_of(const char *url);

/* upstream_begin: a new client request is served with u: forget what the
 * answers of earlier requests told (upstream_client_headers), and set this
 * request's retries: client_retry is the client's x-stainless-retry-count
 * header (NULL: none; the openai SDKs send it, 0 on a first attempt); a
 * count > 0 means the client is retrying by itself, so the requests of this
 * one make one attempt each (else up to opts.retries more): an SDK's retries
 * are not multiplied by the gateway's. */
void upstream_begin(struct upstream *u, const char *client_retry);

/* upstream_gone_fn: asked when the watched fd turned readable: 1 when the
 * client went away, 0 when not (when the fd is still readable after it, it
 * is no longer watched for the rest of that request: the wait cannot spin). */
typedef int (*upstream_gone_fn)(void *ud);
/* upstream_watch: until the next upstream_begin, while a request of u waits
 * on the upstream (or between its attempts), fd (a client's connection, -1:
 * none) is polled too; when it turns readable and gone(ud) says 1, the
 * request stops at once with UPSTREAM_ECLIENTGONE (its connection closed,
 * nothing retried): a client that left frees its worker and upstream
 * connection without waiting for the upstream's answer or timeout. */
void upstream_watch(struct upstream *u, int fd, upstream_gone_fn gone, void *ud);

/* upstream_client_headers: the header lines ("Name: value\r\n") an answer
 * with HTTP status to the client carries from the upstream, appended to
 * out: "X-Request-Id" with the request id of the latest upstream answer since
 * upstream_begin (the one a stream's first chunk came from, or the last
 * round's); and when status is 429 or 503 and the last upstream answer was
 * an error with retry-after-ms or Retry-After: "Retry-After" (whole seconds,
 * rounded up) and, when the upstream sent it, "retry-after-ms". Its
 * x-ratelimit-* headers are never passed: they describe the gateway's one
 * shared key, not the caller's. 0, or -1 when out of memory. */
int upstream_client_headers(const struct upstream *u, int status, buf_t *out);

/* upstream_result_init / upstream_result_free: a result is reused by every
 * call (each resets it, keeping memory); free it once at the end. */
void upstream_result_init(struct upstream_result *res);
void upstream_result_free(struct upstream_result *res);

/* upstream_result_trim: done with res->body for now: its memory is released
 * when it holds more than UPSTREAM_RESULT_KEEP bytes (a large answer is not
 * kept by a result reused for the next request), else kept. */
#define UPSTREAM_RESULT_KEEP (1024 * 1024)
void upstream_result_trim(struct upstream_result *res);

/* upstream_request: method ("GET", "POST", ... ) base_url + path (path
 * starts with '/') with an optional JSON body (body NULL or len 0: none),
 * Accept: application/json. Fills res: status and body (at most
 * max_response_bytes) of the last attempt. Retries up to `retries` times on
 * 429, 500, 502, 503, 504, on a failed connect and on a connection that
 * broke before any response byte; waits retry-after-ms / Retry-After
 * (seconds or HTTP date), else backoff_base_ms doubled per attempt (minus up
 * to 25 % jitter), capped by retry_max_wait_ms; an answer asking for a longer
 * wait than retry_max_wait_ms is not retried (its wait goes to the client,
 * upstream_client_headers). Other 4xx are never retried. The URL is
 * base_url + path with the base URL's query string, in the dialect's shape:
 * Azure OpenAI's deployment paths put /openai/deployments/MODEL before
 * /chat/completions, /completions and /embeddings (MODEL: the body's "model",
 * URL-encoded) and /openai before other paths, unless the base URL already
 * names a deployment or ends in /openai/v1; api-version is added (see
 * struct upstream_opts). Returns res->err: UPSTREAM_OK on a 2xx. */
enum upstream_err upstream_request(struct upstream *u, const char *method, const char *path, const char *body,
				   size_t len, struct upstream_result *res);

/* upstream_stream: POST body to base_url + path with Accept:
 * text/event-stream. A 2xx text/event-stream answer is parsed as SSE and
 * each event's data handed to on_event(data, len, ud). A 2xx answer
 * labelled otherwise is read by its first byte: an SSE field or comment is
 * parsed as SSE, '{' or '[' as JSON texts one after another (NDJSON, or
 * one whole completion), each handed to on_event as an event's data; any
 * other body is collected into res->body: UPSTREAM_EBADRESP. UPSTREAM_OK
 * needs a "[DONE]" event; a stream that ends without one is
 * UPSTREAM_ETRUNCATED (or ETIMEOUT when it stalled), with res->clean_end
 * set when the body itself ended whole (the caller knows whether the
 * answer was finished). A non-2xx answer is collected into res->body:
 * UPSTREAM_EHTTP. Retries as upstream_request, but only while no event was
 * delivered. A stream of path
 * "/chat/completions" asks for stream_options.include_usage (the gateway
 * sums usage over rounds; the tool loop gives the usage chunk only to a
 * client that asked for it); when the upstream rejects the request naming
 * stream_options (400 or 422) and the body did not ask for it itself, the
 * request is sent again as it came, and u stops adding it. Returns res->err. */
enum upstream_err upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
				  upstream_event_cb on_event, void *ud, struct upstream_result *res);

/* upstream_result_json: parse res->body as JSON (after a UPSTREAM_OK
 * upstream_request), its values counted first (wire_json_scan) against
 * res->max_values (MCPGW_MAX_UPSTREAM_JSON_VALUES). New reference; NULL
 * when it holds more (res->err set to UPSTREAM_ETOOBIG: a 502
 * upstream_response_too_large), is not JSON (UPSTREAM_EBADRESP), or could
 * not be parsed for lack of memory (UPSTREAM_ENOMEM), with res->message
 * saying so. */
json_t *upstream_result_json(struct upstream_result *res);

/* upstream_error_json: the OpenAI error object to answer a failed request
 * with (res->err != UPSTREAM_OK), and its HTTP status in *http_status.
 * UPSTREAM_EHTTP 401 or 403 (the upstream refused the gateway's own key):
 * 502 upstream_auth_failed, the upstream's text only in the log (its key
 * masked); other UPSTREAM_EHTTP with a provider's error body in any shape
 * wire_error_from reads ({"error": {...}} passed through, {"error": "text"},
 * Gemini's list, {"detail": ...}, vLLM's {"object": "error", ...}): that
 * error as an OpenAI error object, with the upstream's status; else
 * one of ours: ECONNECT 502 upstream_unreachable, ETIMEOUT 504
 * upstream_timeout, EHTTP with a body that is no error object and EBADRESP
 * 502 upstream_bad_response, ETRUNCATED 502 upstream_truncated, ETOOBIG 502
 * upstream_response_too_large, EIO 502 upstream_connection_error, EABORTED
 * and ENOMEM 500. New reference; NULL on ENOMEM or when res->err is OK. */
json_t *upstream_error_json(const struct upstream_result *res, int *http_status);

/* upstream_strerror: a short text for an enum upstream_err. */
const char *upstream_strerror(enum upstream_err err);


/* The asynchronous form of upstream_request / upstream_stream (many exchanges on one
 * curl multi handle, an event loop's): openai/upstream_call.h. */
#endif
