/* test_usage.c: unit tests for lib/core/usage.c: bad options named, --help text from the settings table, --settings, a responder's argv under a web server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/settings.h"
#include "core/settingsdoc.h"
#include "core/usage.h"
#include "core/version.h"

static const struct option longs[] = {
	{ "model", required_argument, NULL, 'm' },  { "session", required_argument, NULL, 's' },
	{ "system", required_argument, NULL, 'S' }, { "list", no_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
};

static char out[8192]; /* what the last captured call wrote */

/* capture_begin/end: stream fd (1 or 2) into out */
static int saved_fd = -1;
static FILE *tmp;

static void capture_begin(int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	tmp = tmpfile();
	assert_non_null(tmp);
	saved_fd = dup(fd);
	assert_true(saved_fd >= 0);
	assert_true(dup2(fileno(tmp), fd) >= 0);
}

static void capture_end(int fd)
{
	size_t n;

	fflush(fd == 1 ? stdout : stderr);
	assert_true(dup2(saved_fd, fd) >= 0);
	close(saved_fd);
	rewind(tmp);
	n = fread(out, 1, sizeof out - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

/* parse: run usage_getopt over the NULL-terminated words (argv[0] "prog")
 * until it ends or refuses; the last return value, stderr in out */
static int parse(const char *const *words)
{
	char *argv[16];
	int argc = 0, c;

	argv[argc++] = (char *)"prog";
	while (*words && argc < 15)
		argv[argc++] = (char *)*words++;
	argv[argc] = NULL;
	optind = 0;
	capture_begin(2);
	while ((c = usage_getopt("prog", argc, argv, "m:s:lh", longs)) != -1 && c != '?')
		;
	capture_end(2);
	return c;
}

static void test_good_options(void **state)
{
	(void)state;
	assert_int_equal(parse((const char *[]){ "--model", "x", "-l", "--sess=a", "-mgpt", NULL }), -1);
	assert_string_equal(out, "");
}

static void test_unknown_long(void **state)
{
	(void)state;
	assert_int_equal(parse((const char *[]){ "--model", "x", "--bogus", NULL }), '?');
	assert_string_equal(out, "prog: unknown option '--bogus'\nTry 'prog --help' for more information.\n");
	assert_int_equal(parse((const char *[]){ "--bogus=1", NULL }), '?');
	assert_non_null(strstr(out, "unknown option '--bogus'\n"));
}

static void test_unknown_short(void **state)
{
	(void)state;
	assert_int_equal(parse((const char *[]){ "-x", NULL }), '?');
	assert_non_null(strstr(out, "prog: unknown option '-x'\n"));
	/* inside a cluster, after a long option: still the short one named */
	assert_int_equal(parse((const char *[]){ "--list", "-lqh", NULL }), '?');
	assert_non_null(strstr(out, "prog: unknown option '-q'\n"));
}

static void test_values(void **state)
{
	(void)state;
	assert_int_equal(parse((const char *[]){ "--model", NULL }), '?');
	assert_non_null(strstr(out, "prog: option '--model' needs a value\n"));
	assert_int_equal(parse((const char *[]){ "--mod", NULL }), '?');
	assert_non_null(strstr(out, "prog: option '--model' needs a value\n"));
	assert_int_equal(parse((const char *[]){ "-m", NULL }), '?');
	assert_non_null(strstr(out, "prog: option '-m' needs a value\n"));
	assert_int_equal(parse((const char *[]){ "--help=yes", NULL }), '?');
	assert_non_null(strstr(out, "prog: option '--help' takes no value\n"));
}

static void test_ambiguous(void **state)
{
	(void)state;
	assert_int_equal(parse((const char *[]){ "--s", "x", NULL }), '?');
	assert_non_null(strstr(out, "prog: ambiguous option '--s': --session, --system\n"));
}

static void test_help_text(void **state)
{
	static const char *const settings[] = { "MCPGW_HOME", "OPENAI_API_KEY", "MCPGW_TOOL_TIMEOUT", NULL };
	const struct usage u = { "prog", "[--x]", "Does things.\n", "  -h, --help  this text\n", settings, "More.\n" };

	(void)state;
	capture_begin(1);
	usage_help(stdout, &u);
	capture_end(1);
	assert_non_null(strstr(out, "usage: prog [--x]\n\nDoes things.\n\nOptions:\n  -h, --help  this text\n"));
	assert_non_null(strstr(
		out,
		"\n  MCPGW_HOME                       where .env and servers_config.json are (default: the checkout, else /etc/mcpgw)\n"));
	assert_non_null(strstr(out, "\n  OPENAI_API_KEY                   the upstream LLM's key (default: empty)\n"));
	assert_non_null(strstr(
		out, "\n  MCPGW_TOOL_TIMEOUT               seconds a tool call may take, per attempt (default: 60)\n"));
	assert_non_null(strstr(out, "\nMore.\n"));
	capture_begin(1);
	usage_version("prog");
	capture_end(1);
	assert_string_equal(out, "prog " MCPGW_VERSION "\n");
}

/* every row's --help line: its doc and default from the settings table, without markdown */
static void test_help_lines_from_table(void **state)
{
	const char *names[2] = { NULL, NULL };
	char want[1200], def[512], doc[512];

	(void)state;
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];
		size_t n;

		names[0] = r->name;
		capture_begin(1);
		usage_setting_lines(stdout, names);
		capture_end(1);
		settingsdoc_default_text(r, def, sizeof def);
		n = strlen(def);
		if (def[0] == '(' && def[n - 1] == ')') { /* "(empty)" shows as "(default: empty)" */
			memmove(def, def + 1, n - 2);
			def[n - 2] = '\0';
		}
		snprintf(want, sizeof want, "  %-32s %s (default: %s)\n", r->name,
			 settingsdoc_doc_text(r, doc, sizeof doc), def);
		assert_string_equal(out, want);
		assert_null(strchr(out, '`'));
	}
	names[0] = "MCPGW_NO_SUCH";
	capture_begin(1);
	usage_setting_lines(stdout, names);
	capture_end(1);
	assert_string_equal(out, "  MCPGW_NO_SUCH                    (undocumented)\n");
}

