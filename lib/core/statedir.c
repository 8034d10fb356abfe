/* statedir.c: the state directory: its files' paths (statedir.h names them), its owner and mode checked, files created there without following links. */
#include "core/statedir.h"
#include "core/conftrust.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SD_PATH_MAX 4352

int statedir_path(char *out, size_t outlen, const char *state_dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", state_dir, name);

	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int statedir_check(const char *dir, char *err, size_t errlen)
{
	char owner[64], self[64];
	struct stat st;

	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "the state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the state directory %s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "the state directory %s is owned by %s, not by %s who runs this: refused (its owner could "
			 "plant links to your files there); set MCPGW_STATE_DIR to a directory of your own, or chown %s %s",
			 dir, conftrust_user(st.st_uid, owner, sizeof owner),
			 conftrust_user(geteuid(), self, sizeof self), self, dir);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "the state directory %s is writable by %s (mode %04o): refused (others could plant links or "
			 "swap its files); fix: chmod go-w %s",
			 dir, (st.st_mode & S_IWOTH) ? "everyone" : "its group", (unsigned)(st.st_mode & 07777), dir);
		return -1;
	}
	return 0;
}

int statedir_make(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "the state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return statedir_check(dir, err, errlen);
}

int statedir_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode);
}

int statedir_replace(const char *path, const void *data, size_t len)
{
	char tmp[SD_PATH_MAX];
	const char *p = data;
	int fd, e;

	if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) /* O_CREAT | O_EXCL, mode 0600 */
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto err;
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		fd = -1;
		goto err;
	}
	if (rename(tmp, path) < 0) {
		fd = -1;
		goto err;
	}
	return 0;
err:
	e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}
