/* upstream.c: requests and SSE streams to the OpenAI-compatible upstream: blocking over one reused libcurl handle, or asynchronous calls on a caller's curl multi handle (upstream_call.h). */
#include "openai/upstream.h"
#include "openai/upstream_call.h"
#include "core/clock.h"

#include "mcp/jsonrpc.h"
#include "core/log.h"
#include "core/jsonseq.h"
#include "core/randid.h"
#include "core/redact.h"
#include "core/sse.h"
#include "openai/wire.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define UP_BASE_MAX 2048
#define UP_DEFAULT_MAX (32u * 1024 * 1024) /* max_response_bytes when 0 */
#define UP_DEFAULT_BACKOFF 500             /* ms, backoff_base_ms when 0 */
#define UP_POLL_MAX_MS 1000                /* longest single wait in the transfer loop */
#define UP_DONE_GRACE_MS 1000              /* after [DONE], wait this long for the end of the body */
#define UP_HEADER_MAX 256                  /* a header value we look at */
#define UP_SNIPPET_MAX 200                 /* bytes of a non-JSON error body shown in a message */
#define UP_STOP_GONE 2                     /* up_perform's *idle: the watched client went away */
#define UP_CB_ABORT 1                      /* SSE callback return: the user callback aborted */
#define UP_VERSION_MAX 64                  /* an api-version value */
#define UP_URL_PATH_MAX 256                /* a path whose URL up_url keeps made */
#define UP_MODEL_MAX 256                   /* a model (Azure deployment) name put into a path */

/* the URL shape of an Azure OpenAI base URL (upstream_new) */
enum up_azure_form {
	UP_AZ_NONE,   /* not Azure: base + path */
	UP_AZ_DEPLOY, /* the resource (or .../openai): /openai/deployments/MODEL/chat/completions */
	UP_AZ_FIXED,  /* .../openai/deployments/NAME: base + path */
	UP_AZ_V1,     /* .../openai/v1: base + path, the model in the body */
};

/* what the answers told since the last begin (upstream_client_headers) */
struct up_told {
	char id[UPSTREAM_REQUEST_ID_MAX];
	long ra_ms, ra_s_ms; /* the last answer, an error: retry-after-ms, Retry-After (ms); -1 */
};

/* the URL of the request in progress (up_url), of a handle or of a call */
struct up_urls {
	char *url;                  /* as sent (NULL: none yet) */
	char *shown;                /* the same, redacted (redact_url) */
	char path[UP_URL_PATH_MAX]; /* the path url was made for ("": none yet), when it depends on nothing else */
};

struct upstream {
	CURL *easy;                           /* reused for every request: it keeps the connection */
	CURLM *multi;                         /* private: runs the easy handle with a ms-precise idle timer */
	curl_closesocket_callback call_close; /* upstream_call_closesocket: its calls' connections closed through it */
	void *call_close_data;
	struct curl_slist *hdr_json;
	struct curl_slist *hdr_sse;
	char *api_key; /* as configured, NULL when none: masked in what the log keeps of a refusal */
	/* the strings below are allocated to their length: a handle per worker thread
	 * costs what its URLs need, not every bound (UP_BASE_MAX, UPSTREAM_URL_MAX) */
	char *base_url;                   /* as configured, without its query string and trailing '/' */
	char *shown_base;                 /* the same as messages show it (redact_url) */
	char *query;                      /* the base URL's query string without '?', "" when none */
	char api_version[UP_VERSION_MAX]; /* "": no api-version query */
	enum up_azure_form azure;
	int add_openai;      /* UP_AZ_DEPLOY: the base URL lacks the /openai segment */
	struct up_urls urls; /* the blocking requests' URL */
	char errbuf[CURL_ERROR_SIZE];
	long connect_timeout_ms, idle_timeout_ms, retry_max_wait_ms, backoff_base_ms;
	int retries;           /* opts.retries */
	int retries_now;       /* this client request's (upstream_begin) */
	int no_stream_options; /* the upstream rejected stream_options: not added any more (calls too) */
	size_t max_bytes;
	size_t max_values;   /* opts.max_json_values */
	struct up_told told; /* what the answers of the blocking requests told since upstream_begin */
	/* the client watched while waiting (upstream_watch); watch_fd -1: none */
	int watch_fd;
	upstream_gone_fn watch_gone;
	void *watch_ud;
};

/* one exchange's attempt, shared with the libcurl callbacks: of a blocking
 * request (on the stack, the handle's easy, URL and told) or of a call (in it,
 * its own); up_xfer_init */
struct up_xfer {
	struct upstream *u; /* the configuration */
	struct upstream_result *res;
	CURL *easy;
	char *errbuf; /* easy's CURLOPT_ERRORBUFFER */
	struct up_urls *urls;
	struct up_told *told;
	int retries;   /* further attempts this exchange may make (upstream_begin, upstream_call_begin) */
	int stream;    /* an SSE answer is expected */
	int decided;   /* status and content type looked at */
	int sse;       /* this answer is parsed as SSE */
	int json;      /* this answer to a stream request is JSON texts (NDJSON, or one whole completion) */
	int sniffed;   /* a 2xx answer to a stream request not labelled text/event-stream: its first byte looked at */
	int bad_json;  /* ... and it was JSON, then something else */
	int saw_done;  /* data: [DONE] came */
	int rx_any;    /* any response byte came */
	int connected; /* the request is on a connection: the idle timer runs */
	int too_big, nomem, sse_rc;
	int64_t last_activity; /* monotonic ms of the last byte in or out */
	curl_off_t last_ul;
	long ra_ms, ra_s_ms; /* retry-after-ms, Retry-After (in ms); -1 if absent */
	int rid_rank;        /* which header res->request_id came from: 0 none, 1 apim-request-id, 2 request-id,
			      * 3 x-request-id */
	struct sse_parser parser;
	struct jsonseq jparser;
	upstream_event_cb cb;
	void *ud;
};

int upstream_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void upstream_global_cleanup(void)
{
	curl_global_cleanup();
}

void upstream_opts_from_settings(struct upstream_opts *o, const struct settings *s)
{
	memset(o, 0, sizeof *o);
	o->base_url = s->openai_base_url;
	o->api_key = s->openai_api_key;
	o->connect_timeout_ms = s->upstream_connect_timeout_ms;
	o->idle_timeout_ms = s->upstream_timeout_ms;
	o->retries = s->upstream_retries;
	o->retry_max_wait_ms = s->upstream_retry_max_wait_ms;
	o->max_response_bytes = s->max_response_bytes;
	o->max_json_values = s->max_upstream_json_values;
	o->dialect = s->upstream_dialect;
	o->auth = s->upstream_auth;
	o->api_version = s->openai_api_version;
}

const char *upstream_strerror(enum upstream_err err)
{
	switch (err) {
	case UPSTREAM_OK: return "no error";
	case UPSTREAM_ECONNECT: return "could not connect";
	case UPSTREAM_ETIMEOUT: return "timed out";
	case UPSTREAM_EHTTP: return "HTTP error";
	case UPSTREAM_ETOOBIG: return "response too large";
	case UPSTREAM_EBADRESP: return "bad response";
	case UPSTREAM_ETRUNCATED: return "stream truncated";
	case UPSTREAM_EIO: return "connection error";
	case UPSTREAM_EABORTED: return "aborted";
	case UPSTREAM_ENOMEM: return "out of memory";
	case UPSTREAM_ECLIENTGONE: return "client went away";
	}
	return "unknown error";
}

void upstream_result_init(struct upstream_result *res)
{
	/* field by field, as UPSTREAM_RESULT_INIT (keep the two alike): the text fields' first byte
	 * only, so that a result allocated for each run (the chat loop's) costs the pages it writes,
	 * not its 9 KB of room */
	res->err = UPSTREAM_OK;
	res->status = 0;
	res->body = (buf_t)BUF_INIT;
	res->content_type[0] = '\0';
	res->url[0] = '\0';
	res->message[0] = '\0';
	res->attempts = 0;
	res->events = 0;
	res->cb_rc = 0;
	res->request_id[0] = '\0';
	res->retry_after_ms = -1;
	res->clean_end = 0;
	res->max_values = 0;
}

void upstream_result_free(struct upstream_result *res)
{
	buf_free(&res->body);
}

void upstream_result_trim(struct upstream_result *res)
{
	if (res->body.cap > UPSTREAM_RESULT_KEEP)
		buf_free(&res->body);
}

const char *upstream_base_url(const struct upstream *u)
{
	return u->shown_base;
}

/* up_told_reset: nothing told yet */
static void up_told_reset(struct up_told *t)
{
	t->id[0] = '\0';
	t->ra_ms = t->ra_s_ms = -1;
}

