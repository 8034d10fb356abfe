/* chatloop.c: chat.fcgi's event-loop driver: runs handed over by the workers, driven on one thread with curl multi, the asynchronous broker client and non-blocking FastCGI answers (see chatloop.h). */
#include "http/chatloop.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/evloop.h"
#include "core/log.h"
#include "http/chatstream.h"
#include "http/fcgiwrite.h"
#include "http/oai.h"
#include "mcp/bcasync.h"
#include "mcp/bclient.h"
#include "openai/toolloop.h"
#include "openai/upstream.h"
#include "openai/upstream_call.h"

/* The longest the loop waits in one pass (a stop is also told through the eventfd). */
#define CHATLOOP_WAIT_MS 1000
/* The longest the loop waits in one pass while runs are in flight and it is busy: a run handed
 * over then is not woken for (the loop wakes for its runs' answers anyway, at a steady load many
 * times a millisecond): it is started at the loop's next pass, at most this much later. A loop
 * whose last such wait passed with nothing to do is quiet (its runs wait on slow upstreams or
 * tools): it waits up to CHATLOOP_WAIT_MS, and a run handed over wakes it at once (the eventfd),
 * as one handed over to a loop with no run in flight does */
#define CHATLOOP_LAZY_MS 2
/* Answer bytes a run keeps beyond its fcgiwrite buffer (what the events already under way produce
 * once the buffer is full and its upstream paused), past it the client is taken for gone */
#define CHATLOOP_OVER_MIN ((size_t)1 << 20)
/* A run whose body or answer was at least this large has the heap trimmed once it is freed (the
 * skeleton's RESPONDER_TRIM_AFTER: its memory goes back to the system, off any client's time) */
#define CHATLOOP_TRIM_AFTER ((size_t)1 << 20)
/* How long a run that ended waits for the end of its request's body (the empty FCGI_STDIN record
 * Apache mod_proxy_fcgi sends apart) before its answer is ended and the connection closed */
#define CHATLOOP_BODY_END_WAIT_MS 1000
/* A run's FastCGI connection is watched for the client leaving (the web server closing it, or
 * FCGI_ABORT_REQUEST) from this long after its start, or from its first write: most plain answers
 * are out before, with no epoll registration to add and remove (two system calls a request) */
#define CHATLOOP_WATCH_AFTER_MS 50
/* Runs ended since the last trim after which an idle loop trims the heap (a burst's memory back),
 * once it has had no run for CHATLOOP_IDLE_TRIM_MS: not at each moment between two requests of a
 * steady load (malloc_trim madvises every arena's free pages away, TLB shootdowns on every core,
 * and the next requests fault them back in: 8% of chat.fcgi's time at 32 connections) */
#define CHATLOOP_BURST 16
#define CHATLOOP_IDLE_TRIM_MS 1000
/* The most upstream calls a loop keeps between runs (as many as the idle connections it keeps,
 * chatloop_kept_connections, at most this): a run takes a kept call, easy handle, options and URL
 * made, instead of making them again (curl_easy_init and its options: a third of the allocations
 * of a plain chat) */
#define CHATLOOP_POOL_MAX 64
/* The window over which a loop measures the share of a core its thread used (chatloop_busy) */
#define CHATLOOP_BUSY_WINDOW_MS 100

enum lrun_phase {
	LR_RUNNING = 0, /* the run goes on */
	LR_ENDING,      /* the run ended: what it wrote still goes out, then the end records */
	LR_FINISHING,   /* fcgiwrite_finish wants the socket writable */
	LR_DEAD,        /* handed back: freed at the end of the pass */
};

struct chatloop;

/* One run in the loop. */
struct lrun {
	struct lrun *prev, *next;
	struct chatloop *l;
	struct responder_taken t; /* the request, its log record, caller, slot */
	json_t *req;              /* the parsed body until the run is opened */
	char *servers;            /* X-MCPGW-Servers, NULL none */
	int catalog_rc;           /* the worker's mcptools_wait, CHATLOOP_NO_CATALOG: none */
	struct fcgiwrite fw;
	int fd;       /* fw's connection while watched, -1 none */
	int fw_begun; /* fcgiwrite_begin succeeded */
	buf_t over;   /* answer bytes fw did not take yet */
	struct chatstream cs;
	struct chatnote note;
	struct tl_run *run;
	struct upstream_call *call;
	struct upstream_result *res; /* allocated apart, not zeroed (upstream_result_init): 9 KB of room, little written */
	int paused;                  /* the upstream transfer is paused (fw full) */
	long *bca_ids;               /* the batch's broker request ids (0: ended), ncalls of them */
	char **call_ids;             /* the batch's tool-call ids (copies), to feed results with */
	int ncalls;
	int64_t quiet;     /* when the run last wrote while tools run (keep-alive) */
	int gone;          /* the client left */
	int big;           /* its body was large: the heap is trimmed once it is freed */
	int64_t body_wait; /* ended: until when the end of its body is waited for (fcgiwrite_body_ended) */
	int64_t watch_at;  /* running: when its connection is watched for the client leaving, if no write did first */
	enum lrun_phase phase;
};

/* A kept upstream call and the result its runs read. */
struct lcall {
	struct upstream_call *call;
	struct upstream_result *res;
};

