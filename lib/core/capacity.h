/* capacity.h: the host-wide capacity of long requests (MCPGW_CAPACITY): slots shared by every responder process of one state directory, taken and given back in a shared mapping without a system call; a holder's open-file-description lock tells whether it still runs, so a process that dies gives its slots back. */
#ifndef MCPGW_CAPACITY_H
#define MCPGW_CAPACITY_H

#include <stddef.h>
#include <stdint.h>

/* The most slots a capacity table holds (MCPGW_CAPACITY's upper bound). */
#define CAPACITY_MAX 100000

/* What capacity_take answers. */
enum capacity_answer {
	CAPACITY_TAKEN = 0, /* a slot is the caller's until capacity_give */
	CAPACITY_FULL,      /* every slot of the host is held */
	CAPACITY_OVER_SHARE /* slots are scarce and this caller holds its fair share already */
};

struct capacity;

/* capacity_open: the table of slots slots (1..CAPACITY_MAX) in the file
 * path (the state directory's STATEDIR_CAPACITY, created 0600, a symlink
 * refused), mapped shared (mmap(2) MAP_SHARED) by every process that opens
 * the same file with the same number: slot i is a 16-byte record holding the
 * caller's digest and its holder's id, taken and given back with atomic
 * operations on the mapping (no system call). Each opener picks a random
 * holder id and holds an OFD lock (fcntl(2) F_OFD_SETLK, Linux 3.15) on that
 * id's byte of the file while it lives; the kernel drops the lock when the
 * process ends, so the records of a holder that crashed are recognised and
 * taken again. Returns the table (capacity_close it), or NULL with err set
 * (path in it; errno kept: EPROTO for a file that is not a table of this
 * layout). A table belongs to the process that opened it: a child of fork
 * opens its own. */
struct capacity *capacity_open(const char *path, int slots, char *err, size_t errlen);

/* capacity_take: one slot for caller (an API key id, "" or NULL
 * anonymous: every anonymous caller is one caller). Fairness: while fewer
 * than an eighth of the slots are free, a caller that already holds at least
 * slots / (callers holding slots) of them is refused (CAPACITY_OVER_SHARE),
 * so that one caller cannot starve the others of the last slots. Never
 * blocks. While more than an eighth of the slots are free (by the file's
 * count of records held), a free record is taken with one compare-and-swap
 * and no system call; otherwise every record is read, the holders' liveness
 * asked (one F_OFD_GETLK per holder id: per process), the records of
 * holders that are gone freed, and the share decided. *slot set on
 * CAPACITY_TAKEN. Returns an enum capacity_answer, or -1 when a lock
 * cannot be asked (errno; the caller decides whether to serve anyway).
 * Thread-safe. */
int capacity_take(struct capacity *c, const char *caller, int *slot);

/* capacity_give: slot (from capacity_take) back. Thread-safe. */
void capacity_give(struct capacity *c, int slot);

/* capacity_held: slots held on the host now (every process), counted by
 * reading every record and asking each holder's lock: for status and tests,
 * not per request. -1 when a lock cannot be asked. */
int capacity_held(struct capacity *c);

/* capacity_slots: the table's number of slots. */
int capacity_slots(const struct capacity *c);

/* capacity_close: the slots this process holds given back, the file closed
 * (NULL: nothing). */
void capacity_close(struct capacity *c);

#endif
