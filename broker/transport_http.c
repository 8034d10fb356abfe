/* transport_http.c: MCP over HTTP: Streamable HTTP (POST per message, JSON or SSE answers, session ids, the
 * optional GET stream, resumption with Last-Event-ID) and legacy HTTP+SSE, on one libcurl multi in the loop. */
#include "transport_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/sse.h"
#include "core/version.h"
#include "mcp/jsonrpc.h"

#define RT_DEFAULT_RETRY_MS 1000   /* SSE reconnect delay when the server named none */
#define RT_GET_ERROR_RETRY_MS 2000 /* GET stream failed at the transport level */
#define RT_DELETE_TIMEOUT_MS 2000

enum xkind { XK_POST, XK_GET, XK_LEGACY_GET, XK_DELETE };
enum mode { MODE_HTTP, MODE_SSE };

struct http_t;

struct xfer {
	CURL *easy;
	struct httphub *hub;
	struct http_t *t; /* NULL once detached (connection closed) */
	enum xkind kind;
	struct curl_slist *hdrs;
	char *body;
	long long req_id; /* JSON-RPC id of the request carried, -1 none */
	int is_init;      /* carries initialize (auto mode falls back to SSE on 4xx) */
	long status;
	int is_sse, added, dead;
	struct sse_parser sse;
	buf_t resp;
	char last_id[256];
	long retry_ms;
	struct xfer *next;
};

struct httphub {
	struct evloop *loop;
	const struct settings *set;
	CURLM *multi;
	struct xfer *xfers; /* every transfer, live or waiting to be removed */
	int64_t curl_deadline;
	long timer;
};

struct http_t {
	struct transport base;
	struct httphub *hub;
	enum mode mode;
	int auto_mode; /* config said neither: HTTP first, SSE on 4xx */
	char session[256];
	char endpoint[2048]; /* legacy: where messages are POSTed */
	char shown[2048];    /* cfg->url as messages and the log show it (redact_url) */
	char refused[700];   /* legacy: why we dropped the stream ourselves, "" none */
	char last_event_id[256];
	char proto[32]; /* negotiated protocol version (a header on every POST) */
	int64_t get_at; /* (re)open the GET stream then; 0 = not planned */
	int get_open, get_disabled, established;
	int opened; /* opened at least once (before that an auto one is still "auto") */
	long timer;
};

static void hub_reap(struct httphub *h);

static void on_socket(void *ctx, int fd, int events)
{
	struct httphub *h = ctx;
	int running, mask = 0;

	if (events & EVLOOP_READ)
		mask |= CURL_CSELECT_IN;
	if (events & EVLOOP_WRITE)
		mask |= CURL_CSELECT_OUT;
	if (events & EVLOOP_ERROR)
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, mask, &running);
	hub_reap(h);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *up, void *sp)
{
	struct httphub *h = up;

	(void)e, (void)sp;
	if (what == CURL_POLL_REMOVE) {
		evloop_unwatch(h->loop, fd);
		return 0;
	}
	return evloop_watch(h->loop, fd,
			    (what & CURL_POLL_IN ? EVLOOP_READ : 0) | (what & CURL_POLL_OUT ? EVLOOP_WRITE : 0),
			    on_socket, h) < 0
		       ? -1
		       : 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *up)
{
	struct httphub *h = up;

	(void)m;
	h->curl_deadline = timeout_ms < 0 ? EVLOOP_NEVER : evloop_now(h->loop) + timeout_ms;
	return 0;
}

static int64_t hub_due(void *ctx)
{
	const struct httphub *h = ctx;

	for (const struct xfer *x = h->xfers; x; x = x->next)
		if (x->dead || !x->added)
			return 0; /* work for the next pass right away */
	return h->curl_deadline;
}

