/* chat.c: POST /v1/chat/completions: OpenAI chat completions with the server-side MCP tool loop, a threaded FastCGI responder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/hio.h"
#include "core/log.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "openai/toolloop.h"
#include "openai/upstream.h"
#include "core/usage.h"

/* Threads, not processes: a stream holds its worker for its whole life (tool
 * rounds included), so each process runs MCPGW_CHAT_THREADS workers (the
 * skeleton's, lib/http/responder.h) that accept on the shared FastCGI socket;
 * many long streams then never starve other requests, at a fraction of the
 * memory of as many processes. Each worker has its own tool loop. */
struct worker {
	struct toolloop tl;
};

struct stream_ctx {
	struct hio *h;
	const struct toolloop *tl; /* its unavailable(_why): servers whose tools were not offered */
	int stream;  /* the request asked for a stream: progress may be written */
	int headers;
};


/* unavailable_header: "X-MCPGW-Tools-Unavailable: a, b\r\n" (the servers whose
 * tools were not offered, "*": the broker) into out, or "" */
static const char *unavailable_header(const struct toolloop *tl, char *out, size_t outlen)
{
	out[0] = '\0';
	if (*tl->unavailable)
		snprintf(out, outlen, "X-MCPGW-Tools-Unavailable: %s\r\n", tl->unavailable);
	return out;
}

/* sse_headers: once: the stream's headers, then a comment line saying which
 * servers' tools were not offered and why (SDKs skip comments) */
