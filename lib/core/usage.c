/* usage.c: --help, --version and named command-line mistakes for every mcpgw program. */
#include "core/usage.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/version.h"

#define USAGE_NAME_COL 35 /* settings' meanings start in this column (names run to 31 bytes) */

/* one setting as a program's --help shows it; the default is written as in
 * README.md's Configuration table (tests/blackbox/cli.bats compares them) */
struct usage_setting {
	const char *name;
	const char *def;
	const char *meaning;
};

static const struct usage_setting usage_settings[] = {
	{ "MCPGW_HOME", "the checkout, else /etc/mcpgw", "where .env and servers_config.json are" },
	{ "MCPGW_ENV_FILE", "$MCPGW_HOME/.env", "the .env file" },
	{ "MCPGW_CONFIG", "$MCPGW_HOME/servers_config.json", "the MCP servers" },
	{ "MCPGW_STATE_DIR", "$MCPGW_HOME/var, else /var/lib/mcpgw", "broker socket, pid files, registry, logs" },
	{ "MCPGW_BROKER_SOCKET", "$MCPGW_STATE_DIR/broker.sock", "the broker's unix socket" },
	{ "MCPGW_BROKER_AUTOSTART", "1", "start a broker when none runs; 0: off" },
	{ "MCPGW_BROKER_BIN", "(found)", "the mcpgw-broker to start" },
	{ "MCPGW_LOG_LEVEL", "info", "error, warn, info or debug" },
	{ "MCPGW_LOG_FILE", "(stderr)", "the log file" },
	{ "MCPGW_MAX_BODY_BYTES", "4194304", "largest request body; 413 above" },
	{ "MCPGW_MAX_JSON_DEPTH", "64", "deepest JSON nesting of a request; 400 above" },
	{ "MCPGW_MAX_MESSAGE_BYTES", "16777216", "largest JSON-RPC message" },
	{ "MCPGW_TOOL_TIMEOUT", "60", "seconds a tool call may take, per attempt" },
	{ "MCPGW_TOOL_RETRIES", "2", "retries of a tool call on transport failure" },
	{ "MCPGW_INIT_TIMEOUT", "30", "seconds from starting an MCP server to its tool list" },
	{ "MCPGW_RESTART_BACKOFF_MAX", "300", "seconds; longest wait before a failing server is started again" },
	{ "MCPGW_MAX_CLIENTS", "512", "broker client connections" },
	{ "MCPGW_BROKER_TIMEOUT", "5", "seconds to wait for the broker beyond the tool time" },
	{ "MCPGW_STARTUP_WAIT", "30", "seconds a request waits for MCP servers still starting" },
	{ "OPENAI_API_KEY", "(empty)", "the upstream LLM's key" },
	{ "OPENAI_BASE_URL", "https://api.openai.com/v1", "the upstream OpenAI-compatible API" },
	{ "DEFAULT_MODEL", "gpt-3.5-turbo", "the model of a request that names none" },
	{ "MCPGW_UPSTREAM_CONNECT_TIMEOUT", "10", "seconds to connect to the upstream" },
	{ "MCPGW_UPSTREAM_TIMEOUT", "300", "seconds the upstream may stay silent" },
	{ "MCPGW_UPSTREAM_RETRIES", "2", "retries on 429, 5xx and failed connects" },
	{ "MCPGW_UPSTREAM_RETRY_MAX_WAIT", "20", "seconds; longest wait between retries" },
	{ "MCPGW_MAX_RESPONSE_BYTES", "33554432", "largest upstream answer or stream event" },
	{ "MCPGW_MAX_TOOL_ROUNDS", "8", "tool rounds per chat completion" },
	{ "MCPGW_MAX_TOOL_OUTPUT_BYTES", "65536", "longest tool result given to the model" },
	{ "MCPGW_INJECT_TOOLS", "1", "offer the MCP tools to the model; 0: off" },
	{ "MCPGW_MODELS_CACHE_TTL", "300", "seconds the upstream's model list is kept" },
	{ "MCPGW_MODEL_ALIASES", "(none)", "alias=model,alias2=model2" },
	{ "MCPGW_FAULT", "(none)", "tests only: routes whose handler fails on purpose (500)" },
	{ "MCPGW_SESSION_TTL", "86400", "seconds the hidden part of a mixed batch is kept" },
	{ "MCPGW_CHAT_THREADS", "16", "worker threads per chat responder process" },
	{ "EMBEDDING_BASE_URL", "$OPENAI_BASE_URL", "the API that computes embeddings of other models" },
	{ "EMBEDDING_API_KEY", "$OPENAI_API_KEY", "its key" },
	{ "MCPGW_LOCAL_EMBEDDING_MODELS", "mcpgw-embedding-local", "names served by the built-in embedding model" },
	{ "MCPGW_EMBEDDING_MAX_INPUTS", "2048", "inputs per request to the built-in model" },
	{ "MCPGW_EMBEDDING_MAX_INPUT_BYTES", "32768", "bytes per input to the built-in model" },
};

