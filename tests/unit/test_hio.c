/* test_hio.c: unit tests for lib/http/hio.c over a real FastCGI socket: the test plays the web server (records in, records out) to a responder child that uses hio. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/fcgiwrite.h"
#include "http/hio.h"

/* FastCGI record types (the FastCGI 1.0 specification) */
#define REC_BEGIN_REQUEST 1
#define REC_END_REQUEST 3
#define REC_PARAMS 4
#define REC_STDIN 5
#define REC_STDOUT 6

#define BODY_MAX 4096       /* the child's hio_read_body limit */
#define OVER_LIMIT 65536    /* a body far over BODY_MAX, sent without its end */
#define ANSWER_WAIT_MS 5000 /* how long the web server waits for the answer */
#define CHILD_LIFE_S 20     /* the responder child's lifetime at most */
#define QUIET_MS 300        /* how long "no answer yet" is watched */
#define KEEP_CONN 1         /* FCGI_BEGIN_REQUEST flag: the connection carries more requests */

struct web {
	pid_t child;    /* the responder */
	int fd;         /* the web server's connection to it */
	char sock[108]; /* the listening socket's path */
	char out[8192]; /* the answer's FCGI_STDOUT bytes */
	size_t out_len;
};

/* ---- the responder child: one request through hio ---- */

/* child_serve: hio_init, then nreq requests: read the body (at most BODY_MAX),
 * answer 413 or 200 with the body's length; hio_done. The exit status says
 * whether every hio call did what was expected. */
static size_t child_drain_max; /* MCPGW_MAX_DRAIN_BYTES for the child (0: hio_init's) */

static void child_serve(int listen_fd, int nreq)
{
	static const char too_large[] = "{\"error\":{\"code\":\"request_too_large\"}}";
	struct hio h;
	buf_t body = BUF_INIT;
	char msg[64];
	int rc, ok = 0;

	/* a test that fails leaves the child waiting on the socket: SIGALRM ends it */
	(void)alarm(CHILD_LIFE_S);
	if (dup2(listen_fd, 0) < 0)
		_exit(2);
	(void)close(listen_fd);
	if (hio_init(&h) != 0 || h.cgi)
		_exit(3);
	if (child_drain_max)
		h.drain_max = child_drain_max;
	while (nreq-- > 0) {
		if (hio_accept(&h) != 1)
			_exit(3);
		rc = hio_read_body(&h, BODY_MAX, &body);
		if (rc == 413)
			ok = hio_send_raw_json(&h, 413, too_large, sizeof too_large - 1) == 0;
		else if (rc == 0 && snprintf(msg, sizeof msg, "{\"len\":%zu}", body.len) > 0)
			ok = hio_send_raw_json(&h, 200, msg, strlen(msg)) == 0;
		else
			ok = 0;
		if (!ok)
			break;
	}
	buf_free(&body);
	hio_done(&h);
	_exit(ok ? 0 : 4);
}

/* collect: hio_set_output's function in the tests: the bytes appended to a buf_t */
static int collect(void *ud, const void *p, size_t n)
{
	return buf_append(ud, p, n);
}

/* child_hand_over: the first request (connection A) is handed over (hio_hand_over) and answered
 * through hio_set_output into a buffer; the worker's hio accepts and answers the second
 * (connection B) while A waits; then A's answer goes out through fcgiwrite on the moved
 * FCGX_Request. The exit status says which step was not as expected (0: all were). */
