/* responder.c: the responder skeleton: start-up, accept loop, routing, body reading and the skeleton's own answers. */
#include "http/responder.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/capacity.h"
#include "core/fdlimit.h"
#include "core/log.h"
#include "core/statedir.h"
#include "http/oai.h"
#include "http/origin.h"
#include "openai/wire.h"

#define RESPONDER_STACK (1024 * 1024) /* a worker thread's stack */
#define RESPONDER_IDLE_EXIT_MS 5000   /* a worker beyond the kept ones idle this long ends */
#define RESPONDER_ARENAS 2            /* malloc arenas of a responder process (M_ARENA_MAX) */
#define RESPONDER_GROW_MAX 32         /* workers started at once when none is left to accept */
/* memory back to the system after a large request (issue 15, finding 3): from this size an
 * allocation is mapped on its own and unmapped when freed (a fixed threshold: glibc's own rises
 * up to 32 MiB after the first large free, and large request buffers then stay in the heap) */
#define RESPONDER_MMAP_THRESHOLD (256 * 1024)
/* ... and after a request whose body or answer was at least this, the heaps' free pages are
 * given back (malloc_trim): a parsed body's many small values are freed into the heap, not unmapped */
#define RESPONDER_TRIM_AFTER (1024 * 1024)
#define RESPONDER_V1 "/v1"

/* ---- routing ---- */

/* match_one: path against one route pattern; 1 with *arg set, else 0 */
static int match_one(const char *pattern, const char *path, const char **arg)
{
	size_t plen = strlen(pattern), n;

	if (plen >= 3 && strcmp(pattern + plen - 3, "{*}") == 0) {
		n = plen - 3;
		if (strncmp(path, pattern, n) != 0 || !path[n])
			return 0;
		*arg = path + n;
		return 1;
	}
	if (plen >= 2 && strcmp(pattern + plen - 2, "{}") == 0) {
		n = plen - 2;
		if (strncmp(path, pattern, n) != 0 || !path[n] || strchr(path + n, '/'))
			return 0;
		*arg = path + n;
		return 1;
	}
	if (strncmp(path, pattern, plen) != 0 || (path[plen] && strcmp(path + plen, "/") != 0))
		return 0;
	*arg = "";
	return 1;
}

/* match: the pattern as written, or under /v1 for a path without it */
static int match(const char *pattern, const char *path, const char **arg)
{
	size_t v = sizeof RESPONDER_V1 - 1;

	if (match_one(pattern, path, arg))
		return 1;
	/* "/models" as "/v1/models": a base URL without /v1 */
	return strncmp(pattern, RESPONDER_V1 "/", v + 1) == 0 && strncmp(path, RESPONDER_V1 "/", v + 1) != 0 &&
	       strcmp(path, RESPONDER_V1) != 0 && *path == '/' && match_one(pattern + v, path, arg);
}

/* method_in: method is one of the comma-separated list */
static int method_in(const char *method, const char *methods)
{
	size_t n = strlen(method);

	while (*methods) {
		size_t k;

		methods += strspn(methods, ", ");
		k = strcspn(methods, ", ");
		if (k == n && k > 0 && strncmp(methods, method, n) == 0)
			return 1;
		methods += k;
	}
	return 0;
}

/* allow_add: the methods of list not yet in allow, appended ("GET, HEAD, POST") */
static void allow_add(char *allow, size_t allowlen, const char *list)
{
	while (*list) {
		size_t k, used;

		list += strspn(list, ", ");
		k = strcspn(list, ", ");
		if (k > 0 && k < 32) {
			char m[32];

			memcpy(m, list, k);
			m[k] = '\0';
			used = strlen(allow);
			if (!method_in(m, allow))
				snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", m);
		}
		list += k;
	}
}

const struct route *responder_route(const struct route *routes, const char *method, const char *path, const char **arg,
				    int *status, char *allow, size_t allowlen)
{
	const struct route *rt;
	const char *a;

	allow[0] = '\0';
	*status = 404;
	for (rt = routes; rt->path; rt++) {
		if (!match(rt->path, path, &a))
			continue;
		if (method_in(method, rt->methods)) {
			*arg = a;
			return rt;
		}
		*status = 405;
		allow_add(allow, allowlen, rt->methods);
	}
	return NULL;
}

/* ---- the skeleton's answers ---- */

int responder_send_config_error(struct hio *h, const char *why)
{
	return oai_send_error(h, 500, NULL, "configuration_error", "mcpgw is misconfigured: %s", why);
}

/* send_not_found: 404 unknown_url, in OpenAI's own words */
static void send_not_found(struct hio *h, const char *method, const char *path)
{
	oai_send_error(h, 404, NULL, "unknown_url",
		       "Unknown request URL: %.16s %.300s. Please check the URL for typos, or see the docs at "
		       "https://platform.openai.com/docs/api-reference/.",
		       method, path);
}

/* send_length_required: the one 411; method and path may be NULL (not known) */
static void send_length_required(struct hio *h, const char *method, const char *path)
{
	if (method && path)
		oai_send_error(h, 411, NULL, "length_required",
			       "%.16s %.300s needs a body with a Content-Length header.", method, path);
	else
		oai_send_error(h, 411, NULL, "length_required", "The request needs a body with a Content-Length header.");
}

/* send_too_large: the one 413; max 0: MCPGW_MAX_BODY_BYTES is not known (bad settings) */
static void send_too_large(struct hio *h, size_t max)
{
	if (max)
		oai_send_error(h, 413, NULL, "request_too_large",
			       "The request body is larger than MCPGW_MAX_BODY_BYTES (%zu bytes).", max);
	else
		oai_send_error(h, 413, NULL, "request_too_large",
			       "The request body is larger than the web server accepts.");
}

