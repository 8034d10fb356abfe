/* capacity.c: the host-wide capacity of long requests: a file of 16-byte slot records in the state directory, mapped shared by every responder process; a slot is taken and given back with atomic operations on its record (no system call), a record names its holder by a holder id whose OFD lock (the kernel's, dropped with its process) says whether the holder still runs. */
#include "core/capacity.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/randid.h"
#include "core/statedir.h"

/* The file: a header of CAP_HEADER bytes (the magic, then the count of records held), then one
 * record of CAP_RECORD bytes per slot: the caller's digest (8 bytes; meaningful only while the
 * record is held) and the holder id (8 bytes, 0: free). A holder id h is alive while some open file
 * description holds the write lock of the byte CAP_LOCKS + h: each opener takes one at capacity_open
 * and keeps it until capacity_close or its process ends. The lock bytes lie beyond the end of the
 * file (fcntl(2) locks any offset), so the file stays small. */
#define CAP_MAGIC 0x3250414357504d43ull /* "CMPWCAP2" as a little-endian word */
#define CAP_HEADER 64
#define CAP_RECORD 16
#define CAP_LOCKS ((off_t)1 << 40)
#define CAP_IDS 64 /* holder ids whose liveness one strict count remembers (more: asked per record) */

struct cap_record {
	uint64_t digest;
	uint64_t holder;
};

struct capacity {
	int fd;
	int slots;
	int next;            /* where the next search for a free slot starts (spreads the slots) */
	uint64_t id;         /* this opener's holder id (its lock byte is CAP_LOCKS + id) */
	unsigned char *mine; /* slots this opener holds: one byte each */
	void *map;           /* the whole file, shared */
	size_t maplen;
	uint64_t *held;         /* the header's count of records held (dead holders' included) */
	struct cap_record *rec; /* slots records */
	pthread_mutex_t lock;
	int lock_ok; /* lock initialised */
};

/* cap_digest: the caller's 64-bit FNV-1a digest */
static uint64_t cap_digest(const char *caller)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)(caller ? caller : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

/* cap_lock_id: fcntl F_OFD_SETLK (F_WRLCK) or F_OFD_GETLK on holder id's lock byte; the fcntl
 * result, *locked (GETLK) 1 when another open file description holds it */
static int cap_lock_id(const struct capacity *c, int cmd, uint64_t id, int *locked)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = CAP_LOCKS + (off_t)(id & 0xffffffffu);
	fl.l_len = 1;
	if (fcntl(c->fd, cmd, &fl) < 0)
		return -1;
	if (locked)
		*locked = fl.l_type != F_UNLCK;
	return 0;
}

/* cap_free_record: record i made free by whoever saw it held by holder (a CAS, so that two who
 * reclaim one dead record count it once); 1 when this call freed it */
