/* toolloop.c: a chat completion whose MCP tool calls mcpgw runs itself, round after round, streamed or not. */
#include "openai/toolloop.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/randid.h"
#include "core/redact.h"
#include "core/sha256.h"
#include "core/near.h"
#include "core/sse.h"
#include "openai/modelcaps.h"
#include "openai/toolcalls.h"
#include "openai/toolresult.h"
#include "openai/wire.h"

#define TL_MAX_CALLS 128 /* tool calls of one round */
#define TL_FIRST_CALLS 8 /* the first allocation of a round's calls (doubled as more come) */

#define TL_ROUND_BYTES_DEFAULT 8388608 /* MCPGW_MAX_ROUND_BYTES when the settings hold 0 (its default) */

#define TL_TEXTS 8 /* text members of a streamed message joined in buffers (content, refusal, reasoning_content, ...) */

/* one tool call of a round: the run's state beside the call assembled in r->calls_in (lib/openai/toolcalls) */
struct tl_call {
	/* borrowed views of the assembled call, set once the round's answer is complete (calls_sync final) */
	const char *id, *name;
	buf_t args;         /* a copy of the assembler's buffer header: never freed or grown here */
	const char *server; /* NULL: the client's own tool */
	int denied;         /* an MCP tool the caller's policy does not allow: answered with an error, not run */
	int client_index;   /* its index in what the client sees */
	char visible[48]; /* the client's own call: the id the client sees, minted here (see mint_visible); "": the upstream's */
	int classified; /* server and client_index are set (the call has its name, or the answer is complete) */
	int announced;  /* streamed: the client saw its first delta (id, name) */
	size_t sent;    /* streamed: bytes of its arguments the client saw */
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
	buf_t mcp_tools; /* those tools as OpenAI chat tools, compact JSON texts joined by ',': spliced after the
			  * request's own "tools" in every round's body (body_of), never built as JSON per request */
	/* the mixed-batch history (see "history" below) */
	char *key_id;           /* the caller's API key id (a copy of t->key_id), NULL: anonymous */
	char convo[SHA256_HEX]; /* digest of the messages as the client sent them (convo_ready) */
	int convo_state;        /* convo: 0 not made yet (the first n_sent messages are as sent), 1 made, -1 lost */
	size_t n_sent;          /* the number of messages the client sent */
	json_t *taken;          /* [[store key, entry], ...] taken on restore: put back unless the upstream answers */
	json_t *usage;          /* summed over rounds, NULL until one is seen */
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
	int text_sent;       /* TL_SEP_* of the text members the client got in the rounds before this one */
	int text_sent_round; /* TL_SEP_* of those it got in this round so far */
	/* the round in progress */
	struct toolcalls calls_in; /* the round's tool calls as the upstream sent them, assembled */
	struct tl_call *calls;     /* ccap slots (grown as calls come, up to TL_MAX_CALLS; zeroed past ncalls) */
	int ncalls, ccap, nclient;
	/* a streamed round's message as its deltas built it: text members joined (texts), the others merged (acc) */
	struct {
		char key[32];
		buf_t b;
	} texts[TL_TEXTS];
	int ntexts;
	json_t *acc;
	json_t *round_usage;      /* this round's usage: the largest of each number the answer sent */
	int round_usage_borrowed; /* round_usage is the answer's own object (usage_own before changing it) */
	int usage_borrowed;       /* usage likewise (the first round's, taken over) */
	const char *origin;       /* the upstream's chat URL without credentials, for log lines (the toolloop's) */
	char finish[32];
	char model[256];
	json_t *fingerprint;
	int done;            /* [DONE] seen */
	json_t *mid_error;   /* an error object the upstream sent inside the stream */
	size_t round_bytes;  /* bytes the round's deltas brought to its message (delta_bytes), MCPGW_MAX_ROUND_BYTES */
	json_t *nomem_error; /* made when the run opens: the ERROR event's object when nothing more can be made */
	int nomem; /* out of memory lost part of the run (a message, a round's usage): it fails, never goes on without it */
};

static void round_reset(struct tl_run *r)
{
	for (int i = 0; i < r->ncalls; i++) {
		json_decref(r->calls[i].argv);
		free(r->calls[i].text);
		json_decref(r->calls[i].result);
	}
	if (r->ccap)
		memset(r->calls, 0, (size_t)r->ccap * sizeof *r->calls);
	r->ncalls = r->nclient = 0;
	r->text_sent |= r->text_sent_round;
	r->text_sent_round = 0;
	toolcalls_reset(&r->calls_in);
	for (int i = 0; i < r->ntexts; i++)
		buf_reset(&r->texts[i].b);
	r->ntexts = 0;
	json_decref(r->acc);
	r->acc = NULL;
	json_decref(r->round_usage);
	r->round_usage = NULL;
	r->round_usage_borrowed = 0;
	r->finish[0] = '\0';
	r->done = 0;
	json_decref(r->mid_error);
	r->mid_error = NULL;
	r->round_bytes = 0;
}

int toolloop_usage_add(json_t *sum, const json_t *usage)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)usage, k, v) {
		json_t *have = json_object_get(sum, k);
		int rc = 0;

		if (json_is_integer(v) && !json_is_real(have)) {
			rc = json_object_set_new(sum, k, json_integer(json_integer_value(v) + json_integer_value(have)));
		} else if (json_is_number(v)) { /* seconds (Groq's x_groq.usage.total_time, ...) */
			rc = json_object_set_new(sum, k, json_real(json_number_value(v) + json_number_value(have)));
		} else if (json_is_object(v)) {
			if (!json_is_object(have) && json_object_set_new(sum, k, have = json_object()) < 0)
				return -1;
			rc = toolloop_usage_add(have, v);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int usage_max(json_t *m, const json_t *u);

/* usage_own: *u (an object another holds too, *borrowed set) replaced by
 * a copy of its numbers and objects, ours to change. 0, or -1 out of memory
 * (*u left as it was) */
static int usage_own(json_t **u, int *borrowed)
{
	json_t *m;

	if (!*borrowed)
		return 0;
	if (!(m = json_object()))
		return -1;
	if (usage_max(m, *u) < 0) {
		json_decref(m);
		return -1;
	}
	json_decref(*u);
	*u = m;
	*borrowed = 0;
	return 0;
}

/* add_usage: usage added to the run's (r->nomem when it cannot be: never a sum that lacks a round) */
static void add_usage(struct tl_run *r, const json_t *usage)
{
	if (!json_is_object(usage))
		return;
	if (usage_own(&r->usage, &r->usage_borrowed) < 0 || (!r->usage && !(r->usage = json_object())) ||
	    toolloop_usage_add(r->usage, usage) < 0)
		r->nomem = 1;
}

/* usage_max: u's numbers into m, each the larger of the two (nested objects
 * likewise). Providers report one answer's usage in every way there is:
 * once in a trailing chunk (OpenAI's stream_options.include_usage), with
 * the last choice chunk (Mistral, DeepSeek), cumulatively in every chunk
 * (vLLM's continuous_usage_stats), repeated, or in x_groq.usage (Groq,
 * https://console.groq.com/docs/openai); counts only grow within an
 * answer, so the largest of each is the answer's own, never counted twice. */
static int usage_max(json_t *m, const json_t *u)
{
	const char *k;
	json_t *v, *have;

	json_object_foreach((json_t *)u, k, v) {
		have = json_object_get(m, k);
		if (json_is_number(v) && (!json_is_number(have) || json_number_value(v) > json_number_value(have))) {
			if (json_object_set(m, k, v) < 0)
				return -1;
		} else if (json_is_object(v) && !json_is_object(have)) {
			if (json_object_set_new(m, k, json_object()) < 0 || usage_max(json_object_get(m, k), v) < 0)
				return -1;
		} else if (json_is_object(v) && json_is_object(have) && usage_max(have, v) < 0) {
			return -1;
		}
	}
	return 0;
}

/* note_usage: the usage an answer or a chunk carries (usage, x_groq.usage)
 * into the round's. The first is held as it is (most answers carry one:
 * no copy); a second makes it a copy of its own (usage_own) first. */
static void note_usage(struct tl_run *r, const json_t *obj)
{
	json_t *u[] = { json_object_get(obj, "usage"), json_object_get(json_object_get(obj, "x_groq"), "usage") };

	for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
		if (!json_is_object(u[i]) || json_object_size(u[i]) == 0)
			continue;
		if (!r->round_usage) {
			r->round_usage = json_incref(u[i]);
			r->round_usage_borrowed = 1;
			continue;
		}
		if (usage_own(&r->round_usage, &r->round_usage_borrowed) < 0 || usage_max(r->round_usage, u[i]) < 0) {
			r->nomem = 1;
			return;
		}
	}
}

/* round_usage_done: the round's usage added to the run's (total_tokens
 * made up when the upstream gave prompt and completion tokens only) */
static void round_usage_done(struct tl_run *r)
{
	json_t *u = r->round_usage, *p = json_object_get(u, "prompt_tokens"),
	       *c = json_object_get(u, "completion_tokens");

	if (!u)
		return;
	if (!json_object_get(u, "total_tokens") && json_is_integer(p) && json_is_integer(c)) {
		json_int_t total = json_integer_value(p) + json_integer_value(c);

		if (usage_own(&r->round_usage, &r->round_usage_borrowed) < 0 ||
		    json_object_set_new(r->round_usage, "total_tokens", json_integer(total)) < 0)
			r->nomem = 1;
		u = r->round_usage;
	}
	r->round_usage = NULL;
	if (!r->usage) { /* the first round's is the sum so far: taken over, no copy */
		r->usage = u;
		r->usage_borrowed = r->round_usage_borrowed;
		r->round_usage_borrowed = 0;
		return;
	}
	r->round_usage_borrowed = 0;
	add_usage(r, u);
	json_decref(u);
}

/* restore_ids: the tool messages at or after from whose tool_call_id is a key of ids get the upstream's id back */
static int restore_ids(json_t *messages, size_t from, const json_t *ids)
{
	for (size_t i = from; i < json_array_size(messages); i++) {
		json_t *m = json_array_get(messages, i);
		const char *up = json_string_value(
			json_object_get(ids, json_string_value(json_object_get(m, "tool_call_id")) ?: ""));

		if (up && json_object_set_new(m, "tool_call_id", json_string(up)) < 0)
			return -1; /* m is an object (it had a tool_call_id): out of memory */
	}
	return 0;
}

int toolloop_restore(json_t *messages, const json_t *sessions)
{
	json_t *used = json_object();
	int restored = 0;

	if (!used)
		return -1;
	for (size_t i = 0; i < json_array_size(messages); i++) {
		json_t *m = json_array_get(messages, i), *tc, *s;
		const char *key =
			json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));
		const json_t *entry = key ? json_object_get(sessions, key) : NULL;
		const json_t *hidden = json_object_get(entry, "hidden"), *ids = json_object_get(entry, "ids");
		size_t j;

		if (!json_is_object(entry) || !json_is_array(hidden) || !json_is_object(ids) ||
		    json_object_get(used, key) ||
		    strcmp(json_string_value(json_object_get(m, "role")) ?: "", "assistant") != 0)
			continue;
		/* each entry once: the message it was looked up for */
		if (json_object_set_new(used, key, json_true()) < 0)
			goto nomem;
		if (json_array_size(hidden) == 0) {
			/* no hidden round (the client's calls only): its calls get the upstream's ids back */
			json_array_foreach(json_object_get(m, "tool_calls"), j, tc) {
				const char *up = json_string_value(
					json_object_get(ids, json_string_value(json_object_get(tc, "id")) ?: ""));

				if (up && json_is_object(tc) && json_object_set_new(tc, "id", json_string(up)) < 0)
					goto nomem;
				if (up && !json_is_object(tc))
					log_warn("a tool call's id cannot be restored");
			}
			if (restore_ids(messages, i + 1, ids) < 0)
				goto nomem;
			restored++;
			continue;
		}
		/* the hidden messages go in before the message they replace: a failed insert leaves no gap */
		json_array_foreach(hidden, j, s)
			if (json_array_insert(messages, i + j, (json_t *)s) < 0)
				goto nomem;
		json_array_remove(messages, i + json_array_size(hidden));
		i += json_array_size(hidden) - 1;
		if (restore_ids(messages, i + 1, ids) < 0)
			goto nomem;
		restored++;
	}
	json_decref(used);
	return restored;