#define STARTS(lit) lit, sizeof lit - 1 /* strncmp's last two arguments: out begins with lit */

/* --settings[=FORMAT]: the table on stdout; another format named on stderr, USAGE_EXIT */
static void test_settings_option(void **state)
{
	(void)state;
	capture_begin(1);
	assert_int_equal(usage_settings("prog", NULL), 0);
	capture_end(1);
	assert_true(strncmp(out,
			    STARTS("MCPGW_HOME\n    default: the checkout, else /etc/mcpgw; takes: path; read by: ")) ==
		    0);
	capture_begin(1);
	assert_int_equal(usage_settings("prog", "markdown"), 0);
	capture_end(1);
	assert_true(strncmp(out, STARTS("| setting | default | meaning | takes |\n|---|---|---|---|\n| `MCPGW_HOME` |")) ==
		    0);
	capture_begin(2);
	assert_int_equal(usage_settings("prog", "html"), USAGE_EXIT);
	capture_end(2);
	assert_string_equal(out,
			    "prog: --settings=html: expected text or markdown\nTry 'prog --help' for more information.\n");
}

static void test_responder(void **state)
{
	static const struct usage u = { "r.fcgi", "[--help | --version]", "Answers.\n", NULL, NULL, NULL };
	char *help[] = { (char *)"r.fcgi", (char *)"--help", NULL };
	char *bogus[] = { (char *)"r.fcgi", (char *)"--bogus", NULL };
	char *word[] = { (char *)"r.fcgi", (char *)"word", NULL };
	char *none[] = { (char *)"r.fcgi", NULL };

	(void)state;
	unsetenv("GATEWAY_INTERFACE");
	assert_int_equal(usage_responder(1, none, &u), -1);
	capture_begin(1);
	assert_int_equal(usage_responder(2, help, &u), 0);
	capture_end(1);
	assert_non_null(strstr(out, "usage: r.fcgi [--help | --version]\n"));
	capture_begin(2);
	assert_int_equal(usage_responder(2, bogus, &u), USAGE_EXIT);
	capture_end(2);
	assert_non_null(strstr(out, "r.fcgi: unknown option '--bogus'\n"));
	capture_begin(2);
	assert_int_equal(usage_responder(2, word, &u), USAGE_EXIT);
	capture_end(2);
	assert_non_null(strstr(out, "r.fcgi: unexpected argument 'word'"));
	/* a CGI request GET /x?--help: the server passes "--help"; it is a request, not an option */
	setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
	assert_int_equal(usage_responder(2, help, &u), -1);
	assert_int_equal(usage_responder(2, bogus, &u), -1);
	unsetenv("GATEWAY_INTERFACE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_options),    cmocka_unit_test(test_unknown_long),
		cmocka_unit_test(test_unknown_short),   cmocka_unit_test(test_values),
		cmocka_unit_test(test_ambiguous),       cmocka_unit_test(test_help_text),
		cmocka_unit_test(test_responder),       cmocka_unit_test(test_help_lines_from_table),
		cmocka_unit_test(test_settings_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
