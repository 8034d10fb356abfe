/* toolloop.c: a chat completion whose MCP tool calls mcpgw runs itself, round after round, streamed or not. */
#include "openai/toolloop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/randid.h"
#include "core/near.h"
#include "openai/toolresult.h"
#include "openai/wire.h"

#define TL_MAX_CALLS 128 /* tool calls of one round */

/* one tool call of a round, assembled from a message or from stream deltas */
struct tl_call {
	char *id, *name;
	buf_t args;
	const char *server; /* NULL: the client's own tool */
	int client_index;   /* its index in what the client sees */
};

/* the state of one run */
struct tl_run {
	struct toolloop *t;
	const struct toolloop_sink *sink;
	json_t *req;        /* the body sent upstream (our copy) */
	json_t *messages;   /* borrowed from req */
	json_t *hidden;     /* messages the client does not see: assistant + MCP results */
	json_t *client_tools; /* names of the request's own tools -> true */
	json_t *offered;    /* names of the MCP tools offered in this request -> true: only these run here */
	json_t *usage;      /* summed over rounds, NULL until one is seen */
	int stream, include_usage, rounds, gone;
	/* streaming */
	char id[64];
	json_int_t created;
	int started;        /* anything written to the client */
	int role_sent;
	/* the round in progress */
	struct tl_call calls[TL_MAX_CALLS];
	int ncalls, nclient;
	buf_t content;
	char finish[32];
	char model[256];
	json_t *fingerprint;
	int done;           /* [DONE] seen */
	json_t *mid_error;  /* an error object the upstream sent inside the stream */
};

static void round_reset(struct tl_run *r)
{
	for (int i = 0; i < r->ncalls; i++) {
		free(r->calls[i].id);
		free(r->calls[i].name);
		buf_free(&r->calls[i].args);
	}
	memset(r->calls, 0, sizeof r->calls);
	r->ncalls = r->nclient = 0;
	buf_reset(&r->content);
	r->finish[0] = '\0';
	r->done = 0;
	json_decref(r->mid_error);
	r->mid_error = NULL;
}

void toolloop_usage_add(json_t *sum, const json_t *usage)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)usage, k, v) {
		json_t *have = json_object_get(sum, k);

		if (json_is_integer(v)) {
			json_object_set_new(sum, k, json_integer(json_integer_value(v) + json_integer_value(have)));
		} else if (json_is_object(v)) {
			if (!json_is_object(have)) {
				have = json_object();
				json_object_set_new(sum, k, have);
			}
			toolloop_usage_add(have, v);
		}
	}
}

static void add_usage(struct tl_run *r, const json_t *usage)
{
	if (!json_is_object(usage))
		return;
	if (!r->usage)
		r->usage = json_object();
	if (r->usage)
		toolloop_usage_add(r->usage, usage);
}

int toolloop_restore(json_t *messages, const json_t *sessions)
{
	int restored = 0;

	for (size_t i = 0; i < json_array_size(messages); i++) {
		json_t *m = json_array_get(messages, i);
		const char *key = json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));
		json_t *stored = key ? json_object_get(sessions, key) : NULL;
		size_t j;
		json_t *s;

		if (!json_is_array(stored) || json_array_size(stored) == 0 ||
		    strcmp(json_string_value(json_object_get(m, "role")) ?: "", "assistant") != 0)
			continue;
		json_array_remove(messages, i);
		json_array_foreach(stored, j, s)
			json_array_insert(messages, i + j, s);
		i += json_array_size(stored) - 1;
		restored++;
	}
	return restored;
}

/* tl_error: an OpenAI error object (openai/wire.h builds it); new reference or NULL */
static json_t *tl_error(const char *message, const char *type, const char *param, const char *code)
{
	return wire_error(message, type, param, code);
}

