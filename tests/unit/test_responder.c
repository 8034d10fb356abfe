/* test_responder.c: unit tests for lib/http/responder.c: routing, 404/405 with Allow, 411/413/400 bodies, 500s, MCPGW_FAULT and PENDING handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/changehint.h"
#include "core/keystore.h"
#include "core/statedir.h"
#include "http/responder.h"

/* ---- handlers of the test table ---- */

static char seen_body[64]; /* what the body handler got */
static char seen_arg[64];  /* what {} / {*} matched */

static enum route_status h_ok(struct exchange *x)
{
	snprintf(seen_arg, sizeof seen_arg, "%s", x->arg);
	hio_send_raw_json(x->h, 200, "{\"ok\":true}", 11);
	return ROUTE_DONE;
}

static enum route_status h_body(struct exchange *x)
{
	snprintf(seen_body, sizeof seen_body, "%s", x->body.data ? x->body.data : "(null)");
	hio_send_raw_json(x->h, 200, "{\"ok\":true}", 11);
	return ROUTE_DONE;
}

/* h_silent: fails inside: returns without answering */
static enum route_status h_silent(struct exchange *x)
{
	(void)x;
	return ROUTE_DONE;
}

/* the PENDING handler: another thread answers 50 ms later and finishes the exchange */
static int pending_returned; /* the handler had returned when the other thread answered */
static int pending_answered; /* the other thread answered */

static void *pending_thread(void *arg)
{
	struct exchange *x = arg;
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	pending_returned = __atomic_load_n(&pending_returned, __ATOMIC_SEQ_CST);
	hio_send_raw_json(x->h, 202, "{\"later\":true}", 14);
	__atomic_store_n(&pending_answered, 1, __ATOMIC_SEQ_CST);
	exchange_finish(x);
	return NULL;
}

static enum route_status h_pending(struct exchange *x)
{
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, pending_thread, x), 0);
	assert_int_equal(pthread_detach(th), 0);
	__atomic_store_n(&pending_returned, 1, __ATOMIC_SEQ_CST);
	return ROUTE_PENDING;
}

static const struct route table[] = {
	{ "/v1/things", "GET, HEAD", h_ok, 0 }, { "/v1/things", "POST", h_body, ROUTE_BODY },
	{ "/v1/things/{}", "GET", h_ok, 0 },    { "/v1/models/{*}", "GET, HEAD", h_ok, 0 },
	{ "/v1/silent", "GET", h_silent, 0 },   { "/v1/later", "GET", h_pending, 0 },
	{ "/health", "GET, HEAD", h_ok, 0 },    { NULL, NULL, NULL, 0 },
};

/* ---- routing ---- */

static const struct route *route(const char *method, const char *path, int *status, char *allow)
{
	const char *arg = NULL;

	return responder_route(table, method, path, &arg, status, allow, 128);
}

static void test_route_table(void **state)
{
	char allow[128];
	const char *arg = NULL;
	int status;

	(void)state;
	assert_ptr_equal(route("GET", "/v1/things", &status, allow), &table[0]);
	assert_ptr_equal(route("GET", "/v1/things/", &status, allow), &table[0]);
	assert_ptr_equal(route("POST", "/v1/things", &status, allow), &table[1]);
	assert_ptr_equal(responder_route(table, "GET", "/v1/things/abc", &arg, &status, allow, sizeof allow), &table[2]);
	assert_string_equal(arg, "abc");
	/* {} is one segment; {*} the rest, slashes included */
	assert_null(route("GET", "/v1/things/a/b", &status, allow));
	assert_int_equal(status, 404);
	assert_ptr_equal(responder_route(table, "GET", "/v1/models/org/m", &arg, &status, allow, sizeof allow),
			 &table[3]);
	assert_string_equal(arg, "org/m");
	assert_null(route("GET", "/v1/models/", &status, allow));
	/* a prefix is not a path */
	assert_null(route("GET", "/v1/thingsx", &status, allow));
	assert_int_equal(status, 404);
	assert_null(route("GET", "/", &status, allow));
	assert_int_equal(status, 404);
	/* a base URL without /v1, but /v1 itself and other roots are not stripped */
	assert_ptr_equal(route("GET", "/things", &status, allow), &table[0]);
	assert_ptr_equal(responder_route(table, "GET", "/models/a/b", &arg, &status, allow, sizeof allow), &table[3]);
	assert_string_equal(arg, "a/b");
	assert_null(route("GET", "/v1/v1/things", &status, allow));
	assert_null(route("GET", "/v1/health", &status, allow));
	assert_ptr_equal(route("GET", "/health", &status, allow), &table[6]);
	/* a known path with another method: 405 with every method of its rows, once each */
	assert_null(route("DELETE", "/v1/things", &status, allow));
	assert_int_equal(status, 405);
	assert_string_equal(allow, "GET, HEAD, POST");
	assert_null(route("POST", "/things/x", &status, allow));
	assert_int_equal(status, 405);
	assert_string_equal(allow, "GET");
	/* methods are whole words */
	assert_null(route("GE", "/v1/things", &status, allow));
	assert_null(route("HEADX", "/health", &status, allow));
	assert_int_equal(status, 405);
}

