/* session.c: one MCP server over its transport: initialize, tools/list with pages, server requests and notifications, supervision with backoff. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/metrics.h"
#include "core/version.h"
#include "mcp/jsonrpc.h"
#include "mcp/jsonspan.h"
#include "mcp/toolschema.h"
#include "sharedtext.h"
#include "transport_http.h"
#include "transport_stdio.h"

enum preq_kind { PREQ_INIT, PREQ_LIST, PREQ_EXT };

static void acc_reset(struct session_tools_acc *a);

struct preq { /* one request in flight to the server */
	json_int_t id;
	enum preq_kind kind;
	session_answer_fn *fn; /* PREQ_EXT */
	void *arg;
	int undelivered; /* the transport said it never reached the server */
	struct preq *next;
};

static const char *const state_names[] = { "stopped", "starting", "ready", "backoff", "disabled", "stopping" };

const char *session_state_name(enum session_state st)
{
	return state_names[st];
}

const char *session_transport_name(const struct session *s)
{
	return s->t->ops->name(s->t);
}

long session_pid(const struct session *s)
{
	return s->connected ? s->t->ops->pid(s->t) : 0;
}

int session_running(const struct session *s)
{
	return session_pid(s) > 0;
}

static int64_t now_ms(const struct session *s)
{
	return evloop_now(s->env->tenv.loop);
}

static const struct settings *set_of(const struct session *s)
{
	return s->env->tenv.set;
}

static void hook(struct session *s, void (*fn)(void *, struct session *))
{
	if (fn)
		fn(s->env->hooks_ctx, s);
}

static uint64_t fnv_add(uint64_t h, const char *p)
{
	for (const unsigned char *q = (const unsigned char *)p; q && *q; q++)
		h = (h ^ *q) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL; /* separator: ("ab","c") != ("a","bc") */
}

/* fingerprint: FNV-1a 64 over the parts of the entry that decide what the server is */
static void fingerprint(struct session *s)
{
	const struct cfg_server *c = s->cfg;
	uint64_t h = fnv_add(fnv_add(fnv_add(1469598103934665603ULL, c->command), c->url), c->cwd);

	for (size_t i = 0; i < c->nargs; i++)
		h = fnv_add(h, c->args[i]);
	for (size_t i = 0; i < c->nenv; i++)
		h = fnv_add(h, c->env[i]);
	for (size_t i = 0; i < c->nheaders; i++)
		h = fnv_add(h, c->headers[i]);
	snprintf(s->fingerprint, sizeof s->fingerprint, "%016llx", (unsigned long long)h);
}

static void set_state(struct session *s, enum session_state st)
{
	if (s->state == st)
		return;
	log_info("server %s: %s -> %s", s->cfg->name, session_state_name(s->state), session_state_name(st));
	s->state = st;
	s->since_ms = now_ms(s);
	hook(s, s->env->hooks->changed); /* saved; tools/list names the servers that are not ready */
}

/* fail_pending: every request in flight ends: callers learn why */
static void fail_pending(struct session *s, const char *why)
{
	while (s->pending) {
		struct preq *p = s->pending;

		s->pending = p->next;
		if (p->kind == PREQ_EXT && p->fn)
			p->fn(p->arg, NULL, NULL, why, !p->undelivered);
		free(p);
	}
}

/* count_restart: one more restart of s in the shared counters */
static void count_restart(const struct session *s)
{
	const char *labels[] = { "server", s->cfg->name, NULL };
	char series[METRICS_NAME_MAX];

	if (s->env->metrics && metrics_series(series, sizeof series, "mcpgw_mcp_server_restarts_total", labels) == 0)
		metrics_add(s->env->metrics, series, 1);
}

/* down: the connection is gone (died, failed, or stopped). The transport
 * is closed, requests in flight fail (their callers retry or give up), and
 * a restart is scheduled unless the session stops. last_error says why to
 * clients, last_detail and the log add the telling line the server left
 * (its stderr: a DSN with a password, a token; issue 14: "stderr tails
 * stay in the log"); URLs are redacted in both. The next attempt's time is
 * its own field (the log line says it too). */
