/* turn.c: one chatbot question: toolloop_run with a sink that prints content deltas and tool calls and records the rounds. */
#include "turn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/randid.h"

/* the state of one question, shared with the sink callbacks */
struct turn {
	const struct turn_opts *o;
	struct display *d;
	json_t *added;      /* the messages of this turn */
	json_t *calls;      /* tool_calls of the round being recorded */
	json_t *results;    /* its tool messages, in call order */
	size_t ended;       /* calls of the round that have ended */
	int after_results;  /* the round's tools ran: more text or calls start the next round */
	buf_t content;      /* the text of the round being recorded */
	char error[1024];   /* an error event's text, "" if none */
	char finish[32];
	int oom;
	int id_errno;       /* a tool-call id could not be made (getrandom's errno), 0 if every one was */
};

static int turn_stopped(const struct turn *t)
{
	return (t->o->stop && *t->o->stop) || (t->o->stop_also && *t->o->stop_also);
}

/* turn_error_text: "message (code)" of an OpenAI error object {"error": {...}} or of its inner object */
static void turn_error_text(const json_t *err, char *out, size_t outlen)
{
	const json_t *e = json_object_get(err, "error") ? json_object_get(err, "error") : err;
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));

	if (!msg && json_is_string(e))
		msg = json_string_value(e);
	snprintf(out, outlen, "%s%s%s%s", msg ? msg : "the request failed", code ? " (" : "", code ? code : "",
		 code ? ")" : "");
}

/* turn_flush_round: the recorded round as an assistant message with its tool calls, then the results */
static void turn_flush_round(struct turn *t)
{
	json_t *msg;

	if (json_array_size(t->calls)) {
		/* the message takes the calls array over; the results are copied by reference */
		msg = json_pack("{s:s, s:o, s:o}", "role", "assistant", "content",
				t->content.len ? json_string(t->content.data) : json_null(), "tool_calls", t->calls);
		t->calls = json_array();
		if (!msg || !t->calls || json_array_append_new(t->added, msg) < 0 ||
		    json_array_extend(t->added, t->results) < 0)
			t->oom = 1;
		json_array_clear(t->results);
	}
	t->ended = 0;
	t->after_results = 0;
	buf_reset(&t->content);
}

static void turn_text(struct turn *t, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (t->after_results)
		turn_flush_round(t);
	if (buf_append(&t->content, s, n) < 0)
		t->oom = 1;
	display_text(t->d, s, n);
}

/* turn_data: the sink's data callback: one chat.completion.chunk, an error object, or [DONE] */
static int turn_data(void *ud, const char *payload, size_t len)
{
	struct turn *t = ud;
	json_t *j, *choice, *delta, *v;

	if (turn_stopped(t))
		return 1;
	if (len == 6 && memcmp(payload, "[DONE]", 6) == 0)
		return 0;
	j = json_loadb(payload, len, 0, NULL); /* not inside json_is_object: a macro that evaluates twice */
	if (!json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	if (json_object_get(j, "error")) {
		turn_error_text(j, t->error, sizeof t->error);
		json_decref(j);
		return 0;
	}
	choice = json_array_get(json_object_get(j, "choices"), 0);
	delta = json_object_get(choice, "delta");
	if (json_is_string(v = json_object_get(delta, "content")))
		turn_text(t, json_string_value(v), json_string_length(v));
	if (json_is_string(v = json_object_get(delta, "refusal")))
		turn_text(t, json_string_value(v), json_string_length(v));
	if (json_is_string(v = json_object_get(choice, "finish_reason")))
		snprintf(t->finish, sizeof t->finish, "%s", json_string_value(v));
	json_decref(j);
	return 0;
}

/* turn_call_start: record a call of the round, under an id of our own */
static void turn_call_start(struct turn *t, const char *name, const char *arguments)
{
	char id[48];
	json_t *call;

	if (t->after_results)
		turn_flush_round(t);
	if (randid_new(id, sizeof id, RANDID_CALL_PREFIX, RANDID_CALL_CHARS) < 0) {
		t->id_errno = errno;
		return;
	}
	call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name", name,
			 "arguments", arguments);
	if (!call || json_array_append_new(t->calls, call) < 0)
		t->oom = 1;
}

