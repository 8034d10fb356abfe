/* capacity.h: the host-wide capacity of long requests (MCPGW_CAPACITY): slots shared by every responder process of one state directory, each held by an open-file-description lock, so a process that dies gives its slots back. */
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
 * refused), shared by every process that opens the same file with the same
 * number: slot i is held by an OFD lock (fcntl(2) F_OFD_SETLK, Linux 3.15)
 * on its 16-byte record, which holds the caller's digest and the holder's
 * pid and start time (proc(5) starttime, low 32 bits). The kernel
 * drops a lock when its process ends, so a crash never leaks a slot.
 * Returns the table (capacity_close it), or NULL with err set (path in it;
 * errno kept). A table belongs to the process that opened it: a child of
 * fork opens its own. */
struct capacity *capacity_open(const char *path, int slots, char *err, size_t errlen);

/* capacity_take: one slot for caller (an API key id, "" or NULL
 * anonymous: every anonymous caller is one caller). Fairness: while fewer
 * than an eighth of the slots are free, a caller that already holds at least
 * slots / (callers holding slots) of them is refused (CAPACITY_OVER_SHARE),
 * so that one caller cannot starve the others of the last slots. Never
 * blocks: one pread of the table, a kill(pid, 0) per process holding
 * slots (a record names its holder's pid and start time), and
 * non-blocking fcntls only for the slots whose record is free or names a
 * process that is gone (or one more than 64 holders: the lock decides);
 * before refusing, the count again with each holder's start time (one
 * /proc/PID/stat read per holding process: a pid that names another
 * process since its holder crashed has another start time; one this
 * process cannot read is asked by its lock). *slot set on CAPACITY_TAKEN.
 * Returns
 * an enum capacity_answer, or -1 on an I/O error (errno; the caller decides
 * whether to serve anyway).
 * Thread-safe. */
int capacity_take(struct capacity *c, const char *caller, int *slot);

/* capacity_give: slot (from capacity_take) back. Thread-safe. */
void capacity_give(struct capacity *c, int slot);

/* capacity_held: slots held on the host now (every process), counted by
 * testing each slot's lock: for status and tests, not per request. -1 on
 * an I/O error. */
int capacity_held(struct capacity *c);

/* capacity_slots: the table's number of slots. */
int capacity_slots(const struct capacity *c);

/* capacity_close: the slots this process holds given back, the file closed
 * (NULL: nothing). */
void capacity_close(struct capacity *c);

#endif