nomem:
	json_decref(used);
	return -1;
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

/* envelope_key: a member of a chunk the gateway sets itself (the others, provider extras, go on to the client) */
static int envelope_key(const char *k)
{
	static const char *const keys[] = { "id", "object", "created", "model", "system_fingerprint", "usage", "choices" };

	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

/* chunk_has_extras: a chunk without choices still worth passing on: it
 * carries provider data (Azure's prompt_filter_results, ...) beyond the
 * envelope and what every chunk repeats */
static int chunk_has_extras(const json_t *chunk)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)chunk, k, v)
		if (!envelope_key(k) && !json_is_null(v) && strcmp(k, "obfuscation") != 0 &&
		    strcmp(k, "service_tier") != 0 && strcmp(k, "x_groq") != 0)
			return 1;
	return 0;
}

/* emit_choices: one chunk for the client with choices (stolen) and the
 * provider extras of the upstream chunk src (NULL: none), under the run's
 * id, created and model; the role goes into choice 0's first delta. 0, or
 * -1 when the client is gone */
static int emit_choices(struct tl_run *r, const json_t *src, json_t *choices)
{
	json_t *c = json_object(), *c0 = NULL, *delta, *v, *x;
	const char *k;
	size_t i;

	if (!c || !choices) { /* out of memory (r->nomem): the caller fails the run */
		json_decref(c);
		json_decref(choices);
		r->nomem = 1;
		return -1;
	}
	json_object_foreach((json_t *)src, k, v)
		if (!envelope_key(k) && json_object_set(c, k, v) < 0)
			r->nomem = 1;
	if (json_object_get(json_object_get(c, "x_groq"), "usage")) {
		/* the client gets the run's usage, summed over rounds, in the usage chunk */
		if ((x = json_deep_copy(json_object_get(c, "x_groq"))))
			json_object_del(x, "usage");
		if (!x || json_object_set_new(c, "x_groq", x) < 0)
			r->nomem = 1;
	}
	json_array_foreach(choices, i, v)
		if (!c0 && json_integer_value(json_object_get(v, "index")) == 0)
			c0 = v;
	delta = json_object_get(c0, "delta");
	if (c0) {
		if (!r->role_sent && json_is_object(delta) && !json_object_get(delta, "role") &&
		    json_object_set_new(delta, "role", json_string("assistant")) < 0)
			r->nomem = 1;
		r->role_sent = 1;
	}
	if (json_object_set_new(c, "choices", choices) < 0 || /* first: stolen, also on failure */
	    json_object_set_new(c, "id", json_string(r->id)) < 0 ||
	    json_object_set_new(c, "object", json_string("chat.completion.chunk")) < 0 ||
	    json_object_set_new(c, "created", json_integer(r->created)) < 0 ||
	    json_object_set_new(c, "model", json_string(r->model)) < 0 ||
	    (r->fingerprint && json_object_set(c, "system_fingerprint", r->fingerprint) < 0) ||
	    (r->include_usage && json_object_set_new(c, "usage", json_null()) < 0))
		r->nomem = 1;
	if (!r->include_usage)
		json_object_del(c, "usage");
	if (r->nomem) { /* never a chunk missing part of itself */
		json_decref(c);
		return -1;
	}
	return send_chunk(r, c, json_object_get(delta, "content"), json_object_get(delta, "refusal"));
}

/* emit: one chunk of choice 0 (delta stolen; NULL: {}) for the client; 0, or -1 when it is gone */
static int emit(struct tl_run *r, json_t *delta, const char *finish)
{
	return emit_choices(r, NULL,
			    json_pack("[{s:i, s:o, s:n, s:s?}]", "index", 0, "delta", delta ? delta : json_object(),
				      "logprobs", "finish_reason", finish));
}

/* calls_grow: room for n calls (a run without tool calls allocates none); 0, or -1 past
 * TL_MAX_CALLS or out of memory */
static int calls_grow(struct tl_run *r, int n)
{
	int cap = r->ccap ? r->ccap : TL_FIRST_CALLS;
	struct tl_call *calls;
	struct toolloop_tool_call *need;

	while (cap < n)
		cap *= 2;
	if (cap > TL_MAX_CALLS)
		cap = TL_MAX_CALLS;
	if (n > cap)
		return -1;
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

/* calls_sync: the run's state for every call assembled so far (grown with
 * them), each call classified once its name is known: an MCP tool offered
 * in this request runs here; an MCP tool the caller's key may not use (the
 * policy kept it from the offer) gets an error result (denied); any other
 * name is the client's. final: the answer is complete: every call is
 * classified, and the views id, name, args are set. 0, or -1 out of memory */
static int calls_sync(struct tl_run *r, int final)
{
	const struct toolcalls *in = &r->calls_in;

	if (in->n > r->ccap && calls_grow(r, in->n) < 0)
		return -1;
	r->ncalls = in->n;
	for (int i = 0; i < in->n; i++) {
		struct tl_call *c = &r->calls[i];
		const struct toolcall *t = &in->calls[i];

		if (final) {
			c->id = t->id;
			c->name = t->name;
			c->args = t->args;
		}
		if (c->classified || (!*t->name && !final))
			continue;
		if (!*t->name)
			log_warn("upstream %s: tool call %s has no function name; passed to the client as it is",
				 r->origin, t->id);
		c->classified = 1;
		c->server = json_object_get(r->offered, t->name) ? mcptools_server(&r->t->tools, t->name) : NULL;
		if (!c->server && r->t->policy && !client_tool(r, t->name) &&
		    (c->server = mcptools_server(&r->t->tools, t->name)) != NULL)
			c->denied = 1;
		c->client_index = c->server ? -1 : r->nclient++;
	}
	return 0;
}

/* mint_visible: the id the client sees for its own call i, minted once:
 * "call_" and 24 characters of [A-Za-z0-9] (142 bits from getrandom, lib/core/randid),
 * unguessable by any other client: the key of the run's mixed-batch history
 * (see "history" below). 0, or -1 (logged) when there are no random bytes */
static int mint_visible(struct tl_run *r, int i)
{
	struct tl_call *c = &r->calls[i];

	if (c->visible[0])
		return 0;
	if (randid_new(c->visible, sizeof c->visible, RANDID_CALL_PREFIX, RANDID_CALL_CHARS) == 0)
		return 0;
	log_error("cannot make a tool call id: getrandom: %s", strerror(errno));
	c->visible[0] = '\0';
	return -1;
}

/* client_delta: what the client sees next of call i when it is one of the
 * client's own: its first delta (id, type, name, the arguments so far, its
 * extras) once its name is known, then each new fragment with the
 * upstream delta's other members (d, may be NULL), in OpenAI's shape and
 * renumbered among the client's calls; appended to out. 0, or -1 out of memory */
static int client_delta(struct tl_run *r, int i, const json_t *d, json_t *out)
{
	struct tl_call *c = &r->calls[i];
	const struct toolcall *t = &r->calls_in.calls[i];
	json_t *o, *fn;

	if (!c->classified || c->server)
		return 0;
	if (!c->announced) {
		/* streamed: whether the round will be a mixed batch is not known yet: an id of the gateway's
		 * whenever MCP tools are offered (mint_visible) */
		if (json_object_size(r->offered) && mint_visible(r, i) < 0)
			return -1;
		if (!(o = toolcalls_json(&r->calls_in, i)) ||
		    (c->visible[0] && json_object_set_new(o, "id", json_string(c->visible)) < 0) ||
		    json_object_set_new(json_object_get(o, "function"), "arguments",
					json_stringn(t->args.data ? t->args.data : "", t->args.len)) < 0) {
			json_decref(o);
			return -1;
		}
		c->announced = 1;
	} else {
		if (!(o = d ? json_deep_copy(d) : json_object()))
			return -1;
		fn = toolcalls_strip(o);
		if (t->args.len > c->sent) {
			if (!fn && json_object_set_new(o, "function", fn = json_object()) < 0)
				fn = NULL;
			if (!fn || json_object_set_new(fn, "arguments",
						       json_stringn(t->args.data + c->sent, t->args.len - c->sent)) < 0) {
				json_decref(o);
				return -1;
			}
		} else if (!fn || json_object_size(fn) == 0) {
			json_object_del(o, "function"); /* not an object, or nothing left of it */
		}
		if (json_object_size(o) == 0) {
			json_decref(o);
			return 0;
		}
	}
	c->sent = t->args.len;
	if (json_object_set_new(o, "index", json_integer(c->client_index)) < 0) {
		json_decref(o);
		return -1;
	}
	return json_array_append_new(out, o);
}

/* stream_tool_delta: fold one tool-call delta into the round's calls; the
 * client's own calls go on (renumbered) through out_calls. 0, or -1 out of memory */
static int stream_tool_delta(struct tl_run *r, const json_t *tc, json_t *out_calls)
{
	int which;

	if (toolcalls_delta(&r->calls_in, tc, &which) == TOOLCALLS_ENOMEM || calls_sync(r, 0) < 0)
		return -1;
	return which < 0 ? 0 : client_delta(r, which, tc, out_calls);
}

/* text_slot: the buffer joining the streamed text member k, NULL when all TL_TEXTS are taken (acc joins it then) */
static buf_t *text_slot(struct tl_run *r, const char *k)
{
	for (int i = 0; i < r->ntexts; i++)
		if (strcmp(r->texts[i].key, k) == 0)
			return &r->texts[i].b;
	if (r->ntexts == TL_TEXTS || strlen(k) >= sizeof r->texts[0].key)
		return NULL;
	snprintf(r->texts[r->ntexts].key, sizeof r->texts[0].key, "%s", k);
	buf_reset(&r->texts[r->ntexts].b);
	return &r->texts[r->ntexts++].b;
}

static int acc_merge(json_t *acc, const json_t *delta);

/* acc_member: the member k = v of a delta merged into acc as the OpenAI
 * SDKs accumulate a stream (openai-python
 * src/openai/lib/streaming/_deltas.py, accumulate_delta): text joined,
 * integers added, objects merged, lists extended (an entry with an "index"
 * merged into that entry), "index" and "type" replaced; null adds nothing.
 * 0, or -1 out of memory */
static int acc_member(json_t *acc, const char *k, const json_t *v)
{
	json_t *have = json_object_get(acc, k), *e, *at;
	buf_t b = BUF_INIT;
	size_t i;
	int rc = 0;

	if (json_is_null(v))
		return 0;
	if (!have || json_is_null(have) || strcmp(k, "index") == 0 || strcmp(k, "type") == 0)
		return json_object_set_new(acc, k, json_deep_copy(v));
	if (json_is_string(have) && json_is_string(v)) {
		rc = buf_append(&b, json_string_value(have), json_string_length(have)) < 0 ||
				     buf_append(&b, json_string_value(v), json_string_length(v)) < 0 ||
				     json_object_set_new(acc, k, json_stringn(b.data ? b.data : "", b.len)) < 0
			     ? -1
			     : 0;
		buf_free(&b);
	} else if (json_is_integer(have) && json_is_integer(v)) {
		rc = json_object_set_new(acc, k, json_integer(json_integer_value(have) + json_integer_value(v)));
	} else if (json_is_object(have) && json_is_object(v)) {
		rc = acc_merge(have, v);
	} else if (json_is_array(have) && json_is_array(v)) {
		json_array_foreach(v, i, e) {
			at = json_is_integer(json_object_get(e, "index"))
				     ? json_array_get(have, (size_t)json_integer_value(json_object_get(e, "index")))
				     : NULL;
			if (rc == 0)
				rc = json_is_object(at) && json_is_object(e)
					     ? acc_merge(at, e)
					     : json_array_append_new(have, json_deep_copy(e));
		}
	}
	return rc;
}

/* acc_merge: every member of delta into acc (acc_member); 0, or -1 out of memory */
static int acc_merge(json_t *acc, const json_t *delta)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)delta, k, v)
		if (acc_member(acc, k, v) < 0)
			return -1;
	return 0;
}

