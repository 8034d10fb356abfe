/* chat.c: POST /v1/chat/completions: OpenAI chat completions with the server-side MCP tool loop, a threaded FastCGI responder. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mcp/bautostart.h"
#include "mcp/bclient.h"
#include "core/buf.h"
#include "http/chatstream.h"
#include "http/hio.h"
#include "core/log.h"
#include "http/oai.h"
#include "core/settings.h"
#include "openai/toolloop.h"
#include "openai/upstream.h"
#include "core/usage.h"

#define CHAT_PATH "/v1/chat/completions"
#define CHAT_STACK (1024 * 1024)     /* worker thread stack */
#define CHAT_SHUTDOWN_GRACE_S 10     /* streams in progress may finish within this on SIGTERM */

/* Threads, not processes: a stream holds its worker for its whole life (tool
 * rounds included), so each process runs MCPGW_CHAT_THREADS workers that
 * accept on the shared FastCGI socket; many long streams then never starve
 * other requests, at a fraction of the memory of as many processes. */
struct worker {
	pthread_t th;
	struct hio h;
	struct toolloop tl;
	int started;
};

static struct settings S;
static int settings_ok;
static char settings_err[1024];
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stopping;

static void handle(struct worker *w)
{
	struct hio *h = &w->h;
	const char *method = hio_param(h, "REQUEST_METHOD");
	char path[1024];
	buf_t body = BUF_INIT;
	json_t *req = NULL;
	struct chatstream cs;
	struct toolloop_sink sink;
	int rc;

	if (!settings_ok) {
		oai_send_error(h, 500, NULL, "configuration_error", "mcpgw is misconfigured: %s", settings_err);
		return;
	}
	if (strcmp(hio_path(h, path, sizeof path), CHAT_PATH) != 0) {
		oai_send_error(h, 404, NULL, "not_found", "Unknown path %.200s.", path);
		return;
	}
	if (!method || strcmp(method, "POST") != 0) {
		oai_send_405(h, "Allow: POST\r\n", method);
		return;
	}
	if ((rc = hio_read_body(h, S.max_body_bytes, &body)) != 0) {
		oai_send_error(h, rc, NULL, rc == 413 ? "request_too_large" : "invalid_body",
			       rc == 413 ? "The request body is larger than MCPGW_MAX_BODY_BYTES (%zu bytes)."
					 : "The request body could not be read (%zu bytes allowed).",
			       S.max_body_bytes);
		buf_free(&body);
		return;
	}
	req = oai_parse_body(h, body.data ? body.data : "", body.len, S.max_json_depth);
	buf_free(&body);
	if (!req)
		return;
	if (!json_is_object(req)) {
		oai_send_error(h, 400, NULL, "invalid_request", "The request body must be a JSON object.");
		json_decref(req);
		return;
	}
	chatstream_init(&cs, h);
	sink = chatstream_sink(&cs);
	(void)toolloop_run(&w->tl, req, hio_param(h, "HTTP_X_MCPGW_SERVERS"), &sink, NULL); /* cs writes the answer */
	json_decref(req);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		int rc;

		pthread_mutex_lock(&accept_lock);
		rc = stopping ? 0 : hio_accept(&w->h);
		pthread_mutex_unlock(&accept_lock);
		if (rc <= 0)
			break;
		handle(w);
		hio_finish(&w->h);
	}
	return NULL;
}

static int worker_init(struct worker *w)
{
	struct upstream_opts o;

	memset(w, 0, sizeof *w);
	w->tl.set = &S;
	if (hio_init(&w->h) < 0)
		return -1;
	if (!settings_ok)
		return 0;
	upstream_opts_from_settings(&o, &S);
	w->tl.up = upstream_new(&o);
	mcptools_use_state_dir(&w->tl.tools, S.state_dir);
	w->tl.bc = bc_new(S.socket_path, S.max_message_bytes);
	/* no broker running: the tool loop's first call starts one (MCPGW_BROKER_AUTOSTART);
	 * threads start it one at a time (bautostart's mutex), the broker detached */
	bautostart_attach(w->tl.bc, &S, w->h.cgi);
	return w->tl.up && w->tl.bc ? 0 : -1;
}

