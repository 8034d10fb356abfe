/* test_fcgiwrite.c: unit tests for lib/http/fcgiwrite.c: the test plays the web server over a real unix socket (records in, records parsed out) to a request libfcgi accepted, in one thread: a write that blocked would hang the test (SIGALRM ends it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fastcgi.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/fcgiwrite.h"

#define TEST_LIFE_S 20     /* a test that blocks is ended by SIGALRM after this */
#define BIG (1024 * 1024)  /* the slow reader's answer */
#define SMALL_SNDBUF 4096  /* the responder's SO_SNDBUF for the slow reader */
#define SLOW_READ 3000     /* what the slow reader reads at each turn */
#define PRODUCE_CHUNK 1000 /* what the producer puts at a time */
#define WAIT_MS 5000       /* how long the web server waits for bytes it is owed */
#define OUT_CAP (2 * BIG)  /* the most stdout bytes a test collects */
#define REQ_ID 1

/* ---- the web server's side: a connection, the records it sends, a parser for what comes back ---- */

struct web {
	int lfd;        /* the responder's listening socket */
	int fd;         /* the web server's connection */
	char sock[108]; /* the listening socket's path */
	FCGX_Request req;
	/* the parser: bytes not parsed yet, what the records said */
	unsigned char in[70000];
	size_t in_len;
	char *out; /* FCGI_STDOUT content, reassembled */
	size_t out_len;
	size_t records, max_clen;
	int stdout_ended; /* the empty FCGI_STDOUT record came */
	int end_request;  /* FCGI_END_REQUEST came */
	unsigned app_status;
	int proto_status;
	int after_end; /* records after FCGI_END_REQUEST (must stay 0) */
	int bad;       /* a record was malformed (version, id, padding, order) */
};

