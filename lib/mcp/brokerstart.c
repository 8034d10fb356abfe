/* brokerstart.c: find, start (once, under an flock), wait for and stop an mcpgw-broker on behalf of its clients; start one from a responder that finds none. */
#include "mcp/brokerstart.h"
#include "core/statedir.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcp/bclient.h"
#include "core/log.h"
#include "core/progpath.h"

extern char **environ;

#define BS_POLL_MS 50      /* between checks of the socket, the lock, a child */
#define BS_TAIL_BYTES 2048 /* of a log file shown in an error */
#define BS_TAIL_LINES 12
#define BS_PATH_MAX 4352     /* state directory (4096) plus a file name */
#define BS_FD_SCAN_MAX 65536 /* closing inherited fds without close_range: at most this many */

int brokerstart_alive(const char *socket_path)
{
	struct sockaddr_un sa;
	int fd, rc;

	if (strlen(socket_path) >= sizeof sa.sun_path)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	/* EAGAIN: a full backlog, but someone listens */
	rc = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
	close(fd);
	return rc;
}

/* bs_copy: s into out; 0, or -1 when it does not fit */
static int bs_copy(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(s);

	if (n >= outlen)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

int brokerstart_find_bin(char *out, size_t outlen)
{
	const char *env = getenv("MCPGW_BROKER_BIN");

	if (env && *env)
		return bs_copy(out, outlen, env);
	/* a bare name: mcpgw's own program directories first, then PATH */
	if (progpath_resolve("mcpgw-broker", "/", out, outlen) == PROGPATH_OK)
		return 0;
	(void)bs_copy(out, outlen, "mcpgw-broker");
	return -1;
}

/* bs_tail: append the last lines of the file at path to err (after what is there) */
static void bs_tail(const char *path, char *err, size_t errlen)
{
	char buf[BS_TAIL_BYTES + 1], *start = buf;
	size_t used = strlen(err);
	int fd = open(path, O_RDONLY | O_CLOEXEC), lines = 0;
	off_t size;
	ssize_t n;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	n = size < 0 ? -1 : pread(fd, buf, BS_TAIL_BYTES, size > BS_TAIL_BYTES ? size - BS_TAIL_BYTES : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (ssize_t i = n - 1; i >= 0; i--) {
		if (buf[i] == '\n' && ++lines == BS_TAIL_LINES) {
			start = buf + i + 1;
			break;
		}
	}
	if (start == buf && size > BS_TAIL_BYTES && strchr(buf, '\n'))
		start = strchr(buf, '\n') + 1; /* drop a cut first line */
	if (used < errlen)
		snprintf(err + used, errlen - used, "\n--- the end of %s ---\n%s", path, start);
}

/* bs_tail_logs: the broker's stderr file and, when set, its MCPGW_LOG_FILE */
static void bs_tail_logs(const struct settings *s, char *err, size_t errlen)
{
	char path[BS_PATH_MAX];

	if (statedir_path(path, sizeof path, s->state_dir, STATEDIR_BROKER_LOG) == 0)
		bs_tail(path, err, errlen);
	if (*s->log_file && strcmp(s->log_file, path) != 0)
		bs_tail(s->log_file, err, errlen);
}

/* bs_lock: the exclusive start lock, waiting at most until deadline. fd or -1 */
static int bs_lock(const char *path, long deadline, char *err, size_t errlen)
{
	int fd = statedir_open(path, O_RDWR | O_CREAT, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto err;
		}
		if (clock_now_ms() >= deadline) {
			snprintf(err, errlen, "%s: still locked by another process starting the broker", path);
			goto err;
		}
		clock_sleep_ms(BS_POLL_MS);
	}
	return fd;
err:
	close(fd);
	return -1;
}

/* bs_broker_lock_held: 1 when a broker holds $MCPGW_STATE_DIR/broker.lock */
static int bs_broker_lock_held(const char *state_dir)
{
	char path[BS_PATH_MAX];
	int fd, held;

	if (statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_LOCK) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	held = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd); /* releases it if we took it */
	return held;
}

/* bs_child_exec: in the forked child: own session, default signals, stdio
 * set up, every other fd closed, exec. Only async-signal-safe calls. On
 * failure errno goes to efd and the child exits 127. */
