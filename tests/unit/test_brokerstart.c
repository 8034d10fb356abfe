/* test_brokerstart.c: unit tests of lib/brokerstart.c; this program re-executes itself as the fake broker (BS_FAKE_ROLE). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcp/brokerstart.h"
#include "core/log.h"
#include "core/settings.h"

static char self[PATH_MAX]; /* this test program: the fake broker */
static char dir[64];        /* the test's state directory holder */
static struct settings S;

/* --- the fake broker (a re-executed copy of this program) --- */

/* fake_answer: one JSON-RPC line from a client: mcpgw/status with the servers "starting" for a while;
 * BS_FAKE_EXTRA "failing" / "restarting" adds a server in backoff that is failing / is not */
static void fake_answer(int fd, const char *line, long started, long starting_ms)
{
	json_t *req = json_loads(line, 0, NULL), *resp;
	const char *extra = getenv("BS_FAKE_EXTRA");
	char *s;

	if (!req)
		return;
	resp = json_pack("{s:s, s:O, s:{s:{s:i}, s:[{s:s, s:s}]}}", "jsonrpc", "2.0", "id", json_object_get(req, "id"),
			 "result", "broker", "clients", 1, "servers", "name", "fake", "state",
			 clock_now_ms() - started < starting_ms ? "starting" : "ready");
	if (resp && extra)
		json_array_append_new(json_object_get(json_object_get(resp, "result"), "servers"),
				      json_pack("{s:s, s:s, s:b}", "name", "ghost", "state", "backoff", "failing",
						strcmp(extra, "failing") == 0));
	s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	if (s) {
		(void)!write(fd, s, strlen(s));
		(void)!write(fd, "\n", 1);
	}
	free(s);
	json_decref(resp);
	json_decref(req);
}

/* fake_serve: listen on BS_FAKE_SOCK and answer every line, until SIGTERM */
static int fake_serve(void)
{
	const char *path = getenv("BS_FAKE_SOCK"), *st = getenv("BS_FAKE_STARTING_MS");
	long started = clock_now_ms(), starting_ms = st ? atol(st) : 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p[2];
	char line[4096];
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0), cfd = -1;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path ? path : "");
	snprintf(line, sizeof line, "%s.env", sa.sun_path);
	{ /* what this broker was given: MCPGW_HOME and MCPGW_STATE_DIR */
		FILE *f = fopen(line, "w");

		if (f) {
			fprintf(f, "%s\n%s\n", getenv("MCPGW_HOME") ? getenv("MCPGW_HOME") : "-",
				getenv("MCPGW_STATE_DIR") ? getenv("MCPGW_STATE_DIR") : "-");
			fclose(f);
		}
	}
	unlink(sa.sun_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0)
		return 1;
	for (;;) {
		p[0] = (struct pollfd){ lfd, POLLIN, 0 };
		p[1] = (struct pollfd){ cfd, POLLIN, 0 };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			if (cfd >= 0)
				close(cfd);
			cfd = accept(lfd, NULL, NULL);
		} else if (cfd >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			ssize_t n = read(cfd, line, sizeof line - 1);

			if (n <= 0) {
				close(cfd);
				cfd = -1;
				continue;
			}
			line[n] = '\0';
			fake_answer(cfd, line, started, starting_ms);
		}
	}
}

static int fake_main(const char *role)
{
	if (strcmp(role, "exit3") == 0) {
		fprintf(stderr, "first line\nboom: config is bad\n");
		return 3;
	}
	if (strcmp(role, "silent") == 0) {
		for (;;)
			pause();
	}
	if (strcmp(role, "slow") == 0)
		usleep(300 * 1000);
	return fake_serve();
}

/* --- fixtures --- */

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-bs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	memset(&S, 0, sizeof S);
	snprintf(S.home, sizeof S.home, "%s/home", dir);
	snprintf(S.state_dir, sizeof S.state_dir, "%s/var", dir);
	snprintf(S.socket_path, sizeof S.socket_path, "%s/var/broker.sock", dir);
	S.broker_timeout_ms = 2000;
	S.max_message_bytes = 1 << 20;
	setenv("BS_FAKE_SOCK", S.socket_path, 1);
	setenv("BS_FAKE_ROLE", "listen", 1);
	unsetenv("BS_FAKE_STARTING_MS");
	unsetenv("BS_FAKE_EXTRA");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct brokerstart_opts opts(const char *bin, long timeout_ms, int detach)
{
	struct brokerstart_opts o = { bin, timeout_ms, detach };

	return o;
}