/* read_body: the body for a route that needs one; 0, or -1 after an error was sent */
static int read_body(struct responder *r, struct exchange *x)
{
	const char *cl = hio_param(x->h, "CONTENT_LENGTH");
	int rc;

	/* MCPGW_NO_CONTENT_LENGTH: set by the web server's config, never by a request
	 * (headers arrive as HTTP_*): mod_fcgid says 0 when there was no length. A
	 * chunked upload without a length (mod_cgid) is read to its end. */
	if (((!cl || !*cl) && !hio_param(x->h, "HTTP_TRANSFER_ENCODING")) || hio_param(x->h, "MCPGW_NO_CONTENT_LENGTH")) {
		send_length_required(x->h, x->method, x->path);
		return -1;
	}
	rc = hio_read_body(x->h, r->s.max_body_bytes, &x->body);
	if (rc == 0)
		return 0;
	if (rc == 413)
		send_too_large(x->h, r->s.max_body_bytes);
	else if (rc == 411)
		send_length_required(x->h, x->method, x->path);
	else if (rc == 400)
		oai_send_error(x->h, 400, NULL, "invalid_body",
			       "The request body does not match its Content-Length (malformed, or shorter than it says).");
	else
		oai_send_error(x->h, 500, NULL, "internal_error", "Out of memory while reading the request body.");
	return -1;
}

/* web_server_error: the status of an error the web server answers with one of
 * ours (Apache's ErrorDocument: an internal redirect with REDIRECT_STATUS), 0 if none */
static int web_server_error(struct hio *h)
{
	const char *rs = hio_param(h, "REDIRECT_STATUS");
	long v;

	if (!rs || settings_parse_long(rs, 400, 599, &v) < 0)
		return 0; /* 200: a rewrite's internal redirect, not an error */
	return (int)v;
}

/* The statuses a web server answers by itself, before (or instead of) a responder:
 * one code and one sentence each, the same behind every front end. The sentence
 * speaks of "the request"; when the web server names it (Apache's ErrorDocument
 * redirect) " (METHOD PATH)" follows. Without a method and path (the error files
 * mcpgwctl writes for lighttpd and for Apache's errors on requests it could not
 * parse) the sentence stands alone. 404, 411 and 413 use the responders' own words. */
struct web_error {
	int status;
	const char *type; /* NULL: wire_error_type(status) */
	const char *code;
	const char *message; /* ends in '.' */
};

static const struct web_error web_errors[] = {
	{ 400, NULL, "invalid_request",
	  "The web server could not parse the request (a malformed request line, header, Content-Length or URL)." },
	{ 401, NULL, "unauthorized", "The web server requires authentication for this request." },
	{ 403, NULL, "forbidden", "The web server does not allow this request." },
	{ 405, NULL, "method_not_allowed", "This method is not allowed here." },
	{ 406, NULL, "not_acceptable", "The web server cannot answer in a form the Accept headers allow." },
	{ 408, NULL, "request_timeout", "The web server timed out reading the request." },
	{ 414, NULL, "uri_too_long", "The request line or headers are larger than the web server accepts." },
	{ 417, NULL, "expectation_failed",
	  "The web server cannot meet the request's Expect header (only 100-continue is supported)." },
	{ 431, NULL, "headers_too_large", "The request line or headers are larger than the web server accepts." },
	{ 500, NULL, "internal_error", "The web server had an internal error (its error log says more)." },
	{ 501, "invalid_request_error", "unsupported_method", "The web server does not support this method." },
	{ 502, NULL, "bad_gateway", "The web server got no valid answer from the responder." },
	{ 503, NULL, "service_unavailable",
	  "The responder is not available (starting, stopped or overloaded); try again." },
	{ 504, NULL, "gateway_timeout", "The responder did not answer in time." },
	{ 505, "invalid_request_error", "http_version_not_supported",
	  "The web server does not support this HTTP version." },
};

/* send_web_server_error: the web server refused the request before a responder
 * saw it (a malformed request, a body over its own limit): the same JSON as the
 * responders'. max_body: MCPGW_MAX_BODY_BYTES, 0 if not known. */
static void send_web_server_error(struct hio *h, int status, size_t max_body)
{
	const char *method = hio_param(h, "REDIRECT_REQUEST_METHOD"), *url = hio_param(h, "REDIRECT_URL");
	const struct web_error *e = NULL;
	const char *code;
	char path[RESPONDER_PATH_MAX], msg[512];
	json_t *err;
	size_t i, n;

	if (!method || !*method)
		method = hio_param(h, "REQUEST_METHOD");
	if (!url || !*url)
		url = hio_path(h, path, sizeof path); /* not redirected: the request's own */
	if (!method || !*method || !url || !*url)
		method = url = NULL; /* an error file written ahead (mcpgwctl): no request to name */
	if (status == 404) {
		if (url)
			send_not_found(h, method, url);
		else
			oai_send_error(h, 404, NULL, "unknown_url",
				       "Unknown request URL. Please check the URL for typos, or see the docs at "
				       "https://platform.openai.com/docs/api-reference/.");
		return;
	}
	if (status == 411) {
		send_length_required(h, method, url);
		return;
	}
	if (status == 413) {
		send_too_large(h, max_body);
		return;
	}
	for (i = 0; i < sizeof web_errors / sizeof web_errors[0]; i++)
		if (web_errors[i].status == status)
			e = &web_errors[i];
	if (e) {
		n = strlen(e->message) - 1; /* before the final '.' */
		if (url)
			snprintf(msg, sizeof msg, "%.*s (%.16s %.300s).", (int)n, e->message, method, url);
		else
			snprintf(msg, sizeof msg, "%s", e->message);
	} else if (url)
		snprintf(msg, sizeof msg, "The web server refused the request (%.16s %.300s): %d %s.", method, url,
			 status, hio_reason(status));
	else
		snprintf(msg, sizeof msg, "The web server refused the request: %d %s.", status, hio_reason(status));
	code = e ? e->code : status >= 500 ? "internal_error" : "invalid_request";
	err = wire_error(msg, e && e->type ? e->type : wire_error_type(status), NULL, code);
	if (err)
		hio_send_json(h, status, err);
	else
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	json_decref(err);
}

