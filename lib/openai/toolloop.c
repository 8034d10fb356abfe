/* toolloop.c: a chat completion whose MCP tool calls mcpgw runs itself, round after round, streamed or not. */
#include "openai/toolloop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/randid.h"
#include "core/near.h"
#include "core/sse.h"
#include "openai/modelcaps.h"
#include "openai/toolresult.h"
#include "openai/wire.h"

#define TL_MAX_CALLS 128 /* tool calls of one round */
#define TL_FIRST_CALLS 8 /* the first allocation of a round's calls (doubled as more come) */

/* one tool call of a round, assembled from a message or from stream deltas */
struct tl_call {
	char *id, *name;
	buf_t args;
	const char *server; /* NULL: the client's own tool */
	int denied;         /* an MCP tool the caller's policy does not allow: answered with an error, not run */
	int client_index;   /* its index in what the client sees */
	/* an MCP call handed to the driver */
	json_t *argv;    /* the arguments parsed (an object), NULL when they are not one */
	int64_t started; /* clock_now_ms when it was handed out */
	int ended;       /* its result came */
	char *text;      /* the text given to the model */
	json_t *result;  /* the broker's result (for its images), or NULL */
};

/* where a run is */
enum tl_state {
	TL_CATALOG,       /* the catalog is to be read (refresh) */
	TL_CATALOG_WAIT,  /* ... asked: toolloop_feed_catalog */
	TL_READY,         /* the catalog is to be read again, waiting for servers coming up */
	TL_READY_WAIT,    /* ... asked */
	TL_UPSTREAM,      /* a round is to be asked upstream */
	TL_UPSTREAM_WAIT, /* ... asked: toolloop_feed_upstream*, then _end */
	TL_TOOLS,         /* the round's MCP calls are to be made */
	TL_TOOLS_WAIT,    /* ... handed out: toolloop_feed_tool_result for each */
	TL_ENDED,         /* the last event went out (or the sink stopped the run) */
};

/* the state of one run */
struct tl_run {
	struct toolloop *t;
	struct toolloop_sink sink;
	enum tl_state state;
	char *only;        /* the servers filter (comma-separated), NULL: all */
	const char *named; /* where the client named them ("mcp.servers", the header), NULL if it did not */
	char unavailable[TOOLLOOP_UNAVAILABLE_MAX]; /* see struct toolloop */
	char unavailable_why[TOOLLOOP_UNAVAILABLE_WHY_MAX];
	/* what the driver was asked for */
	char *body;                            /* the request body of the round asked upstream */
	struct sse_parser sse;                 /* the streamed answer's bytes */
	struct toolloop_tool_call *need_calls; /* ccap of them, beside calls */
	int pending;                           /* MCP calls handed out whose results have not come */
	json_t *last;                          /* the last non-streamed answer */
	json_t *req;                           /* the body sent upstream (our copy) */
	json_t *messages;                      /* borrowed from req */
	json_t *hidden;                        /* messages the client does not see: assistant + MCP results */
	json_t *client_tools;                  /* names of the request's own tools -> true */
	json_t *offered; /* names of the MCP tools offered in this request -> true: only these run here */
	json_t *usage;   /* summed over rounds, NULL until one is seen */
	int stream, include_usage, rounds, gone;
	/* what the client asked of the tool loop (see choice_after_tools, tools_hand_out) */
	int choice_none;    /* tool_choice "none": calls of MCP tools are not run */
	int one_by_one;     /* parallel_tool_calls false: a round's MCP calls run one at a time, in order */
	int next_call;      /* the round's first call not handed out yet */
	json_t *image_msgs; /* the user messages with tool images the run added (in messages and hidden) */
	int images_retry;   /* MCPGW_TOOL_IMAGES auto: 1 while a round refused with images is asked again without */
	/* streaming */
	char id[64];
	json_int_t created;
	int role_sent;
	/* the round in progress */
	struct tl_call *calls; /* ccap slots (grown as calls come, up to TL_MAX_CALLS; zeroed past ncalls) */
	int ncalls, ccap, nclient;
	buf_t content;
	buf_t refusal;
	char finish[32];
	char model[256];
	json_t *fingerprint;
	int done;          /* [DONE] seen */
	json_t *mid_error; /* an error object the upstream sent inside the stream */
};

static void round_reset(struct tl_run *r)
{
	for (int i = 0; i < r->ncalls; i++) {
		free(r->calls[i].id);
		free(r->calls[i].name);
		buf_free(&r->calls[i].args);
		json_decref(r->calls[i].argv);
		free(r->calls[i].text);
		json_decref(r->calls[i].result);
	}
	if (r->ncalls)
		memset(r->calls, 0, (size_t)r->ncalls * sizeof *r->calls);
	r->ncalls = r->nclient = 0;
	buf_reset(&r->content);
	buf_reset(&r->refusal);
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
		const char *key =
			json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));
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

/* send: one event to the sink; 0, or -1 when the sink stopped the run */
static int send(struct tl_run *r, struct toolloop_event *ev)
{
	ev->stream = r->stream;
	ev->unavailable = r->unavailable;
	ev->unavailable_why = r->unavailable_why;
	if (r->gone || r->sink.event(r->sink.ud, ev)) {
		r->gone = 1;
		return -1;
	}
	return 0;
}

/* send_chunk: a CONTENT event with a chunk for the client (c stolen) and the text it carries */
static int send_chunk(struct tl_run *r, json_t *c, const json_t *text, const json_t *refusal)
{
	struct toolloop_event ev = { .kind = TOOLLOOP_CONTENT, .chunk = c };
	int rc;

	if (!c)
		return -1;
	if (json_string_length(text)) {
		ev.text = json_string_value(text);
		ev.text_len = json_string_length(text);
	}
	if (json_string_length(refusal))
		ev.refusal = json_string_value(refusal);
	rc = send(r, &ev);
	json_decref(c);
	return rc;
}

/* emit: one chunk (delta stolen) for the client; 0, or -1 when it is gone */
static int emit(struct tl_run *r, json_t *delta, const char *finish)
{
	json_t *c;

	if (!r->role_sent && delta && !json_object_get(delta, "role")) {
		json_object_set_new(delta, "role", json_string("assistant"));
	}
	r->role_sent = 1;
	c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}", "id", r->id, "object", "chat.completion.chunk",
		      "created", r->created, "model", r->model, "choices", "index", 0, "delta",
		      delta ? delta : json_object(), "logprobs", "finish_reason", finish);
	if (!c) {
		r->gone = 1;
		return -1;
	}
	if (r->fingerprint)
		json_object_set(c, "system_fingerprint", r->fingerprint);
	if (r->include_usage)
		json_object_set_new(c, "usage", json_null());
	delta = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
	return send_chunk(r, c, json_object_get(delta, "content"), json_object_get(delta, "refusal"));
}

