/* chatloop.h: chat.fcgi's event-loop driver (MCPGW_CHAT_DRIVER=loop): a loop thread (MCPGW_CHAT_LOOPS per process) drives every chat completion handed to it, never blocking on one. */
#ifndef MCPGW_CHATLOOP_H
#define MCPGW_CHATLOOP_H

#include <jansson.h>

#include "http/responder.h"

/*
 * The model is docs/concurrency.md's. The skeleton's workers accept, check
 * and read a request (auth, the capacity slot, the body, the 4xx answers)
 * and parse it; chat.fcgi's route then hands it over (chatloop_submit) and
 * its worker accepts the next one at once. The loop thread runs each run
 * (lib/openai/toolloop.h) step by step on one struct evloop:
 *
 *   CATALOG   the worker made its own catalog current before the hand-over
 *             (mcptools_wait, blocking there, servers coming up waited
 *             for); the loop refreshes its own copy (lib/mcp/mcptools: a
 *             catalog.gen read, one tools/list round trip on a blocking
 *             broker client when the catalog changed: the one step that
 *             still blocks the loop, bounded by MCPGW_BROKER_TIMEOUT)
 *   UPSTREAM  lib/openai/upstream_call on the loop's one curl multi handle
 *             (its sockets and timer on the evloop), events fed as they come
 *   TOOLS     lib/mcp/bcasync on one broker connection, each call carrying
 *             its request's caller; results fed in any order; keep-alive
 *             ticks after MCPGW_STREAM_KEEPALIVE without output
 *
 * The answer (lib/http/chatstream.c through hio_set_output) goes into the
 * request's lib/http/fcgiwrite buffer; a full buffer pauses the run's
 * upstream transfer until the socket took enough. A client that leaves
 * cancels its run's upstream transfer and broker calls. At the end of a run
 * what the threads driver does happens too: auth_count, the rounds, the
 * access-log line and metrics (responder_taken_end), the capacity slot
 * given back, the mixed-batch history (inside the run).
 */

struct chatloop;

/* chatloop_submit's catalog_rc when the worker read no catalog */
#define CHATLOOP_NO_CATALOG 1000

/* The most loops a process runs (MCPGW_CHAT_LOOPS' bound) */
#define CHATLOOP_MAX 64

/* chatloop_count: how many loops a process runs with settings s:
 * MCPGW_CHAT_LOOPS, or one per online CPU when it is 0 (1..CHATLOOP_MAX).
 * The idle upstream connections the process keeps (MCPGW_CHAT_THREADS, as
 * many as the threads driver keeps) are shared among them. */
int chatloop_count(const struct settings *s);

/* chatloop_start: a loop of r's process (settings loaded and valid) and
 * its thread, which blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 (main waits
 * for them). NULL when it cannot be made (logged): the caller drives runs
 * on threads. Stop with chatloop_stop. */
struct chatloop *chatloop_start(struct responder *r);

/* chatloop_submit: hand the request of x over to l (responder_take) with
 * its parsed body req (stolen, even on failure), the servers filter
 * (X-MCPGW-Servers, copied; NULL: none) and catalog_rc, what the worker's
 * mcptools_wait returned (BC_OK, a bc_status, or 1), or CHATLOOP_NO_CATALOG
 * when none was read (the loop reads it then, without waiting). Returns 0: taken (the handler returns
 * ROUTE_TAKEN), or -1: nothing was taken (out of memory, or the loop is
 * stopping): the handler answers x itself. Thread-safe. */
int chatloop_submit(struct chatloop *l, struct exchange *x, json_t *req, const char *servers, int catalog_rc);

/* chatloop_tell_stop: chatloop_stop's beginning alone, not waiting: l's
 * runs get their grace from now (a process with several loops tells every
 * one first, then stops each). Thread-safe; NULL: nothing. */
void chatloop_tell_stop(struct chatloop *l);

/* chatloop_stop: the process is stopping: the runs in progress (and those
 * handed over, not started yet) go on for at most MCPGW_SHUTDOWN_GRACE from
 * now, then the rest are abandoned (their connections closed, the access
 * log written); the thread is joined and everything freed. NULL: nothing. */
void chatloop_stop(struct chatloop *l);

/* A loop that used less than this share of a core (permille) over its last
 * window, with fewer than CHATLOOP_PACK_RUNS runs, takes new runs before the
 * loops after it (chatloop_choose) */
#define CHATLOOP_PACK_BUSY_PM 700
#define CHATLOOP_PACK_RUNS 256

/* chatloop_choose: which of n loops (1..CHATLOOP_MAX) a new run goes to,
 * from each one's chatloop_busy (busy_pm[i], permille) and chatloop_runs
 * (runs[i]): the first, in order, below CHATLOOP_PACK_BUSY_PM with fewer
 * than CHATLOOP_PACK_RUNS runs; when every one is busy or that full, the
 * one with the fewest runs, ties going to the first from start % n on.
 * Returns the index (0..n-1). Runs are packed onto the first loops rather
 * than spread: a loop that has runs is awake, and a run handed over to it
 * starts at its next pass, while a loop left with none sleeps, and each run
 * handed to it wakes its thread first (an eventfd write, a wake-up on
 * another core). Pure: no lock, no state. */
int chatloop_choose(const int *busy_pm, const int *runs, int n, unsigned start);

/* chatloop_busy: the share of a core, in permille (0..1000), l's thread
 * used over its last measured window of about 100 ms (waits excluded): how
 * close the loop is to its one core's worth of work. A loop that waited
 * since keeps its last figure until its next pass. Thread-safe. */
int chatloop_busy(struct chatloop *l);

/* chatloop_runs: runs in progress on l (handed over and not yet ended), for tests and the log. */
int chatloop_runs(struct chatloop *l);

#endif