void upstream_begin(struct upstream *u, const char *client_retry)
{
	long n;

	up_told_reset(&u->told);
	/* the openai SDKs send x-stainless-retry-count on every request: 0 first, then 1, 2, ... */
	u->retries_now = client_retry && settings_parse_long(client_retry, 1, 1000000, &n) == 0 ? 0 : u->retries;
	upstream_watch(u, -1, NULL, NULL);
}

void upstream_watch(struct upstream *u, int fd, upstream_gone_fn gone, void *ud)
{
	u->watch_fd = gone ? fd : -1;
	u->watch_gone = gone;
	u->watch_ud = ud;
}

/* up_ceil_s: ms as whole seconds, rounded up */
static long up_ceil_s(long ms)
{
	return ms / 1000 + (ms % 1000 != 0);
}

/* up_told_headers: upstream_client_headers of what t holds */
static int up_told_headers(const struct up_told *t, int status, buf_t *out)
{
	if (t->id[0] && buf_printf(out, "X-Request-Id: %s\r\n", t->id) < 0)
		return -1;
	if (status != 429 && status != 503)
		return 0;
	if (t->ra_ms >= 0)
		return buf_printf(out, "Retry-After: %ld\r\nretry-after-ms: %ld\r\n", up_ceil_s(t->ra_ms), t->ra_ms);
	if (t->ra_s_ms >= 0)
		return buf_printf(out, "Retry-After: %ld\r\n", up_ceil_s(t->ra_s_ms));
	return 0;
}

int upstream_client_headers(const struct upstream *u, int status, buf_t *out)
{
	return up_told_headers(&u->told, status, out);
}

/* ---- libcurl callbacks ---- */

/* One header line "name: value" of an answer, split once (up_header_split):
 * the name as it came, the value trimmed of blanks and the line's end. */
struct up_header {
	const char *name, *value;
	size_t name_len, value_len;
};

/* up_header_split: the header line [p, p+n) into *h; 0, or -1 when it has no colon (a status line, the blank end) */
static int up_header_split(const char *p, size_t n, struct up_header *h)
{
	const char *colon = memchr(p, ':', n);

	if (!colon)
		return -1;
	h->name = p;
	h->name_len = (size_t)(colon - p);
	p = colon + 1;
	n -= h->name_len + 1;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	h->value = p;
	h->value_len = n;
	return 0;
}

/* up_header_is: h's name is name (any case) */
static int up_header_is(const struct up_header *h, const char *name)
{
	return strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0;
}

/* up_header_value: h's value, cut to outn - 1 bytes, NUL-ended, into out */
static void up_header_value(const struct up_header *h, char *out, size_t outn)
{
	size_t len = h->value_len < outn - 1 ? h->value_len : outn - 1;

	memcpy(out, h->value, len);
	out[len] = '\0';
}

/* up_retry_after: a Retry-After value (seconds, may be fractional, or an HTTP date) in ms, -1 if unusable */
static long up_retry_after(const char *v)
{
	long ms;
	time_t t;

	if (settings_parse_seconds(v, 0, 86400000L, &ms) == 0)
		return ms;
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	t -= time(NULL);
	return t <= 0 ? 0 : t > 86400 ? 86400000L : (long)t * 1000;
}

/* up_request_id: an x-request-id, request-id or apim-request-id header line:
 * kept (printable ASCII, cut) in res and as told to the client, unless a
 * better-ranked one came; 1 if it was one of them */
static int up_request_id(struct up_xfer *x, const struct up_header *h)
{
	static const char *const names[] = { "apim-request-id", "request-id", "x-request-id" };
	char v[UPSTREAM_REQUEST_ID_MAX];
	size_t j = 0;

	for (int rank = 1; rank <= 3; rank++) {
		if (!up_header_is(h, names[rank - 1]))
			continue;
		if (rank > x->rid_rank) {
			up_header_value(h, v, sizeof v);
			for (size_t i = 0; v[i]; i++)
				if (v[i] > 0x20 && v[i] < 0x7f)
					x->res->request_id[j++] = v[i];
			x->res->request_id[j] = '\0';
			memcpy(x->told->id, x->res->request_id, j + 1);
			x->rid_rank = rank;
		}
		return 1;
	}
	return 0;
}

static size_t up_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct up_xfer *x = ud;
	char v[UP_HEADER_MAX];
	struct up_header h;
	size_t len = size * n;
	long ms;

	x->rx_any = 1;
	x->last_activity = clock_now_ms();
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 1xx, too) */
		x->ra_ms = x->ra_s_ms = -1;
		x->res->content_type[0] = '\0';
		x->res->request_id[0] = x->told->id[0] = '\0';
		x->rid_rank = 0;
	} else if (up_header_split(p, len, &h) < 0 || up_request_id(x, &h)) {
		/* no header, or a request id: kept */
	} else if (up_header_is(&h, "content-type")) {
		up_header_value(&h, x->res->content_type, sizeof x->res->content_type); /* cut to fit */
	} else if (up_header_is(&h, "retry-after-ms")) {
		/* "150" or "150.5" ms: parsed as seconds, that is in thousandths of a ms */
		up_header_value(&h, v, sizeof v);
		if (settings_parse_seconds(v, 0, 86400000L * 1000, &ms) == 0)
			x->ra_ms = ms / 1000;
	} else if (up_header_is(&h, "retry-after")) {
		up_header_value(&h, v, sizeof v);
		x->ra_s_ms = up_retry_after(v);
	}
	return len;
}

/* up_on_json: one JSON text of an answer read as JSON texts: an event like an SSE one */
static int up_on_event(const char *event, const char *data, size_t len, const char *id, void *ud);

static int up_on_json(const char *text, size_t len, void *ud)
{
	return up_on_event(NULL, text, len, NULL, ud);
}

/* up_sniff: a 2xx answer to a stream request that is not labelled
 * text/event-stream: read by its first non-blank byte, whatever its label
 * (text/plain, application/x-ndjson, application/json, none): an SSE field
 * or comment is an event stream; '{' or '[' JSON texts, one after another
 * (NDJSON) or one whole completion (servers that do not stream, e.g. with
 * tools); anything else is collected as the body (a bad response) */
static void up_sniff(struct up_xfer *x, const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i == len)
		return;
	x->sniffed = 1;
	if (p[i] == '{' || p[i] == '[')
		x->json = 1;
	else if (p[i] && strchr("d:eir", p[i]))
		x->sse = 1;
	if (x->json || x->sse)
		log_debug("upstream: the stream from %s is labelled '%s'; read as %s", x->res->url,
			  x->res->content_type, x->json ? "JSON texts" : "an event stream");
}

/* up_decide: at the first body byte (or the end): status, and SSE or not */
static void up_decide(struct up_xfer *x)
{
	long status = 0;

	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	x->res->status = status;
	x->sse = x->stream && status >= 200 && status < 300 &&
		 strncasecmp(x->res->content_type, "text/event-stream", 17) == 0;
	x->decided = 1;
}

static size_t up_on_body(char *p, size_t size, size_t n, void *ud)
{
	struct up_xfer *x = ud;
	size_t len = size * n;
	int rc;

	x->rx_any = 1;
	x->last_activity = clock_now_ms();
	if (!x->decided)
		up_decide(x);
	if (x->stream && !x->sse && !x->sniffed && x->res->status >= 200 && x->res->status < 300)
		up_sniff(x, p, len);
	if (x->json) {
		if ((rc = jsonseq_feed(&x->jparser, p, len)) != JSONSEQ_OK) {
			x->bad_json = rc == JSONSEQ_EBAD;
			x->sse_rc = rc == JSONSEQ_ETOOBIG  ? SSE_ETOOBIG
				    : rc == JSONSEQ_ENOMEM ? SSE_ENOMEM
				    : rc == JSONSEQ_ESTOP  ? UP_CB_ABORT
							   : 0;
			return len ? 0 : 1;
		}
		return len;
	}
	if (x->sse) {
		if ((rc = sse_feed(&x->parser, p, len)) != SSE_OK) {
			x->sse_rc = rc;
			return len ? 0 : 1;
		}
		return len;
	}
	if (x->res->body.len + len > x->u->max_bytes) {
		x->too_big = 1;
		return len ? 0 : 1;
	}
	if (buf_append(&x->res->body, p, len) < 0) {
		x->nomem = 1;
		return len ? 0 : 1;
	}
	return len;
}

/* SSE events of the answer: skip empty ones, note [DONE], hand the data on
 * (the gateway's key masked in it) */
