/* test_broker_call.c: the broker's tools/call handling over fake transports and a fake clock: routing, answers, timeouts, retries only where safe, the time waited, bad results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "allocfail.h"
#include "broker_fake.h"
#include "core/log.h"
#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "client.h"
#include "session.h"

/* a large message: one no part of the broker may hold as a tree (several times its text) */
#define LARGE_MSG ((size_t)1 << 20)

#define TWO_SERVERS "{\"mcpServers\":{\"a\":{\"command\":\"fake-a\"},\"b\":{\"command\":\"fake-b\"}}}"

/* tools of server a: alpha with the given annotations (a JSON object text) */
#define ALPHA_SAFE "[{\"name\":\"alpha\",\"annotations\":{\"idempotentHint\":true}}]"
#define ALPHA_READONLY "[{\"name\":\"alpha\",\"annotations\":{\"readOnlyHint\":true}}]"
#define ALPHA_UNSAFE "[{\"name\":\"alpha\",\"annotations\":{\"idempotentHint\":false,\"destructiveHint\":false}}]"

/* ready_with: a broker with servers a (tools_a) and b (tool beta), both ready, and a client */
static struct rig *ready_with(long timeout_ms, int retries, const char *tools_a)
{
	struct rig *r = rig_new(TWO_SERVERS, timeout_ms, retries);

	broker_start(r->b);
	fake_handshake(rig_fake(r, 0), tools_a);
	fake_handshake(rig_fake(r, 1), "[{\"name\":\"beta\"}]");
	client_connect(r);
	return r;
}

/* ready: the same with alpha not annotated (a repeat may not be safe) */
static struct rig *ready(long timeout_ms, int retries)
{
	return ready_with(timeout_ms, retries, "[{\"name\":\"alpha\"}]");
}

static json_int_t data_int(const json_t *ans, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(json_object_get(ans, "error"), "data"), k));
}

static const json_t *data_get(const json_t *ans, const char *k)
{
	return json_object_get(json_object_get(json_object_get(ans, "error"), "data"), k);
}

static const char *err_msg(const json_t *ans)
{
	return json_string_value(json_object_get(json_object_get(ans, "error"), "message"));
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void test_call_routed_to_its_session(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *req, *ans;
	(void)state;

	client_send(r,
		    "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\",\"params\":{\"name\":\"beta\",\"arguments\":{\"x\":1},\"_meta\":{\"progressToken\":7}}}");
	rig_pass(r);
	assert_null(fake_take(rig_fake(r, 0), "tools/call")); /* not a's */
	req = fake_take(rig_fake(r, 1), "tools/call");
	assert_non_null(req);
	assert_string_equal(str(json_object_get(req, "params"), "name"), "beta");
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(json_object_get(req, "params"), "arguments"), "x")),
			 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(req, "params"), "_meta"),
							    "progressToken")),
			 7);
	fake_answer(rig_fake(r, 1), req, "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_string_equal(str(ans, "id"), "c1"); /* the client's id, not the server's */
	assert_string_equal(str(json_object_get(json_object_get(ans, "result"), "_meta"), "mcpgw/server"), "b");
	assert_string_equal(str(json_array_get(json_object_get(json_object_get(ans, "result"), "content"), 0), "text"),
			    "hi");
	json_decref(req);
	json_decref(ans);
	rig_free(r);
}

/* the caller's id (_meta "mcpgw/caller", for the audit table) is the gateway's: never forwarded to the server */
static void test_caller_not_forwarded(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *req, *meta;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\",\"params\":{\"name\":\"beta\","
		       "\"_meta\":{\"progressToken\":7,\"mcpgw/caller\":\"key_9\"}}}");
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"c2\",\"method\":\"tools/call\",\"params\":{\"name\":\"beta\","
		       "\"_meta\":{\"mcpgw/caller\":\"key_9\"}}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 1), "tools/call");
	assert_non_null(req);
	meta = json_object_get(json_object_get(req, "params"), "_meta");
	assert_int_equal(json_integer_value(json_object_get(meta, "progressToken")), 7);
	assert_null(json_object_get(meta, "mcpgw/caller"));
	json_decref(req);
	req = fake_take(rig_fake(r, 1), "tools/call");
	assert_non_null(req);
	assert_null(json_object_get(json_object_get(req, "params"), "_meta")); /* nothing else was in it */
	json_decref(req);
	rig_free(r);
}

static void test_server_error_passed_on(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *req, *ans;
	char line[300];
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32602,\"message\":\"bad x\"}}",
		 (long long)json_integer_value(json_object_get(req, "id")));
	fake_say(rig_fake(r, 0), line);
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), -32602);
	assert_string_equal(str(json_object_get(ans, "error"), "message"), "bad x");
	json_decref(req);
	json_decref(ans);
	rig_free(r);
}

static void test_timeout_via_fake_clock(void **state)
{
	struct rig *r = ready_with(1000, 1, ALPHA_SAFE);
	json_t *req, *cancel, *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	rig_advance(r, 999);
	assert_null(fake_take(rig_fake(r, 0), "notifications/cancelled"));
	/* the first attempt times out: cancelled, and sent again (one retry) */
	rig_advance(r, 1);
	cancel = fake_take(rig_fake(r, 0), "notifications/cancelled");
	assert_non_null(cancel);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cancel, "params"), "requestId")),
			 json_integer_value(json_object_get(req, "id")));
	json_decref(cancel);
	json_decref(req);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	/* the second too: the client gets -32001 with the reason, the timeout and the time waited */
	rig_advance(r, 1000);
	ans = client_recv(r);
	assert_non_null(ans);
	assert_string_equal(err_msg(ans),
			    "MCP server 'a' did not answer tools/call 'alpha': 2 attempts of 1000 ms each timed out "
			    "(waited 2000 ms)");
	assert_int_equal(data_int(ans, "waited_ms"), 2000);
	assert_int_equal(data_int(ans, "attempts"), 2);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_REQUEST_TIMEOUT);
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"), "timeout");
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(json_object_get(ans, "error"), "data"), "timeout_ms")),
			 1000);
	json_decref(ans);
	/* a late answer to the given-up request goes nowhere */
	fake_answer(rig_fake(r, 0), req, "{\"content\":[]}");
	json_decref(req);
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 4);
	json_decref(ans);
	rig_free(r);
}

