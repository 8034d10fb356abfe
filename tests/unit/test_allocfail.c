/* test_allocfail.c: the jansson-heavy modules of lib/ with jansson's n-th allocation failing, for every n: an error or the whole right value, never a crash, a leak (valgrind) or a half-built value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "allocfail.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/sharedcache.h"
#include "core/statestore.h"
#include "mcp/bclient.h"
#include "mcp/config.h"
#include "mcp/jsonrpc.h"
#include "mcp/mcptools.h"
#include "mcp/registry.h"
#include "mcp/toolschema.h"
#include "openai/toolcalls.h"
#include "openai/toolloop.h"
#include "openai/toolresult.h"
#include "openai/wire.h"

/* Each test computes the value once with every allocation succeeding (the
 * reference), then again with the n-th allocation failing, n = 1, 2, ...
 * until an input is handled without reaching its n-th allocation. A value
 * handed back is then the reference, whole; else the function said it
 * failed. */

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

	assert_non_null(j);
	return j;
}

/* same: a and b are equal JSON (on failure both are printed; of arrays, the first elements that differ) */
static void same(const json_t *a, const json_t *b)
{
	if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b))
		for (size_t i = 0; i < json_array_size(a); i++)
			same(json_array_get(a, i), json_array_get(b, i));
	if (!json_equal(a, b)) {
		char *x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY),
		     *y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);

		print_error("expected %s\n     got %s\n", x ? x : "?", y ? y : "?");
		free(x);
		free(y);
		fail();
	}
}

/* ---- lib/openai/toolcalls.c: streamed deltas and whole messages ---- */

static const char *const DELTAS[] = {
	"{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"\"}}",
	"{\"index\":0,\"function\":{\"arguments\":\"{\\\"query\\\":\"}}",
	"{\"index\":0,\"function\":{\"arguments\":\"\\\"SELECT 1\\\"}\"}}",
	"{\"index\":1,\"id\":\"call_b\",\"function\":{\"name\":\"list_tables\",\"arguments\":{\"a\":[1,2]}},"
	"\"extra_content\":{\"google\":{\"thought_signature\":\"sig\"}}}",
	"{\"index\":1,\"extra_content\":{\"google\":{\"more\":true}}}",
	"{\"function\":{\"name\":\"noid\",\"arguments\":\"{}\"}}",
	"{\"id\":5}",
};