static void child_hand_over(int listen_fd)
{
	struct hio h, moved, again;
	buf_t body = BUF_INIT, out = BUF_INIT;
	struct fcgiwrite fw;
	enum fcgiwrite_state st;

	(void)alarm(CHILD_LIFE_S);
	if (dup2(listen_fd, 0) < 0)
		_exit(2);
	(void)close(listen_fd);
	if (hio_init(&h) != 0 || h.cgi || hio_accept(&h) != 1 || hio_read_body(&h, BODY_MAX, &body) != 0)
		_exit(3);
	if (hio_add_headers(&h, "X-Test: moved\r\n") != 0 || hio_hand_over(&h, &moved) != 0)
		_exit(4);
	/* the worker's hio has no request any more; the moved one has it all */
	if (h.req.in || h.req.ipcFd != -1 || h.added || !moved.req.in || moved.req.ipcFd < 0 ||
	    !hio_param(&moved, "REQUEST_URI") || hio_hand_over(&h, &again) != -1)
		_exit(5);
	hio_set_output(&moved, collect, &out);
	if (hio_send_raw_json(&moved, 200, "{\"moved\":1}", 11) != 0 || moved.status != 200 || moved.bytes_out != 12 ||
	    !out.data || !strstr(out.data, "Status: 200") || !strstr(out.data, "X-Test: moved\r\n"))
		_exit(6);
	/* the next request, accepted on the worker's fresh FCGX_Request while A is still open */
	if (hio_accept(&h) != 1 || hio_read_body(&h, BODY_MAX, &body) != 0 ||
	    hio_send_raw_json(&h, 200, "{\"second\":1}", 12) != 0)
		_exit(7);
	hio_finish(&h);
	if (fcgiwrite_begin(&fw, &moved.req, 0) != 0 || fcgiwrite_put(&fw, out.data, out.len) != FCGIWRITE_PUT_OK)
		_exit(8);
	while ((st = fcgiwrite_finish(&fw, 0)) == FCGIWRITE_WANT_WRITE) {
		struct pollfd p = { .fd = fcgiwrite_fd(&fw), .events = POLLOUT };

		(void)poll(&p, 1, 1000);
	}
	if (st != FCGIWRITE_DONE)
		_exit(9);
	buf_free(&body);
	buf_free(&out);
	hio_done(&h);
	_exit(0);
}

static int child_mode_hand_over; /* web_start forks child_hand_over instead of child_serve */

/* web_start: a listening unix socket, the responder child on it (serving
 * nreq requests), and the web server's connection to it */
static void web_start(struct web *w, int nreq)
{
	struct sockaddr_un a;
	int lfd;

	memset(w, 0, sizeof *w);
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	assert_true(snprintf(w->sock, sizeof w->sock, "/tmp/mcpgw-test-hio.%ld.sock", (long)getpid()) <
		    (int)sizeof w->sock);
	(void)unlink(w->sock);
	memcpy(a.sun_path, w->sock, strlen(w->sock) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(lfd, 1), 0);
	w->child = fork();
	assert_true(w->child >= 0);
	if (w->child == 0) {
		if (child_mode_hand_over)
			child_hand_over(lfd);
		child_serve(lfd, nreq);
	}
	(void)close(lfd);
	w->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(w->fd >= 0);
	assert_int_equal(connect(w->fd, (struct sockaddr *)&a, sizeof a), 0);
}

