/* test_toolloop.c: unit tests of lib/openai/toolloop.c: runs driven step by step with canned upstream bytes and tool results (no network), usage sums, restoring hidden rounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "openai/modelcaps.h"
#include "openai/toolloop.h"

/* ---- a recording sink ---- */

struct rec {
	buf_t text;     /* CONTENT text and refusal, joined */
	json_t *chunks; /* the chunks for the client, in order */
	json_t *log; /* one line per event: "content", "start ID SERVER TOOL", "end ID ERR", "wait", "error STATUS CODE", "done FINISH" */
	json_t *error;    /* the ERROR event's object */
	json_t *response; /* the DONE event's response */
	json_t *usage;    /* the DONE event's usage */
	int events_after_end;
	int ended;
	int stop_at; /* > 0: return non-zero at this event (1-based) */
	int n;
};

static int rec_event(void *ud, const struct toolloop_event *ev)
{
	struct rec *r = ud;
	char line[256];

	r->n++;
	if (r->ended)
		r->events_after_end++;
	switch (ev->kind) {
	case TOOLLOOP_CONTENT:
		if (ev->text)
			buf_append(&r->text, ev->text, ev->text_len);
		if (ev->refusal)
			buf_puts(&r->text, ev->refusal);
		if (ev->chunk)
			json_array_append(r->chunks, (json_t *)ev->chunk);
		snprintf(line, sizeof line, "content");
		break;
	case TOOLLOOP_TOOL_START:
		snprintf(line, sizeof line, "start %s %s %s %s", ev->id, ev->server, ev->tool, ev->arguments);
		break;
	case TOOLLOOP_TOOL_END:
		assert_true(ev->duration_ms >= 0);
		assert_non_null(ev->result);
		snprintf(line, sizeof line, "end %s %d", ev->id, ev->is_error);
		break;
	case TOOLLOOP_TOOL_WAIT: snprintf(line, sizeof line, "wait"); break;
	case TOOLLOOP_ERROR:
		r->ended = 1;
		r->error = json_deep_copy(ev->error);
		snprintf(line, sizeof line, "error %d %s", ev->status,
			 json_string_value(json_object_get(json_object_get(ev->error, "error"), "code")) ?: "-");
		break;
	case TOOLLOOP_DONE:
		r->ended = 1;
		r->response = ev->response ? json_deep_copy(ev->response) : NULL;
		r->usage = ev->usage ? json_deep_copy(ev->usage) : NULL;
		snprintf(line, sizeof line, "done %s", ev->finish_reason);
		break;
	}
	if (!(ev->kind == TOOLLOOP_CONTENT && json_array_size(r->log) &&
	      strcmp(json_string_value(json_array_get(r->log, json_array_size(r->log) - 1)), "content") == 0))
		json_array_append_new(r->log, json_string(line)); /* runs of content events as one line */
	return r->stop_at && r->n >= r->stop_at;
}

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	r->chunks = json_array();
	r->log = json_array();
}

static void rec_free(struct rec *r)
{
	buf_free(&r->text);
	json_decref(r->chunks);
	json_decref(r->log);
	json_decref(r->error);
	json_decref(r->response);
	json_decref(r->usage);
}

/* rec_log: the event lines joined by " | " (static buffer) */
static const char *rec_log(const struct rec *r)
{
	static char out[4096];
	size_t i, n = 0;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(r->log, i, v)
		n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? " | " : "", json_string_value(v));
	return out;
}

/* ---- a toolloop with settings and a canned catalog: one server "sqlite" with read_query ---- */

static struct settings S;
static struct toolloop T;

static int setup(void **state)
{
	json_t *tool = json_loads("{\"name\":\"read_query\",\"description\":\"Run a SELECT\",\"inputSchema\":"
				  "{\"type\":\"object\"},\"_meta\":{\"mcpgw/server\":\"sqlite\"}}",
				  0, NULL);

	(void)state;
	memset(&S, 0, sizeof S);
	snprintf(S.default_model, sizeof S.default_model, "gpt-test");
	S.max_tool_rounds = 4;
	S.max_tool_output_bytes = 4096;
	S.max_response_bytes = 1 << 20;
	S.inject_tools = 1;
	S.startup_wait_ms = 30000;
	S.tool_timeout_ms = 1000;
	S.broker_timeout_ms = 500;
	memset(&T, 0, sizeof T);
	T.set = &S; /* no upstream, no broker: the tests are the driver */
	T.tools.generation = 1;
	T.tools.tools = json_pack("[O]", tool);
	T.tools.by_name = json_pack("{s:O}", "read_query", tool);
	T.tools.servers = json_pack("[s]", "sqlite");
	json_decref(tool);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mcptools_free(&T.tools);
	return 0;
}

/* open_run: a run of body (JSON text) that reads the catalog (both looks
 * answered BC_OK) and then asks the upstream: *need is that request */
static struct tl_run *open_run(const char *body, struct rec *rec, struct toolloop_sink *sink, struct toolloop_need *need)
{
	json_t *b = json_loads(body, 0, NULL);
	struct tl_run *r;

	assert_non_null(b);
	sink->event = rec_event;
	sink->ud = rec;
	r = toolloop_open(&T, b, NULL, sink);
	json_decref(b);
	assert_non_null(r);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_CATALOG);
	assert_int_equal(need->wait_ms, 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_WAIT);
	assert_int_equal(toolloop_feed_catalog(r, BC_OK), 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_CATALOG);
	assert_int_equal(need->wait_ms, 30000); /* MCPGW_STARTUP_WAIT: servers still coming up are waited for */
	assert_int_equal(toolloop_feed_catalog(r, BC_OK), 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_UPSTREAM);
	assert_string_equal(need->path, "/chat/completions");
	return r;
}

/* assert_minted: id is one the gateway minted for a client's call: "call_" and 24 of [A-Za-z0-9] */
static void assert_minted(const char *id)
{
	assert_non_null(id);
	assert_int_equal(strlen(id), 5 + 24);
	assert_memory_equal(id, "call_", 5);
	assert_int_equal(strspn(id + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), 24);
}

/* answer: a whole non-streamed upstream answer (2xx) fed */
static int answer(struct tl_run *r, const char *json)
{
	struct upstream_result res;
	int rc;

	upstream_result_init(&res);
	res.status = 200;
	buf_puts(&res.body, json);
	rc = toolloop_feed_upstream_end(r, &res);
	upstream_result_free(&res);
	return rc;
}

/* sent: the request body the run asks upstream, parsed */
static json_t *sent(const struct toolloop_need *need)
{
	json_t *j = json_loadb(need->body, need->body_len, 0, NULL);

	assert_non_null(j);
	return j;
}

#define ANSWER(msg, finish) \
	"{\"id\":\"chatcmpl-up\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-test\"," \
	"\"choices\":[{\"index\":0,\"message\":" msg ",\"finish_reason\":\"" finish "\"}]," \
	"\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}"

static void test_step_plain_answer(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *body;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(need.stream, 0);
	body = sent(&need);
	/* the MCP tool is offered; our "mcp" key never goes upstream */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(json_object_get(body, "tools"), 0), "function"),
				    "name")),
			    "read_query");
	assert_null(json_object_get(body, "mcp"));
	json_decref(body);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_WAIT);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"Hello.\"}", "stop")), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "content | done stop");
	assert_string_equal(rec.text.data, "Hello.");
	assert_int_equal(json_array_size(rec.chunks), 0); /* not streamed: no chunks, the response instead */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(json_object_get(rec.response, "choices"), 0), "message"),
				    "content")),
			    "Hello.");
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "total_tokens")), 5);
	/* the messages the run added: the answer */
	assert_int_equal(json_array_size(toolloop_added(r)), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(toolloop_added(r), 0), "content")),
			    "Hello.");
	assert_int_equal(toolloop_stopped(r), 0);
	assert_int_equal(rec.events_after_end, 0);
	toolloop_close(r);
	rec_free(&rec);
}

