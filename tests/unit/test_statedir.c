/* test_statedir.c: unit tests for the state directory's trust (owner, mode), files made there without following links (statedir.c, log.c), and where the CLI takes its configuration (settings.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/settings.h"
#include "core/statedir.h"

#define OTHER_UID 65534 /* nobody */
#define VICTIM "precious\n"

static char dir[PATH_MAX];
static char err[8192];
static char cwd0[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < settings_count; i++)
		unsetenv(settings_rows[i].name);
	unsetenv("XDG_CONFIG_HOME");
	strcpy(dir, "/tmp/mcpgw-test-statedir-XXXXXX");
	return mkdtemp(dir) && getcwd(cwd0, sizeof cwd0) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	if (chdir(cwd0) < 0)
		return -1;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("[%s] does not hold [%s]", hay, needle);
}

/* in: dir/name into out */
static const char *in(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", dir, name);
	return out;
}

/* victim: a file outside the state directory that a planted link points at */
static void make_victim(char *out, size_t n)
{
	FILE *f = fopen(in("victim", out, n), "w");

	assert_non_null(f);
	assert_int_equal(fputs(VICTIM, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void assert_victim_untouched(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, VICTIM);
}

static void test_make_creates_private_dir(void **state)
{
	char sd[PATH_MAX + 32];
	struct stat st;

	(void)state;
	umask(022);
	assert_int_equal(statedir_make(in("var", sd, sizeof sd), err, sizeof err), 0);
	assert_int_equal(stat(sd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(statedir_make(sd, err, sizeof err), 0); /* there already: checked only */
	assert_int_equal(chmod(sd, 0755), 0);                    /* readable by others is fine */
	assert_int_equal(statedir_check(sd, err, sizeof err), 0);
}

static void test_writable_by_others_refused(void **state)
{
	char sd[PATH_MAX + 32], want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(statedir_make(in("var", sd, sizeof sd), err, sizeof err), 0);
	assert_int_equal(chmod(sd, 0777), 0);
	assert_int_equal(statedir_make(sd, err, sizeof err), -1);
	assert_has(err, "is writable by everyone (mode 0777)");
	snprintf(want, sizeof want, "fix: chmod go-w %s", sd);
	assert_has(err, want);
	assert_int_equal(chmod(sd, 01777), 0); /* sticky (/tmp-like) does not help: files can still be planted */
	assert_int_equal(statedir_check(sd, err, sizeof err), -1);
	assert_int_equal(chmod(sd, 0770), 0);
	assert_int_equal(statedir_check(sd, err, sizeof err), -1);
	assert_has(err, "is writable by its group (mode 0770)");
}

static void test_other_owner_refused(void **state)
{
	char sd[PATH_MAX + 32];

	(void)state;
	assert_int_equal(statedir_make(in("var", sd, sizeof sd), err, sizeof err), 0);
	if (geteuid() != 0)
		skip(); /* chown to another user needs root */
	assert_int_equal(chown(sd, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(statedir_make(sd, err, sizeof err), -1);
	assert_has(err, "is owned by nobody, not by root who runs this");
	assert_has(err, "MCPGW_STATE_DIR");
	/* root is refused too (it could write there anyway): root is whom a planted link hurts most */
}

static void test_not_a_directory(void **state)
{
	char f[PATH_MAX + 32];

	(void)state;
	make_victim(f, sizeof f);
	assert_int_equal(statedir_make(f, err, sizeof err), -1);
	assert_has(err, "is not a directory");
	assert_int_equal(statedir_check(in("none", f, sizeof f), err, sizeof err), -1);
}

static void test_open_refuses_planted_symlink(void **state)
{
	char victim[PATH_MAX + 32], sd[PATH_MAX + 32], gen[PATH_MAX + 64];
	int fd;

	(void)state;
	make_victim(victim, sizeof victim);
	assert_int_equal(statedir_make(in("var", sd, sizeof sd), err, sizeof err), 0);
	snprintf(gen, sizeof gen, "%s/%s", sd, STATEDIR_CATALOG_GEN);
	assert_int_equal(symlink(victim, gen), 0);
	/* what the broker does with catalog.gen: create and truncate */
	fd = statedir_open(gen, O_RDWR | O_CREAT, 0600);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ELOOP);
	assert_victim_untouched(victim);
	/* a regular file is made 0600 */
	assert_int_equal(unlink(gen), 0);
	fd = statedir_open(gen, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	{
		struct stat st;

		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	}
	close(fd);
}

static void test_replace_never_follows(void **state)
{
	char victim[PATH_MAX + 32], sd[PATH_MAX + 32], pid[PATH_MAX + 64], buf[32] = "";
	struct stat st;
	FILE *f;

	(void)state;
	make_victim(victim, sizeof victim);
	assert_int_equal(statedir_make(in("var", sd, sizeof sd), err, sizeof err), 0);
	snprintf(pid, sizeof pid, "%s/%s", sd, STATEDIR_BROKER_PID);
	assert_int_equal(symlink(victim, pid), 0);
	assert_int_equal(statedir_replace(pid, "123\n", 4), 0);
	assert_victim_untouched(victim);
	assert_int_equal(lstat(pid, &st), 0);
	assert_true(S_ISREG(st.st_mode)); /* the link itself was replaced */
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(pid, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "123\n");
	/* the old fixed name "broker.pid.tmp" planted as a link is not used either */
	{
		char tmp[PATH_MAX + 80];

		snprintf(tmp, sizeof tmp, "%s.tmp", pid);
		assert_int_equal(symlink(victim, tmp), 0);
		assert_int_equal(statedir_replace(pid, "456\n", 4), 0);
		assert_victim_untouched(victim);
	}
	/* a directory that cannot be written: -1, nothing left behind */
	assert_int_equal(statedir_replace("/nonexistent-dir/x", "1", 1), -1);
}

static void test_log_refuses_symlink(void **state)
{
	char victim[PATH_MAX + 32], log[PATH_MAX + 32];
	struct stat st;

	(void)state;
	make_victim(victim, sizeof victim);
	assert_int_equal(symlink(victim, in("chat.log", log, sizeof log)), 0);
	assert_int_equal(log_init("test", LOGL_INFO, log), -1);
	log_write(LOGL_ERROR, "must not reach the victim");
	assert_victim_untouched(victim);
	assert_int_equal(unlink(log), 0);
	assert_int_equal(log_init("test", LOGL_INFO, log), 0);
	log_close();
	assert_int_equal(stat(log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(log_init("test", LOGL_ERROR, NULL), 0);
}

/* write_in: dir/sub/name with text */
static void write_in(const char *sub, const char *name, const char *text)
{
	char p[PATH_MAX + 64];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", dir, sub);
	(void)mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, 0600), 0);
}

static void test_cli_home_is_the_users_config_dir(void **state)
{
	static struct settings s;
	char want[PATH_MAX + 64], got[PATH_MAX + 64], home[PATH_MAX + 32];

	(void)state;
	/* HOME with no ~/.config/mcpgw: the install's, as for every program */
	setenv("HOME", in("home", home, sizeof home), 1);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(settings_user_home(got, sizeof got), 0);
	snprintf(want, sizeof want, "%s/.config/mcpgw", home);
	assert_string_equal(got, want);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_int_equal(s.home_from, SETTINGS_HOME_INSTALL);
	/* ~/.config/mcpgw exists: the CLI reads it, its state in var/ there */
	write_in("home/.config", ".keep", "");
	write_in("home/.config/mcpgw", ".env", "DEFAULT_MODEL=from-user-config\n");
	assert_int_equal(settings_user_home(got, sizeof got), 1);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_int_equal(s.home_from, SETTINGS_HOME_USER);
	assert_string_equal(s.home, want);
	assert_string_equal(s.default_model, "from-user-config");
	snprintf(want, sizeof want, "%s/.config/mcpgw/var", home);
	assert_string_equal(s.state_dir, want);
	unsetenv("DEFAULT_MODEL");
	/* the daemons never look there */
	assert_int_equal(settings_load(&s, err, sizeof err), 0);
	assert_int_equal(s.home_from, SETTINGS_HOME_INSTALL);
	assert_string_not_equal(s.default_model, "from-user-config");
	/* XDG_CONFIG_HOME first (absolute only, as the XDG spec says) */
	write_in("xdg", ".keep", "");
	write_in("xdg/mcpgw", ".env", "DEFAULT_MODEL=from-xdg\n");
	setenv("XDG_CONFIG_HOME", in("xdg", got, sizeof got), 1);
	assert_int_equal(settings_load_as(&s, SETTINGS_CLIENT, err, sizeof err), 0);
	assert_string_equal(s.default_model, "from-xdg");
	unsetenv("DEFAULT_MODEL");
	setenv("XDG_CONFIG_HOME", "relative/dir", 1);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_string_equal(s.default_model, "from-user-config");
	unsetenv("DEFAULT_MODEL");
	/* MCPGW_HOME named explicitly wins */
	setenv("MCPGW_HOME", in("xdg/mcpgw", got, sizeof got), 1);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_int_equal(s.home_from, SETTINGS_HOME_ENV);
	assert_string_equal(s.default_model, "from-xdg");
	unsetenv("DEFAULT_MODEL");
	unsetenv("MCPGW_HOME");
	unsetenv("XDG_CONFIG_HOME");
}

static void test_cwd_config_is_not_read_but_named(void **state)
{
	static struct settings s;
	char hostile[PATH_MAX + 32], home[PATH_MAX + 32];

	(void)state;
	setenv("HOME", in("home", home, sizeof home), 1);
	assert_int_equal(mkdir(home, 0700), 0);
	write_in("hostile", ".env", "DEFAULT_MODEL=from-cwd\nMCPGW_BROKER_BIN=/tmp/evil\n");
	assert_int_equal(chdir(in("hostile", hostile, sizeof hostile)), 0);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_string_not_equal(s.default_model, "from-cwd");
	assert_null(getenv("MCPGW_BROKER_BIN"));
	assert_int_equal(settings_cwd_note(&s, err, sizeof err), 1);
	assert_has(err, "the .env in the working directory is not read");
	assert_has(err, "MCPGW_HOME=");
	assert_has(err, hostile);
	/* named explicitly: read, and no note */
	setenv("MCPGW_HOME", ".", 1);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), -1);
	assert_has(err, "MCPGW_BROKER_BIN may not be set in a .env file"); /* still not a program from .env */
	write_in("hostile", ".env", "DEFAULT_MODEL=from-cwd\n");
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_string_equal(s.default_model, "from-cwd");
	assert_int_equal(settings_cwd_note(&s, err, sizeof err), 0);
	unsetenv("DEFAULT_MODEL");
	unsetenv("MCPGW_HOME");
	/* a working directory without either file: no note */
	assert_int_equal(chdir(home), 0);
	assert_int_equal(settings_load_as(&s, SETTINGS_CHATBOT, err, sizeof err), 0);
	assert_int_equal(settings_cwd_note(&s, err, sizeof err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_make_creates_private_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_planted_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_never_follows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_refuses_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_home_is_the_users_config_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_config_is_not_read_but_named, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
