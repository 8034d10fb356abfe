/* test_brokerstart_attach.c: unit tests of brokerstart_attach (lib/mcp/brokerstart.c): a broker client that finds no broker starts the real mcpgw-broker, once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcp/bclient.h"
#include "mcp/brokerstart.h"
#include "core/log.h"
#include "core/settings.h"

static char broker_bin[PATH_MAX]; /* broker/mcpgw-broker of this build */
static char dir[64];              /* MCPGW_HOME, its var/ the state directory */
static struct settings S;

static int setup(void **state)
{
	char path[128], err[512];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-ba-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/servers_config.json", dir);
	if (!(f = fopen(path, "w")))
		return -1;
	fputs("{\"mcpServers\": {}}\n", f);
	fclose(f);
	setenv("MCPGW_HOME", dir, 1);
	unsetenv("MCPGW_STATE_DIR");
	unsetenv("MCPGW_BROKER_AUTOSTART");
	setenv("MCPGW_BROKER_BIN", broker_bin, 1);
	if (settings_load(&S, err, sizeof err) != 0) {
		fprintf(stderr, "settings: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char path[128], cmd[128];
	FILE *f;
	long pid = 0;

	(void)state;
	/* stop a broker the test started (detached: by its pid file) */
	snprintf(path, sizeof path, "%s/var/broker.pid", dir);
	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0)
		brokerstart_stop((pid_t)pid, 0, 5000);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* environ_has PID ENTRY: the process's initial environment holds "NAME=value" entry */
static int environ_has(long pid, const char *entry)
{
	char path[64], buf[65536];
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/environ", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (strcmp(buf + i, entry) == 0)
			return 1;
	return 0;
}

static long broker_pid(void)
{
	char path[128];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/var/broker.pid", dir);
	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void test_off(void **state)
{
	struct bclient *bc = bc_new(S.socket_path, S.max_message_bytes);
	json_t *result, *error;

	(void)state;
	S.broker_autostart = 0;
	brokerstart_attach(bc, &S, 0);
	assert_int_equal(bc_call(bc, "mcpgw/status", NULL, 1000, &result, &error), BC_ECONNECT);
	assert_int_equal(access(S.socket_path, F_OK), -1);
	bc_free(bc);
}

/* plain CGI: the broker starts without the request's variables; this process keeps them */
static void test_starts_broker_cgi(void **state)
{
	struct bclient *bc = bc_new(S.socket_path, S.max_message_bytes), *bc2;
	json_t *result, *error;
	char why[256], want[128];
	long pid;

	(void)state;
	setenv("REQUEST_METHOD", "POST", 1);
	setenv("HTTP_X_SECRET", "client header", 1);
	setenv("QUERY_STRING", "a=b", 1);
	brokerstart_attach(bc, &S, 1);
	assert_int_equal(bc_call(bc, "mcpgw/status", NULL, 2000, &result, &error), BC_OK);
	assert_non_null(result);
	json_decref(result);
	pid = broker_pid();
	assert_true(pid > 0);
	snprintf(want, sizeof want, "MCPGW_HOME=%s", dir);
	assert_int_equal(environ_has(pid, want), 1);
	assert_int_equal(environ_has(pid, "REQUEST_METHOD=POST"), 0);
	assert_int_equal(environ_has(pid, "HTTP_X_SECRET=client header"), 0);
	assert_int_equal(environ_has(pid, "QUERY_STRING=a=b"), 0);
	assert_string_equal(getenv("REQUEST_METHOD"), "POST");
	assert_string_equal(getenv("HTTP_X_SECRET"), "client header");
	assert_string_equal(getenv("QUERY_STRING"), "a=b");
	brokerstart_last_error(why, sizeof why);
	assert_string_equal(why, "");
	/* a second client finds it running: no second broker */
	bc2 = bc_new(S.socket_path, S.max_message_bytes);
	brokerstart_attach(bc2, &S, 1);
	assert_int_equal(bc_call(bc2, "mcpgw/status", NULL, 2000, &result, &error), BC_OK);
	json_decref(result);
	assert_int_equal(broker_pid(), pid);
	bc_free(bc2);
	bc_free(bc);
	unsetenv("REQUEST_METHOD");
	unsetenv("HTTP_X_SECRET");
	unsetenv("QUERY_STRING");
}

/* a broker that cannot start: BC_ECONNECT with the reason; then no new attempt for a while */
static void test_start_fails(void **state)
{
	struct bclient *bc = bc_new(S.socket_path, S.max_message_bytes);
	json_t *result, *error;
	char why[4096];
	long t0;

	(void)state;
	setenv("MCPGW_BROKER_BIN", "/bin/false", 1);
	brokerstart_attach(bc, &S, 0);
	assert_int_equal(bc_call(bc, "mcpgw/status", NULL, 1000, &result, &error), BC_ECONNECT);
	brokerstart_last_error(why, sizeof why);
	if (!strstr(why, "exited before opening"))
		fail_msg("last error: %s", why);
	/* within BROKERSTART_RETRY_MS: fails at once, without a new attempt */
	setenv("MCPGW_BROKER_BIN", "/nonexistent/mcpgw-broker", 1);
	t0 = clock_now_ms();
	assert_int_equal(bc_call(bc, "mcpgw/status", NULL, 1000, &result, &error), BC_ECONNECT);
	assert_true(clock_now_ms() - t0 < BROKERSTART_RETRY_MS / 2);
	brokerstart_last_error(why, sizeof why);
	assert_non_null(strstr(why, "exited before opening"));
	bc_free(bc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starts_broker_cgi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
	};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0)
		return 1;
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return 1;
	*slash = '\0';
	/* tests/unit/ -> broker/mcpgw-broker */
	snprintf(broker_bin, sizeof broker_bin, "%.*s/../../broker/mcpgw-broker", (int)(sizeof broker_bin - 32), self);
	signal(SIGPIPE, SIG_IGN);
	log_init("test_brokerstart_attach", LOGL_ERROR, "/dev/null"); /* the expected start failure stays quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
