/* test_origin.c: unit tests for lib/http/origin.c: which Host is served, which Origin allowed, JSON content types, preflight headers, and origin_guard's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/origin.h"

/* ---- the decisions ---- */

static void test_host_loopback_default(void **state)
{
	(void)state;
	assert_true(origin_host_allowed(NULL, NULL, NULL)); /* HTTP/1.0: no Host */
	assert_true(origin_host_allowed("", "127.0.0.1:8000", "127.0.0.1:8000"));
	assert_true(origin_host_allowed("", NULL, "localhost"));
	assert_true(origin_host_allowed("", NULL, "LOCALHOST:1")); /* names are case-insensitive, any port */
	assert_true(origin_host_allowed("", NULL, "[::1]:8000"));
	assert_true(origin_host_allowed("", NULL, "127.0.0.1:65535"));
	/* DNS rebinding: the attacker's name on our address */
	assert_false(origin_host_allowed("", "127.0.0.1:8000", "evil.example:8000"));
	assert_false(origin_host_allowed("", NULL, "evil.example"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost.evil.example"));
	assert_false(origin_host_allowed(NULL, NULL, "127.0.0.1.nip.io:8000"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost."));
	assert_false(origin_host_allowed(NULL, NULL, "0.0.0.0:8000"));
	/* malformed: never served */
	assert_false(origin_host_allowed(NULL, NULL, ""));
	assert_false(origin_host_allowed(NULL, NULL, "localhost:"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost:80x"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost:123456"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost evil"));
	assert_false(origin_host_allowed(NULL, NULL, "localhost@evil.example"));
	assert_false(origin_host_allowed(NULL, NULL, "::1"));
	assert_false(origin_host_allowed(NULL, NULL, "[::1"));
	assert_false(origin_host_allowed(NULL, NULL, "[]:80"));
}

static void test_host_configured(void **state)
{
	char big[ORIGIN_VALUE_MAX + 8];

	(void)state;
	/* MCPGW_LISTEN's host on any port; 0.0.0.0 is no name */
	assert_true(origin_host_allowed("", "gw.example.org:8000", "gw.example.org"));
	assert_true(origin_host_allowed("", "gw.example.org:8000", "GW.example.org:443"));
	assert_false(origin_host_allowed("", "0.0.0.0:8000", "0.0.0.0:8000"));
	assert_true(origin_host_allowed("", "8000", "127.0.0.1:8000")); /* a bare PORT */
	/* entries: a name on any port, name:port on that port only */
	assert_true(origin_host_allowed("api.example.com, gw.lan:8080", NULL, "api.example.com:9"));
	assert_true(origin_host_allowed("api.example.com, gw.lan:8080", NULL, "gw.lan:8080"));
	assert_false(origin_host_allowed("api.example.com, gw.lan:8080", NULL, "gw.lan:8081"));
	assert_false(origin_host_allowed("api.example.com, gw.lan:8080", NULL, "gw.lan"));
	assert_false(origin_host_allowed("api.example.com", NULL, "example.com"));
	assert_false(origin_host_allowed("api.example.com", NULL, "xapi.example.com"));
	assert_true(origin_host_allowed("[fd00::1]", NULL, "[FD00::1]:8000"));
	/* "*": every Host */
	assert_true(origin_host_allowed("*", NULL, "evil.example:8000"));
	/* a value too long to be looked at */
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_false(origin_host_allowed("", NULL, big));
}

static void test_origin_check(void **state)
{
	const char *list = "https://app.example.com, http://localhost:5173";

	(void)state;
	assert_int_equal(origin_check(list, NULL), ORIGIN_ABSENT);
	assert_int_equal(origin_check("", NULL), ORIGIN_ABSENT);
	assert_int_equal(origin_check(list, "https://app.example.com"), ORIGIN_ALLOWED);
	assert_int_equal(origin_check(list, "HTTPS://APP.example.com"), ORIGIN_ALLOWED);
	assert_int_equal(origin_check(list, "http://localhost:5173"), ORIGIN_ALLOWED);
	/* the whole origin: scheme, host and port */
	assert_int_equal(origin_check(list, "http://app.example.com"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(list, "https://app.example.com:8443"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(list, "https://app.example.com.evil.example"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(list, "https://app.example.co"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(list, "http://localhost:5174"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(list, "null"), ORIGIN_FOREIGN); /* sandboxed frames, file: pages */
	assert_int_equal(origin_check(list, ""), ORIGIN_FOREIGN);
	/* the default: no page may */
	assert_int_equal(origin_check("", "http://localhost:8000"), ORIGIN_FOREIGN);
	assert_int_equal(origin_check(NULL, "https://evil.example"), ORIGIN_FOREIGN);
	/* "*": every page, "null" too (any page can make a sandboxed frame) */
	assert_int_equal(origin_check("*", "https://evil.example"), ORIGIN_ANY);
	assert_int_equal(origin_check("*", "null"), ORIGIN_ANY);
	assert_int_equal(origin_check("*", NULL), ORIGIN_ABSENT);
}

static void test_is_json(void **state)
{
	(void)state;
	assert_true(origin_is_json("application/json"));
	assert_true(origin_is_json("application/json; charset=utf-8"));
	assert_true(origin_is_json("Application/JSON;charset=UTF-8"));
	assert_true(origin_is_json(" application/json ; charset=utf-8"));
	/* what a browser sends without a preflight (Fetch: CORS-safelisted Content-Type) */
	assert_false(origin_is_json("text/plain"));
	assert_false(origin_is_json("text/plain;charset=UTF-8"));
	assert_false(origin_is_json("application/x-www-form-urlencoded"));
	assert_false(origin_is_json("multipart/form-data; boundary=x"));
	/* none (an ArrayBuffer or typeless Blob body), and look-alikes */
	assert_false(origin_is_json(NULL));
	assert_false(origin_is_json(""));
	assert_false(origin_is_json("application/jsonp"));
	assert_false(origin_is_json("application/json-seq"));
	assert_false(origin_is_json("text/plain; x=application/json"));
	assert_false(origin_is_json("application/vnd.api+json"));
}

static void test_allow_headers(void **state)
{
	char out[ORIGIN_ALLOW_HEADERS_MAX];
	char small[24];
	size_t n;

	(void)state;
	/* what the openai npm SDK sends from a browser (dangerouslyAllowBrowser), as Chromium lists it */
	n = origin_allow_headers("authorization,content-type,openai-organization,x-stainless-arch,"
				 "x-stainless-lang,x-stainless-os,x-stainless-package-version,"
				 "x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,"
				 "x-stainless-timeout",
				 out, sizeof out);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, "authorization, content-type, openai-organization, x-stainless-arch, x-stainless-lang, "
				 "x-stainless-os, x-stainless-package-version, x-stainless-retry-count, "
				 "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout");
	/* others are left out (the browser then refuses the request itself) */
	origin_allow_headers("cookie, X-Evil, Authorization, x-stainless-, openai-, bad name, x-stainless-a\r\nb", out,
			     sizeof out);
	assert_string_equal(out, "Authorization");
	assert_int_equal(origin_allow_headers(NULL, out, sizeof out), 0);
	assert_string_equal(out, "");
	/* bounded: what does not fit is left out */
	origin_allow_headers("authorization, content-type, accept", small, sizeof small);
	assert_string_equal(small, "authorization, accept");
}

/* ---- origin_guard through a CGI-mode request ---- */

static const char *const vars[] = { "HTTP_HOST",
				    "HTTP_ORIGIN",
				    "CONTENT_TYPE",
				    "CONTENT_LENGTH",
				    "HTTP_TRANSFER_ENCODING",
				    "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
				    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
				    "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK" };

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
		unsetenv(vars[i]);
	return 0;
}

/* guard: origin_guard with s, method, methods, takes_body on the environment's
 * request; its return in *rc and what it wrote (caller frees; "" if nothing) */
static char *guard(const struct settings *s, const char *method, const char *methods, int takes_body, int *rc)
{
	struct hio h;
	FILE *tmp = tmpfile();
	int saved;
	long n;
	char *out;

	assert_non_null(tmp);
	memset(&h, 0, sizeof h);
	h.cgi = 1;
	h.served = 1;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0 && dup2(fileno(tmp), STDOUT_FILENO) >= 0);
	*rc = origin_guard(&h, s, method, methods, takes_body);
	/* an answer the handler writes after the guard let it through carries the CORS lines */
	if (*rc == 0)
		hio_send_raw_json(&h, 200, "{}", 2);
	fflush(stdout);
	hio_release(&h); /* the CORS lines the guard added */
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	n = lseek(fileno(tmp), 0, SEEK_END);
	assert_true(n >= 0);
	out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(pread(fileno(tmp), out, (size_t)n, 0), n);
	fclose(tmp);
	return out;
}

static void settings_with(struct settings *s, const char *hosts, const char *origins)
{
	memset(s, 0, sizeof *s);
	snprintf(s->listen, sizeof s->listen, "127.0.0.1:8000");
	snprintf(s->allowed_hosts, sizeof s->allowed_hosts, "%s", hosts);
	snprintf(s->cors_origins, sizeof s->cors_origins, "%s", origins);
}

static void assert_status(const char *out, int status)
{
	int st = 0;

	assert_int_equal(sscanf(out, "Status: %d", &st), 1);
	assert_int_equal(st, status);
}

static void test_guard_host(void **state)
{
	struct settings s;
	char *out;
	int rc;

	(void)state;
	settings_with(&s, "", "");
	setenv("HTTP_HOST", "evil.example:8000", 1);
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 403);
	assert_non_null(strstr(out, "\"code\":\"host_not_allowed\""));
	assert_non_null(strstr(out, "\"type\":\"permission_error\""));
	assert_non_null(strstr(out, "evil.example:8000"));
	assert_null(strstr(out, "Access-Control"));
	free(out);
	/* without settings (they did not load): loopback only */
	out = guard(NULL, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 403);
	free(out);
	/* request bytes are not echoed raw */
	setenv("HTTP_HOST", "a\x01\xff", 1);
	out = guard(&s, "GET", "GET", 0, &rc);
	assert_status(out, 403);
	assert_non_null(strstr(out, "'a?"
				    "?'"));
	free(out);
	setenv("HTTP_HOST", "127.0.0.1:8000", 1);
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 0);
	assert_status(out, 200);
	assert_null(strstr(out, "Access-Control"));
	assert_null(strstr(out, "Vary"));
	free(out);
}

static void test_guard_origin(void **state)
{
	struct settings s;
	char *out;
	int rc;

	(void)state;
	settings_with(&s, "", "https://app.example.com");
	setenv("HTTP_HOST", "localhost:8000", 1);
	setenv("HTTP_ORIGIN", "https://evil.example", 1);
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 403);
	assert_non_null(strstr(out, "\"code\":\"origin_not_allowed\""));
	assert_null(strstr(out, "Access-Control-Allow-Origin"));
	free(out);
	setenv("HTTP_ORIGIN", "https://app.example.com", 1);
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 0);
	assert_status(out, 200);
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Origin: https://app.example.com\r\n"));
	assert_non_null(strstr(out, "\r\nVary: Origin\r\n"));
	assert_non_null(strstr(out, "\r\nAccess-Control-Expose-Headers: X-Request-Id, Retry-After, retry-after-ms\r\n"));
	assert_null(strstr(out, "Credentials"));
	free(out);
	/* no Origin, a list: the answer still varies by Origin */
	unsetenv("HTTP_ORIGIN");
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_non_null(strstr(out, "\r\nVary: Origin\r\n"));
	assert_null(strstr(out, "Access-Control-Allow-Origin"));
	free(out);
	/* "*": never with credentials */
	settings_with(&s, "", "*");
	setenv("HTTP_ORIGIN", "https://any.example", 1);
	out = guard(&s, "GET", "GET, HEAD", 0, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Origin: *\r\n"));
	assert_null(strstr(out, "Credentials"));
	free(out);
}

static void test_guard_options(void **state)
{
	struct settings s;
	char *out;
	int rc;

	(void)state;
	settings_with(&s, "", "http://localhost:5173");
	setenv("HTTP_HOST", "127.0.0.1:8000", 1);
	/* a plain OPTIONS: 204 with Allow */
	out = guard(&s, "OPTIONS", "GET, HEAD, POST", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 204);
	assert_non_null(strstr(out, "\r\nAllow: GET, HEAD, POST, OPTIONS\r\n"));
	assert_null(strstr(out, "Access-Control-Allow-Methods"));
	free(out);
	/* a preflight of an allowed origin */
	setenv("HTTP_ORIGIN", "http://localhost:5173", 1);
	setenv("HTTP_ACCESS_CONTROL_REQUEST_METHOD", "POST", 1);
	setenv("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "authorization,content-type,cookie,x-stainless-os", 1);
	setenv("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK", "true", 1);
	out = guard(&s, "OPTIONS", "GET, HEAD, POST", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 204);
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\n"));
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Methods: GET, HEAD, POST\r\n"));
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Headers: authorization, content-type, x-stainless-os\r\n"));
	assert_non_null(strstr(out, "\r\nAccess-Control-Max-Age: 7200\r\n"));
	assert_non_null(strstr(out, "\r\nAccess-Control-Allow-Private-Network: true\r\n"));
	assert_null(strstr(out, "Credentials"));
	free(out);
	/* a preflight of a foreign origin: 403 */
	setenv("HTTP_ORIGIN", "http://localhost:5174", 1);
	out = guard(&s, "OPTIONS", "GET, HEAD, POST", 0, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 403);
	assert_null(strstr(out, "Access-Control-Allow"));
	free(out);
	/* OPTIONS on a path no route has: left to the 404 */
	setenv("HTTP_ORIGIN", "http://localhost:5173", 1);
	out = guard(&s, "OPTIONS", "", 0, &rc);
	assert_int_equal(rc, 0);
	free(out);
}

static void test_guard_content_type(void **state)
{
	struct settings s;
	char *out;
	int rc;

	(void)state;
	settings_with(&s, "", "");
	setenv("CONTENT_LENGTH", "40", 1);
	/* the no-cors POST of a web page */
	setenv("CONTENT_TYPE", "text/plain;charset=UTF-8", 1);
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_int_equal(rc, 1);
	assert_status(out, 415);
	assert_non_null(strstr(out, "\"code\":\"unsupported_content_type\""));
	assert_non_null(strstr(out, "\"type\":\"invalid_request_error\""));
	assert_non_null(strstr(out, "Unsupported content type: 'text/plain;charset=UTF-8'"));
	free(out);
	/* curl -d: told what to add */
	setenv("CONTENT_TYPE", "application/x-www-form-urlencoded", 1);
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_status(out, 415);
	assert_non_null(strstr(out, "add -H 'Content-Type: application/json'"));
	free(out);
	/* no Content-Type at all (an ArrayBuffer body) */
	unsetenv("CONTENT_TYPE");
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_status(out, 415);
	assert_non_null(strstr(out, "no Content-Type header"));
	free(out);
	/* a chunked body counts as one */
	unsetenv("CONTENT_LENGTH");
	setenv("HTTP_TRANSFER_ENCODING", "chunked", 1);
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_status(out, 415);
	free(out);
	unsetenv("HTTP_TRANSFER_ENCODING");
	/* no body: left to the 411 and the handler */
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_int_equal(rc, 0);
	free(out);
	setenv("CONTENT_LENGTH", "0", 1);
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_int_equal(rc, 0);
	free(out);
	/* JSON, with a charset */
	setenv("CONTENT_LENGTH", "40", 1);
	setenv("CONTENT_TYPE", "application/json; charset=utf-8", 1);
	out = guard(&s, "POST", "POST", 1, &rc);
	assert_int_equal(rc, 0);
	assert_status(out, 200);
	free(out);
	/* a route that reads no body does not care */
	setenv("CONTENT_TYPE", "text/plain", 1);
	out = guard(&s, "GET", "GET", 0, &rc);
	assert_int_equal(rc, 0);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_loopback_default),
		cmocka_unit_test(test_host_configured),
		cmocka_unit_test(test_origin_check),
		cmocka_unit_test(test_is_json),
		cmocka_unit_test(test_allow_headers),
		cmocka_unit_test_setup(test_guard_host, clear_env),
		cmocka_unit_test_setup(test_guard_origin, clear_env),
		cmocka_unit_test_setup(test_guard_options, clear_env),
		cmocka_unit_test_setup(test_guard_content_type, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