static int up_on_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct up_xfer *x = ud;
	size_t kn = x->u->api_key ? strlen(x->u->api_key) : 0;
	int rc;

	(void)event;
	(void)id;
	if (len == 0)
		return 0;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		x->saw_done = 1;
	x->res->events++;
	if (kn >= strlen(REDACT_MASK) && memmem(data, len, x->u->api_key, kn)) {
		/* an event that quotes the gateway's key (a mid-stream {"error": ...
		 * "key sk-... expired"}) goes on with the key masked (issue 14) */
		char *copy = malloc(len + 1);

		if (!copy) {
			x->nomem = 1;
			return UP_CB_ABORT;
		}
		memcpy(copy, data, len);
		copy[len] = '\0';
		rc = x->cb(copy, redact_secret_inplace(copy, len, x->u->api_key), x->ud);
		free(copy);
	} else {
		rc = x->cb(data, len, x->ud);
	}
	if (rc != 0) {
		x->res->cb_rc = rc;
		return UP_CB_ABORT;
	}
	return 0;
}

/* upload progress counts as activity for the idle timer */
static int up_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct up_xfer *x = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	if (ulnow != x->last_ul) {
		x->last_ul = ulnow;
		x->last_activity = clock_now_ms();
	}
	return 0;
}

/* a connection is there (new or reused): the idle timer starts */
static int up_on_prereq(void *ud, char *ip, char *local_ip, int port, int local_port)
{
	struct up_xfer *x = ud;

	(void)ip;
	(void)local_ip;
	(void)port;
	(void)local_port;
	x->connected = 1;
	x->last_activity = clock_now_ms();
	return CURL_PREREQFUNC_OK;
}

/* ---- dialects and URLs ---- */

/* up_host: the host of url (after "scheme://" and any user:password@, before
 * ':' port, '/', '?', '#') into out; "" when none */
static const char *up_host(const char *url, char *out, size_t outn)
{
	const char *p = strstr(url, "://"), *end, *at;
	size_t n;

	out[0] = '\0';
	if (!p)
		return out;
	p += 3;
	end = p + strcspn(p, "/?#");
	for (at = p; at < end; at++)
		if (*at == '@')
			p = at + 1;
	n = strcspn(p, ":/?#");
	if (n >= outn)
		return out;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/* up_ends_with: s ends with suffix, any case */
static int up_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

enum upstream_dialect upstream_dialect_of(const char *url)
{
	char host[256];

	/* Azure OpenAI's resource endpoints (learn.microsoft.com/azure/ai-foundry/openai/reference):
	 * https://RESOURCE.openai.azure.com and the multi-service https://RESOURCE.cognitiveservices.azure.com */
	up_host(url ? url : "", host, sizeof host);
	if (up_ends_with(host, ".openai.azure.com") || up_ends_with(host, ".cognitiveservices.azure.com"))
		return UPSTREAM_DIALECT_AZURE;
	return UPSTREAM_DIALECT_OPENAI;
}

/* up_shrink: p (a string in a larger allocation) in one of its own length */
static char *up_shrink(char *p)
{
	char *q = realloc(p, strlen(p) + 1);

	return q ? q : p;
}

/* up_base: split base URL b into the handle: base (no query, no trailing '/'),
 * shown base, query, the Azure form; 0, or -1 when empty or too long */
static int up_base(struct upstream *u, const char *b, int dialect)
{
	size_t n = strcspn(b, "?#"), q;
	const char *path;

	q = b[n] == '?' ? strcspn(b + n + 1, "#") : 0;
	while (n > 0 && b[n - 1] == '/')
		n--;
	if (n == 0 || n >= UP_BASE_MAX || q >= UP_BASE_MAX)
		return -1;
	if (!(u->base_url = strndup(b, n)) || !(u->query = strndup(b + strcspn(b, "?") + 1, q)) ||
	    !(u->shown_base = malloc(UP_BASE_MAX)))
		return -1;
	redact_url(u->base_url, u->shown_base, UP_BASE_MAX);
	u->shown_base = up_shrink(u->shown_base);
	if (dialect == UPSTREAM_DIALECT_AUTO)
		dialect = upstream_dialect_of(u->base_url);
	if (dialect != UPSTREAM_DIALECT_AZURE) {
		u->azure = UP_AZ_NONE;
		return 0;
	}
	/* Azure OpenAI's URL shapes: the v1 API (.../openai/v1, model in the body), a deployment
	 * named in the base (.../openai/deployments/NAME, as the AzureOpenAI SDK builds it with
	 * azure_deployment), else the resource, whose deployment is the request's model */
	path = strstr(u->base_url, "://");
	path = path ? path + 3 + strcspn(path + 3, "/") : u->base_url + n;
	if (up_ends_with(path, "/v1"))
		u->azure = UP_AZ_V1;
	else if (strstr(path, "/deployments/"))
		u->azure = UP_AZ_FIXED;
	else
		u->azure = UP_AZ_DEPLOY;
	u->add_openai = u->azure == UP_AZ_DEPLOY && !up_ends_with(path, "/openai");
	return 0;
}

/* up_deployment_path: a path Azure serves per deployment (AzureOpenAI SDK's list of them) */
static int up_deployment_path(const char *path)
{
	return strcmp(path, "/chat/completions") == 0 || strcmp(path, "/completions") == 0 ||
	       strcmp(path, "/embeddings") == 0;
}

/* up_model_segment: model percent-encoded for a path segment into out; "" when it does not fit */
static const char *up_model_segment(const char *model, char *out, size_t outn)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)model; *p; p++) {
		if (o + 4 > outn) {
			out[0] = '\0';
			return out;
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* up_query_names: query (no '?') has a parameter called name */
static int up_query_names(const char *query, const char *name)
{
	size_t n = strlen(name);

	for (const char *q = query; *q; q += strcspn(q, "&"), q += *q == '&') {
		if (strncmp(q, name, n) == 0 && (q[n] == '=' || q[n] == '&' || q[n] == '\0'))
			return 1;
	}
	return 0;
}

/* up_url_of: base + (Azure: /openai, /deployments/MODEL) + path + query
 * (base's, then api-version unless it names one) into out, the base and
 * query given (as sent or as shown); the length, or outn when it does not fit */
static size_t up_url_of(const struct upstream *u, const char *base, const char *query, const char *path,
			const char *model, char *out, size_t outn)
{
	char seg[3 * UP_MODEL_MAX + 1];
	const char *sep = strchr(path, '?') ? "&" : "?";
	const char *ver = u->api_version[0] && !up_query_names(query, "api-version") ? u->api_version : NULL;
	int n;

	seg[0] = '\0';
	if (u->azure == UP_AZ_DEPLOY && model && up_deployment_path(path))
		up_model_segment(model, seg, sizeof seg);
	n = snprintf(out, outn, "%s%s%s%s%s%s%s%s%s", base, u->azure == UP_AZ_DEPLOY && u->add_openai ? "/openai" : "",
		     seg[0] ? "/deployments/" : "", seg, path, query[0] ? sep : "", query,
		     ver ? (query[0]        ? "&api-version="
			    : sep[0] == '?' ? "?api-version="
					    : "&api-version=")
			 : "",
		     ver ? ver : "");
	return n < 0 || (size_t)n >= outn ? outn : (size_t)n;
}

/* up_url: the URL of a request to path (model: the body's, for Azure's
 * deployment paths) into c->url and, as shown, res->url; 0 or -1 (too long) */
static int up_url(const struct upstream *u, struct up_urls *c, const char *path, const char *model,
		  struct upstream_result *res)
{
	size_t pl = strlen(path);

	/* the same path as the last request's, and no deployment in it: the same URL, made once */
	if (c->path[0] && strcmp(c->path, path) == 0) {
		memcpy(res->url, c->shown, strlen(c->shown) + 1);
		return 0;
	}
	c->path[0] = '\0';
	free(c->url);
	free(c->shown);
	c->shown = NULL;
	if (!(c->url = malloc(UPSTREAM_URL_MAX)) || !(c->shown = malloc(UPSTREAM_URL_MAX)) ||
	    up_url_of(u, u->base_url, u->query, path, model, c->url, UPSTREAM_URL_MAX) >= UPSTREAM_URL_MAX) {
		snprintf(res->url, sizeof res->url, "%s%.64s...%s", u->shown_base, path,
			 c->url ? "" : " (out of memory)");
		free(c->url);
		free(c->shown);
		c->url = c->shown = NULL;
		return -1;
	}
	redact_url(c->url, c->shown, UPSTREAM_URL_MAX);
	c->url = up_shrink(c->url);
	c->shown = up_shrink(c->shown);
	memcpy(res->url, c->shown, strlen(c->shown) + 1);
	if (u->azure != UP_AZ_DEPLOY && pl < sizeof c->path)
		memcpy(c->path, path, pl + 1);
	return 0;
}

/* up_urls_free: the URLs of c, made again at the next up_url */
static void up_urls_free(struct up_urls *c)
{
	free(c->url);
	free(c->shown);
	c->url = c->shown = NULL;
	c->path[0] = '\0';
}

/* ---- handle ---- */

/* up_list: a header list: accept, JSON body, no 100-continue, auth (may be NULL); NULL on ENOMEM */
static struct curl_slist *up_list(const char *accept, const char *auth)
{
	const char *lines[] = { accept, "Content-Type: application/json", "Expect:", auth };
	struct curl_slist *l = NULL, *t;

	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!lines[i])
			continue;
		if (!(t = curl_slist_append(l, lines[i]))) { /* l is left as it was */
			curl_slist_free_all(l);
			return NULL;
		}
		l = t;
	}
	return l;
}

