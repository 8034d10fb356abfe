/* test_bclient.c: unit tests for lib/bclient.c against a scripted fake broker thread on a unix socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcp/bclient.h"
#include "core/log.h"

/* one test's fake broker: a listening socket and a script run in a thread */
struct fake {
	char dir[64];
	char path[96];
	int lfd;
	pthread_t thread;
	void (*script)(struct fake *f);
	int failures;    /* the script's own checks (cmocka asserts are for the main thread) */
	int connections; /* accepted so far */
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int fake_accept(struct fake *f)
{
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		f->failures++;
	else
		f->connections++;
	return fd;
}

/* read one line (without '\n') into buf; its length, or -1 at EOF/error */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return -1;
		if (c == '\n') {
			buf[n] = '\0';
			return (int)n;
		}
		buf[n++] = c;
	}
	return -1;
}

/* read one request; its id (and method copied into method), or -1 */
static long read_request(struct fake *f, int fd, char *method, size_t mlen)
{
	char line[4096];
	json_t *m;
	long id;

	if (read_line(fd, line, sizeof line) < 0) {
		f->failures++;
		return -1;
	}
	m = json_loads(line, 0, NULL);
	id = m ? (long)json_integer_value(json_object_get(m, "id")) : -1;
	if (!m || id <= 0)
		f->failures++;
	if (method)
		snprintf(method, mlen, "%s", m ? json_string_value(json_object_get(m, "method")) : "");
	json_decref(m);
	return id;
}

/* read_cancelled: the next line is notifications/cancelled for request id (MCP cancellation) */
static void read_cancelled(struct fake *f, int fd, long id)
{
	char line[4096];
	json_t *m;

	if (read_line(fd, line, sizeof line) < 0) {
		f->failures++;
		return;
	}
	m = json_loads(line, 0, NULL);
	if (!m || json_object_get(m, "id") ||
	    strcmp(json_string_value(json_object_get(m, "method")) ?: "", "notifications/cancelled") != 0 ||
	    json_integer_value(json_object_get(json_object_get(m, "params"), "requestId")) != id)
		f->failures++;
	json_decref(m);
}

static void write_str(struct fake *f, int fd, const char *s)
{
	size_t len = strlen(s);

	if (write(fd, s, len) != (ssize_t)len)
		f->failures++;
}

/* answer id with {"result":{"id":id,"method":method}} */
static void answer(struct fake *f, int fd, long id, const char *method)
{
	char line[512];

	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"id\":%ld,\"method\":\"%s\"}}\n", id,
		 id, method);
	write_str(f, fd, line);
}

/* wait until the client closes fd */
static void wait_eof(int fd)
{
	char c;

	while (read(fd, &c, 1) > 0)
		;
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	f->script(f);
	return NULL;
}

/* fake_start_in: the fake broker on dir/broker.sock (dir exists; fake_finish removes it) */
static struct fake *fake_start_in(const char *dir, void (*script)(struct fake *f))
{
	struct fake *f = calloc(1, sizeof *f);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "%s", dir);
	snprintf(f->path, sizeof f->path, "%s/broker.sock", f->dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	f->script = script;
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	return f;
}

static struct fake *fake_start(void (*script)(struct fake *f))
{
	char dir[] = "/tmp/test_bclient.XXXXXX";

	assert_non_null(mkdtemp(dir));
	return fake_start_in(dir, script);
}

/* join the script thread and clean up; returns the script's failure count
 * (and the number of connections it accepted, if conns is not NULL) */
static int fake_finish(struct fake *f, int *conns)
{
	int failures;

	pthread_join(f->thread, NULL);
	if (conns)
		*conns = f->connections;
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	failures = f->failures;
	free(f);
	return failures;
}

static long result_id(const json_t *result)
{
	return (long)json_integer_value(json_object_get(result, "id"));
}

/* --- call and response ------------------------------------------------ */