/* emit: write one chunk (delta stolen) to the client; 0, or -1 when it is gone */
static int emit(struct tl_run *r, json_t *delta, const char *finish)
{
	json_t *c;
	char *s;
	int rc;

	if (!r->role_sent && delta && !json_object_get(delta, "role")) {
		json_object_set_new(delta, "role", json_string("assistant"));
	}
	r->role_sent = 1;
	c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}", "id", r->id, "object",
		      "chat.completion.chunk", "created", r->created, "model", r->model, "choices", "index", 0, "delta",
		      delta ? delta : json_object(), "logprobs", "finish_reason", finish);
	if (!c)
		return -1;
	if (r->fingerprint)
		json_object_set(c, "system_fingerprint", r->fingerprint);
	if (r->include_usage)
		json_object_set_new(c, "usage", json_null());
	s = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	if (!s)
		return -1;
	r->started = 1;
	rc = r->sink->data(r->sink->ud, s, strlen(s));
	free(s);
	if (rc)
		r->gone = 1;
	return rc ? -1 : 0;
}

static int emit_raw(struct tl_run *r, const char *s)
{
	r->started = 1;
	if (r->sink->data(r->sink->ud, s, strlen(s))) {
		r->gone = 1;
		return -1;
	}
	return 0;
}

static struct tl_call *new_call(struct tl_run *r, const char *id, const char *name)
{
	struct tl_call *c;

	if (r->ncalls == TL_MAX_CALLS)
		return NULL;
	c = &r->calls[r->ncalls++];
	c->id = strdup(id ? id : "");
	c->name = strdup(name ? name : "");
	if (!c->id || !c->name)
		return NULL;
	c->server = json_object_get(r->offered, c->name) ? mcptools_server(&r->t->tools, c->name) : NULL;
	c->client_index = c->server ? -1 : r->nclient++;
	return c;
}

/* stream_tool_delta: fold one tool-call delta into the round; the client's
 * own calls are forwarded (renumbered) through out_calls */
static void stream_tool_delta(struct tl_run *r, const json_t *tc, json_t *out_calls)
{
	json_int_t idx = json_integer_value(json_object_get(tc, "index"));
	const json_t *fn = json_object_get(tc, "function");
	const char *frag = json_string_value(json_object_get(fn, "arguments"));
	struct tl_call *c = NULL;
	json_t *o;

	if (idx >= 0 && idx < r->ncalls && !json_object_get(tc, "id"))
		c = &r->calls[idx];
	else if (idx == r->ncalls)
		c = new_call(r, json_string_value(json_object_get(tc, "id")),
			     json_string_value(json_object_get(fn, "name")));
	if (!c)
		return;
	if (frag && buf_puts(&c->args, frag) < 0)
		return;
	if (c->server)
		return; /* MCP calls are never shown to the client */
	o = json_deep_copy(tc);
	if (o && json_object_set_new(o, "index", json_integer(c->client_index)) == 0)
		json_array_append(out_calls, o);
	json_decref(o);
}

/* on_event: one SSE data payload of the upstream stream */
static int on_event(const char *data, size_t len, void *ud)
{
	struct tl_run *r = ud;
	json_t *chunk, *choice, *delta, *out, *calls, *tc, *v;
	size_t i;

	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		r->done = 1;
		return 0;
	}
	chunk = json_loadb(data, len, 0, NULL);
	if (!json_is_object(chunk) || json_object_get(chunk, "error")) {
		r->mid_error = json_is_object(chunk) ? json_pack("{s:O}", "error", json_object_get(chunk, "error"))
						     : tl_error("The upstream sent a stream event that is not JSON.",
								"server_error", NULL, "upstream_bad_response");
		json_decref(chunk);
		return 1;
	}
	if ((v = json_object_get(chunk, "model")) && json_is_string(v))
		snprintf(r->model, sizeof r->model, "%s", json_string_value(v));
	if ((v = json_object_get(chunk, "system_fingerprint")) && !json_is_null(v)) {
		json_decref(r->fingerprint);
		r->fingerprint = json_incref(v);
	}
	add_usage(r, json_object_get(chunk, "usage"));
	choice = json_array_get(json_object_get(chunk, "choices"), 0);
	delta = json_object_get(choice, "delta");
	out = json_object();
	calls = json_array();
	if (json_is_string(v = json_object_get(delta, "content"))) {
		buf_append(&r->content, json_string_value(v), json_string_length(v));
		if (json_string_length(v) || !r->role_sent)
			json_object_set(out, "content", v);
	}
	if (json_is_string(v = json_object_get(delta, "refusal")))
		json_object_set(out, "refusal", v);
	json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
		stream_tool_delta(r, tc, calls);
	if (json_array_size(calls))
		json_object_set(out, "tool_calls", calls);
	if (json_is_string(v = json_object_get(choice, "finish_reason")))
		snprintf(r->finish, sizeof r->finish, "%s", json_string_value(v));
	json_decref(calls);
	/* delta belongs to chunk: decide before letting chunk go */
	if (json_object_size(out) == 0 && (r->role_sent || !json_object_get(delta, "role"))) {
		json_decref(chunk);
		json_decref(out);
		return 0;
	}
	json_decref(chunk);
	return emit(r, out, NULL) < 0 ? 1 : 0;
}