static void hub_fire(void *ctx, int64_t now)
{
	struct httphub *h = ctx;
	int running;

	hub_reap(h);
	if (now >= h->curl_deadline) {
		h->curl_deadline = EVLOOP_NEVER;
		curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	hub_reap(h);
}

struct httphub *httphub_new(struct evloop *l, const struct settings *set)
{
	struct httphub *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->loop = l;
	h->set = set;
	h->curl_deadline = EVLOOP_NEVER;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(h);
		return NULL;
	}
	if (!(h->multi = curl_multi_init()) || (h->timer = evloop_timer_add(l, hub_due, hub_fire, h)) < 0) {
		if (h->multi)
			curl_multi_cleanup(h->multi);
		curl_global_cleanup();
		free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

static void xfer_free(struct xfer *x)
{
	if (x->added)
		curl_multi_remove_handle(x->hub->multi, x->easy);
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->body);
	sse_free(&x->sse);
	buf_free(&x->resp);
	free(x);
}

void httphub_free(struct httphub *h)
{
	if (!h)
		return;
	while (h->xfers) {
		struct xfer *x = h->xfers;

		h->xfers = x->next;
		xfer_free(x);
	}
	curl_multi_cleanup(h->multi);
	evloop_timer_del(h->loop, h->timer);
	curl_global_cleanup();
	free(h);
}

int httphub_busy(const struct httphub *h)
{
	for (const struct xfer *x = h ? h->xfers : NULL; x; x = x->next)
		if (!x->dead)
			return 1;
	return 0;
}

static const char *http_name(const struct transport *bt)
{
	const struct http_t *t = (const struct http_t *)bt;

	if (t->auto_mode && !t->opened)
		return "auto"; /* not tried yet: neither mode chosen */
	return t->mode == MODE_SSE ? "sse" : "http";
}

/* header_cb: status, content type and session id of each response */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n, k;
	char val[256];

	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		x->is_sse = 0; /* a new response (after a redirect or 100): start over */
		return len;
	}
	k = strcspn(p, ":");
	if (k >= len)
		return len;
	snprintf(val, sizeof val, "%.*s", (int)(len - k - 1), p + k + 1);
	val[strcspn(val, "\r\n")] = '\0';
	memmove(val, val + strspn(val, " \t"), strlen(val + strspn(val, " \t")) + 1);
	if (k == 12 && strncasecmp(p, "Content-Type", 12) == 0)
		x->is_sse = strncasecmp(val, "text/event-stream", 17) == 0;
	else if (k == 14 && strncasecmp(p, "Mcp-Session-Id", 14) == 0 && x->t && !x->t->session[0])
		snprintf(x->t->session, sizeof x->t->session, "%s", val);
	return len;
}

