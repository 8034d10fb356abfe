/* responder.h: the responder skeleton: start-up, the accept loop, a route table, the request body and the answers 404/405/411/413/500, once for every cgi-bin program. */
#ifndef MCPGW_RESPONDER_H
#define MCPGW_RESPONDER_H

#include <pthread.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/settings.h"
#include "http/accesslog.h"
#include "http/auth.h"
#include "http/hio.h"
#include "mcp/bclient.h"
#include "openai/upstream.h"

/* The longest request path routed; a longer one answers 404. */
#define RESPONDER_PATH_MAX 4096

/* What a route needs before its handler runs (route.needs, ORed). */
enum route_needs {
	ROUTE_BODY = 1 << 0,     /* the request body in x->body: 411 without a Content-Length, 413 over
				  * MCPGW_MAX_BODY_BYTES, 400 short or malformed length; the handler never sees those */
	ROUTE_BROKER = 1 << 1,   /* x->w->bc: the worker's broker client (MCPGW_BROKER_AUTOSTART applies) */
	ROUTE_UPSTREAM = 1 << 2, /* x->w->up: the worker's upstream client (connections kept across requests) */
	ROUTE_CAPACITY = 1 << 3, /* a long request: it holds one of the host's MCPGW_CAPACITY slots
				  * (lib/core/capacity.h) until it is finished; none free: 503 with
				  * Retry-After before the body is read, the handler never runs */
	ROUTE_QUICK = 1 << 4,    /* the handler answers or hands the request over without waiting on
				  * anything outside the process, or calls responder_turn_release first:
				  * its worker keeps the turn to accept (see responder_turn_release) */
};

/* What a handler returns. */
enum route_status {
	ROUTE_DONE = 0, /* answered: the skeleton ends the request (a handler that wrote nothing gets a 500) */
	ROUTE_PENDING,  /* the handler keeps x and answers later, from any thread or loop, then calls
			 * exchange_finish(x); until then x and the request stay open. The threaded
			 * skeleton of today holds the worker until then; an event-driven one moves on. */
	ROUTE_TAKEN,    /* the handler took the request over (responder_take) for another thread to
			 * answer: the skeleton answers, logs and frees nothing of it, and its worker
			 * goes back to accepting at once */
};

struct exchange;
typedef enum route_status (*route_fn)(struct exchange *x);

/* One row of a responder's route table; a table ends with a row whose path is NULL.
 * path: "/v1/tools" (also matches "/v1/tools/"), "/v1/tools/{}" (one more non-empty
 *       segment without '/', in x->arg), "/v1/models/{*}" (a non-empty rest, '/' allowed).
 *       A path under /v1 is also served without the /v1 ("/models" as "/v1/models"),
 *       as other OpenAI-compatible gateways accept a base URL without it.
 * methods: "GET, HEAD" as the Allow header says it. Several rows may share a path
 *       with other methods: the 405 names all of them. */
struct route {
	const char *path;
	const char *methods;
	route_fn handler;
	unsigned needs; /* enum route_needs */
};

struct responder;

/* A worker: one thread of the accept loop with its own request and clients. */
struct responder_worker {
	struct responder *r;
	struct hio h;
	struct bclient *bc;  /* when a route needs ROUTE_BROKER, else NULL */
	struct upstream *up; /* when a route needs ROUTE_UPSTREAM (NULL if it could not be made) */
	void *data;          /* def->worker_size zeroed bytes of the program's own, or NULL */
	pthread_t th;
	int started;
	struct accesslog last; /* the last request's record: written once that request is finished */
	int turn;              /* a kept worker holding the turn to accept (responder_turn_release) */
	int trim;              /* the last request was large: its memory is given back once it is finished */
};

/* One request and its answer: what a handler gets. */
struct exchange {
	struct responder_worker *w;
	struct hio *h; /* the request's parameters and the response writer */
	const struct route *route;
	const char *method;            /* REQUEST_METHOD ("GET" when the server gave none) */
	char path[RESPONDER_PATH_MAX]; /* the path as sent, without the query string */
	const char *arg;               /* what {} or {*} matched (inside path, still URL-encoded), else "" */
	buf_t body;                    /* the body when the route needs ROUTE_BODY */
	void *app;                     /* def->app */
	struct auth_caller auth;       /* who sent it: its API key's id and policy (lib/http/auth.h) */
	pthread_mutex_t lock;          /* guards finished (exchange_finish from another thread) */
	pthread_cond_t done;
	int finished;
	int pending; /* the handler returned ROUTE_PENDING */
	int slot;    /* the capacity slot held (ROUTE_CAPACITY), -1 none */
	/* what the request did, for its access-log line and the metrics (lib/http/accesslog.h):
	 * the skeleton begins and writes it, with the caller's id: auth.key_id, the key the
	 * check accepted ("" none), never anything the client asserts; a handler sets the model, the tools run, rounds and tokens with accesslog_* */
	struct accesslog log;
};

