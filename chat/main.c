/* main.c: mcpgw-chat, the interactive chatbot: questions in, answers streamed out, MCP tools run through the broker. */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/statedir.h"
#include "core/version.h"
#include "mcp/bclient.h"
#include "mcp/brokerstart.h"
#include "conversation.h"
#include "display.h"
#include "lineedit.h"
#include "core/log.h"
#include "core/redact.h"
#include "core/settings.h"
#include "openai/toolloop.h"
#include "turn.h"
#include "openai/upstream.h"
#include "core/usage.h"

#define CHAT_VERSION MCPGW_VERSION
#define CHAT_PROMPT "You: "
#define CHAT_PATH_MAX 4352

static const char default_system_prompt[] =
	"You are a helpful assistant with access to tools from MCP servers. Choose the appropriate tool based on "
	"the user's question; if no tool is needed, reply directly. When a tool returns a result, turn it into a "
	"natural, conversational answer: keep it brief, focus on the most relevant information, use the context "
	"of the user's question, and do not simply repeat the raw data.";

struct chat_opts {
	const char *model, *session, *eval, *system_prompt;
	int list_sessions;
};

struct chat {
	struct chat_opts o;
	struct settings set;
	struct toolloop tl;
	struct display d;
	struct conversation conv;
	struct lineedit *le;
	struct brokerstart bs;
	char broker_bin[CHAT_PATH_MAX];
	int interactive; /* questions typed at a terminal */
	int failures;    /* questions not answered */
	int curl_ready;
};

static volatile sig_atomic_t got_int, got_term, in_turn, own_broker_pid;

/* on_signal: flags only; a second one during a question leaves at once (the
 * upstream may be silent for long), stopping a broker we started */
static void on_signal(int sig)
{
	int again = sig == SIGINT ? got_int : got_term;

	if (again && in_turn) {
		lineedit_restore_terminal();
		if (own_broker_pid > 0)
			kill((pid_t)own_broker_pid, SIGTERM);
		_exit(128 + sig);
	}
	if (sig == SIGINT)
		got_int = 1;
	else
		got_term = sig;
}

static int setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	return 0;
}

static const char *const chat_settings[] = { "OPENAI_API_KEY",
					     "OPENAI_BASE_URL",
					     "DEFAULT_MODEL",
					     "MCPGW_HOME",
					     "MCPGW_ENV_FILE",
					     "MCPGW_CONFIG",
					     "MCPGW_STATE_DIR",
					     "MCPGW_BROKER_SOCKET",
					     "MCPGW_BROKER_BIN",
					     "MCPGW_BROKER_TIMEOUT",
					     "MCPGW_INIT_TIMEOUT",
					     "MCPGW_LOG_LEVEL",
					     "MCPGW_TOOL_TIMEOUT",
					     "MCPGW_TOOL_RETRIES",
					     "MCPGW_MAX_TOOL_ROUNDS",
					     "MCPGW_MAX_TOOL_OUTPUT_BYTES",
					     "MCPGW_TOOL_IMAGES",
					     "MCPGW_UPSTREAM_CONNECT_TIMEOUT",
					     "MCPGW_UPSTREAM_TIMEOUT",
					     "MCPGW_UPSTREAM_RETRIES",
					     "MCPGW_UPSTREAM_RETRY_MAX_WAIT",
					     "MCPGW_UPSTREAM_DIALECT",
					     "MCPGW_UPSTREAM_AUTH",
					     "OPENAI_API_VERSION",
					     "MCPGW_MAX_RESPONSE_BYTES",
					     "MCPGW_STATE_STORE",
					     NULL };

static const struct usage chat_usage = {
	"mcpgw-chat",
	"[--model M] [--session NAME] [--system TEXT] [-e QUESTION]\n"
	"       mcpgw-chat --list-sessions | --help | --version",
	"Chat with the upstream LLM (OPENAI_BASE_URL, OPENAI_API_KEY, DEFAULT_MODEL) using every tool of\n"
	"the MCP servers in servers_config.json, through mcpgw-broker (started, and stopped on exit, when\n"
	"none runs).\n",
	"  -m, --model M         the model (default: DEFAULT_MODEL)\n"
	"  -s, --session NAME    resume or start the saved session NAME (in $MCPGW_STATE_DIR/chat.db)\n"
	"  -l, --list-sessions   list the saved sessions: name, messages, last update\n"
	"  -e, --eval QUESTION   answer one question and exit\n"
	"      --system TEXT     the system prompt (default: a helpful assistant that uses its tools)\n"
	"  -h, --help            this text\n"
	"  -V, --version         the version\n",
	chat_settings,
	"At a terminal: type a question; quit, exit or Ctrl-D leaves; Ctrl-C stops an answer. A session\n"
	"without --session is saved under a name made of the date and time. Questions on a pipe are\n"
	"answered one per line (saved only with --session). Log: $MCPGW_STATE_DIR/chat.log.\n",
};