/* up_headers: the JSON and the SSE header lists, the key as the auth mode
 * says (Azure OpenAI: "api-key: KEY", its documented key header); 0 or -1 */
static int up_headers(struct upstream *u, const char *api_key, int api_key_header)
{
	char auth[1200];
	const char *a = NULL;

	if (api_key && *api_key) {
		if ((size_t)snprintf(auth, sizeof auth, api_key_header ? "api-key: %s" : "Authorization: Bearer %s",
				     api_key) >= sizeof auth)
			return -1;
		a = auth;
	}
	u->hdr_json = up_list("Accept: application/json", a);
	u->hdr_sse = up_list("Accept: text/event-stream", a);
	return u->hdr_json && u->hdr_sse ? 0 : -1;
}

/* up_setup: the options of easy handle e (of u, or of a call of u, whose
 * error buffer is errbuf) that stay the same for every request; 0 or -1 */
static int up_setup(const struct upstream *u, CURL *e, char *errbuf)
{
	if (curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USERAGENT, "mcpgw") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, up_on_body) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, up_on_header) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, up_on_progress) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, up_on_prereq) != CURLE_OK)
		return -1;
	return 0;
}

struct upstream *upstream_new(const struct upstream_opts *o)
{
	struct upstream *u = calloc(1, sizeof *u);
	int api_key_header;

	if (!u)
		return NULL;
	if (!o->base_url || up_base(u, o->base_url, o->dialect) < 0)
		goto err;
	if (o->api_version && *o->api_version && u->azure != UP_AZ_NONE) {
		if ((size_t)snprintf(u->api_version, sizeof u->api_version, "%s", o->api_version) >= sizeof u->api_version)
			goto err;
	} else if (u->azure == UP_AZ_DEPLOY || u->azure == UP_AZ_FIXED) {
		snprintf(u->api_version, sizeof u->api_version, "%s", UPSTREAM_AZURE_API_VERSION);
	}
	api_key_header = o->auth == UPSTREAM_AUTH_API_KEY || (o->auth == UPSTREAM_AUTH_AUTO && u->azure != UP_AZ_NONE);
	up_told_reset(&u->told);
	u->watch_fd = -1;
	u->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	u->idle_timeout_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 300000;
	u->retries = u->retries_now = o->retries < 0 ? 0 : o->retries;
	u->retry_max_wait_ms = o->retry_max_wait_ms < 0 ? 0 : o->retry_max_wait_ms;
	u->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : UP_DEFAULT_BACKOFF;
	u->max_bytes = o->max_response_bytes ? o->max_response_bytes : UP_DEFAULT_MAX;
	u->max_values = o->max_json_values ? o->max_json_values : UPSTREAM_DEFAULT_MAX_VALUES;
	if ((o->api_key && *o->api_key && !(u->api_key = strdup(o->api_key))) || !(u->easy = curl_easy_init()) ||
	    !(u->multi = curl_multi_init()) || up_headers(u, o->api_key, api_key_header) < 0 ||
	    up_setup(u, u->easy, u->errbuf) < 0)
		goto err;
	return u;
err:
	upstream_free(u);
	return NULL;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	if (u->easy)
		curl_easy_cleanup(u->easy);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	curl_slist_free_all(u->hdr_json);
	curl_slist_free_all(u->hdr_sse);
	free(u->api_key);
	free(u->base_url);
	free(u->shown_base);
	free(u->query);
	up_urls_free(&u->urls);
	free(u);
}

/* up_log_refusal: the upstream refused the gateway's key (401/403): its own
 * words go to the log only (upstream_error_json gives the client a gateway
 * error), the key masked (the whole text, before it is cut: a refusal may
 * quote the key) and URLs redacted */
static void up_log_refusal(const struct upstream *u, const struct upstream_result *res)
{
	json_t *body = json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, NULL);
	json_t *e = json_object_get(body, "error");
	const char *m = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
	size_t n = m ? 3 * strlen(m) + 1 : 0; /* "***" for a key of one byte at worst */
	char *masked = n ? malloc(n) : NULL, shown[2 * UP_SNIPPET_MAX];

	if (masked)
		redact_secret(m, u->api_key, masked, n);
	snprintf(shown, sizeof shown, "%s", m ? "(not shown: out of memory)" : "(no error message)");
	if (masked)
		redact_text(masked, strlen(masked), shown, sizeof shown);
	log_warn("upstream: %s: the gateway's credentials were refused: %s", res->message, shown);
	free(masked);
	json_decref(body);
}

/* ---- one attempt ---- */

/* up_prepare: the options of this request on x->easy; 0 or -1 */
static int up_prepare(struct up_xfer *x, const char *method, const char *body, size_t len)
{
	const struct upstream *u = x->u;
	CURL *e = x->easy;
	int post = strcmp(method, "GET") != 0 && (strcmp(method, "POST") == 0 || (body && len));

	if (curl_easy_setopt(e, CURLOPT_URL, x->urls->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOBODY, 0L) != CURLE_OK ||
	    curl_easy_setopt(e, post ? CURLOPT_POST : CURLOPT_HTTPGET, 1L) != CURLE_OK ||
	    (post && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0)) != CURLE_OK) ||
	    (post && curl_easy_setopt(e, CURLOPT_POSTFIELDS, body && len ? body : "") != CURLE_OK) ||
	    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
			     strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? NULL : method) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->stream ? u->hdr_sse : u->hdr_json) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PREREQDATA, x) != CURLE_OK)
		return -1;
	return 0;
}

/* up_client_gone: the watched fd turned readable: 1 when the client went
 * away; else 0, and when the fd stays readable it is watched no more (this
 * request): the wait must not spin */
static int up_client_gone(struct upstream *u)
{
	struct pollfd p = { .fd = u->watch_fd, .events = POLLIN };

	if (u->watch_gone && u->watch_gone(u->watch_ud))
		return 1;
	if (poll(&p, 1, 0) != 0)
		u->watch_fd = -1;
	return 0;
}

/* up_sleep: wait ms between attempts, watching the client; 1 when it went away */
static int up_sleep(struct upstream *u, long ms)
{
	int64_t until = clock_now_ms() + ms, left;

	if (u->watch_fd < 0) {
		clock_sleep_ms(ms);
		return 0;
	}
	while ((left = until - clock_now_ms()) > 0) {
		struct pollfd p = { .fd = u->watch_fd, .events = POLLIN };
		int n = poll(&p, 1, (int)left);

		if (n < 0 && errno != EINTR)
			return 0;
		if (n > 0 && up_client_gone(u))
			return 1;
		if (u->watch_fd < 0) {
			clock_sleep_ms(until - clock_now_ms() > 0 ? until - clock_now_ms() : 0);
			return 0;
		}
	}
	return 0;
}

/* up_idle_limit: how long x's transfer may go without a byte once connected (after [DONE]: the grace) */
static int64_t up_idle_limit(const struct up_xfer *x)
{
	return x->saw_done && x->u->idle_timeout_ms > UP_DONE_GRACE_MS ? UP_DONE_GRACE_MS : x->u->idle_timeout_ms;
}

/* up_perform: run the easy handle on the private multi handle, checking the
 * idle timer between waits. The libcurl result; *idle set when we stopped it. */
static CURLcode up_perform(struct up_xfer *x, int *idle)
{
	CURLM *m = x->u->multi;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;
	struct curl_waitfd client = { .fd = x->u->watch_fd, .events = CURL_WAIT_POLLIN };

	if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		int64_t wait = UP_POLL_MAX_MS, quiet, limit;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		if (!running)
			break;
		if (x->connected) {
			limit = up_idle_limit(x);
			quiet = clock_now_ms() - x->last_activity;
			if (quiet >= limit) {
				*idle = 1;
				break;
			}
			wait = limit - quiet < wait ? limit - quiet : wait;
		}
		client.revents = 0;
		if (curl_multi_poll(m, &client, client.fd >= 0, (int)wait, NULL) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
		if (client.fd >= 0 && client.revents && up_client_gone(x->u)) {
			*idle = UP_STOP_GONE;
			break;
		}
		client.fd = x->u->watch_fd; /* -1 once up_client_gone stopped watching */
	}
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE)
			cc = msg->data.result;
	if (curl_multi_remove_handle(m, x->easy) != CURLM_OK && cc == CURLE_OK)
		cc = CURLE_FAILED_INIT;
	return cc;
}

