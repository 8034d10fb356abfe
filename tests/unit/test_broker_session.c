/* test_broker_session.c: the broker's sessions over a fake transport and a fake clock: handshake, tools/list, version, restarts with backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "broker_fake.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"

#define ONE_SERVER "{\"mcpServers\":{\"a\":{\"command\":\"fake-a\"}}}"
#define TOOLS_AB \
	"[{\"name\":\"alpha\",\"inputSchema\":{\"type\":\"object\"}},{\"name\":\"beta\",\"inputSchema\":{\"type\":\"object\"}}]"

static void test_handshake_and_tools_list(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *init, *list, *m;
	(void)state;

	assert_int_equal(s->state, SESSION_STOPPED);
	broker_start(r->b);
	assert_int_equal(f->opens, 1);
	assert_int_equal(s->state, SESSION_STARTING);
	/* initialize first, with our latest version and who we are; nothing else before its answer */
	init = fake_take(f, NULL);
	assert_non_null(init);
	assert_string_equal(json_string_value(json_object_get(init, "method")), "initialize");
	assert_string_equal(json_string_value(json_object_get(json_object_get(init, "params"), "protocolVersion")),
			    jr_mcp_versions[0]);
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_object_get(init, "params"), "clientInfo"),
						    "name")),
			    "mcpgw");
	assert_null(fake_take(f, NULL));
	fake_answer(f, init,
		    "{\"protocolVersion\":\"" JR_MCP_LATEST
		    "\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"srv\",\"version\":\"2\"}}");
	/* then notifications/initialized, then tools/list */
	m = fake_take(f, NULL);
	assert_string_equal(json_string_value(json_object_get(m, "method")), "notifications/initialized");
	assert_null(json_object_get(m, "id"));
	json_decref(m);
	list = fake_take(f, NULL);
	assert_string_equal(json_string_value(json_object_get(list, "method")), "tools/list");
	assert_int_equal(s->state, SESSION_STARTING);
	/* a first page with a cursor: the next page is asked for */
	fake_answer(f, list, "{\"tools\":[{\"name\":\"alpha\"}],\"nextCursor\":\"p2\"}");
	json_decref(list);
	list = fake_take(f, "tools/list");
	assert_non_null(list);
	assert_string_equal(json_string_value(json_object_get(json_object_get(list, "params"), "cursor")), "p2");
	assert_int_equal(s->state, SESSION_STARTING);
	fake_answer(f, list, "{\"tools\":[{\"name\":\"beta\"},{\"name\":\"alpha\"},{\"noname\":1}]}");
	/* ready, with both tools (the repeated one and the nameless one dropped) */
	assert_int_equal(s->state, SESSION_READY);
	assert_int_equal(s->tools.n, 2);
	assert_string_equal(s->proto, JR_MCP_LATEST);
	assert_string_equal(json_string_value(json_object_get(s->server_info, "name")), "srv");
	assert_int_equal(s->fail_streak, 0);
	json_decref(init);
	json_decref(list);
	rig_free(r);
}

/* ready_with_list: start session 0 of r and answer initialize; the first tools/list request (new reference) */
static json_t *ready_with_list(struct rig *r)
{
	struct fake_transport *f = rig_fake(r, 0);
	json_t *init, *list;

	broker_start(r->b);
	init = fake_take(f, "initialize");
	fake_answer(f, init, "{\"protocolVersion\":\"" JR_MCP_LATEST "\",\"capabilities\":{\"tools\":{}}}");
	json_decref(init);
	json_decref(fake_take(f, "notifications/initialized"));
	list = fake_take(f, "tools/list");
	assert_non_null(list);
	return list;
}

