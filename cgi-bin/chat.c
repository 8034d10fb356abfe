/* chat.c: POST /v1/chat/completions: OpenAI chat completions with the server-side MCP tool loop, a threaded FastCGI responder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/auth.h"
#include "http/chatstream.h"
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

/* What a run spent, for the caller's API key (lib/http/auth.h): its events
 * pass through on their way to chatstream, counted. */
struct spend {
	struct toolloop_sink to; /* chatstream's sink */
	int64_t tokens, tool_calls;
};

/* spend_event: count the MCP calls run and the tokens of the usage, then pass the event on */
static int spend_event(void *ud, const struct toolloop_event *ev)
{
	struct spend *sp = ud;

	if (ev->kind == TOOLLOOP_TOOL_END)
		sp->tool_calls++;
	else if (ev->kind == TOOLLOOP_DONE && ev->usage)
		sp->tokens = json_integer_value(json_object_get(ev->usage, "total_tokens"));
	return sp->to.event(sp->to.ud, ev);
}

/* route_chat: POST /v1/chat/completions: the tool loop's events written by chatstream (SSE or the JSON answer) */
static enum route_status route_chat(struct exchange *x)
{
	struct worker *w = x->w->data;
	struct hio *h = x->h;
	json_t *req;
	struct chatstream cs;
	struct spend sp = { .tokens = 0 };
	struct toolloop_sink sink = { spend_event, &sp };

	req = oai_parse_body(h, x->body.data ? x->body.data : "", x->body.len, x->w->r->s.max_json_depth);
	if (!req)
		return ROUTE_DONE;
	chatstream_init(&cs, h);
	sp.to = chatstream_sink(&cs);
	w->tl.policy = auth_policy(&x->auth); /* the key's allow-lists: offered and run only */
	w->tl.key_id = x->auth.key_id;        /* a mixed batch's history is bound to the caller's key ("" anonymous) */
	(void)toolloop_run(&w->tl, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), &sink, NULL); /* cs writes the answer */
	w->tl.policy = NULL;
	w->tl.key_id = NULL;
	auth_count(&x->auth, sp.tokens, sp.tool_calls);
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

	if (w) {
		mcptools_free(&w->tl.tools);
		statestore_close(w->tl.store);
		w->tl.store = NULL;
	}
}

/* chat_threads: MCPGW_CHAT_THREADS workers per process */
static int chat_threads(const struct responder *r)
{
	return r->s.chat_threads;
}

static const char *const chat_settings[] = { "OPENAI_API_KEY",
					     "OPENAI_BASE_URL",
					     "DEFAULT_MODEL",
					     "MCPGW_HOME",
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
					     "MCPGW_MAX_TOOL_ROUNDS",
					     "MCPGW_MAX_TOOL_OUTPUT_BYTES",
					     "MCPGW_TOOL_IMAGES",
					     "MCPGW_STREAM_KEEPALIVE",
					     "MCPGW_INJECT_TOOLS",
					     "MCPGW_MODEL_ALIASES",
					     "MCPGW_SESSION_TTL",
					     "MCPGW_STATE_STORE",
					     "MCPGW_STATE_STORE_TIMEOUT",
					     "MCPGW_CHAT_THREADS",
					     "MCPGW_MAX_BODY_BYTES",
					     "MCPGW_MAX_JSON_DEPTH",
					     "MCPGW_UPSTREAM_CONNECT_TIMEOUT",
					     "MCPGW_UPSTREAM_TIMEOUT",
					     "MCPGW_UPSTREAM_RETRIES",
					     "MCPGW_UPSTREAM_RETRY_MAX_WAIT",
					     "MCPGW_UPSTREAM_DIALECT",
					     "MCPGW_UPSTREAM_AUTH",
					     "OPENAI_API_VERSION",
					     "MCPGW_MAX_RESPONSE_BYTES",
					     "MCPGW_API_KEYS",
					     "MCPGW_TRUSTED_PROXIES",
					     "MCPGW_LOG_LEVEL",
					     "MCPGW_LOG_FILE",
					     "MCPGW_ALLOWED_HOSTS",
					     "MCPGW_CORS_ORIGINS",
					     "MCPGW_LISTEN",
					     "MCPGW_FAULT",
					     NULL };

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
	.upstream = &responder_upstream,
	.broker = &responder_broker,
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
