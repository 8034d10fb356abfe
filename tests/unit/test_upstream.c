/* test_upstream.c: unit tests for the upstream client (lib/upstream.c) against an in-process HTTP server thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/buf.h"
#include "core/log.h"
#include "openai/upstream.h"
#include "openai/upstream_call.h"

/* ---- a scripted HTTP/1.1 server on 127.0.0.1: one connection at a time, answering in
 * script order; or (srv_start_keyed) a thread per connection, each request answered by the
 * first unused script entry whose marker it contains ---- */

#define SRV_PIECES 10
#define SRV_SCRIPT 16
#define SRV_CONNS 16
#define SRV_REQ_MAX 65536

struct piece {
	int delay_ms;     /* wait before sending */
	const char *data; /* NULL ends the response */
};

struct canned {
	struct piece p[SRV_PIECES];
	int close; /* close the connection after the response */
};

struct srv {
	int lfd, wake[2], port;
	pthread_t th;
	struct canned script[SRV_SCRIPT];
	size_t n, next;
	atomic_int accepts, requests;
	buf_t reqlog; /* every request, written by the server thread(s), read after srv_stop */
	/* keyed mode: a thread per connection */
	int keyed;
	const char *marker[SRV_SCRIPT];
	int used[SRV_SCRIPT];
	pthread_mutex_t mu; /* used, reqlog */
	pthread_t conn[SRV_CONNS];
	int nconn;
};

static struct srv S;
static char *allocs[64];
static size_t nallocs;

/* mk: a formatted string that lives until the test's teardown */
static const char *mk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *mk(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	assert_true(nallocs < sizeof allocs / sizeof allocs[0]);
	allocs[nallocs++] = s;
	return s;
}

/* a whole response with a JSON (or other) body and a Content-Length */
static const char *resp(int status, const char *extra, const char *ctype, const char *body)
{
	return mk("HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n\r\n%s", status, ctype,
		  extra ? extra : "", strlen(body), body);
}

#define SSE_HEAD \
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
#define SSE_END "0\r\n\r\n"

/* one HTTP chunk */
static const char *chunk(const char *data)
{
	return mk("%zx\r\n%s\r\n", strlen(data), data);
}

/* srv_wait: sleep ms unless told to stop; 0, or -1 when stopping */
static int srv_wait(int ms)
{
	struct pollfd pf = { S.wake[0], POLLIN, 0 };

	return poll(&pf, 1, ms) == 0 ? 0 : -1;
}

/* srv_read_request: one request into b; 1 got one, 0 EOF/stop/error */
static int srv_read_request(int fd, buf_t *b)
{
	char *end = NULL, *cl;
	size_t need = 0;
	ssize_t n;

	buf_reset(b);
	for (;;) {
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { S.wake[0], POLLIN, 0 } };

		if (!end && b->data && (end = strstr(b->data, "\r\n\r\n"))) {
			cl = strcasestr(b->data, "\r\nContent-Length:");
			need = (size_t)(end + 4 - b->data) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (end && b->len >= need)
			return 1;
		if (poll(pf, 2, -1) < 0 || (pf[1].revents & POLLIN) || buf_reserve(b, 4096) < 0)
			return 0;
		n = read(fd, b->data + b->len, 4096);
		if (n <= 0 || b->len + (size_t)n > SRV_REQ_MAX)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

/* srv_pick: the canned answer to request req: the next in order, or (keyed) the first unused one
 * whose marker req holds; NULL: none */
static const struct canned *srv_pick(const buf_t *req)
{
	const struct canned *c = NULL;

	if (!S.keyed)
		return S.next < S.n ? &S.script[S.next++] : (S.next++, NULL);
	pthread_mutex_lock(&S.mu);
	for (size_t i = 0; i < S.n && !c; i++)
		if (!S.used[i] && strstr(req->data, S.marker[i]))
			S.used[i] = 1, c = &S.script[i];
	pthread_mutex_unlock(&S.mu);
	return c;
}

/* srv_respond: send the canned response to req; 1 keep the connection, 0 close it */
static int srv_respond(int fd, const buf_t *req)
{
	static const struct canned none = { { { 0, "HTTP/1.1 599 No Script\r\nContent-Length: 0\r\n\r\n" } }, 1 };
	const struct canned *c = srv_pick(req);

	if (!c)
		c = &none;
	for (int i = 0; i < SRV_PIECES && c->p[i].data; i++) {
		size_t len = strlen(c->p[i].data);

		if ((c->p[i].delay_ms && srv_wait(c->p[i].delay_ms) < 0) ||
		    send(fd, c->p[i].data, len, MSG_NOSIGNAL) != (ssize_t)len)
			return 0;
	}
	return !c->close;
}

/* srv_serve: the requests of connection fd, then closes it */
static void srv_serve(int fd)
{
	buf_t req = BUF_INIT;
	int logged;

	while (srv_read_request(fd, &req)) {
		atomic_fetch_add(&S.requests, 1);
		pthread_mutex_lock(&S.mu);
		logged = buf_append(&S.reqlog, req.data, req.len) == 0 && buf_puts(&S.reqlog, "\n----\n") == 0;
		pthread_mutex_unlock(&S.mu);
		if (!logged || !srv_respond(fd, &req))
			break;
	}
	close(fd);
	buf_free(&req);
}

static void *srv_conn(void *arg)
{
	srv_serve((int)(intptr_t)arg);
	return NULL;
}

static void *srv_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pf[2] = { { S.lfd, POLLIN, 0 }, { S.wake[0], POLLIN, 0 } };
		int fd;

		if (poll(pf, 2, -1) < 0 || (pf[1].revents & POLLIN))
			break;
		if ((fd = accept(S.lfd, NULL, NULL)) < 0)
			continue;
		atomic_fetch_add(&S.accepts, 1);
		if (!S.keyed)
			srv_serve(fd);
		else if (S.nconn < SRV_CONNS &&
			 pthread_create(&S.conn[S.nconn], NULL, srv_conn, (void *)(intptr_t)fd) == 0)
			S.nconn++;
		else
			close(fd);
	}
	for (int i = 0; i < S.nconn; i++) /* each sees the wake pipe too */
		pthread_join(S.conn[i], NULL);
	return NULL;
}

/* srv_start: listen on a free port and serve the n canned responses given */
static void srv_start(const struct canned *script, size_t n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t sl = sizeof sa;
	int one = 1;

	assert_true(n <= SRV_SCRIPT);
	memcpy(S.script, script, n * sizeof *script);
	S.n = n;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
	assert_int_equal(bind(S.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(S.lfd, 16), 0);
	assert_int_equal(getsockname(S.lfd, (struct sockaddr *)&sa, &sl), 0);
	S.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_mutex_init(&S.mu, NULL), 0);
	assert_int_equal(pipe(S.wake), 0);
	assert_int_equal(pthread_create(&S.th, NULL, srv_main, NULL), 0);
}

/* srv_stop: stop the thread; afterwards S.reqlog and the counters are stable */
static void srv_stop(void)
{
	if (S.lfd <= 0)
		return;
	assert_int_equal(write(S.wake[1], "x", 1), 1);
	assert_int_equal(pthread_join(S.th, NULL), 0);
	close(S.lfd);
	close(S.wake[0]);
	close(S.wake[1]);
	pthread_mutex_destroy(&S.mu);
	S.lfd = 0;
}

/* srv_start_keyed: serve script[i] to the first request holding markers[i] (each once), a thread per connection */
static void srv_start_keyed(const struct canned *script, const char *const *markers, size_t n)
{
	S.keyed = 1;
	S.nconn = 0;
	for (size_t i = 0; i < n; i++) {
		S.marker[i] = markers[i];
		S.used[i] = 0;
	}
	srv_start(script, n);
}

/* closed_port: a port on 127.0.0.1 where nobody listens */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- fixtures and helpers ---- */

static struct upstream_opts O;
static char base[256];
static struct upstream_result R;

static int setup(void **state)
{
	(void)state;
	memset(&S, 0, sizeof S);
	nallocs = 0;
	O = (struct upstream_opts){ base, "sk-test", 1000, 2000, 2, 150, 10, 1 << 20, 0, 0, NULL, 0 };
	upstream_result_init(&R);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	srv_stop();
	buf_free(&S.reqlog);
	upstream_result_free(&R);
	for (size_t i = 0; i < nallocs; i++)
		free(allocs[i]);
	return 0;
}

/* client: a handle for the server (or port) */
static struct upstream *client(int port)
{
	struct upstream *u;

	snprintf(base, sizeof base, "http://127.0.0.1:%d/v1/", port);
	u = upstream_new(&O);
	assert_non_null(u);
	return u;
}

/* the error object for res: checks status and code, returns the message (static copy) */
static const char *check_error_of(const struct upstream_result *res, int want_status, const char *want_code)
{
	static char msg[8192];
	int status = 0;
	json_t *e = upstream_error_json(res, &status), *err;
	const char *code;

	assert_non_null(e);
	assert_int_equal(status, want_status);
	err = json_object_get(e, "error");
	assert_true(json_is_object(err));
	code = json_string_value(json_object_get(err, "code"));
	if (want_code)
		assert_string_equal(code ? code : "(null)", want_code);
	assert_non_null(json_object_get(err, "param"));
	assert_true(json_is_string(json_object_get(err, "type")));
	snprintf(msg, sizeof msg, "%s", json_string_value(json_object_get(err, "message")));
	json_decref(e);
	return msg;
}

/* the error object for R (check_error_of) */
static const char *check_error(int want_status, const char *want_code)
{
	return check_error_of(&R, want_status, want_code);
}

/* event collector: data joined by '|'; abort_at: return 5 on that event */
struct events {
	buf_t log;
	int n, abort_at;
};

static int collect(const char *data, size_t len, void *ud)
{
	struct events *ev = ud;

	assert_int_equal(strlen(data), len);
	assert_true(len > 0);
	if ((ev->log.len && buf_puts(&ev->log, "|") < 0) || buf_append(&ev->log, data, len) < 0)
		return 99;
	return ++ev->n == ev->abort_at ? 5 : 0;
}

#define OKJSON "{\"object\":\"list\",\"data\":[]}"
#define ERRJSON(m) \
	"{\"error\":{\"message\":\"" m "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"c\"}}"
#define BODY "{\"model\":\"m\",\"stream\":true}"

/* ---- tests ---- */

