/* auth.h: who may use the gateway: the API key of a request (Authorization: Bearer, or api-key), checked once by the responder skeleton before every handler, with the key's policy, rates and usage. */
#ifndef MCPGW_AUTH_H
#define MCPGW_AUTH_H

#include <stdint.h>

#include "core/apikey.h"
#include "core/clientaddr.h"
#include "core/toolpolicy.h"

/* What the check found out about a request's caller (struct exchange's
 * auth): the key it presented, copied, so the handler holds it whatever
 * another thread reloads meanwhile. */
struct auth_caller {
	int keyed;                   /* 1: a configured key was presented and accepted */
	char key_id[APIKEY_ID_MAX];  /* its id, "" when keyed is 0 */
	struct toolpolicy policy;    /* its allow-lists */
	int restricted;              /* the policy narrows anything (toolpolicy_restricts) */
	long tpm, tcpm;              /* its token and tool-call rates (0: none), for auth_count */
	char client[CLIENTADDR_MAX]; /* the client's address, for the log */
};

struct exchange;

/* auth_check: the one check of every routed request, before its body is
 * read and its handler runs; fills x->auth. Keys are the records of the
 * state store (mcpgwctl keys) and MCPGW_API_KEYS. With none configured, a
 * loopback client (REMOTE_ADDR in 127.0.0.0/8 or ::1, no forwarding header)
 * is served without a key and any other gets 403 loopback_only. With keys,
 * every request needs one: 401 invalid_api_key when it is missing, wrong,
 * revoked or expired (OpenAI's wording), 429 rate_limit_exceeded with
 * Retry-After over the key's rpm (every request), tpm (routes that reach
 * the upstream) or tcpm (POST routes that reach the broker), 503
 * key_store_unavailable when the store cannot be read. Counts the request
 * in the key's usage. Returns 0 (go on), or -1 after the answer was sent.
 * Thread-safe; costs one read of the store's key generation per request
 * while the keys are unchanged (docs/access-control.md). */
int auth_check(struct exchange *x);

/* auth_policy: the tool policy of x's caller, or NULL when it may use every
 * tool (no key, or a key without lists): what the handlers pass down. */
const struct toolpolicy *auth_policy(const struct exchange *x);

/* auth_count: add tokens (upstream tokens the request spent) and tool_calls
 * (MCP tool calls it ran) to the usage and the rate windows of x's key
 * (nothing without a key). Store failures are logged, not fatal. */
void auth_count(const struct exchange *x, int64_t tokens, int64_t tool_calls);

#endif