/* A client the workers hold for the routes that need it (ROUTE_UPSTREAM:
 * w->up, ROUTE_BROKER: w->bc): how it is made and freed. Each lives in an
 * object file of its own, named only by the programs that use it
 * (responder_def.upstream, .broker), so that a program whose routes need
 * neither links neither libcurl nor the broker client: the skeleton itself
 * calls no client. */
struct responder_client {
	int (*global_init)(void);     /* once per process before anything else (NULL: none); 0 or -1: exit 1 */
	void (*global_cleanup)(void); /* once at the end (NULL: none) */
	/* worker_init: make w's client once the settings are loaded; 0 (the field left
	 * NULL when it could not be made: its routes then answer 500, logged), or -1:
	 * the worker is not started */
	int (*worker_init)(struct responder_worker *w);
	void (*worker_free)(struct responder_worker *w); /* frees what worker_init made (NULL fields too) */
	/* request_begin: a request of a route that needs it starts on w (NULL: nothing to do) */
	void (*request_begin)(struct responder_worker *w);
	/* request_caller: the request's API key id (auth.key_id; "" no key), before
	 * its handler runs (NULL: the client does not carry it) */
	void (*request_caller)(struct responder_worker *w, const char *caller);
};

/* responder_upstream (lib/http/responder_upstream.c): w->up, an upstream
 * client made from the settings (and def->upstream_opts), connections kept
 * across requests; libcurl's global state. Each request starts with
 * upstream_begin (the client's x-stainless-retry-count) and its answer
 * carries upstream_client_headers (the upstream's request id, Retry-After). */
extern const struct responder_client responder_upstream;

/* responder_broker (lib/http/responder_broker.c): w->bc, a broker client on
 * MCPGW_BROKER_SOCKET that starts the broker when none runs
 * (MCPGW_BROKER_AUTOSTART); each tools/call carries the caller's id
 * (bc_set_caller). */
extern const struct responder_client responder_broker;

/* A request a handler took over (responder_take), with what the skeleton
 * would have ended it with; the taker answers it on h and ends it. */
struct responder_taken {
	struct responder *r;
	struct hio h;            /* the request (hio_hand_over: read its contract) */
	struct accesslog log;    /* its access-log record, begun and filled as for any request */
	struct auth_caller auth; /* who sent it */
	int slot;                /* its capacity slot (ROUTE_CAPACITY), -1 none */
	const char *endpoint;    /* the route's path (a route table's string) */
	char method[16];         /* REQUEST_METHOD */
	buf_t body;              /* the body (ROUTE_BODY) */
	int ended;               /* responder_taken_end ran */
};

/* responder_turn_release: x's worker gives up its turn to accept, so that
 * another kept worker takes the next request while this one waits. A kept
 * worker that accepted holds the turn (the FastCGI socket disarmed in the
 * pool's epoll set) through what cannot wait long: the request's parameters,
 * a body the web server sent whole (MCPGW_BODY_BUFFERED, set by the shipped
 * lighttpd and mod_fcgid configs), and a ROUTE_QUICK handler; then it accepts
 * the next waiting connection itself, with no sleep and no wake-up of
 * another thread (two context switches a request). The skeleton releases
 * the turn before reading any other body and before any other handler; a
 * ROUTE_QUICK handler calls this before anything that may wait. From the
 * worker's own thread (the handler, before it returns); nothing when the
 * worker holds no turn (plain CGI, a pool without turns, an extra worker,
 * or already released). */
void responder_turn_release(struct exchange *x);

/* responder_take: a handler hands its request over to t (the caller's,
 * zeroed or not) and then returns ROUTE_TAKEN: the FastCGI request moves
 * with hio_hand_over (the worker gets a fresh FCGX_Request for its next
 * accept), and so do the access-log record, the caller (auth: its policy is
 * t's to free with auth_caller_clear once the request's run is freed), the
 * capacity slot (no longer given back when the handler returns:
 * responder_taken_end does) and the body (x->body is left empty).
 * responder_taken_end also frees the moved hio's added header lines
 * (hio_release). FastCGI only. 0, or -1 when
 * nothing was taken (plain CGI, no request in progress): the handler
 * answers as before. */
int responder_take(struct exchange *x, struct responder_taken *t);

/* responder_taken_end: the taker is done with t's run (its answer all
 * written through t->h, or the client gone): the access-log line and its
 * counts (accesslog_end with t->h's status, or 500 when nothing was
 * answered, and body bytes; accesslog_write), the capacity slot given back,
 * the body freed. Once (later calls do nothing); from any thread. The
 * request itself (t->h) is the taker's to end (fcgiwrite_finish). */
