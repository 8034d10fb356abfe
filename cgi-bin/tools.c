/* tools.c: GET /v1/tools[/{name}] lists the MCP tools, POST /v1/tools runs one, through mcpgw-broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/auth.h"
#include "mcp/bclient.h"
#include "mcp/brokerstart.h"
#include "core/buf.h"
#include "mcp/jsonspan.h"
#include "mcp/toolanswer.h"
#include "openai/wire.h"
#include "http/hio.h"
#include "core/log.h"
#include "mcp/mcptools.h"
#include "mcp/toolschema.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "core/usage.h"

#define TOOLS_NAME_MAX 256     /* a decoded {name} longer than this matches no tool */
#define TOOLS_ERRTEXT_MAX 4000 /* bytes of a tool's error text put in the message */
/* The largest GET /v1/tools page written while the worker keeps its turn to accept: it fits in
 * the FastCGI socket's buffer, so a client that reads slowly behind a web server that passes the
 * answer on as it is read (mod_proxy_fcgi) cannot hold the turn; a larger one gives it back first */
#define TOOLS_QUICK_PAGE_MAX (64 * 1024)

/* a worker's state (its responder_worker.data), process lifetime: each of the
 * MCPGW_TOOLS_THREADS workers has its own, as it has its own broker connection */
enum tools_format { FMT_MCPGW, FMT_OPENAI };

struct app {
	const struct settings *s; /* the responder's settings */
	struct bclient *bc;       /* the worker's broker client (one worker) */
	struct mcptools cat;      /* the broker's catalog, refreshed by generation */
	char *body[2];            /* GET /v1/tools bodies per format, rendered once per generation */
	size_t body_len[2];
	json_int_t body_gen[2];
	json_int_t warned_gen; /* the generation whose servers not ready were last logged */
};

/* answer a failed broker exchange (rc < 0). timeout_code names what timed out. */
static void send_broker_failure(struct app *a, struct hio *h, int rc, const char *timeout_code)
{
	switch (rc) {
	case BC_ECONNECT: {
		char why[512];

		brokerstart_last_error(why, sizeof why);
		why[strcspn(why, "\n")] = '\0'; /* the first line: the broker log's tail stays in the log */
		oai_send_error(h, 503, NULL, "broker_unavailable", "The tool broker is not reachable at %s (%s%s).",
			       a->s->socket_path, *why ? "starting it failed: " : "is mcpgw-broker running?", why);
		break;
	}
	case BC_EIO:
		oai_send_error(h, 503, NULL, "broker_unavailable",
			       "The connection to the tool broker at %s was lost during the request.", a->s->socket_path);
		break;
	case BC_ETIMEOUT: oai_send_error(h, 504, NULL, timeout_code, "The tool broker did not answer in time."); break;
	case BC_EPROTO:
		oai_send_error(h, 502, NULL, "broker_protocol_error", "The tool broker sent an invalid message.");
		break;
	default: oai_send_error(h, 500, NULL, "internal_error", "Internal error: %s.", bc_strerror(rc)); break;
	}
}

/* the broker's tools/list as a borrowed-free array: new reference, or NULL
 * after an error response was sent. Servers still coming up are waited for
 * (MCPGW_STARTUP_WAIT). */
static json_t *fetch_tools(struct app *a, struct hio *h)
{
	int rc = mcptools_wait(&a->cat, a->bc, a->s->broker_timeout_ms, a->s->startup_wait_ms);

	if (rc == 1) {
		oai_send_error(h, 502, NULL, "broker_error", "The tool broker failed to list tools.");
		return NULL;
	}
	if (rc != BC_OK) {
		send_broker_failure(a, h, rc, "broker_timeout");
		return NULL;
	}
	if (!json_is_array(a->cat.tools)) {
		oai_send_error(h, 502, NULL, "broker_protocol_error", "The tool broker's tools/list has no tools array.");
		return NULL;
	}
	return json_incref(a->cat.tools);
}

/* unready_text: why the servers of the cached catalog that are not ready
 * are not, into b ("" when all are ready); logged once per generation. The
 * number of such servers, or -1 on ENOMEM. */
