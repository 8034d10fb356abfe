/* test_bcasync.c: the asynchronous broker client (lib/mcp/bcasync.c) against a fake broker on a unix socket in a temp dir, driven in-process by the same event loop on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/evloop.h"
#include "core/log.h"
#include "mcp/bcasync.h"

/* ---- the fake broker: accepts on its socket, keeps every line it reads ---- */

struct fake {
	struct evloop *l;
	int64_t now; /* the loop's clock */
	char dir[64], path[96];
	int lfd;      /* listening, -1: not (yet) */
	int cfd;      /* the connection accepted last, -1: none */
	int accepted; /* connections so far */
	int eof;      /* the client closed cfd */
	buf_t in;     /* bytes of cfd not yet a whole line */
	size_t seen;  /* bytes of in searched for '\n' */
	int deaf;     /* reads nothing (the client's writes fill the socket) */
	json_t *got;  /* every message read, in order */
};

static int64_t fake_clock(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void on_conn(void *ctx, int fd, int events)
{
	struct fake *f = ctx;
	char chunk[65536];
	ssize_t n;

	(void)events;
	if (f->deaf)
		return;
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		char *nl;

		assert_int_equal(buf_append(&f->in, chunk, (size_t)n), 0);
		while ((nl = memchr(f->in.data + f->seen, '\n', f->in.len - f->seen))) {
			json_error_t err;
			json_t *m = json_loadb(f->in.data, (size_t)(nl - f->in.data), 0, &err);

			if (!m)
				fail_msg("the client sent a line that is not JSON: %s", err.text);
			assert_int_equal(json_array_append_new(f->got, m), 0);
			buf_consume(&f->in, (size_t)(nl - f->in.data) + 1);
			f->seen = 0;
		}
		f->seen = f->in.len;
	}
	if (n == 0) {
		f->eof = 1;
		evloop_unwatch(f->l, fd);
	}
}

static void on_listen(void *ctx, int fd, int events)
{
	struct fake *f = ctx;
	int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	assert_true(c >= 0);
	if (f->cfd >= 0) {
		evloop_unwatch(f->l, f->cfd);
		close(f->cfd);
	}
	f->cfd = c;
	f->eof = 0;
	f->accepted++;
	buf_reset(&f->in);
	f->seen = 0;
	assert_int_equal(evloop_watch(f->l, c, EVLOOP_READ, on_conn, f), 0);
}

/* fake_listen: the broker's socket appears */
static void fake_listen(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(evloop_watch(f->l, f->lfd, EVLOOP_READ, on_listen, f), 0);
}

static struct fake *fake_new(int listening)
{
	struct fake *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_bcasync.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/broker.sock", f->dir);
	f->lfd = f->cfd = -1;
	f->now = 1000;
	assert_non_null(f->l = evloop_new(fake_clock, f));
	assert_non_null(f->got = json_array());
	if (listening)
		fake_listen(f);
	return f;
}

/* fake_hangup: the broker closes the connection */
static void fake_hangup(struct fake *f)
{
	evloop_unwatch(f->l, f->cfd);
	close(f->cfd);
	f->cfd = -1;
}

static void fake_free(struct fake *f)
{
	if (f->cfd >= 0)
		fake_hangup(f);
	if (f->lfd >= 0) {
		evloop_unwatch(f->l, f->lfd);
		close(f->lfd);
	}
	unlink(f->path);
	rmdir(f->dir);
	json_decref(f->got);
	buf_free(&f->in);
	evloop_free(f->l);
	free(f);
}

/* spin: a few passes of the loop, none waiting (the socket pairs pass bytes at once) */
static void spin(struct fake *f)
{
	for (int i = 0; i < 8; i++)
		assert_true(evloop_step(f->l, 0) >= 0);
}