/* round_from_message: the calls and content of a non-streamed answer */
static int round_from_message(struct tl_run *r, const json_t *msg)
{
	const json_t *tc, *content = json_object_get(msg, "content");
	size_t i;

	if (json_is_string(content))
		buf_append(&r->content, json_string_value(content), json_string_length(content));
	json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
		const json_t *fn = json_object_get(tc, "function");
		struct tl_call *c = new_call(r, json_string_value(json_object_get(tc, "id")),
					     json_string_value(json_object_get(fn, "name")));

		if (!c || buf_puts(&c->args, json_string_value(json_object_get(fn, "arguments")) ?: "") < 0)
			return -1;
	}
	return 0;
}

static int count_mcp(const struct tl_run *r)
{
	int n = 0;

	for (int i = 0; i < r->ncalls; i++)
		n += r->calls[i].server != NULL;
	return n;
}

/* calls_json: the round's calls as message tool_calls: all, or the client's only */
static json_t *calls_json(const struct tl_run *r, int client_only)
{
	json_t *a = json_array();

	for (int i = 0; a && i < r->ncalls; i++) {
		const struct tl_call *c = &r->calls[i];

		if (client_only && c->server)
			continue;
		json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c->id, "type", "function",
						   "function", "name", c->name, "arguments",
						   c->args.data ? c->args.data : ""));
	}
	return a;
}

static void history_add(struct tl_run *r, json_t *msg)
{
	json_array_append(r->messages, msg);
	json_array_append(r->hidden, msg);
	json_decref(msg);
}

static long call_timeout(const struct settings *s)
{
	return s->tool_timeout_ms * (s->tool_retries + 1) + s->broker_timeout_ms;
}

/* run_mcp: run the round's MCP calls through the broker, all at once, and add
 * the assistant message and the results to the history */