static void bs_child_exec(char *const argv[], char *const envp[], const char *log_path, int efd, int max_fd)
{
	static const int sigs[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU };
	struct sigaction sa;
	sigset_t none;
	int fd, e;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	(void)setsid(); /* no terminal: Ctrl-C in the caller's terminal must not reach the broker */
	if ((fd = fcntl(efd, F_DUPFD_CLOEXEC, 10)) < 0)
		goto fail;
	efd = fd;
	if ((fd = open("/dev/null", O_RDONLY)) < 0 || dup2(fd, 0) < 0)
		goto fail;
	if (fd > 2)
		close(fd);
	if ((fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0600)) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		goto fail;
	if (fd > 2)
		close(fd);
	if (dup3(efd, 3, O_CLOEXEC) < 0)
		goto fail;
	efd = 3;
	if (close_range(4, ~0U, 0) < 0)
		for (fd = 4; fd < max_fd; fd++)
			close(fd);
	execve(argv[0], argv, envp);
fail:
	e = errno;
	(void)!write(efd, &e, sizeof e);
	_exit(127);
}

/* bs_read_full: read exactly n bytes (EINTR retried); bytes read or -1 */
static ssize_t bs_read_full(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 && got == 0 ? -1 : (ssize_t)got;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void bs_reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* bs_fork_detached: the intermediate child of a double fork: starts the
 * broker in a new session, reports its pid on pfd, exits */
static void bs_fork_detached(char *const argv[], char *const envp[], const char *log_path, int efd, int pfd, int max_fd)
{
	pid_t g;

	(void)setsid();
	g = fork();
	if (g == 0)
		bs_child_exec(argv, envp, log_path, efd, max_fd);
	(void)!write(pfd, &g, sizeof g);
	_exit(g < 0 ? 127 : 0);
}

/* bs_grandchild: the broker's pid, sent by the intermediate child of a double fork (reaped here); -1 if none */
static pid_t bs_grandchild(pid_t child, int pfd)
{
	pid_t pid = -1;

	bs_reap(child);
	if (bs_read_full(pfd, &pid, sizeof pid) != (ssize_t)sizeof pid || pid <= 0)
		return -1;
	return pid;
}

/* bs_env_skip: the environment entry is one bs_env replaces */
static int bs_env_skip(const char *entry)
{
	return strncmp(entry, "MCPGW_HOME=", 11) == 0 || strncmp(entry, "MCPGW_STATE_DIR=", 16) == 0;
}

/* bs_env: this process's environment with MCPGW_HOME and MCPGW_STATE_DIR
 * set to the directories it resolved (a broker found elsewhere, e.g. on
 * PATH, would otherwise pick its own defaults and serve another socket).
 * One allocation (the array, then the two strings); NULL on ENOMEM. */
static char **bs_env(const struct settings *s)
{
	size_t n = 0, k = 0, hlen = strlen(s->home) + 12, slen = strlen(s->state_dir) + 17;
	char **env, *strs;

	while (environ[n])
		n++;
	if (!(env = malloc((n + 3) * sizeof *env + hlen + slen)))
		return NULL;
	strs = (char *)(env + n + 3);
	for (size_t i = 0; i < n; i++)
		if (!bs_env_skip(environ[i]))
			env[k++] = environ[i];
	snprintf(strs, hlen, "MCPGW_HOME=%s", s->home);
	env[k++] = strs;
	snprintf(strs + hlen, slen, "MCPGW_STATE_DIR=%s", s->state_dir);
	env[k++] = strs + hlen;
	env[k] = NULL;
	return env;
}

/* bs_spawn: start bin (its stdout/stderr appended to log_path); its pid, or -1 with err */
static pid_t bs_spawn(const struct settings *s, const char *bin, const char *log_path, int detach, char *err,
		      size_t errlen)
{
	int ep[2] = { -1, -1 }, pp[2] = { -1, -1 }, e = 0;
	long open_max = sysconf(_SC_OPEN_MAX);
	int max_fd = open_max > 0 && open_max < BS_FD_SCAN_MAX ? (int)open_max : BS_FD_SCAN_MAX;
	char *argv[2] = { (char *)bin, NULL }, **envp = bs_env(s);
	pid_t pid = -1;

	if (!envp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC) < 0 || (detach && pipe2(pp, O_CLOEXEC) < 0)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (detach)
			bs_fork_detached(argv, envp, log_path, ep[1], pp[1], max_fd);
		bs_child_exec(argv, envp, log_path, ep[1], max_fd);
	}
	close(ep[1]);
	ep[1] = -1;
	if (detach) {
		close(pp[1]);
		pp[1] = -1;
		if ((pid = bs_grandchild(pid, pp[0])) < 0) {
			snprintf(err, errlen, "fork: could not start %s in the background", bin);
			goto out;
		}
	}
	/* the pipe closes on a successful exec; otherwise it carries errno */
	if (bs_read_full(ep[0], &e, sizeof e) == (ssize_t)sizeof e) {
		snprintf(err, errlen, "cannot run %s: %s (set MCPGW_BROKER_BIN, or put mcpgw-broker on PATH)", bin,
			 strerror(e));
		if (!detach)
			bs_reap(pid);
		pid = -1;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (ep[i] >= 0)
			close(ep[i]);
		if (pp[i] >= 0)
			close(pp[i]);
	}
	free(envp);
	return pid;
}