static void test_request_ok(void **state)
{
	struct canned sc[2] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[1].p[0].data = resp(200, NULL, "application/json", "{\"id\":\"x\"}");
	srv_start(sc, 2);
	u = client(S.port);
	assert_string_equal(upstream_base_url(u),
			    base[strlen(base) - 1] == '/' ? mk("%.*s", (int)strlen(base) - 1, base) : base);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(R.status, 200);
	assert_int_equal(R.attempts, 1);
	assert_string_equal(R.body.data, OKJSON);
	assert_string_equal(R.content_type, "application/json");
	assert_string_equal(R.url, mk("http://127.0.0.1:%d/v1/models", S.port));
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	assert_string_equal(R.body.data, "{\"id\":\"x\"}");
	upstream_free(u);
	srv_stop();
	assert_non_null(strstr(S.reqlog.data, "GET /v1/models HTTP/1.1\r\n"));
	assert_non_null(strstr(S.reqlog.data, "POST /v1/chat/completions HTTP/1.1\r\n"));
	assert_non_null(strstr(S.reqlog.data, "Authorization: Bearer sk-test\r\n"));
	assert_non_null(strstr(S.reqlog.data, "Accept: application/json\r\n"));
	assert_non_null(strstr(S.reqlog.data, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(S.reqlog.data, "\r\n\r\n" BODY));
	assert_null(strcasestr(S.reqlog.data, "Expect:"));
}

static void test_no_api_key(void **state)
{
	struct canned sc[1] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 1);
	O.api_key = "";
	u = client(S.port);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	upstream_free(u);
	srv_stop();
	assert_null(strcasestr(S.reqlog.data, "Authorization"));
}

static void test_retry_after(void **state)
{
	struct canned sc[5] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	char date[64];
	time_t later = time(NULL) + 3600;
	struct tm tm;
	long t0;

	(void)state;
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&later, &tm));
	sc[0].p[0].data = resp(429, "Retry-After: 0.2\r\n", "application/json", ERRJSON("slow down"));
	sc[1].p[0].data = resp(503, "Retry-After: 0\r\n", "application/json", ERRJSON("busy"));
	sc[2].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[3].p[0].data = resp(503, mk("Retry-After: %s\r\n", date), "application/json", ERRJSON("busy"));
	sc[4].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 5);
	O.retry_max_wait_ms = 500;
	u = client(S.port);
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	t0 = clock_now_ms() - t0;
	assert_int_equal(R.attempts, 3);
	assert_int_equal(R.status, 200);
	assert_int_equal(R.retry_after_ms, -1);
	assert_true(t0 >= 195);
	assert_true(t0 < 2000);
	/* an hour asked for, over the longest wait we make: not retried, the wait is the client's */
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_true(clock_now_ms() - t0 < 400);
	assert_int_equal(R.attempts, 1);
	assert_int_equal(R.status, 503);
	assert_true(R.retry_after_ms > 3500000 && R.retry_after_ms <= 3600000);
	upstream_free(u);
	assert_int_equal(atomic_load(&S.requests), 4);
}

static void test_retry_after_ms(void **state)
{
	struct canned sc[2] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	long t0;

	(void)state;
	sc[0].p[0].data = resp(429, "retry-after-ms: 120\r\nRetry-After: 5\r\n", "application/json", ERRJSON("rl"));
	sc[1].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 2);
	O.retry_max_wait_ms = 3000;
	u = client(S.port);
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	t0 = clock_now_ms() - t0;
	assert_int_equal(R.attempts, 2);
	assert_true(t0 >= 115);
	assert_true(t0 < 2500); /* retry-after-ms wins over Retry-After */
	upstream_free(u);
}

static void test_400_not_retried(void **state)
{
	struct canned sc[2] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(400, NULL, "application/json", ERRJSON("bad model"));
	sc[1].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 2);
	u = client(S.port);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_int_equal(R.status, 400);
	assert_int_equal(R.attempts, 1);
	assert_string_equal(check_error(400, "c"), "bad model");
	upstream_free(u);
	assert_int_equal(atomic_load(&S.requests), 1);
}

static void test_500_given_up(void **state)
{
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	for (int i = 0; i < 4; i++)
		sc[i].p[0].data = resp(500, NULL, "application/json", ERRJSON("boom"));
	srv_start(sc, 4);
	u = client(S.port);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_int_equal(R.attempts, 3);
	assert_int_equal(R.status, 500);
	assert_non_null(strstr(R.message, mk("http://127.0.0.1:%d/v1/chat/completions", S.port)));
	assert_string_equal(check_error(500, "c"), "boom");
	upstream_free(u);
	assert_int_equal(atomic_load(&S.requests), 3);
}

static void test_connect_refused(void **state)
{
	struct upstream *u;
	int port = closed_port();
	const char *msg;

	(void)state;
	u = client(port);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_ECONNECT);
	assert_int_equal(R.attempts, 3);
	assert_int_equal(R.status, 0);
	msg = check_error(502, "upstream_unreachable");
	assert_non_null(strstr(msg, mk("could not connect to http://127.0.0.1:%d/v1/chat/completions: ", port)));
	/* the stream variant too, with no retries */
	upstream_free(u);
	O.retries = 0;
	u = client(port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, NULL, &R),
			 UPSTREAM_ECONNECT);
	assert_int_equal(R.attempts, 1);
	upstream_free(u);
}

static void test_idle_timeout(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;
	long t0;

	(void)state;
	/* headers, then nothing */
	sc[0].p[0].data = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n";
	sc[0].p[1] = (struct piece){ 3000, "0123456789" };
	/* nothing at all */
	sc[1].p[0] = (struct piece){ 3000, resp(200, NULL, "application/json", OKJSON) };
	srv_start(sc, 2);
	O.idle_timeout_ms = 200;
	u = client(S.port);
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_ETIMEOUT);
	t0 = clock_now_ms() - t0;
	assert_true(t0 >= 190);
	assert_true(t0 < 1000);
	assert_int_equal(R.attempts, 1); /* a read timeout is not retried */
	assert_non_null(strstr(check_error(504, "upstream_timeout"), "/v1/models"));
	upstream_free(u);
	srv_stop();

	/* a stream that stalls after one event */
	S.next = 0;
	sc[0].p[0].data = SSE_HEAD;
	sc[0].p[1] = (struct piece){ 0, chunk("data: {\"a\":1}\n\n") };
	sc[0].p[2] = (struct piece){ 3000, SSE_END };
	srv_start(sc, 1);
	u = client(S.port);
	t0 = clock_now_ms();
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_ETIMEOUT);
	assert_true(clock_now_ms() - t0 < 1000);
	assert_int_equal(R.events, 1);
	assert_int_equal(ev.n, 1);
	upstream_free(u);
	buf_free(&ev.log);
}

/* the watched client of test_client_gone: one end of a socketpair (the web server's side is peer) */
struct watched {
	int fd, peer;
	int calls;    /* how often gone() was asked */
	int close_ms; /* closer: close peer after this long */
	pthread_t th;
};

/* watched_gone: the upstream's gone hook: 1 when the peer closed (EOF), 0 when there is data */
static int watched_gone(void *ud)
{
	struct watched *w = ud;
	char c;

	w->calls++;
	return recv(w->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* watched_closer: the web server letting go of the request after close_ms */
static void *watched_closer(void *ud)
{
	struct watched *w = ud;

	clock_sleep_ms(w->close_ms);
	close(w->peer);
	return NULL;
}

/* watched_open: a socketpair whose peer end a thread closes after close_ms */
static void watched_open(struct watched *w, int close_ms)
{
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	*w = (struct watched){ sp[0], sp[1], 0, close_ms, 0 };
	assert_int_equal(pthread_create(&w->th, NULL, watched_closer, w), 0);
}

static void watched_close(struct watched *w)
{
	assert_int_equal(pthread_join(w->th, NULL), 0);
	close(w->fd);
}

static void test_client_gone(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct watched w;
	struct upstream *u;
	int sp[2];
	long t0;

	(void)state;
	/* the client goes away while the upstream thinks: stopped at once, not retried, 499 */
	sc[0].p[0] = (struct piece){ 3000, resp(200, NULL, "application/json", OKJSON) };
	srv_start(sc, 1);
	O.idle_timeout_ms = 5000;
	u = client(S.port);
	watched_open(&w, 100);
	upstream_begin(u, NULL);
	upstream_watch(u, w.fd, watched_gone, &w);
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_ECLIENTGONE);
	t0 = clock_now_ms() - t0;
	assert_true(t0 >= 90);
	assert_true(t0 < 1000);
	assert_int_equal(R.attempts, 1);
	assert_int_equal(w.calls, 1);
	assert_non_null(strstr(check_error(499, "client_closed_request"), "/v1/chat/completions"));
	watched_close(&w);
	upstream_free(u);
	srv_stop();

	/* ... or while it waits to retry: the retry is not made */
	S.next = 0;
	atomic_store(&S.requests, 0);
	sc[0].p[0].data = resp(503, "Retry-After: 3\r\n", "application/json", ERRJSON("busy"));
	sc[1].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 2);
	O.retry_max_wait_ms = 5000;
	u = client(S.port);
	watched_open(&w, 100);
	upstream_begin(u, NULL);
	upstream_watch(u, w.fd, watched_gone, &w);
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_ECLIENTGONE);
	assert_true(clock_now_ms() - t0 < 1000);
	assert_int_equal(R.attempts, 1);
	watched_close(&w);
	upstream_free(u);
	srv_stop();
	assert_int_equal(atomic_load(&S.requests), 1);

	/* the watched fd readable but the client still there: asked once, then no longer watched
	 * (no spinning), the answer arrives; upstream_begin ends the watch */
	S.next = 0;
	sc[0].p[0] = (struct piece){ 300, resp(200, NULL, "application/json", OKJSON) };
	sc[1].p[0] = (struct piece){ 0, resp(200, NULL, "application/json", OKJSON) };
	srv_start(sc, 2);
	u = client(S.port);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	w = (struct watched){ sp[0], sp[1], 0, 0, 0 };
	assert_int_equal(send(w.peer, "x", 1, MSG_NOSIGNAL), 1);
	upstream_begin(u, NULL);
	upstream_watch(u, w.fd, watched_gone, &w);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	assert_int_equal(w.calls, 1);
	upstream_begin(u, NULL);
	close(w.peer);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(w.calls, 1);
	close(w.fd);
	upstream_free(u);
}

