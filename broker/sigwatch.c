/* sigwatch.c: signal handlers that only set a flag and wake the loop; the loop reaps children, reopens the log and reports stops. */
#include "sigwatch.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* what the handlers may touch: flags and the pipe's write end (one per process) */
static volatile sig_atomic_t got_stop, got_child, got_hup;
static int wake_fd = -1;

struct child {
	pid_t pid;
	sigwatch_child_fn *fn;
	void *ctx;
};

struct sigwatch {
	struct evloop *loop;
	int pipe[2];
	void (*on_stop)(void *ctx);
	void *ctx;
	struct child *kids;
	size_t nkids, capkids;
};

static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGCHLD)
		got_child = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
	if (wake_fd >= 0)
		(void)!write(wake_fd, "", 1);
	errno = saved;
}

static void reap(struct sigwatch *sw)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < sw->nkids; i++) {
			if (sw->kids[i].pid == pid) {
				struct child c = sw->kids[i];

				sw->kids[i] = sw->kids[--sw->nkids];
				c.fn(c.ctx, pid, status);
				break;
			}
		}
	}
}

static void on_wake(void *ctx, int fd, int events)
{
	struct sigwatch *sw = ctx;
	char drain[64];

	(void)events;
	while (read(fd, drain, sizeof drain) > 0)
		;
	if (got_child) {
		got_child = 0;
		reap(sw);
	}
	if (got_hup) {
		got_hup = 0;
		switch (log_reopen()) {
		case 0: log_info("SIGHUP: log file reopened"); break;
		case 1: log_info("SIGHUP: logging to no file (nothing to reopen)"); break;
		default:
			log_error("SIGHUP: cannot reopen the log file: %s; still writing the old one", strerror(errno));
		}
	}
	if (got_stop) {
		got_stop = 0;
		if (sw->on_stop)
			sw->on_stop(sw->ctx);
	}
}

struct sigwatch *sigwatch_new(struct evloop *l, void (*on_stop)(void *ctx), void *ctx)
{
	struct sigwatch *sw = calloc(1, sizeof *sw);
	struct sigaction sa;

	if (!sw)
		return NULL;
	sw->loop = l;
	sw->on_stop = on_stop;
	sw->ctx = ctx;
	if (pipe2(sw->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(sw);
		return NULL;
	}
	wake_fd = sw->pipe[1];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	if (evloop_watch(l, sw->pipe[0], EVLOOP_READ, on_wake, sw) < 0 || sigaction(SIGCHLD, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0) {
		sigwatch_free(sw);
		return NULL;
	}
	return sw;
}

int sigwatch_child(struct sigwatch *sw, pid_t pid, sigwatch_child_fn *fn, void *ctx)
{
	if (sw->nkids == sw->capkids) {
		size_t cap = sw->capkids ? sw->capkids * 2 : 16;
		struct child *k = realloc(sw->kids, cap * sizeof *k);

		if (!k)
			return -1;
		sw->kids = k;
		sw->capkids = cap;
	}
	sw->kids[sw->nkids++] = (struct child){ pid, fn, ctx };
	return 0;
}

void sigwatch_forget(struct sigwatch *sw, pid_t pid)
{
	for (size_t i = 0; i < sw->nkids; i++)
		if (sw->kids[i].pid == pid)
			sw->kids[i--] = sw->kids[--sw->nkids];
}

void sigwatch_free(struct sigwatch *sw)
{
	if (!sw)
		return;
	evloop_unwatch(sw->loop, sw->pipe[0]);
	if (wake_fd == sw->pipe[1])
		wake_fd = -1;
	close(sw->pipe[0]);
	close(sw->pipe[1]);
	free(sw->kids);
	free(sw);
}