/* calls_grow: room for one more call (a run without tool calls allocates none); 0, or -1 at
 * TL_MAX_CALLS or out of memory */
static int calls_grow(struct tl_run *r)
{
	int cap = r->ccap ? r->ccap * 2 : TL_FIRST_CALLS;
	struct tl_call *calls;
	struct toolloop_tool_call *need;

	if (r->ncalls < r->ccap)
		return 0;
	if (r->ccap >= TL_MAX_CALLS)
		return -1;
	if (cap > TL_MAX_CALLS)
		cap = TL_MAX_CALLS;
	if (!(calls = realloc(r->calls, (size_t)cap * sizeof *calls)))
		return -1;
	r->calls = calls;
	memset(calls + r->ccap, 0, (size_t)(cap - r->ccap) * sizeof *calls);
	if (!(need = realloc(r->need_calls, (size_t)cap * sizeof *need)))
		return -1; /* calls keeps its larger size; ccap (the smaller of the two) is unchanged */
	r->need_calls = need;
	r->ccap = cap;
	return 0;
}

/* client_tool: name is one of the client's own tools (no policy concerns it) */
static int client_tool(const struct tl_run *r, const char *name)
{
	return r->client_tools && json_object_get(r->client_tools, name) != NULL;
}

static struct tl_call *new_call(struct tl_run *r, const char *id, const char *name)
{
	struct tl_call *c;

	if (calls_grow(r) < 0)
		return NULL;
	c = &r->calls[r->ncalls++];
	c->id = strdup(id ? id : "");
	c->name = strdup(name ? name : "");
	if (!c->id || !c->name)
		return NULL;
	c->server = json_object_get(r->offered, c->name) ? mcptools_server(&r->t->tools, c->name) : NULL;
	/* an MCP tool the policy kept from the offer (not one of the client's own): an error result */
	if (!c->server && r->t->policy && !client_tool(r, c->name) &&
	    (c->server = mcptools_server(&r->t->tools, c->name)) != NULL)
		c->denied = 1;
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
	if (json_is_string(v = json_object_get(delta, "refusal"))) {
		buf_append(&r->refusal, json_string_value(v), json_string_length(v));
		json_object_set(out, "refusal", v);
	}
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

	const json_t *refusal = json_object_get(msg, "refusal");
	struct toolloop_event ev = { .kind = TOOLLOOP_CONTENT };

	if (json_is_string(content))
		buf_append(&r->content, json_string_value(content), json_string_length(content));
	if (json_string_length(content)) {
		ev.text = json_string_value(content);
		ev.text_len = json_string_length(content);
	}
	if (json_string_length(refusal))
		ev.refusal = json_string_value(refusal);
	if ((ev.text || ev.refusal) && send(r, &ev) < 0)
		return -1;
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
		json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c->id, "type", "function", "function",
						   "name", c->name, "arguments", c->args.data ? c->args.data : ""));
	}
	return a;
}

static void history_add(struct tl_run *r, json_t *msg)
{
	json_array_append(r->messages, msg);
	json_array_append(r->hidden, msg);
	json_decref(msg);
}

/* call_wait: how long to wait for the broker's answers to the calls
 * r->calls[from..to): the longest any of them may take (mcptools_call_wait_ms) */
static long call_wait(const struct tl_run *r, size_t from, size_t to)
{
	const struct settings *s = r->t->set;
	long most = 0;

	for (size_t i = from; i < to; i++) {
		long w;

		if (!r->calls[i].server)
			continue;
		w = mcptools_call_wait_ms(&r->t->tools, r->calls[i].name, s->tool_timeout_ms, s->tool_retries,
					  s->broker_timeout_ms);
		if (w > most)
			most = w;
	}
	return most;
}

/* tools_hand_out: the round's MCP calls not handed out yet as the
 * driver's batch, each announced (TOOL_START); a call whose arguments are
 * not a JSON object ends at once. With parallel_tool_calls false the batch
 * is one call (with any bad-argument calls before it): OpenAI documents
 * that false means "exactly zero or one tool is called"
 * (https://platform.openai.com/docs/guides/function-calling#parallel-function-calling);
 * an upstream that sends several anyway gets them all run, one after the
 * other in the model's order, so every call has its result and none runs
 * beside another. 0, or -1 when the sink stopped the run */
static int tools_hand_out(struct tl_run *r, struct toolloop_need *need)
{
	size_t from = r->next_call;
	int n = 0;

	for (; r->next_call < r->ncalls && !(r->one_by_one && n > 0); r->next_call++) {
		struct tl_call *c = &r->calls[r->next_call];
		struct toolloop_event ev = { .kind = TOOLLOOP_TOOL_START,
					     .server = c->server,
					     .tool = c->name,
					     .id = c->id,
					     .arguments = c->args.data ? c->args.data : "{}" };

		if (!c->server)
			continue;
		c->argv = c->denied ? NULL : c->args.len ? json_loads(c->args.data, 0, NULL) : json_object();
		if (!json_is_object(c->argv)) {
			json_decref(c->argv);
			c->argv = NULL;
		}
		c->started = clock_now_ms();
		if (send(r, &ev) < 0)
			return -1;
		r->pending++;
		if (c->argv)
			r->need_calls[n++] = (struct toolloop_tool_call){ c->id, c->server, c->name, c->argv };
	}
	need->calls = r->need_calls;
	need->ncalls = n;
	need->timeout_ms = call_wait(r, from, r->next_call);
	return 0;
}

/* tool_end: call c's result (or error) came: its text, the TOOL_END event */
static int tool_end(struct tl_run *r, struct tl_call *c, const json_t *result, const json_t *error)
{
	struct toolloop_event ev = { .kind = TOOLLOOP_TOOL_END,
				     .server = c->server,
				     .tool = c->name,
				     .id = c->id,
				     .arguments = c->args.data ? c->args.data : "{}" };
	buf_t text = BUF_INIT;
	int oom = toolresult_text(result, error, r->t->set->max_tool_output_bytes, &text) < 0;

	c->text = strdup(oom ? "Tool error: out of memory" : text.data ? text.data : "");
	buf_free(&text);
	c->result = json_incref((json_t *)result);
	c->ended = 1;
	r->pending--;
	ev.result = c->text ? c->text : "";
	ev.is_error = error || json_is_true(json_object_get(result, "isError"));
	ev.duration_ms = (long)(clock_now_ms() - c->started);
	return send(r, &ev);
}

