/* call.c: clients' tools/call requests routed to their session, with timeouts, and retries where they cannot repeat a side effect.
 *
 * A call that never left the broker (its server not connected yet, or the
 * send refused) waits for the server and is sent when it is ready. A call
 * that was sent may have run even when no answer comes (the server timed
 * out after committing, or died after it): it is sent again only when the
 * tool's annotations say that is harmless (readOnlyHint or idempotentHint,
 * MCP ToolAnnotations; both default to false). Every failure states the
 * time the caller actually waited, from the call's start.
 *
 * Each server has a bound (struct srvq): at most maxConcurrentCalls calls hold a
 * place on it (sent, or waiting for the server to be ready; a call sent again
 * after a failure keeps its place), the next maxQueuedCalls wait in a FIFO, and
 * one more is refused at once ("busy"). A waiting call's first attempt ends by
 * its timeout counted from its arrival; one whose client left is dropped without
 * reaching the server. While other callers' calls wait in a queue, a caller holds
 * at most its share of it (half, rounded up); alone it may fill it, and a full
 * queue then takes a call of a caller holding less than its share by refusing
 * the newest waiting call of the one holding more. */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "catalog.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mcp/bclient.h" /* BC_META_CALLER */
#include "mcp/jsonrpc.h"
#include "mcp/jsonspan.h"
#include "session.h"
#include "sharedtext.h"

struct call { /* one client tools/call, across retries */
	struct calls *cs;
	uint64_t from;     /* the client, as the reply function knows it */
	json_t *client_id; /* the client's request id */
	struct session *s;
	char *mcp_name;
	json_t *arguments; /* NULL when args_is_text */
	/* a large call's arguments as the client sent them (calls_start_text), by reference:
	 * dropped once sent when no second attempt can need them (args_text.t NULL then) */
	struct sharedtext_slice args_text;
	int args_is_text;
	json_t *meta;   /* the client's params._meta, forwarded (without mcpgw/caller) */
	char *caller;   /* its _meta "mcpgw/caller" (the audit table's key id), "" anonymous */
	int attempts;   /* sends so far */
	int retry_safe; /* the tool says a repeat does no harm (catalog_entry) */
	int sent;       /* attempts that left the broker (and may have run) */
	int64_t started_ms;
	int64_t deadline_ms;
	long timeout_ms;
	json_int_t srv_req_id; /* 0 when not in flight */
	struct srvq *q;        /* its server's bound */
	int holds;             /* holds one of q's places (sent, or waiting for its server) */
	int queued;            /* waits in q for a place */
	int gone;              /* queued, and its client left (1) or cancelled it (2): dropped at the next tidy */
	/* a call that waited in the queue: its first attempt ends by this (its timeout from its arrival); 0: none */
	int64_t first_deadline_ms;
	struct call *next, *prev;
	struct call *qnext, *qprev; /* in q's queue */
};

struct srvq { /* one server's bound on its calls */
	const struct session *s;
	int running;              /* calls holding a place */
	int queued;               /* calls waiting for one */
	struct call *head, *tail; /* the waiting calls, oldest first */
	int64_t warned_ms;        /* the last busy refusal logged: at most one line a second */
	long unlogged;            /* busy refusals since, not logged */
	struct srvq *next;
};

struct calls {
	struct evloop *loop;
	const struct settings *set;
	const struct catalog *cat;
	calls_reply_fn *reply;
	calls_reply_raw_fn *reply_raw;
	void *reply_ctx;
	struct audit *audit;     /* calls_set_audit, may be NULL */
	struct metrics *metrics; /* calls_set_metrics, may be NULL */
	/* the latency histogram of each server, looked up once (a call adds to it
	 * without formatting or hashing a series name); direct-mapped by name */
	struct {
		char server[64]; /* "" empty */
		struct metrics_hist h;
	} latency[16];
	struct call *list; /* every live call */
	int n;
	int stopping;
	int tidy;            /* a place came free or a client left: the queues move at the timer (calls_fire) */
	int gone;            /* some waiting call's client left (calls_client_gone): tidy drops it */
	struct srvq *queues; /* one per server that was called */
	long timer;
};

static void call_dispatch(struct call *c);
static void tidy(struct calls *cs);

/* max_running, max_queued: server s's bounds (its config entry's, else the settings') */
static int max_running(const struct calls *cs, const struct session *s)
{
	if (s->cfg->max_concurrent_calls > 0)
		return s->cfg->max_concurrent_calls;
	return cs->set->server_max_calls > 0 ? cs->set->server_max_calls : CALLS_SERVER_MAX_DEFAULT;
}

static int max_queued(const struct calls *cs, const struct session *s)
{
	return s->cfg->max_queued_calls >= 0 ? s->cfg->max_queued_calls : cs->set->server_max_queued;
}

/* srvq_of: s's bound, made on first use; NULL on ENOMEM */
static struct srvq *srvq_of(struct calls *cs, const struct session *s)
{
	struct srvq *q;

	for (q = cs->queues; q; q = q->next)
		if (q->s == s)
			return q;
	if (!(q = calloc(1, sizeof *q)))
		return NULL;
	q->s = s;
	q->next = cs->queues;
	cs->queues = q;
	return q;
}

/* enqueue, unqueue: c joins the end of its server's queue, or leaves it */
static void enqueue(struct call *c)
{
	struct srvq *q = c->q;

	c->queued = 1;
	c->qnext = NULL;
	c->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = c;
	else
		q->head = c;
	q->tail = c;
	q->queued++;
}

static void unqueue(struct call *c)
{
	struct srvq *q = c->q;

	if (c->qprev)
		c->qprev->qnext = c->qnext;
	else
		q->head = c->qnext;
	if (c->qnext)
		c->qnext->qprev = c->qprev;
	else
		q->tail = c->qprev;
	c->qnext = c->qprev = NULL;
	c->queued = 0;
	q->queued--;
}

