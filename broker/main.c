/* main.c: mcpgw-broker: start-up (settings, config, lock, socket, pid file), the loop, shutdown. */
#include "broker.h"
#include "core/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcp/bstatus.h"
#include "core/log.h"
#include "core/usage.h"

/* take_lock: one broker per state directory. fd or -1 (message printed) */
static int take_lock(const char *state_dir)
{
	char path[4300], pid[32] = "";
	int fd;

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		(void)statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_PID);
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

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_PID);
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

/* publish_generation: map $STATE/catalog.gen (8 bytes) so responders can see
 * whether their cached catalog is current without asking; 0 or -1 (they
 * then ask the broker every time, which is only slower) */
static int publish_generation(const char *state_dir)
{
	char path[4300];
	void *p;
	int fd;

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_CATALOG_GEN);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof(int64_t)) < 0 ||
	    (p = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		log_warn("%s: %s; responders will ask for the catalog each time", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	B.gen_map = p;
	__atomic_store_n(B.gen_map, 0, __ATOMIC_RELEASE);
	return 0;
}

static const char *const broker_settings[] = {
	"MCPGW_HOME", "MCPGW_ENV_FILE", "MCPGW_CONFIG", "MCPGW_STATE_DIR", "MCPGW_BROKER_SOCKET",
	"MCPGW_LOG_LEVEL", "MCPGW_LOG_FILE", "MCPGW_MAX_MESSAGE_BYTES", "MCPGW_MAX_CLIENTS",
	"MCPGW_TOOL_TIMEOUT", "MCPGW_TOOL_RETRIES", "MCPGW_INIT_TIMEOUT", "MCPGW_RESTART_BACKOFF_MAX",
	"MCPGW_BROKER_TIMEOUT", NULL
};

static const struct usage broker_usage = {
	"mcpgw-broker",
	"[--check-config | --status | --settings[=markdown] | --help | --version]",
	"Runs the MCP servers of $MCPGW_CONFIG (stdio ones as its children, remote ones over HTTP)\n"
	"and serves their tools as one MCP server on a unix socket ($MCPGW_STATE_DIR/broker.sock) to the\n"
	"responders and mcpgw-chat. One broker per state directory; it runs until SIGTERM or SIGINT.\n",
	"      --check-config  check $MCPGW_CONFIG (and the settings) and exit: 0 when good\n"
	"      --status        ask the broker running on this state directory for its servers and print\n"
	"                      one line per server: NAME STATE TOOLS RESTARTS LAST_ERROR (tab-separated,\n"
	"                      \"-\" for no error); exit 0, or 3 when no broker runs there\n"
	USAGE_SETTINGS_OPTION
	"  -h, --help          this text\n"
	"  -V, --version       the version\n",
	broker_settings,
	"Its log goes to stderr or MCPGW_LOG_FILE. The protocol: docs/broker-protocol.md.\n",
};

/* print_status: --status (lib/bstatus.h). The exit status */
static int print_status(void)
{
	char err[4600];
	int rc;

	if (settings_load(&B.set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-broker: %s\n", err);
		return 1;
	}
	rc = bstatus_query(stdout, &B.set, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "mcpgw-broker: %s\n", err);
	return rc == 0 ? 0 : rc > 0 ? 3 : 1;
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
	if (B.gen_map) { /* no broker: responders must ask (and so learn it is gone) */
		__atomic_store_n(B.gen_map, 0, __ATOMIC_RELEASE);
		munmap(B.gen_map, sizeof(int64_t));
		B.gen_map = NULL;
	}
	registry_close(B.reg);
	remote_global_cleanup();
	cfg_free(&B.cfg);
	if (B.listen_fd >= 0) {
		close(B.listen_fd);
		unlink(B.set.socket_path);
	}
	(void)statedir_path(path, sizeof path, B.set.state_dir, STATEDIR_BROKER_PID);
	unlink(path);
	if (lock_fd >= 0)
		close(lock_fd);
	loop_free();
	log_close();
}

int main(int argc, char **argv)
{
	char err[4600];
	int check_only = 0, lock_fd = -1, rc = 1;

	static const struct option longs[] = {
		{ "check-config", no_argument, NULL, 'c' }, { "status", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
		{ "settings", optional_argument, NULL, 'S' }, { NULL, 0, NULL, 0 },
	};
	int c, status_only = 0;

	while ((c = usage_getopt("mcpgw-broker", argc, argv, "hV", longs)) != -1) {
		switch (c) {
		case 'c': check_only = 1; break;
		case 's': status_only = 1; break;
		case 'h': usage_help(stdout, &broker_usage); return 0;
		case 'V': usage_version("mcpgw-broker"); return 0;
		case 'S': return usage_settings("mcpgw-broker", optarg);
		default: return USAGE_EXIT;
		}
	}
	if (optind < argc)
		return usage_error("mcpgw-broker", "unexpected argument '%s'", argv[optind]);
	if (check_only && status_only)
		return usage_error("mcpgw-broker", "--check-config and --status: one at a time");
	if (status_only)
		return print_status();
	B.listen_fd = -1;
	if (settings_load(&B.set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-broker: %s\n", err);
		return 1;
	}
	if (check_only)
		return check_config(&B.set);
	if (log_init("mcpgw-broker", B.set.log_level, B.set.log_file) < 0)
		fprintf(stderr, "mcpgw-broker: %s: cannot open the log file; logging to stderr\n", B.set.log_file);
	/* ${MCPGW_STATE_DIR} in the config and the MCP servers see the directories in use */
	if (settings_export(&B.set) < 0)
		log_warn("cannot export MCPGW_HOME and MCPGW_STATE_DIR: out of memory");
	if (cfg_load(B.set.config, &B.cfg, err, sizeof err) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (mkdir(B.set.state_dir, 0700) < 0 && errno != EEXIST) {
		log_error("%s: %s", B.set.state_dir, strerror(errno));
		goto out;
	}
	/* libcurl (and its TLS library) only when a remote server needs it: a
	 * stdio-only broker stays small */
	for (size_t i = 0; i < B.cfg.nservers; i++) {
		if (B.cfg.servers[i].transport != CFG_STDIO && !B.cfg.servers[i].disabled) {
			if (remote_global_init() < 0) {
				log_error("libcurl initialisation failed");
				goto out;
			}
			break;
		}
	}
	if (loop_setup_signals() < 0 || (lock_fd = take_lock(B.set.state_dir)) < 0 || setup() < 0 ||
	    (B.listen_fd = listen_on(B.set.socket_path)) < 0 || write_pidfile(B.set.state_dir) < 0)
		goto out;
	B.started_ms = clock_now_ms();
	B.started_at = time(NULL);
	/* generations are unique across broker restarts (microseconds since the
	 * epoch at start): a responder's cached catalog of an earlier broker can
	 * never look current */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		B.generation = (json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	publish_generation(B.set.state_dir);
	log_info("listening on %s; %zu servers from %s", B.set.socket_path, B.nsrvs, B.set.config);
	for (size_t i = 0; i < B.nsrvs; i++)
		srv_start(&B.srvs[i]);
	catalog_rebuild();
	rc = loop_run();
	log_info("stopped");
out:
	teardown(lock_fd);
	return rc;
}

