/* server.c: dispatch MCP requests (initialize, tools, resources, prompts, ...) to their handlers. */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mcp/jsonrpc.h"
#include "core/log.h"
#include "prompt.h"

struct server_err {
	int code; /* 0 means out of memory */
	char msg[256];
};

typedef json_t *(*server_fn)(struct server *s, const json_t *params, struct server_err *e);

static json_t *server_fail(struct server_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static json_t *server_fail(struct server_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return NULL;
}

/* server_str: params[key] if it is a string, else NULL. */
static const char *server_str(const json_t *params, const char *key)
{
	return json_string_value(json_object_get(params, key));
}

static json_t *server_initialize(struct server *s, const json_t *params, struct server_err *e)
{
	const char *want = server_str(params, "protocolVersion");
	const char *ver = jr_mcp_version_supported(want) ? want : jr_mcp_versions[0];
	const char *client = server_str(json_object_get(params, "clientInfo"), "name");

	(void)e;
	log_info("initialize from %.100s: protocol %.40s asked, %s answered", client ? client : "(unnamed client)",
		 want ? want : "(none)", ver);
	s->initialized = 1;
	return json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}, s:{s:b}, s:{}}, s:{s:s, s:s}}", "protocolVersion", ver,
			 "capabilities", "tools", "listChanged", 0, "resources", "subscribe", 1, "listChanged", 0,
			 "prompts", "listChanged", 0, "logging", "serverInfo", "name", SERVER_NAME, "version",
			 SERVER_VERSION);
}

static json_t *server_ping(struct server *s, const json_t *params, struct server_err *e)
{
	(void)s, (void)params, (void)e;
	return json_object();
}

static json_t *server_tools_list(struct server *s, const json_t *params, struct server_err *e)
{
	(void)params, (void)e;
	return tools_list(&s->tools);
}

static json_t *server_tools_call(struct server *s, const json_t *params, struct server_err *e)
{
	const char *name = server_str(params, "name");
	const json_t *args = json_object_get(params, "arguments");

	if (!name)
		return server_fail(e, JR_INVALID_PARAMS, "params.name must be a string");
	if (json_is_null(args))
		args = NULL;
	if (args && !json_is_object(args))
		return server_fail(e, JR_INVALID_PARAMS, "params.arguments must be an object");
	return tools_call(&s->tools, name, args, &e->code, e->msg, sizeof e->msg);
}

static json_t *server_resources_list(struct server *s, const json_t *params, struct server_err *e)
{
	(void)s, (void)params, (void)e;
	return json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "resources", "uri", MEMO_URI, "name", "Business Insights Memo",
			 "description", "A running memo of the business insights found while analysing the data",
			 "mimeType", "text/plain");
}

/* server_memo_uri: params.uri, checked to be the memo; NULL with e set otherwise. */
static const char *server_memo_uri(const json_t *params, struct server_err *e)
{
	const char *uri = server_str(params, "uri");

	if (!uri)
		server_fail(e, JR_INVALID_PARAMS, "params.uri must be a string");
	else if (strcmp(uri, MEMO_URI) != 0)
		server_fail(e, SERVER_RESOURCE_NOT_FOUND, "Resource not found: %.200s", uri);
	else
		return uri;
	return NULL;
}

static json_t *server_resources_read(struct server *s, const json_t *params, struct server_err *e)
{
	buf_t text = BUF_INIT;
	json_t *res = NULL;

	if (!server_memo_uri(params, e))
		return NULL;
	if (memo_render(&s->memo, &text) == 0)
		res = json_pack("{s:[{s:s, s:s, s:s%}]}", "contents", "uri", MEMO_URI, "mimeType", "text/plain", "text",
				text.data, text.len);
	buf_free(&text);
	return res;
}

static json_t *server_resources_templates(struct server *s, const json_t *params, struct server_err *e)
{
	(void)s, (void)params, (void)e;
	return json_pack("{s:[]}", "resourceTemplates");
}

static json_t *server_subscribe(struct server *s, const json_t *params, struct server_err *e)
{
	if (!server_memo_uri(params, e))
		return NULL;
	s->subscribed = 1;
	return json_object();
}

static json_t *server_unsubscribe(struct server *s, const json_t *params, struct server_err *e)
{
	if (!server_memo_uri(params, e))
		return NULL;
	s->subscribed = 0;
	return json_object();
}

static json_t *server_prompts_list(struct server *s, const json_t *params, struct server_err *e)
{
	(void)s, (void)params, (void)e;
	return prompt_list();
}

static json_t *server_prompts_get(struct server *s, const json_t *params, struct server_err *e)
{
	const char *name = server_str(params, "name");
	const json_t *args = json_object_get(params, "arguments");

	(void)s;
	if (!name)
		return server_fail(e, JR_INVALID_PARAMS, "params.name must be a string");
	if (json_is_null(args))
		args = NULL;
	if (args && !json_is_object(args))
		return server_fail(e, JR_INVALID_PARAMS, "params.arguments must be an object");
	return prompt_get(name, args, &e->code, e->msg, sizeof e->msg);
}

static json_t *server_set_level(struct server *s, const json_t *params, struct server_err *e)
{
	static const char *const levels[] = { "debug", "info",     "notice", "warning",
					      "error", "critical", "alert",  "emergency" };
	const char *level = server_str(params, "level");

	(void)s;
	for (size_t i = 0; level && i < sizeof levels / sizeof levels[0]; i++)
		if (strcmp(level, levels[i]) == 0)
			return json_object(); /* accepted; this server sends no log notifications */
	return server_fail(e, JR_INVALID_PARAMS,
			   "params.level must be one of debug, info, notice, warning, "
			   "error, critical, alert, emergency");
}