static int sse_headers(struct stream_ctx *c)
{
	char extra[TOOLLOOP_UNAVAILABLE_MAX + 128], line[TOOLLOOP_UNAVAILABLE_WHY_MAX + 64];
	int n;

	if (c->headers)
		return 0;
	c->headers = 1;
	n = snprintf(extra, sizeof extra, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	unavailable_header(c->tl, extra + n, sizeof extra - (size_t)n);
	if (hio_headers(c->h, 200, "text/event-stream; charset=utf-8", extra) < 0)
		return -1;
	if (!*c->tl->unavailable_why)
		return 0;
	/* one comment line, even if a server's last words held a line break */
	n = snprintf(line, sizeof line, ": mcpgw: tools not offered: %s", c->tl->unavailable_why);
	for (int i = 0; i < n && line[i]; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	return hio_write(c->h, line, strlen(line)) < 0 || hio_write(c->h, "\n\n", 2) < 0 ? -1 : 0;
}

static int sink_data(void *ud, const char *payload, size_t len)
{
	struct stream_ctx *c = ud;

	if (sse_headers(c) < 0 || hio_write(c->h, "data: ", 6) < 0 || hio_write(c->h, payload, len) < 0 ||
	    hio_write(c->h, "\n\n", 2) < 0 || hio_flush(c->h) < 0)
		return 1;
	return 0;
}

/* progress of server-side tool calls as SSE comment lines (SDKs skip them) */
static int sink_tool(void *ud, const char *server, const char *name, const char *arguments, const char *result,
		     int is_error)
{
	struct stream_ctx *c = ud;
	char line[400];
	int n;

	(void)arguments;
	if (!c->stream)
		return 0;
	n = snprintf(line, sizeof line, ": mcpgw: tool %.150s (%.150s) %s\n\n", name, server,
		     !result ? "running" : is_error ? "failed" : "done");
	if (sse_headers(c) < 0 || hio_write(c->h, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0 ||
	    hio_flush(c->h) < 0)
		return 1;
	return 0;
}

/* route_chat: POST /v1/chat/completions */
static enum route_status route_chat(struct exchange *x)
{
	struct worker *w = x->w->data;
	struct hio *h = x->h;
	json_t *req = NULL, *resp = NULL, *err = NULL;
	struct stream_ctx sc = { h, &w->tl, 0, 0 };
	char extra[TOOLLOOP_UNAVAILABLE_MAX + 64];
	struct toolloop_sink sink = { sink_data, sink_tool, &sc };
	int rc, status = 500;

	req = oai_parse_body(h, x->body.data ? x->body.data : "", x->body.len, x->w->r->s.max_json_depth);
	if (!req)
		return ROUTE_DONE;
	sc.stream = json_is_true(json_object_get(req, "stream"));
	rc = toolloop_run(&w->tl, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), &sink, &resp, &status, &err);
	if (rc == 0 && resp)
		hio_send_json_extra(h, 200, resp, unavailable_header(&w->tl, extra, sizeof extra));
	else if (rc == -1)
		hio_send_json(h, status, err);
	json_decref(resp);
	json_decref(err);
	json_decref(req);
	return ROUTE_DONE;
}

/* chat.fcgi's routes */
static const struct route chat_routes[] = {
	{ "/v1/chat/completions", "POST", route_chat, ROUTE_BODY | ROUTE_BROKER | ROUTE_UPSTREAM },
	{ NULL, NULL, NULL, 0 },
};

/* chat_worker_setup: the worker's tool loop on its upstream and broker clients */
static int chat_worker_setup(struct responder_worker *rw)
{
	struct worker *w = rw->data;

	w->tl.set = &rw->r->s;
	w->tl.up = rw->up;
	w->tl.bc = rw->bc;
	mcptools_use_state_dir(&w->tl.tools, rw->r->s.state_dir);
	return 0;
}

static void chat_worker_teardown(struct responder_worker *rw)
{
	struct worker *w = rw->data;

	if (w)
		mcptools_free(&w->tl.tools);
}

/* chat_threads: MCPGW_CHAT_THREADS workers per process */
static int chat_threads(const struct responder *r)
{
	return r->s.chat_threads;
}

static const char *const chat_settings[] = {
	"OPENAI_API_KEY", "OPENAI_BASE_URL", "DEFAULT_MODEL", "MCPGW_HOME", "MCPGW_ENV_FILE",
	"MCPGW_STATE_DIR", "MCPGW_BROKER_SOCKET", "MCPGW_BROKER_TIMEOUT", "MCPGW_BROKER_AUTOSTART",
	"MCPGW_BROKER_BIN", "MCPGW_INIT_TIMEOUT", "MCPGW_MAX_MESSAGE_BYTES", "MCPGW_TOOL_TIMEOUT",
	"MCPGW_TOOL_RETRIES", "MCPGW_MAX_TOOL_ROUNDS", "MCPGW_MAX_TOOL_OUTPUT_BYTES", "MCPGW_INJECT_TOOLS",
	"MCPGW_MODEL_ALIASES", "MCPGW_SESSION_TTL", "MCPGW_CHAT_THREADS", "MCPGW_MAX_BODY_BYTES",
	"MCPGW_MAX_JSON_DEPTH", "MCPGW_UPSTREAM_CONNECT_TIMEOUT", "MCPGW_UPSTREAM_TIMEOUT",
	"MCPGW_UPSTREAM_RETRIES", "MCPGW_UPSTREAM_RETRY_MAX_WAIT", "MCPGW_MAX_RESPONSE_BYTES",
	"MCPGW_LOG_LEVEL", "MCPGW_LOG_FILE", "MCPGW_FAULT", NULL
};

/* what a shell gets for --help (lib/usage.c) */
static const struct usage chat_usage = {
	"chat.fcgi",
	"[--help | --version]",
	"Serves POST /v1/chat/completions: OpenAI chat completions (streamed or not) against the upstream\n"
	"LLM, offering every MCP tool to the model and running its calls through mcpgw-broker, round\n"
	"after round.\n",
	USAGE_RESPONDER_OPTIONS,
	chat_settings,
	NULL,
};

static const struct responder_def chat_def = {
	.name = "chat.fcgi",
	.routes = chat_routes,
	.worker_size = sizeof(struct worker),
	.threads = chat_threads,
	.worker_setup = chat_worker_setup,
	.worker_teardown = chat_worker_teardown,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &chat_usage);

	return opt >= 0 ? opt : responder_main(&chat_def);
}