static void down(struct session *s, const char *why)
{
	char tail[512] = "", shown_tail[600], shown_why[sizeof s->last_error], delay[32] = "";
	int was_ready = s->state == SESSION_READY, stopping = s->shutting || s->state == SESSION_STOPPING;

	s->t->ops->diagnostic(s->t, tail, sizeof tail);
	redact_text(why, strlen(why), shown_why, sizeof shown_why);
	redact_text(tail, strlen(tail), shown_tail, sizeof shown_tail);
	if (*tail) {
		snprintf(s->last_error, sizeof s->last_error, "%.990s; see the broker log", shown_why);
		snprintf(s->last_detail, sizeof s->last_detail, "%.500s (stderr: %.500s)", shown_why, shown_tail);
	} else {
		snprintf(s->last_error, sizeof s->last_error, "%s", shown_why);
		snprintf(s->last_detail, sizeof s->last_detail, "%s", shown_why);
	}
	if (!stopping) {
		snprintf(s->last_failure, sizeof s->last_failure, "%s", s->last_error);
		s->last_failure_ms = now_ms(s);
		if (s->last_failure_ms == 0)
			s->last_failure_ms = 1; /* 0 says never */
		s->backoff_ms = backoff_next(s->backoff_ms, was_ready, s->served, now_ms(s) - s->since_ms,
					     set_of(s)->restart_backoff_max_ms);
		if (was_ready)
			s->fail_streak = 0;
		else
			s->fail_streak++;
		backoff_format(delay, sizeof delay, s->backoff_ms);
	}
	if (stopping)
		log_info("server %s: %s", s->cfg->name, s->last_detail);
	else if (s->fail_streak > 1)
		log_warn("server %s: %s; retrying in %s (failed %d times in a row)", s->cfg->name, s->last_detail,
			 delay, s->fail_streak);
	else
		log_warn("server %s: %s; retrying in %s", s->cfg->name, s->last_detail, delay);
	s->connected = 0;
	s->t->ops->close(s->t);
	acc_reset(&s->list_acc);
	s->listing = s->relist = 0;
	fail_pending(s, s->last_error);
	if (stopping) {
		set_state(s, SESSION_STOPPED);
		return;
	}
	if (s->fail_streak > 0)
		hook(s, s->env->hooks->failed);
	s->restarts++;
	count_restart(s);
	set_state(s, SESSION_BACKOFF);
	s->deadline_ms = now_ms(s) + s->backoff_ms;
	if (was_ready)
		hook(s, s->env->hooks->tools);
}

/* fail: down, unless the transport already reported its end */
static void fail(struct session *s, const char *why)
{
	if (s->connected)
		down(s, why);
}

static int send_msg(struct session *s, const json_t *msg)
{
	return s->connected ? s->t->ops->send(s->t, msg) : -1;
}

static json_int_t request(struct session *s, const char *method, json_t *params, enum preq_kind kind,
			  session_answer_fn *fn, void *arg)
{
	struct preq *p = calloc(1, sizeof *p);
	json_int_t id = s->next_id++;
	json_t *msg = jr_request(id, method, params);

	if (!p || !msg || send_msg(s, msg) < 0) {
		free(p);
		json_decref(msg);
		return -1;
	}
	json_decref(msg);
	*p = (struct preq){ .id = id, .kind = kind, .fn = fn, .arg = arg, .next = s->pending };
	s->pending = p;
	return id;
}

json_int_t session_request(struct session *s, const char *method, json_t *params, session_answer_fn *fn, void *arg)
{
	return request(s, method, params, PREQ_EXT, fn, arg);
}

/* send_text: request id (method, params borrowed, then member name = value) sent as
 * parts: its head serialised, the value by reference, the closing. 0 or -1 */