/* call_release: what a call holds, and the call (not listed, or unlinked by call_free) */
static void call_release(struct call *c)
{
	json_decref(c->client_id);
	json_decref(c->arguments);
	sharedtext_unref(c->args_text.t);
	json_decref(c->meta);
	free(c->caller);
	free(c->mcp_name);
	free(c);
}

/* call_free: a listed call taken off the list and released */
static void call_free(struct call *c)
{
	struct calls *cs = c->cs;

	cs->n--;
	if (c->queued)
		unqueue(c);
	if (c->holds) { /* its place comes free: the next waiting call takes it (calls_fire) */
		c->q->running--;
		cs->tidy = 1;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	call_release(c);
}

/* call_latency: one observation of us in server's mcpgw_tool_call_duration_seconds (labels: its labels) */
static void call_latency(struct calls *cs, const char *server, const char *const *labels, int64_t us)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (const char *p = server; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	i = h % (sizeof cs->latency / sizeof *cs->latency);
	if (!*server || strlen(server) >= sizeof cs->latency[i].server) { /* not to remember: looked up each time */
		metrics_observe(cs->metrics, "mcpgw_tool_call_duration_seconds", labels, us);
		return;
	}
	if (strcmp(cs->latency[i].server, server) != 0) {
		snprintf(cs->latency[i].server, sizeof cs->latency[i].server, "%s", server);
		(void)metrics_hist_ref(cs->metrics, "mcpgw_tool_call_duration_seconds", labels, &cs->latency[i].h);
	}
	metrics_hist_observe(&cs->latency[i].h, us);
}

/* call_audit: c ended with result or error (code when error is NULL): its row in the audit table */
static void call_audit(const struct call *c, const json_t *result, const json_t *error, int64_t code)
{
	int64_t now = evloop_now(c->cs->loop);

	/* the wall-clock start: the loop's clock is monotonic */
	if (c->args_is_text)
		audit_call_args_text(c->cs->audit, c->caller, c->s->cfg->name, c->mcp_name,
				     clock_wall_ms() - (now - c->started_ms), now - c->started_ms, &c->args_text,
				     c->args_text.len, result, error, code, NULL, 0, 0);
	else
		audit_call(c->cs->audit, c->caller, c->s->cfg->name, c->mcp_name, clock_wall_ms() - (now - c->started_ms),
			   now - c->started_ms, c->arguments, result, error, code);
	if (c->cs->metrics) {
		const char *outcome =
			result ? (json_is_true(json_object_get(result, "isError")) ? "is_error" : "ok") : "error";
		const char *labels[] = { "server", c->s->cfg->name, "tool", c->mcp_name, "outcome", outcome, NULL };
		char series[METRICS_NAME_MAX];

		if (metrics_series(series, sizeof series, "mcpgw_tool_calls_total", labels) == 0)
			metrics_add(c->cs->metrics, series, 1);
		labels[2] = NULL;
		call_latency(c->cs, c->s->cfg->name, labels, (now - c->started_ms) * 1000);
	}
}

/* call_audit_text: c ended with a large result given as text (raw) */
static void call_audit_text(const struct call *c, const struct session_raw *raw, int is_error)
{
	int64_t now = evloop_now(c->cs->loop);

	if (c->args_is_text)
		audit_call_args_text(c->cs->audit, c->caller, c->s->cfg->name, c->mcp_name,
				     clock_wall_ms() - (now - c->started_ms), now - c->started_ms, &c->args_text,
				     c->args_text.len, NULL, NULL, 0, raw->text + raw->result.off, raw->result.len,
				     is_error);
	else
		audit_call_text(c->cs->audit, c->caller, c->s->cfg->name, c->mcp_name,
				clock_wall_ms() - (now - c->started_ms), now - c->started_ms, c->arguments,
				raw->text + raw->result.off, raw->result.len, is_error);
	if (c->cs->metrics) {
		const char *labels[] = { "server",    c->s->cfg->name, "tool",
					 c->mcp_name, "outcome",       is_error ? "is_error" : "ok",
					 NULL };
		char series[METRICS_NAME_MAX];

		if (metrics_series(series, sizeof series, "mcpgw_tool_calls_total", labels) == 0)
			metrics_add(c->cs->metrics, series, 1);
		labels[2] = NULL;
		call_latency(c->cs, c->s->cfg->name, labels, (now - c->started_ms) * 1000);
	}
}

static void reply_error(struct calls *cs, uint64_t to, const json_t *id, int code, const char *msg, json_t *data)
{
	json_t *e = jr_error(id, code, msg, data);

	if (e)
		cs->reply(cs->reply_ctx, to, e);
	json_decref(e);
}

static long long waited_ms(const struct call *c)
{
	return (long long)(evloop_now(c->cs->loop) - c->started_ms);
}

/* attempt_deadline: when an attempt starting now ends: its timeout from now, but a first
 * attempt of a call that waited in the queue no later than its timeout from its arrival */
static int64_t attempt_deadline(const struct call *c)
{
	int64_t d = evloop_now(c->cs->loop) + c->timeout_ms;

	return c->attempts == 0 && c->first_deadline_ms && c->first_deadline_ms < d ? c->first_deadline_ms : d;
}

/* call_fail: answer the client with an error and drop the call; may_have_run:
 * it was sent and not answered, so it may have taken effect */
static void call_fail(struct call *c, int code, const char *reason, const char *msg, int may_have_run)
{
	json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:b}", "reason", reason, "server", c->s->cfg->name,
				 "state", session_state_name(c->s->state), "last_error", c->s->last_error, "waited_ms",
				 (json_int_t)waited_ms(c), "attempts", c->attempts, "may_have_run", may_have_run);

	if (data && code == JR_REQUEST_TIMEOUT && json_object_set_new(data, "timeout_ms", json_integer(c->timeout_ms)) < 0)
		log_warn("tools/call %s: out of memory noting its timeout", c->mcp_name);
	log_warn("tools/call %s on %s: %s", c->mcp_name, c->s->cfg->name, msg);
	call_audit(c, NULL, NULL, code);
	reply_error(c->cs, c->from, c->client_id, code, msg, data);
	call_free(c);
}

