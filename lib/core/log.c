/* log.c: leveled, escaped, one-line-per-event logging. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

int log_current_level = LOGL_INFO;
static char log_prog[32] = "mcpgw";
static FILE *log_fp;
/* what log_reopen opens again: log_init's path, or stderr's file's name; "" nothing */
static char log_path[PATH_MAX];
static int log_stderr_too; /* stderr is (was at log_init) that same file: the new one goes there too */
static volatile sig_atomic_t log_reopen_asked;

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

/* same_file: fds a and b are the same regular file */
static int same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* stderr_file_name: when stderr is a regular file, its name into log_path (what log_reopen opens) */
static void stderr_file_name(void)
{
	struct stat st;
	ssize_t n;

	if (fstat(STDERR_FILENO, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	n = readlink("/proc/self/fd/2", log_path, sizeof log_path - 1);
	if (n <= 0 || log_path[0] != '/' || (size_t)n >= sizeof log_path - 1 - 10) {
		log_path[0] = '\0';
		return;
	}
	log_path[n] = '\0';
	if (n > 10 && strcmp(log_path + n - 10, " (deleted)") == 0)
		log_path[0] = '\0';
	else
		log_stderr_too = 1;
}

int log_init(const char *prog, int level, const char *path)
{
	if (prog)
		snprintf(log_prog, sizeof log_prog, "%s", prog);
	if (level >= LOGL_ERROR && level <= LOGL_DEBUG)
		log_current_level = level;
	log_close();
	log_path[0] = '\0';
	log_stderr_too = 0;
	log_reopen_asked = 0;
	if (path && *path) {
		/* never through a symlink: a log is often in a directory others reach (issue 14, case 5) */
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0 || !(log_fp = fdopen(fd, "a"))) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		setvbuf(log_fp, NULL, _IOLBF, 0);
		if (strlen(path) < sizeof log_path)
			memcpy(log_path, path, strlen(path) + 1);
		log_stderr_too = same_file(fileno(log_fp), STDERR_FILENO);
	} else {
		stderr_file_name();
	}
	return 0;
}

/* spool_drain: the spooled lines written to the current file before it changes (defined below) */
static void spool_drain(void);

void log_close(void)
{
	spool_drain();
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

/* log_compose: the whole line of level and msg (its first LOG_LINE_MAX - 1
 * bytes) into out (outlen bytes, at least 64), control bytes escaped,
 * ending with '\n'; its length */
static size_t log_compose(int level, const char *msg, char *out, size_t outlen)
{
	size_t o = 0;
	struct timespec ts;
	struct tm tm;

	if (level < LOGL_ERROR || level > LOGL_DEBUG)
		level = LOGL_ERROR;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != log_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		if (strftime(log_date, sizeof log_date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			log_date[0] = '\0';
		log_sec = ts.tv_sec;
	}
	o = (size_t)snprintf(out, outlen, "%s.%03ldZ %s[%ld] %s ", log_date, ts.tv_nsec / 1000000, log_prog, pid(),
			     level_names[level]);
	if (o >= outlen - 1)
		o = outlen - 2;
	for (const unsigned char *p = (const unsigned char *)msg;
	     *p && p - (const unsigned char *)msg < LOG_LINE_MAX - 1 && o + 5 < outlen; p++) {
		if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '\n';
	return o;
}

/* log_format: log_compose of the text fmt makes */
static size_t log_format(int level, const char *fmt, va_list ap, char *out, size_t outlen)
{
	char msg[LOG_LINE_MAX];

	vsnprintf(msg, sizeof msg, fmt, ap);
	return log_compose(level, msg, out, outlen);
}

void log_write(int level, const char *fmt, ...)
{
	char out[LOG_LINE_MAX * 2];
	va_list ap;
	size_t o;

	if (log_reopen_asked)
		(void)log_reopen();
	va_start(ap, fmt);
	o = log_format(level, fmt, ap, out, sizeof out);
	va_end(ap);
	(void)!fwrite(out, 1, o, log_fp ? log_fp : stderr);
}

/* ---- the spool: lines written by a thread of their own ---- */

#define LOG_SPOOL_BYTES (64 * 1024) /* each of the two buffers (pages touched only as lines fill them) */
#define LOG_SPOOL_MS 100            /* a spooled line waits at most about this long */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	char *fill, *out; /* lines being added; lines being written by the thread */
	size_t len;       /* bytes in fill */
	int state;        /* 0 not started, 1 the thread runs, -1 none (lines are written at once) */
	int writing;      /* the thread is writing out */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER };

/* write_all: n bytes of p to the log's file (stdio's buffer is empty: every line ends it) */
static void write_all(const char *p, size_t n)
{
	int fd = fileno(log_fp ? log_fp : stderr);

	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* a log that cannot be written: the lines are lost, as log_write's would be */
		p += k;
		n -= (size_t)k;
	}
}

/* spool_thread: writes what was spooled, every LOG_SPOOL_MS or when half a buffer waits */
static void *spool_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.lock);
	for (;;) {
		struct timespec until;
		char *t;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LOG_SPOOL_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (S.len < LOG_SPOOL_BYTES / 2)
			(void)pthread_cond_timedwait(&S.wake, &S.lock, &until);
		if (S.state != 1)
			break;
		if (!S.len)
			continue;
		t = S.out, S.out = S.fill, S.fill = t;
		n = S.len;
		S.len = 0;
		S.writing = 1;
		pthread_mutex_unlock(&S.lock);
		write_all(S.out, n);
		pthread_mutex_lock(&S.lock);
		S.writing = 0;
		pthread_cond_broadcast(&S.idle);
	}
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

/* spool_start: the buffers and the thread (every signal blocked in it), under S.lock; 0 or -1 */
static int spool_start(void)
{
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if (!(S.fill = malloc(LOG_SPOOL_BYTES)) || !(S.out = malloc(LOG_SPOOL_BYTES)) || pthread_attr_init(&attr) != 0) {
		free(S.fill);
		free(S.out);
		S.fill = S.out = NULL;
		return -1;
	}
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&attr, 64 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	S.state = 1; /* before the thread looks */
	rc = pthread_create(&th, &attr, spool_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		S.state = 0;
		free(S.fill);
		free(S.out);
		S.fill = S.out = NULL;
		return -1;
	}
	if (atexit(log_spool_flush) != 0)
		log_write(LOGL_WARN, "log: the spool cannot be flushed at exit: its last lines may be lost");
	return 0;
}

/* write_now: one line written at once (its own frame, apart from log_spool's:
 * the spooled path stays shallow on the worker threads' stacks) */
static __attribute__((noinline)) void write_now(int level, const char *fmt, va_list ap)
{
	char out[LOG_LINE_MAX * 2];
	size_t o = log_format(level, fmt, ap, out, sizeof out);

	(void)!fwrite(out, 1, o, log_fp ? log_fp : stderr);
}

/* spool_take: S.lock held with room in the fill buffer for the longest line
 * (the spool started on first use): 1; or 0, nothing held (no spool, or a
 * full one: the caller writes its line at once) */
static int spool_take(void)
{
	if (log_reopen_asked)
		(void)log_reopen();
	pthread_mutex_lock(&S.lock);
	if (S.state == 0 && spool_start() < 0)
		S.state = -1;
	if (S.state == 1 && LOG_SPOOL_BYTES - S.len >= LOG_LINE_MAX * 2)
		return 1;
	pthread_mutex_unlock(&S.lock);
	return 0;
}

/* spool_give: after n bytes were added to the fill buffer: the writer woken when half of it waits, S.lock released */
static void spool_give(size_t n)
{
	S.len += n;
	if (S.len >= LOG_SPOOL_BYTES / 2)
		pthread_cond_signal(&S.wake);
	pthread_mutex_unlock(&S.lock);
}

void log_spool(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* formatted straight into the spool: no copy on the caller's stack */
	if (spool_take())
		spool_give(log_format(level, fmt, ap, S.fill + S.len, LOG_SPOOL_BYTES - S.len));
	else
		write_now(level, fmt, ap);
	va_end(ap);
}

void log_spool_text(int level, const char *text)
{
	if (spool_take())
		spool_give(log_compose(level, text, S.fill + S.len, LOG_SPOOL_BYTES - S.len));
	else
		log_write(level, "%s", text);
}

/* spool_drain_locked: wait for the batch being written, then write the rest (under S.lock) */
static void spool_drain_locked(void)
{
	while (S.writing)
		pthread_cond_wait(&S.idle, &S.lock);
	if (S.len)
		write_all(S.fill, S.len);
	S.len = 0;
}

static void spool_drain(void)
{
	pthread_mutex_lock(&S.lock);
	spool_drain_locked();
	pthread_mutex_unlock(&S.lock);
}

void log_spool_flush(void)
{
	pthread_mutex_lock(&S.lock);
	spool_drain_locked();
	if (S.state == 1) {
		S.state = -1; /* the thread ends; later lines are written at once */
		pthread_cond_signal(&S.wake);
	}
	pthread_mutex_unlock(&S.lock);
}

/* ---- reopening (logrotate) ---- */

int log_reopen(void)
{
	int fd, rc = 0;

	log_reopen_asked = 0;
	if (!log_path[0])
		return 1;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&S.lock);
	spool_drain_locked(); /* what came before goes where it was headed */
	if (log_fp && dup3(fd, fileno(log_fp), O_CLOEXEC) < 0)
		rc = -1;
	if (rc == 0 && log_stderr_too && dup2(fd, STDERR_FILENO) < 0)
		rc = -1;
	pthread_mutex_unlock(&S.lock);
	close(fd);
	return rc;
}

void log_reopen_ask(void)
{
	log_reopen_asked = 1;
}