/* note_delta: a streamed delta (or a whole message) into the round's
 * message: its text members joined in buffers, the others merged into
 * acc; role and tool_calls left out (the calls are assembled apart). 0,
 * or -1 out of memory */
static int note_delta(struct tl_run *r, const json_t *delta)
{
	const char *k;
	json_t *v;
	buf_t *b;

	json_object_foreach((json_t *)delta, k, v) {
		if (strcmp(k, "role") == 0 || strcmp(k, "tool_calls") == 0 || json_is_null(v))
			continue;
		if (json_is_string(v) && !json_object_get(r->acc, k) && (b = text_slot(r, k))) {
			if (buf_append(b, json_string_value(v), json_string_length(v)) < 0)
				return -1;
			continue;
		}
		if ((!r->acc && !(r->acc = json_object())) || acc_member(r->acc, k, v) < 0)
			return -1;
	}
	return 0;
}

/* calls_json: the round's calls as message tool_calls (the upstream's own
 * members kept): all (the upstream's ids), or the client's only (the ids
 * the client sees: minted ones where mint_visible made them); NULL out of memory */
static json_t *calls_json(const struct tl_run *r, int client_only)
{
	json_t *a = json_array();

	for (int i = 0; a && i < r->ncalls; i++) {
		json_t *c;

		if (client_only && r->calls[i].server)
			continue;
		c = toolcalls_json(&r->calls_in, i);
		if (c && client_only && r->calls[i].visible[0] &&
		    json_object_set_new(c, "id", json_string(r->calls[i].visible)) < 0) {
			json_decref(c);
			c = NULL;
		}
		if (json_array_append_new(a, c) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* round_message: the streamed round's assistant message as its deltas
 * built it, with every member the upstream sent, so that what it needs
 * back goes back (DeepSeek's reasoning_content in thinking mode with tool
 * calls: https://api-docs.deepseek.com/guides/thinking_mode), content null
 * when none came; tool_calls: every call, or the client's own
 * (client_only), left out when there are none. New reference, NULL out of memory */
static json_t *round_message(const struct tl_run *r, int client_only)
{
	json_t *msg = json_pack("{s:s}", "role", "assistant"), *calls;

	if (!msg || (r->acc && json_object_update(msg, r->acc) < 0))
		goto err;
	for (int i = 0; i < r->ntexts; i++) {
		const buf_t *b = &r->texts[i].b;
		int null = b->len == 0 && strcmp(r->texts[i].key, "content") == 0;

		if (json_object_set_new(msg, r->texts[i].key,
					null ? json_null() : json_stringn(b->data ? b->data : "", b->len)) < 0)
			goto err;
	}
	if (!json_object_get(msg, "content") && json_object_set_new(msg, "content", json_null()) < 0)
		goto err;
	if (!(calls = calls_json(r, client_only)))
		goto err;
	if (json_array_size(calls)) {
		if (json_object_set_new(msg, "tool_calls", calls) < 0)
			goto err;
	} else {
		json_decref(calls);
	}
	return msg;
err:
	json_decref(msg);
	return NULL;
}

/* delta_bytes: what a delta brings to the round's message: its text
 * members' bytes, the rest (tool calls and their arguments, annotations,
 * ...) as its compact JSON text */
static size_t delta_bytes(const json_t *delta)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach((json_t *)delta, k, v) {
		if (json_is_null(v) || strcmp(k, "role") == 0)
			continue;
		n += json_is_string(v) ? json_string_length(v) : json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	return n;
}

/* stop_too_large: the stream stopped with e, a 502 upstream_response_too_large
 * naming the bound (NULL: it could not be made, the round ends in "Out of
 * memory."); 1, what an event handler returns to stop */
static int stop_too_large(struct tl_run *r, json_t *e)
{
	r->mid_error = e ? e : tl_error("Out of memory.", "server_error", NULL, NULL);
	return 1;
}

/* round_bytes_over: the delta takes the round past MCPGW_MAX_ROUND_BYTES:
 * the round's error set (r->mid_error), so the stream stops and nothing of
 * it goes upstream again; 1, else 0 */
static int round_bytes_over(struct tl_run *r, const json_t *delta)
{
	size_t max = r->t->set->max_round_bytes ? r->t->set->max_round_bytes : TL_ROUND_BYTES_DEFAULT;
	size_t n = delta_bytes(delta);

	if (n <= max && r->round_bytes <= max - n) {
		r->round_bytes += n;
		return 0;
	}
	log_warn("upstream %s: an answer past MCPGW_MAX_ROUND_BYTES (%zu bytes of content and tool-call "
		 "arguments): stopped",
		 r->origin, max);
	return stop_too_large(r, wire_errorf(502, NULL, "upstream_response_too_large",
					     "The upstream's answer is larger than %zu bytes of content and tool-call "
					     "arguments (MCPGW_MAX_ROUND_BYTES); it was stopped.",
					     max));
}

/* The streamed text members that a later round's text continues after a blank line (sep_bit) */
#define TL_SEP_CONTENT 1
#define TL_SEP_REASONING_CONTENT 2
#define TL_SEP_REASONING 4

/* TL_ROUND_SEP: what comes before the first text of a member in a round when the client already got
 * text of it in an earlier round ("Let me look." and, after the tool round, "There is one table."
 * read as two paragraphs, not "Let me look.There is one table."; DeepSeek's reasoning_content of each
 * round likewise) */
#define TL_ROUND_SEP "\n\n"

/* sep_bit: k's TL_SEP_* bit, 0 for a member that is not joined text */
static int sep_bit(const char *k)
{
	return !strcmp(k, "content")             ? TL_SEP_CONTENT
	       : !strcmp(k, "reasoning_content") ? TL_SEP_REASONING_CONTENT
	       : !strcmp(k, "reasoning")         ? TL_SEP_REASONING
						 : 0;
}

/* client_text: v as the client sees member k of a delta (new reference): a non-empty text that is
 * the first of its member in this round, after text of it in an earlier round, gets TL_ROUND_SEP
 * before it; every other value as it is. NULL out of memory */
static json_t *client_text(struct tl_run *r, const char *k, json_t *v)
{
	int bit = json_is_string(v) && json_string_length(v) ? sep_bit(k) : 0;
	int first = bit && !(r->text_sent_round & bit); /* this round's first text of k */
	buf_t b = BUF_INIT;
	json_t *out;

	r->text_sent_round |= bit;
	if (!first || !(r->text_sent & bit))
		return json_incref(v);
	if (buf_append(&b, TL_ROUND_SEP, strlen(TL_ROUND_SEP)) < 0 ||
	    buf_append(&b, json_string_value(v), json_string_length(v)) < 0) {
		buf_free(&b);
		return NULL;
	}
	out = json_stringn(b.data, b.len);
	buf_free(&b);
	return out;
}

/* choice_for_client: choice 0 of a chunk (the one that drives tool
 * rounds) folded into the round, and what the client sees of it: the delta
 * as the upstream sent it (reasoning_content, annotations, provider
 * extras) with the client's own tool calls only (renumbered, in OpenAI's
 * shape) and the role once, the choice's other members (logprobs,
 * provider extras); the finish_reason held back for the end of the run.
 * *out: new reference, NULL when there is nothing to see. 0; 1 when the
 * delta takes the round past MCPGW_MAX_ROUND_BYTES (r->mid_error says so);
 * -1 out of memory */
static int choice_for_client(struct tl_run *r, const json_t *ch, json_t **out)
{
	const json_t *delta = json_object_get(ch, "delta"), *tcs;
	json_t *d = json_object(), *calls = json_array(), *o = NULL, *v;
	const char *k;
	size_t i;
	int seen = 0, rc = -1;

	*out = NULL;
	if (!json_is_object(delta))
		delta = json_object_get(ch, "message"); /* a whole answer where a stream was asked */
	if (json_is_string(v = json_object_get(ch, "finish_reason")))
		snprintf(r->finish, sizeof r->finish, "%s", json_string_value(v));
	if (json_is_object(delta) && round_bytes_over(r, delta)) {
		rc = 1;
		goto out;
	}
	if (!d || !calls || note_delta(r, delta) < 0)
		goto out;
	tcs = json_object_get(delta, "tool_calls");
	if (tcs && !json_is_array(tcs) && !json_is_object(tcs) && !json_is_null(tcs))
		log_warn("upstream %s: \"tool_calls\" that is neither a list nor a call, skipped", r->origin);
	if (json_is_object(tcs) && stream_tool_delta(r, tcs, calls) < 0) /* one call where a list belongs */
		goto out;
	json_array_foreach(tcs, i, v)
		if (stream_tool_delta(r, v, calls) < 0)
			goto out;
	json_object_foreach((json_t *)delta, k, v) {
		if (strcmp(k, "tool_calls") == 0 || (strcmp(k, "role") == 0 && r->role_sent) ||
		    (strcmp(k, "content") == 0 && r->role_sent && json_is_string(v) && !json_string_length(v)))
			continue;
		if (json_object_set_new(d, k, client_text(r, k, v)) < 0)
			goto out;
		seen |= !json_is_null(v);
	}
	if (json_array_size(calls)) {
		if (json_object_set(d, "tool_calls", calls) < 0)
			goto out;
		seen = 1;
	}
	if (!(o = json_pack("{s:i, s:O, s:n, s:n}", "index", 0, "delta", d, "logprobs", "finish_reason")))
		goto out;
	json_object_foreach((json_t *)ch, k, v) {
		if (strcmp(k, "index") == 0 || strcmp(k, "delta") == 0 || strcmp(k, "message") == 0 ||
		    strcmp(k, "finish_reason") == 0)
			continue;
		if (json_object_set(o, k, v) < 0)
			goto out;
		/* an empty object tells nothing: Azure's content_filter_results {} beside a hidden MCP call's delta */
		seen |= !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0);
	}
	if (seen) {
		*out = o;
		o = NULL;
	}
	rc = 0;
out:
	json_decref(o);
	json_decref(d);
	json_decref(calls);
	return rc;
}

/* stream_error: the error an event carries ({"error": ...}, vLLM's
 * {"object": "error", ...}, a list of errors as Gemini sends) as an
 * OpenAI error object; NULL when it is a chunk (or not JSON) */
static json_t *answer_error(const json_t *chunk)
{
	if (json_is_array(chunk) || json_object_get(chunk, "error") ||
	    strcmp(json_string_value(json_object_get(chunk, "object")) ?: "", "error") == 0)
		return wire_error_from(chunk, 502);
	return NULL;
}

/* on_event: one event of the upstream's stream: a chunk in any provider's
 * dialect (every choice passed on: choice 0 drives tool rounds; with n > 1
 * no MCP tools were offered, so the others go on as they came), or the
 * end, or an error. 0, or 1 to stop the stream */
static int on_event(const char *data, size_t len, void *ud)
{
	struct tl_run *r = ud;
	size_t max_values =
		r->t->set->max_upstream_json_values ? r->t->set->max_upstream_json_values : UPSTREAM_DEFAULT_MAX_VALUES;
	json_t *chunk, *choices, *ch, *out, *o, *v;
	json_error_t err;
	size_t i;
	int rc;

	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		r->done = 1;
		return 0;
	}
	if (wire_json_scan(data, len, INT_MAX, max_values) == WIRE_JSON_TOO_MANY) {
		log_warn("upstream %s: a stream event of more than %zu JSON values (MCPGW_MAX_UPSTREAM_JSON_VALUES): "
			 "stopped",
			 r->origin, max_values);
		return stop_too_large(r, wire_errorf(502, NULL, "upstream_response_too_large",
						     "An event of the upstream's stream holds more than %zu JSON values "
						     "(MCPGW_MAX_UPSTREAM_JSON_VALUES).",
						     max_values));
	}
	chunk = json_loadb(data, len, 0, &err);
	if (!chunk && json_error_code(&err) == json_error_out_of_memory)
		return 1; /* no mid_error: upstream_stopped fails the run with 500 */
	if (chunk)
		r->mid_error = answer_error(chunk);
	if (!r->mid_error && !json_is_object(chunk)) {
		log_warn("upstream %s: a stream event that is not a JSON chunk: %.200s%s", r->origin, data,
			 len > 200 ? "..." : "");
		r->mid_error = tl_error("The upstream sent a stream event that is not JSON.", "server_error", NULL,
					"upstream_bad_response");
	}
	if (r->mid_error || !chunk) {
		json_decref(chunk);
		return 1;
	}
	if (json_string_length(v = json_object_get(chunk, "model")))
		snprintf(r->model, sizeof r->model, "%s", json_string_value(v));
	if ((v = json_object_get(chunk, "system_fingerprint")) && !json_is_null(v)) {
		json_decref(r->fingerprint);
		r->fingerprint = json_incref(v);
	}
	note_usage(r, chunk);
	choices = json_object_get(chunk, "choices");
	if (!(out = json_array())) { /* out of memory: upstream_stopped fails the run with 500 */
		json_decref(chunk);
		return 1;
	}
	json_array_foreach(choices, i, ch) {
		v = json_object_get(ch, "index");
		o = NULL;
		if (json_is_object(ch))
			note_usage(r, ch); /* Moonshot: usage inside the finishing choice (go-moonshot issue 17) */
		if (!json_is_object(ch)) {
			log_warn("upstream %s: a stream choice that is not an object, skipped", r->origin);
		} else if ((json_is_integer(v) ? json_integer_value(v) : (json_int_t)i) != 0) {
			if (!(o = json_deep_copy(ch)) ||
			    json_object_set_new(o, "index",
						json_integer(json_is_integer(v) ? json_integer_value(v)
										: (json_int_t)i)) < 0) {
				json_decref(o);
				json_decref(out);
				out = NULL;
				break;
			}
		} else if (choice_for_client(r, ch, &o) != 0) {
			json_decref(out);
			out = NULL;
			break;
		}
		if (o && json_array_append_new(out, o) < 0) {
			json_decref(out);
			out = NULL;
			break;
		}
	}
	if (!out) { /* out of memory: no mid_error, upstream_stopped fails the run with 500 */
		json_decref(chunk);
		return 1;
	}
	if (!r->stream || (json_array_size(out) == 0 && !chunk_has_extras(chunk))) {
		/* not streamed (an answer that came as events anyway): folded only */
		json_decref(out);
		json_decref(chunk);
		return 0;
	}
	rc = emit_choices(r, chunk, out);
	json_decref(chunk);
	return rc < 0 ? 1 : 0;
}

/* round_from_message: the calls and content of a non-streamed answer */
static int round_from_message(struct tl_run *r, const json_t *msg)
{
	const json_t *content = json_object_get(msg, "content"), *refusal = json_object_get(msg, "refusal");
	struct toolloop_event ev = { .kind = TOOLLOOP_CONTENT };

	if (json_string_length(content)) {
		ev.text = json_string_value(content);
		ev.text_len = json_string_length(content);
	}
	if (json_string_length(refusal))
		ev.refusal = json_string_value(refusal);
	if ((ev.text || ev.refusal) && send(r, &ev) < 0)
		return -1;
	if (toolcalls_message(&r->calls_in, json_object_get(msg, "tool_calls")) == TOOLCALLS_ENOMEM ||
	    calls_sync(r, 1) < 0)
		return -1;
	return 0;
}

static int count_mcp(const struct tl_run *r)
{
	int n = 0;

	for (int i = 0; i < r->ncalls; i++)
		n += r->calls[i].server != NULL;
	return n;
}

static void history_add(struct tl_run *r, json_t *msg)
{
	if (!msg || json_array_append(r->messages, msg) < 0 || json_array_append(r->hidden, msg) < 0)
		r->nomem = 1; /* the conversation lacks it: the run fails (round_done, tools_all_done) */
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
static int fail(struct tl_run *r, int http_status, json_t *err);

static int tools_hand_out(struct tl_run *r, struct toolloop_need *need)
{
	size_t from = r->next_call;
	json_error_t err;
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
		c->argv = c->denied ? NULL : c->args.len ? json_loads(c->args.data, 0, &err) : json_object();
		if (!c->denied && !c->argv && (!c->args.len || json_error_code(&err) == json_error_out_of_memory))
			return fail(r, 500, NULL); /* not the model's fault: it is not told its arguments were bad */
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

	if (r->nclient == 0 && images_wanted(r) && !images)
		r->nomem = 1; /* never a round without the images it is to carry */

	for (int i = 0; i < r->ncalls; i++) {
		const struct tl_call *c = &r->calls[i];

		if (!c->server)
			continue;
		if (json_is_array(images) && toolresult_images(c->result, images) < 0)
			r->nomem = 1;
		history_add(r, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", c->id, "content",
					 c->text ? c->text : "Tool error: out of memory"));
	}
	if (json_array_size(images)) {
		if (json_array_insert_new(images, 0,
					  json_pack("{s:s, s:s}", "type", "text", "text",
						    "Images returned by the tool calls above:")) < 0)
			r->nomem = 1;
		msg = json_pack("{s:s, s:O}", "role", "user", "content", images);
		if (msg && !(r->image_msgs || (r->image_msgs = json_array())))
			r->nomem = 1;
		if (msg && r->image_msgs && json_array_append(r->image_msgs, msg) < 0)
			r->nomem = 1;
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

/* ---- history: the hidden part of a mixed batch, bound to its owner ----
 *
 * When one upstream answer mixes MCP calls (run here) with the client's own
 * calls, the client gets its calls only and the hidden round (the
 * assistant message with every call, the MCP results) is kept until the
 * client comes back with its results; then it is spliced back in before the
 * request goes upstream. That history holds tool results the client never
 * saw (rows of read_query...), so only the client that caused it may get it
 * back (issue 14, case 3: keyed by the upstream's own id, which providers
 * repeat, "call_0", "0", "", it went to other clients and could be
 * overwritten by them). So:
 *  - the client sees ids the gateway mints for its calls (mint_visible, 142
 *    random bits), not the upstream's; the entry maps them back, so the
 *    upstream always sees its own ids (Mistral checks their form:
 *    https://docs.mistral.ai/capabilities/function_calling/);
 *  - the store key is SHA-256 over the caller's API key id (t->key_id, ""
 *    when anonymous), the digest of the conversation the client sent
 *    (convo_digest: the messages before the assistant turn) and the first
 *    minted id: only the holder of that id, in that conversation, with that
 *    key, finds it (OWASP ASVS 4.0 V3.2.2: at least 64 bits of entropy in a
 *    token that grants access, https://owasp.org/www-project-application-security-verification-standard/);
 *  - it is written insert-only (statestore_add: a colliding key is a miss,
 *    never an overwrite) and taken on restore (statestore_take: read and
 *    deleted in one step, so its hidden messages are used once: no replay);
 *    what goes back once used is the id map alone (history_used), which
 *    later turns of the conversation need and which holds nothing secret;
 *  - a retry of the same request (the client's network failed) finds it
 *    again only while the upstream has not answered the restored request:
 *    a run whose upstream round failed, or whose client went away before
 *    the upstream answered, puts what it took back (insert-only) when it is
 *    closed; once the upstream answered a round the hidden messages are
 *    gone for good, and a retry (or a later turn) goes upstream without
 *    them (the model sees the client's calls and results, under the
 *    upstream's ids).
 * Streamed, whether a round is mixed is known only at its end, after the
 * client saw its calls' ids: whenever MCP tools are offered, a streamed
 * answer's client calls get minted ids, and their map to the upstream's
 * ids is kept the same way (with no hidden round). */

#define TL_RESTORE_MAX 256        /* mixed batches looked up per request at most */
#define TL_MIXED_NS "mixed-batch" /* the state store's namespace of the histories, keyed by history_key */
#define TL_HISTORY_DOMAIN "mcpgw mixed-batch history v2" /* what history_key hashes first */

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

/* history_on: the run keeps and restores histories (a state store is configured) */
static int history_on(const struct tl_run *r)
{
	return r->t->set->state_store[0] != '\0';
}

/* convo_value: one member into a conversation digest: a tag, then a string
 * as its bytes or any other value as compact JSON with sorted keys, each
 * after its length (so no two conversations feed the same bytes); absent
 * and null alike. 0, or -1 out of memory */
static int convo_value(struct sha256 *c, char tag, const json_t *v)
{
	char *text = NULL;
	const char *p = "";
	uint64_t len = 0;

	if (json_is_string(v)) {
		p = json_string_value(v);
		len = json_string_length(v);
	} else if (v && !json_is_null(v)) {
		tag = (char)(tag | 0x80); /* a JSON text, never the same bytes as a string's */
		if (!(text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)))
			return -1;
		p = text;
		len = strlen(text);
	} else {
		tag = '0';
	}
	sha256_update(c, &tag, 1);
	sha256_update(c, &len, sizeof len);
	sha256_update(c, p, len);
	free(text);
	return 0;
}

/* convo_feed: one message into a conversation digest, as what a client
 * sends back of it: role, content (absent, null and "" alike), name,
 * tool_call_id, and of each tool call its id, name and arguments (members
 * a client may add or drop when it sends a message back, refusal: null,
 * annotations, reasoning, are left out). The members are fed as they are
 * (convo_value), no JSON built: this runs for every message of every
 * request. 0, or -1 out of memory */
static int convo_feed(struct sha256 *c, const json_t *m)
{
	const json_t *content = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls"), *tc;
	uint64_t n = json_array_size(calls);
	size_t i;

	if (!json_is_object(m))
		return convo_value(c, 'M', m);
	if (json_is_string(content) && json_string_length(content) == 0)
		content = NULL;
	if (convo_value(c, 'r', json_object_get(m, "role")) < 0 || convo_value(c, 'c', content) < 0 ||
	    convo_value(c, 'n', json_object_get(m, "name")) < 0 ||
	    convo_value(c, 'i', json_object_get(m, "tool_call_id")) < 0)
		return -1;
	sha256_update(c, "T", 1);
	sha256_update(c, &n, sizeof n);
	json_array_foreach(calls, i, tc) {
		const json_t *fn = json_object_get(tc, "function");

		if (convo_value(c, 'd', json_object_get(tc, "id")) < 0 ||
		    convo_value(c, 'f', json_object_get(fn, "name")) < 0 ||
		    convo_value(c, 'a', json_object_get(fn, "arguments")) < 0)
			return -1;
	}
	return 0;
}

/* convo_hex: the digest so far of c (left as it is) as hex into out. 0, or -1 */
static int convo_hex(const struct sha256 *c, char out[SHA256_HEX])
{
	unsigned char d[SHA256_BYTES];

	if (sha256_peek(c, d) < 0)
		return -1;
	sha256_hex(d, out);
	return 0;
}

/* convo_final: the digest of what c was fed as hex into out; c is freed. 0, or -1 */
static int convo_final(struct sha256 *c, char out[SHA256_HEX])
{
	unsigned char d[SHA256_BYTES];

	if (sha256_final(c, d) < 0)
		return -1;
	sha256_hex(d, out);
	return 0;
}

/* convo_ready: r->convo made, when it was not yet: the digest of the
 * conversation as the client sent it, its first n_sent messages (a run
 * only appends to them, unless restore_sessions changed them, and then it
 * made the digest before). Made only when a history is kept, not for every
 * request. 0, or -1 (out of memory, or lost: restore_sessions could not
 * finish it) */
static int convo_ready(struct tl_run *r)
{
	struct sha256 c;

	if (r->convo_state != 0)
		return r->convo_state > 0 ? 0 : -1;
	if (sha256_init(&c) < 0)
		return -1;
	for (size_t i = 0; i < r->n_sent; i++)
		if (convo_feed(&c, json_array_get(r->messages, i)) < 0) {
			sha256_free(&c);
			return -1;
		}
	if (convo_final(&c, r->convo) < 0)
		return -1;
	r->convo_state = 1;
	return 0;
}

/* history_key: the store key of a history: SHA-256 over the caller's key
 * id ("" anonymous), the conversation's digest and the first minted id.
 * 0, or -1 (out of memory) */
static int history_key(const char *key_id, const char *convo, const char *id, char out[SHA256_HEX])
{
	struct sha256 c;
	unsigned char d[SHA256_BYTES];

	if (sha256_init(&c) < 0)
		return -1;
	sha256_update(&c, TL_HISTORY_DOMAIN, sizeof TL_HISTORY_DOMAIN); /* its NUL ends each part */
	sha256_update(&c, key_id ? key_id : "", key_id ? strlen(key_id) + 1 : 1);
	sha256_update(&c, convo, strlen(convo) + 1);
	sha256_update(&c, id, strlen(id));
	if (sha256_final(&c, d) < 0)
		return -1;
	sha256_hex(d, out);
	return 0;
}

/* mint_client_calls: a minted id for each of the client's calls; 0, or -1 when one could not be made */
static int mint_client_calls(struct tl_run *r)
{
	for (int i = 0; i < r->ncalls; i++)
		if (!r->calls[i].server && mint_visible(r, i) < 0)
			return -1;
	return 0;
}

/* save_history: keep, for the client that got this answer, its calls'
 * minted ids mapped to the upstream's and, when mixed, the hidden messages
 * (insert-only, MCPGW_SESSION_TTL). Nothing when none of its calls has a
 * minted id. Failures are logged: the client's next request lacks them */
static void save_history(struct tl_run *r, int mixed)
{
	json_t *ids = json_object(), *entry = NULL, *none = json_array();
	const char *first = NULL;
	char key[SHA256_HEX];
	struct statestore *st;
	enum statestore_status s;

	if (!ids || !none)
		goto oom;
	for (int i = 0; i < r->ncalls; i++) {
		const struct tl_call *c = &r->calls[i];

		if (c->server || !c->visible[0])
			continue;
		if (c->client_index == 0 || !first)
			first = c->visible; /* the first call the client sees: tool_calls[0] of its message */
		if (json_object_set_new(ids, c->visible, json_string(c->id)) < 0)
			goto oom;
	}
	if (!first)
		goto out;
	if (!(entry = json_pack("{s:O, s:O}", "hidden", mixed ? r->hidden : none, "ids", ids)))
		goto oom;
	if (!(st = tl_store(r)))
		goto out;
	if (convo_ready(r) < 0) {
		log_warn("a mixed batch's conversation could not be digested (out of memory, or a restore failed "
			 "half-way): its history is not kept; the client's next request will lack it");
		goto out;
	}
	if (history_key(r->key_id, r->convo, first, key) < 0)
		goto oom;
	s = statestore_add_json(st, TL_MIXED_NS, key, entry, r->t->set->session_ttl_ms);
	if (s == STATESTORE_HELD)
		log_warn("a mixed batch's history has the key of one already kept: not overwritten; the client's next "
			 "request will lack it");
	else if (s != STATESTORE_OK)
		log_warn("saving the hidden tool calls of a mixed batch failed (%s%s%s): the client's next request will "
			 "lack them",
			 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
	goto out;
oom:
	log_warn("out of memory saving the hidden tool calls of a mixed batch: the client's next request will lack them");
out:
	json_decref(entry);
	json_decref(ids);
	json_decref(none);
}

/* history_used: the upstream answered the request the taken histories went
 * into: their hidden messages are used up (a replay gets none); their id
 * maps go back (insert-only, a new MCPGW_SESSION_TTL): they hold nothing
 * but the upstream's ids, and the conversation's later turns, which send
 * the same assistant message again, need them (the upstream gets its own
 * ids back: Mistral refuses ids not of its form) */
static void history_used(struct tl_run *r)
{
	struct statestore *st;
	json_t *e;
	size_t i;

	if (!json_array_size(r->taken) || !(st = tl_store(r)))
		goto out;
	json_array_foreach(r->taken, i, e) {
		json_t *ids = json_pack("{s:[], s:O}", "hidden", "ids", json_object_get(json_array_get(e, 1), "ids"));
		enum statestore_status s =
			ids ? statestore_add_json(st, TL_MIXED_NS, json_string_value(json_array_get(e, 0)), ids,
						  r->t->set->session_ttl_ms)
			    : STATESTORE_ENOMEM;

		if (s != STATESTORE_OK && s != STATESTORE_HELD)
			log_warn("keeping the tool call ids of a mixed batch failed (%s%s%s): later turns send the "
				 "client's ids upstream",
				 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
		json_decref(ids);
	}
out:
	json_array_clear(r->taken);
}

/* history_put_back: what the run took on restore goes back (insert-only)
 * when the upstream never answered it: a retry of the request finds it */
static void history_put_back(struct tl_run *r)
{
	struct statestore *st;
	json_t *e;
	size_t i;

	if (!json_array_size(r->taken) || !(st = tl_store(r)))
		return;
	json_array_foreach(r->taken, i, e) {
		enum statestore_status s = statestore_add_json(st, TL_MIXED_NS, json_string_value(json_array_get(e, 0)),
							       json_array_get(e, 1), r->t->set->session_ttl_ms);

		if (s != STATESTORE_OK && s != STATESTORE_HELD)
			log_warn("putting back the hidden tool calls of a mixed batch failed (%s%s%s)",
				 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
	}
	json_array_clear(r->taken);
}

/* fail: the run failed: the ERROR event (err stolen; NULL: out of memory); -1 */
static int fail(struct tl_run *r, int http_status, json_t *err)
{
	struct toolloop_event ev = { .kind = TOOLLOOP_ERROR, .status = http_status, .error = err };

	if (!err) { /* out of memory: the object made when the run opened */
		ev.status = 500;
		ev.error = r->nomem_error;
	}
	send(r, &ev);
	json_decref(err);
	return -1;
}

static int upstream_fail(struct tl_run *r, struct upstream_result *res)
{
	int st = 502;
	json_t *err = upstream_error_json(res, &st);

	log_warn("upstream: %s", res->message);
	if (!err && res->err != UPSTREAM_OK) /* out of memory: the gateway's failure, not the upstream's */
		return fail(r, 500, NULL);
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
 * docs/agents.md "to prevent infinite loops"). New reference; NULL with
 * *nomem set when it could not be made (ENOMEM). */
static json_t *choice_after_tools(const json_t *choice, int *nomem)
{
	const char *type = json_string_value(json_object_get(choice, "type"));
	const json_t *allowed = json_object_get(choice, "allowed_tools");
	json_t *v = NULL;

	if (json_is_string(choice)) {
		if (strcmp(json_string_value(choice), "required") != 0)
			return NULL;
		v = json_string("auto");
	} else if (type && (strcmp(type, "function") == 0 || strcmp(type, "custom") == 0)) {
		v = json_string("auto");
	} else if (type && strcmp(type, "allowed_tools") == 0 &&
		   strcmp(json_string_value(json_object_get(allowed, "mode")) ?: "", "required") == 0) {
		v = json_deep_copy(choice);
		/* allowed_tools is an object: its mode was read above; a failure is ENOMEM */
		if (v && json_object_set_new(json_object_get(v, "allowed_tools"), "mode", json_string("auto")) < 0) {
			json_decref(v);
			v = NULL;
		}
	} else {
		return NULL;
	}
	*nomem = !v;
	return v;
}

/* body_of: the round's request body: req as compact JSON, the offered MCP
 * tools' texts spliced in after the request's own "tools" (the key then comes
 * last). malloc'd, or NULL on ENOMEM */
static char *body_of(struct tl_run *r)
{
	json_t *own = json_object_get(r->req, "tools");
	char *rest, *mine = NULL, *body;
	size_t nr, nm = 0, n;

	if (!r->mcp_tools.len)
		return json_dumps(r->req, JSON_COMPACT);
	json_incref(own);
	(void)json_object_del(r->req, "tools");
	rest = json_dumps(r->req, JSON_COMPACT);
	if (own && (json_object_set_new(r->req, "tools", own) < 0 || !(mine = json_dumps(own, JSON_COMPACT)))) {
		free(rest);
		return NULL;
	}
	if (!rest) {
		free(mine);
		return NULL;
	}
	/* rest is "{...}" (model and messages at least); mine "[...]" */
	nr = strlen(rest) - 1;
	nm = mine ? strlen(mine) - 2 : 0;
	n = nr + 10 + nm + 1 + r->mcp_tools.len + 3;
	if ((body = malloc(n))) {
		size_t o = nr;

		memcpy(body, rest, nr);
		if (nr > 1)
			body[o++] = ',';
		memcpy(body + o, "\"tools\":[", 9);
		o += 9;
		if (nm) {
			memcpy(body + o, mine + 1, nm);
			o += nm;
			body[o++] = ',';
		}
		memcpy(body + o, r->mcp_tools.data, r->mcp_tools.len);
		o += r->mcp_tools.len;
		memcpy(body + o, "]}", 3);
	}
	free(rest);
	free(mine);
	return body;
}

/* upstream_hand_out: the round's request for the driver (after a tool
 * round with the forced tool_choice let go, see choice_after_tools) */
static int upstream_hand_out(struct tl_run *r, struct toolloop_need *need)
{
	json_t *choice;
	int nomem = 0;

	round_reset(r);
	if (r->rounds > 0 && !(choice = choice_after_tools(json_object_get(r->req, "tool_choice"), &nomem)) && nomem)
		return fail(r, 500, NULL); /* never forced once more for want of memory */
	if (r->rounds > 0 && choice) {
		log_debug("tool_choice forced a tool call in the first round; later rounds ask with \"auto\"");
		if (json_object_set_new(r->req, "tool_choice", choice) < 0)
			return fail(r, 500, NULL);
	}
	free(r->body);
	r->body = body_of(r);
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
	if (r->gone) {
		json_decref(err);
		return -1;
	}
	if (!err) /* out of memory (on_event): the ERROR event still goes out */
		return fail(r, 500, NULL);
	return fail(r, 502, err);
}

/* answer_from_events: a non-streamed request answered with an event stream
 * anyway (servers and proxies that always stream): the events folded as a
 * streamed round's are, made into the chat.completion the client asked
 * for (choice 0, the one that drives tool rounds). New reference; NULL when
 * the body is no event stream or holds no finished answer (r->mid_error
 * says why when an event was an error) */
static json_t *answer_from_events(struct tl_run *r, const buf_t *body)
{
	size_t i = 0;
	json_t *usage, *msg, *resp = NULL;
	int borrowed;
	int rc;

	while (i < body->len && body->data[i] && strchr(" \t\r\n", body->data[i]))
		i++;
	if (i == body->len || !body->data[i] || !strchr("d:eir", body->data[i]))
		return NULL;
	sse_reset(&r->sse);
	rc = sse_feed(&r->sse, body->data, body->len);
	if (rc == SSE_OK)
		rc = sse_feed(&r->sse, "\n\n", 2); /* the last event, even without its blank line */
	if (rc != SSE_OK || (!r->done && !r->finish[0]) || calls_sync(r, 1) < 0)
		return NULL;
	log_debug("upstream %s: answered a request without stream as an event stream; read as one answer", r->origin);
	if ((msg = round_message(r, 0)))
		resp = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}]}", "id", r->id, "object",
				 "chat.completion", "created", r->created, "model", r->model, "choices", "index", 0,
				 "message", msg, "logprobs", "finish_reason", r->finish[0] ? r->finish : "stop");
	/* the calls are read again from the message, as from any answer; the round's usage stays */
	usage = r->round_usage;
	borrowed = r->round_usage_borrowed;
	r->round_usage = NULL;
	round_reset(r);
	r->round_usage = usage;
	r->round_usage_borrowed = borrowed;
	if (resp && usage)
		json_object_set(resp, "usage", usage);
	return resp;
}

/* plain_answer: a non-streamed round's answer (res->body); 0, or -1 when the run ended */
static int plain_answer(struct tl_run *r, struct upstream_result *res)
{
	json_t *resp = upstream_result_json(res), *err, *msg;

	if (!resp && res->err != UPSTREAM_ENOMEM && (resp = answer_from_events(r, &res->body)))
		res->err = UPSTREAM_OK;
	if (!resp && r->mid_error) {
		err = r->mid_error;
		r->mid_error = NULL;
		return fail(r, 502, err);
	}
	if (!resp)
		return upstream_fail(r, res);
	if (!json_is_array(json_object_get(resp, "choices"))) {
		/* a 2xx that is no completion: an error in a provider's shape, or nothing usable */
		err = answer_error(resp);
		if (!err) {
			char *text = json_dumps(resp, JSON_COMPACT);

			log_warn("upstream %s: an answer without choices: %.200s", r->origin, text ? text : "");
			free(text);
		}
		json_decref(resp);
		return fail(r, 502,
			    err ? err
				: tl_error("The upstream's answer has no choices.", "server_error", NULL,
					   "upstream_bad_response"));
	}
	/* a whole message is bounded as a streamed one is (an answer read from events was counted as it came) */
	r->round_bytes = 0;
	if (json_is_object(msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message")) &&
	    round_bytes_over(r, msg)) {
		json_decref(resp);
		err = r->mid_error;
		r->mid_error = NULL;
		return fail(r, 502, err);
	}
	json_decref(r->last);
	r->last = resp;
	note_usage(r, resp);
	note_usage(r, json_array_get(json_object_get(resp, "choices"), 0)); /* Moonshot's place for it */
	if (json_string_length(json_object_get(resp, "model")))
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

	if (r->nomem) /* the run lost part of its state (a message, a round's usage): no answer from it */
		return fail(r, 500, NULL);
	return send(r, &ev);
}

/* final_message: the streamed answer's last message as the client got it:
 * every member its deltas carried, the client's own tool calls */
static json_t *final_message(const struct tl_run *r)
{
	return round_message(r, 1);
}

/* flush_client_calls: what the client has not seen yet of its own calls
 * (a call named only at the end, fragments of one classified late) in one
 * chunk before the final one. 0, or -1 when the client is gone */
static int flush_client_calls(struct tl_run *r)
{
	json_t *calls = json_array();

	for (int i = 0; calls && i < r->ncalls; i++)
		if ((!r->calls[i].announced || r->calls[i].sent < r->calls[i].args.len) &&
		    client_delta(r, i, NULL, calls) < 0) {
			json_decref(calls);
			calls = NULL;
		}
	if (!calls) {
		r->nomem = 1;
		return -1;
	}
	if (json_array_size(calls) == 0) {
		json_decref(calls);
		return 0;
	}
	return emit(r, json_pack("{s:o}", "tool_calls", calls), NULL);
}

/* finish_stream: the one final chunk, the usage chunk, then DONE; the
 * answer is added to the history unless mixed (a mixed batch) */
static int finish_stream(struct tl_run *r, const char *finish, int mixed)
{
	json_t *u;

	if (!mixed && json_array_append_new(r->hidden, final_message(r)) < 0)
		r->nomem = 1;
	if (r->nomem || flush_client_calls(r) < 0 || emit(r, json_object(), finish) < 0)
		return r->gone ? -1 : fail(r, 500, NULL); /* out of memory: an ERROR event ends the stream */
	if (r->include_usage) {
		/* "o" takes the one reference given: the run's usage (kept: incref) or a new empty object */
		u = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", r->id, "object", "chat.completion.chunk",
			      "created", r->created, "model", r->model, "choices", "usage",
			      r->usage ? json_incref(r->usage) : json_object());
		if (u && r->fingerprint && json_object_set(u, "system_fingerprint", r->fingerprint) < 0) {
			json_decref(u);
			u = NULL;
		}
		if (send_chunk(r, u, NULL, NULL) < 0)
			return r->gone ? -1 : fail(r, 500, NULL);
	}
	return send_done(r, finish, NULL);
}

/* finish_plain: the last upstream answer, made what the client should see,
 * added to the history unless mixed, then DONE */
static int finish_plain(struct tl_run *r, json_t *last, const char *finish, int strip_mcp, int mixed)
{
	json_t *choice = json_array_get(json_object_get(last, "choices"), 0), *c;
	json_t *msg = json_object_get(choice, "message");
	const char *reason = json_string_value(json_object_get(choice, "finish_reason"));
	size_t i;

	/* the calls as assembled (ids minted, arguments as text, MCP calls out) */
	if ((strip_mcp || r->ncalls) && json_is_object(msg)) {
		if (r->nclient) {
			if (json_object_set_new(msg, "tool_calls", calls_json(r, 1)) < 0)
				r->nomem = 1; /* never the upstream's calls, MCP ones among them */
		} else {
			json_object_del(msg, "tool_calls");
		}
	}
	/* "tool_calls": [] (LM Studio on every text answer, lmstudio-bug-tracker issue 1318) is not
	 * OpenAI's shape, and OpenAI refuses it when a client sends the message back: left out */
	json_array_foreach(json_object_get(last, "choices"), i, c) {
		json_t *m = json_object_get(c, "message"), *tc = json_object_get(m, "tool_calls");

		if (json_is_array(tc) && json_array_size(tc) == 0)
			json_object_del(m, "tool_calls");
	}
	if ((finish && json_is_object(choice) && json_object_set_new(choice, "finish_reason", json_string(finish)) < 0) ||
	    (r->usage && json_object_set(last, "usage", r->usage) < 0) ||
	    (!mixed && json_is_object(msg) && json_array_append_new(r->hidden, json_deep_copy(msg)) < 0))
		r->nomem = 1; /* send_done fails the run */
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

/* restorable: m is an assistant message whose first tool call's id has the
 * form of one mint_visible makes: the only ones a history can be kept under */
static int restorable(const json_t *m)
{
	const char *id = json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));
	size_t n = sizeof RANDID_CALL_PREFIX - 1;

	return id && strncmp(id, RANDID_CALL_PREFIX, n) == 0 && strlen(id) == n + RANDID_CALL_CHARS &&
	       strcmp(json_string_value(json_object_get(m, "role")) ?: "", "assistant") == 0;
}

/* take_history: take the history under key (statestore_take, parsed
 * here): OK with *entry, NOTFOUND, ETYPE (not JSON: dropped), ENOMEM (it
 * could not be parsed for lack of memory: put back as it was, the run
 * fails), or another store error */
static enum statestore_status take_history(struct tl_run *r, struct statestore *st, const char *key, json_t **entry)
{
	enum statestore_status s;
	json_error_t err;
	char *text = NULL;
	size_t len = 0;

	*entry = NULL;
	if ((s = statestore_take(st, TL_MIXED_NS, key, r->t->set->max_message_bytes, &text, &len)) != STATESTORE_OK)
		return s;
	if (!(*entry = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err))) {
		s = json_error_code(&err) == json_error_out_of_memory ? STATESTORE_ENOMEM : STATESTORE_ETYPE;
		if (s == STATESTORE_ENOMEM &&
		    statestore_add(st, TL_MIXED_NS, key, text, len, r->t->set->session_ttl_ms) != STATESTORE_OK)
			log_warn("out of memory: a mixed batch's history taken could not be put back");
	}
	free(text);
	return s;
}

