/* test_config.c: unit tests for servers_config.json loading (lib/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp/config.h"

#define NAME "t.json"

static char err[1024];

/* load: cfg_load_string with the test name; clears err first. */
static int load(const char *json, struct cfg *c)
{
	err[0] = '\0';
	return cfg_load_string(json, NAME, c, err, sizeof err);
}

/* expect_err: json must fail with exactly msg. */
static void expect_err(const char *json, const char *msg)
{
	struct cfg c;

	if (load(json, &c) != -1)
		fail_msg("loaded: %s", json);
	if (strcmp(err, msg) != 0)
		fail_msg("for %s\n got: %s\nwant: %s", json, err, msg);
	assert_null(c.servers);
	assert_int_equal(c.nservers, 0);
}

static void test_stdio(void **state)
{
	struct cfg c;
	const struct cfg_server *s;

	(void)state;
	assert_int_equal(load("{\"mcpServers\": {\"sqlite\": {\"command\": \"uvx\","
			      " \"args\": [\"mcp-server-sqlite\", \"--db-path\", \"test.db\"],"
			      " \"env\": {\"A\": \"x\", \"N\": 42, \"B\": true, \"R\": 1.5},"
			      " \"cwd\": \"/tmp\", \"timeout\": 1500, \"alwaysAllow\": [\"x\"]}},"
			      " \"globalShortcut\": \"\"}",
			      &c),
			 0);
	assert_int_equal(c.nservers, 1);
	s = &c.servers[0];
	assert_string_equal(s->name, "sqlite");
	assert_int_equal(s->transport, CFG_STDIO);
	assert_int_equal(s->disabled, 0);
	assert_string_equal(s->command, "uvx");
	assert_int_equal(s->nargs, 3);
	assert_string_equal(s->args[0], "mcp-server-sqlite");
	assert_string_equal(s->args[2], "test.db");
	assert_int_equal(s->nenv, 4);
	assert_string_equal(s->env[0], "A=x");
	assert_string_equal(s->env[1], "N=42");
	assert_string_equal(s->env[2], "B=true");
	assert_string_equal(s->env[3], "R=1.5");
	assert_string_equal(s->cwd, "/tmp");
	assert_int_equal(s->timeout_ms, 1500);
	assert_null(s->url);
	assert_int_equal(s->nheaders, 0);
	cfg_free(&c);
	assert_null(c.servers);
}

static void test_remote(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(load("{\"mcpServers\": {"
			      "\"a\": {\"type\": \"sse\", \"url\": \"https://h/sse\", \"headers\": {\"Authorization\": \"Bearer t\"}},"
			      "\"b\": {\"type\": \"http\", \"url\": \"http://h/mcp\"},"
			      "\"c\": {\"type\": \"streamable-http\", \"url\": \"http://h/mcp\"},"
			      "\"d\": {\"type\": \"streamableHttp\", \"url\": \"HTTPS://h/mcp\", \"args\": [1]},"
			      "\"e\": {\"url\": \"http://h/mcp\"},"
			      "\"f\": {\"type\": \"stdio\", \"command\": \"x\", \"headers\": 5}}}",
			      &c),
			 0);
	assert_int_equal(c.nservers, 6);
	assert_int_equal(c.servers[0].transport, CFG_SSE);
	assert_string_equal(c.servers[0].url, "https://h/sse");
	assert_int_equal(c.servers[0].nheaders, 1);
	assert_string_equal(c.servers[0].headers[0], "Authorization: Bearer t");
	assert_int_equal(c.servers[1].transport, CFG_HTTP);
	assert_int_equal(c.servers[2].transport, CFG_HTTP);
	assert_int_equal(c.servers[3].transport, CFG_HTTP);
	assert_int_equal(c.servers[3].nargs, 0); /* other transport's keys ignored */
	assert_int_equal(c.servers[4].transport, CFG_AUTO);
	assert_null(c.servers[4].command);
	assert_int_equal(c.servers[5].transport, CFG_STDIO);
	cfg_free(&c);
}