static int run_mcp(struct tl_run *r, json_t *assistant)
{
	const struct toolloop_sink *k = r->sink;
	long ids[TL_MAX_CALLS];
	json_t *images = json_array();
	buf_t text = BUF_INIT;

	history_add(r, assistant);
	if (r->stream && k->tool)
		r->started = 1; /* the sink may write progress: errors from now on go in the stream */
	for (int i = 0; i < r->ncalls; i++) {
		struct tl_call *c = &r->calls[i];
		json_t *args = c->args.len ? json_loads(c->args.data, 0, NULL) : json_object();

		ids[i] = 0;
		if (!c->server)
			continue;
		if (k->tool && k->tool(k->ud, c->server, c->name, c->args.data ? c->args.data : "{}", NULL, 0))
			r->gone = 1;
		if (!json_is_object(args)) {
			json_decref(args);
			ids[i] = -1;
			continue;
		}
		ids[i] = bc_send(r->t->bc, "tools/call", json_pack("{s:s, s:o}", "name", c->name, "arguments", args));
	}
	for (int i = 0; i < r->ncalls; i++) {
		struct tl_call *c = &r->calls[i];
		json_t *result = NULL, *error = NULL;
		int rc = BC_OK;

		if (!c->server)
			continue;
		if (ids[i] == -1) {
			error = json_pack("{s:s}", "message", "the arguments the model sent are not a JSON object");
		} else if (ids[i] < 0 || (rc = bc_wait(r->t->bc, ids[i], call_timeout(r->t->set), &result, &error)) != BC_OK) {
			rc = ids[i] < 0 ? (int)ids[i] : rc;
			error = json_pack("{s:s+}", "message", "the tool broker failed: ", bc_strerror(rc));
		}
		if (toolresult_text(result, error, r->t->set->max_tool_output_bytes, &text) < 0)
			buf_puts(&text, "Tool error: out of memory");
		if (json_is_array(images) && r->nclient == 0)
			toolresult_images(result, images);
		if (k->tool && k->tool(k->ud, c->server, c->name, c->args.data ? c->args.data : "{}", text.data,
				       error || json_is_true(json_object_get(result, "isError"))))
			r->gone = 1;
		history_add(r, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", c->id, "content", text.data));
		json_decref(result);
		json_decref(error);
	}
	if (json_array_size(images)) {
		json_array_insert_new(images, 0, json_pack("{s:s, s:s}", "type", "text", "text",
							   "Images returned by the tool calls above:"));
		history_add(r, json_pack("{s:s, s:O}", "role", "user", "content", images));
	}
	json_decref(images);
	buf_free(&text);
	return r->gone ? -1 : 0;
}

/* save_session: keep the hidden messages for when the client comes back with
 * its own tool results (keyed by its first tool call id) */
static void save_session(struct tl_run *r)
{
	const char *key = NULL;
	json_t *result = NULL, *error = NULL;
	int rc;

	for (int i = 0; i < r->ncalls && !key; i++)
		if (!r->calls[i].server)
			key = r->calls[i].id;
	rc = bc_call(r->t->bc, "mcpgw/sessionPut",
		     json_pack("{s:s, s:O, s:I}", "key", key ? key : "", "messages", r->hidden, "ttl_s",
			       (json_int_t)(r->t->set->session_ttl_ms / 1000 > 0 ? r->t->set->session_ttl_ms / 1000 : 1)),
		     r->t->set->broker_timeout_ms, &result, &error);
	if (rc != BC_OK || error)
		log_warn("saving the hidden tool calls of a mixed batch failed (%s): the client's next request will "
			 "lack them", rc != BC_OK ? bc_strerror(rc) : json_string_value(json_object_get(error, "message")));
	json_decref(result);
	json_decref(error);
}

/* fail: an error before anything was written (-1), or as the stream's last event (0) */
static int fail(struct tl_run *r, int http_status, json_t *err, int *status, json_t **error)
{
	char *s;

	if (!r->started) {
		*status = http_status;
		*error = err;
		return -1;
	}
	s = err ? json_dumps(err, JSON_COMPACT) : NULL;
	if (s)
		emit_raw(r, s);
	free(s);
	json_decref(err);
	return r->gone ? -2 : 0;
}

static int upstream_fail(struct tl_run *r, struct upstream_result *res, int *status, json_t **error)
{
	int st = 502;
	json_t *err = upstream_error_json(res, &st);

	log_warn("upstream: %s", res->message);
	if (!err)
		err = tl_error("The upstream request failed.", "server_error", NULL, "upstream_error");
	return fail(r, st, err, status, error);
}

/* one round upstream; 0, or the return value of toolloop_run on failure */
static int do_round(struct tl_run *r, struct upstream_result *res, json_t **last, int *status, json_t **error, int *failed)
{
	char *body = json_dumps(r->req, JSON_COMPACT);
	enum upstream_err e;
	json_t *resp;

	*failed = 1;
	round_reset(r);
	if (!body)
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL), status, error);
	if (r->stream) {
		e = upstream_stream(r->t->up, "/chat/completions", body, strlen(body), on_event, r, res);
		free(body);
		if (r->gone)
			return -2;
		if (r->mid_error) {
			json_t *err = r->mid_error;

			r->mid_error = NULL;
			return fail(r, 502, err, status, error);
		}
		if (e != UPSTREAM_OK)
			return upstream_fail(r, res, status, error);
		*failed = 0;
		return 0;
	}
	e = upstream_request(r->t->up, "POST", "/chat/completions", body, strlen(body), res);
	free(body);
	if (e != UPSTREAM_OK || !(resp = upstream_result_json(res)))
		return upstream_fail(r, res, status, error);
	json_decref(*last);
	*last = resp;
	add_usage(r, json_object_get(resp, "usage"));
	if (json_is_string(json_object_get(resp, "model")))
		snprintf(r->model, sizeof r->model, "%s", json_string_value(json_object_get(resp, "model")));
	snprintf(r->finish, sizeof r->finish, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "finish_reason")) ?: "");
	if (round_from_message(r, json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message")) < 0)
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL), status, error);
	*failed = 0;
	return 0;
}