static void script_call(struct fake *f)
{
	char method[64];
	int fd = fake_accept(f);
	long id = read_request(f, fd, method, sizeof method);

	answer(f, fd, id, method);
	id = read_request(f, fd, method, sizeof method);
	write_str(f, fd, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32601,\"message\":\"nope\"}}\n");
	if (id != 2)
		f->failures++;
	wait_eof(fd);
}

static void test_call_ok(void **state)
{
	struct fake *f = fake_start(script_call);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;

	(void)state;
	assert_non_null(bc);
	assert_int_equal(bc_call(bc, "ping", json_object(), 2000, &result, &error), BC_OK);
	assert_non_null(result);
	assert_null(error);
	assert_int_equal(result_id(result), 1);
	assert_string_equal(json_string_value(json_object_get(result, "method")), "ping");
	json_decref(result);

	assert_int_equal(bc_call(bc, "nope", NULL, 2000, &result, &error), BC_OK);
	assert_null(result);
	assert_non_null(error);
	assert_int_equal(json_integer_value(json_object_get(error, "code")), -32601);
	json_decref(error);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- the caller's key id in each tools/call's _meta ---------------------- */

/* answer each of three requests with what its params' _meta held: {"meta": _meta or null} */
static void script_caller(struct fake *f)
{
	int fd = fake_accept(f);

	for (int i = 0; i < 3; i++) {
		char line[4096], out[4200], *meta;
		json_t *m;

		if (read_line(fd, line, sizeof line) < 0 || !(m = json_loads(line, 0, NULL))) {
			f->failures++;
			break;
		}
		meta = json_dumps(json_object_get(json_object_get(m, "params"), "_meta"), JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(out, sizeof out, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"meta\":%s}}\n",
			 (long long)json_integer_value(json_object_get(m, "id")), meta ? meta : "null");
		free(meta);
		json_decref(m);
		write_str(f, fd, out);
	}
	wait_eof(fd);
}

/* bc_set_caller's id goes into tools/call's _meta "mcpgw/caller"; without one, an id that
 * came with the params is removed (the broker's audit never takes a client's word for it) */
static void test_caller(void **state)
{
	struct fake *f = fake_start(script_caller);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error, *meta;

	(void)state;
	assert_non_null(bc);
	bc_set_caller(bc, "key_1");
	assert_int_equal(bc_call(bc, "tools/call", json_pack("{s:s}", "name", "t"), 2000, &result, &error), BC_OK);
	meta = json_object_get(result, "meta");
	assert_string_equal(json_string_value(json_object_get(meta, BC_META_CALLER)), "key_1");
	json_decref(result);
	bc_set_caller(bc, "");
	assert_int_equal(bc_call(bc, "tools/call",
				 json_pack("{s:s, s:{s:s, s:i}}", "name", "t", "_meta", BC_META_CALLER, "forged",
					   "progressToken", 7),
				 2000, &result, &error),
			 BC_OK);
	meta = json_object_get(result, "meta");
	assert_null(json_object_get(meta, BC_META_CALLER));
	assert_int_equal(json_integer_value(json_object_get(meta, "progressToken")), 7);
	json_decref(result);
	bc_set_caller(bc, "key_2");
	assert_int_equal(bc_call(bc, "tools/list", json_object(), 2000, &result, &error), BC_OK);
	assert_true(json_is_null(json_object_get(result, "meta"))); /* only tools/call carries it */
	json_decref(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- several in flight, answered out of order ------------------------- */

static void script_out_of_order(struct fake *f)
{
	char m1[64], m2[64], m3[64], both[1024];
	int fd = fake_accept(f);
	long a = read_request(f, fd, m1, sizeof m1);
	long b = read_request(f, fd, m2, sizeof m2);
	long c = read_request(f, fd, m3, sizeof m3);

	answer(f, fd, c, m3);
	/* a's and b's answers in one write, b's line split across two writes */
	snprintf(both, sizeof both,
		 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"id\":%ld}}\n{\"jsonrpc\":\"2.0\",\"id\":%ld,", a, a, b);
	write_str(f, fd, both);
	sleep_ms(50);
	snprintf(both, sizeof both, "\"result\":{\"id\":%ld}}\r\n", b);
	write_str(f, fd, both);
	wait_eof(fd);
}

static void test_out_of_order(void **state)
{
	struct fake *f = fake_start(script_out_of_order);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;
	long a, b, c;

	(void)state;
	a = bc_send(bc, "tools/call", json_pack("{s:s}", "name", "a"));
	b = bc_send(bc, "tools/call", json_pack("{s:s}", "name", "b"));
	c = bc_send(bc, "tools/list", NULL);
	assert_true(a > 0 && b > a && c > b); /* ids grow */
	assert_int_equal(bc_wait(bc, b, 2000, &result, &error), BC_OK);
	assert_int_equal(result_id(result), b);
	json_decref(result);
	assert_int_equal(bc_wait(bc, a, 2000, &result, &error), BC_OK);
	assert_int_equal(result_id(result), a);
	json_decref(result);
	assert_int_equal(bc_wait(bc, c, 2000, &result, &error), BC_OK);
	assert_int_equal(result_id(result), c);
	assert_string_equal(json_string_value(json_object_get(result, "method")), "tools/list");
	json_decref(result);
	/* collected ids are gone */
	assert_int_equal(bc_wait(bc, a, 10, &result, &error), BC_EIO);
	assert_null(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- timeout; the late answer is discarded ---------------------------- */

static void script_timeout(struct fake *f)
{
	char method[64];
	int fd = fake_accept(f);
	long id = read_request(f, fd, method, sizeof method);

	sleep_ms(300);
	answer(f, fd, id, method); /* too late */
	read_cancelled(f, fd, id); /* the client gave up on it and said so */
	id = read_request(f, fd, method, sizeof method);
	answer(f, fd, id, method);
	wait_eof(fd);
}

static void test_timeout(void **state)
{
	struct fake *f = fake_start(script_timeout);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;
	long t0 = clock_now_ms(), took;

	(void)state;
	assert_int_equal(bc_call(bc, "slow", NULL, 100, &result, &error), BC_ETIMEOUT);
	took = clock_now_ms() - t0;
	assert_true(took >= 90 && took < 1000);
	assert_null(result);
	assert_null(error);
	/* the same connection goes on; the answer to id 1 does not confuse id 2 */
	assert_int_equal(bc_call(bc, "fast", NULL, 2000, &result, &error), BC_OK);
	assert_int_equal(result_id(result), 2);
	assert_string_equal(json_string_value(json_object_get(result, "method")), "fast");
	json_decref(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- bc_poll: waiting in slices keeps the request in flight ---------- */

static void script_slow(struct fake *f)
{
	char method[64];
	int fd = fake_accept(f);
	long id = read_request(f, fd, method, sizeof method);

	sleep_ms(300);
	answer(f, fd, id, method); /* awaited: no cancellation comes */
	id = read_request(f, fd, method, sizeof method);
	answer(f, fd, id, method);
	wait_eof(fd);
}

static void test_poll_keeps_waiting(void **state)
{
	struct fake *f = fake_start(script_slow); /* answers the first request after 300 ms */
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;
	long id, t0 = clock_now_ms();
	int slices = 0, rc;

	(void)state;
	id = bc_send(bc, "slow", NULL);
	assert_true(id > 0);
	while ((rc = bc_poll(bc, id, 50)) == 0)
		slices++; /* each slice: 50 ms, the request still awaited */
	assert_int_equal(rc, 1);
	assert_true(slices >= 4 && slices < 20);
	assert_true(clock_now_ms() - t0 >= 250);
	assert_int_equal(bc_wait(bc, id, 0, &result, &error), BC_OK); /* there: collected at once */
	assert_int_equal(result_id(result), id);
	json_decref(result);
	assert_int_equal(bc_poll(bc, id, 10), BC_EIO); /* collected: not in flight */
	assert_int_equal(bc_call(bc, "fast", NULL, 2000, &result, &error), BC_OK);
	json_decref(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- garbage from the socket: BC_EPROTO, then a fresh connection ------ */

static const char *const garbage[] = {
	"this is not json\n",
	"{\"foo\":1}\n",
	"[1,2,3]\n",
	"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"error\":\"not an object\"}\n",
	"{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n", /* a name twice: jr_parse refuses it */
	"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"a\":{\"b\":1,\"b\":2}}}\n", /* deeper down too (a tree wanted) */
	"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{}}\n",                        /* the good one, last */
};
#define NGARBAGE (sizeof garbage / sizeof garbage[0])

static void script_garbage(struct fake *f)
{
	for (size_t i = 0; i < NGARBAGE; i++) {
		char line[256];
		int fd = fake_accept(f);
		long id = read_request(f, fd, NULL, 0);

		snprintf(line, sizeof line, garbage[i], id);
		write_str(f, fd, line);
		wait_eof(fd); /* the client drops the connection (or, last, closes it) */
	}
}

static void test_garbage(void **state)
{
	struct fake *f = fake_start(script_garbage);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;

	(void)state;
	for (size_t i = 0; i + 1 < NGARBAGE; i++) {
		assert_int_equal(bc_call(bc, "ping", NULL, 2000, &result, &error), BC_EPROTO);
		assert_null(result);
		assert_null(error);
	}
	assert_int_equal(bc_call(bc, "ping", NULL, 2000, &result, &error), BC_OK);
	assert_non_null(result);
	json_decref(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- tools/call with its arguments and result as text ------------------- */

/* the request lines bc_call_tool must write, and what the fake answers to each */
static const char *const tool_lines[][2] = {
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\\\"q\",\"arguments\":{ \"x\" : "
	  "[1, \"\\u00e9\"] },\"_meta\":{\"mcpgw/caller\":\"key_1\"}}}",
	  "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\": {\"content\":[ {\"type\":\"text\",\"text\":\"a\\u00e9\"}] , "
	  "\"isError\":false} }\n" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{}}}",
	  "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,\"message\":\"Unknown tool: t\"}}\n" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{\"a\":1}}}",
	  "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"a\":{\"b\":1,\"b\":2}}}\n" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"arguments\":{}}}",
	  "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"a\":1},\"result\":{\"a\":2}}\n" },
};
#define NTOOL_LINES (sizeof tool_lines / sizeof tool_lines[0])

static void script_call_tool(struct fake *f)
{
	int fd = fake_accept(f);

	for (size_t i = 0; i < NTOOL_LINES; i++) {
		char line[4096];

		if (read_line(fd, line, sizeof line) < 0 || strcmp(line, tool_lines[i][0]) != 0) {
			fprintf(stderr, "request %zu: %s\n", i, line);
			f->failures++;
		}
		write_str(f, fd, tool_lines[i][1]);
	}
	wait_eof(fd);
}

/* the arguments go as the caller wrote them, the result comes back as the broker wrote it */
static void test_call_tool(void **state)
{
	struct fake *f = fake_start(script_call_tool);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	const char *args = "{ \"x\" : [1, \"\\u00e9\"] }";
	char *text;
	size_t len;
	json_t *error;

	(void)state;
	assert_non_null(bc);
	bc_set_caller(bc, "key_1");
	assert_int_equal(bc_call_tool(bc, "t\"q", args, strlen(args), 2000, &text, &len, &error), BC_OK);
	assert_null(error);
	assert_string_equal(text, "{\"content\":[ {\"type\":\"text\",\"text\":\"a\\u00e9\"}] , \"isError\":false}");
	assert_int_equal(len, strlen(text));
	free(text);
	bc_set_caller(bc, NULL);
	assert_int_equal(bc_call_tool(bc, "t", NULL, 0, 2000, &text, &len, &error), BC_OK);
	assert_null(text);
	assert_int_equal(json_integer_value(json_object_get(error, "code")), -32602);
	json_decref(error);
	/* a repeated name inside the result is not looked for (documented): passed on */
	assert_int_equal(bc_call_tool(bc, "t", "{\"a\":1}x", 7, 2000, &text, &len, &error), BC_OK);
	assert_string_equal(text, "{\"a\":{\"b\":1,\"b\":2}}");
	free(text);
	/* one in the message itself is refused, as jr_parse refuses it */
	assert_int_equal(bc_call_tool(bc, "t", NULL, 0, 2000, &text, &len, &error), BC_EPROTO);
	assert_null(text);
	assert_null(error);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- a message over max_message_bytes --------------------------------- */

static void script_too_long(struct fake *f)
{
	int fd = fake_accept(f);
	char big[10000];

	(void)read_request(f, fd, NULL, 0);
	memset(big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"pad\":\"", 41);
	write_str(f, fd, big); /* no newline yet: the limit must hit while buffering */
	wait_eof(fd);
}

static void test_too_long(void **state)
{
	struct fake *f = fake_start(script_too_long);
	struct bclient *bc = bc_new(f->path, 4096);
	json_t *result, *error;

	(void)state;
	assert_int_equal(bc_call(bc, "ping", NULL, 2000, &result, &error), BC_EPROTO);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- the broker closed the idle connection: transparent reconnect ----- */

static void script_reconnect(struct fake *f)
{
	char method[64];
	int fd = fake_accept(f);
	long id = read_request(f, fd, method, sizeof method);

	answer(f, fd, id, method);
	close(fd); /* "broker restart" between two requests */
	fd = fake_accept(f);
	id = read_request(f, fd, method, sizeof method);
	answer(f, fd, id, method);
	wait_eof(fd);
}

static void test_reconnect(void **state)
{
	struct fake *f = fake_start(script_reconnect);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;
	int conns;

	(void)state;
	assert_int_equal(bc_call(bc, "one", NULL, 2000, &result, &error), BC_OK);
	json_decref(result);
	sleep_ms(100); /* let the close arrive */
	assert_int_equal(bc_call(bc, "two", NULL, 2000, &result, &error), BC_OK);
	assert_string_equal(json_string_value(json_object_get(result, "method")), "two");
	json_decref(result);
	bc_free(bc);
	assert_int_equal(fake_finish(f, &conns), 0);
	assert_int_equal(conns, 2);
}

/* --- the connection is lost after the request was sent: BC_EIO -------- */

static void script_lost(struct fake *f)
{
	char method[64];
	int fd = fake_accept(f);

	(void)read_request(f, fd, method, sizeof method);
	(void)read_request(f, fd, method, sizeof method);
	close(fd);
}

static void test_lost_after_send(void **state)
{
	struct fake *f = fake_start(script_lost);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	json_t *result, *error;
	long a, b;

	(void)state;
	a = bc_send(bc, "x", NULL);
	b = bc_send(bc, "y", NULL);
	assert_true(a > 0 && b > a);
	assert_int_equal(bc_wait(bc, b, 2000, &result, &error), BC_EIO);
	/* every request in flight on that connection fails */
	assert_int_equal(bc_wait(bc, a, 10, &result, &error), BC_EIO);
	bc_free(bc);
	assert_int_equal(fake_finish(f, NULL), 0);
}

/* --- nobody listening: BC_ECONNECT ------------------------------------ */

static void test_econnect(void **state)
{
	char dir[] = "/tmp/test_bclient.XXXXXX", path[64], longpath[200];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bclient *bc;
	json_t *result, *error;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/broker.sock", dir);
	/* no such file */
	bc = bc_new(path, 1 << 20);
	assert_int_equal(bc_call(bc, "ping", NULL, 500, &result, &error), BC_ECONNECT);
	assert_null(result);
	assert_int_equal(bc_send(bc, "ping", NULL), BC_ECONNECT);
	/* a socket file nobody listens on (connection refused) */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(bc_call(bc, "ping", json_object(), 500, &result, &error), BC_ECONNECT);
	close(fd);
	unlink(path);
	bc_free(bc);
	/* a path too long for a unix socket */
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	bc = bc_new(longpath, 1 << 20);
	assert_int_equal(bc_call(bc, "ping", NULL, 500, &result, &error), BC_ECONNECT);
	bc_free(bc);
	rmdir(dir);
}

/* --- nobody listening, with a no-broker hook (broker autostart) --------- */

struct hook_ctx {
	char dir[64];
	int calls;
	int start;     /* 1: start the fake broker, 0: start nothing */
	long sleep_ms; /* the hook takes this long */
	struct fake *f;
};

/* answer one request, then fail the next one with -32601 */
static void script_ok_then_error(struct fake *f)
{
	char method[64], line[256];
	int fd = fake_accept(f);
	long id = read_request(f, fd, method, sizeof method);

	answer(f, fd, id, method);
	id = read_request(f, fd, method, sizeof method);
	snprintf(line, sizeof line,
		 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"error\":{\"code\":-32601,\"message\":\"nope\"}}\n", id);
	write_str(f, fd, line);
	wait_eof(fd);
}

static int hook_start(void *ud)
{
	struct hook_ctx *c = ud;

	c->calls++;
	sleep_ms(c->sleep_ms);
	if (c->start && !c->f)
		c->f = fake_start_in(c->dir, script_ok_then_error);
	return c->start ? 0 : -1;
}

static void test_no_broker_hook(void **state)
{
	struct hook_ctx c = { "/tmp/test_bclient.XXXXXX", 0, 0, 0, NULL };
	char path[96];
	struct bclient *bc;
	json_t *result, *error;

	(void)state;
	assert_non_null(mkdtemp(c.dir));
	snprintf(path, sizeof path, "%s/broker.sock", c.dir);
	bc = bc_new(path, 1 << 20);
	bc_on_no_broker(bc, hook_start, &c);
	/* the hook fails: BC_ECONNECT, the hook ran once per call */
	assert_int_equal(bc_call(bc, "ping", NULL, 500, &result, &error), BC_ECONNECT);
	assert_int_equal(c.calls, 1);
	assert_int_equal(bc_send(bc, "ping", NULL), BC_ECONNECT);
	assert_int_equal(c.calls, 2);
	/* the hook starts a broker, taking longer than the call's timeout: the
	 * call is retried and its deadline extended by the hook's time */
	c.start = 1;
	c.sleep_ms = 300;
	assert_int_equal(bc_call(bc, "ping", json_object(), 200, &result, &error), BC_OK);
	assert_int_equal(c.calls, 3);
	assert_int_equal(result_id(result), 3); /* ids 1 and 2 went to the failed calls */
	json_decref(result);
	/* connected now: the hook is not asked again */
	assert_int_equal(bc_call(bc, "nope", NULL, 2000, &result, &error), BC_OK);
	assert_non_null(error);
	json_decref(error);
	assert_int_equal(c.calls, 3);
	bc_free(bc);
	assert_int_equal(fake_finish(c.f, NULL), 0);
}

static void test_misc(void **state)
{
	static const int all[] = { BC_OK, BC_ECONNECT, BC_EIO, BC_ETIMEOUT, BC_EPROTO, BC_ENOMEM, 42 };

	(void)state;
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		assert_true(strlen(bc_strerror(all[i])) > 0);
	bc_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_ok),   cmocka_unit_test(test_caller),
		cmocka_unit_test(test_call_tool), cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_timeout),   cmocka_unit_test(test_poll_keeps_waiting),
		cmocka_unit_test(test_garbage),   cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_reconnect), cmocka_unit_test(test_lost_after_send),
		cmocka_unit_test(test_econnect),  cmocka_unit_test(test_no_broker_hook),
		cmocka_unit_test(test_misc),
	};

	log_init("test_bclient", LOGL_ERROR, NULL); /* the expected protocol warnings stay quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
