/* usage.h: what every mcpgw program says on its command line: --help, --version, and a bad option named. */
#ifndef MCPGW_USAGE_H
#define MCPGW_USAGE_H

#include <getopt.h>
#include <stdio.h>

#define USAGE_EXIT 2 /* exit status of a command-line mistake */

/* A program's help text. Every string is borrowed and may be NULL (left out). */
struct usage {
	const char *prog;            /* the name shown: "mcpgw-broker" */
	const char *synopsis;        /* what follows "usage: PROG "; several forms on several lines,
				      * each further line starting with "PROG " */
	const char *about;           /* what it does, one or more lines ending in '\n' */
	const char *options;         /* option lines ("  -h, --help   this text\n") */
	const char *const *settings; /* the names of the settings it reads, NULL-terminated; each must be
				      * a row of the settings table (lib/core/settings.c: meaning and
				      * default come from there) */
	const char *notes;           /* text after the settings */
};

/* usage_help: print u to f: "usage:" line(s), about, "Options:", "Settings"
 * (name, meaning, default of each, in the order given), notes. A settings
 * name missing from the table is printed without a meaning (a programming
 * error that the black-box tests catch). */
void usage_help(FILE *f, const struct usage *u);

/* usage_setting_lines: one line per name ("  NAME   meaning (default: X)",
 * from the settings table) to f, for a program whose settings are not read
 * the usual way and that prints its own "Settings" title (mcp-server-sqlite). */
void usage_setting_lines(FILE *f, const char *const *names);

/* usage_version: "PROG VERSION\n" (lib/version.h) on stdout. */
void usage_version(const char *prog);

/* usage_error: "PROG: <message>\nTry 'PROG --help' for more information.\n"
 * on stderr. Returns USAGE_EXIT, for `return usage_error(...)`. */
int usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* usage_getopt: getopt_long(argc, argv, shorts, longs, NULL) that names
 * what is wrong instead of getopt's own message: an unknown option
 * ("unknown option '--bogus'", "unknown option '-x'"), an ambiguous
 * abbreviation ("ambiguous option '--s': --session, --system"), a missing
 * value ("option '--model' needs a value") or a value given to an option that
 * takes none ("option '--help' takes no value"), each via usage_error. Returns
 * what getopt_long returns; '?' after such a message (the caller exits with
 * USAGE_EXIT). shorts is getopt's option string without a leading ':' or '+'
 * (at most 62 bytes). Sets opterr to 0. Start a new parse with optind = 0. */
int usage_getopt(const char *prog, int argc, char *const argv[], const char *shorts, const struct option *longs);

/* usage_responder: the command line of a responder (cgi-bin/\*.fcgi), which
 * takes no options when a web server runs it. Run from a shell (no
 * GATEWAY_INTERFACE in the environment) it answers -h/--help (u on stdout)
 * and -V/--version, and rejects any other argument. Under a web server argv is
 * ignored: a CGI server may pass the words of a query without '=' as
 * arguments (RFC 3875, 4.4), and `GET /health?--help` must still get
 * /health. Returns -1 to go on serving, else the exit status (0 or
 * USAGE_EXIT; the message is printed). */
int usage_responder(int argc, char *argv[], const struct usage *u);

/* usage_settings: the --settings[=FORMAT] option: the settings table on
 * stdout, FORMAT text (also when arg is NULL) or markdown (README.md's
 * Configuration table, as `make settings-table` writes it there). Returns
 * the exit status: 0, 1 when stdout could not be written, USAGE_EXIT for
 * another FORMAT (named via usage_error). */
int usage_settings(const char *prog, const char *arg);

/* the --settings option line of a program that offers it */
#define USAGE_SETTINGS_OPTION \
	"      --settings[=markdown]\n" \
	"                      every setting: name, default, values, readers, meaning; markdown:\n" \
	"                      README.md's Configuration table, as generated there\n"

/* the options lines of every responder's usage: the ones usage_responder takes */
#define USAGE_RESPONDER_OPTIONS \
	"  -h, --help     this text\n" \
	"  -V, --version  the version\n"

#endif
