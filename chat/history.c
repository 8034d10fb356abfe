/* history.c: mcpgw-chat's conversations in SQLite (WAL): sessions and their messages, in order. */
#include "history.h"
#include "core/sqlopen.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct history {
	sqlite3 *db;
};

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
				 "CREATE TABLE IF NOT EXISTS sessions("
				 " name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
				 "CREATE TABLE IF NOT EXISTS messages("
				 " session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,"
				 " seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY(session, seq));"
				 "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');";

struct history *history_open(const char *path, char *err, size_t errlen)
{
	struct history *h = calloc(1, sizeof *h);

	if (!h) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (!(h->db = sqlopen(path, schema_sql, err, errlen))) {
		free(h);
		return NULL;
	}
	return h;
}

void history_close(struct history *h)
{
	if (!h)
		return;
	sqlite3_close(h->db);
	free(h);
}

const char *history_errmsg(struct history *h)
{
	return h && h->db ? sqlite3_errmsg(h->db) : "no database";
}

int history_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > HISTORY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

/* history_name_stmt: run sql with ?1 = name (and ?2 = now); 0 or -1 */
static int history_name_stmt(struct history *h, const char *sql, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
	    (sqlite3_bind_parameter_count(st) < 2 || sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL)) == SQLITE_OK) &&
	    sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	return rc;
}

int history_claim(struct history *h, const char *name)
{
	static const char sql[] = "INSERT INTO sessions(name, created_at, updated_at) VALUES(?1, ?2, ?2)"
				  " ON CONFLICT(name) DO NOTHING";

	if (history_name_stmt(h, sql, name) < 0)
		return -1;
	return sqlite3_changes(h->db) == 1 ? 1 : 0;
}

int history_drop_empty(struct history *h, const char *name)
{
	static const char sql[] = "DELETE FROM sessions WHERE name = ?1"
				  " AND NOT EXISTS (SELECT 1 FROM messages WHERE session = ?1)";

	return history_name_stmt(h, sql, name);
}

json_t *history_load(struct history *h, const char *name)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	int step;

	if (!a ||
	    sqlite3_prepare_v2(h->db, "SELECT message FROM messages WHERE session = ?1 ORDER BY seq", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
		goto err;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		json_t *m = text ? json_loads(text, 0, NULL) : NULL;

		if (!json_is_object(m)) {
			json_decref(m);
			goto err;
		}
		if (json_array_append_new(a, m) < 0) /* steals m, also on failure */
			goto err;
	}
	if (step != SQLITE_DONE)
		goto err;
	sqlite3_finalize(st);
	return a;
err:
	sqlite3_finalize(st);
	json_decref(a);
	return NULL;
}

/* history_exec: one statement without results; 0 or -1 */
static int history_exec(struct history *h, const char *sql)
{
	return sqlite3_exec(h->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* history_touch: create the session or update its time; its next seq in *seq */
static int history_touch(struct history *h, const char *name, sqlite3_int64 *seq)
{
	static const char up[] = "INSERT INTO sessions(name, created_at, updated_at) VALUES(?1, ?2, ?2)"
				 " ON CONFLICT(name) DO UPDATE SET updated_at = ?2";
	static const char next[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session = ?1";
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(h->db, up, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL)) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(h->db, next, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*seq = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* history_insert: messages from seq on */
static int history_insert(struct history *h, const char *name, const json_t *messages, sqlite3_int64 seq)
{
	static const char ins[] = "INSERT INTO messages(session, seq, message) VALUES(?1, ?2, ?3)";
	sqlite3_stmt *st = NULL;
	const json_t *m;
	size_t i;
	int rc = -1;

	if (sqlite3_prepare_v2(h->db, ins, -1, &st, NULL) != SQLITE_OK)
		return -1;
	json_array_foreach(messages, i, m) {
		char *text;

		if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, seq + (sqlite3_int64)i) != SQLITE_OK ||
		    !(text = json_dumps(m, JSON_COMPACT)))
			goto out;
		/* SQLite owns text from here, and frees it even when binding fails */
		if (sqlite3_bind_text(st, 3, text, -1, free) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int history_append(struct history *h, const char *name, const json_t *messages)
{
	sqlite3_int64 seq = 0;

	if (history_exec(h, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (history_touch(h, name, &seq) < 0 || history_insert(h, name, messages, seq) < 0 ||
	    history_exec(h, "COMMIT") < 0) {
		(void)history_exec(h, "ROLLBACK");
		return -1;
	}
	return 0;
}

json_t *history_list(struct history *h)
{
	static const char sql[] = "SELECT s.name, COUNT(m.seq), s.created_at, s.updated_at FROM sessions s"
				  " LEFT JOIN messages m ON m.session = s.name GROUP BY s.name"
				  " ORDER BY s.updated_at DESC, s.name";
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	int step;

	if (!a || sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto err;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "name", (const char *)sqlite3_column_text(st, 0),
				      "messages", (json_int_t)sqlite3_column_int64(st, 1), "created",
				      (json_int_t)sqlite3_column_int64(st, 2), "updated",
				      (json_int_t)sqlite3_column_int64(st, 3));

		if (!o || json_array_append_new(a, o) < 0)
			goto err;
	}
	if (step != SQLITE_DONE)
		goto err;
	sqlite3_finalize(st);
	return a;
err:
	sqlite3_finalize(st);
	json_decref(a);
	return NULL;
}