/* finish_stream: the one final chunk, the usage chunk, [DONE] */
static int finish_stream(struct tl_run *r, const char *finish)
{
	json_t *u;
	char *s;
	int rc;

	if (emit(r, json_object(), finish) < 0)
		return -2;
	if (r->include_usage) {
		u = json_pack("{s:s, s:s, s:I, s:s, s:[], s:O}", "id", r->id, "object", "chat.completion.chunk", "created",
			      r->created, "model", r->model, "choices", "usage", r->usage ? r->usage : json_object());
		if (u && r->fingerprint)
			json_object_set(u, "system_fingerprint", r->fingerprint);
		s = u ? json_dumps(u, JSON_COMPACT) : NULL;
		json_decref(u);
		rc = s ? emit_raw(r, s) : 0;
		free(s);
		if (rc < 0)
			return -2;
	}
	return emit_raw(r, "[DONE]") < 0 ? -2 : 0;
}

/* finish_plain: the last upstream answer, made what the client should see */
static json_t *finish_plain(struct tl_run *r, json_t *last, const char *finish, int strip_mcp)
{
	json_t *choice = json_array_get(json_object_get(last, "choices"), 0);
	json_t *msg = json_object_get(choice, "message");

	if (strip_mcp && json_is_object(msg)) {
		if (r->nclient)
			json_object_set_new(msg, "tool_calls", calls_json(r, 1));
		else
			json_object_del(msg, "tool_calls");
	}
	if (finish && json_is_object(choice))
		json_object_set_new(choice, "finish_reason", json_string(finish));
	if (r->usage)
		json_object_set(last, "usage", r->usage);
	return json_incref(last);
}

/* json_kind: what a JSON value is, for messages ("a string", "an array", ...) */
static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* bad_request: a 400 invalid_request_error about param, the message printf-style */
static int bad_request(struct tl_run *r, const char *param, const char *code, int *status, json_t **error,
		       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int bad_request(struct tl_run *r, const char *param, const char *code, int *status, json_t **error,
		       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fail(r, 400, tl_error(msg, "invalid_request_error", param, code), status, error);
}

#define TL_MCP_SHAPE "\"mcp\" takes \"servers\" (an array of MCP server names, e.g. [\"sqlite\"]) and \"tools\" (a boolean)"

/* mcp_servers: "mcp.servers" checked (a non-empty array of non-empty
 * names) and joined by "," into filter. 0, or -1 with a 400 failed */
static int mcp_servers(struct tl_run *r, const json_t *v, buf_t *filter, int *status, json_t **error)
{
	const json_t *name;
	size_t i;

	if (!json_is_array(v))
		return bad_request(r, "mcp.servers", "invalid_type", status, error,
				   "'mcp.servers' must be an array of MCP server names, e.g. [\"sqlite\"]; got %s.",
				   json_kind(v));
	if (json_array_size(v) == 0)
		return bad_request(r, "mcp.servers", "empty_array", status, error,
				   "'mcp.servers' names no server; to offer no MCP tools, send \"mcp\": {\"tools\": false}.");
	json_array_foreach(v, i, name) {
		const char *s = json_string_value(name);

		if (!s || !*s || strchr(s, ','))
			return bad_request(r, "mcp.servers", "invalid_type", status, error,
					   "'mcp.servers' must be an array of MCP server names; item %zu is %s.", i,
					   !s ? json_kind(name) : !*s ? "an empty string" : "not one name (it holds a comma)");
		if ((filter->len && buf_puts(filter, ",") < 0) || buf_puts(filter, s) < 0)
			return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL), status, error);
	}
	return 0;
}

/* mcp_check: the request's "mcp" object checked like the rest of an OpenAI
 * request (its keys, their types; null counts as absent); its servers
 * joined by "," into filter. 0, or -1 with a 400 failed */
