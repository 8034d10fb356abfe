/* check.c: mcpgw-broker --check-config: load servers_config.json and make sure every stdio server's command can be run. */
#include "broker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK_PATH_SHOWN 200 /* bytes of $PATH shown in a message */

/* check_runnable: 0 when path is a regular file we may execute; -1 with
 * errno ENOENT (nothing there) or EACCES (there, but a directory, not a
 * regular file or not executable) */
static int check_runnable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/* check_try: path = dir/name when it fits; check_runnable's result. The
 * first file found there that cannot be run is kept in unrunnable (when
 * that is still "") */
static int check_try(const char *dir, const char *name, char *path, size_t pathlen, char *unrunnable, size_t ulen)
{
	if ((size_t)snprintf(path, pathlen, "%s/%s", dir, name) >= pathlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (check_runnable(path) == 0)
		return 0;
	if (errno == EACCES && !*unrunnable)
		snprintf(unrunnable, ulen, "%s", path);
	return -1;
}

/* check_find_command: the executable a stdio server's command cmd names, the
 * way the broker is meant to find it (see README, servers_config.json):
 *   - with a '/': absolute as given, relative taken against workdir (the
 *     server's "cwd", else MCPGW_HOME); no PATH search;
 *   - a bare name: mcpgw's own program directories first (the directory of
 *     this executable and, in a checkout, ../mcp-server-sqlite), then the
 *     absolute entries of $PATH ("/usr/local/bin:/usr/bin:/bin" when unset).
 * 0 with the absolute path in out. -1 otherwise, with msg (msglen bytes)
 * saying what was looked at: "command 'x' not found (looked in /a, /b and
 * PATH=/usr/bin:/bin)", or "... is not executable". To be merged into the
 * one lookup function the broker spawns with. */
static int check_find_command(const char *cmd, const char *workdir, char *out, size_t outlen, char *msg, size_t msglen)
{
	char self[PATH_MAX], dirs[2][PATH_MAX], path_copy[8192], unrunnable[PATH_MAX + 300] = "", *save = NULL, *dir;
	const char *path_env = getenv("PATH"), *slash;
	int ndirs = 0;
	ssize_t n;

	if (strchr(cmd, '/')) {
		int fits = cmd[0] == '/' ? (size_t)snprintf(out, outlen, "%s", cmd) < outlen
					 : (size_t)snprintf(out, outlen, "%s/%s", workdir, cmd) < outlen;

		if (fits && check_runnable(out) == 0)
			return 0;
		n = snprintf(msg, msglen, "command '%s' %s%s%s%s", cmd, fits && errno == EACCES ? "is not executable" : "not found",
			     cmd[0] == '/' ? "" : " (looked for ", cmd[0] == '/' ? "" : out, cmd[0] == '/' ? "" : ")");
		return -1; /* a message cut to msglen is still the message */
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0 && (self[n] = '\0', slash = strrchr(self, '/')) != NULL && slash > self) {
		self[slash - self] = '\0';
		snprintf(dirs[ndirs++], sizeof dirs[0], "%s", self);
		/* a checkout: the bundled server beside broker/ */
		if ((size_t)snprintf(path_copy, sizeof path_copy, "%s/../mcp-server-sqlite", self) < sizeof path_copy &&
		    realpath(path_copy, dirs[ndirs]) != NULL)
			ndirs++;
	}
	for (int i = 0; i < ndirs; i++)
		if (check_try(dirs[i], cmd, out, outlen, unrunnable, sizeof unrunnable) == 0)
			return 0;
	if (!path_env)
		path_env = "/usr/local/bin:/usr/bin:/bin";
	snprintf(path_copy, sizeof path_copy, "%s", path_env);
	for (dir = strtok_r(path_copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
		if (dir[0] == '/' && check_try(dir, cmd, out, outlen, unrunnable, sizeof unrunnable) == 0)
			return 0;
	if (*unrunnable)
		n = snprintf(msg, msglen, "command '%s' found as %s, which is not executable", cmd, unrunnable);
	else
		n = snprintf(msg, msglen, "command '%s' not found (looked in %s%s%s%sPATH=%.*s%s)", cmd,
			     ndirs ? dirs[0] : "", ndirs > 1 ? ", " : "", ndirs > 1 ? dirs[1] : "", ndirs ? " and " : "",
			     CHECK_PATH_SHOWN, path_env, strlen(path_env) > CHECK_PATH_SHOWN ? "..." : "");
	if (n < 0 && msglen > 0)
		snprintf(msg, msglen, "command '%.64s' not found", cmd);
	return -1; /* a message cut to msglen is still the message */
}

/* check_server: one stdio server's command and cwd; 0, or -1 with the problem printed */
static int check_server(const struct settings *set, const struct cfg_server *s)
{
	char workdir[PATH_MAX + 8], found[PATH_MAX + 300], msg[PATH_MAX + 700];
	struct stat st;

	if (s->cwd && s->cwd[0] != '/')
		snprintf(workdir, sizeof workdir, "%s/%s", set->home, s->cwd);
	else
		snprintf(workdir, sizeof workdir, "%s", s->cwd ? s->cwd : set->home);
	if (s->cwd && (stat(workdir, &st) < 0 || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "%s: server '%s': cwd '%s' is not a directory\n", set->config, s->name, workdir);
		return -1;
	}
	if (check_find_command(s->command, workdir, found, sizeof found, msg, sizeof msg) == 0)
		return 0;
	fprintf(stderr, "%s: server '%s': %s%s\n", set->config, s->name, msg,
		strchr(s->command, ' ') ? "; a whole command line? put the program in \"command\" and the rest in \"args\""
					: "");
	return -1;
}

int check_config(const struct settings *set)
{
	char err[4600];
	struct cfg cfg;
	size_t disabled = 0;
	int bad = 0;

	if (cfg_load(set->config, &cfg, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < cfg.nservers; i++) {
		if (cfg.servers[i].disabled)
			disabled++;
		else if (cfg.servers[i].transport == CFG_STDIO && check_server(set, &cfg.servers[i]) < 0)
			bad++;
	}
	if (bad == 0 && disabled)
		printf("%s: ok, %zu server%s (%zu disabled)\n", set->config, cfg.nservers, cfg.nservers == 1 ? "" : "s",
		       disabled);
	else if (bad == 0)
		printf("%s: ok, %zu server%s\n", set->config, cfg.nservers, cfg.nservers == 1 ? "" : "s");
	else
		fprintf(stderr, "%s: %d of %zu server%s cannot start\n", set->config, bad, cfg.nservers,
			cfg.nservers == 1 ? "" : "s");
	cfg_free(&cfg);
	if (fflush(stdout) != 0)
		return 1;
	return bad ? 1 : 0;
}
