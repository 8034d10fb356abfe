/* buf.h: a growable byte buffer, always NUL-terminated, for I/O and strings. */
#ifndef MCPGW_BUF_H
#define MCPGW_BUF_H

#include <stddef.h>

typedef struct buf {
	char *data; /* NULL until the first append; data[len] == '\0' after any append */
	size_t len;
	size_t cap;
} buf_t;

#define BUF_INIT \
	{ \
		NULL, 0, 0 \
	}

/* buf_reserve: make room for n more bytes (plus the NUL). 0 or -1 (ENOMEM). */
int buf_reserve(buf_t *b, size_t n);
/* buf_append: append n bytes. 0 or -1 (ENOMEM; b unchanged). */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* buf_consume: drop the first n bytes (n > len drops all). It moves the
 * rest: a reader that takes a buffer in many small pieces keeps an offset
 * and calls buf_compact instead (one buf_consume per piece is quadratic). */
void buf_consume(buf_t *b, size_t n);
#define BUF_KEEP_MAX (1u << 20) /* buf_compact gives back an emptied buffer's memory past this */

/* buf_compact: *off bytes at the front of b were read. When all of b was
 * read, b empties (its memory released when over BUF_KEEP_MAX: one large
 * message does not pin its size for the connection's life); when the read
 * part is at least as long as the unread part, the unread bytes move to
 * the front; in both cases *off becomes 0.
 * Otherwise nothing moves, so each byte moved was paid for by a byte read
 * and reading b in any pieces stays linear. Pointers into b are invalid
 * after a call that zeroed *off. */
void buf_compact(buf_t *b, size_t *off);
/* buf_reset: len = 0, keep memory. buf_free: release memory. */
void buf_reset(buf_t *b);
void buf_free(buf_t *b);
/* buf_read_file: read at most max + 1 bytes of path into b (so a caller
 * sees b->len > max when the file is larger than max). 0 on success, 1 when
 * the file does not exist (err filled too), -1 with err ("path: cannot ...: why"). */
int buf_read_file(buf_t *b, const char *path, size_t max, char *err, size_t errlen);
/* buf_read_fd: buf_read_file from the open fd (not closed; read from its
 * offset to its end); path names it in err. 0, or -1 with err. */
int buf_read_fd(buf_t *b, int fd, const char *path, size_t max, char *err, size_t errlen);

/* buf_steal: hand the data (malloc'd, NUL-terminated, never NULL unless ENOMEM) to the caller. */
char *buf_steal(buf_t *b);

#endif