/* restore_sessions: splice back the histories of earlier mixed batches:
 * each assistant message with tool calls looks up (and takes) the history
 * its first call id, the conversation before it and the caller's key name */
static void restore_sessions(struct tl_run *r)
{
	int lost = 0; /* out of memory: r->nomem at the end (the run fails; what was taken is put back) */
	json_t *found = NULL, *m, *entry;
	struct statestore *st = NULL;
	enum statestore_status s;
	struct sha256 c;
	char convo[SHA256_HEX], key[SHA256_HEX];
	size_t i, asked = 0;

	json_array_foreach(r->messages, i, m)
		if (restorable(m))
			break;
	if (i == json_array_size(r->messages)) /* no id the gateway could have minted: nothing to look up */
		return;
	if (sha256_init(&c) < 0)
		return;
	json_array_foreach(r->messages, i, m) {
		const char *id =
			json_string_value(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "id"));

		if (asked < TL_RESTORE_MAX && restorable(m) && !json_object_get(found, id)) {
			asked++;
			if (!st && !(st = tl_store(r)))
				break;
			if ((!found && !(found = json_object())) || convo_hex(&c, convo) < 0 ||
			    history_key(r->key_id, convo, id, key) < 0) {
				lost = 1;
				break;
			}
			s = take_history(r, st, key, &entry);
			if (s == STATESTORE_ENOMEM) {
				lost = 1; /* the entry is back in the store (take_history) */
			} else if (s == STATESTORE_OK && json_is_array(json_object_get(entry, "hidden")) &&
				   json_is_object(json_object_get(entry, "ids"))) {
				/* taken: kept for history_put_back first, so that a run that fails returns it */
				if (json_array_append_new(r->taken, json_pack("[s,O]", key, entry)) < 0) {
					lost = 1;
					if (statestore_add_json(st, TL_MIXED_NS, key, entry,
								r->t->set->session_ttl_ms) != STATESTORE_OK)
						log_warn("out of memory: a mixed batch's history taken could not be put back");
				} else if (json_object_set(found, id, entry) < 0) {
					lost = 1;
				}
			} else if (s == STATESTORE_OK) {
				log_warn("a stored mixed-batch history is not in the gateway's form: dropped");
			} else if (s != STATESTORE_NOTFOUND) {
				log_warn("restoring the hidden tool calls of a mixed batch failed (%s%s%s)",
					 statestore_strerror(s), *statestore_errmsg(st) ? ": " : "",
					 statestore_errmsg(st));
			}
			json_decref(entry);
		}
		if (lost || convo_feed(&c, m) < 0) {
			lost = 1;
			break;
		}
	}
	/* every message fed: the conversation as sent, before what is spliced in now (convo_ready) */
	if (i == json_array_size(r->messages) && convo_final(&c, r->convo) == 0)
		r->convo_state = 1;
	else
		sha256_free(&c);
	if (!lost && json_object_size(found)) {
		if (r->convo_state == 0)
			r->convo_state = -1; /* changed, its digest not made: no history kept under it */
		int n = toolloop_restore(r->messages, found); /* not inside log_debug: a macro that skips its arguments */

		lost = n < 0;
		log_debug("restored %d mixed-batch histories", n);
	}
	json_decref(found);
	if (lost) /* never a conversation asked upstream with a hidden round missing or half spliced */
		r->nomem = 1;
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
	/* out of memory fails the run: never a request offering some of the tools */
	if (mcptools_openai_text(&r->t->tools, r->only, r->client_tools, r->t->policy, &r->mcp_tools, r->offered) < 0)
		return fail(r, 500, NULL);
	/* a "tools" that is not an array gives way to the MCP tools, as it always did */
	if (r->mcp_tools.len && json_object_get(r->req, "tools") && !json_is_array(json_object_get(r->req, "tools")))
		json_object_del(r->req, "tools");
	return 0;
}