struct chatloop {
	struct responder *r;
	const struct settings *s;
	pthread_t th;
	int started;
	struct evloop *ev;
	int efd;    /* eventfd: a run handed over while the loop waits (asleep), or stop */
	int asleep; /* under lock: the loop is in (or about to enter) its wait with an empty queue */
	int quiet;  /* under lock: that wait is a long one (its last lazy wait had nothing): wake it */
	CURLM *multi;
	int64_t curl_due; /* curl's timer (EVLOOP_NEVER: none) */
	long curl_timer, run_timer;
	struct upstream *up; /* the configuration of every call */
	struct bcasync *bca; /* the runs' tool calls */
	struct bclient *bc;  /* the catalog's tools/list (blocking, rare) */
	struct toolloop tl;  /* shared by the runs: settings, catalog, store; policy and key set per call */
	struct lrun *runs;   /* in progress */
	int nruns;
	pthread_mutex_t lock; /* guards queue, queued, stop */
	struct lrun *queue;   /* handed over, not started */
	int queued;
	int stop;                             /* chatloop_stop was called */
	int64_t stop_at;                      /* the loop's deadline once stopping, EVLOOP_NEVER before */
	int64_t loop_runs;                    /* runs started, for the log */
	int ended_since_trim;                 /* runs freed since the heap was last trimmed */
	int64_t last_busy;                    /* when the loop last had a run (reap) */
	int64_t trim_at;                      /* when an idle trim is looked at (EVLOOP_NEVER: none due) */
	struct lcall pool[CHATLOOP_POOL_MAX]; /* calls kept between runs (take_call, give_call) */
	int npool, pool_max;
	int busy_pm;         /* atomic: permille of a core the thread used in its last window (chatloop_busy) */
	int64_t busy_at;     /* when that window began (clock_now_ms) */
	int64_t busy_cpu_ns; /* the thread's CPU time then */
};

/* ---- binding a run to the shared toolloop ---- */

/* run_bind: the toolloop's per-call fields are the run's own caller's (one thread: set before each call into the run) */
static struct tl_run *run_bind(struct lrun *lr)
{
	lr->l->tl.policy = auth_policy(&lr->t.auth);
	lr->l->tl.key_id = lr->t.auth.key_id;
	return lr->run;
}

/* ---- the answer's bytes ---- */

/* watch: fw's connection watched for readable (the client leaving), and writable while want */
static void watch_fd(struct lrun *lr, int want_write);

/* mark_full: the buffer is full: the upstream transfer waits until the socket took enough */
static void mark_full(struct lrun *lr)
{
	if (!lr->paused && lr->call && upstream_call_state(lr->call) == UPSTREAM_CALL_RUNNING &&
	    upstream_call_pause(lr->call, 1) == 0) {
		lr->paused = 1;
		log_debug("chat loop: the client reads slowly: its upstream transfer paused");
	}
}

/* run_out: hio's output (hio_set_output): into fw, or behind it in over when fw is full */
static int run_out(void *ud, const void *p, size_t n)
{
	struct lrun *lr = ud;
	size_t over_max = lr->l->s->max_response_bytes * 2 + CHATLOOP_OVER_MIN;

	if (lr->gone)
		return -1;
	if (lr->over.len == 0) {
		switch (fcgiwrite_put(&lr->fw, p, n)) {
		case FCGIWRITE_PUT_OK: return 0;
		case FCGIWRITE_PUT_FULL:
		case FCGIWRITE_PUT_TOO_BIG: break;
		case FCGIWRITE_PUT_CLOSED:
		case FCGIWRITE_PUT_NOMEM: return -1;
		}
	}
	if (lr->over.len + n > over_max) {
		log_warn("chat completion: the client reads too slowly (%zu answer bytes waiting): dropped",
			 lr->over.len + n);
		return -1;
	}
	if (buf_append(&lr->over, p, n) < 0)
		return -1;
	mark_full(lr);
	return 0;
}

/* move_over: what waits in over into fw, as far as it takes it */
static void move_over(struct lrun *lr)
{
	while (lr->over.len > 0) {
		size_t room = fcgiwrite_room(&lr->fw), n = lr->over.len < room ? lr->over.len : room;

		if (n == 0 || fcgiwrite_put(&lr->fw, lr->over.data, n) != FCGIWRITE_PUT_OK)
			return;
		memmove(lr->over.data, lr->over.data + n, lr->over.len - n);
		lr->over.len -= n;
		lr->over.data[lr->over.len] = '\0';
	}
}

/* ---- ending runs ---- */

static void advance(struct lrun *lr);

/* unwatch: fw's connection no longer watched (before it is closed) */
static void unwatch(struct lrun *lr)
{
	if (lr->fd >= 0)
		evloop_unwatch(lr->l->ev, lr->fd);
	lr->fd = -1;
}

/* cancel_work: the run's upstream transfer and broker calls stopped */
static void cancel_work(struct lrun *lr)
{
	if (lr->call && upstream_call_state(lr->call) != UPSTREAM_CALL_DONE)
		upstream_call_cancel(lr->call);
	for (int i = 0; i < lr->ncalls; i++)
		if (lr->bca_ids[i] > 0) {
			(void)bca_cancel(lr->l->bca, lr->bca_ids[i]);
			lr->bca_ids[i] = 0;
		}
}

/* close_run: the run's end as the threads driver has it: what it spent, its rounds, then the run freed */
static void close_run(struct lrun *lr)
{
	if (!lr->run)
		return;
	run_bind(lr);
	chatnote_end(&lr->note, &lr->t.auth, toolloop_added(lr->run));
	toolloop_close(lr->run);
	lr->run = NULL;
	lr->l->tl.policy = NULL;
	lr->l->tl.key_id = NULL;
}

/* drop: the client is gone (or the process stops): everything of the run stopped, the request
 * handed back unended, the access log written */
static void drop(struct lrun *lr)
{
	if (lr->phase == LR_DEAD)
		return;
	lr->gone = 1;
	cancel_work(lr);
	close_run(lr);
	responder_taken_end(&lr->t);
	unwatch(lr);
	if (lr->fw_begun)
		fcgiwrite_abandon(&lr->fw);
	lr->phase = LR_DEAD;
}

