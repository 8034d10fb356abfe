/* main.c: mcpgw-mcp-client: connects the broker's own MCP client code to one server URL, lists its tools and calls them (for the MCP conformance suite). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "core/log.h"
#include "core/usage.h"

#define CLIENT_READY_MS 20000 /* initialize + tools/list */
#define CLIENT_CALL_MS 30000

static int side = -1;                /* our end of the socketpair; the broker serves the other */
static struct jr_reader rd;
static json_int_t next_id = 1;

/* rpc: send one request through the broker's client path and pump the loop
 * until its answer arrives. New reference to the whole answer, or NULL. */
static json_t *rpc(const char *method, json_t *params, long timeout_ms)
{
	json_t *req = jr_request(next_id, method, params), *ans = NULL;
	buf_t line = BUF_INIT;
	int64_t deadline = clock_now_ms() + timeout_ms;

	if (!req || jr_append_line(&line, req) < 0 || send(side, line.data, line.len, MSG_NOSIGNAL) != (ssize_t)line.len)
		goto out;
	while (!ans && clock_now_ms() < deadline) {
		char chunk[65536], *l;
		size_t len;
		ssize_t n;

		if (loop_step(50) < 0)
			break;
		while ((n = recv(side, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
			jr_reader_feed(&rd, chunk, (size_t)n);
		while (!ans && jr_reader_next(&rd, &l, &len) == JR_READ_LINE) {
			json_t *m = jr_parse(l, len, NULL);

			if (json_integer_value(json_object_get(m, "id")) == next_id)
				ans = m;
			else
				json_decref(m);
		}
	}
out:
	next_id++;
	json_decref(req);
	buf_free(&line);
	return ans;
}

/* sample_args: arguments for a tool from its input schema: required fields
 * get 1, 2, ... for numbers, "test" for strings, true for booleans */
static json_t *sample_args(const json_t *schema)
{
	json_t *args = json_object(), *props = json_object_get(schema, "properties"), *name;
	size_t i;
	int n = 1;

	json_array_foreach(json_object_get(schema, "required"), i, name) {
		const char *type = json_string_value(json_object_get(json_object_get(props, json_string_value(name)), "type"));
		json_t *v = !type ? json_string("test")
			    : strcmp(type, "number") == 0 || strcmp(type, "integer") == 0 ? json_integer(n++)
			    : strcmp(type, "boolean") == 0 ? json_true()
			    : strcmp(type, "array") == 0 ? json_array()
			    : strcmp(type, "object") == 0 ? json_object() : json_string("test");

		if (json_is_string(name))
			json_object_set_new(args, json_string_value(name), v);
		else
			json_decref(v);
	}
	return args;
}

/* wait_ready: pump until the one server is ready (0) or gave up (-1) */
static int wait_ready(void)
{
	int64_t deadline = clock_now_ms() + CLIENT_READY_MS;

	while (clock_now_ms() < deadline) {
		if (B.srvs[0].state == SRV_READY)
			return 0;
		if (B.srvs[0].state == SRV_BACKOFF && B.srvs[0].fail_streak > 1)
			break;
		if (loop_step(50) < 0)
			break;
	}
	fprintf(stderr, "mcpgw-mcp-client: server not ready: %s\n", B.srvs[0].last_error);
	return -1;
}

static int call_all(void)
{
	json_t *list = rpc("tools/list", NULL, 5000), *t;
	size_t i;
	int rc = 0;

	if (!json_is_array(json_object_get(json_object_get(list, "result"), "tools"))) {
		fprintf(stderr, "mcpgw-mcp-client: tools/list failed\n");
		json_decref(list);
		return -1;
	}
	json_array_foreach(json_object_get(json_object_get(list, "result"), "tools"), i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		json_t *ans = rpc("tools/call", json_pack("{s:s, s:o}", "name", name, "arguments",
							   sample_args(json_object_get(t, "inputSchema"))), CLIENT_CALL_MS);
		char *s = ans ? json_dumps(ans, JSON_COMPACT) : NULL;

		printf("%s -> %s\n", name, s ? s : "(no answer)");
		rc |= !ans || json_object_get(ans, "error") ? -1 : 0;
		free(s);
		json_decref(ans);
	}
	json_decref(list);
	return rc;
}

static int setup(const char *url, const char *type)
{
	char err[1024];
	json_t *conf = json_pack("{s:{s:{s:s, s:s}}}", "mcpServers", "conformance", "type", type, "url", url);
	char *text = conf ? json_dumps(conf, 0) : NULL;
	int rc;

	json_decref(conf);
	if (!text)
		return -1;
	rc = cfg_load_string(text, "command line", &B.cfg, err, sizeof err);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
		return -1;
	}
	B.set.max_clients = 4;
	B.listen_fd = -1;
	B.nsrvs = 1;
	B.srvs = calloc(1, sizeof *B.srvs);
	B.clis = calloc(4, sizeof *B.clis);
	B.cli_gens = calloc(4, sizeof *B.cli_gens);
	if (!B.srvs || !B.clis || !B.cli_gens || remote_global_init() < 0)
		return -1;
	srv_init(&B.srvs[0], &B.cfg.servers[0], 0);
	B.started_ms = clock_now_ms();
	srv_start(&B.srvs[0]);
	return 0;
}

static void teardown(void)
{
	int64_t deadline = clock_now_ms() + 3000;

	loop_shutdown();
	while (clock_now_ms() < deadline && loop_step(50) == 0)
		;
	for (int i = 0; i < 4 && B.clis; i++)
		cli_close(i);
	catalog_free();
	if (B.srvs)
		srv_free(&B.srvs[0]);
	free(B.srvs);
	free(B.clis);
	free(B.cli_gens);
	remote_global_cleanup();
	cfg_free(&B.cfg);
	jr_reader_free(&rd);
	if (side >= 0)
		close(side);
}

static const char *const client_settings[] = {
	"MCPGW_HOME", "MCPGW_ENV_FILE", "MCPGW_LOG_LEVEL", "MCPGW_MAX_MESSAGE_BYTES", "MCPGW_INIT_TIMEOUT",
	"MCPGW_RESTART_BACKOFF_MAX", NULL
};

static const struct usage client_usage = {
	"mcpgw-mcp-client",
	"[--sse | --auto] URL\n"
	"       mcpgw-mcp-client --help | --version",
	"Connects to the MCP server at URL through the same client code mcpgw-broker uses: initialize,\n"
	"tools/list, then tools/call of every tool with sample arguments (1, 2, ... for numbers, \"test\"\n"
	"for strings), one line per call on stdout. Exit 0 when every call got a result; 1 otherwise.\n"
	"Runs the MCP conformance scenarios of `make check`.\n",
	"      --sse      the legacy HTTP+SSE transport (GET URL for the stream)\n"
	"      --auto     Streamable HTTP, falling back to SSE on a 4xx (as a config `url` without `type`)\n"
	"                 (default: Streamable HTTP)\n"
	"  -h, --help     this text\n"
	"  -V, --version  the version\n",
	client_settings,
	NULL,
};

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "sse", no_argument, NULL, 's' },  { "auto", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = "http", *url = NULL;
	char err[1024];
	int sp[2], rc = 1, c;

	while ((c = usage_getopt("mcpgw-mcp-client", argc, argv, "hV", longs)) != -1) {
		switch (c) {
		case 's': type = "sse"; break;
		case 'a': type = "auto"; break;
		case 'h': usage_help(stdout, &client_usage); return 0;
		case 'V': usage_version("mcpgw-mcp-client"); return 0;
		default: return USAGE_EXIT;
		}
	}
	if (optind < argc)
		url = argv[optind++];
	if (!url)
		return usage_error("mcpgw-mcp-client", "no URL given");
	if (optind < argc)
		return usage_error("mcpgw-mcp-client", "unexpected argument '%s' (one URL)", argv[optind]);
	if (settings_load(&B.set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
		return 2;
	}
	log_init("mcpgw-mcp-client", B.set.log_level, NULL);
	jr_reader_init(&rd, B.set.max_message_bytes);
	if (setup(url, strcmp(type, "auto") == 0 ? NULL : type) == 0 && wait_ready() == 0 &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == 0) {
		side = sp[1];
		if (cli_adopt(sp[0]) < 0)
			close(sp[0]);
		else
			rc = call_all() == 0 ? 0 : 1;
	}
	teardown();
	return rc;
}
