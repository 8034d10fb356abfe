/* broker.h: mcpgw-broker internals shared by its modules (event loop, servers, clients, calls, catalog). */
#ifndef MCPGW_BROKER_H
#define MCPGW_BROKER_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/clock.h"
#include "mcp/config.h"
#include "mcp/jsonrpc.h"
#include "mcp/registry.h"
#include "remote.h"
#include "core/settings.h"

#include "core/version.h"
#define SRV_ERRTAIL 2048        /* bytes of a server's stderr kept for error messages */
#define SRV_LIST_MAX_PAGES 64   /* tools/list pages followed per listing */
#define SRV_MAX_TOOLS 4096      /* tools kept per server */
#define CLI_WBUF_MAX (64u << 20) /* a client that reads nothing is dropped past this */
#define SRV_STOP_GRACE_MS 2000  /* shutdown: stdin closed -> SIGTERM -> SIGKILL, each after this */
#define SRV_HEALTHY_MS 30000    /* ready this long: the restart backoff starts over */
#define SRV_RESTART_BACKOFF_MS 100 /* first wait before restarting a server that was ready */
#define SRV_START_BACKOFF_MS 1000  /* first wait after a failed start; doubles up to MCPGW_RESTART_BACKOFF_MAX */
#define SRV_WBUF_MAX (64u << 20) /* a stdio server that reads nothing of this much is restarted */
#define CALLS_MAX 4096           /* tool calls in flight in the broker; more are refused at once */

enum srv_state { SRV_STOPPED = 0, SRV_STARTING, SRV_READY, SRV_BACKOFF, SRV_DISABLED, SRV_STOPPING };

/* what a request we sent to a server is for */
enum preq_kind { PREQ_INIT, PREQ_LIST, PREQ_CALL };

struct call;

struct preq {               /* one request in flight to a server */
	json_int_t id;
	enum preq_kind kind;
	struct call *call;      /* PREQ_CALL */
	struct preq *next;
};

struct srv {
	struct cfg_server *cfg; /* borrowed from broker.cfg */
	int idx;
	enum srv_state state;
	pid_t pid;              /* > 0 while a child runs (until reaped) */
	int in_fd, out_fd, err_fd;
	buf_t wbuf;             /* bytes for the child's stdin */
	struct jr_reader rd;
	buf_t errline;          /* partial stderr line */
	char errtail[SRV_ERRTAIL];
	size_t errtail_len;
	json_int_t next_id;
	struct preq *pending;
	char proto[32];
	json_t *server_info;    /* serverInfo of the initialize result */
	json_t *tools;          /* last known (filtered) Tool array, kept while down */
	json_t *list_accum;     /* pages of a listing in progress */
	int listing, relist;
	int restarts, fail_streak; /* fail_streak: failed starts in a row (0 once ready) */
	char last_error[1024];
	char fingerprint[17];   /* of the config entry: cached tools apply only to the same entry */
	int64_t since_ms;       /* state entered */
	int64_t deadline_ms;    /* STARTING: init deadline; BACKOFF: next start; STOPPING: next escalation */
	int64_t eof_deadline_ms;/* stdout closed but not reaped: kill after this */
	long backoff_ms;
	int stop_step;          /* STOPPING: 0 stdin closed, 1 SIGTERM sent, 2 SIGKILL sent */
	struct remote *rt;      /* remote transports (remote.c); NULL for stdio */
};

struct call {               /* one client tools/call, across retries */
	int cli_slot;
	unsigned cli_gen;
	json_t *client_id;      /* the client's request id */
	struct srv *srv;
	char *mcp_name;
	json_t *arguments;
	json_t *meta;           /* the client's params._meta, forwarded */
	int attempts;           /* sends so far */
	int64_t deadline_ms;
	long timeout_ms;
	json_int_t srv_req_id;  /* 0 when not in flight */
	struct call *next, *prev;
};

struct cli {
	int fd;
	unsigned gen;
	struct jr_reader rd;
	buf_t wbuf;
};

struct broker {
	struct settings set;
	struct cfg cfg;
	struct srv *srvs;
	size_t nsrvs;
	struct registry *reg;
	int listen_fd;
	struct cli **clis;      /* slots, max_clients */
	unsigned *cli_gens;
	int nclis;
	struct call *calls;     /* every live call */
	int ncalls;
	int stopping;
	int64_t started_ms;
	time_t started_at;
	/* catalog */
	json_int_t generation;
	int64_t *gen_map;       /* $STATE/catalog.gen, shared with the responders (may be NULL) */
	char *tools_result;     /* serialised tools/list result, rebuilt on change */
	struct cat_entry *cat;  /* sorted by exposed name */
	size_t ncat;            /* known tools (routable) */
	size_t nlisted;         /* tools of ready servers (listed) */
	json_t *cat_list;       /* those tools, as listed (kept to re-render on state changes) */
	char *cat_unready;      /* the "mcpgw/unready" part of the last answer, serialised */
};