void responder_taken_end(struct responder_taken *t);

/* A responder program: its name, routes, clients and hooks (all hooks optional). */
struct responder_def {
	const char *name; /* for the log: "tools.fcgi" */
	const struct route *routes;
	/* the clients its routes need: &responder_upstream when one needs ROUTE_UPSTREAM,
	 * &responder_broker for ROUTE_BROKER (a route needing one the def lacks answers 500) */
	const struct responder_client *upstream;
	const struct responder_client *broker;
	void *app;          /* the program's state, x->app in every handler */
	size_t worker_size; /* bytes of w->data per worker (0: none) */
	/* threads: worker threads in FastCGI mode (NULL: 1); the settings are loaded */
	int (*threads)(const struct responder *r);
	/* pool_fixed: 1 when the pool keeps def->threads workers and never grows (its
	 * handlers hand long requests over: ROUTE_TAKEN), asked after setup (NULL: 0) */
	int (*pool_fixed)(const struct responder *r);
	/* setup: after the settings loaded; -1 with r->settings_err set: every route answers 500 */
	int (*setup)(struct responder *r);
	/* upstream_opts: change the options the workers' upstream clients are made with */
	void (*upstream_opts)(const struct responder *r, struct upstream_opts *o);
	/* worker_setup: after w's clients were made; -1: the worker is not started */
	int (*worker_setup)(struct responder_worker *w);
	void (*worker_teardown)(struct responder_worker *w);
	void (*teardown)(struct responder *r);
};

/* MCPGW_FAULT (tests only, read from the environment or .env at start, never from a
 * request): comma-separated routes, each a path as the tables write it
 * ("/v1/tools/{}") or a method and a path ("POST /v1/tools"), whose handler is
 * replaced by one that fails inside (returns without answering), so that the 500
 * path can be tested from outside. */
#define RESPONDER_FAULT_MAX 512

struct responder {
	const struct responder_def *def;
	struct settings s;
	int settings_ok; /* 0: every routed request answers 500 configuration_error with settings_err */
	char settings_err[1024];
	unsigned needs;                  /* every route's needs ORed */
	char fault[RESPONDER_FAULT_MAX]; /* MCPGW_FAULT, "" when off */
	struct responder_worker *ws;
	int nw;
	struct metrics *metrics;   /* the shared counters (lib/core/metrics.h); NULL until the state directory exists */
	struct capacity *capacity; /* the host's slots (ROUTE_CAPACITY); NULL until the state directory exists */
};

/* responder_capacity: r's table of the host's capacity slots (MCPGW_CAPACITY),
 * opened on first use once the state directory exists (retried at most once a
 * second); NULL when it cannot be (the gate is then open: logged). */
struct capacity *responder_capacity(struct responder *r);

/* responder_metrics: r's shared counters, opened on first use once the state
 * directory exists (retried at most once a second); NULL when they cannot be. */
struct metrics *responder_metrics(struct responder *r);

/* responder_main: the whole life of a responder program: load the settings, open
 * the log as def->name, run the hooks, serve requests (FastCGI: def->threads
 * workers until SIGTERM; plain CGI: the one request) and free everything.
 * A settings problem is not fatal: every request then gets 500 configuration_error
 * (exiting would make the web server restart us in a loop). Returns the exit status. */
int responder_main(const struct responder_def *def);

/* responder_init: what responder_main does before serving, for r (zeroed by it)
 * with def: settings, log, setup hook, MCPGW_FAULT. No worker is made. */
void responder_init(struct responder *r, const struct responder_def *def);

/* responder_serve_one: answer the request in w->h (accepted, not finished):
 * route it, check the method, the settings, the body, run the handler, wait for
 * it when PENDING, and answer 500 internal_error when it left the request
 * unanswered; its access-log record is kept in w->last (accesslog_write
 * writes it). The request is not finished (hio_accept/hio_finish do that). */
void responder_serve_one(struct responder_worker *w);

/* responder_route: the route for method and path in routes. Returns it with
 * *arg set (inside path), or NULL with *status 404 (no route has the path) or
 * 405 (*allow then the methods of the rows with the path, "GET, HEAD, POST",
 * into allow of allowlen bytes). */
const struct route *responder_route(const struct route *routes, const char *method, const char *path, const char **arg,
				    int *status, char *allow, size_t allowlen);

/* exchange_finish: a PENDING handler is done with x (the answer is written);
 * callable from any thread, once. The skeleton then ends the request. */
void exchange_finish(struct exchange *x);

/* responder_send_config_error: the one answer to a configuration problem: 500
 * configuration_error "mcpgw is misconfigured: why". Returns hio's result. */
int responder_send_config_error(struct hio *h, const char *why);

#endif