/* images_wanted: whether the tools' images go to the model as image parts
 * (MCPGW_TOOL_IMAGES; auto: unless the model refused them before) */
static int images_wanted(const struct tl_run *r)
{
	switch (r->t->set->tool_images) {
	case SETTINGS_IMAGES_INLINE: return 1;
	case SETTINGS_IMAGES_TEXT: return 0;
	default: return !modelcaps_no_images(json_string_value(json_object_get(r->req, "model")));
	}
}

/* tools_done: every result came: the tool messages (and the images, as a
 * user message after them: a tool message holds text only) in call order
 * added to the history */
static void tools_done(struct tl_run *r)
{
	json_t *images = r->nclient == 0 && images_wanted(r) ? json_array() : NULL, *msg;

	for (int i = 0; i < r->ncalls; i++) {
		const struct tl_call *c = &r->calls[i];

		if (!c->server)
			continue;
		if (json_is_array(images))
			toolresult_images(c->result, images);
		history_add(r, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", c->id, "content",
					 c->text ? c->text : "Tool error: out of memory"));
	}
	if (json_array_size(images)) {
		json_array_insert_new(images, 0,
				      json_pack("{s:s, s:s}", "type", "text", "text",
						"Images returned by the tool calls above:"));
		msg = json_pack("{s:s, s:O}", "role", "user", "content", images);
		if (msg && (r->image_msgs || (r->image_msgs = json_array())))
			json_array_append(r->image_msgs, msg);
		history_add(r, msg);
	}
	json_decref(images);
}

/* array_drop: remove v (by identity) from array a */
static void array_drop(json_t *a, const json_t *v)
{
	for (size_t i = json_array_size(a); i-- > 0;)
		if (json_array_get(a, i) == v)
			json_array_remove(a, i);
}

/* images_refused: a round was answered res (a 400): when it carried tool
 * images under MCPGW_TOOL_IMAGES auto, they are taken out of the history
 * (the tool messages keep their text notes: "[image: image/png, N bytes]")
 * and the round is to be asked once more (the model is remembered as
 * taking no images when that answer comes). A text-only upstream refuses
 * image parts with a 400 whose wording is its own, e.g. DeepSeek's
 * "Failed to deserialize the JSON body into the target type: messages[3]:
 * unknown variant `image_url`, expected `text`"
 * (https://github.com/ChatLunaLab/chatluna/issues/867), which matches none
 * of the words other clients look for ("not support", "unsupported":
 * https://github.com/jxxghp/MoviePilot/issues/5863): so any 400 of a round
 * that carries images counts, and the model is remembered only when the
 * round without them is answered. 1 when the round is to be asked again, else 0 */
static int images_refused(struct tl_run *r, struct upstream_result *res)
{
	int st = res->status;
	json_t *err, *m;
	size_t i;

	if (res->err != UPSTREAM_EHTTP || res->status != 400 || r->t->set->tool_images != SETTINGS_IMAGES_AUTO ||
	    r->images_retry || json_array_size(r->image_msgs) == 0)
		return 0;
	err = upstream_error_json(res, &st);
	log_warn("the upstream refused a round with tool images (400: %.300s); asking again without them (model %s "
		 "gets the images' text notes from now on in this process)",
		 json_string_value(json_object_get(json_object_get(err, "error"), "message")) ?: "no message",
		 json_string_value(json_object_get(r->req, "model")) ?: "?");
	json_decref(err);
	json_array_foreach(r->image_msgs, i, m) {
		array_drop(r->messages, m);
		array_drop(r->hidden, m);
	}
	json_array_clear(r->image_msgs);
	r->images_retry = 1;
	r->state = TL_UPSTREAM;
	return 1;
}

#define TL_RESTORE_MAX 256 /* mixed batches looked up per request at most */
#define TL_MIXED_NS \
	"mixed-batch" /* the state store's namespace of the hidden rounds, keyed by the client's first tool call id */

/* tl_store: the run's state store, opened on first use; NULL (logged) when it cannot be */
static struct statestore *tl_store(struct tl_run *r)
{
	struct toolloop *t = r->t;
	struct statestore_opts o = { .url = t->set->state_store, .timeout_ms = t->set->state_store_timeout_ms };
	char err[1024];

	if (!t->store && !(t->store = statestore_open(&o, err, sizeof err)))
		log_warn("mixed batches cannot be kept: %s", err);
	return t->store;
}

/* save_session: keep the hidden messages for when the client comes back with
 * its own tool results (keyed by its first tool call id) */