extern struct broker B;


/* srv.c: one MCP server over stdio */
void srv_init(struct srv *s, struct cfg_server *cfg, int idx);
void srv_start(struct srv *s);
void srv_on_stdout(struct srv *s);
/* srv_on_stderr: read what the child wrote to stderr (logged, kept in errtail); 1 when something was read */
int srv_on_stderr(struct srv *s);
void srv_on_stdin(struct srv *s);
void srv_on_reaped(struct srv *s, int status);
void srv_tick(struct srv *s, int64_t now);
int64_t srv_next_deadline(const struct srv *s);
void srv_stop(struct srv *s);
void srv_free(struct srv *s);
/* srv_send_request: queue a request; returns the id or -1. params stolen. */
json_int_t srv_send_request(struct srv *s, const char *method, json_t *params, enum preq_kind kind, struct call *c);
int srv_send_notification(struct srv *s, const char *method, json_t *params);
void srv_forget_request(struct srv *s, json_int_t id);
/* srv_begin: the connection is up: start the lifecycle (send initialize) */
void srv_begin(struct srv *s);
/* srv_on_message: one JSON-RPC message from the server (any transport) */
void srv_on_message(struct srv *s, const char *line, size_t len);
/* srv_down: the connection is gone: fail or requeue calls, schedule a restart */
void srv_down(struct srv *s, const char *why);
/* srv_restart_now: drop the connection (if any) and start again at once */
void srv_restart_now(struct srv *s);
/* srv_has_pending: 1 while request id is unanswered */
int srv_has_pending(const struct srv *s, json_int_t id);
const char *srv_state_name(enum srv_state st);
/* srv_accepts_calls: 1 ready; 0 worth waiting (starting after a crash); -1 unavailable */
int srv_accepts_calls(const struct srv *s);

/* call.c: tools/call routing, retries, timeouts */
void call_start(int cli_slot, unsigned gen, const json_t *id, const json_t *params);
void call_on_result(struct call *c, json_t *msg);     /* the server answered (result or error) */
void call_on_transport_failure(struct call *c, const char *why); /* server died with c in flight */
void call_server_ready(struct srv *s);                 /* flush calls waiting for s */
void call_server_failed(struct srv *s);                /* s failed to start: waiting calls fail */
void call_tick(int64_t now);
int64_t call_next_deadline(void);
void call_fail_all(const char *why);

/* cli.c: client connections */
void cli_accept(int listen_fd);
/* cli_adopt: serve a connected, non-blocking socket as a client; its slot or -1 */
int cli_adopt(int fd);
void cli_on_read(int slot);
void cli_on_write(int slot);
void cli_close(int slot);
/* cli_send: queue a message (borrowed) for the client in slot if gen matches. */
void cli_send(int slot, unsigned gen, const json_t *msg);
void cli_send_raw(int slot, unsigned gen, const char *line, size_t len);

/* catalog.c: aggregated tool list and exposed names */
struct cat_entry {
	char exposed[65];
	struct srv *srv;
	const char *mcp_name;   /* borrowed from the srv's tools */
};
void catalog_rebuild(void);
/* catalog_states_changed: a server changed state: when the set of servers
 * that are not ready (or why) changed, re-render the tools/list answer and
 * bump the generation (no registry write, the tools are the same) */
void catalog_states_changed(void);
const struct cat_entry *catalog_find(const char *exposed);
void catalog_free(void);

/* loop.c: the event loop */
int loop_setup_signals(void);
int loop_run(void);                 /* until shut down: 0 */
int loop_step(int max_ms);          /* one pass: 0, 1 when shut down, -1 on error */
void loop_shutdown(void);
void loop_free(void);

/* check.c: mcpgw-broker --check-config */
/* check_config: load set->config and check that every enabled stdio
 * server's command can be found and run (and its "cwd" is a directory);
 * nothing is started. Plain lines, no log prefix: "FILE: ok, N servers" on
 * stdout, or each problem ("FILE: server 'x': command 'foo' not found
 * (looked in ... and PATH=...)", a config error) on stderr. Returns the
 * exit status: 0 ok, 1 otherwise. */
int check_config(const struct settings *set);

/* status */
json_t *broker_status(void);
/* registry write-through of a server's state (errors logged) */
void broker_save_server(const struct srv *s);

#endif