static void up_end(struct lrun *lr);

/* client_left: the client went away: an upstream exchange in progress ends as the threads
 * driver's watched one does (UPSTREAM_ECLIENTGONE: the run fails with 499, the access log's
 * "client closed request"), broker calls are cancelled, the request handed back */
static void client_left(struct lrun *lr)
{
	if (!lr->gone && lr->phase == LR_RUNNING && lr->run && lr->call &&
	    upstream_call_state(lr->call) != UPSTREAM_CALL_DONE) {
		lr->gone = 1;
		upstream_call_cancel(lr->call);
		up_end(lr);
	}
	drop(lr);
}

/* flush_run: write what the socket takes; after the run ended, the end records; the client gone: drop */
static void flush_run(struct lrun *lr)
{
	enum fcgiwrite_state st;

	if (lr->phase == LR_DEAD)
		return;
	if (lr->phase == LR_RUNNING || lr->phase == LR_ENDING) {
		for (;;) {
			size_t before = lr->over.len;

			move_over(lr);
			/* ended, all in fw and the body read to its end: the rest goes out with the end
			 * records, in one write (fcgiwrite_finish) */
			if (lr->phase == LR_ENDING && lr->over.len == 0 &&
			    (fcgiwrite_body_ended(&lr->fw) ||
			     (!fcgiwrite_client_gone(&lr->fw) && fcgiwrite_body_ended(&lr->fw))))
				goto finish;
			st = fcgiwrite_flush(&lr->fw);
			if (st == FCGIWRITE_GONE) {
				client_left(lr);
				return;
			}
			if (st == FCGIWRITE_WANT_WRITE || lr->over.len == 0 || lr->over.len == before)
				break;
		}
		if (lr->phase == LR_RUNNING) {
			watch_fd(lr, st == FCGIWRITE_WANT_WRITE);
			/* room again: the upstream goes on (which may write at once, from within) */
			if (lr->paused && lr->over.len == 0 && fcgiwrite_room(&lr->fw) >= lr->fw.max / 2) {
				lr->paused = 0;
				log_debug("chat loop: the client took its answer: its upstream transfer goes on");
				if (lr->call && upstream_call_pause(lr->call, 0) < 0)
					log_warn("chat completion: the upstream transfer could not go on (curl refused)");
			}
			return;
		}
		if (lr->over.len > 0) { /* ending, not all in fw yet */
			watch_fd(lr, 1);
			return;
		}
		if (!fcgiwrite_body_ended(&lr->fw) && evloop_now(lr->l->ev) < lr->body_wait) {
			/* the body's end not read yet: closing now would fail the web server's write of it */
			watch_fd(lr, st == FCGIWRITE_WANT_WRITE);
			return;
		}
finish:
		lr->phase = LR_FINISHING;
	}
	/* unwatched before finish may close the connection (evloop_unwatch's contract: epoll keeps a
	 * closed fd's registration while another process still holds the connection) */
	unwatch(lr);
	st = fcgiwrite_finish(&lr->fw, 0);
	if (st == FCGIWRITE_WANT_WRITE) {
		watch_fd(lr, 1);
		return;
	}
	/* handed back (its connection closed, or kept: closed here, the loop reads no next request) */
	if (lr->t.h.req.ipcFd >= 0)
		FCGX_Free(&lr->t.h.req, 1);
	lr->phase = LR_DEAD;
}

/* end_run: the run ended (its last event went out): its end noted, the answer finished */
static void end_run(struct lrun *lr)
{
	close_run(lr);
	if (!lr->t.h.status_sent)
		oai_send_error(&lr->t.h, 500, NULL, "internal_error",
			       "The server had an internal error while answering POST /v1/chat/completions "
			       "(the responders' log says more).");
	responder_taken_end(&lr->t); /* the slot back: the run ended */
	lr->phase = LR_ENDING;
	lr->body_wait = evloop_now(lr->l->ev) + CHATLOOP_BODY_END_WAIT_MS;
	flush_run(lr);
}

/* ---- the FastCGI connection ---- */

/* on_client: the connection is readable (the web server closing or aborting) or writable */
static void on_client(void *ctx, int fd, int events)
{
	struct lrun *lr = ctx;

	(void)fd;
	if ((events & (EVLOOP_READ | EVLOOP_ERROR)) && lr->phase != LR_DEAD && fcgiwrite_client_gone(&lr->fw)) {
		client_left(lr);
		return;
	}
	if ((events & EVLOOP_WRITE) || lr->phase == LR_ENDING) /* ending: perhaps the body's end came */
		flush_run(lr);
}

static void watch_fd(struct lrun *lr, int want_write)
{
	int fd = fcgiwrite_fd(&lr->fw);

	if (fd < 0)
		return;
	if (evloop_watch(lr->l->ev, fd, EVLOOP_READ | (want_write ? EVLOOP_WRITE : 0), on_client, lr) == 0)
		lr->fd = fd;
}

/* ---- the upstream ---- */

/* on_up_event: one SSE event of the run's upstream stream */
static int on_up_event(const char *data, size_t len, void *ud)
{
	struct lrun *lr = ud;

	if (lr->phase != LR_RUNNING || !lr->run)
		return 1;
	return toolloop_feed_upstream_event(run_bind(lr), data, len) < 0 ? 1 : 0;
}

/* up_end: the run's upstream exchange ended: fed, then the run goes on */
static void up_end(struct lrun *lr)
{
	if (lr->phase != LR_RUNNING || !lr->run)
		return;
	lr->paused = 0;
	(void)toolloop_feed_upstream_end(run_bind(lr), lr->res);
	advance(lr);
}