static int up_status_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* up_fail: set err and a message (printf) */
static void up_fail(struct upstream_result *res, enum upstream_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void up_fail(struct upstream_result *res, enum upstream_err err, const char *fmt, ...)
{
	va_list ap;

	res->err = err;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
}

/* up_curl_text: libcurl's detailed message of x's attempt, else its generic one */
static const char *up_curl_text(const struct up_xfer *x, CURLcode cc)
{
	return x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
}

/* up_finished: a transfer that libcurl completed (cc == CURLE_OK): judge the
 * answer. Returns 1 if another attempt may help. */
static int up_finished(struct up_xfer *x)
{
	struct upstream_result *res = x->res;

	if (res->status < 200 || res->status >= 300) {
		if (res->status == 404) /* most often a base URL without its /v1, or Azure's paths not asked for */
			up_fail(res, UPSTREAM_EHTTP,
				"%s answered HTTP 404 (is OPENAI_BASE_URL, or EMBEDDING_BASE_URL for embeddings, the "
				"API's base, for most providers ending in /v1? Azure OpenAI: MCPGW_UPSTREAM_DIALECT=azure)",
				res->url);
		else
			up_fail(res, UPSTREAM_EHTTP, "%s answered HTTP %ld", res->url, res->status);
		return up_status_retryable(res->status);
	}
	if (x->stream && (x->bad_json || (!x->sse && !x->json)))
		up_fail(res, UPSTREAM_EBADRESP,
			"%s answered a stream request with '%s' that is neither an event stream "
			"nor JSON",
			res->url, res->content_type);
	else if (x->stream && !x->saw_done && (res->clean_end = !jsonseq_pending(&x->jparser)))
		up_fail(res, UPSTREAM_ETRUNCATED, "the stream from %s ended without [DONE]", res->url);
	else if (x->stream && !x->saw_done)
		up_fail(res, UPSTREAM_ETRUNCATED, "the answer from %s ended inside a JSON text", res->url);
	return 0;
}

/* up_judge: classify the attempt into res. Returns 1 if another attempt may help. */
static int up_judge(struct up_xfer *x, CURLcode cc, int idle)
{
	struct upstream *u = x->u;
	struct upstream_result *res = x->res;

	if (!x->decided && x->rx_any)
		up_decide(x);
	if (x->nomem || x->sse_rc == SSE_ENOMEM) {
		up_fail(res, UPSTREAM_ENOMEM, "out of memory reading the answer of %s", res->url);
	} else if (x->too_big || x->sse_rc == SSE_ETOOBIG) {
		up_fail(res, UPSTREAM_ETOOBIG, "the answer of %s exceeds %zu bytes%s", res->url, u->max_bytes,
			x->sse_rc ? " in one event" : "");
	} else if (x->bad_json) {
		up_fail(res, UPSTREAM_EBADRESP, "the answer of %s to a stream request holds something after its JSON",
			res->url);
	} else if (idle == UP_STOP_GONE) {
		up_fail(res, UPSTREAM_ECLIENTGONE, "the client went away: the request to %s was stopped", res->url);
	} else if (x->sse_rc == UP_CB_ABORT) {
		up_fail(res, UPSTREAM_EABORTED, "the transfer from %s was stopped by its reader", res->url);
	} else if (x->saw_done && (idle || cc != CURLE_OK)) {
		/* all that matters came; the end of the body did not: the connection is closed, no harm */
	} else if (idle) {
		up_fail(res, UPSTREAM_ETIMEOUT,
			"no data from %s for %ld.%03ld s (MCPGW_UPSTREAM_TIMEOUT: raise it for a model that thinks longer "
			"before its first byte)",
			res->url, u->idle_timeout_ms / 1000, u->idle_timeout_ms % 1000);
	} else if (cc == CURLE_OK) {
		return up_finished(x);
	} else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY ||
		   cc == CURLE_SSL_CONNECT_ERROR || (cc == CURLE_OPERATION_TIMEDOUT && !x->connected)) {
		up_fail(res, UPSTREAM_ECONNECT,
			"could not connect to %s: %s (is the upstream running, and does OPENAI_BASE_URL, or EMBEDDING_BASE_URL for embeddings, name it?)",
			res->url, up_curl_text(x, cc));
		return 1;
	} else if (x->sse || x->json) {
		up_fail(res, UPSTREAM_ETRUNCATED,
			"the stream from %s broke before it ended (a finish_reason for every choice, or [DONE]): %s",
			res->url, up_curl_text(x, cc));
	} else {
		up_fail(res, UPSTREAM_EIO, "the connection to %s failed: %s", res->url, up_curl_text(x, cc));
		return !x->rx_any;
	}
	return 0;
}

/* up_xfer_init: x for the exchanges of u on easy (its error buffer errbuf), their URL in urls, what
 * their answers tell in told; the parsers are the caller's to set up (sse_init, jsonseq_init) */
static void up_xfer_init(struct up_xfer *x, struct upstream *u, CURL *easy, char *errbuf, struct up_urls *urls,
			 struct up_told *told)
{
	memset(x, 0, sizeof *x);
	x->u = u;
	x->easy = easy;
	x->errbuf = errbuf;
	x->urls = urls;
	x->told = told;
	x->retries = u->retries_now;
	x->ra_ms = x->ra_s_ms = -1;
}

/* up_attempt_begin: count and set up one more attempt of x (state reset, options set); 0, or -1 with
 * res->err UPSTREAM_ENOMEM when libcurl refused an option */
static int up_attempt_begin(struct up_xfer *x, const char *method, const char *body, size_t len)
{
	struct upstream_result *res = x->res;

	res->attempts++;
	res->err = UPSTREAM_OK;
	res->status = 0;
	res->message[0] = res->content_type[0] = '\0';
	buf_reset(&res->body);
	x->decided = x->sse = x->saw_done = x->rx_any = x->connected = 0;
	x->json = x->sniffed = x->bad_json = 0;
	res->clean_end = 0;
	x->too_big = x->nomem = x->sse_rc = 0;
	x->last_ul = 0;
	x->ra_ms = x->ra_s_ms = -1;
	x->rid_rank = 0;
	res->request_id[0] = '\0';
	x->last_activity = clock_now_ms();
	x->errbuf[0] = '\0';
	if (x->stream) {
		sse_reset(&x->parser);
		jsonseq_reset(&x->jparser);
	}
	if (up_prepare(x, method, body, len) < 0) {
		up_fail(res, UPSTREAM_ENOMEM, "could not set up the request to %s", res->url);
		return -1;
	}
	return 0;
}

/* up_attempt: one request on the handle's private multi; returns 1 if another attempt may help */
static int up_attempt(struct up_xfer *x, const char *method, const char *body, size_t len)
{
	int idle = 0;
	CURLcode cc;

	if (up_attempt_begin(x, method, body, len) < 0)
		return 0;
	cc = up_perform(x, &idle);
	return up_judge(x, cc, idle);
}

/* up_wait_ms: how long to wait before retry number attempt + 1 */
static long up_wait_ms(struct up_xfer *x, int attempt)
{
	struct upstream *u = x->u;
	long wait = x->ra_ms >= 0 ? x->ra_ms : x->ra_s_ms;
	uint32_t jitter;

	if (wait < 0) {
		wait = u->backoff_base_ms;
		for (int i = 0; i < attempt && wait < u->retry_max_wait_ms; i++)
			wait *= 2;
		if (wait > u->retry_max_wait_ms)
			wait = u->retry_max_wait_ms;
		/* minus 0..25 %, so clients that failed together do not retry together */
		if (randid_below(26, &jitter) == 0)
			wait -= wait * (long)jitter / 100;
		else
			log_warn("upstream: no jitter for the retry wait: getrandom: %s", strerror(errno));
	}
	return wait > u->retry_max_wait_ms ? u->retry_max_wait_ms : wait;
}

/* up_retry_wait: after attempt number attempt (0: the first) was judged, retry
 * saying whether another may help: the wait in ms before the next one, or
 * -1 when none is made (no retry left, events delivered, or the upstream asks
 * for a longer wait than we make: the client's to make) */
static long up_retry_wait(struct up_xfer *x, int retry, int attempt)
{
	struct upstream *u = x->u;
	struct upstream_result *res = x->res;
	long asked, wait;

	if (!retry || attempt >= x->retries || res->events > 0)
		return -1;
	/* a longer wait than we would make is the client's to make: it gets the answer with it */
	asked = x->ra_ms >= 0 ? x->ra_ms : x->ra_s_ms;
	if (asked > u->retry_max_wait_ms) {
		log_info("upstream: %s and asks to wait %ld ms, over MCPGW_UPSTREAM_RETRY_MAX_WAIT: not "
			 "retried, the client gets the wait",
			 res->message, asked);
		return -1;
	}
	wait = up_wait_ms(x, attempt);
	log_warn("upstream: %s; retry %d of %d in %ld ms", res->message, attempt + 1, x->retries, wait);
	return wait;
}

