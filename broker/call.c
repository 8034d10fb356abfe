/* call.c: client tools/call requests routed to their server, with timeouts and retries on transport failure. */
#include "broker.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static void call_free(struct call *c)
{
	B.ncalls--;
	if (c->prev)
		c->prev->next = c->next;
	else
		B.calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	json_decref(c->client_id);
	json_decref(c->arguments);
	json_decref(c->meta);
	free(c->mcp_name);
	free(c);
}

static void reply_error(int slot, unsigned gen, const json_t *id, int code, const char *msg, json_t *data)
{
	json_t *e = jr_error(id, code, msg, data);

	if (e)
		cli_send(slot, gen, e);
	json_decref(e);
}

/* call_fail: answer the client with an error and drop the call */
static void call_fail(struct call *c, int code, const char *reason, const char *msg)
{
	json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "reason", reason, "server", c->srv->cfg->name, "state",
				 srv_state_name(c->srv->state), "last_error", c->srv->last_error);

	if (data && code == JR_REQUEST_TIMEOUT)
		json_object_set_new(data, "timeout_ms", json_integer(c->timeout_ms));
	log_warn("tools/call %s on %s: %s", c->mcp_name, c->srv->cfg->name, msg);
	reply_error(c->cli_slot, c->cli_gen, c->client_id, code, msg, data);
	call_free(c);
}

static void call_send(struct call *c)
{
	json_t *params = json_pack("{s:s, s:O}", "name", c->mcp_name, "arguments", c->arguments);
	json_int_t id;
	char msg[1200];

	if (params && c->meta)
		json_object_set(params, "_meta", c->meta);
	id = params ? srv_send_request(c->srv, "tools/call", params, PREQ_CALL, c) : -1;
	if (id < 0) {
		c->attempts++;
		snprintf(msg, sizeof msg, "cannot send the call to server '%s'", c->srv->cfg->name);
		call_on_transport_failure(c, msg);
		return;
	}
	c->srv_req_id = id;
	c->attempts++;
	c->deadline_ms = clock_now_ms() + c->timeout_ms;
	log_debug("tools/call %s -> %s (attempt %d)", c->mcp_name, c->srv->cfg->name, c->attempts);
}

/* call_dispatch: send now, wait for the server, or fail */
static void call_dispatch(struct call *c)
{
	char msg[1200];

	switch (srv_accepts_calls(c->srv)) {
	case 1:
		call_send(c);
		break;
	case 0:
		c->srv_req_id = 0;
		c->deadline_ms = clock_now_ms() + c->timeout_ms;
		break;
	default:
		snprintf(msg, sizeof msg, "MCP server '%s' is unavailable (%s): %s", c->srv->cfg->name,
			 srv_state_name(c->srv->state), *c->srv->last_error ? c->srv->last_error : "not running");
		call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg);
	}
}