static const struct usage_setting *usage_find(const char *name)
{
	for (size_t i = 0; i < sizeof usage_settings / sizeof usage_settings[0]; i++)
		if (strcmp(usage_settings[i].name, name) == 0)
			return &usage_settings[i];
	return NULL;
}

/* usage_setting_line: "  NAME   meaning (default: X)"; a default written
 * "(x)" in the table shows as "(default: x)" */
static void usage_setting_line(FILE *f, const char *name)
{
	const struct usage_setting *s = usage_find(name);
	int pad = USAGE_NAME_COL - 2 - (int)strlen(name);

	fprintf(f, "  %s%*s", name, pad > 1 ? pad : 1, "");
	if (!s)
		fprintf(f, "(undocumented)\n");
	else if (s->def[0] == '(')
		fprintf(f, "%s (default: %.*s)\n", s->meaning, (int)strlen(s->def) - 2, s->def + 1);
	else
		fprintf(f, "%s (default: %s)\n", s->meaning, s->def);
}

void usage_help(FILE *f, const struct usage *u)
{
	if (u->synopsis)
		fprintf(f, "usage: %s %s\n", u->prog, u->synopsis);
	if (u->about)
		fprintf(f, "\n%s", u->about);
	if (u->options)
		fprintf(f, "\nOptions:\n%s", u->options);
	if (u->settings && u->settings[0]) {
		fprintf(f, "\nSettings (the environment, else $MCPGW_HOME/.env; README.md, Configuration):\n");
		for (const char *const *p = u->settings; *p; p++)
			usage_setting_line(f, *p);
	}
	if (u->notes)
		fprintf(f, "\n%s", u->notes);
}

void usage_version(const char *prog)
{
	printf("%s %s\n", prog, MCPGW_VERSION);
}

int usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	return USAGE_EXIT;
}

/* usage_long_error: say what is wrong with the long option arg ("--name" or
 * "--name=value") that getopt_long refused (missing: it returned ':') */
static void usage_long_error(const char *prog, const char *arg, const struct option *longs, int missing)
{
	const char *name = arg + 2;
	const struct option *found = NULL;
	size_t len = strcspn(name, "="), used = 0;
	char list[512] = "";
	int matches = 0;

	for (const struct option *o = longs; o && o->name; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len) { /* an exact name wins over abbreviations */
			found = o;
			matches = 1;
			break;
		}
		found = o;
		matches++;
		if (used < sizeof list) {
			int n = snprintf(list + used, sizeof list - used, "%s--%s", used ? ", " : "", o->name);

			used += n > 0 ? (size_t)n : 0;
		}
	}
	if (matches > 1)
		usage_error(prog, "ambiguous option '--%.*s': %s", (int)len, name, list);
	else if (matches == 0)
		usage_error(prog, "unknown option '--%.*s'", (int)len, name);
	else if (missing || found->has_arg == required_argument)
		usage_error(prog, "option '--%s' needs a value", found->name);
	else
		usage_error(prog, "option '--%s' takes no value", found->name);
}

int usage_getopt(const char *prog, int argc, char *const argv[], const char *shorts, const struct option *longs)
{
	char opts[64];
	int before = optind > 0 ? optind : 1, c; /* optind 0 starts over at 1 */
	const char *arg;

	if (snprintf(opts, sizeof opts, ":%s", shorts) >= (int)sizeof opts)
		abort(); /* a programming error: the option strings are constants */
	opterr = 0;
	c = getopt_long(argc, argv, opts, longs, NULL);
	if (c != '?' && c != ':')
		return c;
	/* the refused element is argv[optind - 1] when getopt moved past it; a
	 * short option inside a cluster ("-qx") leaves optind where it was */
	arg = optind > before && optind - 1 < argc ? argv[optind - 1] : NULL;
	if (arg && strncmp(arg, "--", 2) == 0 && arg[2])
		usage_long_error(prog, arg, longs, c == ':');
	else if (c == ':')
		usage_error(prog, "option '-%c' needs a value", optopt);
	else if (optopt > 0x20 && optopt < 0x7f)
		usage_error(prog, "unknown option '-%c'", optopt);
	else
		usage_error(prog, "unknown option '%s'", arg ? arg : "?");
	return '?';
}

int usage_responder(int argc, char *argv[], const struct usage *u)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (argc < 2 || getenv("GATEWAY_INTERFACE"))
		return -1;
	optind = 0;
	while ((c = usage_getopt(u->prog, argc, argv, "hV", longs)) != -1) {
		switch (c) {
		case 'h':
			usage_help(stdout, u);
			printf("\nA FastCGI responder: the web server (lighttpd, Apache mod_fcgid) starts it, or spawn-fcgi or\n"
			       "systemd on a socket; executed once per request with the CGI variables set, a plain CGI\n"
			       "program. It takes no options then. See README.md, Deployment.\n");
			return 0;
		case 'V': usage_version(u->prog); return 0;
		default: return USAGE_EXIT;
		}
	}
	if (optind < argc)
		return usage_error(u->prog, "unexpected argument '%s' (a responder takes no arguments)", argv[optind]);
	return -1;
}