static void save_session(struct tl_run *r)
{
	const char *key = NULL;
	struct statestore *st = tl_store(r);
	enum statestore_status s;

	for (int i = 0; i < r->ncalls && !key; i++)
		if (!r->calls[i].server)
			key = r->calls[i].id;
	if (!st)
		return;
	s = statestore_put_json(st, TL_MIXED_NS, key ? key : "", r->hidden, r->t->set->session_ttl_ms);
	if (s != STATESTORE_OK)
		log_warn("saving the hidden tool calls of a mixed batch failed (%s%s%s): the client's next request will "
			 "lack them",
			 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
}

/* fail: the run failed: the ERROR event (err stolen; NULL: out of memory); -1 */
static int fail(struct tl_run *r, int http_status, json_t *err)
{
	struct toolloop_event ev = { .kind = TOOLLOOP_ERROR, .status = http_status, .error = err };
	json_t *oom = NULL;

	if (!err) {
		oom = wire_error("Out of memory.", "server_error", NULL, NULL);
		ev.status = 500;
		ev.error = oom;
	}
	if (ev.error)
		send(r, &ev);
	json_decref(err);
	json_decref(oom);
	return -1;
}

static int upstream_fail(struct tl_run *r, struct upstream_result *res)
{
	int st = 502;
	json_t *err = upstream_error_json(res, &st);

	log_warn("upstream: %s", res->message);
	if (!err)
		err = tl_error("The upstream request failed.", "server_error", NULL, "upstream_error");
	return fail(r, st, err);
}

/* sse_event: one event of the streamed answer, from the job's own parser */
static int sse_event(const char *event, const char *data, size_t len, const char *id, void *ud)
{
	(void)event;
	(void)id;
	return len ? on_event(data, len, ud) : 0;
}

/* choice_after_tools: what tool_choice becomes once tools ran: a choice
 * that forces a call ("required", one named function or custom tool,
 * allowed_tools in mode "required") is made "auto" (allowed_tools keeps
 * its list, mode "auto"); NULL: it stays (absent, "auto", "none"). Sent
 * again, a forced choice makes the model call the tool once more each
 * round instead of answering from the results, until the rounds limit:
 * OpenAI's own Agents SDK resets tool_choice after a tool call for this
 * reason (Agent.reset_tool_choice, default true;
 * https://github.com/openai/openai-agents-python/pull/263 and /pull/335,
 * docs/agents.md "to prevent infinite loops"). New reference. */
static json_t *choice_after_tools(const json_t *choice)
{
	const char *type = json_string_value(json_object_get(choice, "type"));
	const json_t *allowed = json_object_get(choice, "allowed_tools");
	json_t *v;

	if (json_is_string(choice))
		return strcmp(json_string_value(choice), "required") == 0 ? json_string("auto") : NULL;
	if (!type)
		return NULL;
	if (strcmp(type, "function") == 0 || strcmp(type, "custom") == 0)
		return json_string("auto");
	if (strcmp(type, "allowed_tools") != 0 ||
	    strcmp(json_string_value(json_object_get(allowed, "mode")) ?: "", "required") != 0)
		return NULL;
	v = json_deep_copy(choice);
	if (v)
		json_object_set_new(json_object_get(v, "allowed_tools"), "mode", json_string("auto"));
	return v;
}

/* upstream_hand_out: the round's request for the driver (after a tool
 * round with the forced tool_choice let go, see choice_after_tools) */
static int upstream_hand_out(struct tl_run *r, struct toolloop_need *need)
{
	json_t *choice;

	round_reset(r);
	if (r->rounds > 0 && (choice = choice_after_tools(json_object_get(r->req, "tool_choice")))) {
		log_debug("tool_choice forced a tool call in the first round; later rounds ask with \"auto\"");
		json_object_set_new(r->req, "tool_choice", choice);
	}
	free(r->body);
	r->body = json_dumps(r->req, JSON_COMPACT);
	if (!r->body)
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	sse_reset(&r->sse);
	need->path = "/chat/completions";
	need->body = r->body;
	need->body_len = strlen(r->body);
	need->stream = r->stream;
	return 0;
}

/* upstream_stopped: on_event stopped the stream: the client went away, or
 * the upstream sent an error inside it (the run fails with it); -1 */
static int upstream_stopped(struct tl_run *r)
{
	json_t *err = r->mid_error;

	r->mid_error = NULL;
	if (r->gone || !err) {
		json_decref(err);
		r->gone = 1;
		return -1;
	}
	return fail(r, 502, err);
}

/* plain_answer: a non-streamed round's answer (res->body); 0, or -1 when the run ended */
static int plain_answer(struct tl_run *r, struct upstream_result *res)
{
	json_t *resp = upstream_result_json(res);

	if (!resp)
		return upstream_fail(r, res);
	json_decref(r->last);
	r->last = resp;
	add_usage(r, json_object_get(resp, "usage"));
	if (json_is_string(json_object_get(resp, "model")))
		snprintf(r->model, sizeof r->model, "%s", json_string_value(json_object_get(resp, "model")));
	snprintf(r->finish, sizeof r->finish, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "finish_reason"))
			 ?: "");
	if (round_from_message(r, json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message")) < 0)
		return r->gone ? -1 : fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	return 0;
}

/* send_done: the DONE event (response: the non-streamed answer, or NULL) */
static int send_done(struct tl_run *r, const char *finish, const json_t *response)
{
	struct toolloop_event ev = {
		.kind = TOOLLOOP_DONE, .finish_reason = finish, .usage = r->usage, .response = response
	};

	return send(r, &ev);
}

/* final_message: the streamed answer's last message as the client got it:
 * the round's text and refusal, the client's own tool calls */
static json_t *final_message(const struct tl_run *r)
{
	json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
				r->content.len ? json_string(r->content.data) : json_null());

	if (msg && r->refusal.len)
		json_object_set_new(msg, "refusal", json_string(r->refusal.data));
	if (msg && r->nclient)
		json_object_set_new(msg, "tool_calls", calls_json(r, 1));
	return msg;
}

/* finish_stream: the one final chunk, the usage chunk, then DONE; the
 * answer is added to the history unless mixed (a mixed batch) */
static int finish_stream(struct tl_run *r, const char *finish, int mixed)
{
	json_t *u;

	if (!mixed)
		json_array_append_new(r->hidden, final_message(r));
	if (emit(r, json_object(), finish) < 0)
		return -1;
	if (r->include_usage) {
		u = json_pack("{s:s, s:s, s:I, s:s, s:[], s:O}", "id", r->id, "object", "chat.completion.chunk",
			      "created", r->created, "model", r->model, "choices", "usage",
			      r->usage ? r->usage : json_object());
		if (u && r->fingerprint)
			json_object_set(u, "system_fingerprint", r->fingerprint);
		if (send_chunk(r, u, NULL, NULL) < 0)
			return -1;
	}
	return send_done(r, finish, NULL);
}

/* finish_plain: the last upstream answer, made what the client should see,
 * added to the history unless mixed, then DONE */
