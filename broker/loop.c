/* loop.c: the broker's one event loop: poll over clients, stdio servers and libcurl sockets; signals; status. */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "core/log.h"

struct broker B;

static volatile sig_atomic_t got_stop, got_child;
static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGCHLD)
		got_child = 1;
	else
		got_stop = 1;
	(void)!write(sig_pipe[1], "", 1);
	errno = saved;
}

int loop_setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	return 0;
}


void broker_save_server(const struct srv *s)
{
	static const char *const tnames[] = { "stdio", "http", "sse", "auto" };
	struct registry_server rs = {
		.name = s->cfg->name, .transport = tnames[s->cfg->transport], .fingerprint = s->fingerprint,
		.state = srv_state_name(s->state), .protocol_version = *s->proto ? s->proto : NULL,
		.server_info = s->server_info, .last_error = s->last_error, .restarts = s->restarts, .pid = s->pid,
	};

	if (B.reg && registry_put_server(B.reg, &rs) < 0)
		log_error("registry: saving server %s: %s", s->cfg->name, registry_errmsg(B.reg));
}

json_t *broker_status(void)
{
	static const char *const tnames[] = { "stdio", "http", "sse", "auto" };
	json_t *servers = json_array();
	char started[32];
	struct tm tm;

	gmtime_r(&B.started_at, &tm);
	strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; servers && i < B.nsrvs; i++) {
		const struct srv *s = &B.srvs[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I}", "name", s->cfg->name, "transport",
				      s->rt ? remote_mode_name(s) : tnames[s->cfg->transport], "state", srv_state_name(s->state), "pid", (int)s->pid,
				      "tools", (int)json_array_size(s->tools), "restarts", s->restarts, "since_ms_ago",
				      (json_int_t)(clock_now_ms() - s->since_ms));

		if (!o)
			continue;
		json_object_set_new(o, "protocolVersion", *s->proto ? json_string(s->proto) : json_null());
		json_object_set(o, "serverInfo", s->server_info ? s->server_info : json_null());
		json_object_set_new(o, "last_error", *s->last_error ? json_string(s->last_error) : json_null());
		/* a failing server: failed starts in a row, and when it is tried again */
		json_object_set_new(o, "retries", json_integer(s->fail_streak));
		json_object_set_new(o, "next_retry_in_ms",
				    s->state == SRV_BACKOFF ? json_integer(s->deadline_ms > clock_now_ms() ? s->deadline_ms - clock_now_ms() : 0)
							    : json_null());
		/* its last starts failed: not coming up by itself soon (health: degraded, not starting) */
		json_object_set_new(o, "failing", json_boolean(s->state != SRV_READY && s->fail_streak > 0));
		json_array_append_new(servers, o);
	}
	return json_pack("{s:{s:i, s:s, s:s, s:I, s:i, s:I, s:i}, s:o}", "broker", "pid", (int)getpid(), "version",
			 MCPGW_VERSION, "started_at", started, "uptime_s", (json_int_t)((clock_now_ms() - B.started_ms) / 1000),
			 "clients", B.nclis, "generation", (json_int_t)B.generation, "tools", (int)B.nlisted, "servers",
			 servers);
}

enum pkind { P_LISTEN, P_SIG, P_CLI, P_CURL, P_SRV_OUT, P_SRV_ERR, P_SRV_IN };

struct ploop {
	struct pollfd *fds;
	struct { enum pkind kind; int idx; } *ref;
	size_t n, cap;
};

static int padd(struct ploop *p, int fd, short events, enum pkind kind, int idx)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		void *f = realloc(p->fds, cap * sizeof *p->fds), *r;

		if (!f)
			return -1;
		p->fds = f;
		if (!(r = realloc(p->ref, cap * sizeof *p->ref)))
			return -1;
		p->ref = r;
		p->cap = cap;
	}
	p->fds[p->n] = (struct pollfd){ .fd = fd, .events = events };
	p->ref[p->n].kind = kind;
	p->ref[p->n].idx = idx;
	p->n++;
	return 0;
}

static int build_poll(struct ploop *p)
{
	p->n = 0;
	if (padd(p, sig_pipe[0], POLLIN, P_SIG, 0) < 0 || (B.listen_fd >= 0 && padd(p, B.listen_fd, POLLIN, P_LISTEN, 0) < 0))
		return -1;
	for (int i = 0; i < B.set.max_clients; i++) {
		struct cli *c = B.clis[i];

		if (c && padd(p, c->fd, (short)(POLLIN | (c->wbuf.len ? POLLOUT : 0)), P_CLI, i) < 0)
			return -1;
	}
	{
		struct pollfd cfds[64];
		size_t n = remote_pollfds(cfds, 64);

		for (size_t i = 0; i < n; i++)
			if (padd(p, cfds[i].fd, cfds[i].events, P_CURL, 0) < 0)
				return -1;
	}
	for (size_t i = 0; i < B.nsrvs; i++) {
		struct srv *s = &B.srvs[i];

		if ((s->out_fd >= 0 && padd(p, s->out_fd, POLLIN, P_SRV_OUT, (int)i) < 0) ||
		    (s->err_fd >= 0 && padd(p, s->err_fd, POLLIN, P_SRV_ERR, (int)i) < 0) ||
		    (s->in_fd >= 0 && s->wbuf.len && padd(p, s->in_fd, POLLOUT, P_SRV_IN, (int)i) < 0))
			return -1;
	}
	return 0;
}

