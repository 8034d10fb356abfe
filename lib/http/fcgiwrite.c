/* fcgiwrite.c: a FastCGI answer written without blocking: FCGI_STDOUT records framed from a bounded buffer and sent with MSG_DONTWAIT, then FCGI_END_REQUEST; the request handed back to libfcgi without it writing. */
#include "http/fcgiwrite.h"

#include <errno.h>
#include <fastcgi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* the first allocation of a request's buffer (then doubled up to its limit) */
#define FCGIWRITE_BUF_FIRST 4096

/* fcgiwrite_header: a record header (FastCGI 1.0, section 3.3) into h[8] */
static void fcgiwrite_header(unsigned char *h, int type, int id, size_t clen, size_t plen)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)((unsigned)id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)plen;
	h[7] = 0;
}

int fcgiwrite_begin(struct fcgiwrite *w, FCGX_Request *req, size_t max)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
	if (!req || !req->in || req->ipcFd < 0)
		return -1;
	w->req = req;
	w->fd = req->ipcFd;
	w->request_id = req->requestId;
	w->keep_conn = req->keepConnection;
	w->max = max ? max : FCGIWRITE_OUT_MAX;
	return 0;
}

size_t fcgiwrite_room(const struct fcgiwrite *w)
{
	if (!w->req || w->gone || w->ending || w->released)
		return 0;
	return w->max - w->len;
}

void fcgiwrite_set_send_max(struct fcgiwrite *w, size_t n)
{
	w->send_max = n;
}

void fcgiwrite_set_watched(struct fcgiwrite *w, int on)
{
	w->watched = on != 0;
}

size_t fcgiwrite_pending(const struct fcgiwrite *w)
{
	return w->len;
}

/* fcgiwrite_make_room: buf holds n more bytes after the unsent ones; 0 or -1 (ENOMEM) */
static int fcgiwrite_make_room(struct fcgiwrite *w, size_t n)
{
	size_t need = w->len + n, cap;
	char *p;

	if (w->head + need <= w->cap)
		return 0;
	if (need <= w->cap) { /* room at the front: move the unsent bytes there (an open record's content is at head) */
		memmove(w->buf, w->buf + w->head, w->len);
		w->head = 0;
		return 0;
	}
	cap = w->cap ? w->cap : FCGIWRITE_BUF_FIRST;
	while (cap < need)
		cap = cap > w->max / 2 ? w->max : cap * 2;
	if (cap > w->max)
		cap = w->max;
	if (w->head > 0) {
		memmove(w->buf, w->buf + w->head, w->len);
		w->head = 0;
	}
	p = realloc(w->buf, cap);
	if (!p)
		return -1;
	w->buf = p;
	w->cap = cap;
	return 0;
}

enum fcgiwrite_put fcgiwrite_put(struct fcgiwrite *w, const void *p, size_t n)
{
	if (!w->req || w->gone || w->ending || w->released)
		return FCGIWRITE_PUT_CLOSED;
	if (n == 0)
		return FCGIWRITE_PUT_OK;
	if (n > w->max)
		return FCGIWRITE_PUT_TOO_BIG;
	if (n > w->max - w->len)
		return FCGIWRITE_PUT_FULL;
	if (fcgiwrite_make_room(w, n) < 0)
		return FCGIWRITE_PUT_NOMEM;
	memcpy(w->buf + w->head + w->len, p, n);
	w->len += n;
	return FCGIWRITE_PUT_OK;
}

int fcgiwrite_fd(const struct fcgiwrite *w)
{
	return w->released ? -1 : w->fd;
}

void fcgiwrite_drop_input(struct fcgiwrite *w)
{
	if (!w->req || w->released || !w->req->in)
		return;
	if (FCGX_HasSeenEOF(w->req->in) == EOF)
		w->stdin_end = 1;
	if (FCGX_GetError(w->req->in) != 0)
		w->in_error = 1;
	FCGX_FreeStream(&w->req->in);
}

int fcgiwrite_body_ended(const struct fcgiwrite *w)
{
	if (!w->req || w->released)
		return 0;
	return w->stdin_end || (w->req->in && FCGX_HasSeenEOF(w->req->in) == EOF);
}

