/* turn.c: one chatbot question: toolloop_run with a sink that shows the answer and the tool calls as they come; the run's own messages are kept. */
#include "turn.h"

#include <stdio.h>
#include <string.h>

/* the state of one question, shared with the sink */
struct turn {
	const struct turn_opts *o;
	struct display *d;
	char error[1024]; /* the ERROR event's text, "" if none */
	char finish[32];  /* the DONE event's finish_reason, "" if none */
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

/* turn_event: the sink: text to the display as it streams, each MCP call
 * as one line when it ends, the error or finish_reason noted */
static int turn_event(void *ud, const struct toolloop_event *ev)
{
	struct turn *t = ud;

	if (turn_stopped(t))
		return 1;
	switch (ev->kind) {
	case TOOLLOOP_CONTENT:
		if (ev->text)
			display_text(t->d, ev->text, ev->text_len);
		if (ev->refusal)
			display_text(t->d, ev->refusal, strlen(ev->refusal));
		break;
	case TOOLLOOP_TOOL_START: display_tool_start(t->d, ev->server, ev->tool, ev->arguments); break;
	case TOOLLOOP_TOOL_WAIT: break; /* the running line stays */
	case TOOLLOOP_TOOL_END:
		display_tool(t->d, ev->server, ev->tool, ev->arguments, ev->result, ev->is_error);
		break;
	case TOOLLOOP_ERROR: turn_error_text(ev->error, t->error, sizeof t->error); break;
	case TOOLLOOP_DONE:
		snprintf(t->finish, sizeof t->finish, "%s", ev->finish_reason ? ev->finish_reason : "");
		break;
	}
	return 0;
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

/* turn_is_blank: NULL, or only white space */
static int turn_is_blank(const char *s)
{
	return !s || !s[strspn(s, " \t\r\n")];
}

/* turn_finish: what the run gave, as a status; on TURN_OK the run's
 * messages follow the user message in added */
static int turn_finish(struct turn *t, int rc, json_t *added, const json_t *run)
{
	const json_t *answer = json_array_get(run, json_array_size(run) - 1);

	display_end(t->d);
	if (rc < 0 || turn_stopped(t)) {
		display_notice(t->d, DISPLAY_INFO, "(interrupted)");
		return TURN_INTERRUPTED;
	}
	if (*t->error) {
		display_notice(t->d, DISPLAY_ERROR, "error: %s", t->error);
		return TURN_ERROR;
	}
	if (strcmp(t->finish, "length") == 0)
		display_notice(t->d, DISPLAY_INFO,
			       "(the answer stopped early: the model's output limit or "
			       "MCPGW_MAX_TOOL_ROUNDS was reached)");
	if (turn_is_blank(json_string_value(json_object_get(answer, "content"))) &&
	    turn_is_blank(json_string_value(json_object_get(answer, "refusal"))))
		return strcmp(t->finish, "length") == 0 ? TURN_ERROR : TURN_EMPTY;
	if (!run || json_array_extend(added, (json_t *)run) < 0) {
		display_notice(t->d, DISPLAY_ERROR, "error: out of memory: this turn is not kept");
		return TURN_ERROR;
	}
	return TURN_OK;
}

int turn_run(struct toolloop *tl, const struct turn_opts *o, const json_t *past, const char *question,
	     struct display *d, json_t **added)
{
	struct turn t;
	struct toolloop_sink sink = { turn_event, &t };
	json_t *user = NULL, *body = NULL, *mine = NULL, *run = NULL;
	int rc, st = TURN_ERROR;

	memset(&t, 0, sizeof t);
	t.o = o;
	t.d = d;
	*added = NULL;
	user = json_pack("{s:s, s:s}", "role", "user", "content", question);
	mine = json_array();
	if (!user || !mine || json_array_append(mine, user) < 0 || !(body = turn_body(o, past, user))) {
		display_notice(d, DISPLAY_ERROR, "error: out of memory");
		goto out;
	}
	rc = toolloop_run(tl, body, NULL, &sink, &run);
	if (*tl->unavailable) /* answered without some servers' tools: say so */
		display_notice(d, DISPLAY_INFO, "note: these MCP tools were not offered: %s", tl->unavailable_why);
	st = turn_finish(&t, rc, mine, run);
	if (st == TURN_OK) {
		*added = mine;
		mine = NULL;
	}
out:
	json_decref(user);
	json_decref(body);
	json_decref(mine);
	json_decref(run);
	return st;
}