static void test_order_and_empty(void **state)
{
	struct cfg c;
	const char *want[] = { "zeta", "alpha", "mid", "0", "b.c-d_e" };

	(void)state;
	assert_int_equal(load("{\"mcpServers\": {\"zeta\": {\"command\": \"z\"}, \"alpha\": {\"command\": \"a\"},"
			      " \"mid\": {\"command\": \"m\"}, \"0\": {\"command\": \"o\"},"
			      " \"b.c-d_e\": {\"command\": \"b\"}}}",
			      &c),
			 0);
	assert_int_equal(c.nservers, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(c.servers[i].name, want[i]);
	cfg_free(&c);
	assert_int_equal(load("{\"mcpServers\": {}}", &c), 0);
	assert_int_equal(c.nservers, 0);
	cfg_free(&c);
	cfg_free(NULL);
}

static void test_errors_shape(void **state)
{
	(void)state;
	expect_err("[]", NAME ": top level: expected an object");
	expect_err("{}", NAME
		   ": no \"mcpServers\" object (expected {\"mcpServers\": {\"NAME\": {\"command\": ...} or {\"url\": ...}}})");
	expect_err("{\"mcpServers\": 3}",
		   NAME ": mcpServers: expected an object of servers by name ({\"NAME\": {\"command\": ...}, ...})");
	expect_err("{\"mcpServers\": {\"x\": 1}}", NAME ": mcpServers.x: expected an object");
	expect_err("{\"mcpServers\": {\"x\": {}}}", NAME ": mcpServers.x: needs \"command\" (stdio) or \"url\" (remote)");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"url\": \"http://h\"}}}",
		   NAME ": mcpServers.x: has both \"command\" and \"url\"; set \"type\"");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": \"foo\", \"url\": \"http://h\"}}}",
		   NAME ": mcpServers.x.type: unknown transport \"foo\" (expected stdio, sse, http)");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": 3, \"url\": \"http://h\"}}}",
		   NAME ": mcpServers.x.type: expected a string");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": \"stdio\", \"command\": \"a\", \"url\": \"http://h\"}}}",
		   NAME ": mcpServers.x: \"url\" is not valid with type \"stdio\"");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": \"stdio\"}}}",
		   NAME ": mcpServers.x: needs \"command\" (type \"stdio\")");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": \"sse\"}}}", NAME ": mcpServers.x: needs \"url\" (type \"sse\")");
	expect_err("{\"mcpServers\": {\"x\": {\"type\": \"http\", \"command\": \"a\", \"url\": \"http://h\"}}}",
		   NAME ": mcpServers.x: \"command\" is not valid with type \"http\"");
}

static void test_errors_fields(void **state)
{
	(void)state;
	expect_err("{\"mcpServers\": {\"sqlite\": {\"command\": \"a\", \"args\": [\"x\", 2]}}}",
		   NAME ": mcpServers.sqlite.args[1]: expected a string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"args\": \"x\"}}}",
		   NAME ": mcpServers.x.args: expected an array of strings");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": 1}}}",
		   NAME ": mcpServers.x.command: expected a non-empty string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"\"}}}",
		   NAME ": mcpServers.x.command: expected a non-empty string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"cwd\": []}}}",
		   NAME ": mcpServers.x.cwd: expected a non-empty string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": []}}}",
		   NAME ": mcpServers.x.env: expected an object of strings");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"K\": null}}}}",
		   NAME ": mcpServers.x.env.K: expected a string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"A=B\": \"v\"}}}}",
		   NAME ": mcpServers.x.env.A=B: invalid variable name");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"A\\u0001\": \"v\"}}}}",
		   NAME ": mcpServers.x.env.A\\x01: invalid variable name");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"\": \"v\"}}}}",
		   NAME ": mcpServers.x.env.: invalid variable name");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"http://h\", \"headers\": {\"H\": [1]}}}}",
		   NAME ": mcpServers.x.headers.H: expected a string");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"http://h\", \"headers\": {\"A B\": \"v\"}}}}",
		   NAME ": mcpServers.x.headers.A B: invalid header name");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"http://h\", \"headers\": {\"H\": \"a\\r\\nX: y\"}}}}",
		   NAME ": mcpServers.x.headers.H: header value contains a line break");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"ftp://h\"}}}",
		   NAME ": mcpServers.x.url: expected an http:// or https:// URL");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"disabled\": \"yes\"}}}",
		   NAME ": mcpServers.x.disabled: expected true or false");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"includeTools\": [\"a\", {}]}}}",
		   NAME ": mcpServers.x.includeTools[1]: expected a string");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"excludeTools\": \"a\"}}}",
		   NAME ": mcpServers.x.excludeTools: expected an array of strings");
}

static void test_errors_timeout(void **state)
{
	const char *bad[] = { "0", "-5", "1.5", "\"100\"", "86400001", "true", "1000.5" };
	char json[256];
	struct cfg c;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(json, sizeof json, "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": %s}}}", bad[i]);
		expect_err(json, NAME ": mcpServers.x.timeout: expected an integer 1000..86400000 (milliseconds)");
	}
	/* Cline and Goose write seconds: under a second is taken for that */
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": 60}}}",
		   NAME ": mcpServers.x.timeout: expected milliseconds 1000..86400000, got 60: seconds? write 60000");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": 999}}}",
		   NAME ": mcpServers.x.timeout: expected milliseconds 1000..86400000, got 999: seconds? write 999000");
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": 1000}}}", &c), 0);
	assert_int_equal(c.servers[0].timeout_ms, 1000);
	cfg_free(&c);
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": 86400000}}}", &c), 0);
	cfg_free(&c);
}

