/* chat.c: POST /v1/chat/completions: OpenAI chat completions with the server-side MCP tool loop, a threaded FastCGI responder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "http/auth.h"
#include "http/chatloop.h"
#include "http/chatstream.h"
#include "http/hio.h"
#include "core/log.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "openai/toolloop.h"
#include "openai/upstream.h"
#include "core/usage.h"

/* Threads, not processes (MCPGW_CHAT_DRIVER=threads, and where the loop does not apply): a stream holds its worker for its whole life (tool
 * rounds included), so each process keeps MCPGW_CHAT_THREADS workers ready
 * (the skeleton's pool, lib/http/responder.c) and starts more while every one
 * is busy, up to the host's MCPGW_CAPACITY, whose slots every chat completion
 * holds (ROUTE_CAPACITY: one beyond them is answered 503 at once). Each worker
 * has its own tool loop. */
struct worker {
	struct toolloop tl;
};

/* MCPGW_CHAT_DRIVER=loop (the default) in a FastCGI process with a pool: the process's
 * event loops (lib/http/chatloop.h), MCPGW_CHAT_LOOPS of them (one per online CPU by default:
 * one loop drives its runs on one core); none: runs on the workers */
static struct chatloop *chat_loops[CHATLOOP_MAX];
static int chat_nloops;
static unsigned chat_next; /* chatloop_choose's start for ties (atomic) */

/* chat_loop: the loop a new run goes to (chatloop_choose: packed onto the first loops), NULL none */
static struct chatloop *chat_loop(void)
{
	int busy[CHATLOOP_MAX], runs[CHATLOOP_MAX];

	if (chat_nloops == 0)
		return NULL;
	for (int i = 0; i < chat_nloops; i++) {
		busy[i] = chatloop_busy(chat_loops[i]);
		runs[i] = chatloop_runs(chat_loops[i]);
	}
	return chat_loops[chatloop_choose(busy, runs, chat_nloops, __atomic_fetch_add(&chat_next, 1, __ATOMIC_RELAXED))];
}

/* route_chat: POST /v1/chat/completions: the tool loop's events written by chatstream (SSE or the JSON answer) */
static enum route_status route_chat(struct exchange *x)
{
	struct worker *w = x->w->data;
	struct hio *h = x->h;
	json_t *req;
	struct chatstream cs;
	struct chatnote n;
	struct toolloop_sink sink;
	json_t *added = NULL;
	const json_t *model;

	req = oai_parse_body(h, x->body.data ? x->body.data : "", x->body.len, x->w->r->s.max_json_depth,
			     x->w->r->s.max_json_values);
	if (!req)
		return ROUTE_DONE;
	/* the model asked for, or DEFAULT_MODEL when the request names none (what the tool loop sends) */
	model = json_object_get(req, "model");
	accesslog_set_model(&x->log, !model || json_is_null(model) ? x->w->r->s.default_model : json_string_value(model));
	if (chat_nloops > 0) { /* handed over: this worker accepts the next request at once */
		const json_t *mcp = json_object_get(req, "mcp");
		int rc = CHATLOOP_NO_CATALOG;

		/* the catalog, servers coming up waited for, here and not on the loop (a wait there
		 * would hold every run): only for a request that may be offered MCP tools */
		if (x->w->r->s.inject_tools && !json_is_false(json_object_get(mcp, "tools")) &&
		    json_integer_value(json_object_get(req, "n")) <= 1) {
			/* a catalog to fetch or servers to wait for: another worker accepts meanwhile */
			if (!mcptools_current(&w->tl.tools))
				responder_turn_release(x);
			rc = mcptools_wait(&w->tl.tools, w->tl.bc, x->w->r->s.broker_timeout_ms,
					   x->w->r->s.startup_wait_ms);
		}
		if (chatloop_submit(chat_loop(), x, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), rc) == 0)
			return ROUTE_TAKEN;
		/* not taken (the loop stops, or out of memory): run here */
	}
	responder_turn_release(x); /* the whole run on this worker: another accepts meanwhile */
	chatstream_init(&cs, h);
	chatnote_init(&n, &x->log, responder_metrics(x->w->r), chatstream_sink(&cs));
	sink = chatnote_sink(&n);
	w->tl.policy = auth_policy(&x->auth); /* the key's allow-lists: offered and run only */
	w->tl.key_id = x->auth.key_id;        /* a mixed batch's history is bound to the caller's key ("" anonymous) */
	/* cs writes the answer; req is the run's from here (one parsed request in memory, not two) */
	(void)toolloop_run_owned(&w->tl, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), &sink, &added);
	w->tl.policy = NULL;
	w->tl.key_id = NULL;
	chatnote_end(&n, &x->auth, added);
	json_decref(added);
	return ROUTE_DONE;
}

