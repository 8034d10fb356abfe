/* statestore_sqlite.c: the state store's embedded backend: one SQLite file (0600, WAL, busy timeout) shared by every process of a host. */
#include "core/statestore_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sqlopen.h"

/* the file says what it is: PRAGMA application_id (bytes 68..71 of the header) and user_version */
#define SS_APPLICATION_ID 0x6d677373 /* "mgss": mcpgw state store */
#define SS_SCHEMA_VERSION 1
#define SS_HEADER_BYTES 100
#define SS_MAGIC "SQLite format 3" /* with its NUL: the first 16 bytes of every SQLite database */

enum ss_kind { SS_BYTES = 0, SS_COUNTER = 1, SS_CLAIM = 2 };

/* live: an entry that has not expired at ?now (expires_ms 0: never) */
#define SS_LIVE(now) "(expires_ms = 0 OR expires_ms > " now ")"

static const char ss_schema[] =
	"CREATE TABLE kv(ns TEXT NOT NULL, key TEXT NOT NULL, kind INTEGER NOT NULL, value BLOB NOT NULL,"
	" written_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, PRIMARY KEY(ns, key));"
	"CREATE INDEX kv_expiry ON kv(expires_ms) WHERE expires_ms > 0;";

/* the statements, prepared once per handle */
enum ss_stmt {
	SS_GET,
	SS_PUT,
	SS_DEL,
	SS_ADD,
	SS_TAKE,
	SS_CLAIM_UP,
	SS_RELEASE,
	SS_READ,
	SS_WRITE_COUNTER,
	SS_PRUNE,
	SS_LIST,
	SS_BEGIN,
	SS_COMMIT,
	SS_ROLLBACK,
	SS_NSTMT
};

static const char *const ss_sql[SS_NSTMT] = {
	[SS_GET] = "SELECT length(value), written_ms, value FROM kv WHERE ns = ?1 AND key = ?2 AND " SS_LIVE("?3"),
	[SS_PUT] = "INSERT INTO kv(ns, key, kind, value, written_ms, expires_ms) VALUES(?1, ?2, 0, ?3, ?4, ?5)"
		   " ON CONFLICT(ns, key) DO UPDATE SET kind = 0, value = excluded.value,"
		   " written_ms = excluded.written_ms, expires_ms = excluded.expires_ms",
	[SS_DEL] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2 RETURNING " SS_LIVE("?3"),
	/* inserted when absent or expired, a live entry left as it is: one statement, one step */
	[SS_ADD] = "INSERT INTO kv(ns, key, kind, value, written_ms, expires_ms) VALUES(?1, ?2, 0, ?3, ?4, ?5)"
		   " ON CONFLICT(ns, key) DO UPDATE SET kind = 0, value = excluded.value,"
		   " written_ms = excluded.written_ms, expires_ms = excluded.expires_ms WHERE NOT " SS_LIVE("?4"),
	/* read and deleted in one statement: of two takers, one sees the row */
	[SS_TAKE] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2 AND " SS_LIVE("?3") " RETURNING length(value), value",
	/* taken when absent, expired, or held with the same token: one statement, one step */
	[SS_CLAIM_UP] = "INSERT INTO kv(ns, key, kind, value, written_ms, expires_ms) VALUES(?1, ?2, 2, ?3, ?4, ?5)"
			" ON CONFLICT(ns, key) DO UPDATE SET kind = 2, value = excluded.value,"
			" written_ms = excluded.written_ms, expires_ms = excluded.expires_ms"
			" WHERE NOT " SS_LIVE("?4") " OR (kind = 2 AND value = excluded.value)",
	[SS_RELEASE] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2 AND kind = 2 AND value = ?3 AND " SS_LIVE("?4"),
	[SS_READ] = "SELECT kind, value, expires_ms FROM kv WHERE ns = ?1 AND key = ?2 AND " SS_LIVE("?3"),
	[SS_WRITE_COUNTER] = "INSERT INTO kv(ns, key, kind, value, written_ms, expires_ms) VALUES(?1, ?2, 1, ?3, ?4, ?5)"
			     " ON CONFLICT(ns, key) DO UPDATE SET kind = 1, value = excluded.value,"
			     " written_ms = excluded.written_ms, expires_ms = excluded.expires_ms",
	[SS_PRUNE] = "DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires_ms > 0 AND expires_ms <= ?1"
		     " ORDER BY expires_ms LIMIT ?2)",
	/* the primary key's index gives the order; ?3 "" starts at the first */
	[SS_LIST] = "SELECT key FROM kv WHERE ns = ?1 AND key > ?2 AND " SS_LIVE("?3") " ORDER BY key LIMIT ?4",
	[SS_BEGIN] = "BEGIN IMMEDIATE",
	[SS_COMMIT] = "COMMIT",
	[SS_ROLLBACK] = "ROLLBACK",
};