/* resolve: the legacy endpoint (maybe relative) against the SSE URL */
static int resolve(const char *base, const char *rel, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *full = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK && strlen(full) < outlen) {
		strcpy(out, full);
		rc = 0;
	}
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* origin_of: scheme://host:port of url (the port given or the scheme's) into out; 0 or -1 */
static int origin_of(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		int n = snprintf(out, outlen, "%s://%s:%s", scheme, host, port);

		rc = n > 0 && (size_t)n < outlen ? 0 : -1;
		for (char *c = out; rc == 0 && *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* same_origin: a and b have one scheme, host and port (RFC 6454) */
static int same_origin(const char *a, const char *b)
{
	char oa[600], ob[600];

	return origin_of(a, oa, sizeof oa) == 0 && origin_of(b, ob, sizeof ob) == 0 && strcmp(oa, ob) == 0;
}

/* legacy_endpoint: the legacy "endpoint" event's data: where messages go.
 * It must share the SSE URL's origin, since every POST carries the
 * configured headers (Authorization, Cookie): an endpoint elsewhere would
 * hand them to a stranger. The MCP TypeScript SDK refuses it alike
 * (client/sse.js: "Endpoint origin does not match connection origin");
 * MCP 2024-11-05, transports, HTTP with SSE. 0, or -1 with t->refused set
 * (the session logs it when the stream ends) or the event logged; the
 * stream is then dropped. */
static int legacy_endpoint(struct http_t *t, const char *data, size_t len)
{
	char shown[2048];

	if (resolve(t->base.cfg->url, data, t->endpoint, sizeof t->endpoint) < 0) {
		log_warn("server %s: bad endpoint event '%.100s'", t->base.cfg->name,
			 redact_text(data, len, shown, sizeof shown));
		t->endpoint[0] = '\0';
		return -1;
	}
	if (!same_origin(t->base.cfg->url, t->endpoint)) {
		snprintf(t->refused, sizeof t->refused,
			 "the SSE endpoint event names another origin (%.300s); refused: the configured headers go "
			 "only to the server's own origin",
			 redact_url(t->endpoint, shown, sizeof shown));
		t->endpoint[0] = '\0';
		return -1;
	}
	log_info("server %s: SSE endpoint %s", t->base.cfg->name, redact_url(t->endpoint, shown, sizeof shown));
	return 0;
}

/* dispatch_json: one message or a batch, up to the session, while x is live */
static void dispatch_json(struct xfer *x, const char *data, size_t len)
{
	json_t *m = json_loadb(data, len, 0, NULL), *item;
	size_t i;

	if (json_is_array(m)) { /* a batch */
		json_array_foreach(m, i, item) {
			char *line = json_dumps(item, JSON_COMPACT);
			struct http_t *t = x->t;

			if (line && t)
				t->base.ev->on_message(t->base.ctx, line, strlen(line));
			free(line);
			if (!x->t)
				break;
		}
	} else if (x->t) {
		x->t->base.ev->on_message(x->t->base.ctx, data, len);
	}
	json_decref(m);
}

static int on_sse_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct xfer *x = ud;
	struct http_t *t = x->t;

	if (x->dead || !t)
		return 1;
	if (*id) {
		snprintf(x->last_id, sizeof x->last_id, "%s", id);
		snprintf(t->last_event_id, sizeof t->last_event_id, "%s", id);
	}
	if (x->sse.retry_ms >= 0)
		x->retry_ms = x->sse.retry_ms;
	if (x->kind == XK_LEGACY_GET && strcmp(event, "endpoint") == 0) {
		if (legacy_endpoint(t, data, len) < 0)
			return 1;
		t->base.ev->on_open(t->base.ctx);
		return x->dead ? 1 : 0;
	}
	if (len == 0 || strcmp(event, "message") != 0)
		return 0; /* priming events, and events that are not messages */
	dispatch_json(x, data, len);
	return x->dead ? 1 : 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (x->dead || !x->t)
		return 0; /* aborts the transfer */
	if (x->is_sse)
		return sse_feed(&x->sse, p, len) == SSE_OK ? len : 0;
	if (x->resp.len + len > x->hub->set->max_message_bytes || buf_append(&x->resp, p, len) < 0)
		return 0;
	return len;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h)
{
	struct curl_slist *n = l ? curl_slist_append(l, h) : NULL;

	if (!n)
		curl_slist_free_all(l);
	return n;
}

/* xfer_new: a transfer of kind to url for t, queued to start at the next pass */
static struct xfer *xfer_new(struct http_t *t, enum xkind kind, const char *url, const char *body, size_t len)
{
	struct httphub *h = t->hub;
	const struct cfg_server *cfg = t->base.cfg;
	struct xfer *x = calloc(1, sizeof *x);
	char hv[600];

	if (!x || !(x->easy = curl_easy_init()))
		goto err;
	x->hub = h;
	x->t = t;
	x->kind = kind;
	x->req_id = -1;
	x->retry_ms = -1;
	sse_init(&x->sse, h->set->max_message_bytes, on_sse_event, x);
	x->hdrs = curl_slist_append(NULL, kind == XK_POST ? "Accept: application/json, text/event-stream"
							  : "Accept: text/event-stream");
	if (kind == XK_POST)
		x->hdrs = add_header(x->hdrs, "Content-Type: application/json");
	if (t->session[0] && t->mode == MODE_HTTP) {
		snprintf(hv, sizeof hv, "Mcp-Session-Id: %s", t->session);
		x->hdrs = add_header(x->hdrs, hv);
	}
	if (t->proto[0] && t->mode == MODE_HTTP) {
		snprintf(hv, sizeof hv, "MCP-Protocol-Version: %s", t->proto);
		x->hdrs = add_header(x->hdrs, hv);
	}
	for (size_t i = 0; i < cfg->nheaders; i++)
		x->hdrs = add_header(x->hdrs, cfg->headers[i]);
	if (!x->hdrs || (body && !(x->body = malloc(len + 1))))
		goto err;
	if (body) {
		memcpy(x->body, body, len);
		x->body[len] = '\0';
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (kind == XK_DELETE) {
		curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
		curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)RT_DELETE_TIMEOUT_MS);
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, h->set->upstream_connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "mcpgw/" MCPGW_VERSION);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	x->next = h->xfers;
	h->xfers = x;
	return x;
err:
	if (x) {
		curl_easy_cleanup(x->easy);
		curl_slist_free_all(x->hdrs);
		sse_free(&x->sse);
		free(x);
	}
	return NULL;
}