/* fake_write: n bytes to the client, all of them */
static void fake_write(struct fake *f, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(f->cfd, s, n);

		if (w < 0 && errno == EAGAIN) {
			spin(f); /* the client reads meanwhile */
			continue;
		}
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void fake_puts(struct fake *f, const char *s)
{
	fake_write(f, s, strlen(s));
}

/* got: the k-th message the fake read (borrowed) */
static json_t *got(struct fake *f, size_t k)
{
	json_t *m = json_array_get(f->got, k);

	assert_non_null(m);
	return m;
}

static long got_id(struct fake *f, size_t k)
{
	return (long)json_integer_value(json_object_get(got(f, k), "id"));
}

static const char *got_caller(struct fake *f, size_t k)
{
	json_t *meta = json_object_get(json_object_get(got(f, k), "params"), "_meta");

	return json_string_value(json_object_get(meta, BC_META_CALLER));
}

/* ---- completions ---- */

struct rec {
	int calls;
	long id;
	int status;
	char *result; /* a copy */
	size_t result_len;
	json_t *error;
	/* what the callback does besides recording */
	struct bcasync *c;
	long cancel;    /* a request to cancel */
	int cancel_rc;  /* what bca_cancel said */
	int submit;     /* submit a tools/list */
	long submitted; /* its id */
	struct rec *submitted_rec;
};

static void on_done(void *ctx, long id, int status, const char *result, size_t result_len, const json_t *error)
{
	struct rec *r = ctx;

	r->calls++;
	r->id = id;
	r->status = status;
	if (status == BC_OK)
		assert_true((result != NULL) != (error != NULL));
	else
		assert_true(!result && !error && !result_len);
	if (result) {
		assert_int_equal(result[result_len], '\0');
		assert_int_equal(strlen(result), result_len);
		free(r->result);
		r->result = strndup(result, result_len);
		r->result_len = result_len;
	}
	if (error) {
		json_decref(r->error);
		r->error = json_deep_copy(error);
	}
	if (r->cancel)
		r->cancel_rc = bca_cancel(r->c, r->cancel);
	if (r->submit)
		r->submitted = bca_call(r->c, "tools/list", NULL, NULL, 0, on_done, r->submitted_rec);
}

static void rec_clear(struct rec *r)
{
	free(r->result);
	json_decref(r->error);
	memset(r, 0, sizeof *r);
}

/* ---- tests ---- */

/* 100 requests of both kinds at once, answered in another order, some with
 * errors, several answers in one write and one answer across writes: each
 * done once with its own answer, the result's text as the broker wrote it */
static void test_interleaved_out_of_order(void **state)
{
	enum { N = 100 };
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec recs[N] = { 0 };
	long ids[N];
	buf_t answers = BUF_INIT;
	(void)state;

	assert_non_null(c);
	for (int i = 0; i < N; i++) {
		char args[64];

		snprintf(args, sizeof args, "{\"n\":%d}", i);
		ids[i] = i % 2 ? bca_call_tool(c, "srv__echo", args, strlen(args), "key-1", 5000, on_done, &recs[i])
			       : bca_call(c, "tools/list", NULL, NULL, 5000, on_done, &recs[i]);
		assert_true(ids[i] > 0);
	}
	assert_int_equal(bca_pending(c), N);
	spin(f);
	assert_int_equal(f->accepted, 1);
	assert_int_equal(json_array_size(f->got), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(got_id(f, (size_t)i), ids[i]);
		assert_string_equal(json_string_value(json_object_get(got(f, (size_t)i), "method")),
				    i % 2 ? "tools/call" : "tools/list");
		if (i % 2)
			assert_int_equal(
				json_integer_value(json_object_get(
					json_object_get(json_object_get(got(f, (size_t)i), "params"), "arguments"), "n")),
				i);
	}
	/* answers: odd positions first from the last, then even ones; every 7th an error */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = N - 1; i >= 0; i--) {
			if (i % 2 != (pass == 0))
				continue;
			if (i % 7 == 0)
				buf_printf(&answers,
					   "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"error\":{\"code\":-32000,\"message\":\"e%d\"}}\n",
					   ids[i], i);
			else
				buf_printf(&answers,
					   "{\"id\":%ld,\"jsonrpc\":\"2.0\",\"result\": { \"n\" :  %d ,\"s\":\"\\u00e9\"}}\n",
					   ids[i], i);
		}
	}
	/* in three writes cut anywhere */
	fake_write(f, answers.data, answers.len / 3);
	spin(f);
	fake_write(f, answers.data + answers.len / 3, answers.len / 3);
	spin(f);
	fake_write(f, answers.data + 2 * (answers.len / 3), answers.len - 2 * (answers.len / 3));
	spin(f);
	assert_int_equal(bca_pending(c), 0);
	for (int i = 0; i < N; i++) {
		char want[96];

		assert_int_equal(recs[i].calls, 1);
		assert_int_equal(recs[i].id, ids[i]);
		assert_int_equal(recs[i].status, BC_OK);
		if (i % 7 == 0) {
			snprintf(want, sizeof want, "e%d", i);
			assert_null(recs[i].result);
			assert_string_equal(json_string_value(json_object_get(recs[i].error, "message")), want);
		} else {
			snprintf(want, sizeof want, "{ \"n\" :  %d ,\"s\":\"\\u00e9\"}", i);
			assert_null(recs[i].error);
			assert_string_equal(recs[i].result, want);
		}
		rec_clear(&recs[i]);
	}
	/* a late or unknown answer changes nothing */
	fake_puts(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":99999,\"result\":{}}\n");
	spin(f);
	for (int i = 0; i < N; i++)
		assert_int_equal(recs[i].calls, 0);
	buf_free(&answers);
	bca_free(c);
	fake_free(f);
}