/* "maxConcurrentCalls" 1..65536 and "maxQueuedCalls" 0..65536; -1 when absent (the settings' defaults) */
static void test_call_bounds(void **state)
{
	const char *bad_running[] = { "0", "-1", "65537", "1.5", "\"8\"", "true", "null" };
	const char *bad_queued[] = { "-1", "65537", "2.5", "\"0\"", "false" };
	char json[256];
	struct cfg c;

	(void)state;
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"command\": \"a\"}}}", &c), 0);
	assert_int_equal(c.servers[0].max_concurrent_calls, -1);
	assert_int_equal(c.servers[0].max_queued_calls, -1);
	cfg_free(&c);
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"maxConcurrentCalls\": 2, "
			      "\"maxQueuedCalls\": 0}}}",
			      &c),
			 0);
	assert_int_equal(c.servers[0].max_concurrent_calls, 2);
	assert_int_equal(c.servers[0].max_queued_calls, 0);
	cfg_free(&c);
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"url\": \"http://127.0.0.1:1/mcp\", \"maxConcurrentCalls\": "
			      "65536, \"maxQueuedCalls\": 65536}}}",
			      &c),
			 0);
	assert_int_equal(c.servers[0].max_concurrent_calls, 65536);
	assert_int_equal(c.servers[0].max_queued_calls, 65536);
	cfg_free(&c);
	for (size_t i = 0; i < sizeof bad_running / sizeof *bad_running; i++) {
		snprintf(json, sizeof json,
			 "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"maxConcurrentCalls\": %s}}}", bad_running[i]);
		expect_err(json, NAME ": mcpServers.x.maxConcurrentCalls: expected an integer 1..65536");
	}
	for (size_t i = 0; i < sizeof bad_queued / sizeof *bad_queued; i++) {
		snprintf(json, sizeof json, "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"maxQueuedCalls\": %s}}}",
			 bad_queued[i]);
		expect_err(json, NAME ": mcpServers.x.maxQueuedCalls: expected an integer 0..65536");
	}
}

/* other clients' whole files: the top level names the client and the fix */
static void test_other_clients_top(void **state)
{
	(void)state;
	/* VS Code .vscode/mcp.json */
	expect_err("{\"inputs\": [{\"type\": \"promptString\", \"id\": \"token\", \"password\": true}],"
		   " \"servers\": {\"github\": {\"type\": \"http\", \"url\": \"https://api.githubcopilot.com/mcp/\"},"
		   " \"memory\": {\"type\": \"stdio\", \"command\": \"npx\", \"args\": [\"-y\", \"@modelcontextprotocol/server-memory\"]}}}",
		   NAME
		   ": no \"mcpServers\" object; found \"servers\" (the VS Code mcp.json shape): rename it to \"mcpServers\"");
	/* VS Code settings.json; opencode v2 */
	expect_err("{\"editor.fontSize\": 14, \"mcp\": {\"servers\": {\"fetch\": {\"command\": \"uvx\", \"args\": [\"mcp-server-fetch\"]}}}}",
		   NAME
		   ": no \"mcpServers\" object; found \"mcp\": {\"servers\": ...} (the VS Code settings.json and opencode "
		   "shape): move that \"servers\" object to a top-level \"mcpServers\"");
	/* opencode.json */
	expect_err("{\"$schema\": \"https://opencode.ai/config.json\", \"mcp\": {\"everything\": {\"type\": \"local\","
		   " \"command\": [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"], \"enabled\": true}}}",
		   NAME ": no \"mcpServers\" object; found \"mcp\" (the opencode shape): rename it to \"mcpServers\"");
	/* Zed settings.json */
	expect_err("{\"theme\": \"One Dark\", \"context_servers\": {\"local-mcp-server\": {\"command\": \"some-command\","
		   " \"args\": [\"arg-1\"], \"env\": {}}}}",
		   NAME
		   ": no \"mcpServers\" object; found \"context_servers\" (the Zed settings.json shape): rename it to \"mcpServers\"");
	/* Codex config.toml as JSON */
	expect_err("{\"mcp_servers\": {\"docs\": {\"command\": \"npx\", \"args\": [\"-y\", \"docs-mcp\"]}}}", NAME
		   ": no \"mcpServers\" object; found \"mcp_servers\" (the Codex config shape): rename it to \"mcpServers\"");
	/* Goose config.yaml as JSON */
	expect_err("{\"GOOSE_PROVIDER\": \"openai\", \"extensions\": {\"github\": {\"cmd\": \"npx\", \"args\": [\"-y\", \"x\"],"
		   " \"enabled\": true, \"envs\": {}, \"type\": \"stdio\", \"timeout\": 300}}}",
		   NAME
		   ": no \"mcpServers\" object; found \"extensions\" (the Goose config.yaml shape): rename it to \"mcpServers\"");
	/* Continue's older config.json */
	expect_err("{\"models\": [], \"experimental\": {\"modelContextProtocolServers\": [{\"transport\": {\"type\": \"stdio\","
		   " \"command\": \"uvx\", \"args\": [\"mcp-server-sqlite\", \"--db-path\", \"/tmp/test.db\"]}}]}}",
		   NAME
		   ": no \"mcpServers\" object; found \"experimental\": {\"modelContextProtocolServers\": ...} (the Continue "
		   "config.json shape): give each entry a name in a top-level \"mcpServers\" object and move its \"transport\" "
		   "keys up into it");
	/* Continue's config.yaml as JSON: a list */
	expect_err("{\"mcpServers\": [{\"name\": \"sqlite\", \"command\": \"uvx\", \"args\": [\"mcp-server-sqlite\"]}]}",
		   NAME
		   ": mcpServers: expected an object of servers by name, found an array (the Continue config.yaml shape): "
		   "write {\"NAME\": {\"command\": ...}, ...}");
}