/* ---- answers through a CGI-mode request ---- */

static struct responder R;

struct capture {
	FILE *tmp;
	int saved;
};

static void capture_start(struct capture *c)
{
	fflush(stdout);
	c->tmp = tmpfile();
	assert_non_null(c->tmp);
	c->saved = dup(STDOUT_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->tmp), STDOUT_FILENO) >= 0);
}

/* restore stdout; what was written (caller frees) */
static char *capture_end(struct capture *c)
{
	long n;
	char *s;

	fflush(stdout);
	assert_true(dup2(c->saved, STDOUT_FILENO) >= 0);
	close(c->saved);
	n = lseek(fileno(c->tmp), 0, SEEK_END);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(pread(fileno(c->tmp), s, (size_t)n, 0), n);
	fclose(c->tmp);
	return s;
}

/* serve METHOD PATH with stdin holding body and CONTENT_LENGTH cl (NULL: none); the response (caller frees) */
static char *serve(const char *method, const char *uri, const char *cl, const char *body)
{
	static const struct responder_def def = { .name = "test", .routes = table };
	struct responder_worker w;
	struct capture c;
	FILE *in = tmpfile();
	int saved;
	char *out;

	assert_non_null(in);
	assert_int_equal(fwrite(body, 1, strlen(body), in), strlen(body));
	fflush(in);
	rewind(in);
	saved = dup(STDIN_FILENO);
	__fpurge(stdin);
	clearerr(stdin);
	assert_true(dup2(fileno(in), STDIN_FILENO) >= 0);
	setenv("REQUEST_METHOD", method, 1);
	setenv("REQUEST_URI", uri, 1);
	if (cl)
		setenv("CONTENT_LENGTH", cl, 1);
	else
		unsetenv("CONTENT_LENGTH");
	R.def = &def;
	memset(&w, 0, sizeof w);
	w.r = &R;
	w.h.cgi = 1;
	w.h.served = 1;
	capture_start(&c);
	responder_serve_one(&w);
	out = capture_end(&c);
	__fpurge(stdin);
	clearerr(stdin);
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
	fclose(in);
	return out;
}