/* up_run_reset: a new run of attempts of x: the result's counters reset */
static void up_run_reset(struct up_xfer *x)
{
	struct upstream_result *res = x->res;

	res->attempts = 0;
	res->events = 0;
	res->cb_rc = 0;
	res->request_id[0] = '\0';
	res->retry_after_ms = -1;
	res->max_values = x->u->max_values;
}

/* up_run_begin: a new exchange of x into res: its counters reset, the URL of path (model: the body's, for
 * Azure's deployment paths) made; 0, or -1 with res->err set (too long, out of memory) */
static int up_run_begin(struct up_xfer *x, const char *path, const char *model)
{
	struct upstream_result *res = x->res;

	up_run_reset(x);
	if (up_url(x->u, x->urls, path, model, res) < 0) {
		up_fail(res, UPSTREAM_ENOMEM, "the URL %s is too long", res->url);
		return -1;
	}
	return 0;
}

/* up_run_end: the exchange of x (method, begun at monotonic ms t0) ended: what
 * its last answer told kept, secrets masked, a refusal of the key and the
 * outcome logged */
static void up_run_end(struct up_xfer *x, const char *method, int64_t t0)
{
	struct upstream *u = x->u;
	struct upstream_result *res = x->res;

	if (res->status < 200 || res->status >= 300) {
		res->retry_after_ms = x->ra_ms >= 0 ? x->ra_ms : x->ra_s_ms;
		x->told->ra_ms = x->ra_ms;
		x->told->ra_s_ms = x->ra_s_ms;
	} else {
		x->told->ra_ms = x->told->ra_s_ms = -1;
	}
	/* an answer that quotes the gateway's key (an upstream's or a proxy's
	 * "invalid key sk-..." on a 400, 404, 429 or 500, or anything else)
	 * reaches neither the client (up_passthrough, up_snippet) nor a log:
	 * issue 14, "Secrets stay where they are" (a stream's events: up_on_event) */
	if (res->body.data)
		res->body.len = redact_secret_inplace(res->body.data, res->body.len, u->api_key);
	if (res->err == UPSTREAM_EHTTP && (res->status == 401 || res->status == 403))
		up_log_refusal(u, res);
	log_debug("upstream: %s %s: HTTP %ld, %s, %d attempt(s), %lld ms, request id %s", method, res->url, res->status,
		  upstream_strerror(res->err), res->attempts, (long long)(clock_now_ms() - t0),
		  res->request_id[0] ? res->request_id : "(none)");
}

/* up_run: build the URL, then attempts with waits between them (blocking) */
static enum upstream_err up_run(struct up_xfer *x, const char *method, const char *path, const char *model,
				const char *body, size_t len)
{
	struct upstream_result *res = x->res;
	int64_t t0 = clock_now_ms();
	long wait;

	if (up_run_begin(x, path, model) < 0)
		return res->err;
	for (int attempt = 0;; attempt++) {
		wait = up_retry_wait(x, up_attempt(x, method, body, len), attempt);
		if (wait < 0)
			break;
		if (up_sleep(x->u, wait)) {
			up_fail(res, UPSTREAM_ECLIENTGONE, "the client went away: the request to %s was not retried",
				res->url);
			break;
		}
	}
	up_run_end(x, method, t0);
	return res->err;
}

/* up_body_model: the "model" of a JSON request body into out ("" when none or not JSON) */
static const char *up_body_model(const char *body, size_t len, char *out, size_t outn)
{
	json_t *v = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(v, "model"));

	snprintf(out, outn, "%s", m ? m : "");
	json_decref(v);
	return out;
}

/* up_model: the model an Azure deployment path of u needs from body into out
 * (UP_MODEL_MAX bytes), "" for other upstreams and paths */
static const char *up_model(const struct upstream *u, const char *path, const char *body, size_t len, char *out)
{
	out[0] = '\0';
	if (u->azure == UP_AZ_DEPLOY && up_deployment_path(path))
		up_body_model(body, len, out, UP_MODEL_MAX);
	return out;
}

enum upstream_err upstream_request(struct upstream *u, const char *method, const char *path, const char *body,
				   size_t len, struct upstream_result *res)
{
	struct up_xfer x;
	char model[UP_MODEL_MAX];

	up_xfer_init(&x, u, u->easy, u->errbuf, &u->urls, &u->told);
	x.res = res;
	return up_run(&x, method, path, up_model(u, path, body, len, model), body, len);
}

/* up_space: JSON whitespace */
static int up_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* up_ask_usage: a chat completion stream's body asking for
 * stream_options.include_usage (new string, free it), or NULL when it
 * already asks, the handle stopped asking, or the body is not a JSON object
 * (then sent as it came). */
static char *up_ask_usage(const struct upstream *u, const char *body, size_t len)
{
	static const char ask[] = "\"stream_options\":{\"include_usage\":true}";
	json_t *v, *so;
	char *out = NULL;
	size_t lead = 0;

	if (u->no_stream_options || !body)
		return NULL;
	while (lead < len && up_space(body[lead]))
		lead++;
	if (lead == len || body[lead] != '{')
		return NULL;
	/* the common case, without parsing: no key "stream_options" anywhere (inside a JSON string
	 * the quotes would be escaped), so the member goes first */
	if (!memmem(body, len, "\"stream_options\"", 16)) {
		size_t rest = len - lead - 1, n = lead + 1 + sizeof ask - 1, k = lead + 1;
		int empty;

		while (k < len && up_space(body[k]))
			k++;
		empty = k < len && body[k] == '}';

		if (!(out = malloc(n + 1 + rest + 1)))
			return NULL;
		memcpy(out, body, lead + 1);
		memcpy(out + lead + 1, ask, sizeof ask - 1);
		if (!empty)
			out[n++] = ',';
		memcpy(out + n, body + lead + 1, rest);
		out[n + rest] = '\0';
		return out;
	}
	v = json_loadb(body, len, 0, NULL);
	so = json_object_get(v, "stream_options");
	if (json_is_object(v) && !json_is_true(json_object_get(so, "include_usage")) &&
	    (so || json_object_set_new(v, "stream_options", json_object()) == 0) &&
	    (so = json_object_get(v, "stream_options")) && json_is_object(so) &&
	    json_object_set_new(so, "include_usage", json_true()) == 0)
		out = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return out;
}

/* up_rejects_stream_options: the answer is a 400 or 422 that names stream_options */
static int up_rejects_stream_options(const struct upstream_result *res)
{
	return res->err == UPSTREAM_EHTTP && (res->status == 400 || res->status == 422) && res->body.data &&
	       strstr(res->body.data, "stream_options");
}

/* up_usage_refused: the exchange of x, which asked for stream_options, ended
 * rejecting it (up_rejects_stream_options): u asks no more, and 1 (the
 * request goes again as it came); else 0 */
static int up_usage_refused(struct up_xfer *x)
{
	if (!up_rejects_stream_options(x->res))
		return 0;
	/* stream_options is OpenAI's (platform.openai.com/docs/api-reference/chat/create); some
	 * OpenAI-compatible APIs answer 400 "Unknown parameter: 'stream_options'" (seen behind
	 * one-api style relays, github.com/QuantumNous/new-api/issues/418) or 422 "extra inputs":
	 * the request goes again as the client sent it, and this handle stops asking */
	x->u->no_stream_options = 1;
	log_warn("upstream: %s rejects stream_options (HTTP %ld): asked again without it; usage of "
		 "streamed rounds is now only what the upstream sends unasked",
		 x->res->url, x->res->status);
	sse_reset(&x->parser);
	return 1;
}

/* up_usage_body: the body a stream to path sends first: a chat completion's asking for
 * stream_options.include_usage (new string, free it), else NULL (body as it came) */
static char *up_usage_body(const struct upstream *u, const char *path, const char *body, size_t len)
{
	return strcmp(path, "/chat/completions") == 0 ? up_ask_usage(u, body, len) : NULL;
}

enum upstream_err upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
				  upstream_event_cb on_event, void *ud, struct upstream_result *res)
{
	struct up_xfer x;
	enum upstream_err err;
	char model[UP_MODEL_MAX];
	char *usage_body = up_usage_body(u, path, body, len);

	up_xfer_init(&x, u, u->easy, u->errbuf, &u->urls, &u->told);
	x.res = res;
	x.stream = 1;
	x.cb = on_event;
	x.ud = ud;
	up_model(u, path, body, len, model);
	sse_init(&x.parser, u->max_bytes, up_on_event, &x);
	jsonseq_init(&x.jparser, u->max_bytes, up_on_json, &x);
	err = up_run(&x, "POST", path, model, usage_body ? usage_body : body, usage_body ? strlen(usage_body) : len);
	if (usage_body && up_usage_refused(&x))
		err = up_run(&x, "POST", path, model, body, len);
	sse_free(&x.parser);
	jsonseq_free(&x.jparser);
	free(usage_body);
	return err;
}