/* an answer split in two at every byte: done only once it is whole, with the whole result */
static void test_answer_split_at_every_byte(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	const char *fmt =
		"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9\"}]}}\r\n";
	(void)state;

	for (size_t k = 1;; k++) {
		struct rec r = { 0 };
		long id = bca_call_tool(c, "t", NULL, 0, NULL, 0, on_done, &r);
		char line[256];
		size_t len;

		assert_true(id > 0);
		spin(f);
		len = (size_t)snprintf(line, sizeof line, fmt, id);
		if (k >= len) {
			assert_int_equal(bca_cancel(c, id), 0);
			break;
		}
		fake_write(f, line, k);
		spin(f);
		assert_int_equal(r.calls, 0);
		fake_write(f, line + k, len - k);
		spin(f);
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.status, BC_OK);
		assert_string_equal(r.result, "{\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9\"}]}");
		rec_clear(&r);
	}
	assert_int_equal(f->accepted, 1);
	bca_free(c);
	fake_free(f);
}

/* each request carries its own caller in _meta, and nothing of it stays for the next */
static void test_caller_per_request(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec r[7] = { 0 };
	(void)state;

	assert_true(bca_call_tool(c, "t", "{}", 2, "key-a", 0, on_done, &r[0]) > 0);
	assert_true(bca_call_tool(c, "t", "{}", 2, "key-b", 0, on_done, &r[1]) > 0);
	assert_true(bca_call_tool(c, "t", "{}", 2, NULL, 0, on_done, &r[2]) > 0);
	/* the generic form: a caller that came with the params is not trusted */
	assert_true(bca_call(c, "tools/call",
			     json_pack("{s:s, s:{}, s:{s:s, s:i}}", "name", "t", "arguments", "_meta", BC_META_CALLER,
				       "forged", "progressToken", 7),
			     "", 0, on_done, &r[3]) > 0);
	assert_true(
		bca_call(c, "tools/call",
			 json_pack("{s:s, s:{}, s:{s:s}}", "name", "t", "arguments", "_meta", BC_META_CALLER, "forged"),
			 "key-e", 0, on_done, &r[4]) > 0);
	assert_true(bca_call(c, "tools/list", NULL, "key-f", 0, on_done, &r[5]) > 0);
	/* cut at BC_CALLER_MAX - 1 bytes */
	{
		char longer[BC_CALLER_MAX + 10];

		memset(longer, 'k', sizeof longer - 1);
		longer[sizeof longer - 1] = '\0';
		assert_true(bca_call_tool(c, "t", "{}", 2, longer, 0, on_done, &r[6]) > 0);
	}
	spin(f);
	assert_int_equal(json_array_size(f->got), 7);
	assert_string_equal(got_caller(f, 0), "key-a");
	assert_string_equal(got_caller(f, 1), "key-b");
	assert_null(json_object_get(json_object_get(got(f, 2), "params"), "_meta"));
	assert_null(got_caller(f, 3));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(got(f, 3), "params"), "_meta"),
							    "progressToken")),
			 7);
	assert_string_equal(got_caller(f, 4), "key-e");
	assert_null(json_object_get(got(f, 5), "params"));
	assert_int_equal(strlen(got_caller(f, 6)), BC_CALLER_MAX - 1);
	bca_free(c); /* with 7 pending: none called back */
	for (int i = 0; i < 7; i++)
		assert_int_equal(r[i].calls, 0);
	fake_free(f);
}

