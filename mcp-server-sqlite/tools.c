/* tools.c: describe the six SQLite tools and run them, shaping every outcome as an MCP tool result. */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "core/log.h"
#include "sqljson.h"

typedef json_t *(*tools_fn)(struct tools_ctx *c, const char *arg, size_t len);

struct tools_def {
	const char *name;
	const char *description; /* a printf format: %ld is the row limit */
	const char *arg;         /* the one required string argument, NULL if none */
	const char *arg_desc;
	int read_only;
	int destructive;
	tools_fn fn;
};

/* tools_result: a new CallToolResult with one text item s[0..n). */
static json_t *tools_result(const char *s, size_t n, int is_error)
{
	return json_pack("{s:[{s:s, s:o}], s:b}", "content", "type", "text", "text", sqljson_text(s, n), "isError",
			 is_error);
}

static json_t *tools_error(const char *prefix, const char *msg)
{
	buf_t b = BUF_INIT;
	json_t *res = NULL;

	if (buf_printf(&b, "%s: %s", prefix, msg) == 0)
		res = tools_result(b.data, b.len, 1);
	buf_free(&b);
	return res;
}

/* tools_db_error: the isError result for a failed sqlitedb call; NULL on ENOMEM. */
static json_t *tools_db_error(enum sqlitedb_err e, const struct sqlitedb_result *r)
{
	log_debug("tool refused or failed: %s: %s", sqlitedb_strerror(e), r->msg);
	if (e == SQLITEDB_ENOMEM)
		return NULL;
	return tools_error(e == SQLITEDB_EREFUSED  ? "Error"
			   : e == SQLITEDB_ETOOBIG ? "Too large"
						   : "Database error",
			   r->msg);
}

/* tools_truncated_note: append a second text item saying why rows are missing. */
static int tools_truncated_note(json_t *res, const struct tools_ctx *c, const struct sqlitedb_result *r)
{
	char note[256];

	if (r->over_bytes)
		snprintf(note, sizeof note,
			 "Result truncated: only the first %zu rows are shown, "
			 "because the result would exceed %ld bytes (MCP_SQLITE_MAX_RESULT_BYTES=%ld).",
			 json_array_size(r->rows), c->db->b.max_result_bytes, c->db->b.max_result_bytes);
	else
		snprintf(note, sizeof note,
			 "Result truncated: only the first %ld rows are shown "
			 "(MCP_SQLITE_MAX_ROWS=%ld).",
			 c->db->b.max_rows, c->db->b.max_rows);
	return json_array_append_new(json_object_get(res, "content"),
				     json_pack("{s:s, s:s}", "type", "text", "text", note));
}

/* tools_rows: the result for a call that returns rows (text: a JSON array of objects). */
static json_t *tools_rows(const struct tools_ctx *c, enum sqlitedb_err e, const struct sqlitedb_result *r)
{
	size_t digits = r->exact15 ? 15 : 17;
	char *text;
	json_t *res;

	if (e != SQLITEDB_OK)
		return tools_db_error(e, r);
	text = json_dumps(r->rows, JSON_REAL_PRECISION(digits));
	if (!text)
		return NULL;
	res = tools_result(text, strlen(text), 0);
	free(text);
	if (res && r->truncated && tools_truncated_note(res, c, r) < 0) {
		json_decref(res);
		return NULL;
	}
	return res;
}

static json_t *tools_read_query(struct tools_ctx *c, const char *q, size_t n)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = sqlitedb_read(c->db, q, n, &r);
	json_t *res = tools_rows(c, e, &r);

	sqlitedb_result_free(&r);
	return res;
}

static json_t *tools_write_query(struct tools_ctx *c, const char *q, size_t n)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = sqlitedb_write(c->db, q, n, &r);
	char text[64];

	if (e != SQLITEDB_OK)
		return tools_db_error(e, &r);
	snprintf(text, sizeof text, "{\"affected_rows\": %lld}", r.changes);
	return tools_result(text, strlen(text), 0);
}

static json_t *tools_create_table(struct tools_ctx *c, const char *q, size_t n)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = sqlitedb_create_table(c->db, q, n, &r);
	static const char ok[] = "Table created successfully";

	if (e != SQLITEDB_OK)
		return tools_db_error(e, &r);
	return tools_result(ok, sizeof ok - 1, 0);
}

static json_t *tools_list_tables(struct tools_ctx *c, const char *unused, size_t n)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = sqlitedb_list_tables(c->db, &r);
	json_t *res = tools_rows(c, e, &r);

	(void)unused;
	(void)n;
	sqlitedb_result_free(&r);
	return res;
}

static json_t *tools_describe_table(struct tools_ctx *c, const char *name, size_t n)
{
	struct sqlitedb_result r = { 0 };
	enum sqlitedb_err e = sqlitedb_describe_table(c->db, name, n, &r);
	json_t *res = tools_rows(c, e, &r);

	sqlitedb_result_free(&r);
	return res;
}