static int http_open(struct transport *bt, char *why, size_t whylen)
{
	struct http_t *t = (struct http_t *)bt;

	if (!t->hub) {
		snprintf(why, whylen, "remote servers need libcurl, which was not set up");
		return -1;
	}
	t->session[0] = t->endpoint[0] = t->last_event_id[0] = t->proto[0] = t->refused[0] = '\0';
	t->get_at = 0;
	t->get_open = t->get_disabled = t->established = 0;
	t->opened = 1;
	log_info("server %s: connecting to %s (%s)", bt->cfg->name, t->shown, http_name(bt));
	if (t->mode == MODE_HTTP)
		return 1; /* initialize is the first POST */
	if (!xfer_new(t, XK_LEGACY_GET, bt->cfg->url, NULL, 0)) {
		snprintf(why, whylen, "out of memory starting the connection");
		return -1;
	}
	return 0;
}

static int http_send(struct transport *bt, const json_t *msg)
{
	struct http_t *t = (struct http_t *)bt;
	const char *url = t->mode == MODE_SSE ? t->endpoint : bt->cfg->url;
	const json_t *id = json_object_get(msg, "id");
	const char *method = json_string_value(json_object_get(msg, "method"));
	char *body;
	struct xfer *x;

	if (!*url || !(body = json_dumps(msg, JSON_COMPACT)))
		return -1;
	x = xfer_new(t, XK_POST, url, body, strlen(body));
	free(body);
	if (!x)
		return -1;
	x->req_id = method && json_is_integer(id) ? (long long)json_integer_value(id) : -1;
	x->is_init = method && strcmp(method, "initialize") == 0;
	return 0;
}

static void http_forget(struct transport *bt, long long req_id)
{
	struct http_t *t = (struct http_t *)bt;

	for (struct xfer *x = t->hub ? t->hub->xfers : NULL; x; x = x->next)
		if (x->t == t && x->kind == XK_POST && x->req_id == req_id)
			x->dead = 1;
}

static void http_negotiated(struct transport *bt, const char *version)
{
	struct http_t *t = (struct http_t *)bt;

	snprintf(t->proto, sizeof t->proto, "%s", version);
}

static void http_established(struct transport *bt)
{
	struct http_t *t = (struct http_t *)bt;

	t->established = 1;
	if (t->mode == MODE_HTTP && !t->get_disabled && !t->get_open)
		t->get_at = evloop_now(bt->env->loop);
}

static void http_close(struct transport *bt)
{
	struct http_t *t = (struct http_t *)bt;

	for (struct xfer *x = t->hub ? t->hub->xfers : NULL; x; x = x->next) {
		if (x->t == t && x->kind != XK_DELETE) {
			x->dead = 1;
			x->t = NULL;
		}
	}
	t->get_at = 0;
	t->get_open = 0;
	t->established = 0;
}

static int http_stop(struct transport *bt)
{
	struct http_t *t = (struct http_t *)bt;
	struct xfer *x;

	if (t->mode == MODE_HTTP && t->session[0] && (x = xfer_new(t, XK_DELETE, bt->cfg->url, NULL, 0)))
		x->t = NULL; /* fire and forget: its answer is not waited for by anything else */
	http_close(bt);
	return 0;
}

static long http_pid(const struct transport *bt)
{
	(void)bt;
	return 0;
}

static void http_diagnostic(const struct transport *bt, char *out, size_t outlen)
{
	(void)bt;
	if (outlen)
		*out = '\0';
}

/* open_get: the GET stream of Streamable HTTP (server messages, resumption) */
static void open_get(struct http_t *t)
{
	struct xfer *x;
	char hv[300];

	t->get_at = 0;
	if (!(x = xfer_new(t, XK_GET, t->base.cfg->url, NULL, 0)))
		return;
	if (t->last_event_id[0]) {
		snprintf(hv, sizeof hv, "Last-Event-ID: %s", t->last_event_id);
		x->hdrs = add_header(x->hdrs, hv);
		curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	}
	t->get_open = 1;
}

static int64_t http_due(void *ctx)
{
	const struct http_t *t = ctx;

	return t->get_at && t->established ? t->get_at : EVLOOP_NEVER;
}

static void http_fire(void *ctx, int64_t now)
{
	struct http_t *t = ctx;

	if (t->get_at && t->established && now >= t->get_at)
		open_get(t);
}

/* synth_error: answer the request a failed POST carried, so its call ends now */
static void synth_error(struct http_t *t, long long req_id, const char *msg)
{
	json_t *m = json_pack("{s:s, s:I, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", (json_int_t)req_id, "error", "code",
			      JR_CONNECTION_CLOSED, "message", msg);
	char *line = m ? json_dumps(m, JSON_COMPACT) : NULL;

	if (line)
		t->base.ev->on_message(t->base.ctx, line, strlen(line));
	free(line);
	json_decref(m);
}