/* NOT_RETRIED: why a call that may have run is not sent again */
#define NOT_RETRIED \
	"not retried: it may have taken effect, and the tool is not annotated readOnlyHint or idempotentHint"
#define NOT_KEPT "not retried: its arguments were over 1 MiB, and the broker does not keep those for a second attempt"

/* arguments of a call safe to repeat over this are not kept for a second attempt (the
 * broker's memory: one more message-sized text held for the call's whole life) */
#define CALL_RETRY_ARGS_MAX ((size_t)1 << 20)

/* may_resend: the call can be sent once more (a tool safe to repeat whose arguments are kept) */
static int may_resend(const struct call *c)
{
	return c->retry_safe && (!c->args_is_text || c->args_text.t);
}

/* not_resent_why: why a call that may have run is not sent again */
static const char *not_resent_why(const struct call *c)
{
	return c->retry_safe ? NOT_KEPT : NOT_RETRIED;
}

/* on_transport_failure: the server went down with c (sent: in flight;
 * else never sent): wait for its restart, or give up */
static void on_transport_failure(struct call *c, const char *why, int sent)
{
	char msg[1200];

	if (c->srv_req_id && !sent) /* the transport says the one in flight never got there */
		c->sent--;
	c->srv_req_id = 0;
	if (sent && !may_resend(c)) {
		snprintf(msg, sizeof msg, "MCP server '%s' failed during tools/call '%s' after %lld ms (%s); %s",
			 c->s->cfg->name, c->mcp_name, waited_ms(c), why, not_resent_why(c));
		call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg, 1);
		return;
	}
	if (c->attempts > c->cs->set->tool_retries || c->cs->stopping) {
		snprintf(msg, sizeof msg,
			 "MCP server '%s' failed during tools/call '%s' (%s); gave up after %d attempt%s and %lld ms",
			 c->s->cfg->name, c->mcp_name, why, c->attempts, c->attempts == 1 ? "" : "s", waited_ms(c));
		call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg, c->sent > 0);
		return;
	}
	log_info("tools/call %s on %s: %s; %s after the restart", c->mcp_name, c->s->cfg->name, why,
		 sent ? "retrying (the tool is annotated as safe to repeat)" : "sending it");
	c->deadline_ms = evloop_now(c->cs->loop) + c->timeout_ms; /* the session decides next: restart (wait) or failed */
}

/* result_for_client: a copy of the server's result object (borrowed) with
 * _meta["mcpgw/server"] set (a _meta that is no object is replaced; the
 * server's own message is not touched). New reference, NULL on ENOMEM. */
static json_t *result_for_client(const json_t *result, const char *server)
{
	json_t *out = json_copy((json_t *)result), *meta = json_object_get(result, "_meta");

	meta = json_is_object(meta) ? json_copy(meta) : json_object();
	if (!out || !meta || json_object_set_new(meta, "mcpgw/server", json_string(server)) < 0) {
		json_decref(meta);
		json_decref(out);
		return NULL;
	}
	if (json_object_set_new(out, "_meta", meta) < 0) { /* meta is taken even then */
		json_decref(out);
		return NULL;
	}
	return out;
}

/* server_error_for_client: the server's JSON-RPC error (borrowed) for the
 * client: passed on when it is an object with an integer code and a string
 * message, else replaced by an error saying the server's was malformed.
 * New reference, NULL on ENOMEM. */
static json_t *server_error_for_client(const struct call *c, const json_t *err)
{
	char text[300];

	if (json_is_object(err) && json_is_integer(json_object_get(err, "code")) &&
	    json_is_string(json_object_get(err, "message")))
		return json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", c->client_id, "error", err);
	snprintf(text, sizeof text, "MCP server '%s' answered tools/call '%s' with a malformed error", c->s->cfg->name,
		 c->mcp_name);
	log_warn("%s", text);
	return jr_error(c->client_id, JR_INTERNAL_ERROR, text,
			json_pack("{s:s, s:s}", "reason", "invalid_result", "server", c->s->cfg->name));
}

/* a large result's members, spliced into the client's answer (splice_member, splice_meta) */
struct splice {
	const char *text;
	struct jsonspan run[2]; /* the members before "_meta" and after it, as runs of the text */
	int in;                 /* the run being extended */
	int is_error;           /* "isError": true */
	struct jsonspan meta;   /* the server's "_meta" value ({0, 0}: none) */
	buf_t *out;             /* splice_meta: the _meta members kept */
	int failed;
};

static int splice_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct splice *sp = ctx;
	struct jsonspan *r = &sp->run[sp->in];

	if (strcmp(key, "_meta") == 0) { /* written last, with mcpgw's member */
		if (sp->meta.len)        /* twice: a tree of it would be refused (JSON_REJECT_DUPLICATES) */
			return sp->failed = 1;
		sp->meta = v;
		sp->in = 1;
		return 0;
	}
	if (strcmp(key, "isError") == 0)
		sp->is_error = v.len == 4 && memcmp(sp->text + v.off, "true", 4) == 0;
	if (!r->len) /* members next to each other are one run: a comma and blanks between */
		r->off = m.off;
	r->len = m.off + m.len - r->off;
	return 0;
}