static int send_text(struct session *s, json_int_t id, const char *method, const json_t *params, const char *name,
		     const struct sharedtext_slice *value)
{
	buf_t head = BUF_INIT;
	json_t *m = json_string(method), *n = json_string(name);
	struct sharedtext *h = NULL, *tail = NULL;
	int rc = -1;

	if (m && n && buf_printf(&head, "{\"jsonrpc\":\"2.0\",\"id\":%" JSON_INTEGER_FORMAT ",\"method\":", id) == 0 &&
	    jr_append(&head, m) == 0 && buf_puts(&head, ",\"params\":") == 0 && jr_append(&head, params) == 0 &&
	    head.len && head.data[head.len - 1] == '}') {
		head.len--; /* the params object is closed after the member */
		if ((json_object_size(params) == 0 || buf_puts(&head, ",") == 0) && jr_append(&head, n) == 0 &&
		    buf_puts(&head, ":") == 0 && (h = sharedtext_copy(head.data, head.len)) &&
		    (tail = sharedtext_copy("}}\n", 3))) {
			struct sharedtext_slice parts[3] = { { h, 0, head.len }, *value, { tail, 0, 3 } };

			rc = s->t->ops->send_parts(s->t, parts, 3);
		}
	}
	sharedtext_unref(h);
	sharedtext_unref(tail);
	json_decref(m);
	json_decref(n);
	buf_free(&head);
	return rc;
}

int session_sends_by_reference(const struct session *s)
{
	return s->connected && s->t->ops->send_parts != NULL;
}

json_int_t session_request_text(struct session *s, const char *method, json_t *params, const char *name,
				const struct sharedtext_slice *value, session_answer_fn *fn, void *arg)
{
	struct preq *p = NULL;
	json_int_t id;
	json_error_t jerr;
	json_t *v;

	if (!s->connected || !s->t->ops->send_parts) { /* the transport takes whole messages: parsed */
		v = json_loadb(sharedtext_data(value->t) + value->off, value->len, JSON_DECODE_ANY, &jerr);
		if (!v || !params || json_object_set_new(params, name, v) < 0) { /* v taken even then */
			json_decref(params);
			return -1;
		}
		return request(s, method, params, PREQ_EXT, fn, arg);
	}
	id = s->next_id++;
	if (!params || !(p = calloc(1, sizeof *p)) || send_text(s, id, method, params, name, value) < 0) {
		json_decref(params);
		free(p);
		return -1;
	}
	json_decref(params);
	*p = (struct preq){ .id = id, .kind = PREQ_EXT, .fn = fn, .arg = arg, .next = s->pending };
	s->pending = p;
	return id;
}

int session_notify(struct session *s, const char *method, json_t *params)
{
	json_t *msg = jr_notification(method, params);
	int rc = msg ? send_msg(s, msg) : -1;

	json_decref(msg);
	return rc;
}

char *session_take_message(struct session *s, size_t *size)
{
	return s->connected && s->t->ops->take_message ? s->t->ops->take_message(s->t, size) : NULL;
}

void session_forget(struct session *s, json_int_t id)
{
	if (s->connected)
		s->t->ops->forget(s->t, id);
	for (struct preq **pp = &s->pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct preq *p = *pp;

			*pp = p->next;
			free(p);
			return;
		}
	}
}

static struct preq *take_preq(struct session *s, const json_t *idj)
{
	json_int_t id;