/* bs_zombie: pid has exited but nobody reaped it yet (an init that does not reap) */
static int bs_zombie(pid_t pid)
{
	char path[64], buf[512], *paren;
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	paren = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold anything */
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* bs_exited: 1 when pid is gone (a child is reaped, its status in *status) */
static int bs_exited(pid_t pid, int child, int *status)
{
	*status = -1;
	if (child)
		return waitpid(pid, status, WNOHANG) == pid;
	return (kill(pid, 0) < 0 && errno == ESRCH) || bs_zombie(pid);
}

static void bs_status_text(int status, char *out, size_t outlen)
{
	if (status != -1 && WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (status != -1 && WIFSIGNALED(status))
		snprintf(out, outlen, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, outlen, "exited");
}

/* bs_wait_socket: wait until s->socket_path answers. 0: it does (pid's
 * doing); 1: pid exited but another broker serves; -1: failed, err set */
static int bs_wait_socket(const struct settings *s, pid_t pid, int child, long deadline, char *err, size_t errlen)
{
	char what[64];
	int status, other = 0;

	for (;;) {
		if (brokerstart_alive(s->socket_path) == 1)
			return other;
		if (pid > 0 && bs_exited(pid, child, &status)) {
			/* it lost the race against a broker started by someone else (mcpgwctl) */
			if (bs_broker_lock_held(s->state_dir)) {
				pid = 0;
				other = 1;
				continue;
			}
			bs_status_text(status, what, sizeof what);
			snprintf(err, errlen, "mcpgw-broker (pid %ld) %s before opening %s", (long)pid, what,
				 s->socket_path);
			bs_tail_logs(s, err, errlen);
			return -1;
		}
		if (clock_now_ms() >= deadline) {
			if (pid > 0)
				brokerstart_stop(pid, child, 2000);
			snprintf(err, errlen, "mcpgw-broker%s did not open %s in time",
				 pid > 0 ? "" : " (started elsewhere)", s->socket_path);
			bs_tail_logs(s, err, errlen);
			return -1;
		}
		clock_sleep_ms(BS_POLL_MS);
	}
}

int brokerstart_ensure(const struct settings *s, const struct brokerstart_opts *o, struct brokerstart *bs, char *err,
		       size_t errlen)
{
	long deadline = clock_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : BROKERSTART_TIMEOUT_MS);
	char path[BS_PATH_MAX];
	int lock_fd = -1, rc = -1, alive;
	pid_t pid;

	bs->started = 0;
	bs->pid = 0;
	if ((alive = brokerstart_alive(s->socket_path)) != 0) {
		if (alive < 0)
			snprintf(err, errlen, "%s: socket path too long: set a shorter MCPGW_STATE_DIR", s->socket_path);
		return alive > 0 ? 0 : -1;
	}
	if (statedir_make(s->state_dir, err, errlen) < 0)
		return -1;
	if (statedir_path(path, sizeof path, s->state_dir, STATEDIR_BROKER_START) < 0) {
		snprintf(err, errlen, "%s: path too long", s->state_dir);
		return -1;
	}
	if ((lock_fd = bs_lock(path, deadline, err, errlen)) < 0)
		return -1;
	if (brokerstart_alive(s->socket_path) == 1) { /* another starter was first */
		rc = 0;
		goto out;
	}
	if (statedir_path(path, sizeof path, s->state_dir, STATEDIR_BROKER_LOG) < 0 ||
	    (pid = bs_spawn(s, o->bin, path, o->detach, err, errlen)) < 0)
		goto out;
	log_info("started %s (pid %ld)", o->bin, (long)pid);
	rc = bs_wait_socket(s, pid, !o->detach, deadline, err, errlen);
	if (rc == 0) {
		bs->started = 1;
		bs->pid = pid;
	}
	rc = rc < 0 ? -1 : 0;
out:
	close(lock_fd); /* releases the start lock */
	return rc;
}

/* bs_count_starting: servers of an mcpgw/status result that are coming up:
 * neither ready nor disabled, and not failing (a server whose starts fail
 * is not waited for: its error is the answer) */
static int bs_count_starting(const json_t *status)
{
	const json_t *srv;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(status, "servers"), i, srv) {
		const char *state = json_string_value(json_object_get(srv, "state"));

		n += state && strcmp(state, "ready") != 0 && strcmp(state, "disabled") != 0 &&
		     !json_is_true(json_object_get(srv, "failing"));
	}
	return n;
}