/* parse_args: -1 to go on, else the exit status */
static int parse_args(int argc, char **argv, struct chat_opts *o)
{
	static const struct option longs[] = {
		{ "model", required_argument, NULL, 'm' },   { "session", required_argument, NULL, 's' },
		{ "list-sessions", no_argument, NULL, 'l' }, { "eval", required_argument, NULL, 'e' },
		{ "system", required_argument, NULL, 'S' },  { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },       { NULL, 0, NULL, 0 },
	};
	int c;

	o->system_prompt = default_system_prompt;
	while ((c = usage_getopt("mcpgw-chat", argc, argv, "m:s:le:hV", longs)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 's': o->session = optarg; break;
		case 'l': o->list_sessions = 1; break;
		case 'e': o->eval = optarg; break;
		case 'S': o->system_prompt = optarg; break;
		case 'h': usage_help(stdout, &chat_usage); return 0;
		case 'V': usage_version("mcpgw-chat"); return 0;
		default: return USAGE_EXIT;
		}
	}
	if (optind < argc) {
		return usage_error("mcpgw-chat", "unexpected argument '%s' (a question goes after -e)", argv[optind]);
	}
	if (o->model && !*o->model) {
		return usage_error("mcpgw-chat", "--model: a model name, please");
	}
	return -1;
}