	if (!json_is_integer(idj))
		return NULL;
	id = json_integer_value(idj);
	for (struct preq **pp = &s->pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct preq *p = *pp;

			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

/* warn_unofferable: one line when a tool's inputSchema cannot be made into
 * function parameters (the responders leave it out of what they offer the
 * model, mcptools_openai; it stays callable by name) */
static void warn_unofferable(const struct session *s, const char *name, const json_t *schema)
{
	char why[TOOLSCHEMA_WHY_MAX];
	json_t *p = toolschema_params(schema, why, sizeof why);

	if (!p)
		log_warn("server %s: tool %s is not offered to models: its inputSchema cannot be made valid "
			 "function parameters (%s)",
			 s->cfg->name, name, why);
	json_decref(p);
}

/* session_bounds: this server's bounds on its tools (MCPGW_SERVER_MAX_TOOLS, _BYTES) */
static void session_bounds(const struct session *s, size_t *max_tools, size_t *max_bytes)
{
	const struct settings *set = s->env->tenv.set;

	*max_tools = set && set->server_max_tools ? set->server_max_tools : SESSION_MAX_TOOLS;
	*max_bytes = set && set->server_tools_bytes ? set->server_tools_bytes : SESSION_MAX_TOOLS_BYTES;
}

static void acc_reset(struct session_tools_acc *a)
{
	toolset_free(&a->tools);
	json_decref(a->seen);
	memset(a, 0, sizeof *a);
}

/* acc_keep: tool t (valid, allowed) kept if it fits the server's bounds; 0, or -1 on ENOMEM */
static int acc_keep(struct session *s, struct session_tools_acc *a, json_t *t)
{
	size_t max_tools, max_bytes, n;
	char *dumped;

	session_bounds(s, &max_tools, &max_bytes);
	if (!a->cut && a->tools.n >= max_tools)
		a->cut = 1;
	if (a->cut) {
		a->dropped++;
		return 0;
	}
	if (!(dumped = json_dumps(t, JSON_COMPACT)))
		return -1;
	n = strlen(dumped);
	if (a->tools.bytes + n > max_bytes) {
		free(dumped);
		a->cut = 2;
		a->dropped++;
		return 0;
	}
	warn_unofferable(s, json_string_value(json_object_get(t, "name")), json_object_get(t, "inputSchema"));
	return toolset_add(&a->tools, t, dumped, n);
}

/* acc_one: tool i of a listing (borrowed) kept when it is a valid Tool object the config
 * lets through and it fits the server's bounds; from names where it came from for the log
 * ("tools/list", or the cache in the registry: outside input too). 0, or -1 on ENOMEM (a
 * is reset). */
static int acc_one(struct session *s, struct session_tools_acc *a, json_t *t, size_t i, const char *from)
{
	const char *name = json_string_value(json_object_get(t, "name"));

	if (!a->seen && !(a->seen = json_object()))
		goto nomem;
	if (!json_is_object(t) || !name || !*name) {
		log_warn("server %s: %s entry %zu has no name; skipped", s->cfg->name, from, i);
		return 0;
	}
	if (json_object_get(a->seen, name)) {
		log_warn("server %s: tool %s listed twice in %s; the first is kept", s->cfg->name, name, from);
		return 0;
	}
	if (json_object_set_new(a->seen, name, json_true()) < 0)
		goto nomem;
	if (!cfg_tool_allowed(s->cfg, name)) {
		log_debug("server %s: tool %s filtered out by config", s->cfg->name, name);
		return 0;
	}
	if (acc_keep(s, a, t) < 0)
		goto nomem;
	return 0;
nomem:
	log_error("server %s: out of memory reading its tools from %s", s->cfg->name, from);
	acc_reset(a);
	return -1;
}

/* acc_add: acc_one for each of tools (borrowed), in order. 0, or -1 on ENOMEM (a is reset). */
static int acc_add(struct session *s, struct session_tools_acc *a, const json_t *tools, const char *from)
{
	json_t *t;
	size_t i;

	json_array_foreach(tools, i, t)
		if (acc_one(s, a, t, i, from) < 0)
			return -1;
	return 0;
}

/* acc_finish: the tools kept moved to *out (its old ones freed), a reset;
 * a bound that was hit is logged once, as an error naming it */
static void acc_finish(struct session *s, struct session_tools_acc *a, const char *from, struct toolset *out)
{
	size_t max_tools, max_bytes;

	session_bounds(s, &max_tools, &max_bytes);
	if (a->cut == 1)
		log_error("server %s: %s lists more than %zu tools (MCPGW_SERVER_MAX_TOOLS); the first %zu are kept, "
			  "the rest dropped (%zu more seen)",
			  s->cfg->name, from, max_tools, a->tools.n, a->dropped);
	else if (a->cut == 2)
		log_error("server %s: %s lists tools of more than %zu bytes (MCPGW_SERVER_MAX_TOOLS_BYTES); the first %zu "
			  "(%zu bytes) are kept, the rest dropped (%zu more seen)",
			  s->cfg->name, from, max_bytes, a->tools.n, a->tools.bytes, a->dropped);
	toolset_move(out, &a->tools);
	acc_reset(a);
}

static void list_tools(struct session *s, const char *cursor)
{
	json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;

	if (!s->listing)
		s->listing = 1;
	if (request(s, "tools/list", params, PREQ_LIST, NULL, NULL) < 0)
		fail(s, "cannot send tools/list");
}

static void become_ready(struct session *s)
{
	set_state(s, SESSION_READY);
	s->t->ops->established(s->t);
	s->fail_streak = 0;
	s->served = 0;
	s->last_error[0] = s->last_detail[0] = '\0';
	hook(s, s->env->hooks->changed);
	hook(s, s->env->hooks->tools);
	hook(s, s->env->hooks->ready);
}

/* list_page_done: a tools/list page was read: ask for the next (cursor) or finish the listing */
static void list_page_done(struct session *s, const char *cursor)
{
	/* once a bound is hit the rest of the pages would be dropped: not asked for */
	if (cursor && *cursor && s->listing < SESSION_LIST_MAX_PAGES && !s->list_acc.cut) {
		s->listing++;
		list_tools(s, cursor);
		return;
	}
	s->listing = 0;
	acc_finish(s, &s->list_acc, "tools/list", &s->tools);
	log_info("server %s: %zu tools", s->cfg->name, s->tools.n);
	if (s->state == SESSION_STARTING)
		become_ready(s);
	else
		hook(s, s->env->hooks->tools); /* the catalog borrows names from s->tools: rebuild at once */
	if (s->relist && s->state == SESSION_READY) {
		s->relist = 0;
		list_tools(s, NULL);
	}
}

static void on_list_result(struct session *s, json_t *result)
{
	json_t *tools = json_object_get(result, "tools");

	if (!json_is_array(tools)) {
		log_warn("server %s: tools/list result has no tools array", s->cfg->name);
		tools = NULL;
	}
	if (tools)
		acc_add(s, &s->list_acc, tools, "tools/list");
	list_page_done(s, json_string_value(json_object_get(result, "nextCursor")));
}

/* a large tools/list page read a tool at a time (page_member, page_tool) */
struct page_walk {
	struct session *s;
	const char *text;
	size_t i;       /* tools seen */
	int has_tools;  /* a "tools" array was found */
	int failed;     /* out of memory */
	json_t *cursor; /* "nextCursor", parsed */
};

static int page_tool(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct page_walk *w = ctx;
	json_t *t = json_loadb(w->text + v.off, v.len, JSON_DECODE_ANY, NULL); /* one tool's tree */
	int rc = t ? acc_one(w->s, &w->s->list_acc, t, w->i++, "tools/list") : -1;

	(void)key;
	(void)m;
	json_decref(t);
	w->failed = rc < 0;
	return w->failed;
}

static int page_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct page_walk *w = ctx;

	(void)m;
	if (strcmp(key, "tools") == 0 && !w->has_tools) {
		w->has_tools = jsonspan_elements(w->text, v, page_tool, w) == 0;
		return w->failed;
	}
	if (strcmp(key, "nextCursor") == 0 && !w->cursor)
		w->cursor = json_loadb(w->text + v.off, v.len, JSON_DECODE_ANY, NULL);
	return 0;
}

/* on_list_text: on_list_result for a result too large to parse whole (text[result]):
 * each tool is parsed on its own, so the page never stands as one tree */
static void on_list_text(struct session *s, const char *text, struct jsonspan result)
{
	struct page_walk w = { .s = s, .text = text };

	if (jsonspan_members(text, result, page_member, &w) < 0 || (!w.has_tools && !w.failed))
		log_warn("server %s: tools/list result has no tools array", s->cfg->name);
	list_page_done(s, json_string_value(w.cursor));
	json_decref(w.cursor);
}

static void on_init_result(struct session *s, json_t *result)
{
	const char *v = json_string_value(json_object_get(result, "protocolVersion"));
	char why[200];

	if (!jr_mcp_version_supported(v)) {
		snprintf(why, sizeof why, "unsupported protocol version '%s'", v ? v : "(none)");
		fail(s, why);
		return;
	}
	snprintf(s->proto, sizeof s->proto, "%s", v);
	s->t->ops->negotiated(s->t, s->proto);
	json_decref(s->server_info);
	s->server_info = json_incref(json_object_get(result, "serverInfo"));
	/* the initialize result must arrive before notifications/initialized */
	if (session_notify(s, "notifications/initialized", NULL) < 0) {
		fail(s, "cannot send notifications/initialized");
		return;
	}
	if (json_object_get(json_object_get(result, "capabilities"), "tools")) {
		list_tools(s, NULL);
	} else {
		toolset_free(&s->tools);
		become_ready(s);
	}
}

/* on_response: an answer (msg: the whole message; or, when raw is not NULL, every member
 * but "result", whose text is raw's) */
static void on_response(struct session *s, json_t *msg, enum jr_kind kind, const struct session_raw *raw)
{
	struct preq *p = take_preq(s, json_object_get(msg, "id"));
	json_t *err = json_object_get(msg, "error"), *parsed = NULL;
	char why[300];

	if (!p) {
		log_debug("server %s: answer to an unknown id; ignored", s->cfg->name);
		return;
	}
	if (p->kind == PREQ_EXT) {
		s->served = 1;
		if (p->fn)
			p->fn(p->arg, msg, raw, NULL, 1);
	} else if (kind == JR_ERROR_RESPONSE) {
		snprintf(why, sizeof why, "%s failed: %s", p->kind == PREQ_INIT ? "initialize" : "tools/list",
			 json_string_value(json_object_get(err, "message")) ?: "error");
		if (p->kind == PREQ_LIST && s->state == SESSION_READY) {
			log_warn("server %s: %s; keeping the previous tool list", s->cfg->name, why);
			s->listing = 0;
		} else {
			free(p);
			fail(s, why);
			return;
		}
	} else if (p->kind == PREQ_INIT) {
		if (raw) /* an initialize result is small: this one is parsed whole after all */
			parsed = json_loadb(raw->text + raw->result.off, raw->result.len, JSON_DECODE_ANY, NULL);
		on_init_result(s, raw ? parsed : json_object_get(msg, "result"));
	} else if (raw) {
		on_list_text(s, raw->text, raw->result);
	} else {
		on_list_result(s, json_object_get(msg, "result"));
	}
	json_decref(parsed);
	free(p);
}

/* on_server_request: answer what a server asks of us: ping, else -32601 */
static void on_server_request(struct session *s, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));
	const json_t *id = json_object_get(msg, "id");
	json_t *reply;

	if (strcmp(method, "ping") == 0) {
		reply = jr_result(id, json_object());
	} else {
		log_debug("server %s: asks %s; not supported", s->cfg->name, method);
		reply = jr_error(id, JR_METHOD_NOT_FOUND, "Method not supported by mcpgw", NULL);
	}
	if (reply)
		send_msg(s, reply);
	json_decref(reply);
}

