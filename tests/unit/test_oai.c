/* test_oai.c: unit tests for openai/wire.c (depth check, error objects, status types) and http/oai.c (body parsing, error responses via CGI-mode hio). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/hio.h"
#include "http/oai.h"
#include "openai/wire.h"

static int depth_ok(const char *s, int max)
{
	return wire_json_depth_ok(s, strlen(s), max);
}

static void test_depth_basic(void **state)
{
	(void)state;
	assert_true(depth_ok("", 1));
	assert_true(depth_ok("1", 1));
	assert_true(depth_ok("{}", 1));
	assert_true(depth_ok("[]", 1));
	assert_false(depth_ok("[[]]", 1));
	assert_true(depth_ok("[[]]", 2));
	assert_true(depth_ok("[[],[],{\"a\":[]}]", 3));
	assert_false(depth_ok("[[],[],{\"a\":[[]]}]", 3));
	assert_true(depth_ok("{\"a\":{\"b\":{\"c\":1}}}", 3));
	assert_false(depth_ok("{\"a\":{\"b\":{\"c\":{}}}}", 3));
	/* siblings do not add up */
	assert_true(depth_ok("[{},{},{},{},{},{},{},{}]", 2));
}

static void test_depth_strings(void **state)
{
	(void)state;
	/* brackets inside strings do not count */
	assert_true(depth_ok("{\"a\":\"[[[[[[{{{{\"}", 1));
	assert_true(depth_ok("{\"[[[[\":\"]]]]\"}", 1));
	/* an escaped quote does not end the string */
	assert_true(depth_ok("{\"a\":\"\\\"[[[[\"}", 1));
	assert_true(depth_ok("[\"\\\\\\\"[[[\"]", 1));
	/* an escaped backslash does end it: the brackets after it count */
	assert_false(depth_ok("{\"a\":\"\\\\\",\"b\":[[1]]}", 2));
	assert_true(depth_ok("{\"a\":\"\\\\\",\"b\":[[1]]}", 3));
	/* \u escapes and multibyte text */
	assert_true(depth_ok("{\"a\":\"\\u005b\\u005b \xc3\xa9 [[\"}", 1));
	/* an unterminated string swallows the rest */
	assert_true(depth_ok("[\"[[[[[[", 1));
	/* a backslash as the very last byte */
	assert_true(depth_ok("[\"\\", 1));
}

static void test_depth_bounds(void **state)
{
	char deep[2001];

	(void)state;
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 1000);
	deep[2000] = '\0';
	assert_true(depth_ok(deep, 1000));
	assert_false(depth_ok(deep, 999));
	/* only len bytes are looked at */
	assert_true(wire_json_depth_ok("[[[[", 2, 2));
	assert_false(wire_json_depth_ok("[[[[", 3, 2));
	/* stray closers do not earn credit for later openers */
	assert_false(depth_ok("]]]]][[", 1));
}

/* values: how many values wire_json_scan counts in s (the least bound it fits) */
static size_t values(const char *s)
{
	size_t n = 0;

	while (wire_json_scan(s, strlen(s), 64, n) == WIRE_JSON_TOO_MANY)
		n++;
	return n;
}

static void test_values_count(void **state)
{
	(void)state;
	assert_int_equal(values(""), 0);
	assert_int_equal(values("  \n"), 0);
	assert_int_equal(values("1"), 1);
	assert_int_equal(values("-1.5e+10"), 1);
	assert_int_equal(values("true"), 1);
	assert_int_equal(values("\"x\""), 1);
	assert_int_equal(values("[]"), 1);
	assert_int_equal(values("{}"), 1);
	assert_int_equal(values("[1,2,3]"), 4);
	assert_int_equal(values("[ 1 , 2 ]"), 3);
	assert_int_equal(values("[true,false,null]"), 4);
	/* member names are not values; their values are */
	assert_int_equal(values("{\"a\":1}"), 2);
	assert_int_equal(values("{\"a\" : \"b\" , \"c\"\n:\t[\"d\"]}"), 4);
	assert_int_equal(values("{\"a\":{\"b\":[true,false,null]}}"), 6);
	/* nesting: every level counts */
	assert_int_equal(values("[[[[]]]]"), 4);
	assert_int_equal(values("[{},{},[],{\"k\":{}}]"), 6);
}