/* MCPGW_SERVER_MAX_TOOLS: the first ones are kept, and once cut no further page is asked for */
static void test_tools_cut_at_the_count(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *list;
	(void)state;

	r->set.server_max_tools = 3;
	list = ready_with_list(r);
	fake_answer(f, list, "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"nextCursor\":\"p2\"}");
	json_decref(list);
	list = fake_take(f, "tools/list");
	assert_non_null(list);
	fake_answer(f, list, "{\"tools\":[{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"}],\"nextCursor\":\"p3\"}");
	assert_null(fake_take(f, "tools/list"));
	assert_int_equal(s->state, SESSION_READY);
	assert_int_equal(s->tools.n, 3);
	assert_string_equal(s->tools.v[2].name, "c");
	json_decref(list);
	rig_free(r);
}

/* MCPGW_SERVER_MAX_TOOLS_BYTES: the tools that fit, in order; the registry's cache is cut the same way */
static void test_tools_cut_at_the_bytes(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	char big[3000], page[8000];
	json_t *list, *cached;
	(void)state;

	r->set.server_tools_bytes = 4096;
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	/* each tool is about 3 KB: one fits, the second does not, a small third after it is dropped too */
	snprintf(page, sizeof page,
		 "{\"tools\":[{\"name\":\"a\",\"description\":\"%s\"},{\"name\":\"b\",\"description\":\"%s\"},"
		 "{\"name\":\"c\"}]}",
		 big, big);
	list = ready_with_list(r);
	fake_answer(f, list, page);
	assert_int_equal(s->state, SESSION_READY);
	assert_int_equal(s->tools.n, 1);
	assert_string_equal(s->tools.v[0].name, "a");
	json_decref(list);
	cached = json_loads(strchr(page, '['), JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(cached);
	session_set_tools(s, cached);
	assert_int_equal(s->tools.n, 1);
	rig_free(r);
}

static void test_unsupported_version_fails_the_start(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *init;
	(void)state;

	broker_start(r->b);
	init = fake_take(f, "initialize");
	fake_answer(f, init, "{\"protocolVersion\":\"1999-01-01\",\"capabilities\":{}}");
	assert_int_equal(s->state, SESSION_BACKOFF);
	assert_non_null(strstr(s->last_error, "unsupported protocol version '1999-01-01'"));
	assert_int_equal(f->closes, 1);
	assert_int_equal(s->fail_streak, 1);
	json_decref(init);
	rig_free(r);
}

static void test_no_tools_capability_is_ready_without_listing(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *init, *note;
	(void)state;

	broker_start(r->b);
	init = fake_take(f, "initialize");
	fake_answer(f, init, "{\"protocolVersion\":\"" JR_MCP_LATEST "\",\"capabilities\":{}}");
	note = fake_take(f, "notifications/initialized");
	assert_non_null(note);
	assert_null(fake_take(f, "tools/list"));
	assert_int_equal(s->state, SESSION_READY);
	assert_int_equal(s->tools.n, 0);
	json_decref(init);
	json_decref(note);
	rig_free(r);
}

/* a server's stderr line (a DSN with its password) reaches the detail and the log, never
 * last_error, which clients see; URLs are redacted in both */
static void test_stderr_stays_in_the_detail(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	(void)state;

	broker_start(r->b);
	fake_handshake(f, TOOLS_AB);
	f->diagnostic = "FATAL: cannot connect to postgresql://app:hunter2@db:5432/app";
	fake_die(f, "exited with status 1");
	assert_string_equal(s->last_error, "exited with status 1; see the broker log");
	assert_string_equal(s->last_detail,
			    "exited with status 1 (stderr: FATAL: cannot connect to postgresql://db:5432/app)");
	f->diagnostic = NULL;
	rig_advance(r, BACKOFF_RESTART_MS);
	fake_handshake(f, TOOLS_AB);
	assert_string_equal(s->last_error, "");
	assert_string_equal(s->last_detail, "");
	/* ready again: why it went down is kept apart, as clients may see it (no stderr line) */
	assert_string_equal(s->last_failure, "exited with status 1; see the broker log");
	fake_die(f, "POST http://h.example/mcp?api_key=sekrit: Couldn't connect to server");
	assert_string_equal(s->last_error, "POST http://h.example/mcp?api_key=***: Couldn't connect to server");
	assert_string_equal(s->last_detail, s->last_error);
	rig_free(r);
}

static void test_died_restarts_with_backoff(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *init;
	(void)state;

	broker_start(r->b);
	fake_handshake(f, TOOLS_AB);
	assert_int_equal(s->state, SESSION_READY);
	/* it dies after it was ready: restarted after BACKOFF_RESTART_MS, tools kept */
	fake_die(f, "exited with status 1");
	assert_int_equal(s->state, SESSION_BACKOFF);
	assert_string_equal(s->last_error, "exited with status 1");
	assert_int_equal(s->restarts, 1);
	assert_int_equal(s->fail_streak, 0);
	assert_int_equal(f->closes, 1);
	assert_int_equal(s->tools.n, 2);
	rig_advance(r, BACKOFF_RESTART_MS - 1);
	assert_int_equal(s->state, SESSION_BACKOFF);
	assert_int_equal(f->opens, 1);
	rig_advance(r, 1);
	assert_int_equal(s->state, SESSION_STARTING);
	assert_int_equal(f->opens, 2);
	/* now its starts fail: 1 s, then 2 s, 4 s, 8 s, then the cap (10 s) */
	long waits[] = { 1000, 2000, 4000, 8000, 10000, 10000 };
	for (size_t i = 0; i < sizeof waits / sizeof *waits; i++) {
		init = fake_take(f, "initialize");
		assert_non_null(init);
		fake_say(f, "{\"jsonrpc\":\"2.0\",\"id\":0,\"error\":{\"code\":-1,\"message\":\"no\"}}"); /* unknown id: ignored */
		{
			char line[200];

			snprintf(line, sizeof line,
				 "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32603,\"message\":\"broken\"}}",
				 (long long)json_integer_value(json_object_get(init, "id")));
			fake_say(f, line);
		}
		json_decref(init);
		assert_int_equal(s->state, SESSION_BACKOFF);
		assert_string_equal(s->last_error, "initialize failed: broken");
		assert_int_equal(s->fail_streak, (int)i + 1);
		assert_int_equal(s->backoff_ms, waits[i]);
		assert_true(session_accepts_calls(s) < 0); /* failing: calls do not wait for it */
		rig_advance(r, waits[i] - 1);
		assert_int_equal(s->state, SESSION_BACKOFF);
		rig_advance(r, 1);
		assert_int_equal(s->state, SESSION_STARTING);
	}
	/* a good start resets the streak; the last failure stays, with its time */
	rig_advance(r, 250);
	fake_handshake(f, TOOLS_AB);
	assert_int_equal(s->state, SESSION_READY);
	assert_int_equal(s->fail_streak, 0);
	assert_string_equal(s->last_error, "");
	assert_string_equal(s->last_failure, "initialize failed: broken");
	assert_int_equal(r->now - s->last_failure_ms, waits[5] + 250); /* the last failed start, then its wait */
	rig_free(r);
}

static void test_init_timeout_via_fake_clock(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	(void)state;

	broker_start(r->b);
	rig_advance(r, 4999);
	assert_int_equal(s->state, SESSION_STARTING);
	rig_advance(r, 1);
	assert_int_equal(s->state, SESSION_BACKOFF);
	assert_string_equal(s->last_error, "did not finish initialize and tools/list within MCPGW_INIT_TIMEOUT");
	assert_int_equal(f->closes, 1);
	rig_free(r);
}

static void test_open_failure_backs_off(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	(void)state;

	f->open_result = -1;
	broker_start(r->b);
	assert_int_equal(s->state, SESSION_BACKOFF);
	assert_string_equal(s->last_error, "fake: cannot connect");
	assert_int_equal(s->backoff_ms, BACKOFF_START_MS);
	f->open_result = 1;
	rig_advance(r, BACKOFF_START_MS);
	assert_int_equal(s->state, SESSION_STARTING);
	rig_free(r);
}

static void test_list_changed_relists(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	json_t *list;
	(void)state;

	broker_start(r->b);
	fake_handshake(f, TOOLS_AB);
	fake_say(f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
	list = fake_take(f, "tools/list");
	assert_non_null(list);
	fake_answer(f, list, "{\"tools\":[{\"name\":\"gamma\"}]}");
	assert_int_equal(s->tools.n, 1);
	assert_int_equal(s->state, SESSION_READY);
	/* a ping from the server is answered */
	fake_say(f, "{\"jsonrpc\":\"2.0\",\"id\":\"p1\",\"method\":\"ping\"}");
	json_decref(list);
	list = fake_take(f, NULL);
	assert_non_null(list);
	assert_string_equal(json_string_value(json_object_get(list, "id")), "p1");
	assert_true(json_is_object(json_object_get(list, "result")));
	json_decref(list);
	rig_free(r);
}

static void test_shutdown_stops_sessions(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	struct session *s = rig_session(r, 0);
	struct fake_transport *f = rig_fake(r, 0);
	(void)state;

	broker_start(r->b);
	fake_handshake(f, TOOLS_AB);
	broker_shutdown(r->b);
	assert_int_equal(f->stops, 1);
	assert_int_equal(s->state, SESSION_STOPPED);
	assert_int_equal(broker_step(r->b, 0), 1); /* nothing left running */
	rig_advance(r, 60000);
	assert_int_equal(f->opens, 1); /* no restart after a shutdown */
	rig_free(r);
}

/* the policy alone: start small after a run, double while failing, cap */
static void test_backoff_policy(void **state)
{
	char out[32];
	(void)state;

	assert_int_equal(backoff_next(0, 1, 0, 10, 300000), BACKOFF_RESTART_MS); /* first crash after a run */
	assert_int_equal(backoff_next(100, 1, 0, 5000, 300000), 200);            /* ran briefly: doubles */
	assert_int_equal(backoff_next(6400, 1, 0, BACKOFF_HEALTHY_MS + 1, 300000), BACKOFF_RESTART_MS); /* ran long: over */
	assert_int_equal(backoff_next(0, 0, 0, 0, 300000), BACKOFF_START_MS); /* failed start */
	assert_int_equal(backoff_next(100, 0, 0, 0, 300000), BACKOFF_START_MS);
	assert_int_equal(backoff_next(1000, 0, 0, 0, 300000), 2000);
	assert_int_equal(backoff_next(200000, 0, 0, 0, 300000), 300000); /* capped */
	assert_int_equal(backoff_next(0, 0, 0, 0, 500), 500);            /* a max below the first wait */
	/* ready briefly but it answered a request: it worked (exited cleanly after serving), no doubling */
	assert_int_equal(backoff_next(800, 1, 1, 300, 300000), BACKOFF_RESTART_MS);
	assert_int_equal(backoff_next(1000, 0, 1, 0, 300000), 2000); /* never ready: served means nothing */
	assert_string_equal(backoff_format(out, sizeof out, 100), "0.1 s");
	assert_string_equal(backoff_format(out, sizeof out, 4000), "4 s");
	assert_string_equal(backoff_format(out, sizeof out, 90000), "90 s");
	assert_string_equal(backoff_format(out, sizeof out, 300000), "5 min");
}

/* the real transports: one is made for every kind at once, libcurl only when an enabled server is remote */
static void test_real_transports_for_every_kind(void **state)
{
	struct settings set = { .max_clients = 2,
				.max_message_bytes = 1 << 20,
				.tool_timeout_ms = 1000,
				.init_timeout_ms = 1000,
				.restart_backoff_max_ms = 1000 };
	struct evloop *l = evloop_new(NULL, NULL);
	struct cfg cfg;
	struct broker *b;
	char err[1024];
	const char *names[] = { "stdio", "http", "sse", "auto" };
	(void)state;

	assert_int_equal(cfg_load_string("{\"mcpServers\":{"
					 "\"s\":{\"command\":\"true\"},"
					 "\"h\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:9/mcp\",\"disabled\":true},"
					 "\"e\":{\"type\":\"sse\",\"url\":\"http://127.0.0.1:9/sse\",\"disabled\":true},"
					 "\"a\":{\"url\":\"http://127.0.0.1:9/mcp\",\"disabled\":true}}}",
					 "test", &cfg, err, sizeof err),
			 0);
	{
		struct broker_opts o = { .set = &set, .cfg = &cfg, .loop = l }; /* no sigwatch: stdio cannot start */

		b = broker_new(&o, err, sizeof err);
	}
	assert_non_null(b);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(session_transport_name(broker_session(b, i)), names[i]);
	broker_start(b);
	assert_int_equal(broker_session(b, 0)->state, SESSION_BACKOFF);
	assert_string_equal(broker_session(b, 0)->last_error, "stdio servers need the broker's child supervision");
	assert_int_equal(broker_session(b, 1)->state, SESSION_DISABLED);
	broker_shutdown(b);
	assert_int_equal(broker_step(b, 0), 1);
	broker_free(b);
	cfg_free(&cfg);
	evloop_free(l);
}

/* a tool whose inputSchema cannot be offered to models: one warning naming
 * server and tool, once per listing; the tool stays listed and callable */
static void test_unofferable_schema_logged_once(void **state)
{
	struct rig *r = rig_new(ONE_SERVER, 1000, 0);
	char path[] = "/tmp/test_broker_session.XXXXXX", text[4096];
	int fd = mkstemp(path), n = 0;
	FILE *fp;
	size_t len;
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_init("test_broker_session", LOGL_WARN, path), 0);
	broker_start(r->b);
	fake_handshake(rig_fake(r, 0), "[{\"name\":\"good\",\"inputSchema\":{\"properties\":{}}},"
				       "{\"name\":\"scalar\",\"inputSchema\":{\"type\":\"string\"}}]");
	assert_int_equal(rig_session(r, 0)->state, SESSION_READY);
	assert_int_equal(rig_session(r, 0)->tools.n, 2);
	log_close();
	log_init("test_broker_session", LOGL_ERROR, NULL);
	fp = fopen(path, "r");
	assert_non_null(fp);
	len = fread(text, 1, sizeof text - 1, fp);
	text[len] = '\0';
	fclose(fp);
	unlink(path);
	for (const char *p = text; (p = strstr(p, "is not offered to models")) != NULL; p++)
		n++;
	assert_int_equal(n, 1);
	assert_non_null(strstr(text, "server a: tool scalar is not offered to models"));
	assert_non_null(strstr(text, "its type is \"string\""));
	assert_null(strstr(text, "tool good"));
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_tools_list),
		cmocka_unit_test(test_tools_cut_at_the_count),
		cmocka_unit_test(test_tools_cut_at_the_bytes),
		cmocka_unit_test(test_unsupported_version_fails_the_start),
		cmocka_unit_test(test_no_tools_capability_is_ready_without_listing),
		cmocka_unit_test(test_died_restarts_with_backoff),
		cmocka_unit_test(test_stderr_stays_in_the_detail),
		cmocka_unit_test(test_init_timeout_via_fake_clock),
		cmocka_unit_test(test_open_failure_backs_off),
		cmocka_unit_test(test_list_changed_relists),
		cmocka_unit_test(test_shutdown_stops_sessions),
		cmocka_unit_test(test_real_transports_for_every_kind),
		cmocka_unit_test(test_backoff_policy),
		cmocka_unit_test(test_unofferable_schema_logged_once),
	};

	log_init("test_broker_session", LOGL_ERROR, NULL); /* the expected failures stay quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
