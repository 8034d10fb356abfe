/* test_progpath.c: unit tests for finding mcpgw's install location and a server's command (lib/progpath.c). */
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

#include "core/buildconf.h"
#include "core/progpath.h"

static char T[PATH_MAX];    /* a fresh temp tree per test */
static char cwd0[PATH_MAX]; /* the working directory to go back to */

/* p: T + "/" + rel, in one of a few rotating buffers */
static const char *p(const char *rel)
{
	static char bufs[8][PATH_MAX + 64];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, sizeof bufs[0], "%s/%s", T, rel);
	return b;
}

static void mkdirs(const char *rel)
{
	char path[PATH_MAX + 64], *s;

	snprintf(path, sizeof path, "%s/%s", T, rel);
	for (s = path + strlen(T) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	mkdir(path, 0755);
}

/* put: a file T/rel with mode */
static void put(const char *rel, mode_t mode)
{
	int fd = open(p(rel), O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	assert_int_equal(chmod(p(rel), mode), 0);
}

static int setup(void **state)
{
	(void)state;
	if (!getcwd(cwd0, sizeof cwd0))
		return -1;
	strcpy(T, "/tmp/mcpgw-test-progpath-XXXXXX");
	if (!mkdtemp(T))
		return -1;
	/* a checkout */
	mkdirs("co/cgi-bin");
	mkdirs("co/broker");
	mkdirs("co/mcp-server-sqlite");
	mkdirs("co/chat");
	mkdirs("co/mcp-client");
	mkdirs("co/tests/unit");
	put("co/servers_config.json", 0644);
	put("co/mcp-server-sqlite/mcp-server-sqlite", 0755);
	put("co/broker/mcpgw-broker", 0755);
	put("co/broker/dup", 0755);
	/* an install */
	mkdirs("pfx/lib/mcpgw/cgi-bin");
	mkdirs("pfx/bin");
	put("pfx/bin/mcp-server-sqlite", 0755);
	/* a PATH directory, a home */
	mkdirs("path");
	put("path/dup", 0755);
	put("path/only-on-path", 0755);
	put("path/noexec", 0644);
	mkdirs("home/bin");
	put("home/bin/srv", 0755);
	put("home/cwdprog", 0755);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 32];

	(void)state;
	assert_int_equal(chdir(cwd0), 0);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", T);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_layout(void **state)
{
	char root[PATH_MAX];

	(void)state;
	assert_int_equal(progpath_layout(p("co/cgi-bin"), root, sizeof root), PROGPATH_CHECKOUT);
	assert_string_equal(root, p("co"));
	assert_int_equal(progpath_layout(p("co/broker"), root, sizeof root), PROGPATH_CHECKOUT);
	assert_int_equal(progpath_layout(p("co/mcp-server-sqlite"), NULL, 0), PROGPATH_CHECKOUT);
	/* not one of a checkout's program directories */
	assert_int_equal(progpath_layout(p("co/tests/unit"), root, sizeof root), PROGPATH_INSTALLED);
	assert_string_equal(root, "");
	/* no servers_config.json above */
	assert_int_equal(progpath_layout(p("pfx/lib/mcpgw/cgi-bin"), root, sizeof root), PROGPATH_INSTALLED);
	assert_int_equal(progpath_layout(p("pfx/bin"), root, sizeof root), PROGPATH_INSTALLED);
	/* odd input */
	assert_int_equal(progpath_layout("/", root, sizeof root), PROGPATH_INSTALLED);
	assert_int_equal(progpath_layout("cgi-bin", root, sizeof root), PROGPATH_INSTALLED);
	assert_int_equal(progpath_layout(NULL, root, sizeof root), PROGPATH_INSTALLED);
	assert_int_equal(progpath_layout(p("co/cgi-bin"), root, 4), PROGPATH_INSTALLED); /* root does not fit */
	/* the checkout marker must be a regular file */
	assert_int_equal(unlink(p("co/servers_config.json")), 0);
	assert_int_equal(mkdir(p("co/servers_config.json"), 0755), 0);
	assert_int_equal(progpath_layout(p("co/cgi-bin"), root, sizeof root), PROGPATH_INSTALLED);
}

static void test_defaults(void **state)
{
	char home[PATH_MAX], st[PATH_MAX];

	(void)state;
	/* a checkout: its root and var/, whatever the working directory */
	assert_int_equal(chdir(p("home")), 0);
	assert_int_equal(progpath_defaults(p("co/cgi-bin"), home, sizeof home, st, sizeof st), 0);
	assert_string_equal(home, p("co"));
	assert_string_equal(st, p("co/var"));
	/* an install: the directories compiled in */
	assert_int_equal(progpath_defaults(p("pfx/lib/mcpgw/cgi-bin"), home, sizeof home, st, sizeof st), 0);
	assert_string_equal(home, MCPGW_SYSCONF);
	assert_string_equal(st, MCPGW_STATEDIR);
	/* this test program (tests/unit is no program directory): an install's */
	assert_int_equal(progpath_defaults(NULL, home, sizeof home, st, sizeof st), 0);
	assert_string_equal(home, MCPGW_SYSCONF);
	assert_int_equal(progpath_defaults(p("co/broker"), home, 4, st, sizeof st), PROGPATH_TOO_LONG);
}

static void test_workdir(void **state)
{
	char out[PATH_MAX];

	(void)state;
	assert_int_equal(progpath_workdir(NULL, "/h", out, sizeof out), 0);
	assert_string_equal(out, "/h");
	assert_int_equal(progpath_workdir("", "/h", out, sizeof out), 0);
	assert_string_equal(out, "/h");
	assert_int_equal(progpath_workdir("/srv/x", "/h", out, sizeof out), 0);
	assert_string_equal(out, "/srv/x");
	assert_int_equal(progpath_workdir("data/x", "/h/", out, sizeof out), 0);
	assert_string_equal(out, "/h/data/x");
	assert_int_equal(progpath_workdir("..", "/h", out, sizeof out), 0);
	assert_string_equal(out, "/h/..");
	assert_int_equal(progpath_workdir("x", "/", out, sizeof out), 0);
	assert_string_equal(out, "/x");
	assert_int_equal(progpath_workdir("x", "rel", out, sizeof out), PROGPATH_BAD_BASE);
	assert_int_equal(progpath_workdir(NULL, NULL, out, sizeof out), PROGPATH_BAD_BASE);
	assert_int_equal(progpath_workdir("x", "/h", out, 4), PROGPATH_TOO_LONG);
}

/* the bundled server is found from the checkout, with a web server's PATH */
static void test_bare_name_own_dirs_first(void **state)
{
	char out[PATH_MAX];

	(void)state;
	assert_int_equal(progpath_resolve_in("mcp-server-sqlite", p("home"), p("co/cgi-bin"), "/usr/bin:/bin", out,
					     sizeof out),
			 PROGPATH_OK);
	assert_string_equal(out, p("co/mcp-server-sqlite/mcp-server-sqlite"));
	assert_int_equal(progpath_resolve_in("mcpgw-broker", "/", p("co/cgi-bin"), NULL, out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("co/broker/mcpgw-broker"));
	/* own directories win over PATH */
	assert_int_equal(progpath_resolve_in("dup", "/", p("co/broker"), p("path"), out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("co/broker/dup"));
	/* then PATH */
	assert_int_equal(progpath_resolve_in("only-on-path", "/", p("co/broker"), p("path"), out, sizeof out),
			 PROGPATH_OK);
	assert_string_equal(out, p("path/only-on-path"));
	/* an install: $PREFIX/bin from $PREFIX/lib/mcpgw/cgi-bin */
	assert_int_equal(progpath_resolve_in("mcp-server-sqlite", "/", p("pfx/lib/mcpgw/cgi-bin"), "/usr/bin:/bin", out,
					     sizeof out),
			 PROGPATH_OK);
	assert_string_equal(out, p("pfx/bin/mcp-server-sqlite"));
	assert_int_equal(progpath_resolve_in("mcp-server-sqlite", "/", p("pfx/bin"), "", out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("pfx/bin/mcp-server-sqlite"));
}

static void test_bare_name_misses(void **state)
{
	char out[PATH_MAX];

	(void)state;
	/* nowhere */
	assert_int_equal(progpath_resolve_in("no-such-program", "/", p("co/cgi-bin"), p("path"), out, sizeof out),
			 PROGPATH_NOT_FOUND);
	assert_string_equal(out, "no-such-program");
	/* the working directory is never searched, also not through empty or relative PATH entries */
	assert_int_equal(chdir(p("home")), 0);
	assert_int_equal(progpath_resolve_in("cwdprog", p("home"), p("co/cgi-bin"), "::.:bin:", out, sizeof out),
			 PROGPATH_NOT_FOUND);
	assert_int_equal(progpath_resolve_in("srv", p("home"), p("co/cgi-bin"), "bin", out, sizeof out),
			 PROGPATH_NOT_FOUND);
	/* a file that cannot be run */
	assert_int_equal(progpath_resolve_in("noexec", "/", p("co/cgi-bin"), p("path"), out, sizeof out),
			 PROGPATH_NOT_EXECUTABLE);
	assert_string_equal(out, p("path/noexec"));
	/* "." and ".." name directories, never a program */
	assert_int_equal(progpath_resolve_in(".", "/", p("co/broker"), p("path"), out, sizeof out), PROGPATH_NOT_FOUND);
	assert_int_equal(progpath_resolve_in("..", "/", p("co/broker"), p("path"), out, sizeof out), PROGPATH_NOT_FOUND);
	/* a directory's name in an own directory: not a program either */
	assert_int_equal(progpath_resolve_in("broker", "/", p("co"), p("path"), out, sizeof out), PROGPATH_NOT_FOUND);
	/* empty, NULL, too long */
	assert_int_equal(progpath_resolve_in("", "/", p("co/broker"), p("path"), out, sizeof out), PROGPATH_EMPTY);
	assert_int_equal(progpath_resolve_in(NULL, "/", p("co/broker"), p("path"), out, sizeof out), PROGPATH_EMPTY);
	{
		char *big = malloc(PROGPATH_MAX + 10);

		assert_non_null(big);
		memset(big, 'a', PROGPATH_MAX + 9);
		big[PROGPATH_MAX + 9] = '\0';
		assert_int_equal(progpath_resolve_in(big, "/", p("co/broker"), p("path"), out, sizeof out),
				 PROGPATH_TOO_LONG);
		free(big);
	}
	assert_int_equal(progpath_resolve_in("dup", "/", p("co/broker"), p("path"), out, 8), PROGPATH_TOO_LONG);
	assert_int_equal(progpath_resolve_in("dup", "/", p("co/broker"), p("path"), out, 0), PROGPATH_TOO_LONG);
}

/* a command with a slash: as given, or against the server's working directory; never PATH, never the cwd */
static void test_paths(void **state)
{
	char out[PATH_MAX];

	(void)state;
	assert_int_equal(chdir(p("path")), 0);
	assert_int_equal(progpath_resolve_in("bin/srv", p("home"), p("co/broker"), p("path"), out, sizeof out),
			 PROGPATH_OK);
	assert_string_equal(out, p("home/bin/srv"));
	assert_int_equal(progpath_resolve_in("./bin/srv", p("home"), NULL, NULL, out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("home/./bin/srv"));
	assert_int_equal(progpath_resolve_in("../bin/srv", p("home/bin"), NULL, NULL, out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("home/bin/../bin/srv"));
	assert_int_equal(progpath_resolve_in(p("home/bin/srv"), NULL, NULL, NULL, out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, p("home/bin/srv"));
	/* "./dup" is in the cwd (path/) but is taken against dir */
	assert_int_equal(progpath_resolve_in("./dup", p("home"), NULL, p("path"), out, sizeof out), PROGPATH_NOT_FOUND);
	assert_string_equal(out, p("home/./dup"));
	/* directories, a trailing slash, a path through a file */
	assert_int_equal(progpath_resolve_in("/", NULL, NULL, NULL, out, sizeof out), PROGPATH_NOT_EXECUTABLE);
	assert_int_equal(progpath_resolve_in("bin/", p("home"), NULL, NULL, out, sizeof out), PROGPATH_NOT_EXECUTABLE);
	assert_int_equal(progpath_resolve_in("..", "/", NULL, "", out, sizeof out), PROGPATH_NOT_FOUND);
	assert_int_equal(progpath_resolve_in("../..", p("home"), NULL, NULL, out, sizeof out), PROGPATH_NOT_EXECUTABLE);
	assert_int_equal(progpath_resolve_in("bin/srv/x", p("home"), NULL, NULL, out, sizeof out), PROGPATH_NOT_FOUND);
	assert_int_equal(progpath_resolve_in(p("path/noexec"), NULL, NULL, NULL, out, sizeof out),
			 PROGPATH_NOT_EXECUTABLE);
	/* a relative command needs an absolute base */
	assert_int_equal(progpath_resolve_in("bin/srv", NULL, NULL, NULL, out, sizeof out), PROGPATH_BAD_BASE);
	assert_int_equal(progpath_resolve_in("bin/srv", "home", NULL, NULL, out, sizeof out), PROGPATH_BAD_BASE);
	assert_int_equal(progpath_resolve_in("bin/srv", p("home"), NULL, NULL, out, 8), PROGPATH_TOO_LONG);
}

/* the real process: tests/unit is its own program directory, searched before PATH */
static void test_self(void **state)
{
	char dir[PATH_MAX], out[PATH_MAX], want[PATH_MAX + 32], dirs[PATH_MAX * 2], msg[2048];
	char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

	(void)state;
	assert_int_equal(progpath_self_dir(dir, sizeof dir), 0);
	assert_int_equal(progpath_self_dir(dir, 2), -1);
	assert_int_equal(progpath_self_dir(dir, sizeof dir), 0);
	snprintf(want, sizeof want, "%s/test_progpath", dir);
	setenv("PATH", "/nonexistent", 1);
	assert_int_equal(progpath_resolve("test_progpath", "/", out, sizeof out), PROGPATH_OK);
	assert_string_equal(out, want);
	assert_int_equal(progpath_dirs(NULL, dirs, sizeof dirs), 0);
	assert_string_equal(dirs, dir);
	assert_int_equal(progpath_dirs(p("co/cgi-bin"), dirs, sizeof dirs), 0);
	snprintf(want, sizeof want, "%s:%s:%s:%s:%s", p("co/cgi-bin"), p("co/mcp-server-sqlite"), p("co/broker"),
		 p("co/chat"), p("co/mcp-client"));
	assert_string_equal(dirs, want);
	assert_int_equal(progpath_dirs(p("co/cgi-bin"), dirs, 10), PROGPATH_TOO_LONG);
	/* the message says where it looked */
	assert_int_equal(progpath_resolve("mcp-server-nope", "/", out, sizeof out), PROGPATH_NOT_FOUND);
	progpath_explain(PROGPATH_NOT_FOUND, "mcp-server-nope", out, "/", msg, sizeof msg);
	assert_non_null(strstr(msg, "cannot run 'mcp-server-nope': not found in mcpgw's program directories ("));
	assert_non_null(strstr(msg, dir));
	assert_non_null(strstr(msg, "nor on PATH (/nonexistent)"));
	progpath_explain(PROGPATH_NOT_FOUND, "bin/x", "/h/bin/x", "/h", msg, sizeof msg);
	assert_non_null(strstr(msg, "/h/bin/x does not exist"));
	assert_non_null(strstr(msg, "MCPGW_HOME: /h"));
	progpath_explain(PROGPATH_NOT_EXECUTABLE, "x", "/p/x", "/", msg, sizeof msg);
	assert_string_equal(msg, "cannot run 'x': /p/x is not an executable file");
	progpath_explain(PROGPATH_EMPTY, "", "", "/", msg, sizeof msg);
	assert_string_equal(msg, "cannot run '': the command is empty");
	progpath_explain(PROGPATH_NOT_FOUND, "x", "x", "/", msg, 8);
	assert_int_equal(strlen(msg), 7);
	assert_string_equal(progpath_strerror(12345), "unknown error");
	if (path)
		setenv("PATH", path, 1);
	else
		unsetenv("PATH");
	free(path);
}

/* progpath_server: what the broker (and --check-config) checks before starting a server */
static void test_server(void **state)
{
	char path[PATH_MAX], dir[PATH_MAX], why[2048], want[PATH_MAX + 128];

	(void)state;
	assert_int_equal(chdir(p("path")), 0);
	assert_int_equal(progpath_server("bin/srv", NULL, p("home"), path, sizeof path, dir, sizeof dir, why, sizeof why),
			 PROGPATH_OK);
	assert_string_equal(dir, p("home"));
	assert_string_equal(path, p("home/bin/srv"));
	assert_int_equal(progpath_server("./srv", "bin", p("home"), path, sizeof path, dir, sizeof dir, why, sizeof why),
			 PROGPATH_OK);
	assert_string_equal(dir, p("home/bin"));
	assert_string_equal(path, p("home/bin/./srv"));
	/* a working directory that is missing, or a file */
	assert_int_equal(progpath_server("bin/srv", "data", p("home"), path, sizeof path, dir, sizeof dir, why,
					 sizeof why),
			 PROGPATH_BAD_WORKDIR);
	snprintf(want, sizeof want, "cannot run 'bin/srv': its working directory %s does not exist", p("home/data"));
	assert_string_equal(why, want);
	assert_int_equal(progpath_server("srv", p("home/cwdprog"), p("home"), path, sizeof path, dir, sizeof dir, why,
					 sizeof why),
			 PROGPATH_BAD_WORKDIR);
	assert_non_null(strstr(why, "is not a directory"));
	/* a command that is not there: the sentence says where it looked */
	assert_int_equal(progpath_server("no-such-server", NULL, p("home"), path, sizeof path, dir, sizeof dir, why,
					 sizeof why),
			 PROGPATH_NOT_FOUND);
	assert_non_null(strstr(why, "cannot run 'no-such-server': not found in mcpgw's program directories ("));
	assert_int_equal(progpath_server("bin/nope", NULL, p("home"), path, sizeof path, dir, sizeof dir, why, sizeof why),
			 PROGPATH_NOT_FOUND);
	snprintf(want, sizeof want, "cannot run 'bin/nope': %s does not exist", p("home/bin/nope"));
	assert_non_null(strstr(why, want));
	assert_int_equal(progpath_server("", NULL, p("home"), path, sizeof path, dir, sizeof dir, why, sizeof why),
			 PROGPATH_EMPTY);
	assert_string_equal(why, "cannot run '': the command is empty");
	/* no absolute home; why may be NULL */
	assert_int_equal(progpath_server("srv", "x", "home", path, sizeof path, dir, sizeof dir, why, sizeof why),
			 PROGPATH_BAD_BASE);
	assert_non_null(strstr(why, "no absolute base directory"));
	assert_int_equal(progpath_server("bin/nope", NULL, p("home"), path, sizeof path, dir, sizeof dir, NULL, 0),
			 PROGPATH_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_workdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_name_own_dirs_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_name_misses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