static int mcp_check(struct tl_run *r, const json_t *mcp, buf_t *filter, int *status, json_t **error)
{
	static const char *const keys[] = { "servers", "tools" };
	const char *k, *near;
	const json_t *v;

	if (!mcp || json_is_null(mcp))
		return 0;
	if (!json_is_object(mcp))
		return bad_request(r, "mcp", "invalid_type", status, error, "'mcp' must be an object; got %s. %s.",
				   json_kind(mcp), TL_MCP_SHAPE);
	json_object_foreach((json_t *)mcp, k, v) {
		char param[96];

		if (strcmp(k, "servers") == 0 || strcmp(k, "tools") == 0)
			continue;
		near = near_word(k, keys, sizeof keys / sizeof *keys);
		snprintf(param, sizeof param, "mcp.%.80s", k);
		return bad_request(r, param, "unknown_parameter", status, error,
				   "Unrecognized parameter '%s'%s%s%s. %s.", param, near ? " (did you mean 'mcp." : "",
				   near ? near : "", near ? "'?)" : "", TL_MCP_SHAPE);
	}
	v = json_object_get(mcp, "tools");
	if (v && !json_is_null(v) && !json_is_boolean(v))
		return bad_request(r, "mcp.tools", "invalid_type", status, error,
				   "'mcp.tools' must be a boolean (false: offer no MCP tools); got %s.", json_kind(v));
	v = json_object_get(mcp, "servers");
	return v && !json_is_null(v) ? mcp_servers(r, v, filter, status, error) : 0;
}

/* restore_sessions: splice back the hidden rounds of earlier mixed batches */
static void restore_sessions(struct tl_run *r)
{
	json_t *keys = json_array(), *m, *result = NULL, *error = NULL;
	size_t i;

	json_array_foreach(r->messages, i, m) {
		const char *id = json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));

		if (id && keys && json_array_size(keys) < 256)
			json_array_append_new(keys, json_string(id));
	}
	if (!json_array_size(keys)) {
		json_decref(keys);
		return;
	}
	if (bc_call(r->t->bc, "mcpgw/sessionGet", json_pack("{s:o}", "keys", keys), r->t->set->broker_timeout_ms,
		    &result, &error) == BC_OK && result) {
		int n = toolloop_restore(r->messages, json_object_get(result, "sessions"));

		log_debug("restored %d hidden tool rounds", n);
	}
	json_decref(result);
	json_decref(error);
}

/* unavailable: the servers (of the filter) whose tools cannot be offered:
 * recorded in r->t->unavailable(_why) and logged. 0, or -1 when the client
 * named them: *code and *why say so for a 503 */
static int unavailable(struct tl_run *r, const char *servers, int named, int rc, const char **code, buf_t *why)
{
	struct toolloop *t = r->t;
	buf_t names = BUF_INIT;
	int n;

	if (rc != BC_OK) {
		*code = "broker_unavailable";
		n = buf_printf(why, "the tool broker at %s %s", t->set->socket_path,
			       rc == 1 ? "answered an error" : bc_strerror(rc)) < 0 || buf_puts(&names, "*") < 0 ? -1 : 1;
	} else {
		*code = "server_unavailable";
		n = mcptools_unready(&t->tools, servers, why, &names);
	}
	if (n > 0) {
		snprintf(t->unavailable, sizeof t->unavailable, "%s", names.data);
		snprintf(t->unavailable_why, sizeof t->unavailable_why, "%s", why->data);
		if (!named)
			log_warn("chat completion without the tools of MCP servers that are not ready: %s", why->data);
	}
	buf_free(&names);
	return n > 0 && named ? -1 : 0;
}

/* unknown_servers: a 400 when the filter names a server that is not
 * configured (from: where the client named it). 0, or -1 with it failed */
static int unknown_servers(struct tl_run *r, const char *servers, const char *from, int *status, json_t **error)
{
	buf_t unknown = BUF_INIT, known = BUF_INIT;
	int n = mcptools_unknown(&r->t->tools, servers, &unknown), nk = n > 0 ? mcptools_configured(&r->t->tools, &known) : 0;
	int rc = 0;

	if (n < 0 || nk < 0)
		rc = fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL), status, error);
	else if (n > 0)
		rc = bad_request(r, from, "server_not_found", status, error,
				 "Unknown MCP server%s %.600s in %s; %s%.300s%s.", n == 1 ? "" : "s", unknown.data,
				 strcmp(from, "mcp.servers") == 0 ? "\"mcp\": {\"servers\": [...]}" : from,
				 nk ? "the configured servers are: " : "no MCP server is configured (servers_config.json)",
				 nk ? known.data : "", nk && known.len > 300 ? ", ..." : "");
	buf_free(&unknown);
	buf_free(&known);
	return rc;
}