static json_t *tools_append_insight(struct tools_ctx *c, const char *insight, size_t n)
{
	static const char ok[] = "Insight added to memo";
	enum memo_err e = memo_add(c->memo, insight, n);

	if (e == MEMO_ENOMEM)
		return NULL;
	if (e != MEMO_OK)
		return tools_error("Error", memo_strerror(e));
	c->memo_changed = 1;
	return tools_result(ok, sizeof ok - 1, 0);
}

static const struct tools_def tools_defs[] = {
	{ "read_query",
	  "Run one read-only SELECT query (WITH ... SELECT and VALUES too) on the SQLite database. "
	  "Returns the rows as a JSON array of objects mapping column names to values; BLOB values are "
	  "upper-case hex strings. At most %ld rows are returned.",
	  "query", "The SELECT statement to run", 1, 0, tools_read_query },
	{ "write_query",
	  "Run one INSERT, UPDATE, DELETE or REPLACE statement on the SQLite database. "
	  "Returns {\"affected_rows\": N}.",
	  "query", "The INSERT, UPDATE, DELETE or REPLACE statement to run", 0, 1, tools_write_query },
	{ "create_table", "Create a new table in the SQLite database with one CREATE TABLE statement.", "query",
	  "The CREATE TABLE statement to run", 0, 0, tools_create_table },
	{ "list_tables", "List the tables of the SQLite database as a JSON array of {\"name\": ...} objects.", NULL,
	  NULL, 1, 0, tools_list_tables },
	{ "describe_table",
	  "Show the columns of a table (cid, name, type, notnull, dflt_value, pk) as a JSON array of objects.",
	  "table_name", "The name of the table to describe", 1, 0, tools_describe_table },
	{ "append_insight",
	  "Add a business insight discovered during the data analysis to the memo resource memo://insights.", "insight",
	  "The business insight, in one or two sentences", 0, 0, tools_append_insight },
};

#define TOOLS_COUNT (sizeof tools_defs / sizeof tools_defs[0])

/* tools_entry: the tools/list entry for d. */
static json_t *tools_entry(const struct tools_def *d, long max_rows)
{
	json_t *props = json_object(), *req = json_array(), *ann, *res = NULL;
	buf_t desc = BUF_INIT;

	if (!props || !req || buf_printf(&desc, d->description, max_rows) < 0)
		goto out;
	if (d->arg && (json_object_set_new(props, d->arg,
					   json_pack("{s:s, s:s}", "type", "string", "description", d->arg_desc)) < 0 ||
		       json_array_append_new(req, json_string(d->arg)) < 0))
		goto out;
	ann = d->read_only ? json_pack("{s:b, s:b}", "readOnlyHint", 1, "openWorldHint", 0)
			   : json_pack("{s:b, s:b, s:b}", "readOnlyHint", 0, "destructiveHint", d->destructive,
				       "openWorldHint", 0);
	res = json_pack("{s:s, s:s, s:{s:s, s:O, s:O}, s:o}", "name", d->name, "description", desc.data, "inputSchema",
			"type", "object", "properties", props, "required", req, "annotations", ann);
out:
	json_decref(props);
	json_decref(req);
	buf_free(&desc);
	return res;
}

json_t *tools_list(const struct tools_ctx *c)
{
	json_t *tools = json_array();

	for (size_t i = 0; tools && i < TOOLS_COUNT; i++) {
		if (json_array_append_new(tools, tools_entry(&tools_defs[i], c->db->b.max_rows)) < 0) {
			json_decref(tools);
			return NULL;
		}
	}
	return json_pack("{s:o}", "tools", tools);
}

/* tools_arg: check the tool's argument; on a problem returns the isError result in *bad. */
static int tools_arg(const struct tools_def *d, const json_t *args, const json_t **val, json_t **bad)
{
	char msg[160];

	*val = NULL;
	*bad = NULL;
	if (!d->arg)
		return 0;
	*val = args ? json_object_get(args, d->arg) : NULL;
	if (json_is_string(*val))
		return 0;
	snprintf(msg, sizeof msg, *val ? "Argument %s must be a string" : "Missing required argument: %s", d->arg);
	*bad = tools_error("Error", msg);
	return -1;
}

json_t *tools_call(struct tools_ctx *c, const char *name, const json_t *args, int *code, char *msg, size_t msglen)
{
	const json_t *val;
	json_t *res = NULL;

	for (size_t i = 0; i < TOOLS_COUNT; i++) {
		const struct tools_def *d = &tools_defs[i];

		if (strcmp(d->name, name) != 0)
			continue;
		log_debug("tools/call %s", name);
		if (tools_arg(d, args, &val, &res) == 0)
			res = d->fn(c, val ? json_string_value(val) : NULL, val ? json_string_length(val) : 0);
		if (!res) {
			*code = JR_INTERNAL_ERROR;
			snprintf(msg, msglen, "out of memory");
		}
		return res;
	}
	*code = JR_INVALID_PARAMS;
	snprintf(msg, msglen, "Unknown tool: %.200s", name);
	return NULL;
}