/* prepared: the request is complete: earlier mixed batches' hidden rounds
 * restored (the session store needs the broker), then the first round */
static void prepared(struct tl_run *r)
{
	if (history_on(r))
		restore_sessions(r);
	r->state = TL_UPSTREAM;
	if (r->nomem) {
		r->state = TL_ENDED;
		(void)fail(r, 500, NULL);
	}
}

/* prepare: our copy of the request, checked; whether MCP tools are to be
 * offered (the catalog is read next) or not. 0, or -1 when the run failed */
static int prepare(struct tl_run *r, json_t *req, const char *servers)
{
	const struct settings *s = r->t->set;
	json_t *model, *mcp, *t;
	const char *alias;
	buf_t filter = BUF_INIT;
	size_t i;

	r->req = req; /* the run's own (stolen; NULL: out of memory) */
	r->hidden = json_array();
	r->client_tools = json_object();
	r->offered = json_object();
	r->taken = json_array();
	if (!r->req || !r->hidden || !r->client_tools || !r->offered || !r->taken)
		return fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
	r->messages = json_object_get(r->req, "messages");
	if (!json_is_array(r->messages) || json_array_size(r->messages) == 0)
		return fail(r, 400,
			    tl_error("'messages' must be a non-empty array.", "invalid_request_error", "messages",
				     json_is_array(r->messages) ? "empty_array" : "invalid_type"));
	r->n_sent = json_array_size(r->messages); /* what a history made now is bound to (convo_ready) */
	model = json_object_get(r->req, "model");
	if (!model || json_is_null(model)) {
		if (json_object_set_new(r->req, "model", json_string(s->default_model)) < 0)
			return fail(r, 500, NULL);
	} else if (!json_is_string(model)) {
		return fail(r, 400,
			    tl_error("'model' must be a string.", "invalid_request_error", "model", "invalid_type"));
	}
	if ((alias = settings_model_alias(s, json_string_value(json_object_get(r->req, "model")))) &&
	    json_object_set_new(r->req, "model", json_string(alias)) < 0)
		return fail(r, 500, NULL);
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

		if (name && json_object_set_new(r->client_tools, name, json_true()) < 0) {
			buf_free(&filter);
			return fail(r, 500, NULL);
		}
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
	if (r->taken)
		history_put_back(r);
	json_decref(r->taken);
	free(r->key_id);
	round_reset(r);
	toolcalls_free(&r->calls_in);
	for (int i = 0; i < TL_TEXTS; i++)
		buf_free(&r->texts[i].b);
	json_decref(r->req);
	json_decref(r->hidden);
	json_decref(r->client_tools);
	json_decref(r->offered);
	buf_free(&r->mcp_tools);
	json_decref(r->usage);
	json_decref(r->fingerprint);
	json_decref(r->mid_error);
	json_decref(r->nomem_error);
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

	if (r->stream)
		return round_message(r, 0);
	/* the upstream's message as it came (reasoning_content and all), its calls as assembled */
	msg = json_deep_copy(json_object_get(json_array_get(json_object_get(last, "choices"), 0), "message"));
	if (msg && json_object_set_new(msg, "tool_calls", calls_json(r, 0)) < 0) {
		json_decref(msg); /* not the upstream's calls as they came: NULL, history_add fails the run */
		msg = NULL;
	}
	return msg;
}

