/* accesslog.h: the one access-log line per request (logfmt at info): who, which endpoint and model, which tools, rounds, tokens, status, time and bytes. */
#ifndef MCPGW_ACCESSLOG_H
#define MCPGW_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

#define ACCESSLOG_CALLER_MAX 64 /* an opaque caller id (an API key's id, never the key) */
#define ACCESSLOG_MODEL_MAX 128 /* the model asked for */
#define ACCESSLOG_TOOLS_MAX 512 /* the tools run, "server.tool,..." (cut at a name's end, then "...") */
#define ACCESSLOG_LINE_MAX 2048 /* one formatted line */

/* What a request did, filled in while it runs: the skeleton starts it
 * (accesslog_begin) and writes it (accesslog_write) once the answer is
 * sent; handlers and the API-key check fill in what only they know. Every
 * field is bounded, kept in the exchange (no allocation). Never a secret,
 * never message content: ids, names and numbers only. */
struct accesslog {
	int64_t start_us;                      /* monotonic, at accesslog_begin */
	char caller[ACCESSLOG_CALLER_MAX];     /* "" (written "-"): anonymous */
	char model[ACCESSLOG_MODEL_MAX];       /* "" (written "-"): none */
	char tools[ACCESSLOG_TOOLS_MAX];       /* the tools run, comma-separated */
	int ntools;                            /* how many tool calls ran (also those cut from tools) */
	int tool_errors;                       /* of them, how many failed (isError or an error) */
	int rounds;                            /* MCP tool rounds of a chat */
	long prompt_tokens, completion_tokens; /* the usage the upstream reported, -1: none */
	/* set by accesslog_end: how the request ended */
	int ended;
	char method[16];
	const char *endpoint; /* the route's path (static), NULL: unrouted */
	int status;
	size_t bytes_out;
	int64_t end_us;
};

/* accesslog_begin: a, zeroed, for a request that starts now. */
void accesslog_begin(struct accesslog *a);

/* accesslog_set_caller: the opaque id of who is calling (an API key's
 * public id; NULL or "" for anonymous). Copied, cut to fit; bytes other
 * than [A-Za-z0-9._:@/+-] become '_' so that no id can break the line. */
void accesslog_set_caller(struct accesslog *a, const char *id);

/* accesslog_set_model: the model the request named (NULL: none); copied as
 * accesslog_set_caller copies. */
void accesslog_set_model(struct accesslog *a, const char *model);

/* accesslog_add_tool: one tool call ran: server (may be NULL) and tool
 * names, failed (isError or an error) or not. */
void accesslog_add_tool(struct accesslog *a, const char *server, const char *tool, int failed);

/* accesslog_add_round: one MCP tool round of a chat ran. */
void accesslog_add_round(struct accesslog *a);

/* accesslog_set_usage: the tokens the upstream reported over the whole request. */
void accesslog_set_usage(struct accesslog *a, long prompt_tokens, long completion_tokens);

/* accesslog_format: the line's text (without the log's own prefix) into out
 * (outlen bytes, ACCESSLOG_LINE_MAX fits any): logfmt key=value pairs
 * (https://brandur.org/logfmt, the form Heroku's router logs use), values
 * quoted when they hold a space, '"', '=' or '\\':
 *   access method=POST endpoint=/v1/chat/completions status=200 key=- model=gpt-4o
 *          duration_ms=12 bytes_out=345 rounds=1 tools=1 tool_errors=0 tool_names=sqlite.read_query
 *          prompt_tokens=10 completion_tokens=5
 * endpoint: the route's path as its table writes it ("/v1/tools/{}", "-"
 * for an unrouted request), so that it names a handful of values, never a
 * client's URL. now_us: monotonic microseconds (the duration's end).
 * Returns the length written (< outlen). */
size_t accesslog_format(const struct accesslog *a, const char *method, const char *endpoint, int status,
			size_t bytes_out, int64_t now_us, char *out, size_t outlen);

/* accesslog_end: the request was answered now: method (copied), endpoint
 * (the route's path, kept as a pointer: a route table's string; NULL:
 * unrouted), the status and body bytes sent. */
void accesslog_end(struct accesslog *a, const char *method, const char *endpoint, int status, size_t bytes_out);

/* accesslog_write: for a request accesslog_end'ed (else nothing): its line
 * at log level info (one write(2): the log's own line) and its counts in m
 * (NULL: none): mcpgw_http_requests_total{endpoint,method,status},
 * mcpgw_http_request_duration_seconds{endpoint}, mcpgw_tool_rounds_total.
 * Once: a is then no longer ended. The skeleton calls it after the
 * request is finished, so that neither is on the client's time. */
void accesslog_write(struct accesslog *a, struct metrics *m);

/* accesslog_now_us: the monotonic clock in microseconds (what start_us and now_us are). */
int64_t accesslog_now_us(void);

#endif