static void test_stream_split(void **state)
{
	struct canned sc[1] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = SSE_HEAD;
	sc[0].p[1].data = chunk(": keep-alive comment\n\ndata: {\"a\":1}\n\nda");
	sc[0].p[2] = (struct piece){ 20, chunk("ta: {\"b\"") };
	sc[0].p[3] = (struct piece){ 20, chunk(":2}\r\n\r") }; /* CRLF split between chunks */
	sc[0].p[4] = (struct piece){ 20, chunk("\n") };
	sc[0].p[5] = (struct piece){ 20, chunk("data:\n\nevent: x\ndata: [DONE]\n\n") };
	sc[0].p[6].data = SSE_END;
	srv_start(sc, 1);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(R.status, 200);
	assert_string_equal(ev.log.data, "{\"a\":1}|{\"b\":2}|[DONE]");
	assert_int_equal(R.events, 3);
	assert_int_equal(R.body.len, 0);
	upstream_free(u);
	srv_stop();
	assert_non_null(strstr(S.reqlog.data, "Accept: text/event-stream\r\n"));
	buf_free(&ev.log);
}

static void test_stream_truncated(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;

	(void)state;
	/* a clean end of the body without [DONE] */
	sc[0].p[0].data = SSE_HEAD;
	sc[0].p[1].data = chunk("data: {\"a\":1}\n\n");
	sc[0].p[2].data = SSE_END;
	/* the connection breaks mid-stream */
	sc[1].p[0].data = SSE_HEAD;
	sc[1].p[1].data = chunk("data: {\"a\":2}\n\n");
	sc[1].p[2].data = "20\r\ndata: {\"a\"";
	sc[1].close = 1;
	srv_start(sc, 2);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_ETRUNCATED);
	assert_int_equal(R.events, 1);
	assert_string_equal(check_error(502, "upstream_truncated"),
			    mk("the stream from http://127.0.0.1:%d/v1/chat/completions ended without [DONE]", S.port));
	assert_int_equal(R.clean_end, 1); /* whole: the caller decides by whether the answer was finished */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_ETRUNCATED);
	assert_int_equal(R.clean_end, 0); /* broken */
	assert_int_equal(R.attempts, 1);  /* events were delivered: no retry */
	assert_string_equal(ev.log.data, "{\"a\":1}|{\"a\":2}");
	upstream_free(u);
	buf_free(&ev.log);
}

static void test_stream_error_body(void **state)
{
	struct canned sc[5] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(400, NULL, "application/json", ERRJSON("no such model"));
	sc[1].p[0].data = resp(503, NULL, "application/json", ERRJSON("later"));
	sc[2].p[0].data = SSE_HEAD;
	sc[2].p[1].data = chunk("data: {\"ok\":1}\n\ndata: [DONE]\n\n");
	sc[2].p[2].data = SSE_END;
	sc[3].p[0].data = resp(200, NULL, "application/json", "{\"object\":\"chat.completion\"}");
	sc[4].p[0].data = resp(200, NULL, "text/html", "<html>busy</html>");
	srv_start(sc, 5);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_EHTTP);
	assert_int_equal(R.attempts, 1);
	assert_int_equal(R.events, 0);
	assert_string_equal(R.body.data, ERRJSON("no such model"));
	assert_string_equal(check_error(400, "c"), "no such model");
	/* 503 retried (nothing was delivered yet), then the stream */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(R.attempts, 2);
	assert_string_equal(ev.log.data, "{\"ok\":1}|[DONE]");
	/* a 2xx JSON answer to a stream request (a server that does not stream): read as one event, whole */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_ETRUNCATED);
	assert_int_equal(R.clean_end, 1);
	assert_string_equal(ev.log.data, "{\"ok\":1}|[DONE]|{\"object\":\"chat.completion\"}");
	/* a 2xx that is neither an event stream nor JSON */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_EBADRESP);
	assert_string_equal(R.body.data, "<html>busy</html>");
	check_error(502, "upstream_bad_response");
	upstream_free(u);
	buf_free(&ev.log);
}

/* streams labelled otherwise than text/event-stream: an event stream as text/plain, NDJSON (cut inside a text at the end) */
static void test_stream_labels(void **state)
{
	struct canned sc[2] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data =
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n";
	sc[0].p[1].data = chunk("\ndata: {\"a\":1}\n\ndata: [DONE]\n\n");
	sc[0].p[2].data = SSE_END;
	sc[1].p[0].data = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
	sc[1].p[1].data = chunk("{\"b\":\"}{\"}\n{\"c\":");
	sc[1].p[2].data = chunk("[1]}\r\n{\"d\":");
	sc[1].p[3].data = SSE_END;
	srv_start(sc, 2);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_string_equal(ev.log.data, "{\"a\":1}|[DONE]");
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_ETRUNCATED);
	assert_string_equal(ev.log.data, "{\"a\":1}|[DONE]|{\"b\":\"}{\"}|{\"c\":[1]}");
	assert_int_equal(R.clean_end, 0); /* the last text never ended */
	upstream_free(u);
	buf_free(&ev.log);
}

static void test_keepalive(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[1].p[0].data = SSE_HEAD;
	sc[1].p[1].data = chunk("data: [DONE]\n\n");
	sc[1].p[2].data = SSE_END;
	sc[2].p[0].data = resp(500, NULL, "application/json", ERRJSON("x"));
	srv_start(sc, 3);
	O.retries = 0;
	u = client(S.port);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(upstream_request(u, "POST", "/x", "{}", 2, &R), UPSTREAM_EHTTP);
	assert_int_equal(atomic_load(&S.requests), 3);
	assert_int_equal(atomic_load(&S.accepts), 1);
	upstream_free(u);
	buf_free(&ev.log);
}

static void test_max_bytes(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;
	char big[3000];

	(void)state;
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sc[0].p[0].data = resp(200, NULL, "application/json", mk("\"%s\"", big));
	sc[1].p[0].data = resp(200, NULL, "application/json", mk("\"%.*s\"", 1022, big)); /* exactly 1024 */
	sc[2].p[0].data = SSE_HEAD;
	sc[2].p[1].data = chunk(mk("data: %.1100s\n\n", big));
	srv_start(sc, 3);
	O.max_response_bytes = 1024;
	u = client(S.port);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_ETOOBIG);
	assert_int_equal(R.attempts, 1);
	assert_non_null(strstr(check_error(502, "upstream_response_too_large"), "exceeds 1024 bytes"));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(R.body.len, 1024);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_ETOOBIG);
	assert_int_equal(ev.n, 0);
	upstream_free(u);
	buf_free(&ev.log);
}

static void test_callback_abort(void **state)
{
	struct canned sc[1] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 2 };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = SSE_HEAD;
	sc[0].p[1].data = chunk("data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\n");
	sc[0].p[2].data = SSE_END;
	srv_start(sc, 1);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R),
			 UPSTREAM_EABORTED);
	assert_int_equal(R.cb_rc, 5);
	assert_int_equal(R.events, 2);
	assert_int_equal(R.attempts, 1);
	assert_string_equal(ev.log.data, "1|2");
	upstream_free(u);
	buf_free(&ev.log);
}

/* a 404 about the URL (a base URL without its /v1: OpenAI's "Invalid URL", Azure's "Resource not
 * found", a server's own page, nothing) is the gateway's configuration, not the client's URL: 502
 * upstream_not_found with the hint and what the upstream said; a 404 about the model (OpenAI,
 * Ollama, vLLM, Azure's deployment) is the client's and passes through */
static void test_not_found(void **state)
{
	struct canned sc[8] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	const char *msg;

	(void)state;
	sc[0].p[0].data =
		resp(404, NULL, "application/json",
		     "{\"error\":{\"message\":\"Invalid URL (POST /chat/completions)\",\"type\":\"invalid_request_error\","
		     "\"param\":null,\"code\":null}}");
	sc[1].p[0].data =
		resp(404, NULL, "application/json", "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}");
	sc[2].p[0].data = resp(404, NULL, "text/plain", "404 page not found");
	sc[3].p[0].data = resp(404, NULL, "text/plain", "");
	sc[4].p[0].data = resp(
		404, NULL, "application/json",
		"{\"error\":{\"message\":\"model \\\"llama3\\\" not found, try pulling it first\",\"type\":\"api_error\"}}");
	sc[5].p[0].data = resp(
		404, NULL, "application/json",
		"{\"object\":\"error\",\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\",\"code\":404}");
	sc[6].p[0].data = resp(
		404, NULL, "application/json",
		"{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API deployment for this resource does not exist.\"}}");
	sc[7].p[0].data =
		resp(404, NULL, "application/json",
		     "{\"error\":{\"message\":\"The model `gpt-x` does not exist or you do not have access to it.\","
		     "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}");
	srv_start(sc, 8);
	O.retries = 0;
	u = client(S.port);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_int_equal(R.status, 404);
	msg = check_error(502, "upstream_not_found");
	assert_non_null(strstr(msg, mk("http://127.0.0.1:%d/v1/chat/completions answered HTTP 404", S.port)));
	assert_non_null(strstr(msg, "OPENAI_BASE_URL"));
	assert_non_null(strstr(msg, "/v1"));
	assert_non_null(strstr(msg, "MCPGW_UPSTREAM_DIALECT=azure"));
	assert_non_null(strstr(msg, "it said: Invalid URL (POST /chat/completions)"));
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_non_null(strstr(check_error(502, "upstream_not_found"), "it said: Resource not found"));
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_non_null(strstr(check_error(502, "upstream_not_found"), "it said: 404 page not found"));
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_non_null(strstr(check_error(502, "upstream_not_found"), "it said: nothing"));
	/* about the model: the upstream's own 404 */
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_string_equal(check_error(404, NULL), "model \"llama3\" not found, try pulling it first");
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_string_equal(check_error(404, NULL), "The model `x` does not exist.");
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	assert_string_equal(check_error(404, "DeploymentNotFound"),
			    "The API deployment for this resource does not exist.");
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_EHTTP);
	check_error(404, "model_not_found");
	upstream_free(u);
}