/* turn_tool: the sink's tool callback: a call starts (result NULL) or ends */
static int turn_tool(void *ud, const char *server, const char *name, const char *arguments, const char *result,
		     int is_error)
{
	struct turn *t = ud;
	const char *id;
	json_t *msg;

	if (!result) {
		turn_call_start(t, name ? name : "", arguments ? arguments : "{}");
	} else {
		/* the calls of a round end in the order they started */
		id = json_string_value(json_object_get(json_array_get(t->calls, t->ended), "id"));
		msg = json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", id ? id : "", "content", result);
		if (!msg || json_array_append_new(t->results, msg) < 0)
			t->oom = 1;
		t->ended++;
		t->after_results = 1;
		display_tool(t->d, server ? server : "?", name ? name : "?", arguments, result, is_error);
	}
	return turn_stopped(t) ? 1 : 0;
}

/* turn_body: the chat completion request: system prompt, past, question; stream on */
static json_t *turn_body(const struct turn_opts *o, const json_t *past, json_t *user)
{
	json_t *msgs = json_array(), *body;

	if (!msgs)
		return NULL;
	if (o->system_prompt && *o->system_prompt)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", o->system_prompt));
	if (json_array_extend(msgs, (json_t *)past) < 0 || json_array_append(msgs, user) < 0) {
		json_decref(msgs);
		return NULL;
	}
	body = json_pack("{s:s*, s:o, s:b}", "model", o->model, "messages", msgs, "stream", 1);
	return body;
}

/* turn_is_blank: only white space */
static int turn_is_blank(const buf_t *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (!strchr(" \t\r\n", b->data[i]))
			return 0;
	return 1;
}

/* turn_finish: what the run gave, as a status; on TURN_OK the answer is recorded */
static int turn_finish(struct turn *t, int rc, const json_t *error)
{
	char text[1024];

	display_end(t->d);
	if (rc == -2 || turn_stopped(t)) {
		display_notice(t->d, DISPLAY_INFO, "(interrupted)");
		return TURN_INTERRUPTED;
	}
	if (rc == -1 || *t->error) {
		if (rc == -1)
			turn_error_text(error, text, sizeof text);
		display_notice(t->d, DISPLAY_ERROR, "error: %s", rc == -1 ? text : t->error);
		return TURN_ERROR;
	}
	if (t->id_errno) {
		display_notice(t->d, DISPLAY_ERROR, "error: no tool-call ids (getrandom: %s): this turn is not kept",
			       strerror(t->id_errno));
		return TURN_ERROR;
	}
	if (t->after_results)
		turn_flush_round(t);
	if (strcmp(t->finish, "length") == 0)
		display_notice(t->d, DISPLAY_INFO, "(the answer stopped early: the model's output limit or "
				   "MCPGW_MAX_TOOL_ROUNDS was reached)");
	if (turn_is_blank(&t->content))
		return strcmp(t->finish, "length") == 0 ? TURN_ERROR : TURN_EMPTY;
	if (json_array_append_new(t->added, json_pack("{s:s, s:s}", "role", "assistant", "content",
						     t->content.data)) < 0 || t->oom) {
		display_notice(t->d, DISPLAY_ERROR, "error: out of memory: this turn is not kept");
		return TURN_ERROR;
	}
	return TURN_OK;
}

int turn_run(struct toolloop *tl, const struct turn_opts *o, const json_t *past, const char *question,
	     struct display *d, json_t **added)
{
	struct turn t;
	struct toolloop_sink sink = { turn_data, turn_tool, &t };
	json_t *user = NULL, *body = NULL, *response = NULL, *error = NULL;
	int rc, status = 0, st = TURN_ERROR;

	memset(&t, 0, sizeof t);
	t.o = o;
	t.d = d;
	*added = NULL;
	user = json_pack("{s:s, s:s}", "role", "user", "content", question);
	t.added = json_array();
	t.calls = json_array();
	t.results = json_array();
	if (!user || !t.added || !t.calls || !t.results || json_array_append(t.added, user) < 0 ||
	    !(body = turn_body(o, past, user))) {
		display_notice(d, DISPLAY_ERROR, "error: out of memory");
		goto out;
	}
	rc = toolloop_run(tl, body, NULL, &sink, &response, &status, &error);
	if (*tl->unavailable) /* answered without some servers' tools: say so */
		display_notice(d, DISPLAY_INFO, "note: these MCP tools were not offered: %s", tl->unavailable_why);
	st = turn_finish(&t, rc, error);
	if (st == TURN_OK) {
		*added = t.added;
		t.added = NULL;
	}
out:
	json_decref(user);
	json_decref(body);
	json_decref(response);
	json_decref(error);
	json_decref(t.added);
	json_decref(t.calls);
	json_decref(t.results);
	buf_free(&t.content);
	return st;
}