static void reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < B.nsrvs; i++) {
			if (B.srvs[i].pid == pid) {
				srv_on_reaped(&B.srvs[i], status);
				break;
			}
		}
	}
}

static void begin_shutdown(void)
{
	if (B.stopping)
		return;
	log_info("shutting down");
	B.stopping = 1;
	if (B.listen_fd >= 0)
		close(B.listen_fd);
	B.listen_fd = -1;
	unlink(B.set.socket_path);
	call_fail_all("the broker is shutting down");
	for (size_t i = 0; i < B.nsrvs; i++)
		srv_stop(&B.srvs[i]);
}

static int children_left(void)
{
	for (size_t i = 0; i < B.nsrvs; i++)
		if (B.srvs[i].pid > 0)
			return 1;
	return 0;
}

static void dispatch(struct ploop *p)
{
	for (size_t i = 0; i < p->n; i++) {
		short re = p->fds[i].revents;
		int idx = p->ref[i].idx;
		struct srv *s = p->ref[i].kind >= P_SRV_OUT ? &B.srvs[idx] : NULL;

		if (!re)
			continue;
		switch (p->ref[i].kind) {
		case P_SIG: {
			char drain[64];
			while (read(sig_pipe[0], drain, sizeof drain) > 0)
				;
			break;
		}
		case P_LISTEN:
			if (B.listen_fd >= 0)
				cli_accept(B.listen_fd);
			break;
		case P_CLI:
			if (!B.clis[idx] || B.clis[idx]->fd != p->fds[i].fd)
				break;
			if (re & POLLOUT)
				cli_on_write(idx);
			if (B.clis[idx] && (re & (POLLIN | POLLHUP | POLLERR)))
				cli_on_read(idx);
			break;
		case P_CURL:
			remote_on_socket(p->fds[i].fd, re);
			break;
		case P_SRV_OUT:
			if (s->out_fd == p->fds[i].fd)
				srv_on_stdout(s);
			break;
		case P_SRV_ERR:
			if (s->err_fd == p->fds[i].fd)
				(void)srv_on_stderr(s); /* 0: nothing now, or closed: both handled there */
			break;
		case P_SRV_IN:
			if (s->in_fd == p->fds[i].fd)
				srv_on_stdin(s);
			break;
		}
	}
}

static int next_timeout(void)
{
	int64_t d = call_next_deadline(), now = clock_now_ms(), rd = remote_next_deadline();

	if (rd < d)
		d = rd;
	for (size_t i = 0; i < B.nsrvs; i++) {
		int64_t sd = srv_next_deadline(&B.srvs[i]);
		if (sd < d)
			d = sd;
	}
	if (d == INT64_MAX)
		return B.stopping ? 100 : 60000;
	return d <= now ? 0 : (int)(d - now > 60000 ? 60000 : d - now);
}

int loop_run(void)
{
	struct ploop p = { 0 };
	int64_t hard_stop = 0;

	while (!B.stopping || children_left() || remote_busy()) {
		if (build_poll(&p) < 0) {
			log_error("out of memory building the poll set");
			sleep(1);
			continue;
		}
		if (poll(p.fds, p.n, next_timeout()) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (got_child) {
			got_child = 0;
			reap_children();
		}
		if (got_stop) {
			got_stop = 0;
			begin_shutdown();
			hard_stop = clock_now_ms() + 4 * SRV_STOP_GRACE_MS;
		}
		dispatch(&p);
		int64_t now = clock_now_ms();
		for (size_t i = 0; i < B.nsrvs; i++)
			srv_tick(&B.srvs[i], now);
		remote_tick(now);
		call_tick(now);
		if (hard_stop && now > hard_stop) {
			log_warn("children still running after %d ms; leaving", 4 * SRV_STOP_GRACE_MS);
			break;
		}
	}
	free(p.fds);
	free(p.ref);
	return 0;
}


/* loop_step: one pass (poll at most max_ms, then every handler and timer);
 * for programs that drive the broker's machinery themselves. */
int loop_step(int max_ms)
{
	static struct ploop p;
	int t;

	if (build_poll(&p) < 0)
		return -1;
	t = next_timeout();
	if (poll(p.fds, p.n, t < max_ms ? t : max_ms) < 0 && errno != EINTR)
		return -1;
	if (got_child) {
		got_child = 0;
		reap_children();
	}
	dispatch(&p);
	int64_t now = clock_now_ms();
	for (size_t i = 0; i < B.nsrvs; i++)
		srv_tick(&B.srvs[i], now);
	remote_tick(now);
	call_tick(now);
	if (B.stopping && !children_left() && !remote_busy()) {
		free(p.fds);
		free(p.ref);
		memset(&p, 0, sizeof p);
		return 1;
	}
	return 0;
}

/* loop_shutdown: stop servers (as on SIGTERM); loop_step returns 1 when done */
void loop_shutdown(void)
{
	begin_shutdown();
}

void loop_free(void)
{
	if (sig_pipe[0] >= 0)
		close(sig_pipe[0]);
	if (sig_pipe[1] >= 0)
		close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
}