/* find_call: the run whose call has easy handle e */
static struct lrun *find_call(struct chatloop *l, CURL *e)
{
	for (struct lrun *lr = l->runs; lr; lr = lr->next)
		if (lr->call && upstream_call_easy(lr->call) == e)
			return lr;
	return NULL;
}

/* curl_done: every transfer that ended judged */
static void curl_done(struct chatloop *l)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(l->multi, &left))) {
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;
		struct lrun *lr;

		if (m->msg != CURLMSG_DONE)
			continue;
		if (!(lr = find_call(l, e))) {
			curl_multi_remove_handle(l->multi, e);
			continue;
		}
		if (upstream_call_done(lr->call, cc, NULL) == UPSTREAM_CALL_DONE)
			up_end(lr);
	}
}

/* on_curl_fd: a socket of curl's is ready */
static void on_curl_fd(void *ctx, int fd, int events)
{
	struct chatloop *l = ctx;
	int running, flags = ((events & EVLOOP_READ) ? CURL_CSELECT_IN : 0) |
			     ((events & EVLOOP_WRITE) ? CURL_CSELECT_OUT : 0) |
			     ((events & EVLOOP_ERROR) ? CURL_CSELECT_ERR : 0);

	(void)curl_multi_socket_action(l->multi, fd, flags, &running);
	curl_done(l);
}

/* curl_socket: CURLMOPT_SOCKETFUNCTION: what curl wants watched */
static int curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct chatloop *l = userp;

	(void)e;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		/* a kept connection between two transfers: its registration stays for the next
		 * (curl_closesocket removes it before the connection is closed) */
		evloop_park(l->ev, s);
		return 0;
	}
	return evloop_watch(l->ev, s,
			    (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? EVLOOP_READ : 0) |
				    (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? EVLOOP_WRITE : 0),
			    on_curl_fd, l);
}

/* curl_closesocket: CURLOPT_CLOSESOCKETFUNCTION of the loop's calls: a connection closed, its
 * epoll registration (parked or watched) removed first */
static int curl_closesocket(void *clientp, curl_socket_t s)
{
	struct chatloop *l = clientp;

	evloop_unwatch(l->ev, s);
	return close(s);
}

/* curl_timer: CURLMOPT_TIMERFUNCTION: when curl wants socket_action(TIMEOUT) */
static int curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct chatloop *l = userp;

	(void)multi;
	l->curl_due = timeout_ms < 0 ? EVLOOP_NEVER : clock_now_ms() + timeout_ms;
	return 0;
}

static int64_t curl_due(void *ctx)
{
	return ((struct chatloop *)ctx)->curl_due;
}

static void curl_fire(void *ctx, int64_t now)
{
	struct chatloop *l = ctx;
	int running;

	(void)now;
	l->curl_due = EVLOOP_NEVER;
	(void)curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_done(l);
}

/* ---- the broker ---- */

/* batch_free: the batch's ids forgotten */
static void batch_free(struct lrun *lr)
{
	for (int i = 0; i < lr->ncalls; i++)
		free(lr->call_ids[i]);
	free(lr->call_ids);
	free(lr->bca_ids);
	lr->call_ids = NULL;
	lr->bca_ids = NULL;
	lr->ncalls = 0;
}

/* feed_tool: call i's outcome into the run (status a bc_status; result text or error) */
static void feed_tool(struct lrun *lr, int i, int status, const char *result, size_t len, const json_t *error)
{
	json_t *res = NULL, *err = NULL;
	char *id = lr->call_ids[i];

	lr->bca_ids[i] = 0;
	lr->call_ids[i] = NULL;
	if (status == BC_OK && result) {
		json_error_t je;

		if (!(res = json_loadb(result, len, 0, &je)))
			err = json_pack("{s:s}", "message", "the tool broker's answer could not be read");
	} else if (status != BC_OK || !error) {
		err = json_pack("{s:s+}", "message", "the tool broker failed: ", bc_strerror(status));
	}
	lr->quiet = clock_now_ms(); /* TOOL_END goes out */
	if (lr->run && lr->phase == LR_RUNNING)
		(void)toolloop_feed_tool_result(run_bind(lr), id, res, res ? NULL : err ? err : error);
	json_decref(res);
	json_decref(err);
	free(id);
}

/* on_tool_done: bcasync's answer to one tools/call */
static void on_tool_done(void *ctx, long id, int status, const char *result, size_t len, const json_t *error)
{
	struct lrun *lr = ctx;

	for (int i = 0; i < lr->ncalls; i++)
		if (lr->bca_ids[i] == id) {
			feed_tool(lr, i, status, result, len, error);
			advance(lr);
			return;
		}
}

/* send_tools: the batch to the broker, all at once; calls refused at once fed as failed */
static int send_tools(struct lrun *lr, const struct toolloop_need *need)
{
	int failed = 0;

	batch_free(lr);
	if (!(lr->bca_ids = calloc((size_t)need->ncalls, sizeof *lr->bca_ids)) ||
	    !(lr->call_ids = calloc((size_t)need->ncalls, sizeof *lr->call_ids)))
		return -1;
	lr->ncalls = need->ncalls;
	for (int i = 0; i < need->ncalls; i++) {
		char *args = json_dumps(need->calls[i].arguments, JSON_COMPACT);

		if (!(lr->call_ids[i] = strdup(need->calls[i].id))) {
			free(args);
			return -1;
		}
		lr->bca_ids[i] = args ? bca_call_tool(lr->l->bca, need->calls[i].name, args, strlen(args),
						      lr->t.auth.key_id, need->timeout_ms, on_tool_done, lr)
				      : BC_ENOMEM;
		free(args);
	}
	lr->quiet = clock_now_ms(); /* TOOL_START went out */
	/* the calls refused at once: fed now that every call's pointers were used */
	for (int i = 0; i < lr->ncalls && lr->phase == LR_RUNNING; i++)
		if (lr->bca_ids[i] < 0) {
			failed++;
			feed_tool(lr, i, (int)lr->bca_ids[i], NULL, 0, NULL);
		}
	return failed;
}

