/* upstream_call.h: the asynchronous form of the upstream client (openai/upstream.h): many exchanges at once on one curl multi handle. */
#ifndef MCPGW_UPSTREAM_CALL_H
#define MCPGW_UPSTREAM_CALL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* of openai/upstream.h (which a user includes too): not included here, so
 * that upstream.c, which implements both, makes no circle of headers */
struct upstream;
struct upstream_result;

/* ---- asynchronous exchanges: many at once on one curl multi handle ----
 *
 * The form of upstream_request / upstream_stream for an event loop that runs
 * many exchanges at once on one CURLM of its own (docs/concurrency.md): an
 * exchange is a call (struct upstream_call) made from a struct upstream,
 * which then serves as the configuration (URLs, headers, key, bounds), shared
 * by all its calls; a call has its own easy handle (kept across exchanges:
 * a pool of calls keeps connections alive in the multi's connection cache),
 * error buffer, URL and per-attempt state. A call's exchange makes the same
 * requests, retries, waits and results (messages, redaction, logging) as the
 * blocking functions; only its waits are the loop's: it never blocks.
 *
 * The loop's part, per exchange:
 *   st = upstream_call_start(c, multi, ..., &res, &due)
 *   loop: curl_multi_poll / curl_multi_perform (or socket_action) on multi;
 *         for each CURLMSG_DONE whose easy_handle is upstream_call_easy(c)
 *         (or whose CURLINFO_PRIVATE is c): st = upstream_call_done(c, msg->data.result, &due);
 *         after each perform, due = upstream_call_due(c) (every byte moves the idle deadline);
 *         when now >= due: st = upstream_call_timer(c, now, &due);
 *         the client went away: upstream_call_cancel(c)
 *   until st == UPSTREAM_CALL_DONE: res is complete, as upstream_request /
 *   upstream_stream would have filled it.
 * Times are monotonic ms (core/clock.h clock_now_ms). One thread at a time
 * uses a struct upstream and all its calls (the loop's thread); the blocking
 * functions of the same struct upstream may be used between (its own easy
 * handle and multi). The stream_options refusal (upstream_stream) is the
 * upstream's: a call that meets it makes u stop asking, for every call. */

struct upstream_call;

/* Where a call's exchange is. */
enum upstream_call_state {
	UPSTREAM_CALL_DONE = 0, /* no exchange in progress (never started, or ended: its res is complete) */
	UPSTREAM_CALL_RUNNING,  /* an attempt's transfer is in the multi handle; the idle timeout is due */
	UPSTREAM_CALL_WAITING,  /* between attempts: the easy handle is out of the multi until the retry time */
};

/* upstream_call_new: a call of u, with its own libcurl easy handle (its
 * CURLOPT_PRIVATE is the call: a loop may find the call of a CURLMSG_DONE by
 * curl_easy_getinfo(CURLINFO_PRIVATE)). u must outlive it. Its exchanges
 * retry as u's do until upstream_call_begin says otherwise. NULL on ENOMEM or
 * a libcurl failure. Free with upstream_call_free. */
struct upstream_call *upstream_call_new(struct upstream *u);

/* upstream_call_closesocket: the calls of u made from now on close their
 * connections through fn(data, fd) (libcurl's CURLOPT_CLOSESOCKETFUNCTION,
 * which must close fd and return 0): a loop that keeps a connection's epoll
 * registration between transfers (evloop_park) removes it there, before the
 * fd is closed. fn is called on the thread that drives the calls' multi
 * handle (also from curl_multi_cleanup). NULL: libcurl closes them itself. */
void upstream_call_closesocket(struct upstream *u, curl_closesocket_callback fn, void *data);

/* upstream_call_free: an exchange in progress is stopped (its easy handle
 * taken out of the multi; its res is left as it is, not completed: cancel
 * first for a result), then the call freed. NULL is ignored. Before the
 * multi of an exchange in progress is cleaned up; not from within a libcurl
 * callback of the multi (the event callback). */
void upstream_call_free(struct upstream_call *c);

/* upstream_call_trim: c, whose exchange is done (UPSTREAM_CALL_DONE), made
 * ready to be kept for a later client request (a loop's pool of calls: its
 * easy handle, options and the URL it made are not made again): what its
 * last exchange borrowed is forgotten, the stream's usage body freed, and
 * parser buffers grown past 16 KB by a large event freed. The next client's
 * upstream_call_begin comes before its exchanges. 0, or -1 (nothing done)
 * when an exchange is running or waiting: such a call is freed, not kept. */
int upstream_call_trim(struct upstream_call *c);

/* upstream_call_begin: the call serves a new client request (upstream_begin
 * for a call): what earlier answers told is forgotten
 * (upstream_call_client_headers), and client_retry (the client's
 * x-stainless-retry-count, NULL: none) sets how many retries its exchanges
 * make, as upstream_begin says. */
void upstream_call_begin(struct upstream_call *c, const char *client_retry);