static void test_result_not_an_object(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *req, *ans;
	const char *bad[] = { "\"just text\"", "[1,2]", "42", "null" };
	(void)state;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		client_send(r,
			    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
		rig_pass(r);
		req = fake_take(rig_fake(r, 0), "tools/call");
		assert_non_null(req);
		fake_answer(rig_fake(r, 0), req, bad[i]);
		ans = client_recv(r);
		assert_non_null(ans);
		assert_int_equal(json_integer_value(json_object_get(ans, "id")), 5);
		assert_null(json_object_get(ans, "result"));
		assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
				 JR_INTERNAL_ERROR);
		assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"),
				    "invalid_result");
		assert_non_null(strstr(str(json_object_get(ans, "error"), "message"), "not an object"));
		json_decref(req);
		json_decref(ans);
	}
	rig_free(r);
}

/* each allocation made while a server's answer is handled fails in turn:
 * the client gets one answer every time (the result, or an error), and
 * nothing is used after it was freed or leaked (valgrind, tests/check.sh).
 * jansson frees a value json_object_set_new fails to take: the answer's
 * _meta was written after that */
static void test_answer_with_failing_allocations(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *req, *ans;
	int n, reached;
	(void)state;

	for (n = 1; n < 400; n++) {
		client_send(r,
			    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
		rig_pass(r);
		req = fake_take(rig_fake(r, 0), "tools/call");
		assert_non_null(req);
		allocfail_start(n); /* jansson's n-th allocation (only) fails: tests/unit/allocfail.h */
		fake_answer(rig_fake(r, 0), req,
			    n % 2 ? "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"_meta\":{\"k\":1}}"
				  : "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"_meta\":\"not an object\"}");
		reached = allocfail_stop();
		if (!(ans = client_recv(r))) { /* the server's answer was lost: the call times out */
			rig_advance(r, 1000);
			ans = client_recv(r);
		}
		if (!ans) { /* or the answer could not be written: the client was closed, not left waiting */
			char c;

			json_decref(req);
			assert_int_equal(recv(r->client, &c, 1, MSG_DONTWAIT), 0);
			close(r->client);
			client_connect(r);
			continue;
		}
		assert_int_equal(json_integer_value(json_object_get(ans, "id")), 5);
		if (json_object_get(ans, "result"))
			assert_string_equal(str(json_object_get(json_object_get(ans, "result"), "_meta"), "mcpgw/server"),
					    "a");
		else
			assert_non_null(err_msg(ans));
		json_decref(req);
		json_decref(ans);
		if (!reached) /* no allocation failed: every one was tried */
			break;
	}
	assert_true(n < 400);
	rig_free(r);
}

static void test_unknown_tool_and_bad_params(void **state)
{
	struct rig *r = ready(1000, 0);
	json_t *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"nosuch\"}}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_INVALID_PARAMS);
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"), "unknown_tool");
	json_decref(ans);
	client_send(r,
		    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\",\"arguments\":[1]}}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_INVALID_PARAMS);
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"), "invalid_params");
	json_decref(ans);
	rig_free(r);
}

static void test_call_retried_after_its_server_restarts(void **state)
{
	struct rig *r = ready_with(5000, 1, ALPHA_READONLY);
	json_t *req, *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	json_decref(req);
	fake_die(rig_fake(r, 0), "killed by signal 9");
	assert_int_equal(rig_session(r, 0)->state, SESSION_BACKOFF);
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(rig_fake(r, 0), ALPHA_READONLY);
	req = fake_take(rig_fake(r, 0), "tools/call"); /* sent again once ready */
	assert_non_null(req);
	fake_answer(rig_fake(r, 0), req, "{\"content\":[]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 8);
	assert_true(json_is_object(json_object_get(ans, "result")));
	json_decref(req);
	json_decref(ans);
	rig_free(r);
}

static void test_call_fails_fast_on_a_failing_server(void **state)
{
	struct rig *r = ready(5000, 2);
	json_t *ans, *init;
	(void)state;

	fake_die(rig_fake(r, 0), "exited with status 1");
	rig_advance(r, BACKOFF_RESTART_MS);
	init = fake_take(rig_fake(r, 0), "initialize");
	fake_die(rig_fake(r, 0), "exited with status 1"); /* its start failed: failing */
	json_decref(init);
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
			 JR_CONNECTION_CLOSED);
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"), "unavailable");
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "server"), "a");
	json_decref(ans);
	rig_free(r);
}

/* issue 13 case 7: the tool commits, then answers after the timeout; it
 * does not say a repeat is safe: it runs once, and the error says the time
 * the caller waited, not a timeout it did not see */
static void test_timeout_not_retried_without_hint(void **state)
{
	const char *tools[] = { "[{\"name\":\"alpha\"}]", ALPHA_UNSAFE };
	(void)state;

	for (size_t i = 0; i < 2; i++) {
		struct rig *r = ready_with(1000, 2, tools[i]);
		json_t *req, *ans, *cancel;

		client_send(r,
			    "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
		rig_pass(r);
		req = fake_take(rig_fake(r, 0), "tools/call");
		assert_non_null(req);
		rig_advance(r, 1000);
		cancel = fake_take(rig_fake(r, 0), "notifications/cancelled");
		assert_non_null(cancel); /* the server is told to stop */
		json_decref(cancel);
		ans = client_recv(r);
		assert_non_null(ans);
		assert_int_equal(json_integer_value(json_object_get(ans, "id")), 11);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
				 JR_REQUEST_TIMEOUT);
		assert_string_equal(err_msg(ans),
				    "MCP server 'a' did not answer tools/call 'alpha' within its timeout of 1000 ms (waited "
				    "1000 ms); not retried: it may have taken effect, and the tool is not annotated "
				    "readOnlyHint or idempotentHint");
		assert_int_equal(data_int(ans, "waited_ms"), 1000);
		assert_int_equal(data_int(ans, "timeout_ms"), 1000);
		assert_int_equal(data_int(ans, "attempts"), 1);
		assert_true(json_is_true(data_get(ans, "may_have_run")));
		json_decref(ans);
		/* its late answer, and nothing sent again: it ran once */
		rig_advance(r, 1500);
		fake_answer(rig_fake(r, 0), req, "{\"content\":[]}");
		rig_advance(r, 5000);
		assert_null(fake_take(rig_fake(r, 0), "tools/call"));
		json_decref(req);
		rig_free(r);
	}
}