/* faulty: MCPGW_FAULT names the route ("/v1/tools/{}") or the method and the
 * route ("POST /v1/tools") of this request */
static int faulty(const struct responder *r, const struct route *rt, const char *method)
{
	const char *p = r->fault;
	size_t n = strlen(rt->path), m = strlen(method);

	while (*p) {
		size_t k;

		p += strspn(p, " ");
		k = strcspn(p, ",");
		if (k == n && strncmp(p, rt->path, n) == 0)
			return 1;
		if (k == m + 1 + n && strncmp(p, method, m) == 0 && p[m] == ' ' && strncmp(p + m + 1, rt->path, n) == 0)
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

/* fault_handler: MCPGW_FAULT's handler: fails inside, leaving the request unanswered */
static enum route_status fault_handler(struct exchange *x)
{
	log_warn("%s %s: MCPGW_FAULT names %s: failing on purpose", x->method, x->path, x->route->path);
	return ROUTE_DONE;
}

/* dispatch: everything before the handler, then the handler; what it returned */
/* take_slot: one of the host's capacity slots for x (x->slot), or the 503 that
 * says none is free (Retry-After: 1; the OpenAI SDKs retry a 503 after it) and -1.
 * Without a table (no state directory yet, or it failed: logged) the gate is open. */
static int take_slot(struct responder *r, struct exchange *x)
{
	struct capacity *c = responder_capacity(r);
	int rc = c ? capacity_take(c, x->auth.key_id, &x->slot) : CAPACITY_TAKEN;

	if (rc == CAPACITY_TAKEN)
		return 0;
	x->slot = -1;
	if (rc < 0) {
		log_warn("capacity table: %s: the request is served without a slot", strerror(errno));
		return 0;
	}
	(void)hio_add_headers(x->h, "Retry-After: 1\r\n");
	if (rc == CAPACITY_FULL)
		oai_send_error(x->h, 503, NULL, "capacity_exceeded",
			       "The gateway is at capacity: all %d slots for %s requests on this host are in use "
			       "(MCPGW_CAPACITY). Retry after 1 s.",
			       capacity_slots(c), x->route->path);
	else
		oai_send_error(x->h, 503, NULL, "capacity_exceeded",
			       "The gateway is nearly at capacity (MCPGW_CAPACITY %d) and this caller already holds "
			       "its fair share of the slots left for %s requests. Retry after 1 s.",
			       capacity_slots(c), x->route->path);
	log_info("%s %s: 503 capacity_exceeded (%s)", x->method, x->path,
		 rc == CAPACITY_FULL ? "every slot in use" : "the caller's fair share reached");
	return -1;
}

static enum route_status dispatch(struct responder *r, struct exchange *x)
{
	const char *uri = hio_param(x->h, "REQUEST_URI");
	char allow[128];
	int status;

	x->method = hio_param(x->h, "REQUEST_METHOD");
	if (!x->method || !*x->method)
		x->method = "GET";
	/* MCPGW_BODY_TOO_LARGE: set by the web server's config (mod_fcgid, which calls
	 * the responder with an empty body after refusing a large one), never by a request */
	if ((status = web_server_error(x->h)) != 0 || (status = hio_param(x->h, "MCPGW_BODY_TOO_LARGE") ? 413 : 0)) {
		send_web_server_error(x->h, status, r->settings_ok ? r->s.max_body_bytes : 0);
		return ROUTE_DONE;
	}
	if (uri && strcspn(uri, "?#") >= sizeof x->path) {
		send_not_found(x->h, x->method, "(a path too long to show)");
		return ROUTE_DONE;
	}
	hio_path(x->h, x->path, sizeof x->path);
	log_debug("%s %s", x->method, x->path);
	x->route = responder_route(r->def->routes, x->method, x->path, &x->arg, &status, allow, sizeof allow);
	/* Host, Origin, CORS and OPTIONS, JSON bodies: before anything else answers (lib/http/origin.c) */
	if (origin_guard(x->h, r->settings_ok ? &r->s : NULL, x->method, x->route ? x->route->methods : allow,
			 x->route && (x->route->needs & ROUTE_BODY)))
		return ROUTE_DONE;
	if (!x->route) {
		if (status == 405)
			oai_send_405(x->h, allow, x->method);
		else
			send_not_found(x->h, x->method, x->path);
		return ROUTE_DONE;
	}
	if (!r->settings_ok) {
		responder_send_config_error(x->h, r->settings_err);
		return ROUTE_DONE;
	}
	/* the API key, once for every route, before the body is read (lib/http/auth.h) */
	if (auth_check(&x->auth, x->h, &r->s,
		       ((x->route->needs & ROUTE_UPSTREAM) ? AUTH_SPENDS_TOKENS : 0) |
			       ((x->route->needs & (ROUTE_BROKER | ROUTE_BODY)) == (ROUTE_BROKER | ROUTE_BODY)
					? AUTH_SPENDS_TOOL_CALLS
					: 0),
		       x->method, x->path) < 0)
		return ROUTE_DONE;
	/* the caller is the key the check accepted ("" none), never anything the client asserts */
	accesslog_set_caller(&x->log, x->auth.key_id);
	if ((x->route->needs & ROUTE_CAPACITY) && take_slot(r, x) < 0)
		return ROUTE_DONE;
	if ((x->route->needs & ROUTE_UPSTREAM) && !x->w->up) {
		responder_send_config_error(x->h, "the upstream client could not be made (see the responders' log)");
		return ROUTE_DONE;
	}
	if ((x->route->needs & ROUTE_UPSTREAM) && r->def->upstream->request_begin)
		r->def->upstream->request_begin(x->w);
	if ((x->route->needs & ROUTE_BROKER) && !x->w->bc) {
		responder_send_config_error(x->h, "the broker client could not be made (out of memory)");
		return ROUTE_DONE;
	}
	/* a body the web server may still be receiving from its client (mod_proxy_fcgi streams it
	 * on), read without the turn to accept: a slow client holds this worker only */
	if ((x->route->needs & ROUTE_BODY) && !hio_param(x->h, "MCPGW_BODY_BUFFERED"))
		responder_turn_release(x);
	if ((x->route->needs & ROUTE_BODY) && read_body(r, x) < 0)
		return ROUTE_DONE;
	if (!(x->route->needs & ROUTE_QUICK))
		responder_turn_release(x);
	if (faulty(r, x->route, x->method))
		return fault_handler(x);
	if ((x->route->needs & ROUTE_BROKER) && r->def->broker->request_caller) /* the audit table's key id */
		r->def->broker->request_caller(x->w, x->auth.key_id);
	return x->route->handler(x);
}

void exchange_finish(struct exchange *x)
{
	pthread_mutex_lock(&x->lock);
	x->finished = 1;
	pthread_cond_signal(&x->done);
	pthread_mutex_unlock(&x->lock);
}

int responder_take(struct exchange *x, struct responder_taken *t)
{
	memset(t, 0, sizeof *t);
	if (hio_hand_over(x->h, &t->h) < 0)
		return -1;
	t->r = x->w->r;
	t->log = x->log;
	t->auth = x->auth;
	x->auth.policy = NULL; /* t's now (auth_caller_clear when its run is freed) */
	t->slot = x->slot;
	t->endpoint = x->route ? x->route->path : NULL;
	snprintf(t->method, sizeof t->method, "%s", x->method ? x->method : "GET");
	t->body = x->body;
	memset(&x->body, 0, sizeof x->body);
	x->slot = -1;
	return 0;
}

void responder_taken_end(struct responder_taken *t)
{
	if (t->ended)
		return;
	t->ended = 1;
	accesslog_end(&t->log, t->method, t->endpoint, t->h.status_sent ? t->h.status : 500, t->h.bytes_out);
	accesslog_write(&t->log, responder_metrics(t->r));
	if (t->slot >= 0)
		capacity_give(t->r->capacity, t->slot);
	t->slot = -1;
	buf_free(&t->body);
	hio_release(&t->h); /* its answer's headers are written (or never will be) */
}

void responder_serve_one(struct responder_worker *w)
{
	struct exchange x;
	enum route_status st;

	memset(&x, 0, sizeof x);
	x.w = w;
	x.h = &w->h;
	x.app = w->r->def->app;
	x.arg = "";
	x.slot = -1;
	/* statically initialised (no call: a responder whose handlers never wait touches no
	 * threading code per request); used only when a handler returns PENDING */
	x.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	x.done = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	accesslog_begin(&x.log);
	st = dispatch(w->r, &x);
	if (st == ROUTE_TAKEN) { /* another thread answers, logs it and gives its slot back */
		memset(&w->last, 0, sizeof w->last);
		w->trim = 0;
		buf_free(&x.body);
		auth_caller_clear(&x.auth);
		if (x.slot >= 0)
			capacity_give(w->r->capacity, x.slot);
		return;
	}
	if (st == ROUTE_PENDING) {
		x.pending = 1;
		pthread_mutex_lock(&x.lock);
		while (!x.finished)
			pthread_cond_wait(&x.done, &x.lock);
		pthread_mutex_unlock(&x.lock);
	}
	if (!w->h.status_sent) {
		log_error("%s %s: the handler of %s left the request unanswered", x.method, x.path,
			  x.route ? x.route->path : "?");
		oai_send_error(&w->h, 500, NULL, "internal_error",
			       "The server had an internal error while answering %.16s %.300s (the responders' log says more).",
			       x.method, x.path);
	}
	/* one line per request (issue 14, case 7), written once the request is finished
	 * (serve_and_log): the route's pattern names the endpoint */
	accesslog_end(&x.log, x.method, x.route ? x.route->path : NULL, w->h.status, w->h.bytes_out);
	w->last = x.log;
	w->trim = x.body.len >= RESPONDER_TRIM_AFTER || w->h.bytes_out >= RESPONDER_TRIM_AFTER;
	buf_free(&x.body);
	auth_caller_clear(&x.auth);
	if (x.slot >= 0)
		capacity_give(w->r->capacity, x.slot);
	if (x.pending) {
		pthread_cond_destroy(&x.done);
		pthread_mutex_destroy(&x.lock);
	}
}

/* ---- what the responders share through the state directory ---- */

/* A file of the state directory opened on first use, once the directory exists. */
struct shared_file {
	pthread_mutex_t lock;
	int64_t next_try; /* monotonic s: a missing state directory is not looked for on every request */
};

/* shared_open: *slot (read and set atomically), or open(r) once the state directory exists, tried
 * at most once a second; open logs its own failure and returns NULL */
static void *shared_open(struct responder *r, void **slot, struct shared_file *f, void *(*open)(struct responder *r))
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	struct timespec now;

	if (p || !r->settings_ok)
		return p;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&f->lock);
	if (!(p = *slot) && now.tv_sec >= f->next_try) {
		f->next_try = now.tv_sec + 1;
		if (access(r->s.state_dir, F_OK) == 0)
			p = open(r);
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&f->lock);
	return p;
}

