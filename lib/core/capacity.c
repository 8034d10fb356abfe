/* capacity.c: the host-wide capacity of long requests: a file of 16-byte slot records in the state directory, a slot held by an OFD lock on its record (the kernel's, dropped with its process), the record naming its caller for the fair share. */
#include "core/capacity.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/statedir.h"

#define CAP_RECORD 16 /* bytes per slot: the caller's digest (8), the holder's pid (4) and start time (4) */
#define CAP_PIDS 64   /* holders' pids looked up per capacity_take (more: their slots' locks are asked) */

struct capacity {
	int fd;
	int slots;
	int next;            /* where the next search for a free slot starts (spreads the slots) */
	unsigned char *mine; /* slots this process holds: one byte each (its own OFD locks never conflict
			      * with each other, so the process must know them itself) */
	uint64_t *table;     /* scratch: the records read by capacity_take */
	uint32_t start;      /* this process's start time (cap_start_time), 0: not known */
	uint32_t pid;        /* this process's, at capacity_open (a table is not used across fork) */
	pthread_mutex_t lock;
	int lock_ok; /* lock initialised */
};

/* cap_digest: the caller's 64-bit FNV-1a digest, never 0 (0 marks a free record) */
static uint64_t cap_digest(const char *caller)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)(caller ? caller : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ? h : 1;
}

/* cap_start_time: when process pid started, in clock ticks since boot (proc(5), /proc/PID/stat,
 * field 22 "starttime"), its low 32 bits; 0 when not known (no such process, /proc not mounted or
 * hidden from this process, a field that does not parse). A pid names the same process as long as
 * its start time is the same: a pid reused after its holder crashed has another. */
static uint32_t cap_start_time(uint32_t pid)
{
	char path[32], b[1024], *p, *end;
	unsigned long long v;
	ssize_t n;
	int fd;

	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/stat");
	else
		snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, b, sizeof b - 1);
	(void)close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses, the last ')' ends it;
	 * from state (field 3) on, starttime is the 20th field */
	if (!(p = strrchr(b, ')')))
		return 0;
	p++;
	for (int field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
	}
	errno = 0;
	v = strtoull(p, &end, 10);
	if (end == p || errno != 0)
		return 0;
	return (uint32_t)v ? (uint32_t)v : 1; /* 0 means not known */
}

/* cap_lock: fcntl F_OFD_SETLK (type F_WRLCK or F_UNLCK) or F_OFD_GETLK on slot's record; the fcntl result */
static int cap_lock(const struct capacity *c, int cmd, short type, int slot, struct flock *out)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)slot * CAP_RECORD;
	fl.l_len = CAP_RECORD;
	if (fcntl(c->fd, cmd, &fl) < 0)
		return -1;
	if (out)
		*out = fl;
	return 0;
}

/* cap_held_by_other: 1 when another process holds slot, 0 when nobody does, -1 on error */
static int cap_held_by_other(const struct capacity *c, int slot)
{
	struct flock fl;

	if (cap_lock(c, F_OFD_GETLK, F_WRLCK, slot, &fl) < 0)
		return -1;
	return fl.l_type != F_UNLCK;
}

/* cap_write: slot's record set to digest, this process's pid and start time (digest 0: free); 0 or -1 */
static int cap_write(const struct capacity *c, int slot, uint64_t digest)
{
	unsigned char rec[CAP_RECORD];
	uint32_t pid = digest ? c->pid : 0, start = digest ? c->start : 0;

	memset(rec, 0, sizeof rec);
	memcpy(rec, &digest, sizeof digest);
	memcpy(rec + sizeof digest, &pid, sizeof pid);
	memcpy(rec + sizeof digest + sizeof pid, &start, sizeof start);
	return pwrite(c->fd, rec, sizeof rec, (off_t)slot * CAP_RECORD) == (ssize_t)sizeof rec ? 0 : -1;
}