static void test_step_tool_round_then_answer(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *body, *msgs,
		*result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"[{\\\"n\\\":1}]\"}]}", 0, NULL);
	const json_t *added;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
					  "{\"id\":\"call_upA\",\"type\":\"function\",\"function\":{\"name\":\"read_query\","
					  "\"arguments\":\"{\\\"query\\\":\\\"SELECT 1\\\"}\"}},"
					  "{\"id\":\"call_upB\",\"type\":\"function\",\"function\":{\"name\":\"read_query\","
					  "\"arguments\":\"{\\\"query\\\":\\\"SELECT 2\\\"}\"}}]}",
					  "tool_calls")),
			 0);
	/* the batch: both calls, the upstream's ids, the arguments parsed */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 2);
	assert_string_equal(need.calls[0].id, "call_upA");
	assert_string_equal(need.calls[0].server, "sqlite");
	assert_string_equal(need.calls[0].name, "read_query");
	assert_string_equal(json_string_value(json_object_get(need.calls[1].arguments, "query")), "SELECT 2");
	assert_true(need.timeout_ms > 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_WAIT);
	/* results in any order; an id the run does not wait for is refused */
	assert_int_equal(toolloop_feed_tool_result(r, "call_nobody", result, NULL), -1);
	assert_int_equal(toolloop_feed_tool_result(r, "call_upB", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_WAIT);
	assert_int_equal(toolloop_feed_tool_result(r, "call_upB", result, NULL), -1); /* not twice */
	assert_int_equal(toolloop_feed_tool_result(r, "call_upA", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	/* the second round carries the assistant message and the results under the upstream's ids, in call order */
	body = sent(&need);
	msgs = json_object_get(body, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(msgs, 1), "tool_calls"), 1), "id")),
			    "call_upB");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), "call_upA");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3), "tool_call_id")), "call_upB");
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(msgs, 2), "content")), "\"n\""));
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"Two.\"}", "stop")), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "start call_upA sqlite read_query {\"query\":\"SELECT 1\"} | "
					   "start call_upB sqlite read_query {\"query\":\"SELECT 2\"} | "
					   "end call_upB 0 | end call_upA 0 | content | done stop");
	/* usage summed over the two rounds */
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "total_tokens")), 10);
	added = toolloop_added(r);
	assert_int_equal(json_array_size(added), 4);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(added, 0), "tool_calls"), 0), "id")),
			    "call_upA");
	assert_string_equal(json_string_value(json_object_get(json_array_get(added, 1), "tool_call_id")), "call_upA");
	assert_string_equal(json_string_value(json_object_get(json_array_get(added, 2), "tool_call_id")), "call_upB");
	assert_string_equal(json_string_value(json_object_get(json_array_get(added, 3), "content")), "Two.");
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

/* a key's tool policy (toolloop.policy): a tool it does not allow is not
 * offered, and when the model calls it anyway the call ends at once, not
 * run, with an error result naming the tool */
static void test_step_policy_denies(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct toolpolicy p;
	struct tl_run *r;
	json_t *body, *msgs;
	(void)state;

	memset(&p, 0, sizeof p);
	snprintf(p.servers, sizeof p.servers, "other");
	T.policy = &p;
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	body = sent(&need);
	assert_null(json_object_get(body, "tools")); /* read_query (server sqlite) is not offered */
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_no\","
					  "\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":"
					  "\"{\\\"query\\\":\\\"SELECT 1\\\"}\"}}]}",
					  "tool_calls")),
			 0);
	/* nothing for the driver: the broker is never asked; the next round at once */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_string_equal(rec_log(&rec), "start call_no sqlite read_query {\"query\":\"SELECT 1\"} | end call_no 1");
	body = sent(&need);
	msgs = json_object_get(body, "messages");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), "call_no");
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(msgs, 2), "content")),
			       "does not allow the tool 'read_query'"));
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"No.\"}", "stop")), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	toolloop_close(r);
	rec_free(&rec);
	T.policy = NULL;
}

/* arguments that are no JSON object: the call ends at once, unasked, and
 * the model is told; past MCPGW_MAX_TOOL_ROUNDS the answer ends "length" */
static void test_step_bad_arguments_and_round_limit(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *body, *msgs;
	(void)state;

	S.max_tool_rounds = 1;
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	assert_int_equal(
		answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_bad\","
				 "\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"[1\"}}]}",
				 "tool_calls")),
		0);
	/* nothing for the driver to do: the next round is asked at once */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_string_equal(rec_log(&rec), "start call_bad sqlite read_query [1 | end call_bad 1");
	body = sent(&need);
	msgs = json_object_get(body, "messages");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), "call_bad");
	assert_non_null(
		strstr(json_string_value(json_object_get(json_array_get(msgs, 2), "content")), "not a JSON object"));
	json_decref(body);
	/* the model calls again: the limit is reached, its calls are dropped */
	assert_int_equal(
		answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"So far.\",\"tool_calls\":[{\"id\":\"call_2\","
				 "\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}}]}",
				 "tool_calls")),
		0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec),
			    "start call_bad sqlite read_query [1 | end call_bad 1 | content | done length");
	assert_null(
		json_object_get(json_object_get(json_array_get(json_object_get(rec.response, "choices"), 0), "message"),
				"tool_calls"));
	toolloop_close(r);
	rec_free(&rec);
}

/* a streamed answer: role, "Hé" | "llo, wörld" (UTF-8), finish, usage, [DONE]; CRLF line ends, a comment */
static const char STREAM[] =
	": keep-alive\r\n\r\n"
	"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-test\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n"
	"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"H\xc3\xa9\"}}]}\r\n\r\n"
	"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo, w\xc3\xb6rld\"}}]}\n\n"
	"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
	"data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3,\"total_tokens\":7}}\r\n\r\n"
	"data: [DONE]\r\n\r\n";

static void test_step_stream_split_anywhere(void **state)
{
	size_t total = sizeof STREAM - 1;
	(void)state;

	/* every piece size from 1 byte up, and every single cut point */
	for (size_t piece = 1; piece <= total + 1; piece += piece < 16 ? 1 : 37) {
		for (size_t cut = 0; cut < (piece == 1 ? total : 1); cut += piece == 1 ? 1 : total) {
			struct rec rec;
			struct toolloop_sink sink;
			struct toolloop_need need;
			struct upstream_result res;
			struct tl_run *r;
			const json_t *c;
			size_t i;

			rec_init(&rec);
			r = open_run("{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
				     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
				     &rec, &sink, &need);
			assert_int_equal(need.stream, 1);
			if (piece == 1 && cut) { /* two pieces, cut at byte cut */
				assert_int_equal(toolloop_feed_upstream(r, STREAM, cut), 0);
				assert_int_equal(toolloop_feed_upstream(r, STREAM + cut, total - cut), 0);
			} else {
				for (i = 0; i < total; i += piece)
					assert_int_equal(toolloop_feed_upstream(r, STREAM + i,
										total - i < piece ? total - i : piece),
							 0);
			}
			upstream_result_init(&res);
			assert_int_equal(toolloop_feed_upstream_end(r, &res), 0);
			assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
			assert_string_equal(rec.text.data, "H\xc3\xa9llo, w\xc3\xb6rld");
			assert_string_equal(rec_log(&rec), "content | done stop");
			/* the client's chunks: role, two deltas, the finish chunk, the usage chunk; our id throughout */
			assert_int_equal(json_array_size(rec.chunks), 5);
			json_array_foreach(rec.chunks, i, c) {
				assert_string_equal(json_string_value(json_object_get(c, "object")),
						    "chat.completion.chunk");
				assert_memory_equal(json_string_value(json_object_get(c, "id")), "chatcmpl-", 9);
			}
			assert_string_equal(
				json_string_value(json_object_get(
					json_object_get(json_array_get(json_object_get(json_array_get(rec.chunks, 0),
										       "choices"),
								       0),
							"delta"),
					"role")),
				"assistant");
			assert_string_equal(
				json_string_value(json_object_get(
					json_array_get(json_object_get(json_array_get(rec.chunks, 3), "choices"), 0),
					"finish_reason")),
				"stop");
			assert_int_equal(json_integer_value(
						 json_object_get(json_object_get(json_array_get(rec.chunks, 4), "usage"),
								 "total_tokens")),
					 7);
			assert_string_equal(json_string_value(
						    json_object_get(json_array_get(toolloop_added(r), 0), "content")),
					    "H\xc3\xa9llo, w\xc3\xb6rld");
			toolloop_close(r);
			rec_free(&rec);
		}
	}
}

/* a streamed mixed batch: the client's own tool and an MCP tool in one round */
static void test_step_mixed_batch(void **state)
{
	static const char stream[] =
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,"
		"\"id\":\"call_mcp1\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		"\"{\\\"query\\\":\\\"SELECT 3\\\"}\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
		"\"id\":\"call_client1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		"data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"3\"}]}", 0, NULL), *tc;
	const json_t *added;
	char *all;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":[{\"type\":"
		     "\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}",
		     &rec, &sink, &need);
	/* upstream: the client's own tool first, then the MCP tools spliced after it, each once */
	{
		json_t *body = sent(&need), *tools = json_object_get(body, "tools");

		assert_int_equal(json_array_size(tools), 2);
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name")),
			"get_weather");
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(json_array_get(tools, 1), "function"), "name")),
			"read_query");
		assert_true(json_is_true(json_object_get(body, "stream")));
		assert_int_equal(json_array_size(json_object_get(body, "messages")), 1);
		json_decref(body);
	}
	assert_int_equal(toolloop_feed_upstream(r, stream, sizeof stream - 1), 0);
	upstream_result_init(&res);
	assert_int_equal(toolloop_feed_upstream_end(r, &res), 0);
	/* only the MCP call is the driver's */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 1);
	assert_string_equal(need.calls[0].id, "call_mcp1");
	assert_int_equal(toolloop_feed_tool_result(r, "call_mcp1", result, NULL), 0);
	/* then the run ends: the client runs its own call */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "content | start call_mcp1 sqlite read_query {\"query\":\"SELECT 3\"} | "
					   "end call_mcp1 0 | content | done tool_calls");
	/* the client saw its own call, renumbered to index 0, and never the MCP one */
	all = json_dumps(rec.chunks, JSON_COMPACT);
	assert_null(strstr(all, "read_query"));
	assert_null(strstr(all, "call_mcp1"));
	free(all);
	tc = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(json_array_get(rec.chunks, 0),
											   "choices"),
									   0),
							    "delta"),
					    "tool_calls"),
			    0);
	assert_null(tc); /* the first chunk carried only the (hidden) MCP call: role only */
	tc = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(json_array_get(rec.chunks, 1),
											   "choices"),
									   0),
							    "delta"),
					    "tool_calls"),
			    0);
	assert_minted(json_string_value(json_object_get(tc, "id"))); /* the gateway's id, not the upstream's */
	assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
	/* added: the assistant message with both calls, the MCP result; no final message (the client answers) */
	added = toolloop_added(r);
	assert_int_equal(json_array_size(added), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(added, 0), "tool_calls")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(added, 1), "tool_call_id")), "call_mcp1");
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