struct ss {
	sqlite3 *db;
	sqlite3_stmt *st[SS_NSTMT];
	sqlite3_stmt *audit_ins, *audit_prune; /* prepared on first use (ss_audit_ready) */
};

static sqlite3 *ss_db(struct statestore *st)
{
	return ((struct ss *)st->impl)->db;
}

/* ss_status: the status of an SQLite result code, the backend's words kept in st->errmsg */
static enum statestore_status ss_status(struct statestore *st, int rc)
{
	switch (rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return STATESTORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(st->errmsg, sizeof st->errmsg, "%s", sqlite3_errmsg(ss_db(st)));
		return STATESTORE_EBUSY;
	case SQLITE_TOOBIG: return STATESTORE_ETOOBIG;
	case SQLITE_NOMEM: return STATESTORE_ENOMEM;
	default: snprintf(st->errmsg, sizeof st->errmsg, "%s", sqlite3_errmsg(ss_db(st))); return STATESTORE_EBACKEND;
	}
}

/* ss_stmt: statement i, reset, with ns and key bound as ?1 and ?2 */
static sqlite3_stmt *ss_stmt(struct statestore *st, enum ss_stmt i, const char *ns, const char *key)
{
	sqlite3_stmt *s = ((struct ss *)st->impl)->st[i];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (ns && (sqlite3_bind_text(s, 1, ns, -1, SQLITE_STATIC) != SQLITE_OK ||
		   sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC) != SQLITE_OK))
		return NULL;
	return s;
}

/* ss_done: reset s (it holds no lock then) and pass rc through */
static int ss_done(sqlite3_stmt *s, int rc)
{
	sqlite3_reset(s);
	return rc;
}

/* ss_bind_failed: a statement whose parameters could not be bound (s may be NULL): reset, the reason as a status */
static enum statestore_status ss_bind_failed(struct statestore *st, sqlite3_stmt *s)
{
	int rc = sqlite3_errcode(ss_db(st));

	sqlite3_reset(s);
	return ss_status(st, rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_ERROR : rc);
}

/* ss_end: reset s and answer r */
static enum statestore_status ss_end(sqlite3_stmt *s, enum statestore_status r)
{
	sqlite3_reset(s);
	return r;
}

/* ss_exec: run statement i (no bindings) to its end */
static int ss_exec(struct statestore *st, enum ss_stmt i)
{
	sqlite3_stmt *s = ss_stmt(st, i, NULL, NULL);

	return ss_done(s, sqlite3_step(s));
}