static void test_bad_bodies(void **state)
{
	struct canned sc[6] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	json_t *j;
	const char *msg;
	char logpath[] = "/tmp/test_upstream_log.XXXXXX", logged[4096], longmsg[400];
	int fd = mkstemp(logpath);
	FILE *f;
	size_t n;

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", "<html>not json</html>");
	sc[1].p[0].data = resp(502, NULL, "text/html", "<html><body>Bad Gateway</body></html>");
	sc[2].p[0].data = resp(404, NULL, "application/json", "{\"error\":\"model 'x' not found\"}");
	/* a refusal of the gateway's own key, quoting it (and a URL with a token) */
	sc[3].p[0].data = resp(401, NULL, "application/json",
			       "{\"error\":{\"message\":\"Incorrect API key provided: sk-test; see "
			       "https://h.example/keys?token=t0ken\",\"code\":\"invalid_api_key\"}}");
	sc[4].p[0].data = resp(403, NULL, "application/json", "{\"error\":\"key sk-test may not use this model\"}");
	/* the key across the point where the logged text is cut: masked before it is cut */
	snprintf(longmsg, sizeof longmsg, "{\"error\":{\"message\":\"%0195d sk-test\"}}", 0);
	sc[5].p[0].data = resp(401, NULL, "application/json", longmsg);
	srv_start(sc, 6);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_init(NULL, LOGL_WARN, logpath), 0);
	O.retries = 0;
	u = client(S.port);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_null(upstream_result_json(&R));
	assert_int_equal(R.err, UPSTREAM_EBADRESP);
	assert_non_null(strstr(check_error(502, "upstream_bad_response"), "not JSON"));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	msg = check_error(502, "upstream_bad_response");
	assert_non_null(strstr(msg, "answered HTTP 502"));
	assert_non_null(strstr(msg, "text/html"));
	assert_non_null(strstr(msg, "Bad Gateway"));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_string_equal(check_error(404, NULL), "model 'x' not found");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	/* the client gets a gateway error; the log the upstream's words, the key and the token masked */
	assert_string_equal(check_error(502, "upstream_auth_failed"), "The gateway's upstream credentials were refused");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_string_equal(check_error(502, "upstream_auth_failed"), "The gateway's upstream credentials were refused");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_int_equal(R.status, 599); /* the script ran out */
	log_init(NULL, LOGL_ERROR, NULL);
	f = fopen(logpath, "r");
	assert_non_null(f);
	n = fread(logged, 1, sizeof logged - 1, f);
	logged[n] = '\0';
	fclose(f);
	unlink(logpath);
	assert_non_null(strstr(logged, "answered HTTP 401: the gateway's credentials were refused: Incorrect API key "
				       "provided: ***; see https://h.example/keys?token=***"));
	assert_non_null(strstr(logged, "answered HTTP 403: the gateway's credentials were refused: key *** may not"));
	assert_null(strstr(logged, "sk-test"));
	assert_null(strstr(logged, "sk-t")); /* no part of it either */
	assert_non_null(strstr(logged, "0000 ***"));
	assert_null(strstr(logged, "t0ken"));
	upstream_free(u);
	/* a good body parses */
	buf_reset(&R.body);
	assert_int_equal(buf_puts(&R.body, OKJSON), 0);
	R.err = UPSTREAM_OK;
	j = upstream_result_json(&R);
	assert_non_null(j);
	assert_int_equal(R.err, UPSTREAM_OK);
	json_decref(j);
}

/* MCPGW_MAX_UPSTREAM_JSON_VALUES: an answer of more values is not parsed (a 502
 * upstream_response_too_large naming the setting); an error body of more is not read for the
 * upstream's own error (ours, with its start) */
static void test_result_values_bound(void **state)
{
	json_t *j;
	const char *msg;

	(void)state;
	R.max_values = 4;
	R.err = UPSTREAM_OK;
	assert_int_equal(buf_puts(&R.body, "{\"a\":[{},{}],\"b\":\"[{},{},{}]\"}"), 0); /* 5 values */
	assert_null(upstream_result_json(&R));
	assert_int_equal(R.err, UPSTREAM_ETOOBIG);
	msg = check_error(502, "upstream_response_too_large");
	assert_non_null(strstr(msg, "more than 4 JSON values (MCPGW_MAX_UPSTREAM_JSON_VALUES)"));
	R.max_values = 5;
	R.err = UPSTREAM_OK;
	R.message[0] = '\0';
	j = upstream_result_json(&R);
	assert_non_null(j);
	assert_int_equal(R.err, UPSTREAM_OK);
	json_decref(j);
	/* an HTTP error whose body is an OpenAI error of too many values: not parsed */
	buf_reset(&R.body);
	assert_int_equal(buf_puts(&R.body, "{\"error\":{\"message\":\"no\",\"pad\":[{},{},{},{}]}}"), 0);
	R.err = UPSTREAM_EHTTP;
	R.status = 400;
	snprintf(R.message, sizeof R.message, "it answered HTTP 400");
	assert_non_null(strstr(check_error(502, "upstream_bad_response"), "not an OpenAI error"));
	R.max_values = 100;
	assert_string_equal(check_error(400, NULL), "no");
}

/* ---- provider conventions: URL shapes, keys, what the answer tells the client ---- */

/* reqlog_has: the n-th request (0-based) of the log contains s */
static int reqlog_has(int n, const char *s)
{
	const char *p = S.reqlog.data, *end;

	for (int i = 0; p && i < n; i++)
		if ((p = strstr(p, "\n----\n")))
			p += 6;
	if (!p)
		return 0;
	end = strstr(p, "\n----\n");
	for (const char *q = p; (q = strstr(q, s)); q++)
		if (!end || q < end)
			return 1;
	return 0;
}

static void test_dialect_of(void **state)
{
	(void)state;
	assert_int_equal(upstream_dialect_of("https://my-res.openai.azure.com"), UPSTREAM_DIALECT_AZURE);
	assert_int_equal(upstream_dialect_of("https://x.OPENAI.azure.com:443/openai/v1"), UPSTREAM_DIALECT_AZURE);
	assert_int_equal(upstream_dialect_of("https://u:p@r.cognitiveservices.azure.com/"), UPSTREAM_DIALECT_AZURE);
	assert_int_equal(upstream_dialect_of("https://api.openai.com/v1"), UPSTREAM_DIALECT_OPENAI);
	assert_int_equal(upstream_dialect_of("https://openai.azure.com.evil.example/v1"), UPSTREAM_DIALECT_OPENAI);
	assert_int_equal(upstream_dialect_of("http://127.0.0.1:8080/v1?x=.openai.azure.com"), UPSTREAM_DIALECT_OPENAI);
	assert_int_equal(upstream_dialect_of(""), UPSTREAM_DIALECT_OPENAI);
}

static void test_azure_deployments(void **state)
{
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	const char *body = "{\"model\":\"my dep/1\",\"messages\":[]}";

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", "{\"id\":\"x\"}");
	sc[1].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[2].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[3].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 4);
	O.dialect = UPSTREAM_DIALECT_AZURE; /* a host of ours, so not detected */
	snprintf(base, sizeof base, "http://127.0.0.1:%d/", S.port);
	u = upstream_new(&O);
	assert_non_null(u);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", body, strlen(body), &R), UPSTREAM_OK);
	assert_string_equal(R.url, mk("http://127.0.0.1:%d/openai/deployments/my%%20dep%%2F1/chat/completions"
				      "?api-version=" UPSTREAM_AZURE_API_VERSION,
				      S.port));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(upstream_request(u, "POST", "/embeddings", "{\"model\":\"emb\",\"input\":\"x\"}", 27, &R),
			 UPSTREAM_OK);
	upstream_free(u);
	/* a base URL that names its api-version keeps it */
	snprintf(base, sizeof base, "http://127.0.0.1:%d/openai?api-version=2023-05-15", S.port);
	O.api_version = "2099-01-01";
	u = upstream_new(&O);
	assert_non_null(u);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	upstream_free(u);
	srv_stop();
	assert_true(reqlog_has(3, "POST /openai/deployments/m/chat/completions?api-version=2023-05-15 HTTP/1.1\r\n"));
	assert_true(reqlog_has(0, "POST /openai/deployments/my%20dep%2F1/chat/completions?api-version=2024-10-21 "));
	assert_true(reqlog_has(0, "\r\napi-key: sk-test\r\n"));
	assert_false(reqlog_has(0, "Authorization"));
	assert_true(reqlog_has(1, "GET /openai/models?api-version=2024-10-21 "));
	assert_true(reqlog_has(2, "POST /openai/deployments/emb/embeddings?api-version=2024-10-21 "));
}

static void test_azure_v1_and_fixed(void **state)
{
	struct canned sc[3] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	for (int i = 0; i < 3; i++)
		sc[i].p[0].data = resp(200, NULL, "application/json", "{\"id\":\"x\"}");
	srv_start(sc, 3);
	O.dialect = UPSTREAM_DIALECT_AZURE;
	/* /openai/v1: the model stays in the body, no api-version unless set */
	snprintf(base, sizeof base, "http://127.0.0.1:%d/openai/v1/", S.port);
	u = upstream_new(&O);
	assert_non_null(u);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	upstream_free(u);
	O.api_version = "preview";
	u = upstream_new(&O);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	upstream_free(u);
	/* a deployment in the base URL (the AzureOpenAI SDK's azure_deployment), bearer asked for */
	O.api_version = "2025-01-01-preview";
	O.auth = UPSTREAM_AUTH_BEARER;
	snprintf(base, sizeof base, "http://127.0.0.1:%d/openai/deployments/dep", S.port);
	u = upstream_new(&O);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY, strlen(BODY), &R), UPSTREAM_OK);
	upstream_free(u);
	srv_stop();
	assert_true(reqlog_has(0, "POST /openai/v1/chat/completions HTTP/1.1\r\n"));
	assert_true(reqlog_has(0, "\r\napi-key: sk-test\r\n"));
	assert_true(reqlog_has(1, "POST /openai/v1/chat/completions?api-version=preview HTTP/1.1\r\n"));
	assert_true(reqlog_has(2, "POST /openai/deployments/dep/chat/completions?api-version=2025-01-01-preview "));
	assert_true(reqlog_has(2, "\r\nAuthorization: Bearer sk-test\r\n"));
	assert_false(reqlog_has(2, "api-key:"));
}

static void test_base_query_and_credentials(void **state)
{
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	const char *msg;

	(void)state;
	sc[0].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[1].p[0].data = resp(502, NULL, "text/html", "<html>Bad Gateway</html>");
	srv_start(sc, 2);
	O.retries = 0;
	O.auth = UPSTREAM_AUTH_API_KEY; /* asked for, on an OpenAI-shaped upstream */
	O.api_version = "2099-01-01";   /* Azure's only: not added here */
	snprintf(base, sizeof base, "http://me:pw-SECRET@127.0.0.1:%d/v1/?key=q-SECRET&api-version=x", S.port);
	u = upstream_new(&O);
	assert_non_null(u);
	assert_string_equal(upstream_base_url(u), mk("http://127.0.0.1:%d/v1", S.port));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_string_equal(R.url, mk("http://127.0.0.1:%d/v1/models?key=***&api-version=x", S.port));
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	msg = check_error(502, "upstream_bad_response");
	assert_null(strstr(msg, "SECRET"));
	assert_non_null(strstr(msg, "key=***"));
	upstream_free(u);
	srv_stop();
	assert_true(reqlog_has(0, "GET /v1/models?key=q-SECRET&api-version=x HTTP/1.1\r\n"));
	assert_true(reqlog_has(0, "\r\nAuthorization: Basic ")); /* user:password@ is sent, as curl sends it */
	assert_true(reqlog_has(0, "\r\napi-key: sk-test\r\n"));
	assert_false(reqlog_has(0, "2099"));
}