static int finish_plain(struct tl_run *r, json_t *last, const char *finish, int strip_mcp, int mixed)
{
	json_t *choice = json_array_get(json_object_get(last, "choices"), 0);
	json_t *msg = json_object_get(choice, "message");
	const char *reason = json_string_value(json_object_get(choice, "finish_reason"));

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
	if (!mixed && json_is_object(msg))
		json_array_append_new(r->hidden, json_deep_copy(msg));
	return send_done(r, finish ? finish : reason ? reason : "stop", last);
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
static int bad_request(struct tl_run *r, const char *param, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bad_request(struct tl_run *r, const char *param, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fail(r, 400, tl_error(msg, "invalid_request_error", param, code));
}

#define TL_MCP_SHAPE \
	"\"mcp\" takes \"servers\" (an array of MCP server names, e.g. [\"sqlite\"]) and \"tools\" (a boolean)"

/* mcp_servers: "mcp.servers" checked (a non-empty array of non-empty
 * names) and joined by "," into filter. 0, or -1 with a 400 failed */
static int mcp_servers(struct tl_run *r, const json_t *v, buf_t *filter)
{
	const json_t *name;
	size_t i;

	if (!json_is_array(v))
		return bad_request(r, "mcp.servers", "invalid_type",
				   "'mcp.servers' must be an array of MCP server names, e.g. [\"sqlite\"]; got %s.",
				   json_kind(v));
	if (json_array_size(v) == 0)
		return bad_request(r, "mcp.servers", "empty_array",
				   "'mcp.servers' names no server; to offer no MCP tools, send \"mcp\": {\"tools\": false}.");
	json_array_foreach(v, i, name) {
		const char *s = json_string_value(name);

		if (!s || !*s || strchr(s, ','))
			return bad_request(r, "mcp.servers", "invalid_type",
					   "'mcp.servers' must be an array of MCP server names; item %zu is %s.", i,
					   !s    ? json_kind(name)
					   : !*s ? "an empty string"
						 : "not one name (it holds a comma)");
		if ((filter->len && buf_puts(filter, ",") < 0) || buf_puts(filter, s) < 0)
			return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	}
	return 0;
}

/* mcp_check: the request's "mcp" object checked like the rest of an OpenAI
 * request (its keys, their types; null counts as absent); its servers
 * joined by "," into filter. 0, or -1 with a 400 failed */
static int mcp_check(struct tl_run *r, const json_t *mcp, buf_t *filter)
{
	static const char *const keys[] = { "servers", "tools" };
	const char *k, *near;
	const json_t *v;

	if (!mcp || json_is_null(mcp))
		return 0;
	if (!json_is_object(mcp))
		return bad_request(r, "mcp", "invalid_type", "'mcp' must be an object; got %s. %s.", json_kind(mcp),
				   TL_MCP_SHAPE);
	json_object_foreach((json_t *)mcp, k, v) {
		char param[96];

		if (strcmp(k, "servers") == 0 || strcmp(k, "tools") == 0)
			continue;
		near = near_word(k, keys, sizeof keys / sizeof *keys);
		snprintf(param, sizeof param, "mcp.%.80s", k);
		return bad_request(r, param, "unknown_parameter", "Unrecognized parameter '%s'%s%s%s. %s.", param,
				   near ? " (did you mean 'mcp." : "", near ? near : "", near ? "'?)" : "", TL_MCP_SHAPE);
	}
	v = json_object_get(mcp, "tools");
	if (v && !json_is_null(v) && !json_is_boolean(v))
		return bad_request(r, "mcp.tools", "invalid_type",
				   "'mcp.tools' must be a boolean (false: offer no MCP tools); got %s.", json_kind(v));
	v = json_object_get(mcp, "servers");
	return v && !json_is_null(v) ? mcp_servers(r, v, filter) : 0;
}

/* restore_sessions: splice back the hidden rounds of earlier mixed batches */
static void restore_sessions(struct tl_run *r)
{
	json_t *sessions = NULL, *m, *stored;
	struct statestore *st = NULL;
	enum statestore_status s;
	size_t i, asked = 0;

	json_array_foreach(r->messages, i, m) {
		const char *id =
			json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));

		if (!id || !*id || json_object_get(sessions, id))
			continue;
		if (!st && !(st = tl_store(r)))
			return;
		if (!sessions && !(sessions = json_object()))
			return;
		s = statestore_get_json(st, TL_MIXED_NS, id, r->t->set->max_message_bytes, &stored, NULL);
		if (s == STATESTORE_OK)
			json_object_set_new(sessions, id, stored);
		else if (s != STATESTORE_NOTFOUND)
			log_warn("restoring the hidden tool calls of a mixed batch failed (%s%s%s)",
				 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
		if (++asked == TL_RESTORE_MAX)
			break;
	}
	if (json_object_size(sessions))
		log_debug("restored %d hidden tool rounds", toolloop_restore(r->messages, sessions));
	json_decref(sessions);
}

/* unavailable: the servers (of the filter) whose tools cannot be offered:
 * recorded in r->unavailable(_why) and logged. 0, or -1 when the client
 * named them: *code and *why say so for a 503 */
static int unavailable(struct tl_run *r, const char *servers, int named, int rc, const char **code, buf_t *why)
{
	struct toolloop *t = r->t;
	buf_t names = BUF_INIT;
	int n;

	if (rc != BC_OK) {
		*code = "broker_unavailable";
		n = buf_printf(why, "the tool broker at %s %s", t->set->socket_path,
			       rc == 1 ? "answered an error" : bc_strerror(rc)) < 0 ||
				    buf_puts(&names, "*") < 0
			    ? -1
			    : 1;
	} else {
		*code = "server_unavailable";
		n = mcptools_unready(&t->tools, servers, why, &names);
	}
	if (n > 0) {
		snprintf(r->unavailable, sizeof r->unavailable, "%s", names.data);
		snprintf(r->unavailable_why, sizeof r->unavailable_why, "%s", why->data);
		if (!named)
			log_warn("chat completion without the tools of MCP servers that are not ready: %s", why->data);
	}
	buf_free(&names);
	return n > 0 && named ? -1 : 0;
}

/* unknown_servers: a 400 when the filter names a server that is not
 * configured (from: where the client named it). 0, or -1 with it failed */
static int unknown_servers(struct tl_run *r, const char *servers, const char *from)
{
	buf_t unknown = BUF_INIT, known = BUF_INIT;
	int n = mcptools_unknown(&r->t->tools, servers, &unknown),
	    nk = n > 0 ? mcptools_configured(&r->t->tools, &known) : 0;
	int rc = 0;

	if (n < 0 || nk < 0)
		rc = fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	else if (n > 0)
		rc = bad_request(r, from, "server_not_found", "Unknown MCP server%s %.600s in %s; %s%.300s%s.",
				 n == 1 ? "" : "s", unknown.data,
				 strcmp(from, "mcp.servers") == 0 ? "\"mcp\": {\"servers\": [...]}" : from,
				 nk ? "the configured servers are: " : "no MCP server is configured (servers_config.json)",
				 nk ? known.data : "", nk && known.len > 300 ? ", ..." : "");
	buf_free(&unknown);
	buf_free(&known);
	return rc;
}

/* catalog_read: the catalog was refreshed (rc: what mcptools_refresh
 * returned): a server the client named that is not configured is the
 * client's mistake, whatever the servers' states: a 400 at once. 0, or -1
 * when the run failed */
static int catalog_read(struct tl_run *r, int rc)
{
	if (rc == BC_OK && r->named && unknown_servers(r, r->only, r->named) < 0)
		return -1;
	return 0;
}

/* inject: the catalog is as ready as it gets (rc: what mcptools_wait
 * returned): add the MCP tools to the request's own. 0, or -1 with a 503
 * failed when a server the client named is not ready */
static int inject(struct tl_run *r, int rc)
{
	json_t *tools = json_object_get(r->req, "tools"), *mine, *t;
	size_t i;
	const char *code = NULL;
	buf_t why = BUF_INIT, msg = BUF_INIT;

	if (unavailable(r, r->only, r->named != NULL, rc, &code, &why) < 0) {
		json_t *err = buf_printf(&msg,
					 "The MCP tools asked for cannot be offered: %s. Retry later, or leave the "
					 "server out of \"mcp\": {\"servers\": [...]} (X-MCPGW-Servers).",
					 why.data) == 0
				      ? tl_error(msg.data, "server_error", "mcp", code)
				      : NULL;

		buf_free(&why);
		buf_free(&msg);
		return fail(r, err ? 503 : 500, err ? err : tl_error("Out of memory.", "server_error", NULL, NULL));
	}
	buf_free(&why);
	mine = mcptools_openai(&r->t->tools, r->only, r->client_tools, r->t->policy);
	json_array_foreach(mine, i, t)
		json_object_set_new(r->offered,
				    json_string_value(json_object_get(json_object_get(t, "function"), "name")),
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

/* prepared: the request is complete: earlier mixed batches' hidden rounds
 * restored (the session store needs the broker), then the first round */
static void prepared(struct tl_run *r)
{
	if (r->t->bc)
		restore_sessions(r);
	r->state = TL_UPSTREAM;
}

/* prepare: our copy of the request, checked; whether MCP tools are to be
 * offered (the catalog is read next) or not. 0, or -1 when the run failed */
static int prepare(struct tl_run *r, const json_t *body, const char *servers)
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
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	r->messages = json_object_get(r->req, "messages");
	if (!json_is_array(r->messages) || json_array_size(r->messages) == 0)
		return fail(r, 400,
			    tl_error("'messages' must be a non-empty array.", "invalid_request_error", "messages",
				     json_is_array(r->messages) ? "empty_array" : "invalid_type"));
	model = json_object_get(r->req, "model");
	if (!model || json_is_null(model))
		json_object_set_new(r->req, "model", json_string(s->default_model));
	else if (!json_is_string(model))
		return fail(r, 400,
			    tl_error("'model' must be a string.", "invalid_request_error", "model", "invalid_type"));
	if ((alias = settings_model_alias(s, json_string_value(json_object_get(r->req, "model")))))
		json_object_set_new(r->req, "model", json_string(alias));
	snprintf(r->model, sizeof r->model, "%s", json_string_value(json_object_get(r->req, "model")));
	r->stream = json_is_true(json_object_get(r->req, "stream"));
	r->choice_none = json_is_string(json_object_get(r->req, "tool_choice")) &&
			 strcmp(json_string_value(json_object_get(r->req, "tool_choice")), "none") == 0;
	r->one_by_one = json_is_false(json_object_get(r->req, "parallel_tool_calls"));
	r->include_usage =
		r->stream && json_is_true(json_object_get(json_object_get(r->req, "stream_options"), "include_usage"));
	mcp = json_object_get(r->req, "mcp");
	if (mcp_check(r, mcp, &filter) < 0) {
		buf_free(&filter);
		return -1;
	}
	if (servers && *servers && !servers[strspn(servers, " ,")]) {
		buf_free(&filter);
		return bad_request(r, TOOLLOOP_SERVERS_HEADER, "empty_array",
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

		r->named = servers && *servers ? TOOLLOOP_SERVERS_HEADER : only ? "mcp.servers" : NULL;
		if (only && !(r->only = strdup(only))) {
			buf_free(&filter);
			return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
		}
		r->state = TL_CATALOG;
	} else {
		prepared(r);
	}
	json_object_del(r->req, "mcp");
	buf_free(&filter);
	return 0;
}

static void run_free(struct tl_run *r)
{
	round_reset(r);
	buf_free(&r->content);
	buf_free(&r->refusal);
	json_decref(r->req);
	json_decref(r->hidden);
	json_decref(r->client_tools);
	json_decref(r->offered);
	json_decref(r->usage);
	json_decref(r->fingerprint);
	json_decref(r->mid_error);
	json_decref(r->last);
	json_decref(r->image_msgs);
	free(r->calls);
	free(r->need_calls);
	free(r->only);
	free(r->body);
	sse_free(&r->sse);
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

/* ---- the run driven step by step ---- */

struct tl_run *toolloop_open(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink)
{
	struct tl_run *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->t = t;
	r->sink = *sink;
	r->created = (json_int_t)time(NULL);
	sse_init(&r->sse, t->set->max_response_bytes, sse_event, r);
	if (randid_new(r->id, sizeof r->id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS) < 0) {
		log_error("cannot make a completion id: getrandom: %s", strerror(errno));
		(void)fail(r, 500, tl_error("The gateway has no source of random ids.", "server_error", NULL, NULL));
	} else if (prepare(r, body, servers) == 0) {
		return r;
	}
	r->state = TL_ENDED;
	return r;
}

/* round_done: a round's answer is complete: the run answers, or its MCP calls are next */
static void round_done(struct tl_run *r)
{
	const struct settings *s = r->t->set;
	const char *finish;
	int dropped = count_mcp(r) > 0 && (r->choice_none || r->rounds == s->max_tool_rounds), limited;

	r->state = TL_ENDED;
	if (count_mcp(r) == 0 || dropped) {
		/* past MCPGW_MAX_TOOL_ROUNDS: what the model said, MCP calls dropped, finish "length";
		 * under tool_choice "none" the client said no tool runs: the same, finish "stop" */
		limited = dropped && !r->choice_none;
		if (limited)
			log_warn("MCPGW_MAX_TOOL_ROUNDS (%d) reached; answering without running more tools",
				 s->max_tool_rounds);
		else if (dropped)
			log_warn("the upstream called MCP tools although the request's tool_choice is \"none\"; "
				 "answering without running them");
		finish = r->nclient ? "tool_calls"
			 : limited  ? "length"
			 : dropped  ? "stop"
				    : (*r->finish ? r->finish : "stop");
		if (r->stream)
			(void)finish_stream(r, finish, 0);
		else
			(void)finish_plain(r, r->last, dropped || r->nclient ? finish : NULL, dropped, 0);
		return;
	}
	r->rounds++;
	r->next_call = 0;
	history_add(r, assistant_of(r, r->last));
	r->state = TL_TOOLS;
}

/* tools_all_done: every MCP result of the round came: the next round, or
 * (a mixed batch: the client runs its own, we keep ours) the answer */
static void tools_all_done(struct tl_run *r)
{
	tools_done(r);
	if (!r->nclient) {
		r->state = TL_UPSTREAM;
		return;
	}
	r->state = TL_ENDED;
	if (r->t->bc)
		save_session(r);
	if (r->stream)
		(void)finish_stream(r, "tool_calls", 1);
	else
		(void)finish_plain(r, r->last, "tool_calls", 1, 1);
}

/* batch_done: every result of the batch handed out came: the round's next
 * calls (parallel_tool_calls false), or the round is done */
static void batch_done(struct tl_run *r)
{
	for (int i = r->next_call; i < r->ncalls; i++) {
		if (r->calls[i].server) {
			r->state = TL_TOOLS;
			return;
		}
	}
	tools_all_done(r);
}

/* tools_bad_arguments: the calls of the batch whose arguments are no JSON
 * object end at once, unasked (the model is told so) */
static void tools_bad_arguments(struct tl_run *r)
{
	for (int i = 0; i < r->ncalls && r->state == TL_TOOLS_WAIT; i++) {
		struct tl_call *c = &r->calls[i];
		json_t *error;
		char denied[TOOLPOLICY_MAX];

		if (!c->server || c->argv || c->ended || i >= r->next_call)
			continue;
		snprintf(denied, sizeof denied, TOOLPOLICY_DENIED, c->name);
		error = json_pack("{s:s}", "message",
				  c->denied ? denied : "the arguments the model sent are not a JSON object");
		(void)tool_end(r, c, NULL, error);
		json_decref(error);
		if (r->gone)
			r->state = TL_ENDED;
		else if (r->pending == 0)
			batch_done(r);
	}
}

enum toolloop_need_kind toolloop_step(struct tl_run *r, struct toolloop_need *need)
{
	memset(need, 0, sizeof *need);
	if (r->gone)
		r->state = TL_ENDED;
	switch (r->state) {
	case TL_CATALOG:
	case TL_READY:
		need->wait_ms = r->state == TL_READY ? r->t->set->startup_wait_ms : 0;
		r->state = r->state == TL_READY ? TL_READY_WAIT : TL_CATALOG_WAIT;
		return need->kind = TOOLLOOP_NEED_CATALOG;
	case TL_UPSTREAM:
		if (upstream_hand_out(r, need) < 0)
			break;
		r->state = TL_UPSTREAM_WAIT;
		return need->kind = TOOLLOOP_NEED_UPSTREAM;
	case TL_TOOLS:
		if (tools_hand_out(r, need) < 0)
			break;
		r->state = TL_TOOLS_WAIT;
		tools_bad_arguments(r);
		if (r->state != TL_TOOLS_WAIT || need->ncalls == 0)
			return toolloop_step(r, need);
		return need->kind = TOOLLOOP_NEED_TOOLS;
	case TL_CATALOG_WAIT:
	case TL_READY_WAIT:
	case TL_UPSTREAM_WAIT:
	case TL_TOOLS_WAIT: return need->kind = TOOLLOOP_NEED_WAIT;
	case TL_ENDED: break;
	}
	r->state = TL_ENDED;
	return need->kind = TOOLLOOP_NEED_NOTHING;
}

int toolloop_feed_catalog(struct tl_run *r, int rc)
{
	if (r->state == TL_CATALOG_WAIT) {
		if (catalog_read(r, rc) < 0)
			r->state = TL_ENDED;
		else if (rc == BC_OK)
			r->state = TL_READY;
		else if (inject(r, rc) < 0)
			r->state = TL_ENDED;
		else
			prepared(r);
		return r->state == TL_ENDED ? -1 : 0;
	}
	if (r->state != TL_READY_WAIT)
		return -1;
	if (inject(r, rc) < 0) {
		r->state = TL_ENDED;
		return -1;
	}
	prepared(r);
	return 0;
}

int toolloop_feed_upstream(struct tl_run *r, const void *bytes, size_t n)
{
	int rc;

	if (r->state != TL_UPSTREAM_WAIT || !r->stream)
		return -1;
	rc = sse_feed(&r->sse, bytes, n);
	if (rc == SSE_OK)
		return 0;
	r->state = TL_ENDED;
	if (rc == SSE_ETOOBIG || rc == SSE_ENOMEM)
		return fail(r, 502,
			    tl_error(rc == SSE_ETOOBIG ? "An event of the upstream's stream is larger than "
							 "MCPGW_MAX_RESPONSE_BYTES."
						       : "Out of memory.",
				     "server_error", NULL, rc == SSE_ETOOBIG ? "upstream_response_too_large" : NULL));
	return upstream_stopped(r);
}

int toolloop_feed_upstream_event(struct tl_run *r, const char *data, size_t len)
{
	if (r->state != TL_UPSTREAM_WAIT || !r->stream)
		return -1;
	if (on_event(data, len, r) == 0)
		return 0;
	r->state = TL_ENDED;
	return upstream_stopped(r);
}

int toolloop_feed_upstream_end(struct tl_run *r, struct upstream_result *res)
{
	if (r->state != TL_UPSTREAM_WAIT)
		return -1;
	r->state = TL_ENDED;
	if (images_refused(r, res))
		return 0;
	if (res->err != UPSTREAM_OK)
		return upstream_fail(r, res);
	if (r->images_retry == 1) { /* asked again without images, and answered: remember the model */
		modelcaps_set_no_images(json_string_value(json_object_get(r->req, "model")));
		r->images_retry = 2;
	}
	if (r->stream && !r->done)
		return fail(r, 502,
			    tl_error("The upstream's stream ended without data: [DONE].", "server_error", NULL,
				     "upstream_truncated"));
	if (!r->stream && plain_answer(r, res) < 0)
		return -1;
	round_done(r);
	return r->state == TL_ENDED && r->gone ? -1 : 0;
}

int toolloop_feed_tool_result(struct tl_run *r, const char *id, const json_t *result, const json_t *error)
{
	struct tl_call *c = NULL;

	if (r->state != TL_TOOLS_WAIT)
		return -1;
	for (int i = 0; i < r->ncalls && !c; i++)
		if (r->calls[i].server && r->calls[i].argv && !r->calls[i].ended && strcmp(r->calls[i].id, id) == 0)
			c = &r->calls[i];
	if (!c)
		return -1;
	if (tool_end(r, c, result, error) < 0) {
		r->state = TL_ENDED;
		return -1;
	}
	if (r->pending == 0)
		batch_done(r);
	return 0;
}

int toolloop_tick(struct tl_run *r)
{
	struct toolloop_event ev = { .kind = TOOLLOOP_TOOL_WAIT };

	if (r->state != TL_TOOLS_WAIT || r->pending == 0)
		return -1;
	return send(r, &ev);
}

const json_t *toolloop_added(const struct tl_run *r)
{
	return r->hidden;
}

int toolloop_stopped(const struct tl_run *r)
{
	return r->gone;
}

const char *toolloop_unavailable(const struct tl_run *r, const char **why)
{
	if (why)
		*why = r->unavailable_why;
	return r->unavailable;
}

void toolloop_close(struct tl_run *r)
{
	if (!r)
		return;
	run_free(r);
	free(r);
}

/* ---- the blocking driver ---- */

/* drive_event: the upstream client's SSE events into the run */
static int drive_event(const char *data, size_t len, void *ud)
{
	return toolloop_feed_upstream_event(ud, data, len) < 0 ? 1 : 0;
}

/* drive_upstream: the round asked with lib/openai/upstream, its answer fed */
static void drive_upstream(struct toolloop *t, struct tl_run *r, const struct toolloop_need *need,
			   struct upstream_result *res)
{
	if (need->stream)
		upstream_stream(t->up, need->path, need->body, need->body_len, drive_event, r, res);
	else
		upstream_request(t->up, "POST", need->path, need->body, need->body_len, res);
	(void)toolloop_feed_upstream_end(r, res);
}

/* drive_wait: wait for call id's result (up to timeout_ms), ticking the
 * run whenever nothing went to the sink for MCPGW_STREAM_KEEPALIVE (*quiet:
 * when something last did, updated); BC_OK with *result / *error, or a
 * bc_status. A client that went away ends the wait early (BC_ETIMEOUT). */
static int drive_wait(struct toolloop *t, struct tl_run *r, long id, long timeout_ms, int64_t *quiet, json_t **result,
		      json_t **error)
{
	int64_t deadline = clock_now_ms() + timeout_ms;
	long period = t->set->stream_keepalive_ms;

	while (!toolloop_stopped(r)) {
		int64_t now = clock_now_ms(),
			until = period > 0 && *quiet + period < deadline ? *quiet + period : deadline;
		int rc = bc_poll(t->bc, id, until > now ? (long)(until - now) : 0);

		if (rc != 0 || clock_now_ms() >= deadline)
			break;
		if (period > 0 && clock_now_ms() >= *quiet + period) {
			*quiet = clock_now_ms();
			(void)toolloop_tick(r); /* the loop ends when the client is gone */
		}
	}
	return bc_wait(t->bc, id, 0, result, error); /* collected, or abandoned when it has not come */
}

/* drive_tools: the batch sent through the broker all at once, each result
 * fed as it is waited for (in call order); while they run, TOOL_WAIT ticks
 * keep a stream alive */
static void drive_tools(struct toolloop *t, struct tl_run *r, const struct toolloop_need *need)
{
	long ids[TL_MAX_CALLS];
	int64_t quiet = clock_now_ms(); /* TOOL_START just went out */

	for (int i = 0; i < need->ncalls; i++)
		ids[i] = bc_send(t->bc, "tools/call",
				 json_pack("{s:s, s:O}", "name", need->calls[i].name, "arguments",
					   need->calls[i].arguments));
	for (int i = 0; i < need->ncalls; i++) {
		json_t *result = NULL, *error = NULL;
		int rc = ids[i] < 0 ? (int)ids[i] : drive_wait(t, r, ids[i], need->timeout_ms, &quiet, &result, &error);

		if (rc != BC_OK) {
			json_decref(result);
			json_decref(error);
			result = NULL;
			error = json_pack("{s:s+}", "message", "the tool broker failed: ", bc_strerror(rc));
		}
		(void)toolloop_feed_tool_result(r, need->calls[i].id, result, error);
		quiet = clock_now_ms(); /* TOOL_END went out */
		json_decref(result);
		json_decref(error);
	}
}

int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **added)
{
	struct tl_run *r;
	struct toolloop_need need;
	struct upstream_result res;
	const char *why;
	int rc;

	if (added)
		*added = NULL;
	t->unavailable[0] = t->unavailable_why[0] = '\0';
	if (!(r = toolloop_open(t, body, servers, sink))) {
		json_t *err = tl_error("Out of memory.", "server_error", NULL, NULL);
		struct toolloop_event ev = { .kind = TOOLLOOP_ERROR,
					     .status = 500,
					     .error = err,
					     .stream = json_is_true(json_object_get(body, "stream")),
					     .unavailable = "",
					     .unavailable_why = "" };

		rc = err && sink->event(sink->ud, &ev) ? -1 : 0;
		json_decref(err);
		return rc;
	}
	upstream_result_init(&res);
	for (int more = 1; more;) {
		switch (toolloop_step(r, &need)) {
		case TOOLLOOP_NEED_CATALOG:
			(void)toolloop_feed_catalog(r, mcptools_wait(&t->tools, t->bc, t->set->broker_timeout_ms,
								     need.wait_ms));
			break;
		case TOOLLOOP_NEED_UPSTREAM: drive_upstream(t, r, &need, &res); break;
		case TOOLLOOP_NEED_TOOLS: drive_tools(t, r, &need); break;
		case TOOLLOOP_NEED_WAIT: /* never here: each need is fed in full before the next step */
		case TOOLLOOP_NEED_NOTHING: more = 0; break;
		}
	}
	snprintf(t->unavailable, sizeof t->unavailable, "%s", toolloop_unavailable(r, &why));
	snprintf(t->unavailable_why, sizeof t->unavailable_why, "%s", why);
	if (added)
		*added = toolloop_added(r) ? json_incref((json_t *)toolloop_added(r)) : json_array();
	rc = toolloop_stopped(r) ? -1 : 0;
	upstream_result_free(&res);
	toolloop_close(r);
	return rc;
}
