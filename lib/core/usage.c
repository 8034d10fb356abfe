/* usage.c: --help, --version and named command-line mistakes for every mcpgw program. */
#include "core/usage.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/settings.h"
#include "core/settingsdoc.h"
#include "core/version.h"

#define USAGE_NAME_COL 35 /* settings' meanings start in this column (names run to 31 bytes) */

/* usage_setting_line: "  NAME   meaning (default: X)", both from the
 * settings table; a default documented "(x)" shows as "(default: x)" */
static void usage_setting_line(FILE *f, const char *name)
{
	const struct settings_row *r = settings_find(name);
	int pad = USAGE_NAME_COL - 2 - (int)strlen(name);
	char def[512], doc[512];
	size_t len;

	fprintf(f, "  %s%*s", name, pad > 1 ? pad : 1, "");
	if (!r) {
		fprintf(f, "(undocumented)\n");
		return;
	}
	settingsdoc_default_text(r, def, sizeof def);
	len = strlen(def);
	if (def[0] == '(' && len > 1 && def[len - 1] == ')')
		fprintf(f, "%s (default: %.*s)\n", settingsdoc_doc_text(r, doc, sizeof doc), (int)len - 2, def + 1);
	else
		fprintf(f, "%s (default: %s)\n", settingsdoc_doc_text(r, doc, sizeof doc), def);
}

void usage_setting_lines(FILE *f, const char *const *names)
{
	for (const char *const *p = names; *p; p++)
		usage_setting_line(f, *p);
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
		usage_setting_lines(f, u->settings);
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

int usage_settings(const char *prog, const char *arg)
{
	enum settingsdoc_format fmt;

	if (!arg || strcmp(arg, "text") == 0)
		fmt = SETTINGSDOC_TEXT;
	else if (strcmp(arg, "markdown") == 0)
		fmt = SETTINGSDOC_MARKDOWN;
	else
		return usage_error(prog, "--settings=%s: expected text or markdown", arg);
	if (settingsdoc_print(stdout, fmt) < 0) {
		fprintf(stderr, "%s: cannot write the settings table\n", prog);
		return 1;
	}
	return 0;
}