static void test_step_upstream_errors(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	static const char mid[] =
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hal\"}}]}\n\n"
		"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"busy\"}}\n\n";
	(void)state;

	/* an HTTP error: the upstream's own error object, its status */
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	upstream_result_init(&res);
	res.err = UPSTREAM_EHTTP;
	res.status = 429;
	snprintf(res.content_type, sizeof res.content_type, "application/json");
	buf_puts(&res.body, "{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"param\":null,"
			    "\"code\":\"rate_limit_exceeded\"}}");
	assert_int_equal(toolloop_feed_upstream_end(r, &res), -1);
	upstream_result_free(&res);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "error 429 rate_limit_exceeded");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec.error, "error"), "message")),
			    "slow down");
	toolloop_close(r);
	rec_free(&rec);

	/* an error event inside a stream: the run stops at once, 502 with that object */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, mid, sizeof mid - 1), -1);
	upstream_result_init(&res);
	assert_int_equal(toolloop_feed_upstream_end(r, &res), -1); /* nothing more happens */
	assert_string_equal(rec_log(&rec), "content | error 502 busy");
	assert_string_equal(rec.text.data, "Hal");
	assert_int_equal(rec.events_after_end, 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	toolloop_close(r);
	rec_free(&rec);

	/* a stream that ends without [DONE] */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, mid, 60), 0);
	upstream_result_init(&res);
	assert_int_equal(toolloop_feed_upstream_end(r, &res), -1);
	assert_string_equal(rec_log(&rec), "content | error 502 upstream_truncated");
	toolloop_close(r);
	rec_free(&rec);

	/* not JSON where a completion was expected */
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, "<html>"), -1);
	assert_string_equal(rec_log(&rec), "error 502 upstream_bad_response");
	toolloop_close(r);
	rec_free(&rec);
}

/* a bad request ends the run at open; a sink that stops ends it at once */
static void test_step_bad_request_and_stop(void **state)
{
	struct rec rec;
	struct toolloop_sink sink = { rec_event, &rec };
	struct toolloop_need need;
	struct tl_run *r;
	json_t *b = json_loads("{\"messages\":[],\"mcp\":{\"servers\":[\"sqlite\"]}}", 0, NULL);
	(void)state;

	rec_init(&rec);
	r = toolloop_open(&T, b, NULL, &sink);
	json_decref(b);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "error 400 empty_array");
	toolloop_close(r);
	rec_free(&rec);

	/* a server the client names that is not configured: 400 once the catalog is read, before any wait */
	rec_init(&rec);
	b = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"mcp\":{\"servers\":[\"sqlit\"]}}", 0,
		       NULL);
	r = toolloop_open(&T, b, NULL, &sink);
	json_decref(b);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_CATALOG);
	assert_int_equal(toolloop_feed_catalog(r, BC_OK), -1);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "error 400 server_not_found");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rec.error, "error"), "message")),
			       "did you mean 'sqlite'"));
	toolloop_close(r);
	rec_free(&rec);

	/* the broker cannot be reached: the tools are not offered, the run goes on and says so */
	rec_init(&rec);
	b = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, NULL);
	r = toolloop_open(&T, b, NULL, &sink);
	json_decref(b);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_CATALOG);
	assert_int_equal(toolloop_feed_catalog(r, BC_ECONNECT), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_string_equal(toolloop_unavailable(r, NULL), "*");
	toolloop_close(r);
	rec_free(&rec);

	/* the client goes away at the first chunk: no further event, the run is stopped */
	rec_init(&rec);
	rec.stop_at = 1;
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, STREAM, sizeof STREAM - 1), -1);
	assert_int_equal(rec.n, 1);
	assert_int_equal(toolloop_stopped(r), 1);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	toolloop_close(r);
	rec_free(&rec);
}

#define CALL(id, args) \
	"{\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"" args "\"}}"

/* one_round: a run of body whose first answer is one call of read_query,
 * run; returns the run asking its second round (*need), the first round's
 * body in *first */
static struct tl_run *one_round(const char *body, struct rec *rec, struct toolloop_sink *sink,
				struct toolloop_need *need, json_t **first)
{
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1 row written\"}]}", 0, NULL);
	struct tl_run *r = open_run(body, rec, sink, need);

	*first = sent(need);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[" CALL("call_f1",
													   "{}") "]}",
					  "tool_calls")),
			 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need->ncalls, 1);
	assert_int_equal(toolloop_feed_tool_result(r, "call_f1", result, NULL), 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_UPSTREAM);
	json_decref(result);
	return r;
}

/* a tool_choice that forces a call applies to the first round only: later
 * rounds ask with "auto" and the model's answer ends the run ("stop") */
static void test_forced_choice_first_round_only(void **state)
{
	static const struct {
		const char *choice; /* the request's tool_choice (JSON) */
		const char *later;  /* what the second round sends (JSON), NULL: absent */
	} cases[] = {
		{ "{\"type\":\"function\",\"function\":{\"name\":\"read_query\"}}", "\"auto\"" },
		{ "\"required\"", "\"auto\"" },
		{ "{\"type\":\"allowed_tools\",\"allowed_tools\":{\"mode\":\"required\",\"tools\":[{\"type\":\"function\","
		  "\"function\":{\"name\":\"read_query\"}}]}}",
		  "{\"type\":\"allowed_tools\",\"allowed_tools\":{\"mode\":\"auto\",\"tools\":[{\"type\":\"function\","
		  "\"function\":{\"name\":\"read_query\"}}]}}" },
		{ "\"auto\"", "\"auto\"" },
		{ NULL, NULL },
	};
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct rec rec;
		struct toolloop_sink sink;
		struct toolloop_need need;
		struct tl_run *r;
		char body[1024];
		json_t *first, *second, *want_first, *want_later;

		snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"write\"}]%s%s}",
			 cases[i].choice ? ",\"tool_choice\":" : "", cases[i].choice ? cases[i].choice : "");
		rec_init(&rec);
		r = one_round(body, &rec, &sink, &need, &first);
		second = sent(&need);
		want_first = cases[i].choice ? json_loads(cases[i].choice, JSON_DECODE_ANY, NULL) : NULL;
		want_later = cases[i].later ? json_loads(cases[i].later, JSON_DECODE_ANY, NULL) : NULL;
		/* the first round as the client asked, the later one let go */
		assert_true(want_first ? json_equal(json_object_get(first, "tool_choice"), want_first)
				       : !json_object_get(first, "tool_choice"));
		assert_true(want_later ? json_equal(json_object_get(second, "tool_choice"), want_later)
				       : !json_object_get(second, "tool_choice"));
		assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"Written once.\"}", "stop")), 0);
		assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
		assert_string_equal(rec_log(&rec),
				    "start call_f1 sqlite read_query {} | end call_f1 0 | content | done stop");
		json_decref(first);
		json_decref(second);
		json_decref(want_first);
		json_decref(want_later);
		toolloop_close(r);
		rec_free(&rec);
	}
}

/* tool_choice "none": an upstream that calls an MCP tool anyway gets no
 * tool run; the client gets what the model said, the call removed */
static void test_choice_none_runs_nothing(void **state)
{
	static const char stream[] =
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"No tools.\"}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_n1\",\"type\":"
		"\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		"data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	const json_t *msg;
	char *all;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink,
		     &need);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"No tools.\",\"tool_calls\":[" CALL(
						  "call_n1", "{}") "]}",
					  "tool_calls")),
			 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "content | done stop");
	msg = json_object_get(json_array_get(json_object_get(rec.response, "choices"), 0), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "content")), "No tools.");
	assert_null(json_object_get(msg, "tool_calls"));
	toolloop_close(r);
	rec_free(&rec);

	/* streamed: the same, one finish_reason "stop" */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
		     &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, stream, sizeof stream - 1), 0);
	upstream_result_init(&res);
	assert_int_equal(toolloop_feed_upstream_end(r, &res), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "content | done stop");
	all = json_dumps(rec.chunks, JSON_COMPACT);
	assert_null(strstr(all, "call_n1"));
	free(all);
	toolloop_close(r);
	rec_free(&rec);
}