/* chat_broker_up: make sure a broker serves us and its servers have started */
static int chat_broker_up(struct chat *c)
{
	struct brokerstart_opts bo = { c->broker_bin, BROKERSTART_TIMEOUT_MS, 0 };
	char err[8192];

	/* the broker finds the bundled mcp-server-sqlite itself (progpath), whatever PATH is */
	if (!*c->broker_bin && brokerstart_find_bin(c->broker_bin, sizeof c->broker_bin) < 0)
		log_warn("mcpgw-broker not found next to mcpgw-chat nor on PATH; trying '%s'", c->broker_bin);
	if (brokerstart_ensure(&c->set, &bo, &c->bs, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-chat: cannot start the tool broker: %s\n", err);
		return -1;
	}
	own_broker_pid = c->bs.started ? (sig_atomic_t)c->bs.pid : 0;
	if (brokerstart_wait_ready(&c->set, c->set.startup_wait_ms) < 0) {
		fprintf(stderr, "mcpgw-chat: the tool broker on %s does not answer\n", c->set.socket_path);
		return -1;
	}
	return 0;
}

/* chat_broker_check: before a question: the broker we rely on is still there, else start one again */
static void chat_broker_check(struct chat *c)
{
	if (brokerstart_alive(c->set.socket_path) == 1)
		return;
	if (c->bs.started && waitpid(c->bs.pid, NULL, WNOHANG) == c->bs.pid) {
		log_warn("the broker we started (pid %ld) has exited", (long)c->bs.pid);
		c->bs.started = 0;
		c->bs.pid = 0;
		own_broker_pid = 0;
	}
	if (c->bs.started)
		return; /* ours is alive but not answering: the question will say what fails */
	display_notice(&c->d, DISPLAY_INFO, "(the tool broker is gone; starting it again)");
	(void)chat_broker_up(c);
}

/* chat_broker_clients: clients the broker serves (we are one), -1 if it does not say */
static int chat_broker_clients(struct chat *c)
{
	json_t *result = NULL, *error = NULL;
	int n = -1;

	if (bc_call(c->tl.bc, "mcpgw/status", NULL, c->set.broker_timeout_ms, &result, &error) == BC_OK && result)
		n = (int)json_integer_value(json_object_get(json_object_get(result, "broker"), "clients"));
	json_decref(result);
	json_decref(error);
	return n;
}

/* chat_broker_down: stop the broker we started, unless others use it now */
static void chat_broker_down(struct chat *c)
{
	int clients;

	if (!c->bs.started)
		return;
	clients = c->tl.bc ? chat_broker_clients(c) : -1;
	if (clients > 1) {
		fprintf(stderr, "mcpgw-chat: leaving mcpgw-broker (pid %ld) running: %d other clients use it\n",
			(long)c->bs.pid, clients - 1);
		return;
	}
	bc_free(c->tl.bc); /* our connection first, so the broker sees us go */
	c->tl.bc = NULL;
	if (brokerstart_stop(c->bs.pid, 1, BROKERSTART_STOP_MS) > 0)
		fprintf(stderr, "mcpgw-chat: mcpgw-broker (pid %ld) had to be killed\n", (long)c->bs.pid);
	log_info("stopped mcpgw-broker (pid %ld)", (long)c->bs.pid);
	own_broker_pid = 0;
	c->bs.started = 0;
}

/* chat_log_init: the state directory made (or refused: another user's, or
 * writable by others), and the log in it ($MCPGW_STATE_DIR/chat.log), never
 * on the terminal. 0, or -1 said on stderr */
static int chat_log_init(struct chat *c)
{
	char path[CHAT_PATH_MAX], err[8192];

	if (statedir_make(c->set.state_dir, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-chat: %s\n", err);
		return -1;
	}
	if (statedir_path(path, sizeof path, c->set.state_dir, STATEDIR_CHAT_LOG) < 0 ||
	    log_init("mcpgw-chat", c->set.log_level, path) < 0)
		log_init("mcpgw-chat", LOGL_ERROR, NULL);
	return 0;
}

static int chat_setup(struct chat *c)
{
	struct upstream_opts uo;
	char path[CHAT_PATH_MAX], err[1024];
	const char *term = getenv("TERM");
	int save;

	if (chat_log_init(c) < 0)
		return -1;
	c->interactive = !c->o.eval && isatty(0);
	display_init(&c->d, stdout, stderr,
		     isatty(1) && isatty(2) && !getenv("NO_COLOR") && term && *term && strcmp(term, "dumb") != 0);
	if (setup_signals() < 0 || upstream_global_init() < 0) {
		fprintf(stderr, "mcpgw-chat: cannot initialise signals or libcurl\n");
		return -1;
	}
	c->curl_ready = 1;
	save = c->o.session || c->interactive;
	if (statedir_path(path, sizeof path, c->set.state_dir, STATEDIR_CHAT_DB) < 0 ||
	    conversation_open(&c->conv, path, c->o.session, save, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-chat: %s\n", *err ? err : "state directory path too long");
		return -1;
	}
	if (chat_broker_up(c) < 0)
		return -1;
	upstream_opts_from_settings(&uo, &c->set);
	c->tl.set = &c->set;
	c->tl.up = upstream_new(&uo);
	c->tl.bc = bc_new(c->set.socket_path, c->set.max_message_bytes);
	if (!c->tl.up || !c->tl.bc) {
		char shown[1024];

		fprintf(stderr, "mcpgw-chat: cannot set up the upstream client (OPENAI_BASE_URL: '%s')\n",
			redact_url(c->set.openai_base_url, shown, sizeof shown));
		return -1;
	}
	if (!(c->le = lineedit_new(0, 1))) {
		fprintf(stderr, "mcpgw-chat: out of memory\n");
		return -1;
	}
	return 0;
}

/* chat_banner_servers: the MCP servers' state, one line each for those not ready */
static void chat_banner_servers(struct chat *c, int ntools, const char *names)
{
	json_t *result = NULL, *error = NULL, *s;
	size_t i;

	fprintf(stderr, "%d tools from %s\n", ntools, *names ? names : "no MCP server");
	if (bc_call(c->tl.bc, "mcpgw/status", NULL, c->set.broker_timeout_ms, &result, &error) == BC_OK && result)
		json_array_foreach(json_object_get(result, "servers"), i, s) {
			const char *state = json_string_value(json_object_get(s, "state"));
			const char *why = json_string_value(json_object_get(s, "last_error"));

			if (state && strcmp(state, "ready") != 0)
				display_notice(&c->d, DISPLAY_ERROR, "MCP server %s is %s%s%s",
					       json_string_value(json_object_get(s, "name")), state, why ? ": " : "",
					       why ? why : "");
		}
	json_decref(result);
	json_decref(error);
}

static void chat_banner(struct chat *c)
{
	char names[512] = "";
	size_t i, used = 0;
	json_t *t;

	fprintf(stderr, "mcpgw-chat %s: model %s, session %s\n", CHAT_VERSION,
		c->o.model ? c->o.model : c->set.default_model, c->conv.name);
	if (mcptools_refresh(&c->tl.tools, c->tl.bc, c->set.broker_timeout_ms) != BC_OK)
		display_notice(&c->d, DISPLAY_ERROR, "the tool broker did not list its tools");
	json_array_foreach(c->tl.tools.tools, i, t) {
		const char *srv = json_string_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/server"));

		if (srv && !strstr(names, srv) && used + strlen(srv) + 3 < sizeof names)
			used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", srv);
	}
	chat_banner_servers(c, (int)json_array_size(c->tl.tools.tools), names);
	if (c->bs.started)
		fprintf(stderr, "started mcpgw-broker (pid %ld); it stops when you leave\n", (long)c->bs.pid);
	if (json_array_size(c->conv.messages))
		fprintf(stderr, "resumed: %zu earlier messages\n", json_array_size(c->conv.messages));
	fprintf(stderr, "Ask a question; quit or exit leaves.\n");
}

/* chat_ask: one question through the tool loop; the turn kept when answered */
static int chat_ask(struct chat *c, const char *question)
{
	struct turn_opts to = { c->o.model, c->o.system_prompt, &got_int, &got_term };
	json_t *added = NULL;
	char err[1024];
	int st;

	chat_broker_check(c);
	in_turn = 1;
	st = turn_run(&c->tl, &to, c->conv.messages, question, &c->d, &added);
	in_turn = 0;
	got_int = 0;
	if (st == TURN_OK && conversation_add(&c->conv, added, err, sizeof err) < 0)
		display_notice(&c->d, DISPLAY_ERROR, "error: %s", err);
	if (st == TURN_EMPTY)
		display_notice(&c->d, DISPLAY_INFO, "The model gave an empty answer. Please rephrase your question.");
	if (st != TURN_OK)
		c->failures++;
	json_decref(added);
	return st;
}

/* chat_trim: the line without leading and trailing white space (in place) */
static char *chat_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* chat_loop: questions from the terminal or a pipe until quit/exit, end of input or a signal */
static int chat_loop(struct chat *c)
{
	static char line[LINEEDIT_MAX + 1];
	const json_t *m;
	size_t i;

	json_array_foreach(c->conv.messages, i, m)
		if (json_is_string(json_object_get(m, "content")) &&
		    strcmp(json_string_value(json_object_get(m, "role")) ?: "", "user") == 0)
			lineedit_history_add(c->le, json_string_value(json_object_get(m, "content")));
	while (!got_term) {
		int rc = lineedit_read(c->le, c->interactive ? CHAT_PROMPT : NULL, line, sizeof line);
		char *q;

		if (rc == LINEEDIT_EOF || rc == LINEEDIT_ERROR || (rc == LINEEDIT_SIGNAL && (got_int || got_term)))
			return rc == LINEEDIT_ERROR ? 1 : got_term ? 128 + got_term : got_int ? 128 + SIGINT : 0;
		if (rc == LINEEDIT_TOOLONG)
			display_notice(&c->d, DISPLAY_ERROR, "that line is too long (more than %d bytes): ignored",
				       LINEEDIT_MAX);
		if (rc != LINEEDIT_LINE || !*(q = chat_trim(line)))
			continue;
		if (strcasecmp(q, "quit") == 0 || strcasecmp(q, "exit") == 0)
			return 0;
		lineedit_history_add(c->le, q);
		chat_ask(c, q);
	}
	return 128 + got_term;
}

static int chat_run(struct chat *c)
{
	int rc;

	if (c->o.eval) {
		char *q = chat_trim((char *)c->o.eval);

		if (!*q) {
			fprintf(stderr, "mcpgw-chat: -e: a question, please\n");
			return 2;
		}
		return chat_ask(c, q) == TURN_OK ? 0 : 1;
	}
	if (c->interactive)
		chat_banner(c);
	rc = chat_loop(c);
	if (!c->interactive && rc == 0 && c->failures)
		rc = 1; /* on a pipe: some question was not answered */
	return rc;
}

static void chat_teardown(struct chat *c)
{
	chat_broker_down(c);
	if (c->interactive && *c->conv.name && json_array_size(c->conv.messages))
		fprintf(stderr, "saved as session %s (mcpgw-chat --session %s resumes it)\n", c->conv.name, c->conv.name);
	lineedit_free(c->le);
	conversation_close(&c->conv);
	upstream_free(c->tl.up);
	bc_free(c->tl.bc);
	statestore_close(c->tl.store);
	mcptools_free(&c->tl.tools);
	if (c->curl_ready)
		upstream_global_cleanup();
	log_close();
}

int main(int argc, char **argv)
{
	static struct chat c;
	char err[4600], path[CHAT_PATH_MAX];
	int rc;

	setlocale(LC_CTYPE, "");
	if ((rc = parse_args(argc, argv, &c.o)) >= 0)
		return rc;
	if (settings_load_as(&c.set, SETTINGS_CHATBOT, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-chat: %s\n", err);
		return 1;
	}
	if (settings_cwd_note(&c.set, err, sizeof err))
		fprintf(stderr, "mcpgw-chat: %s\n", err);
	if (c.o.list_sessions) {
		snprintf(err, sizeof err, "%s: path too long", c.set.state_dir);
		if (statedir_path(path, sizeof path, c.set.state_dir, STATEDIR_CHAT_DB) < 0 ||
		    conversation_list(path, stdout, err, sizeof err) < 0) {
			fprintf(stderr, "mcpgw-chat: %s\n", err);
			return 1;
		}
		return 0;
	}
	rc = chat_setup(&c) < 0 ? 1 : chat_run(&c);
	chat_teardown(&c);
	return rc;
}