/* web_stop: close the connection; the child's exit status (0: every hio call as expected) */
static int web_stop(struct web *w)
{
	int st = 0;

	if (w->fd >= 0)
		(void)close(w->fd);
	w->fd = -1;
	while (waitpid(w->child, &st, 0) < 0 && errno == EINTR)
		;
	(void)unlink(w->sock);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the web server's side of the protocol ---- */

/* send_record: one record of type with len (<= 65535) content bytes; 0 or -1 (errno) */
static int send_record(int fd, int type, const void *content, size_t len)
{
	unsigned char hdr[8] = { 1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };
	const unsigned char *p = content;
	size_t off = 0;

	if (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* send_begin: BEGIN_REQUEST (responder, flags 0 or KEEP_CONN) and the params, with
 * Transfer-Encoding and no CONTENT_LENGTH: a body of unknown length, as mod_proxy_fcgi streams one */
static void send_begin(int fd, unsigned char flags)
{
	const unsigned char begin[8] = { 0, 1, flags, 0, 0, 0, 0, 0 };
	static const char *const params[][2] = { { "REQUEST_METHOD", "POST" },
						 { "REQUEST_URI", "/v1/tools" },
						 { "HTTP_TRANSFER_ENCODING", "chunked" } };
	unsigned char p[256];
	size_t n = 0, i;

	assert_int_equal(send_record(fd, REC_BEGIN_REQUEST, begin, sizeof begin), 0);
	for (i = 0; i < sizeof params / sizeof params[0]; i++) {
		size_t kl = strlen(params[i][0]), vl = strlen(params[i][1]);

		p[n++] = (unsigned char)kl;
		p[n++] = (unsigned char)vl;
		memcpy(p + n, params[i][0], kl);
		memcpy(p + n + kl, params[i][1], vl);
		n += kl + vl;
	}
	assert_int_equal(send_record(fd, REC_PARAMS, p, n), 0);
	assert_int_equal(send_record(fd, REC_PARAMS, NULL, 0), 0);
}

/* send_stdin: len body bytes ('x') in records of at most 16 KB; 0 or -1 (errno) */
static int send_stdin(int fd, size_t len)
{
	static char chunk[16384];

	memset(chunk, 'x', sizeof chunk);
	while (len > 0) {
		size_t n = len < sizeof chunk ? len : sizeof chunk;

		if (send_record(fd, REC_STDIN, chunk, n) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

/* read_full: exactly n bytes, each wait at most ANSWER_WAIT_MS; 0, or -1 (timeout, EOF, error) */
static int read_full(int fd, void *buf, size_t n)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, ANSWER_WAIT_MS) != 1)
			return -1;
		r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* read_answer: records until FCGI_END_REQUEST, the STDOUT bytes kept in w->out
 * (from its start); 0, or -1 when it does not come within ANSWER_WAIT_MS of the last byte */
static int read_answer(struct web *w)
{
	w->out_len = 0;
	w->out[0] = '\0';
	for (;;) {
		unsigned char hdr[8], content[65536 + 256];
		size_t clen, plen;

		if (read_full(w->fd, hdr, sizeof hdr) < 0)
			return -1;
		clen = (size_t)hdr[4] << 8 | hdr[5];
		plen = hdr[6];
		if (read_full(w->fd, content, clen + plen) < 0)
			return -1;
		if (hdr[1] == REC_END_REQUEST)
			return 0;
		if (hdr[1] == REC_STDOUT && clen < sizeof w->out - w->out_len) {
			memcpy(w->out + w->out_len, content, clen);
			w->out_len += clen;
			w->out[w->out_len] = '\0';
		}
	}
}

/* ---- tests ---- */

/* A body over the limit whose end has not come (a chunked upload Apache
 * mod_proxy_fcgi streams): the whole answer, FCGI_END_REQUEST included, comes
 * while the web server is still sending, not after the responder has drained
 * what is left; and the web server's further writes still succeed (the
 * connection is not closed under it, which Apache answers with a 503) until it
 * closes the connection itself, which ends the drain. */
static void test_over_limit_answered_before_drain(void **state)
{
	struct web w;

	(void)state;
	web_start(&w, 1);
	send_begin(w.fd, 0);
	assert_int_equal(send_stdin(w.fd, OVER_LIMIT), 0);
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "Status: 413"));
	assert_non_null(strstr(w.out, "request_too_large"));
	assert_int_equal(send_stdin(w.fd, OVER_LIMIT), 0);
	assert_int_equal(web_stop(&w), 0);
}

/* A chunked body under the limit, ended by an empty FCGI_STDIN: read whole, answered */
static void test_chunked_under_limit(void **state)
{
	struct web w;

	(void)state;
	web_start(&w, 1);
	send_begin(w.fd, 0);
	assert_int_equal(send_stdin(w.fd, 3000), 0);
	assert_int_equal(send_record(w.fd, REC_STDIN, NULL, 0), 0);
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "Status: 200"));
	assert_non_null(strstr(w.out, "{\"len\":3000}"));
	assert_int_equal(web_stop(&w), 0);
}

/* closed_by_peer: the other side closed fd within ANSWER_WAIT_MS (what is
 * still to read on it is read and dropped) */
