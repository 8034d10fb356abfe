/* progpath.c: find mcpgw's install location from /proc/self/exe, and a stdio server's command from there, then PATH. */
#include "core/progpath.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buildconf.h"

#define PP_DIRS_MAX 6 /* own program directories: self, 4 in a checkout, or $PREFIX/bin */
#define PP_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define PP_INSTALL_SUFFIX "/lib/mcpgw/cgi-bin" /* the responders of `make install`; programs in $PREFIX/bin */

/* a checkout's program directories, as named in the tree; the last four also hold servers' and helpers' programs */
static const char *const pp_checkout_dirs[] = { "cgi-bin", "broker", "chat", "mcp-server-sqlite", "mcp-client", NULL };
static const char *const pp_checkout_progs[] = { "mcp-server-sqlite", "broker", "chat", "mcp-client", NULL };

struct pp_dirs {
	char v[PP_DIRS_MAX][PROGPATH_MAX];
	int n;
};

const char *progpath_strerror(int rc)
{
	switch (rc) {
	case PROGPATH_OK: return "found";
	case PROGPATH_EMPTY: return "the command is empty";
	case PROGPATH_NOT_FOUND: return "not found";
	case PROGPATH_NOT_EXECUTABLE: return "not an executable file";
	case PROGPATH_TOO_LONG: return "path too long";
	case PROGPATH_BAD_BASE: return "no absolute base directory";
	case PROGPATH_BAD_WORKDIR: return "its working directory is missing or not a directory";
	default: return "unknown error";
	}
}

/* pp_join: a + "/" + b into out; 0 or PROGPATH_TOO_LONG */
static int pp_join(char *out, size_t outlen, const char *a, size_t alen, const char *b)
{
	int n = snprintf(out, outlen, "%.*s/%s", (int)alen, a, b);

	return n < 0 || (size_t)n >= outlen ? PROGPATH_TOO_LONG : 0;
}

static int pp_copy(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(s);

	if (n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return PROGPATH_TOO_LONG;
	}
	memcpy(out, s, n + 1);
	return 0;
}

int progpath_self_dir(char *out, size_t outlen)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0)
		return -1;
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return -1;
	if (slash == self)
		slash++; /* an executable in "/" */
	*slash = '\0';
	return pp_copy(out, outlen, self) == 0 ? 0 : -1;
}

/* pp_parent: the length of dir's parent ("/a/b" -> 2 for "/a"; "/a" -> 1 for "/"); 0 when none */
static size_t pp_parent(const char *dir)
{
	const char *slash = strrchr(dir, '/');

	if (!slash)
		return 0;
	return slash == dir ? 1 : (size_t)(slash - dir);
}