/* open_metrics: the shared counters (lib/core/metrics.h), or NULL (logged) */
static void *open_metrics(struct responder *r)
{
	char err[512];
	struct metrics *m = metrics_open(r->s.state_dir, err, sizeof err);

	if (!m)
		log_warn("%s", err);
	return m;
}

/* open_capacity: the host's capacity slots (lib/core/capacity.h), or NULL (logged: no gate then) */
static void *open_capacity(struct responder *r)
{
	char path[PATH_MAX], err[PATH_MAX + 128];
	struct capacity *c = NULL;

	if (statedir_path(path, sizeof path, r->s.state_dir, STATEDIR_CAPACITY) < 0)
		log_warn("capacity table: the state directory's path is too long: no capacity gate");
	else if (!(c = capacity_open(path, r->s.capacity, err, sizeof err)))
		log_warn("%s: no capacity gate until it can be opened", err);
	return c;
}

static struct shared_file metrics_file = { .lock = PTHREAD_MUTEX_INITIALIZER },
			  capacity_file = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct metrics *responder_metrics(struct responder *r)
{
	return shared_open(r, (void **)&r->metrics, &metrics_file, open_metrics);
}

struct capacity *responder_capacity(struct responder *r)
{
	return shared_open(r, (void **)&r->capacity, &capacity_file, open_capacity);
}

