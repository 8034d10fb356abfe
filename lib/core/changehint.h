/* changehint.h: a counter shared by the processes of one host (a small file in the state directory, mapped shared) that a process bumps after it changed something in the state store, so that the others re-read the store only when it moved. */
#ifndef MCPGW_CHANGEHINT_H
#define MCPGW_CHANGEHINT_H

#include <stddef.h>
#include <stdint.h>

/* The store stays the truth; the hint only says "look again". A writer
 * changes the store (its transaction committed), then bumps the hint; a
 * reader loads the hint (an atomic load, no system call), and when it moved
 * since the reader last looked, re-reads the store. A reader that loads the
 * hint before it reads the store can never keep data older than the last
 * bump it saw. Readers should still re-read the store now and then (a
 * writer that could not bump, a hint file removed and made anew are then
 * seen late, not never).
 *
 * This is the hint of one host: every process of the SQLite state store
 * shares the state directory. A state store shared by several hosts (the
 * planned PostgreSQL one) would give the hint another way, e.g. LISTEN/NOTIFY
 * on a channel bumping a local counter, behind these same calls; its
 * presence word would stay UNKNOWN. */
struct changehint;

/* changehint_open: the hint file name (a STATEDIR_* name) of state_dir (which
 * must exist), made (0600, never through a symlink) when missing, mapped
 * read-write. The handle (changehint_close it), or NULL with err ("path: why"). */
struct changehint *changehint_open(const char *state_dir, const char *name, char *err, size_t errlen);

/* changehint_read: the hint's current value (acquire: what the bumper wrote
 * to the store before it bumped is visible after it). Any thread. */
uint64_t changehint_read(const struct changehint *h);

/* changehint_bump: one more change (release), seen by every process that
 * maps the file. h NULL: nothing. Any thread. */
void changehint_bump(struct changehint *h);

/* The presence word: whether the store holds any record of the kind the
 * hint is for (API keys: STATEDIR_KEYS_HINT), so that a reader can skip the
 * store altogether while it holds none. UNKNOWN (a new file, or one of a
 * build before the word) tells nothing: read the store. A writer marks SOME
 * before it writes a record (sticky: never undone); a reader that read the
 * store and found it has never held one marks NONE, from UNKNOWN only, so a
 * writer's SOME always wins the race. A reader that trusts NONE must also
 * notice a hint file made anew (changehint_replaced), whose word is UNKNOWN
 * or SOME again. */
enum changehint_presence { CHANGEHINT_UNKNOWN = 0, CHANGEHINT_NONE = 1, CHANGEHINT_SOME = 2 };

/* changehint_presence: the presence word (acquire). A value the file holds
 * that is none of the three reads as UNKNOWN. Any thread. */
enum changehint_presence changehint_presence(const struct changehint *h);

/* changehint_mark_some: a record is about to be written (before it is). NULL: nothing. */
void changehint_mark_some(struct changehint *h);

/* changehint_mark_none: the store was read and has never held a record:
 * UNKNOWN becomes NONE; SOME stays. NULL: nothing. */
void changehint_mark_none(struct changehint *h);

/* changehint_replaced: 1 when the hint's path no longer names the file h
 * maps (removed, or made anew: reopen it), 0 when it does. One stat(2). */
int changehint_replaced(const struct changehint *h);

/* changehint_close: unmap and free (NULL: nothing). */
void changehint_close(struct changehint *h);

#endif
