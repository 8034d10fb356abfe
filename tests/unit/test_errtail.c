/* test_errtail.c: unit tests for picking the telling stderr line (lib/errtail.c), on real captured outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/errtail.h"

/* pick: errtail_pick of the whole string into a buffer of outlen (<= 1024) */
static const char *pick_n(const char *text, size_t outlen)
{
	static char out[1024];
	size_t n;

	memset(out, 'Z', sizeof out);
	n = errtail_pick(text, strlen(text), out, outlen);
	assert_int_equal(n, strlen(out));
	assert_true(n < outlen);
	return out;
}

static const char *pick(const char *text)
{
	return pick_n(text, 1024);
}

/* `npx -y @modelcontextprotocol/server-nonexistent-xyz 2>&1` (npm 11, node 20) */
static const char npx_404[] =
	"npm error code E404\n"
	"npm error 404 Not Found - GET https://registry.npmjs.org/@modelcontextprotocol%2fserver-nonexistent-xyz\n"
	"npm error 404\n"
	"npm error 404  The requested resource '@modelcontextprotocol/server-nonexistent-xyz@*' could not be found or you do not have permission to access it.\n"
	"npm error 404\n"
	"npm error 404 Note that you can also install from a\n"
	"npm error 404 tarball, folder, http url, or git url.\n"
	"npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-03T05_43_34_551Z-debug-0.log\n";

/* the same from npm 6-9 ("npm ERR!", the log path on a line of its own) */
static const char npx_404_old[] =
	"npm ERR! code E404\n"
	"npm ERR! 404 Not Found - GET https://registry.npmjs.org/@modelcontextprotocol%2fserver-nonexistent-xyz - Not found\n"
	"npm ERR! 404 \n"
	"npm ERR! 404  '@modelcontextprotocol/server-nonexistent-xyz@*' is not in this registry.\n"
	"npm ERR! 404 \n"
	"npm ERR! 404 Note that you can also install from a\n"
	"npm ERR! 404 tarball, folder, http url, or git url.\n"
	"\n"
	"npm ERR! A complete log of this run can be found in:\n"
	"npm ERR!     /root/.npm/_logs/2024-05-01T10_00_00_000Z-debug-0.log\n";

/* `npx -y @modelcontextprotocol/server-everything@999.0.0` */
static const char npx_etarget[] =
	"npm error code ETARGET\n"
	"npm error notarget No matching version found for @modelcontextprotocol/server-everything@999.0.0.\n"
	"npm error notarget In most cases you or one of your dependencies are requesting a package version that doesn't exist.\n"
	"npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-03T05_43_45_561Z-debug-0.log\n";

/* `node /nonexistent/server/index.js` */
static const char node_module[] =
	"node:internal/modules/cjs/loader:1210\n"
	"  throw err;\n"
	"  ^\n"
	"\n"
	"Error: Cannot find module '/nonexistent/server/index.js'\n"
	"    at Module._resolveFilename (node:internal/modules/cjs/loader:1207:15)\n"
	"    at Module._load (node:internal/modules/cjs/loader:1038:27)\n"
	"    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12)\n"
	"    at node:internal/main/run_main_module:28:49 {\n"
	"  code: 'MODULE_NOT_FOUND',\n"
	"  requireStack: []\n"
	"}\n"
	"\n"
	"Node.js v20.20.2\n";

/* a server that throws at start-up for want of a variable */
static const char node_throw[] =
	"/tmp/cfgwork/thrower.js:2\n"
	"if (!k) throw new Error(\"API_KEY environment variable is required\");\n"
	"        ^\n"
	"\n"
	"Error: API_KEY environment variable is required\n"
	"    at Object.<anonymous> (/tmp/cfgwork/thrower.js:2:15)\n"
	"    at Module._compile (node:internal/modules/cjs/loader:1521:14)\n"
	"    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)\n"
	"    at Module.load (node:internal/modules/cjs/loader:1266:32)\n"
	"    at Module._load (node:internal/modules/cjs/loader:1091:12)\n"
	"    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12)\n"
	"    at node:internal/main/run_main_module:28:49\n"
	"\n"
	"Node.js v20.20.2\n";

/* an ES module importing a package that is not installed */
static const char node_esm[] =
	"Error [ERR_MODULE_NOT_FOUND]: Cannot find package '@modelcontextprotocol/sdk' imported from /tmp/cfgwork/esm.mjs\n"
	"    at packageResolve (node:internal/modules/esm/resolve:873:9)\n"
	"    at moduleResolve (node:internal/modules/esm/resolve:946:18)\n"
	"    at ModuleLoader.resolve (node:internal/modules/esm/loader:640:38)\n"
	"    at importModuleDynamicallyCallback (node:internal/modules/esm/utils:260:12) {\n"
	"  code: 'ERR_MODULE_NOT_FOUND'\n"
	"}\n";