static const struct {
	const char *method;
	server_fn fn;
} server_methods[] = {
	{ "initialize", server_initialize },
	{ "ping", server_ping },
	{ "tools/list", server_tools_list },
	{ "tools/call", server_tools_call },
	{ "resources/list", server_resources_list },
	{ "resources/read", server_resources_read },
	{ "resources/templates/list", server_resources_templates },
	{ "resources/subscribe", server_subscribe },
	{ "resources/unsubscribe", server_unsubscribe },
	{ "prompts/list", server_prompts_list },
	{ "prompts/get", server_prompts_get },
	{ "logging/setLevel", server_set_level },
};

void server_init(struct server *s, struct sqlitedb *db)
{
	memset(s, 0, sizeof *s);
	memo_init(&s->memo);
	s->tools.db = db;
	s->tools.memo = &s->memo;
}

void server_free(struct server *s)
{
	memo_free(&s->memo);
}

int server_reply_error(buf_t *out, const json_t *id, int code, const char *message)
{
	json_t *m = jr_error(id, code, message, NULL);
	int rc = m ? jr_append_line(out, m) : -1;

	json_decref(m);
	return rc;
}

/* server_reply: append the response to id: result (stolen) or, if NULL, the error in e. */
static int server_reply(buf_t *out, const json_t *id, json_t *result, const struct server_err *e)
{
	json_t *m;
	int rc;

	if (!result)
		return server_reply_error(out, id, e->code ? e->code : JR_INTERNAL_ERROR,
					  e->code ? e->msg : "Internal error: out of memory");
	m = jr_result(id, result);
	rc = m ? jr_append_line(out, m) : -1;
	json_decref(m);
	if (rc < 0) {
		log_error("could not serialise a response");
		return server_reply_error(out, id, JR_INTERNAL_ERROR, "Internal error: the result could not be sent");
	}
	return 0;
}

/* server_memo_updated: tell a subscribed client that memo://insights changed. */
static int server_memo_updated(struct server *s, buf_t *out)
{
	json_t *m;
	int rc;

	if (!s->tools.memo_changed)
		return 0;
	s->tools.memo_changed = 0;
	if (!s->subscribed)
		return 0;
	m = jr_notification("notifications/resources/updated", json_pack("{s:s}", "uri", MEMO_URI));
	rc = m ? jr_append_line(out, m) : -1;
	json_decref(m);
	return rc;
}

static int server_request(struct server *s, const json_t *msg, buf_t *out)
{
	const json_t *id = json_object_get(msg, "id"), *params = json_object_get(msg, "params");
	const char *method = server_str(msg, "method");
	struct server_err e = { 0, "" };
	json_t *result;

	if (params && !json_is_object(params))
		return server_reply_error(out, id, JR_INVALID_PARAMS, "params must be an object");
	for (size_t i = 0; i < sizeof server_methods / sizeof server_methods[0]; i++) {
		if (strcmp(method, server_methods[i].method) != 0)
			continue;
		log_debug("request %s", method);
		s->serving = id;
		s->cancelled = 0;
		result = server_methods[i].fn(s, params, &e);
		s->serving = NULL;
		if (server_memo_updated(s, out) < 0) {
			json_decref(result);
			return -1;
		}
		if (s->cancelled) { /* MCP: the receiver of a cancellation does not answer the request */
			log_info("request %s cancelled by the client: stopped, not answered", method);
			json_decref(result);
			return 0;
		}
		return server_reply(out, id, result, &e);
	}
	log_info("unknown method %.100s", method);
	snprintf(e.msg, sizeof e.msg, "Method not found: %.200s", method);
	return server_reply_error(out, id, JR_METHOD_NOT_FOUND, e.msg);
}

static int server_message(struct server *s, const json_t *msg, buf_t *out)
{
	enum jr_kind k = jr_classify(msg);
	const json_t *id = json_object_get(msg, "id");
	const char *ver = server_str(msg, "jsonrpc");

	if (k == JR_RESPONSE || k == JR_ERROR_RESPONSE)
		return 0; /* this server sends no requests: nothing to match */
	if (k == JR_INVALID || !ver || strcmp(ver, "2.0") != 0) {
		if (!json_is_integer(id) && !json_is_string(id))
			id = NULL;
		return server_reply_error(out, id, JR_INVALID_REQUEST, "Invalid Request");
	}
	if (k == JR_NOTIFICATION) {
		log_debug("notification %.100s", server_str(msg, "method"));
		return 0;
	}
	return server_request(s, msg, out);
}

int server_cancels(struct server *s, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *msg;
	const json_t *params;
	const char *method;
	int hit;

	if (!s->serving || !memmem(line, len, "notifications/cancelled", 23))
		return 0;
	if (!(msg = jr_parse(line, len, &jerr)))
		return 0;
	params = json_object_get(msg, "params");
	method = server_str(msg, "method");
	hit = jr_classify(msg) == JR_NOTIFICATION && method && strcmp(method, "notifications/cancelled") == 0 &&
	      json_is_object(params) && json_equal(json_object_get(params, "requestId"), s->serving);
	json_decref(msg);
	if (hit)
		s->cancelled = 1;
	return hit;
}

int server_handle_line(struct server *s, const char *line, size_t len, buf_t *out)
{
	json_error_t jerr;
	json_t *msg = jr_parse(line, len, &jerr);
	int rc;

	if (!msg) {
		log_info("parse error at byte %d: %s", jerr.position, jerr.text);
		return server_reply_error(out, NULL, JR_PARSE_ERROR, "Parse error");
	}
	rc = server_message(s, msg, out);
	json_decref(msg);
	return rc;
}