static void test_told_client(void **state)
{
	struct canned sc[5] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;
	buf_t h = BUF_INIT;

	(void)state;
	sc[0].p[0].data =
		resp(200, "x-request-id: req_1\r\nx-ratelimit-remaining-requests: 9\r\n", "application/json", OKJSON);
	sc[1].p[0].data = resp(429, "apim-request-id: apim-2\r\nretry-after-ms: 4500\r\nRetry-After: 5\r\n",
			       "application/json", ERRJSON("rl"));
	sc[2].p[0].data = resp(503, "request-id: r3\r\napim-request-id: apim-3\r\nRetry-After: 7\r\n",
			       "application/json", ERRJSON("busy"));
	sc[3].p[0].data = resp(200, "x-request-id: bad\x01id \r\n", "application/json", OKJSON);
	srv_start(sc, 4);
	O.retry_max_wait_ms = 150;
	u = client(S.port);
	assert_int_equal(upstream_client_headers(u, 200, &h), 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_string_equal(R.request_id, "req_1");
	assert_int_equal(upstream_client_headers(u, 200, &h), 0);
	assert_string_equal(h.data, "X-Request-Id: req_1\r\n"); /* never the x-ratelimit-* headers */
	/* 4.5 s asked for, more than we wait: not retried, told to the client */
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_int_equal(R.attempts, 1);
	assert_string_equal(R.request_id, "apim-2");
	assert_int_equal(R.retry_after_ms, 4500);
	buf_reset(&h);
	assert_int_equal(upstream_client_headers(u, 429, &h), 0);
	assert_string_equal(h.data, "X-Request-Id: apim-2\r\nRetry-After: 5\r\nretry-after-ms: 4500\r\n");
	buf_reset(&h);
	assert_int_equal(upstream_client_headers(u, 400, &h), 0);
	assert_string_equal(h.data, "X-Request-Id: apim-2\r\n");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_string_equal(R.request_id, "r3"); /* request-id before apim-request-id */
	buf_reset(&h);
	assert_int_equal(upstream_client_headers(u, 503, &h), 0);
	assert_string_equal(h.data, "X-Request-Id: r3\r\nRetry-After: 7\r\n");
	/* a success forgets the wait; control bytes never reach a header */
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	buf_reset(&h);
	assert_int_equal(upstream_client_headers(u, 503, &h), 0);
	assert_string_equal(h.data, "X-Request-Id: badid\r\n");
	/* the next client request starts with nothing told */
	upstream_begin(u, NULL);
	buf_reset(&h);
	assert_int_equal(upstream_client_headers(u, 503, &h), 0);
	assert_int_equal(h.len, 0);
	upstream_free(u);
	buf_free(&h);
}

static void test_client_retry_count(void **state)
{
	struct canned sc[5] = { { { { 0, NULL } }, 0 } };
	struct upstream *u;

	(void)state;
	sc[0].p[0].data = resp(500, NULL, "application/json", ERRJSON("oops"));
	sc[1].p[0].data = resp(500, NULL, "application/json", ERRJSON("oops"));
	sc[2].p[0].data = resp(200, NULL, "application/json", OKJSON);
	sc[3].p[0].data = resp(500, NULL, "application/json", ERRJSON("oops"));
	sc[4].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start(sc, 5);
	u = client(S.port);
	/* an SDK's first attempt: the gateway retries */
	upstream_begin(u, "0");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(R.attempts, 3);
	/* the SDK retrying by itself: one attempt */
	upstream_begin(u, "1");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_EHTTP);
	assert_int_equal(R.attempts, 1);
	/* a count that is no number changes nothing */
	upstream_begin(u, "x");
	assert_int_equal(upstream_request(u, "GET", "/models", NULL, 0, &R), UPSTREAM_OK);
	assert_int_equal(R.attempts, 1);
	upstream_free(u);
	assert_int_equal(atomic_load(&S.requests), 5);
}

static void test_stream_asks_usage(void **state)
{
	struct canned sc[7] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;
	const char *asks = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
	const char *other = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_obfuscation\":false}}";

	(void)state;
	for (int i = 0; i < 7; i++) {
		sc[i].p[0].data = SSE_HEAD;
		sc[i].p[1].data = chunk("data: {\"a\":1}\n\ndata: [DONE]\n\n");
		sc[i].p[2].data = SSE_END;
	}
	sc[4].p[0].data = resp(400, NULL, "application/json",
			       "{\"error\":{\"message\":\"Unknown parameter: 'stream_options'.\",\"type\":"
			       "\"invalid_request_error\",\"param\":\"stream_options\",\"code\":\"unknown_parameter\"}}");
	sc[4].p[1].data = NULL;
	srv_start(sc, 7);
	u = client(S.port);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(upstream_stream(u, "/chat/completions", other, strlen(other), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(upstream_stream(u, "/chat/completions", asks, strlen(asks), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(upstream_stream(u, "/chat/completions", " { }", 4, collect, &ev, &R), UPSTREAM_OK);
	/* rejected: asked again as it came, and never again */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	assert_int_equal(R.status, 200);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY, strlen(BODY), collect, &ev, &R), UPSTREAM_OK);
	upstream_free(u);
	srv_stop();
	assert_true(
		reqlog_has(0, "\r\n\r\n{\"stream_options\":{\"include_usage\":true},\"model\":\"m\",\"stream\":true}"));
	assert_true(reqlog_has(1, "\"stream_options\":{\"include_obfuscation\":false,\"include_usage\":true}}"));
	assert_true(reqlog_has(2, mk("\r\n\r\n%s", asks))); /* already asks: as it came */
	assert_true(reqlog_has(3, "\r\n\r\n {\"stream_options\":{\"include_usage\":true} }"));
	assert_true(reqlog_has(4, "\"stream_options\":{\"include_usage\":true}"));
	assert_true(reqlog_has(5, "\r\n\r\n" BODY));
	assert_true(reqlog_has(6, "\r\n\r\n" BODY));
	buf_free(&ev.log);
}

/* ---- asynchronous calls (upstream_call.h) on one multi handle ---- */

/* one exchange of a test: its call, result, events and what the loop knows of it */
struct job {
	struct upstream_call *c;
	struct upstream_result res;
	struct events ev;
	const char *name; /* in the shared order log */
	enum upstream_call_state st;
	int64_t cancel_at;   /* monotonic ms at which the loop cancels it, 0: never */
	int64_t waiting_due; /* the due of its first WAITING, 0: none */
	int64_t waiting_at;  /* when it went WAITING */
	int pause_at;        /* the event after which the event callback pauses the transfer, 0: none */
	int64_t pause_ms;    /* for this long (the loop goes on reading after it) */
	int64_t resume_at;   /* monotonic ms the loop goes on reading, 0: not paused */
	int events_paused;   /* events delivered while paused */
};

static buf_t order; /* "name:data " of every event of every job, as they came */

/* job_event: collect, and note the event in the shared order */
static int job_event(const char *data, size_t len, void *ud)
{
	struct job *j = ud;

	assert_int_equal(buf_printf(&order, "%s:%s ", j->name, data), 0);
	j->events_paused += j->resume_at != 0;
	if (j->pause_at && j->ev.n + 1 == j->pause_at) {
		assert_int_equal(upstream_call_pause(j->c, 1), 0);
		j->resume_at = clock_now_ms() + j->pause_ms;
	}
	return collect(data, len, &j->ev);
}

static void job_init(struct job *j, struct upstream *u, const char *name)
{
	memset(j, 0, sizeof *j);
	j->c = upstream_call_new(u);
	assert_non_null(j->c);
	upstream_result_init(&j->res);
	j->ev = (struct events){ BUF_INIT, 0, 0 };
	j->name = name;
}

static void job_free(struct job *j)
{
	upstream_call_free(j->c);
	upstream_result_free(&j->res);
	buf_free(&j->ev.log);
}

/* job_start: start j's exchange on m */
static void job_start(struct job *j, CURLM *m, const char *path, const char *body, int stream)
{
	int64_t due;

	j->st = upstream_call_start(j->c, m, "POST", path, body, strlen(body), stream, stream ? job_event : NULL, j,
				    &j->res, &due);
	assert_int_equal(j->st, upstream_call_state(j->c));
	assert_true(due == upstream_call_due(j->c) || j->st == UPSTREAM_CALL_RUNNING);
}

/* job_track: j's state after a step that returned st with due */
static void job_track(struct job *j, enum upstream_call_state st, int64_t due)
{
	assert_int_equal(st, upstream_call_state(j->c));
	if (st == UPSTREAM_CALL_WAITING && j->st != UPSTREAM_CALL_WAITING && !j->waiting_due) {
		j->waiting_due = due;
		j->waiting_at = clock_now_ms();
	}
	if (st == UPSTREAM_CALL_DONE)
		assert_int_equal(due, INT64_MAX);
	j->st = st;
}

/* drive: the event loop: the n jobs on m until every one is done (bounded: 10 s) */
static void drive(CURLM *m, struct job *jobs, int n)
{
	int64_t give_up = clock_now_ms() + 10000;

	for (;;) {
		int running, left, active = 0;
		int64_t now, next = INT64_MAX, due;
		enum upstream_call_state st;
		CURLMsg *msg;

		assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct job *j = NULL;
			void *priv = NULL;

			assert_int_equal(msg->msg, CURLMSG_DONE);
			for (int i = 0; i < n; i++)
				if (upstream_call_easy(jobs[i].c) == msg->easy_handle)
					j = &jobs[i];
			assert_non_null(j);
			assert_int_equal(curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv), CURLE_OK);
			assert_ptr_equal(priv, j->c);
			st = upstream_call_done(j->c, msg->data.result, &due);
			job_track(j, st, due);
		}
		now = clock_now_ms();
		for (int i = 0; i < n; i++) {
			struct job *j = &jobs[i];

			if (j->resume_at && now >= j->resume_at) {
				j->resume_at = 0;
				assert_int_equal(upstream_call_pause(j->c, 0), 0);
			}
			if (j->st != UPSTREAM_CALL_DONE && j->cancel_at && now >= j->cancel_at) {
				upstream_call_cancel(j->c);
				job_track(j, upstream_call_state(j->c), upstream_call_due(j->c));
			}
			if (j->st != UPSTREAM_CALL_DONE && now >= upstream_call_due(j->c)) {
				st = upstream_call_timer(j->c, now, &due);
				job_track(j, st, due);
			}
			if (j->st == UPSTREAM_CALL_DONE)
				continue;
			active++;
			due = upstream_call_due(j->c);
			next = due < next ? due : next;
			if (j->cancel_at && j->cancel_at < next)
				next = j->cancel_at;
			if (j->resume_at && j->resume_at < next)
				next = j->resume_at;
		}
		if (!active)
			return;
		assert_true(now < give_up);
		assert_int_equal(curl_multi_poll(m, NULL, 0,
						 next - now > 1000 ? 1000
						 : next - now < 0  ? 0
								   : (int)(next - now),
						 NULL),
				 CURLM_OK);
	}
}