static void send_record(int fd, int type, const void *content, size_t len)
{
	unsigned char hdr[8] = { 1, (unsigned char)type, 0, REQ_ID, (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };

	assert_int_equal(write(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
	if (len)
		assert_int_equal(write(fd, content, len), (ssize_t)len);
}

/* send_request: BEGIN_REQUEST (flags), the params, body; the empty FCGI_STDIN record when end */
static void send_request(struct web *w, unsigned char flags, const char *body, int end)
{
	const unsigned char begin[8] = { 0, FCGI_RESPONDER, flags, 0, 0, 0, 0, 0 };
	unsigned char p[64];
	char cl[16];
	size_t n = 0, kl, vl;

	assert_true(snprintf(cl, sizeof cl, "%zu", strlen(body)) > 0);
	send_record(w->fd, FCGI_BEGIN_REQUEST, begin, sizeof begin);
	kl = strlen("CONTENT_LENGTH");
	vl = strlen(cl);
	p[n++] = (unsigned char)kl;
	p[n++] = (unsigned char)vl;
	memcpy(p + n, "CONTENT_LENGTH", kl);
	memcpy(p + n + kl, cl, vl);
	n += kl + vl;
	send_record(w->fd, FCGI_PARAMS, p, n);
	send_record(w->fd, FCGI_PARAMS, NULL, 0);
	if (*body)
		send_record(w->fd, FCGI_STDIN, body, strlen(body));
	if (end)
		send_record(w->fd, FCGI_STDIN, NULL, 0);
}

/* accept_request: libfcgi accepts (or reads the next request on a kept connection) and reads
 * the body: to its end (whole), or only CONTENT_LENGTH bytes */
static void accept_request(struct web *w, const char *body, int whole)
{
	char got[64];
	int n;

	assert_int_equal(FCGX_Accept_r(&w->req), 0);
	n = FCGX_GetStr(got, whole ? (int)sizeof got : (int)strlen(body), w->req.in);
	assert_int_equal(n, (int)strlen(body));
	assert_memory_equal(got, body, strlen(body));
}

/* parse: take the records in w->in (as many as are whole) */
static void parse(struct web *w)
{
	size_t off = 0;

	while (w->in_len - off >= 8) {
		const unsigned char *h = w->in + off;
		size_t clen = ((size_t)h[4] << 8) | h[5], plen = h[6], id = ((size_t)h[2] << 8) | h[3];

		if (w->in_len - off < 8 + clen + plen)
			break;
		if (h[0] != 1 || id != REQ_ID || plen != (8 - clen % 8) % 8)
			w->bad = 1;
		for (size_t i = 0; i < plen; i++)
			if (h[8 + clen + i] != 0)
				w->bad = 1;
		if (w->end_request)
			w->after_end++;
		w->records++;
		if (clen > w->max_clen)
			w->max_clen = clen;
		if (h[1] == FCGI_STDOUT && clen == 0) {
			w->stdout_ended = 1;
		} else if (h[1] == FCGI_STDOUT) {
			if (w->stdout_ended || w->out_len + clen > OUT_CAP)
				w->bad = 1;
			else
				memcpy(w->out + w->out_len, h + 8, clen);
			w->out_len += clen;
		} else if (h[1] == FCGI_END_REQUEST && clen == 8) {
			w->end_request = 1;
			w->app_status = ((unsigned)h[8] << 24) | ((unsigned)h[9] << 16) | ((unsigned)h[10] << 8) | h[11];
			w->proto_status = h[12];
			if (!w->stdout_ended)
				w->bad = 1;
		} else {
			w->bad = 1;
		}
		off += 8 + clen + plen;
	}
	memmove(w->in, w->in + off, w->in_len - off);
	w->in_len -= off;
}

/* web_read: read at most max bytes now (none waiting: 0) and parse; -1 at end of file or a reset */
static ssize_t web_read(struct web *w, size_t max)
{
	size_t room = sizeof w->in - w->in_len;
	ssize_t n = recv(w->fd, w->in + w->in_len, max < room ? max : room, MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno == ECONNRESET)) /* a unix socket closed with unread input resets its peer */
		return -1;
	if (n < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		return 0;
	}
	w->in_len += (size_t)n;
	parse(w);
	return n;
}

/* web_read_to_end: read until FCGI_END_REQUEST (waiting at most WAIT_MS at a time) */
static void web_read_to_end(struct web *w)
{
	while (!w->end_request) {
		struct pollfd p = { .fd = w->fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		assert_true(web_read(w, sizeof w->in) > 0);
	}
}

/* web_eof_within: does the connection reach end of file (the responder closed) within ms? */
static int web_eof_within(struct web *w, int ms)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };

	while (poll(&p, 1, ms) == 1) {
		if (web_read(w, sizeof w->in) < 0)
			return 1;
	}
	return 0;
}

static int setup(void **state)
{
	struct web *w = calloc(1, sizeof *w);
	struct sockaddr_un a;

	if (!w || !(w->out = malloc(OUT_CAP)))
		return -1;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	if (snprintf(w->sock, sizeof w->sock, "/tmp/mcpgw-test-fcgiwrite.%ld.sock", (long)getpid()) >= (int)sizeof w->sock)
		return -1;
	(void)unlink(w->sock);
	memcpy(a.sun_path, w->sock, strlen(w->sock) + 1);
	w->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (w->lfd < 0 || bind(w->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(w->lfd, 4) < 0)
		return -1;
	w->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	if (FCGX_InitRequest(&w->req, w->lfd, 0) != 0)
		return -1;
	(void)alarm(TEST_LIFE_S);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct web *w = *state;

	(void)alarm(0);
	if (w->fd >= 0)
		(void)close(w->fd); /* first: a kept connection's close by libfcgi waits for it */
	FCGX_Free(&w->req, 1);
	(void)close(w->lfd);
	(void)unlink(w->sock);
	free(w->out);
	free(w);
	return 0;
}

/* pattern: the byte at offset i of the test answers */
static char pattern(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

/* ---- the tests ---- */

/* A 1 MB answer to a web server that reads slowly (a little at a time, only when the writer
 * waits): every flush returns, the writer says WANT_WRITE instead of blocking, the bytes arrive
 * whole and in order, in well-formed records, END_REQUEST last; the connection is closed. */
static void test_slow_reader_never_blocks(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;
	int sndbuf = SMALL_SNDBUF;
	size_t produced = 0, waits = 0, flushes = 0;
	char chunk[PRODUCE_CHUNK];
	enum fcgiwrite_state st;

	send_request(w, 0, "hello", 1);
	accept_request(w, "hello", 1);
	assert_int_equal(setsockopt(w->req.ipcFd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 64 * 1024), 0);
	assert_int_equal(fcgiwrite_fd(&fw), w->req.ipcFd);
	while (produced < BIG) {
		size_t n = BIG - produced < sizeof chunk ? BIG - produced : sizeof chunk;
		enum fcgiwrite_put p;

		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(produced + i);
		p = fcgiwrite_put(&fw, chunk, n);
		if (p == FCGIWRITE_PUT_OK) {
			produced += n;
			continue;
		}
		assert_int_equal(p, FCGIWRITE_PUT_FULL); /* the producer pauses: flush, and read slowly meanwhile */
		assert_true(fcgiwrite_room(&fw) < n);
		st = fcgiwrite_flush(&fw);
		flushes++;
		assert_true(st == FCGIWRITE_DONE || st == FCGIWRITE_WANT_WRITE);
		if (st == FCGIWRITE_WANT_WRITE) {
			waits++;
			assert_true(web_read(w, SLOW_READ) >= 0);
		}
	}
	while ((st = fcgiwrite_finish(&fw, 7)) == FCGIWRITE_WANT_WRITE) {
		waits++;
		assert_true(web_read(w, SLOW_READ) >= 0);
	}
	assert_int_equal(st, FCGIWRITE_DONE);
	assert_int_equal(fcgiwrite_fd(&fw), -1);
	assert_null(w->req.in); /* handed back: libfcgi's streams freed */
	web_read_to_end(w);
	assert_true(web_eof_within(w, WAIT_MS)); /* not FCGI_KEEP_CONN: closed */
	assert_true(waits > 10);                 /* the socket was full, many times, and nothing blocked */
	assert_true(flushes > 10);
	assert_false(w->bad);
	assert_int_equal(w->out_len, BIG);
	for (size_t i = 0; i < BIG; i++)
		if (w->out[i] != pattern(i))
			fail_msg("byte %zu differs", i);
	assert_true(w->stdout_ended);
	assert_true(w->end_request);
	assert_int_equal(w->after_end, 0);
	assert_int_equal(w->app_status, 7);
	assert_int_equal(w->proto_status, FCGI_REQUEST_COMPLETE);
	assert_int_equal(fw.bytes_out, BIG);
}

/* Puts of many sizes (1 byte to more than a record) and reads of many sizes, so that writes end
 * anywhere in a header, a record's content, its padding or the end records: the bytes still arrive
 * whole and in order (a fixed sequence from a linear congruential generator: the same every run) */
static void test_any_split(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;
	static char chunk[70000];
	int sndbuf = SMALL_SNDBUF;
	uint32_t r = 12345;
	size_t produced = 0, want = OUT_CAP / 2;
	enum fcgiwrite_state st;

	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(setsockopt(w->req.ipcFd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 150000), 0);
	while (produced < want) {
		size_t n;

		r = r * 1103515245u + 12345u;
		n = (r >> 8) % (r & 1 ? 16 : sizeof chunk) + 1;
		if (n > want - produced)
			n = want - produced;
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(produced + i);
		while (fcgiwrite_put(&fw, chunk, n) == FCGIWRITE_PUT_FULL) {
			st = fcgiwrite_flush(&fw);
			assert_true(st == FCGIWRITE_DONE || st == FCGIWRITE_WANT_WRITE);
			r = r * 1103515245u + 12345u;
			if (st == FCGIWRITE_WANT_WRITE)
				assert_true(web_read(w, (r >> 8) % 9000 + 1) >= 0);
		}
		produced += n;
	}
	while ((st = fcgiwrite_finish(&fw, 0)) == FCGIWRITE_WANT_WRITE) {
		r = r * 1103515245u + 12345u;
		assert_true(web_read(w, (r >> 8) % 29 + 1) >= 0); /* the end in small bites */
	}
	assert_int_equal(st, FCGIWRITE_DONE);
	web_read_to_end(w);
	assert_false(w->bad);
	assert_int_equal(w->out_len, want);
	for (size_t i = 0; i < want; i++)
		if (w->out[i] != pattern(i))
			fail_msg("byte %zu differs", i);
	assert_int_equal(w->after_end, 0);
}

/* Writes of every small size (1 to 23 bytes: fcgiwrite_set_send_max) end in every place of a
 * record's header, content and padding and of the end records: each resumes where the last stopped */
static void test_tiny_writes(void **state)
{
	struct web *w = *state;
	static char body[3000];

	for (size_t i = 0; i < sizeof body; i++)
		body[i] = pattern(i);
	for (size_t max = 1; max <= 23; max++) {
		struct fcgiwrite fw;
		enum fcgiwrite_state st;

		send_request(w, FCGI_KEEP_CONN, "", 1);
		accept_request(w, "", 1);
		assert_int_equal(fcgiwrite_begin(&fw, &w->req, 1021), 0); /* content of 1021: padding 3 */
		fcgiwrite_set_send_max(&fw, max);
		for (size_t off = 0; off < sizeof body;) {
			size_t n = sizeof body - off < 1021 ? sizeof body - off : 1021;

			if (fcgiwrite_put(&fw, body + off, n) == FCGIWRITE_PUT_OK) {
				off += n;
				continue;
			}
			assert_int_not_equal(fcgiwrite_flush(&fw), FCGIWRITE_GONE);
			assert_true(web_read(w, sizeof w->in) >= 0);
		}
		while ((st = fcgiwrite_finish(&fw, (int)max)) == FCGIWRITE_WANT_WRITE)
			assert_true(web_read(w, sizeof w->in) >= 0);
		assert_int_equal(st, FCGIWRITE_DONE);
		web_read_to_end(w);
		assert_false(w->bad);
		assert_int_equal(w->out_len, sizeof body);
		assert_memory_equal(w->out, body, sizeof body);
		assert_int_equal(w->app_status, max);
		assert_int_equal(w->after_end, 0);
		assert_int_equal(w->in_len, 0);
		w->out_len = w->records = 0;
		w->stdout_ended = w->end_request = 0;
	}
}

/* A buffer larger than a record is sent in records of at most 65535 content bytes, the largest
 * full; padding is to 8 (checked by the parser) */
static void test_records_split_at_65535(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;
	static char big[200000];
	enum fcgiwrite_state st;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = pattern(i);
	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, sizeof big), 0);
	assert_int_equal(fcgiwrite_put(&fw, big, sizeof big), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_room(&fw), 0);
	while ((st = fcgiwrite_finish(&fw, 0)) == FCGIWRITE_WANT_WRITE)
		assert_true(web_read(w, sizeof w->in) >= 0);
	assert_int_equal(st, FCGIWRITE_DONE);
	web_read_to_end(w);
	assert_false(w->bad);
	assert_int_equal(w->max_clen, FCGIWRITE_RECORD_MAX);
	assert_int_equal(w->out_len, sizeof big);
	assert_memory_equal(w->out, big, sizeof big);
	assert_int_equal(w->records, 4 + 2); /* 3 full records and the rest, the empty one, END_REQUEST */
}

/* The limit: put is all or nothing; FULL past the room, TOO_BIG past the limit itself; room comes back as flush writes */
static void test_limit(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;
	char b[1001];

	memset(b, 'x', sizeof b);
	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 1000), 0);
	assert_int_equal(fcgiwrite_room(&fw), 1000);
	assert_int_equal(fcgiwrite_put(&fw, b, 600), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_put(&fw, b, 500), FCGIWRITE_PUT_FULL);
	assert_int_equal(fcgiwrite_pending(&fw), 600); /* nothing of the refused put */
	assert_int_equal(fcgiwrite_put(&fw, b, 1001), FCGIWRITE_PUT_TOO_BIG);
	assert_int_equal(fcgiwrite_put(&fw, b, 400), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_room(&fw), 0);
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_DONE); /* the socket takes 1000 bytes at once */
	assert_int_equal(fcgiwrite_room(&fw), 1000);
	assert_int_equal(fcgiwrite_put(&fw, b, 1000), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_DONE);
	assert_int_equal(fcgiwrite_put(&fw, b, 1), FCGIWRITE_PUT_CLOSED);
	web_read_to_end(w);
	assert_false(w->bad);
	assert_int_equal(w->out_len, 2000);
}

