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

/* log_close: close a log file opened by log_init (no-op for stderr). */
void log_close(void);

#endif