/* up_fits: res->body holds at most res->max_values JSON values (its depth is jansson's to bound) */
static int up_fits(const struct upstream_result *res)
{
	size_t max = res->max_values ? res->max_values : UPSTREAM_DEFAULT_MAX_VALUES;

	return wire_json_scan(res->body.data ? res->body.data : "", res->body.len, INT_MAX, max) == WIRE_JSON_FITS;
}

json_t *upstream_result_json(struct upstream_result *res)
{
	json_error_t je;
	json_t *v;

	if (!up_fits(res)) {
		up_fail(res, UPSTREAM_ETOOBIG,
			"the answer of %s holds more than %zu JSON values (MCPGW_MAX_UPSTREAM_JSON_VALUES)", res->url,
			res->max_values ? res->max_values : (size_t)UPSTREAM_DEFAULT_MAX_VALUES);
		return NULL;
	}
	v = json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, &je);
	if (!v && json_error_code(&je) == json_error_out_of_memory) /* not the upstream's fault */
		up_fail(res, UPSTREAM_ENOMEM, "out of memory reading the answer of %s", res->url);
	else if (!v)
		up_fail(res, UPSTREAM_EBADRESP, "%s answered with a body that is not JSON (%s at byte %d)", res->url,
			je.text, je.position);
	return v;
}

/* ---- results as OpenAI errors (openai/wire.h builds them) ---- */

/* up_snippet: the start of a body as printable ASCII for a message */
static const char *up_snippet(const buf_t *b, char *out, size_t outn)
{
	size_t i, n = b->len < outn - 1 ? b->len : outn - 1;

	for (i = 0; i < n; i++)
		out[i] = b->data[i] >= 0x20 && b->data[i] < 0x7f ? b->data[i] : ' ';
	out[i] = '\0';
	return out;
}

/* up_passthrough: the upstream's own error from an EHTTP body, in whatever
 * shape the provider writes it (wire_error_from), as an OpenAI error
 * object; NULL if the body holds none */
static json_t *up_passthrough(const struct upstream_result *res, int *nomem)
{
	json_error_t je;
	int fits = up_fits(res);
	json_t *body = fits ? json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, &je) : NULL;
	json_t *out = body ? wire_error_from(body, (int)res->status) : NULL;

	/* out of memory: not "a body that is not an OpenAI error" */
	*nomem = body ? !out && errno == ENOMEM : fits && json_error_code(&je) == json_error_out_of_memory;
	json_decref(body);
	return out;
}

/* up_names_model: an error object ({"error": {...}}, wire_error_from's) about the model asked for:
 * OpenAI's model_not_found, Azure's DeploymentNotFound, or a message naming the model or the
 * deployment (Ollama: "model \"x\" not found, try pulling it first"; vLLM: "The model `x` does not
 * exist."): a 404 the client can fix, unlike one for the URL */
static int up_names_model(const json_t *out)
{
	const json_t *e = json_object_get(out, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (code && (!strcmp(code, "model_not_found") || !strcmp(code, "DeploymentNotFound")))
		return 1;
	return msg && (strcasestr(msg, "model") || strcasestr(msg, "deployment"));
}

/* up_http_error: EHTTP: the upstream's error passed through, else ours. A 404 that is not about
 * the model (OpenAI's "Invalid URL (POST /chat/completions)", Azure's "Resource not found", a
 * server's page) says the gateway's upstream URL is wrong, not the client's: 502
 * upstream_not_found with the hint of res->message and what the upstream said, not a 404 the
 * client would take for its own URL's */

static json_t *up_http_error(const struct upstream_result *res, int *http_status)
{
	char snip[UP_SNIPPET_MAX + 1];
	buf_t msg = BUF_INIT;
	json_t *out;
	int nomem;

	/* the upstream refused the gateway's own key: its text describes that key
	 * ("Incorrect API key provided: sk-...") and is none of the client's
	 * business; the log has it (up_log_refusal). Issue 14, "Secrets stay where
	 * they are"; OWASP ASVS 4.0 V7.4.1: a generic message to the user. */
	if (res->status == 401 || res->status == 403)
		return wire_error("The gateway's upstream credentials were refused", "server_error", NULL,
				  "upstream_auth_failed");
	out = up_passthrough(res, &nomem);
	if (nomem)
		return NULL;
	if (res->status == 404 && !(out && up_names_model(out))) {
		const char *said = json_string_value(json_object_get(json_object_get(out, "error"), "message"));

		if (buf_printf(&msg, "%s; it said: %s", res->message,
			       said            ? said
			       : res->body.len ? up_snippet(&res->body, snip, sizeof snip)
					       : "nothing") == 0) {
			json_decref(out);
			out = wire_error(msg.data, "server_error", NULL, "upstream_not_found");
		}
		buf_free(&msg);
		return out;
	}
	if (out) {
		*http_status = res->status >= 400 && res->status <= 599 ? (int)res->status : 502;
		return out;
	}
	if (buf_printf(&msg, "%s with a body that is not an OpenAI error (%s): %s", res->message,
		       res->content_type[0] ? res->content_type : "no content type",
		       up_snippet(&res->body, snip, sizeof snip)) == 0)
		out = wire_error(msg.data, "server_error", NULL, "upstream_bad_response");
	buf_free(&msg);
	return out;
}

json_t *upstream_error_json(const struct upstream_result *res, int *http_status)
{
	const char *code = NULL;

	*http_status = 502;
	switch (res->err) {
	case UPSTREAM_OK: return NULL;
	case UPSTREAM_EHTTP: return up_http_error(res, http_status);
	case UPSTREAM_ECONNECT: code = "upstream_unreachable"; break;
	case UPSTREAM_ETIMEOUT:
		*http_status = 504;
		code = "upstream_timeout";
		break;
	case UPSTREAM_EBADRESP: code = "upstream_bad_response"; break;
	case UPSTREAM_ETRUNCATED: code = "upstream_truncated"; break;
	case UPSTREAM_ETOOBIG: code = "upstream_response_too_large"; break;
	case UPSTREAM_EIO: code = "upstream_connection_error"; break;
	case UPSTREAM_EABORTED:
		*http_status = 500;
		code = "upstream_aborted";
		break;
	case UPSTREAM_ENOMEM:
		*http_status = 500;
		code = "internal_error";
		break;
	case UPSTREAM_ECLIENTGONE: /* nobody reads it: the access log's status (nginx's "client closed request") */
		*http_status = 499;
		code = "client_closed_request";
		break;
	}
	return wire_error(res->message[0] ? res->message : upstream_strerror(res->err), "server_error", NULL, code);
}

/* ---- asynchronous exchanges on the caller's multi handle (upstream.h) ---- */

struct upstream_call {
	struct upstream *u; /* the configuration, shared by its calls */
	CURL *easy;         /* the call's own, kept across exchanges (its connection) */
	CURLM *multi;       /* the caller's, of the exchange in progress (NULL: none yet) */
	enum upstream_call_state state;
	char errbuf[CURL_ERROR_SIZE];
	struct up_urls urls;
	struct up_told told;       /* what the answers told since upstream_call_begin */
	int retries_now;           /* further attempts an exchange may make (upstream_call_begin) */
	struct up_xfer x;          /* the attempt in progress; its parsers live as long as the call */
	const char *method, *body; /* the caller's, borrowed until the exchange ends */
	size_t len;
	char *usage_body; /* the stream's body asking for stream_options.include_usage (owned), NULL: none */
	int asking;       /* the attempts send usage_body */
	int paused;       /* the loop paused the transfer's reading (upstream_call_pause): no idle timer */
	int attempt;      /* of this run of attempts, 0: the first */
	int64_t t0;       /* monotonic ms the run began (the log's duration) */
	int64_t retry_at; /* monotonic ms of the next attempt (UPSTREAM_CALL_WAITING) */
};

void upstream_call_closesocket(struct upstream *u, curl_closesocket_callback fn, void *data)
{
	u->call_close = fn;
	u->call_close_data = data;
}

struct upstream_call *upstream_call_new(struct upstream *u)
{
	struct upstream_call *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->u = u;
	c->retries_now = u->retries;
	up_told_reset(&c->told);
	if (!(c->easy = curl_easy_init()) || up_setup(u, c->easy, c->errbuf) < 0 ||
	    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c) != CURLE_OK ||
	    (u->call_close && (curl_easy_setopt(c->easy, CURLOPT_CLOSESOCKETFUNCTION, u->call_close) != CURLE_OK ||
			       curl_easy_setopt(c->easy, CURLOPT_CLOSESOCKETDATA, u->call_close_data) != CURLE_OK))) {
		if (c->easy)
			curl_easy_cleanup(c->easy);
		free(c);
		return NULL;
	}
	up_xfer_init(&c->x, u, c->easy, c->errbuf, &c->urls, &c->told);
	sse_init(&c->x.parser, u->max_bytes, up_on_event, &c->x);
	jsonseq_init(&c->x.jparser, u->max_bytes, up_on_json, &c->x);
	return c;
}

