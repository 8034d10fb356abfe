/* sqlitedb.c: open the database, refuse statements a tool must not run, and execute the rest. */
#include "sqlitedb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "sqljson.h"
#include "sqlstmt.h"

#define SQLITEDB_PROGRESS_OPS 1000 /* VM steps between deadline checks */

enum sqlitedb_tool { SQLITEDB_READ = 0, SQLITEDB_WRITE, SQLITEDB_CREATE };

static const char *const sqlitedb_wrong_kind[] = {
	[SQLITEDB_READ] = "Only read-only SELECT queries (SELECT, WITH ... SELECT, VALUES) are allowed for read_query",
	[SQLITEDB_WRITE] = "Only INSERT, UPDATE, DELETE or REPLACE statements are allowed for write_query",
	[SQLITEDB_CREATE] = "Only CREATE TABLE statements are allowed for create_table",
};

static enum sqlitedb_err sqlitedb_fail(struct sqlitedb_result *r, enum sqlitedb_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum sqlitedb_err sqlitedb_fail(struct sqlitedb_result *r, enum sqlitedb_err e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	return e;
}

/* SQLite calls this every SQLITEDB_PROGRESS_OPS steps; non-zero interrupts the statement. */
static int sqlitedb_progress(void *ud)
{
	struct sqlitedb *d = ud;
	struct timespec now;

	if ((!d->deadline_set && !d->cancel) || clock_gettime(CLOCK_MONOTONIC, &now) < 0)
		return 0;
	if (d->deadline_set && (now.tv_sec > d->deadline.tv_sec ||
				(now.tv_sec == d->deadline.tv_sec && now.tv_nsec >= d->deadline.tv_nsec)))
		return 1;
	if (d->cancel && (now.tv_sec > d->cancel_next.tv_sec ||
			  (now.tv_sec == d->cancel_next.tv_sec && now.tv_nsec >= d->cancel_next.tv_nsec))) {
		d->cancel_next = now;
		d->cancel_next.tv_nsec += SQLITEDB_CANCEL_EVERY_MS * 1000000L;
		if (d->cancel_next.tv_nsec >= 1000000000L) {
			d->cancel_next.tv_sec++;
			d->cancel_next.tv_nsec -= 1000000000L;
		}
		if (d->cancel(d->cancel_ud)) {
			d->cancelled = 1;
			return 1;
		}
	}
	return 0;
}

void sqlitedb_on_cancel(struct sqlitedb *d, sqlitedb_cancel_fn *fn, void *ud)
{
	d->cancel = fn;
	d->cancel_ud = ud;
}

static void sqlitedb_arm(struct sqlitedb *d)
{
	d->deadline_set = 0;
	d->cancelled = 0;
	/* the first look for a cancellation after SQLITEDB_CANCEL_EVERY_MS: most statements end before */
	if (d->cancel && clock_gettime(CLOCK_MONOTONIC, &d->cancel_next) == 0) {
		d->cancel_next.tv_nsec += SQLITEDB_CANCEL_EVERY_MS * 1000000L;
		if (d->cancel_next.tv_nsec >= 1000000000L) {
			d->cancel_next.tv_sec++;
			d->cancel_next.tv_nsec -= 1000000000L;
		}
	}
	if (d->b.timeout_ms <= 0 || clock_gettime(CLOCK_MONOTONIC, &d->deadline) < 0)
		return;
	d->deadline.tv_sec += d->b.timeout_ms / 1000;
	d->deadline.tv_nsec += (d->b.timeout_ms % 1000) * 1000000L;
	if (d->deadline.tv_nsec >= 1000000000L) {
		d->deadline.tv_sec++;
		d->deadline.tv_nsec -= 1000000000L;
	}
	d->deadline_set = 1;
}

/* sqlitedb_sql_error: turn SQLite's rc / message into r->msg; call before disarming. */
static enum sqlitedb_err sqlitedb_sql_error(struct sqlitedb *d, int rc, struct sqlitedb_result *r)
{
	if (rc == SQLITE_TOOBIG)
		return sqlitedb_fail(r, SQLITEDB_ETOOBIG,
				     "a string or BLOB would be longer than %ld bytes (MCP_SQLITE_MAX_VALUE_BYTES); "
				     "the statement was stopped",
				     d->b.max_value_bytes);
	if (rc == SQLITE_NOMEM) /* almost always the hard heap limit; the connection lives on */
		return sqlitedb_fail(r, SQLITEDB_ETOOBIG,
				     "the statement needed more than SQLite's memory bound of %lld bytes "
				     "(MCP_SQLITE_MAX_HEAP_BYTES) and was stopped",
				     d->b.max_heap_bytes);
	if (rc == SQLITE_INTERRUPT && d->cancelled)
		return sqlitedb_fail(r, SQLITEDB_ECANCELLED,
				     "the client cancelled the request; the statement was stopped");
	if (rc == SQLITE_INTERRUPT && d->deadline_set)
		return sqlitedb_fail(r, SQLITEDB_ESQL,
				     "the statement ran longer than %ld ms and was stopped (MCP_SQLITE_TIMEOUT_MS)",
				     d->b.timeout_ms);
	return sqlitedb_fail(r, SQLITEDB_ESQL, "%s", sqlite3_errmsg(d->db));
}

static int sqlitedb_kind_ok(enum sqlitedb_tool t, enum sqlstmt_kind k)
{
	switch (t) {
	case SQLITEDB_READ: return k == SQLSTMT_SELECT || k == SQLSTMT_WITH;
	case SQLITEDB_WRITE: return k == SQLSTMT_DML || k == SQLSTMT_WITH;
	case SQLITEDB_CREATE: return k == SQLSTMT_CREATE_TABLE;
	}
	return 0;
}

/* sqlitedb_prepare: compile sql as the one statement tool t may run, without
 * executing anything.  *out is a statement to finalize on SQLITEDB_OK. */
static enum sqlitedb_err sqlitedb_prepare(struct sqlitedb *d, enum sqlitedb_tool t, const char *sql, size_t len,
					  sqlite3_stmt **out, struct sqlitedb_result *r)
{
	const char *end = sql + len, *start, *tail = NULL;
	sqlite3_stmt *st = NULL;
	enum sqlstmt_kind k;
	int rc, ro;

	*out = NULL;
	if (memchr(sql, '\0', len))
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "The query contains a NUL byte");
	start = sqlstmt_skip_trailer(sql, end);
	k = sqlstmt_classify(start, (size_t)(end - start));
	if (k == SQLSTMT_EMPTY)
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "The query is empty");
	if (!sqlitedb_kind_ok(t, k))
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "%s", sqlitedb_wrong_kind[t]);
	if (end - start > INT_MAX || end - start > d->b.max_value_bytes) /* before SQLite parses (and allocates for) it */
		return sqlitedb_fail(r, SQLITEDB_ETOOBIG,
				     "The query is %zu bytes, longer than the %ld this server takes "
				     "(MCP_SQLITE_MAX_VALUE_BYTES); nothing was executed",
				     (size_t)(end - start), d->b.max_value_bytes);
	d->denied[0] = '\0';
	rc = sqlite3_prepare_v2(d->db, start, (int)(end - start), &st, &tail);
	if (rc != SQLITE_OK && d->denied[0])
		return sqlitedb_fail(r, SQLITEDB_EREFUSED,
				     "The SQL function %s() is not allowed here (the server allows SQLite's core, "
				     "date, math and JSON functions); nothing was executed",
				     d->denied);
	if (rc != SQLITE_OK)
		return sqlitedb_sql_error(d, rc, r);
	if (!st)
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "The query is empty");
	ro = sqlite3_stmt_readonly(st);
	if (!tail || !sqlstmt_is_trailer(tail, end)) {
		sqlite3_finalize(st);
		return sqlitedb_fail(r, SQLITEDB_EREFUSED,
				     "Only one SQL statement per call is allowed; nothing was executed");
	}
	if ((t == SQLITEDB_READ) != (ro != 0)) {
		sqlite3_finalize(st);
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "%s", sqlitedb_wrong_kind[t]);
	}
	*out = st;
	return SQLITEDB_OK;
}