static void test_values_strings(void **state)
{
	(void)state;
	/* brackets, commas, colons and quotes inside strings are no values */
	assert_int_equal(values("[\"[{1,2,3}]\"]"), 2);
	assert_int_equal(values("[\"a\\\"]\\\",[{\", 1]"), 3);
	/* an escaped quote does not end a member name either */
	assert_int_equal(values("{\"k\\\":[[\": 1}"), 2);
	/* a string followed by ':' inside another string is no name */
	assert_int_equal(values("[\"a\", \":\"]"), 3);
	/* an escaped backslash ends the string: what follows counts */
	assert_int_equal(values("[\"\\\\\",[1,2]]"), 5);
	/* runs of backslashes before a quote: an odd run escapes it, an even one does not */
	assert_int_equal(values("[\"\\\\\\\"\",1]"), 3);   /* ["\\\"",1]: 3 backslashes, the quote escaped */
	assert_int_equal(values("[\"\\\\\\\\\",[1]]"), 4); /* ["\\\\",[1]]: 4, the string ends */
	assert_int_equal(values("[\"\\\\\\\\\"]"), 2);     /* ["\\\\"]: 4 backslashes, then the close */
	/* \u escapes and multibyte text are one string */
	assert_int_equal(values("[\"\\u005b\\u007b \xc3\xa9 [{\"]"), 2);
	/* an unterminated string swallows the rest; a backslash as the last byte */
	assert_int_equal(values("[\"[[1,2,3"), 2);
	assert_int_equal(values("[\"\\"), 2);
}

static void test_values_limit(void **state)
{
	size_t n = 1000, len = 0;
	char *s = malloc(3 * n + 2);

	(void)state;
	assert_non_null(s);
	s[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			s[len++] = ',';
		s[len++] = '{';
		s[len++] = '}';
	}
	s[len++] = ']';
	/* n objects and the array: exactly the limit fits, one less does not */
	assert_int_equal(wire_json_scan(s, len, 64, n + 1), WIRE_JSON_FITS);
	assert_int_equal(wire_json_scan(s, len, 64, n), WIRE_JSON_TOO_MANY);
	assert_int_equal(wire_json_scan(s, len, 64, 0), WIRE_JSON_TOO_MANY);
	/* only len bytes are looked at */
	assert_int_equal(wire_json_scan(s, 1 + 3 * 9, 64, 10), WIRE_JSON_FITS);
	assert_int_equal(wire_json_scan(s, 1 + 3 * 10, 64, 10), WIRE_JSON_TOO_MANY);
	free(s);
	/* depth is checked in the same pass: the first bound passed is the one said */
	assert_int_equal(wire_json_scan("[[[1]]]", 7, 2, 100), WIRE_JSON_TOO_DEEP);
	assert_int_equal(wire_json_scan("[1,2,[[3]]]", 11, 2, 2), WIRE_JSON_TOO_MANY);
	assert_int_equal(wire_json_scan("[[[1]]]", 7, 3, 4), WIRE_JSON_FITS);
	assert_int_equal(wire_json_scan("[[[1]]]", 7, 3, 3), WIRE_JSON_TOO_MANY);
	/* a number's run of bytes is one value, however long */
	assert_int_equal(wire_json_scan("[12345678901234567890,1e400]", 28, 2, 3), WIRE_JSON_FITS);
}

static void test_error_shape(void **state)
{
	json_t *e = wire_error("Bad thing", "invalid_request_error", "tool", "invalid_type");
	json_t *in;

	(void)state;
	assert_non_null(e);
	assert_int_equal(json_object_size(e), 1);
	in = json_object_get(e, "error");
	assert_true(json_is_object(in));
	assert_int_equal(json_object_size(in), 4);
	assert_string_equal(json_string_value(json_object_get(in, "message")), "Bad thing");
	assert_string_equal(json_string_value(json_object_get(in, "type")), "invalid_request_error");
	assert_string_equal(json_string_value(json_object_get(in, "param")), "tool");
	assert_string_equal(json_string_value(json_object_get(in, "code")), "invalid_type");
	json_decref(e);

	e = wire_error("x", "server_error", NULL, NULL);
	assert_non_null(e);
	in = json_object_get(e, "error");
	assert_true(json_is_null(json_object_get(in, "param")));
	assert_true(json_is_null(json_object_get(in, "code")));
	json_decref(e);

	/* bytes that are not UTF-8 still give an error object */
	e = wire_error("bad \xff\xfe bytes", "server_error", "p\xff", NULL);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "message")), "bad ?? bytes");
	json_decref(e);
}

static void test_status_types(void **state)
{
	static const int invalid[] = { 400, 404, 405, 409, 411, 413, 415, 422 };

	(void)state;
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		assert_string_equal(wire_error_type(invalid[i]), "invalid_request_error");
	assert_string_equal(wire_error_type(401), "authentication_error");
	assert_string_equal(wire_error_type(403), "permission_error");
	assert_string_equal(wire_error_type(429), "rate_limit_error");
	assert_string_equal(wire_error_type(500), "server_error");
	assert_string_equal(wire_error_type(502), "server_error");
	assert_string_equal(wire_error_type(503), "server_error");
	assert_string_equal(wire_error_type(504), "server_error");
}

