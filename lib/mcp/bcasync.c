/* bcasync.c: the asynchronous broker client: request lines queued and written as the socket takes them, answers matched by id in a hash of requests, one loop timer for every deadline. */
#include "mcp/bcasync.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"

#define BCA_BUCKETS 1024       /* the id hash (ids are sequential: BCA_MAX_PENDING / BCA_BUCKETS a chain at most) */
#define BCA_READ_CHUNK 65536   /* one recv */
#define BCA_READS_PER_EVENT 16 /* recvs per readiness (1 MiB): the loop's other fds get their turn */
#define BCA_REASON_TIMEOUT "no answer in time"
#define BCA_REASON_CANCEL "no longer awaited"

enum bca_state {
	BCA_WAITING, /* in c->waiting: its answer awaited */
	BCA_ENDED,   /* in c->ended: its end decided (status), its done still to call */
};

/* one request accepted and not yet ended (its done not yet called) */
struct bca_req {
	long id;
	enum bca_state state;
	int status;          /* BCA_ENDED: how it ended */
	int64_t deadline;    /* EVLOOP_NEVER: none */
	uint64_t start, end; /* its line in this connection's output stream: bytes [start, end) */
	bca_done_fn *done;
	void *ctx;
	struct bca_req *hnext;       /* the id hash's chain */
	struct bca_req *prev, *next; /* its list (waiting, in the order sent; or ended) */
};

struct bca_list {
	struct bca_req *head, *tail;
};

struct bcasync {
	struct evloop *loop;
	char *path;
	size_t max_message, max_queued;
	int fd;        /* -1: not connected */
	unsigned conn; /* bumped at each connect and drop */
	long timer;
	long next_id;
	struct jr_reader rd;
	buf_t out; /* the output queue: out.data[out_off..out.len) not yet written */
	size_t out_off;
	uint64_t wpos; /* the stream position of out.data[out_off]: bytes written on this connection */
	struct bca_req *tab[BCA_BUCKETS];
	struct bca_list waiting, ended;
	size_t npending; /* in tab: waiting and ended */
	int64_t due;     /* the earliest deadline of the waiting, unless due_stale */
	int due_stale;
	int reading; /* inside the dispatch of answers: the reader is in use */
	bc_no_broker_fn no_broker;
	void *no_broker_ud;
};

/* ---- the requests: a list each, and a hash by id ---- */

