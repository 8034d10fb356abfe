/* session.h: one configured MCP server as the broker keeps it: the MCP lifecycle over a transport, its tool list, and its supervision (restarts with backoff.h's waits). */
#ifndef MCPGW_SESSION_H
#define MCPGW_SESSION_H

#include <jansson.h>
#include <stdint.h>

#include "core/settings.h"
#include "core/evloop.h"
#include "mcp/config.h"
#include "mcp/jsonspan.h"
#include "toolset.h"
#include "transport.h"

#define SESSION_LIST_MAX_PAGES 64 /* tools/list pages followed per listing */
/* the defaults of MCPGW_SERVER_MAX_TOOLS and MCPGW_SERVER_MAX_TOOLS_BYTES
 * (a settings struct whose field is 0 gets them) */
#define SESSION_MAX_TOOLS 4096
#define SESSION_MAX_TOOLS_BYTES 4194304

/* a server's tools being read (a tools/list in pages, or the registry's
 * cache): checked and bounded as they come, so no listing holds more than
 * one server's bound plus one page */
struct session_tools_acc {
	struct toolset tools; /* kept so far, as text (a page's tree lives only while it is read) */
	json_t *seen;         /* names seen, for repeats */
	int cut;              /* a bound was hit: 1 the count, 2 the bytes; the rest are dropped */
	size_t dropped;
};

enum session_state {
	SESSION_STOPPED = 0,
	SESSION_STARTING,
	SESSION_READY,
	SESSION_BACKOFF,
	SESSION_DISABLED,
	SESSION_STOPPING
};

struct session;

/* what a session reports up (ctx: the hooks' owner); all optional */
struct session_hooks {
	void (*changed)(void *ctx, struct session *s); /* its state or what status shows changed */
	void (*tools)(void *ctx, struct session *s);   /* its tool list changed (or its ready state did) */
	void (*ready)(void *ctx, struct session *s);   /* it became ready: calls waiting for it may go */
	void (*failed)(void *ctx, struct session *s);  /* a start failed: calls waiting for it decide again */
};

/* what a session needs (borrowed for its life) */
struct session_env {
	struct transport_env tenv;
	transport_new_fn *new_transport; /* NULL: the real ones, by the config's kind */
	const struct session_hooks *hooks;
	void *hooks_ctx;
	struct metrics *metrics; /* mcpgw_mcp_server_restarts_total; NULL: not counted */
};

/* an answer's result, never parsed whole (session.c, ev_message): its text */
struct session_raw {
	const char *text;       /* the whole message (borrowed for the call) */
	struct jsonspan result; /* the "result" member's value in it, checked JSON */
};

/* session_answer_fn: the answer to a request (msg borrowed: a result or an
 * error response; when raw is not NULL, msg holds every member but the
 * result's value, a stand-in {}, and raw the result's text), or msg NULL and
 * why: the connection went down first; then reached is 0 when the transport
 * knows the request never reached the server (transport_events.on_undelivered),
 * else 1 (it may have) */
typedef void session_answer_fn(void *arg, json_t *msg, const struct session_raw *raw, const char *why, int reached);