/* same_result: a call's result is the blocking function's for the same answer */
static void same_result(const struct upstream_result *a, const struct upstream_result *b)
{
	assert_int_equal(a->err, b->err);
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->events, b->events);
	assert_int_equal(a->cb_rc, b->cb_rc);
	assert_int_equal(a->clean_end, b->clean_end);
	assert_int_equal(a->max_values, b->max_values);
	assert_true(a->retry_after_ms == b->retry_after_ms);
	assert_string_equal(a->content_type, b->content_type);
	assert_string_equal(a->url, b->url);
	/* up to libcurl's "after N ms" of a failed connect: the same */
	{
		const char *ta = strstr(a->message, " after "), *tb = strstr(b->message, " after ");
		size_t na = ta ? (size_t)(ta - a->message) : strlen(a->message);

		assert_int_equal(na, tb ? (size_t)(tb - b->message) : strlen(b->message));
		assert_memory_equal(a->message, b->message, na);
		ta = ta ? strstr(ta, " ms: ") : NULL; /* the rest */
		tb = tb ? strstr(tb, " ms: ") : NULL;
		assert_string_equal(ta ? ta : "", tb ? tb : "");
	}
	assert_string_equal(a->request_id, b->request_id);
	assert_int_equal(a->body.len, b->body.len);
	if (a->body.len)
		assert_memory_equal(a->body.data, b->body.data, a->body.len);
}

#define BODY_A "{\"model\":\"m\",\"stream\":true,\"k\":\"A\"}"
#define BODY_B "{\"model\":\"m\",\"stream\":true,\"k\":\"B\"}"
#define BODY_C "{\"model\":\"m\",\"k\":\"C\"}"

/* stream_script: an SSE answer whose i-th event ({"NAME":i}) comes after delays[i] ms, then [DONE] */
static void stream_script(struct canned *c, const char *name, const int *delays, int n)
{
	c->p[0].data = mk("%sx-request-id: req-%s\r\n\r\n", mk("%.*s", (int)strlen(SSE_HEAD) - 2, SSE_HEAD), name);
	for (int i = 0; i < n; i++)
		c->p[1 + i] = (struct piece){ delays[i], chunk(mk("data: {\"%s\":%d}\n\n", name, i)) };
	c->p[1 + n] = (struct piece){ 0, chunk("data: [DONE]\n\n") };
	c->p[2 + n] = (struct piece){ 0, SSE_END };
}

static void test_calls_interleaved(void **state)
{
	static const int da[] = { 0, 100, 100 }, db[] = { 50, 100, 100 };
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"B\"", "\"k\":\"C\"", "\"k\":\"A\"",
				  "\"k\":\"B\"", "\"k\":\"C\"", "\"k\":\"A\"", "\"k\":\"B\"" };
	struct canned sc[8] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct job j[3];
	struct upstream *u;
	CURLM *m = curl_multi_init();
	int64_t t0;

	(void)state;
	assert_non_null(m);
	stream_script(&sc[0], "A", da, 3);
	stream_script(&sc[1], "B", db, 3);
	sc[2].p[0] = (struct piece){ 120, resp(200, "x-request-id: req-C\r\n", "application/json", "{\"id\":\"c\"}") };
	stream_script(&sc[3], "A", da, 3);
	stream_script(&sc[4], "B", db, 3);
	sc[5].p[0] = (struct piece){ 0, resp(200, "x-request-id: req-C\r\n", "application/json", "{\"id\":\"c\"}") };
	stream_script(&sc[6], "A", da, 1); /* a second round on the same calls: their connections kept */
	stream_script(&sc[7], "B", db, 1);
	srv_start_keyed(sc, markers, 8);
	u = client(S.port);
	job_init(&j[0], u, "A");
	job_init(&j[1], u, "B");
	job_init(&j[2], u, "C");
	t0 = clock_now_ms();
	job_start(&j[0], m, "/chat/completions", BODY_A, 1);
	job_start(&j[1], m, "/chat/completions", BODY_B, 1);
	job_start(&j[2], m, "/chat/completions", BODY_C, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(j[i].st, UPSTREAM_CALL_RUNNING);
	drive(m, j, 3);
	t0 = clock_now_ms() - t0;
	assert_true(t0 >= 250);
	assert_true(t0 < 540); /* at once, not one after the other (570 ms) */
	/* the two streams' events interleaved (each began before the other ended) */
	assert_non_null(strstr(order.data, "A:{\"A\":0} "));
	assert_true(strstr(order.data, "B:{\"B\":0} ") < strstr(order.data, "A:[DONE] "));
	assert_true(strstr(order.data, "A:{\"A\":0} ") < strstr(order.data, "B:[DONE] "));
	assert_string_equal(j[0].ev.log.data, "{\"A\":0}|{\"A\":1}|{\"A\":2}|[DONE]");
	assert_string_equal(j[1].ev.log.data, "{\"B\":0}|{\"B\":1}|{\"B\":2}|[DONE]");
	assert_int_equal(j[0].res.err, UPSTREAM_OK);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	assert_int_equal(j[2].res.err, UPSTREAM_OK);
	assert_string_equal(j[2].res.body.data, "{\"id\":\"c\"}");
	assert_int_equal(j[2].res.events, 0);
	/* what a call's answers told is the call's; the handle's own is untouched */
	{
		buf_t h = BUF_INIT;

		assert_int_equal(upstream_call_client_headers(j[1].c, 200, &h), 0);
		assert_string_equal(h.data, "X-Request-Id: req-B\r\n");
		buf_reset(&h);
		assert_int_equal(upstream_client_headers(u, 200, &h), 0);
		assert_true(h.len == 0);
		buf_free(&h);
	}

	/* the blocking functions give the same for the same answers */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY_A, strlen(BODY_A), collect, &ev, &R), UPSTREAM_OK);
	same_result(&j[0].res, &R);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY_B, strlen(BODY_B), collect, &ev, &R), UPSTREAM_OK);
	same_result(&j[1].res, &R);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY_C, strlen(BODY_C), &R), UPSTREAM_OK);
	same_result(&j[2].res, &R);
	assert_string_equal(ev.log.data, "{\"A\":0}|{\"A\":1}|{\"A\":2}|[DONE]|{\"B\":0}|{\"B\":1}|{\"B\":2}|[DONE]");

	/* the calls again: no new connection */
	int accepts = atomic_load(&S.accepts);

	job_start(&j[0], m, "/chat/completions", BODY_A, 1);
	job_start(&j[1], m, "/chat/completions", BODY_B, 1);
	drive(m, j, 2);
	assert_int_equal(j[0].res.err, UPSTREAM_OK);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	assert_int_equal(j[0].res.attempts, 1);
	assert_int_equal(atomic_load(&S.accepts), accepts);
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	srv_stop();
	assert_int_equal(atomic_load(&S.requests), 8);
	/* the calls ran at once: their requests in any order */
	assert_non_null(strstr(S.reqlog.data, mk("{\"stream_options\":{\"include_usage\":true},%s", BODY_A + 1)));
	assert_non_null(strstr(S.reqlog.data, mk("{\"stream_options\":{\"include_usage\":true},%s", BODY_B + 1)));
	assert_non_null(strstr(S.reqlog.data, "\r\n\r\n" BODY_C));
	assert_non_null(strstr(S.reqlog.data, "Accept: text/event-stream\r\n"));
	assert_non_null(strstr(S.reqlog.data, "Authorization: Bearer sk-test\r\n"));
	buf_free(&ev.log);
	buf_free(&order);
}

static void test_calls_retry(void **state)
{
	static const int da[] = { 0, 100, 100, 100 };
	const char *markers[] = { "\"k\":\"C\"", "\"k\":\"C\"", "\"k\":\"A\"", "\"k\":\"C\"",
				  "\"k\":\"C\"", "\"k\":\"B\"", "\"k\":\"B\"", "\"k\":\"B\"" };
	struct canned sc[8] = { { { { 0, NULL } }, 0 } };
	struct job j[3];
	struct upstream *u;
	CURLM *m = curl_multi_init();
	int64_t t0;

	(void)state;
	assert_non_null(m);
	sc[0].p[0].data = resp(503, "Retry-After: 0.2\r\n", "application/json", ERRJSON("busy"));
	sc[1].p[0].data = resp(200, NULL, "application/json", OKJSON);
	stream_script(&sc[2], "A", da, 4);
	sc[3].p[0].data = resp(503, "Retry-After: 0.2\r\n", "application/json", ERRJSON("busy"));
	sc[4].p[0].data = resp(200, NULL, "application/json", OKJSON);
	/* B: 500 three times, given up after backoff (10 ms, then 20 ms) */
	for (int i = 5; i < 8; i++)
		sc[i].p[0].data = resp(500, "x-request-id: r500\r\n", "application/json", ERRJSON("boom"));
	srv_start_keyed(sc, markers, 8);
	O.retry_max_wait_ms = 500;
	u = client(S.port);
	job_init(&j[0], u, "C");
	job_init(&j[1], u, "A");
	job_init(&j[2], u, "B");
	t0 = clock_now_ms();
	job_start(&j[0], m, "/chat/completions", BODY_C, 0);
	job_start(&j[1], m, "/chat/completions", BODY_A, 1);
	job_start(&j[2], m, "/chat/completions", BODY_B, 0);
	drive(m, j, 3);
	/* the retry waited 200 ms while the stream went on */
	assert_int_equal(j[0].res.err, UPSTREAM_OK);
	assert_int_equal(j[0].res.attempts, 2);
	assert_true(j[0].waiting_due - j[0].waiting_at >= 150 && j[0].waiting_due - j[0].waiting_at <= 200);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	assert_int_equal(j[1].ev.n, 5);
	assert_true(clock_now_ms() - t0 < 600);
	assert_int_equal(j[2].res.err, UPSTREAM_EHTTP);
	assert_int_equal(j[2].res.attempts, 3);
	assert_true(j[2].waiting_due - j[2].waiting_at <= 10);
	assert_string_equal(check_error_of(&j[2].res, 500, "c"), "boom");
	/* the blocking functions' results */
	t0 = clock_now_ms();
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY_C, strlen(BODY_C), &R), UPSTREAM_OK);
	assert_true(clock_now_ms() - t0 >= 195);
	same_result(&j[0].res, &R);
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	buf_free(&order);
}

