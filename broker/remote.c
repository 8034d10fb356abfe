/* remote.c: MCP over HTTP in the broker's loop: Streamable HTTP (POST per message, JSON or SSE answers,
 * session ids, the optional GET stream, resumption with Last-Event-ID) and legacy HTTP+SSE, on libcurl multi. */
#include "remote.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker.h"
#include "core/log.h"
#include "core/sse.h"

#define RT_MAX_SOCKS 1024
#define RT_DEFAULT_RETRY_MS 1000   /* SSE reconnect delay when the server named none */
#define RT_GET_ERROR_RETRY_MS 2000 /* GET stream failed at the transport level */
#define RT_DELETE_TIMEOUT_MS 2000

enum xkind { XK_POST, XK_GET, XK_LEGACY_GET, XK_DELETE };

struct xfer {
	CURL *easy;
	struct srv *s;            /* NULL once detached (connection closed) */
	enum xkind kind;
	struct curl_slist *hdrs;
	char *body;
	long long req_id;         /* JSON-RPC id of the request carried, -1 none */
	int is_init;              /* carries initialize (auto mode falls back to SSE on 4xx) */
	long status;
	int is_sse, added, dead;
	struct sse_parser sse;
	buf_t resp;
	char last_id[256];
	long retry_ms;
	struct xfer *next;
};

struct remote {
	int mode;                 /* CFG_HTTP or CFG_SSE */
	int auto_mode;            /* config said neither: HTTP first, SSE on 4xx */
	char session[256];
	char endpoint[2048];      /* legacy: where messages are POSTed */
	char last_event_id[256];
	int64_t get_at;           /* (re)open the GET stream then; 0 = not planned */
	int get_open, get_disabled;
};

static CURLM *multi;
static struct xfer *xfers;        /* every transfer, live or waiting to be removed */
static struct { int fd; short ev; } socks[RT_MAX_SOCKS];
static size_t nsocks;
static int64_t curl_deadline = INT64_MAX;

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *up, void *sp)
{
	size_t i;

	(void)e, (void)up, (void)sp;
	for (i = 0; i < nsocks && socks[i].fd != fd; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < nsocks)
			socks[i] = socks[--nsocks];
		return 0;
	}
	if (i == nsocks) {
		if (nsocks == RT_MAX_SOCKS)
			return -1;
		nsocks++;
	}
	socks[i].fd = fd;
	socks[i].ev = (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *up)
{
	(void)m, (void)up;
	curl_deadline = timeout_ms < 0 ? INT64_MAX : clock_now_ms() + timeout_ms;
	return 0;
}

int remote_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(multi = curl_multi_init()))
		return -1;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	return 0;
}

static void xfer_free(struct xfer *x)
{
	if (x->added)
		curl_multi_remove_handle(multi, x->easy);
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->body);
	sse_free(&x->sse);
	buf_free(&x->resp);
	free(x);
}

void remote_global_cleanup(void)
{
	if (!multi)
		return;
	while (xfers) {
		struct xfer *x = xfers;

		xfers = x->next;
		xfer_free(x);
	}
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
}

size_t remote_pollfds(struct pollfd *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < nsocks && n < max; i++, n++)
		fds[n] = (struct pollfd){ .fd = socks[i].fd, .events = socks[i].ev };
	return n;
}

const char *remote_mode_name(const struct srv *s)
{
	if (!s->rt)
		return "stdio";
	return s->rt->mode == CFG_SSE ? "sse" : "http";
}

int remote_busy(void)
{
	for (struct xfer *x = xfers; x; x = x->next)
		if (!x->dead)
			return 1;
	return 0;
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
	else if (k == 14 && strncasecmp(p, "Mcp-Session-Id", 14) == 0 && x->s && x->s->rt && !x->s->rt->session[0])
		snprintf(x->s->rt->session, sizeof x->s->rt->session, "%s", val);
	return len;
}

/* resolve: the legacy endpoint (maybe relative) against the SSE URL */
static int resolve(const char *base, const char *rel, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *full = NULL;
	int rc = -1;

	if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK &&
	    strlen(full) < outlen) {
		strcpy(out, full);
		rc = 0;
	}
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