static enum statestore_status ss_get(struct statestore *st, const char *ns, const char *key, int64_t now,
				     size_t max_bytes, char **value, size_t *len, int64_t *age_ms)
{
	sqlite3_stmt *s = ss_stmt(st, SS_GET, ns, key);
	const void *p;
	sqlite3_int64 n, written;
	int rc;

	if (!s || sqlite3_bind_int64(s, 3, now) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW)
		return rc == SQLITE_DONE ? ss_end(s, STATESTORE_NOTFOUND) : ss_status(st, ss_done(s, rc));
	/* the length first: a value over the bound is never loaded */
	n = sqlite3_column_int64(s, 0);
	if (n < 0 || (uint64_t)n > max_bytes)
		return ss_end(s, STATESTORE_ETOOBIG);
	written = sqlite3_column_int64(s, 1);
	*age_ms = now >= written ? now - written : INT64_MAX; /* written "later" (the clock went back): unknown age, old */
	p = sqlite3_column_blob(s, 2);
	if (sqlite3_column_bytes(s, 2) != n || (!p && n))
		return ss_status(st, ss_done(s, SQLITE_NOMEM));
	if (!(*value = malloc((size_t)n + 1)))
		return ss_end(s, STATESTORE_ENOMEM);
	if (n)
		memcpy(*value, p, (size_t)n);
	(*value)[n] = '\0';
	*len = (size_t)n;
	return ss_end(s, STATESTORE_OK);
}

/* ss_prune_some: prune after a write; its failure does not fail the write */
static void ss_prune_some(struct statestore *st, int64_t now)
{
	char keep[sizeof st->errmsg];
	size_t n;

	memcpy(keep, st->errmsg, sizeof keep);
	(void)st->ops->prune(st, now, STATESTORE_PRUNE_STEP, &n);
	memcpy(st->errmsg, keep, sizeof keep);
}