/* the same timeouts, for a read-only tool: retried, and the error says the whole wait */
static void test_timeout_retried_when_read_only(void **state)
{
	struct rig *r = ready_with(1000, 2, ALPHA_READONLY);
	json_t *req, *ans;
	int sends = 0;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	for (int i = 0; i < 3; i++) {
		req = fake_take(rig_fake(r, 0), "tools/call");
		assert_non_null(req);
		sends++;
		json_decref(req);
		rig_advance(r, 1000);
	}
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	assert_int_equal(sends, 3);
	ans = client_recv(r);
	assert_non_null(ans);
	assert_string_equal(err_msg(ans), "MCP server 'a' did not answer tools/call 'alpha': 3 attempts of 1000 ms each "
					  "timed out (waited 3000 ms)");
	assert_int_equal(data_int(ans, "waited_ms"), 3000);
	assert_int_equal(data_int(ans, "attempts"), 3);
	json_decref(ans);
	rig_free(r);
}

/* the server dies with the call in flight: a tool that may not be repeated fails at once, saying so */
static void test_died_during_call_not_retried_without_hint(void **state)
{
	struct rig *r = ready(5000, 2);
	json_t *req, *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":13,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	json_decref(req);
	rig_advance(r, 700);
	fake_die(rig_fake(r, 0), "killed by signal 9");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
			 JR_CONNECTION_CLOSED);
	assert_string_equal(err_msg(ans), "MCP server 'a' failed during tools/call 'alpha' after 700 ms (killed by "
					  "signal 9); not retried: it may have taken effect, and the tool is not "
					  "annotated readOnlyHint or idempotentHint");
	assert_int_equal(data_int(ans, "waited_ms"), 700);
	assert_true(json_is_true(data_get(ans, "may_have_run")));
	json_decref(ans);
	/* the restarted server never sees it again */
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\"}]");
	rig_advance(r, 10);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	rig_free(r);
}

/* a call that never left the broker (its server restarting) waits and is sent once, whatever the tool */
static void test_unsent_call_waits_and_is_sent_once(void **state)
{
	struct rig *r = ready(5000, 0);
	json_t *req, *ans;
	(void)state;

	fake_die(rig_fake(r, 0), "killed by signal 9"); /* it had been ready: worth waiting for */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":14,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\"}]");
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	fake_answer(rig_fake(r, 0), req, "{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 14);
	assert_true(json_is_object(json_object_get(ans, "result")));
	json_decref(ans);
	json_decref(req);

	/* and when the server does not come back in time: the error says how long it waited, and that it never ran */
	fake_die(rig_fake(r, 0), "killed by signal 9");
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	rig_advance(r, BACKOFF_RESTART_MS); /* it starts, and hangs in initialize */
	rig_advance(r, 5000 - BACKOFF_RESTART_MS);
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 15);
	assert_string_equal(err_msg(ans), "MCP server 'a' did not become ready for tools/call 'alpha' (waited 5000 ms; "
					  "starting)");
	assert_true(json_is_false(data_get(ans, "may_have_run")));
	json_decref(ans);
	rig_free(r);
}

/* the connection carrying the call was refused before any byte of it went
 * out: it never ran, so it waits for the server and is sent again, whatever the tool */
static void test_undelivered_call_sent_again(void **state)
{
	struct rig *r = ready(5000, 1);
	json_t *req, *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":16,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	fake_undelivered(rig_fake(r, 0), req);
	fake_die(rig_fake(r, 0), "POST http://127.0.0.1:9/mcp: Couldn't connect to server");
	json_decref(req);
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\"}]");
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	fake_answer(rig_fake(r, 0), req, "{\"content\":[]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 16);
	assert_true(json_is_object(json_object_get(ans, "result")));
	json_decref(ans);
	json_decref(req);

	/* once more, and the restart fails: it never ran, and the error says how long it waited */
	rig_advance(r, 60000); /* it ran a while: restarted at once */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":17,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req);
	fake_undelivered(rig_fake(r, 0), req);
	fake_die(rig_fake(r, 0), "refused");
	json_decref(req);
	rig_advance(r, BACKOFF_RESTART_MS);
	req = fake_take(rig_fake(r, 0), "initialize");
	assert_non_null(req);
	json_decref(req);
	fake_die(rig_fake(r, 0), "refused");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 17);
	if (!strstr(err_msg(ans), ": refused (waited "))
		fail_msg("%s", err_msg(ans));
	assert_int_equal(data_int(ans, "waited_ms"), BACKOFF_RESTART_MS);
	assert_true(json_is_false(data_get(ans, "may_have_run")));
	json_decref(ans);
	rig_free(r);
}