/* "mcpServers" misspelt, nested, or left out */
static void test_other_clients_top_near(void **state)
{
	const char *near[] = { "mcpservers", "MCPServers", "mcp-servers", "McpServers", "mcpServer", "mcpSevers" };
	char json[256], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
		snprintf(json, sizeof json, "{\"%s\": {\"x\": {\"command\": \"a\"}}}", near[i]);
		snprintf(want, sizeof want,
			 NAME ": no \"mcpServers\" object; found \"%s\" (did you mean \"mcpServers\"?)", near[i]);
		expect_err(json, want);
	}
	/* Claude Code's ~/.claude.json keeps them per project */
	expect_err("{\"numStartups\": 3, \"projects\": {\"/home/u/app\": {\"mcpServers\": {\"x\": {\"command\": \"a\"}}}}}",
		   NAME ": no \"mcpServers\" object at the top level; found one inside \"projects\".\"/home/u/app\": "
			"move it to the top level");
	expect_err("{\"settings\": {\"mcpServers\": {}}}", NAME
		   ": no \"mcpServers\" object at the top level; found one inside \"settings\": move it to the top level");
	/* one server's entry pasted alone; servers without the wrapper */
	expect_err("{\"command\": \"npx\", \"args\": [\"-y\", \"@modelcontextprotocol/server-memory\"]}", NAME
		   ": no \"mcpServers\" object; the file holds one server's entry: write {\"mcpServers\": {\"NAME\": {...}}}");
	expect_err("{\"sqlite\": {\"command\": \"mcp-server-sqlite\"}, \"web\": {\"url\": \"https://h/mcp\"}}", NAME
		   ": no \"mcpServers\" object; found server entries at the top level (\"sqlite\"): put them inside "
		   "\"mcpServers\": {...}");
	/* far from "mcpServers": no guess */
	expect_err("{\"mcp_server_list\": 1, \"globalShortcut\": \"\"}", NAME
		   ": no \"mcpServers\" object (expected {\"mcpServers\": {\"NAME\": {\"command\": ...} or {\"url\": ...}}})");
}

