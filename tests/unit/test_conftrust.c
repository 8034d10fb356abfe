/* test_conftrust.c: unit tests for configuration trust: files of another user or writable by others refused (conftrust.c, dotenv.c, config.c), settings that name a program refused in .env (settings.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conftrust.h"
#include "core/dotenv.h"
#include "core/settings.h"
#include "core/settingsdoc.h"
#include "mcp/config.h"

#define OTHER_UID 65534 /* nobody: "another user" when the tests run as root */

static char dir[PATH_MAX];
static char err[2048];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < settings_count; i++)
		unsetenv(settings_rows[i].name);
	unsetenv("T_TRUST");
	strcpy(dir, "/tmp/mcpgw-test-conftrust-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* put: dir/name holding text with mode; its path into out */
static void put(const char *name, const char *text, mode_t mode, char *out, size_t outlen)
{
	FILE *f;

	snprintf(out, outlen, "%s/%s", dir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(out, mode), 0); /* whatever the umask */
}

/* read_rc: conftrust_read of path; err holds its message */
static int read_rc(const char *path)
{
	buf_t b = BUF_INIT;
	int rc = conftrust_read(&b, path, 4096, err, sizeof err);

	buf_free(&b);
	return rc;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("[%s] does not hold [%s]", hay, needle);
}

static void test_own_private_file_is_read(void **state)
{
	char path[PATH_MAX + 32];
	buf_t b = BUF_INIT;

	(void)state;
	put("a.env", "X=1\n", 0600, path, sizeof path);
	assert_int_equal(conftrust_read(&b, path, 4096, err, sizeof err), 0);
	assert_string_equal(b.data, "X=1\n");
	buf_free(&b);
	put("b.env", "X=1\n", 0644, path, sizeof path); /* readable by others is fine: no secret is checked here */
	assert_int_equal(read_rc(path), 0);
	put("c.env", "X=1\n", 0640, path, sizeof path);
	assert_int_equal(read_rc(path), 0);
}

static void test_group_or_world_writable_is_refused(void **state)
{
	char path[PATH_MAX + 32], want[PATH_MAX + 64];

	(void)state;
	put("g.env", "X=1\n", 0664, path, sizeof path);
	assert_int_equal(read_rc(path), -1);
	snprintf(want, sizeof want, "fix: chmod go-w %s", path);
	assert_has(err, want);
	assert_has(err, "writable by its group (mode 0664)");
	put("o.env", "X=1\n", 0602, path, sizeof path);
	assert_int_equal(read_rc(path), -1);
	assert_has(err, "writable by everyone (mode 0602)");
	assert_has(err, path);
}

static void test_other_owner_is_refused(void **state)
{
	char path[PATH_MAX + 32];
	struct stat st;

	(void)state;
	put("u.env", "X=1\n", 0644, path, sizeof path);
	if (geteuid() != 0) {
		/* not root: a file of root's is trusted; another's cannot be made here */
		assert_int_equal(stat("/etc/passwd", &st), 0);
		assert_int_equal(conftrust_stat(&st, "/etc/passwd", err, sizeof err), 0);
		skip();
	}
	assert_int_equal(chown(path, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(read_rc(path), -1);
	assert_has(err, path);
	assert_has(err, "is owned by nobody, not by root (who runs this) or root");
	assert_has(err, "chown root");
	/* the owner rule and the mode rule are separate: an own 0644 file passes, root's too */
	assert_int_equal(stat(path, &st), 0);
	st.st_uid = 0;
	assert_int_equal(conftrust_stat(&st, path, err, sizeof err), 0);
}

static void test_symlink_checks_its_target(void **state)
{
	char good[PATH_MAX + 32], bad[PATH_MAX + 32], link[PATH_MAX + 32];

	(void)state;
	put("good.env", "X=1\n", 0600, good, sizeof good);
	put("bad.env", "X=1\n", 0666, bad, sizeof bad);
	snprintf(link, sizeof link, "%s/link.env", dir);
	assert_int_equal(symlink(good, link), 0);
	assert_int_equal(read_rc(link), 0); /* /etc/mcpgw/.env -> a deployed copy is fine */
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(bad, link), 0);
	assert_int_equal(read_rc(link), -1); /* what is read is what is checked */
	snprintf(link, sizeof link, "%s/missing.env", dir);
	assert_int_equal(read_rc(link), 1);
}

static void test_dotenv_refuses_untrusted_file(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	put(".env", "T_TRUST=planted\n", 0666, path, sizeof path);
	assert_int_equal(dotenv_load(path, err, sizeof err), -1);
	assert_has(err, "chmod go-w");
	assert_null(getenv("T_TRUST")); /* nothing of it is set */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(dotenv_load(path, err, sizeof err), 0);
	assert_string_equal(getenv("T_TRUST"), "planted");
}

static const char *refuse_t(const char *key)
{
	return strcmp(key, "T_TRUST") == 0 ? "a test refuses it" : NULL;
}

static void test_dotenv_except(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	put(".env", "T_OK=1\nT_TRUST=x\n", 0600, path, sizeof path);
	unsetenv("T_OK");
	assert_int_equal(dotenv_load_except(path, refuse_t, err, sizeof err), -1);
	assert_has(err, ":2: T_TRUST may not be set in a .env file (a test refuses it): set it in the environment");
	assert_null(getenv("T_OK")); /* nothing set */
	/* refused even when the environment already has it: the file is wrong either way */
	setenv("T_TRUST", "env", 1);
	assert_int_equal(dotenv_load_except(path, refuse_t, err, sizeof err), -1);
	unsetenv("T_TRUST");
	assert_int_equal(dotenv_load_except(path, NULL, err, sizeof err), 0);
	assert_string_equal(getenv("T_OK"), "1");
	unsetenv("T_OK");
	unsetenv("T_TRUST");
}

/* load_with_env: settings_load with MCPGW_HOME = dir holding a .env of text */
static int load_with_env(const char *text, struct settings *s)
{
	char path[PATH_MAX + 32];

	put(".env", text, 0600, path, sizeof path);
	setenv("MCPGW_HOME", dir, 1);
	return settings_load(s, err, sizeof err);
}

static void test_program_settings_not_from_dotenv(void **state)
{
	static struct settings s;
	size_t marked = 0;

	(void)state;
	/* the rows that name a program to run (MCPGW_*_BIN) are marked, and only they */
	assert_true(settings_find("MCPGW_BROKER_BIN")->flags & SETTINGS_NO_DOTENV);
	for (size_t i = 0; i < settings_count; i++) {
		const char *n = settings_rows[i].name;
		int bin = strlen(n) > 4 && strcmp(n + strlen(n) - 4, "_BIN") == 0;

		if (bin != ((settings_rows[i].flags & SETTINGS_NO_DOTENV) != 0))
			fail_msg("%s: names a program (_BIN) %d, marked SETTINGS_NO_DOTENV %d", n, bin, !bin);
		marked += (size_t)bin;
	}
	assert_true(marked >= 1);
	assert_int_equal(load_with_env("MCPGW_LOG_LEVEL=debug\nMCPGW_BROKER_BIN=/tmp/evil\n", &s), -1);
	assert_has(err, ".env:2: MCPGW_BROKER_BIN may not be set in a .env file (it names a program to run)");
	assert_null(getenv("MCPGW_BROKER_BIN"));
	assert_null(getenv("MCPGW_LOG_LEVEL"));
	/* from the environment it is taken */
	unsetenv("MCPGW_LOG_LEVEL");
	setenv("MCPGW_BROKER_BIN", "/usr/bin/true", 1);
	assert_int_equal(load_with_env("MCPGW_LOG_LEVEL=debug\n", &s), 0);
	assert_string_equal(getenv("MCPGW_BROKER_BIN"), "/usr/bin/true");
}

static void test_settings_doc_says_environment_only(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(settingsdoc_print(f, SETTINGSDOC_MARKDOWN), 0);
	assert_int_equal(fclose(f), 0);
	assert_has(text, "| `MCPGW_BROKER_BIN` |");
	assert_has(strstr(text, "| `MCPGW_BROKER_BIN` |"), "path, environment only (never from `.env`) |");
	free(text);
}

static void test_servers_config_refused_when_writable(void **state)
{
	char path[PATH_MAX + 32];
	struct cfg c;

	(void)state;
	put("servers_config.json", "{\"mcpServers\":{\"x\":{\"command\":\"/bin/true\"}}}", 0664, path, sizeof path);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
	assert_has(err, "chmod go-w");
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cfg_load(path, &c, err, sizeof err), 0);
	cfg_free(&c);
	if (geteuid() == 0) {
		assert_int_equal(chown(path, OTHER_UID, OTHER_UID), 0);
		assert_int_equal(cfg_load(path, &c, err, sizeof err), -1);
		assert_has(err, "is owned by nobody");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_own_private_file_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_or_world_writable_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_checks_its_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotenv_refuses_untrusted_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotenv_except, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_settings_not_from_dotenv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings_doc_says_environment_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_servers_config_refused_when_writable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
