/* sqlitedb.h: the server's one SQLite connection and the checked statements each tool may run. */
#ifndef MCPSQLITE_SQLITEDB_H
#define MCPSQLITE_SQLITEDB_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <time.h>

#include "sqlfunc.h"

#define SQLITEDB_BUSY_TIMEOUT_MS 5000               /* wait this long for another writer's lock */
#define SQLITEDB_MAX_ROWS_DEFAULT 10000             /* MCP_SQLITE_MAX_ROWS */
#define SQLITEDB_TIMEOUT_DEFAULT 30000              /* MCP_SQLITE_TIMEOUT_MS; 0 = no limit */
#define SQLITEDB_MAX_RESULT_BYTES (8 * 1024 * 1024) /* rows as tool text, escapes counted */

enum sqlitedb_err {
	SQLITEDB_OK = 0,
	SQLITEDB_EREFUSED,  /* not the kind of statement the tool runs; nothing executed */
	SQLITEDB_ESQL,      /* SQLite refused or failed the statement */
	SQLITEDB_ENOTFOUND, /* describe_table: no such table */
	SQLITEDB_ENOMEM
};

struct sqlitedb {
	sqlite3 *db;
	long max_rows;   /* rows a read returns at most (>= 1) */
	long timeout_ms; /* time one statement may run, 0 = unlimited */
	struct timespec deadline;
	int deadline_set;
	char denied[SQLFUNC_NAME_MAX + 1]; /* the function the authorizer refused last, "" none */
};

/* What a call produced.  Zero it before the call, free it with
 * sqlitedb_result_free after. */
struct sqlitedb_result {
	json_t *rows;      /* reads: a new array of row objects */
	long long changes; /* write_query: rows changed */
	int truncated;     /* 1: more rows existed than were returned */
	int over_bytes;    /* 1: truncated by SQLITEDB_MAX_RESULT_BYTES, not max_rows */
	int exact15;       /* 1: every real round-trips with 15 significant digits */
	char msg[512];     /* why, when the call did not return SQLITEDB_OK */
};

/* sqlitedb_open: open (creating if missing, mode 0600, never through a
 * symlink) the database file at path with the given bounds and check that
 * it is a database.  The connection is hardened: defensive mode, schema
 * not trusted, no extension loading, no ATTACH, fts3_tokenizer's pointer
 * form off, and an authorizer that lets statements call only the functions
 * of the allow-list (sqlfunc.h).  0, or -1 with err filled and d left
 * closed. */
int sqlitedb_open(struct sqlitedb *d, const char *path, long max_rows, long timeout_ms, char *err, size_t errlen);

/* sqlitedb_close: close the connection (safe on a closed d). */
void sqlitedb_close(struct sqlitedb *d);

/* sqlitedb_read: run sql[0..len) if it is exactly one read-only SELECT / WITH
 * / VALUES statement; r->rows gets at most max_rows rows.  A statement
 * calling a function off the allow-list is SQLITEDB_EREFUSED (r->msg names
 * the function) and nothing runs; so for sqlitedb_write and
 * sqlitedb_create_table. */
enum sqlitedb_err sqlitedb_read(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r);

/* sqlitedb_write: run sql[0..len) if it is exactly one INSERT / UPDATE /
 * DELETE / REPLACE (possibly WITH-prefixed); r->changes is set. */
enum sqlitedb_err sqlitedb_write(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r);

/* sqlitedb_create_table: run sql[0..len) if it is exactly one
 * CREATE [TEMP] TABLE statement. */
enum sqlitedb_err sqlitedb_create_table(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r);

/* sqlitedb_list_tables: r->rows = [{"name": ...}] for the user tables
 * (main then temp, in creation order; sqlite_* internals left out). */
enum sqlitedb_err sqlitedb_list_tables(struct sqlitedb *d, struct sqlitedb_result *r);

/* sqlitedb_describe_table: r->rows = PRAGMA table_info rows (cid, name,
 * type, notnull, dflt_value, pk) of table name[0..len); the name is bound
 * as a parameter, never spliced into SQL.  SQLITEDB_ENOTFOUND if unknown. */
enum sqlitedb_err sqlitedb_describe_table(struct sqlitedb *d, const char *name, size_t len, struct sqlitedb_result *r);

/* sqlitedb_result_free: release r->rows. */
void sqlitedb_result_free(struct sqlitedb_result *r);

/* sqlitedb_strerror: a static description of e. */
const char *sqlitedb_strerror(enum sqlitedb_err e);

#endif