struct capacity *capacity_open(const char *path, int slots, char *err, size_t errlen)
{
	struct capacity *c;
	struct stat sb;
	off_t want = (off_t)slots * CAP_RECORD;

	if (slots < 1 || slots > CAPACITY_MAX) {
		snprintf(err, errlen, "capacity %d is not within 1..%d", slots, CAPACITY_MAX);
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof *c)))
		c->fd = -1;
	if (!c || !(c->mine = calloc((size_t)slots, 1)) || !(c->table = calloc((size_t)slots, CAP_RECORD))) {
		snprintf(err, errlen, "capacity table %s: out of memory", path);
		capacity_close(c);
		errno = ENOMEM;
		return NULL;
	}
	c->slots = slots;
	c->start = cap_start_time(0);
	c->pid = (uint32_t)getpid();
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		snprintf(err, errlen, "capacity table %s: no mutex", path);
		capacity_close(c);
		return NULL;
	}
	c->lock_ok = 1;
	/* grown, never shrunk: a process configured with more slots may be using the rest */
	errno = 0;
	if ((c->fd = statedir_open(path, O_RDWR | O_CREAT, 0600)) < 0 || fstat(c->fd, &sb) < 0 ||
	    !S_ISREG(sb.st_mode) || (sb.st_size < want && ftruncate(c->fd, want) < 0)) {
		int e = errno ? errno : EINVAL;

		snprintf(err, errlen, "capacity table %s: %s", path, strerror(e));
		capacity_close(c);
		errno = e;
		return NULL;
	}
	return c;
}

/* The holders seen by one count of capacity_take: whether each runs (quick: kill(pid, 0)), or each
 * pid's start time now (strict: cap_start_time; 0: not running, or not known). */
struct cap_pids {
	uint32_t pid[CAP_PIDS];
	uint32_t now[CAP_PIDS]; /* quick: 1 runs, 0 not; strict: its start time */
	int n;
	int strict;
};

/* cap_alive: 1 when the process that wrote a record (pid, start) is taken to run, 0 when not or
 * when that is not known (more pids than CAP_PIDS, a process this one cannot see: the slot's lock
 * then decides). Quick: a process runs as pid (kill(2): cheap; a pid reused since a holder crashed
 * passes). Strict: a process runs as pid and started at start (proc(5): its /proc/PID/stat read,
 * which costs the kernel a walk of the process's threads: asked only before a refusal). */
static int cap_alive(struct cap_pids *p, uint32_t pid, uint32_t start)
{
	int i;

	if (pid == 0 || pid > 0x7fffffff || (p->strict && start == 0))
		return 0;
	for (i = 0; i < p->n; i++)
		if (p->pid[i] == pid)
			return p->strict ? p->now[i] == start : (int)p->now[i];
	if (p->n == CAP_PIDS)
		return 0;
	p->pid[i] = pid;
	p->now[i] = p->strict ? cap_start_time(pid) : (kill((pid_t)pid, 0) == 0 || errno == EPERM);
	p->n++;
	return p->strict ? p->now[i] == start : (int)p->now[i];
}

/* cap_count: from the records just read, the slots held and how many of them caller holds, and the
 * distinct callers holding slots (counting caller as one even when it holds none). A record names
 * its holder (pid and start time): one whose process still runs is held (a slot is taken lock
 * first, and given back record first, before its lock); the lock of any other record is asked (its
 * process died before it wrote the record free, its pid names another process since, or it is one
 * this process cannot see). 0 or -1 (an fcntl failed). */