static enum statestore_status ss_put(struct statestore *st, const char *ns, const char *key, int64_t now,
				     const void *value, size_t len, int64_t expires_ms)
{
	sqlite3_stmt *s = ss_stmt(st, SS_PUT, ns, key);
	enum statestore_status r;

	if (len > INT_MAX)
		return STATESTORE_ETOOBIG;
	if (!s || sqlite3_bind_blob(s, 3, value, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK || sqlite3_bind_int64(s, 5, expires_ms) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((r = ss_status(st, ss_done(s, sqlite3_step(s)))) == STATESTORE_OK)
		ss_prune_some(st, now);
	return r;
}

static enum statestore_status ss_add(struct statestore *st, const char *ns, const char *key, int64_t now,
				     const void *value, size_t len, int64_t expires_ms)
{
	sqlite3_stmt *s = ss_stmt(st, SS_ADD, ns, key);
	int rc;

	if (len > INT_MAX)
		return STATESTORE_ETOOBIG;
	if (!s || sqlite3_bind_blob(s, 3, value, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK || sqlite3_bind_int64(s, 5, expires_ms) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = ss_done(s, sqlite3_step(s))) != SQLITE_DONE)
		return ss_status(st, rc);
	if (!sqlite3_changes(ss_db(st)))
		return STATESTORE_HELD;
	ss_prune_some(st, now);
	return STATESTORE_OK;
}

static enum statestore_status ss_take(struct statestore *st, const char *ns, const char *key, int64_t now,
				      size_t max_bytes, char **value, size_t *len)
{
	sqlite3_stmt *s = ss_stmt(st, SS_TAKE, ns, key);
	enum statestore_status r = STATESTORE_NOTFOUND;
	const void *p;
	sqlite3_int64 n;
	int rc;

	if (!s || sqlite3_bind_int64(s, 3, now) != SQLITE_OK)
		return ss_bind_failed(st, s);
	/* one row at most (the primary key); stepped to its end so that the delete is done */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (r != STATESTORE_NOTFOUND)
			continue;
		n = sqlite3_column_int64(s, 0);
		if (n < 0 || (uint64_t)n > max_bytes) {
			r = STATESTORE_ETOOBIG;
			continue;
		}
		p = sqlite3_column_blob(s, 1);
		if (sqlite3_column_bytes(s, 1) != n || (!p && n) || !(*value = malloc((size_t)n + 1))) {
			r = STATESTORE_ENOMEM;
			continue;
		}
		if (n)
			memcpy(*value, p, (size_t)n);
		(*value)[n] = '\0';
		*len = (size_t)n;
		r = STATESTORE_OK;
	}
	if (rc != SQLITE_DONE) {
		free(*value);
		*value = NULL;
		return ss_status(st, ss_done(s, rc));
	}
	return ss_end(s, r);
}

static enum statestore_status ss_del(struct statestore *st, const char *ns, const char *key, int64_t now)
{
	sqlite3_stmt *s = ss_stmt(st, SS_DEL, ns, key);
	int rc, live = 0;

	if (!s || sqlite3_bind_int64(s, 3, now) != SQLITE_OK)
		return ss_bind_failed(st, s);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		live = sqlite3_column_int(s, 0);
	if (rc != SQLITE_DONE)
		return ss_status(st, ss_done(s, rc));
	return ss_end(s, live ? STATESTORE_OK : STATESTORE_NOTFOUND);
}

static enum statestore_status ss_claim(struct statestore *st, const char *ns, const char *key, int64_t now,
				       const char *token, int64_t expires_ms)
{
	sqlite3_stmt *s = ss_stmt(st, SS_CLAIM_UP, ns, key);
	int rc;

	if (!s || sqlite3_bind_blob(s, 3, token, (int)strlen(token), SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK || sqlite3_bind_int64(s, 5, expires_ms) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = ss_done(s, sqlite3_step(s))) != SQLITE_DONE)
		return ss_status(st, rc);
	return sqlite3_changes(ss_db(st)) ? STATESTORE_OK : STATESTORE_HELD;
}

static enum statestore_status ss_release(struct statestore *st, const char *ns, const char *key, int64_t now,
					 const char *token)
{
	sqlite3_stmt *s = ss_stmt(st, SS_RELEASE, ns, key);
	int rc;

	if (!s || sqlite3_bind_blob(s, 3, token, (int)strlen(token), SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = ss_done(s, sqlite3_step(s))) != SQLITE_DONE)
		return ss_status(st, rc);
	return sqlite3_changes(ss_db(st)) ? STATESTORE_OK : STATESTORE_NOTFOUND;
}

/* ss_incr_in: the read-modify-write of incr, inside the caller's write transaction */
static enum statestore_status ss_incr_in(struct statestore *st, const char *ns, const char *key, int64_t now,
					 int64_t delta, int64_t expires_ms, int64_t *value)
{
	sqlite3_stmt *s = ss_stmt(st, SS_READ, ns, key);
	int64_t have = 0, exp = expires_ms;
	int rc;

	if (!s || sqlite3_bind_int64(s, 3, now) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (sqlite3_column_int(s, 0) != SS_COUNTER || sqlite3_column_type(s, 1) != SQLITE_INTEGER)
			return ss_end(s, STATESTORE_ETYPE);
		have = sqlite3_column_int64(s, 1);
		exp = sqlite3_column_int64(s, 2); /* a live counter keeps its expiry: a fixed window */
	} else if (rc != SQLITE_DONE) {
		return ss_status(st, ss_done(s, rc));
	}
	ss_done(s, rc);
	if ((delta > 0 && have > INT64_MAX - delta) || (delta < 0 && have < INT64_MIN - delta)) {
		snprintf(st->errmsg, sizeof st->errmsg, "counter %s/%s would overflow", ns, key);
		return STATESTORE_EINVAL;
	}
	*value = have + delta;
	s = ss_stmt(st, SS_WRITE_COUNTER, ns, key);
	if (!s || sqlite3_bind_int64(s, 3, *value) != SQLITE_OK || sqlite3_bind_int64(s, 4, now) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, exp) != SQLITE_OK)
		return ss_bind_failed(st, s);
	return ss_status(st, ss_done(s, sqlite3_step(s)));
}

static enum statestore_status ss_incr(struct statestore *st, const char *ns, const char *key, int64_t now,
				      int64_t delta, int64_t expires_ms, int64_t *value)
{
	enum statestore_status r;
	int rc;

	/* BEGIN IMMEDIATE takes the write lock first (waiting up to the busy
	 * timeout): no other process writes between the read and the write */
	if ((rc = ss_exec(st, SS_BEGIN)) != SQLITE_DONE)
		return ss_status(st, rc);
	r = ss_incr_in(st, ns, key, now, delta, expires_ms, value);
	if (r == STATESTORE_OK && (rc = ss_exec(st, SS_COMMIT)) != SQLITE_DONE)
		r = ss_status(st, rc);
	if (r != STATESTORE_OK) {
		(void)ss_exec(st, SS_ROLLBACK); /* nothing changed; fails harmlessly when COMMIT already ended it */
		return r;
	}
	ss_prune_some(st, now);
	return STATESTORE_OK;
}