static int cap_free_record(struct capacity *c, int i, uint64_t holder)
{
	uint64_t want = holder;

	if (!__atomic_compare_exchange_n(&c->rec[i].holder, &want, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	(void)__atomic_fetch_sub(c->held, 1, __ATOMIC_ACQ_REL);
	return 1;
}

struct capacity *capacity_open(const char *path, int slots, char *err, size_t errlen)
{
	struct capacity *c;
	struct stat sb;
	off_t want = CAP_HEADER + (off_t)slots * CAP_RECORD;
	uint64_t magic = 0;
	int e = 0;

	if (slots < 1 || slots > CAPACITY_MAX) {
		snprintf(err, errlen, "capacity %d is not within 1..%d", slots, CAPACITY_MAX);
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof *c))) {
		c->fd = -1;
		c->map = MAP_FAILED;
	}
	if (!c || !(c->mine = calloc((size_t)slots, 1))) {
		snprintf(err, errlen, "capacity table %s: out of memory", path);
		capacity_close(c);
		errno = ENOMEM;
		return NULL;
	}
	c->slots = slots;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		snprintf(err, errlen, "capacity table %s: no mutex", path);
		capacity_close(c);
		errno = ENOMEM;
		return NULL;
	}
	c->lock_ok = 1;
	/* grown, never shrunk: a process configured with more slots may be using the rest; mapped up
	 * to what this opener uses */
	errno = 0;
	if ((c->fd = statedir_open(path, O_RDWR | O_CREAT, 0600)) < 0 || fstat(c->fd, &sb) < 0 ||
	    !S_ISREG(sb.st_mode) || (sb.st_size < want && ftruncate(c->fd, want) < 0) ||
	    (c->map = mmap(NULL, (size_t)want, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0)) == MAP_FAILED) {
		e = errno ? errno : EINVAL;
		snprintf(err, errlen, "capacity table %s: %s", path, strerror(e));
		goto fail;
	}
	c->maplen = (size_t)want;
	c->held = (uint64_t *)((unsigned char *)c->map + 8);
	c->rec = (struct cap_record *)((unsigned char *)c->map + CAP_HEADER);
	/* a new file gets the magic; any other word is not a table of this layout (an older one's
	 * records, or damage): refused rather than misread */
	if (!__atomic_compare_exchange_n((uint64_t *)c->map, &magic, CAP_MAGIC, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
	    magic != CAP_MAGIC) {
		e = EPROTO;
		snprintf(err, errlen,
			 "capacity table %s: not a table of this version (remove it while no responder runs)", path);
		goto fail;
	}
	/* a holder id no running opener holds: random, its lock byte taken without waiting */
	for (int tries = 0;; tries++) {
		uint32_t r;

		if (randid_fill(&r, sizeof r) < 0) {
			e = errno;
			snprintf(err, errlen, "capacity table %s: getrandom: %s", path, strerror(e));
			goto fail;
		}
		c->id = r ? r : 1;
		if (cap_lock_id(c, F_OFD_SETLK, c->id, NULL) == 0)
			break;
		if ((errno != EAGAIN && errno != EACCES) || tries == 16) {
			e = errno;
			snprintf(err, errlen, "capacity table %s: lock: %s", path, strerror(e));
			goto fail;
		}
	}
	/* records a crashed holder of the same id left: this opener holds none yet */
	for (int i = 0; i < slots; i++)
		if (__atomic_load_n(&c->rec[i].holder, __ATOMIC_ACQUIRE) == c->id)
			(void)cap_free_record(c, i, c->id);
	return c;
fail:
	capacity_close(c);
	errno = e;
	return NULL;
}

/* The holder ids seen by one strict count, with whether each is alive. */
struct cap_ids {
	uint64_t id[CAP_IDS];
	unsigned char alive[CAP_IDS];
	int n;
};

/* cap_alive: 1 when holder id is alive (this opener, or another open file description holds its
 * lock byte), 0 when not, -1 when the lock cannot be asked */
static int cap_alive(struct capacity *c, struct cap_ids *ids, uint64_t id)
{
	int i, locked;

	if (id == c->id)
		return 1;
	for (i = 0; i < ids->n; i++)
		if (ids->id[i] == id)
			return ids->alive[i];
	if (id > 0xffffffffu)
		locked = 0; /* not an id any opener takes */
	else if (cap_lock_id(c, F_OFD_GETLK, id, &locked) < 0)
		return -1;
	if (ids->n < CAP_IDS) {
		ids->id[ids->n] = id;
		ids->alive[ids->n++] = (unsigned char)locked;
	}
	return locked;
}

/* cap_count: every record read: those of holders that are gone made free, then the slots held, how
 * many of them the caller (digest) holds and the distinct callers holding slots (counting the
 * caller as one even when it holds none). 0, or -1 (a lock could not be asked). */
static int cap_count(struct capacity *c, uint64_t digest, int *held, int *by_caller, int *callers)
{
	uint64_t seen[64]; /* distinct digests found, up to the first 64: enough to size a share */
	int nseen = 0, over = 0;
	struct cap_ids ids;

	ids.n = 0;
	*held = *by_caller = 0;
	for (int i = 0; i < c->slots; i++) {
		uint64_t h = __atomic_load_n(&c->rec[i].holder, __ATOMIC_ACQUIRE), d;
		int a, j;

		if (!h)
			continue;
		if (!c->mine[i]) {
			if ((a = cap_alive(c, &ids, h)) < 0)
				return -1;
			if (!a) {
				(void)cap_free_record(c, i, h);
				continue;
			}
		}
		d = __atomic_load_n(&c->rec[i].digest, __ATOMIC_RELAXED);
		(*held)++;
		if (d == digest)
			(*by_caller)++;
		for (j = 0; j < nseen && seen[j] != d; j++)
			;
		if (j == nseen) {
			if (nseen < (int)(sizeof seen / sizeof *seen))
				seen[nseen++] = d;
			else
				over = 1;
		}
	}
	*callers = nseen + over + (*by_caller == 0);
	return 0;
}