int brokerstart_wait_ready(const struct settings *s, long timeout_ms)
{
	struct bclient *bc = bc_new(s->socket_path, s->max_message_bytes);
	long deadline = clock_now_ms() + timeout_ms;
	int rc = -1;

	if (!bc)
		return -1;
	for (;;) {
		json_t *result = NULL, *error = NULL;
		int st = bc_call(bc, "mcpgw/status", NULL, s->broker_timeout_ms, &result, &error), starting;

		json_decref(error);
		if (st != BC_OK || !result) {
			rc = -1;
			break;
		}
		starting = bs_count_starting(result);
		json_decref(result);
		if (starting == 0 || clock_now_ms() >= deadline) {
			rc = starting ? 1 : 0;
			break;
		}
		clock_sleep_ms(2 * BS_POLL_MS);
	}
	bc_free(bc);
	return rc;
}

/* bs_gone: pid has ended (a child is reaped) */
static int bs_gone(pid_t pid, int child)
{
	if (child) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		return r == pid || (r < 0 && errno == ECHILD);
	}
	return (kill(pid, 0) < 0 && errno == ESRCH) || bs_zombie(pid);
}

int brokerstart_stop(pid_t pid, int child, long timeout_ms)
{
	long wait_ms = timeout_ms > 0 ? timeout_ms : BROKERSTART_STOP_MS, deadline = clock_now_ms() + wait_ms;

	if (pid <= 0)
		return -1;
	if (kill(pid, SIGTERM) < 0) {
		if (child)
			(void)bs_gone(pid, child);
		return 0;
	}
	while (!bs_gone(pid, child)) {
		if (clock_now_ms() >= deadline) {
			log_warn("mcpgw-broker (pid %ld) did not stop in %ld ms; killing it", (long)pid, wait_ms);
			kill(pid, SIGKILL);
			if (child)
				bs_reap(pid);
			return 1;
		}
		clock_sleep_ms(BS_POLL_MS);
	}
	return 0;
}

/* --- a responder that finds no broker starts one (MCPGW_BROKER_AUTOSTART) --- */

#define BA_ERR_MAX 4096

/* CGI/1.1 request variables (RFC 3875) and what web servers add: not for the broker's environment */
static const char *const ba_cgi_prefixes[] = { "HTTP_",   "CONTENT_",  "REQUEST_", "REMOTE_", "SCRIPT_",
					       "SERVER_", "REDIRECT_", "CONTEXT_", "SSL_",    NULL };
static const char *const ba_cgi_names[] = {
	"GATEWAY_INTERFACE", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING", "AUTH_TYPE", "DOCUMENT_ROOT", "HTTPS",
	"UNIQUE_ID",         NULL
};

static pthread_mutex_t ba_lock = PTHREAD_MUTEX_INITIALIZER;
static int ba_cgi;              /* plain CGI: scrub the request variables around a start */
static long ba_failed_at = -1;  /* monotonic ms of the last failed start; -1: none */
static char ba_err[BA_ERR_MAX]; /* why it failed */