/* a deadline: done once with BC_ETIMEOUT, the broker told, a late answer dropped */
static void test_timeout(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec a = { 0 }, b = { 0 };
	long ida, idb;
	json_t *n;
	(void)state;

	ida = bca_call_tool(c, "slow", "{}", 2, "key-a", 1000, on_done, &a);
	f->now += 500;
	idb = bca_call_tool(c, "slower", "{}", 2, "key-a", 1000, on_done, &b);
	assert_true(ida > 0 && idb > 0);
	spin(f);
	assert_int_equal(json_array_size(f->got), 2);
	f->now += 499; /* 1999: a's deadline is 2000 */
	spin(f);
	assert_int_equal(a.calls, 0);
	f->now += 1;
	spin(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, BC_ETIMEOUT);
	assert_int_equal(b.calls, 0);
	assert_int_equal(json_array_size(f->got), 3);
	n = got(f, 2);
	assert_string_equal(json_string_value(json_object_get(n, "method")), "notifications/cancelled");
	assert_null(json_object_get(n, "id"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(n, "params"), "requestId")), ida);
	assert_non_null(json_string_value(json_object_get(json_object_get(n, "params"), "reason")));
	/* the late answer is dropped; b still waits and is answered */
	{
		char line[128];

		snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n", ida);
		fake_puts(f, line);
		snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"ok\":1}}\n", idb);
		fake_puts(f, line);
	}
	f->now += 10000; /* past b's deadline too, but its answer is read first */
	spin(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, BC_OK);
	assert_string_equal(b.result, "{\"ok\":1}");
	assert_int_equal(bca_pending(c), 0);
	assert_int_equal(json_array_size(f->got), 3); /* no notification for b */
	/* nobody to tell (done NULL): one answered, one timed out */
	{
		long x = bca_call(c, "tools/list", NULL, NULL, 100, NULL, NULL);
		long y = bca_call(c, "tools/list", NULL, NULL, 100, NULL, NULL);
		char line[128];

		assert_true(x > 0 && y > 0);
		spin(f);
		snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n", x);
		fake_puts(f, line);
		spin(f);
		assert_int_equal(bca_pending(c), 1);
		f->now += 100;
		spin(f);
		assert_int_equal(bca_pending(c), 0);
		assert_int_equal(json_array_size(f->got), 6);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(got(f, 5), "params"), "requestId")),
				 y);
	}
	rec_clear(&a);
	rec_clear(&b);
	bca_free(c);
	fake_free(f);
}