static int pp_regular(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

enum progpath_layout progpath_layout(const char *exe_dir, char *root, size_t rootlen)
{
	char cand[PROGPATH_MAX];
	size_t plen;
	const char *base;

	if (root && rootlen)
		root[0] = '\0';
	if (!exe_dir || exe_dir[0] != '/' || !(plen = pp_parent(exe_dir)))
		return PROGPATH_INSTALLED;
	base = exe_dir + plen + (plen > 1);
	for (size_t i = 0; pp_checkout_dirs[i]; i++) {
		if (strcmp(base, pp_checkout_dirs[i]) != 0)
			continue;
		if (pp_join(cand, sizeof cand, exe_dir, plen == 1 ? 0 : plen, "servers_config.json") < 0 ||
		    !pp_regular(cand))
			return PROGPATH_INSTALLED;
		if (root && (plen >= rootlen || !rootlen))
			return PROGPATH_INSTALLED;
		if (root) {
			memcpy(root, exe_dir, plen);
			root[plen] = '\0';
		}
		return PROGPATH_CHECKOUT;
	}
	return PROGPATH_INSTALLED;
}

int progpath_defaults(const char *exe_dir, char *home, size_t homelen, char *state, size_t statelen)
{
	char self[PROGPATH_MAX], root[PROGPATH_MAX];
	size_t rlen;

	if (!exe_dir && progpath_self_dir(self, sizeof self) == 0)
		exe_dir = self;
	if (exe_dir && progpath_layout(exe_dir, root, sizeof root) == PROGPATH_CHECKOUT) {
		rlen = strlen(root);
		if (pp_copy(home, homelen, root) < 0)
			return PROGPATH_TOO_LONG;
		return pp_join(state, statelen, root, rlen == 1 ? 0 : rlen, "var");
	}
	if (pp_copy(home, homelen, MCPGW_SYSCONF) < 0 || pp_copy(state, statelen, MCPGW_STATEDIR) < 0)
		return PROGPATH_TOO_LONG;
	return 0;
}

int progpath_workdir(const char *cwd, const char *home, char *out, size_t outlen)
{
	size_t hlen;

	if (cwd && cwd[0] == '/')
		return pp_copy(out, outlen, cwd);
	if (!home || home[0] != '/') {
		if (outlen)
			out[0] = '\0';
		return PROGPATH_BAD_BASE;
	}
	if (!cwd || !*cwd)
		return pp_copy(out, outlen, home);
	hlen = strlen(home);
	while (hlen > 1 && home[hlen - 1] == '/')
		hlen--;
	return pp_join(out, outlen, home, hlen == 1 ? 0 : hlen, cwd);
}

/* pp_add: append dir to d unless it is already there */
static void pp_add(struct pp_dirs *d, const char *dir, size_t len)
{
	if (d->n >= PP_DIRS_MAX || len == 0 || len >= PROGPATH_MAX)
		return;
	for (int i = 0; i < d->n; i++)
		if (strlen(d->v[i]) == len && strncmp(d->v[i], dir, len) == 0)
			return;
	memcpy(d->v[d->n], dir, len);
	d->v[d->n][len] = '\0';
	d->n++;
}

/* pp_own_dirs: mcpgw's program directories for exe_dir (see progpath_dirs) */
static void pp_own_dirs(const char *exe_dir, struct pp_dirs *d)
{
	char self[PROGPATH_MAX], root[PROGPATH_MAX], cand[PROGPATH_MAX];
	size_t len;

	d->n = 0;
	if (!exe_dir && progpath_self_dir(self, sizeof self) == 0)
		exe_dir = self;
	if (!exe_dir || exe_dir[0] != '/')
		return;
	pp_add(d, exe_dir, strlen(exe_dir));
	if (progpath_layout(exe_dir, root, sizeof root) == PROGPATH_CHECKOUT) {
		len = strlen(root);
		for (size_t i = 0; pp_checkout_progs[i]; i++)
			if (pp_join(cand, sizeof cand, root, len == 1 ? 0 : len, pp_checkout_progs[i]) == 0)
				pp_add(d, cand, strlen(cand));
		return;
	}
	len = strlen(exe_dir);
	if (len > strlen(PP_INSTALL_SUFFIX) && strcmp(exe_dir + len - strlen(PP_INSTALL_SUFFIX), PP_INSTALL_SUFFIX) == 0 &&
	    pp_join(cand, sizeof cand, exe_dir, len - strlen(PP_INSTALL_SUFFIX), "bin") == 0)
		pp_add(d, cand, strlen(cand));
}

int progpath_dirs(const char *exe_dir, char *out, size_t outlen)
{
	struct pp_dirs d;
	size_t used = 0;

	if (!outlen)
		return PROGPATH_TOO_LONG;
	out[0] = '\0';
	pp_own_dirs(exe_dir, &d);
	for (int i = 0; i < d.n; i++) {
		int n = snprintf(out + used, outlen - used, "%s%s", i ? ":" : "", d.v[i]);

		if (n < 0 || (size_t)n >= outlen - used)
			return PROGPATH_TOO_LONG;
		used += (size_t)n;
	}
	return 0;
}

/* pp_try: candidate dir/name. 1: an executable regular file (copied to out);
 * 0: nothing there (a directory counts as nothing); -1: a regular file we
 * cannot run (kept in *seen when it is the first one); PROGPATH_TOO_LONG:
 * found, but out is too small */
static int pp_try(const char *dir, size_t dlen, const char *name, char *out, size_t outlen, char *seen, size_t seenlen)
{
	char cand[PROGPATH_MAX];
	struct stat st;

	if (pp_join(cand, sizeof cand, dir, dlen == 1 && dir[0] == '/' ? 0 : dlen, name) < 0 || stat(cand, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return 0;
	if (access(cand, X_OK) == 0)
		return pp_copy(out, outlen, cand) == 0 ? 1 : PROGPATH_TOO_LONG;
	if (!seen[0])
		(void)pp_copy(seen, seenlen, cand);
	return -1;
}

/* pp_search: a bare name in the own directories, then PATH */
static int pp_search(const char *name, const char *exe_dir, const char *path_env, char *out, size_t outlen)
{
	struct pp_dirs d;
	char seen[PROGPATH_MAX] = "";
	const char *p = path_env ? path_env : PP_DEFAULT_PATH;

	int rc;

	pp_own_dirs(exe_dir, &d);
	for (int i = 0; i < d.n; i++)
		if ((rc = pp_try(d.v[i], strlen(d.v[i]), name, out, outlen, seen, sizeof seen)) > 0 ||
		    rc == PROGPATH_TOO_LONG)
			return rc > 0 ? PROGPATH_OK : rc;
	while (*p) {
		size_t len = strcspn(p, ":");

		if (len && p[0] == '/' &&
		    ((rc = pp_try(p, len, name, out, outlen, seen, sizeof seen)) > 0 || rc == PROGPATH_TOO_LONG))
			return rc > 0 ? PROGPATH_OK : rc;
		p += len + (p[len] == ':');
	}
	if (seen[0]) {
		(void)pp_copy(out, outlen, seen);
		return PROGPATH_NOT_EXECUTABLE;
	}
	return pp_copy(out, outlen, name) < 0 ? PROGPATH_TOO_LONG : PROGPATH_NOT_FOUND;
}

/* pp_path: a command with a '/': as given, or against dir */
static int pp_path(const char *cmd, const char *dir, char *out, size_t outlen)
{
	struct stat st;
	size_t dlen;
	int rc;

	if (cmd[0] == '/') {
		rc = pp_copy(out, outlen, cmd);
	} else if (!dir || dir[0] != '/') {
		(void)pp_copy(out, outlen, cmd);
		return PROGPATH_BAD_BASE;
	} else {
		dlen = strlen(dir);
		while (dlen > 1 && dir[dlen - 1] == '/')
			dlen--;
		rc = pp_join(out, outlen, dir, dlen == 1 ? 0 : dlen, cmd);
	}
	if (rc < 0)
		return rc;
	if (stat(out, &st) < 0)
		return PROGPATH_NOT_FOUND;
	return S_ISREG(st.st_mode) && access(out, X_OK) == 0 ? PROGPATH_OK : PROGPATH_NOT_EXECUTABLE;
}

int progpath_resolve_in(const char *cmd, const char *dir, const char *exe_dir, const char *path_env, char *out,
			size_t outlen)
{
	if (!outlen)
		return PROGPATH_TOO_LONG;
	out[0] = '\0';
	if (!cmd || !*cmd)
		return PROGPATH_EMPTY;
	if (strlen(cmd) >= PROGPATH_MAX)
		return PROGPATH_TOO_LONG;
	if (strchr(cmd, '/'))
		return pp_path(cmd, dir, out, outlen);
	return pp_search(cmd, exe_dir, path_env, out, outlen);
}

int progpath_resolve(const char *cmd, const char *dir, char *out, size_t outlen)
{
	return progpath_resolve_in(cmd, dir, NULL, getenv("PATH"), out, outlen);
}

void progpath_explain(int rc, const char *cmd, const char *path, const char *dir, char *msg, size_t msglen)
{
	char dirs[1024];
	const char *env = getenv("PATH");

	if (!msglen)
		return;
	if (!cmd)
		cmd = "";
	if (rc == PROGPATH_EMPTY || rc == PROGPATH_TOO_LONG || rc == PROGPATH_BAD_BASE) {
		snprintf(msg, msglen, "cannot run '%.300s': %s", cmd, progpath_strerror(rc));
	} else if (rc == PROGPATH_NOT_EXECUTABLE) {
		snprintf(msg, msglen, "cannot run '%.300s': %.1000s is not an executable file", cmd, path ? path : cmd);
	} else if (strchr(cmd, '/')) {
		snprintf(msg, msglen, "cannot run '%.300s': %.1000s does not exist%s%.1000s%s", cmd, path ? path : cmd,
			 cmd[0] == '/' ? "" : " (a relative command is taken from the server's cwd, default MCPGW_HOME: ",
			 cmd[0] == '/' ? ""
			 : dir         ? dir
				       : "?",
			 cmd[0] == '/' ? "" : ")");
	} else {
		(void)progpath_dirs(NULL, dirs, sizeof dirs);
		snprintf(msg, msglen,
			 "cannot run '%.300s': not found in mcpgw's program directories (%s) nor on PATH (%.1000s)",
			 cmd, *dirs ? dirs : "unknown", env ? env : PP_DEFAULT_PATH " (unset)");
	}
}

int progpath_server(const char *cmd, const char *cwd, const char *home, char *path, size_t pathlen, char *dir,
		    size_t dirlen, char *why, size_t whylen)
{
	struct stat st;
	int rc = progpath_workdir(cwd, home, dir, dirlen);
	char none[1];

	if (!why || !whylen) {
		why = none;
		whylen = sizeof none;
	}
	if (pathlen)
		path[0] = '\0';
	if (rc != PROGPATH_OK) {
		snprintf(why, whylen, "cannot run '%.300s': cwd '%.1000s': %s", cmd ? cmd : "", cwd ? cwd : "",
			 progpath_strerror(rc));
		return rc;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "cannot run '%.300s': its working directory %.1000s %s", cmd ? cmd : "", dir,
			 stat(dir, &st) < 0 ? "does not exist" : "is not a directory");
		return PROGPATH_BAD_WORKDIR;
	}
	if ((rc = progpath_resolve(cmd, dir, path, pathlen)) != PROGPATH_OK)
		progpath_explain(rc, cmd, path, dir, why, whylen);
	return rc;
}