/* process_gone: pid has exited (gone, or a zombie waiting for init) */
static int process_gone(pid_t pid)
{
	char path[64], buf[256], *close_paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if (!(f = fopen(path, "r")))
		return 1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

/* --- tests --- */

static void test_alive(void **state)
{
	char longpath[200];

	(void)state;
	assert_int_equal(brokerstart_alive("/nonexistent/broker.sock"), 0);
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(brokerstart_alive(longpath), -1);
}

static void test_find_bin(void **state)
{
	char out[PATH_MAX], bindir[128], link[160], *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

	(void)state;
	setenv("MCPGW_BROKER_BIN", "/x/y/mcpgw-broker", 1);
	assert_int_equal(brokerstart_find_bin(out, sizeof out), 0);
	assert_string_equal(out, "/x/y/mcpgw-broker");
	unsetenv("MCPGW_BROKER_BIN");
	/* not next to this program (tests/unit): on PATH */
	snprintf(bindir, sizeof bindir, "%s/bin", dir);
	snprintf(link, sizeof link, "%s/mcpgw-broker", bindir);
	assert_int_equal(mkdir(bindir, 0755), 0);
	assert_int_equal(symlink(self, link), 0);
	setenv("PATH", bindir, 1);
	assert_int_equal(brokerstart_find_bin(out, sizeof out), 0);
	assert_string_equal(out, link);
	setenv("PATH", dir, 1);
	assert_int_equal(brokerstart_find_bin(out, sizeof out), -1);
	assert_string_equal(out, "mcpgw-broker");
	assert_int_equal(brokerstart_find_bin(out, 4), -1);
	if (path)
		setenv("PATH", path, 1);
	free(path);
}

static void test_starts_once_and_stops(void **state)
{
	struct brokerstart_opts o = opts(self, 5000, 0);
	struct brokerstart bs, again;
	char err[4096] = "", log[PATH_MAX + 16];
	struct stat st;

	(void)state;
	/* the broker is given this process's resolved directories, not what the environment says */
	setenv("MCPGW_HOME", "/elsewhere", 1);
	unsetenv("MCPGW_STATE_DIR");
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), 0);
	unsetenv("MCPGW_HOME");
	assert_int_equal(bs.started, 1);
	assert_true(bs.pid > 0);
	assert_int_equal(brokerstart_alive(S.socket_path), 1);
	{
		char envfile[sizeof S.socket_path + 8], want[sizeof S.home + sizeof S.state_dir + 4],
			got[sizeof want] = "";
		FILE *f;
		size_t n;

		snprintf(envfile, sizeof envfile, "%s.env", S.socket_path);
		assert_non_null(f = fopen(envfile, "r"));
		n = fread(got, 1, sizeof got - 1, f);
		fclose(f);
		got[n] = '\0';
		snprintf(want, sizeof want, "%s\n%s\n", S.home, S.state_dir);
		assert_string_equal(got, want);
	}
	assert_int_equal(stat(S.state_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(log, sizeof log, "%s/broker.log", S.state_dir);
	assert_int_equal(access(log, F_OK), 0);
	assert_int_equal(brokerstart_ensure(&S, &o, &again, err, sizeof err), 0);
	assert_int_equal(again.started, 0);
	assert_int_equal(again.pid, 0);
	assert_int_equal(brokerstart_stop(bs.pid, 1, 2000), 0);
	assert_int_equal(brokerstart_alive(S.socket_path), 0);
	assert_int_equal(waitpid(bs.pid, NULL, WNOHANG), -1);   /* reaped */
	assert_int_equal(brokerstart_stop(bs.pid, 1, 2000), 0); /* gone already */
	assert_int_equal(brokerstart_stop(0, 1, 2000), -1);
}

static void test_detached(void **state)
{
	struct brokerstart_opts o = opts(self, 5000, 1);
	struct brokerstart bs;
	char err[4096] = "";
	long deadline;

	(void)state;
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), 0);
	assert_int_equal(bs.started, 1);
	assert_int_equal(brokerstart_alive(S.socket_path), 1);
	errno = 0;
	assert_int_equal(waitpid(bs.pid, NULL, WNOHANG), -1); /* not our child */
	assert_int_equal(errno, ECHILD);
	assert_int_equal(brokerstart_stop(bs.pid, 0, 3000), 0); /* a zombie counts as gone */
	for (deadline = clock_now_ms() + 3000; !process_gone(bs.pid) && clock_now_ms() < deadline;)
		usleep(20 * 1000);
	assert_true(process_gone(bs.pid));
}