/* client_recv_big: the client's next answer however long (client_recv holds 64 KiB) */
static json_t *client_recv_big(struct rig *r)
{
	static char chunk[65536];
	buf_t b = BUF_INIT;
	json_t *m = NULL;

	for (int pass = 0; pass < 5000 && !m; pass++) {
		ssize_t n;
		char *nl;

		rig_pass(r);
		while ((n = recv(r->client, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
			assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
		if (b.len && (nl = memchr(b.data, '\n', b.len)))
			m = json_loadb(b.data, (size_t)(nl - b.data), 0, NULL);
	}
	buf_free(&b);
	return m;
}

/* big_answer: server fake answers req with result = PRE + n x's + POST (one line), from a
 * block the session may take over when handed (else a copy is passed on) */
static void big_answer_as(struct fake_transport *f, const json_t *req, const char *pre, size_t n, const char *post,
			  int handed)
{
	buf_t b = BUF_INIT;

	assert_int_equal(buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":%s",
				    (long long)json_integer_value(json_object_get(req, "id")), pre),
			 0);
	assert_int_equal(buf_reserve(&b, n), 0);
	memset(b.data + b.len, 'x', n);
	b.len += n;
	assert_int_equal(buf_printf(&b, "%s}", post), 0);
	if (handed) {
		fake_say_block(f, buf_steal(&b));
		return;
	}
	fake_say(f, b.data);
	buf_free(&b);
}

static void big_answer(struct fake_transport *f, const json_t *req, const char *pre, size_t n, const char *post)
{
	big_answer_as(f, req, pre, n, post, 0);
}

/* a large result is passed on as text, never parsed whole: the client's
 * id, the result's members, its _meta with mcpgw/server set (the server's forged one
 * replaced), isError kept; one that is no object is refused as a small one is */
static void test_large_result_passed_on_as_text(void **state)
{
	struct rig *r = ready(1000, 0);
	const size_t n = LARGE_MSG + 4096;
	json_t *req, *ans, *res;
	(void)state;

	/* copied (a transport that cannot hand its buffer over), then taken over (stdio's) */
	for (int handed = 0; handed <= 1; handed++) {
		client_send(r,
			    "{\"jsonrpc\":\"2.0\",\"id\":\"c1\",\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
		rig_pass(r);
		assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
		big_answer_as(rig_fake(r, 0), req,
			      "{\"t\":1, \"_meta\" : {\"k\":1,\"mcpgw/server\":\"forged\"}, \"content\":[{\"type\":\"text\",\"text\":\"",
			      n, "\"}],\"isError\":true}", handed);
		assert_int_equal(rig_fake(r, 0)->taken, handed);
		ans = client_recv_big(r);
		assert_non_null(ans);
		assert_string_equal(str(ans, "id"), "c1");
		res = json_object_get(ans, "result");
		assert_int_equal(strlen(str(json_array_get(json_object_get(res, "content"), 0), "text")), n);
		assert_true(json_is_true(json_object_get(res, "isError")));
		assert_int_equal(json_integer_value(json_object_get(res, "t")), 1);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "_meta"), "k")), 1);
		assert_string_equal(str(json_object_get(res, "_meta"), "mcpgw/server"), "a");
		assert_int_equal(json_object_size(res), 4);
		json_decref(req);
		json_decref(ans);
	}
	/* a result that is no object, as large */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
	big_answer(rig_fake(r, 0), req, "[\"", n, "\"]");
	ans = client_recv_big(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 6);
	assert_string_equal(str(json_object_get(json_object_get(ans, "error"), "data"), "reason"), "invalid_result");
	json_decref(req);
	json_decref(ans);
	/* invalid JSON, as large: ignored (the call times out as with a small one) */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
	big_answer(rig_fake(r, 0), req, "{\"content\":\"", n, "\"\"}");
	rig_pass(r);
	rig_advance(r, 1001);
	ans = client_recv_big(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_REQUEST_TIMEOUT);
	json_decref(req);
	json_decref(ans);
	rig_free(r);
}

/* big_call: the client sends tools/call id (JSON text) of tool with params text pre, then
 * "arguments":{"text":"<n x's>"}, then post, then "}" (params closed; post "}" closes the
 * message: one line, over LARGE_MSG when n is) */
static void big_call(struct rig *r, const char *id, const char *pre, size_t n, const char *post)
{
	buf_t b = BUF_INIT;

	assert_int_equal(buf_printf(&b,
				    "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/call\",\"params\":{%s"
				    "\"arguments\" : {\"text\":\"",
				    id, pre),
			 0);
	assert_int_equal(buf_reserve(&b, n), 0);
	memset(b.data + b.len, 'x', n);
	b.len += n;
	assert_int_equal(buf_printf(&b, "\"}%s}", post), 0);
	client_send_big(r, b.data, b.len);
	buf_free(&b);
}

/* args_text_len: the length of the "text" argument of tools/call request req */
static size_t args_text_len(const json_t *req)
{
	const char *t =
		json_string_value(json_object_get(json_object_get(json_object_get(req, "params"), "arguments"), "text"));

	return t ? strlen(t) : 0;
}

/* a client's large tools/call is not parsed whole: its arguments reach the
 * server as the client's text (in parts, by reference, where the transport takes parts;
 * parsed where it takes whole messages), with the name and _meta (the caller's id left
 * out) as a small call has them; the answer comes back with the client's id */