static void worker_free(struct worker *w)
{
	hio_done(&w->h);
	upstream_free(w->tl.up);
	bc_free(w->tl.bc);
	statestore_close(w->tl.store);
	mcptools_free(&w->tl.tools);
}

/* serve: MCPGW_CHAT_THREADS workers; main waits for SIGTERM/SIGINT, then
 * wakes the workers blocked in accept and gives streams a grace period */
static int serve(struct worker *ws, int n)
{
	sigset_t set;
	pthread_attr_t attr;
	struct timespec deadline;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CHAT_STACK);
	for (int i = 0; i < n; i++)
		ws[i].started = pthread_create(&ws[i].th, &attr, worker_main, &ws[i]) == 0;
	pthread_attr_destroy(&attr);
	if (sigwait(&set, &sig) != 0)
		sig = SIGTERM;
	log_info("signal %d: stopping", sig);
	stopping = 1;
	FCGX_ShutdownPending();
	shutdown(0, SHUT_RDWR); /* wakes the workers blocked in accept on the FastCGI socket */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += CHAT_SHUTDOWN_GRACE_S;
	for (int i = 0; i < n; i++)
		if (ws[i].started && pthread_timedjoin_np(ws[i].th, NULL, &deadline) != 0)
			return 1; /* a stream outlived the grace period: leave without freeing */
	return 0;
}

static const char *const chat_settings[] = {
	"OPENAI_API_KEY", "OPENAI_BASE_URL", "DEFAULT_MODEL", "MCPGW_HOME", "MCPGW_ENV_FILE",
	"MCPGW_STATE_DIR", "MCPGW_BROKER_SOCKET", "MCPGW_BROKER_TIMEOUT", "MCPGW_BROKER_AUTOSTART",
	"MCPGW_BROKER_BIN", "MCPGW_INIT_TIMEOUT", "MCPGW_MAX_MESSAGE_BYTES", "MCPGW_TOOL_TIMEOUT",
	"MCPGW_TOOL_RETRIES", "MCPGW_MAX_TOOL_ROUNDS", "MCPGW_MAX_TOOL_OUTPUT_BYTES", "MCPGW_INJECT_TOOLS",
	"MCPGW_MODEL_ALIASES", "MCPGW_SESSION_TTL", "MCPGW_STATE_STORE", "MCPGW_STATE_STORE_TIMEOUT", "MCPGW_CHAT_THREADS", "MCPGW_MAX_BODY_BYTES",
	"MCPGW_MAX_JSON_DEPTH", "MCPGW_UPSTREAM_CONNECT_TIMEOUT", "MCPGW_UPSTREAM_TIMEOUT",
	"MCPGW_UPSTREAM_RETRIES", "MCPGW_UPSTREAM_RETRY_MAX_WAIT", "MCPGW_MAX_RESPONSE_BYTES",
	"MCPGW_LOG_LEVEL", "MCPGW_LOG_FILE", NULL
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

int main(int argc, char **argv)
{
	struct worker *ws;
	int n, rc = 0;
	int opt = usage_responder(argc, argv, &chat_usage);

	if (opt >= 0)
		return opt;
	signal(SIGPIPE, SIG_IGN);
	settings_ok = settings_load(&S, settings_err, sizeof settings_err) == 0;
	log_init("chat.fcgi", settings_ok ? S.log_level : LOGL_INFO, settings_ok ? S.log_file : NULL);
	if (!settings_ok)
		log_error("%s", settings_err);
	if (upstream_global_init() < 0)
		return 1;
	n = settings_ok ? S.chat_threads : 1;
	ws = calloc((size_t)n, sizeof *ws);
	if (!ws || worker_init(&ws[0]) < 0)
		return 1;
	if (ws[0].h.cgi) {                  /* plain CGI: one request, this thread */
		if (hio_accept(&ws[0].h) > 0)
			handle(&ws[0]);
		worker_free(&ws[0]);
		free(ws);
		upstream_global_cleanup();
		return 0;
	}
	for (int i = 1; i < n; i++)
		if (worker_init(&ws[i]) < 0)
			n = i;
	rc = serve(ws, n);
	if (rc == 0) {
		for (int i = 0; i < n; i++)
			worker_free(&ws[i]);
		free(ws);
		upstream_global_cleanup();
	}
	return rc;
}