static void list_add(struct bca_list *l, struct bca_req *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static void list_del(struct bca_list *l, struct bca_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

static struct bca_req **tab_slot(struct bcasync *c, long id)
{
	return &c->tab[(unsigned long)id % BCA_BUCKETS];
}

static struct bca_req *tab_find(struct bcasync *c, long id)
{
	for (struct bca_req *r = *tab_slot(c, id); r; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

static void tab_del(struct bcasync *c, struct bca_req *victim)
{
	for (struct bca_req **pp = tab_slot(c, victim->id); *pp; pp = &(*pp)->hnext) {
		if (*pp == victim) {
			*pp = victim->hnext;
			c->npending--;
			return;
		}
	}
}

/* ---- the output queue ---- */

static size_t queued(const struct bcasync *c)
{
	return c->out.len - c->out_off;
}

/* cut_queue: what was appended past mark goes */
static void cut_queue(struct bcasync *c, size_t mark)
{
	c->out.len = mark;
	if (c->out.data)
		c->out.data[mark] = '\0';
}

/* watch: the connection watched for reading, and for writing while anything is queued */
static void watch(struct bcasync *c);

/* withdraw: r (waiting, on the connection) is no longer awaited: a line none of
 * whose bytes were written leaves the queue (the later requests' lines move up);
 * one written, even in part, is followed by notifications/cancelled (reason) */
static void withdraw(struct bcasync *c, struct bca_req *r, const char *reason)
{
	if (c->fd < 0)
		return;
	if (r->start >= c->wpos) {
		size_t at = c->out_off + (size_t)(r->start - c->wpos), n = (size_t)(r->end - r->start);

		memmove(c->out.data + at, c->out.data + at + n, c->out.len - at - n);
		cut_queue(c, c->out.len - n);
		for (struct bca_req *q = r->next; q; q = q->next) {
			q->start -= n;
			q->end -= n;
		}
	} else if (bcw_cancel_line(&c->out, r->id, reason) < 0) {
		log_warn("broker: out of memory for notifications/cancelled of request %ld", r->id);
	}
	watch(c);
}

/* ---- ends ---- */

/* leave_waiting: r leaves the waiting list (its deadline may have been the earliest) */
static void leave_waiting(struct bcasync *c, struct bca_req *r)
{
	list_del(&c->waiting, r);
	if (r->deadline != EVLOOP_NEVER && r->deadline <= c->due)
		c->due_stale = 1;
}

/* end_req: waiting r ends with status: its done is called by run_ended */
static void end_req(struct bcasync *c, struct bca_req *r, int status)
{
	leave_waiting(c, r);
	r->state = BCA_ENDED;
	r->status = status;
	list_add(&c->ended, r);
}

/* run_ended: call the done of each ended request, oldest first; a done may
 * cancel one still in the list (then not called) or end more (called here too) */
static void run_ended(struct bcasync *c)
{
	struct bca_req *r;

	while ((r = c->ended.head)) {
		list_del(&c->ended, r);
		tab_del(c, r);
		if (r->done)
			r->done(r->ctx, r->id, r->status, NULL, 0, NULL);
		free(r);
	}
}

/* drop: close the connection; every request waiting ends with status (those
 * only queued too). A connection without requests drops silently. */
static void drop(struct bcasync *c, int status)
{
	if (c->fd < 0)
		return;
	evloop_unwatch(c->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	c->conn++;
	jr_reader_free(&c->rd);
	jr_reader_init(&c->rd, c->max_message);
	buf_free(&c->out);
	c->out_off = 0;
	c->wpos = 0;
	while (c->waiting.head)
		end_req(c, c->waiting.head, status);
	run_ended(c);
}

/* ---- the loop's side ---- */

static void do_read(struct bcasync *c, int max_reads);

/* write what the socket takes. BC_OK, or BC_EIO (the connection dropped) */
static int do_write(struct bcasync *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->wpos += (uint64_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			unsigned conn = c->conn;

			log_info("broker connection lost while writing: %s", n < 0 ? strerror(errno) : "?");
			do_read(c, INT_MAX); /* the answers it sent before it went, up to its EOF (which drops) */
			if (c->conn == conn)
				drop(c, BC_EIO);
			return BC_EIO;
		}
	}
	buf_compact(&c->out, &c->out_off); /* stream positions are kept by wpos */
	watch(c);
	return BC_OK;
}

/* dispatch: each whole answer buffered to its request's done. BC_OK, or the
 * bc_status of a stream that cannot go on (bcw_next) */
static int dispatch(struct bcasync *c)
{
	int rc;

	c->reading = 1;
	for (;;) {
		struct bcw_answer a;
		struct bca_req *r;
		char *line;

		if ((rc = bcw_next(&c->rd, &line, &a)) <= 0)
			break;
		r = tab_find(c, a.id);
		if (r && r->state == BCA_WAITING) { /* else a late answer to a request ended or cancelled */
			leave_waiting(c, r);
			tab_del(c, r);
			if (!r->done) {
				/* nobody to tell */
			} else if (a.error) {
				r->done(r->ctx, r->id, BC_OK, NULL, 0, a.error);
			} else {
				/* the result's text, NUL-terminated in place for the call: a byte
				 * of the line follows it (at least the message's closing brace) */
				char *text = line + a.result.off, save = text[a.result.len];

				text[a.result.len] = '\0';
				r->done(r->ctx, r->id, BC_OK, text, a.result.len, NULL);
				text[a.result.len] = save;
			}
			free(r);
		}
		bcw_answer_free(&a);
	}
	c->reading = 0;
	return rc;
}

/* read what is there (at most max_reads chunks) and dispatch it; EOF, a read
 * error or a stream that cannot go on drops the connection */
static void do_read(struct bcasync *c, int max_reads)
{
	char chunk[BCA_READ_CHUNK];

	for (int i = 0; i < max_reads; i++) {
		ssize_t n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			log_info("broker connection lost: %s", n < 0 ? strerror(errno) : "closed by the broker");
			drop(c, BC_EIO);
			return;
		}
		if (jr_reader_feed(&c->rd, chunk, (size_t)n) < 0) {
			drop(c, BC_ENOMEM);
			return;
		}
		if ((rc = dispatch(c)) != BC_OK) {
			drop(c, rc);
			return;
		}
		if ((size_t)n < sizeof chunk)
			return;
	}
}

static void on_io(void *ctx, int fd, int events)
{
	struct bcasync *c = ctx;
	unsigned conn = c->conn;

	(void)fd;
	if (events & EVLOOP_READ)
		do_read(c, BCA_READS_PER_EVENT); /* answers there first, then an EOF */
	if (c->conn == conn && (events & EVLOOP_WRITE))
		(void)do_write(c);
}

static void watch(struct bcasync *c)
{
	if (c->fd >= 0 && evloop_watch(c->loop, c->fd, EVLOOP_READ | (queued(c) ? EVLOOP_WRITE : 0), on_io, c) < 0)
		log_warn("broker: the event loop is out of memory"); /* the fd was watched: its entry exists, so not reached */
}

static int64_t on_due(void *ctx)
{
	struct bcasync *c = ctx;

	if (c->due_stale) { /* O(requests waiting), at most once a pass: when the earliest left */
		c->due = EVLOOP_NEVER;
		for (struct bca_req *r = c->waiting.head; r; r = r->next)
			if (r->deadline < c->due)
				c->due = r->deadline;
		c->due_stale = 0;
	}
	return c->due;
}

static void on_fire(void *ctx, int64_t now)
{
	struct bcasync *c = ctx;
	struct bca_req *r, *next;

	for (r = c->waiting.head; r; r = next) {
		next = r->next;
		if (r->deadline <= now) {
			withdraw(c, r, BCA_REASON_TIMEOUT);
			end_req(c, r, BC_ETIMEOUT);
		}
	}
	run_ended(c);
}

/* ---- the owner's side ---- */

struct bcasync *bca_new(struct evloop *loop, const char *socket_path, size_t max_message_bytes, size_t max_queued_bytes)
{
	struct bcasync *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->loop = loop;
	c->fd = -1;
	c->next_id = 1;
	c->due = EVLOOP_NEVER;
	c->max_message = max_message_bytes ? max_message_bytes : BCA_MAX_MESSAGE_DEFAULT;
	c->max_queued = max_queued_bytes ? max_queued_bytes : c->max_message;
	jr_reader_init(&c->rd, c->max_message);
	if (!(c->path = strdup(socket_path ? socket_path : "")) ||
	    (c->timer = evloop_timer_add(loop, on_due, on_fire, c)) < 0) {
		free(c->path);
		free(c);
		return NULL;
	}
	return c;
}

void bca_free(struct bcasync *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		evloop_unwatch(c->loop, c->fd);
		close(c->fd);
	}
	evloop_timer_del(c->loop, c->timer);
	for (size_t i = 0; i < BCA_BUCKETS; i++) {
		while (c->tab[i]) {
			struct bca_req *r = c->tab[i];

			c->tab[i] = r->hnext;
			free(r);
		}
	}
	jr_reader_free(&c->rd);
	buf_free(&c->out);
	free(c->path);
	free(c);
}

void bca_on_no_broker(struct bcasync *c, bc_no_broker_fn fn, void *ud)
{
	c->no_broker = fn;
	c->no_broker_ud = ud;
}

size_t bca_pending(const struct bcasync *c)
{
	return c->npending;
}

size_t bca_queued(const struct bcasync *c)
{
	return queued(c);
}

/* gone: an idle connection whose broker has closed it (restarted), found before a
 * request is queued on it rather than after (then it would fail with BC_EIO) */
static int gone(struct bcasync *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

/* ready: room for one more request, and a connection (made now when there is
 * none: the no-broker hook may run). BC_OK or a bc_status */
static int ready(struct bcasync *c)
{
	int fd, e;

	if (c->npending >= BCA_MAX_PENDING)
		return BC_EFULL;
	if (c->fd >= 0 && !c->npending && !c->reading && gone(c)) {
		log_info("broker connection closed by the peer; reconnecting");
		drop(c, BC_EIO); /* nothing pending: nobody is told */
	}
	if (c->fd >= 0)
		return BC_OK;
	fd = bcw_connect(c->path);
	e = errno;
	if (fd < 0 && c->no_broker && (e == ENOENT || e == ECONNREFUSED) && c->no_broker(c->no_broker_ud) == 0)
		fd = bcw_connect(c->path);
	if (fd < 0)
		return BC_ECONNECT;
	if (evloop_watch(c->loop, fd, EVLOOP_READ, on_io, c) < 0) {
		close(fd);
		return BC_ENOMEM;
	}
	c->fd = fd;
	c->conn++;
	c->wpos = 0;
	return BC_OK;
}

/* enqueue: the line of request id was appended to the queue from mark on: the
 * request is accepted (its id returned), or refused (the line cut off) */
static long enqueue(struct bcasync *c, long id, size_t mark, long timeout_ms, bca_done_fn *done, void *ctx)
{
	struct bca_req *r, **slot;

	if (queued(c) > c->max_queued) {
		cut_queue(c, mark);
		return BC_EFULL;
	}
	if (!(r = calloc(1, sizeof *r))) {
		cut_queue(c, mark);
		return BC_ENOMEM;
	}
	r->id = id;
	r->state = BCA_WAITING;
	r->start = c->wpos + (mark - c->out_off);
	r->end = c->wpos + queued(c);
	r->deadline = timeout_ms > 0 ? evloop_now(c->loop) + timeout_ms : EVLOOP_NEVER;
	r->done = done;
	r->ctx = ctx;
	list_add(&c->waiting, r);
	slot = tab_slot(c, id);
	r->hnext = *slot;
	*slot = r;
	c->npending++;
	if (!c->due_stale && r->deadline < c->due)
		c->due = r->deadline;
	watch(c);
	return id;
}

long bca_call_tool(struct bcasync *c, const char *tool, const char *args, size_t args_len, const char *caller,
		   long timeout_ms, bca_done_fn *done, void *ctx)
{
	size_t mark;
	long id;
	int rc;

	if (!args)
		args_len = 2;
	if (queued(c) + args_len > c->max_queued)
		return BC_EFULL; /* the line would be longer: not built */
	if ((rc = ready(c)) != BC_OK)
		return rc;
	mark = c->out.len;
	id = c->next_id++;
	if (bcw_tool_line(&c->out, id, tool, args, args_len, caller) < 0)
		return BC_ENOMEM;
	return enqueue(c, id, mark, timeout_ms, done, ctx);
}

long bca_call(struct bcasync *c, const char *method, json_t *params, const char *caller, long timeout_ms,
	      bca_done_fn *done, void *ctx)
{
	size_t mark;
	long id;
	int rc;

	if ((rc = ready(c)) != BC_OK) {
		json_decref(params);
		return rc;
	}
	mark = c->out.len;
	id = c->next_id++;
	if (bcw_request_line(&c->out, id, method, params, caller) < 0)
		return BC_ENOMEM;
	return enqueue(c, id, mark, timeout_ms, done, ctx);
}

int bca_cancel(struct bcasync *c, long id)
{
	struct bca_req *r = id > 0 ? tab_find(c, id) : NULL;

	if (!r)
		return -1;
	if (r->state == BCA_WAITING) {
		withdraw(c, r, BCA_REASON_CANCEL);
		leave_waiting(c, r);
	} else {
		list_del(&c->ended, r);
	}
	tab_del(c, r);
	free(r);
	return 0;
}