static void dispatch_json(struct srv *s, const char *data, size_t len)
{
	json_t *m = json_loadb(data, len, 0, NULL), *item;
	size_t i;

	if (json_is_array(m)) { /* a batch */
		json_array_foreach(m, i, item) {
			char *line = json_dumps(item, JSON_COMPACT);

			if (line)
				srv_on_message(s, line, strlen(line));
			free(line);
			if (!s->rt)
				break;
		}
	} else {
		srv_on_message(s, data, len);
	}
	json_decref(m);
}

static int on_sse_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	struct xfer *x = ud;
	struct srv *s = x->s;

	if (x->dead || !s)
		return 1;
	if (*id) {
		snprintf(x->last_id, sizeof x->last_id, "%s", id);
		snprintf(s->rt->last_event_id, sizeof s->rt->last_event_id, "%s", id);
	}
	if (x->sse.retry_ms >= 0)
		x->retry_ms = x->sse.retry_ms;
	if (x->kind == XK_LEGACY_GET && strcmp(event, "endpoint") == 0) {
		if (resolve(s->cfg->url, data, s->rt->endpoint, sizeof s->rt->endpoint) < 0) {
			log_warn("server %s: bad endpoint event '%.100s'", s->cfg->name, data);
			return 1;
		}
		log_info("server %s: SSE endpoint %s", s->cfg->name, s->rt->endpoint);
		srv_begin(s);
		return x->dead ? 1 : 0;
	}
	if (len == 0 || strcmp(event, "message") != 0)
		return 0; /* priming events, and events that are not messages */
	dispatch_json(s, data, len);
	return x->dead ? 1 : 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;

	if (x->dead || !x->s)
		return 0; /* aborts the transfer */
	if (x->is_sse)
		return sse_feed(&x->sse, p, len) == SSE_OK ? len : 0;
	if (x->resp.len + len > B.set.max_message_bytes || buf_append(&x->resp, p, len) < 0)
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

/* xfer_new: a transfer of kind to url for s, queued to start at the next tick */
static struct xfer *xfer_new(struct srv *s, enum xkind kind, const char *url, const char *body, size_t len)
{
	struct xfer *x = calloc(1, sizeof *x);
	char h[600];

	if (!x || !(x->easy = curl_easy_init()))
		goto err;
	x->s = s;
	x->kind = kind;
	x->req_id = -1;
	x->retry_ms = -1;
	sse_init(&x->sse, B.set.max_message_bytes, on_sse_event, x);
	x->hdrs = curl_slist_append(NULL, kind == XK_POST ? "Accept: application/json, text/event-stream"
							  : "Accept: text/event-stream");
	if (kind == XK_POST)
		x->hdrs = add_header(x->hdrs, "Content-Type: application/json");
	if (s->rt->session[0] && s->rt->mode == CFG_HTTP) {
		snprintf(h, sizeof h, "Mcp-Session-Id: %s", s->rt->session);
		x->hdrs = add_header(x->hdrs, h);
	}
	if (s->proto[0] && s->rt->mode == CFG_HTTP) {
		snprintf(h, sizeof h, "MCP-Protocol-Version: %s", s->proto);
		x->hdrs = add_header(x->hdrs, h);
	}
	for (size_t i = 0; i < s->cfg->nheaders; i++)
		x->hdrs = add_header(x->hdrs, s->cfg->headers[i]);
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
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, B.set.upstream_connect_timeout_ms);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "mcpgw/" MCPGW_VERSION);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	x->next = xfers;
	xfers = x;
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

static struct remote *rt_of(struct srv *s)
{
	if (!s->rt) {
		s->rt = calloc(1, sizeof *s->rt);
		if (!s->rt)
			return NULL;
		s->rt->mode = s->cfg->transport == CFG_SSE ? CFG_SSE : CFG_HTTP;
		s->rt->auto_mode = s->cfg->transport == CFG_AUTO;
	}
	return s->rt;
}

int remote_start(struct srv *s)
{
	struct remote *r = rt_of(s);

	if (!r)
		return -1;
	r->session[0] = r->endpoint[0] = r->last_event_id[0] = '\0';
	r->get_at = 0;
	r->get_open = r->get_disabled = 0;
	if (r->mode == CFG_HTTP) {
		srv_begin(s); /* initialize is the first POST */
		return 0;
	}
	return xfer_new(s, XK_LEGACY_GET, s->cfg->url, NULL, 0) ? 0 : -1;
}

