/* conftrust.c: refuse configuration files owned by another user or writable by group or others. */
#include "core/conftrust.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *conftrust_user(uid_t uid, char *dst, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
		snprintf(dst, n, "%s", res->pw_name);
	else
		snprintf(dst, n, "uid %ld", (long)uid);
	return dst;
}

int conftrust_stat(const struct stat *st, const char *path, char *err, size_t errlen)
{
	uid_t me = geteuid();
	char owner[64], self[64];

	if (st->st_uid != me && st->st_uid != 0) {
		snprintf(err, errlen,
			 "%s is owned by %s, not by %s (who runs this) or root: refused, since its owner could make "
			 "mcpgw run programs as %s; use your own copy, or chown %s %s",
			 path, conftrust_user(st->st_uid, owner, sizeof owner), conftrust_user(me, self, sizeof self),
			 self, self, path);
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s is writable by %s (mode %04o): refused, since whoever can write it could make mcpgw run "
			 "programs as %s; fix: chmod go-w %s",
			 path, (st->st_mode & S_IWOTH) ? "everyone" : "its group", (unsigned)(st->st_mode & 07777),
			 conftrust_user(me, self, sizeof self), path);
		return -1;
	}
	return 0;
}

int conftrust_read(buf_t *b, const char *path, size_t max, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	struct stat st;

	if (fd < 0) {
		rc = errno == ENOENT ? 1 : -1;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0)
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
	else if (conftrust_stat(&st, path, err, errlen) == 0)
		rc = buf_read_fd(b, fd, path, max, err, errlen);
	close(fd);
	return rc;
}