/* ---- the run driven step by step ---- */

/* tl_origin: the upstream's chat URL as log lines name it (without
 * credentials, redact_url; the query left out) into out (n bytes) */
static void tl_origin(const char *base_url, char *out, size_t n)
{
	char base[UPSTREAM_URL_MAX];

	redact_url(base_url, base, sizeof base);
	base[strcspn(base, "?#")] = '\0';
	snprintf(out, n, "%.*s/chat/completions", (int)(n > 18 ? n - 18 : 0), base);
}

/* run_open: toolloop_open of a body the run owns (stolen, even on failure; NULL: out of memory) */
static struct tl_run *run_open(struct toolloop *t, json_t *req, const char *servers, const struct toolloop_sink *sink)
{
	struct tl_run *r = calloc(1, sizeof *r);

	if (!r) {
		json_decref(req);
		return NULL;
	}
	r->t = t;
	r->sink = *sink;
	if (!(r->nomem_error = tl_error("Out of memory.", "server_error", NULL, NULL)) ||
	    (t->key_id && *t->key_id && !(r->key_id = strdup(t->key_id)))) {
		json_decref(r->nomem_error);
		json_decref(req);
		free(r);
		return NULL;
	}
	r->created = (json_int_t)time(NULL);
	/* kept in the toolloop, borrowed by its runs (the same settings for all of them: the runs
	 * sharing one toolloop see the same text): a run is allocated zeroed, and a URL's 4 KB of room
	 * in each was a fifth of what a waiting stream cost (issue 16) */
	tl_origin(t->set->openai_base_url, t->origin, sizeof t->origin);
	r->origin = t->origin;
	toolcalls_init(&r->calls_in, TL_MAX_CALLS, r->origin);
	sse_init(&r->sse, t->set->max_response_bytes, sse_event, r);
	if (randid_new(r->id, sizeof r->id, RANDID_COMPLETION_PREFIX, RANDID_COMPLETION_CHARS) < 0) {
		log_error("cannot make a completion id: getrandom: %s", strerror(errno));
		(void)fail(r, 500, tl_error("The gateway has no source of random ids.", "server_error", NULL, NULL));
		json_decref(req);
	} else if (prepare(r, req, servers) == 0) {
		return r;
	}
	r->state = TL_ENDED;
	return r;
}