static void test_large_arguments_passed_on(void **state)
{
	struct rig *r = ready(1000, 0);
	const size_t n = LARGE_MSG + 4096;
	json_t *req, *ans;
	const json_t *p;
	(void)state;

	for (int whole = 0; whole <= 1; whole++) {
		if (whole)
			fake_whole_messages(rig_fake(r, 0));
		big_call(r, whole ? "\"c2\"" : "\"c1\"",
			 "\"name\":\"alpha\",\"_meta\":{\"mcpgw/caller\":\"key_1\",\"trace\":\"t1\"},", n, "}");
		rig_pass(r);
		assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
		assert_int_equal(rig_fake(r, 0)->parts_sent, 1);
		p = json_object_get(req, "params");
		assert_string_equal(str(p, "name"), "alpha");
		assert_int_equal(args_text_len(req), n);
		assert_int_equal(json_object_size(json_object_get(p, "arguments")), 1);
		assert_string_equal(str(json_object_get(p, "_meta"), "trace"), "t1");
		assert_null(json_object_get(json_object_get(p, "_meta"), "mcpgw/caller"));
		assert_int_equal(json_object_size(p), 3);
		fake_answer(rig_fake(r, 0), req, "{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}");
		ans = client_recv(r);
		assert_non_null(ans);
		assert_string_equal(str(ans, "id"), whole ? "c2" : "c1");
		assert_string_equal(str(json_object_get(json_object_get(ans, "result"), "_meta"), "mcpgw/server"), "a");
		json_decref(req);
		json_decref(ans);
	}
	/* arguments null in a large message: the call goes with {}, as a small one does */
	{
		buf_t b = BUF_INIT;

		assert_int_equal(buf_puts(&b, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\","
					      "\"params\":{\"name\":\"alpha\",\"pad\":\""),
				 0);
		assert_int_equal(buf_reserve(&b, n), 0);
		memset(b.data + b.len, 'p', n);
		b.len += n;
		assert_int_equal(buf_puts(&b, "\",\"arguments\" : null}}"), 0);
		client_send_big(r, b.data, b.len);
		buf_free(&b);
	}
	rig_pass(r);
	assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
	p = json_object_get(req, "params");
	assert_true(json_is_object(json_object_get(p, "arguments")));
	assert_int_equal(json_object_size(json_object_get(p, "arguments")), 0);
	assert_null(json_object_get(p, "pad"));
	fake_answer(rig_fake(r, 0), req, "{\"content\":[]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 3);
	json_decref(ans);
	json_decref(req);
	rig_free(r);
}

/* arguments are kept (by reference) while a second attempt may need them: a tool safe
 * to repeat gets the same arguments again after its server restarts, when they are at
 * most 1 MiB (CALL_RETRY_ARGS_MAX); larger ones are not kept, so such a call fails as
 * an unsafe one does (may_have_run), saying why; a tool not safe to repeat is never
 * sent twice */
static void test_large_arguments_retried_after_restart(void **state)
{
	static const struct {
		int safe;
		size_t n;
		int resent;
	} cases[] = {
		{ 1, 4096, 1 },
		{ 1, LARGE_MSG + 100, 0 },
		{ 0, LARGE_MSG + 100, 0 },
	};
	(void)state;

	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		struct rig *r = ready_with(5000, 1, cases[k].safe ? ALPHA_READONLY : ALPHA_UNSAFE);
		json_t *req, *again, *ans;

		big_call(r, "8", "\"name\":\"alpha\",", cases[k].n, "}");
		rig_pass(r);
		assert_non_null(req = fake_take(rig_fake(r, 0), "tools/call"));
		assert_int_equal(args_text_len(req), cases[k].n);
		fake_die(rig_fake(r, 0), "killed by signal 9");
		if (cases[k].resent) {
			rig_advance(r, BACKOFF_RESTART_MS);
			fake_handshake(rig_fake(r, 0), ALPHA_READONLY);
			assert_non_null(again = fake_take(rig_fake(r, 0), "tools/call")); /* sent again once ready */
			assert_int_equal(rig_fake(r, 0)->parts_sent, 2);
			assert_true(json_equal(json_object_get(req, "params"), json_object_get(again, "params")));
			fake_answer(rig_fake(r, 0), again, "{\"content\":[]}");
			json_decref(again);
		}
		ans = client_recv(r);
		assert_non_null(ans);
		assert_int_equal(json_integer_value(json_object_get(ans, "id")), 8);
		if (cases[k].resent) {
			assert_true(json_is_object(json_object_get(ans, "result")));
		} else {
			const char *msg = json_string_value(json_object_get(json_object_get(ans, "error"), "message"));

			assert_true(json_is_true(data_get(ans, "may_have_run")));
			assert_int_equal(data_int(ans, "attempts"), 1);
			assert_non_null(msg);
			assert_non_null(strstr(msg, cases[k].safe ? "over 1 MiB" : "not annotated readOnlyHint"));
		}
		json_decref(req);
		json_decref(ans);
		rig_free(r);
	}
}

/* a large message that is not valid JSON (or repeats a member name, which jansson
 * refuses) gets -32700 with a null id, as a small one does; one whose arguments are no
 * object -32602; the client is still served after them */
static void test_large_arguments_invalid(void **state)
{
	struct rig *r = ready(1000, 0);
	const size_t n = LARGE_MSG + 10;
	json_t *ans;
	static const char *const bad[][3] = {
		{ "\"name\":\"alpha\",", "", "-32700" },                          /* a '}' missing */
		{ "\"name\":\"alpha\",", "}\"", "-32700" },                       /* text after it */
		{ "\"name\":\"alpha\",\"arguments\":{},", "}", "-32700" },        /* arguments twice */
		{ "\"name\":\"alpha\",\"name\":\"beta\",", "}", "-32700" },       /* name twice */
		{ "\"name\":\"alpha\",\"x\":{\"a\":1,\"a\":2},", "}", "-32700" }, /* twice, deeper */
		{ "\"name\":\"alpha\",\"x\":\"\\ud800\",", "}", "-32700" },       /* a lone surrogate */
		{ "\"name\":\"alpha\",", "},\"params\":5", "-32700" },            /* params twice */
	};
	(void)state;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		big_call(r, "5", bad[i][0], n, bad[i][1]);
		ans = client_recv(r);
		assert_non_null(ans);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
				 atoi(bad[i][2]));
		assert_true(json_is_null(json_object_get(ans, "id")));
		json_decref(ans);
	}
	/* arguments that are a string: invalid params, with the request's id */
	{
		buf_t b = BUF_INIT;

		assert_int_equal(buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
						"\"params\":{\"name\":\"alpha\",\"arguments\":\""),
				 0);
		assert_int_equal(buf_reserve(&b, n), 0);
		memset(b.data + b.len, 'y', n);
		b.len += n;
		assert_int_equal(buf_puts(&b, "\"}}"), 0);
		client_send_big(r, b.data, b.len);
		buf_free(&b);
	}
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_INVALID_PARAMS);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 6);
	json_decref(ans);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 7);
	json_decref(ans);
	rig_free(r);
}

/* a large tools/list page is read a tool at a time: every valid tool
 * kept, bad entries skipped, the next page asked for by its cursor */