/* ---- start-up and the accept loop ---- */

void responder_init(struct responder *r, const struct responder_def *def)
{
	const char *fault;

	memset(r, 0, sizeof *r);
	r->def = def;
	for (const struct route *rt = def->routes; rt->path; rt++)
		r->needs |= rt->needs;
	r->settings_ok = settings_load(&r->s, r->settings_err, sizeof r->settings_err) == 0;
	/* a state directory another user owns or others may write is refused (issue 14, case 5); a
	 * missing one is made by whoever starts the broker */
	if (r->settings_ok && access(r->s.state_dir, F_OK) == 0 &&
	    statedir_check(r->s.state_dir, r->settings_err, sizeof r->settings_err) < 0)
		r->settings_ok = 0;
	log_init(def->name, r->settings_ok ? r->s.log_level : LOGL_INFO, r->settings_ok ? r->s.log_file : NULL);
	if (!r->settings_ok)
		log_error("%s", r->settings_err);
	/* after settings_load: .env has been read into the environment */
	fault = getenv("MCPGW_FAULT");
	if (fault && *fault) {
		snprintf(r->fault, sizeof r->fault, "%s", fault);
		log_warn("MCPGW_FAULT=%s: these routes fail on purpose (for tests only)", r->fault);
	}
	if (r->settings_ok &&
	    (((r->needs & ROUTE_UPSTREAM) && !def->upstream) || ((r->needs & ROUTE_BROKER) && !def->broker))) {
		snprintf(r->settings_err, sizeof r->settings_err,
			 "%s: a route needs a client the program does not link "
			 "(responder_def.upstream / .broker)",
			 def->name);
		log_error("%s", r->settings_err);
		r->settings_ok = 0;
	}
	if (r->settings_ok && def->setup && def->setup(r) < 0) {
		log_error("%s", r->settings_err);
		r->settings_ok = 0;
	}
}

/* worker_init: w's request, clients and program data; 0 or -1 */
static int worker_init(struct responder *r, struct responder_worker *w)
{
	w->r = r;
	if (hio_init(&w->h) < 0)
		return -1;
	if (r->def->worker_size && !(w->data = calloc(1, r->def->worker_size)))
		return -1;
	if (!r->settings_ok)
		return 0;
	w->h.drain_max = r->s.max_drain_bytes;
	if ((r->needs & ROUTE_UPSTREAM) && r->def->upstream->worker_init(w) < 0)
		return -1;
	if ((r->needs & ROUTE_BROKER) && r->def->broker->worker_init(w) < 0)
		return -1;
	return r->def->worker_setup ? r->def->worker_setup(w) : 0;
}

static void worker_free(struct responder *r, struct responder_worker *w)
{
	if (r->def->worker_teardown && w->r)
		r->def->worker_teardown(w);
	hio_done(&w->h);
	if (r->def->upstream)
		r->def->upstream->worker_free(w);
	if (r->def->broker)
		r->def->broker->worker_free(w);
	free(w->data);
}

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stopping;

/* serve_and_log: answer the request accepted on w, finish it, then its access-log line
 * and counts (off the client's time) */
static void serve_and_log(struct responder_worker *w)
{
	responder_serve_one(w);
	hio_finish(&w->h);
	accesslog_write(&w->last, responder_metrics(w->r));
	if (w->trim) /* off the client's time: the answer is out */
		(void)malloc_trim(0);
}

/* The pool of workers of a threaded responder: def->threads of them kept
 * ready; while every one is busy (the last idle one just accepted a request)
 * the one that accepted starts more (a quarter of the live ones), up to r->nw (the host's capacity
 * and the kept ones: a process can always accept, if only to answer 503
 * capacity_exceeded at once); one that finds more than the kept ones idle
 * for RESPONDER_IDLE_EXIT_MS ends, giving its memory back. Each worker frees
 * its own clients when it ends; one that retires while serving detaches itself,
 * the ones ending at shutdown are joined by main (their thread-local state, such
 * as libcurl's, freed before the process exits). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t ended; /* live fell */
	int live;             /* threads started and not ended (or about to start) */
	int idle;             /* of them, waiting to accept */
	int keep;             /* def->threads */
	int *free_slots;      /* indexes of r->ws not in use, nfree of them */
	int nfree;
	unsigned retired; /* workers ended while serving: every 64th trims the heap */
	pthread_attr_t attr;
	/* the kept workers' turn to accept (pool_turn): an epoll instance with the FastCGI
	 * listening socket (one-shot) and stop_fd (an eventfd written at shutdown); -1 none */
	int epfd;
	int stop_fd;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .ended = PTHREAD_COND_INITIALIZER, .epfd = -1, .stop_fd = -1 };

/* The kept workers take turns to accept in last-in, first-out order: each waits in
 * epoll_wait on pool.epfd, which holds the listening socket with EPOLLONESHOT, and
 * the kernel wakes the waiter that came last (epoll's exclusive waiters; accept(2)'s
 * own waiters are woken first-in, first-out, so a pool of many kept workers served
 * each request on the thread that had been idle longest: its stack, its clients'
 * buffers and its allocator's cache cold every time; POST /v1/tools at one
 * connection: tools.fcgi 52 us of CPU a request, 45 with the turns). The woken worker accepts, then
 * arms the socket again: a connection already waiting wakes the next most recent
 * waiter at once. At shutdown stop_fd, level-triggered, wakes them all. */

