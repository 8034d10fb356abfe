/* responder.c: the responder skeleton: start-up, accept loop, routing, body reading and the skeleton's own answers. */
#include "http/responder.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/statedir.h"
#include "http/oai.h"
#include "http/origin.h"
#include "openai/wire.h"

#define RESPONDER_STACK (1024 * 1024) /* a worker thread's stack */
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
	if ((x->route->needs & ROUTE_BODY) && read_body(r, x) < 0)
		return ROUTE_DONE;
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

void responder_serve_one(struct responder_worker *w)
{
	struct exchange x;

	memset(&x, 0, sizeof x);
	x.w = w;
	x.h = &w->h;
	x.app = w->r->def->app;
	x.arg = "";
	/* statically initialised (no call: a responder whose handlers never wait touches no
	 * threading code per request); used only when a handler returns PENDING */
	x.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	x.done = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
	accesslog_begin(&x.log);
	if (dispatch(w->r, &x) == ROUTE_PENDING) {
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
	if (x.pending) {
		pthread_cond_destroy(&x.done);
		pthread_mutex_destroy(&x.lock);
	}
}

/* ---- the shared counters ---- */

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

struct metrics *responder_metrics(struct responder *r)
{
	static int64_t next_try; /* monotonic s: a missing state directory is not looked for on every request */
	struct metrics *m = __atomic_load_n(&r->metrics, __ATOMIC_ACQUIRE);
	struct timespec now;
	char err[512];

	if (m || !r->settings_ok)
		return m;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&metrics_lock);
	if (!(m = r->metrics) && now.tv_sec >= next_try) {
		next_try = now.tv_sec + 1;
		if (access(r->s.state_dir, F_OK) == 0 && !(m = metrics_open(r->s.state_dir, err, sizeof err)))
			log_warn("%s", err);
		__atomic_store_n(&r->metrics, m, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&metrics_lock);
	return m;
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

/* worker_loop: accept (one worker at a time), answer, finish; until shutdown */
static void *worker_loop(void *arg)
{
	struct responder_worker *w = arg;

	for (;;) {
		int rc;

		pthread_mutex_lock(&accept_lock);
		rc = stopping ? 0 : hio_accept(&w->h);
		pthread_mutex_unlock(&accept_lock);
		if (rc <= 0)
			break;
		serve_and_log(w);
	}
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

/* serve_threads: n workers; main waits for SIGTERM/SIGINT (SIGHUP reopens the log), then wakes the workers
 * blocked in accept and gives requests in progress grace_ms (MCPGW_SHUTDOWN_GRACE). 0, or 1 when one
 * outlived it (then nothing may be freed). */
static int serve_threads(struct responder_worker *ws, int n, long grace_ms)
{
	sigset_t set;
	pthread_attr_t attr;
	struct timespec deadline;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_attr_init(&attr) != 0)
		return 1;
	(void)pthread_attr_setstacksize(&attr, RESPONDER_STACK);
	for (int i = 0; i < n; i++)
		ws[i].started = pthread_create(&ws[i].th, &attr, worker_loop, &ws[i]) == 0;
	pthread_attr_destroy(&attr);
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		log_reopened();
	if (sig == SIGHUP)
		sig = SIGTERM; /* sigwait failed */
	log_info("signal %d: stopping", sig);
	stopping = 1;
	FCGX_ShutdownPending();
	shutdown(0, SHUT_RDWR); /* wakes the workers blocked in accept on the FastCGI socket */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += grace_ms / 1000;
	deadline.tv_nsec += (grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (int i = 0; i < n; i++)
		if (ws[i].started && pthread_timedjoin_np(ws[i].th, NULL, &deadline) != 0)
			return 1;
	return 0;
}

int responder_main(const struct responder_def *def)
{
	static struct responder r; /* ~17 KB of settings: process lifetime */
	const struct responder_client *clients[] = { def->upstream, def->broker };
	int n, rc = 0;

	signal(SIGPIPE, SIG_IGN);
	if (mallopt(M_MMAP_THRESHOLD, RESPONDER_MMAP_THRESHOLD) != 1) /* 0 under another allocator (ASan's) */
		log_debug("mallopt(M_MMAP_THRESHOLD) refused: large requests may keep their memory until malloc_trim");
	/* the clients' global state (libcurl's): once, here, before anything else uses it */
	for (size_t i = 0; i < sizeof clients / sizeof *clients; i++)
		if (clients[i] && clients[i]->global_init && clients[i]->global_init() < 0) {
			while (i-- > 0)
				if (clients[i] && clients[i]->global_cleanup)
					clients[i]->global_cleanup();
			return 1;
		}
	responder_init(&r, def);
	n = r.settings_ok && def->threads ? def->threads(&r) : 1;
	if (n < 1)
		n = 1;
	if (!(r.ws = calloc((size_t)n, sizeof *r.ws)) || worker_init(&r, &r.ws[0]) < 0) {
		log_error("cannot start: FastCGI initialisation failed or out of memory");
		rc = 1;
		goto out;
	}
	r.nw = 1;
	if (r.ws[0].h.cgi)
		log_spool_flush();     /* one request: its access line written at once, no log thread for it */
	if (r.ws[0].h.cgi || n == 1) { /* plain CGI (one request), or one worker: this thread */
		if (!r.ws[0].h.cgi)
			watch_hup();
		while ((rc = hio_accept(&r.ws[0].h)) == 1)
			serve_and_log(&r.ws[0]);
		rc = rc < 0 ? 1 : 0;
		goto out;
	}
	while (r.nw < n && worker_init(&r, &r.ws[r.nw]) == 0)
		r.nw++;
	if (r.nw < n)
		worker_free(&r, &r.ws[r.nw]); /* the one that failed half-way */
	if (serve_threads(r.ws, r.nw, r.settings_ok ? r.s.shutdown_grace_ms : 30000) != 0)
		return 1; /* a request outlived the grace period: leave without freeing */
out:
	for (int i = 0; i < r.nw; i++)
		worker_free(&r, &r.ws[i]);
	if (!r.nw && r.ws && rc)
		worker_free(&r, &r.ws[0]);
	free(r.ws);
	if (def->teardown)
		def->teardown(&r);
	metrics_close(r.metrics);
	for (size_t i = 0; i < sizeof clients / sizeof *clients; i++)
		if (clients[i] && clients[i]->global_cleanup)
			clients[i]->global_cleanup();
	log_close();
	return rc;
}