/* other clients' keys inside a server entry */
static void test_other_clients_keys(void **state)
{
	(void)state;
	expect_err("{\"mcpServers\": {\"remote\": {\"serverUrl\": \"https://h/mcp\", \"headers\": {\"A\": \"b\"}}}}",
		   NAME ": mcpServers.remote: unknown key \"serverUrl\" (the Windsurf shape): rename it to \"url\"");
	expect_err("{\"mcpServers\": {\"g\": {\"httpUrl\": \"https://h/mcp\", \"trust\": true}}}", NAME
		   ": mcpServers.g: unknown key \"httpUrl\" (the Gemini CLI shape): rename it to \"url\" and add \"type\": \"http\"");
	expect_err("{\"mcpServers\": {\"g\": {\"type\": \"stdio\", \"cmd\": \"npx\", \"args\": [\"-y\", \"x\"]}}}",
		   NAME ": mcpServers.g: unknown key \"cmd\" (the Goose shape): rename it to \"command\"");
	expect_err("{\"mcpServers\": {\"g\": {\"command\": \"npx\", \"envs\": {\"A\": \"b\"}}}}",
		   NAME ": mcpServers.g: unknown key \"envs\" (the Goose shape): rename it to \"env\"");
	expect_err("{\"mcpServers\": {\"g\": {\"type\": \"sse\", \"uri\": \"https://h/sse\"}}}",
		   NAME ": mcpServers.g: unknown key \"uri\" (the Goose shape): rename it to \"url\"");
	expect_err("{\"mcpServers\": {\"o\": {\"command\": \"npx\", \"environment\": {\"A\": \"b\"}}}}",
		   NAME ": mcpServers.o: unknown key \"environment\" (the opencode shape): rename it to \"env\"");
	expect_err("{\"mcpServers\": {\"o\": {\"command\": \"npx\", \"enabled\": false}}}", NAME
		   ": mcpServers.o: unknown key \"enabled\" (the opencode and Goose shape): write \"disabled\": true");
	expect_err("{\"mcpServers\": {\"v\": {\"command\": \"npx\", \"envFile\": \"${workspaceFolder}/.env\"}}}", NAME
		   ": mcpServers.v: unknown key \"envFile\" (the VS Code and Cursor shape): not supported: list the "
		   "variables in \"env\" (values may use ${VAR} from the environment or .env)");
	expect_err("{\"mcpServers\": {\"r\": {\"command\": \"npx\", \"disabledTools\": [\"write_file\"]}}}", NAME
		   ": mcpServers.r: unknown key \"disabledTools\" (the Roo Code shape): rename it to \"excludeTools\"");
	expect_err("{\"mcpServers\": {\"c\": {\"type\": \"local\", \"command\": \"npx\", \"tools\": [\"search\"]}}}", NAME
		   ": mcpServers.c: unknown key \"tools\" (the GitHub Copilot shape): rename it to \"includeTools\"");
	expect_err("{\"mcpServers\": {\"c\": {\"transport\": {\"type\": \"stdio\", \"command\": \"uvx\"}}}}", NAME
		   ": mcpServers.c: unknown key \"transport\" (the Continue shape): move its keys (\"type\", \"command\", "
		   "\"args\", ...) up into the server's entry");
	expect_err("{\"mcpServers\": {\"c\": {\"transport\": \"sse\", \"url\": \"https://h/sse\"}}}",
		   NAME ": mcpServers.c: unknown key \"transport\": rename it to \"type\"");
	/* values of another shape */
	expect_err("{\"mcpServers\": {\"o\": {\"command\": [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"]}}}",
		   NAME
		   ": mcpServers.o.command: expected a string, found an array (the opencode shape): put the program in "
		   "\"command\" and the rest in \"args\"");
	expect_err("{\"mcpServers\": {\"z\": {\"command\": {\"path\": \"npx\", \"args\": [\"-y\", \"x\"], \"env\": {}},"
		   " \"settings\": {}}}}",
		   NAME
		   ": mcpServers.z.command: expected a string, found an object (the older Zed shape): move its \"path\" to "
		   "\"command\" and its \"args\" and \"env\" up beside it");
	expect_err("{\"mcpServers\": {\"o\": {\"type\": \"local\", \"command\": \"npx\"}}}", NAME
		   ": mcpServers.o.type: unknown transport \"local\" (the opencode and GitHub Copilot shape): write "
		   "\"stdio\", or leave \"type\" out");
	expect_err("{\"mcpServers\": {\"o\": {\"type\": \"remote\", \"url\": \"https://h/mcp\"}}}", NAME
		   ": mcpServers.o.type: unknown transport \"remote\" (the opencode shape): write \"http\" or \"sse\", "
		   "or leave \"type\" out");
}

/* near misses of our own keys */
static void test_near_keys(void **state)
{
	const char *pairs[][2] = {
		{ "comand", "command" },
		{ "Command", "command" },
		{ "commnad", "command" },
		{ "arg", "args" },
		{ "argv", "args" },
		{ "Env", "env" },
		{ "ENV", "env" },
		{ "cwdir", NULL },
		{ "pwd", "cwd" },
		{ "tpye", "type" },
		{ "URL", "url" },
		{ "header", "headers" },
		{ "Headers", "headers" },
		{ "disable", "disabled" },
		{ "include_tools", "includeTools" },
		{ "exclude-tools", "excludeTools" },
		{ "excludedTools", "excludeTools" },
		{ "timeout_ms", "timeout" },
		{ "timeOut", "timeout" },
		{ "maxConcurrentCall", "maxConcurrentCalls" },
		{ "maxQueuedCall", "maxQueuedCalls" },
	};
	char json[256], want[256];
	struct cfg c;

	(void)state;
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		snprintf(json, sizeof json, "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"%s\": 1}}}", pairs[i][0]);
		if (!pairs[i][1]) {
			assert_int_equal(load(json, &c), 0);
			cfg_free(&c);
			continue;
		}
		if (strcmp(pairs[i][0], "Command") == 0)
			snprintf(json, sizeof json, "{\"mcpServers\": {\"x\": {\"Command\": \"a\"}}}");
		snprintf(want, sizeof want, NAME ": mcpServers.x: unknown key \"%s\" (did you mean \"%s\"?)",
			 pairs[i][0], pairs[i][1]);
		expect_err(json, want);
	}
	/* the key is shown escaped */
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"arg\\u0001\": 1}}}",
		   NAME ": mcpServers.x: unknown key \"arg\\x01\" (did you mean \"args\"?)");
}