/* ---- driving a run ---- */

/* advance: the run's next needs, until it waits or ends */
static void advance(struct lrun *lr)
{
	struct chatloop *l = lr->l;
	struct toolloop_need need;

	while (lr->phase == LR_RUNNING && lr->run) {
		switch (toolloop_step(run_bind(lr), &need)) {
		case TOOLLOOP_NEED_CATALOG: {
			/* the worker waited for servers coming up; here the loop's copy is made current */
			int rc = lr->catalog_rc != CHATLOOP_NO_CATALOG && lr->catalog_rc != BC_OK
					 ? lr->catalog_rc
					 : mcptools_refresh(&l->tl.tools, l->bc, l->s->broker_timeout_ms);

			(void)toolloop_feed_catalog(run_bind(lr), rc);
			break;
		}
		case TOOLLOOP_NEED_UPSTREAM:
			lr->paused = 0;
			if (upstream_call_start(lr->call, l->multi, "POST", need.path, need.body, need.body_len,
						need.stream, on_up_event, lr, lr->res, NULL) == UPSTREAM_CALL_DONE) {
				(void)toolloop_feed_upstream_end(run_bind(lr), lr->res);
				break;
			}
			return;
		case TOOLLOOP_NEED_TOOLS:
			if (send_tools(lr, &need) < 0) { /* out of memory: the batch fails */
				for (int i = 0; i < lr->ncalls; i++)
					if (lr->bca_ids && lr->bca_ids[i] > 0)
						(void)bca_cancel(l->bca, lr->bca_ids[i]);
				batch_free(lr);
				for (int i = 0; i < need.ncalls && lr->run && lr->phase == LR_RUNNING; i++) {
					json_t *err = json_pack("{s:s}", "message", "out of memory");

					(void)toolloop_feed_tool_result(run_bind(lr), need.calls[i].id, NULL, err);
					json_decref(err);
				}
			}
			break; /* the next step waits while results are due */
		case TOOLLOOP_NEED_WAIT: return;
		case TOOLLOOP_NEED_NOTHING: end_run(lr); return;
		}
	}
}

/* ---- the runs' timer: upstream deadlines, keep-alive ticks, the end of the grace period ---- */

/* tools_due: the run waits for broker answers */
static int tools_due(const struct lrun *lr)
{
	for (int i = 0; i < lr->ncalls; i++)
		if (lr->bca_ids[i] > 0)
			return 1;
	return 0;
}

static void idle_trim(struct chatloop *l, int64_t now);

static int64_t runs_due(void *ctx)
{
	struct chatloop *l = ctx;
	int64_t due = l->stop_at < l->trim_at ? l->stop_at : l->trim_at;
	long period = l->s->stream_keepalive_ms;

	for (struct lrun *lr = l->runs; lr; lr = lr->next) {
		if (lr->phase == LR_ENDING && lr->body_wait < due)
			due = lr->body_wait;
		if (lr->phase != LR_RUNNING)
			continue;
		if (lr->fd < 0 && lr->watch_at < due)
			due = lr->watch_at;
		if (lr->call && upstream_call_state(lr->call) != UPSTREAM_CALL_DONE) {
			int64_t d = upstream_call_due(lr->call);

			if (d < due)
				due = d;
		}
		if (period > 0 && tools_due(lr) && lr->quiet + period < due)
			due = lr->quiet + period;
	}
	return due;
}

static void runs_fire(void *ctx, int64_t now)
{
	struct chatloop *l = ctx;
	long period = l->s->stream_keepalive_ms;

	idle_trim(l, now);
	if (now >= l->stop_at && l->runs) {
		int n = 0;

		for (struct lrun *lr = l->runs; lr; lr = lr->next)
			if (lr->phase != LR_DEAD) {
				drop(lr);
				n++;
			}
		log_warn("chat loop: %d chat completion(s) cut at the end of MCPGW_SHUTDOWN_GRACE", n);
		return;
	}
	for (struct lrun *lr = l->runs; lr; lr = lr->next) {
		if (lr->phase == LR_ENDING && now >= lr->body_wait)
			flush_run(lr); /* the body's end did not come: the answer is ended anyway */
		if (lr->phase != LR_RUNNING)
			continue;
		if (lr->fd < 0 && now >= lr->watch_at)
			watch_fd(lr, 0);
		if (lr->call && upstream_call_state(lr->call) != UPSTREAM_CALL_DONE &&
		    now >= upstream_call_due(lr->call) && upstream_call_timer(lr->call, now, NULL) == UPSTREAM_CALL_DONE)
			up_end(lr);
		if (lr->phase == LR_RUNNING && lr->run && period > 0 && tools_due(lr) && now >= lr->quiet + period) {
			lr->quiet = now;
			(void)toolloop_tick(run_bind(lr)); /* a stream's ": keep-alive" */
		}
	}
}

/* ---- runs handed over ---- */

/* call_headers: the hio hook: what the run's upstream answers told, for the client */
static int call_headers(void *ud, int status, buf_t *out)
{
	return upstream_call_client_headers(ud, status, out);
}

/* take_call: lr's upstream call and result: a kept one, or made; lr->call NULL when out of memory */
static void take_call(struct chatloop *l, struct lrun *lr)
{
	if (l->npool > 0) {
		l->npool--;
		lr->call = l->pool[l->npool].call;
		lr->res = l->pool[l->npool].res;
	} else if ((lr->res = malloc(sizeof *lr->res)) && !(lr->call = upstream_call_new(l->up))) {
		free(lr->res);
		lr->res = NULL;
	}
	if (lr->res)
		upstream_result_init(lr->res);
}