/* never_sent: the POST failed before any byte of its request went out:
 * its connection could not be made, and libcurl counts no request bytes */
static int never_sent(struct xfer *x, CURLcode rc)
{
	long request_bytes = -1;

	if (rc != CURLE_COULDNT_RESOLVE_PROXY && rc != CURLE_COULDNT_RESOLVE_HOST && rc != CURLE_COULDNT_CONNECT &&
	    rc != CURLE_SSL_CONNECT_ERROR && rc != CURLE_OPERATION_TIMEDOUT)
		return 0;
	return curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &request_bytes) == CURLE_OK && request_bytes == 0;
}

/* mask_url_secrets: the secret parts of url (its userinfo, its query)
 * masked in the n bytes at data (redact_tokens_inplace); the new length */
static size_t mask_url_secrets(const char *url, char *data, size_t n)
{
	char part[1024];
	const char *q = strchr(url, '?'), *s = strstr(url, "://"), *at;
	size_t host;

	if (q) {
		snprintf(part, sizeof part, "%.*s", (int)strcspn(q + 1, "#"), q + 1);
		n = redact_tokens_inplace(data, n, part);
	}
	if (s) {
		s += 3;
		host = strcspn(s, "/?#");
		if ((at = memchr(s, '@', host))) {
			snprintf(part, sizeof part, "%.*s", (int)(at - s), s);
			n = redact_tokens_inplace(data, n, part);
		}
	}
	return n;
}

/* log_error_body: the body of the server's error answer at debug, the
 * gateway's secrets for this server masked first (the whole body, before it
 * is cut: a server may quote the token of its URL or a header it was sent,
 * "invalid token ..."; issue 14, "Secrets stay where they are"), URLs
 * redacted; x->resp is changed */
static void log_error_body(struct http_t *t, struct xfer *x)
{
	const struct cfg_server *cfg = t->base.cfg;
	char shown[2 * 200 + 1];
	size_t n = x->resp.len;

	n = mask_url_secrets(cfg->url, x->resp.data, n);
	for (size_t i = 0; i < cfg->nheaders; i++) {
		const char *colon = strchr(cfg->headers[i], ':');

		const char *v = colon ? colon + 1 + strspn(colon + 1, " \t") : cfg->headers[i];

		n = redact_tokens_inplace(x->resp.data, n, v);
	}
	x->resp.len = n;
	log_debug("server %s: HTTP %ld body %s", cfg->name, x->status,
		  redact_text(x->resp.data, n < 200 ? n : 200, shown, sizeof shown));
}

static void post_done(struct xfer *x, CURLcode rc, char *why, size_t whylen)
{
	struct http_t *t = x->t;
	const struct cfg_server *cfg = t->base.cfg;
	const struct transport_events *ev = t->base.ev;

	if (rc != CURLE_OK) {
		snprintf(why, whylen, "POST %.400s: %s", t->shown, curl_easy_strerror(rc));
		if (x->req_id >= 0 && ev->on_undelivered && never_sent(x, rc))
			ev->on_undelivered(t->base.ctx, x->req_id);
		ev->on_closed(t->base.ctx, why, 0);
	} else if (x->is_init && t->auto_mode && t->mode == MODE_HTTP && x->status >= 400 && x->status < 500) {
		log_info("server %s: Streamable HTTP answered %ld; trying the legacy SSE transport", cfg->name,
			 x->status);
		t->mode = MODE_SSE;
		ev->on_closed(t->base.ctx, "reconnecting", 1);
	} else if (x->status == 404 && t->session[0]) {
		log_info("server %s: session expired (404); initializing again", cfg->name);
		ev->on_closed(t->base.ctx, "the MCP session expired (HTTP 404)", 1);
	} else if (x->status >= 500 || (x->status >= 400 && x->req_id < 0 && x->is_init)) {
		snprintf(why, whylen, "POST %.400s: HTTP %ld", t->shown, x->status);
		ev->on_closed(t->base.ctx, why, 0);
	} else if (x->status >= 400) {
		snprintf(why, whylen, "the MCP server answered HTTP %ld", x->status);
		if (x->resp.len)
			log_error_body(t, x);
		if (x->req_id >= 0)
			synth_error(t, x->req_id, why);
	} else if (!x->is_sse && x->resp.len && t->mode == MODE_HTTP) {
		dispatch_json(x, x->resp.data, x->resp.len); /* legacy SSE answers POSTs with "Accepted": not a message */
	} else if (x->is_sse && x->req_id >= 0 && t->mode == MODE_HTTP && ev->is_pending(t->base.ctx, x->req_id)) {
		/* the stream closed before the answer: resume on a GET with Last-Event-ID */
		int64_t now = evloop_now(t->hub->loop);

		t->get_at = now + (x->retry_ms >= 0 ? x->retry_ms : RT_DEFAULT_RETRY_MS);
		log_debug("server %s: stream closed before the answer; resuming in %lld ms", cfg->name,
			  (long long)(t->get_at - now));
	}
}