/* keys of other clients that change nothing here stay ignored, so their configs keep working */
static void test_ignored_keys(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(
		load("{\"mcpServers\": {"
		     "\"cline\": {\"command\": \"npx\", \"alwaysAllow\": [\"x\"], \"autoApprove\": [], \"disabled\": false,"
		     " \"timeout\": 60000, \"type\": \"stdio\", \"watchPaths\": [\"/x\"]},"
		     "\"zed\": {\"source\": \"custom\", \"enabled\": true, \"command\": \"uv\", \"args\": [\"run\"], \"env\": {}},"
		     "\"copilot\": {\"type\": \"http\", \"url\": \"https://h/mcp\", \"tools\": [\"*\"]},"
		     "\"gemini\": {\"url\": \"https://h/sse\", \"trust\": false, \"description\": \"d\", \"name\": \"n\"},"
		     "\"goose\": {\"type\": \"streamable_http\", \"url\": \"https://h/mcp\", \"icon\": \"i\"},"
		     "\"cline2\": {\"type\": \"streamableHttp\", \"url\": \"https://h/mcp\"}}}",
		     &c),
		0);
	assert_int_equal(c.nservers, 6);
	assert_int_equal(c.servers[0].timeout_ms, 60000);
	assert_int_equal(c.servers[1].disabled, 0);
	assert_int_equal(c.servers[2].transport, CFG_HTTP);
	assert_int_equal(c.servers[2].ninclude, 0);
	assert_int_equal(c.servers[3].transport, CFG_AUTO);
	assert_int_equal(c.servers[4].transport, CFG_HTTP);
	assert_int_equal(c.servers[5].transport, CFG_HTTP);
	cfg_free(&c);
	/* a disabled server's keys are checked too */
	expect_err("{\"mcpServers\": {\"w\": {\"serverUrl\": \"https://h/mcp\", \"disabled\": true}}}",
		   NAME ": mcpServers.w: unknown key \"serverUrl\" (the Windsurf shape): rename it to \"url\"");
}

static void test_server_names(void **state)
{
	char json[512], name[80];
	struct cfg c;

	(void)state;
	expect_err("{\"mcpServers\": {\"a b\": {\"command\": \"a\"}}}",
		   NAME ": mcpServers: invalid server name \"a b\" (expected 1-64 characters of A-Z a-z 0-9 _ . -)");
	expect_err("{\"mcpServers\": {\"\": {\"command\": \"a\"}}}",
		   NAME ": mcpServers: invalid server name \"\" (expected 1-64 characters of A-Z a-z 0-9 _ . -)");
	expect_err("{\"mcpServers\": {\"a\\nb\": {\"command\": \"a\"}}}", NAME
		   ": mcpServers: invalid server name \"a\\x0ab\" (expected 1-64 characters of A-Z a-z 0-9 _ . -)");
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(json, sizeof json, "{\"mcpServers\": {\"%s\": {\"command\": \"a\"}}}", name);
	assert_int_equal(load(json, &c), 0);
	cfg_free(&c);
	name[64] = 'n';
	name[65] = '\0';
	snprintf(json, sizeof json, "{\"mcpServers\": {\"%s\": {\"command\": \"a\"}}}", name);
	assert_int_equal(load(json, &c), -1);
	assert_non_null(strstr(err, "invalid server name"));
}

static void test_syntax(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(load("{\"mcpServers\": {\n  \"x\": {\"command\": \"a\",}\n}}", &c), -1);
	assert_non_null(strstr(err, NAME ":2:24: invalid JSON: "));
	assert_int_equal(load("{\"mcpServers\": {}, \"mcpServers\": {}}", &c), -1);
	assert_non_null(strstr(err, NAME ":1:"));
	assert_non_null(strstr(err, "duplicate"));
	assert_int_equal(load("", &c), -1);
	assert_non_null(strstr(err, NAME ":"));
}