/* give_call: lr's call and result kept for a later run while the pool has room and the call is
 * done (upstream_call_trim), or freed; lr has neither after */
static void give_call(struct chatloop *l, struct lrun *lr)
{
	if (lr->res)
		upstream_result_free(lr->res); /* the answer's body: a later run starts from none */
	if (lr->call && lr->res && l->npool < l->pool_max && upstream_call_trim(lr->call) == 0) {
		l->pool[l->npool].call = lr->call;
		l->pool[l->npool].res = lr->res;
		l->npool++;
	} else {
		upstream_call_free(lr->call);
		free(lr->res);
	}
	lr->call = NULL;
	lr->res = NULL;
}

/* start_run: a run handed over: its answer on fcgiwrite, its upstream call, its toolloop run */
static void start_run(struct lrun *lr)
{
	struct chatloop *l = lr->l;
	struct toolloop_sink sink;
	json_t *req = lr->req;

	lr->req = NULL;
	take_call(l, lr);
	if (!lr->call || fcgiwrite_begin(&lr->fw, &lr->t.h.req, 0) < 0) {
		json_decref(req);
		responder_taken_end(&lr->t);
		FCGX_Free(&lr->t.h.req, 1);
		lr->phase = LR_DEAD;
		return;
	}
	lr->fw_begun = 1;
	fcgiwrite_set_watched(&lr->fw, 1); /* on_client asks fcgiwrite_client_gone when readable (watch_fd) */
	hio_set_output(&lr->t.h, run_out, lr);
	/* every byte of the answer goes out through fcgiwrite (run_out): libfcgi's own output buffers
	 * (8 KB and 512 B a request) are never written; freed now, not when the stream ends (FCGX_Free
	 * and FCGX_FClose take the NULL they leave) */
	FCGX_FreeStream(&lr->t.h.req.out);
	FCGX_FreeStream(&lr->t.h.req.err);
	fcgiwrite_drop_input(&lr->fw); /* and its 8 KB input buffer: the body was read before the hand-over */
	chatstream_init(&lr->cs, &lr->t.h);
	chatnote_init(&lr->note, &lr->t.log, responder_metrics(l->r), chatstream_sink(&lr->cs));
	sink = chatnote_sink(&lr->note);
	/* its connection watched for the client leaving once the run has lasted CHATLOOP_WATCH_AFTER_MS
	 * (runs_fire), or at its first write: a short answer costs no epoll registration */
	lr->watch_at = evloop_now(l->ev) + CHATLOOP_WATCH_AFTER_MS;
	upstream_call_begin(lr->call, hio_param(&lr->t.h, "HTTP_X_STAINLESS_RETRY_COUNT"));
	hio_on_headers(&lr->t.h, call_headers, lr->call);
	l->tl.policy = auth_policy(&lr->t.auth);
	l->tl.key_id = lr->t.auth.key_id;
	lr->run = toolloop_open_owned(&l->tl, req, lr->servers, &sink); /* req is the run's */
	l->loop_runs++;
	if (!lr->run) {
		hio_on_headers(&lr->t.h, NULL, NULL);
		oai_send_error(&lr->t.h, 500, NULL, "internal_error", "Out of memory.");
		end_run(lr);
		return;
	}
	advance(lr);
}

/* lrun_free: everything of a run that ended (its request handed back already) */
static void lrun_free(struct lrun *lr)
{
	batch_free(lr);
	toolloop_close(lr->run);
	buf_free(&lr->over);
	free(lr->servers);
	json_decref(lr->req);
	give_call(lr->l, lr);
	auth_caller_clear(&lr->t.auth); /* its allow-lists: the run that used them is closed */
	free(lr);
}

/* reap: the runs that ended freed */
static void reap(struct chatloop *l)
{
	struct lrun *lr = l->runs, *next;
	int trim = 0, freed = 0;

	for (; lr; lr = next) {
		next = lr->next;
		if (lr->phase != LR_DEAD)
			continue;
		if (lr->prev)
			lr->prev->next = lr->next;
		else
			l->runs = lr->next;
		if (lr->next)
			lr->next->prev = lr->prev;
		__atomic_sub_fetch(&l->nruns, 1, __ATOMIC_RELAXED);
		trim |= lr->big || lr->t.h.bytes_out >= CHATLOOP_TRIM_AFTER;
		freed++;
		lrun_free(lr);
	}
	/* every arena (the workers' too, where the requests were parsed), after a large run, or when the
	 * loop went idle after a burst: what it took goes back to the system, as the threads driver's
	 * pool gives it back when the workers it started for a burst end */
	l->ended_since_trim += freed;
	if (freed || l->runs)
		l->last_busy = evloop_now(l->ev);
	if (trim) {
		(void)malloc_trim(0);
		l->ended_since_trim = 0;
		l->trim_at = EVLOOP_NEVER;
	} else if (l->ended_since_trim >= CHATLOOP_BURST && l->trim_at == EVLOOP_NEVER) {
		l->trim_at = l->last_busy + CHATLOOP_IDLE_TRIM_MS; /* runs_fire looks then */
	}
}

/* idle_trim: the trim reap asked for, once the loop has had no run for CHATLOOP_IDLE_TRIM_MS */
static void idle_trim(struct chatloop *l, int64_t now)
{
	if (now < l->trim_at)
		return;
	if (l->runs || now - l->last_busy < CHATLOOP_IDLE_TRIM_MS) { /* busy again: look later */
		l->trim_at = (l->runs ? now : l->last_busy) + CHATLOOP_IDLE_TRIM_MS;
		return;
	}
	(void)malloc_trim(0);
	l->ended_since_trim = 0;
	l->trim_at = EVLOOP_NEVER;
}

