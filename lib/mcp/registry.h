/* registry.h: the SQLite (WAL) registry: MCP servers' state and their tools with exposed names. */
#ifndef MCPGW_REGISTRY_H
#define MCPGW_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct registry;

struct registry_server {
	const char *name, *transport, *fingerprint, *state;
	const char *protocol_version; /* may be NULL */
	const json_t *server_info;    /* may be NULL */
	const char *last_error;       /* may be NULL or "" */
	int restarts;
	long pid;
};

struct registry_tool {
	const char *server, *mcp_name, *exposed_name;
	const json_t *tool;    /* the server's Tool object, or NULL and: */
	const char *tool_json; /* its compact JSON text (parsed one row at a time) */
};

/* registry_open: open (creating) the database at path, WAL mode, schema
 * migrated. A file there that is no SQLite database or a damaged one is
 * renamed to path.corrupt-SECONDS (its -wal and -shm likewise), logged, and
 * a new database made: the registry only caches what the servers say. NULL
 * with err filled on failure. A registry is used by one
 * thread at a time (SQLite's multi-thread mode); a lock another process
 * holds is waited for up to SQLOPEN_BUSY_MS. */
struct registry *registry_open(const char *path, char *err, size_t errlen);
void registry_close(struct registry *r);
/* registry_cancel_waits: from now on a database locked by another process
 * is not waited for (the call fails at once; a wait under way ends within
 * 10 ms). Safe from any thread: a shutdown uses it so that it never waits
 * on someone else's lock. */
void registry_cancel_waits(struct registry *r);

/* registry_put_server: insert or update one server row. 0 or -1. */
int registry_put_server(struct registry *r, const struct registry_server *s);
/* registry_prune_servers: delete servers (and their tools) not in names[0..n). 0 or -1. */
int registry_prune_servers(struct registry *r, const char *const *names, size_t n);
/* registry_replace_tools: replace the whole tools table in one transaction. 0 or -1. */
int registry_replace_tools(struct registry *r, const struct registry_tool *t, size_t n);
/* registry_load_tools: the cached Tool objects of server (in listing order)
 * when its stored fingerprint equals fingerprint; NULL otherwise (also when
 * none is left, or out of memory). Rows that are not a JSON object are
 * skipped; the objects' members are not checked: the database file is outside input, so a caller
 * checks every member it uses (a name may be missing). New reference. */
json_t *registry_load_tools(struct registry *r, const char *server, const char *fingerprint);

/* registry_errmsg: the last SQLite error text. */
const char *registry_errmsg(struct registry *r);

/* registry_server_pid_fn: one saved server with a pid: its name and pid (borrowed for the call), and when
 * its row was last written (seconds since the epoch) */
typedef void registry_server_pid_fn(void *ud, const char *name, long pid, int64_t updated_s);
/* registry_server_pids: fn(ud, ...) for every saved server whose row names a pid; 0, or -1 (a read failed) */
int registry_server_pids(struct registry *r, registry_server_pid_fn *fn, void *ud);

#endif