static void test_calls_idle_timeout(void **state)
{
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"C\"", "\"k\":\"B\"",
				  "\"k\":\"A\"", "\"k\":\"C\"", "\"k\":\"B\"" };
	struct canned sc[6] = { { { { 0, NULL } }, 0 } };
	struct events ev = { BUF_INIT, 0, 0 };
	struct job j[3];
	struct upstream *u;
	CURLM *m = curl_multi_init();
	int64_t t0;

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 6; i += 3) {
		/* A: a stream that stalls after one event; C: headers, then nothing; B: [DONE], then not the end */
		sc[i].p[0].data = SSE_HEAD;
		sc[i].p[1] = (struct piece){ 0, chunk("data: {\"a\":1}\n\n") };
		sc[i].p[2] = (struct piece){ 3000, SSE_END };
		sc[i + 1].p[0].data = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n";
		sc[i + 1].p[1] = (struct piece){ 3000, "0123456789" };
		sc[i + 2].p[0].data = SSE_HEAD;
		sc[i + 2].p[1] = (struct piece){ 0, chunk("data: {\"b\":1}\n\ndata: [DONE]\n\n") };
		sc[i + 2].p[2] = (struct piece){ 3000, SSE_END };
	}
	srv_start_keyed(sc, markers, 6);
	O.idle_timeout_ms = 200;
	u = client(S.port);
	job_init(&j[0], u, "A");
	job_init(&j[1], u, "C");
	job_init(&j[2], u, "B");
	t0 = clock_now_ms();
	job_start(&j[0], m, "/chat/completions", BODY_A, 1);
	job_start(&j[1], m, "/chat/completions", BODY_C, 0);
	job_start(&j[2], m, "/chat/completions", BODY_B, 1);
	drive(m, j, 3);
	t0 = clock_now_ms() - t0;
	assert_true(t0 >= 190);
	assert_true(t0 < 1000);
	assert_int_equal(j[0].res.err, UPSTREAM_ETIMEOUT);
	assert_int_equal(j[0].res.attempts, 1);
	assert_int_equal(j[0].ev.n, 1);
	assert_int_equal(j[1].res.err, UPSTREAM_ETIMEOUT);
	assert_non_null(strstr(check_error_of(&j[1].res, 504, "upstream_timeout"), "/v1/chat/completions"));
	assert_int_equal(j[2].res.err, UPSTREAM_OK); /* [DONE] came: the missing end does no harm */
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY_A, strlen(BODY_A), collect, &ev, &R),
			 UPSTREAM_ETIMEOUT);
	same_result(&j[0].res, &R);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY_C, strlen(BODY_C), &R), UPSTREAM_ETIMEOUT);
	same_result(&j[1].res, &R);
	assert_int_equal(upstream_stream(u, "/chat/completions", BODY_B, strlen(BODY_B), collect, &ev, &R), UPSTREAM_OK);
	same_result(&j[2].res, &R);
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	buf_free(&ev.log);
	buf_free(&order);
}

static void test_calls_cancel(void **state)
{
	static const int da[] = { 0, 100, 100 };
	const char *markers[] = { "\"k\":\"C\"", "\"k\":\"B\"", "\"k\":\"A\"", "\"k\":\"B\"" };
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	struct job j[3];
	struct upstream *u;
	CURLM *m = curl_multi_init();
	int64_t t0;

	(void)state;
	assert_non_null(m);
	sc[0].p[0] = (struct piece){ 3000, resp(200, NULL, "application/json", OKJSON) };       /* C thinks long */
	sc[1].p[0].data = resp(503, "Retry-After: 3\r\n", "application/json", ERRJSON("busy")); /* B waits 3 s */
	stream_script(&sc[2], "A", da, 3);
	sc[3].p[0].data = resp(200, NULL, "application/json", OKJSON);
	srv_start_keyed(sc, markers, 4);
	O.idle_timeout_ms = 5000;
	O.retry_max_wait_ms = 5000;
	u = client(S.port);
	job_init(&j[0], u, "C");
	job_init(&j[1], u, "B");
	job_init(&j[2], u, "A");
	t0 = clock_now_ms();
	job_start(&j[0], m, "/chat/completions", BODY_C, 0);
	job_start(&j[1], m, "/chat/completions", BODY_B, 0);
	job_start(&j[2], m, "/chat/completions", BODY_A, 1);
	j[0].cancel_at = t0 + 100;
	j[1].cancel_at = t0 + 150;
	drive(m, j, 3);
	assert_true(clock_now_ms() - t0 < 1000);
	assert_int_equal(j[0].res.err, UPSTREAM_ECLIENTGONE);
	assert_int_equal(j[0].res.attempts, 1);
	assert_non_null(strstr(check_error_of(&j[0].res, 499, "client_closed_request"), "was stopped"));
	assert_int_equal(j[1].res.err, UPSTREAM_ECLIENTGONE);
	assert_int_equal(j[1].res.attempts, 1);
	assert_int_equal(j[1].res.status, 503);
	assert_non_null(strstr(j[1].res.message, "was not retried"));
	assert_true(j[1].waiting_due - j[1].waiting_at >= 2990);
	assert_int_equal(j[2].res.err, UPSTREAM_OK); /* the others go on */
	assert_int_equal(j[2].ev.n, 4);
	/* cancelling what is done changes nothing; a cancelled call starts again */
	upstream_call_cancel(j[2].c);
	assert_int_equal(j[2].res.err, UPSTREAM_OK);
	j[1].cancel_at = 0;
	job_start(&j[1], m, "/chat/completions", BODY_B, 0);
	drive(m, &j[1], 1);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	assert_string_equal(j[1].res.body.data, OKJSON);
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	buf_free(&order);
}

static void test_calls_stream_options(void **state)
{
	static const int da[] = { 0 };
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"A\"", "\"k\":\"B\"", "\"k\":\"A\"", "\"k\":\"A\"" };
	struct canned sc[5] = { { { { 0, NULL } }, 0 } };
	const char *refusal =
		resp(400, NULL, "application/json",
		     "{\"error\":{\"message\":\"Unknown parameter: 'stream_options'.\",\"type\":"
		     "\"invalid_request_error\",\"param\":\"stream_options\",\"code\":\"unknown_parameter\"}}");
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u, *u2;
	struct job j[2];
	CURLM *m = curl_multi_init();

	(void)state;
	assert_non_null(m);
	sc[0].p[0].data = refusal;
	stream_script(&sc[1], "A", da, 1);
	stream_script(&sc[2], "B", da, 1);
	sc[3].p[0].data = refusal;
	stream_script(&sc[4], "A", da, 1);
	srv_start_keyed(sc, markers, 5);
	u = client(S.port);
	job_init(&j[0], u, "A");
	job_init(&j[1], u, "B");
	job_start(&j[0], m, "/chat/completions", BODY_A, 1);
	drive(m, j, 1);
	assert_int_equal(j[0].res.err, UPSTREAM_OK);
	assert_int_equal(j[0].res.attempts, 1);
	assert_int_equal(j[0].ev.n, 2);
	/* the upstream's refusal holds for every call of u */
	job_start(&j[1], m, "/chat/completions", BODY_B, 1);
	drive(m, &j[1], 1);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	/* a fresh handle, blocking: the same */
	u2 = client(S.port);
	assert_int_equal(upstream_stream(u2, "/chat/completions", BODY_A, strlen(BODY_A), collect, &ev, &R), UPSTREAM_OK);
	same_result(&j[0].res, &R);
	for (int i = 0; i < 2; i++)
		job_free(&j[i]);
	upstream_free(u);
	upstream_free(u2);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	srv_stop();
	assert_true(reqlog_has(0, "\"stream_options\":{\"include_usage\":true}"));
	assert_true(reqlog_has(1, "\r\n\r\n" BODY_A));
	assert_true(reqlog_has(2, "\r\n\r\n" BODY_B));
	assert_true(reqlog_has(3, "\"stream_options\":{\"include_usage\":true}"));
	assert_true(reqlog_has(4, "\r\n\r\n" BODY_A));
	buf_free(&ev.log);
	buf_free(&order);
}

/* upstream_call_trim: a running call is not kept (-1, left running); a done one is (0), and its next
 * client's exchange, after an event larger than the parser bytes a kept call keeps, reads its
 * answer as a fresh call does, on the same easy handle */
static void test_call_kept(void **state)
{
	static const int da[] = { 0, 100 };
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"B\"", "\"k\":\"B\"", "\"k\":\"B\"" };
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	char *big = malloc(40001);
	struct upstream *u;
	struct job j, fresh;
	CURL *easy;
	CURLM *m = curl_multi_init();

	(void)state;
	assert_non_null(m);
	assert_non_null(big);
	memset(big, 'x', 40000);
	big[40000] = '\0';
	stream_script(&sc[0], "A", da, 2);
	/* B: one event of 40 KB (the parser grows past what a kept call keeps), then a small one */
	sc[1].p[0].data = mk("%sx-request-id: req-B\r\n\r\n", mk("%.*s", (int)strlen(SSE_HEAD) - 2, SSE_HEAD));
	sc[1].p[1] = (struct piece){ 0, chunk(mk("data: {\"B\":\"%s\"}\n\n", big)) };
	sc[1].p[2] = (struct piece){ 0, chunk("data: {\"B\":1}\n\n") };
	sc[1].p[3] = (struct piece){ 0, chunk("data: [DONE]\n\n") };
	sc[1].p[4] = (struct piece){ 0, SSE_END };
	sc[2] = sc[3] = sc[1];
	srv_start_keyed(sc, markers, 4);
	u = client(S.port);
	job_init(&j, u, "A");
	easy = upstream_call_easy(j.c);
	job_start(&j, m, "/chat/completions", BODY_A, 1);
	assert_int_equal(j.st, UPSTREAM_CALL_RUNNING);
	assert_int_equal(upstream_call_trim(j.c), -1); /* running: not kept, not touched */
	assert_int_equal(upstream_call_state(j.c), UPSTREAM_CALL_RUNNING);
	drive(m, &j, 1);
	assert_int_equal(j.res.err, UPSTREAM_OK);
	assert_int_equal(j.ev.n, 3); /* its events and [DONE] */
	assert_int_equal(upstream_call_trim(j.c), 0);
	/* the next client: B twice, on the kept call (with a large event in between trims) */
	for (int round = 0; round < 2; round++) {
		upstream_result_free(&j.res);
		upstream_result_init(&j.res);
		buf_free(&j.ev.log);
		j.ev = (struct events){ BUF_INIT, 0, 0 };
		upstream_call_begin(j.c, NULL);
		job_start(&j, m, "/chat/completions", BODY_B, 1);
		drive(m, &j, 1);
		assert_int_equal(j.res.err, UPSTREAM_OK);
		assert_int_equal(j.ev.n, 3); /* its events and [DONE] */
		assert_ptr_equal(upstream_call_easy(j.c), easy);
		assert_int_equal(upstream_call_trim(j.c), 0);
		if (round == 0) { /* a fresh call's reading of the same answer: the same */
			job_init(&fresh, u, "F");
			job_start(&fresh, m, "/chat/completions", BODY_B, 1);
			drive(m, &fresh, 1);
			assert_int_equal(fresh.ev.n, j.ev.n);
			assert_int_equal(fresh.ev.log.len, j.ev.log.len);
			assert_memory_equal(fresh.ev.log.data, j.ev.log.data, j.ev.log.len);
			same_result(&fresh.res, &j.res);
			job_free(&fresh);
		}
	}
	job_free(&j);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	srv_stop();
	free(big);
	buf_free(&order);
}