static const char MESSAGE_CALLS[] =
	"[{\"id\":\"call_m1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}},"
	"{\"id\":\"call_m1\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":{\"y\":[true]}},"
	"\"extra_content\":{\"k\":\"v\"}},"
	"{\"type\":\"function\",\"function\":{\"name\":\"h\"}}]";

/* calls_json: every call of tc as a JSON array (minted ids blanked: they differ run to run); NULL on ENOMEM */
static json_t *calls_json(const struct toolcalls *tc)
{
	json_t *a = json_array(), *c;

	for (int i = 0; a && i < tc->n; i++) {
		if (!(c = toolcalls_json(tc, i))) {
			json_decref(a);
			return NULL;
		}
		if (tc->calls[i].minted) {
			allocfail_pause();
			assert_int_equal(json_object_set_new(c, "id", json_string("minted")), 0);
			allocfail_resume();
		}
		if (json_array_append_new(a, c) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* assemble: the deltas (or the message) into calls, as JSON; NULL when a step said ENOMEM */
static json_t *assemble(int streamed)
{
	struct toolcalls tc;
	json_t *out = NULL, *v;
	int which, nomem = 0;

	toolcalls_init(&tc, 8, "test");
	if (streamed) {
		for (size_t i = 0; i < sizeof DELTAS / sizeof *DELTAS && !nomem; i++) {
			allocfail_pause();
			v = parse(DELTAS[i]);
			allocfail_resume();
			nomem = toolcalls_delta(&tc, v, &which) == TOOLCALLS_ENOMEM;
			json_decref(v);
		}
	} else {
		allocfail_pause();
		v = parse(MESSAGE_CALLS);
		allocfail_resume();
		nomem = toolcalls_message(&tc, v) == TOOLCALLS_ENOMEM;
		json_decref(v);
	}
	if (!nomem)
		out = calls_json(&tc);
	toolcalls_free(&tc);
	return out;
}

static void test_toolcalls(void **state)
{
	(void)state;
	for (int streamed = 0; streamed < 2; streamed++) {
		json_t *ref = assemble(streamed), *got;
		int n, reached;

		assert_non_null(ref);
		assert_int_equal(json_array_size(ref), streamed ? 3 : 3);
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			allocfail_start(n);
			got = assemble(streamed);
			reached = allocfail_stop();
			if (got)
				same(ref, got);
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
		json_decref(ref);
	}
}

/* ---- lib/openai/toolresult.c: an MCP result as the model's text and images ---- */

static const char RESULT[] =
	"{\"content\":[{\"type\":\"text\",\"text\":\"rows: 2\"},"
	"{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"},"
	"{\"type\":\"resource_link\",\"uri\":\"file:///a.txt\",\"name\":\"a\",\"mimeType\":\"text/plain\","
	"\"description\":\"the file\"},"
	"{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///b.png\",\"mimeType\":\"image/png\",\"blob\":\"AAAA\"}},"
	"{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///c.txt\",\"text\":\"see\"}},"
	"{\"type\":\"audio\",\"mimeType\":\"audio/wav\",\"data\":\"UklGRg==\"},{\"type\":\"weird\",\"x\":[1]}],"
	"\"structuredContent\":{\"rows\":[{\"n\":1},{\"n\":2}]},\"isError\":true}";

static void test_toolresult(void **state)
{
	json_t *result = parse(RESULT), *error = parse("{\"code\":-32000,\"message\":\"boom\",\"data\":{\"why\":[1]}}");
	json_t *ref_parts = json_array(), *parts;
	buf_t ref = BUF_INIT, out = BUF_INIT;
	int ref_n, got_n, n, reached, rc;
	(void)state;

	for (int which = 0; which < 3; which++) {
		const json_t *r = which == 1 ? NULL : result, *e = which == 0 ? NULL : error;

		buf_reset(&ref);
		assert_int_equal(toolresult_text(r, e, which == 2 ? 40 : 4096, &ref), 0);
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			buf_reset(&out);
			allocfail_start(n);
			rc = toolresult_text(r, e, which == 2 ? 40 : 4096, &out);
			reached = allocfail_stop();
			if (rc == 0)
				assert_string_equal(ref.data, out.data);
			else
				assert_int_equal(rc, -1);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
	}
	ref_n = toolresult_images(result, ref_parts);
	assert_int_equal(ref_n, 2);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		parts = json_array();
		allocfail_start(n);
		got_n = toolresult_images(result, parts);
		reached = allocfail_stop();
		if (got_n >= 0) /* every image, or -1: none left out silently */
			same(ref_parts, parts);
		for (size_t i = 0; i < json_array_size(parts); i++) /* those added before are whole */
			same(json_array_get(ref_parts, i), json_array_get(parts, i));
		json_decref(parts);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	buf_free(&ref);
	buf_free(&out);
	json_decref(ref_parts);
	json_decref(result);
	json_decref(error);
}

/* ---- lib/openai/wire.c: error objects ---- */

static const char *const UPSTREAM_ERRORS[] = {
	"{\"error\":{\"message\":\"bad key\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
	"{\"error\":{\"message\":{\"nested\":[1]},\"code\":401}}",
	"[{\"error\":{\"code\":400,\"message\":\"gemini says no\",\"status\":\"INVALID_ARGUMENT\"}}]",
	"{\"detail\":[{\"msg\":\"field required\",\"loc\":[\"body\",\"model\"]},{\"msg\":\"x\"}]}",
	"{\"detail\":{\"any\":\"thing\"}}",
	"{\"object\":\"error\",\"message\":\"vllm no\",\"type\":\"BadRequestError\",\"code\":400}",
	"{\"message\":\"plain\"}",
	"{\"error\":\"just text\"}",
	"\"a string\"",
};

static json_t *wire_all(void)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	if (json_array_append_new(a, wire_error("bad \xff input", "invalid_request_error", "messages", "bad")) < 0 ||
	    json_array_append_new(a, wire_error(NULL, NULL, NULL, NULL)) < 0 ||
	    json_array_append_new(a, wire_errorf(429, "model", NULL, "too many: %d", 7)) < 0)
		goto err;
	for (size_t i = 0; i < sizeof UPSTREAM_ERRORS / sizeof *UPSTREAM_ERRORS; i++) {
		json_t *body, *e;

		allocfail_pause();
		body = parse(UPSTREAM_ERRORS[i]);
		allocfail_resume();
		e = wire_error_from(body, 400 + (int)i);
		json_decref(body);
		if (!e && i < 8) /* the last one has no error in it */
			goto err;
		if (e && json_array_append_new(a, e) < 0)
			goto err;
	}
	return a;
err:
	json_decref(a);
	return NULL;
}

/* upstream_errors: the error objects (with their statuses) for failed upstream exchanges; NULL on ENOMEM */
static json_t *upstream_errors(void)
{
	static const struct {
		enum upstream_err err;
		long status;
		const char *body, *type;
	} cases[] = {
		{ UPSTREAM_EHTTP, 400,
		  "{\"error\":{\"message\":\"bad model\",\"type\":\"invalid_request_error\",\"param\":\"model\"}}",
		  "application/json" },
		{ UPSTREAM_EHTTP, 401, "{\"error\":{\"message\":\"Incorrect API key provided: sk-abc***\"}}",
		  "application/json" },
		{ UPSTREAM_EHTTP, 429, "{\"detail\":[{\"msg\":\"slow down\",\"loc\":[\"body\"]}]}", "application/json" },
		{ UPSTREAM_EHTTP, 503, "<html>down</html>", "text/html" },
		{ UPSTREAM_ETIMEOUT, 0, "", "" },
		{ UPSTREAM_EBADRESP, 200, "nope", "text/plain" },
	};
	json_t *a = json_array();

	for (size_t i = 0; a && i < sizeof cases / sizeof *cases; i++) {
		struct upstream_result res;
		json_t *e;
		int status;

		upstream_result_init(&res);
		res.err = cases[i].err;
		res.status = cases[i].status;
		snprintf(res.url, sizeof res.url, "http://127.0.0.1:1/v1/chat/completions");
		snprintf(res.content_type, sizeof res.content_type, "%s", cases[i].type);
		if (res.err != UPSTREAM_EHTTP)
			snprintf(res.message, sizeof res.message, "%s failed (%d)", res.url, (int)i);
		assert_int_equal(buf_puts(&res.body, cases[i].body), 0);
		e = upstream_error_json(&res, &status);
		upstream_result_free(&res);
		if (e && json_object_set_new(e, "status", json_integer(status)) < 0) {
			json_decref(e);
			e = NULL;
		}
		if (!e || json_array_append_new(a, e) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static void test_upstream_errors(void **state)
{
	json_t *ref = upstream_errors(), *got;
	int n, reached;
	(void)state;

	assert_non_null(ref);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		allocfail_start(n);
		got = upstream_errors();
		reached = allocfail_stop();
		if (got)
			same(ref, got);
		json_decref(got);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(ref);
}

static void test_wire(void **state)
{
	json_t *ref = wire_all(), *got;
	int n, reached;
	(void)state;

	assert_non_null(ref);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		allocfail_start(n);
		got = wire_all();
		reached = allocfail_stop();
		if (got)
			same(ref, got);
		json_decref(got);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(ref);
}

/* ---- lib/mcp/jsonrpc.c: messages made (their parts stolen even on failure), written and read ---- */

/* given: a value the caller made (not counted: a caller checks its own) */
static json_t *given(const char *text)
{
	json_t *v;

	allocfail_pause();
	v = parse(text);
	allocfail_resume();
	return v;
}

static json_t *jsonrpc_all(void)
{
	json_t *a = json_array(), *id = json_string("req-1"), *m, *p;
	buf_t line = BUF_INIT;
	json_error_t err;

	if (!a || !id)
		goto err;
	/* the parts handed to jr_* are theirs, even when they fail (valgrind sees a leak else) */
	if (json_array_append_new(a, jr_request(7, "tools/call", given("{\"name\":\"t\",\"arguments\":{\"x\":1}}"))) < 0 ||
	    json_array_append_new(a, jr_request(8, "ping", NULL)) < 0 ||
	    json_array_append_new(a, jr_notification("notifications/initialized", given("{}"))) < 0 ||
	    json_array_append_new(a, jr_result(id, given("{\"tools\":[\"x\"]}"))) < 0 ||
	    json_array_append_new(a, jr_result(NULL, NULL)) < 0 ||
	    json_array_append_new(a, jr_error(id, -32601, "no such method", given("{\"reason\":\"x\"}"))) < 0 ||
	    json_array_append_new(a, jr_error(NULL, -32700, NULL, NULL)) < 0 ||
	    json_array_append_new(a, jr_string_lossy("caf\xc3\xa9 \xff")) < 0)
		goto err;
	if (jr_append_line(&line, json_array_get(a, 0)) < 0 || !(m = jr_parse(line.data, line.len - 1, &err)))
		goto err;
	if (json_array_append_new(a, m) < 0)
		goto err;
	allocfail_pause();
	p = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
	allocfail_resume();
	if (json_array_append_new(a, json_integer(jr_classify(p))) < 0) {
		json_decref(p);
		goto err;
	}
	json_decref(p);
	json_decref(id);
	buf_free(&line);
	return a;
err:
	json_decref(id);
	json_decref(a);
	buf_free(&line);
	return NULL;
}

static void test_jsonrpc(void **state)
{
	json_t *ref = jsonrpc_all(), *got;
	int n, reached;
	(void)state;

	assert_non_null(ref);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		allocfail_start(n);
		got = jsonrpc_all();
		reached = allocfail_stop();
		if (got)
			same(ref, got);
		json_decref(got);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(ref);
}

/* ---- lib/mcp/toolschema.c: inputSchemas made ones OpenAI takes ---- */

static const char *const SCHEMAS[] = {
	"{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\",\"properties\":{"
	"\"q\":{\"$ref\":\"#/$defs/Q\"},\"n\":{\"type\":[\"integer\",\"null\"],\"minimum\":0},"
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}},"
	"\"required\":[\"q\",\"missing\"],\"$defs\":{\"Q\":{\"type\":\"string\",\"description\":\"the query\"}}}",
	"{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]},"
	"{\"properties\":{\"b\":{\"type\":\"number\"}}}],\"$comment\":\"x\"}",
	"{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}},\"required\":[\"x\"]},"
	"{\"type\":\"object\",\"properties\":{\"y\":{\"type\":\"integer\"}},\"required\":[\"y\"]}]}",
	"{\"type\":\"object\",\"properties\":{\"node\":{\"$ref\":\"#/definitions/Node\"}},"
	"\"definitions\":{\"Node\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/definitions/Node\"}}}}}",
	"{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"object\",\"required\":true,\"properties\":"
	"{\"p\":{\"required\":true}}}}}",
	"null",
	"{\"type\":\"string\"}",
};

static void test_toolschema(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof SCHEMAS / sizeof *SCHEMAS; i++) {
		json_t *input = parse(SCHEMAS[i]), *ref, *got;
		char why[TOOLSCHEMA_WHY_MAX];
		int n, reached;

		ref = toolschema_params(input, why, sizeof why);
		assert_true(ref || why[0]);
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			allocfail_start(n);
			got = toolschema_params(input, why, sizeof why);
			reached = allocfail_stop();
			if (got)
				same(ref, got);
			else
				assert_true(why[0] != '\0'); /* a reason: "out of memory", or the schema's own */
			if (ref && !got)
				assert_string_equal(why, "out of memory");
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
		json_decref(ref);
		json_decref(input);
	}
}

/* ---- lib/mcp/mcptools.c: the broker's catalog as OpenAI tools ---- */

static const char CATALOG[] =
	"[{\"name\":\"read_query\",\"description\":\"Run a SELECT\",\"inputSchema\":{\"type\":\"object\",\"properties\":"
	"{\"query\":{\"type\":\"string\"}},\"required\":[\"query\"]},\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"list\",\"inputSchema\":{\"$ref\":\"#/$defs/L\",\"$defs\":{\"L\":{\"type\":\"object\"}}},"
	"\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"bad\",\"inputSchema\":{\"type\":\"string\"},\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"fetch\",\"description\":\"Get a URL\",\"_meta\":{\"mcpgw/server\":\"web\"}},"
	"{\"name\":\"skipped\",\"_meta\":{\"mcpgw/server\":\"web\"}},"
	"{\"name\":\"other\",\"_meta\":{\"mcpgw/server\":\"elsewhere\"}}]";

static void test_mcptools_openai(void **state)
{
	struct mcptools m;
	json_t *skip = parse("{\"skipped\":true}"), *ref, *got;
	int n, reached;
	(void)state;

	memset(&m, 0, sizeof m);
	m.tools = parse(CATALOG);
	for (int with_params = 0; with_params < 2; with_params++) {
		if (with_params) { /* as mcptools_refresh leaves it: the parameters made once */
			size_t i;
			json_t *t;
			char why[TOOLSCHEMA_WHY_MAX];

			m.params = json_object();
			json_array_foreach(m.tools, i, t) {
				json_t *p = toolschema_params(json_object_get(t, "inputSchema"), why, sizeof why);

				if (p)
					assert_int_equal(json_object_set_new(m.params,
									     json_string_value(json_object_get(t, "name")),
									     p),
							 0);
			}
		}
		ref = mcptools_openai(&m, "sqlite,web", skip, NULL);
		assert_int_equal(json_array_size(ref), 3);
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			allocfail_start(n);
			got = mcptools_openai(&m, "sqlite,web", skip, NULL);
			reached = allocfail_stop();
			if (got)
				same(ref, got);
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
		json_decref(ref);
	}
	mcptools_free(&m);
	json_decref(skip);
}

/* ---- lib/mcp/mcptools.c: the broker's tools/list cached (mcptools_refresh) ---- */

/* a fake broker on a Unix socket: every request line is answered with the
 * catalog below (no jansson in its thread: the countdown is the test's) */
struct fake_broker {
	char dir[64], path[96];
	int lfd;
	pthread_t thread;
};

static const char LISTING[] =
	"\"result\":{\"tools\":" /* the CATALOG's tools, then the broker's _meta */
	"[{\"name\":\"read_query\",\"description\":\"Run a SELECT\",\"inputSchema\":{\"type\":\"object\","
	"\"properties\":{\"query\":{\"type\":\"string\"}},\"required\":[\"query\"]},\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"list\",\"inputSchema\":{\"$ref\":\"#/$defs/L\",\"$defs\":{\"L\":{\"type\":\"object\"}}},"
	"\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"bad\",\"inputSchema\":{\"type\":\"string\"},\"_meta\":{\"mcpgw/server\":\"sqlite\"}},"
	"{\"name\":\"fetch\",\"description\":\"Get a URL\",\"_meta\":{\"mcpgw/server\":\"web\"}}],"
	"\"_meta\":{\"mcpgw/generation\":7,\"mcpgw/ready\":1,\"mcpgw/unready\":[{\"name\":\"web\",\"state\":\"starting\","
	"\"failing\":false}],\"mcpgw/servers\":[\"sqlite\",\"web\"]}}}\n";

static void *fake_broker_main(void *arg)
{
	struct fake_broker *f = arg;
	char line[8192], out[sizeof LISTING + 64];
	int fd;

	while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
		size_t n = 0;
		char c;

		while (read(fd, &c, 1) == 1) {
			if (c != '\n') {
				if (n + 1 < sizeof line)
					line[n++] = c;
				continue;
			}
			line[n] = '\0';
			n = 0;
			const char *id = strstr(line, "\"id\":");
			int len = snprintf(out, sizeof out, "{\"jsonrpc\":\"2.0\",\"id\":%ld,%s",
					   id ? strtol(id + 5, NULL, 10) : 0L, LISTING);

			if (send(fd, out, (size_t)len, MSG_NOSIGNAL) != len) /* the client may have hung up */
				break;
		}
		close(fd);
	}
	return NULL;
}

static void fake_broker_start(struct fake_broker *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->dir, sizeof f->dir, "/tmp/mcpgw-allocfail-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/broker.sock", f->dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_broker_main, f), 0);
}