/* parallel_tool_calls false: passed upstream; several MCP calls in one
 * answer anyway run one at a time, in the model's order */
static void test_parallel_false_one_at_a_time(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *body, *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}", 0, NULL);
	(void)state;

	rec_init(&rec);
	r = open_run("{\"parallel_tool_calls\":false,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec,
		     &sink, &need);
	body = sent(&need);
	assert_true(json_is_false(json_object_get(body, "parallel_tool_calls")));
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[" CALL(
						  "call_p1", "{}") "," CALL("call_pbad", "[") "," CALL("call_p2", "{}") "]}",
					  "tool_calls")),
			 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 1);
	assert_string_equal(need.calls[0].id, "call_p1");
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_WAIT);
	assert_int_equal(toolloop_tick(r), 0); /* the driver still waits: a TOOL_WAIT event */
	assert_int_equal(toolloop_feed_tool_result(r, "call_p2", result, NULL), -1); /* not handed out yet */
	assert_int_equal(toolloop_feed_tool_result(r, "call_p1", result, NULL), 0);
	/* the next batch: the bad call (it ends unasked) and the next good one */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 1);
	assert_string_equal(need.calls[0].id, "call_p2");
	assert_int_equal(toolloop_feed_tool_result(r, "call_p2", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_int_equal(toolloop_tick(r), -1); /* no tool runs: nothing sent */
	assert_string_equal(rec_log(&rec), "start call_p1 sqlite read_query {} | wait | end call_p1 0 | "
					   "start call_pbad sqlite read_query [ | start call_p2 sqlite read_query {} | "
					   "end call_pbad 1 | end call_p2 0");
	body = sent(&need);
	assert_int_equal(json_array_size(json_object_get(body, "messages")), 5); /* user, assistant, 3 results */
	assert_true(json_is_false(json_object_get(body, "parallel_tool_calls")));
	json_decref(body);
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

#define IMAGE_RESULT \
	"{\"content\":[{\"type\":\"text\",\"text\":\"a chart\"},{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"QUJD\"}]}"

/* image_round: a run of model whose tool returns an image; returns it asking
 * the second round (*need) */
static struct tl_run *image_round(const char *model, struct rec *rec, struct toolloop_sink *sink,
				  struct toolloop_need *need)
{
	json_t *result = json_loads(IMAGE_RESULT, 0, NULL);
	char body[256];
	struct tl_run *r;

	snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"chart\"}]}", model);
	r = open_run(body, rec, sink, need);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[" CALL("call_i1",
													   "{}") "]}",
					  "tool_calls")),
			 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(toolloop_feed_tool_result(r, "call_i1", result, NULL), 0);
	assert_int_equal(toolloop_step(r, need), TOOLLOOP_NEED_UPSTREAM);
	json_decref(result);
	return r;
}

/* refuse: the upstream answers the round 400 (DeepSeek's words) */
static int refuse(struct tl_run *r)
{
	struct upstream_result res;
	int rc;

	upstream_result_init(&res);
	res.err = UPSTREAM_EHTTP;
	res.status = 400;
	snprintf(res.content_type, sizeof res.content_type, "application/json");
	buf_puts(&res.body,
		 "{\"error\":{\"message\":\"Failed to deserialize the JSON body into the target type: "
		 "messages[3]: unknown variant `image_url`, expected `text`\",\"type\":\"invalid_request_error\","
		 "\"param\":null,\"code\":\"invalid_request_error\"}}");
	rc = toolloop_feed_upstream_end(r, &res);
	upstream_result_free(&res);
	return rc;
}

/* has_image: the request body need asks with holds an image_url part */
static int has_image(const struct toolloop_need *need)
{
	return memmem(need->body, need->body_len, "\"image_url\"", 11) != NULL;
}

/* MCPGW_TOOL_IMAGES auto: images go as image parts; a 400 on that round asks
 * it once more without them (the tool message keeps its note), and the
 * model is remembered: its next runs get no image parts at all */
static void test_images_auto_falls_back_to_text(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *body;
	char *all;
	(void)state;

	modelcaps_reset();
	S.tool_images = SETTINGS_IMAGES_AUTO;
	rec_init(&rec);
	r = image_round("m-text", &rec, &sink, &need);
	assert_true(has_image(&need));
	assert_int_equal(refuse(r), 0);
	assert_int_equal(modelcaps_no_images("m-text"), 0); /* not before the round without them is answered */
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_false(has_image(&need));
	body = sent(&need);
	assert_int_equal(json_array_size(json_object_get(body, "messages")), 3); /* user, assistant, tool */
	assert_string_equal(json_string_value(
				    json_object_get(json_array_get(json_object_get(body, "messages"), 2), "content")),
			    "a chart\n[image: image/png, 3 bytes]");
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"A chart.\"}", "stop")), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec), "start call_i1 sqlite read_query {} | end call_i1 0 | content | done stop");
	assert_int_equal(modelcaps_no_images("m-text"), 1);
	all = json_dumps(toolloop_added(r), JSON_COMPACT);
	assert_null(strstr(all, "image_url")); /* what the run added holds no image either */
	free(all);
	toolloop_close(r);
	rec_free(&rec);

	/* the model is known now: no image part is sent; another model still gets them */
	rec_init(&rec);
	r = image_round("m-text", &rec, &sink, &need);
	assert_false(has_image(&need));
	toolloop_close(r);
	rec_free(&rec);
	rec_init(&rec);
	r = image_round("m-vision", &rec, &sink, &need);
	assert_true(has_image(&need));
	toolloop_close(r);
	rec_free(&rec);

	/* a 400 for another reason: asked once without images, then the error reaches the client; nothing remembered */
	rec_init(&rec);
	r = image_round("m-other", &rec, &sink, &need);
	assert_int_equal(refuse(r), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_int_equal(refuse(r), -1);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec),
			    "start call_i1 sqlite read_query {} | end call_i1 0 | error 400 invalid_request_error");
	assert_int_equal(modelcaps_no_images("m-other"), 0);
	toolloop_close(r);
	rec_free(&rec);
	modelcaps_reset();
}

/* MCPGW_TOOL_IMAGES inline: a 400 reaches the client; text: never an image part */
static void test_images_inline_and_text(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	(void)state;

	modelcaps_reset();
	S.tool_images = SETTINGS_IMAGES_INLINE;
	rec_init(&rec);
	r = image_round("m-text", &rec, &sink, &need);
	assert_true(has_image(&need));
	assert_int_equal(refuse(r), -1);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	assert_string_equal(rec_log(&rec),
			    "start call_i1 sqlite read_query {} | end call_i1 0 | error 400 invalid_request_error");
	toolloop_close(r);
	rec_free(&rec);

	S.tool_images = SETTINGS_IMAGES_TEXT;
	rec_init(&rec);
	r = image_round("m-vision", &rec, &sink, &need);
	assert_false(has_image(&need));
	toolloop_close(r);
	rec_free(&rec);
	assert_int_equal(modelcaps_no_images("m-text"), 0);
}

static void test_usage_sum_nested(void **state)
{
	json_t *sum = json_object();
	json_t *u1 = json_loads("{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
				"\"prompt_tokens_details\":{\"cached_tokens\":2}}",
				0, NULL);
	json_t *u2 = json_loads("{\"prompt_tokens\":20,\"completion_tokens\":1,\"total_tokens\":21,"
				"\"completion_tokens_details\":{\"reasoning_tokens\":3},\"note\":\"x\"}",
				0, NULL);
	(void)state;

	toolloop_usage_add(sum, u1);
	toolloop_usage_add(sum, u2);
	assert_int_equal(json_integer_value(json_object_get(sum, "prompt_tokens")), 30);
	assert_int_equal(json_integer_value(json_object_get(sum, "completion_tokens")), 6);
	assert_int_equal(json_integer_value(json_object_get(sum, "total_tokens")), 36);
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(sum, "prompt_tokens_details"), "cached_tokens")),
			 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "completion_tokens_details"),
							    "reasoning_tokens")),
			 3);
	assert_null(json_object_get(sum, "note"));
	json_decref(sum);
	json_decref(u1);
	json_decref(u2);
}