static void on_notification(struct session *s, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));

	if (strcmp(method, "notifications/tools/list_changed") == 0) {
		log_info("server %s: tool list changed", s->cfg->name);
		if (s->state != SESSION_READY && !s->listing)
			return; /* the listing at start-up follows */
		if (s->listing)
			s->relist = 1;
		else
			list_tools(s, NULL);
	} else if (strcmp(method, "notifications/message") == 0) {
		json_t *params = json_object_get(msg, "params");
		char *data = json_dumps(json_object_get(params, "data"), JSON_COMPACT | JSON_ENCODE_ANY);

		log_info("server %s: [%s] %s", s->cfg->name,
			 json_string_value(json_object_get(params, "level")) ?: "log", data ? data : "");
		free(data);
	} else {
		log_debug("server %s: notification %s", s->cfg->name, method);
	}
}

/* the transport's events */

static void begin(struct session *s)
{
	json_t *params = json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", jr_mcp_versions[0], "capabilities",
				   "clientInfo", "name", "mcpgw", "version", MCPGW_VERSION);

	if (request(s, "initialize", params, PREQ_INIT, NULL, NULL) < 0)
		fail(s, "cannot send initialize");
}

static void ev_open(void *ctx)
{
	struct session *s = ctx;

	if (s->connected)
		begin(s);
}