static int splice_meta(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct splice *sp = ctx;

	(void)v;
	if (strcmp(key, "mcpgw/server") == 0) /* mcpgw's own is set after them */
		return 0;
	if (buf_append(sp->out, sp->text + m.off, m.len) < 0 || buf_append(sp->out, ",", 1) < 0)
		return sp->failed = 1;
	return 0;
}

/* answer_parts: the client's answer to c from the server's large result (raw: checked
 * JSON, never parsed whole) as head, the result's members as the server wrote them
 * (runs: sp->run[0], sp->run[1]) and tail: its _meta (an object's members; anything
 * else replaced) with "mcpgw/server" set, as result_for_client does with a tree.
 * 0, or -1 on ENOMEM; 1 when the result is not an object (or repeats its _meta). */
static int answer_parts(const struct call *c, const struct session_raw *raw, struct splice *sp, buf_t *head, buf_t *tail)
{
	json_t *server;
	int rc = -1;

	*sp = (struct splice){ .text = raw->text, .out = tail };
	if (raw->text[raw->result.off] != '{')
		return 1;
	if (jsonspan_members(raw->text, raw->result, splice_member, sp) != 0)
		return sp->failed ? 1 : -1;
	if (!(server = json_string(c->s->cfg->name)) || buf_puts(head, "{\"jsonrpc\":\"2.0\",\"id\":") < 0 ||
	    jr_append(head, c->client_id) < 0 || buf_puts(head, ",\"result\":{") < 0 ||
	    buf_puts(tail, sp->run[0].len || sp->run[1].len ? ",\"_meta\":{" : "\"_meta\":{") < 0)
		goto out;
	if (sp->meta.len && raw->text[sp->meta.off] == '{' &&
	    (jsonspan_members(raw->text, sp->meta, splice_meta, sp) < 0 || sp->failed))
		goto out;
	if (buf_puts(tail, "\"mcpgw/server\":") < 0 || jr_append(tail, server) < 0 || buf_puts(tail, "}}}\n") < 0)
		goto out;
	rc = 0;
out:
	json_decref(server);
	return rc;
}

/* reply_parts: the answer head, runs of the message (block: the message handed over by
 * the session, shared, not copied; NULL: copied), tail, sent to c's client. 0 or -1 */
static int reply_parts(struct call *c, const struct session_raw *raw, const struct splice *sp, buf_t *head, buf_t *tail,
		       char *block, size_t block_size)
{
	struct sharedtext *msg = block ? sharedtext_take(block, block_size) : NULL, *h, *t, *comma;
	size_t base = block ? (size_t)(raw->text - block) : 0, n = 0;
	struct sharedtext_slice parts[5];
	int rc = -1;

	if (!msg) /* the session could not hand the message over: the runs are copied */
		for (int i = 0; i < 2; i++)
			if (sp->run[i].len && ((i && sp->run[0].len && buf_append(head, ",", 1) < 0) ||
					       buf_append(head, raw->text + sp->run[i].off, sp->run[i].len) < 0))
				return -1;
	h = sharedtext_copy(head->data, head->len);
	t = sharedtext_copy(tail->data, tail->len);
	comma = sharedtext_copy(",", 1);
	if (h && t && comma && (msg || !block)) {
		parts[n++] = (struct sharedtext_slice){ h, 0, head->len };
		for (int i = 0; msg && i < 2; i++) {
			if (!sp->run[i].len)
				continue;
			if (i && sp->run[0].len)
				parts[n++] = (struct sharedtext_slice){ comma, 0, 1 };
			parts[n++] = (struct sharedtext_slice){ msg, base + sp->run[i].off, sp->run[i].len };
		}
		parts[n++] = (struct sharedtext_slice){ t, 0, tail->len };
		c->cs->reply_raw(c->cs->reply_ctx, c->from, parts, n);
		rc = 0;
	}
	sharedtext_unref(msg);
	sharedtext_unref(h);
	sharedtext_unref(t);
	sharedtext_unref(comma);
	return rc;
}

/* on_answer_text: the server's large result (raw) passed on to the client without a
 * tree, and without a copy when the session hands the message over */
static void on_answer_text(struct call *c, const struct session_raw *raw)
{
	buf_t head = BUF_INIT, tail = BUF_INIT;
	struct splice sp;
	int rc = answer_parts(c, raw, &sp, &head, &tail);
	char text[300];

	if (rc == 1) { /* a CallToolResult is an object: anything else is the server's fault */
		snprintf(text, sizeof text,
			 "MCP server '%s' answered tools/call '%s' with a result that is not an object",
			 c->s->cfg->name, c->mcp_name);
		log_warn("%s", text);
		call_audit(c, NULL, NULL, JR_INTERNAL_ERROR);
		reply_error(c->cs, c->from, c->client_id, JR_INTERNAL_ERROR, text,
			    json_pack("{s:s, s:s}", "reason", "invalid_result", "server", c->s->cfg->name));
	} else {
		size_t size = 0;
		char *block = NULL;

		if (rc == 0) {
			call_audit_text(c, raw, sp.is_error);
			block = session_take_message(c->s, &size);
		}
		if (rc < 0 || reply_parts(c, raw, &sp, &head, &tail, block, size) < 0) {
			if (rc < 0)
				call_audit(c, NULL, NULL, JR_INTERNAL_ERROR);
			reply_error(c->cs, c->from, c->client_id, JR_INTERNAL_ERROR,
				    "out of memory building the answer of the MCP server", NULL);
		}
	}
	buf_free(&head);
	buf_free(&tail);
	call_free(c);
}