/* check: status, Content-Type application/json, error code (NULL: no error) and a piece of the message */
static void check(const char *out, int status, const char *code, const char *msg_part)
{
	const char *body = strstr(out, "\r\n\r\n");
	json_t *j, *e;
	int st = 0;

	assert_int_equal(sscanf(out, "Status: %d", &st), 1);
	assert_int_equal(st, status);
	assert_non_null(strstr(out, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(body);
	assert_non_null(j = json_loads(body + 4, 0, NULL));
	e = json_object_get(j, "error");
	if (code) {
		assert_string_equal(json_string_value(json_object_get(e, "code")), code);
		/* 501, 505: the client's method or HTTP version, not a server fault */
		assert_string_equal(json_string_value(json_object_get(e, "type")),
				    status >= 500 && status != 501 && status != 505 ? "server_error"
										    : "invalid_request_error");
		assert_true(json_object_get(e, "param") != NULL);
		assert_non_null(strstr(json_string_value(json_object_get(e, "message")), msg_part));
	} else {
		assert_null(e);
	}
	json_decref(j);
}

static char store_dir[64];

static int setup(void **state)
{
	(void)state;
	memset(&R, 0, sizeof R);
	R.settings_ok = 1;
	R.s.max_body_bytes = 16;
	R.s.max_json_depth = 8;
	setenv("CONTENT_TYPE", "application/json", 1); /* what origin_guard lets through */
	/* the API-key check (lib/http/auth.c): no key configured, a loopback client */
	if (!store_dir[0] && !mkdtemp(strcpy(store_dir, "/tmp/test_responder.XXXXXX")))
		return -1;
	snprintf(R.s.state_store, sizeof R.s.state_store, "sqlite:%s/state.db", store_dir);
	snprintf(R.s.state_dir, sizeof R.s.state_dir, "%s", store_dir);
	R.s.state_store_timeout_ms = 5000;
	setenv("REMOTE_ADDR", "127.0.0.1", 1);
	return 0;
}

static void test_404_405(void **state)
{
	char *out;

	(void)state;
	out = serve("POST", "/v1/foo?x=1", "0", "");
	check(out, 404, "unknown_url", "Unknown request URL: POST /v1/foo.");
	free(out);
	out = serve("GET", "/", NULL, "");
	check(out, 404, "unknown_url", "GET /.");
	free(out);
	out = serve("DELETE", "/v1/things", NULL, "");
	check(out, 405, "method_not_allowed", "Method DELETE is not allowed here; Allow: GET, HEAD, POST.");
	assert_non_null(strstr(out, "\r\nAllow: GET, HEAD, POST\r\n"));
	free(out);
	out = serve("GET", "/things/abc", NULL, "");
	check(out, 200, NULL, NULL);
	assert_string_equal(seen_arg, "abc");
	free(out);
}

static void test_bodies(void **state)
{
	char *out;

	(void)state;
	seen_body[0] = '\0';
	out = serve("POST", "/v1/things", NULL, "{}");
	check(out, 411, "length_required", "POST /v1/things needs a body with a Content-Length header.");
	free(out);
	out = serve("POST", "/v1/things", "17", "{\"a\":\"0123456789\"}");
	check(out, 413, "request_too_large", "MCPGW_MAX_BODY_BYTES (16 bytes)");
	free(out);
	out = serve("POST", "/v1/things", "99999999999999999999999", "");
	check(out, 413, "request_too_large", "MCPGW_MAX_BODY_BYTES");
	free(out);
	out = serve("POST", "/v1/things", "9", "{}");
	check(out, 400, "invalid_body", "Content-Length");
	free(out);
	out = serve("POST", "/v1/things", "x", "{}");
	check(out, 400, "invalid_body", "Content-Length");
	free(out);
	assert_string_equal(seen_body, ""); /* the handler saw none of these */
	out = serve("POST", "/v1/things", "7", "{\"a\":1}");
	check(out, 200, NULL, NULL);
	assert_string_equal(seen_body, "{\"a\":1}");
	free(out);
	/* a chunked upload without a length (mod_cgid de-chunks it and ends stdin after it): read to its end */
	setenv("HTTP_TRANSFER_ENCODING", "chunked", 1);
	seen_body[0] = '\0';
	out = serve("POST", "/v1/things", NULL, "{\"b\":2}");
	check(out, 200, NULL, NULL);
	assert_string_equal(seen_body, "{\"b\":2}");
	free(out);
	seen_body[0] = '\0';
	out = serve("POST", "/v1/things", NULL, "{\"a\":\"0123456789\"}");
	check(out, 413, "request_too_large", "MCPGW_MAX_BODY_BYTES (16 bytes)");
	assert_string_equal(seen_body, "");
	free(out);
	unsetenv("HTTP_TRANSFER_ENCODING");
}

static void test_500s(void **state)
{
	char *out;

	(void)state;
	/* a handler that fails inside without answering */
	out = serve("GET", "/v1/silent", NULL, "");
	check(out, 500, "internal_error", "internal error while answering GET /v1/silent");
	free(out);
	/* MCPGW_FAULT names routes as their table writes them */
	snprintf(R.fault, sizeof R.fault, "/v1/nothing,/v1/things/{},/health");
	out = serve("GET", "/v1/things/abc", NULL, "");
	check(out, 500, "internal_error", "GET /v1/things/abc");
	free(out);
	out = serve("GET", "/health", NULL, "");
	check(out, 500, "internal_error", "GET /health");
	free(out);
	out = serve("GET", "/v1/things", NULL, "");
	check(out, 200, NULL, NULL);
	free(out);
	/* or a method and a route: the route's other methods still work */
	snprintf(R.fault, sizeof R.fault, "POST /v1/things, HEAD /health");
	out = serve("POST", "/v1/things", "2", "{}");
	check(out, 500, "internal_error", "POST /v1/things");
	free(out);
	out = serve("GET", "/v1/things", NULL, "");
	check(out, 200, NULL, NULL);
	free(out);
	out = serve("HEAD", "/health", NULL, "");
	check(out, 500, "internal_error", "HEAD /health");
	free(out);
	out = serve("GET", "/health", NULL, "");
	check(out, 200, NULL, NULL);
	free(out);
	snprintf(R.fault, sizeof R.fault, "/v1/nothing,/v1/things/{},/health");
	/* routing and methods come first: still 404 and 405 */
	out = serve("POST", "/health", NULL, "");
	check(out, 405, "method_not_allowed", "Allow: GET, HEAD");
	free(out);
	R.fault[0] = '\0';
	/* settings that did not load: one wording, 500 configuration_error; unknown paths still 404 */
	R.settings_ok = 0;
	snprintf(R.settings_err, sizeof R.settings_err, "MCPGW_TOOL_RETRIES: expected an integer 0..10, got 'x'");
	out = serve("GET", "/v1/things", NULL, "");
	check(out, 500, "configuration_error", "mcpgw is misconfigured: MCPGW_TOOL_RETRIES");
	free(out);
	out = serve("GET", "/v1/nope", NULL, "");
	check(out, 404, "unknown_url", "/v1/nope");
	free(out);
	R.settings_ok = 1;
}

/* the variables a web server's config sets (never a request: headers are HTTP_*) */
static void test_web_server_errors(void **state)
{
	char *out;

	(void)state;
	/* Apache's ErrorDocument: an internal redirect to a responder with REDIRECT_STATUS */
	setenv("REDIRECT_STATUS", "413", 1);
	setenv("REDIRECT_URL", "/v1/things", 1);
	setenv("REDIRECT_REQUEST_METHOD", "POST", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 413, "request_too_large", "The request body is larger than MCPGW_MAX_BODY_BYTES (16 bytes).");
	free(out);
	/* one sentence per status, naming the request when the web server does */
	setenv("REDIRECT_STATUS", "400", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 400, "invalid_request",
	      "The web server could not parse the request (a malformed request line, header, Content-Length or URL) "
	      "(POST /v1/things).");
	free(out);
	setenv("REDIRECT_STATUS", "411", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 411, "length_required", "POST /v1/things needs a body with a Content-Length header.");
	free(out);
	setenv("REDIRECT_STATUS", "501", 1);
	setenv("REDIRECT_REQUEST_METHOD", "FOO", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 501, "unsupported_method", "The web server does not support this method (FOO /v1/things).");
	free(out);
	setenv("REDIRECT_STATUS", "503", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 503, "service_unavailable", "The responder is not available");
	free(out);
	setenv("REDIRECT_STATUS", "418", 1);
	out = serve("GET", "/v1/error", NULL, "");
	check(out, 418, "invalid_request", "The web server refused the request (FOO /v1/things): 418 Client Error.");
	free(out);
	/* no request to name (mcpgwctl writing the error files ahead): the sentence alone */
	unsetenv("REDIRECT_URL");
	unsetenv("REDIRECT_REQUEST_METHOD");
	setenv("REDIRECT_STATUS", "414", 1);
	out = serve("", "", NULL, "");
	check(out, 414, "uri_too_long", "The request line or headers are larger than the web server accepts.");
	assert_null(strstr(out, "accepts. ("));
	free(out);
	setenv("REDIRECT_STATUS", "404", 1);
	out = serve("", "", NULL, "");
	check(out, 404, "unknown_url", "Unknown request URL. Please check the URL");
	free(out);
	/* 200: a rewrite's internal redirect, served as usual */
	setenv("REDIRECT_STATUS", "200", 1);
	out = serve("GET", "/v1/things", NULL, "");
	check(out, 200, NULL, NULL);
	free(out);
	unsetenv("REDIRECT_STATUS");
	unsetenv("REDIRECT_URL");
	unsetenv("REDIRECT_REQUEST_METHOD");
	/* mod_fcgid: CONTENT_LENGTH 0 for a request without one, and for a body it refused */
	setenv("MCPGW_NO_CONTENT_LENGTH", "1", 1);
	out = serve("POST", "/v1/things", "0", "");
	check(out, 411, "length_required", "POST /v1/things needs a body with a Content-Length header.");
	free(out);
	unsetenv("MCPGW_NO_CONTENT_LENGTH");
	setenv("MCPGW_BODY_TOO_LARGE", "1", 1);
	out = serve("POST", "/v1/things", "0", "");
	check(out, 413, "request_too_large", "The request body is larger than MCPGW_MAX_BODY_BYTES (16 bytes).");
	free(out);
	unsetenv("MCPGW_BODY_TOO_LARGE");
}

/* the skeleton runs origin_guard on every routed path: OPTIONS, a foreign Host, a body that is not JSON */
static void test_browser_checks(void **state)
{
	char *out;

	(void)state;
	out = serve("OPTIONS", "/v1/things", NULL, "");
	assert_non_null(strstr(out, "Status: 204"));
	assert_non_null(strstr(out, "\r\nAllow: GET, HEAD, POST, OPTIONS\r\n"));
	free(out);
	out = serve("OPTIONS", "/v1/nothing", NULL, "");
	check(out, 404, "unknown_url", "OPTIONS /v1/nothing");
	free(out);
	setenv("CONTENT_TYPE", "text/plain", 1);
	seen_body[0] = '\0';
	out = serve("POST", "/v1/things", "7", "{\"a\":1}");
	check(out, 415, "unsupported_content_type", "text/plain");
	assert_string_equal(seen_body, ""); /* the handler never ran */
	free(out);
	setenv("HTTP_HOST", "evil.example", 1);
	out = serve("GET", "/health", NULL, "");
	assert_non_null(strstr(out, "Status: 403"));
	assert_non_null(strstr(out, "host_not_allowed"));
	free(out);
	unsetenv("HTTP_HOST");
}

static void test_pending(void **state)
{
	char *out;

	(void)state;
	pending_returned = pending_answered = 0;
	out = serve("GET", "/v1/later", NULL, "");
	/* serve_one came back only after the other thread answered and finished */
	assert_int_equal(__atomic_load_n(&pending_answered, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(pending_returned, 1); /* the handler had returned PENDING before the answer */
	check(out, 202, NULL, NULL);
	assert_null(strstr(out, "internal_error"));
	free(out);
}

/* status_code: the status and the error code (or "") of a response */
static void status_code(const char *out, int status, const char *code)
{
	const char *body = strstr(out, "\r\n\r\n");
	json_t *j;
	int st = 0;

	assert_int_equal(sscanf(out, "Status: %d", &st), 1);
	assert_int_equal(st, status);
	assert_non_null(body);
	assert_non_null(j = json_loads(body + 4, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")) ?: "", code);
	json_decref(j);
}

/* the skeleton checks the API key before every handler (lib/http/auth.c): loopback only without keys;
 * with a key in the store, nothing without it; a revoked key refused at the very next request */
static void test_keys(void **state)
{
	struct statestore_opts o = { .url = R.s.state_store, .timeout_ms = 5000 };
	char err[256], key[APIKEY_TEXT_MAX], auth[APIKEY_TEXT_MAX + 16];
	struct statestore *st = statestore_open(&o, err, sizeof err);
	struct changehint *hint = changehint_open(R.s.state_dir, STATEDIR_KEYS_HINT, err, sizeof err);
	struct apikey k;
	char *out;

	(void)state;
	assert_non_null(st);
	assert_non_null(hint);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 200, "");
	free(out);
	/* the store, read once, has never held a key: the next looks need not read it */
	assert_int_equal(changehint_presence(hint), CHANGEHINT_NONE);
	/* a forwarded request is never loopback, whatever the peer */
	setenv("HTTP_X_FORWARDED_FOR", "127.0.0.1", 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 403, "loopback_only");
	free(out);
	unsetenv("HTTP_X_FORWARDED_FOR");
	setenv("REMOTE_ADDR", "192.0.2.7", 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 403, "loopback_only");
	free(out);
	/* a key in the store: every client needs it, loopback too */
	memset(&k, 0, sizeof k);
	assert_int_equal(apikey_new(key, sizeof key, k.id, sizeof k.id), 0);
	assert_int_equal(apikey_hash(key, strlen(key), k.hash), 0);
	snprintf(k.name, sizeof k.name, "unit");
	assert_int_equal(keystore_put(st, hint, &k), STATESTORE_OK);
	assert_int_equal(changehint_presence(hint), CHANGEHINT_SOME);
	{
		/* a hint file made anew (a state directory restored without it) learns it from the store */
		char path[sizeof R.s.state_dir + 32];
		struct changehint *fresh;

		snprintf(path, sizeof path, "%s/%s", R.s.state_dir, STATEDIR_KEYS_HINT);
		assert_int_equal(unlink(path), 0);
		assert_non_null(fresh = changehint_open(R.s.state_dir, STATEDIR_KEYS_HINT, err, sizeof err));
		assert_int_equal(changehint_presence(fresh), CHANGEHINT_UNKNOWN);
		assert_int_equal(keystore_note_presence(st, R.s.state_dir), STATESTORE_OK);
		assert_int_equal(changehint_presence(fresh), CHANGEHINT_SOME);
		changehint_bump(fresh); /* as the writer did on the old file */
		changehint_close(hint);
		hint = fresh;
	}
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 401, "invalid_api_key");
	assert_non_null(strstr(out, "You didn't provide an API key."));
	free(out);
	snprintf(auth, sizeof auth, "Bearer %s", key);
	auth[strlen(auth) - 1] ^= 1; /* one character off */
	setenv("HTTP_AUTHORIZATION", auth, 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 401, "invalid_api_key");
	assert_non_null(strstr(out, "Incorrect API key provided"));
	assert_null(strstr(out, auth + 7 + sizeof APIKEY_PREFIX + APIKEY_ID_CHARS)); /* the secret is never shown */
	free(out);
	snprintf(auth, sizeof auth, "Bearer %s", key);
	setenv("HTTP_AUTHORIZATION", auth, 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 200, "");
	free(out);
	/* Azure's header works the same */
	unsetenv("HTTP_AUTHORIZATION");
	setenv("HTTP_API_KEY", key, 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 200, "");
	free(out);
	k.revoked_ms = 1;
	assert_int_equal(keystore_put(st, hint, &k), STATESTORE_OK);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 401, "invalid_api_key");
	free(out);
	unsetenv("HTTP_API_KEY");
	setenv("REMOTE_ADDR", "127.0.0.1", 1);
	statestore_close(st);
	changehint_close(hint);
}

/* while the change hint stands still a request reads no store: a change made without bumping it
 * (a writer that could not open the hint) is not seen at once, but within AUTH_RECHECK_MS */
static void test_keys_cached(void **state)
{
	struct statestore_opts o = { .url = R.s.state_store, .timeout_ms = 5000 };
	char err[256], key[APIKEY_TEXT_MAX], auth[APIKEY_TEXT_MAX + 16];
	struct statestore *st = statestore_open(&o, err, sizeof err);
	struct changehint *hint = changehint_open(R.s.state_dir, STATEDIR_KEYS_HINT, err, sizeof err);
	struct timespec wait = { 1, 200000000L };
	struct apikey k;
	char *out;

	(void)state;
	assert_non_null(st);
	assert_non_null(hint);
	memset(&k, 0, sizeof k);
	assert_int_equal(apikey_new(key, sizeof key, k.id, sizeof k.id), 0);
	assert_int_equal(apikey_hash(key, strlen(key), k.hash), 0);
	snprintf(k.name, sizeof k.name, "cached");
	assert_int_equal(keystore_put(st, hint, &k), STATESTORE_OK);
	snprintf(auth, sizeof auth, "Bearer %s", key);
	setenv("HTTP_AUTHORIZATION", auth, 1);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 200, "");
	free(out);
	k.revoked_ms = 1;
	assert_int_equal(keystore_put(st, NULL, &k), STATESTORE_OK); /* the store changed, the hint did not */
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 200, ""); /* served from the cache: the store was not read */
	free(out);
	nanosleep(&wait, NULL);
	out = serve("GET", "/v1/things", NULL, "");
	status_code(out, 401, "invalid_api_key"); /* the look at least once a second saw it */
	free(out);
	unsetenv("HTTP_AUTHORIZATION");
	statestore_close(st);
	changehint_close(hint);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test_setup(test_404_405, setup),
		cmocka_unit_test_setup(test_bodies, setup),
		cmocka_unit_test_setup(test_500s, setup),
		cmocka_unit_test_setup(test_web_server_errors, setup),
		cmocka_unit_test_setup(test_pending, setup),
		cmocka_unit_test_setup(test_browser_checks, setup),
		cmocka_unit_test_setup(test_keys, setup),
		cmocka_unit_test_setup(test_keys_cached, setup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];

	if (store_dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", store_dir);
		if (system(cmd) != 0)
			rc = 1;
	}
	return rc;
}