static void test_exit_shows_log(void **state)
{
	struct brokerstart_opts o = opts(self, 5000, 0);
	struct brokerstart bs;
	char err[4096] = "";

	(void)state;
	setenv("BS_FAKE_ROLE", "exit3", 1);
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), -1);
	assert_int_equal(bs.started, 0);
	assert_non_null(strstr(err, "exited with status 3 before opening"));
	assert_non_null(strstr(err, "broker.log ---\nfirst line\nboom: config is bad"));
}

static void test_missing_bin(void **state)
{
	struct brokerstart_opts o = opts("/nonexistent/mcpgw-broker", 5000, 0);
	struct brokerstart bs;
	char err[4096] = "";

	(void)state;
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot run /nonexistent/mcpgw-broker: No such file or directory"));
	o.detach = 1;
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot run /nonexistent/mcpgw-broker"));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left behind */
}

static void test_timeout(void **state)
{
	struct brokerstart_opts o = opts(self, 300, 0);
	struct brokerstart bs;
	char err[4096] = "";
	long t0 = clock_now_ms();

	(void)state;
	setenv("BS_FAKE_ROLE", "silent", 1);
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), -1);
	assert_true(clock_now_ms() - t0 < 5000);
	assert_non_null(strstr(err, "did not open"));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* the silent one was stopped and reaped */
}

/* starter: in a forked child: ensure (detached) and report {started, pid} on fd */
static void starter(int fd)
{
	struct brokerstart_opts o = opts(self, 10000, 1);
	struct brokerstart bs = { 0, 0 };
	char err[4096];
	int r[2];

	r[0] = brokerstart_ensure(&S, &o, &bs, err, sizeof err) == 0 ? bs.started : -1;
	r[1] = (int)bs.pid;
	(void)!write(fd, r, sizeof r);
	_exit(0);
}

static void test_two_starters_one_broker(void **state)
{
	int p[2], r[2], started = 0, ok = 0;
	pid_t kids[2], broker = 0;

	(void)state;
	setenv("BS_FAKE_ROLE", "slow", 1);
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0)
			starter(p[1]);
	}
	close(p[1]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(read(p[0], r, sizeof r), (ssize_t)sizeof r);
		ok += r[0] >= 0;
		started += r[0] == 1;
		if (r[0] == 1)
			broker = (pid_t)r[1];
	}
	close(p[0]);
	for (int i = 0; i < 2; i++)
		waitpid(kids[i], NULL, 0);
	assert_int_equal(ok, 2);
	assert_int_equal(started, 1);
	assert_true(broker > 0);
	assert_true(brokerstart_stop(broker, 0, 2000) >= 0);
}

static void test_wait_ready(void **state)
{
	struct brokerstart_opts o = opts(self, 5000, 0);
	struct brokerstart bs;
	char err[4096] = "";
	long t0;

	(void)state;
	assert_int_equal(brokerstart_wait_ready(&S, 200), -1); /* no broker */
	setenv("BS_FAKE_STARTING_MS", "400", 1);
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), 0);
	t0 = clock_now_ms();
	assert_int_equal(brokerstart_wait_ready(&S, 100), 1); /* still starting at the deadline */
	assert_int_equal(brokerstart_wait_ready(&S, 5000), 0);
	assert_true(clock_now_ms() - t0 >= 300);
	assert_int_equal(brokerstart_stop(bs.pid, 1, 2000), 0);
}

/* a server whose starts fail is not waited for; one restarting after a crash is */
static void test_wait_ready_failing(void **state)
{
	struct brokerstart_opts o = opts(self, 5000, 0);
	struct brokerstart bs;
	char err[4096] = "";
	long t0;

	(void)state;
	setenv("BS_FAKE_EXTRA", "failing", 1);
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), 0);
	t0 = clock_now_ms();
	assert_int_equal(brokerstart_wait_ready(&S, 3000), 0);
	assert_true(clock_now_ms() - t0 < 1000);
	assert_int_equal(brokerstart_stop(bs.pid, 1, 2000), 0);
	setenv("BS_FAKE_EXTRA", "restarting", 1);
	assert_int_equal(brokerstart_ensure(&S, &o, &bs, err, sizeof err), 0);
	assert_int_equal(brokerstart_wait_ready(&S, 150), 1);
	assert_int_equal(brokerstart_stop(bs.pid, 1, 2000), 0);
}

int main(int argc, char **argv)
{
	const char *role = getenv("BS_FAKE_ROLE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_bin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starts_once_and_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_shows_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_bin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_starters_one_broker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_ready_failing, setup, teardown),
	};

	(void)argc;
	if (role)
		return fake_main(role);
	if (!realpath(argv[0], self))
		return 1;
	log_init("test_brokerstart", LOGL_ERROR, NULL);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