/* fcgiwrite_body_ended: the body's end (the empty FCGI_STDIN record) is seen whether libfcgi read
 * it with the body or fcgiwrite_client_gone read it later, sent apart (Apache's "empty stdin"). With
 * drop, libfcgi's input stream is freed first (fcgiwrite_drop_input): what it had seen still counts,
 * and an end record sent apart is still read from the socket. */
static void body_ended(struct web *w, int drop)
{
	struct fcgiwrite fw;

	send_request(w, 0, "abc", 1);
	accept_request(w, "abc", 1); /* read to its end: libfcgi saw EOF */
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	if (drop) {
		fcgiwrite_drop_input(&fw);
		assert_null(w->req.in);
		fcgiwrite_drop_input(&fw); /* twice: nothing more */
	}
	assert_int_equal(fcgiwrite_body_ended(&fw), 1);
	assert_int_equal(fcgiwrite_client_gone(&fw), 0);
	assert_int_equal(fcgiwrite_put(&fw, "ok", 2), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_DONE);
	assert_int_equal(fcgiwrite_body_ended(&fw), 0); /* handed back */
	web_read_to_end(w);
	assert_false(w->bad);
	assert_int_equal(w->out_len, 2);
}

static void body_end_apart(struct web *w, int drop)
{
	struct fcgiwrite fw;

	send_request(w, 0, "abc", 0);
	accept_request(w, "abc", 0); /* the body by its length: its end not read */
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	if (drop)
		fcgiwrite_drop_input(&fw);
	assert_int_equal(fcgiwrite_body_ended(&fw), 0);
	assert_int_equal(fcgiwrite_client_gone(&fw), 0);
	assert_int_equal(fcgiwrite_body_ended(&fw), 0); /* nothing came yet */
	send_record(w->fd, FCGI_STDIN, NULL, 0);
	assert_int_equal(fcgiwrite_client_gone(&fw), 0); /* read and passed over */
	assert_int_equal(fcgiwrite_body_ended(&fw), 1);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_DONE);
	web_read_to_end(w);
	assert_false(w->bad);
}