int fcgiwrite_client_gone(struct fcgiwrite *w)
{
	unsigned char h[FCGI_HEADER_LEN + 255];

	if (w->gone)
		return 1;
	if (!w->req || w->released)
		return 0;
	if (w->in_error || (w->req->in && FCGX_GetError(w->req->in) != 0)) {
		/* libfcgi met an error reading the request: an FCGI_ABORT_REQUEST among the body's
		 * records is one (a record of another type than FCGI_STDIN: FCGX_PROTOCOL_ERROR) */
		w->gone = 1;
		return 1;
	}
	for (;;) {
		ssize_t n = recv(w->fd, h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
		size_t clen, plen, id;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n <= 0)
			break; /* end of file (closed or shut for writing) or an error (ECONNRESET) */
		if (n < FCGI_HEADER_LEN)
			return 0; /* the rest of the header is on its way */
		id = ((size_t)h[2] << 8) | h[3];
		clen = ((size_t)h[4] << 8) | h[5];
		plen = h[6];
		if (h[0] != FCGI_VERSION_1 || id != (size_t)w->request_id)
			break;
		if (h[1] != FCGI_STDIN || clen != 0)
			break; /* FCGI_ABORT_REQUEST (section 5.4), or a record that should not come now */
		/* the empty FCGI_STDIN record that ends the body, libfcgi not having read it:
		 * read it and its padding (all here: peeked), then look again */
		if ((size_t)n < FCGI_HEADER_LEN + plen)
			return 0;
		if (recv(w->fd, h, FCGI_HEADER_LEN + plen, MSG_DONTWAIT) != (ssize_t)(FCGI_HEADER_LEN + plen))
			break;
		w->stdin_end = 1;
	}
	w->gone = 1;
	return 1;
}

/* fcgiwrite_frame: open the next FCGI_STDOUT record: as many buffered bytes as one record holds, padded to 8 */
static void fcgiwrite_frame(struct fcgiwrite *w)
{
	w->rec_clen = w->len > FCGIWRITE_RECORD_MAX ? FCGIWRITE_RECORD_MAX : w->len;
	w->rec_plen = (8 - w->rec_clen % 8) % 8;
	fcgiwrite_header(w->rec_hdr, FCGI_STDOUT, w->request_id, w->rec_clen, w->rec_plen);
	w->rec_sent = 0;
	w->rec_open = 1;
}

/* fcgiwrite_span: the part of [from, to) inside [lo, hi), as an iovec of base (the bytes at lo) */
static int fcgiwrite_span(struct iovec *v, const void *base, size_t lo, size_t hi, size_t from)
{
	if (from >= hi || lo == hi)
		return 0;
	if (from < lo)
		from = lo;
	v->iov_base = (char *)base + (from - lo);
	v->iov_len = hi - from;
	return 1;
}

/* fcgiwrite_advance: n bytes of the open record (and then of the trailer) were sent */
static void fcgiwrite_advance(struct fcgiwrite *w, size_t n)
{
	if (w->rec_open) {
		size_t total = FCGI_HEADER_LEN + w->rec_clen + w->rec_plen,
		       take = n < total - w->rec_sent ? n : total - w->rec_sent;
		size_t c0 = w->rec_sent, c1 = w->rec_sent + take, lo = FCGI_HEADER_LEN,
		       hi = FCGI_HEADER_LEN + w->rec_clen;
		size_t content = (c1 < hi ? (c1 > lo ? c1 : lo) : hi) - (c0 < hi ? (c0 > lo ? c0 : lo) : hi);

		w->head += content;
		w->len -= content;
		w->bytes_out += content;
		if (w->len == 0)
			w->head = 0;
		w->rec_sent = c1;
		if (c1 == total)
			w->rec_open = 0;
		n -= take;
	}
	w->trail_sent += n;
}

/* fcgiwrite_rec_done: the open record's content bytes already sent */
static size_t fcgiwrite_rec_done(const struct fcgiwrite *w)
{
	size_t s = w->rec_sent > FCGI_HEADER_LEN ? w->rec_sent - FCGI_HEADER_LEN : 0;

	return s < w->rec_clen ? s : w->rec_clen;
}

/* fcgiwrite_cut: the iovecs v[0, nv) shortened to max bytes in all; returns how many are left */
static int fcgiwrite_cut(struct iovec *v, int nv, size_t max)
{
	for (int i = 0; i < nv; i++) {
		if (v[i].iov_len >= max) {
			v[i].iov_len = max;
			return i + 1;
		}
		max -= v[i].iov_len;
	}
	return nv;
}

/* fcgiwrite_send: send the open record's rest (and the trailer behind the last record when
 * ending): 1 some sent, 0 the socket is full, -1 gone (w->gone set) */