/* sqlitedb_collect: step st to the end (or a bound) gathering rows into
 * r->rows; the bytes the rows take as tool text are counted as each row is
 * built, so no row is built past max_result_bytes. */
static enum sqlitedb_err sqlitedb_collect(struct sqlitedb *d, sqlite3_stmt *st, struct sqlitedb_result *r)
{
	enum sqlitedb_err e = SQLITEDB_OK;
	size_t max = (size_t)d->b.max_result_bytes, bytes = 2; /* "[]" */
	int rc;

	r->exact15 = 1;
	r->rows = json_array();
	if (!r->rows)
		return sqlitedb_fail(r, SQLITEDB_ENOMEM, "out of memory");
	sqlitedb_arm(d);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row;
		size_t sz;
		enum sqljson_err je;

		if (json_array_size(r->rows) >= (size_t)d->b.max_rows) {
			r->truncated = 1;
			break;
		}
		je = sqljson_row(st, &r->exact15, max - bytes > 2 ? max - bytes - 2 : 0, &row, &sz);
		if (je == SQLJSON_EOVER && json_array_size(r->rows) == 0) {
			e = sqlitedb_fail(r, SQLITEDB_ETOOBIG,
					  "the first row alone would take more than %ld bytes as tool text "
					  "(MCP_SQLITE_MAX_RESULT_BYTES); select fewer or shorter columns "
					  "(substr(), length())",
					  d->b.max_result_bytes);
			goto out;
		}
		if (je == SQLJSON_EOVER) {
			r->truncated = r->over_bytes = 1;
			break;
		}
		if (je != SQLJSON_OK) {
			e = sqlitedb_fail(r, SQLITEDB_ENOMEM, "out of memory");
			goto out;
		}
		bytes += sz + 2;
		if (json_array_append_new(r->rows, row) < 0) {
			e = sqlitedb_fail(r, SQLITEDB_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		e = sqlitedb_sql_error(d, rc, r);
out:
	d->deadline_set = 0;
	if (e != SQLITEDB_OK) {
		json_decref(r->rows);
		r->rows = NULL;
	}
	return e;
}

/* sqlitedb_exec: step st to the end, ignoring any RETURNING rows. */
static enum sqlitedb_err sqlitedb_exec(struct sqlitedb *d, sqlite3_stmt *st, struct sqlitedb_result *r)
{
	enum sqlitedb_err e = SQLITEDB_OK;
	int rc;

	sqlitedb_arm(d);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		e = sqlitedb_sql_error(d, rc, r);
	d->deadline_set = 0;
	return e;
}

/* sqlitedb_auth: SQLite's authorizer (sqlite.org/c3ref/set_authorizer.html):
 * a statement may call only the functions of the allow-list (sqlfunc.h);
 * every other action is left to the statement checks and the connection's
 * limits. The refused name is kept for the tool's message. Issue 14 case 6:
 * read_query ran fts3_tokenizer(), whose one-argument form returns a
 * pointer into libsqlite3 and whose two-argument form calls through one
 * (sqlite.org/fts3.html#f3tknzr, "Security warning"). */
static int sqlitedb_auth(void *ud, int action, const char *a3, const char *a4, const char *dbname, const char *inner)
{
	struct sqlitedb *d = ud;

	(void)a3, (void)dbname, (void)inner;
	if (action != SQLITE_FUNCTION || sqlfunc_allowed(a4))
		return SQLITE_OK;
	snprintf(d->denied, sizeof d->denied, "%s", a4 ? a4 : "?");
	return SQLITE_DENY;
}

/* sqlitedb_create_private: a database file that does not exist yet is
 * created here, mode 0600, never through a symlink (O_EXCL | O_NOFOLLOW),
 * before SQLite would create it 0644 (SQLITE_DEFAULT_FILE_PERMISSIONS,
 * sqlite.org/compile.html; its journal and WAL files copy the database's
 * mode, os_unix.c findCreateFileMode). An existing file is
 * left as it is; a symlink to nowhere is refused (SQLite would create its
 * target). ":memory:" and URIs are SQLite's. 0, or -1 with err. */
static int sqlitedb_create_private(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, e;

	if (!*path || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
		return 0;
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0) {
		close(fd);
		return 0;
	}
	if ((e = errno) == EEXIST && stat(path, &st) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", path,
		 e == EEXIST ? "a symlink to a file that does not exist: refused" : strerror(e));
	return -1;
}

/* sqlitedb_bounds_set: b's bounds into d, a bound <= 0 replaced by its default. */
static void sqlitedb_bounds_set(struct sqlitedb *d, const struct sqlitedb_bounds *b)
{
	static const struct sqlitedb_bounds def = SQLITEDB_BOUNDS_DEFAULT;

	d->b = b ? *b : def;
	d->b.max_rows = d->b.max_rows > 0 ? d->b.max_rows : def.max_rows;
	d->b.timeout_ms = d->b.timeout_ms > 0 ? d->b.timeout_ms : 0;
	d->b.max_value_bytes = d->b.max_value_bytes > 0 ? d->b.max_value_bytes : def.max_value_bytes;
	d->b.max_result_bytes = d->b.max_result_bytes > 0 ? d->b.max_result_bytes : def.max_result_bytes;
	d->b.max_heap_bytes = d->b.max_heap_bytes > 0 ? d->b.max_heap_bytes : def.max_heap_bytes;
	if (d->b.max_value_bytes > INT_MAX)
		d->b.max_value_bytes = INT_MAX;
}

int sqlitedb_open(struct sqlitedb *d, const char *path, const struct sqlitedb_bounds *b, char *err, size_t errlen)
{
	int rc;

	memset(d, 0, sizeof *d);
	sqlitedb_bounds_set(d, b);
	sqlite3_hard_heap_limit64(d->b.max_heap_bytes);
	if (sqlitedb_create_private(path, err, errlen) < 0)
		return -1;
	rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		goto err;
	if ((rc = sqlite3_busy_timeout(d->db, SQLITEDB_BUSY_TIMEOUT_MS)) != SQLITE_OK ||
	    (rc = sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL)) != SQLITE_OK ||
	    (rc = sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL)) != SQLITE_OK ||
	    (rc = sqlite3_db_config(d->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL)) != SQLITE_OK ||
	    (rc = sqlite3_db_config(d->db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, (int *)NULL)) != SQLITE_OK ||
	    (rc = sqlite3_set_authorizer(d->db, sqlitedb_auth, d)) != SQLITE_OK)
		goto err;
	sqlite3_limit(d->db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(d->db, SQLITE_LIMIT_LENGTH, (int)d->b.max_value_bytes);
	sqlite3_limit(d->db, SQLITE_LIMIT_SQL_LENGTH, (int)d->b.max_value_bytes);
	sqlite3_progress_handler(d->db, SQLITEDB_PROGRESS_OPS, sqlitedb_progress, d);
	/* opening is lazy: read the schema now so a non-database file fails here */
	rc = sqlite3_exec(d->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto err;
	return 0;
err:
	snprintf(err, errlen, "%s: %s", path, d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
	sqlite3_close(d->db);
	d->db = NULL;
	return -1;
}

void sqlitedb_close(struct sqlitedb *d)
{
	if (d->db && sqlite3_close(d->db) != SQLITE_OK)
		log_warn("closing the database: %s", sqlite3_errmsg(d->db));
	d->db = NULL;
}

enum sqlitedb_err sqlitedb_read(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r)
{
	sqlite3_stmt *st = NULL;
	enum sqlitedb_err e = sqlitedb_prepare(d, SQLITEDB_READ, sql, len, &st, r);

	if (e != SQLITEDB_OK)
		return e;
	e = sqlitedb_collect(d, st, r);
	sqlite3_finalize(st);
	return e;
}

enum sqlitedb_err sqlitedb_write(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r)
{
	sqlite3_stmt *st = NULL;
	enum sqlitedb_err e = sqlitedb_prepare(d, SQLITEDB_WRITE, sql, len, &st, r);

	if (e != SQLITEDB_OK)
		return e;
	e = sqlitedb_exec(d, st, r);
	if (e == SQLITEDB_OK)
		r->changes = (long long)sqlite3_changes64(d->db);
	sqlite3_finalize(st);
	return e;
}

enum sqlitedb_err sqlitedb_create_table(struct sqlitedb *d, const char *sql, size_t len, struct sqlitedb_result *r)
{
	sqlite3_stmt *st = NULL;
	enum sqlitedb_err e = sqlitedb_prepare(d, SQLITEDB_CREATE, sql, len, &st, r);

	if (e != SQLITEDB_OK)
		return e;
	e = sqlitedb_exec(d, st, r);
	sqlite3_finalize(st);
	return e;
}

/* sqlitedb_internal: run one of our own queries, with text bound to ?1 when given. */
static enum sqlitedb_err sqlitedb_internal(struct sqlitedb *d, const char *sql, const char *text, size_t len,
					   struct sqlitedb_result *r)
{
	sqlite3_stmt *st = NULL;
	enum sqlitedb_err e;
	int rc;

	if (len > INT_MAX)
		return sqlitedb_fail(r, SQLITEDB_EREFUSED, "The name is too long");
	rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && text)
		rc = sqlite3_bind_text(st, 1, text, (int)len, SQLITE_TRANSIENT);
	if (rc != SQLITE_OK) {
		e = sqlitedb_sql_error(d, rc, r);
		goto out;
	}
	e = sqlitedb_collect(d, st, r);
out:
	sqlite3_finalize(st);
	return e;
}

enum sqlitedb_err sqlitedb_list_tables(struct sqlitedb *d, struct sqlitedb_result *r)
{
	return sqlitedb_internal(
		d,
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
		" UNION ALL "
		"SELECT name FROM sqlite_temp_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
		NULL, 0, r);
}

enum sqlitedb_err sqlitedb_describe_table(struct sqlitedb *d, const char *name, size_t len, struct sqlitedb_result *r)
{
	enum sqlitedb_err e = sqlitedb_internal(d, "SELECT * FROM pragma_table_info(?1)", name, len, r);

	if (e == SQLITEDB_OK && json_array_size(r->rows) == 0) {
		json_decref(r->rows);
		r->rows = NULL;
		return sqlitedb_fail(r, SQLITEDB_ENOTFOUND, "no such table: %.*s", (int)(len > 200 ? 200 : len), name);
	}
	return e;
}

void sqlitedb_result_free(struct sqlitedb_result *r)
{
	json_decref(r->rows);
	r->rows = NULL;
}

const char *sqlitedb_strerror(enum sqlitedb_err e)
{
	switch (e) {
	case SQLITEDB_OK: return "success";
	case SQLITEDB_EREFUSED: return "statement refused";
	case SQLITEDB_ESQL: return "database error";
	case SQLITEDB_ENOTFOUND: return "table not found";
	case SQLITEDB_ENOMEM: return "out of memory";
	case SQLITEDB_ETOOBIG: return "over a bound";
	case SQLITEDB_ECANCELLED: return "cancelled by the client";
	}
	return "unknown error";
}