/* upstream_call_client_headers: upstream_client_headers for what the answers
 * of c's exchanges told since upstream_call_begin. 0, or -1 when out of memory. */
int upstream_call_client_headers(const struct upstream_call *c, int status, buf_t *out);

/* upstream_call_easy: c's easy handle (borrowed: the call owns it), to match
 * a CURLMSG_DONE of the multi with the call. */
CURL *upstream_call_easy(const struct upstream_call *c);

/* upstream_call_state: where c's exchange is. */
enum upstream_call_state upstream_call_state(const struct upstream_call *c);

/* upstream_call_start: begin an exchange of c on multi (the caller's;
 * libcurl's callbacks, the event callback included, run inside its
 * curl_multi_perform / curl_multi_socket_action): stream 0 is
 * upstream_request(method, path, body, len), stream 1 upstream_stream(path,
 * body, len, on_event, ud; on_event an upstream_event_cb) with the given
 * method (POST): the same URL (dialect, Azure deployment, api-version),
 * headers, stream_options.include_usage ask and its fallback, retries and
 * waits. method, body (len bytes), ud and res
 * are borrowed until the exchange ends (UPSTREAM_CALL_DONE); res is reset as
 * the blocking functions reset it. A call whose exchange is in progress is
 * cancelled first (upstream_call_cancel: that res gets ECLIENTGONE). Returns
 * UPSTREAM_CALL_RUNNING, or UPSTREAM_CALL_DONE when the exchange ended at once
 * (res->err UPSTREAM_ENOMEM: the URL too long, out of memory, an option
 * libcurl refused; a multi refusing the handle is an attempt failed with a
 * connection error, retried as such: UPSTREAM_CALL_WAITING); *due (may be
 * NULL) gets upstream_call_due. */
enum upstream_call_state upstream_call_start(struct upstream_call *c, CURLM *multi, const char *method,
					     const char *path, const char *body, size_t len, int stream,
					     int (*on_event)(const char *, size_t, void *), void *ud,
					     struct upstream_result *res, int64_t *due);

/* upstream_call_done: the loop read CURLMSG_DONE for c's easy handle with
 * libcurl's result cc: c takes its handle out of the multi (the caller must
 * not) and judges the attempt as the blocking functions do. Returns
 * UPSTREAM_CALL_DONE (res complete), UPSTREAM_CALL_WAITING (a retry is due
 * at *due: the same backoff and Retry-After rules), or UPSTREAM_CALL_RUNNING
 * (the stream's request went again at once without stream_options); *due
 * (may be NULL) gets upstream_call_due. A call not running is left as it is
 * (its state returned). */
enum upstream_call_state upstream_call_done(struct upstream_call *c, CURLcode cc, int64_t *due);

/* upstream_call_due: the monotonic ms at which c wants upstream_call_timer:
 * running, the idle deadline of its transfer (the last byte in or out plus
 * idle_timeout_ms, or the 1 s grace after a stream's [DONE]; every byte moves
 * it, so ask again after each curl_multi_perform; while the connection is
 * being made, libcurl's connect timeout rules and this is a check 1 s on;
 * INT64_MAX while the loop holds it paused, upstream_call_pause); waiting,
 * the retry time; INT64_MAX when done. */
int64_t upstream_call_due(const struct upstream_call *c);

/* upstream_call_timer: c's time has come (now: clock_now_ms; early calls do
 * nothing): running and idle for too long, its handle is taken out of the
 * multi and the attempt judged as the blocking functions judge a stalled one
 * (UPSTREAM_ETIMEOUT, not retried; after [DONE], complete); waiting, the next
 * attempt is added to the multi. Returns the state; *due (may be NULL) gets
 * upstream_call_due. */
enum upstream_call_state upstream_call_timer(struct upstream_call *c, int64_t now, int64_t *due);

/* upstream_call_pause: pause (1) or go on reading (0) the answer of c's
 * running transfer (curl_easy_pause, CURLPAUSE_RECV / CURLPAUSE_CONT: the
 * loop's backpressure when the client reads slowly); events in the bytes
 * libcurl handed over before are still delivered. While paused the idle
 * timeout does not run (the upstream is not the one that is slow); it
 * starts again from 0 when reading goes on. Pausing may be done from the
 * event callback; going on may deliver events at once, from within this
 * call. Another attempt reads unpaused. A call not running, or already
 * so, is left as it is: 0. 0, or -1 when libcurl refused. */
int upstream_call_pause(struct upstream_call *c, int pause);

/* upstream_call_cancel: the client went away: an exchange in progress is
 * stopped (its handle out of the multi, nothing retried) and ends with
 * UPSTREAM_ECLIENTGONE as the blocking functions end when the watched client
 * leaves (upstream_watch), res complete. A call that is done is left as it is.
 * Not from within the event callback (return non-zero from it instead:
 * UPSTREAM_EABORTED). */
void upstream_call_cancel(struct upstream_call *c);

#endif