struct tl_run *toolloop_open(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink)
{
	return run_open(t, json_deep_copy(body), servers, sink);
}

struct tl_run *toolloop_open_owned(struct toolloop *t, json_t *body, const char *servers, const struct toolloop_sink *sink)
{
	return run_open(t, body, servers, sink);
}

/* round_done: a round's answer is complete: the run answers, or its MCP calls are next */
static void round_done(struct tl_run *r)
{
	const struct settings *s = r->t->set;
	const char *finish;
	int dropped, limited;

	r->state = TL_ENDED;
	history_used(r); /* the upstream answered the request the histories went into */
	if (calls_sync(r, 1) < 0) {
		(void)fail(r, 500, tl_error("Out of memory.", "server_error", NULL, NULL));
		return;
	}
	dropped = count_mcp(r) > 0 && (r->choice_none || r->rounds == s->max_tool_rounds);
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
		/* streamed with MCP tools offered, the client's calls have minted ids: their map is kept */
		if (r->stream && r->nclient && json_object_size(r->offered) && history_on(r) && mint_client_calls(r) == 0)
			save_history(r, 0);
		if (r->stream)
			(void)finish_stream(r, finish, 0);
		else
			(void)finish_plain(r, r->last, dropped || r->nclient ? finish : NULL, dropped, 0);
		return;
	}
	r->rounds++;
	r->next_call = 0;
	history_add(r, assistant_of(r, r->last));
	if (r->nomem) {
		(void)fail(r, 500, NULL);
		return;
	}
	r->state = TL_TOOLS;
}