static void test_expand_config(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(setenv("MCPGW_T_TOKEN", "sekrit", 1), 0);
	assert_int_equal(setenv("MCPGW_T_EMPTY", "", 1), 0);
	assert_int_equal(unsetenv("MCPGW_T_UNSET"), 0);
	assert_int_equal(load("{\"mcpServers\": {\"x\": {\"command\": \"${MCPGW_T_TOKEN}\","
			      " \"args\": [\"--t=${MCPGW_T_TOKEN}\", \"${MCPGW_T_UNSET:-dflt}\", \"[${MCPGW_T_EMPTY}]\","
			      " \"${MCPGW_T_EMPTY:-e}\", \"$${MCPGW_T_TOKEN}\", \"a$b$\"],"
			      " \"env\": {\"K\": \"${MCPGW_T_TOKEN}\"}, \"includeTools\": [\"${x}\"]},"
			      " \"r\": {\"url\": \"https://h/${MCPGW_T_TOKEN}\", \"headers\": {\"A\": \"Bearer ${MCPGW_T_TOKEN}\"}},"
			      " \"off\": {\"command\": \"${MCPGW_T_UNSET}\", \"disabled\": true}}}",
			      &c),
			 0);
	assert_string_equal(c.servers[0].command, "sekrit");
	assert_string_equal(c.servers[0].args[0], "--t=sekrit");
	assert_string_equal(c.servers[0].args[1], "dflt");
	assert_string_equal(c.servers[0].args[2], "[]");
	assert_string_equal(c.servers[0].args[3], "e");
	assert_string_equal(c.servers[0].args[4], "${MCPGW_T_TOKEN}");
	assert_string_equal(c.servers[0].args[5], "a$b$");
	assert_string_equal(c.servers[0].env[0], "K=sekrit");
	assert_string_equal(c.servers[0].include_tools[0], "${x}");
	assert_string_equal(c.servers[1].url, "https://h/sekrit");
	assert_string_equal(c.servers[1].headers[0], "A: Bearer sekrit");
	assert_int_equal(c.servers[2].disabled, 1);
	assert_string_equal(c.servers[2].command, "${MCPGW_T_UNSET}");
	cfg_free(&c);
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"K\": \"${MCPGW_T_UNSET}\"}}}}",
		   NAME ": mcpServers.x.env.K: ${MCPGW_T_UNSET} is not set");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"a\", \"args\": [\"ok\", \"${MCPGW_T_TOKEN\"]}}}",
		   NAME ": mcpServers.x.args[1]: unterminated \"${\"");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"${MCPGW_T_UNSET2}\", \"env\": {}}}}",
		   NAME ": mcpServers.x.command: ${MCPGW_T_UNSET2} is not set");
	expect_err("{\"mcpServers\": {\"x\": {\"command\": \"${MCPGW_T_EMPTY}\"}}}",
		   NAME ": mcpServers.x.command: is empty after expansion");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"${MCPGW_T_UNSET}\"}}}",
		   NAME ": mcpServers.x.url: ${MCPGW_T_UNSET} is not set");
	expect_err("{\"mcpServers\": {\"x\": {\"url\": \"http://h\", \"headers\": {\"A\": \"${1X}\"}}}}",
		   NAME ": mcpServers.x.headers.A: invalid variable reference \"${1X}\"");
	unsetenv("MCPGW_T_TOKEN");
	unsetenv("MCPGW_T_EMPTY");
}

static void expand_ok(const char *in, const char *want)
{
	char e[256] = "", *out = cfg_expand(in, e, sizeof e);

	if (!out)
		fail_msg("cfg_expand(%s) failed: %s", in, e);
	if (strcmp(out, want) != 0)
		fail_msg("cfg_expand(%s) = %s, want %s", in, out, want);
	free(out);
}

static void expand_err(const char *in, const char *want)
{
	char e[256] = "", *out = cfg_expand(in, e, sizeof e);

	if (out) {
		free(out);
		fail_msg("cfg_expand(%s) succeeded", in);
	}
	assert_string_equal(e, want);
}