static void test_large_tools_page(void **state)
{
	struct rig *r = rig_new(TWO_SERVERS, 1000, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *m, *list;
	buf_t b = BUF_INIT;
	char *desc = malloc(4001);
	(void)state;

	assert_non_null(desc);
	memset(desc, 'd', 4000);
	desc[4000] = '\0';
	broker_start(r->b);
	fake_handshake(rig_fake(r, 1), "[{\"name\":\"beta\"}]");
	assert_non_null(m = fake_take(f, "initialize"));
	fake_answer(f, m,
		    "{\"protocolVersion\":\"" JR_MCP_LATEST
		    "\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\",\"version\":\"1\"}}");
	json_decref(m);
	json_decref(fake_take(f, "notifications/initialized"));
	assert_non_null(list = fake_take(f, "tools/list"));
	assert_int_equal(buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"nextCursor\":\"p2\",\"tools\":[5,",
				    (long long)json_integer_value(json_object_get(list, "id"))),
			 0);
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_printf(&b, "{\"name\":\"t%d\",\"description\":\"%s\"},", i, desc), 0);
	assert_int_equal(buf_puts(&b, "{\"name\":\"t0\"}]}}"), 0); /* a repeat: the first is kept */
	assert_true(b.len > LARGE_MSG);
	fake_say(f, b.data);
	json_decref(list);
	assert_non_null(list = fake_take(f, "tools/list")); /* the next page */
	assert_string_equal(str(json_object_get(list, "params"), "cursor"), "p2");
	fake_answer(f, list, "{\"tools\":[{\"name\":\"last\"}]}");
	assert_int_equal(rig_session(r, 0)->tools.n, 301);
	assert_string_equal(rig_session(r, 0)->tools.v[0].name, "t0");
	assert_string_equal(rig_session(r, 0)->tools.v[300].name, "last");
	json_decref(list);
	buf_free(&b);
	free(desc);
	rig_free(r);
}

/* --- the bound on each server's calls: places, a FIFO queue, busy refusals --- */

/* bounded: a broker with one server a (tools, at most running calls at once, queue waiting),
 * ready, and a client */
static struct rig *bounded(long timeout_ms, int retries, const char *tools, int running, int queue)
{
	char config[300];
	struct rig *r;

	snprintf(config, sizeof config,
		 "{\"mcpServers\":{\"a\":{\"command\":\"fake-a\",\"maxConcurrentCalls\":%d,\"maxQueuedCalls\":%d}}}",
		 running, queue);
	r = rig_new(config, timeout_ms, retries);
	broker_start(r->b);
	fake_handshake(rig_fake(r, 0), tools);
	client_connect(r);
	return r;
}

/* call_n: the client calls alpha with arguments {"n": n} as caller (NULL: anonymous); id n */
static void call_n(struct rig *r, int n, const char *caller)
{
	char line[300];

	snprintf(line, sizeof line,
		 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\",\"arguments\":"
		 "{\"n\":%d}%s%s%s}}",
		 n, n, caller ? ",\"_meta\":{\"mcpgw/caller\":\"" : "", caller ? caller : "", caller ? "\"}" : "");
	client_send(r, line);
}

/* arg_n: the "n" of a tools/call the server got */
static int arg_n(const json_t *req)
{
	return (int)json_integer_value(json_object_get(json_object_get(json_object_get(req, "params"), "arguments"), "n"));
}

/* load_of: server a's "calls_in_flight" * 100 + "calls_queued" in mcpgw/status (no answer may be pending) */
static int load_of(struct rig *r)
{
	json_t *ans, *srv;
	int v;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"st\",\"method\":\"mcpgw/status\"}");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_string_equal(str(ans, "id"), "st");
	srv = json_array_get(json_object_get(json_object_get(ans, "result"), "servers"), 0);
	assert_int_equal(json_integer_value(json_object_get(srv, "max_concurrent_calls")) > 0, 1);
	v = (int)(json_integer_value(json_object_get(srv, "calls_in_flight")) * 100 +
		  json_integer_value(json_object_get(srv, "calls_queued")));
	json_decref(ans);
	return v;
}

/* 2 places, 2 waiting: the 5th call is refused at once, the others run in order, never more than 2 at once */
static void test_bound_queue_and_busy(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 2, 2);
	json_t *req[5] = { 0 }, *ans;
	(void)state;

	for (int i = 1; i <= 5; i++)
		call_n(r, i, NULL);
	ans = client_recv(r); /* the 5th: at once */
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")),
			 JR_CONNECTION_CLOSED);
	assert_string_equal(json_string_value(data_get(ans, "reason")), "busy");
	assert_string_equal(json_string_value(data_get(ans, "limit")), "maxQueuedCalls");
	assert_int_equal(data_int(ans, "calls_in_flight"), 2);
	assert_int_equal(data_int(ans, "calls_queued"), 2);
	assert_true(json_is_false(data_get(ans, "may_have_run")));
	assert_string_equal(err_msg(ans),
			    "MCP server 'a' is busy: 2 tools/call in flight (its maxConcurrentCalls) and 2 "
			    "waiting (its maxQueuedCalls); tools/call 'alpha' was not run, try again later");
	json_decref(ans);
	assert_int_equal(load_of(r), 202);
	req[0] = fake_take(rig_fake(r, 0), "tools/call");
	req[1] = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(req[0]) + arg_n(req[1]), 3); /* 1 and 2 */
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	/* one answer frees one place: the oldest waiting call (3) takes it, and only it */
	fake_answer(rig_fake(r, 0), req[0], "{\"content\":[]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), arg_n(req[0]));
	json_decref(ans);
	rig_pass(r);
	req[2] = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(req[2]);
	assert_int_equal(arg_n(req[2]), 3);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	assert_int_equal(load_of(r), 201);
	fake_answer(rig_fake(r, 0), req[1], "{\"content\":[]}");
	json_decref(client_recv(r));
	rig_pass(r);
	req[3] = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(req[3]), 4);
	for (int i = 2; i < 4; i++) {
		fake_answer(rig_fake(r, 0), req[i], "{\"content\":[]}");
		ans = client_recv(r);
		assert_int_equal(json_integer_value(json_object_get(ans, "id")), i + 1);
		assert_true(json_is_object(json_object_get(ans, "result")));
		json_decref(ans);
	}
	rig_pass(r);
	assert_int_equal(load_of(r), 0);
	for (int i = 0; i < 4; i++)
		json_decref(req[i]);
	rig_free(r);
}