/* on_answer: the server answered (result or error; raw: a large result as text), or
 * went down (msg NULL; reached 0: the call never got to it) */
static void on_answer(void *arg, json_t *msg, const struct session_raw *raw, const char *why, int reached)
{
	struct call *c = arg;
	json_t *result, *out;

	if (!msg) {
		on_transport_failure(c, why, reached);
		return;
	}
	if (raw) {
		on_answer_text(c, raw);
		return;
	}
	result = json_object_get(msg, "result");
	if (json_is_object(result)) {
		json_t *mine = result_for_client(result, c->s->cfg->name);

		call_audit(c, result, NULL, 0);
		out = mine ? jr_result(c->client_id, mine) : NULL;
	} else if (result) { /* a CallToolResult is an object: anything else is the server's fault */
		char text[300];

		snprintf(text, sizeof text,
			 "MCP server '%s' answered tools/call '%s' with a result that is not an object",
			 c->s->cfg->name, c->mcp_name);
		log_warn("%s", text);
		call_audit(c, NULL, NULL, JR_INTERNAL_ERROR);
		out = jr_error(c->client_id, JR_INTERNAL_ERROR, text,
			       json_pack("{s:s, s:s}", "reason", "invalid_result", "server", c->s->cfg->name));
	} else {
		call_audit(c, NULL, json_object_get(msg, "error"), JR_INTERNAL_ERROR);
		out = server_error_for_client(c, json_object_get(msg, "error"));
	}
	if (out)
		c->cs->reply(c->cs->reply_ctx, c->from, out);
	else /* the answer could not be built: the caller still hears of it */
		reply_error(c->cs, c->from, c->client_id, JR_INTERNAL_ERROR,
			    "out of memory building the answer of the MCP server", NULL);
	json_decref(out);
	call_free(c);
}

static void call_send(struct call *c)
{
	json_t *params = c->args_is_text ? json_pack("{s:s}", "name", c->mcp_name)
					 : json_pack("{s:s, s:O}", "name", c->mcp_name, "arguments", c->arguments);
	json_int_t id;
	int64_t deadline = attempt_deadline(c);
	char msg[1200];

	if (params && c->meta && json_object_set(params, "_meta", c->meta) < 0) {
		json_decref(params);
		params = NULL;
	}
	if (c->args_is_text && !c->args_text.t) { /* dropped: only a call that cannot be sent again drops them */
		json_decref(params);
		params = NULL;
	}
	if (!params)
		id = -1;
	else if (c->args_is_text)
		id = session_request_text(c->s, "tools/call", params, "arguments", &c->args_text, on_answer, c);
	else
		id = session_request(c->s, "tools/call", params, on_answer, c);
	if (id < 0) { /* nothing of it left the broker */
		c->attempts++;
		snprintf(msg, sizeof msg, "cannot send the call to server '%s'", c->s->cfg->name);
		on_transport_failure(c, msg, 0);
		return;
	}
	c->srv_req_id = id;
	c->sent++;
	c->attempts++;
	c->deadline_ms = deadline;
	/* large arguments the transport now holds by reference: once they are written they
	 * are freed, unless a retry (a tool safe to repeat) or the audit's payloads need them */
	if (c->args_is_text && (!c->retry_safe || c->args_text.len > CALL_RETRY_ARGS_MAX) &&
	    !audit_keeps_payloads(c->cs->audit) && session_sends_by_reference(c->s)) {
		sharedtext_unref(c->args_text.t);
		c->args_text.t = NULL;
	}
	log_debug("tools/call %s -> %s (attempt %d)", c->mcp_name, c->s->cfg->name, c->attempts);
}

/* call_dispatch: send now, wait for the server, or fail */
static void call_dispatch(struct call *c)
{
	char msg[1200];
	int n;

	switch (session_accepts_calls(c->s)) {
	case 1: call_send(c); break;
	case 0:
		c->srv_req_id = 0;
		c->deadline_ms = attempt_deadline(c);
		break;
	default:
		n = snprintf(msg, sizeof msg, "MCP server '%s' is unavailable (%s): %s", c->s->cfg->name,
			     session_state_name(c->s->state), *c->s->last_error ? c->s->last_error : "not running");
		if (waited_ms(c) > 0 && n > 0 && (size_t)n < sizeof msg) /* it waited for a restart that failed */
			snprintf(msg + n, sizeof msg - (size_t)n, " (waited %lld ms)", waited_ms(c));
		call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg, c->sent > 0);
	}
}

/* call_meta: c's caller from meta (borrowed, may be NULL) and the rest of meta
 * to forward: the caller's id is the gateway's, never the MCP server's. 0 or -1 (ENOMEM) */
static int call_meta(struct call *c, const json_t *meta)
{
	const char *caller = json_string_value(json_object_get(meta, BC_META_CALLER));

	if (!(c->caller = strdup(caller ? caller : "")))
		return -1;
	if (!json_is_object(meta)) { /* MCP's _meta is an object: anything else is not sent on */
		c->meta = NULL;
		return 0;
	}
	if (!json_object_get(meta, BC_META_CALLER)) {
		c->meta = json_incref((json_t *)meta);
		return 0;
	}
	if (!(c->meta = json_copy((json_t *)meta)))
		return -1;
	(void)json_object_del(c->meta, BC_META_CALLER);
	if (json_object_size(c->meta) == 0) {
		json_decref(c->meta);
		c->meta = NULL;
	}
	return 0;
}

void calls_set_audit(struct calls *cs, struct audit *a)
{
	cs->audit = a;
}

void calls_set_metrics(struct calls *cs, struct metrics *m)
{
	cs->metrics = m;
	memset(cs->latency, 0, sizeof cs->latency); /* what was looked up in another file */
}

