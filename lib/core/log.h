/* log.h: one leveled logging family for every mcpgw program (stderr or a file). */
#ifndef MCPGW_LOG_H
#define MCPGW_LOG_H

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

extern int log_current_level;

/* log_init: set the program name shown in each line and the level.
 * path NULL or "" logs to stderr; otherwise appends to that file, created
 * 0600, never through a symlink (O_NOFOLLOW: a symlink there cannot be
 * opened) (falls back to stderr if it cannot be opened; returns -1 then, 0
 * otherwise). */
int log_init(const char *prog, int level, const char *path);

/* log_level_parse: "error"|"warn"|"info"|"debug" (any case) -> level, -1 if unknown. */
int log_level_parse(const char *s);

/* log_write: format and write one line. Control bytes in the formatted text
 * are escaped (\n, \xNN), so request data can never forge a log line.
 * Use the macros below: they check the level before arguments are built. */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) \
	do { \
		if (log_current_level >= LOGL_ERROR) \
			log_write(LOGL_ERROR, __VA_ARGS__); \
	} while (0)
#define log_warn(...) \
	do { \
		if (log_current_level >= LOGL_WARN) \
			log_write(LOGL_WARN, __VA_ARGS__); \
	} while (0)
#define log_info(...) \
	do { \
		if (log_current_level >= LOGL_INFO) \
			log_write(LOGL_INFO, __VA_ARGS__); \
	} while (0)
#define log_debug(...) \
	do { \
		if (log_current_level >= LOGL_DEBUG) \
			log_write(LOGL_DEBUG, __VA_ARGS__); \
	} while (0)

/* log_spool: log_write's line, handed to a thread of the process that
 * writes the lines spooled so far every 100 ms (or when 32 KB wait), each
 * batch with one write(2) of whole lines: for a line per request (the access
 * log), so that a request's thread neither makes a system call for it nor
 * waits on a slow disk. The thread is started by the first call; when it
 * cannot be, or the spool is full, the line is written at once, as
 * log_write does. Lines spooled are written by log_spool_flush, which runs
 * at exit (atexit); a process ended by a signal loses at most 100 ms of
 * them. Thread-safe; not for a process that forks after the first call. */
void log_spool(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* log_spool_text: log_spool of text as it is (no format: the caller made the
 * line; nothing copied on the caller's stack). */
void log_spool_text(int level, const char *text);

/* log_spool_flush: write every spooled line now (waiting for a batch being
 * written) and end the spool: later lines are written at once. */
void log_spool_flush(void);

/* log_reopen: open the log's file again by its name, for logrotate (the
 * file was moved away): the file of log_init's path, or, when logging to
 * stderr and stderr was a regular file at log_init (a shell's 2>>FILE),
 * that file (its name then), which also becomes the new stderr. Lines
 * spooled before are written to the old file first; lines after go to the
 * new one; the FILE and fd numbers stay the same (dup3), so threads writing
 * meanwhile never see a closed stream. 0 reopened, 1 nothing to reopen
 * (stderr not a file), -1 it cannot be opened (errno; the old one stays). */
int log_reopen(void);
/* log_reopen_ask: async-signal-safe: the next line logged (or spooled)
 * does log_reopen first. For a SIGHUP handler. */
void log_reopen_ask(void);

/* log_close: close a log file opened by log_init (no-op for stderr). */
void log_close(void);

#endif