int remote_send(struct srv *s, const char *line, size_t len, long long req_id)
{
	struct remote *r = s->rt;
	const char *url = r && r->mode == CFG_SSE ? r->endpoint : s->cfg->url;
	struct xfer *x;

	if (!r || !*url)
		return -1;
	while (len && line[len - 1] == '\n')
		len--;
	if (!(x = xfer_new(s, XK_POST, url, line, len)))
		return -1;
	x->req_id = req_id;
	x->is_init = len > 0 && strstr(x->body, "\"method\":\"initialize\"") != NULL;
	return 0;
}

void remote_forget(struct srv *s, long long req_id)
{
	for (struct xfer *x = xfers; x; x = x->next)
		if (x->s == s && x->kind == XK_POST && x->req_id == req_id)
			x->dead = 1;
}

void remote_ready(struct srv *s)
{
	if (s->rt && s->rt->mode == CFG_HTTP && !s->rt->get_disabled && !s->rt->get_open)
		s->rt->get_at = clock_now_ms();
}

void remote_close(struct srv *s)
{
	for (struct xfer *x = xfers; x; x = x->next) {
		if (x->s == s && x->kind != XK_DELETE) {
			x->dead = 1;
			x->s = NULL;
		}
	}
	if (s->rt) {
		s->rt->get_at = 0;
		s->rt->get_open = 0;
	}
}

void remote_stop(struct srv *s)
{
	struct xfer *x;

	if (s->rt && s->rt->mode == CFG_HTTP && s->rt->session[0] && (x = xfer_new(s, XK_DELETE, s->cfg->url, NULL, 0)))
		x->s = NULL; /* fire and forget: its answer is not waited for by anything else */
	remote_close(s);
}

void remote_free(struct srv *s)
{
	remote_close(s);
	free(s->rt);
	s->rt = NULL;
}

/* open_get: the GET stream of Streamable HTTP (server messages, resumption) */
static void open_get(struct srv *s)
{
	struct remote *r = s->rt;
	struct xfer *x;
	char h[300];

	r->get_at = 0;
	if (!(x = xfer_new(s, XK_GET, s->cfg->url, NULL, 0)))
		return;
	if (r->last_event_id[0]) {
		snprintf(h, sizeof h, "Last-Event-ID: %s", r->last_event_id);
		x->hdrs = add_header(x->hdrs, h);
		curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	}
	r->get_open = 1;
}

/* synth_error: answer the request a failed POST carried, so its call ends now */
static void synth_error(struct srv *s, long long req_id, const char *msg)
{
	json_t *m = json_pack("{s:s, s:I, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", (json_int_t)req_id, "error", "code",
			      JR_CONNECTION_CLOSED, "message", msg);
	char *line = m ? json_dumps(m, JSON_COMPACT) : NULL;

	if (line)
		srv_on_message(s, line, strlen(line));
	free(line);
	json_decref(m);
}

static void post_done(struct xfer *x, CURLcode rc, char *why, size_t whylen)
{
	struct srv *s = x->s;
	struct remote *r = s->rt;

	if (rc != CURLE_OK) {
		snprintf(why, whylen, "POST %s: %s", s->cfg->url, curl_easy_strerror(rc));
		srv_down(s, why);
	} else if (x->is_init && r->auto_mode && r->mode == CFG_HTTP && x->status >= 400 && x->status < 500) {
		log_info("server %s: Streamable HTTP answered %ld; trying the legacy SSE transport", s->cfg->name, x->status);
		r->mode = CFG_SSE;
		srv_restart_now(s);
	} else if (x->status == 404 && r->session[0]) {
		log_info("server %s: session expired (404); initializing again", s->cfg->name);
		srv_down(s, "the MCP session expired (HTTP 404)");
		srv_restart_now(s);
	} else if (x->status >= 500 || (x->status >= 400 && x->req_id < 0 && x->is_init)) {
		snprintf(why, whylen, "POST %s: HTTP %ld", s->cfg->url, x->status);
		srv_down(s, why);
	} else if (x->status >= 400) {
		snprintf(why, whylen, "the MCP server answered HTTP %ld", x->status);
		if (x->resp.len)
			log_debug("server %s: HTTP %ld body %.200s", s->cfg->name, x->status, x->resp.data);
		if (x->req_id >= 0)
			synth_error(s, x->req_id, why);
	} else if (!x->is_sse && x->resp.len && r->mode == CFG_HTTP) {
		dispatch_json(s, x->resp.data, x->resp.len); /* legacy SSE answers POSTs with "Accepted": not a message */
	} else if (x->is_sse && x->req_id >= 0 && r->mode == CFG_HTTP && srv_has_pending(s, x->req_id)) {
		/* the stream closed before the answer: resume on a GET with Last-Event-ID */
		r->get_at = clock_now_ms() + (x->retry_ms >= 0 ? x->retry_ms : RT_DEFAULT_RETRY_MS);
		log_debug("server %s: stream closed before the answer; resuming in %lld ms", s->cfg->name,
			  (long long)(r->get_at - clock_now_ms()));
	}
}