static void test_restore_splices_hidden_rounds(void **state)
{
	json_t *msgs = json_loads(
		"[{\"role\":\"user\",\"content\":\"q\"},"
		"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_V1\",\"type\":\"function\","
		"\"function\":{\"name\":\"mine\",\"arguments\":\"{}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_V1\",\"content\":\"client result\"},"
		"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_V2\",\"type\":\"function\","
		"\"function\":{\"name\":\"mine\",\"arguments\":\"{}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_V2\",\"content\":\"second\"}]",
		0, NULL);
	/* call_V1: a mixed batch (hidden rounds, the upstream's "0" for the client's call);
	 * call_V2: the client's calls only, its id mapped back */
	json_t *sessions =
		json_loads("{\"call_V1\":{\"hidden\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_m0\"}]},"
			   "{\"role\":\"tool\",\"tool_call_id\":\"call_m0\",\"content\":\"r0\"},"
			   "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"0\"},{\"id\":\"call_m1\"}]},"
			   "{\"role\":\"tool\",\"tool_call_id\":\"call_m1\",\"content\":\"r1\"}],"
			   "\"ids\":{\"call_V1\":\"0\"}},"
			   "\"call_V2\":{\"hidden\":[],\"ids\":{\"call_V2\":\"1\"}}}",
			   0, NULL);
	(void)state;

	assert_non_null(msgs);
	assert_non_null(sessions);
	assert_int_equal(toolloop_restore(msgs, sessions), 2);
	assert_int_equal(json_array_size(msgs), 8);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "user");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), "call_m0");
	assert_int_equal(json_array_size(json_object_get(json_array_get(msgs, 3), "tool_calls")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 4), "tool_call_id")), "call_m1");
	/* the client's result goes upstream under the upstream's own id */
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 5), "content")), "client result");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 5), "tool_call_id")), "0");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(msgs, 6), "tool_calls"), 0), "id")),
			    "1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 7), "tool_call_id")), "1");
	/* nothing stored for these ids: unchanged */
	assert_int_equal(toolloop_restore(msgs, json_object_get(sessions, "none")), 0);
	assert_int_equal(json_array_size(msgs), 8);
	json_decref(msgs);
	json_decref(sessions);
}

/* ---- provider dialects (issue 13) ---- */

#define D(json) "data: " json "\n\n"

/* stream: the bytes fed in one piece, then the end (res: OK); returns what feed_upstream_end returned */
static int stream(struct tl_run *r, const char *bytes)
{
	struct upstream_result res;
	int rc;

	if (toolloop_feed_upstream(r, bytes, strlen(bytes)) < 0)
		return -1;
	upstream_result_init(&res);
	rc = toolloop_feed_upstream_end(r, &res);
	upstream_result_free(&res);
	return rc;
}

/* chunk_choice: choice k of chunk i the client got */
static json_t *chunk_choice(const struct rec *rec, size_t i, size_t k)
{
	return json_array_get(json_object_get(json_array_get(rec->chunks, i), "choices"), k);
}

/* all_chunks: every chunk the client got as one JSON text (free it) */
static char *all_chunks(const struct rec *rec)
{
	return json_dumps(rec->chunks, JSON_COMPACT);
}

/* Ollama, Gemini: two calls in one chunk, each its own id, no index (an MCP one and the client's);
 * DashScope: continuation chunks restating "id": ""; arguments as an object; reasoning_content
 * streamed (DeepSeek) reaches the client and goes back with the tool round's assistant message */
static void test_dialect_stream_tool_round(void **state)
{
	static const char round1[] = D("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
				       "\"reasoning_content\":\"Let me \"}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"look.\"}}]}") D(
			"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":["
			"{\"id\":\"call_c\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
			"\"arguments\":{\"city\":\"Oslo\"}},\"extra_content\":{\"google\":{\"thought_signature\":\"s1\"}}},"
			"{\"id\":\"call_m\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"{\\\"qu\"}}]}}]}")
			D("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"\",\"function\":{\"arguments\":\"ery\\\":\\\"SELECT 1\\\"}\"}}]}}]}")
				D("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}") "data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1\"}]}", 0, NULL), *tc;
	const json_t *added;
	char *all;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],\"tools\":[{\"type\":"
		     "\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}",
		     &rec, &sink, &need);
	/* the stream: the MCP call goes on in the last chunk (no index: the latest call) */
	assert_int_equal(stream(r, round1), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 1);
	assert_string_equal(need.calls[0].id, "call_m");
	assert_string_equal(json_string_value(json_object_get(need.calls[0].arguments, "query")), "SELECT 1");
	assert_int_equal(toolloop_feed_tool_result(r, "call_m", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING); /* a mixed batch: the client runs its own */
	/* the client saw the reasoning and its own call (index 0, arguments as text, extras), never the MCP one */
	all = all_chunks(&rec);
	assert_null(strstr(all, "\"call_m\"")); /* the id itself: a minted "call_..." may begin with it */
	free(all);
	assert_string_equal(json_string_value(json_object_get(json_object_get(chunk_choice(&rec, 0, 0), "delta"),
							      "reasoning_content")),
			    "Let me ");
	tc = json_array_get(json_object_get(json_object_get(chunk_choice(&rec, 2, 0), "delta"), "tool_calls"), 0);
	assert_minted(json_string_value(json_object_get(tc, "id")));
	assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")),
			    "{\"city\":\"Oslo\"}");
	assert_non_null(json_object_get(tc, "extra_content"));
	/* the hidden round: the assistant message carries the reasoning and both calls, as assembled */
	added = toolloop_added(r);
	assert_string_equal(json_string_value(json_object_get(json_array_get(added, 0), "reasoning_content")),
			    "Let me look.");
	assert_int_equal(json_array_size(json_object_get(json_array_get(added, 0), "tool_calls")), 2);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(json_array_get(added, 0), "tool_calls"), 1),
					"function"),
			"arguments")),
		"{\"query\":\"SELECT 1\"}");
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

/* the second round's request carries the first round's reasoning_content (DeepSeek thinking mode) */
static void test_dialect_reasoning_sent_back(void **state)
{
	static const char round1[] = D(
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Think.\"}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":"
		  "{\"name\":\"read_query\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}") "data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1\"}]}", 0, NULL), *body, *m;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	assert_int_equal(stream(r, round1), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(toolloop_feed_tool_result(r, "call_1", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	body = sent(&need);
	m = json_array_get(json_object_get(body, "messages"), 1);
	assert_string_equal(json_string_value(json_object_get(m, "role")), "assistant");
	assert_string_equal(json_string_value(json_object_get(m, "reasoning_content")), "Think.");
	assert_true(json_is_null(json_object_get(m, "content")));
	json_decref(body);
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

/* a stream is complete when the upstream finished it: a finish_reason and the end of the body, no
 * [DONE] (llama.cpp-based servers); without a finish_reason it is truncated */
static void test_dialect_stream_end(void **state)
{
	static const char finished[] = D("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}");
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(stream(r, finished), 0);
	assert_string_equal(rec_log(&rec), "content | done stop");
	toolloop_close(r);
	rec_free(&rec);
	/* the same through lib/openai/upstream's verdict: ETRUNCATED, but the body ended whole */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, finished, sizeof finished - 1), 0);
	upstream_result_init(&res);
	res.err = UPSTREAM_ETRUNCATED;
	res.clean_end = 1;
	assert_int_equal(toolloop_feed_upstream_end(r, &res), 0);
	assert_string_equal(rec_log(&rec), "content | done stop");
	toolloop_close(r);
	rec_free(&rec);
	/* the connection broke after the finish_reason: truncated */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, finished, sizeof finished - 1), 0);
	res.clean_end = 0;
	snprintf(res.message, sizeof res.message, "the stream broke");
	assert_int_equal(toolloop_feed_upstream_end(r, &res), -1);
	assert_string_equal(rec_log(&rec), "content | error 502 upstream_truncated");
	upstream_result_free(&res);
	toolloop_close(r);
	rec_free(&rec);
	/* no finish_reason: truncated */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(stream(r, D("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}")), -1);
	assert_string_equal(rec_log(&rec), "content | error 502 upstream_truncated");
	toolloop_close(r);
	rec_free(&rec);
	/* a whole completion where a stream was asked (the JSON event lib/openai/upstream hands on) */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(stream(r, D("{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
				     "\"assistant\",\"content\":\"Whole.\"},\"finish_reason\":\"stop\"}],\"usage\":"
				     "{\"prompt_tokens\":2,\"completion_tokens\":1}}")),
			 0);
	assert_string_equal(rec_log(&rec), "content | done stop");
	assert_string_equal(rec.text.data, "Whole.");
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "total_tokens")), 3); /* made up: 2 + 1 */
	toolloop_close(r);
	rec_free(&rec);
}

/* usage in every convention: cumulative in every chunk, repeated in the final choice chunk and a
 * trailing one, in x_groq.usage: each round counted once, the rounds summed */
