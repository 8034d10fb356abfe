/* progpath.h: where mcpgw's own programs are installed, and how a stdio server's command and working directory are found from there, never from the process's working directory. */
#ifndef MCPGW_PROGPATH_H
#define MCPGW_PROGPATH_H

#include <stddef.h>

#define PROGPATH_MAX 4096 /* longest path this module builds or returns, with its NUL */

/* Results of progpath_resolve and progpath_workdir (errors are values < 0). */
enum progpath_err {
	PROGPATH_OK = 0,
	PROGPATH_EMPTY = -1,          /* the command is "" (or NULL) */
	PROGPATH_NOT_FOUND = -2,      /* no such file where it was looked for */
	PROGPATH_NOT_EXECUTABLE = -3, /* found, but a directory, not a regular file, or not executable by us */
	PROGPATH_TOO_LONG = -4,       /* a path would not fit in PROGPATH_MAX or in out */
	PROGPATH_BAD_BASE = -5,       /* the base directory given is NULL or not absolute */
	PROGPATH_BAD_WORKDIR = -6     /* a server's working directory is missing or not a directory */
};

/* What kind of tree the running executable sits in (progpath_layout). */
enum progpath_layout {
	PROGPATH_INSTALLED =
		0, /* anything else: `make install` ($PREFIX/bin, $PREFIX/lib/mcpgw/cgi-bin), a copied cgi-bin */
	PROGPATH_CHECKOUT =
		1 /* <root>/{cgi-bin,broker,chat,mcp-server-sqlite,mcp-client}/ with <root>/servers_config.json */
};

/* progpath_strerror: a short English phrase for a progpath_err ("not found", ...). Static string. */
const char *progpath_strerror(int rc);

/* progpath_self_dir: the directory of this process's executable
 * (/proc/self/exe, symlinks resolved) into out. 0, or -1 when it cannot be
 * read or does not fit. */
int progpath_self_dir(char *out, size_t outlen);

/* progpath_layout: the layout of the tree exe_dir (an absolute directory
 * holding an mcpgw executable) belongs to. PROGPATH_CHECKOUT when exe_dir is
 * one of a checkout's program directories (its last component is cgi-bin,
 * broker, chat, mcp-server-sqlite or mcp-client) and its parent holds a
 * regular file servers_config.json: root gets that parent. Otherwise
 * PROGPATH_INSTALLED and root gets "". root may be NULL. */
enum progpath_layout progpath_layout(const char *exe_dir, char *root, size_t rootlen);

/* progpath_defaults: the default MCPGW_HOME and MCPGW_STATE_DIR for an
 * executable in exe_dir (NULL: this process's, progpath_self_dir): in a
 * checkout its root and <root>/var; otherwise the directories compiled in
 * by `make` (SYSCONF, default /etc/mcpgw, and STATEDIR, default
 * /var/lib/mcpgw; see lib/buildconf.h), also when /proc/self/exe cannot be
 * read. Never the working directory. 0, or PROGPATH_TOO_LONG. */
int progpath_defaults(const char *exe_dir, char *home, size_t homelen, char *state, size_t statelen);

/* progpath_workdir: the working directory of a stdio MCP server whose
 * configured "cwd" is cwd (NULL or "": none): home when none, cwd itself
 * when absolute, else home/cwd. home must be absolute. Nothing is checked
 * on disk. 0, PROGPATH_BAD_BASE or PROGPATH_TOO_LONG; out holds the path on 0. */
int progpath_workdir(const char *cwd, const char *home, char *out, size_t outlen);

/* progpath_resolve: the executable a stdio server's "command" cmd names,
 * as an absolute path into out:
 *   - cmd with a '/': absolute as given, relative taken against dir (the
 *     server's working directory, progpath_workdir: MCPGW_HOME unless the
 *     server sets "cwd"); no PATH search;
 *   - a bare name: first mcpgw's own program directories (progpath_dirs),
 *     then the absolute entries of $PATH (empty and relative entries, which
 *     would mean the working directory, are skipped; an unset PATH is
 *     "/usr/local/bin:/usr/bin:/bin"). ".", ".." and other names that are
 *     directories there are never a match.
 * The first regular file with execute permission wins. 0 with out set;
 * otherwise an enum progpath_err: PROGPATH_NOT_EXECUTABLE when only a file
 * that cannot be run was found (out: that file), PROGPATH_NOT_FOUND (out:
 * cmd for a bare name, the path tried for one with a '/'), PROGPATH_EMPTY,
 * PROGPATH_BAD_BASE (dir NULL or relative, only for a cmd with a '/'),
 * PROGPATH_TOO_LONG. out may be "" after PROGPATH_TOO_LONG. Thread-safe
 * (reads the environment). */
int progpath_resolve(const char *cmd, const char *dir, char *out, size_t outlen);

/* progpath_resolve_in: progpath_resolve for an executable in exe_dir (NULL:
 * this process's) and the search path path_env (NULL: unset), for tests and
 * for tools that check another program's view. */
int progpath_resolve_in(const char *cmd, const char *dir, const char *exe_dir, const char *path_env, char *out,
			size_t outlen);

/* progpath_dirs: mcpgw's own program directories for an executable in
 * exe_dir (NULL: this process's), in lookup order, as one string
 * "dir:dir:..." into out (for messages): exe_dir itself; in a checkout
 * <root>/mcp-server-sqlite, <root>/broker, <root>/chat, <root>/mcp-client;
 * from $PREFIX/lib/mcpgw/cgi-bin also $PREFIX/bin. 0, or PROGPATH_TOO_LONG
 * (out cut). "" when exe_dir is unknown. */
int progpath_dirs(const char *exe_dir, char *out, size_t outlen);

/* progpath_server: everything the broker checks before it starts a stdio
 * server whose config says "command": cmd and "cwd": cwd (NULL: none),
 * with MCPGW_HOME home (absolute): its working directory (progpath_workdir)
 * into dir, which must be an existing directory, and its executable
 * (progpath_resolve against dir) into path. 0, or an enum progpath_err
 * with why (if non-NULL) holding one sentence for a log, last_error or
 * `mcpgw-broker --check-config`, e.g. "cannot run 'x': not found in ...".
 * The broker calls exactly this, so a check and a start agree. */
int progpath_server(const char *cmd, const char *cwd, const char *home, char *path, size_t pathlen, char *dir,
		    size_t dirlen, char *why, size_t whylen);

/* progpath_explain: one sentence for a failed progpath_resolve of cmd
 * (rc its result, path its out, dir its dir), naming where it looked, e.g.
 * "cannot run 'x': not found in mcpgw's program directories (/a:/b) nor on
 * PATH (/usr/bin:/bin)". Into msg, cut to msglen. */
void progpath_explain(int rc, const char *cmd, const char *path, const char *dir, char *msg, size_t msglen);

#endif