static enum statestore_status ss_prune(struct statestore *st, int64_t now, size_t max, size_t *pruned)
{
	sqlite3_stmt *s = ss_stmt(st, SS_PRUNE, NULL, NULL);
	int rc;

	*pruned = 0;
	if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if ((rc = ss_done(s, sqlite3_step(s))) != SQLITE_DONE)
		return ss_status(st, rc);
	*pruned = (size_t)sqlite3_changes(ss_db(st));
	return STATESTORE_OK;
}

static enum statestore_status ss_list(struct statestore *st, const char *ns, int64_t now, const char *after, size_t max,
				      json_t **keys)
{
	sqlite3_stmt *s = ss_stmt(st, SS_LIST, ns, after);
	json_t *a;
	int rc;

	if (!s || sqlite3_bind_int64(s, 3, now) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max) != SQLITE_OK)
		return ss_bind_failed(st, s);
	if (!(a = json_array()))
		return ss_end(s, STATESTORE_ENOMEM);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);

		if (!k || json_array_append_new(a, json_string(k)) < 0) {
			json_decref(a);
			return ss_end(s, STATESTORE_ENOMEM);
		}
	}
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return ss_status(st, ss_done(s, rc));
	}
	*keys = a;
	return ss_end(s, STATESTORE_OK);
}

/* ss_header: refuse, before SQLite touches it, a path that is a symlink or
 * no regular file, a file that is no SQLite database, and an SQLite
 * database of another program. 0 (a missing or empty file is fine), or -1
 * with err */
static int ss_header(const char *path, char *err, size_t errlen)
{
	unsigned char h[SS_HEADER_BYTES];
	struct stat sb;
	ssize_t n = 0, got;
	uint32_t app;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(err, errlen, "state store %s: %s", path,
			 errno == ELOOP ? "a symbolic link; refused (give the real path)" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "state store %s: not a regular file; refused", path);
		close(fd);
		return -1;
	}
	while (n < (ssize_t)sizeof h && (got = read(fd, h + n, sizeof h - (size_t)n)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		n += got;
	}
	close(fd);
	if (n == 0)
		return 0;
	if (n < (ssize_t)sizeof h || memcmp(h, SS_MAGIC, sizeof SS_MAGIC) != 0) {
		snprintf(err, errlen,
			 "state store %s: not an SQLite database (corrupt, or another kind of file); "
			 "refused: move it away or point MCPGW_STATE_STORE elsewhere",
			 path);
		return -1;
	}
	app = (uint32_t)h[68] << 24 | (uint32_t)h[69] << 16 | (uint32_t)h[70] << 8 | h[71];
	if (app != 0 && app != SS_APPLICATION_ID) {
		snprintf(err, errlen,
			 "state store %s: an SQLite database of another program (application_id 0x%08x), "
			 "not a state store; refused",
			 path, app);
		return -1;
	}
	return 0;
}

