/* chat.c: POST /v1/chat/completions: OpenAI chat completions with the server-side MCP tool loop, a threaded FastCGI responder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/metrics.h"
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
 * rounds included), so each process keeps MCPGW_CHAT_THREADS workers ready
 * (the skeleton's pool, lib/http/responder.c) and starts more while every one
 * is busy, up to the host's MCPGW_CAPACITY, whose slots every chat completion
 * holds (ROUTE_CAPACITY: one beyond them is answered 503 at once). Each worker
 * has its own tool loop. */
struct worker {
	struct toolloop tl;
};

/* A sink in front of chatstream's: notes what the access log tells (tools
 * run, tokens) and what the run spent for the caller's API key
 * (lib/http/auth.h) */
struct noting {
	struct toolloop_sink inner;
	struct accesslog *log;
	struct metrics *metrics; /* may be NULL */
	int64_t tokens, tool_calls;
};

/* count_upstream_error: an ERROR event of the gateway's upstream client
 * (its codes begin "upstream_": unreachable, timeout, bad or truncated
 * response) in mcpgw_upstream_errors_total{code} */
static void count_upstream_error(struct metrics *m, const json_t *error)
{
	const char *code = json_string_value(json_object_get(json_object_get(error, "error"), "code"));
	const char *labels[] = { "code", code, NULL };
	char series[METRICS_NAME_MAX];

	if (m && code && strncmp(code, "upstream_", 9) == 0 &&
	    metrics_series(series, sizeof series, "mcpgw_upstream_errors_total", labels) == 0)
		metrics_add(m, series, 1);
}

/* noting_event: the event noted, then passed on */
static int noting_event(void *ud, const struct toolloop_event *ev)
{
	struct noting *n = ud;
	const json_t *u = ev->usage;

	if (ev->kind == TOOLLOOP_ERROR)
		count_upstream_error(n->metrics, ev->error);
	else if (ev->kind == TOOLLOOP_TOOL_END) {
		accesslog_add_tool(n->log, ev->server, ev->tool, ev->is_error);
		n->tool_calls++;
	} else if (ev->kind == TOOLLOOP_DONE && json_is_object(u)) {
		accesslog_set_usage(n->log, (long)json_integer_value(json_object_get(u, "prompt_tokens")),
				    (long)json_integer_value(json_object_get(u, "completion_tokens")));
		n->tokens = json_integer_value(json_object_get(u, "total_tokens"));
	}
	return n->inner.event(n->inner.ud, ev);
}

/* count_rounds: the MCP rounds among the messages a run added: each an
 * assistant message followed by the tool messages of its calls */
static void count_rounds(struct accesslog *log, const json_t *added)
{
	size_t i;
	const json_t *m;
	const char *prev = "";

	json_array_foreach(added, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && strcmp(role, "tool") == 0 && strcmp(prev, "assistant") == 0)
			accesslog_add_round(log);
		prev = role ? role : "";
	}
}

/* route_chat: POST /v1/chat/completions: the tool loop's events written by chatstream (SSE or the JSON answer) */
static enum route_status route_chat(struct exchange *x)
{
	struct worker *w = x->w->data;
	struct hio *h = x->h;
	json_t *req;
	struct chatstream cs;
	struct noting n = { .log = &x->log, .metrics = responder_metrics(x->w->r) };
	struct toolloop_sink sink = { noting_event, &n };
	json_t *added = NULL;
	const json_t *model;

	req = oai_parse_body(h, x->body.data ? x->body.data : "", x->body.len, x->w->r->s.max_json_depth,
			     x->w->r->s.max_json_values);
	if (!req)
		return ROUTE_DONE;
	/* the model asked for, or DEFAULT_MODEL when the request names none (what the tool loop sends) */
	model = json_object_get(req, "model");
	accesslog_set_model(&x->log, !model || json_is_null(model) ? x->w->r->s.default_model : json_string_value(model));
	chatstream_init(&cs, h);
	n.inner = chatstream_sink(&cs);
	w->tl.policy = auth_policy(&x->auth); /* the key's allow-lists: offered and run only */
	w->tl.key_id = x->auth.key_id;        /* a mixed batch's history is bound to the caller's key ("" anonymous) */
	/* cs writes the answer; req is the run's from here (one parsed request in memory, not two) */
	(void)toolloop_run_owned(&w->tl, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), &sink, &added);
	w->tl.policy = NULL;
	w->tl.key_id = NULL;
	auth_count(&x->auth, n.tokens, n.tool_calls);
	count_rounds(&x->log, added);
	json_decref(added);
	return ROUTE_DONE;
}

/* chat.fcgi's routes */
static const struct route chat_routes[] = {
	{ "/v1/chat/completions", "POST", route_chat, ROUTE_BODY | ROUTE_BROKER | ROUTE_UPSTREAM | ROUTE_CAPACITY },
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
					     "MCPGW_CAPACITY",
					     "MCPGW_MAX_BODY_BYTES",
					     "MCPGW_MAX_DRAIN_BYTES",
					     "MCPGW_MAX_JSON_DEPTH",
					     "MCPGW_MAX_JSON_VALUES",
					     "MCPGW_MAX_UPSTREAM_JSON_VALUES",
					     "MCPGW_MAX_ROUND_BYTES",
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
					     "MCPGW_SHUTDOWN_GRACE",
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