/* a large message's top-level members (skel_member): each parsed but "result", whose text is kept */
struct skel_walk {
	const char *text;
	json_t *skel;
	struct session_raw raw;
	int has_result;
	int bad; /* a member repeated, or ENOMEM */
};

static int skel_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct skel_walk *w = ctx;
	int result = strcmp(key, "result") == 0;
	json_t *val;

	(void)m;
	if (!*key || json_object_get(w->skel, key)) { /* repeated (jr_parse refuses them) or too long */
		w->bad = *key != '\0';
		return w->bad;
	}
	if (result) { /* a stand-in: the text is passed on */
		w->raw.result = v;
		w->has_result = 1;
	}
	val = result ? json_object() : jsonspan_load(w->text, v, 0);
	w->bad = json_object_set_new(w->skel, key, val) < 0;
	return w->bad;
}

/* ev_result_text: an answer with a result is read without building its tree (a
 * tools/list page a tool at a time; a tools/call result passed on as text: a tree
 * costs several times its text, and the hop is cheaper without it); 0, or -1 when
 * the message is another kind (parsed whole by the caller) */
static int ev_result_text(struct session *s, const char *line, size_t len)
{
	struct skel_walk w = { .text = line, .raw = { .text = line } };
	struct jsonspan all = { 0, len };
	enum jr_kind kind;
	int rc = -1;

	if (jsonspan_check(line, len) < 0) {
		log_warn("server %s: message is not JSON-RPC (%.80s); ignored", s->cfg->name, line);
		return 0;
	}
	if (!(w.skel = json_object()) || jsonspan_members(line, all, skel_member, &w) < 0 || w.bad)
		goto out;
	kind = jr_classify(w.skel);
	if (kind == JR_RESPONSE && w.has_result) {
		on_response(s, w.skel, kind, &w.raw);
		rc = 0;
	}
out:
	json_decref(w.skel);
	return rc;
}