/* the broker goes away with requests in flight: each ends with BC_EIO once; the next request connects anew */
static void test_broker_closes_mid_flight(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec r[3] = { 0 }, after = { 0 };
	long id;
	(void)state;

	for (int i = 0; i < 3; i++)
		assert_true(bca_call_tool(c, "t", "{}", 2, NULL, 0, on_done, &r[i]) > 0);
	spin(f);
	assert_int_equal(json_array_size(f->got), 3);
	fake_puts(f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n"); /* one answered before the close */
	fake_hangup(f);
	spin(f);
	assert_int_equal(r[1].calls, 1);
	assert_int_equal(r[1].status, BC_OK);
	for (int i = 0; i < 3; i += 2) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, BC_EIO);
	}
	assert_int_equal(bca_pending(c), 0);
	id = bca_call(c, "tools/list", NULL, NULL, 0, on_done, &after);
	assert_true(id > 0);
	spin(f);
	assert_int_equal(f->accepted, 2);
	assert_int_equal(json_array_size(f->got), 4);
	{
		char line[96];

		snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"tools\":[]}}\n", id);
		fake_puts(f, line);
	}
	spin(f);
	assert_int_equal(after.calls, 1);
	assert_string_equal(after.result, "{\"tools\":[]}");
	/* the broker closes an idle connection, and the loop has not yet seen it:
	 * the next request finds out before queueing and connects anew */
	fake_hangup(f);
	rec_clear(&after);
	assert_true(bca_call(c, "tools/list", NULL, NULL, 0, on_done, &after) > 0);
	spin(f);
	assert_int_equal(f->accepted, 3);
	assert_int_equal(after.calls, 0);
	assert_int_equal(json_array_size(f->got), 5);
	for (int i = 0; i < 3; i++)
		rec_clear(&r[i]);
	rec_clear(&after);
	bca_free(c);
	fake_free(f);
}

/* a line over max_message_bytes: BC_EPROTO for all in flight, the connection dropped */
static void test_oversize_line(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 1024, 0);
	struct rec r[2] = { 0 }, after = { 0 };
	char big[1500];
	(void)state;

	for (int i = 0; i < 2; i++)
		assert_true(bca_call_tool(c, "t", "{}", 2, NULL, 0, on_done, &r[i]) > 0);
	spin(f);
	/* not even a line yet: 1500 bytes without its end */
	memset(big, 'x', sizeof big);
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"", 34);
	fake_write(f, big, sizeof big);
	spin(f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, BC_EPROTO);
		rec_clear(&r[i]);
	}
	assert_int_equal(f->eof, 1); /* dropped: the broker sees the close */
	/* not JSON-RPC (an answer without an id's kind) also drops it */
	assert_true(bca_call(c, "tools/list", NULL, NULL, 0, on_done, &after) > 0);
	spin(f);
	assert_int_equal(f->accepted, 2);
	fake_puts(f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{},\"result\":{}}\n");
	spin(f);
	assert_int_equal(after.calls, 1);
	assert_int_equal(after.status, BC_EPROTO);
	assert_int_equal(f->eof, 1);
	rec_clear(&after);
	bca_free(c);
	fake_free(f);
}

/* the output queue's bound: a request that would pass it is refused at once, done never called */
static void test_queue_full(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 512);
	struct rec r[16] = { 0 }, no = { 0 };
	char big[600];
	int accepted = 0;
	long id;
	(void)state;

	memset(big, ' ', sizeof big);
	big[0] = '{';
	big[sizeof big - 1] = '}';
	assert_int_equal(bca_call_tool(c, "t", big, sizeof big, NULL, 0, on_done, &no), BC_EFULL);
	/* nothing is written before the loop runs: the queue fills */
	for (int i = 0; i < 16; i++) {
		id = bca_call_tool(c, "t", "{\"pad\":\"0123456789012345678901234567890123456789\"}", 50, NULL, 0,
				   on_done, &r[i]);
		if (id == BC_EFULL)
			break;
		assert_true(id > 0);
		accepted++;
	}
	assert_true(accepted >= 3 && accepted < 16);
	assert_true(bca_queued(c) <= 512);
	big[sizeof big - 1] = '\0';
	assert_int_equal(bca_call(c, "tools/list", json_pack("{s:s}", "pad", big + 400), NULL, 0, on_done, &no),
			 BC_EFULL);
	assert_int_equal(bca_pending(c), accepted);
	spin(f); /* written: room again */
	assert_int_equal(bca_queued(c), 0);
	assert_int_equal(json_array_size(f->got), accepted);
	assert_true(bca_call(c, "tools/list", NULL, NULL, 0, on_done, &no) > 0);
	spin(f);
	assert_int_equal(json_array_size(f->got), accepted + 1);
	assert_int_equal(no.calls, 0);
	bca_free(c);
	fake_free(f);
}