/* take_queue: the runs handed over since the last look: started, oldest first */
static void take_queue(struct chatloop *l)
{
	struct lrun *q, *next;

	pthread_mutex_lock(&l->lock);
	q = l->queue;
	l->queue = NULL;
	l->queued = 0;
	if (l->stop && l->stop_at == EVLOOP_NEVER)
		l->stop_at = evloop_now(l->ev) + l->s->shutdown_grace_ms;
	pthread_mutex_unlock(&l->lock);
	/* the queue is newest first: reversed, the oldest starts first */
	for (struct lrun *rev = NULL;; q = next) {
		if (!q) {
			q = rev;
			break;
		}
		next = q->next;
		q->next = rev;
		rev = q;
	}
	for (; q; q = next) {
		next = q->next;
		q->prev = NULL;
		q->next = l->runs;
		if (l->runs)
			l->runs->prev = q;
		l->runs = q;
		__atomic_add_fetch(&l->nruns, 1, __ATOMIC_RELAXED);
		start_run(q);
	}
}

/* on_wake: the eventfd: runs handed over while the loop waited (or a stop) */
static void on_wake(void *ctx, int fd, int events)
{
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN) {
		/* nothing to do: the queue is looked at anyway */
	}
	take_queue(ctx);
}

/* thread_cpu_ns: the calling thread's CPU time in ns (0 when it cannot be read) */
static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* measure_busy: at the end of each CHATLOOP_BUSY_WINDOW_MS, the share of a core the loop's thread
 * used in it, for chatloop_busy (one clock_gettime of the thread's CPU time a window) */
static void measure_busy(struct chatloop *l)
{
	int64_t now = clock_now_ms(), cpu, pm;

	if (now - l->busy_at < CHATLOOP_BUSY_WINDOW_MS)
		return;
	cpu = thread_cpu_ns();
	pm = (cpu - l->busy_cpu_ns) / 1000 / (now - l->busy_at);
	__atomic_store_n(&l->busy_pm, (int)(pm < 0 ? 0 : pm > 1000 ? 1000 : pm), __ATOMIC_RELAXED);
	l->busy_at = now;
	l->busy_cpu_ns = cpu;
}

/* loop_main: the loop thread: passes until stopped and every run ended */
static void *loop_main(void *arg)
{
	struct chatloop *l = arg;

	int quiet = 0; /* the last lazy wait passed with no fd ready and nothing handed over */

	(void)pthread_setname_np(pthread_self(), "chat-loop"); /* top -H, /proc/PID/task/TID/comm */
	l->busy_at = clock_now_ms();
	l->busy_cpu_ns = thread_cpu_ns();
	for (;;) {
		int stop, queued, n;

		/* runs handed over while the loop was busy: taken now (their submitters did not wake it);
		 * none: asleep from here, so the next submitter wakes it (the eventfd) when the loop has
		 * no run in flight or is quiet */
		pthread_mutex_lock(&l->lock);
		stop = l->stop && !l->queue;
		queued = l->queue != NULL;
		if (queued || !l->runs)
			quiet = 0;
		__atomic_store_n(&l->asleep, !queued, __ATOMIC_RELAXED);
		__atomic_store_n(&l->quiet, quiet, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&l->lock);
		if (stop && !l->runs)
			break;
		if (queued)
			take_queue(l);
		n = evloop_step(l->ev, queued ? 0 : l->runs && !quiet ? CHATLOOP_LAZY_MS : CHATLOOP_WAIT_MS);
		if (n < 0 && errno != EINTR) {
			log_error("chat loop: poll: %s", strerror(errno));
			clock_sleep_ms(10);
		}
		quiet = n == 0 && !queued && l->runs; /* a lazy wait with no fd or timer: the next one is long */
		__atomic_store_n(&l->asleep, 0, __ATOMIC_RELAXED);
		for (struct lrun *lr = l->runs; lr; lr = lr->next)
			if (lr->phase == LR_RUNNING && (lr->over.len || fcgiwrite_pending(&lr->fw)))
				flush_run(lr);
		reap(l);
		measure_busy(l);
	}
	return NULL;
}

/* ---- the loop's life ---- */

/* loop_free: everything of l (its thread ended or never started) */
static void loop_free(struct chatloop *l)
{
	struct lrun *q, *next;

	for (q = l->queue; q; q = next) { /* handed over and never started (the thread did not start) */
		next = q->next;
		responder_taken_end(&q->t);
		FCGX_Free(&q->t.h.req, 1);
		lrun_free(q);
	}
	for (struct lrun *lr = l->runs; lr; lr = lr->next)
		drop(lr);
	reap(l);
	while (l->npool > 0) {
		l->npool--;
		upstream_call_free(l->pool[l->npool].call);
		free(l->pool[l->npool].res);
	}
	bca_free(l->bca);
	bc_free(l->bc);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	upstream_free(l->up);
	mcptools_free(&l->tl.tools);
	statestore_close(l->tl.store);
	if (l->ev)
		evloop_free(l->ev);
	if (l->efd >= 0)
		close(l->efd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int chatloop_count(const struct settings *s)
{
	long n = s->chat_loops;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > CHATLOOP_MAX ? CHATLOOP_MAX : (int)n;
}

/* chatloop_kept_connections: the idle upstream connections one loop keeps: MCPGW_CHAT_THREADS, as
 * many as a process of the threads driver holds, in each loop (not divided among the loops: the
 * runs in flight on one loop rise and fall around their share, and a cache of only the share
 * closed a connection at each fall and opened one at each rise, 769 new connections to the
 * upstream in 10,500 plain chats at 32 connections, none with the threads driver) */
static long chatloop_kept_connections(const struct settings *s)
{
	return s->chat_threads > 0 ? s->chat_threads : 1;
}

struct chatloop *chatloop_start(struct responder *r)
{
	struct chatloop *l = calloc(1, sizeof *l);
	struct upstream_opts o;
	sigset_t block, old;

	if (!l)
		return NULL;
	l->r = r;
	l->s = &r->s;
	l->efd = -1;
	l->curl_due = l->stop_at = l->trim_at = EVLOOP_NEVER;
	l->pool_max = chatloop_kept_connections(&r->s) < CHATLOOP_POOL_MAX ? (int)chatloop_kept_connections(&r->s)
									   : CHATLOOP_POOL_MAX;
	pthread_mutex_init(&l->lock, NULL);
	upstream_opts_from_settings(&o, &r->s);
	if (r->def->upstream_opts)
		r->def->upstream_opts(r, &o);
	if ((l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || !(l->ev = evloop_new(NULL, NULL)) ||
	    !(l->multi = curl_multi_init()) || !(l->up = upstream_new(&o)) ||
	    !(l->bca = bca_new(l->ev, r->s.socket_path, r->s.max_message_bytes, 0)) ||
	    !(l->bc = bc_new(r->s.socket_path, r->s.max_message_bytes)) ||
	    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, curl_socket) != CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) != CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, curl_timer) != CURLM_OK ||
	    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l) != CURLM_OK ||
	    /* the idle upstream connections kept after a burst: as many in the whole process as the
	     * threads driver keeps (one per kept worker), shared among its loops, not libcurl's default
	     * of four per transfer ever added at once */
	    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, chatloop_kept_connections(&r->s)) != CURLM_OK ||
	    (l->curl_timer = evloop_timer_add(l->ev, curl_due, curl_fire, l)) < 0 ||
	    (l->run_timer = evloop_timer_add(l->ev, runs_due, runs_fire, l)) < 0 ||
	    evloop_watch(l->ev, l->efd, EVLOOP_READ, on_wake, l) < 0) {
		log_error("chat loop: cannot be made (%s)", strerror(errno ? errno : ENOMEM));
		loop_free(l);
		return NULL;
	}
	upstream_call_closesocket(l->up, curl_closesocket, l);
	l->tl.set = &r->s;
	l->tl.up = l->up;
	l->tl.bc = l->bc;
	mcptools_use_state_dir(&l->tl.tools, r->s.state_dir);
	/* main waits for the signals (sigwait): the loop thread never takes them */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	l->started = pthread_create(&l->th, NULL, loop_main, l) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!l->started) {
		log_error("chat loop: cannot start its thread");
		loop_free(l);
		return NULL;
	}
	return l;
}

