/* mcptools.h: a responder's cached copy of the broker's MCP tool catalog, in OpenAI function form. */
#ifndef MCPGW_MCPTOOLS_H
#define MCPGW_MCPTOOLS_H

#include <jansson.h>
#include <stdint.h>

#include "mcp/bclient.h"
#include "core/buf.h"
#include "core/toolpolicy.h"

#define MCPTOOLS_WAIT_POLL_MS 50 /* between looks at the catalog while servers are coming up */
#define MCPTOOLS_NEAR_MAX 256    /* configured servers looked at for "did you mean" */

struct mcptools {
	json_int_t generation; /* of the cached list; 0 = none */
	json_t *tools;         /* the broker's Tool objects (exposed names), or NULL */
	json_t *by_name;       /* exposed name -> Tool (borrowed from tools) */
	json_t *params;        /* exposed name -> the parameters offered upstream (toolschema_params),
				* made once per generation; a tool whose schema cannot be offered is
				* absent. NULL: not made (a catalog set by hand): made per call */
	json_t *texts;         /* exposed name -> the OpenAI chat tool as compact JSON text (a string),
				* made once per generation beside params, so a request splices the
				* tools it offers instead of building and dumping them */
	json_t *unready;       /* the enabled servers not ready in that generation:
				* [{name, state, failing, last_error}] ("mcpgw/unready"), or NULL */
	int nready;            /* the servers ready in that generation */
	json_t *servers;       /* every configured server's name, disabled ones too
				* ("mcpgw/servers"), or NULL when the broker does not say */
	char gen_path[4300];   /* $MCPGW_STATE_DIR/catalog.gen, "" if not used */
	const int64_t *gen;    /* that file mapped: the broker's current generation, 0 when it stopped */
};

/* mcptools_use_state_dir: let mcptools_refresh read the broker's current
 * generation from $state_dir/catalog.gen (shared memory the broker
 * updates), so a current cache costs no round trip at all. Optional. */
void mcptools_use_state_dir(struct mcptools *m, const char *state_dir);

/* mcptools_refresh: make the cache current: nothing when catalog.gen shows
 * the cached generation; otherwise one tools/list round-trip that carries
 * the cached generation, so an unchanged catalog costs no parsing.
 * Returns BC_OK, a bc_status, or 1 when the broker answered with a JSON-RPC
 * error (the cache is kept). */
int mcptools_refresh(struct mcptools *m, struct bclient *bc, long timeout_ms);

/* mcptools_wait: mcptools_refresh, then, while a server is still coming up
 * (in unready and not failing: starting for the first time, or restarting
 * after a crash) and less than wait_ms have passed, look again every
 * MCPTOOLS_WAIT_POLL_MS (a catalog.gen read, a round trip only when it
 * changed). wait_ms <= 0: no waiting. Returns what the last refresh
 * returned. So a request made right after the broker started sees every
 * server that comes up within wait_ms (MCPGW_STARTUP_WAIT). */
int mcptools_wait(struct mcptools *m, struct bclient *bc, long timeout_ms, long wait_ms);

/* mcptools_unready: the servers of the cached generation that are not
 * ready, keeping only those in the comma-separated servers filter
 * (NULL/"": all). Appends to why (if non-NULL) one clause per server,
 * joined by "; ": "server 'a' is starting", "server 'b' is restarting",
 * "server 'c' cannot start: <its last_error>"; and to names (if non-NULL)
 * their names joined by ", ". Returns how many, or -1 on ENOMEM. */
int mcptools_unready(const struct mcptools *m, const char *servers, buf_t *why, buf_t *names);

/* mcptools_unknown: the names in the comma-separated servers filter that
 * are not configured servers of the cached catalog (a typo, a server
 * removed from servers_config.json): appended to unknown (if non-NULL),
 * joined by ", ", each as 'name' (cut to 100 bytes), followed by " (did
 * you mean 'x'?)" when a configured name is near (lib/near.h). A
 * configured server counts whatever its state (disabled, not ready, no
 * tools). Returns how many; 0 when the catalog does not list its servers
 * (nothing cached, or a broker that does not say); -1 on ENOMEM. */
int mcptools_unknown(const struct mcptools *m, const char *servers, buf_t *unknown);

/* mcptools_configured: the configured servers' names of the cached catalog
 * appended to names joined by ", ". Returns how many, or -1 on ENOMEM. */
int mcptools_configured(const struct mcptools *m, buf_t *names);

/* mcptools_why: why one server (an object {name, state, failing,
 * last_error}, as in mcpgw/status and "mcpgw/unready") is not ready, as one
 * clause appended to b: "server 'c' cannot start: <last_error>" (failing),
 * "server 'a' is starting", "server 'b' is restarting after: <last_error>"
 * (a crash), else "server 'x' is <state>". 0, or -1 on ENOMEM. */
int mcptools_why(buf_t *b, const json_t *server);

/* mcptools_current: 1 when mcptools_wait would return at once with no
 * round trip (the cache holds the broker's current generation, read from
 * catalog.gen, and no server of it is coming up), else 0. No system call. */
int mcptools_current(const struct mcptools *m);

/* mcptools_starting: how many servers of the cached generation are still
 * coming up (not ready, not failing). */
int mcptools_starting(const struct mcptools *m);

/* mcptools_server: the server owning exposed name, or NULL if not an MCP tool. */
const char *mcptools_server(const struct mcptools *m, const char *name);

/* mcptools_call_wait_ms: how long (ms) a responder waits for the broker's
 * answer to a tools/call of exposed name: the longest the broker may take
 * (docs/broker-protocol.md, tools/call): each of up to retries + 1 attempts
 * waits at most the call timeout for the server to start and again for its
 * answer, where the call timeout is the server's own ("mcpgw/timeoutMs" in
 * the tool's _meta) or tool_timeout_ms; plus broker_timeout_ms for the hop.
 * A name the catalog does not know gets the bound of tool_timeout_ms. */
long mcptools_call_wait_ms(const struct mcptools *m, const char *name, long tool_timeout_ms, int retries,
			   long broker_timeout_ms);

/* mcptools_openai: the cached tools as OpenAI chat tools
 * ({"type":"function","function":{name,description,parameters}}), keeping
 * only servers listed in the comma-separated servers filter (NULL/"" = all)
 * and skipping names in skip (an object whose keys are names; may be NULL)
 * and the tools policy does not allow (the caller's API key; NULL: none).
 * parameters is the tool's inputSchema normalised by toolschema_params; a
 * tool whose schema cannot be made valid is left out (the broker logs it
 * once per listing), so one bad tool never fails a request.
 * New reference (an array, possibly empty) or NULL on ENOMEM. */
json_t *mcptools_openai(const struct mcptools *m, const char *servers, const json_t *skip,
			const struct toolpolicy *policy);

/* mcptools_openai_text: the tools mcptools_openai would return, as their
 * compact JSON texts joined by ',' (no brackets) appended to out, the same
 * filters applied; each offered name is set to true in offered (an object;
 * may be NULL). The texts are made once per generation (mcptools_refresh),
 * so a current cache costs a copy per tool and no JSON work. Returns how
 * many tools were appended, or -1 on ENOMEM (out then holds part of them). */
int mcptools_openai_text(const struct mcptools *m, const char *servers, const json_t *skip,
			 const struct toolpolicy *policy, buf_t *out, json_t *offered);

void mcptools_free(struct mcptools *m);

#endif
