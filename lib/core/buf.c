/* buf.c: growable byte buffer. */
#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int buf_reserve(buf_t *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > ((size_t)-1) / 2 - b->len)
		return -1;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(buf_t *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(buf_t *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void buf_compact(buf_t *b, size_t *off)
{
	if (*off >= b->len) {
		*off = 0;
		if (b->cap > BUF_KEEP_MAX)
			buf_free(b);
		else
			buf_reset(b);
	} else if (*off >= b->len - *off) {
		buf_consume(b, *off);
		*off = 0;
	}
}

void buf_reset(buf_t *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(buf_t *b)
{
	char *p;

	if (!b->data && buf_reserve(b, 0) < 0)
		return NULL;
	b->data[b->len] = '\0';
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int buf_read_file(buf_t *b, const char *path, size_t max, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), missing = errno == ENOENT, rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return missing ? 1 : -1;
	}
	rc = buf_read_fd(b, fd, path, max, err, errlen);
	close(fd);
	return rc;
}

int buf_read_fd(buf_t *b, int fd, const char *path, size_t max, char *err, size_t errlen)
{
	ssize_t n;

	while (b->len <= max) {
		size_t want = max + 1 - b->len < 65536 ? max + 1 - b->len : 65536;

		if (buf_reserve(b, want) < 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			return -1;
		}
		n = read(fd, b->data + b->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	if (buf_reserve(b, 0) < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	b->data[b->len] = '\0';
	return 0;
}