/* cap_claim: a free record from c->next on made this opener's (a CAS on its holder word); its index,
 * or -1 when every record is held */
static int cap_claim(struct capacity *c, uint64_t digest)
{
	/* counted before the record is taken and uncounted if none is: a process that dies between
	 * the two leaves the count high (the strict way sooner), never low */
	(void)__atomic_fetch_add(c->held, 1, __ATOMIC_ACQ_REL);
	for (int k = 0; k < c->slots; k++) {
		int i = (c->next + k) % c->slots;
		uint64_t free_ = 0;

		if (c->mine[i] || __atomic_load_n(&c->rec[i].holder, __ATOMIC_RELAXED))
			continue;
		if (!__atomic_compare_exchange_n(&c->rec[i].holder, &free_, c->id, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue; /* another process took it first */
		__atomic_store_n(&c->rec[i].digest, digest, __ATOMIC_RELEASE);
		c->mine[i] = 1;
		c->next = (i + 1) % c->slots;
		return i;
	}
	(void)__atomic_fetch_sub(c->held, 1, __ATOMIC_ACQ_REL);
	return -1;
}

int capacity_take(struct capacity *c, const char *caller, int *slot)
{
	uint64_t digest = cap_digest(caller), n;
	int held, by_caller, callers, rc, i;

	pthread_mutex_lock(&c->lock);
	/* the quick way while more than an eighth of the slots are free by the header's count (which
	 * also counts the records of holders that died: it errs towards the strict way) */
	n = __atomic_load_n(c->held, __ATOMIC_ACQUIRE);
	if (n < (uint64_t)c->slots && (uint64_t)c->slots - n > (uint64_t)c->slots / 8 && (i = cap_claim(c, digest)) >= 0) {
		*slot = i;
		rc = CAPACITY_TAKEN;
		goto out;
	}
	/* the strict way: every record read, those of holders gone freed, the share decided */
	if (cap_count(c, digest, &held, &by_caller, &callers) < 0) {
		rc = -1;
		goto out;
	}
	if (held >= c->slots)
		rc = CAPACITY_FULL;
	else if (c->slots - held < c->slots / 8 && callers > 1 && by_caller >= c->slots / callers)
		rc = CAPACITY_OVER_SHARE;
	else if ((i = cap_claim(c, digest)) >= 0) {
		*slot = i;
		rc = CAPACITY_TAKEN;
	} else
		rc = CAPACITY_FULL;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* cap_give: slot back (c->lock held) */
static void cap_give(struct capacity *c, int slot)
{
	if (c->mine[slot]) {
		c->mine[slot] = 0;
		(void)cap_free_record(c, slot, c->id);
	}
}

void capacity_give(struct capacity *c, int slot)
{
	if (!c || slot < 0 || slot >= c->slots)
		return;
	pthread_mutex_lock(&c->lock);
	cap_give(c, slot);
	pthread_mutex_unlock(&c->lock);
}

int capacity_held(struct capacity *c)
{
	int n = 0;
	struct cap_ids ids;

	ids.n = 0;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->slots && n >= 0; i++) {
		uint64_t h = __atomic_load_n(&c->rec[i].holder, __ATOMIC_ACQUIRE);
		int a = !h ? 0 : c->mine[i] ? 1 : cap_alive(c, &ids, h);

		n = a < 0 ? -1 : n + a;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

int capacity_slots(const struct capacity *c)
{
	return c->slots;
}

void capacity_close(struct capacity *c)
{
	if (!c)
		return;
	if (c->map != MAP_FAILED) {
		if (c->rec)
			for (int i = 0; i < c->slots; i++)
				cap_give(c, i);
		(void)munmap(c->map, c->maplen);
	}
	if (c->fd >= 0)
		close(c->fd); /* drops the holder id's lock */
	if (c->lock_ok)
		(void)pthread_mutex_destroy(&c->lock);
	free(c->mine);
	free(c);
}