/* CGI-mode capture: stdout redirected into a temporary file */
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

/* restore stdout; returns what was written (caller frees) */
static char *capture_end(struct capture *c)
{
	long n;
	char *s;

	fflush(stdout);
	assert_true(dup2(c->saved, STDOUT_FILENO) >= 0);
	close(c->saved);
	n = ftell(c->tmp);
	if (n < 0)
		n = lseek(fileno(c->tmp), 0, SEEK_END);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(pread(fileno(c->tmp), s, (size_t)n, 0), n);
	fclose(c->tmp);
	return s;
}

static void cgi_hio(struct hio *h)
{
	memset(h, 0, sizeof *h);
	h->cgi = 1;
	h->served = 1;
}

/* the JSON body of a captured response (after the blank line); new reference */
static json_t *response_json(const char *out, int *status)
{
	const char *body = strstr(out, "\r\n\r\n");

	assert_non_null(body);
	assert_int_equal(sscanf(out, "Status: %d", status), 1);
	return json_loads(body + 4, 0, NULL);
}

/* parse body with oai_parse_body; returns the parsed object or NULL with
 * *status and *code from the error response that was written */
static size_t parse_max_values = 1000000; /* MCPGW_MAX_JSON_VALUES for parse_via_hio */

static json_t *parse_via_hio(const char *body, int max_depth, int *status, char *code, size_t codelen)
{
	struct capture c;
	struct hio h;
	json_t *v, *resp;
	char *out;

	cgi_hio(&h);
	capture_start(&c);
	v = oai_parse_body(&h, body, strlen(body), max_depth, parse_max_values);
	out = capture_end(&c);
	*status = 0;
	code[0] = '\0';
	if (!v) {
		resp = response_json(out, status);
		assert_non_null(resp);
		snprintf(code, codelen, "%s", json_string_value(json_object_get(json_object_get(resp, "error"), "code")));
		assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "error"), "type")),
				    "invalid_request_error");
		json_decref(resp);
	} else {
		assert_string_equal(out, ""); /* nothing written on success */
	}
	free(out);
	return v;
}

static void test_parse_body(void **state)
{
	char code[64];
	int status;
	json_t *v;

	(void)state;
	v = parse_via_hio("{\"tool\":\"x\",\"arguments\":{\"a\":[1,2]}}", 4, &status, code, sizeof code);
	assert_non_null(v);
	json_decref(v);

	assert_null(parse_via_hio("{\"tool\":", 64, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "invalid_json");

	assert_null(parse_via_hio("", 64, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "invalid_json");

	assert_null(parse_via_hio("{\"a\":[[[[1]]]]}", 4, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "json_too_deep");

	assert_null(parse_via_hio("[1,2]", 4, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "invalid_request");

	assert_null(parse_via_hio("\"str\"", 4, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "invalid_request");
}

static void test_parse_body_values(void **state)
{
	const char *body = "{\"a\":[1,2],\"b\":\"[[[,,,]]]\"}"; /* the object, the list, 1, 2, the string */
	int status;
	char code[64];
	json_t *v;

	(void)state;
	parse_max_values = 5;
	v = parse_via_hio(body, 8, &status, code, sizeof code);
	assert_non_null(v);
	json_decref(v);
	parse_max_values = 4;
	assert_null(parse_via_hio(body, 8, &status, code, sizeof code));
	assert_int_equal(status, 400);
	assert_string_equal(code, "json_too_many_values");
	/* too deep is said when the depth is passed before the count */
	parse_max_values = 2;
	assert_null(parse_via_hio("[[[[1]]]]", 2, &status, code, sizeof code));
	assert_string_equal(code, "json_too_deep");
	parse_max_values = 1000000;
}

static void test_parse_error_position(void **state)
{
	struct capture c;
	struct hio h;
	char *out;
	json_t *resp;
	const char *msg;
	int status;

	(void)state;
	cgi_hio(&h);
	capture_start(&c);
	assert_null(oai_parse_body(&h, "{\"a\":1,\n \"b\":}", 15, 8, 100));
	out = capture_end(&c);
	assert_non_null(strstr(out, "Status: 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"));
	resp = response_json(out, &status);
	assert_non_null(resp);
	msg = json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "line 2"));
	assert_non_null(strstr(msg, "position"));
	json_decref(resp);
	free(out);
}

static void test_send_error_format(void **state)
{
	struct capture c;
	struct hio h;
	char *out;
	json_t *resp;
	int status;

	(void)state;
	cgi_hio(&h);
	capture_start(&c);
	assert_int_equal(oai_send_error(&h, 413, NULL, "request_too_large", "limit is %zu bytes", (size_t)1024), 0);
	/* a second response on the same request is refused */
	assert_int_equal(hio_headers(&h, 200, "application/json", NULL), -1);
	out = capture_end(&c);
	assert_true(strncmp(out, "Status: 413 Content Too Large\r\n", 31) == 0);
	resp = response_json(out, &status);
	assert_int_equal(status, 413);
	assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "error"), "message")),
			    "limit is 1024 bytes");
	assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "error"), "type")),
			    "invalid_request_error");
	json_decref(resp);
	free(out);
}

