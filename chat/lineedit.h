/* lineedit.h: mcpgw-chat's line editor: raw-mode editing and history on a terminal, plain line reads otherwise. */
#ifndef MCPGW_CHAT_LINEEDIT_H
#define MCPGW_CHAT_LINEEDIT_H

#include <stddef.h>

#define LINEEDIT_MAX 16384        /* bytes of one line (a longer one is refused) */
#define LINEEDIT_PROMPT_MAX 256   /* bytes of a prompt shown */
#define LINEEDIT_HISTORY_MAX 1000 /* lines kept for up/down */

enum lineedit_rc {
	LINEEDIT_LINE = 1,     /* a line was read (without its newline) */
	LINEEDIT_EOF = 0,      /* end of input: Ctrl-D on an empty line, or the input closed */
	LINEEDIT_ERROR = -1,   /* a read error (errno) */
	LINEEDIT_SIGNAL = -2,  /* a signal interrupted the read; the caller checks its flags */
	LINEEDIT_CANCEL = -3,  /* Ctrl-C: the line was discarded */
	LINEEDIT_TOOLONG = -4, /* the line was longer than the buffer: dropped */
};

struct lineedit;

/* lineedit_new: an editor reading in_fd and echoing to out_fd. It edits in
 * raw mode when both are terminals and TERM is set and not "dumb";
 * otherwise lineedit_read reads plain lines from stdin (in_fd must then be
 * 0). NULL on ENOMEM. Registers lineedit_restore_terminal with atexit once. */
struct lineedit *lineedit_new(int in_fd, int out_fd);
void lineedit_free(struct lineedit *le);

/* lineedit_editing: 1 when lines are edited in raw mode. */
int lineedit_editing(const struct lineedit *le);

/* lineedit_read: show prompt (when not NULL; in plain mode only when out_fd
 * is a terminal) and read one line into line (linelen bytes, NUL-terminated,
 * no newline). Keys: left/right, Home/End, Ctrl-A/E, Backspace, Delete,
 * Ctrl-D (delete, or end of input on an empty line), Ctrl-U/K (kill to
 * start/end), Ctrl-W (kill word), Alt-B/F (word left/right), up/down and
 * Ctrl-P/N (history), Ctrl-L (clear), Ctrl-C (discard the line), Ctrl-Z
 * (suspend). The terminal is back in its own mode when this returns.
 * Returns an enum lineedit_rc. */
int lineedit_read(struct lineedit *le, const char *prompt, char *line, size_t linelen);

/* lineedit_history_add: remember line for up/down (empty lines and a repeat
 * of the newest are skipped; the oldest go past LINEEDIT_HISTORY_MAX). */
void lineedit_history_add(struct lineedit *le, const char *line);

/* lineedit_restore_terminal: put the terminal back in the mode it had
 * before raw editing, if raw editing is on. Async-signal-safe: signal
 * handlers may call it. */
void lineedit_restore_terminal(void);

#endif
