/* main.c: mcpgw-broker: the one event loop that owns every MCP server connection and serves clients on a unix socket. */
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

#include "log.h"

struct broker B;

static volatile sig_atomic_t got_stop, got_child;
static int sig_pipe[2] = { -1, -1 };

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static int setup_signals(void)
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

/* take_lock: one broker per state directory. fd or -1 (message printed) */
static int take_lock(const char *state_dir)
{
	char path[4300], pid[32] = "";
	int fd;

	snprintf(path, sizeof path, "%s/broker.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(path, sizeof path, "%s/broker.pid", state_dir);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(pid, sizeof pid, f))
				pid[0] = '\0';
			fclose(f);
		}
		pid[strcspn(pid, "\n")] = '\0';
		log_error("another broker is running on %s (pid %s)", state_dir, *pid ? pid : "?");
		close(fd);
		return -1;
	}
	return fd;
}

static int write_pidfile(const char *state_dir)
{
	char path[4300], tmp[4310];
	FILE *f;

	snprintf(path, sizeof path, "%s/broker.pid", state_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return -1;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -1;
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		log_error("%s: socket path too long (max %zu bytes): set a shorter MCPGW_STATE_DIR", path,
			  sizeof sa.sun_path - 1);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	unlink(path); /* a stale socket: we hold the lock, so nobody serves it */
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0600) < 0 || listen(fd, 512) < 0)
		goto err;
	return fd;
err:
	log_error("%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
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
				      (json_int_t)(now_ms() - s->since_ms));

		if (!o)
			continue;
		json_object_set_new(o, "protocolVersion", *s->proto ? json_string(s->proto) : json_null());
		json_object_set(o, "serverInfo", s->server_info ? s->server_info : json_null());
		json_object_set_new(o, "last_error", *s->last_error ? json_string(s->last_error) : json_null());
		json_array_append_new(servers, o);
	}
	return json_pack("{s:{s:i, s:s, s:s, s:I, s:i, s:I, s:i}, s:o}", "broker", "pid", (int)getpid(), "version",
			 MCPGW_VERSION, "started_at", started, "uptime_s", (json_int_t)((now_ms() - B.started_ms) / 1000),
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
				srv_on_stderr(s);
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
	int64_t d = call_next_deadline(), now = now_ms(), rd = remote_next_deadline();

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

static int run_loop(void)
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
			hard_stop = now_ms() + 4 * SRV_STOP_GRACE_MS;
		}
		dispatch(&p);
		int64_t now = now_ms();
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

static void usage(FILE *f)
{
	fprintf(f, "usage: mcpgw-broker [--check-config] [--help] [--version]\n"
		   "Serves MCP JSON-RPC on $MCPGW_STATE_DIR/broker.sock and runs the servers of\n"
		   "$MCPGW_CONFIG (default $MCPGW_HOME/servers_config.json). Settings: README.md.\n");
}

static int setup(void)
{
	char err[4600];

	B.srvs = calloc(B.cfg.nservers ? B.cfg.nservers : 1, sizeof *B.srvs);
	B.clis = calloc((size_t)B.set.max_clients, sizeof *B.clis);
	B.cli_gens = calloc((size_t)B.set.max_clients, sizeof *B.cli_gens);
	if (!B.srvs || !B.clis || !B.cli_gens) {
		log_error("out of memory");
		return -1;
	}
	B.reg = registry_open(B.set.db_path, err, sizeof err);
	if (!B.reg)
		log_error("registry unavailable, continuing without it: %s", err);
	B.nsrvs = B.cfg.nservers;
	for (size_t i = 0; i < B.nsrvs; i++) {
		srv_init(&B.srvs[i], &B.cfg.servers[i], (int)i);
		broker_save_server(&B.srvs[i]);
	}
	if (B.reg) {
		const char **names = calloc(B.nsrvs ? B.nsrvs : 1, sizeof *names);

		for (size_t i = 0; names && i < B.nsrvs; i++)
			names[i] = B.cfg.servers[i].name;
		if (!names || registry_prune_servers(B.reg, names, B.nsrvs) < 0)
			log_error("registry: pruning servers: %s", registry_errmsg(B.reg));
		free(names);
	}
	return 0;
}

static void teardown(int lock_fd)
{
	char path[4300];

	for (int i = 0; B.clis && i < B.set.max_clients; i++)
		cli_close(i);
	call_fail_all("the broker is shutting down");
	catalog_free();
	for (size_t i = 0; i < B.nsrvs; i++) {
		if (B.srvs[i].pid > 0)
			kill(-B.srvs[i].pid, SIGKILL);
		srv_free(&B.srvs[i]);
	}
	free(B.srvs);
	free(B.clis);
	free(B.cli_gens);
	registry_close(B.reg);
	remote_global_cleanup();
	cfg_free(&B.cfg);
	if (B.listen_fd >= 0) {
		close(B.listen_fd);
		unlink(B.set.socket_path);
	}
	snprintf(path, sizeof path, "%s/broker.pid", B.set.state_dir);
	unlink(path);
	if (lock_fd >= 0)
		close(lock_fd);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	log_close();
}

int main(int argc, char **argv)
{
	char err[4600];
	int check_only = 0, lock_fd = -1, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check-config") == 0) {
			check_only = 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("mcpgw-broker %s\n", MCPGW_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	B.listen_fd = -1;
	if (settings_load(&B.set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-broker: %s\n", err);
		return 1;
	}
	if (log_init("mcpgw-broker", B.set.log_level, B.set.log_file) < 0)
		fprintf(stderr, "mcpgw-broker: %s: cannot open the log file; logging to stderr\n", B.set.log_file);
	if (cfg_load(B.set.config, &B.cfg, err, sizeof err) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (check_only) {
		printf("%s: %zu servers, OK\n", B.set.config, B.cfg.nservers);
		cfg_free(&B.cfg);
		return 0;
	}
	if (mkdir(B.set.state_dir, 0700) < 0 && errno != EEXIST) {
		log_error("%s: %s", B.set.state_dir, strerror(errno));
		goto out;
	}
	if (remote_global_init() < 0) {
		log_error("libcurl initialisation failed");
		goto out;
	}
	if (setup_signals() < 0 || (lock_fd = take_lock(B.set.state_dir)) < 0 || setup() < 0 ||
	    (B.listen_fd = listen_on(B.set.socket_path)) < 0 || write_pidfile(B.set.state_dir) < 0)
		goto out;
	B.started_ms = now_ms();
	B.started_at = time(NULL);
	log_info("listening on %s; %zu servers from %s", B.set.socket_path, B.nsrvs, B.set.config);
	for (size_t i = 0; i < B.nsrvs; i++)
		srv_start(&B.srvs[i]);
	catalog_rebuild();
	rc = run_loop();
	log_info("stopped");
out:
	teardown(lock_fd);
	return rc;
}