/* inject: add the MCP tools to the request's own. named: where the client
 * named its servers ("mcp.servers", the header), NULL when it did not.
 * 0, or -1 with a 400 failed when a server it named is not configured, a
 * 503 when one is not ready */
static int inject(struct tl_run *r, const char *servers, const char *named, int *status, json_t **error)
{
	json_t *tools = json_object_get(r->req, "tools"), *mine, *t;
	size_t i;
	int rc = mcptools_refresh(&r->t->tools, r->t->bc, r->t->set->broker_timeout_ms);
	const char *code = NULL;
	buf_t why = BUF_INIT, msg = BUF_INIT;

	/* a name that is not configured is the client's mistake, whatever the servers' states: say so at once */
	if (rc == BC_OK && named && unknown_servers(r, servers, named, status, error) < 0)
		return -1;
	if (rc == BC_OK)
		rc = mcptools_wait(&r->t->tools, r->t->bc, r->t->set->broker_timeout_ms, r->t->set->startup_wait_ms);
	if (unavailable(r, servers, named != NULL, rc, &code, &why) < 0) {
		json_t *err = buf_printf(&msg, "The MCP tools asked for cannot be offered: %s. Retry later, or leave the "
					       "server out of \"mcp\": {\"servers\": [...]} (X-MCPGW-Servers).",
					 why.data) == 0 ? tl_error(msg.data, "server_error", "mcp", code) : NULL;

		buf_free(&why);
		buf_free(&msg);
		return fail(r, err ? 503 : 500, err ? err : tl_error("Out of memory.", "server_error", NULL, NULL), status,
			    error);
	}
	buf_free(&why);
	mine = mcptools_openai(&r->t->tools, servers, r->client_tools);
	json_array_foreach(mine, i, t)
		json_object_set_new(r->offered, json_string_value(json_object_get(json_object_get(t, "function"), "name")),
				    json_true());
	if (json_array_size(mine)) {
		if (!json_is_array(tools)) {
			tools = json_array();
			json_object_set_new(r->req, "tools", tools);
		}
		json_array_foreach(mine, i, t)
			json_array_append(tools, t);
	}
	json_decref(mine);
	return 0;
}

/* prepare: our copy of the request, checked, with MCP tools and restored history */
static int prepare(struct tl_run *r, const json_t *body, const char *servers, int *status, json_t **error)
{
	const struct settings *s = r->t->set;
	json_t *model, *mcp, *t;
	const char *alias;
	buf_t filter = BUF_INIT;
	size_t i;

	r->req = json_deep_copy(body);
	r->hidden = json_array();
	r->client_tools = json_object();
	r->offered = json_object();
	if (!r->req || !r->hidden || !r->client_tools || !r->offered)
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL), status, error);
	r->messages = json_object_get(r->req, "messages");
	if (!json_is_array(r->messages) || json_array_size(r->messages) == 0)
		return fail(r, 400, tl_error("'messages' must be a non-empty array.", "invalid_request_error", "messages",
					     json_is_array(r->messages) ? "empty_array" : "invalid_type"), status, error);
	model = json_object_get(r->req, "model");
	if (!model || json_is_null(model))
		json_object_set_new(r->req, "model", json_string(s->default_model));
	else if (!json_is_string(model))
		return fail(r, 400, tl_error("'model' must be a string.", "invalid_request_error", "model", "invalid_type"),
			    status, error);
	if ((alias = settings_model_alias(s, json_string_value(json_object_get(r->req, "model")))))
		json_object_set_new(r->req, "model", json_string(alias));
	snprintf(r->model, sizeof r->model, "%s", json_string_value(json_object_get(r->req, "model")));
	r->stream = json_is_true(json_object_get(r->req, "stream"));
	r->include_usage = r->stream &&
			   json_is_true(json_object_get(json_object_get(r->req, "stream_options"), "include_usage"));
	mcp = json_object_get(r->req, "mcp");
	if (mcp_check(r, mcp, &filter, status, error) < 0) {
		buf_free(&filter);
		return -1;
	}
	if (servers && *servers && !servers[strspn(servers, " ,")]) {
		buf_free(&filter);
		return bad_request(r, TOOLLOOP_SERVERS_HEADER, "empty_array", status, error,
				   "The header " TOOLLOOP_SERVERS_HEADER " names no server; leave it out to offer every "
				   "MCP server's tools, or send \"mcp\": {\"tools\": false} for none.");
	}
	json_array_foreach(json_object_get(r->req, "tools"), i, t) {
		const char *name = json_string_value(json_object_get(json_object_get(t, "function"), "name"));

		if (name)
			json_object_set_new(r->client_tools, name, json_true());
	}
	/* one conversation is followed: with n > 1 choices no MCP tools are offered */
	if (s->inject_tools && !json_is_false(json_object_get(mcp, "tools")) &&
	    json_integer_value(json_object_get(r->req, "n")) <= 1) {
		const char *only = servers && *servers ? servers : filter.data;

		if (inject(r, only, servers && *servers ? TOOLLOOP_SERVERS_HEADER : only ? "mcp.servers" : NULL, status,
			   error) < 0) {
			buf_free(&filter);
			return -1;
		}
	}
	json_object_del(r->req, "mcp");
	buf_free(&filter);
	restore_sessions(r);
	return 0;
}

