/* settingstab.h: the settings table: one row per setting (name, kind, default, bounds, field, readers, doc). */
#ifndef MCPGW_SETTINGSTAB_H
#define MCPGW_SETTINGSTAB_H

#include <stddef.h>
#include <stdio.h>

#include "core/settings.h"

/* what a value is written as */
enum settingstab_kind {
	SETTINGSTAB_STRING, /* text, at most the field's size - 1 bytes */
	SETTINGSTAB_PATH,   /* a path; a relative one is taken against MCPGW_HOME (MCPGW_HOME's against the cwd) */
	SETTINGSTAB_INT,    /* an integer in [min, max] of unit */
	SETTINGSTAB_BOOL,   /* 1, 0, true, false, yes, no, on, off (any case) */
	SETTINGSTAB_ENUM,   /* one of words (any case) */
};

/* the unit of a SETTINGSTAB_INT */
enum settingstab_unit {
	SETTINGSTAB_COUNT,
	SETTINGSTAB_BYTES,
	SETTINGSTAB_MS,      /* an integer number of milliseconds */
	SETTINGSTAB_SECONDS, /* written in seconds ("D", "D.F", ".F"), kept, and bounded, in milliseconds */
};

/* the C type of the field a row fills */
enum settingstab_ctype {
	SETTINGSTAB_C_NONE,
	SETTINGSTAB_C_CHARS,
	SETTINGSTAB_C_INT,
	SETTINGSTAB_C_LONG,
	SETTINGSTAB_C_SIZE
};

/* who reads a setting (readers is a mask of these) */
enum settingstab_reader {
	SETTINGSTAB_BROKER = 1 << 0,     /* mcpgw-broker */
	SETTINGSTAB_RESPONDERS = 1 << 1, /* cgi-bin/\*.fcgi */
	SETTINGSTAB_CHATBOT = 1 << 2,    /* mcpgw-chat */
	SETTINGSTAB_CTL = 1 << 3,        /* deploy/mcpgwctl */
	SETTINGSTAB_CLIENT = 1 << 4,     /* mcpgw-mcp-client */
	SETTINGSTAB_SQLITE = 1 << 5,     /* mcp-server-sqlite (its environment only, no .env) */
};

#define SETTINGSTAB_SECRET 1 /* flags: the value is never printed (errors, --settings) */

/* one word of a SETTINGSTAB_ENUM or SETTINGSTAB_BOOL and the int it stands for */
struct settingstab_word {
	const char *word;
	int value;
};

struct settingstab_row;

/* a row's default when it cannot be written down (MCPGW_HOME, MCPGW_STATE_DIR):
 * writes it into dst[n]. 0, or -1 with err. */
typedef int (*settingstab_default_fn)(const struct settings *s, char *dst, size_t n, char *err, size_t errlen);

/* a row's hook, run after its value is stored (URL trimmed, alias map built,
 * .env read, derived paths): 0, -1 with err written, or SETTINGSTAB_BAD when
 * the value does not have the row's shape (settings_load then writes the one
 * wording with the row's expect). */
typedef int (*settingstab_hook_fn)(struct settings *s, const struct settingstab_row *r, char *err, size_t errlen);
#define SETTINGSTAB_BAD 1

/* One row. def is the default as written in the environment; a leading
 * "$NAME" stands for the value of the earlier row NAME ("$MCPGW_HOME/.env"). */
