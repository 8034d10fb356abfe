/* registry.c: SQLite registry of MCP servers and tools (schema, upserts, cached tool lists). */
#include "mcp/registry.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sqlopen.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REGISTRY_SCHEMA_VERSION 1

#define REGISTRY_BUSY_STEP_MS 10 /* a locked database is tried again this often */

struct registry {
	sqlite3 *db;
	int cancel; /* atomic: a lock is no longer waited for (registry_cancel_waits) */
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS servers("
	" name TEXT PRIMARY KEY, transport TEXT NOT NULL, fingerprint TEXT NOT NULL,"
	" state TEXT NOT NULL, protocol_version TEXT, server_info TEXT, last_error TEXT,"
	" restarts INTEGER NOT NULL DEFAULT 0, pid INTEGER, updated_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS tools("
	" server TEXT NOT NULL REFERENCES servers(name) ON DELETE CASCADE,"
	" mcp_name TEXT NOT NULL, exposed_name TEXT NOT NULL UNIQUE, position INTEGER NOT NULL,"
	" description TEXT, input_schema TEXT, output_schema TEXT, annotations TEXT,"
	" tool_json TEXT NOT NULL, PRIMARY KEY(server, mcp_name));"
	/* mixed-batch histories moved to the state store (lib/core/statestore): an older registry's copies go */
	"DROP TABLE IF EXISTS sessions;"
	"INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');";

/* reg_busy: SQLite's busy handler: wait for a lock another process holds
 * for up to SQLOPEN_BUSY_MS, unless registry_cancel_waits said not to */
static int reg_busy(void *ud, int count)
{
	struct registry *r = ud;

	if (__atomic_load_n(&r->cancel, __ATOMIC_ACQUIRE) || (long)count * REGISTRY_BUSY_STEP_MS >= SQLOPEN_BUSY_MS)
		return 0;
	clock_sleep_ms(REGISTRY_BUSY_STEP_MS);
	return 1;
}

/* set_aside: the damaged database at path (and its -wal and -shm) renamed to
 * path.corrupt-SECONDS[-wal|-shm] for the operator; 0, or -1 (err filled) */
static int set_aside(const char *path, char *err, size_t errlen)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char from[4200], to[4200];
	long long now = (long long)time(NULL);

	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		if ((size_t)snprintf(from, sizeof from, "%s%s", path, sfx[i]) >= sizeof from ||
		    (size_t)snprintf(to, sizeof to, "%s.corrupt-%lld%s", path, now, sfx[i]) >= sizeof to) {
			snprintf(err, errlen, "%s: path too long to set the damaged database aside", path);
			return -1;
		}
		if (rename(from, to) < 0 && (i == 0 || errno != ENOENT)) {
			snprintf(err, errlen, "%s: damaged, and it cannot be set aside: %s", from, strerror(errno));
			return -1;
		}
	}
	snprintf(err, errlen, "%s.corrupt-%lld", path, now);
	return 0;
}

struct registry *registry_open(const char *path, char *err, size_t errlen)
{
	struct registry *r = calloc(1, sizeof *r);
	char why[512], aside[4300];
	int corrupt;

	if (!r) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (!(r->db = sqlopen_corrupt(path, schema_sql, err, errlen, &corrupt)) && corrupt) {
		/* only a cache of what the servers say: a damaged one is kept aside, a new one made */
		snprintf(why, sizeof why, "%s", err);
		if (set_aside(path, aside, sizeof aside) < 0)
			snprintf(err, errlen, "%s", aside);
		else if ((r->db = sqlopen(path, schema_sql, err, errlen)))
			log_error("registry %s; set aside as %s, a new one made (the tools are listed again by their servers)",
				  why, aside);
	}
	if (!r->db) {
		free(r);
		return NULL;
	}
	sqlite3_busy_handler(r->db, reg_busy, r);
	return r;
}

void registry_cancel_waits(struct registry *r)
{
	if (r)
		__atomic_store_n(&r->cancel, 1, __ATOMIC_RELEASE);
}

void registry_close(struct registry *r)
{
	if (!r)
		return;
	sqlite3_close(r->db);
	free(r);
}

const char *registry_errmsg(struct registry *r)
{
	return r && r->db ? sqlite3_errmsg(r->db) : "no database";
}

/* bind_json: bind j serialised (or NULL) as text; the text is freed by SQLite */
static int bind_json(sqlite3_stmt *st, int i, const json_t *j)
{
	char *s;

	if (!j)
		return sqlite3_bind_null(st, i);
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return SQLITE_NOMEM;
	return sqlite3_bind_text(st, i, s, -1, free);
}

