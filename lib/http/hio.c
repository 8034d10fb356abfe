/* hio.c: one HTTP request/response over FastCGI (libfcgi FCGX) or plain CGI (environ/stdin/stdout). */
#include "http/hio.h"

#include <errno.h>
#include <fastcgi.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Unread request body bytes hio_finish discards, after the response has
 * ended, before closing a FastCGI connection (closing with unread input can
 * reset it under the response, or fail the web server's next write to it);
 * past this the connection is just closed. */
#define HIO_DRAIN_MAX ((size_t)64 << 20) /* drain_max until set (MCPGW_MAX_DRAIN_BYTES) */
#define HIO_IO_CHUNK 65536

/* Plain CGI: the web server's SIGTERM (lighttpd's cgi.limits "tcp-fin-propagate" when the client
 * closed, or the request ended without us) is the client going away; the handler sets the flag
 * and writes to a pipe (nonblocking) whose read end hio_client_fd gives to poll. One process per
 * request: process-wide state. */
static volatile sig_atomic_t cgi_term;
static int cgi_term_pipe[2] = { -1, -1 };

/* on_cgi_term: SIGTERM in plain CGI: the client is gone; wake whoever polls */
static void on_cgi_term(int sig)
{
	int saved = errno;

	(void)sig;
	cgi_term = 1;
	if (write(cgi_term_pipe[1], "t", 1) < 0) { /* full: one byte is enough to wake */
	}
	errno = saved;
}

/* hio_cgi_watch_term: the SIGTERM watch of plain CGI; without it (no pipe) SIGTERM keeps its old
 * meaning (libfcgi's flag) and the client is not watched */
static void hio_cgi_watch_term(void)
{
	struct sigaction sa;

	if (pipe2(cgi_term_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		cgi_term_pipe[0] = cgi_term_pipe[1] = -1;
		return;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_cgi_term;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0) {
		close(cgi_term_pipe[0]);
		close(cgi_term_pipe[1]);
		cgi_term_pipe[0] = cgi_term_pipe[1] = -1;
	}
}

int hio_init(struct hio *h)
{
	memset(h, 0, sizeof *h);
	h->drain_max = HIO_DRAIN_MAX;
	h->cgi = FCGX_IsCGI();
	if (h->cgi) {
		hio_cgi_watch_term();
		return 0;
	}
	if (FCGX_Init() != 0)
		return -1;
	if (FCGX_InitRequest(&h->req, 0, 0) != 0)
		return -1;
	return 0;
}

/* FastCGI: discard what is left of the request body until the web server
 * closes the connection or ends the body, at most h->drain_max bytes. */
static void hio_drain(struct hio *h)
{
	char scratch[HIO_IO_CHUNK];
	size_t total = 0;
	int n;

	while (total < h->drain_max && (n = FCGX_GetStr(scratch, (int)sizeof scratch, h->req.in)) > 0)
		total += (size_t)n;
}

/* A request that got no response at all still gets a well-formed 500. */
static void hio_fallback_response(struct hio *h)
{
	static const char body[] =
		"{\"error\":{\"message\":\"The server produced no response.\",\"type\":\"server_error\","
		"\"param\":null,\"code\":\"internal_error\"}}\n";

	(void)hio_send_raw_json(h, 500, body, sizeof body - 2);
}

/* CGI: read what is left of the request body (by CONTENT_LENGTH, at most
 * h->drain_max bytes). A web server that gives the script one socket for
 * stdin and stdout (Apache mod_cgid) gets a reset when the script exits with
 * unread input, and the response is cut. */
static void hio_cgi_drain(struct hio *h)
{
	const char *cl = getenv("CONTENT_LENGTH");
	char scratch[HIO_IO_CHUNK], *end;
	unsigned long long len;
	size_t left;

	if (!cl || *cl < '0' || *cl > '9')
		return;
	errno = 0;
	len = strtoull(cl, &end, 10);
	if (*end || errno || len <= h->consumed)
		return;
	left = len - h->consumed > h->drain_max ? h->drain_max : (size_t)(len - h->consumed);
	while (left > 0) {
		size_t r = fread(scratch, 1, left < sizeof scratch ? left : sizeof scratch, stdin);

		if (r == 0)
			break;
		left -= r;
		h->consumed += r;
	}
}

void hio_finish(struct hio *h)
{
	if (h->cgi) {
		if (h->served && !h->status_sent)
			hio_fallback_response(h);
		(void)fflush(stdout);
		if (h->served)
			hio_cgi_drain(h);
		return;
	}
	if (!h->req.in)
		return; /* no request in progress */
	if (!h->status_sent)
		hio_fallback_response(h);
	if (h->req.keepConnection) {
		/* FCGI_KEEP_CONN: the connection carries the web server's next request,
		 * so this one's body is read to its end before the answer ends (a web
		 * server that has its answer may stop sending the body and keep the
		 * connection open: a drain after the answer would wait for it) */
		hio_drain(h);
	} else if (FCGX_FClose(h->req.err) == 0 && FCGX_FClose(h->req.out) == 0) {
		/* The answer is ended (its last FCGI_STDOUT record and FCGI_END_REQUEST;
		 * stderr first: the stream closed last writes FCGI_END_REQUEST) before
		 * the drain, not after it: a web server that streams the body (Apache
		 * mod_proxy_fcgi, a chunked upload over MCPGW_MAX_BODY_BYTES) reads the
		 * answer between its writes, stops sending and closes, which ends the
		 * drain at once. Answered only after the drain, it would push up to
		 * drain_max more bytes, then fail its next write on the closed
		 * socket (Apache: 503). A web server that is gone is not drained. */
		hio_drain(h);
	}
	/* Everything is read and written: close without libfcgi's wait for the
	 * web server to close first (FASTCGI-NOTES item 1). */
	(void)FCGX_Detach(&h->req);
	FCGX_Finish_r(&h->req);
}

int hio_hand_over(struct hio *from, struct hio *to)
{
	int listen_sock, flags;

	if (from->cgi || !from->req.in)
		return -1;
	/* the body's end (its empty FCGI_STDIN record, perhaps already in libfcgi's buffer, where no
	 * poll sees it) read here, where libfcgi's streams still work: the taker may then end the
	 * answer and close at once without failing the web server's write of that record */
	hio_drain(from);
	*to = *from;
	listen_sock = from->req.listen_sock;
	flags = from->req.flags;
	if (FCGX_InitRequest(&from->req, listen_sock, flags) != 0) { /* only checks its arguments */
		*from = *to;
		return -1;
	}
	from->status_sent = 0;
	from->status = 0;
	from->bytes_out = 0;
	from->more_headers = NULL;
	from->more_headers_ud = NULL;
	from->added = NULL; /* to's now */
	from->out = NULL;
	from->out_ud = NULL;
	return 0;
}

void hio_set_output(struct hio *h, hio_out_fn fn, void *ud)
{
	h->out = fn;
	h->out_ud = ud;
}

void hio_on_headers(struct hio *h, hio_headers_fn fn, void *ud)
{
	h->more_headers = fn;
	h->more_headers_ud = ud;
}

int hio_add_headers(struct hio *h, const char *lines)
{
	size_t used = h->added ? strlen(h->added) : 0, n = strlen(lines);
	char *p;

	if (n >= HIO_ADDED_MAX - used)
		return -1;
	if (!(p = realloc(h->added, used + n + 1)))
		return -1;
	memcpy(p + used, lines, n + 1);
	h->added = p;
	return 0;
}

void hio_release(struct hio *h)
{
	free(h->added);
	h->added = NULL;
}

int hio_accept(struct hio *h)
{
	h->more_headers = NULL;
	h->more_headers_ud = NULL;
	hio_release(h);
	if (h->cgi) {
		if (h->served) {
			hio_finish(h);
			return 0;
		}
		h->served = 1;
		h->status_sent = 0;
		h->status = 0;
		h->bytes_out = 0;
		return 1;
	}
	hio_finish(h);
	h->status_sent = 0;
	h->status = 0;
	h->bytes_out = 0;
	if (FCGX_Accept_r(&h->req) == 0)
		return 1;
	/* libfcgi's SIGTERM/SIGUSR1 handlers make accept fail: that is a shutdown */
	return errno == EINTR ? 0 : -1;
}

void hio_done(struct hio *h)
{
	hio_finish(h);
	hio_release(h);
	if (!h->cgi)
		FCGX_Free(&h->req, 1);
}

int hio_client_fd(const struct hio *h)
{
	return h->cgi ? cgi_term_pipe[0] : h->req.ipcFd;
}

int hio_client_gone(struct hio *h)
{
	unsigned char head[FCGI_HEADER_LEN];

	if (h->cgi)
		return cgi_term;

	for (int round = 0; round < 2; round++) {
		struct pollfd p = { .fd = hio_client_fd(h), .events = POLLIN };
		ssize_t n;

		if (p.fd < 0 || poll(&p, 1, 0) <= 0)
			return 0;
		if (p.revents & (POLLHUP | POLLERR))
			return 1;
		n = recv(p.fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return 1;
		if (n >= 2 && head[1] == FCGI_ABORT_REQUEST)
			return 1;
		/* the empty record that ends the body, not read yet when the body came whole by
		 * CONTENT_LENGTH: read (libfcgi sees the end of the body), then look again */
		if (round > 0 || n < (ssize_t)sizeof head || head[1] != FCGI_STDIN || FCGX_GetChar(h->req.in) != EOF)
			return 0;
	}
	return 0;
}

const char *hio_param(struct hio *h, const char *name)
{
	if (h->cgi)
		return getenv(name);
	return h->req.envp ? FCGX_GetParam(name, h->req.envp) : NULL;
}

const char *hio_path(struct hio *h, char *out, size_t outlen)
{
	const char *uri = hio_param(h, "REQUEST_URI");
	size_t n;

	if (!outlen)
		return NULL;
	if (!uri || !*uri) {
		/* no REQUEST_URI (some CGI hosts): SCRIPT_NAME + PATH_INFO */
		const char *sn = hio_param(h, "SCRIPT_NAME"), *pi = hio_param(h, "PATH_INFO");
		int w = snprintf(out, outlen, "%s%s", sn ? sn : "", pi ? pi : "");

		if (w < 0 || (size_t)w >= outlen)
			out[0] = '\0';
		return out;
	}
	n = strcspn(uri, "?#");
	if (n >= outlen)
		n = 0; /* too long to be one of ours: an empty path routes to 404 */
	memcpy(out, uri, n);
	out[n] = '\0';
	return out;
}

/* parse CONTENT_LENGTH strictly: digits only, no sign, no spaces. 0 or -1 */
static int hio_parse_length(const char *s, size_t *out)
{
	size_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > ((size_t)-1 - 9) / 10)
			return -2; /* overflow: certainly over any limit */
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* read up to n bytes of body into p; returns bytes read (short at EOF) */
static size_t hio_read_some(struct hio *h, char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t want = n - got > HIO_IO_CHUNK ? HIO_IO_CHUNK : n - got;
		size_t r;

		if (h->cgi) {
			r = fread(p + got, 1, want, stdin);
			h->consumed += r;
		} else {
			int k = FCGX_GetStr(p + got, (int)want, h->req.in);
			r = k > 0 ? (size_t)k : 0;
		}
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

/* hio_read_to_end: a body without a length, until its end, at most max bytes:
 * 0, 413 (over max) or 500 (ENOMEM) */
static int hio_read_to_end(struct hio *h, size_t max, buf_t *out)
{
	for (;;) {
		size_t room = max - out->len + 1 > HIO_IO_CHUNK ? HIO_IO_CHUNK : max - out->len + 1, got;

		if (buf_reserve(out, room) < 0)
			return 500;
		got = hio_read_some(h, out->data + out->len, room);
		out->len += got;
		out->data[out->len] = '\0';
		if (out->len > max)
			return 413;
		if (got < room)
			return 0; /* the end */
	}
}

/* Returns 0, or an HTTP status: 413 over max, 400 bad CONTENT_LENGTH or a
 * short body, 500 ENOMEM. A chunked body without CONTENT_LENGTH (the web
 * server de-chunks it and ends the stream after it: mod_cgid) is read to its
 * end. A request with no CONTENT_LENGTH and no Transfer-Encoding has an empty body. */
int hio_read_body(struct hio *h, size_t max, buf_t *out)
{
	const char *cl = hio_param(h, "CONTENT_LENGTH");
	size_t len = 0, got;
	int rc;

	buf_reset(out);
	if (!cl || !*cl) {
		const char *te = hio_param(h, "HTTP_TRANSFER_ENCODING");

		if (te && *te)
			return hio_read_to_end(h, max, out);
		return buf_reserve(out, 0) < 0 ? 500 : 0;
	}
	rc = hio_parse_length(cl, &len);
	if (rc == -2)
		return 413;
	if (rc < 0)
		return 400;
	if (len > max)
		return 413;
	if (buf_reserve(out, len) < 0)
		return 500;
	got = hio_read_some(h, out->data, len);
	out->len = got;
	out->data[got] = '\0';
	return got == len ? 0 : 400;
}

int hio_write(struct hio *h, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		size_t chunk = n > INT_MAX / 2 ? INT_MAX / 2 : n;

		if (h->out) {
			if (h->out(h->out_ud, s, chunk) < 0)
				return -1;
		} else if (h->cgi) {
			if (fwrite(s, 1, chunk, stdout) != chunk)
				return -1;
		} else if (FCGX_PutStr(s, (int)chunk, h->req.out) != (int)chunk) {
			return -1;
		}
		s += chunk;
		n -= chunk;
		h->bytes_out += chunk;
	}
	return 0;
}

int hio_flush(struct hio *h)
{
	if (h->out)
		return 0; /* the output's owner sends */
	if (h->cgi)
		return fflush(stdout) == 0 ? 0 : -1;
	return FCGX_FFlush(h->req.out) == 0 ? 0 : -1;
}

int hio_headers(struct hio *h, int status, const char *content_type, const char *extra)
{
	buf_t b = BUF_INIT;
	size_t had_out;
	int rc = -1;

	if (h->status_sent)
		return -1;
	if (status < 100 || status > 999)
		status = 500;
	if (buf_printf(&b, "Status: %d %s\r\nContent-Type: %s\r\n%s", status, hio_reason(status),
		       content_type ? content_type : "application/json", extra ? extra : "") < 0 ||
	    buf_puts(&b, h->added ? h->added : "") < 0)
		goto out;
	if (h->more_headers) {
		size_t had = b.len;

		if (h->more_headers(h->more_headers_ud, status, &b) < 0)
			b.len = had, b.data[had] = '\0';
	}
	if (buf_puts(&b, "\r\n") < 0)
		goto out;
	h->status_sent = 1;
	h->status = status;
	had_out = h->bytes_out;
	rc = hio_write(h, b.data, b.len);
	h->bytes_out = had_out; /* the body's bytes only */
out:
	buf_free(&b);
	return rc;
}

/* hio_send_raw_json_extra: headers with extra lines, body, "\n" */
static int hio_send_raw_json_extra(struct hio *h, int status, const char *body, size_t len, const char *extra)
{
	if (hio_headers(h, status, "application/json", extra) < 0 || hio_write(h, body, len) < 0 ||
	    hio_write(h, "\n", 1) < 0)
		return -1;
	return 0;
}

int hio_send_raw_json(struct hio *h, int status, const char *body, size_t len)
{
	return hio_send_raw_json_extra(h, status, body, len, NULL);
}

int hio_send_json_extra(struct hio *h, int status, const json_t *body, const char *extra)
{
	static const char oom[] =
		"{\"error\":{\"message\":\"Out of memory while writing the response.\",\"type\":\"server_error\","
		"\"param\":null,\"code\":\"internal_error\"}}";
	char *s = json_dumps(body, JSON_COMPACT);
	int rc;

	if (!s)
		return hio_send_raw_json(h, 500, oom, sizeof oom - 1);
	rc = hio_send_raw_json_extra(h, status, s, strlen(s), extra);
	free(s);
	return rc;
}

int hio_send_json(struct hio *h, int status, const json_t *body)
{
	return hio_send_json_extra(h, status, body, NULL);
}

const char *hio_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Unknown";
	}
}

static int hio_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hio_url_decode(const char *src, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (; *src; src++) {
		int c = (unsigned char)*src;

		if (c == '%') {
			int hi = hio_hex(src[1]), lo = hi < 0 ? -1 : hio_hex(src[2]);

			if (lo < 0 || (c = hi * 16 + lo) == 0)
				return -1;
			src += 2;
		}
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}