static void test_dialect_usage(void **state)
{
	static const char round1[] = D(
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"c1\","
		"\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}}]}}],"
		"\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}}")
		D("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],"
		  "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}")
			D("{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}") "data: [DONE]\n\n";
	static const char round2[] = D("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}") D(
		"{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_1\","
		"\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":3,\"total_tokens\":23,\"total_time\":0.5}}}") "data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1\"}]}", 0, NULL), *last;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
		     "\"content\":\"q\"}]}",
		     &rec, &sink, &need);
	assert_int_equal(stream(r, round1), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(toolloop_feed_tool_result(r, "c1", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	assert_int_equal(stream(r, round2), 0);
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "prompt_tokens")), 30);
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "completion_tokens")), 5);
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "total_tokens")), 35);
	last = json_array_get(rec.chunks, json_array_size(rec.chunks) - 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "usage"), "total_tokens")), 35);
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

/* what the gateway does not interpret passes through: unknown members of deltas, choices and
 * chunks; n > 1: every choice (no MCP tools are offered then) */
static void test_dialect_passthrough_and_choices(void **state)
{
	static const char answer2[] = D("{\"prompt_filter_results\":[{\"prompt_index\":0}],\"choices\":[],\"model\":\"\"}")
		D("{\"citations\":[\"https://a\"],\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"A\","
		  "\"annotations\":[{\"type\":\"url_citation\"}]},\"logprobs\":{\"content\":[]},\"native_finish_reason\":null},"
		  "{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"B\"}}]}")
			D("{\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"},"
			  "{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}") "data: [DONE]\n\n";
	struct rec rec;
	struct toolloop_sink sink = { rec_event, &rec };
	struct toolloop_need need;
	struct tl_run *r;
	json_t *b, *c;
	(void)state;

	rec_init(&rec);
	b = json_loads("{\"stream\":true,\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, NULL);
	r = toolloop_open(&T, b, NULL, &sink);
	json_decref(b);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM); /* n > 1: no catalog, no MCP tools */
	assert_int_equal(stream(r, answer2), 0);
	assert_string_equal(rec_log(&rec), "content | done stop");
	/* the choiceless Azure chunk, the chunk with both choices, choice 1's finish, our finish */
	assert_int_equal(json_array_size(rec.chunks), 4);
	assert_non_null(json_object_get(json_array_get(rec.chunks, 0), "prompt_filter_results"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(rec.chunks, 0), "model")), "gpt-test");
	assert_non_null(json_object_get(json_array_get(rec.chunks, 1), "citations"));
	c = chunk_choice(&rec, 1, 0);
	assert_non_null(json_object_get(json_object_get(c, "delta"), "annotations"));
	assert_non_null(json_object_get(json_object_get(c, "logprobs"), "content"));
	c = chunk_choice(&rec, 1, 1);
	assert_int_equal(json_integer_value(json_object_get(c, "index")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "delta"), "content")), "B");
	c = chunk_choice(&rec, 2, 0);
	assert_int_equal(json_integer_value(json_object_get(c, "index")), 1);
	assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
	assert_string_equal(json_string_value(json_object_get(chunk_choice(&rec, 3, 0), "finish_reason")), "stop");
	toolloop_close(r);
	rec_free(&rec);
}

/* a non-streamed answer: calls without ids and with arguments as an object are assembled: ids
 * minted, the same ids in the history and the tool results */
static void test_dialect_message_calls(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1\"}]}", 0, NULL), *body, *msgs;
	const char *id;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"R\","
					  "\"tool_calls\":[{\"function\":{\"name\":\"read_query\",\"arguments\":"
					  "{\"query\":\"SELECT 1\"}}}]}",
					  "tool_calls")),
			 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	id = need.calls[0].id;
	assert_memory_equal(id, "call_", 5);
	assert_string_equal(json_string_value(json_object_get(need.calls[0].arguments, "query")), "SELECT 1");
	assert_int_equal(toolloop_feed_tool_result(r, id, result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	body = sent(&need);
	msgs = json_object_get(body, "messages");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "reasoning_content")), "R");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(json_array_get(msgs, 1), "tool_calls"), 0),
					"function"),
			"arguments")),
		"{\"query\":\"SELECT 1\"}");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(msgs, 1), "tool_calls"), 0), "id")),
			    json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")));
	json_decref(body);
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
}

/* a request without stream answered with an event stream anyway: read as one answer, its tool round run */
static void test_dialect_plain_answered_as_stream(void **state)
{
	static const char events[] = D(
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Hm.\"}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_e\",\"function\":"
		  "{\"name\":\"read_query\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
		  "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}") "data: [DONE]";
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"1\"}]}", 0, NULL), *body, *m;
	(void)state;

	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, events), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_string_equal(need.calls[0].id, "call_e");
	assert_int_equal(toolloop_feed_tool_result(r, "call_e", result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	body = sent(&need);
	m = json_array_get(json_object_get(body, "messages"), 1);
	assert_string_equal(json_string_value(json_object_get(m, "reasoning_content")), "Hm.");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id")),
			    "call_e");
	json_decref(body);
	assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"Done.\"}", "stop")), 0);
	assert_string_equal(rec_log(&rec), "start call_e sqlite read_query {} | end call_e 0 | content | done stop");
	assert_int_equal(json_array_size(rec.chunks), 0); /* not streamed: no chunks */
	assert_int_equal(json_integer_value(json_object_get(rec.usage, "total_tokens")), 11);
	toolloop_close(r);
	rec_free(&rec);
	/* events that never finish the answer: not JSON, a bad response */
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, D("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"}}]}")), -1);
	assert_string_equal(rec_log(&rec), "error 502 upstream_bad_response");
	toolloop_close(r);
	rec_free(&rec);
	json_decref(result);
}

/* providers' error shapes inside a stream and as HTTP errors become OpenAI error objects */
static void test_dialect_error_shapes(void **state)
{
	static const char *const bodies[] = {
		"{\"detail\":\"Model not loaded\"}",
		"[{\"error\":{\"code\":400,\"message\":\"Model not loaded\",\"status\":\"INVALID_ARGUMENT\"}}]",
		"{\"object\":\"error\",\"message\":\"Model not loaded\",\"type\":\"BadRequestError\",\"param\":null,"
		"\"code\":400}",
		"{\"error\":\"Model not loaded\"}",
		"{\"detail\":[{\"loc\":[\"body\",\"model\"],\"msg\":\"Model not loaded\",\"type\":\"value_error\"}]}",
	};
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	json_t *e;
	(void)state;

	for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
		rec_init(&rec);
		r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
		upstream_result_init(&res);
		res.err = UPSTREAM_EHTTP;
		res.status = 400;
		buf_puts(&res.body, bodies[i]);
		assert_int_equal(toolloop_feed_upstream_end(r, &res), -1);
		upstream_result_free(&res);
		e = json_object_get(rec.error, "error");
		assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "Model not loaded"));
		assert_true(json_is_string(json_object_get(e, "type")));
		assert_true(json_is_string(json_object_get(e, "code")) || json_is_null(json_object_get(e, "code")));
		assert_non_null(json_object_get(e, "param"));
		toolloop_close(r);
		rec_free(&rec);
	}
	/* a 2xx whose body is an error, or no completion at all */
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, "{\"error\":{\"message\":\"quota exhausted\",\"code\":429}}"), -1);
	assert_string_equal(rec_log(&rec), "error 502 429");
	toolloop_close(r);
	rec_free(&rec);
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(answer(r, "{\"object\":\"chat.completion\"}"), -1);
	assert_string_equal(rec_log(&rec), "error 502 upstream_bad_response");
	toolloop_close(r);
	rec_free(&rec);
	/* vLLM's error object inside a stream */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, D("{\"object\":\"error\",\"message\":\"boom\",\"code\":500}"),
						strlen(D("{\"object\":\"error\",\"message\":\"boom\",\"code\":500}"))),
			 -1);
	assert_string_equal(rec_log(&rec), "error 502 500");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec.error, "error"), "message")), "boom");
	toolloop_close(r);
	rec_free(&rec);
}

/* ---- bounded work per answer (issue 15, finding 3) ---- */

/* feed_args: a streamed answer calling read_query whose arguments come as n fragments of size bytes
 * each; returns what the last feed returned (-1 once the run ended) */
static int feed_args(struct tl_run *r, int n, size_t size)
{
	char *frag = malloc(size + 1);
	buf_t ev = BUF_INIT;
	int rc = 0;

	assert_non_null(frag);
	memset(frag, 'x', size);
	frag[size] = '\0';
	buf_puts(&ev,
		 D("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,"
		   "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"\"}}]}}]}"));
	rc = toolloop_feed_upstream(r, ev.data, ev.len);
	for (int i = 0; i < n && rc == 0; i++) {
		buf_reset(&ev);
		buf_printf(&ev,
			   "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
			   "{\"arguments\":\"%s\"}}]}}]}\n\n",
			   frag);
		rc = toolloop_feed_upstream(r, ev.data, ev.len);
	}
	buf_free(&ev);
	free(frag);
	return rc;
}

/* MCPGW_MAX_ROUND_BYTES: streamed tool-call arguments past it end the run with a 502, and nothing
 * goes upstream again; up to it they are a tool round as any */