/* ss_pragma: the integer a PRAGMA (or any one-value query) gives; -1 on failure */
static long long ss_pragma(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* ss_identity: the database is ours (made now when it is new and empty);
 * 0, or -1 with err */
static int ss_identity(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	long long app = ss_pragma(db, "PRAGMA application_id"), ver, objects;
	char *msg = NULL;
	int rc = -1;

	if (app == SS_APPLICATION_ID)
		goto version;
	/* new, or foreign: decide under the write lock (two processes may create it at once) */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	app = ss_pragma(db, "PRAGMA application_id");
	objects = ss_pragma(db, "SELECT count(*) FROM sqlite_master");
	if (app == 0 && objects == 0) {
		char sql[sizeof ss_schema + 128];

		snprintf(sql, sizeof sql, "%sPRAGMA application_id = %d; PRAGMA user_version = %d;", ss_schema,
			 SS_APPLICATION_ID, SS_SCHEMA_VERSION);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		return 0;
	}
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (app != SS_APPLICATION_ID) {
		snprintf(err, errlen,
			 "state store %s: an SQLite database of another program (application_id %lld, "
			 "%lld objects), not a state store; refused",
			 path, app, objects);
		return -1;
	}
version:
	ver = ss_pragma(db, "PRAGMA user_version");
	if (ver != SS_SCHEMA_VERSION) {
		snprintf(err, errlen, "state store %s: schema version %lld, this program knows %d; refused", path, ver,
			 SS_SCHEMA_VERSION);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "state store %s: %s", path, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return rc;
}

static void ss_close(struct statestore *st)
{
	struct ss *q = st->impl;

	if (!q)
		return;
	for (int i = 0; i < SS_NSTMT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_finalize(q->audit_ins);
	sqlite3_finalize(q->audit_prune);
	sqlite3_close(q->db);
	free(q);
	st->impl = NULL;
}

static int ss_open(struct statestore *st, const char *path, long timeout_ms, char *err, size_t errlen)
{
	struct ss *q;

	if (ss_header(path, err, errlen) < 0)
		return -1;
	if (!(q = calloc(1, sizeof *q))) {
		snprintf(err, errlen, "state store %s: out of memory", path);
		return -1;
	}
	st->impl = q;
	/* sqlopen: 0600 whatever the umask, no symlink, WAL; set-up retried while another process sets it up */
	if (!(q->db = sqlopen(path, NULL, err, errlen)))
		goto err;
	sqlite3_busy_timeout(q->db, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
	if (ss_identity(q->db, path, err, errlen) < 0)
		goto err;
	for (int i = 0; i < SS_NSTMT; i++)
		if (sqlite3_prepare_v3(q->db, ss_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "state store %s: %s", path, sqlite3_errmsg(q->db));
			goto err;
		}
	return 0;
err:
	ss_close(st);
	return -1;
}

/* ---- the audit table ---- */

/* made on first use, so that a store only the responders use never has it; an
 * added table leaves the kv schema (and SS_SCHEMA_VERSION) as it was */
static const char ss_audit_schema[] =
	"CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, key_id TEXT NOT NULL,"
	" server TEXT NOT NULL, tool TEXT NOT NULL, duration_ms INTEGER NOT NULL, outcome TEXT NOT NULL,"
	" error_code INTEGER NOT NULL, args_bytes INTEGER NOT NULL, result_bytes INTEGER NOT NULL,"
	" arguments TEXT, result TEXT);"
	"CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ms);";

/* ss_audit_ready: the table and its statements; OK or an error */
static enum statestore_status ss_audit_ready(struct statestore *st)
{
	struct ss *q = st->impl;

	if (q->audit_ins && q->audit_prune)
		return STATESTORE_OK;
	if (sqlite3_exec(q->db, ss_audit_schema, NULL, NULL, NULL) != SQLITE_OK)
		return ss_status(st, sqlite3_errcode(q->db));
	if ((!q->audit_ins &&
	     sqlite3_prepare_v3(q->db,
				"INSERT INTO audit(time_ms, key_id, server, tool, duration_ms, outcome, error_code,"
				" args_bytes, result_bytes, arguments, result) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
				-1, SQLITE_PREPARE_PERSISTENT, &q->audit_ins, NULL) != SQLITE_OK) ||
	    (!q->audit_prune && sqlite3_prepare_v3(q->db,
						   "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE time_ms < ?1"
						   " ORDER BY time_ms LIMIT ?2)",
						   -1, SQLITE_PREPARE_PERSISTENT, &q->audit_prune, NULL) != SQLITE_OK))
		return ss_status(st, sqlite3_errcode(q->db) == SQLITE_OK ? SQLITE_ERROR : sqlite3_errcode(q->db));
	return STATESTORE_OK;
}

/* ss_audit_bind: row r into the insert statement s */
static int ss_audit_bind(sqlite3_stmt *s, const struct statestore_audit_row *r)
{
	sqlite3_reset(s);
	return sqlite3_bind_int64(s, 1, r->time_ms) != SQLITE_OK ||
			       sqlite3_bind_text(s, 2, r->caller, -1, SQLITE_STATIC) != SQLITE_OK ||
			       sqlite3_bind_text(s, 3, r->server, -1, SQLITE_STATIC) != SQLITE_OK ||
			       sqlite3_bind_text(s, 4, r->tool, -1, SQLITE_STATIC) != SQLITE_OK ||
			       sqlite3_bind_int64(s, 5, r->duration_ms) != SQLITE_OK ||
			       sqlite3_bind_text(s, 6, r->outcome, -1, SQLITE_STATIC) != SQLITE_OK ||
			       sqlite3_bind_int64(s, 7, r->error_code) != SQLITE_OK ||
			       sqlite3_bind_int64(s, 8, r->args_bytes) != SQLITE_OK ||
			       sqlite3_bind_int64(s, 9, r->result_bytes) != SQLITE_OK ||
			       (r->arguments ? sqlite3_bind_text(s, 10, r->arguments, -1, SQLITE_STATIC)
					     : sqlite3_bind_null(s, 10)) != SQLITE_OK ||
			       (r->result ? sqlite3_bind_text(s, 11, r->result, -1, SQLITE_STATIC)
					  : sqlite3_bind_null(s, 11)) != SQLITE_OK
		       ? -1
		       : 0;
}

static enum statestore_status ss_audit_append(struct statestore *st, const struct statestore_audit_row *rows, size_t n)
{
	struct ss *q = st->impl;
	enum statestore_status r;
	int rc = SQLITE_OK;

	if ((r = ss_audit_ready(st)) != STATESTORE_OK)
		return r;
	if ((r = ss_status(st, ss_exec(st, SS_BEGIN))) != STATESTORE_OK)
		return r;
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		if (ss_audit_bind(q->audit_ins, &rows[i]) < 0)
			rc = sqlite3_errcode(q->db) == SQLITE_OK ? SQLITE_ERROR : sqlite3_errcode(q->db);
		else if ((rc = ss_done(q->audit_ins, sqlite3_step(q->audit_ins))) == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_clear_bindings(q->audit_ins);
	if (rc == SQLITE_OK && (rc = ss_exec(st, SS_COMMIT)) == SQLITE_DONE)
		return STATESTORE_OK;
	r = ss_status(st, rc);
	(void)ss_exec(st, SS_ROLLBACK);
	return r;
}

static enum statestore_status ss_audit_prune(struct statestore *st, int64_t before_ms, size_t max, size_t *pruned)
{
	struct ss *q = st->impl;
	enum statestore_status r;
	int rc;

	*pruned = 0;
	if ((r = ss_audit_ready(st)) != STATESTORE_OK)
		return r;
	sqlite3_reset(q->audit_prune);
	if (sqlite3_bind_int64(q->audit_prune, 1, before_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(q->audit_prune, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max) != SQLITE_OK)
		return ss_bind_failed(st, q->audit_prune);
	rc = ss_done(q->audit_prune, sqlite3_step(q->audit_prune));
	if ((r = ss_status(st, rc)) == STATESTORE_OK)
		*pruned = (size_t)sqlite3_changes(q->db);
	return r;
}

const struct statestore_ops statestore_sqlite_ops = {
	.scheme = "sqlite",
	.open = ss_open,
	.close = ss_close,
	.get = ss_get,
	.put = ss_put,
	.add = ss_add,
	.take = ss_take,
	.del = ss_del,
	.claim = ss_claim,
	.release = ss_release,
	.incr = ss_incr,
	.list = ss_list,
	.prune = ss_prune,
	.audit_append = ss_audit_append,
	.audit_prune = ss_audit_prune,
};