void call_start(int cli_slot, unsigned gen, const json_t *id, const json_t *params)
{
	const char *name = json_string_value(json_object_get(params, "name"));
	json_t *args = json_object_get(params, "arguments");
	const struct cat_entry *e;
	struct call *c;
	char msg[200];

	if (!name || (args && !json_is_object(args) && !json_is_null(args))) {
		reply_error(cli_slot, gen, id, JR_INVALID_PARAMS,
			    !name ? "tools/call needs a string 'name'" : "'arguments' must be an object",
			    json_pack("{s:s}", "reason", "invalid_params"));
		return;
	}
	if (!(e = catalog_find(name))) {
		snprintf(msg, sizeof msg, "Unknown tool: %.120s", name);
		reply_error(cli_slot, gen, id, JR_INVALID_PARAMS, msg,
			    json_pack("{s:s, s:s}", "reason", "unknown_tool", "tool", name));
		return;
	}
	if (B.ncalls >= CALLS_MAX) {
		reply_error(cli_slot, gen, id, JR_CONNECTION_CLOSED, "too many tool calls in flight in the broker",
			    json_pack("{s:s, s:i}", "reason", "overloaded", "limit", CALLS_MAX));
		return;
	}
	if (!(c = calloc(1, sizeof *c)) || !(c->mcp_name = strdup(e->mcp_name))) {
		free(c);
		reply_error(cli_slot, gen, id, JR_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	c->cli_slot = cli_slot;
	c->cli_gen = gen;
	c->client_id = json_deep_copy(id);
	c->srv = e->srv;
	c->arguments = json_is_object(args) ? json_incref(args) : json_object();
	c->meta = json_incref(json_object_get(params, "_meta"));
	c->timeout_ms = c->srv->cfg->timeout_ms > 0 ? c->srv->cfg->timeout_ms : B.set.tool_timeout_ms;
	c->next = B.calls;
	if (B.calls)
		B.calls->prev = c;
	B.calls = c;
	B.ncalls++;
	call_dispatch(c);
}

void call_on_result(struct call *c, json_t *msg)
{
	json_t *result = json_object_get(msg, "result");
	json_t *out;

	if (result) {
		json_t *meta = json_object_get(result, "_meta");

		if (!json_is_object(meta)) {
			meta = json_object();
			json_object_set_new(result, "_meta", meta);
		}
		json_object_set_new(meta, "mcpgw/server", json_string(c->srv->cfg->name));
		out = jr_result(c->client_id, json_incref(result));
	} else {
		out = json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", c->client_id, "error",
				json_object_get(msg, "error"));
	}
	if (out)
		cli_send(c->cli_slot, c->cli_gen, out);
	json_decref(out);
	call_free(c);
}

/* the server went down with c in flight: wait for its restart, or give up */
void call_on_transport_failure(struct call *c, const char *why)
{
	char msg[800];

	c->srv_req_id = 0;
	if (c->attempts > B.set.tool_retries || B.stopping) {
		snprintf(msg, sizeof msg, "MCP server '%s' failed during the call (%s)", c->srv->cfg->name, why);
		call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg);
		return;
	}
	log_info("tools/call %s on %s: %s; retrying after the restart", c->mcp_name, c->srv->cfg->name, why);
	c->deadline_ms = clock_now_ms() + c->timeout_ms; /* srv_down decides next: restart (wait) or failed */
}

void call_server_ready(struct srv *s)
{
	for (struct call *c = B.calls, *next; c; c = next) {
		next = c->next;
		if (c->srv == s && c->srv_req_id == 0)
			call_send(c);
	}
}

void call_server_failed(struct srv *s)
{
	for (struct call *c = B.calls, *next; c; c = next) {
		next = c->next;
		if (c->srv == s && c->srv_req_id == 0)
			call_dispatch(c);
	}
}

static void call_timed_out(struct call *c)
{
	char msg[300];

	if (c->srv_req_id) {
		json_t *params = json_pack("{s:I, s:s}", "requestId", c->srv_req_id, "reason", "timeout");

		srv_forget_request(c->srv, c->srv_req_id);
		if (params)
			srv_send_notification(c->srv, "notifications/cancelled", params);
		c->srv_req_id = 0;
		if (c->attempts <= B.set.tool_retries && !B.stopping) {
			log_info("tools/call %s on %s: timed out; retrying", c->mcp_name, c->srv->cfg->name);
			call_dispatch(c);
			return;
		}
		snprintf(msg, sizeof msg, "MCP server '%s' did not answer tools/call '%s' within %ld ms",
			 c->srv->cfg->name, c->mcp_name, c->timeout_ms);
		call_fail(c, JR_REQUEST_TIMEOUT, "timeout", msg);
		return;
	}
	snprintf(msg, sizeof msg, "MCP server '%s' did not become ready within %ld ms (%s)", c->srv->cfg->name,
		 c->timeout_ms, srv_state_name(c->srv->state));
	call_fail(c, JR_CONNECTION_CLOSED, "unavailable", msg);
}

void call_tick(int64_t now)
{
	for (struct call *c = B.calls, *next; c; c = next) {
		next = c->next;
		if (now >= c->deadline_ms)
			call_timed_out(c);
	}
}

int64_t call_next_deadline(void)
{
	int64_t d = INT64_MAX;

	for (struct call *c = B.calls; c; c = c->next)
		if (c->deadline_ms < d)
			d = c->deadline_ms;
	return d;
}

void call_fail_all(const char *why)
{
	while (B.calls)
		call_fail(B.calls, JR_CONNECTION_CLOSED, "unavailable", why);
}
