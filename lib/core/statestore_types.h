/* statestore_types.h: the state store's limits and status codes, shared by its callers (statestore.h) and its backends (statestore_backend.h). */
#ifndef MCPGW_STATESTORE_TYPES_H
#define MCPGW_STATESTORE_TYPES_H

#include <stdint.h>

#define STATESTORE_NS_MAX 64     /* longest namespace, bytes */
#define STATESTORE_KEY_MAX 512   /* longest key, bytes */
#define STATESTORE_PRUNE_STEP 16 /* expired entries each write removes at most (see statestore_prune) */

enum statestore_status {
	STATESTORE_OK = 0,
	STATESTORE_NOTFOUND, /* no such entry (or it expired); release: not held with that token */
	STATESTORE_HELD,     /* claim: another holder has it and it has not expired */
	STATESTORE_EBUSY,    /* another process held the store longer than the timeout; nothing changed */
	STATESTORE_ETOOBIG,  /* a value larger than asked for (get) or than the backend takes (put) */
	STATESTORE_EINVAL,   /* a namespace or key empty or too long, a negative TTL, no handle */
	STATESTORE_ETYPE,    /* incr of an entry that is no counter; a _json get of bytes that are no JSON */
	STATESTORE_ENOMEM,
	STATESTORE_EBACKEND /* the backend failed (disk, corruption...): statestore_errmsg says how */
};

struct statestore;

/* one tool call as audited; strings borrowed, "" when not known */
struct statestore_audit_row {
	int64_t time_ms;     /* when the call started, wall-clock ms */
	const char *caller;  /* the caller's opaque id ("": anonymous) */
	const char *server;  /* the MCP server */
	const char *tool;    /* the tool's name on that server */
	int64_t duration_ms; /* until its answer (or failure) */
	const char *outcome; /* "ok", "is_error" (a result with isError) or "error" (JSON-RPC error, timeout, failure) */
	int64_t error_code;  /* the JSON-RPC error code for "error", else 0 */
	int64_t args_bytes;  /* the arguments' size, compact JSON */
	int64_t result_bytes;  /* the result's (or error's) size, compact JSON */
	const char *arguments; /* the arguments (JSON text), NULL unless payloads are audited */
	const char *result;    /* the result or error (JSON text), NULL likewise */
};


#endif
