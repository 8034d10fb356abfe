/* display.h: what mcpgw-chat writes for the user: the streamed answer, one line per tool call, notices and errors. */
#ifndef MCPGW_CHAT_DISPLAY_H
#define MCPGW_CHAT_DISPLAY_H

#include <stddef.h>
#include <stdio.h>

#define DISPLAY_ARGS_MAX 120   /* bytes of a tool call's arguments shown */
#define DISPLAY_RESULT_MAX 200 /* bytes of a tool result shown */

enum display_kind { DISPLAY_INFO, DISPLAY_ERROR };

struct display {
	FILE *out;      /* the answer text (stdout) */
	FILE *info;     /* tool lines, notices, errors (stderr) */
	int color;      /* dim tool lines, red errors */
	int at_bol;     /* the cursor is at the start of a line */
	int pending_c2; /* a 0xC2 byte held back: with the next byte it may be a C1 control */
	/* colored: the "running" line of a tool call left open, to be replaced by its result line
	 * ("" when none: other output came, or another call started) */
	char running[DISPLAY_ARGS_MAX + 256];
};

/* display_init: answer text to out, the rest to info; color on when asked
 * (the caller checks that both are terminals and NO_COLOR is unset). */
void display_init(struct display *d, FILE *out, FILE *info, int color);

/* display_text: n bytes of the model's answer as they stream in, without
 * terminal control bytes (C0 except \n and \t, DEL, C1): a model cannot
 * drive the terminal. Flushed at once. */
void display_text(struct display *d, const char *s, size_t n);

/* display_end: the answer is complete: end its line. */
void display_end(struct display *d);

/* display_tool_start: an MCP tool call started: one line "[tool SERVER]
 * NAME ARGS ..." (on a terminal, dim, and replaced by the call's result
 * line when that comes next; else ending "running..."), so a user sees
 * what runs while it runs. */
void display_tool_start(struct display *d, const char *server, const char *name, const char *args);

/* display_tool: one line for a finished MCP tool call: server, name, its
 * arguments (cut to DISPLAY_ARGS_MAX) and its result text (cut to
 * DISPLAY_RESULT_MAX), each made one line. */
void display_tool(struct display *d, const char *server, const char *name, const char *args, const char *result,
		  int is_error);

/* display_notice: one line on info (an error in red when colored). */
void display_notice(struct display *d, enum display_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* display_one_line: src made printable on one line into out (outlen > 4):
 * runs of white space become one blank, other control bytes are dropped,
 * cut after at most max bytes on a UTF-8 boundary with "..." added. */
void display_one_line(const char *src, size_t max, char *out, size_t outlen);

#endif