static void test_expand(void **state)
{
	(void)state;
	assert_int_equal(setenv("MCPGW_T_V", "val", 1), 0);
	unsetenv("MCPGW_T_U");
	expand_ok("", "");
	expand_ok("plain", "plain");
	expand_ok("${MCPGW_T_V}", "val");
	expand_ok("a${MCPGW_T_V}b${MCPGW_T_V}", "avalbval");
	expand_ok("${MCPGW_T_U:-}", "");
	expand_ok("${MCPGW_T_U:-x y$z}", "x y$z");
	expand_ok("${MCPGW_T_V:-x}", "val");
	expand_ok("$${MCPGW_T_V}", "${MCPGW_T_V}");
	expand_ok("$$", "$$");
	expand_ok("$", "$");
	expand_ok("$x $ {", "$x $ {");
	expand_ok("${MCPGW_T_U:-${MCPGW_T_V}}", "${MCPGW_T_V}"); /* default up to the first '}', not re-expanded */
	expand_err("${MCPGW_T_U}", "${MCPGW_T_U} is not set");
	expand_err("x${MCPGW_T_V", "unterminated \"${\"");
	expand_err("${", "unterminated \"${\"");
	expand_err("${}", "invalid variable reference \"${}\"");
	expand_err("${A-B}", "invalid variable reference \"${A-B}\"");
	expand_err("${A:B}", "invalid variable reference \"${A:B}\"");
	expand_err("${ A}", "invalid variable reference \"${ A}\"");
	unsetenv("MCPGW_T_V");
}

static void test_filter(void **state)
{
	struct cfg c;
	const struct cfg_server *a, *b, *d;

	(void)state;
	assert_int_equal(
		load("{\"mcpServers\": {"
		     "\"a\": {\"command\": \"x\"},"
		     "\"b\": {\"command\": \"x\", \"includeTools\": [\"read_*\", \"list_tables\"]},"
		     "\"d\": {\"command\": \"x\", \"includeTools\": [\"*_query\"], \"excludeTools\": [\"write_*\", \"x?\"]}}}",
		     &c),
		0);
	a = &c.servers[0];
	b = &c.servers[1];
	d = &c.servers[2];
	assert_true(cfg_tool_allowed(a, "anything"));
	assert_false(cfg_tool_allowed(a, NULL));
	assert_false(cfg_tool_allowed(NULL, "x"));
	assert_true(cfg_tool_allowed(b, "read_query"));
	assert_true(cfg_tool_allowed(b, "list_tables"));
	assert_false(cfg_tool_allowed(b, "list_tables2"));
	assert_false(cfg_tool_allowed(b, "write_query"));
	assert_true(cfg_tool_allowed(d, "read_query"));
	assert_false(cfg_tool_allowed(d, "write_query")); /* exclude wins */
	assert_false(cfg_tool_allowed(d, "describe_table"));
	assert_false(cfg_tool_allowed(d, "xy"));
	cfg_free(&c);
}

/* write_tmp: a temp file holding len bytes of data; path in tmpl. */
static void write_tmp(char *tmpl, const char *data, size_t len)
{
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_files(void **state)
{
	char path[] = "/tmp/mcpgw-test-config-XXXXXX", want[256];
	const char *json = "{\"mcpServers\": {\"x\": {\"command\": \"a\"}}}";
	struct cfg c;
	char *big;

	(void)state;
	write_tmp(path, json, strlen(json));
	assert_int_equal(cfg_load(path, &c, err, sizeof err), 0);
	assert_int_equal(c.nservers, 1);
	cfg_free(&c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);

	/* exactly 1 MiB of valid JSON is fine; one byte more is not */
	big = malloc(CFG_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, ' ', CFG_MAX_BYTES + 1);
	memcpy(big, json, strlen(json));
	big[CFG_MAX_BYTES + 1] = '\0';
	strcpy(path, "/tmp/mcpgw-test-config-XXXXXX");
	write_tmp(path, big, CFG_MAX_BYTES);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), 0);
	cfg_free(&c);
	assert_int_equal(unlink(path), 0);
	strcpy(path, "/tmp/mcpgw-test-config-XXXXXX");
	write_tmp(path, big, CFG_MAX_BYTES + 1);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: larger than 1 MiB (1048576 bytes)", path);
	assert_string_equal(err, want);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(load(big, &c), -1);
	assert_string_equal(err, NAME ": larger than 1 MiB (1048576 bytes)");
	free(big);

	/* a NUL byte inside the file is a syntax error, not a silent cut */
	strcpy(path, "/tmp/mcpgw-test-config-XXXXXX");
	write_tmp(path, "{\"mcpServers\": {}}\0junk", 23);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, path));
	assert_int_equal(unlink(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdio),
		cmocka_unit_test(test_remote),
		cmocka_unit_test(test_order_and_empty),
		cmocka_unit_test(test_errors_shape),
		cmocka_unit_test(test_errors_fields),
		cmocka_unit_test(test_errors_timeout),
		cmocka_unit_test(test_call_bounds),
		cmocka_unit_test(test_other_clients_top),
		cmocka_unit_test(test_other_clients_top_near),
		cmocka_unit_test(test_other_clients_keys),
		cmocka_unit_test(test_near_keys),
		cmocka_unit_test(test_ignored_keys),
		cmocka_unit_test(test_server_names),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_expand_config),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
