/* sqlitedb.h: the server's one SQLite connection and the checked statements each tool may run. */
#ifndef MCPSQLITE_SQLITEDB_H
#define MCPSQLITE_SQLITEDB_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <time.h>

#include "sqlfunc.h"

#define SQLITEDB_BUSY_TIMEOUT_MS 5000 /* wait this long for another writer's lock */

/* The bounds of one connection; each is a setting (lib/core/settings.c,
 * README "Configuration"), whose defaults these are. */
struct sqlitedb_bounds {
	long max_rows;            /* MCP_SQLITE_MAX_ROWS: rows a read returns at most */
	long timeout_ms;          /* MCP_SQLITE_TIMEOUT_MS: time one statement may run, 0 = unlimited */
	long max_value_bytes;     /* MCP_SQLITE_MAX_VALUE_BYTES: one string or BLOB, also inside a statement */
	long max_result_bytes;    /* MCP_SQLITE_MAX_RESULT_BYTES: rows as tool text, escapes counted */
	long long max_heap_bytes; /* MCP_SQLITE_MAX_HEAP_BYTES: all of SQLite's memory (process-wide) */
};
#define SQLITEDB_BOUNDS_DEFAULT \
	{ \
		10000, 30000, 1048576, 8388608, 33554432LL \
	}

enum sqlitedb_err {
	SQLITEDB_OK = 0,
	SQLITEDB_EREFUSED,  /* not the kind of statement the tool runs; nothing executed */
	SQLITEDB_ESQL,      /* SQLite refused or failed the statement */
	SQLITEDB_ENOTFOUND, /* describe_table: no such table */
	SQLITEDB_ENOMEM,
	SQLITEDB_ETOOBIG,   /* a value, a row or SQLite's heap over its bound; r->msg names the setting */
	SQLITEDB_ECANCELLED /* the client cancelled the request (sqlitedb_on_cancel): not to be answered */
};

#define SQLITEDB_CANCEL_EVERY_MS 10 /* a running statement looks for a cancellation this often */

/* sqlitedb_cancel_fn: asked while a statement runs (at most every SQLITEDB_CANCEL_EVERY_MS): 1 when
 * the client cancelled the request it serves (MCP notifications/cancelled), which stops it */
typedef int sqlitedb_cancel_fn(void *ud);

struct sqlitedb {
	sqlite3 *db;
	struct sqlitedb_bounds b; /* as opened, each checked */
	struct timespec deadline;
	int deadline_set;
	sqlitedb_cancel_fn *cancel; /* NULL: nobody asked (sqlitedb_on_cancel) */
	void *cancel_ud;
	struct timespec cancel_next;       /* when cancel is asked next */
	int cancelled;                     /* the statement in progress was stopped by cancel */
	char denied[SQLFUNC_NAME_MAX + 1]; /* the function the authorizer refused last, "" none */
};

/* What a call produced.  Zero it before the call, free it with
 * sqlitedb_result_free after. */
struct sqlitedb_result {
	json_t *rows;      /* reads: a new array of row objects */
	long long changes; /* write_query: rows changed */
	int truncated;     /* 1: more rows existed than were returned */
	int over_bytes;    /* 1: truncated by b.max_result_bytes, not max_rows */
	int exact15;       /* 1: every real round-trips with 15 significant digits */
	char msg[512];     /* why, when the call did not return SQLITEDB_OK */
};

/* sqlitedb_open: open (creating if missing, mode 0600, never through a
 * symlink) the database file at path with the bounds b (NULL: the defaults;
 * a bound <= 0 is its default, timeout_ms 0 stays unlimited) and check that
 * it is a database.  The connection is hardened: defensive mode, schema
 * not trusted, no extension loading, no ATTACH, fts3_tokenizer's pointer
 * form off, and an authorizer that lets statements call only the functions
 * of the allow-list (sqlfunc.h).  A statement, string or BLOB longer than
 * max_value_bytes fails (SQLITE_LIMIT_SQL_LENGTH, SQLITE_LIMIT_LENGTH), and
 * SQLite's heap is capped process-wide at max_heap_bytes
 * (sqlite3_hard_heap_limit64): past it a statement fails, the connection
 * lives on.  0, or -1 with err filled and d left closed. */
int sqlitedb_open(struct sqlitedb *d, const char *path, const struct sqlitedb_bounds *b, char *err, size_t errlen);

/* sqlitedb_close: close the connection (safe on a closed d). */
void sqlitedb_close(struct sqlitedb *d);

/* sqlitedb_read: run sql[0..len) if it is exactly one read-only SELECT / WITH
 * / VALUES statement; r->rows gets at most max_rows rows, and no more than
 * fit in max_result_bytes as tool text (counted column by column as each
 * row is built: a first row that does not fit is SQLITEDB_ETOOBIG, later
 * ones truncate).  A statement
 * calling a function off the allow-list is SQLITEDB_EREFUSED (r->msg names
 * the function) and nothing runs; so for sqlitedb_write and
 * sqlitedb_create_table. */
/* sqlitedb_on_cancel: while a statement runs, fn(ud) is asked every
 * SQLITEDB_CANCEL_EVERY_MS (from SQLite's progress handler); when it says 1
 * the statement is stopped as by its timeout, the call returns SQLITEDB_ECANCELLED
 * and nothing it did is kept (its transaction rolls back). NULL: never. */
void sqlitedb_on_cancel(struct sqlitedb *d, sqlitedb_cancel_fn *fn, void *ud);

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