/* cancel: from another request's done (answered, or failed with the connection),
 * of a request sent (the broker told) and of one only queued (never sent) */
static void test_cancel(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec a = { 0 }, b = { 0 }, q[3] = { 0 }, d = { 0 }, e = { 0 }, s = { 0 };
	long ida, idb, idq[3];
	(void)state;

	/* queued only: the cancelled one's line leaves the queue, the others go intact */
	for (int i = 0; i < 3; i++)
		assert_true((idq[i] = bca_call_tool(c, "q", "{\"i\":1}", 7, NULL, 0, on_done, &q[i])) > 0);
	assert_int_equal(bca_cancel(c, idq[1]), 0);
	assert_int_equal(bca_cancel(c, idq[1]), -1);
	spin(f);
	assert_int_equal(json_array_size(f->got), 2);
	assert_int_equal(got_id(f, 0), idq[0]);
	assert_int_equal(got_id(f, 1), idq[2]);
	assert_int_equal(bca_cancel(c, idq[0]), 0); /* sent: the broker is told */
	assert_int_equal(bca_cancel(c, idq[2]), 0);
	spin(f);
	assert_int_equal(json_array_size(f->got), 4);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got(f, 2), "params"), "requestId")), idq[0]);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got(f, 3), "params"), "requestId")), idq[2]);

	/* a's done cancels b (waiting) and submits a new request */
	ida = bca_call_tool(c, "a", "{}", 2, NULL, 0, on_done, &a);
	idb = bca_call_tool(c, "b", "{}", 2, NULL, 0, on_done, &b);
	assert_true(ida > 0 && idb > 0);
	a.c = c;
	a.cancel = idb;
	a.submit = 1;
	a.submitted_rec = &s;
	a.cancel_rc = 99;
	spin(f);
	{
		char line[160];

		snprintf(line, sizeof line,
			 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n",
			 ida, idb);
		fake_puts(f, line); /* both answers in one read: b's comes after a's done cancelled it */
	}
	spin(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.cancel_rc, 0);
	assert_int_equal(b.calls, 0);
	assert_true(a.submitted > 0);
	assert_int_equal(json_array_size(f->got), 8); /* a, b, cancelled b, the new tools/list */
	assert_string_equal(json_string_value(json_object_get(got(f, 6), "method")), "notifications/cancelled");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got(f, 6), "params"), "requestId")), idb);
	assert_int_equal(got_id(f, 7), a.submitted);
	assert_int_equal(bca_pending(c), 1);

	/* the connection fails: s and d end with BC_EIO; d's done ends first and
	 * cancels e, whose end (BC_EIO too) is decided but not yet told: e is not called */
	assert_int_equal(bca_cancel(c, a.submitted), 0);
	assert_true(bca_call_tool(c, "d", "{}", 2, NULL, 0, on_done, &d) > 0);
	d.c = c;
	d.cancel = bca_call_tool(c, "e", "{}", 2, NULL, 0, on_done, &e);
	assert_true(d.cancel > 0);
	d.cancel_rc = 99;
	spin(f);
	fake_hangup(f);
	spin(f);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, BC_EIO);
	assert_int_equal(d.cancel_rc, 0);
	assert_int_equal(e.calls, 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(bca_pending(c), 0);
	assert_int_equal(bca_cancel(c, 0), -1);
	rec_clear(&a);
	rec_clear(&d);
	bca_free(c);
	fake_free(f);
}

/* no broker listens: BC_ECONNECT at once, unless the hook starts one */
static int start_fake(void *ud)
{
	struct fake *f = ud;

	fake_listen(f);
	return 0;
}

static void test_no_broker(void **state)
{
	struct fake *f = fake_new(0);
	struct bcasync *c = bca_new(f->l, f->path, 0, 0);
	struct rec r = { 0 };
	(void)state;

	assert_int_equal(bca_call(c, "tools/list", NULL, NULL, 0, on_done, &r), BC_ECONNECT);
	assert_int_equal(bca_pending(c), 0);
	bca_on_no_broker(c, start_fake, f);
	assert_true(bca_call(c, "tools/list", NULL, NULL, 0, on_done, &r) > 0);
	spin(f);
	assert_int_equal(f->accepted, 1);
	assert_int_equal(json_array_size(f->got), 1);
	assert_int_equal(r.calls, 0);
	bca_free(c);
	fake_free(f);
}