/* `python3 -c 'import mcp_server_nonexistent'` */
static const char python[] = "Traceback (most recent call last):\n"
			     "  File \"<string>\", line 1, in <module>\n"
			     "ModuleNotFoundError: No module named 'mcp_server_nonexistent'\n";

static void test_npm(void **state)
{
	(void)state;
	assert_string_equal(pick(npx_404), "npm error 404 Not Found - GET "
					   "https://registry.npmjs.org/@modelcontextprotocol%2fserver-nonexistent-xyz");
	assert_string_equal(pick(npx_404_old),
			    "npm ERR! 404  '@modelcontextprotocol/server-nonexistent-xyz@*' is not in this registry.");
	assert_string_equal(
		pick(npx_etarget),
		"npm error notarget No matching version found for @modelcontextprotocol/server-everything@999.0.0.");
	/* npm's boilerplate alone is nothing to show */
	assert_string_equal(pick("npm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n"), "");
}

static void test_node_python_shell(void **state)
{
	(void)state;
	assert_string_equal(pick(node_module), "Error: Cannot find module '/nonexistent/server/index.js'");
	assert_string_equal(pick(node_throw), "Error: API_KEY environment variable is required");
	assert_string_equal(pick(node_esm), "Error [ERR_MODULE_NOT_FOUND]: Cannot find package "
					    "'@modelcontextprotocol/sdk' imported from /tmp/cfgwork/esm.mjs");
	assert_string_equal(pick(python), "ModuleNotFoundError: No module named 'mcp_server_nonexistent'");
	assert_string_equal(pick("sh: 1: mcp-server-nothere: not found\n"), "sh: 1: mcp-server-nothere: not found");
	assert_string_equal(pick("Starting server...\nlistening on stdio\r\n"
				 "java.lang.IllegalStateException: port in use\n\tat Main.main(Main.java:3)\n"),
			    "java.lang.IllegalStateException: port in use");
}

static void test_fallback_and_ties(void **state)
{
	(void)state;
	/* no line says error: the last line that is not noise */
	assert_string_equal(pick("loading config\nbye\n\n   \n"), "bye");
	assert_string_equal(pick("  only one line without newline  "), "only one line without newline");
	assert_string_equal(pick(""), "");
	assert_string_equal(pick("\n\n}\n  ^^^\n----\n"), "");
	/* equal scores: the later line */
	assert_string_equal(pick("error: first\nerror: second\nshutting down\n"), "error: second");
	/* a higher score wins over a later line */
	assert_string_equal(pick("Error: ENOENT: no such file or directory, open '/x'\nerror: retry\n"),
			    "Error: ENOENT: no such file or directory, open '/x'");
	/* a NULL text is empty */
	{
		char out[8] = "x";

		assert_int_equal(errtail_pick(NULL, 0, out, sizeof out), 0);
		assert_string_equal(out, "");
		assert_int_equal(errtail_pick("error", 5, out, 0), 0);
	}
}

static void test_cleaning(void **state)
{
	char line[600];

	(void)state;
	/* ANSI colours dropped, tabs made spaces, other control bytes escaped */
	assert_string_equal(pick("\x1b[31mError:\x1b[0m bad\tthing\x07 here\n"), "Error: bad thing\\x07 here");
	/* valid UTF-8 kept, invalid bytes escaped */
	assert_string_equal(pick("Error: données \xff\xfe fichier\n"), "Error: données \\xff\\xfe fichier");
	assert_string_equal(pick("Error: \xed\xa0\x80 surrogate\n"), "Error: \\xed\\xa0\\x80 surrogate");
	/* bounded: ERRTAIL_LINE_MAX source bytes, then "..." */
	memset(line, 'a', sizeof line);
	memcpy(line, "Error: ", 7);
	line[sizeof line - 1] = '\0';
	{
		const char *o = pick(line);

		assert_int_equal(strlen(o), ERRTAIL_LINE_MAX + 3);
		assert_string_equal(o + ERRTAIL_LINE_MAX, "...");
	}
	/* and to fit out, never cutting a UTF-8 character */
	assert_string_equal(pick_n("Error: ééééé\n", 14), "Error: é...");
	assert_string_equal(pick_n("Error: x\n", 4), "...");
	assert_string_equal(pick_n("Error: x\n", 3), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_npm),
		cmocka_unit_test(test_node_python_shell),
		cmocka_unit_test(test_fallback_and_ties),
		cmocka_unit_test(test_cleaning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
