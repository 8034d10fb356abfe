/* log.c: leveled, escaped, one-line-per-event logging. */
#include "core/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

int log_current_level = LOGL_INFO;
static char log_prog[32] = "mcpgw";
static FILE *log_fp;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

/* what every line repeats, kept rather than asked for per line (a line per request
 * at info): the pid (getpid is a system call; forgotten in a forked child) and, per
 * thread, the current second formatted */
static long log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;
static __thread time_t log_sec = -1;
static __thread char log_date[32];

static void log_forked(void)
{
	__atomic_store_n(&log_pid, 0, __ATOMIC_RELAXED);
}

static void log_watch_fork(void)
{
	(void)pthread_atfork(NULL, NULL, log_forked);
}

/* pid: this process's id */
static long pid(void)
{
	long p = __atomic_load_n(&log_pid, __ATOMIC_RELAXED);

	if (!p) {
		(void)pthread_once(&log_pid_once, log_watch_fork);
		p = (long)getpid();
		__atomic_store_n(&log_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

int log_init(const char *prog, int level, const char *path)
{
	if (prog)
		snprintf(log_prog, sizeof log_prog, "%s", prog);
	if (level >= LOGL_ERROR && level <= LOGL_DEBUG)
		log_current_level = level;
	log_close();
	if (path && *path) {
		/* never through a symlink: a log is often in a directory others reach (issue 14, case 5) */
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0 || !(log_fp = fdopen(fd, "a"))) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		setvbuf(log_fp, NULL, _IOLBF, 0);
	}
	return 0;
}

void log_close(void)
{
	if (log_fp) {
		fclose(log_fp);
		log_fp = NULL;
	}
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOGL_DEBUG; i++)
		if (s && strcasecmp(s, level_names[i]) == 0)
			return i;
	if (s && strcasecmp(s, "warning") == 0)
		return LOGL_WARN;
	return -1;
}

void log_write(int level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX], out[LOG_LINE_MAX * 2];
	va_list ap;
	size_t o = 0;
	struct timespec ts;
	struct tm tm;

	if (level < LOGL_ERROR || level > LOGL_DEBUG)
		level = LOGL_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != log_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		if (strftime(log_date, sizeof log_date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			log_date[0] = '\0';
		log_sec = ts.tv_sec;
	}
	o = (size_t)snprintf(out, sizeof out, "%s.%03ldZ %s[%ld] %s ", log_date, ts.tv_nsec / 1000000, log_prog, pid(),
			     level_names[level]);
	for (const unsigned char *p = (const unsigned char *)msg; *p && o + 5 < sizeof out; p++) {
		if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '\n';
	(void)!fwrite(out, 1, o, log_fp ? log_fp : stderr);
}
