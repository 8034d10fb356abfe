/* conftrust.h: whether a configuration file (.env, servers_config.json) may be believed: who owns it and who may write it. */
#ifndef MCPGW_CONFTRUST_H
#define MCPGW_CONFTRUST_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/buf.h"

/* conftrust_stat: st (of the file named path) is one this process may take
 * configuration from: owned by this process's effective user or by root,
 * and not writable by its group or by others. Whoever can write a .env or a
 * servers_config.json can make the gateway run a program of their choosing
 * as this user, so OpenSSH's rule for ~/.ssh/config is the rule here
 * (readconf.c: "Bad owner or permissions"). 0, or -1 with err naming path
 * and the fix ("chmod go-w PATH", "chown USER PATH"). */
int conftrust_stat(const struct stat *st, const char *path, char *err, size_t errlen);

/* conftrust_user: the name of uid (getpwuid_r) into dst (n bytes, cut to
 * fit, NUL-terminated), "uid N" when it has none, for messages; returns dst. */
const char *conftrust_user(uid_t uid, char *dst, size_t n);

/* conftrust_read: read the configuration file path into b as
 * buf_read_file does (at most max + 1 bytes), after checking the file it
 * opened (fstat, so the file checked is the file read) with
 * conftrust_stat. 0; 1 when path does not exist (err filled too); -1 with
 * err when it cannot be read or may not be believed. */
int conftrust_read(buf_t *b, const char *path, size_t max, char *err, size_t errlen);

#endif
