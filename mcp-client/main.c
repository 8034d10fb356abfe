/* main.c: mcpgw-mcp-client: connects the broker's own MCP client code to one server URL, lists its tools and calls them (for the MCP conformance suite). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/usage.h"
#include "core/evloop.h"
#include "mcp/jsonrpc.h"
#include "session.h"

#define CLIENT_READY_MS 20000 /* initialize + tools/list */
#define CLIENT_CALL_MS 30000

/* the client: a broker with one session, and our end of a socketpair the broker serves as a client */
struct client {
	struct settings set;
	struct cfg cfg;
	struct evloop *loop;
	struct broker *b;
	int side;
	struct jr_reader rd;
	json_int_t next_id;
};

/* rpc: send one request through the broker's client path and pump the loop
 * until its answer arrives. New reference to the whole answer, or NULL. */
static json_t *rpc(struct client *cl, const char *method, json_t *params, long timeout_ms)
{
	json_t *req = jr_request(cl->next_id, method, params), *ans = NULL;
	buf_t line = BUF_INIT;
	int64_t deadline = clock_now_ms() + timeout_ms;

	if (!req || jr_append_line(&line, req) < 0 ||
	    send(cl->side, line.data, line.len, MSG_NOSIGNAL) != (ssize_t)line.len)
		goto out;
	while (!ans && clock_now_ms() < deadline) {
		char chunk[65536], *l;
		size_t len;
		ssize_t n;

		if (broker_step(cl->b, 50) < 0)
			break;
		while ((n = recv(cl->side, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
			if (jr_reader_feed(&cl->rd, chunk, (size_t)n) < 0)
				goto out;
		while (!ans && jr_reader_next(&cl->rd, &l, &len) == JR_READ_LINE) {
			json_t *m = jr_parse(l, len, NULL);

			if (json_integer_value(json_object_get(m, "id")) == cl->next_id)
				ans = m;
			else
				json_decref(m);
		}
	}
out:
	cl->next_id++;
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
		const char *type =
			json_string_value(json_object_get(json_object_get(props, json_string_value(name)), "type"));
		json_t *v = !type                                                         ? json_string("test")
			    : strcmp(type, "number") == 0 || strcmp(type, "integer") == 0 ? json_integer(n++)
			    : strcmp(type, "boolean") == 0                                ? json_true()
			    : strcmp(type, "array") == 0                                  ? json_array()
			    : strcmp(type, "object") == 0                                 ? json_object()
											  : json_string("test");

		if (json_is_string(name))
			json_object_set_new(args, json_string_value(name), v);
		else
			json_decref(v);
	}
	return args;
}

/* wait_ready: pump until the one server is ready (0) or gave up (-1) */
static int wait_ready(struct client *cl)
{
	int64_t deadline = clock_now_ms() + CLIENT_READY_MS;
	const struct session *s = broker_session(cl->b, 0);

	while (clock_now_ms() < deadline) {
		if (s->state == SESSION_READY)
			return 0;
		if (s->state == SESSION_BACKOFF && s->fail_streak > 1)
			break;
		if (broker_step(cl->b, 50) < 0)
			break;
	}
	fprintf(stderr, "mcpgw-mcp-client: server not ready: %s\n", s->last_error);
	return -1;
}

static int call_all(struct client *cl)
{
	json_t *list = rpc(cl, "tools/list", NULL, 5000), *t;
	size_t i;
	int rc = 0;

	if (!json_is_array(json_object_get(json_object_get(list, "result"), "tools"))) {
		fprintf(stderr, "mcpgw-mcp-client: tools/list failed\n");
		json_decref(list);
		return -1;
	}
	json_array_foreach(json_object_get(json_object_get(list, "result"), "tools"), i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		json_t *ans = rpc(cl, "tools/call",
				  json_pack("{s:s, s:o}", "name", name, "arguments",
					    sample_args(json_object_get(t, "inputSchema"))),
				  CLIENT_CALL_MS);
		char *s = ans ? json_dumps(ans, JSON_COMPACT) : NULL;

		printf("%s -> %s\n", name, s ? s : "(no answer)");
		rc |= !ans || json_object_get(ans, "error") ? -1 : 0;
		free(s);
		json_decref(ans);
	}
	json_decref(list);
	return rc;
}

/* setup: a broker with one session for url of type (NULL: auto), started: 0 or -1 (said why) */
static int setup(struct client *cl, const char *url, const char *type)
{
	char err[1024];
	/* no "type" (s*: left out when NULL) is the auto mode */
	json_t *conf = json_pack("{s:{s:{s:s*, s:s}}}", "mcpServers", "conformance", "type", type, "url", url);
	char *text = conf ? json_dumps(conf, 0) : NULL;
	int rc;

	json_decref(conf);
	if (!text) {
		fprintf(stderr, "mcpgw-mcp-client: out of memory\n");
		return -1;
	}
	rc = cfg_load_string(text, "command line", &cl->cfg, err, sizeof err);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
		return -1;
	}
	cl->set.max_clients = 4;
	if (!(cl->loop = evloop_new(NULL, NULL))) {
		fprintf(stderr, "mcpgw-mcp-client: out of memory\n");
		return -1;
	}
	{
		struct broker_opts o = { .set = &cl->set, .cfg = &cl->cfg, .loop = cl->loop };

		if (!(cl->b = broker_new(&o, err, sizeof err))) {
			fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
			return -1;
		}
	}
	broker_start(cl->b);
	return 0;
}

static void teardown(struct client *cl)
{
	int64_t deadline = clock_now_ms() + 3000;

	if (cl->b) {
		broker_shutdown(cl->b);
		while (clock_now_ms() < deadline && broker_step(cl->b, 50) == 0)
			;
	}
	broker_free(cl->b);
	evloop_free(cl->loop);
	cfg_free(&cl->cfg);
	jr_reader_free(&cl->rd);
	if (cl->side >= 0)
		close(cl->side);
}

static const char *const client_settings[] = { "MCPGW_HOME",
					       "MCPGW_ENV_FILE",
					       "MCPGW_LOG_LEVEL",
					       "MCPGW_MAX_MESSAGE_BYTES",
					       "MCPGW_INIT_TIMEOUT",
					       "MCPGW_RESTART_BACKOFF_MAX",
					       NULL };

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
		{ "sse", no_argument, NULL, 's' },
		{ "auto", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = "http", *url = NULL;
	struct client cl = { .side = -1, .next_id = 1 };
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
	if (settings_load_as(&cl.set, SETTINGS_CLIENT, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
		return 2;
	}
	if (settings_cwd_note(&cl.set, err, sizeof err))
		fprintf(stderr, "mcpgw-mcp-client: %s\n", err);
	if (log_init("mcpgw-mcp-client", cl.set.log_level, NULL) < 0)
		fprintf(stderr, "mcpgw-mcp-client: cannot set up logging\n");
	jr_reader_init(&cl.rd, cl.set.max_message_bytes);
	if (setup(&cl, url, strcmp(type, "auto") == 0 ? NULL : type) == 0 && wait_ready(&cl) == 0 &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == 0) {
		cl.side = sp[1];
		if (broker_adopt_client(cl.b, sp[0]) < 0)
			close(sp[0]);
		else
			rc = call_all(&cl) == 0 ? 0 : 1;
	}
	teardown(&cl);
	return rc;
}