int chatloop_submit(struct chatloop *l, struct exchange *x, json_t *req, const char *servers, int catalog_rc)
{
	struct lrun *lr = calloc(1, sizeof *lr);
	uint64_t one = 1;
	int stopping, wake;

	if (!lr)
		return -1;
	pthread_mutex_lock(&l->lock);
	stopping = l->stop;
	pthread_mutex_unlock(&l->lock);
	if (stopping || (servers && !(lr->servers = strdup(servers))) || responder_take(x, &lr->t) < 0) {
		free(lr->servers);
		free(lr);
		return -1;
	}
	lr->big = lr->t.body.len >= CHATLOOP_TRIM_AFTER;
	buf_free(&lr->t.body); /* parsed: req is what the run reads */
	lr->l = l;
	lr->req = req;
	lr->catalog_rc = catalog_rc;
	lr->fd = -1;
	pthread_mutex_lock(&l->lock);
	lr->next = l->queue;
	l->queue = lr;
	l->queued++;
	/* a busy loop looks at the queue before it waits again, and one with runs in flight within
	 * CHATLOOP_LAZY_MS: no wake-up needed; one with none, or a quiet one (either waiting up to
	 * CHATLOOP_WAIT_MS), is woken */
	wake = __atomic_load_n(&l->asleep, __ATOMIC_RELAXED) &&
	       (__atomic_load_n(&l->nruns, __ATOMIC_RELAXED) == 0 || __atomic_load_n(&l->quiet, __ATOMIC_RELAXED)) &&
	       __atomic_exchange_n(&l->asleep, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&l->lock);
	if (wake && write(l->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("chat loop: cannot wake it: %s", strerror(errno));
	return 0;
}

int chatloop_choose(const int *busy_pm, const int *runs, int n, unsigned start)
{
	int best = -1;

	for (int i = 0; i < n; i++)
		if (busy_pm[i] < CHATLOOP_PACK_BUSY_PM && runs[i] < CHATLOOP_PACK_RUNS)
			return i;
	for (int k = 0; k < n; k++) {
		int i = (int)((start + (unsigned)k) % (unsigned)n);

		if (best < 0 || runs[i] < runs[best])
			best = i;
	}
	return best < 0 ? 0 : best;
}

int chatloop_busy(struct chatloop *l)
{
	return __atomic_load_n(&l->busy_pm, __ATOMIC_RELAXED);
}

int chatloop_runs(struct chatloop *l)
{
	int n;

	pthread_mutex_lock(&l->lock);
	n = __atomic_load_n(&l->nruns, __ATOMIC_RELAXED) + l->queued;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void chatloop_tell_stop(struct chatloop *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = 1;
	pthread_mutex_unlock(&l->lock);
	if (write(l->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("chat loop: cannot wake it: %s", strerror(errno));
}

void chatloop_stop(struct chatloop *l)
{
	if (!l)
		return;
	chatloop_tell_stop(l);
	if (l->started)
		(void)pthread_join(l->th, NULL);
	log_info("chat loop: stopped after %lld chat completions", (long long)l->loop_runs);
	loop_free(l);
}
