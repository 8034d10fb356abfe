/* audit.h: the audit table of tool calls (issue 14, case 7): every tools/call the broker answers, queued on the event loop and written to the state store by a thread of its own. */
#ifndef MCPGW_AUDIT_H
#define MCPGW_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#define AUDIT_QUEUE_MAX 10000                 /* rows waiting for the writer; more are dropped (counted, warned) */
#define AUDIT_BATCH_MAX 256                   /* rows written in one transaction */
#define AUDIT_FLUSH_MS 200                    /* a row waits at most this long for others to share its transaction */
#define AUDIT_PRUNE_EVERY_MS (10 * 60 * 1000) /* how often rows past the retention are pruned */
#define AUDIT_PRUNE_STEP 1000                 /* rows pruned per statement */

/* Why here: the broker sees every tool call of every caller (chat rounds
 * and POST /v1/tools alike), and the caller's id comes with each call in
 * its _meta "mcpgw/caller" (bc_set_caller). The broker's event loop must
 * never wait on the disk (issue 15): audit_call only copies what it needs
 * into a bounded in-memory queue; a writer thread with its own state-store
 * handle writes the rows in batches (one transaction each) and prunes. */

struct audit_opts {
	const char *store_url;  /* MCPGW_STATE_STORE */
	long store_timeout_ms;  /* MCPGW_STATE_STORE_TIMEOUT */
	int payloads;           /* MCPGW_AUDIT_PAYLOADS: keep arguments and results too */
	long retention_ms;      /* MCPGW_AUDIT_RETENTION: rows older than this are pruned */
	int64_t (*clock)(void); /* wall-clock ms; NULL: CLOCK_REALTIME (tests inject one) */
};

struct audit;

/* audit_new: the queue and its writer thread (which opens the store; a
 * store that cannot be opened is logged and its rows dropped). The handle
 * (audit_free it), or NULL when out of memory or no thread could start. */
struct audit *audit_new(const struct audit_opts *o);

/* audit_call: one tool call ended: who (caller, "" or NULL: anonymous),
 * where (server, tool: its name on the server), when it started (wall
 * ms) and how long it took; its arguments (borrowed, NULL: none) and its
 * answer: result (a CallToolResult, borrowed, isError read from it) or an
 * error (a JSON-RPC error object, its code kept; NULL for a failure
 * without one, then error_code says which). Queued, never waits. a NULL: nothing. */
void audit_call(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
		int64_t duration_ms, const json_t *arguments, const json_t *result, const json_t *error,
		int64_t error_code);

/* audit_call_text: audit_call for a result given as its text (result[0..result_len),
 * checked JSON: a result too large to hold as a tree), isError said by is_error; its
 * size is result_len, and its text is copied only when payloads are kept. */
void audit_call_text(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
		     int64_t duration_ms, const json_t *arguments, const char *result, size_t result_len, int is_error);

/* audit_call_args_text: audit_call for arguments given as their text (a large call's,
 * never parsed): args (borrowed; referenced, not copied, and only while payloads are
 * kept; NULL or no text: none kept) and args_len their size; the answer is result or
 * error as for audit_call, or, when result_text is not NULL, a result given as text as
 * for audit_call_text (result_len, is_error). */
struct sharedtext_slice;
void audit_call_args_text(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
			  int64_t duration_ms, const struct sharedtext_slice *args, size_t args_len,
			  const json_t *result, const json_t *error, int64_t error_code, const char *result_text,
			  size_t result_len, int is_error);

/* audit_keeps_payloads: 1 when a's rows keep the texts of arguments and results (NULL: 0) */
int audit_keeps_payloads(const struct audit *a);

/* audit_flush: wait until every row queued so far is written (or dropped);
 * for tests and shutdown. */
void audit_flush(struct audit *a);

/* audit_dropped: rows dropped so far (queue full, or the store failed). */
uint64_t audit_dropped(struct audit *a);

/* audit_free: write what is queued, stop the writer, free (NULL: nothing). */
void audit_free(struct audit *a);

#endif