static void test_body_ended(void **state)
{
	body_ended(*state, 0);
}

static void test_body_end_apart(void **state)
{
	body_end_apart(*state, 0);
}

static void test_drop_input(void **state)
{
	body_ended(*state, 1);
}

static void test_drop_input_end_apart(void **state)
{
	body_end_apart(*state, 1);
}

/* The web server closes: flush says GONE; put refuses; finish hands the request back closed */
static void test_peer_closes(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;

	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "x", 1), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_client_gone(&fw), 0);
	(void)close(w->fd);
	w->fd = -1;
	assert_int_equal(fcgiwrite_client_gone(&fw), 1);
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_GONE);
	assert_int_equal(fcgiwrite_put(&fw, "x", 1), FCGIWRITE_PUT_CLOSED);
	assert_int_equal(fcgiwrite_room(&fw), 0);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_GONE);
	assert_int_equal(w->req.ipcFd, -1);
	assert_null(w->req.in);
}

/* The web server stops reading (shut for reading: our reads see nothing, the write fails with
 * EPIPE): GONE, and no SIGPIPE (its default action would end the test) */
static void test_epipe_no_sigpipe(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);

	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "data", 4), FCGIWRITE_PUT_OK);
	assert_int_equal(shutdown(w->fd, SHUT_RD), 0);
	assert_int_equal(fcgiwrite_client_gone(&fw), 0); /* nothing to read: not seen that way */
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_GONE);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_GONE);
	(void)signal(SIGPIPE, old);
}

