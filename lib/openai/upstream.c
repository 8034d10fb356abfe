/* upstream.c: requests and SSE streams to the OpenAI-compatible upstream over one reused libcurl handle. */
#include "openai/upstream.h"
#include "core/clock.h"

#include "mcp/jsonrpc.h"
#include "core/log.h"
#include "core/jsonseq.h"
#include "core/randid.h"
#include "core/sse.h"
#include "openai/wire.h"

#include <curl/curl.h>
#include <errno.h>
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
#define UP_CB_ABORT 1                      /* SSE callback return: the user callback aborted */

struct upstream {
	CURL *easy;   /* reused for every request: it keeps the connection */
	CURLM *multi; /* private: runs the easy handle with a ms-precise idle timer */
	struct curl_slist *hdr_json;
	struct curl_slist *hdr_sse;
	char base_url[UP_BASE_MAX];
	char errbuf[CURL_ERROR_SIZE];
	long connect_timeout_ms, idle_timeout_ms, retry_max_wait_ms, backoff_base_ms;
	int retries;
	size_t max_bytes;
};

/* one attempt, shared with the libcurl callbacks */
struct up_xfer {
	struct upstream *u;
	struct upstream_result *res;
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
	long ra_ms, ra_s_ms;        /* retry-after-ms, Retry-After (in ms); -1 if absent */
	char url[UPSTREAM_URL_MAX]; /* the URL requested, credentials and all (res->url has none) */
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
	}
	return "unknown error";
}

void upstream_result_init(struct upstream_result *res)
{
	static const struct upstream_result init = UPSTREAM_RESULT_INIT;

	*res = init;
}

void upstream_result_free(struct upstream_result *res)
{
	buf_free(&res->body);
}

const char *upstream_base_url(const struct upstream *u)
{
	return u->base_url;
}

/* ur_secret: a query parameter name (n bytes) that looks like it holds a credential */
static int ur_secret(const char *name, size_t n)
{
	static const char *const words[] = { "key", "token", "secret", "password", "sig", "auth" };

	for (size_t w = 0; w < sizeof words / sizeof *words; w++)
		for (size_t i = 0; i + strlen(words[w]) <= n; i++)
			if (strncasecmp(name + i, words[w], strlen(words[w])) == 0)
				return 1;
	return 0;
}

void upstream_url_redact(const char *base, const char *path, char *out, size_t n)
{
	buf_t b = BUF_INIT;
	const char *url, *host, *at, *slash, *q;

	if (n == 0)
		return;
	out[0] = '\0';
	if (buf_printf(&b, "%s%s", base ? base : "", path ? path : "") < 0) {
		snprintf(out, n, "(the upstream)");
		return;
	}
	url = b.data;
	host = strstr(url, "://");
	host = host ? host + 3 : url;
	slash = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(slash - host));
	/* scheme://, then the host without user:password@, the path */
	q = strchr(slash, '?');
	snprintf(out, n, "%.*s%.*s", (int)(host - url), url,
		 (int)((q ? q : slash + strlen(slash)) - (at ? at + 1 : host)), at ? at + 1 : host);
	for (const char *p = q; p && *p;) { /* the query, credential values replaced */
		size_t len = strcspn(p + 1, "&#"), name = strcspn(p + 1, "=&#"), have = strlen(out);

		if (have + 1 < n)
			snprintf(out + have, n - have, "%c%.*s", *p,
				 (int)(name < len && ur_secret(p + 1, name) ? name + 1 : len), p + 1);
		have = strlen(out);
		if (name < len && ur_secret(p + 1, name) && have + 1 < n)
			snprintf(out + have, n - have, "***");
		p += 1 + len;
		if (*p == '#')
			break;
	}
	buf_free(&b);
}

/* ---- libcurl callbacks ---- */

/* up_header_value: if the header line [p, p+n) is "name: value", copy the
 * trimmed value (cut to outn - 1 bytes) and return 1; else 0. */