enum admit { ADMIT_RUN, ADMIT_QUEUE, ADMIT_FULL, ADMIT_SHARE };

/* queue_counts: of q's waiting calls, how many are caller's (*mine), and the caller
 * holding more than share of them (*hog; NULL when none: share is at least half, so
 * only the majority's candidate, found by Boyer-Moore vote, can) */
static void queue_counts(const struct srvq *q, const char *caller, int share, int *mine, const char **hog)
{
	const char *cand = NULL;
	int votes = 0, n = 0;

	*mine = 0;
	for (const struct call *c = q->head; c; c = c->qnext) {
		*mine += strcmp(c->caller, caller) == 0;
		if (!votes)
			cand = c->caller, votes = 1;
		else
			votes += strcmp(cand, c->caller) == 0 ? 1 : -1;
	}
	for (const struct call *c = q->head; cand && c; c = c->qnext)
		n += strcmp(c->caller, cand) == 0;
	*hog = cand && n > share && 2 * n > q->queued ? cand : NULL;
}

/* admit: where a new call of caller on q goes: a place now, the queue (*evict, when set:
 * a waiting call to refuse to make room), or refused (the queue is full, or caller holds
 * its share of it, half rounded up, while other callers' calls wait) */
static enum admit admit(const struct calls *cs, const struct srvq *q, const char *caller, struct call **evict)
{
	int maxq = max_queued(cs, q->s), share = (maxq + 1) / 2, mine;
	const char *hog;

	*evict = NULL;
	if (!q->head && q->running < max_running(cs, q->s))
		return ADMIT_RUN;
	if (q->queued < share) /* nobody can hold a share yet: no need to count */
		return ADMIT_QUEUE;
	queue_counts(q, caller, share, &mine, &hog);
	if (mine >= share && q->queued > mine)
		return ADMIT_SHARE;
	if (q->queued < maxq)
		return ADMIT_QUEUE;
	if (!hog || strcmp(hog, caller) == 0)
		return ADMIT_FULL;
	for (struct call *c = q->tail; c; c = c->qprev) /* the hog's newest waiting call makes room */
		if (strcmp(c->caller, hog) == 0) {
			*evict = c;
			break;
		}
	return ADMIT_QUEUE;
}

/* refuse_busy: the call (id borrowed) of caller for tool on q refused at once (how: ADMIT_FULL or ADMIT_SHARE) */
static void refuse_busy(struct calls *cs, struct srvq *q, uint64_t from, const json_t *id, const char *tool,
			enum admit how)
{
	const char *server = q->s->cfg->name;
	int maxr = max_running(cs, q->s), maxq = max_queued(cs, q->s);
	char msg[600];

	if (how == ADMIT_SHARE)
		snprintf(msg, sizeof msg,
			 "MCP server '%s' is busy: this caller already holds its share (%d of the %d places) of its queue "
			 "while other callers' calls wait; tools/call '%s' was not run, try again later",
			 server, (maxq + 1) / 2, maxq, tool);
	else
		snprintf(msg, sizeof msg,
			 "MCP server '%s' is busy: %d tools/call in flight (its maxConcurrentCalls) and %d waiting (its "
			 "maxQueuedCalls); tools/call '%s' was not run, try again later",
			 server, q->running, q->queued, tool);
	if (q->warned_ms && evloop_now(cs->loop) - q->warned_ms < 1000) { /* a burst: one line a second */
		q->unlogged++;
	} else {
		if (q->unlogged)
			log_warn("tools/call %s on %s: %s (and %ld more refused since the last such line)", tool,
				 server, msg, q->unlogged);
		else
			log_warn("tools/call %s on %s: %s", tool, server, msg);
		q->warned_ms = evloop_now(cs->loop);
		q->unlogged = 0;
	}
	if (cs->metrics) {
		const char *labels[] = { "server", server, "tool", tool, "outcome", "busy", NULL };
		char series[METRICS_NAME_MAX];

		if (metrics_series(series, sizeof series, "mcpgw_tool_calls_total", labels) == 0)
			metrics_add(cs->metrics, series, 1);
	}
	reply_error(cs, from, id, JR_CONNECTION_CLOSED, msg,
		    json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "reason", "busy", "server", server, "limit",
			      how == ADMIT_SHARE ? "caller_share" : "maxQueuedCalls", "calls_in_flight", q->running,
			      "calls_queued", q->queued, "max_concurrent_calls", maxr, "max_queued_calls", maxq,
			      "may_have_run", 0));
}

/* evict: a waiting call refused to make room for another caller's */
static void evict(struct call *c)
{
	char msg[600];

	snprintf(msg, sizeof msg,
		 "MCP server '%s' is busy: tools/call '%s' gave its place in the queue to another caller's after "
		 "waiting %lld ms (a caller holds at most half of the queue when others' calls wait); it was not run, try "
		 "again later",
		 c->s->cfg->name, c->mcp_name, waited_ms(c));
	call_fail(c, JR_CONNECTION_CLOSED, "busy", msg, 0);
}

/* start: a client's tools/call (id and params borrowed) with its arguments as a tree
 * (args, borrowed, NULL: none) or, when args_text is not NULL, as text (borrowed; referenced) */