static void ev_message(void *ctx, const char *line, size_t len)
{
	struct session *s = ctx;
	json_error_t jerr;
	json_t *msg;
	enum jr_kind kind;

	if (ev_result_text(s, line, len) == 0)
		return;
	msg = jr_parse(line, len, &jerr);
	kind = jr_classify(msg);
	switch (kind) {
	case JR_RESPONSE:
	case JR_ERROR_RESPONSE: on_response(s, msg, kind, NULL); break;
	case JR_REQUEST: on_server_request(s, msg); break;
	case JR_NOTIFICATION: on_notification(s, msg); break;
	default: log_warn("server %s: message is not JSON-RPC (%.80s); ignored", s->cfg->name, line);
	}
	json_decref(msg);
}

static void ev_closed(void *ctx, const char *why, int retry_now)
{
	struct session *s = ctx;

	if (!s->connected)
		return;
	down(s, why);
	if (retry_now && s->state == SESSION_BACKOFF)
		s->deadline_ms = now_ms(s);
}

static int ev_is_pending(void *ctx, long long id)
{
	const struct session *s = ctx;

	for (const struct preq *p = s->pending; p; p = p->next)
		if (p->id == id)
			return 1;
	return 0;
}

static void ev_undelivered(void *ctx, long long id)
{
	struct session *s = ctx;

	for (struct preq *p = s->pending; p; p = p->next)
		if (p->id == id)
			p->undelivered = 1;
}

static const struct transport_events session_events = {
	.on_open = ev_open,
	.on_message = ev_message,
	.on_closed = ev_closed,
	.is_pending = ev_is_pending,
	.on_undelivered = ev_undelivered,
};

