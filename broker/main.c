/* main.c: mcpgw-broker: start-up (settings, config, lock, socket, pid file, registry), the broker's loop, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "core/metrics.h"
#include "broker.h"
#include "check.h"
#include "core/keystore.h"
#include "core/fdlimit.h"
#include "core/log.h"
#include "core/statedir.h"
#include "core/usage.h"
#include "core/evloop.h"
#include "mcp/bstatus.h"
#include "persist.h"
#include "leftover.h"
#include "sigwatch.h"

/* take_lock: one broker per state directory. fd or -1 (message printed) */
static int take_lock(const char *state_dir)
{
	char path[4300], pid[32] = "";
	int fd;

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_LOCK);
	fd = statedir_open(path, O_RDWR | O_CREAT, 0600);
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

/* write_pidfile: broker.pid, whole or not at all (a new file renamed over it) */
static int write_pidfile(const char *state_dir)
{
	char path[4300], line[32];
	int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_BROKER_PID);
	if (statedir_replace(path, line, (size_t)n) < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
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

/* note_key_presence: the key hint's presence word made to agree with the state
 * store (lib/core/changehint.h), once at start-up, when the store is the state
 * directory's own: a gateway without API keys then has no responder read the
 * store at all, not even the first (lib/http/auth.c). Failures are only noted. */
static void note_key_presence(const struct settings *set)
{
	struct statestore_opts so = { .url = set->state_store, .timeout_ms = set->state_store_timeout_ms };
	char err[1024];
	struct statestore *st;

	if (!settings_state_store_is_own(set))
		return;
	if (!(st = statestore_open(&so, err, sizeof err))) {
		log_debug("API keys: %s (the responders look themselves)", err);
		return;
	}
	if (keystore_note_presence(st, set->state_dir) != STATESTORE_OK)
		log_debug("API keys: the key hint's presence word could not be noted (the responders look themselves)");
	statestore_close(st);
}

/* publish_generation: map $STATE/catalog.gen (8 bytes) so responders can see
 * whether their cached catalog is current without asking; the mapping, or
 * NULL (they then ask the broker every time, which is only slower) */
static int64_t *publish_generation(const char *state_dir)
{
	char path[4300];
	void *p;
	int fd;

	(void)statedir_path(path, sizeof path, state_dir, STATEDIR_CATALOG_GEN);
	fd = statedir_open(path, O_RDWR | O_CREAT, 0600); /* a planted symlink is refused, never truncated */
	/* allocated now (posix_fallocate): a mapped page without its block is SIGBUS on a full disk */
	if (fd < 0 || ftruncate(fd, sizeof(int64_t)) < 0 || (errno = posix_fallocate(fd, 0, sizeof(int64_t))) != 0 ||
	    (p = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		log_warn("%s: %s; responders will ask for the catalog each time", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	__atomic_store_n((int64_t *)p, 0, __ATOMIC_RELEASE);
	return p;
}

/* unpublish_generation: no broker: responders must ask (and so learn it is gone) */
static void unpublish_generation(int64_t *gen_map)
{
	if (!gen_map)
		return;
	__atomic_store_n(gen_map, 0, __ATOMIC_RELEASE);
	munmap(gen_map, sizeof(int64_t));
}

static const char *const broker_settings[] = { "MCPGW_HOME",
					       "MCPGW_ENV_FILE",
					       "MCPGW_CONFIG",
					       "MCPGW_STATE_DIR",
					       "MCPGW_BROKER_SOCKET",
					       "MCPGW_LOG_LEVEL",
					       "MCPGW_LOG_FILE",
					       "MCPGW_MAX_MESSAGE_BYTES",
					       "MCPGW_SERVER_MAX_TOOLS",
					       "MCPGW_SERVER_MAX_TOOLS_BYTES",
					       "MCPGW_SERVER_MAX_CONCURRENT_CALLS",
					       "MCPGW_SERVER_MAX_QUEUED_CALLS",
					       "MCPGW_MAX_CLIENTS",
					       "MCPGW_TOOL_TIMEOUT",
					       "MCPGW_TOOL_RETRIES",
					       "MCPGW_INIT_TIMEOUT",
					       "MCPGW_RESTART_BACKOFF_MAX",
					       "MCPGW_BROKER_TIMEOUT",
					       "MCPGW_STATE_STORE",
					       "MCPGW_STATE_STORE_TIMEOUT",
					       "MCPGW_AUDIT_PAYLOADS",
					       "MCPGW_AUDIT_RETENTION",
					       NULL };

static const struct usage broker_usage = {
	"mcpgw-broker",
	"[--check-config | --status | --settings[=markdown] | --help | --version]",
	"Runs the MCP servers of $MCPGW_CONFIG (stdio ones as its children, remote ones over HTTP)\n"
	"and serves their tools as one MCP server on a unix socket ($MCPGW_STATE_DIR/broker.sock) to the\n"
	"responders and mcpgw-chat. One broker per state directory; it runs until SIGTERM or SIGINT;\n"
	"SIGHUP reopens its log file (logrotate).\n",
	"      --check-config  check $MCPGW_CONFIG (and the settings) and exit: 0 when good, 1 when the\n"
	"                      config is not, 4 when a setting is not\n"
	"      --status        ask the broker running on this state directory for its servers and print\n"
	"                      one line per server: NAME STATE TOOLS RESTARTS LAST_ERROR (tab-separated,\n"
	"                      \"-\" for no error); exit 0, or 3 when no broker runs there\n" USAGE_SETTINGS_OPTION
	"  -h, --help          this text\n"
	"  -V, --version       the version\n",
	broker_settings,
	"Its log goes to stderr or MCPGW_LOG_FILE. The protocol: docs/broker-protocol.md.\n",
};

/* print_status: --status (lib/bstatus.h). The exit status */
static int print_status(void)
{
	struct settings set;
	char err[4600];
	int rc;

	if (settings_load(&set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-broker: %s\n", err);
		return 1;
	}
	rc = bstatus_query(stdout, &set, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "mcpgw-broker: %s\n", err);
	return rc == 0 ? 0 : rc > 0 ? 3 : 1;
}

/* on_stop: SIGTERM or SIGINT came (ctx: where the broker is, once made) */
static void on_stop(void *ctx)
{
	struct broker *const *b = ctx;

	if (*b)
		broker_shutdown(*b);
}

/* first_generation: generations are unique across broker restarts
 * (microseconds since the epoch at start): a responder's cached catalog of
 * an earlier broker can never look current */
static json_int_t first_generation(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* serve: everything after the settings and the config: the broker's whole life. The exit status */
static int serve(const struct settings *set, const struct cfg *cfg)
{
	struct evloop *loop = NULL;
	struct sigwatch *sig = NULL;
	struct registry *reg = NULL;
	struct persist *persist = NULL;
	struct broker *b = NULL;
	int64_t *gen_map = NULL;
	struct audit *audit = NULL;
	struct metrics *metrics = NULL;
	char err[4600], path[4300];
	int lock_fd = -1, fd, rc = 1;

	if (statedir_make(set->state_dir, err, sizeof err) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (!(loop = evloop_new(NULL, NULL)) || !(sig = sigwatch_new(loop, on_stop, &b))) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	if ((lock_fd = take_lock(set->state_dir)) < 0)
		goto out;
	if (!(reg = registry_open(set->db_path, err, sizeof err)))
		log_error("registry unavailable, continuing without it: %s", err);
	else
		leftover_kill(reg, cfg); /* before persist's thread shares the handle, before any server starts */
	if (reg && !(persist = persist_new(reg)))
		log_error("registry: out of memory; continuing without it");
	gen_map = publish_generation(set->state_dir);
	note_key_presence(set);
	{
		struct audit_opts ao = { .store_url = set->state_store,
					 .store_timeout_ms = set->state_store_timeout_ms,
					 .payloads = set->audit_payloads,
					 .retention_ms = set->audit_retention_ms };

		if (!(audit = audit_new(&ao)))
			log_error("the audit table is off: out of memory or no thread");
		if (!(metrics = metrics_open(set->state_dir, err, sizeof err)))
			log_warn("%s: the broker's metrics are not counted", err);
	}
	{
		struct broker_opts o = { .set = set,
					 .cfg = cfg,
					 .loop = loop,
					 .sig = sig,
					 .persist = persist,
					 .gen_map = gen_map,
					 .audit = audit,
					 .metrics = metrics,
					 .generation = first_generation() };

		if (!(b = broker_new(&o, err, sizeof err))) {
			log_error("%s", err);
			goto out;
		}
	}
	if ((fd = listen_on(set->socket_path)) < 0)
		goto out;
	if (broker_listen(b, fd, set->socket_path) < 0) {
		log_error("out of memory");
		close(fd);
		goto out;
	}
	if (write_pidfile(set->state_dir) < 0)
		goto out;
	(void)persist_start(persist); /* from now on the loop never writes the registry itself (logged) */
	log_info("listening on %s; %zu servers from %s", set->socket_path, cfg->nservers, set->config);
	broker_start(b);
	rc = broker_run(b) < 0 ? 1 : 0;
	log_info("stopped");
out:
	broker_free(b);
	persist_free(persist); /* the writes broker_free queued are made first */
	audit_free(audit);     /* after the calls: the last rows written */
	metrics_close(metrics);
	unpublish_generation(gen_map);
	registry_close(reg);
	(void)statedir_path(path, sizeof path, set->state_dir, STATEDIR_BROKER_PID);
	if (lock_fd >= 0) {
		unlink(path);
		close(lock_fd);
	}
	sigwatch_free(sig);
	evloop_free(loop);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "check-config", no_argument, NULL, 'c' },   { "status", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, 'V' },
		{ "settings", optional_argument, NULL, 'S' }, { NULL, 0, NULL, 0 },
	};
	struct settings set;
	struct cfg cfg;
	char err[4600];
	int c, check_only = 0, status_only = 0, rc;

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
	if (settings_load(&set, err, sizeof err) < 0) {
		fprintf(stderr, "mcpgw-broker: %s\n", err);
		return check_only ? CHECK_EXIT_SETTINGS : 1;
	}
	if (check_only)
		return check_config(&set);
	/* a large message's buffers are mapped on their own and unmapped when freed (glibc's own
	 * threshold rises up to 32 MiB after the first large free; such buffers then stay in the heap) */
	if (mallopt(M_MMAP_THRESHOLD, BROKER_MMAP_THRESHOLD) != 1) /* 0 under another allocator (ASan's) */
		fprintf(stderr,
			"mcpgw-broker: mallopt(M_MMAP_THRESHOLD) refused: large messages may keep their memory\n");
	if (log_init("mcpgw-broker", set.log_level, set.log_file) < 0)
		fprintf(stderr, "mcpgw-broker: %s: cannot open the log file; logging to stderr\n", set.log_file);
	(void)fdlimit_raise(); /* a connection per responder worker: as many as MCPGW_CAPACITY on a busy host */
	/* ${MCPGW_STATE_DIR} in the config and the MCP servers see the directories in use */
	if (settings_export(&set) < 0)
		log_warn("cannot export MCPGW_HOME and MCPGW_STATE_DIR: out of memory");
	if (cfg_load(set.config, &cfg, err, sizeof err) < 0) {
		log_error("%s", err);
		log_close();
		return 1;
	}
	rc = serve(&set, &cfg);
	cfg_free(&cfg);
	log_close();
	return rc;
}