static void test_bound_round_bytes(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	(void)state;

	S.max_round_bytes = 65536;
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(feed_args(r, 1000, 1000), -1); /* 1 MB of fragments: cut at 64 KB */
	assert_string_equal(rec_log(&rec), "content | error 502 upstream_response_too_large"); /* the role, the end */
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rec.error, "error"), "message")),
			       "MCPGW_MAX_ROUND_BYTES"));
	assert_int_not_equal(toolloop_step(r, &need), TOOLLOOP_NEED_UPSTREAM);
	toolloop_close(r);
	rec_free(&rec);
	/* just under the bound (the arguments' bytes and the call's other members): the round runs on */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(feed_args(r, 60, 1000), 0);
	assert_int_equal(rec.ended, 0);
	toolloop_close(r);
	rec_free(&rec);
	/* a whole (non-streamed) answer's message is bounded alike */
	rec_init(&rec);
	r = open_run("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	{
		buf_t b = BUF_INIT;

		buf_puts(&b, "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
			     "\"assistant\",\"content\":\"");
		for (int i = 0; i < 70000; i++)
			buf_append(&b, "y", 1);
		buf_puts(&b, "\"},\"finish_reason\":\"stop\"}]}");
		assert_int_equal(answer(r, b.data), -1);
		buf_free(&b);
	}
	assert_string_equal(rec_log(&rec), "error 502 upstream_response_too_large");
	toolloop_close(r);
	rec_free(&rec);
	S.max_round_bytes = 0;
}

/* MCPGW_MAX_UPSTREAM_JSON_VALUES: a stream event of more values is not parsed: a 502 */
static void test_bound_event_values(void **state)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	buf_t ev = BUF_INIT;
	(void)state;

	S.max_upstream_json_values = 100;
	/* the chunk, its list of choices, the choice, its index, the delta, the content: 6, and the pad list */
	buf_puts(&ev, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"pad\":[{}");
	for (int i = 1; i < 93; i++)
		buf_puts(&ev, ",{}");
	buf_puts(&ev, "]}\n\n"); /* 6 + 1 + 93 = 100 values: fits */
	rec_init(&rec);
	r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rec, &sink, &need);
	assert_int_equal(toolloop_feed_upstream(r, ev.data, ev.len), 0);
	assert_string_equal(rec_log(&rec), "content");
	/* one more */
	buf_reset(&ev);
	buf_puts(&ev, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"pad\":[{}");
	for (int i = 1; i < 94; i++)
		buf_puts(&ev, ",{}");
	buf_puts(&ev, "]}\n\n");
	assert_int_equal(toolloop_feed_upstream(r, ev.data, ev.len), -1);
	assert_string_equal(rec_log(&rec), "content | error 502 upstream_response_too_large");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rec.error, "error"), "message")),
			       "MCPGW_MAX_UPSTREAM_JSON_VALUES"));
	toolloop_close(r);
	rec_free(&rec);
	buf_free(&ev);
	S.max_upstream_json_values = 0;
}

/* ---- the mixed-batch history bound to its owner (issue 14, case 3), with a real state store ---- */

static char hist_dir[64];

/* earlier turns of the conversation (JSON text of messages, each followed by a comma) before the user's
 * question: as a_mixed_batch sends them (hist_before) and as come_back sends them back (hist_before_back) */
static const char *hist_before, *hist_before_back;

static int setup_history(void **state)
{
	setup(state);
	snprintf(hist_dir, sizeof hist_dir, "/tmp/mcpgw-tl-XXXXXX");
	assert_non_null(mkdtemp(hist_dir));
	snprintf(S.state_store, sizeof S.state_store, "sqlite:%s/state.db", hist_dir);
	S.state_store_timeout_ms = 2000;
	S.session_ttl_ms = 60000;
	S.max_message_bytes = 1 << 20;
	return 0;
}

static int teardown_history(void **state)
{
	char path[128];

	statestore_close(T.store);
	T.store = NULL;
	T.key_id = NULL;
	hist_before = hist_before_back = NULL;
	for (const char *const *f = (const char *const[]){ "state.db", "state.db-wal", "state.db-shm", NULL }; *f; f++) {
		snprintf(path, sizeof path, "%s/%s", hist_dir, *f);
		(void)unlink(path);
	}
	(void)rmdir(hist_dir);
	return teardown(state);
}

#define WEATHER_TOOL \
	"[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]"

/* a_mixed_batch: a non-streamed request ("user" asks) whose answer mixes read_query (MCP, upstream
 * id mcp_id, its result rows) and the client's get_weather (upstream id client_id); the assistant
 * message the client got (new reference) */
static json_t *a_mixed_batch(const char *user, const char *client_id, const char *mcp_id, const char *rows)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct tl_run *r;
	char body[1024], ans[1024], res[256];
	json_t *result, *msg;

	snprintf(body, sizeof body,
		 "{\"messages\":[%s{\"role\":\"user\",\"content\":\"%s\"}],\"tools\":" WEATHER_TOOL "}",
		 hist_before ? hist_before : "", user);
	snprintf(ans, sizeof ans,
		 ANSWER("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
			"{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}},"
			"{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}",
			"tool_calls"),
		 mcp_id, client_id);
	snprintf(res, sizeof res, "{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}", rows);
	result = json_loads(res, 0, NULL);
	rec_init(&rec);
	r = open_run(body, &rec, &sink, &need);
	assert_int_equal(answer(r, ans), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
	assert_int_equal(need.ncalls, 1);
	assert_int_equal(toolloop_feed_tool_result(r, need.calls[0].id, result, NULL), 0);
	assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
	msg = json_deep_copy(json_object_get(json_array_get(json_object_get(rec.response, "choices"), 0), "message"));
	assert_non_null(msg);
	/* the client sees its one call, under an id the gateway minted */
	assert_int_equal(json_array_size(json_object_get(msg, "tool_calls")), 1);
	assert_minted(json_string_value(json_object_get(json_array_get(json_object_get(msg, "tool_calls"), 0), "id")));
	toolloop_close(r);
	json_decref(result);
	rec_free(&rec);
	return msg;
}

/* come_back: the client's next request (user's question, the assistant message it got, its result
 * for its call); the upstream answers (ok 1), fails with a 500 (ok 0), or the run is closed before
 * it answers (ok -1: the client went away); the body sent upstream as text (free it) */
static char *come_back(const char *user, const json_t *assistant, const char *result, int ok)
{
	struct rec rec;
	struct toolloop_sink sink;
	struct toolloop_need need;
	struct upstream_result res;
	struct tl_run *r;
	const char *id =
		json_string_value(json_object_get(json_array_get(json_object_get(assistant, "tool_calls"), 0), "id"));
	json_t *b = json_pack("{s:[{s:s, s:s}, O, {s:s, s:s, s:s}], s:o}", "messages", "role", "user", "content", user,
			      assistant, "role", "tool", "tool_call_id", id, "content", result, "tools",
			      json_loads(WEATHER_TOOL, 0, NULL));
	char *text, *up, before[1024];

	if (hist_before_back) {
		json_t *earlier;
		size_t n = strlen(hist_before_back);

		snprintf(before, sizeof before, "[%.*s]", (int)(n ? n - 1 : 0), hist_before_back); /* the last comma off */
		earlier = json_loads(before, 0, NULL);
		assert_non_null(earlier);
		for (size_t i = json_array_size(earlier); i-- > 0;)
			json_array_insert(json_object_get(b, "messages"), 0, json_array_get(earlier, i));
		json_decref(earlier);
	}
	text = json_dumps(b, JSON_COMPACT);
	assert_non_null(text);
	rec_init(&rec);
	r = open_run(text, &rec, &sink, &need);
	up = strndup(need.body, need.body_len);
	if (ok == 1) {
		assert_int_equal(answer(r, ANSWER("{\"role\":\"assistant\",\"content\":\"done\"}", "stop")), 0);
	} else if (ok == 0) {
		upstream_result_init(&res);
		res.err = UPSTREAM_EHTTP;
		res.status = 500;
		buf_puts(&res.body,
			 "{\"error\":{\"message\":\"down\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
		assert_int_equal(toolloop_feed_upstream_end(r, &res), -1);
		upstream_result_free(&res);
	}
	toolloop_close(r);
	rec_free(&rec);
	json_decref(b);
	free(text);
	return up;
}

/* upstream_tool_ids: the tool_call_id of every tool message of an upstream body, joined by "," (static) */
static const char *upstream_tool_ids(const char *body)
{
	static char out[512];
	json_t *j = json_loads(body, 0, NULL), *m;
	size_t i, n = 0;

	out[0] = '\0';
	json_array_foreach(json_object_get(j, "messages"), i, m)
		if (json_object_get(m, "tool_call_id"))
			n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "," : "",
					      json_string_value(json_object_get(m, "tool_call_id")));
	json_decref(j);
	return out;
}

/* two clients whose upstream repeats its ids ("call_0", "call_1"): each gets its own history back,
 * never the other's; presenting the upstream's id, or another conversation, restores nothing */