void session_start(struct session *s)
{
	char why[sizeof s->last_error] = "";
	int rc;

	if (s->state == SESSION_DISABLED || s->shutting)
		return;
	s->proto[0] = '\0';
	set_state(s, SESSION_STARTING);
	s->deadline_ms = now_ms(s) + set_of(s)->init_timeout_ms;
	rc = s->t->ops->open(s->t, why, sizeof why);
	if (rc < 0) {
		s->connected = 1; /* so that down closes what open left */
		down(s, why);
		return;
	}
	s->connected = 1;
	hook(s, s->env->hooks->changed); /* its pid */
	if (rc == 1)
		begin(s);
}

static int64_t session_due(void *ctx)
{
	const struct session *s = ctx;

	return s->state == SESSION_STARTING || s->state == SESSION_BACKOFF ? s->deadline_ms : EVLOOP_NEVER;
}

static void session_fire(void *ctx, int64_t now)
{
	struct session *s = ctx;

	if (now < s->deadline_ms)
		return;
	if (s->state == SESSION_BACKOFF)
		session_start(s);
	else if (s->state == SESSION_STARTING)
		fail(s, "did not finish initialize and tools/list within MCPGW_INIT_TIMEOUT");
}

int session_accepts_calls(const struct session *s)
{
	if (s->state == SESSION_READY)
		return 1;
	if ((s->state == SESSION_STARTING || s->state == SESSION_BACKOFF || s->state == SESSION_STOPPED) &&
	    s->fail_streak == 0 && !s->shutting)
		return 0;
	return -1;
}

void session_stop(struct session *s)
{
	s->shutting = 1;
	if (!s->connected) {
		if (s->state != SESSION_DISABLED)
			set_state(s, SESSION_STOPPED);
		return;
	}
	if (s->t->ops->stop(s->t) == 0) {
		s->connected = 0;
		fail_pending(s, "the broker is shutting down");
		set_state(s, SESSION_STOPPED);
		return;
	}
	set_state(s, SESSION_STOPPING);
}

void session_set_tools(struct session *s, json_t *tools)
{
	struct session_tools_acc a = { 0 };
	static const char from[] = "its cached tools (registry)";

	toolset_free(&s->tools);
	if (tools && acc_add(s, &a, tools, from) == 0)
		acc_finish(s, &a, from, &s->tools);
	json_decref(tools);
}

/* real_transport: the one place that reads the config's transport kind
 * (stdio; http, sse, or auto: http falling back to sse) */
static struct transport *real_transport(const struct transport_env *env, const struct cfg_server *cfg,
					const struct transport_events *ev, void *ctx)
{
	return cfg->transport == CFG_STDIO ? transport_stdio_new(env, cfg, ev, ctx)
					   : transport_http_new(env, cfg, ev, ctx);
}

struct session *session_new(const struct session_env *env, const struct cfg_server *cfg)
{
	struct session *s = calloc(1, sizeof *s);
	transport_new_fn *mk = env->new_transport ? env->new_transport : real_transport;

	if (!s)
		return NULL;
	s->cfg = cfg;
	s->env = env;
	s->next_id = 1;
	s->state = cfg->disabled ? SESSION_DISABLED : SESSION_STOPPED;
	s->since_ms = evloop_now(env->tenv.loop);
	fingerprint(s);
	if (!(s->t = mk(&env->tenv, cfg, &session_events, s)) ||
	    (s->timer = evloop_timer_add(env->tenv.loop, session_due, session_fire, s)) < 0) {
		if (s->t)
			s->t->ops->destroy(s->t);
		free(s);
		return NULL;
	}
	return s;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	while (s->pending) {
		struct preq *p = s->pending;

		s->pending = p->next;
		free(p);
	}
	s->t->ops->destroy(s->t);
	evloop_timer_del(s->env->tenv.loop, s->timer);
	json_decref(s->server_info);
	toolset_free(&s->tools);
	acc_reset(&s->list_acc);
	free(s);
}
