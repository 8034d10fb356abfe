/* fuzz_chat.c: libFuzzer target of POST /v1/chat/completions without I/O (lib/openai/toolloop.c driven step by step): the request's checks, and the upstream's streamed and whole answers mapped for the client, tool rounds included. */
#include <string.h>

#include "core/log.h"
#include "fuzz.h"
#include "mcp/bclient.h"
#include "openai/toolloop.h"

/* Input: byte 0 picks what the rest is (its low two bits; the next bits
 * pick a few variations), bytes 1-2 seed how a stream is cut:
 *   0: the request body a client sends (chat.fcgi's route hands it to the
 *      tool loop after oai_parse_body); the upstream answers a canned text;
 *   1: the upstream's text/event-stream answer (any provider's dialect) to
 *      a streamed request offering one MCP tool and one client tool, fed in
 *      pieces; each MCP call the model makes gets a canned result and the
 *      next round gets the same stream, up to the round bound;
 *   2: the same as a whole (non-streamed) upstream answer body;
 *   3: the rest is the MCP server's tools/call result (any JSON: an
 *      object, a number, null, ...) for a model that calls read_query,
 *      streamed or not.
 * Bit 3 of byte 0: the rest's first line is the X-MCPGW-Servers header.
 * The catalog is canned: server "sqlite" with read_query. Checks: a run
 * reports exactly one ERROR or DONE event, last, whatever it is fed; every
 * chunk for the client is an object; an ERROR carries an OpenAI error
 * object and a 4xx/5xx status; a DONE without a stream a chat.completion
 * with choices; what goes upstream is an object with messages and without
 * the gateway's "mcp" key; nothing leaks (LeakSanitizer). */

static struct settings S;
static struct toolloop T;
static int verbose; /* FUZZ_VERBOSE=1: each event on stderr (to see what a seed reaches) */

struct rec {
	int ended, after_end, events;
};