/* tools_all_done: every MCP result of the round came: the next round, or
 * (a mixed batch: the client runs its own, we keep ours) the answer */
static void tools_all_done(struct tl_run *r)
{
	tools_done(r);
	if (r->nomem) {
		r->state = TL_ENDED;
		(void)fail(r, 500, NULL);
		return;
	}
	if (!r->nclient) {
		r->state = TL_UPSTREAM;
		return;
	}
	r->state = TL_ENDED;
	if (history_on(r)) {
		if (mint_client_calls(r) == 0)
			save_history(r, 1);
		else
			log_warn("a mixed batch's history cannot be kept without random ids: the client's next request "
				 "will lack it");
	}
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
	return r->state == TL_ENDED ? -1 : 0;
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
		return fail(r, rc == SSE_ETOOBIG ? 502 : 500,
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
	/* a stream is complete when the upstream finished it: [DONE], or a
	 * finish_reason and then the end of the body (some llama.cpp-based
	 * servers send no [DONE]: https://github.com/ikawrakow/ik_llama.cpp/issues/467);
	 * truncated only when it did not finish */
	if (res->err != UPSTREAM_OK && !(r->stream && res->err == UPSTREAM_ETRUNCATED && res->clean_end && r->finish[0]))
		return upstream_fail(r, res);
	if (r->images_retry == 1) { /* asked again without images, and answered: remember the model */
		modelcaps_set_no_images(json_string_value(json_object_get(r->req, "model")));
		r->images_retry = 2;
	}
	if (r->stream && !r->done && !r->finish[0])
		return fail(r, 502,
			    tl_error("The upstream's stream ended before the answer was finished (no finish_reason, "
				     "no data: [DONE]).",
				     "server_error", NULL, "upstream_truncated"));
	if (!r->stream && plain_answer(r, res) < 0)
		return -1;
	round_usage_done(r);
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

/* run_oom: the ERROR event of a run that could not be made (out of memory); what toolloop_run returns */
static int run_oom(const struct toolloop_sink *sink, int stream)
{
	json_t *err = tl_error("Out of memory.", "server_error", NULL, NULL);
	struct toolloop_event ev = { .kind = TOOLLOOP_ERROR,
				     .status = 500,
				     .error = err,
				     .stream = stream,
				     .unavailable = "",
				     .unavailable_why = "" };
	int rc = err && sink->event(sink->ud, &ev) ? -1 : 0;

	json_decref(err);
	return rc;
}

int toolloop_run(struct toolloop *t, const json_t *body, const char *servers, const struct toolloop_sink *sink,
		 json_t **added)
{
	json_t *copy = json_deep_copy(body);

	if (!copy) {
		if (added)
			*added = NULL;
		t->unavailable[0] = t->unavailable_why[0] = '\0';
		return run_oom(sink, json_is_true(json_object_get(body, "stream")));
	}
	return toolloop_run_owned(t, copy, servers, sink, added);
}

int toolloop_run_owned(struct toolloop *t, json_t *body, const char *servers, const struct toolloop_sink *sink,
		       json_t **added)
{
	struct tl_run *r;
	struct toolloop_need need;
	struct upstream_result res;
	const char *why;
	int rc, stream = json_is_true(json_object_get(body, "stream"));

	if (added)
		*added = NULL;
	t->unavailable[0] = t->unavailable_why[0] = '\0';
	if (!(r = run_open(t, body, servers, sink)))
		return run_oom(sink, stream);
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
