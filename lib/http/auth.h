/* auth.h: who may use the gateway: the API key of a request (Authorization: Bearer, or api-key), checked once by the responder skeleton before every handler, with the key's policy, rates and usage. */
#ifndef MCPGW_AUTH_H
#define MCPGW_AUTH_H

#include <stdint.h>

#include "core/apikey.h"
#include "core/clientaddr.h"
#include "core/settings.h"
#include "core/toolpolicy.h"
#include "http/hio.h"

/* What the check found out about a request's caller (struct exchange's
 * auth): the key it presented, copied, so the handler holds it whatever
 * another thread reloads meanwhile. */
struct auth_caller {
	int keyed;                   /* 1: a configured key was presented and accepted */
	char key_id[APIKEY_ID_MAX];  /* its id, "" when keyed is 0 */
	struct toolpolicy *policy;   /* its allow-lists when they narrow anything (toolpolicy_restricts),
				      * malloc'd (auth_caller_clear frees it); NULL: none */
	long tpm, tcpm;              /* its token and tool-call rates (0: none), for auth_count */
	int admin;                   /* the key is an admin key (mcpgwctl keys create --admin) */
	int loopback;                /* the peer the web server saw is this host, and no proxy forwarded it */
	char client[CLIENTADDR_MAX]; /* the client's address, for the log */
};

/* what a route may spend, beside the request itself (auth_check's spends, ORed) */
enum auth_spends {
	AUTH_SPENDS_TOKENS = 1 << 0,     /* it reaches the upstream: the key's tpm applies */
	AUTH_SPENDS_TOOL_CALLS = 1 << 1, /* it may run MCP tools (a POST reaching the broker): tcpm applies */
};

/* auth_check: the one check of every routed request (the responder
 * skeleton calls it before the body is read and the handler runs), h the
 * request, s the responder's settings, spends what the route may spend
 * (enum auth_spends), method and path for the log; fills *c. Keys are the
 * records of the state store (mcpgwctl keys) and MCPGW_API_KEYS. While no
 * key was ever created, a loopback client (REMOTE_ADDR in 127.0.0.0/8 or
 * ::1, no forwarding header) is served without a key and any other gets
 * 403 loopback_only. Once one exists every request needs one: 401
 * invalid_api_key when it is missing, wrong, revoked or expired (OpenAI's
 * wording), 429 rate_limit_exceeded with Retry-After over the key's rpm
 * (every request), tpm or tcpm (when spends names them), 503
 * key_store_unavailable when the store cannot be read. Counts the request
 * in the key's usage. Returns 0 (go on), or -1 after the answer was sent.
 * Thread-safe; while the keys are unchanged it reads no store and threads
 * do not wait for each other: the keys are cached per process, re-read
 * when the key change hint (lib/core/changehint.h, STATEDIR_KEYS_HINT, bumped
 * by keystore_put) moved and at least once a second; usage is counted in
 * memory and written by a thread every second. A key with rates costs one
 * store operation per limit that applies (docs/access-control.md). */
int auth_check(struct auth_caller *c, struct hio *h, const struct settings *s, unsigned spends, const char *method,
	       const char *path);

/* auth_caller_clear: what auth_check put in c freed (its policy); c then
 * allows nothing more than an anonymous caller's record (keyed stays as it
 * was). Call it once the request is done with c: the responder skeleton
 * does at the end of each request, and whoever took a request over
 * (responder_take moves c) when the taken request's run is freed. */
void auth_caller_clear(struct auth_caller *c);

/* auth_policy: the tool policy of caller c, or NULL when it may use every
 * tool (no key, or a key without lists): what the handlers pass down. */
const struct toolpolicy *auth_policy(const struct auth_caller *c);

/* auth_count: add tokens (upstream tokens the request spent) and tool_calls
 * (MCP tool calls it made) to the usage and the rate windows of c's key
 * (nothing without a key). Store failures are logged, not fatal. */
void auth_count(const struct auth_caller *c, int64_t tokens, int64_t tool_calls);

#endif