static int rec_event(void *ud, const struct toolloop_event *ev)
{
	struct rec *r = ud;

	r->events++;
	if (verbose)
		fprintf(stderr, "event %d%s%s%s\n", (int)ev->kind, ev->tool ? " tool " : "", ev->tool ? ev->tool : "",
			ev->error ? " error" : "");
	if (r->ended)
		r->after_end++;
	switch (ev->kind) {
	case TOOLLOOP_CONTENT:
		if (ev->chunk)
			FUZZ_CHECK(json_is_object(ev->chunk));
		if (ev->text)
			FUZZ_CHECK(strlen(ev->text) <= ev->text_len || memchr(ev->text, '\0', ev->text_len));
		break;
	case TOOLLOOP_TOOL_START:
	case TOOLLOOP_TOOL_END:
		FUZZ_CHECK(ev->id && ev->server && ev->tool);
		if (ev->kind == TOOLLOOP_TOOL_END)
			FUZZ_CHECK(ev->result != NULL);
		break;
	case TOOLLOOP_TOOL_WAIT: break;
	case TOOLLOOP_ERROR:
		r->ended = 1;
		FUZZ_CHECK(json_is_object(json_object_get(ev->error, "error")));
		FUZZ_CHECK(json_is_string(json_object_get(json_object_get(ev->error, "error"), "message")));
		FUZZ_CHECK(ev->status >= 400 && ev->status <= 599);
		break;
	case TOOLLOOP_DONE:
		r->ended = 1;
		FUZZ_CHECK(ev->finish_reason != NULL);
		if (!ev->stream)
			FUZZ_CHECK(json_is_object(ev->response) &&
				   json_is_array(json_object_get(ev->response, "choices")));
		break;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_t *tool = json_loads("{\"name\":\"read_query\",\"description\":\"Run a SELECT\",\"inputSchema\":"
				  "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\"}}},"
				  "\"_meta\":{\"mcpgw/server\":\"sqlite\"}}",
				  0, NULL);

	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (!tool || log_init("fuzz_chat", LOGL_WARN, verbose ? NULL : "/dev/null") < 0)
		abort();
	snprintf(S.default_model, sizeof S.default_model, "gpt-test");
	S.max_tool_rounds = 3;
	S.max_tool_output_bytes = 4096;
	S.max_response_bytes = 1 << 16;
	S.inject_tools = 1;
	S.startup_wait_ms = 30000;
	S.tool_timeout_ms = 1000;
	S.broker_timeout_ms = 500;
	S.max_json_depth = 64;
	T.set = &S; /* no upstream, no broker: this target is the driver */
	T.tools.generation = 1;
	T.tools.tools = json_pack("[O]", tool);
	T.tools.by_name = json_pack("{s:O}", "read_query", tool);
	T.tools.servers = json_pack("[s]", "sqlite");
	json_decref(tool);
	return 0;
}

#define PLAIN_ANSWER \
	"{\"id\":\"chatcmpl-up\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-test\"," \
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello.\"},\"finish_reason\":" \
	"\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}"

/* a model that calls read_query (mode 3: the tool result is the input) */
#define CALL_ARGS "\"{\\\"query\\\":\\\"SELECT 1\\\"}\""
#define CALL_STREAM \
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":" \
	"\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":" \
	"\"read_query\",\"arguments\":" CALL_ARGS "}}]},\"finish_reason\":null}]}\n\n" \
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{}," \
	"\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n"
#define CALL_ANSWER \
	"{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\"," \
	"\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":" \
	"\"read_query\",\"arguments\":" CALL_ARGS "}}]},\"finish_reason\":\"tool_calls\"}]}"

static const char *const stream_requests[] = {
	"{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
	"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"client_fn\",\"parameters\":{\"type\":\"object\"}}}]}",
	"{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":2,"
	"\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
};
static const char *const plain_requests[] = {
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
	"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"client_fn\",\"parameters\":{\"type\":\"object\"}}}]}",
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"mcp\":{\"servers\":[\"sqlite\"]}}",
};

/* answer: feed the upstream's answer for one round: bytes as a stream cut by c, or as a whole body */
static void answer(struct tl_run *r, int stream, const uint8_t *bytes, size_t n, struct fuzz_cut *c)
{
	struct upstream_result res;
	size_t off, k;

	upstream_result_init(&res);
	if (stream) {
		for (off = 0; off < n; off += k) {
			k = fuzz_cut_next(c, n - off);
			if (toolloop_feed_upstream(r, bytes + off, k) < 0)
				break;
		}
		res.clean_end = 1;
	} else {
		res.status = 200;
		FUZZ_CHECK(buf_append(&res.body, bytes, n) == 0);
	}
	(void)toolloop_feed_upstream_end(r, &res);
	upstream_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec rec = { 0, 0, 0 };
	struct toolloop_sink sink = { rec_event, &rec };
	struct toolloop_need need;
	struct fuzz_cut c;
	struct tl_run *r;
	json_t *body, *result = NULL, *canned;
	int mode, variant, steps = 0;
	const char *rest;
	size_t rest_n;
	char *header = NULL;

	if (size < 3)
		return 0;
	mode = data[0] & 3;
	variant = data[0] >> 2 & 1;
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	rest = (const char *)data + 3;
	rest_n = size - 3;
	if (data[0] & 8) { /* the X-MCPGW-Servers header: the rest's first line */
		const char *nl = memchr(rest, '\n', rest_n);
		size_t hl = nl ? (size_t)(nl - rest) : rest_n;

		header = strndup(rest, hl);
		FUZZ_CHECK(header);
		rest += nl ? hl + 1 : hl;
		rest_n -= nl ? hl + 1 : hl;
	}

	if (mode == 0) {
		body = json_loadb(rest, rest_n, 0, NULL);
		if (!json_is_object(body)) { /* oai_parse_body answers 400 itself */
			json_decref(body);
			free(header);
			return 0;
		}
	} else {
		body = json_loads(mode == 2 || (mode == 3 && variant) ? plain_requests[variant]
								      : stream_requests[variant],
				  0, NULL);
		FUZZ_CHECK(body);
	}
	if (mode == 3)
		result = json_loadb(rest, rest_n, JSON_DECODE_ANY, NULL);
	canned = json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", "1 row");
	FUZZ_CHECK(canned);

	r = toolloop_open(&T, body, header, &sink);
	json_decref(body);
	FUZZ_CHECK(r);
	for (;;) {
		enum toolloop_need_kind k = toolloop_step(r, &need);

		FUZZ_CHECK(++steps < 100);
		if (k == TOOLLOOP_NEED_NOTHING)
			break;
		if (k == TOOLLOOP_NEED_CATALOG) {
			(void)toolloop_feed_catalog(r, BC_OK);
		} else if (k == TOOLLOOP_NEED_UPSTREAM) {
			json_t *sent = json_loadb(need.body, need.body_len, 0, NULL);

			FUZZ_CHECK(json_is_object(sent));          /* what goes upstream is a JSON object */
			FUZZ_CHECK(!json_object_get(sent, "mcp")); /* the gateway's own key never goes upstream */
			FUZZ_CHECK(json_is_array(json_object_get(sent, "messages")));
			json_decref(sent);
			if (mode == 0)
				answer(r, 0, (const uint8_t *)PLAIN_ANSWER, strlen(PLAIN_ANSWER), &c);
			else if (mode == 3)
				answer(r, need.stream, (const uint8_t *)(need.stream ? CALL_STREAM : CALL_ANSWER),
				       strlen(need.stream ? CALL_STREAM : CALL_ANSWER), &c);
			else
				answer(r, need.stream, (const uint8_t *)rest, rest_n, &c);
		} else if (k == TOOLLOOP_NEED_TOOLS) {
			FUZZ_CHECK(need.ncalls > 0);
			(void)toolloop_tick(r);
			for (int i = need.ncalls; i-- > 0;) /* out of order: results may come in any order */
				(void)toolloop_feed_tool_result(r, need.calls[i].id, mode == 3 ? result : canned, NULL);
		} else {
			FUZZ_CHECK(k == TOOLLOOP_NEED_WAIT);
			FUZZ_CHECK(0); /* every need above was fed in full */
		}
	}
	FUZZ_CHECK(rec.ended == 1 || toolloop_stopped(r));
	FUZZ_CHECK(rec.after_end == 0);
	(void)toolloop_added(r);
	toolloop_close(r);
	json_decref(result);
	json_decref(canned);
	free(header);
	return 0;
}