static int closed_by_peer(int fd)
{
	char scratch[4096];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ANSWER_WAIT_MS) != 1)
			return 0;
		n = read(fd, scratch, sizeof scratch);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		if (n < 0 && errno != EINTR)
			return 0;
	}
}

/* A web server that keeps sending a body past the answer and never ends it
 * nor closes: the responder reads and drops at most MCPGW_MAX_DRAIN_BYTES
 * (drain_max) of it, then closes the connection itself */
static void test_drain_bounded(void **state)
{
	struct web w;

	(void)state;
	child_drain_max = 32768;
	web_start(&w, 1);
	child_drain_max = 0;
	send_begin(w.fd, 0);
	assert_int_equal(send_stdin(w.fd, OVER_LIMIT), 0);
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "Status: 413"));
	(void)send_stdin(w.fd, OVER_LIMIT); /* may fail once the responder has closed */
	assert_true(closed_by_peer(w.fd));
	assert_int_equal(web_stop(&w), 0);
}

/* quiet: nothing to read on fd for QUIET_MS */
static int quiet(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, QUIET_MS) == 0;
}

/* A web server that keeps the connection (FCGI_KEEP_CONN) for its next request
 * may stop sending a body once it has the answer: an over-limit body is read
 * to its end first, then answered, and the next request on the same
 * connection is served */
static void test_keep_conn_drains_first(void **state)
{
	struct web w;

	(void)state;
	web_start(&w, 2);
	send_begin(w.fd, KEEP_CONN);
	assert_int_equal(send_stdin(w.fd, OVER_LIMIT), 0);
	assert_true(quiet(w.fd));
	assert_int_equal(send_record(w.fd, REC_STDIN, NULL, 0), 0);
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "Status: 413"));
	send_begin(w.fd, 0);
	assert_int_equal(send_stdin(w.fd, 10), 0);
	assert_int_equal(send_record(w.fd, REC_STDIN, NULL, 0), 0);
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "{\"len\":10}"));
	assert_int_equal(web_stop(&w), 0);
}

/* hio_hand_over: a request moved off the worker's hio stays open while the worker accepts and
 * answers the next one on another connection; its answer, written through hio_set_output and then
 * fcgiwrite on the moved FCGX_Request, arrives whole with the headers added before the move */
static void test_hand_over(void **state)
{
	struct web w;
	struct sockaddr_un a;
	int b;

	(void)state;
	child_mode_hand_over = 1;
	web_start(&w, 2);
	child_mode_hand_over = 0;
	send_begin(w.fd, 0);
	assert_int_equal(send_stdin(w.fd, 10), 0);
	assert_int_equal(send_record(w.fd, REC_STDIN, NULL, 0), 0);
	assert_true(quiet(w.fd)); /* handed over, not answered yet */
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, w.sock, strlen(w.sock) + 1);
	b = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(b >= 0);
	assert_int_equal(connect(b, (struct sockaddr *)&a, sizeof a), 0);
	send_begin(b, 0);
	assert_int_equal(send_stdin(b, 3), 0);
	assert_int_equal(send_record(b, REC_STDIN, NULL, 0), 0);
	{
		struct web wb = w;

		wb.fd = b;
		assert_int_equal(read_answer(&wb), 0);
		assert_non_null(strstr(wb.out, "{\"second\":1}"));
	}
	assert_int_equal(read_answer(&w), 0);
	assert_non_null(strstr(w.out, "Status: 200"));
	assert_non_null(strstr(w.out, "X-Test: moved"));
	assert_non_null(strstr(w.out, "{\"moved\":1}"));
	(void)close(b);
	assert_int_equal(web_stop(&w), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_over_limit_answered_before_drain),
		cmocka_unit_test(test_chunked_under_limit),
		cmocka_unit_test(test_keep_conn_drains_first),
		cmocka_unit_test(test_drain_bounded),
		cmocka_unit_test(test_hand_over),
	};

	/* a write to a responder that closed fails with EPIPE instead of killing the test */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