static void get_done(struct xfer *x, CURLcode rc)
{
	struct srv *s = x->s;
	struct remote *r = s->rt;

	r->get_open = 0;
	if (rc == CURLE_OK && (x->status == 405 || x->status == 404 || (x->status >= 400 && x->status < 500))) {
		log_debug("server %s: no GET stream (HTTP %ld)", s->cfg->name, x->status);
		r->get_disabled = 1;
		return;
	}
	if (rc != CURLE_OK && rc != CURLE_PARTIAL_FILE) { /* the connection broke: the server is gone */
		char why[600];

		snprintf(why, sizeof why, "GET stream %s: %s", s->cfg->url, curl_easy_strerror(rc));
		srv_down(s, why);
	} else if (x->status >= 500)
		r->get_at = clock_now_ms() + RT_GET_ERROR_RETRY_MS;
	else
		r->get_at = clock_now_ms() + (x->retry_ms >= 0 ? x->retry_ms : RT_DEFAULT_RETRY_MS);
}

static void xfer_done(struct xfer *x, CURLcode rc)
{
	char why[600];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	x->dead = 1;
	if (!x->s)
		return;
	switch (x->kind) {
	case XK_POST:
		post_done(x, rc, why, sizeof why);
		break;
	case XK_GET:
		get_done(x, rc);
		break;
	case XK_LEGACY_GET:
		snprintf(why, sizeof why, "SSE stream %s %s%s", x->s->cfg->url, rc != CURLE_OK ? curl_easy_strerror(rc) : "closed",
			 x->status >= 400 ? " (HTTP error)" : "");
		srv_down(x->s, why);
		break;
	case XK_DELETE:
		break;
	}
}

/* reap: finish completed transfers, free dead ones, start queued ones */
static void reap(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left))) {
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x && !x->dead)
			xfer_done(x, m->data.result);
		else if (x)
			x->dead = 1;
	}
	for (struct xfer **pp = &xfers; *pp;) {
		struct xfer *x = *pp;

		if (x->dead) {
			*pp = x->next;
			xfer_free(x);
			continue;
		}
		if (!x->added) {
			if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) {
				log_error("libcurl refused a transfer");
				x->dead = 1;
				continue;
			}
			x->added = 1;
		}
		pp = &x->next;
	}
}

void remote_on_socket(int fd, short revents)
{
	int running, mask = 0;

	if (!multi)
		return;
	if (revents & (POLLIN | POLLHUP))
		mask |= CURL_CSELECT_IN;
	if (revents & POLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (revents & POLLERR)
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(multi, fd, mask, &running);
}

void remote_tick(int64_t now)
{
	int running;

	if (!multi)
		return;
	for (size_t i = 0; i < B.nsrvs; i++) {
		struct srv *s = &B.srvs[i];

		if (s->rt && s->rt->get_at && now >= s->rt->get_at && s->state == SRV_READY)
			open_get(s);
	}
	reap();
	if (clock_now_ms() >= curl_deadline) {
		curl_deadline = INT64_MAX;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	reap();
}

int64_t remote_next_deadline(void)
{
	int64_t d = curl_deadline;

	for (size_t i = 0; i < B.nsrvs; i++)
		if (B.srvs[i].rt && B.srvs[i].rt->get_at && B.srvs[i].rt->get_at < d)
			d = B.srvs[i].rt->get_at;
	for (struct xfer *x = xfers; x; x = x->next)
		if (x->dead || !x->added)
			return 0; /* work for the next tick right away */
	return d;
}