static void run_free(struct tl_run *r)
{
	round_reset(r);
	buf_free(&r->content);
	json_decref(r->req);
	json_decref(r->hidden);
	json_decref(r->client_tools);
	json_decref(r->offered);
	json_decref(r->usage);
	json_decref(r->fingerprint);
}

/* assistant_of: the assistant message of the round, with every call */
static json_t *assistant_of(struct tl_run *r, json_t *last)
{
	json_t *msg;

	if (!r->stream)
		return json_deep_copy(json_object_get(json_array_get(json_object_get(last, "choices"), 0), "message"));
	msg = json_pack("{s:s, s:o}", "role", "assistant", "tool_calls", calls_json(r, 0));
	if (msg)
		json_object_set_new(msg, "content", r->content.len ? json_string(r->content.data) : json_null());
	return msg;
}

int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **response, int *status, json_t **error)
{
	struct tl_run r;
	struct upstream_result res;
	json_t *last = NULL;
	const char *finish;
	int rc, failed;

	memset(&r, 0, sizeof r);
	r.t = t;
	r.sink = sink;
	r.created = (json_int_t)time(NULL);
	*response = NULL;
	*error = NULL;
	t->unavailable[0] = t->unavailable_why[0] = '\0';
	upstream_result_init(&res);
	if (randid_new(r.id, sizeof r.id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS) < 0) {
		log_error("cannot make a completion id: getrandom: %s", strerror(errno));
		rc = fail(&r, 500, tl_error("The gateway has no source of random ids.", "server_error", NULL, NULL),
			  status, error);
		goto out;
	}
	if ((rc = prepare(&r, body, servers, status, error)) != 0)
		goto out;
	for (;;) {
		if ((rc = do_round(&r, &res, &last, status, error, &failed)) != 0 || failed)
			goto out;
		if (count_mcp(&r) == 0 || r.rounds == t->set->max_tool_rounds) {
			int limited = count_mcp(&r) > 0;

			/* past MCPGW_MAX_TOOL_ROUNDS: what the model said, MCP calls dropped, finish "length" */
			if (limited)
				log_warn("MCPGW_MAX_TOOL_ROUNDS (%d) reached; answering without running more tools",
					 t->set->max_tool_rounds);
			finish = r.nclient ? "tool_calls" : limited ? "length" : (*r.finish ? r.finish : "stop");
			if (r.stream)
				rc = finish_stream(&r, finish);
			else
				*response = finish_plain(&r, last, limited || r.nclient ? finish : NULL, limited);
			goto out;
		}
		r.rounds++;
		if (run_mcp(&r, assistant_of(&r, last)) < 0) {
			rc = -2;
			goto out;
		}
		if (r.nclient) { /* a mixed batch: the client runs its own, we keep ours */
			save_session(&r);
			if (r.stream)
				rc = finish_stream(&r, "tool_calls");
			else
				*response = finish_plain(&r, last, "tool_calls", 1);
			goto out;
		}
	}
out:
	json_decref(last);
	upstream_result_free(&res);
	run_free(&r);
	return rc;
}