int registry_put_server(struct registry *r, const struct registry_server *s)
{
	static const char sql[] =
		"INSERT INTO servers(name, transport, fingerprint, state, protocol_version, server_info,"
		" last_error, restarts, pid, updated_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
		" ON CONFLICT(name) DO UPDATE SET transport=?2, fingerprint=?3, state=?4,"
		" protocol_version=?5, server_info=?6, last_error=?7, restarts=?8, pid=?9, updated_at=?10";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 2, s->transport, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 3, s->fingerprint, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 4, s->state, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 5, s->protocol_version, -1, SQLITE_STATIC);
	rc |= bind_json(st, 6, s->server_info);
	rc |= sqlite3_bind_text(st, 7, s->last_error, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 8, s->restarts);
	rc |= s->pid > 0 ? sqlite3_bind_int64(st, 9, s->pid) : sqlite3_bind_null(st, 9);
	rc |= sqlite3_bind_int64(st, 10, (sqlite3_int64)time(NULL));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -1;
}

int registry_prune_servers(struct registry *r, const char *const *names, size_t n)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	int rc = -1;

	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(r->db, "SELECT name FROM servers", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "DELETE FROM servers WHERE name = ?1", -1, &del, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(sel) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(sel, 0);
		size_t i;

		for (i = 0; i < n && strcmp(names[i], name ? name : "") != 0; i++)
			;
		if (i < n || !name)
			continue;
		if (sqlite3_bind_text(del, 1, name, -1, SQLITE_TRANSIENT) != SQLITE_OK || sqlite3_step(del) != SQLITE_DONE)
			goto out;
		sqlite3_reset(del);
	}
	rc = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	if (sqlite3_exec(r->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		rc = -1;
	return rc;
}

static int insert_tool(sqlite3_stmt *st, const struct registry_tool *t, int pos)
{
	json_t *parsed = t->tool ? NULL : json_loads(t->tool_json ? t->tool_json : "", 0, NULL);
	const json_t *tool = t->tool ? t->tool : parsed;
	int rc;

	if (!json_is_object(tool)) {
		json_decref(parsed);
		return -1;
	}
	rc = sqlite3_bind_text(st, 1, t->server, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 2, t->mcp_name, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 3, t->exposed_name, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int(st, 4, pos);
	rc |= sqlite3_bind_text(st, 5, json_string_value(json_object_get(tool, "description")), -1, SQLITE_STATIC);
	rc |= bind_json(st, 6, json_object_get(tool, "inputSchema"));
	rc |= bind_json(st, 7, json_object_get(tool, "outputSchema"));
	rc |= bind_json(st, 8, json_object_get(tool, "annotations"));
	rc |= bind_json(st, 9, tool);
	if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
		json_decref(parsed);
		return -1;
	}
	json_decref(parsed);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return 0;
}

int registry_replace_tools(struct registry *r, const struct registry_tool *t, size_t n)
{
	static const char sql[] =
		"INSERT INTO tools(server, mcp_name, exposed_name, position, description,"
		" input_schema, output_schema, annotations, tool_json) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)";
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(r->db, "DELETE FROM tools", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (insert_tool(st, &t[i], (int)i) < 0)
			goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (sqlite3_exec(r->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		rc = -1;
	return rc;
}

int registry_server_pids(struct registry *r, registry_server_pid_fn *fn, void *ud)
{
	static const char sql[] = "SELECT name, pid, updated_at FROM servers WHERE pid > 0";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name)
			fn(ud, name, (long)sqlite3_column_int64(st, 1), (int64_t)sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

json_t *registry_load_tools(struct registry *r, const char *server, const char *fingerprint)
{
	static const char sql[] = "SELECT t.tool_json FROM tools t JOIN servers s ON s.name = t.server"
				  " WHERE t.server = ?1 AND s.fingerprint = ?2 ORDER BY t.position";
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, fingerprint, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	if (!(arr = json_array()))
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *txt = (const char *)sqlite3_column_text(st, 0);
		json_error_t err;
		json_t *tool = txt ? json_loads(txt, 0, &err) : NULL;

		if (!tool && txt && json_error_code(&err) == json_error_out_of_memory) {
			json_decref(arr); /* out of memory: no cached list rather than one missing a tool */
			arr = NULL;
			goto out;
		}
		if (!json_is_object(tool)) { /* the file is not ours alone: a row that is no Tool is skipped */
			json_decref(tool);
			continue;
		}
		if (json_array_append_new(arr, tool) < 0) {
			json_decref(arr);
			arr = NULL;
			goto out;
		}
	}
	if (rc != SQLITE_DONE || json_array_size(arr) == 0) {
		json_decref(arr);
		arr = NULL;
	}
out:
	sqlite3_finalize(st);
	return arr;
}