/* chat.fcgi's routes */
static const struct route chat_routes[] = {
	/* ROUTE_QUICK: route_chat hands the run over to a loop, or gives the turn to accept back first */
	{ "/v1/chat/completions", "POST", route_chat,
	  ROUTE_BODY | ROUTE_BROKER | ROUTE_UPSTREAM | ROUTE_CAPACITY | ROUTE_QUICK },
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

/* chat_setup: MCPGW_CHAT_DRIVER=loop: the process's loop, where it applies (said at debug when not) */
static int chat_setup(struct responder *r)
{
	int want;

	if (r->s.chat_driver != SETTINGS_CHAT_LOOP)
		return 0;
	if (FCGX_IsCGI()) { /* a process per request: at debug, not a line per request */
		log_debug("MCPGW_CHAT_DRIVER=loop: not in plain CGI: the chat completion runs on this thread");
		return 0;
	}
	if (r->s.chat_threads <= 1) { /* mod_fcgid sends one request at a time: nothing for a loop to share */
		log_debug("MCPGW_CHAT_DRIVER=loop: not in a process of one worker (MCPGW_CHAT_THREADS=1, mod_fcgid): "
			  "the chat completion runs on this thread");
		return 0;
	}
	want = chatloop_count(&r->s);
	while (chat_nloops < want && (chat_loops[chat_nloops] = chatloop_start(r)))
		chat_nloops++;
	if (chat_nloops == 0)
		log_warn("MCPGW_CHAT_DRIVER=loop: the loop could not start: chat completions run on threads");
	else if (chat_nloops < want)
		log_warn("MCPGW_CHAT_DRIVER=loop: %d of %d loops started: chat completions run on those", chat_nloops,
			 want);
	else
		log_info("chat completions run on %d event loop%s (MCPGW_CHAT_DRIVER=loop, MCPGW_CHAT_LOOPS)",
			 chat_nloops, chat_nloops == 1 ? "" : "s");
	return 0;
}

/* chat_pool_fixed: with the loop the workers only accept and hand over: the pool does not grow */
static int chat_pool_fixed(const struct responder *r)
{
	(void)r;
	return chat_nloops > 0;
}

/* chat_teardown: the loop's runs ended (within MCPGW_SHUTDOWN_GRACE), its thread joined */
static void chat_teardown(struct responder *r)
{
	(void)r;
	/* every loop told first: their runs' MCPGW_SHUTDOWN_GRACE runs from now for all, not one
	 * after another; then each joined */
	for (int i = 0; i < chat_nloops; i++)
		chatloop_tell_stop(chat_loops[i]);
	for (int i = 0; i < chat_nloops; i++) {
		chatloop_stop(chat_loops[i]);
		chat_loops[i] = NULL;
	}
	chat_nloops = 0;
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
					     "MCPGW_CHAT_DRIVER",
					     "MCPGW_CHAT_LOOPS",
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
	.setup = chat_setup,
	.pool_fixed = chat_pool_fixed,
	.teardown = chat_teardown,
	.worker_setup = chat_worker_setup,
	.worker_teardown = chat_worker_teardown,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &chat_usage);

	return opt >= 0 ? opt : responder_main(&chat_def);
}