/* hio_read_body in CGI mode: stdin from a temporary file holding data */
static int read_body_cgi(const char *data, const char *content_length, size_t max, buf_t *out)
{
	FILE *in = tmpfile();
	struct hio h;
	int saved, rc;

	assert_non_null(in);
	assert_int_equal(fwrite(data, 1, strlen(data), in), strlen(data));
	fflush(in);
	rewind(in);
	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	__fpurge(stdin);
	clearerr(stdin);
	assert_true(dup2(fileno(in), STDIN_FILENO) >= 0);
	if (content_length)
		setenv("CONTENT_LENGTH", content_length, 1);
	else
		unsetenv("CONTENT_LENGTH");
	cgi_hio(&h);
	rc = hio_read_body(&h, max, out);
	__fpurge(stdin);
	clearerr(stdin);
	assert_true(dup2(saved, STDIN_FILENO) >= 0);
	close(saved);
	fclose(in);
	unsetenv("CONTENT_LENGTH");
	return rc;
}

static void test_read_body(void **state)
{
	buf_t b = BUF_INIT;

	(void)state;
	assert_int_equal(read_body_cgi("{\"a\":1}", "7", 100, &b), 0);
	assert_int_equal(b.len, 7);
	assert_string_equal(b.data, "{\"a\":1}");
	/* exactly CONTENT_LENGTH bytes, no more */
	assert_int_equal(read_body_cgi("{\"a\":1}garbage", "7", 100, &b), 0);
	assert_string_equal(b.data, "{\"a\":1}");
	/* limits */
	assert_int_equal(read_body_cgi("0123456789", "10", 10, &b), 0);
	assert_int_equal(read_body_cgi("0123456789", "11", 10, &b), 413);
	assert_int_equal(read_body_cgi("", "99999999999999999999999999", 10, &b), 413);
	/* strict CONTENT_LENGTH */
	assert_int_equal(read_body_cgi("abc", "3 ", 10, &b), 400);
	assert_int_equal(read_body_cgi("abc", "+3", 10, &b), 400);
	assert_int_equal(read_body_cgi("abc", "-1", 10, &b), 400);
	assert_int_equal(read_body_cgi("abc", "0x3", 10, &b), 400);
	/* short body */
	assert_int_equal(read_body_cgi("abc", "5", 10, &b), 400);
	/* no CONTENT_LENGTH: an empty body */
	assert_int_equal(read_body_cgi("abc", NULL, 10, &b), 0);
	assert_int_equal(b.len, 0);
	assert_non_null(b.data);
	buf_free(&b);
}

static void test_hio_path_and_reason(void **state)
{
	struct hio h;
	char path[64];

	(void)state;
	cgi_hio(&h);
	setenv("REQUEST_URI", "/v1/tools/x?format=openai", 1);
	assert_string_equal(hio_path(&h, path, sizeof path), "/v1/tools/x");
	setenv("REQUEST_URI", "/health", 1);
	assert_string_equal(hio_path(&h, path, sizeof path), "/health");
	unsetenv("REQUEST_URI");
	setenv("SCRIPT_NAME", "/v1", 1);
	setenv("PATH_INFO", "/tools", 1);
	assert_string_equal(hio_path(&h, path, sizeof path), "/v1/tools");
	unsetenv("SCRIPT_NAME");
	unsetenv("PATH_INFO");
	assert_string_equal(hio_reason(404), "Not Found");
	assert_string_equal(hio_reason(413), "Content Too Large");
	assert_string_equal(hio_reason(599), "Server Error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth_basic),
		cmocka_unit_test(test_depth_strings),
		cmocka_unit_test(test_depth_bounds),
		cmocka_unit_test(test_values_count),
		cmocka_unit_test(test_values_strings),
		cmocka_unit_test(test_values_limit),
		cmocka_unit_test(test_parse_body_values),
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_status_types),
		cmocka_unit_test(test_parse_body),
		cmocka_unit_test(test_parse_error_position),
		cmocka_unit_test(test_send_error_format),
		cmocka_unit_test(test_read_body),
		cmocka_unit_test(test_hio_path_and_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