/* FCGI_ABORT_REQUEST from the web server (the client left): GONE at the next flush */
static void test_abort_request(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;

	send_request(w, 0, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "part", 4), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_DONE);
	send_record(w->fd, FCGI_ABORT_REQUEST, NULL, 0);
	assert_int_equal(fcgiwrite_put(&fw, "more", 4), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_GONE);
	fcgiwrite_abandon(&fw); /* handed back, closed */
	assert_int_equal(w->req.ipcFd, -1);
	assert_true(web_eof_within(w, WAIT_MS));
	assert_false(w->end_request);
	assert_int_equal(w->out_len, 4);
}

/* FCGI_ABORT_REQUEST that came with the body: libfcgi, reading the body to its end, takes it for
 * a protocol error; the first flush says GONE, also once libfcgi's input stream is freed (drop) */
static void abort_with_body(struct web *w, int drop)
{
	struct fcgiwrite fw;

	send_request(w, 0, "abc", 0);
	send_record(w->fd, FCGI_ABORT_REQUEST, NULL, 0);
	accept_request(w, "abc", 0);
	assert_int_equal(FCGX_GetChar(w->req.in), EOF); /* reading on to the end of the body */
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	if (drop)
		fcgiwrite_drop_input(&fw);
	assert_int_equal(fcgiwrite_put(&fw, "x", 1), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_flush(&fw), FCGIWRITE_GONE);
	assert_int_equal(fcgiwrite_client_gone(&fw), 1);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_GONE);
	assert_true(web_eof_within(w, WAIT_MS));
	assert_int_equal(w->records, 0);
}

