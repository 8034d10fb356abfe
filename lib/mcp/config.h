/* config.h: servers_config.json (the Claude-Desktop "mcpServers" shape) loading. */
#ifndef MCPGW_CONFIG_H
#define MCPGW_CONFIG_H

#include <stddef.h>

enum cfg_transport {
	CFG_STDIO = 0, /* "command" (+ "args", "env", "cwd") */
	CFG_HTTP,      /* "type": "http" | "streamable-http" | "streamableHttp" | "streamable_http" */
	CFG_SSE,       /* "type": "sse" */
	CFG_AUTO       /* "url" with no "type": try Streamable HTTP, fall back to SSE */
};

struct cfg_server {
	char *name; /* key in mcpServers; ^[A-Za-z0-9_.-]{1,64}$ */
	enum cfg_transport transport;
	int disabled; /* "disabled": true */
	/* stdio */
	char *command; /* expanded */
	char **args;   /* expanded, nargs entries */
	size_t nargs;
	char **env; /* "KEY=VALUE", expanded values, nenv entries */
	size_t nenv;
	char *cwd; /* optional "cwd", NULL if absent */
	/* remote */
	char *url;
	char **headers; /* "Name: value", expanded, nheaders entries */
	size_t nheaders;
	/* tool filter: fnmatch(3) patterns on the MCP tool name */
	char **include_tools; /* "includeTools": if non-empty, only matching tools */
	size_t ninclude;
	char **exclude_tools; /* "excludeTools": matching tools are hidden (wins over include) */
	size_t nexclude;
	long timeout_ms; /* optional "timeout" (ms, >= 1000) for tool calls; 0 = MCPGW_TOOL_TIMEOUT */
	/* optional "maxConcurrentCalls" (1..65536): tool calls in flight on this server at once;
	 * optional "maxQueuedCalls" (0..65536): calls waiting for a place; -1 when absent (then
	 * MCPGW_SERVER_MAX_CONCURRENT_CALLS, MCPGW_SERVER_MAX_QUEUED_CALLS) */
	int max_concurrent_calls;
	int max_queued_calls;
};

struct cfg {
	struct cfg_server *servers; /* in file order */
	size_t nservers;
};

/* Largest servers_config.json accepted. */
#define CFG_MAX_BYTES (1024 * 1024)

/* Schema notes (see config.c):
 *  - Unknown keys, at the top level and in a server, are ignored without
 *    error, to stay compatible with other tools' configs (e.g. "alwaysAllow").
 *    Keys of the other transport ("args"/"env"/"cwd" on a remote server,
 *    "headers" on a stdio one) are ignored too. Not ignored, but errors that
 *    name the client and the fix: other MCP clients' shapes whose loss would
 *    be silently wrong (a top-level "servers", "mcp", "context_servers",
 *    "mcp_servers", "extensions" or Continue's "experimental" list when
 *    "mcpServers" is missing; "mcpServers" nested or misspelt; in a server
 *    "serverUrl", "httpUrl", "uri", "cmd", "envs", "environment", "envFile",
 *    "disabledTools", "transport", "enabled": false, "tools" other than
 *    ["*"], "type" "local"/"remote", "command" as an array or object) and
 *    near misses of a server key ("comand": did you mean "command"?).
 *  - "timeout" is milliseconds, 1000..86400000 (smaller values are seconds
 *    written by mistake: refused with the value times 1000 as the fix).
 *  - "maxConcurrentCalls" is an integer 1..65536, "maxQueuedCalls" 0..65536.
 *  - "env" and "headers" values may be strings, integers, reals ("%.15g") or
 *    booleans ("true"/"false"); numbers and booleans are stringified, only
 *    strings are expanded. null, arrays and objects are errors.
 *  - "type": "stdio" with "url", a remote type without "url" or with
 *    "command", and "command" together with "url" but no "type" are errors.
 *  - Duplicate keys anywhere in the document are errors.
 *  - A disabled server is validated for shape but not expanded: its strings
 *    are stored as written.
 *  - "url" must start with http:// or https:// (after expansion); header
 *    names must be RFC 9110 tokens, header values must hold no CR/LF; env
 *    names must be non-empty printable ASCII without blanks or '='. */

/* cfg_load: read and validate path. On error returns -1 and writes a message
 * naming the file, the key and what is wrong into err, e.g.
 *   "servers_config.json: mcpServers.sqlite.args[1]: expected a string",
 *   "servers_config.json: no "mcpServers" object; found "servers" (the VS
 *   Code mcp.json shape): rename it to "mcpServers"".
 * ${VAR} and ${VAR:-default} are expanded from the process environment in
 * command, args, env values, cwd, url and header values; "$${" is a literal
 * "${". An unset ${VAR} with no default is an error, except in disabled
 * servers (which are not expanded). A file owned by another user than this
 * process's (root's is fine) or writable by group or others is refused
 * (conftrust_stat: "PATH is writable by its group ...; fix: chmod go-w
 * PATH"). On success returns 0 and fills *out. */
int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen);
/* cfg_load_string: the same from memory; name is used in messages. */
int cfg_load_string(const char *json, const char *name, struct cfg *out, char *err, size_t errlen);
void cfg_free(struct cfg *c);

/* cfg_tool_allowed: 1 if the server's include/exclude lists let mcp_name through. */
int cfg_tool_allowed(const struct cfg_server *s, const char *mcp_name);

/* cfg_expand: expand ${VAR} / ${VAR:-default} in s. Returns a malloc'd string,
 * or NULL with err filled ("${NAME} is not set") on error.
 * NAME is [A-Za-z_][A-Za-z0-9_]* (up to 255 bytes); ${VAR} of a set but empty
 * variable is "", ${VAR:-default} uses default when VAR is unset or empty.
 * default runs to the first '}' and is not expanded again, nor are values.
 * "$${" gives "${"; a '$' not followed by '{' is kept. Errors: unterminated
 * "${", invalid variable reference, unset variable. */
char *cfg_expand(const char *s, char *err, size_t errlen);

#endif