static int fcgiwrite_send(struct fcgiwrite *w)
{
	static const unsigned char zeros[8];
	struct iovec v[4];
	struct msghdr m;
	size_t left = 0; /* the open record's content bytes still to send (at buf[head]) */
	int nv = 0;
	ssize_t n;

	if (w->rec_open) {
		size_t c = w->rec_clen, s = w->rec_sent, done = fcgiwrite_rec_done(w);

		left = c - done;
		nv += fcgiwrite_span(v + nv, w->rec_hdr, 0, FCGI_HEADER_LEN, s);
		nv += fcgiwrite_span(v + nv, w->buf + w->head - done, FCGI_HEADER_LEN, FCGI_HEADER_LEN + c, s);
		nv += fcgiwrite_span(v + nv, zeros, FCGI_HEADER_LEN + c, FCGI_HEADER_LEN + c + w->rec_plen, s);
	}
	if (w->ending && w->len == left) /* nothing after this record: the end records go with it */
		nv += fcgiwrite_span(v + nv, w->trailer, 0, sizeof w->trailer, w->trail_sent);
	if (nv == 0)
		return 1;
	if (w->send_max > 0)
		nv = fcgiwrite_cut(v, nv, w->send_max);
	memset(&m, 0, sizeof m);
	m.msg_iov = v;
	m.msg_iovlen = (size_t)nv;
	do
		n = sendmsg(w->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		w->gone = 1; /* EPIPE, ECONNRESET, ...: the web server is gone */
		return -1;
	}
	fcgiwrite_advance(w, (size_t)n);
	return 1;
}

enum fcgiwrite_state fcgiwrite_flush(struct fcgiwrite *w)
{
	if (!w->req || w->released)
		return w->gone ? FCGIWRITE_GONE : FCGIWRITE_DONE;
	if (w->watched ? w->gone : fcgiwrite_client_gone(w))
		return FCGIWRITE_GONE;
	for (;;) {
		int rc;

		if (!w->rec_open && w->len > 0)
			fcgiwrite_frame(w);
		if (!w->rec_open && (!w->ending || w->trail_sent == sizeof w->trailer))
			return FCGIWRITE_DONE;
		rc = fcgiwrite_send(w);
		if (rc < 0)
			return FCGIWRITE_GONE;
		if (rc == 0)
			return FCGIWRITE_WANT_WRITE;
	}
}

/* fcgiwrite_release: hand the request back to libfcgi: its streams and parameters freed
 * without a write; the connection kept (keep) or closed at once (FCGX_Detach: no shutdown and
 * wait for the web server to close, which libfcgi's close would do for up to 2 s) */
static void fcgiwrite_release(struct fcgiwrite *w, int keep)
{
	if (!keep)
		(void)FCGX_Detach(w->req);
	FCGX_Free(w->req, !keep);
	free(w->buf);
	w->buf = NULL;
	w->cap = w->head = w->len = 0;
	w->rec_open = 0;
	w->released = 1;
}

enum fcgiwrite_state fcgiwrite_finish(struct fcgiwrite *w, int app_status)
{
	enum fcgiwrite_state st;

	if (!w->req || w->released)
		return w->gone ? FCGIWRITE_GONE : FCGIWRITE_DONE;
	if (!w->ending) {
		unsigned char *e = w->trailer + FCGI_HEADER_LEN;
		unsigned s = (unsigned)app_status;

		fcgiwrite_header(w->trailer, FCGI_STDOUT, w->request_id, 0, 0);
		fcgiwrite_header(e, FCGI_END_REQUEST, w->request_id, 8, 0);
		e[8] = (unsigned char)(s >> 24);
		e[9] = (unsigned char)(s >> 16);
		e[10] = (unsigned char)(s >> 8);
		e[11] = (unsigned char)s;
		e[12] = FCGI_REQUEST_COMPLETE;
		e[13] = e[14] = e[15] = 0;
		w->ending = 1;
	}
	st = fcgiwrite_flush(w);
	if (st == FCGIWRITE_WANT_WRITE)
		return st;
	fcgiwrite_release(w, st == FCGIWRITE_DONE && w->keep_conn);
	return st;
}

void fcgiwrite_abandon(struct fcgiwrite *w)
{
	if (!w->req || w->released)
		return;
	w->gone = 1;
	fcgiwrite_release(w, 0);
}