static int cap_count(struct capacity *c, uint64_t digest, struct cap_pids *pids, int *held, int *by_caller, int *callers)
{
	uint64_t seen[64]; /* distinct digests found, up to the first 64: enough to size a share */
	int nseen = 0, over = 0;
	uint32_t self = c->pid;

	*held = *by_caller = 0;
	for (int i = 0; i < c->slots; i++) {
		uint64_t d = c->table[2 * i];
		uint32_t pid, start;
		int j;

		if (!d)
			continue;
		memcpy(&pid, &c->table[2 * i + 1], sizeof pid);
		memcpy(&start, (const unsigned char *)&c->table[2 * i + 1] + sizeof pid, sizeof start);
		/* a record naming this process that it does not hold: another opener's of the same
		 * file (its OFD lock is its own), or a stale one: the lock decides */
		if (!c->mine[i] && (pid == self || !cap_alive(pids, pid, start))) {
			int h = cap_held_by_other(c, i);

			if (h < 0)
				return -1;
			if (!h) {
				c->table[2 * i] = 0; /* free for the search below */
				continue;
			}
		}
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

int capacity_take(struct capacity *c, const char *caller, int *slot)
{
	uint64_t digest = cap_digest(caller);
	size_t len = (size_t)c->slots * CAP_RECORD;
	int held, by_caller, callers, rc = CAPACITY_FULL;
	struct cap_pids pids;

	pthread_mutex_lock(&c->lock);
	/* the quick count (a holder whose pid runs holds its slot: one kill(2) per holding process),
	 * and before a refusal the strict one (the pid with its start time: one /proc read per holding
	 * process; a pid reused since its holder crashed does not keep a slot from being taken). The
	 * lock is asked only of the records neither count can vouch for. */
	for (int strict = 0; strict < 2; strict++) {
		pids.n = 0;
		pids.strict = strict;
		if (pread(c->fd, c->table, len, 0) != (ssize_t)len) {
			if (errno == 0)
				errno = EIO;
			rc = -1;
			goto out;
		}
		if (cap_count(c, digest, &pids, &held, &by_caller, &callers) < 0) {
			rc = -1;
			goto out;
		}
		rc = held >= c->slots ? CAPACITY_FULL
		     : c->slots - held < c->slots / 8 && callers > 1 && by_caller >= c->slots / callers
			     ? CAPACITY_OVER_SHARE
			     : CAPACITY_TAKEN;
		if (rc == CAPACITY_TAKEN)
			break;
		if (strict)
			goto out;
	}
	for (int k = 0; k < c->slots; k++) {
		int i = (c->next + k) % c->slots;

		if (c->mine[i] || c->table[2 * i])
			continue; /* held: by this process, or by one that runs (cap_count) */
		if (cap_lock(c, F_OFD_SETLK, F_WRLCK, i, NULL) < 0) {
			if (errno == EAGAIN || errno == EACCES)
				continue; /* another process holds it */
			rc = -1;
			goto out;
		}
		if (cap_write(c, i, digest) < 0) {
			int e = errno;

			(void)cap_lock(c, F_OFD_SETLK, F_UNLCK, i, NULL);
			errno = e;
			rc = -1;
			goto out;
		}
		c->mine[i] = 1;
		c->next = (i + 1) % c->slots;
		*slot = i;
		rc = CAPACITY_TAKEN;
		goto out;
	}
	rc = CAPACITY_FULL;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void capacity_give(struct capacity *c, int slot)
{
	if (!c || slot < 0 || slot >= c->slots)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->mine[slot]) {
		(void)cap_write(c, slot, 0); /* a record left behind is recognised by its missing lock */
		(void)cap_lock(c, F_OFD_SETLK, F_UNLCK, slot, NULL);
		c->mine[slot] = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

int capacity_held(struct capacity *c)
{
	int n = 0;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->slots && n >= 0; i++) {
		int h = c->mine[i] ? 1 : cap_held_by_other(c, i);

		n = h < 0 ? -1 : n + h;
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
	if (c->fd >= 0) {
		for (int i = 0; i < c->slots; i++)
			if (c->mine[i])
				(void)cap_write(c, i, 0);
		close(c->fd); /* drops every lock of this open file description */
	}
	if (c->lock_ok)
		(void)pthread_mutex_destroy(&c->lock);
	free(c->mine);
	free(c->table);
	free(c);
}