/* pool_turn_open: pool.epfd for the listening socket fd; 0, or -1 (the kept workers then
 * wait in accept side by side, as without it) */
static int pool_turn_open(int fd)
{
	struct epoll_event ls = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd };
	struct epoll_event st = { .events = EPOLLIN };

	if ((pool.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -1;
	st.data.fd = pool.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool.stop_fd < 0 || epoll_ctl(pool.epfd, EPOLL_CTL_ADD, fd, &ls) < 0 ||
	    epoll_ctl(pool.epfd, EPOLL_CTL_ADD, pool.stop_fd, &st) < 0) {
		if (pool.stop_fd >= 0)
			close(pool.stop_fd);
		close(pool.epfd);
		pool.epfd = pool.stop_fd = -1;
		return -1;
	}
	return 0;
}

/* pool_turn_close: pool.epfd and stop_fd closed (after every worker ended) */
static void pool_turn_close(void)
{
	if (pool.epfd >= 0)
		close(pool.epfd);
	if (pool.stop_fd >= 0)
		close(pool.stop_fd);
	pool.epfd = pool.stop_fd = -1;
}

/* pool_turn: wait for this worker's turn to accept: 1 (a connection waits on the listening socket,
 * and it is disarmed until pool_turn_rearm), 0 at shutdown */
static int pool_turn(void)
{
	struct epoll_event ev;

	for (;;) {
		int n = epoll_wait(pool.epfd, &ev, 1, -1);

		if (stopping)
			return 0;
		if (n == 1 && ev.data.fd != pool.stop_fd)
			return 1;
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait on the FastCGI socket: %s", strerror(errno));
			return 0;
		}
	}
}

/* pool_turn_rearm: the listening socket armed again after an accept (a waiting connection
 * wakes the next waiter at once) */
static void pool_turn_rearm(int fd)
{
	struct epoll_event ls = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd };

	if (epoll_ctl(pool.epfd, EPOLL_CTL_MOD, fd, &ls) < 0)
		log_error("epoll_ctl on the FastCGI socket: %s: the kept workers stop accepting", strerror(errno));
}

/* turn_give_back: w's turn to accept ended, the FastCGI socket armed for the next waiter */
static void turn_give_back(struct responder_worker *w)
{
	w->turn = 0;
	pool_turn_rearm(w->h.req.listen_sock);
}

void responder_turn_release(struct exchange *x)
{
	if (x->w && x->w->turn)
		turn_give_back(x->w);
}

/* pool_turn_next: w holds the turn: a connection already waiting is accepted at once (1, or what
 * hio_accept says); none (or shutdown): the turn given back, 0 (w then waits for its next turn) */
static int pool_turn_next(struct responder_worker *w)
{
	struct pollfd pl = { .fd = w->h.req.listen_sock, .events = POLLIN };

	if (!stopping && poll(&pl, 1, 0) == 1 && (pl.revents & POLLIN))
		return hio_accept(&w->h);
	turn_give_back(w);
	return 0;
}

static void *worker_loop(void *arg);

/* pool_start: a worker thread on w (initialised); 0 or -1 (w's slot then still the caller's) */
static int pool_start(struct responder_worker *w)
{
	w->started = 1; /* before the thread runs: one that retires clears it */
	if (pthread_create(&w->th, &pool.attr, worker_loop, w) != 0) {
		w->started = 0;
		return -1;
	}
	return 0;
}

/* pool_grow: one more worker (the pool has a free slot and live was counted for it already) */
static void pool_grow(struct responder *r)
{
	struct responder_worker *w;
	int i;

	pthread_mutex_lock(&pool.lock);
	i = pool.nfree > 0 ? pool.free_slots[--pool.nfree] : -1;
	pthread_mutex_unlock(&pool.lock);
	if (i >= 0) {
		w = &r->ws[i];
		memset(w, 0, sizeof *w);
		if (worker_init(r, w) == 0 && pool_start(w) == 0)
			return;
		worker_free(r, w);
		log_warn("no worker could be added (%s): the ones running go on", strerror(errno));
	}
	pthread_mutex_lock(&pool.lock);
	if (i >= 0)
		pool.free_slots[pool.nfree++] = i;
	pool.live--;
	pthread_cond_signal(&pool.ended);
	pthread_mutex_unlock(&pool.lock);
}

/* pool_leave: w's thread ends: its clients freed, its slot given back (retiring while serving: the
 * thread detached, the slot free for another; at shutdown: the slot kept, main joins the thread) */
static void pool_leave(struct responder_worker *w)
{
	struct responder *r = w->r;
	int i = (int)(w - r->ws);

	int trim;

	worker_free(r, w);
	pthread_mutex_lock(&pool.lock);
	if (!stopping) {
		(void)pthread_detach(pthread_self());
		w->started = 0;
		pool.free_slots[pool.nfree++] = i;
	}
	pool.live--;
	/* back to the kept workers (or every 64 that ended): what the ended ones freed goes back to
	 * the system (their arenas keep it otherwise) */
	trim = !stopping && (pool.live <= pool.keep || ++pool.retired % 64 == 0);
	pthread_cond_signal(&pool.ended);
	pthread_mutex_unlock(&pool.lock);
	if (trim)
		(void)malloc_trim(0);
}

/* pool_retire: an idle worker that waited RESPONDER_IDLE_EXIT_MS: 1 (counted out of the idle
 * ones: it ends) when more than the kept workers are idle, else 0 (it waits on) */
static int pool_retire(void)
{
	int retire;

	pthread_mutex_lock(&pool.lock);
	retire = pool.idle > pool.keep;
	if (retire)
		pool.idle--;
	pthread_mutex_unlock(&pool.lock);
	return retire;
}

/* accept_or_retire: the accept lock, then a request accepted on w: 1; 0 at shutdown or when w
 * ends because more than the kept workers were idle for RESPONDER_IDLE_EXIT_MS; -1 on error */
