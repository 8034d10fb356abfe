/* test_broker_client.c: the broker's clients over a socketpair, its servers fake: requests answered, framing errors, a client that leaves mid-call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "broker_fake.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"

#define ONE_SERVER "{\"mcpServers\":{\"a\":{\"command\":\"fake-a\"},\"off\":{\"command\":\"x\",\"disabled\":true}}}"

static struct rig *ready(void)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);

	broker_start(r->b);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\",\"description\":\"A\"}]");
	client_connect(r);
	return r;
}

static json_int_t ival(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void test_requests_answered(void **state)
{
	struct rig *r = ready();
	json_t *ans, *res, *tool;
	json_int_t gen;
	char line[300];
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"" JR_MCP_LATEST
		       "\"}}");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_int_equal(ival(ans, "id"), 1);
	res = json_object_get(ans, "result");
	assert_string_equal(json_string_value(json_object_get(res, "protocolVersion")), JR_MCP_LATEST);
	assert_string_equal(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "name")),
			    "mcpgw-broker");
	json_decref(ans);

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
	ans = client_recv(r);
	assert_int_equal(ival(ans, "id"), 2);
	assert_true(json_is_object(json_object_get(ans, "result")));
	json_decref(ans);

	/* tools/list: the exposed tools, mcpgw's _meta, the servers configured */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}");
	ans = client_recv(r);
	res = json_object_get(ans, "result");
	assert_int_equal(json_array_size(json_object_get(res, "tools")), 1);
	tool = json_array_get(json_object_get(res, "tools"), 0);
	assert_string_equal(json_string_value(json_object_get(tool, "name")), "alpha");
	assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "_meta"), "mcpgw/server")), "a");
	assert_int_equal(ival(json_object_get(res, "_meta"), "mcpgw/ready"), 1);
	assert_int_equal(json_array_size(json_object_get(json_object_get(res, "_meta"), "mcpgw/servers")), 2);
	gen = ival(json_object_get(res, "_meta"), "mcpgw/generation");
	assert_true(gen > 100);
	json_decref(ans);
	/* the same generation again: "unchanged" */
	snprintf(line, sizeof line,
		 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\",\"params\":{\"_meta\":{\"mcpgw/ifGeneration\":%lld}}}",
		 (long long)gen);
	client_send(r, line);
	ans = client_recv(r);
	res = json_object_get(ans, "result");
	assert_true(json_is_null(json_object_get(res, "tools")));
	assert_true(json_is_true(json_object_get(json_object_get(res, "_meta"), "mcpgw/unchanged")));
	json_decref(ans);

	/* status: the broker and each server */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"mcpgw/status\"}");
	ans = client_recv(r);
	res = json_object_get(ans, "result");
	assert_int_equal(ival(json_object_get(res, "broker"), "clients"), 1);
	assert_int_equal(ival(json_object_get(res, "broker"), "tools"), 1);
	assert_string_equal(json_string_value(
				    json_object_get(json_array_get(json_object_get(res, "servers"), 0), "state")),
			    "ready");
	/* never went down: no last failure */
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(res, "servers"), 0), "last_failure")));
	assert_string_equal(json_string_value(
				    json_object_get(json_array_get(json_object_get(res, "servers"), 1), "state")),
			    "disabled");
	json_decref(ans);

	/* unknown methods, bad JSON, not a request */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/list\"}");
	ans = client_recv(r);
	assert_int_equal(ival(json_object_get(ans, "error"), "code"), JR_METHOD_NOT_FOUND);
	json_decref(ans);
	client_send(r, "{not json");
	ans = client_recv(r);
	assert_int_equal(ival(json_object_get(ans, "error"), "code"), JR_PARSE_ERROR);
	json_decref(ans);
	client_send(r, "[1]");
	ans = client_recv(r);
	assert_int_equal(ival(json_object_get(ans, "error"), "code"), JR_INVALID_REQUEST);
	json_decref(ans);
	/* a notification gets no answer; the next request still does */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
	ans = client_recv(r);
	assert_int_equal(ival(ans, "id"), 7);
	json_decref(ans);
	rig_free(r);
}

static void test_client_leaves_mid_call(void **state)
{
	struct rig *r = ready();
	struct fake_transport *f = rig_fake(r, 0);
	json_t *req, *ans;
	(void)state;

	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"gone\",\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(f, "tools/call");
	assert_non_null(req);
	close(r->client);
	r->client = -1;
	rig_pass(r);
	/* a new client (it may get the same slot) */
	client_connect(r);
	/* the server answers the call of the client that left: nobody gets it */
	fake_answer(f, req, "{\"content\":[{\"type\":\"text\",\"text\":\"late\"}]}");
	json_decref(req);
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"new\",\"method\":\"mcpgw/status\"}");
	ans = client_recv(r);
	assert_non_null(ans);
	assert_string_equal(json_string_value(json_object_get(ans, "id")), "new");
	assert_int_equal(ival(json_object_get(json_object_get(ans, "result"), "broker"), "clients"), 1);
	json_decref(ans);
	/* and its own call works */
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":\"mine\",\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	req = fake_take(f, "tools/call");
	assert_non_null(req);
	fake_answer(f, req, "{\"content\":[]}");
	ans = client_recv(r);
	assert_string_equal(json_string_value(json_object_get(ans, "id")), "mine");
	json_decref(req);
	json_decref(ans);
	rig_free(r);
}

static void test_client_leaves_with_a_call_waiting(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	json_t *ans;
	(void)state;

	/* the server is still starting: the call waits for it, the client leaves, the call times out unseen */
	broker_start(r->b);
	client_connect(r);
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	ans = client_recv(r); /* unknown yet: no tools listed */
	assert_int_equal(ival(json_object_get(ans, "error"), "code"), JR_INVALID_PARAMS);
	json_decref(ans);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\"}]");
	fake_die(rig_fake(r, 0), "exited with status 0");
	client_send(r, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"alpha\"}}");
	rig_pass(r);
	close(r->client);
	r->client = -1;
	rig_advance(r, 1000); /* timed out with nobody to tell */
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"alpha\"}]");
	assert_null(fake_take(rig_fake(r, 0), "tools/call"));
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_answered),
		cmocka_unit_test(test_client_leaves_mid_call),
		cmocka_unit_test(test_client_leaves_with_a_call_waiting),
	};

	log_init("test_broker_client", LOGL_ERROR, "/dev/null"); /* the expected failures stay quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