static void get_done(struct xfer *x, CURLcode rc)
{
	struct http_t *t = x->t;
	int64_t now = evloop_now(t->hub->loop);

	t->get_open = 0;
	if (rc == CURLE_OK && (x->status == 405 || x->status == 404 || (x->status >= 400 && x->status < 500))) {
		log_debug("server %s: no GET stream (HTTP %ld)", t->base.cfg->name, x->status);
		t->get_disabled = 1;
		return;
	}
	if (rc != CURLE_OK && rc != CURLE_PARTIAL_FILE) { /* the connection broke: the server is gone */
		char why[600];

		snprintf(why, sizeof why, "GET stream %.400s: %s", t->shown, curl_easy_strerror(rc));
		t->base.ev->on_closed(t->base.ctx, why, 0);
	} else if (x->status >= 500)
		t->get_at = now + RT_GET_ERROR_RETRY_MS;
	else
		t->get_at = now + (x->retry_ms >= 0 ? x->retry_ms : RT_DEFAULT_RETRY_MS);
}

static void xfer_done(struct xfer *x, CURLcode rc)
{
	char why[600];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	x->dead = 1;
	if (!x->t)
		return;
	switch (x->kind) {
	case XK_POST: post_done(x, rc, why, sizeof why); break;
	case XK_GET: get_done(x, rc); break;
	case XK_LEGACY_GET:
		if (x->t->refused[0])
			snprintf(why, sizeof why, "%.590s", x->t->refused);
		else
			snprintf(why, sizeof why, "SSE stream %.400s %s%s", x->t->shown,
				 rc != CURLE_OK ? curl_easy_strerror(rc) : "closed",
				 x->status >= 400 ? " (HTTP error)" : "");
		x->t->base.ev->on_closed(x->t->base.ctx, why, 0);
		break;
	case XK_DELETE: break;
	}
}

/* hub_reap: finish completed transfers, free dead ones, start queued ones */
static void hub_reap(struct httphub *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x && !x->dead)
			xfer_done(x, m->data.result);
		else if (x)
			x->dead = 1;
	}
	for (struct xfer **pp = &h->xfers; *pp;) {
		struct xfer *x = *pp;

		if (x->dead) {
			*pp = x->next;
			xfer_free(x);
			continue;
		}
		if (!x->added) {
			if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
				log_error("libcurl refused a transfer");
				x->dead = 1;
				continue;
			}
			x->added = 1;
		}
		pp = &x->next;
	}
}

static void http_destroy(struct transport *bt)
{
	struct http_t *t = (struct http_t *)bt;

	if (!t)
		return;
	http_close(bt);
	evloop_timer_del(bt->env->loop, t->timer);
	free(t);
}

static const struct transport_ops http_ops = {
	.open = http_open,
	.send = http_send,
	.forget = http_forget,
	.negotiated = http_negotiated,
	.established = http_established,
	.close = http_close,
	.stop = http_stop,
	.name = http_name,
	.pid = http_pid,
	.diagnostic = http_diagnostic,
	.destroy = http_destroy,
};

struct transport *transport_http_new(const struct transport_env *env, const struct cfg_server *cfg,
				     const struct transport_events *ev, void *ctx)
{
	struct http_t *t;

	if (!(t = calloc(1, sizeof *t)))
		return NULL;
	t->base = (struct transport){ &http_ops, ev, ctx, cfg, env };
	t->hub = env->hub;
	t->mode = cfg->transport == CFG_SSE ? MODE_SSE : MODE_HTTP;
	t->auto_mode = cfg->transport == CFG_AUTO;
	redact_url(cfg->url ? cfg->url : "", t->shown, sizeof t->shown);
	if ((t->timer = evloop_timer_add(env->loop, http_due, http_fire, t)) < 0) {
		free(t);
		return NULL;
	}
	return &t->base;
}