static int unready_text(struct app *a, buf_t *b)
{
	int n = mcptools_unready(&a->cat, NULL, b, NULL);

	if (n > 0 && a->warned_gen != a->cat.generation) {
		a->warned_gen = a->cat.generation;
		log_warn("MCP servers not ready (%d ready): %s", a->cat.nready, b->data);
	}
	return n;
}

/* no_server_ready: 1 when servers are configured but none is ready (no
 * tool can be listed or found), after 503 tools_unavailable was sent,
 * naming them and why; Retry-After while some are still coming up. 0 when
 * some server is ready or none is configured (nothing sent). */
static int no_server_ready(struct app *a, struct hio *h)
{
	buf_t why = BUF_INIT, msg = BUF_INIT;
	json_t *err = NULL;

	if (a->cat.nready > 0 || !json_array_size(a->cat.unready))
		return 0;
	if (unready_text(a, &why) > 0 &&
	    buf_printf(&msg,
		       "No MCP server is ready, so there are no tools yet: %s. GET /health shows each server's state.",
		       why.data) == 0)
		err = wire_error(msg.data, "server_error", NULL, "tools_unavailable");
	if (!err || json_object_set(err, "unavailable_servers", a->cat.unready) < 0)
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	else
		hio_send_json_extra(h, 503, err, mcptools_starting(&a->cat) ? "Retry-After: 1\r\n" : NULL);
	json_decref(err);
	buf_free(&msg);
	buf_free(&why);
	return 1;
}

/* set key to a copy of value (borrowed) when value is non-NULL; 0 or -1 */
static int set_opt(json_t *o, const char *key, json_t *value)
{
	return value ? json_object_set(o, key, value) : 0;
}