static void fake_broker_stop(struct fake_broker *f)
{
	shutdown(f->lfd, SHUT_RDWR); /* accept fails: the thread ends */
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

/* refreshed: the catalog as a responder offers it after a refresh (NULL: the refresh failed) */
static json_t *refreshed(struct mcptools *m, struct bclient *bc, int *rc)
{
	json_t *offered;

	*rc = mcptools_refresh(m, bc, 5000);
	allocfail_pause();
	offered = *rc == BC_OK ? json_pack("{s:I, s:i, s:O?, s:O?, s:o, s:o}", "generation", m->generation, "ready",
					   m->nready, "unready", m->unready, "servers", m->servers, "tools",
					   mcptools_openai(m, NULL, NULL, NULL), "texts", json_deep_copy(m->texts))
			       : NULL;
	allocfail_resume();
	return offered;
}

static void test_mcptools_refresh(void **state)
{
	struct fake_broker f;
	struct mcptools m;
	struct bclient *bc;
	json_t *ref, *got;
	int n, reached, rc;
	(void)state;

	fake_broker_start(&f);
	memset(&m, 0, sizeof m);
	bc = bc_new(f.path, 1 << 20);
	assert_non_null(bc);
	ref = refreshed(&m, bc, &rc);
	assert_int_equal(rc, BC_OK);
	assert_int_equal(json_array_size(json_object_get(ref, "tools")), 3); /* "bad" cannot be offered */
	assert_int_equal(m.generation, 7);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		mcptools_free(&m);
		memset(&m, 0, sizeof m);
		allocfail_start(n);
		got = refreshed(&m, bc, &rc);
		reached = allocfail_stop();
		if (rc == BC_OK) {
			same(ref, got);
		} else { /* an error, and no catalog missing tools: none at all */
			assert_true(rc < 0 || rc == 1);
			assert_null(m.tools);
			assert_int_equal(m.generation, 0);
		}
		json_decref(got);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(ref);
	mcptools_free(&m);
	bc_free(bc);
	fake_broker_stop(&f);
}

/* ---- lib/mcp/bclient.c: two requests in flight, answered out of order ---- */

/* two_calls: bc_send twice, bc_wait for the second then the first; each outcome into out[k]
 * (the result, or the status as an integer) */
static void two_calls(struct bclient *bc, json_t *out[2])
{
	long id[2];
	json_t *result, *error;

	for (int k = 0; k < 2; k++) {
		json_t *params;

		allocfail_pause();
		params = json_pack("{s:{s:i}}", "_meta", "mcpgw/ifGeneration", k);
		allocfail_resume();
		id[k] = bc_send(bc, "tools/list", params);
	}
	for (int k = 1; k >= 0; k--) {
		int rc = id[k] > 0 ? bc_wait(bc, id[k], 5000, &result, &error) : (int)id[k];

		allocfail_pause();
		out[k] = rc == BC_OK ? json_incref(result ? result : error) : json_integer(rc);
		allocfail_resume();
		if (rc == BC_OK) {
			json_decref(result);
			json_decref(error);
		}
	}
}

static void test_bclient(void **state)
{
	struct fake_broker f;
	struct bclient *bc;
	json_t *ref[2], *got[2];
	int n, reached;
	(void)state;

	fake_broker_start(&f);
	assert_non_null(bc = bc_new(f.path, 1 << 20));
	two_calls(bc, ref);
	assert_true(json_is_array(json_object_get(ref[0], "tools")));
	same(ref[0], ref[1]);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		allocfail_start(n);
		two_calls(bc, got);
		reached = allocfail_stop();
		for (int k = 0; k < 2; k++) {
			if (json_is_integer(got[k])) /* a bc_status */
				assert_true(json_integer_value(got[k]) < 0);
			else
				same(ref[k], got[k]);
			json_decref(got[k]);
		}
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(ref[0]);
	json_decref(ref[1]);
	bc_free(bc);
	fake_broker_stop(&f);
}

/* ---- lib/mcp/registry.c: a server's tools stored and loaded ---- */

static void test_registry(void **state)
{
	char dir[64], path[96], err[512], cmd[160];
	struct registry *reg;
	json_t *tools = parse(CATALOG), *ref, *got = NULL, *two;
	struct registry_server srv = { .name = "sqlite", .transport = "stdio", .fingerprint = "f1", .state = "ready" };
	struct registry_tool t[3];
	int n, reached, rc = 0;
	(void)state;

	snprintf(dir, sizeof dir, "/tmp/mcpgw-allocfail-reg.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/registry.db", dir);
	assert_non_null(reg = registry_open(path, err, sizeof err));
	assert_int_equal(registry_put_server(reg, &srv), 0);
	for (int i = 0; i < 3; i++)
		t[i] = (struct registry_tool){ "sqlite",
					       json_string_value(json_object_get(json_array_get(tools, i), "name")),
					       json_string_value(json_object_get(json_array_get(tools, i), "name")),
					       json_array_get(tools, i), NULL };
	assert_int_equal(registry_replace_tools(reg, t, 3), 0);
	ref = registry_load_tools(reg, "sqlite", "f1");
	assert_int_equal(json_array_size(ref), 3);
	two = json_pack("[O,O]", json_array_get(ref, 0), json_array_get(ref, 1));
	for (int op = 0; op < 2; op++) {
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			allocfail_start(n);
			if (op == 0) /* stored whole, or not at all (the three rows stay) */
				rc = registry_replace_tools(reg, t, 2);
			else /* loaded whole, or NULL */
				got = registry_load_tools(reg, "sqlite", "f1");
			reached = allocfail_stop();
			if (op == 0) {
				got = registry_load_tools(reg, "sqlite", "f1");
				same(rc == 0 ? two : ref, got);
				assert_int_equal(registry_replace_tools(reg, t, 3), 0);
			} else if (got) {
				same(ref, got);
			}
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
	}
	json_decref(two);
	json_decref(ref);
	json_decref(tools);
	registry_close(reg);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- lib/core/sharedcache.c: one JSON value shared through the state store ---- */

static const char MODELS[] = "[{\"id\":\"m1\",\"owned_by\":\"x\"},{\"id\":\"m2\",\"caps\":{\"tools\":true}}]";

/* models_fetch: the source (not the code under test: its allocations are not failed) */
static json_t *models_fetch(void *ud)
{
	json_t *v;

	(void)ud;
	allocfail_pause();
	v = parse(MODELS);
	allocfail_resume();
	return v;
}

static void test_sharedcache(void **state)
{
	char dir[64], url[128], err[512], cmd[160];
	struct statestore_opts o = { .url = url, .timeout_ms = 5000 };
	struct sharedcache c = { .name = "models",
				 .source = "http://upstream/v1",
				 .hold_ms = 5000,
				 .wait_ms = 5000,
				 .lease_ms = 10000,
				 .max_bytes = 4096,
				 .fetch = models_fetch };
	enum sharedcache_state st;
	json_t *ref = parse(MODELS), *got;
	int n, reached;
	(void)state;

	snprintf(dir, sizeof dir, "/tmp/mcpgw-allocfail-sc.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite:%s/state.db", dir);
	assert_non_null(c.store = statestore_open(&o, err, sizeof err));
	/* ttl 60 s: read from the store (fetched once); ttl 0: fetched and written every time */
	for (int fresh = 0; fresh < 2; fresh++) {
		c.ttl_ms = fresh ? 0 : 60000;
		got = sharedcache_get(&c, &st);
		same(ref, got);
		json_decref(got);
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			allocfail_start(n);
			got = sharedcache_get(&c, &st);
			reached = allocfail_stop();
			same(ref, got); /* the value whole, never NULL: the source answers */
			assert_int_equal(st, SHAREDCACHE_FRESH);
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
	}
	statestore_close(c.store);
	json_decref(ref);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- lib/core/statestore.c: JSON values written, read and taken ---- */

static void test_statestore_json(void **state)
{
	char dir[64], url[128], err[512], cmd[160];
	struct statestore_opts o = { .url = url, .timeout_ms = 5000 };
	struct statestore *st;
	json_t *ref = parse(MODELS), *got;
	enum statestore_status s;
	int n, reached;
	(void)state;

	snprintf(dir, sizeof dir, "/tmp/mcpgw-allocfail-st.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite:%s/state.db", dir);
	assert_non_null(st = statestore_open(&o, err, sizeof err));
	for (int op = 0; op < 3; op++) { /* put_json, get_json, take_json */
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			got = NULL;
			if (op == 2)
				assert_int_equal(statestore_put_json(st, "t", "k", ref, 0), STATESTORE_OK);
			allocfail_start(n);
			s = op == 0   ? statestore_put_json(st, "t", "k", ref, 0)
			    : op == 1 ? statestore_get_json(st, "t", "k", 4096, &got, NULL)
				      : statestore_take_json(st, "t", "k", 4096, &got);
			reached = allocfail_stop();
			if (s != STATESTORE_ENOMEM) { /* never a value taken for no JSON, nor half written */
				assert_int_equal(s, STATESTORE_OK);
				if (op == 0)
					assert_int_equal(statestore_get_json(st, "t", "k", 4096, &got, NULL),
							 STATESTORE_OK);
				same(ref, got);
			} else {
				assert_null(got);
			}
			json_decref(got);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
	}
	statestore_close(st);
	json_decref(ref);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- lib/mcp/config.c: servers_config.json ---- */

static const char CONFIG[] =
	"{\"mcpServers\":{"
	"\"sqlite\":{\"command\":\"mcp-server-sqlite\",\"args\":[\"--db\",\"/tmp/x.db\"],\"env\":{\"A\":\"1\",\"N\":2,"
	"\"B\":true},\"cwd\":\"/tmp\",\"includeTools\":[\"read_*\"],\"excludeTools\":[\"drop_*\"],\"timeout\":5000,"
	"\"alwaysAllow\":[\"x\"]},"
	"\"web\":{\"type\":\"http\",\"url\":\"https://example.com/mcp\",\"headers\":{\"X-A\":\"b\"},\"disabled\":true},"
	"\"sse\":{\"type\":\"sse\",\"url\":\"http://127.0.0.1:1/sse\"}}}";

/* cfg_text: what a loaded config says, as text (to compare loads) */
static void cfg_text(const struct cfg *c, buf_t *b)
{
	for (size_t i = 0; i < c->nservers; i++) {
		const struct cfg_server *s = &c->servers[i];

		buf_printf(b, "%s %d %d %s %s %s %ld|", s->name, (int)s->transport, s->disabled, s->command ?: "-",
			   s->cwd ?: "-", s->url ?: "-", s->timeout_ms);
		for (size_t k = 0; k < s->nargs; k++)
			buf_printf(b, "a:%s ", s->args[k]);
		for (size_t k = 0; k < s->nenv; k++)
			buf_printf(b, "e:%s ", s->env[k]);
		for (size_t k = 0; k < s->nheaders; k++)
			buf_printf(b, "h:%s ", s->headers[k]);
		for (size_t k = 0; k < s->ninclude; k++)
			buf_printf(b, "i:%s ", s->include_tools[k]);
		for (size_t k = 0; k < s->nexclude; k++)
			buf_printf(b, "x:%s ", s->exclude_tools[k]);
		buf_puts(b, "\n");
	}
}

static void test_config(void **state)
{
	struct cfg c;
	char err[512];
	buf_t ref = BUF_INIT, got = BUF_INIT;
	int n, reached, rc;
	(void)state;

	assert_int_equal(cfg_load_string(CONFIG, "servers_config.json", &c, err, sizeof err), 0);
	cfg_text(&c, &ref);
	assert_int_equal(c.nservers, 3);
	cfg_free(&c);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		memset(&c, 0, sizeof c);
		err[0] = '\0';
		allocfail_start(n);
		rc = cfg_load_string(CONFIG, "servers_config.json", &c, err, sizeof err);
		reached = allocfail_stop();
		if (rc == 0) {
			buf_reset(&got);
			cfg_text(&c, &got);
			assert_string_equal(ref.data, got.data);
			cfg_free(&c);
		} else {
			assert_int_equal(rc, -1);
			assert_true(err[0] != '\0');
		}
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	buf_free(&ref);
	buf_free(&got);
}

/* ---- lib/openai/toolloop.c: runs driven step by step, upstream answers and tool results fed ---- */

/* what the sink saw: one line per event; the run's end */
struct seen {
	buf_t log;
	int ends;        /* ERROR and DONE events */
	json_t *message; /* the DONE event's message (not streamed), when kept */
	int after_end;   /* events after one of those */
	int error_status;
};

static int seen_event(void *ud, const struct toolloop_event *ev)
{
	struct seen *s = ud;

	allocfail_pause();
	if (s->ends)
		s->after_end++;
	switch (ev->kind) {
	case TOOLLOOP_CONTENT:
		if (ev->text)
			buf_printf(&s->log, "content %.*s|", (int)ev->text_len, ev->text);
		if (ev->chunk) {
			char *c = json_dumps(ev->chunk, JSON_COMPACT | JSON_SORT_KEYS);
			const char *id = strstr(c, "chatcmpl-");

			assert_non_null(c);
			/* chunk ids and created times differ run to run: what a chunk carries does not */
			buf_printf(&s->log, "chunk %s|", id ? strchr(id, ',') ?: "" : c);
			free(c);
		}
		break;
	case TOOLLOOP_TOOL_START: buf_printf(&s->log, "start %s %s %s|", ev->id, ev->tool, ev->arguments); break;
	case TOOLLOOP_TOOL_END:
		assert_non_null(ev->result);
		buf_printf(&s->log, "end %s %d|", ev->id, ev->is_error);
		break;
	case TOOLLOOP_TOOL_WAIT: buf_puts(&s->log, "wait|"); break;
	case TOOLLOOP_ERROR:
		s->ends++;
		s->error_status = ev->status;
		assert_non_null(json_string_value(json_object_get(json_object_get(ev->error, "error"), "message")));
		buf_printf(&s->log, "error %d %s|", ev->status,
			   json_string_value(json_object_get(json_object_get(ev->error, "error"), "message")));
		break;
	case TOOLLOOP_DONE: {
		char *r = ev->response
				  ? json_dumps(json_object_get(ev->response, "choices"), JSON_COMPACT | JSON_SORT_KEYS)
				  : NULL;
		char *u = ev->usage ? json_dumps(ev->usage, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

		s->ends++;
		buf_printf(&s->log, "done %s %s %s|", ev->finish_reason, r ?: "-", u ?: "-");
		json_decref(s->message);
		s->message = json_deep_copy(
			json_object_get(json_array_get(json_object_get(ev->response, "choices"), 0), "message"));
		free(r);
		free(u);
		break;
	}
	}
	allocfail_resume();
	return 0;
}

static struct settings LS;
static struct toolloop LT;

static void loop_setup(void)
{
	json_t *tool = parse("{\"name\":\"read_query\",\"description\":\"Run a SELECT\",\"inputSchema\":"
			     "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"}}},"
			     "\"_meta\":{\"mcpgw/server\":\"sqlite\"}}");

	memset(&LS, 0, sizeof LS);
	snprintf(LS.default_model, sizeof LS.default_model, "gpt-test");
	LS.max_tool_rounds = 4;
	LS.max_tool_output_bytes = 4096;
	LS.max_response_bytes = 1 << 20;
	LS.inject_tools = 1;
	LS.startup_wait_ms = 30000;
	LS.tool_timeout_ms = 1000;
	LS.broker_timeout_ms = 500;
	memset(&LT, 0, sizeof LT);
	LT.set = &LS; /* no upstream, no broker: the test is the driver */
	LT.tools.generation = 1;
	LT.tools.tools = json_pack("[O]", tool);
	LT.tools.by_name = json_pack("{s:O}", "read_query", tool);
	LT.tools.servers = json_pack("[s]", "sqlite");
	json_decref(tool);
}

#define ANSWER(msg, finish) \
	"{\"id\":\"chatcmpl-up\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-test\"," \
	"\"choices\":[{\"index\":0,\"message\":" msg ",\"finish_reason\":\"" finish "\"}]," \
	"\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}"

/* one scenario: a request body and the upstream's answers, round by round */
struct scenario {
	const char *body;
	const char *answers[3];
};

static const struct scenario SCENARIOS[] = {
	{ "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}",
	  { ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
		   "{\"id\":\"call_upA\",\"type\":\"function\",\"function\":{\"name\":\"read_query\","
		   "\"arguments\":\"{\\\"query\\\":\\\"SELECT 1\\\"}\"}},"
		   "{\"id\":\"call_upB\",\"type\":\"function\",\"function\":{\"name\":\"read_query\","
		   "\"arguments\":\"{\\\"query\\\":\\\"SELECT 2\\\"}\"}}]}",
		   "tool_calls"),
	    ANSWER("{\"role\":\"assistant\",\"content\":\"Two.\"}", "stop") } },
	{ "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":[{\"type\":"
	  "\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}",
	  { "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"id\":\"call_mcp1\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"\"}}]}}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\"{\\\"query\\\":\\\"SELECT 3\\\"}\"}}]}}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
	    "\"id\":\"call_client1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}}]}\n\n"
	    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],"
	    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
	    "data: [DONE]\n\n" } },
	{ "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-test\",\"tool_choice\":\"required\","
	  "\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}",
	  { "data: {\"id\":\"chatcmpl-2\",\"system_fingerprint\":\"fp1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	    "\"tool_calls\":[{\"index\":0,\"id\":\"call_s1\",\"type\":\"function\",\"function\":{\"name\":\"read_query\","
	    "\"arguments\":\"{\\\"query\\\":\\\"SELECT 4\\\"}\"},\"extra_content\":{\"google\":{\"thought_signature\":\"s\"}}}]}}],"
	    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":1}}}\n\n"
	    "data: {\"id\":\"chatcmpl-2\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],"
	    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":1}},"
	    "\"x_groq\":{\"usage\":{\"total_time\":0.5}}}\n\n"
	    "data: [DONE]\n\n",
	    "data: {\"id\":\"chatcmpl-3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Four.\",\"reasoning_content\":\"hm\"},"
	    "\"finish_reason\":\"stop\"},{\"index\":1,\"delta\":{\"content\":\"other\"}}],"
	    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n"
	    "data: [DONE]\n\n" } },
};

/* drive: one run of scenario sc to its end, the test as the driver; what
 * the sink saw goes to s. Returns 0 when the run could not be opened. */
static int drive(const struct scenario *sc, struct seen *s)
{
	struct toolloop_sink sink = { .event = seen_event, .ud = s };
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	json_t *body, *result;
	int round = 0, steps = 0;

	allocfail_pause();
	body = parse(sc->body);
	result = parse("{\"content\":[{\"type\":\"text\",\"text\":\"[{\\\"n\\\":1}]\"},"
		       "{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}]}");
	allocfail_resume();
	r = toolloop_open(&LT, body, NULL, &sink);
	json_decref(body);
	if (!r) {
		json_decref(result);
		return 0;
	}
	for (;;) {
		assert_true(++steps < 100);
		switch (toolloop_step(r, &need)) {
		case TOOLLOOP_NEED_CATALOG: (void)toolloop_feed_catalog(r, BC_OK); break;
		case TOOLLOOP_NEED_UPSTREAM:
			assert_true(round < 3 && sc->answers[round]);
			/* what is asked upstream is compared too: never a request missing part of the conversation */
			allocfail_pause();
			buf_printf(&s->log, "ask %.*s|", (int)need.body_len, need.body);
			allocfail_resume();
			upstream_result_init(&res);
			if (need.stream) {
				(void)toolloop_feed_upstream(r, sc->answers[round], strlen(sc->answers[round]));
			} else {
				res.status = 200;
				assert_int_equal(buf_puts(&res.body, sc->answers[round]), 0);
			}
			(void)toolloop_feed_upstream_end(r, &res);
			upstream_result_free(&res);
			round++;
			break;
		case TOOLLOOP_NEED_TOOLS: {
			/* the ids first: feeding a result may change what need points to */
			char ids[8][64];
			int k, ncalls = need.ncalls;

			assert_true(ncalls > 0 && ncalls <= 8);
			for (k = 0; k < ncalls; k++)
				snprintf(ids[k], sizeof ids[k], "%s", need.calls[k].id);
			for (k = ncalls - 1; k >= 0; k--)
				assert_int_equal(toolloop_feed_tool_result(r, ids[k], result, NULL), 0);
			break;
		}
		case TOOLLOOP_NEED_WAIT: fail_msg("the run waits for nothing the test was asked for"); break;
		case TOOLLOOP_NEED_NOTHING:
			toolloop_close(r);
			json_decref(result);
			return 1;
		}
	}
}

static void test_toolloop(void **state)
{
	(void)state;
	loop_setup();
	for (size_t i = 0; i < sizeof SCENARIOS / sizeof *SCENARIOS; i++) {
		struct seen ref = { .log = BUF_INIT }, got;
		int n, reached, opened;

		assert_int_equal(drive(&SCENARIOS[i], &ref), 1);
		assert_int_equal(ref.ends, 1);
		assert_null(strstr(ref.log.data, "error"));
		for (n = 1; n < ALLOCFAIL_MAX; n++) {
			memset(&got, 0, sizeof got);
			allocfail_start(n);
			opened = drive(&SCENARIOS[i], &got);
			reached = allocfail_stop();
			if (opened) { /* exactly one end: the reference's, or an error */
				if (got.ends != 1)
					fail_msg("scenario %zu, n=%d: %d ends: %s", i, n, got.ends, got.log.data ?: "");
				assert_int_equal(got.after_end, 0);
				if (got.error_status) { /* out of memory is the gateway's: 500, never blamed on the upstream */
					if (got.error_status != 500)
						fail_msg("n=%d: %s", n, got.log.data);
				} else if (strcmp(ref.log.data, got.log.data) != 0) {
					size_t at = 0;

					while (ref.log.data[at] == got.log.data[at])
						at++;
					at = at > 60 ? at - 60 : 0;
					fail_msg("scenario %zu, n=%d: from byte %zu\nexpected %.300s\n     got %.300s",
						 i, n, at, ref.log.data + at, got.log.data + at);
				}
			} else {
				assert_int_equal(got.ends, 0); /* NULL: no event was sent */
			}
			buf_free(&got.log);
			json_decref(got.message);
			if (!reached)
				break;
		}
		assert_true(n < ALLOCFAIL_MAX);
		buf_free(&ref.log);
		json_decref(ref.message);
	}
	mcptools_free(&LT.tools);
}

/* ---- the same with a state store: a mixed batch's hidden round kept, then restored ---- */

#define WEATHER_TOOL \
	"[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]"

static const struct scenario MIXED = {
	"{\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":" WEATHER_TOOL "}",
	{ ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
		 "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}},"
		 "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}",
		 "tool_calls") }
};