/* A session. Read-only outside session.c. */
struct session {
	const struct cfg_server *cfg; /* borrowed from the config */
	const struct session_env *env;
	struct transport *t; /* chosen once, for the session's life */
	enum session_state state;
	int connected; /* the transport is open */
	int shutting;  /* session_stop was called: no more starts */
	json_int_t next_id;
	struct preq *pending;
	char proto[32];                    /* negotiated protocol version */
	json_t *server_info;               /* serverInfo of the initialize result */
	struct toolset tools;              /* last known (filtered) tools, kept while down */
	struct session_tools_acc list_acc; /* a listing in progress */
	int listing, relist;
	int restarts, fail_streak; /* fail_streak: failed starts in a row (0 once ready) */
	int served;                /* answered a request since it got ready (not a crash loop) */
	/* why it went down, as clients may see it (/health, tool errors, the
	 * registry): URLs redacted, a server's stderr only named ("see the broker
	 * log"); last_detail: the same with the telling line of its stderr (URLs
	 * redacted), for the log and local operators (mcpgw/status "detail",
	 * mcpgw-broker --status), never for HTTP clients. Both "" while ready. */
	char last_error[1024];
	char last_detail[1024];
	/* the last time it went down by itself (died, failed to start, not an operator's stop): what
	 * last_error said then and when (session clock); kept once it is ready again, so that a
	 * server that restarted still says why (/health "last_failure"). last_failure_ms 0: never */
	char last_failure[1024];
	int64_t last_failure_ms;
	char fingerprint[17]; /* of the config entry: cached tools apply only to the same entry */
	int64_t since_ms;     /* state entered */
	int64_t deadline_ms;  /* STARTING: init deadline; BACKOFF: next start */
	long backoff_ms;
	long timer;
};

/* session_new: a session for cfg (borrowed), stopped (or disabled); its
 * transport is made here, once. Free with session_free. NULL on ENOMEM. */
struct session *session_new(const struct session_env *env, const struct cfg_server *cfg);
/* session_set_tools: the tools known from before (the registry), stolen;
 * checked as a tools/list is (entries without a string name, repeated
 * names and tools the config filters out are dropped, and the first ones
 * within MCPGW_SERVER_MAX_TOOLS and MCPGW_SERVER_MAX_TOOLS_BYTES kept) */
void session_set_tools(struct session *s, json_t *tools);
/* session_start: connect and begin the lifecycle (nothing when disabled or stopping) */
void session_start(struct session *s);
/* session_stop: shut down (no restarts after); the state ends STOPPED */
void session_stop(struct session *s);
void session_free(struct session *s);

/* session_request: send request method (params stolen, may be NULL);
 * fn(arg, ...) gets its answer or the connection's end, exactly once,
 * unless session_forget comes first. The id, or -1 (not sent, fn not called). */
json_int_t session_request(struct session *s, const char *method, json_t *params, session_answer_fn *fn, void *arg);
/* session_request_text: session_request with one more member of params: name (not
 * in params) whose value is the JSON text value (borrowed; checked JSON, as jansson
 * parses it). Where the transport takes a message in parts (stdio) the text is sent
 * by reference, not copied (it stays alive until written); else it is parsed and sent
 * as session_request sends. params (an object) stolen. The id, or -1. */
struct sharedtext_slice;
json_int_t session_request_text(struct session *s, const char *method, json_t *params, const char *name,
				const struct sharedtext_slice *value, session_answer_fn *fn, void *arg);
/* session_sends_by_reference: 1 when session_request_text passes its text by reference
 * now (the transport takes parts; such a transport reports a message either sent or its
 * connection gone, never undelivered), else 0 */
int session_sends_by_reference(const struct session *s);
/* session_notify: send notification method (params stolen). 0 or -1 */
int session_notify(struct session *s, const char *method, json_t *params);
/* session_forget: request id is given up (timed out): its fn is not called */
void session_forget(struct session *s, json_int_t id);

/* session_take_message: only inside a session_answer_fn given a raw result: the block
 * holding raw->text (which stays valid in it), handed over (free it), *size its bytes;
 * NULL when the transport cannot hand it over (the caller copies what it keeps) */
char *session_take_message(struct session *s, size_t *size);
/* session_accepts_calls: 1 ready; 0 worth waiting for (starting after a
 * crash); -1 unavailable (failing to start, disabled, stopping) */
int session_accepts_calls(const struct session *s);
/* session_running: 1 while a process or connection still has to end */
int session_running(const struct session *s);
const char *session_state_name(enum session_state st);
/* session_transport_name: "stdio", "http" or "sse" */
const char *session_transport_name(const struct session *s);
/* session_pid: the server's process, 0 when none */
long session_pid(const struct session *s);

#endif
