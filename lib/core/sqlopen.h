/* sqlopen.h: open one of the gateway's own SQLite databases (registry, chat history): private, WAL, busy timeout, schema. */
#ifndef MCPGW_SQLOPEN_H
#define MCPGW_SQLOPEN_H

#include <sqlite3.h>
#include <stddef.h>

#define SQLOPEN_BUSY_MS 5000 /* how long a database another process holds is waited for */

/* sqlopen: the SQLite database at path, created mode 0600 when new (whatever
 * the umask; SQLite gives its -wal and -shm files the same mode; a symlink at
 * path is refused), in WAL mode (synchronous NORMAL, foreign keys on), with a
 * busy timeout of SQLOPEN_BUSY_MS, then schema_sql (NULL: none) run. The
 * set-up statements are tried again for up to SQLOPEN_BUSY_MS while another
 * process sets the same database up (SQLite answers busy there at once,
 * without its busy handler). Opened SQLITE_OPEN_NOMUTEX: one thread at a
 * time. The handle (sqlite3_close it), or NULL with "path: reason" in err. */
sqlite3 *sqlopen(const char *path, const char *schema_sql, char *err, size_t errlen);
/* sqlopen_corrupt: sqlopen, and when it fails because the file at path is
 * no SQLite database or a damaged one (SQLITE_NOTADB, SQLITE_CORRUPT),
 * *corrupt set to 1 (else 0). */
sqlite3 *sqlopen_corrupt(const char *path, const char *schema_sql, char *err, size_t errlen, int *corrupt);

#endif