/* a waiting call's timeout counts from its arrival: one that gets its turn late has only the rest of its time */
static void test_queued_timeout_from_arrival(void **state)
{
	struct rig *r = bounded(1000, 0, "[{\"name\":\"alpha\"}]", 1, 2);
	json_t *first, *second, *ans;
	(void)state;

	call_n(r, 1, NULL);
	rig_pass(r);
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	rig_advance(r, 400);
	call_n(r, 2, NULL); /* waits from 400 ms */
	rig_pass(r);
	rig_advance(r, 500);
	fake_answer(rig_fake(r, 0), first, "{\"content\":[]}"); /* at 900 ms: 2 takes the place */
	json_decref(first);
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 1);
	json_decref(ans);
	rig_pass(r);
	second = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(second);
	assert_int_equal(arg_n(second), 2);
	rig_advance(r, 499);
	assert_null(fake_take(rig_fake(r, 0), "notifications/cancelled"));
	rig_advance(r, 1); /* 1400 ms: 2's 1000 ms since it came are over, 500 of them on the server */
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_REQUEST_TIMEOUT);
	assert_int_equal(data_int(ans, "waited_ms"), 1000);
	assert_true(json_is_true(data_get(ans, "may_have_run")));
	json_decref(ans);
	json_decref(second);
	second = fake_take(rig_fake(r, 0), "notifications/cancelled");
	assert_non_null(second);
	json_decref(second);
	assert_int_equal(load_of(r), 0);
	rig_free(r);
}

/* a waiting call whose turn never comes (the one ahead is sent again after a timeout, keeping
 * its place) fails unsent when its own timeout since its arrival runs out, saying why */
static void test_queued_never_started(void **state)
{
	struct rig *r = bounded(1000, 2, ALPHA_SAFE, 1, 1);
	json_t *first, *ans;
	(void)state;

	call_n(r, 1, NULL);
	rig_pass(r);
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	json_decref(first);
	rig_advance(r, 500);
	call_n(r, 2, NULL); /* waits from 500 ms */
	rig_pass(r);
	rig_advance(r, 500); /* 1 times out and is sent again: it keeps its place */
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	assert_int_equal(arg_n(first), 1);
	json_decref(first);
	rig_advance(r, 499);
	assert_int_equal(load_of(r), 101);
	rig_advance(r, 1); /* 1500 ms */
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 2);
	assert_string_equal(err_msg(ans), "MCP server 'a' was busy: tools/call 'alpha' waited 1000 ms for one of its 1 "
					  "places (maxConcurrentCalls) and did not start within its timeout of 1000 ms; it "
					  "was not run");
	assert_true(json_is_false(data_get(ans, "may_have_run")));
	assert_int_equal(data_int(ans, "attempts"), 0);
	assert_int_equal(data_int(ans, "timeout_ms"), 1000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_REQUEST_TIMEOUT);
	json_decref(ans);
	assert_int_equal(load_of(r), 100);
	assert_null(fake_take(rig_fake(r, 0), "tools/call")); /* 2 never reached the server */
	rig_free(r);
}

/* a place that comes free goes to the call waiting for it before a new call is placed, even
 * within one pass of the loop (a burst read at once is not refused while the server is idle) */
static void test_freed_place_before_new_call(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 1);
	json_t *req, *ans;
	(void)state;

	call_n(r, 1, NULL);
	call_n(r, 2, NULL);
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(req), 1);
	fake_answer(rig_fake(r, 0), req, "{\"content\":[]}"); /* 1's place is free; 2 has not moved yet */
	json_decref(req);
	call_n(r, 3, NULL);
	rig_pass(r); /* 3 is read: 2 takes the place first, 3 waits (not refused: the queue had room) */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 1);
	json_decref(ans);
	assert_int_equal(load_of(r), 101);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(req), 2);
	json_decref(req);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	rig_free(r);
}

/* a waiting call whose client left is dropped without reaching the server */
static void test_queued_call_of_a_gone_client_dropped(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 2);
	json_t *first;
	(void)state;

	call_n(r, 1, NULL);
	call_n(r, 2, NULL);
	rig_pass(r);
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	close(r->client);
	rig_pass(r);
	rig_pass(r);
	client_connect(r);
	assert_int_equal(load_of(r), 100); /* 1 runs on (it may have taken effect); 2 is gone */
	fake_answer(rig_fake(r, 0), first, "{\"content\":[]}");
	rig_pass(r);
	rig_pass(r);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	assert_int_equal(load_of(r), 0);
	json_decref(first);
	rig_free(r);
}

/* a client that cancels its waiting call (notifications/cancelled): dropped, never sent, not answered;
 * the notification's name called as a request is an unknown method */
static void test_queued_call_cancelled(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 2);
	json_t *first, *ans;
	(void)state;

	call_n(r, 1, NULL);
	call_n(r, 2, NULL);
	call_n(r, 3, NULL);
	rig_pass(r);
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	client_send(r, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":2,"
		       "\"reason\":\"the HTTP client left\"}}");
	client_send(r, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"2\"}}");
	rig_pass(r);
	rig_pass(r);
	assert_int_equal(load_of(r), 101); /* 2 is gone, 3 waits (the string id "2" is another request) */
	client_send(r,
		    "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":3}}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ans, "error"), "code")), JR_METHOD_NOT_FOUND);
	json_decref(ans);
	fake_answer(rig_fake(r, 0), first, "{\"content\":[]}");
	json_decref(first);
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 1);
	json_decref(ans);
	rig_pass(r);
	first = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(first);
	assert_int_equal(arg_n(first), 3); /* 2 never reached the server */
	fake_answer(rig_fake(r, 0), first, "{\"content\":[]}");
	json_decref(first);
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 3);
	json_decref(ans);
	rig_pass(r);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	rig_free(r);
}

/* a call sent again after a timeout keeps its place: the waiting one does not pass it, and
 * the server never gets more than the bound at once */