struct settingstab_row {
	const char *name;                     /* MCPGW_TOOL_TIMEOUT */
	enum settingstab_kind kind;           /* what a value is written as */
	enum settingstab_unit unit;           /* SETTINGSTAB_INT: its unit */
	long min, max;                        /* SETTINGSTAB_INT: bounds in the unit kept (ms for seconds) */
	const struct settingstab_word *words; /* ENUM, BOOL: the words, ending with { NULL, 0 } */
	const char *def;                      /* the default, or NULL when def_fn computes it */
	settingstab_default_fn def_fn;        /* the default computed (MCPGW_HOME, MCPGW_STATE_DIR) */
	const char *def_doc;                  /* the default as documented (markdown); NULL: `def` */
	size_t off;                           /* its field, or SETTINGSTAB_NOFIELD: its program reads it */
	size_t size;                          /* sizeof the field */
	enum settingstab_ctype ctype;         /* the field's C type */
	unsigned readers;                     /* enum settingstab_reader mask */
	unsigned flags;                       /* SETTINGSTAB_SECRET */
	const char *expect;                   /* STRING checked by hook: its shape ("model[,model...]") */
	settingstab_hook_fn hook;             /* run after the value is stored, or NULL */
	const char *doc;                      /* one line (markdown `code` allowed): --help's meaning */
	const char *more;                     /* README's further prose after doc, or NULL */
};

#define SETTINGSTAB_NOFIELD ((size_t)-1)

/* the rows, in load order (every "$NAME" default names an earlier row) */
extern const struct settingstab_row settingstab_rows[];
extern const size_t settingstab_count;

/* the words of every SETTINGSTAB_BOOL row (settings_parse_bool takes them too) */
extern const struct settingstab_word settingstab_bool_words[];

/* settingstab_find: the row named name (borrowed), or NULL. */
const struct settingstab_row *settingstab_find(const char *name);

/* settingstab_expect: what a value of r must be, as the error wording says it
 * after "expected " ("an integer 0..10", "seconds 0.001..86400", "error,
 * warn, info or debug", "at most 255 bytes"), into dst[n]. Returns dst. */
const char *settingstab_expect(const struct settingstab_row *r, char *dst, size_t n);

/* settingstab_default_text: r's default as documented, without markdown
 * backticks, into dst[n] ("60", "(empty)", "$MCPGW_HOME/.env",
 * "the checkout, else /etc/mcpgw"). Returns dst. */
const char *settingstab_default_text(const struct settingstab_row *r, char *dst, size_t n);

/* settingstab_doc_text: r's doc line without markdown backticks into dst[n]. Returns dst. */
const char *settingstab_doc_text(const struct settingstab_row *r, char *dst, size_t n);

enum settingstab_format { SETTINGSTAB_TEXT, SETTINGSTAB_MARKDOWN };

/* settingstab_print: the whole table to f: TEXT, one block per row (name,
 * values, default, readers, doc); MARKDOWN, README.md's Configuration table
 * (setting | default | meaning | values). Prints defaults, never a current
 * value. 0, or -1 when writing failed. */
int settingstab_print(FILE *f, enum settingstab_format fmt);

/* settingstab_parse: value checked against r's kind and bounds, without
 * storing it: 0 with *out (INT: in the unit kept; BOOL, ENUM: the word's
 * value; STRING, PATH: its length), or -1 (then settingstab_bad writes why). */
int settingstab_parse(const struct settingstab_row *r, const char *value, long *out);

/* settingstab_bad: the one wording for a value r does not take, into err:
 * "NAME: expected WHAT, got 'VALUE'"; a secret's value is shown as its
 * length ("got a secret of 12 bytes"), a long one cut. */
void settingstab_bad(const struct settingstab_row *r, const char *value, char *err, size_t errlen);

/* settingstab_default_value: r's default for s (rows before r already
 * loaded) into dst[n]: its def_fn's, else def with a leading "$NAME"
 * replaced by that earlier row's value. 0, or -1 with err. */
int settingstab_default_value(const struct settingstab_row *r, const struct settings *s, char *dst, size_t n, char *err,
			      size_t errlen);

/* settingstab_env_long: the INT, BOOL or ENUM setting name from this
 * process's environment alone (no .env), its default when unset or empty:
 * for programs that read one setting and not struct settings
 * (mcp-server-sqlite). 0 with *out, or -1 with err (settingstab_bad's
 * wording, or "NAME: not an integer setting"). */
int settingstab_env_long(const char *name, long *out, char *err, size_t errlen);

#endif