/* one broker Tool (borrowed) in the mcpgw shape; new reference, NULL if unusable or ENOMEM */
static json_t *tool_view_mcpgw(const json_t *t)
{
	json_t *meta = json_object_get(t, "_meta"), *o = json_object();
	json_t *title = json_object_get(t, "title"), *ann = json_object_get(t, "annotations");
	json_t *desc = json_object_get(t, "description"), *in = json_object_get(t, "inputSchema");
	json_t *server = json_object_get(meta, "mcpgw/server"), *mcp = json_object_get(meta, "mcpgw/mcpName");

	if (!o)
		return NULL;
	if (!json_is_string(title))
		title = json_object_get(ann, "title");
	if (json_object_set_new(o, "object", json_string("tool")) < 0 ||
	    json_object_set(o, "name", json_object_get(t, "name")) < 0 ||
	    json_object_set(o, "mcp_name", mcp ? mcp : json_object_get(t, "name")) < 0 ||
	    json_object_set_new(o, "server", server ? json_incref(server) : json_null()) < 0 ||
	    (json_is_string(title) && json_object_set(o, "title", title) < 0) ||
	    json_object_set_new(o, "description", json_is_string(desc) ? json_incref(desc) : json_string("")) < 0 ||
	    json_object_set_new(o, "input_schema", in ? json_incref(in) : json_pack("{s:s}", "type", "object")) < 0 ||
	    set_opt(o, "output_schema", json_object_get(t, "outputSchema")) < 0 ||
	    json_object_set_new(o, "annotations", ann ? json_incref(ann) : json_object()) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* one broker Tool (borrowed) as an OpenAI function tool, its parameters as the
 * chat completions offer them upstream (toolschema_params); new reference, or NULL
 * when the schema cannot be offered (the broker logs why) or out of memory */
static json_t *tool_view_openai(const json_t *t)
{
	json_t *desc = json_object_get(t, "description"), *params;
	char why[TOOLSCHEMA_WHY_MAX];

	if (!(params = toolschema_params(json_object_get(t, "inputSchema"), why, sizeof why)))
		return NULL;
	return json_pack("{s:s, s:{s:O, s:o, s:o}}", "type", "function", "function", "name", json_object_get(t, "name"),
			 "description", json_is_string(desc) ? json_incref(desc) : json_string(""), "parameters", params);
}

static json_t *tool_view(const json_t *t, enum tools_format fmt)
{
	if (!json_is_string(json_object_get(t, "name")))
		return NULL;
	return fmt == FMT_OPENAI ? tool_view_openai(t) : tool_view_mcpgw(t);
}

/* format from the query string: 0, or -1 after a 400 was sent */
static int parse_format(struct hio *h, enum tools_format *fmt)
{
	const char *q = hio_param(h, "QUERY_STRING");

	*fmt = FMT_MCPGW;
	while (q && *q) {
		size_t n = strcspn(q, "&");

		if (n > 7 && strncmp(q, "format=", 7) == 0) {
			if (n == 13 && strncmp(q + 7, "openai", 6) == 0) {
				*fmt = FMT_OPENAI;
			} else if (!(n == 12 && strncmp(q + 7, "mcpgw", 5) == 0)) {
				oai_send_error(h, 400, "format", "invalid_value",
					       "Unknown format: use format=openai or format=mcpgw.");
				return -1;
			}
		}
		q += n;
		if (*q == '&')
			q++;
	}
	return 0;
}

/* allowed: the tool t (a catalog entry) passes policy (NULL: every tool does) */
static int allowed(const json_t *t, const struct toolpolicy *policy)
{
	return toolpolicy_allows(policy, json_string_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/server")),
				 json_string_value(json_object_get(t, "name")));
}

/* page_list_for: GET /v1/tools for a key with a policy: only the tools it allows */
static void page_list_for(struct app *a, struct hio *h, const json_t *tools, enum tools_format fmt,
			  const struct toolpolicy *policy)
{
	json_t *data = json_array(), *out = NULL, *t;
	size_t i;

	json_array_foreach(tools, i, t) {
		json_t *v = allowed(t, policy) ? tool_view(t, fmt) : NULL;

		if (v && (!data || json_array_append_new(data, v) < 0)) {
			json_decref(data);
			data = NULL;
		}
	}
	if (data)
		out = json_pack("{s:s, s:o}", "object", "list", "data", data);
	if (out && json_array_size(a->cat.unready) && json_object_set(out, "unavailable_servers", a->cat.unready) < 0) {
		json_decref(out);
		out = NULL;
	}
	if (out)
		hio_send_json(h, 200, out);
	else
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	json_decref(out);
}

/* GET /v1/tools */
/* page_list: the page of GET /v1/tools, from a body rendered once per catalog generation */
static void page_list(struct app *a, struct hio *h, const struct toolpolicy *policy)
{
	enum tools_format fmt;
	json_t *tools = NULL, *data = NULL, *out = NULL, *t;
	size_t i;

	if (parse_format(h, &fmt) < 0 || !(tools = fetch_tools(a, h)))
		return;
	if (no_server_ready(a, h)) {
		json_decref(tools);
		return;
	}
	if (policy) { /* a key's own view: rendered for it, not cached */
		page_list_for(a, h, tools, fmt, policy);
		json_decref(tools);
		return;
	}
	if (a->body[fmt] && a->body_gen[fmt] == a->cat.generation) {
		hio_send_raw_json(h, 200, a->body[fmt], a->body_len[fmt]);
		json_decref(tools);
		return;
	}
	if (!(data = json_array()))
		goto oom;
	json_array_foreach(tools, i, t) {
		json_t *v = tool_view(t, fmt);

		if (v && json_array_append_new(data, v) < 0)
			goto oom;
	}
	out = json_pack("{s:s, s:O}", "object", "list", "data", data);
	/* some servers are not ready: the list is partial, say so (and log it) */
	if (out && json_array_size(a->cat.unready)) {
		buf_t why = BUF_INIT;

		if (unready_text(a, &why) < 0 || json_object_set(out, "unavailable_servers", a->cat.unready) < 0) {
			buf_free(&why);
			goto oom;
		}
		buf_free(&why);
	}
	free(a->body[fmt]);
	if (!out || !(a->body[fmt] = json_dumps(out, JSON_COMPACT))) {
		a->body[fmt] = NULL;
		goto oom;
	}
	a->body_len[fmt] = strlen(a->body[fmt]);
	a->body_gen[fmt] = a->cat.generation;
	hio_send_raw_json(h, 200, a->body[fmt], a->body_len[fmt]);
	goto out;
oom:
	oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
out:
	json_decref(out);
	json_decref(data);
	json_decref(tools);
}

/* send_not_found: 404 tool_not_found, saying which servers are not ready (their tools may be missing) */
static void send_not_found(struct app *a, struct hio *h, const char *name)
{
	buf_t why = BUF_INIT;

	if (unready_text(a, &why) > 0)
		oai_send_error(h, 404, "tool", "tool_not_found",
			       "No tool named '%s' (not every MCP server is ready: %s).", name, why.data);
	else
		oai_send_error(h, 404, "tool", "tool_not_found", "No tool named '%s'.", name);
	buf_free(&why);
}

/* GET /v1/tools/{name} (raw = the encoded name) */
static void tools_get(struct app *a, struct hio *h, const char *raw, const struct toolpolicy *policy)
{
	char name[TOOLS_NAME_MAX + 1];
	enum tools_format fmt;
	json_t *tools, *t, *found = NULL, *v;
	size_t i;

	if (hio_url_decode(raw, name, sizeof name) < 0) {
		oai_send_error(h, 404, NULL, "tool_not_found", "No such tool.");
		return;
	}
	if (parse_format(h, &fmt) < 0 || !(tools = fetch_tools(a, h)))
		return;
	if (no_server_ready(a, h)) {
		json_decref(tools);
		return;
	}
	json_array_foreach(tools, i, t) {
		const char *n = json_string_value(json_object_get(t, "name"));

		if (n && strcmp(n, name) == 0) {
			found = t;
			break;
		}
	}
	if (!found) {
		send_not_found(a, h, name);
	} else if (!allowed(found, policy)) {
		oai_send_error(h, 403, "tool", "tool_not_allowed", TOOLPOLICY_DENIED, name);
	} else if (!(v = tool_view(found, fmt))) {
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	} else {
		hio_send_json(h, 200, v);
		json_decref(v);
	}
	json_decref(tools);
}

/* the text parts of an MCP result's content, joined by newlines, at most
 * TOOLS_ERRTEXT_MAX bytes (cut at a UTF-8 boundary). buf owns the text. */
static const char *result_text(const json_t *result, buf_t *b)
{
	const json_t *item;
	size_t i;

	json_array_foreach(json_object_get(result, "content"), i, item) {
		const char *text = json_string_value(json_object_get(item, "text"));

		if (!text)
			continue;
		if ((b->len && buf_puts(b, "\n") < 0) || buf_puts(b, text) < 0)
			break;
	}
	if (b->len > TOOLS_ERRTEXT_MAX) {
		size_t n = TOOLS_ERRTEXT_MAX;

		while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
			n--;
		b->len = n;
		b->data[n] = '\0';
	}
	return b->len ? b->data : "The tool reported an error.";
}

/* a tools/call result (borrowed): 200 with it, or 422 when isError */
static void send_call_result(struct hio *h, const char *tool, json_t *result)
{
	json_t *out = NULL;
	buf_t text = BUF_INIT;

	if (!json_is_object(result)) {
		oai_send_error(h, 502, NULL, "tool_server_error",
			       "The tool server returned a result that is not an object.");
		return;
	}
	if (json_is_true(json_object_get(result, "isError"))) {
		out = wire_error(result_text(result, &text), "invalid_request_error", NULL, "tool_error");
		if (!out || json_object_set(out, "result", result) < 0)
			goto oom;
		hio_send_json(h, 422, out);
		goto done;
	}
	out = json_pack("{s:s, s:s, s:O?}", "object", "tool.result", "tool", tool, "server",
			json_object_get(json_object_get(result, "_meta"), "mcpgw/server"));
	if (!out || json_object_update_missing(out, result) < 0)
		goto oom;
	hio_send_json(h, 200, out);
	goto done;
oom:
	oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
done:
	buf_free(&text);
	json_decref(out);
}

/* send_busy: the broker refused the call at once, the tool's server (or the broker) at its
 * bound (msg: the broker's why): 503 server_busy with Retry-After, as OpenAI answers "the
 * engine is currently overloaded" (429 is OpenAI's for the caller's own rate or quota) */
static void send_busy(struct hio *h, const char *tool, const char *msg)
{
	json_t *err = wire_errorf(503, NULL, "server_busy", "Tool '%s' was not run: %s", tool, msg);

	if (!err)
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	else
		hio_send_json_extra(h, 503, err, "Retry-After: 1\r\n");
	json_decref(err);
}

/* a JSON-RPC error (borrowed) from tools/call, per docs/broker-protocol.md */
static void send_call_error(struct hio *h, const char *tool, const json_t *error)
{
	json_int_t code = json_integer_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	const char *reason = json_string_value(json_object_get(json_object_get(error, "data"), "reason"));

	if (!msg)
		msg = "unknown error";
	if (code == -32602 && reason && strcmp(reason, "unknown_tool") == 0)
		oai_send_error(h, 404, "tool", "tool_not_found", "No tool named '%s'.", tool);
	else if (code == -32602)
		oai_send_error(h, 422, "arguments", "invalid_arguments", "Invalid arguments for tool '%s': %s", tool,
			       msg);
	else if (code == -32000 && reason && (strcmp(reason, "busy") == 0 || strcmp(reason, "overloaded") == 0))
		send_busy(h, tool, msg);
	else if (code == -32000)
		oai_send_error(h, 503, NULL, "server_unavailable", "The server of tool '%s' is unavailable: %s", tool,
			       msg);
	else if (code == -32001)
		oai_send_error(h, 504, NULL, "tool_timeout", "Tool '%s' timed out: %s", tool, msg);
	else
		oai_send_error(h, 502, NULL, "tool_server_error", "Tool '%s' failed: %s (JSON-RPC error %lld)", tool,
			       msg, (long long)code);
}

/* unknown_tool: error (borrowed, may be NULL) is the broker's -32602 unknown_tool */
static int unknown_tool(const json_t *error)
{
	const char *reason = json_string_value(json_object_get(json_object_get(error, "data"), "reason"));

	return error && json_integer_value(json_object_get(error, "code")) == -32602 && reason &&
	       strcmp(reason, "unknown_tool") == 0;
}

/* retry_when_listed: a call of an unknown tool while servers are still coming
 * up: wait for them (MCPGW_STARTUP_WAIT); 1 when the tool is listed now */
static int retry_when_listed(struct app *a, const char *tool)
{
	if (mcptools_refresh(&a->cat, a->bc, a->s->broker_timeout_ms) != BC_OK || !mcptools_starting(&a->cat))
		return 0;
	return mcptools_wait(&a->cat, a->bc, a->s->broker_timeout_ms, a->s->startup_wait_ms) == BC_OK &&
	       mcptools_server(&a->cat, tool) != NULL;
}

/* read_call: POST /v1/tools's body read without a tree (toolanswer_read_call) when it
 * is a JSON object within MCPGW_MAX_JSON_DEPTH and MCPGW_MAX_JSON_VALUES (as
 * oai_parse_body would take it): *tool (a new reference: the "tool" string) and
 * args[0..*args_len) (the arguments' text for bc_call_tool, in body or in *dumped,
 * freed by the caller; NULL: none) are set and 1 returned; 0 after a 400 (or 500)
 * was sent as call_checks sends it; -1 when the body is anything else:
 * oai_parse_body says what is wrong with it */
static int read_call(struct app *a, struct hio *h, const char *body, size_t len, json_t **tool, const char **args,
		     size_t *args_len, char **dumped)
{
	struct toolanswer_call c;
	json_t *tree;

	if (wire_json_scan(body, len, a->s->max_json_depth, a->s->max_json_values) != WIRE_JSON_FITS)
		return -1;
	switch (toolanswer_read_call(body, len, &c)) {
	case TOOLANSWER_CALL: break;
	case TOOLANSWER_NO_TOOL:
		oai_send_error(h, 400, "tool", "missing_required_parameter", "Missing required parameter: 'tool'.");
		return 0;
	case TOOLANSWER_TOOL_TYPE:
		oai_send_error(h, 400, "tool", "invalid_type", "Invalid type for 'tool': expected a string.");
		return 0;
	case TOOLANSWER_ARGS_TYPE:
		oai_send_error(h, 400, "arguments", "invalid_type", "Invalid type for 'arguments': expected an object.");
		return 0;
	default: return -1;
	}
	if (!(*tool = jsonspan_load(body, c.tool, 0))) {
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
		return 0;
	}
	*args = c.args.len ? body + c.args.off : NULL;
	*args_len = c.args.len;
	if (!c.args_lines)
		return 1;
	/* line breaks between its tokens: written again without them (a broker message is one line) */
	tree = jsonspan_load(body, c.args, 0);
	*dumped = tree ? json_dumps(tree, JSON_COMPACT) : NULL;
	json_decref(tree);
	if (!*dumped) {
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
		json_decref(*tool);
		*tool = NULL;
		return 0;
	}
	*args = *dumped;
	*args_len = strlen(*dumped);
	return 1;
}

/* call_checks: the parsed body (borrowed) names a tool (a string) and its arguments are
 * an object, null or missing: 1; else 0 after a 400 was sent */
static int call_checks(struct hio *h, const json_t *req)
{
	const json_t *tool = json_object_get(req, "tool"), *args = json_object_get(req, "arguments");

	if (!tool) {
		oai_send_error(h, 400, "tool", "missing_required_parameter", "Missing required parameter: 'tool'.");
		return 0;
	}
	if (!json_is_string(tool)) {
		oai_send_error(h, 400, "tool", "invalid_type", "Invalid type for 'tool': expected a string.");
		return 0;
	}
	if (args && !json_is_null(args) && !json_is_object(args)) {
		oai_send_error(h, 400, "arguments", "invalid_type", "Invalid type for 'arguments': expected an object.");
		return 0;
	}
	return 1;
}

/* call_args: the arguments of the parsed body req (borrowed) written for the broker
 * into *dumped (freed by the caller), for a body read as a tree (read_call did not
 * take it); *args NULL: none ({}). 0, or -1 on ENOMEM */
static int call_args(const json_t *req, const char **args, size_t *args_len, char **dumped)
{
	const json_t *tree = json_object_get(req, "arguments");

	*args = *dumped = NULL;
	*args_len = 0;
	if (!json_is_object(tree))
		return 0;
	if (!(*dumped = json_dumps(tree, JSON_COMPACT)))
		return -1;
	*args = *dumped;
	*args_len = strlen(*dumped);
	return 0;
}

/* send_result_text: the broker's tools/call result (its text, checked JSON, not parsed)
 * answered as send_call_result answers its tree, the result's members passed on as the
 * server wrote them (toolanswer_result): 200 {"object": "tool.result", "tool",
 * "server", ...its members}; 422 (parsed after all: the message needs its text parts)
 * when isError; 502 when it is no object or repeats a name. *is_error: the result is an
 * object saying isError true. */
static void send_result_text(struct hio *h, const char *tool, const char *text, size_t len, int *is_error)
{
	buf_t out = BUF_INIT;
	json_t *tree;

	*is_error = 0;
	switch (toolanswer_result(&out, tool, text, len)) {
	case TOOLANSWER_OK: hio_send_raw_json(h, 200, out.data, out.len); break;
	case TOOLANSWER_IS_ERROR:
		*is_error = 1;
		if ((tree = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)))
			send_call_result(h, tool, tree);
		else
			oai_send_error(h, 502, NULL, "broker_protocol_error", "The tool broker sent an invalid message.");
		json_decref(tree);
		break;
	case TOOLANSWER_NOT_OBJECT:
		oai_send_error(h, 502, NULL, "tool_server_error",
			       "The tool server returned a result that is not an object.");
		break;
	case TOOLANSWER_REPEATED:
		oai_send_error(h, 502, NULL, "broker_protocol_error", "The tool broker sent an invalid message.");
		break;
	default: oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	}
	buf_free(&out);
}

/* may_run: a key with a policy may run tool: 1; else 0 after 404 (no such tool, once
 * servers coming up were waited for) or 403 tool_not_allowed was sent */
static int may_run(struct app *a, struct hio *h, const char *tool, const struct toolpolicy *policy)
{
	json_t *tools = fetch_tools(a, h);
	const char *server;

	if (!tools)
		return 0;
	json_decref(tools);
	if (!(server = mcptools_server(&a->cat, tool))) {
		send_not_found(a, h, tool);
		return 0;
	}
	if (!toolpolicy_allows(policy, server, tool)) {
		oai_send_error(h, 403, "tool", "tool_not_allowed", TOOLPOLICY_DENIED, tool);
		return 0;
	}
	return 1;
}

/* page_run: the page of POST /v1/tools: run one tool through the broker, its
 * arguments and result passed on as text (bc_call_tool), no tree of either made */
static void page_run(struct app *a, struct exchange *x)
{
	struct hio *h = x->h;
	const buf_t *body = &x->body;
	const char *data = body->data ? body->data : "";
	const struct toolpolicy *policy = auth_policy(&x->auth);
	json_t *req = NULL, *name = NULL, *error = NULL;
	const char *tool, *args = NULL;
	char *dumped = NULL, *text = NULL;
	size_t args_len = 0, text_len = 0;
	long timeout;
	int rc, is_error = 0;

	switch (read_call(a, h, data, body->len, &name, &args, &args_len, &dumped)) {
	case 0: goto out;
	case 1: tool = json_string_value(name); break;
	default: /* the tree says what is wrong; a body jsonspan refuses that jansson reads (a NUL byte) runs so */
		if (!(req = oai_parse_body(h, data, body->len, a->s->max_json_depth, a->s->max_json_values)) ||
		    !call_checks(h, req))
			goto out;
		tool = json_string_value(json_object_get(req, "tool"));
		if (call_args(req, &args, &args_len, &dumped) < 0) {
			oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
			goto out;
		}
	}
	if (policy && !may_run(a, h, tool, policy))
		goto out;
	auth_count(&x->auth, 0, 1);
	timeout =
		mcptools_call_wait_ms(&a->cat, tool, a->s->tool_timeout_ms, a->s->tool_retries, a->s->broker_timeout_ms);
	rc = bc_call_tool(a->bc, tool, args, args_len, timeout, &text, &text_len, &error);
	if (rc == BC_OK && unknown_tool(error) && retry_when_listed(a, tool)) {
		json_decref(error);
		error = NULL;
		rc = bc_call_tool(a->bc, tool, args, args_len, timeout, &text, &text_len, &error);
	}
	if (rc != BC_OK)
		send_broker_failure(a, h, rc, "tool_timeout");
	else if (unknown_tool(error))
		send_not_found(a, h, tool);
	else if (error)
		send_call_error(h, tool, error);
	else
		send_result_text(h, tool, text, text_len, &is_error);
	if (rc != BC_OK || !unknown_tool(error)) /* ran, or may have (a timeout) */
		accesslog_add_tool(&x->log, mcptools_server(&a->cat, tool), tool, rc != BC_OK || error || is_error);
out:
	free(text);
	free(dumped);
	json_decref(error);
	json_decref(name);
	json_decref(req);
}

/* app: the state of the worker of x */
static struct app *app(struct exchange *x)
{
	struct app *a = x->w->data;

	a->s = &x->w->r->s;
	a->bc = x->w->bc;
	return a;
}

/* the GET routes are ROUTE_QUICK: served from the cached catalog, they keep the worker's turn to
 * accept, given back first when the catalog must be fetched or servers waited for */
static enum route_status route_list(struct exchange *x)
{
	struct app *a = app(x);
	int made = 0, small = 1;

	/* a page of this generation made already, and every one made small (the two formats'
	 * pages differ in size by a small factor, well within the socket buffer's room) */
	for (int f = 0; f < 2; f++)
		if (a->body[f] && a->body_gen[f] == a->cat.generation) {
			made = 1;
			small = small && a->body_len[f] <= TOOLS_QUICK_PAGE_MAX;
		}
	if (!made || !small || !mcptools_current(&a->cat))
		responder_turn_release(x);
	page_list(a, x->h, auth_policy(&x->auth));
	return ROUTE_DONE;
}

static enum route_status route_run(struct exchange *x)
{
	page_run(app(x), x);
	return ROUTE_DONE;
}

static enum route_status route_get(struct exchange *x)
{
	if (!mcptools_current(&app(x)->cat))
		responder_turn_release(x);
	tools_get(app(x), x->h, x->arg, auth_policy(&x->auth));
	return ROUTE_DONE;
}

/* tools.fcgi's routes */
static const struct route tools_routes[] = {
	{ "/v1/tools", "GET, HEAD", route_list, ROUTE_BROKER | ROUTE_QUICK },
	{ "/v1/tools", "POST", route_run, ROUTE_BODY | ROUTE_BROKER },
	{ "/v1/tools/{}", "GET, HEAD", route_get, ROUTE_BROKER | ROUTE_QUICK },
	{ NULL, NULL, NULL, 0 },
};

static const char *const tools_settings[] = { "MCPGW_HOME",
					      "MCPGW_ENV_FILE",
					      "MCPGW_STATE_DIR",
					      "MCPGW_BROKER_SOCKET",
					      "MCPGW_BROKER_TIMEOUT",
					      "MCPGW_BROKER_AUTOSTART",
					      "MCPGW_BROKER_BIN",
					      "MCPGW_INIT_TIMEOUT",
					      "MCPGW_MAX_MESSAGE_BYTES",
					      "MCPGW_TOOL_TIMEOUT",
					      "MCPGW_TOOL_RETRIES",
					      "MCPGW_TOOLS_THREADS",
					      "MCPGW_MAX_BODY_BYTES",
					      "MCPGW_MAX_DRAIN_BYTES",
					      "MCPGW_MAX_JSON_DEPTH",
					      "MCPGW_MAX_JSON_VALUES",
					      "MCPGW_ALLOWED_HOSTS",
					      "MCPGW_CORS_ORIGINS",
					      "MCPGW_LISTEN",
					      "MCPGW_STATE_STORE",
					      "MCPGW_STATE_STORE_TIMEOUT",
					      "MCPGW_API_KEYS",
					      "MCPGW_TRUSTED_PROXIES",
					      "MCPGW_LOG_LEVEL",
					      "MCPGW_LOG_FILE",
					      "MCPGW_SHUTDOWN_GRACE",
					      "MCPGW_FAULT",
					      NULL };

/* what a shell gets for --help (lib/usage.c) */
static const struct usage tools_usage = {
	"tools.fcgi",
	"[--help | --version]",
	"Serves GET /v1/tools (every tool of every ready MCP server), GET /v1/tools/{name}, and\n"
	"POST /v1/tools {\"tool\": NAME, \"arguments\": {...}}, which runs one tool through mcpgw-broker.\n",
	USAGE_RESPONDER_OPTIONS,
	tools_settings,
	NULL,
};

/* worker_setup: w's own state (struct app), its catalog cache beside the broker's state */
static int tools_worker_setup(struct responder_worker *w)
{
	struct app *a = w->data;

	mcptools_use_state_dir(&a->cat, w->r->s.state_dir);
	return 0;
}

static void tools_worker_teardown(struct responder_worker *w)
{
	struct app *a = w->data;

	if (!a)
		return;
	mcptools_free(&a->cat);
	free(a->body[0]);
	free(a->body[1]);
}

/* tools_threads: MCPGW_TOOLS_THREADS workers per process */
static int tools_threads(const struct responder *r)
{
	return r->s.tools_threads;
}

static const struct responder_def tools_def = {
	.name = "tools.fcgi",
	.routes = tools_routes,
	.broker = &responder_broker,
	.worker_size = sizeof(struct app),
	.threads = tools_threads,
	.worker_setup = tools_worker_setup,
	.worker_teardown = tools_worker_teardown,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &tools_usage);

	return opt >= 0 ? opt : responder_main(&tools_def);
}