static int accept_or_retire(struct responder_worker *w)
{
	if (w->r->nw <= pool.keep || w - w->r->ws < pool.keep) {
		/* a kept worker (the first def->threads slots: they never retire), and every worker of
		 * a pool that never grows (no capacity route): they take their turns (pool_turn, the
		 * one that waited last first; without it, in accept side by side), not on a lock whose
		 * hand-over woke the next worker at every request only for it to block in accept (a
		 * futex wake and a context switch) */
		int rc;

		if (pool.epfd >= 0) {
			/* the turn kept from the last request (responder_turn_release): the next waiting
			 * connection taken without a sleep; else the turn waited for, and kept once a
			 * request is accepted (given back by the request, or here when none waits) */
			rc = w->turn ? pool_turn_next(w) : 0;
			if (rc == 0 && !w->turn && pool_turn()) {
				w->turn = 1;
				rc = hio_accept(&w->h);
			}
			if (rc <= 0 && w->turn) /* shutdown or an error: the turn is not taken along */
				turn_give_back(w);
		} else {
			rc = stopping ? 0 : hio_accept(&w->h);
		}
		pthread_mutex_lock(&pool.lock);
		pool.idle--;
		pthread_mutex_unlock(&pool.lock);
		return rc;
	}
	for (;;) {
		struct timespec until;
		int rc;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += RESPONDER_IDLE_EXIT_MS / 1000;
		rc = pthread_mutex_timedlock(&accept_lock, &until);
		if (rc == ETIMEDOUT) {
			if (pool_retire())
				return 0;
			continue;
		}
		if (rc != 0)
			return -1;
		/* the extra worker holding the lock waits for a connection only as long as a worker may
		 * stay idle, so that the last one (nobody behind it on the lock to time out) retires too;
		 * the kept workers wait in accept beside it, and whichever the kernel wakes takes it */
		if (!stopping) {
			struct pollfd pl = { .fd = w->h.req.listen_sock, .events = POLLIN };
			int n = poll(&pl, 1, RESPONDER_IDLE_EXIT_MS);

			if (n == 0 || (n < 0 && errno == EINTR)) {
				pthread_mutex_unlock(&accept_lock);
				if (n == 0 && pool_retire())
					return 0;
				continue;
			}
		}
		rc = stopping ? 0 : hio_accept(&w->h);
		pthread_mutex_unlock(&accept_lock);
		pthread_mutex_lock(&pool.lock);
		pool.idle--;
		pthread_mutex_unlock(&pool.lock);
		return rc;
	}
}

/* worker_loop: accept (one worker at a time), answer, finish; until shutdown or retired */
static void *worker_loop(void *arg)
{
	struct responder_worker *w = arg;

	for (;;) {
		int grow;

		pthread_mutex_lock(&pool.lock);
		pool.idle++;
		pthread_mutex_unlock(&pool.lock);
		if (accept_or_retire(w) <= 0)
			break;
		/* none left to accept: a quarter more (1..RESPONDER_GROW_MAX) at once, so a burst
		 * of streams does not wait for one thread start after another */
		pthread_mutex_lock(&pool.lock);
		grow = 0;
		if (pool.idle == 0 && !stopping) {
			grow = pool.live / 4 < 1                    ? 1
			       : pool.live / 4 > RESPONDER_GROW_MAX ? RESPONDER_GROW_MAX
								    : pool.live / 4;
			if (grow > w->r->nw - pool.live)
				grow = w->r->nw - pool.live;
			pool.live += grow;
		}
		pthread_mutex_unlock(&pool.lock);
		while (grow-- > 0)
			pool_grow(w->r);
		serve_and_log(w);
	}
	pool_leave(w);
	return NULL;
}

/* log_reopened: SIGHUP came: the log file opened again (logrotate moved it), said in the new one */
static void log_reopened(void)
{
	switch (log_reopen()) {
	case 0: log_info("SIGHUP: log file reopened"); break;
	case 1: break; /* logging to stderr, not a file */
	default: log_error("SIGHUP: cannot reopen the log file: %s; still writing the old one", strerror(errno));
	}
}

/* on_hup: one worker serving in main: the next line logged reopens the log first */
static void on_hup(int sig)
{
	(void)sig;
	log_reopen_ask();
}

/* watch_hup: SIGHUP reopens the log (not the default: the end of the process) when main serves alone */
static void watch_hup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) < 0)
		log_warn("SIGHUP: cannot watch for it (%s): it ends this responder", strerror(errno));
}

/* serve_threads: the pool (see pool above) with r->ws[0] ready, keep workers at
 * first; main waits for SIGTERM/SIGINT (SIGHUP reopens the log), then wakes the
 * workers blocked in accept and gives requests in progress grace_ms
 * (MCPGW_SHUTDOWN_GRACE). 0 when every worker ended (each freed its clients), or
 * 1 when one outlived it (then nothing may be freed). */