/* upc_remove: the easy handle out of the multi; 0, or -1 when libcurl refused */
static int upc_remove(struct upstream_call *c)
{
	return curl_multi_remove_handle(c->multi, c->easy) == CURLM_OK ? 0 : -1;
}

void upstream_call_free(struct upstream_call *c)
{
	if (!c)
		return;
	if (c->state == UPSTREAM_CALL_RUNNING)
		(void)upc_remove(c); /* freed whatever libcurl says */
	curl_easy_cleanup(c->easy);
	sse_free(&c->x.parser);
	jsonseq_free(&c->x.jparser);
	up_urls_free(&c->urls);
	free(c->usage_body);
	free(c);
}

/* UPC_KEEP_PARSER: the parser bytes a call kept for a later client keeps (a larger event's buffers freed) */
#define UPC_KEEP_PARSER (16 * 1024)

int upstream_call_trim(struct upstream_call *c)
{
	struct sse_parser *p = &c->x.parser;

	if (c->state != UPSTREAM_CALL_DONE)
		return -1;
	if (p->line.cap + p->data.cap + p->event.cap + p->id.cap > UPC_KEEP_PARSER) {
		sse_free(p);
		sse_init(p, c->u->max_bytes, up_on_event, &c->x);
	}
	if (c->x.jparser.buf.cap > UPC_KEEP_PARSER) {
		jsonseq_free(&c->x.jparser);
		jsonseq_init(&c->x.jparser, c->u->max_bytes, up_on_json, &c->x);
	}
	free(c->usage_body);
	c->usage_body = NULL;
	c->asking = 0;
	c->x.res = NULL;
	c->x.cb = NULL;
	c->x.ud = NULL;
	c->method = c->body = NULL;
	c->len = 0;
	return 0;
}

void upstream_call_begin(struct upstream_call *c, const char *client_retry)
{
	long n;

	up_told_reset(&c->told);
	c->retries_now = client_retry && settings_parse_long(client_retry, 1, 1000000, &n) == 0 ? 0 : c->u->retries;
}

int upstream_call_client_headers(const struct upstream_call *c, int status, buf_t *out)
{
	return up_told_headers(&c->told, status, out);
}

CURL *upstream_call_easy(const struct upstream_call *c)
{
	return c->easy;
}

enum upstream_call_state upstream_call_state(const struct upstream_call *c)
{
	return c->state;
}

int64_t upstream_call_due(const struct upstream_call *c)
{
	switch (c->state) {
	case UPSTREAM_CALL_RUNNING:
		if (c->paused)
			return INT64_MAX;
		/* not connected yet: libcurl's connect timeout rules; a look again in a while, as up_perform's wait */
		return c->x.connected ? c->x.last_activity + up_idle_limit(&c->x) : clock_now_ms() + UP_POLL_MAX_MS;
	case UPSTREAM_CALL_WAITING: return c->retry_at;
	case UPSTREAM_CALL_DONE: break;
	}
	return INT64_MAX;
}

static enum upstream_call_state upc_attempt(struct upstream_call *c);

/* upc_end: the exchange ended (up_run's end; the stream_options fallback goes again) */
static enum upstream_call_state upc_end(struct upstream_call *c)
{
	up_run_end(&c->x, c->method, c->t0);
	c->state = UPSTREAM_CALL_DONE;
	if (c->asking && up_usage_refused(&c->x)) {
		c->asking = 0;
		c->attempt = 0;
		c->t0 = clock_now_ms();
		up_run_reset(&c->x); /* the URL is the one made at start: up_run_begin would make the same again */
		return upc_attempt(c);
	}
	return c->state;
}

/* upc_judged: the attempt was judged (retry: another may help): wait for the next one, or end */
static enum upstream_call_state upc_judged(struct upstream_call *c, int retry)
{
	long wait = up_retry_wait(&c->x, retry, c->attempt);

	if (wait < 0)
		return upc_end(c);
	c->attempt++;
	c->retry_at = clock_now_ms() + wait;
	c->state = UPSTREAM_CALL_WAITING;
	return c->state;
}

/* upc_attempt: the next attempt into the multi */
static enum upstream_call_state upc_attempt(struct upstream_call *c)
{
	const char *body = c->asking ? c->usage_body : c->body;
	size_t len = c->asking ? strlen(c->usage_body) : c->len;

	c->paused = 0; /* a new transfer reads */
	if (up_attempt_begin(&c->x, c->method, body, len) < 0)
		return upc_end(c);
	if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
		return upc_judged(c, up_judge(&c->x, CURLE_FAILED_INIT, 0)); /* as up_perform's */
	c->state = UPSTREAM_CALL_RUNNING;
	return c->state;
}

/* upc_due: *due (may be NULL) set, st returned */
static enum upstream_call_state upc_due(const struct upstream_call *c, enum upstream_call_state st, int64_t *due)
{
	if (due)
		*due = upstream_call_due(c);
	return st;
}

enum upstream_call_state upstream_call_start(struct upstream_call *c, CURLM *multi, const char *method, const char *path,
					     const char *body, size_t len, int stream, upstream_event_cb on_event,
					     void *ud, struct upstream_result *res, int64_t *due)
{
	char model[UP_MODEL_MAX];

	if (c->state != UPSTREAM_CALL_DONE)
		upstream_call_cancel(c);
	free(c->usage_body);
	c->usage_body = stream ? up_usage_body(c->u, path, body, len) : NULL;
	c->asking = c->usage_body != NULL;
	c->multi = multi;
	c->method = method;
	c->body = body;
	c->len = len;
	c->attempt = 0;
	c->t0 = clock_now_ms();
	c->x.res = res;
	c->x.stream = stream;
	c->x.cb = on_event;
	c->x.ud = ud;
	c->x.retries = c->retries_now;
	if (up_run_begin(&c->x, path, up_model(c->u, path, body, len, model)) < 0)
		return upc_due(c, c->state, due);
	return upc_due(c, upc_attempt(c), due);
}

enum upstream_call_state upstream_call_done(struct upstream_call *c, CURLcode cc, int64_t *due)
{
	if (c->state != UPSTREAM_CALL_RUNNING)
		return upc_due(c, c->state, due);
	if (upc_remove(c) < 0 && cc == CURLE_OK)
		cc = CURLE_FAILED_INIT;
	c->state = UPSTREAM_CALL_DONE;
	return upc_due(c, upc_judged(c, up_judge(&c->x, cc, 0)), due);
}

enum upstream_call_state upstream_call_timer(struct upstream_call *c, int64_t now, int64_t *due)
{
	if (c->state == UPSTREAM_CALL_RUNNING && !c->paused && c->x.connected &&
	    now - c->x.last_activity >= up_idle_limit(&c->x)) {
		(void)upc_remove(c);
		c->state = UPSTREAM_CALL_DONE;
		return upc_due(c, upc_judged(c, up_judge(&c->x, CURLE_OK, 1)), due);
	}
	if (c->state == UPSTREAM_CALL_WAITING && now >= c->retry_at)
		return upc_due(c, upc_attempt(c), due);
	return upc_due(c, c->state, due);
}

void upstream_call_cancel(struct upstream_call *c)
{
	if (c->state == UPSTREAM_CALL_RUNNING) {
		(void)upc_remove(c);
		c->state = UPSTREAM_CALL_DONE;
		(void)up_judge(&c->x, CURLE_OK, UP_STOP_GONE);
	} else if (c->state == UPSTREAM_CALL_WAITING) {
		c->state = UPSTREAM_CALL_DONE;
		up_fail(c->x.res, UPSTREAM_ECLIENTGONE, "the client went away: the request to %s was not retried",
			c->x.res->url);
	} else {
		return;
	}
	c->asking = 0; /* nothing goes again */
	(void)upc_end(c);
}

int upstream_call_pause(struct upstream_call *c, int pause)
{
	if (c->state != UPSTREAM_CALL_RUNNING || !pause == !c->paused)
		return 0;
	if (curl_easy_pause(c->easy, pause ? CURLPAUSE_RECV : CURLPAUSE_CONT) != CURLE_OK)
		return -1;
	c->paused = pause != 0;
	if (!c->paused) /* the idle time counts from here */
		c->x.last_activity = clock_now_ms();
	return 0;
}