static int up_header_value(const char *p, size_t n, const char *name, char *out, size_t outn)
{
	size_t nl = strlen(name), len;

	if (n <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
		return 0;
	p += nl + 1;
	n -= nl + 1;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	len = n < outn - 1 ? n : outn - 1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 1;
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

static size_t up_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct up_xfer *x = ud;
	char v[UP_HEADER_MAX];
	size_t len = size * n;
	long ms;

	x->rx_any = 1;
	x->last_activity = clock_now_ms();
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 1xx, too) */
		x->ra_ms = x->ra_s_ms = -1;
		x->res->content_type[0] = '\0';
	} else if (up_header_value(p, len, "content-type", v, sizeof v)) {
		v[sizeof x->res->content_type - 1] = '\0'; /* cut to fit */
		memcpy(x->res->content_type, v, strlen(v) + 1);
	} else if (up_header_value(p, len, "retry-after-ms", v, sizeof v)) {
		/* "150" or "150.5" ms: parsed as seconds, that is in thousandths of a ms */
		if (settings_parse_seconds(v, 0, 86400000L * 1000, &ms) == 0)
			x->ra_ms = ms / 1000;
	} else if (up_header_value(p, len, "retry-after", v, sizeof v)) {
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

	if (curl_easy_getinfo(x->u->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
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

/* SSE events of the answer: skip empty ones, note [DONE], hand the data on */
static int up_on_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct up_xfer *x = ud;
	int rc;

	(void)event;
	(void)id;
	if (len == 0)
		return 0;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		x->saw_done = 1;
	x->res->events++;
	rc = x->cb(data, len, x->ud);
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

/* up_headers: the JSON and the SSE header lists; 0 or -1 */
static int up_headers(struct upstream *u, const char *api_key)
{
	char auth[1200];
	const char *a = NULL;

	if (api_key && *api_key) {
		if ((size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key) >= sizeof auth)
			return -1;
		a = auth;
	}
	u->hdr_json = up_list("Accept: application/json", a);
	u->hdr_sse = up_list("Accept: text/event-stream", a);
	return u->hdr_json && u->hdr_sse ? 0 : -1;
}

/* up_setup: the options that stay the same for every request */
static int up_setup(struct upstream *u)
{
	CURL *e = u->easy;

	if (curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf) != CURLE_OK ||
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
	size_t n = o->base_url ? strlen(o->base_url) : 0;

	if (!u)
		return NULL;
	while (n > 0 && o->base_url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof u->base_url)
		goto err;
	memcpy(u->base_url, o->base_url, n);
	u->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	u->idle_timeout_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 300000;
	u->retries = o->retries < 0 ? 0 : o->retries;
	u->retry_max_wait_ms = o->retry_max_wait_ms < 0 ? 0 : o->retry_max_wait_ms;
	u->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : UP_DEFAULT_BACKOFF;
	u->max_bytes = o->max_response_bytes ? o->max_response_bytes : UP_DEFAULT_MAX;
	if (!(u->easy = curl_easy_init()) || !(u->multi = curl_multi_init()) || up_headers(u, o->api_key) < 0 ||
	    up_setup(u) < 0)
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
	free(u);
}

/* ---- one attempt ---- */

/* up_prepare: the options of this request; 0 or -1 */
static int up_prepare(struct upstream *u, struct up_xfer *x, const char *method, const char *body, size_t len)
{
	CURL *e = u->easy;
	int post = strcmp(method, "GET") != 0 && (strcmp(method, "POST") == 0 || (body && len));

	if (curl_easy_setopt(e, CURLOPT_URL, x->url) != CURLE_OK || curl_easy_setopt(e, CURLOPT_NOBODY, 0L) != CURLE_OK ||
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

/* up_perform: run the easy handle on the private multi handle, checking the
 * idle timer between waits. The libcurl result; *idle set when we stopped it. */
static CURLcode up_perform(struct up_xfer *x, int *idle)
{
	CURLM *m = x->u->multi;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running = 1, left;

	if (curl_multi_add_handle(m, x->u->easy) != CURLM_OK)
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
			limit = x->saw_done && x->u->idle_timeout_ms > UP_DONE_GRACE_MS ? UP_DONE_GRACE_MS
											: x->u->idle_timeout_ms;
			quiet = clock_now_ms() - x->last_activity;
			if (quiet >= limit) {
				*idle = 1;
				break;
			}
			wait = limit - quiet < wait ? limit - quiet : wait;
		}
		if (curl_multi_poll(m, NULL, 0, (int)wait, NULL) != CURLM_OK) {
			cc = CURLE_FAILED_INIT;
			break;
		}
	}
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE)
			cc = msg->data.result;
	if (curl_multi_remove_handle(m, x->u->easy) != CURLM_OK && cc == CURLE_OK)
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

/* up_curl_text: libcurl's detailed message, else its generic one */
static const char *up_curl_text(struct upstream *u, CURLcode cc)
{
	return u->errbuf[0] ? u->errbuf : curl_easy_strerror(cc);
}

/* up_finished: a transfer that libcurl completed (cc == CURLE_OK): judge the
 * answer. Returns 1 if another attempt may help. */
static int up_finished(struct up_xfer *x)
{
	struct upstream_result *res = x->res;

	if (res->status < 200 || res->status >= 300) {
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
	} else if (x->sse_rc == UP_CB_ABORT) {
		up_fail(res, UPSTREAM_EABORTED, "the transfer from %s was stopped by its reader", res->url);
	} else if (x->saw_done && (idle || cc != CURLE_OK)) {
		/* all that matters came; the end of the body did not: the connection is closed, no harm */
	} else if (idle) {
		up_fail(res, UPSTREAM_ETIMEOUT, "no data from %s for %ld.%03ld s", res->url, u->idle_timeout_ms / 1000,
			u->idle_timeout_ms % 1000);
	} else if (cc == CURLE_OK) {
		return up_finished(x);
	} else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY ||
		   cc == CURLE_SSL_CONNECT_ERROR || (cc == CURLE_OPERATION_TIMEDOUT && !x->connected)) {
		up_fail(res, UPSTREAM_ECONNECT, "could not connect to %s: %s", res->url, up_curl_text(u, cc));
		return 1;
	} else if (x->sse || x->json) {
		up_fail(res, UPSTREAM_ETRUNCATED, "the stream from %s broke before [DONE]: %s", res->url,
			up_curl_text(u, cc));
	} else {
		up_fail(res, UPSTREAM_EIO, "the connection to %s failed: %s", res->url, up_curl_text(u, cc));
		return !x->rx_any;
	}
	return 0;
}

/* up_attempt: one request; returns 1 if another attempt may help */
static int up_attempt(struct up_xfer *x, const char *method, const char *body, size_t len)
{
	struct upstream_result *res = x->res;
	int idle = 0;
	CURLcode cc;

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
	x->last_activity = clock_now_ms();
	x->u->errbuf[0] = '\0';
	if (x->stream) {
		sse_reset(&x->parser);
		jsonseq_reset(&x->jparser);
	}
	if (up_prepare(x->u, x, method, body, len) < 0) {
		up_fail(res, UPSTREAM_ENOMEM, "could not set up the request to %s", res->url);
		return 0;
	}
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

/* up_run: build the URL, then attempts with waits between them */
static enum upstream_err up_run(struct up_xfer *x, const char *method, const char *path, const char *body, size_t len)
{
	struct upstream_result *res = x->res;
	int64_t t0 = clock_now_ms();
	int retry;

	res->attempts = 0;
	res->events = 0;
	res->cb_rc = 0;
	/* libcurl gets the URL as configured; messages and logs get it without credentials */
	upstream_url_redact(x->u->base_url, path, res->url, sizeof res->url);
	if ((size_t)snprintf(x->url, sizeof x->url, "%s%s", x->u->base_url, path) >= sizeof x->url) {
		up_fail(res, UPSTREAM_ENOMEM, "the URL %.200s... is too long", res->url);
		return res->err;
	}
	for (int attempt = 0;; attempt++) {
		res->attempts++;
		retry = up_attempt(x, method, body, len);
		if (!retry || attempt >= x->u->retries || res->events > 0)
			break;
		long wait = up_wait_ms(x, attempt);

		log_warn("upstream: %s; retry %d of %d in %ld ms", res->message, attempt + 1, x->u->retries, wait);
		clock_sleep_ms(wait);
	}
	log_debug("upstream: %s %s: HTTP %ld, %s, %d attempt(s), %lld ms", method, res->url, res->status,
		  upstream_strerror(res->err), res->attempts, (long long)(clock_now_ms() - t0));
	return res->err;
}

enum upstream_err upstream_request(struct upstream *u, const char *method, const char *path, const char *body,
				   size_t len, struct upstream_result *res)
{
	struct up_xfer x;

	memset(&x, 0, sizeof x);
	x.u = u;
	x.res = res;
	return up_run(&x, method, path, body, len);
}

enum upstream_err upstream_stream(struct upstream *u, const char *path, const char *body, size_t len,
				  upstream_event_cb on_event, void *ud, struct upstream_result *res)
{
	struct up_xfer x;
	enum upstream_err err;

	memset(&x, 0, sizeof x);
	x.u = u;
	x.res = res;
	x.stream = 1;
	x.cb = on_event;
	x.ud = ud;
	sse_init(&x.parser, u->max_bytes, up_on_event, &x);
	jsonseq_init(&x.jparser, u->max_bytes, up_on_json, &x);
	err = up_run(&x, "POST", path, body, len);
	sse_free(&x.parser);
	jsonseq_free(&x.jparser);
	return err;
}

json_t *upstream_result_json(struct upstream_result *res)
{
	json_error_t je;
	json_t *v = json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, &je);

	if (!v)
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
static json_t *up_passthrough(const struct upstream_result *res)
{
	json_t *body = json_loadb(res->body.data ? res->body.data : "", res->body.len, 0, NULL);
	json_t *out = body ? wire_error_from(body, (int)res->status) : NULL;

	json_decref(body);
	return out;
}

/* up_http_error: EHTTP: the upstream's error passed through, else ours */
static json_t *up_http_error(const struct upstream_result *res, int *http_status)
{
	char snip[UP_SNIPPET_MAX + 1];
	buf_t msg = BUF_INIT;
	json_t *out = up_passthrough(res);

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
	}
	return wire_error(res->message[0] ? res->message : upstream_strerror(res->err), "server_error", NULL, code);
}