static int serve_threads(struct responder *r, int keep, long grace_ms)
{
	sigset_t set;
	struct timespec deadline;
	int sig = 0, rc = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_attr_init(&pool.attr) != 0)
		return 1;
	(void)pthread_attr_setstacksize(&pool.attr, RESPONDER_STACK);
	pool.keep = keep;
	if (keep > 1 && pool_turn_open(r->ws[0].h.req.listen_sock) < 0)
		log_warn("the kept workers' turns (epoll): %s: they wait in accept side by side", strerror(errno));
	for (int i = r->nw - 1; i >= 1; i--)
		pool.free_slots[pool.nfree++] = i;
	pool.live = 1;
	if (pool_start(&r->ws[0]) < 0) {
		pool.live = 0;
		worker_free(r, &r->ws[0]);
	}
	for (int i = 1; i < keep; i++) {
		pthread_mutex_lock(&pool.lock);
		pool.live++;
		pthread_mutex_unlock(&pool.lock);
		pool_grow(r);
	}
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		log_reopened();
	if (sig == SIGHUP)
		sig = SIGTERM; /* sigwait failed */
	log_info("signal %d: stopping", sig);
	pthread_mutex_lock(&pool.lock); /* a worker ending from here on is joined below, not detached */
	stopping = 1;
	pthread_mutex_unlock(&pool.lock);
	FCGX_ShutdownPending();
	shutdown(0, SHUT_RDWR); /* wakes the workers blocked in accept on the FastCGI socket */
	if (pool.stop_fd >= 0 && eventfd_write(pool.stop_fd, 1) < 0) /* and those waiting for their turn */
		log_error("eventfd_write: %s: workers waiting to accept may not stop", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool.lock);
	while (pool.live > 0 && rc == 0)
		rc = pthread_cond_timedwait(&pool.ended, &pool.lock, &deadline) == ETIMEDOUT && pool.live > 0;
	pthread_mutex_unlock(&pool.lock);
	/* every worker left its loop: each one ending at shutdown is waited for to its very end */
	for (int i = 0; !rc && i < r->nw; i++)
		if (r->ws[i].started) {
			(void)pthread_join(r->ws[i].th, NULL);
			r->ws[i].started = 0;
		}
	pthread_attr_destroy(&pool.attr);
	if (!rc)
		pool_turn_close();
	return rc;
}

int responder_main(const struct responder_def *def)
{
	static struct responder r; /* ~17 KB of settings: process lifetime */
	const struct responder_client *clients[] = { def->upstream, def->broker };
	int n, max, rc = 0;

	signal(SIGPIPE, SIG_IGN);
	if (mallopt(M_MMAP_THRESHOLD, RESPONDER_MMAP_THRESHOLD) != 1) /* 0 under another allocator (ASan's) */
		log_debug("mallopt(M_MMAP_THRESHOLD) refused: large requests may keep their memory until malloc_trim");
	/* no fastbins (tcache still takes most small frees): a small chunk freed next to a thread
	 * arena's top merges into it at once, and the top is given back (heap_trim) as it grows.
	 * With fastbins the chunks of a large parsed request were merged into the top only by
	 * malloc_trim's consolidation, and malloc_trim gives back no thread arena's top (glibc's
	 * mtrim: the main arena's only): 22 MB stayed resident (bounds.bats) */
	if (mallopt(M_MXFAST, 0) != 1)
		log_debug("mallopt(M_MXFAST) refused");
	/* the clients' global state (libcurl's): once, here, before anything else uses it */
	for (size_t i = 0; i < sizeof clients / sizeof *clients; i++)
		if (clients[i] && clients[i]->global_init && clients[i]->global_init() < 0) {
			while (i-- > 0)
				if (clients[i] && clients[i]->global_cleanup)
					clients[i]->global_cleanup();
			return 1;
		}
	responder_init(&r, def);
	/* a pool of many threads: few malloc arenas (glibc makes up to 8 per core), so what one worker
	 * freed serves the next instead of staying behind in an arena of its own after a burst (load.bats:
	 * RSS +10 to 13 % after a minute of load with 8 per core, 0 % with 2, at the same rate). The loop
	 * driver's few threads wait on an arena's lock in most plain chats at 32 connections with two (2
	 * futex calls a request; 1 with 3 arenas, 0.2 with glibc's 16), but more arenas cost memory: with
	 * 3, 4 KB more per stream at 1,000 streams (bench/capacity.sh), with 16, 1.2 MB more per process,
	 * for no rate that the benchmark could tell from its noise */
	if (mallopt(M_ARENA_MAX, RESPONDER_ARENAS) != 1)
		log_debug("mallopt(M_ARENA_MAX) refused: memory after a burst may stay in idle arenas");
	n = r.settings_ok && def->threads ? def->threads(&r) : 1;
	if (n < 1)
		n = 1;
	/* room for the pool to grow: one worker per capacity slot besides the kept ones; one kept worker
	 * grows none (mod_fcgid sends a process one request at a time: MCPGW_CHAT_THREADS=1 there) */
	max = r.settings_ok && n > 1 && (r.needs & ROUTE_CAPACITY) && !(def->pool_fixed && def->pool_fixed(&r))
		      ? n + r.s.capacity
		      : n;
	if (!(r.ws = calloc((size_t)max, sizeof *r.ws)) || !(pool.free_slots = calloc((size_t)max, sizeof(int))) ||
	    worker_init(&r, &r.ws[0]) < 0) {
		log_error("cannot start: FastCGI initialisation failed or out of memory");
		rc = 1;
		goto out;
	}
	r.nw = 1;
	(void)fdlimit_raise(); /* a worker holds its client's, an upstream and a broker connection */
	if (r.ws[0].h.cgi)
		log_spool_flush();       /* one request: its access line written at once, no log thread for it */
	if (r.ws[0].h.cgi || max == 1) { /* plain CGI (one request), or one worker and no pool: this thread */
		if (!r.ws[0].h.cgi)
			watch_hup();
		while ((rc = hio_accept(&r.ws[0].h)) == 1)
			serve_and_log(&r.ws[0]);
		rc = rc < 0 ? 1 : 0;
		goto out;
	}
	r.nw = max;
	if (serve_threads(&r, n, r.settings_ok ? r.s.shutdown_grace_ms : 30000) != 0)
		return 1; /* a request outlived the grace period: leave without freeing */
	r.nw = 0;         /* each worker freed its own */
out:
	for (int i = 0; i < r.nw; i++)
		worker_free(&r, &r.ws[i]);
	if (!r.nw && r.ws && rc)
		worker_free(&r, &r.ws[0]);
	free(r.ws);
	free(pool.free_slots);
	if (def->teardown)
		def->teardown(&r);
	metrics_close(r.metrics);
	capacity_close(r.capacity);
	for (size_t i = 0; i < sizeof clients / sizeof *clients; i++)
		if (clients[i] && clients[i]->global_cleanup)
			clients[i]->global_cleanup();
	log_close();
	return rc;
}