static void start(struct calls *cs, uint64_t from, const json_t *id, const json_t *params, const json_t *args,
		  const struct sharedtext_slice *args_text)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	const char *caller = json_string_value(json_object_get(json_object_get(params, "_meta"), BC_META_CALLER));
	const struct catalog_entry *e;
	struct call *c, *out = NULL;
	struct srvq *q;
	enum admit how = ADMIT_RUN;
	char msg[200];

	if (!name || (args && !json_is_object(args) && !json_is_null(args)) ||
	    (args_text && sharedtext_data(args_text->t)[args_text->off] != '{')) {
		reply_error(cs, from, id, JR_INVALID_PARAMS,
			    !name ? "tools/call needs a string 'name'" : "'arguments' must be an object",
			    json_pack("{s:s}", "reason", "invalid_params"));
		return;
	}
	if (!(e = catalog_find(cs->cat, name))) {
		snprintf(msg, sizeof msg, "Unknown tool: %.120s", name);
		reply_error(cs, from, id, JR_INVALID_PARAMS, msg,
			    json_pack("{s:s, s:s}", "reason", "unknown_tool", "tool", name));
		return;
	}
	if (cs->n >= CALLS_MAX) {
		reply_error(cs, from, id, JR_CONNECTION_CLOSED, "too many tool calls in flight in the broker",
			    json_pack("{s:s, s:i}", "reason", "overloaded", "limit", CALLS_MAX));
		return;
	}
	if (!(q = srvq_of(cs, e->session))) {
		reply_error(cs, from, id, JR_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	/* places that came free earlier in this pass of the loop go to the calls waiting for them
	 * first: a burst read in one pass is not queued (or refused) while the server is idle */
	if (cs->tidy)
		tidy(cs);
	/* a server that is down fails the call at once (call_dispatch), queue or not */
	if (session_accepts_calls(e->session) >= 0 &&
	    ((how = admit(cs, q, caller ? caller : "", &out)) == ADMIT_FULL || how == ADMIT_SHARE)) {
		refuse_busy(cs, q, from, id, e->mcp_name, how);
		return;
	}
	if (!(c = calloc(1, sizeof *c)) || !(c->mcp_name = strdup(e->mcp_name))) {
		free(c);
		reply_error(cs, from, id, JR_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	c->cs = cs;
	c->from = from;
	c->client_id = json_deep_copy(id);
	c->s = e->session;
	c->q = q;
	c->retry_safe = e->retry_safe;
	c->started_ms = evloop_now(cs->loop);
	if (args_text) {
		c->args_is_text = 1;
		c->args_text = *args_text;
		c->args_text.t = sharedtext_ref(args_text->t);
	} else {
		c->arguments = json_is_object(args) ? json_incref((json_t *)args) : json_object();
	}
	if ((!args_text && !c->arguments) || call_meta(c, json_object_get(params, "_meta")) < 0) {
		call_release(c); /* set up half-way, not yet listed */
		reply_error(cs, from, id, JR_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	c->timeout_ms = c->s->cfg->timeout_ms > 0 ? c->s->cfg->timeout_ms : cs->set->tool_timeout_ms;
	c->next = cs->list;
	if (cs->list)
		cs->list->prev = c;
	cs->list = c;
	cs->n++;
	if (how == ADMIT_QUEUE && session_accepts_calls(c->s) >= 0) {
		if (out)
			evict(out);
		c->first_deadline_ms = c->deadline_ms = c->started_ms + c->timeout_ms;
		enqueue(c);
		log_debug("tools/call %s on %s: waits for a place (%d in flight, %d waiting)", c->mcp_name,
			  c->s->cfg->name, q->running, q->queued);
		return;
	}
	if (session_accepts_calls(c->s) >= 0) {
		c->holds = 1;
		q->running++;
	}
	call_dispatch(c);
}

void calls_start(struct calls *cs, uint64_t from, const json_t *id, const json_t *params)
{
	start(cs, from, id, params, json_object_get(params, "arguments"), NULL);
}

void calls_start_text(struct calls *cs, uint64_t from, const json_t *id, const json_t *params,
		      const struct sharedtext_slice *args)
{
	const char *t = sharedtext_data(args->t) + args->off;

	if (args->len == 4 && memcmp(t, "null", 4) == 0) { /* as a tree would have it: no arguments */
		start(cs, from, id, params, NULL, NULL);
		return;
	}
	start(cs, from, id, params, NULL, args);
}

void calls_session_ready(struct calls *cs, struct session *s)
{
	for (struct call *c = cs->list, *next; c; c = next) {
		next = c->next;
		if (c->s == s && c->srv_req_id == 0 && c->holds)
			call_send(c);
	}
}

void calls_session_failed(struct calls *cs, struct session *s)
{
	for (struct call *c = cs->list, *next; c; c = next) {
		next = c->next;
		if (c->s == s && c->srv_req_id == 0 && c->holds)
			call_dispatch(c);
		else if (c->s == s && c->queued && session_accepts_calls(s) < 0) {
			unqueue(c); /* it would fail when its turn came: at once instead */
			call_dispatch(c);
		}
	}
}

/* call_timed_out: no answer by the deadline: cancel it; send it again when
 * the tool says that is safe and retries are left, else fail saying how
 * long the caller waited */
static void call_timed_out(struct call *c)
{
	struct calls *cs = c->cs;
	char msg[600];

	if (c->queued) { /* never sent: its timeout counts from its arrival */
		snprintf(msg, sizeof msg,
			 "MCP server '%s' was busy: tools/call '%s' waited %lld ms for one of its %d places "
			 "(maxConcurrentCalls) and did not start within its timeout of %ld ms; it was not run",
			 c->s->cfg->name, c->mcp_name, waited_ms(c), max_running(cs, c->s), c->timeout_ms);
		call_fail(c, JR_REQUEST_TIMEOUT, "timeout", msg, 0);
		return;
	}
	if (c->srv_req_id) {
		json_t *params = json_pack("{s:I, s:s}", "requestId", c->srv_req_id, "reason", "timeout");

		session_forget(c->s, c->srv_req_id);
		if (params)
			session_notify(c->s, "notifications/cancelled", params);
		c->srv_req_id = 0;
		if (may_resend(c) && c->attempts <= cs->set->tool_retries && !cs->stopping) {
			log_info("tools/call %s on %s: no answer within %ld ms; retrying (the tool is annotated as safe "
				 "to repeat)",
				 c->mcp_name, c->s->cfg->name, c->timeout_ms);
			call_dispatch(c);
			return;
		}
		if (!may_resend(c))
			snprintf(msg, sizeof msg,
				 "MCP server '%s' did not answer tools/call '%s' within its timeout of %ld ms (waited %lld "
				 "ms); %s",
				 c->s->cfg->name, c->mcp_name, c->timeout_ms, waited_ms(c), not_resent_why(c));
		else
			snprintf(msg, sizeof msg,
				 "MCP server '%s' did not answer tools/call '%s': %d attempt%s of %ld ms each timed out "
				 "(waited %lld ms)",
				 c->s->cfg->name, c->mcp_name, c->attempts, c->attempts == 1 ? "" : "s", c->timeout_ms,
				 waited_ms(c));
		call_fail(c, JR_REQUEST_TIMEOUT, "timeout", msg, 1);
		return;
	}
	snprintf(msg, sizeof msg, "MCP server '%s' did not become ready for tools/call '%s' (waited %lld ms; %s)",
		 c->s->cfg->name, c->mcp_name, waited_ms(c), session_state_name(c->s->state));
	call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg, c->sent > 0);
}

/* tidy: queued calls whose client left are dropped; the calls first in line take the places that came free */
static void tidy(struct calls *cs)
{
	cs->tidy = 0;
	for (struct call *c = cs->gone ? cs->list : NULL, *next; c; c = next) {
		next = c->next;
		if (c->gone) {
			log_info("tools/call %s on %s: its client %s after %lld ms in the queue; dropped, not run",
				 c->mcp_name, c->s->cfg->name, c->gone == 2 ? "cancelled it" : "left", waited_ms(c));
			call_audit(c, NULL, NULL, JR_CONNECTION_CLOSED);
			call_free(c);
		}
	}
	cs->gone = 0;
	for (struct srvq *q = cs->queues; q; q = q->next)
		while (q->head && q->running < max_running(cs, q->s)) {
			struct call *c = q->head;

			unqueue(c);
			if (session_accepts_calls(c->s) >= 0) {
				c->holds = 1;
				q->running++;
			}
			log_debug("tools/call %s on %s: its turn after %lld ms in the queue", c->mcp_name,
				  c->s->cfg->name, waited_ms(c));
			call_dispatch(c); /* sent, waits for its server (holding the place), or fails */
		}
}

static int64_t calls_due(void *ctx)
{
	const struct calls *cs = ctx;
	int64_t d = cs->tidy ? evloop_now(cs->loop) : EVLOOP_NEVER;

	for (const struct call *c = cs->list; c; c = c->next)
		if (c->deadline_ms < d)
			d = c->deadline_ms;
	return d;
}

static void calls_fire(void *ctx, int64_t now)
{
	struct calls *cs = ctx;

	for (struct call *c = cs->list, *next; c; c = next) {
		next = c->next;
		if (now >= c->deadline_ms && !c->gone)
			call_timed_out(c);
	}
	if (cs->tidy)
		tidy(cs);
}

void calls_client_gone(struct calls *cs, uint64_t from)
{
	for (struct call *c = cs->list; c; c = c->next) /* nothing is freed here: the caller may be inside a reply */
		if (c->from == from && c->queued) {
			c->gone = 1;
			cs->tidy = cs->gone = 1;
		}
}

void calls_cancel(struct calls *cs, uint64_t from, const json_t *id)
{
	if (!id)
		return;
	for (struct call *c = cs->list; c; c = c->next)
		if (c->from == from && c->queued && !c->gone && json_equal(c->client_id, (json_t *)id)) {
			c->gone = 2;
			cs->tidy = cs->gone = 1;
			return;
		}
}

void calls_load(const struct calls *cs, const struct session *s, struct calls_load *out)
{
	const struct srvq *q = cs->queues;

	while (q && q->s != s)
		q = q->next;
	*out = (struct calls_load){ .in_flight = q ? q->running : 0,
				    .queued = q ? q->queued : 0,
				    .max_in_flight = max_running(cs, s),
				    .max_queued = max_queued(cs, s) };
}

void calls_shutdown(struct calls *cs, const char *why)
{
	cs->stopping = 1;
	while (cs->list)
		call_fail(cs->list, JR_CONNECTION_CLOSED, "unavailable", why, cs->list->sent > 0);
}

int calls_count(const struct calls *cs)
{
	return cs->n;
}

struct calls *calls_new(struct evloop *l, const struct settings *set, const struct catalog *cat, calls_reply_fn *reply,
			calls_reply_raw_fn *reply_raw, void *ctx)
{
	struct calls *cs = calloc(1, sizeof *cs);

	if (!cs)
		return NULL;
	*cs = (struct calls){ .loop = l, .set = set, .cat = cat, .reply = reply, .reply_raw = reply_raw, .reply_ctx = ctx };
	if ((cs->timer = evloop_timer_add(l, calls_due, calls_fire, cs)) < 0) {
		free(cs);
		return NULL;
	}
	return cs;
}

void calls_free(struct calls *cs)
{
	if (!cs)
		return;
	while (cs->list) {
		struct call *c = cs->list;

		if (c->srv_req_id)
			session_forget(c->s, c->srv_req_id);
		call_free(c);
	}
	while (cs->queues) {
		struct srvq *q = cs->queues;

		cs->queues = q->next;
		free(q);
	}
	evloop_timer_del(cs->loop, cs->timer);
	free(cs);
}
