/* sqlopen.c: open one of the gateway's own SQLite databases: private, WAL, busy timeout, schema. */
#include "core/sqlopen.h"
#include "core/clock.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define SQLOPEN_RETRY_MS 10

/* setup_exec: one set-up statement, tried again while the database is busy or locked */
static int setup_exec(sqlite3 *db, const char *sql, char **msg)
{
	int rc;

	for (int waited = 0;; waited += SQLOPEN_RETRY_MS) {
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited >= SQLOPEN_BUSY_MS)
			return rc;
		sqlite3_free(*msg);
		*msg = NULL;
		clock_sleep_ms(SQLOPEN_RETRY_MS);
	}
}

sqlite3 *sqlopen(const char *path, const char *schema_sql, char *err, size_t errlen)
{
	int corrupt;

	return sqlopen_corrupt(path, schema_sql, err, errlen, &corrupt);
}

sqlite3 *sqlopen_corrupt(const char *path, const char *schema_sql, char *err, size_t errlen, int *corrupt)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int fd, code;

	*corrupt = 0;
	/* a new database is private: created here 0600 before SQLite opens it */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		snprintf(err, errlen, "%s: %m", path);
		return NULL;
	}
	close(fd);
	/* NOFOLLOW again: a symlink planted between the open above and this one is refused too */
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK)
		goto err;
	sqlite3_busy_timeout(db, SQLOPEN_BUSY_MS);
	if (setup_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", &msg) !=
		    SQLITE_OK ||
	    (schema_sql && setup_exec(db, schema_sql, &msg) != SQLITE_OK))
		goto err;
	return db;
err:
	code = db ? sqlite3_errcode(db) & 0xff : SQLITE_ERROR;
	*corrupt = code == SQLITE_NOTADB || code == SQLITE_CORRUPT;
	snprintf(err, errlen, "%s: %s", path, msg ? msg : (db ? sqlite3_errmsg(db) : "cannot open"));
	sqlite3_free(msg);
	sqlite3_close(db);
	return NULL;
}