/* unminted: log with every id the gateway minted ("call_" and 24 of [A-Za-z0-9]) written call_MINTED */
static void unminted(buf_t *log)
{
	for (char *p = log->data; p && (p = strstr(p, "call_")) != NULL; p += 5) {
		size_t k = strspn(p + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");

		if (k == 24) {
			memcpy(p + 5, "MINTED", 6);
			memmove(p + 11, p + 29, strlen(p + 29) + 1);
			log->len -= 18;
		}
	}
}

/* come_back: the client's next request after MIXED (the assistant message it got, its own result) */
static char *come_back(const json_t *assistant)
{
	const char *id =
		json_string_value(json_object_get(json_array_get(json_object_get(assistant, "tool_calls"), 0), "id"));
	json_t *b = json_pack("{s:[{s:s, s:s}, O, {s:s, s:s, s:s}], s:o}", "messages", "role", "user", "content", "w",
			      assistant, "role", "tool", "tool_call_id", id, "content", "sunny", "tools",
			      json_loads(WEATHER_TOOL, 0, NULL));
	char *text = json_dumps(b, JSON_COMPACT);

	assert_non_null(text);
	json_decref(b);
	return text;
}

/* the client comes back with its result: the run restores the hidden MCP round (the upstream sees it
 * under its own ids) or fails; a run that failed before the upstream answered puts the history back */
static void test_toolloop_history(void **state)
{
	char dir[64], cmd[160];
	struct seen ref = { .log = BUF_INIT }, got, a;
	struct scenario back = { NULL, { ANSWER("{\"role\":\"assistant\",\"content\":\"done\"}", "stop") } };
	int n, reached, opened;
	(void)state;

	loop_setup();
	snprintf(dir, sizeof dir, "/tmp/mcpgw-allocfail-tl.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(LS.state_store, sizeof LS.state_store, "sqlite:%s/state.db", dir);
	LS.state_store_timeout_ms = 2000;
	LS.session_ttl_ms = 60000;
	LS.max_message_bytes = 1 << 20;
	for (n = 0; n < ALLOCFAIL_MAX; n++) { /* n = 0: the reference */
		char *body;

		memset(&a, 0, sizeof a);
		assert_int_equal(drive(&MIXED, &a), 1);
		assert_non_null(a.message);
		back.body = body = come_back(a.message);
		memset(&got, 0, sizeof got);
		if (n)
			allocfail_start(n);
		opened = drive(&back, n ? &got : &ref);
		reached = n ? allocfail_stop() : 1;
		if (!opened) { /* toolloop_open said out of memory: no event */
			assert_true(n > 0);
			assert_int_equal(got.ends, 0);
		} else if (!n) {
			if (!strstr(ref.log.data, "\"tool_call_id\":\"call_1\"")) /* restored */
				fail_msg("not restored: %s", ref.log.data);
		} else if (got.error_status) {
			if (got.error_status != 500)
				fail_msg("n=%d: %s", n, got.log.data);
		} else if (strcmp(ref.log.data, got.log.data) != 0) {
			fail_msg("n=%d\nexpected %.600s\n     got %.600s", n, ref.log.data, got.log.data);
		}
		if (n && (!opened || !strstr(got.log.data ?: "", "ask "))) {
			/* the upstream was never asked: the history taken (if any) is back in the store */
			struct seen again = { .log = BUF_INIT };

			assert_int_equal(drive(&back, &again), 1);
			if (strcmp(ref.log.data, again.log.data) != 0)
				fail_msg("n=%d: the history was not put back: %.600s", n, again.log.data);
			json_decref(again.message);
			buf_free(&again.log);
		}
		json_decref(a.message);
		json_decref(got.message);
		buf_free(&a.log);
		buf_free(&got.log);
		free(body);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	/* the mixed batch itself (its history made and kept) failing: its answer whole, or 500; the client
	 * that got the answer comes back and gets the hidden round restored, or (the history could not be
	 * kept: logged) none */
	memset(&a, 0, sizeof a);
	assert_int_equal(drive(&MIXED, &a), 1);
	unminted(&a.log);
	for (n = 1; n < ALLOCFAIL_MAX; n++) {
		memset(&got, 0, sizeof got);
		allocfail_start(n);
		opened = drive(&MIXED, &got);
		reached = allocfail_stop();
		unminted(&got.log);
		if (opened && got.error_status != 500 && strcmp(a.log.data, got.log.data) != 0)
			fail_msg("n=%d\nexpected %.600s\n     got %.600s", n, a.log.data, got.log.data);
		if (got.message) {
			struct seen b = { .log = BUF_INIT };

			back.body = come_back(got.message);
			assert_int_equal(drive(&back, &b), 1);
			assert_int_equal(b.error_status, 0);
			/* the hidden round whole, or none (the client's minted id then goes upstream as it is) */
			if (strcmp(ref.log.data, b.log.data) != 0 && strstr(b.log.data, "\"call_1\""))
				fail_msg("n=%d: a history half kept: %.600s", n, b.log.data);
			free((char *)back.body);
			json_decref(b.message);
			buf_free(&b.log);
		}
		json_decref(got.message);
		buf_free(&got.log);
		if (!reached)
			break;
	}
	assert_true(n < ALLOCFAIL_MAX);
	json_decref(a.message);
	buf_free(&a.log);
	json_decref(ref.message);
	buf_free(&ref.log);
	statestore_close(LT.store);
	LT.store = NULL;
	mcptools_free(&LT.tools);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toolcalls),
		cmocka_unit_test(test_toolresult),
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_upstream_errors),
		cmocka_unit_test(test_jsonrpc),
		cmocka_unit_test(test_toolschema),
		cmocka_unit_test(test_mcptools_openai),
		cmocka_unit_test(test_mcptools_refresh),
		cmocka_unit_test(test_bclient),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_sharedcache),
		cmocka_unit_test(test_statestore_json),
		cmocka_unit_test(test_toolloop_history),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_toolloop),
	};

	/* warnings are still made (their allocations count), to /dev/null: thousands of runs log the same lines */
	log_init("test_allocfail", LOGL_WARN, "/dev/null");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