/* ba_is_cgi_var: the environment entry "NAME=value" is a CGI request variable */
static int ba_is_cgi_var(const char *entry)
{
	size_t n = strcspn(entry, "=");

	for (size_t i = 0; ba_cgi_prefixes[i]; i++)
		if (strncmp(entry, ba_cgi_prefixes[i], strlen(ba_cgi_prefixes[i])) == 0)
			return 1;
	for (size_t i = 0; ba_cgi_names[i]; i++)
		if (strlen(ba_cgi_names[i]) == n && strncmp(entry, ba_cgi_names[i], n) == 0)
			return 1;
	return 0;
}

/* ba_scrub: remove the CGI request variables from the environment; the
 * removed entries (the environment's own strings) are returned for
 * ba_restore. NULL when there are none or memory is short (nothing removed). */
static char **ba_scrub(size_t *n)
{
	size_t count = 0, k = 0;
	char **saved;

	*n = 0;
	for (char **e = environ; e && *e; e++)
		count += (size_t)ba_is_cgi_var(*e);
	if (!count || !(saved = calloc(count, sizeof *saved)))
		return NULL;
	for (char **e = environ; e && *e && k < count; e++)
		if (ba_is_cgi_var(*e))
			saved[k++] = *e;
	for (size_t i = 0; i < k; i++) {
		char name[256];
		size_t len = strcspn(saved[i], "=");

		if (len < sizeof name) {
			memcpy(name, saved[i], len);
			name[len] = '\0';
			unsetenv(name);
		}
	}
	*n = k;
	return saved;
}

/* ba_restore: put the scrubbed entries back (the same strings: putenv keeps them) */
static void ba_restore(char **saved, size_t n)
{
	for (size_t i = 0; i < n; i++)
		putenv(saved[i]);
	free(saved);
}

/* the bc_on_no_broker hook: 0 when a broker serves the socket now */
static int ba_start(void *ud)
{
	const struct settings *s = ud;
	struct brokerstart_opts o = { NULL, 0, 1 };
	struct brokerstart bs;
	char bin[PATH_MAX], err[BA_ERR_MAX] = "", **saved = NULL;
	size_t nsaved = 0;
	int rc = -1;

	pthread_mutex_lock(&ba_lock);
	if (ba_failed_at >= 0 && clock_now_ms() - ba_failed_at < BROKERSTART_RETRY_MS)
		goto out; /* it failed a moment ago: do not hammer */
	/* not found: "mcpgw-broker", whose exec then fails with a message saying so */
	(void)brokerstart_find_bin(bin, sizeof bin);
	o.bin = bin;
	if (ba_cgi)
		saved = ba_scrub(&nsaved);
	rc = brokerstart_ensure(s, &o, &bs, err, sizeof err);
	if (saved)
		ba_restore(saved, nsaved);
	if (rc < 0) {
		log_error("no broker on %s, and starting one failed: %s", s->socket_path, err);
		snprintf(ba_err, sizeof ba_err, "%s", err);
		ba_failed_at = clock_now_ms();
	} else {
		ba_failed_at = -1;
		ba_err[0] = '\0';
		/* a new broker lists a server's tools once it is ready: wait
		 * (MCPGW_STARTUP_WAIT) so that this request sees the whole catalog
		 * (chat offers only the tools listed) */
		if (s->startup_wait_ms > 0 && brokerstart_wait_ready(s, s->startup_wait_ms) < 0)
			log_warn("the broker on %s does not answer mcpgw/status", s->socket_path);
	}
out:
	pthread_mutex_unlock(&ba_lock);
	return rc < 0 ? -1 : 0;
}

void brokerstart_attach(struct bclient *bc, const struct settings *s, int cgi)
{
	if (!bc || !s || !s->broker_autostart)
		return;
	pthread_mutex_lock(&ba_lock);
	ba_cgi = cgi;
	pthread_mutex_unlock(&ba_lock);
	bc_on_no_broker(bc, ba_start, (void *)s);
}

void brokerstart_last_error(char *out, size_t outlen)
{
	if (!outlen)
		return;
	pthread_mutex_lock(&ba_lock);
	snprintf(out, outlen, "%s", ba_err);
	pthread_mutex_unlock(&ba_lock);
}