static void test_abort_with_body(void **state)
{
	abort_with_body(*state, 0);
}

static void test_drop_input_abort_with_body(void **state)
{
	abort_with_body(*state, 1);
}

/* FCGI_KEEP_CONN: after the end records the connection stays open and carries the next request,
 * which libfcgi reads with FCGX_Accept_r on the same FCGX_Request; the empty FCGI_STDIN record
 * that comes after the body was read by its length is read and passed over */
static void test_keep_conn(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;

	send_request(w, FCGI_KEEP_CONN, "abc", 0);
	accept_request(w, "abc", 0); /* by CONTENT_LENGTH: the end of stdin not seen */
	send_record(w->fd, FCGI_STDIN, NULL, 0);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "first", 5), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_DONE);
	assert_true(w->req.ipcFd >= 0); /* kept */
	web_read_to_end(w);
	assert_false(web_eof_within(w, 100));
	assert_int_equal(w->out_len, 5);

	memset(w->in, 0, sizeof w->in);
	w->in_len = w->out_len = w->records = 0;
	w->stdout_ended = w->end_request = 0;
	send_request(w, 0, "de", 1);
	accept_request(w, "de", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "second", 6), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_finish(&fw, 3), FCGIWRITE_DONE);
	web_read_to_end(w);
	assert_true(web_eof_within(w, WAIT_MS)); /* that one did not ask to keep it */
	assert_false(w->bad);
	assert_int_equal(w->out_len, 6);
	assert_memory_equal(w->out, "second", 6);
	assert_int_equal(w->app_status, 3);
}

/* After finish, libfcgi's own end (FCGX_Finish_r, which FCGX_Accept_r calls) writes nothing:
 * no second FCGI_STDOUT end nor FCGI_END_REQUEST */
static void test_libfcgi_finish_writes_nothing(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw;

	send_request(w, FCGI_KEEP_CONN, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "only", 4), FCGIWRITE_PUT_OK);
	assert_int_equal(fcgiwrite_finish(&fw, 0), FCGIWRITE_DONE);
	FCGX_Finish_r(&w->req); /* the connection is kept: libfcgi keeps it open too */
	web_read_to_end(w);
	assert_false(web_eof_within(w, 100));
	assert_int_equal(w->after_end, 0);
	assert_int_equal(w->in_len, 0);
	assert_int_equal(w->records, 3);
	assert_false(w->bad);
}

/* A request abandoned before any output: closed, nothing written, nothing leaked */
static void test_abandon(void **state)
{
	struct web *w = *state;
	struct fcgiwrite fw, zero;

	send_request(w, FCGI_KEEP_CONN, "", 1);
	accept_request(w, "", 1);
	assert_int_equal(fcgiwrite_begin(&fw, &w->req, 0), 0);
	assert_int_equal(fcgiwrite_put(&fw, "unsent", 6), FCGIWRITE_PUT_OK);
	fcgiwrite_abandon(&fw);
	fcgiwrite_abandon(&fw); /* twice: harmless */
	assert_int_equal(w->req.ipcFd, -1);
	assert_true(web_eof_within(w, WAIT_MS));
	assert_int_equal(w->records, 0);
	assert_int_equal(fcgiwrite_begin(&zero, &w->req, 0), -1); /* no request in progress */
	fcgiwrite_abandon(&zero);
	assert_int_equal(fcgiwrite_finish(&zero, 0), FCGIWRITE_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slow_reader_never_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_split_at_65535, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_end_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_input_end_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_input_abort_with_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epipe_no_sigpipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_with_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_conn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_libfcgi_finish_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandon, setup, teardown),
	};

	if (FCGX_Init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
