/* changehint.c: the shared change counter and presence word: 64 bytes of a file in the state directory, mapped shared, loaded and changed atomically (see changehint.h). */
#include "core/changehint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/statedir.h"

#define CHANGEHINT_MAGIC 0x31746e6968676863ULL /* "chghint1": this layout */

/* the file: a cache line of its own */
struct changehint_file {
	uint64_t magic;
	uint64_t value;
	uint32_t presence; /* enum changehint_presence (files of an older build: 0, UNKNOWN) */
	char pad[44];
};

struct changehint {
	struct changehint_file *f;
	dev_t dev; /* the mapped file, to tell when its path names another */
	ino_t ino;
	char path[4400];
};

struct changehint *changehint_open(const char *state_dir, const char *name, char *err, size_t errlen)
{
	char path[4400];
	struct stat sb;
	struct changehint *h = NULL;
	void *p = MAP_FAILED;
	uint64_t zero = 0;
	int fd = -1;

	if (statedir_path(path, sizeof path, state_dir, name) < 0) {
		snprintf(err, errlen, "change hint: the state directory's path is too long");
		return NULL;
	}
	if ((fd = statedir_open(path, O_RDWR | O_CREAT, 0600)) < 0 || fstat(fd, &sb) < 0)
		goto sys;
	/* growing to the size is idempotent: processes racing to make it all agree */
	if ((size_t)sb.st_size < sizeof(struct changehint_file) && ftruncate(fd, sizeof(struct changehint_file)) < 0)
		goto sys;
	/* every block allocated now: a page first touched later on a full disk would be SIGBUS */
	if ((errno = posix_fallocate(fd, 0, sizeof(struct changehint_file))) != 0)
		goto sys;
	if ((p = mmap(NULL, sizeof(struct changehint_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto sys;
	close(fd);
	fd = -1;
	if (!__atomic_compare_exchange_n(&((struct changehint_file *)p)->magic, &zero, CHANGEHINT_MAGIC, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
	    zero != CHANGEHINT_MAGIC) {
		snprintf(err, errlen, "change hint: %s: not a hint file of this version; remove it", path);
		goto fail;
	}
	if (!(h = calloc(1, sizeof *h))) {
		snprintf(err, errlen, "change hint: out of memory");
		goto fail;
	}
	h->f = p;
	h->dev = sb.st_dev;
	h->ino = sb.st_ino;
	snprintf(h->path, sizeof h->path, "%s", path);
	return h;
sys:
	snprintf(err, errlen, "change hint: %s: %s", path, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap(p, sizeof(struct changehint_file));
	return NULL;
}

uint64_t changehint_read(const struct changehint *h)
{
	return __atomic_load_n(&h->f->value, __ATOMIC_ACQUIRE);
}

void changehint_bump(struct changehint *h)
{
	if (h)
		__atomic_add_fetch(&h->f->value, 1, __ATOMIC_RELEASE);
}

enum changehint_presence changehint_presence(const struct changehint *h)
{
	uint32_t v = __atomic_load_n(&h->f->presence, __ATOMIC_ACQUIRE);

	return v == CHANGEHINT_NONE ? CHANGEHINT_NONE : v == CHANGEHINT_SOME ? CHANGEHINT_SOME : CHANGEHINT_UNKNOWN;
}

void changehint_mark_some(struct changehint *h)
{
	if (h)
		__atomic_store_n(&h->f->presence, (uint32_t)CHANGEHINT_SOME, __ATOMIC_SEQ_CST);
}

void changehint_mark_none(struct changehint *h)
{
	uint32_t unknown = CHANGEHINT_UNKNOWN;

	if (h)
		(void)__atomic_compare_exchange_n(&h->f->presence, &unknown, (uint32_t)CHANGEHINT_NONE, 0,
						  __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

int changehint_replaced(const struct changehint *h)
{
	struct stat sb;

	return lstat(h->path, &sb) < 0 || sb.st_dev != h->dev || sb.st_ino != h->ino;
}

void changehint_close(struct changehint *h)
{
	if (!h)
		return;
	munmap(h->f, sizeof(struct changehint_file));
	free(h);
}