static void test_history_owner_only(void **state)
{
	json_t *a = a_mixed_batch("A asks", "call_0", "call_1", "A-SECRET-ROW");
	json_t *b = a_mixed_batch("B asks", "call_0", "call_1", "B-ROW");
	json_t *forged = json_deep_copy(b);
	char *up;
	(void)state;

	/* B with the upstream's own id: no history (the old key) */
	json_object_set_new(json_array_get(json_object_get(forged, "tool_calls"), 0), "id", json_string("call_0"));
	up = come_back("B asks", forged, "sunny", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	assert_null(strstr(up, "B-ROW"));
	free(up);
	/* A's minted id in B's conversation: no history either, and A's is still there */
	up = come_back("B asks", a, "sunny", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	/* B's own: B's rows, its result under the upstream's id */
	up = come_back("B asks", b, "sunny", 1);
	assert_non_null(strstr(up, "B-ROW"));
	assert_null(strstr(up, "A-SECRET-ROW"));
	assert_string_equal(upstream_tool_ids(up), "call_1,call_0");
	free(up);
	/* A's own */
	up = come_back("A asks", a, "rainy", 1);
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	assert_null(strstr(up, "B-ROW"));
	assert_string_equal(upstream_tool_ids(up), "call_1,call_0");
	free(up);
	/* used: a replay of A's request (or a later turn) gets no hidden rows, only its id back */
	up = come_back("A asks", a, "rainy", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	assert_string_equal(upstream_tool_ids(up), "call_0");
	free(up);
	up = come_back("A asks", a, "rainy", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	assert_string_equal(upstream_tool_ids(up), "call_0");
	free(up);
	json_decref(a);
	json_decref(b);
	json_decref(forged);
}

/* C in the very same conversation, with the same upstream ids, after A: A's history is A's, C's is C's */
static void test_history_not_overwritten(void **state)
{
	json_t *a = a_mixed_batch("same question", "call_0", "call_1", "A-SECRET-ROW");
	json_t *c = a_mixed_batch("same question", "call_0", "call_1", "C-INJECTED");
	char *up;
	(void)state;

	up = come_back("same question", a, "r", 1);
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	assert_null(strstr(up, "C-INJECTED"));
	free(up);
	up = come_back("same question", c, "r", 1);
	assert_non_null(strstr(up, "C-INJECTED"));
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	json_decref(a);
	json_decref(c);
}

/* bound to the caller's API key id: another key (or none) misses, and does not use it up */
static void test_history_bound_to_key(void **state)
{
	json_t *a;
	char *up;
	(void)state;

	T.key_id = "key-A";
	a = a_mixed_batch("A asks", "call_0", "call_1", "A-SECRET-ROW");
	T.key_id = "key-B";
	up = come_back("A asks", a, "r", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	T.key_id = NULL;
	up = come_back("A asks", a, "r", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	T.key_id = "key-A";
	up = come_back("A asks", a, "r", 1);
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	json_decref(a);
}

/* a retry: while the upstream has not answered the restored request the history is put back; once it has, it is gone */
static void test_history_retry_until_answered(void **state)
{
	json_t *a = a_mixed_batch("A asks", "call_0", "call_1", "A-SECRET-ROW");
	char *up;
	(void)state;

	up = come_back("A asks", a, "r", 0); /* the upstream failed */
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	up = come_back("A asks", a, "r", -1); /* the client went away before the upstream answered */
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	up = come_back("A asks", a, "r", 1); /* the retry: restored again, answered */
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	up = come_back("A asks", a, "r", 1); /* a replay: gone */
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	json_decref(a);
}

/* the upstream sends empty ids (absent or ""): the history is kept and restored all the same */
static void test_history_empty_ids(void **state)
{
	json_t *a = a_mixed_batch("A asks", "", "", "A-SECRET-ROW"), *j, *m;
	char *up;
	size_t i;
	(void)state;

	up = come_back("A asks", a, "r", 1);
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	/* every tool message answers a call of the assistant message before it: ids agree upstream */
	j = json_loads(up, 0, NULL);
	json_array_foreach(json_object_get(j, "messages"), i, m) {
		const char *id = json_string_value(json_object_get(m, "tool_call_id"));

		if (id) {
			assert_true(*id);
			assert_non_null(strstr(up, id));
			assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(j, "messages"), 1),
									 "tool_calls")),
					 2);
		}
	}
	assert_string_not_equal(upstream_tool_ids(up), "");
	json_decref(j);
	free(up);
	json_decref(a);
}

/* streamed (SGLang's ids "0", "1"): the client's calls get minted ids as they stream; a mixed
 * batch's history comes back under them; an answer with the client's call only maps it back too */
static void test_history_streamed(void **state)
{
	static const char mixed[] = D(
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"0\","
		"\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"1\",\"type\":\"function\","
		  "\"function\":{\"name\":\"read_query\",\"arguments\":\"{}\"}}]}}]}")
			D("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}") "data: [DONE]\n\n";
	static const char client_only[] = D(
		"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"0\","
		"\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]}}]}")
		D("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}") "data: [DONE]\n\n";
	const char *const streams[] = { mixed, client_only };
	json_t *result = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"S-SECRET-ROW\"}]}", 0, NULL);
	(void)state;

	for (int k = 0; k < 2; k++) {
		struct rec rec;
		struct toolloop_sink sink;
		struct toolloop_need need;
		struct tl_run *r;
		json_t *tc, *msg;
		char *up, *all;

		rec_init(&rec);
		r = open_run("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"S asks\"}],\"tools\":" WEATHER_TOOL
			     "}",
			     &rec, &sink, &need);
		assert_int_equal(stream(r, streams[k]), 0);
		if (k == 0) {
			assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_TOOLS);
			assert_int_equal(toolloop_feed_tool_result(r, "1", result, NULL), 0);
		}
		assert_int_equal(toolloop_step(r, &need), TOOLLOOP_NEED_NOTHING);
		all = all_chunks(&rec);
		assert_null(strstr(all, "\"0\""));
		free(all);
		tc = json_array_get(json_object_get(json_object_get(chunk_choice(&rec, 0, 0), "delta"), "tool_calls"), 0);
		assert_minted(json_string_value(json_object_get(tc, "id")));
		msg = json_pack("{s:s, s:n, s:[{s:O, s:s, s:{s:s, s:s}}]}", "role", "assistant", "content",
				"tool_calls", "id", json_object_get(tc, "id"), "type", "function", "function", "name",
				"get_weather", "arguments", "{}");
		toolloop_close(r);
		rec_free(&rec);
		up = come_back("S asks", msg, "fine", 1);
		if (k == 0) {
			assert_non_null(strstr(up, "S-SECRET-ROW"));
			assert_string_equal(upstream_tool_ids(up), "1,0");
		} else {
			assert_string_equal(upstream_tool_ids(up), "0");
			assert_non_null(strstr(up, "\"id\":\"0\"")); /* the assistant's call too */
		}
		free(up);
		json_decref(msg);
	}
	json_decref(result);
}

/* the conversation is bound as a client sends it back: members an SDK adds or drops (refusal, annotations,
 * content "" for null) do not matter; a changed earlier message does */
static void test_history_conversation_bound(void **state)
{
	json_t *a;
	char *up;
	(void)state;

	hist_before = "{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"},"
		      "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"hm\"},";
	a = a_mixed_batch("A asks", "call_0", "call_1", "A-SECRET-ROW");
	/* an earlier message changed: another conversation */
	hist_before_back = "{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"HI\"},"
			   "{\"role\":\"assistant\",\"content\":null},";
	up = come_back("A asks", a, "r", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	/* one left out: another conversation */
	hist_before_back = "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":null},";
	up = come_back("A asks", a, "r", 1);
	assert_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	/* the same, as an SDK sends it back */
	hist_before_back = "{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"},"
			   "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,\"annotations\":[]},";
	up = come_back("A asks", a, "r", 1);
	assert_non_null(strstr(up, "A-SECRET-ROW"));
	free(up);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_step_plain_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_tool_round_then_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_policy_denies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_bad_arguments_and_round_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_stream_split_anywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_mixed_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_upstream_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_bad_request_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced_choice_first_round_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_choice_none_runs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_false_one_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_images_auto_falls_back_to_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_images_inline_and_text, setup, teardown),
		cmocka_unit_test(test_usage_sum_nested),
		cmocka_unit_test(test_restore_splices_hidden_rounds),
		cmocka_unit_test_setup_teardown(test_dialect_stream_tool_round, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_reasoning_sent_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_stream_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_passthrough_and_choices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_message_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_plain_answered_as_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_error_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_round_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_event_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_owner_only, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_not_overwritten, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_bound_to_key, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_retry_until_answered, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_empty_ids, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_streamed, setup_history, teardown_history),
		cmocka_unit_test_setup_teardown(test_history_conversation_bound, setup_history, teardown_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