/* a line larger than the socket takes at once is written in parts as the
 * broker reads; deadlines meanwhile: the request written in part is completed
 * and then cancelled, the one behind it, not yet written, never goes */
static void test_partial_writes(void **state)
{
	enum { BIG = 1 << 20 };
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 4 * BIG);
	struct rec a = { 0 }, b = { 0 }, d = { 0 };
	char *args = malloc(BIG);
	long ida, idd;
	size_t left;
	json_t *m;
	(void)state;

	assert_non_null(args);
	memset(args, 'a', BIG);
	memcpy(args, "{\"s\":\"", 6);
	memcpy(args + BIG - 2, "\"}", 2);
	f->deaf = 1;
	ida = bca_call_tool(c, "big", args, BIG, "key-a", 1000, on_done, &a);
	assert_true(bca_call_tool(c, "b", "{}", 2, "key-b", 1000, on_done, &b) > 0);
	idd = bca_call_tool(c, "d", "{}", 2, "key-d", 0, on_done, &d);
	assert_true(ida > 0 && idd > 0);
	spin(f);
	left = bca_queued(c);
	assert_true(left > 0 && left < (size_t)BIG); /* a part of a's line went */
	f->now += 1000;
	spin(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, BC_ETIMEOUT);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, BC_ETIMEOUT);
	assert_int_equal(d.calls, 0);
	f->deaf = 0;
	for (int i = 0; i < 200 && (bca_queued(c) || json_array_size(f->got) < 3); i++)
		spin(f);
	assert_int_equal(bca_queued(c), 0);
	assert_int_equal(json_array_size(f->got), 3);
	m = got(f, 0); /* a, whole */
	assert_int_equal(json_integer_value(json_object_get(m, "id")), ida);
	assert_int_equal(strlen(json_string_value(
				 json_object_get(json_object_get(json_object_get(m, "params"), "arguments"), "s"))),
			 BIG - 8);
	assert_string_equal(got_caller(f, 0), "key-a");
	assert_int_equal(got_id(f, 1), idd); /* b never went */
	assert_string_equal(got_caller(f, 1), "key-d");
	m = got(f, 2);
	assert_string_equal(json_string_value(json_object_get(m, "method")), "notifications/cancelled");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "params"), "requestId")), ida);
	free(args);
	bca_free(c);
	fake_free(f);
}

/* the table of requests is bounded: BCA_MAX_PENDING in flight, the next refused */
static void test_pending_bound(void **state)
{
	struct fake *f = fake_new(1);
	struct bcasync *c = bca_new(f->l, f->path, 0, 64u << 20);
	struct rec r = { 0 };
	(void)state;

	for (int i = 0; i < BCA_MAX_PENDING; i++)
		assert_true(bca_call(c, "ping", NULL, NULL, 0, on_done, &r) > 0);
	assert_int_equal(bca_call(c, "ping", NULL, NULL, 0, on_done, &r), BC_EFULL);
	assert_int_equal(bca_call_tool(c, "t", NULL, 0, NULL, 0, on_done, &r), BC_EFULL);
	spin(f);
	fake_hangup(f); /* every one ends, once */
	spin(f);
	assert_int_equal(r.calls, BCA_MAX_PENDING);
	assert_int_equal(bca_pending(c), 0);
	bca_free(c);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interleaved_out_of_order),
		cmocka_unit_test(test_answer_split_at_every_byte),
		cmocka_unit_test(test_caller_per_request),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_broker_closes_mid_flight),
		cmocka_unit_test(test_oversize_line),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_no_broker),
		cmocka_unit_test(test_partial_writes),
		cmocka_unit_test(test_pending_bound),
	};

	log_init("test_bcasync", LOGL_ERROR, NULL); /* the expected protocol warnings stay quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