static void test_retry_keeps_its_place(void **state)
{
	struct rig *r = bounded(1000, 1, ALPHA_SAFE, 1, 2);
	json_t *req, *again, *ans;
	(void)state;

	call_n(r, 1, NULL);
	call_n(r, 2, NULL);
	rig_pass(r);
	req = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(req), 1);
	rig_advance(r, 1000); /* 1 times out: cancelled, sent again; 2 still waits (and its time runs: 1000 ms) */
	again = fake_take(rig_fake(r, 0), "tools/call");
	assert_non_null(again);
	assert_int_equal(arg_n(again), 1);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	/* 2's timeout, counted from its arrival, ran out with 1's first attempt: it fails unsent */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 2);
	assert_true(json_is_false(data_get(ans, "may_have_run")));
	json_decref(ans);
	call_n(r, 3, NULL);
	rig_pass(r);
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	fake_answer(rig_fake(r, 0), again, "{\"content\":[]}");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 1);
	json_decref(ans);
	rig_pass(r);
	json_decref(again);
	again = fake_take(rig_fake(r, 0), "tools/call");
	assert_int_equal(arg_n(again), 3);
	json_decref(again);
	json_decref(req);
	rig_free(r);
}

/* one caller may not fill a server's queue alone when another waits */
static void test_caller_share_of_the_queue(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 2);
	json_t *ans;
	(void)state;

	call_n(r, 1, "key_a"); /* runs */
	call_n(r, 2, "key_a"); /* waits */
	call_n(r, 3, "key_a"); /* waits too: nobody else does */
	rig_pass(r);
	assert_int_equal(load_of(r), 102);
	call_n(r, 4, "key_b"); /* full: key_a holds more than half, its newest (3) makes room */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 3);
	assert_string_equal(json_string_value(data_get(ans, "reason")), "busy");
	assert_non_null(strstr(err_msg(ans), "gave its place in the queue to another caller's"));
	json_decref(ans);
	assert_int_equal(load_of(r), 102);
	call_n(r, 5, "key_a"); /* key_a holds its half while key_b waits */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 5);
	assert_string_equal(json_string_value(data_get(ans, "limit")), "caller_share");
	json_decref(ans);
	call_n(r, 6, "key_b"); /* full, and nobody holds more than half: refused */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 6);
	assert_string_equal(json_string_value(data_get(ans, "limit")), "caller_share");
	json_decref(ans);
	call_n(r, 7, NULL); /* an anonymous caller: the queue is full */
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 7);
	assert_string_equal(json_string_value(data_get(ans, "limit")), "maxQueuedCalls");
	json_decref(ans);
	rig_free(r);

	/* a queue of one place: its share is that place, so nobody holds more and nobody is pushed out */
	r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 1);
	call_n(r, 1, "key_a");
	call_n(r, 2, "key_a");
	call_n(r, 3, "key_b");
	ans = client_recv(r);
	assert_int_equal(json_integer_value(json_object_get(ans, "id")), 3);
	assert_string_equal(json_string_value(data_get(ans, "limit")), "maxQueuedCalls");
	json_decref(ans);
	assert_int_equal(load_of(r), 101);
	rig_free(r);
}

/* a server that fails to start fails its waiting calls at once; none waits past that */
static void test_queued_calls_fail_with_their_server(void **state)
{
	struct rig *r = bounded(5000, 0, "[{\"name\":\"alpha\"}]", 1, 4);
	json_t *ans;
	(void)state;

	fake_die(rig_fake(r, 0), "killed by signal 9"); /* it had been ready: calls wait for its restart */
	for (int i = 1; i <= 3; i++)
		call_n(r, i, NULL);
	rig_pass(r);
	assert_int_equal(load_of(r), 102);
	rig_fake(r, 0)->open_result = -1;
	rig_advance(r, BACKOFF_RESTART_MS); /* the restart fails */
	for (int i = 1; i <= 3; i++) {
		ans = client_recv(r);
		assert_non_null(ans);
		assert_string_equal(json_string_value(data_get(ans, "reason")), "unavailable");
		json_decref(ans);
	}
	assert_int_equal(load_of(r), 0);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_routed_to_its_session),
		cmocka_unit_test(test_caller_not_forwarded),
		cmocka_unit_test(test_server_error_passed_on),
		cmocka_unit_test(test_timeout_via_fake_clock),
		cmocka_unit_test(test_result_not_an_object),
		cmocka_unit_test(test_answer_with_failing_allocations),
		cmocka_unit_test(test_unknown_tool_and_bad_params),
		cmocka_unit_test(test_call_retried_after_its_server_restarts),
		cmocka_unit_test(test_call_fails_fast_on_a_failing_server),
		cmocka_unit_test(test_timeout_not_retried_without_hint),
		cmocka_unit_test(test_timeout_retried_when_read_only),
		cmocka_unit_test(test_died_during_call_not_retried_without_hint),
		cmocka_unit_test(test_unsent_call_waits_and_is_sent_once),
		cmocka_unit_test(test_undelivered_call_sent_again),
		cmocka_unit_test(test_large_result_passed_on_as_text),
		cmocka_unit_test(test_large_tools_page),
		cmocka_unit_test(test_large_arguments_passed_on),
		cmocka_unit_test(test_large_arguments_retried_after_restart),
		cmocka_unit_test(test_large_arguments_invalid),
		cmocka_unit_test(test_bound_queue_and_busy),
		cmocka_unit_test(test_queued_timeout_from_arrival),
		cmocka_unit_test(test_queued_never_started),
		cmocka_unit_test(test_queued_call_of_a_gone_client_dropped),
		cmocka_unit_test(test_queued_call_cancelled),
		cmocka_unit_test(test_freed_place_before_new_call),
		cmocka_unit_test(test_retry_keeps_its_place),
		cmocka_unit_test(test_caller_share_of_the_queue),
		cmocka_unit_test(test_queued_calls_fail_with_their_server),
	};

	log_init("test_broker_call", LOGL_ERROR, "/dev/null"); /* the expected failures stay quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