/* upstream_result_init sets every field as UPSTREAM_RESULT_INIT does (it writes them one by one, so
 * that a result allocated per run costs only the pages it writes: the two must stay alike) */
static void test_result_init_is_the_macro(void **state)
{
	static const struct upstream_result want = UPSTREAM_RESULT_INIT;
	struct upstream_result *res = malloc(sizeof *res);

	(void)state;
	assert_non_null(res);
	memset(res, 0xa5, sizeof *res);
	upstream_result_init(res);
	assert_int_equal(res->err, want.err);
	assert_int_equal(res->status, want.status);
	assert_null(res->body.data);
	assert_int_equal(res->body.len, 0);
	assert_int_equal(res->body.cap, 0);
	assert_string_equal(res->content_type, want.content_type);
	assert_string_equal(res->url, want.url);
	assert_string_equal(res->message, want.message);
	assert_int_equal(res->attempts, want.attempts);
	assert_int_equal(res->events, want.events);
	assert_int_equal(res->cb_rc, want.cb_rc);
	assert_string_equal(res->request_id, want.request_id);
	assert_int_equal(res->retry_after_ms, want.retry_after_ms);
	assert_int_equal(res->clean_end, want.clean_end);
	assert_int_equal(res->max_values, want.max_values);
	free(res);
}

static void test_calls_at_once_failures(void **state)
{
	struct upstream_result res = UPSTREAM_RESULT_INIT;
	struct upstream_call *c;
	struct upstream *u;
	CURLM *m = curl_multi_init();
	char *path = malloc(UPSTREAM_URL_MAX + 1);
	int64_t due = 0;

	(void)state;
	assert_non_null(m);
	assert_non_null(path);
	u = client(closed_port());
	c = upstream_call_new(u);
	assert_non_null(c);
	assert_int_equal(upstream_call_state(c), UPSTREAM_CALL_DONE);
	assert_true(upstream_call_due(c) == INT64_MAX);
	/* a URL too long: done at once, as the blocking function */
	path[0] = '/';
	memset(path + 1, 'p', UPSTREAM_URL_MAX - 1);
	path[UPSTREAM_URL_MAX] = '\0';
	assert_int_equal(upstream_call_start(c, m, "GET", path, "", 0, 0, NULL, NULL, &res, &due), UPSTREAM_CALL_DONE);
	assert_true(due == INT64_MAX);
	assert_int_equal(upstream_request(u, "GET", path, NULL, 0, &R), UPSTREAM_ENOMEM);
	same_result(&res, &R);
	/* nobody listens: retried (backoff) and given up, as the blocking function */
	struct job j;

	job_init(&j, u, "X");
	upstream_call_begin(j.c, "0");
	job_start(&j, m, "/chat/completions", BODY_C, 0);
	drive(m, &j, 1);
	assert_int_equal(j.res.err, UPSTREAM_ECONNECT);
	assert_int_equal(j.res.attempts, 3);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", BODY_C, strlen(BODY_C), &R), UPSTREAM_ECONNECT);
	same_result(&j.res, &R);
	/* the client retrying by itself: one attempt */
	upstream_call_begin(j.c, "2");
	job_start(&j, m, "/chat/completions", BODY_C, 0);
	drive(m, &j, 1);
	assert_int_equal(j.res.attempts, 1);
	job_free(&j);
	upstream_call_free(c);
	upstream_call_free(NULL);
	upstream_result_free(&res);
	upstream_free(u);
	free(path);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
}

static void test_calls_azure_and_secrets(void **state)
{
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"B\"", "\"k\":\"A\"", "\"k\":\"B\"" };
	const char *a = "{\"model\":\"my dep\",\"stream\":true,\"k\":\"A\"}";
	const char *b = "{\"model\":\"other\",\"k\":\"B\"}";
	struct canned sc[4] = { { { { 0, NULL } }, 0 } };
	static const int da[] = { 0 };
	struct events ev = { BUF_INIT, 0, 0 };
	struct upstream *u;
	struct job j[2];
	CURLM *m = curl_multi_init();

	(void)state;
	assert_non_null(m);
	for (int i = 0; i < 4; i += 2) {
		stream_script(&sc[i], "A", da, 1);
		/* a refusal quoting the gateway's key */
		sc[i + 1].p[0].data = resp(401, NULL, "application/json", ERRJSON("Incorrect API key provided: sk-test"));
	}
	srv_start_keyed(sc, markers, 4);
	O.dialect = UPSTREAM_DIALECT_AZURE;
	snprintf(base, sizeof base, "http://127.0.0.1:%d/", S.port);
	u = upstream_new(&O);
	assert_non_null(u);
	job_init(&j[0], u, "A");
	job_init(&j[1], u, "B");
	job_start(&j[0], m, "/chat/completions", a, 1);
	job_start(&j[1], m, "/chat/completions", b, 0);
	drive(m, j, 2);
	assert_int_equal(j[0].res.err, UPSTREAM_OK);
	assert_string_equal(j[0].res.url, mk("http://127.0.0.1:%d/openai/deployments/my%%20dep/chat/completions"
					     "?api-version=" UPSTREAM_AZURE_API_VERSION,
					     S.port));
	assert_int_equal(j[1].res.err, UPSTREAM_EHTTP);
	assert_int_equal(j[1].res.attempts, 1);
	assert_null(strstr(j[1].res.body.data, "sk-test"));
	check_error_of(&j[1].res, 502, "upstream_auth_failed");
	assert_int_equal(upstream_stream(u, "/chat/completions", a, strlen(a), collect, &ev, &R), UPSTREAM_OK);
	same_result(&j[0].res, &R);
	assert_int_equal(upstream_request(u, "POST", "/chat/completions", b, strlen(b), &R), UPSTREAM_EHTTP);
	same_result(&j[1].res, &R);
	for (int i = 0; i < 2; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	srv_stop();
	/* the calls ran at once: their requests in any order */
	assert_non_null(
		strstr(S.reqlog.data, "POST /openai/deployments/my%20dep/chat/completions?api-version=2024-10-21 "));
	assert_non_null(strstr(S.reqlog.data, "POST /openai/deployments/other/chat/completions?api-version=2024-10-21 "));
	assert_non_null(strstr(S.reqlog.data, "\r\napi-key: sk-test\r\n"));
	assert_null(strcasestr(S.reqlog.data, "Authorization"));
	buf_free(&ev.log);
	buf_free(&order);
}

static void test_calls_paused(void **state)
{
	static const int da[] = { 0, 50, 50 };
	const char *markers[] = { "\"k\":\"A\"", "\"k\":\"B\"" };
	struct canned sc[2] = { { { { 0, NULL } }, 0 } };
	struct job j[2];
	struct upstream *u;
	CURLM *m = curl_multi_init();
	int64_t t0;

	(void)state;
	assert_non_null(m);
	stream_script(&sc[0], "A", da, 3);
	stream_script(&sc[1], "B", da, 3);
	srv_start_keyed(sc, markers, 2);
	O.idle_timeout_ms = 200;
	u = client(S.port);
	job_init(&j[0], u, "A");
	job_init(&j[1], u, "B");
	/* A's reader is slow: paused after its first event for twice the idle timeout */
	j[0].pause_at = 1;
	j[0].pause_ms = 400;
	t0 = clock_now_ms();
	job_start(&j[0], m, "/chat/completions", BODY_A, 1);
	job_start(&j[1], m, "/chat/completions", BODY_B, 1);
	assert_int_equal(upstream_call_pause(j[1].c, 0), 0); /* not paused: nothing to do */
	drive(m, j, 2);
	assert_true(clock_now_ms() - t0 >= 400);
	assert_int_equal(j[0].res.err, UPSTREAM_OK); /* no idle timeout while paused */
	assert_int_equal(j[0].ev.n, 4);
	assert_int_equal(j[0].events_paused, 0);
	assert_int_equal(j[1].res.err, UPSTREAM_OK);
	assert_int_equal(j[1].ev.n, 4);
	/* B went on meanwhile: all of it before A's second event */
	assert_true(strstr(order.data, "B:[DONE] ") < strstr(order.data, "A:{\"A\":1} "));
	assert_int_equal(upstream_call_pause(j[0].c, 1), 0); /* done: nothing to do */
	for (int i = 0; i < 2; i++)
		job_free(&j[i]);
	upstream_free(u);
	assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
	buf_free(&order);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_api_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_ms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_400_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_500_given_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_error_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dialect_of, setup, teardown),
		cmocka_unit_test_setup_teardown(test_azure_deployments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_azure_v1_and_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_query_and_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_told_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_retry_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_asks_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_result_values_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_stream_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_at_once_failures, setup, teardown),
		cmocka_unit_test(test_result_init_is_the_macro),
		cmocka_unit_test_setup_teardown(test_calls_azure_and_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_paused, setup, teardown),
	};
	int rc;

	log_init("test_upstream", LOGL_ERROR, NULL);
	if (upstream_global_init() < 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	upstream_global_cleanup();
	return rc;
}
