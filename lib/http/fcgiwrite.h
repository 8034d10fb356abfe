/* fcgiwrite.h: a FastCGI responder's answer (FCGI_STDOUT, then FCGI_END_REQUEST) written without ever blocking: a bounded buffer per request, records framed and sent by us as the socket takes them. */
#ifndef MCPGW_FCGIWRITE_H
#define MCPGW_FCGIWRITE_H

#include <fcgiapp.h>
#include <stddef.h>

/*
 * Why not libfcgi's writer: FCGX_PutStr/FCGX_FFlush end in write_it_all
 * (fcgiapp.c), a loop of write(2) on the blocking FastCGI socket, which takes
 * EAGAIN for a fatal error. One slow client would stall an event loop that
 * serves many. Here libfcgi still accepts the request and reads its
 * parameters and body (FCGX_Accept_r, FCGX_GetStr); from fcgiwrite_begin on,
 * the answer's records are ours:
 *
 *   fcgiwrite_put     appends to the request's buffer (never writes)
 *   fcgiwrite_flush   sends what the socket takes now (sendmsg with
 *                     MSG_DONTWAIT | MSG_NOSIGNAL: the fd's own mode is not
 *                     changed, so libfcgi reads a kept connection as before)
 *   fcgiwrite_finish  the empty FCGI_STDOUT record and FCGI_END_REQUEST, then
 *                     hands the FCGX_Request back to libfcgi: its streams and
 *                     parameters are freed (FCGX_Free) without libfcgi writing
 *                     anything; the connection is closed, or kept for the
 *                     next FCGX_Accept_r on the same FCGX_Request when the
 *                     web server asked for FCGI_KEEP_CONN
 *
 * An event loop watches fcgiwrite_fd for writable while flush or finish says
 * FCGIWRITE_WANT_WRITE, and for readable the whole time (the web server
 * closing, or FCGI_ABORT_REQUEST, while the answer waits on something else):
 * then fcgiwrite_flush (or fcgiwrite_client_gone) tells. Nothing here depends
 * on a loop; a thread may use it too.
 */

/* FastCGI 1.0, section 3.3: a record's contentLength is 16 bits. */
#define FCGIWRITE_RECORD_MAX 65535

/* The answer's bytes a request holds unsent, by default (fcgiwrite_begin with
 * max 0): past it fcgiwrite_put says FCGIWRITE_PUT_FULL and the producer
 * pauses (the loop driver: curl_easy_pause on the run's upstream) until
 * fcgiwrite_flush has made room. */
#define FCGIWRITE_OUT_MAX ((size_t)256 << 10)

/* What fcgiwrite_put did. */
enum fcgiwrite_put {
	FCGIWRITE_PUT_OK = 0,  /* appended whole */
	FCGIWRITE_PUT_FULL,    /* nothing appended: it does not fit in fcgiwrite_room now; pause the
				 * producer, flush when writable, offer the same bytes again */
	FCGIWRITE_PUT_TOO_BIG, /* nothing appended: longer than the limit itself, it never fits: put it in parts */
	FCGIWRITE_PUT_CLOSED,  /* nothing appended: the client is gone or the answer was ended */
	FCGIWRITE_PUT_NOMEM,   /* nothing appended: the buffer could not grow */
};

/* What fcgiwrite_flush and fcgiwrite_finish say. */
enum fcgiwrite_state {
	FCGIWRITE_DONE = 0,   /* everything put so far is written (finish: and the request handed back) */
	FCGIWRITE_WANT_WRITE, /* the socket is full: call again once fcgiwrite_fd is writable */
	FCGIWRITE_GONE,       /* the web server's connection is gone (EPIPE, ECONNRESET, closed or shut
			       * for writing, FCGI_ABORT_REQUEST, a record that should not come): nothing
			       * more will be written (finish: the request was handed back, its connection closed) */
};

/* One request's answer. Fields are the module's own: read them through the functions. */
struct fcgiwrite {
	FCGX_Request *req; /* borrowed from fcgiwrite_begin until the request is handed back */
	int fd;            /* req->ipcFd */
	int request_id;
	int keep_conn; /* FCGI_KEEP_CONN: the connection is kept when the answer ended whole */
	size_t max;    /* the limit of unsent bytes */
	char *buf;     /* unsent answer bytes are buf[head, head + len) */
	size_t cap, head, len;
	/* the record being sent: header, clen bytes at buf[head], plen zero bytes; sent so far */
	unsigned char rec_hdr[8];
	size_t rec_clen, rec_plen, rec_sent;
	int rec_open;
	/* the end records (empty FCGI_STDOUT, FCGI_END_REQUEST) and how much of them is sent */
	unsigned char trailer[24];
	size_t trail_sent;
	int ending;                   /* fcgiwrite_finish was called: the trailer follows the buffer */
	int gone;                     /* the connection failed: nothing more is written */
	int released;                 /* the request was handed back */
	int stdin_end;                /* the empty FCGI_STDIN record was read (by fcgiwrite_client_gone,
				       * or by libfcgi before fcgiwrite_drop_input) */
	int in_error;                 /* libfcgi had met an error reading the request (fcgiwrite_drop_input) */
	unsigned long long bytes_out; /* stdout content bytes written so far */
	size_t send_max;              /* the most bytes one write is given (0: no bound) */
	int watched;                  /* the caller learns of the socket readable itself (fcgiwrite_set_watched) */
};

/* fcgiwrite_begin: take over the answer of req, accepted by FCGX_Accept_r
 * (borrowed: it must live until the request is handed back). Its body must
 * have been read (with libfcgi, before this call) as far as the request goes:
 * an empty FCGI_STDIN record still on the socket is read here later, any other
 * stdin record makes the connection FCGIWRITE_GONE. Nothing must have been
 * written through req->out or req->err. max: the most unsent bytes held (0:
 * FCGIWRITE_OUT_MAX). No memory is taken until the first put. Returns 0, or -1
 * when req has no request in progress (w is then zeroed, nothing to finish). */
int fcgiwrite_begin(struct fcgiwrite *w, FCGX_Request *req, size_t max);

/* fcgiwrite_drop_input: free libfcgi's input stream of w's request (its
 * 8 KB read buffer; a request waiting on its answer for seconds holds it for
 * nothing) once nothing will read the body through it any more: what it had
 * seen (the body's end, an error such as an FCGI_ABORT_REQUEST among the
 * body's records) is kept for fcgiwrite_body_ended and fcgiwrite_client_gone,
 * which read the socket themselves from then on. Bytes libfcgi had read
 * ahead past the body's end are dropped with it (libfcgi would not have
 * parsed them either). req->in is NULL afterwards (FCGX_Free takes it). */
void fcgiwrite_drop_input(struct fcgiwrite *w);

/* fcgiwrite_put: append n bytes of the answer (the CGI header lines, then the
 * body) to w's buffer, all or nothing; writes nothing. Returns enum
 * fcgiwrite_put: OK, or FULL when they do not fit in fcgiwrite_room now (the
 * caller pauses its producer), TOO_BIG when n is over the limit itself,
 * CLOSED when the client is gone or finish was called, NOMEM. */
enum fcgiwrite_put fcgiwrite_put(struct fcgiwrite *w, const void *p, size_t n);

/* fcgiwrite_room: how many more bytes fcgiwrite_put takes now (0 once the
 * client is gone or the answer ended). */
size_t fcgiwrite_room(const struct fcgiwrite *w);

/* fcgiwrite_set_send_max: give one write (sendmsg) at most n bytes (0, the
 * default: what is there, up to a whole record and the end records). Small
 * writes end anywhere in a record's header, content or padding, which a
 * socket's own short writes do only by chance: for tests. */
void fcgiwrite_set_send_max(struct fcgiwrite *w, size_t n);

/* fcgiwrite_set_watched: on 1, the caller watches fcgiwrite_fd for
 * readable itself (an event loop) and calls fcgiwrite_client_gone when it
 * is: fcgiwrite_flush and fcgiwrite_finish then send without first looking
 * at the socket (a recv(2) each, for nothing while no byte came). A record
 * the web server sends between the loop's last look and a write is seen at
 * the loop's next look, or by the write itself failing (EPIPE). 0 (the
 * default): every flush looks first. */
void fcgiwrite_set_watched(struct fcgiwrite *w, int on);

/* fcgiwrite_pending: the answer's bytes (record headers and padding not
 * counted) put but not written yet. */
size_t fcgiwrite_pending(const struct fcgiwrite *w);

/* fcgiwrite_flush: write what the socket takes now, in FCGI_STDOUT records
 * of at most FCGIWRITE_RECORD_MAX content bytes padded to 8 (FastCGI 1.0,
 * sections 3.3 and 5.3), never blocking; first looks whether the web server
 * let go of the request (fcgiwrite_client_gone; not when the caller watches,
 * fcgiwrite_set_watched). Returns DONE (nothing left
 * unsent), WANT_WRITE (wait for fcgiwrite_fd writable, then call again) or
 * GONE (the client is gone: stop producing; fcgiwrite_finish still hands the
 * request back). After fcgiwrite_finish it sends the end records as well. */
enum fcgiwrite_state fcgiwrite_flush(struct fcgiwrite *w);

/* fcgiwrite_client_gone: did the web server let go of the request? Reads the
 * socket without blocking (MSG_PEEK, then reads only an empty FCGI_STDIN
 * record): end of file, a reset, or an FCGI_ABORT_REQUEST record (FastCGI
 * 1.0, section 5.4) is gone, and so is any other record (none may come before
 * our FCGI_END_REQUEST: the web servers do not multiplex); an empty FCGI_STDIN
 * record (the end of a body libfcgi did not reach) is read and passed over;
 * nothing to read is not gone. An error libfcgi met reading the body (it takes
 * an FCGI_ABORT_REQUEST among the body's records for one) is gone too. What
 * libfcgi read ahead into its own buffer and did not look at is not seen. 1
 * gone (from then on for good), 0 not. */
int fcgiwrite_client_gone(struct fcgiwrite *w);

/* fcgiwrite_body_ended: has the request's body been read to its end (the
 * empty FCGI_STDIN record, by libfcgi reading the body or by
 * fcgiwrite_client_gone)? A web server may send that record after the
 * body, apart (Apache mod_proxy_fcgi: "sending empty stdin"); an answer
 * ended and its connection closed before it came makes that write fail
 * (EPIPE: Apache answers 503), so a loop whose run ended at once waits
 * for it (readable) a little before fcgiwrite_finish. 1 or 0 (0 also once
 * the request was handed back). */
int fcgiwrite_body_ended(const struct fcgiwrite *w);

/* fcgiwrite_fd: the FastCGI connection, for a loop to watch (writable while
 * WANT_WRITE; readable for the client going away). Borrowed; -1 once the
 * request is handed back. */
int fcgiwrite_fd(const struct fcgiwrite *w);

/* fcgiwrite_finish: end the answer: what is still buffered, an empty
 * FCGI_STDOUT record and FCGI_END_REQUEST with app_status and
 * FCGI_REQUEST_COMPLETE (FastCGI 1.0, section 5.5), written as the socket
 * takes them. DONE: all written and the request handed back; WANT_WRITE:
 * call fcgiwrite_finish again once fcgiwrite_fd is writable (app_status is
 * taken from the first call); GONE: handed back with its connection closed.
 * Handed back means: libfcgi's streams and parameters are freed
 * (FCGX_Free: nothing more is written, FCGX_Finish_r would write a second
 * end), w's buffer is freed, and the FCGX_Request is ready for the next
 * FCGX_Accept_r (or FCGX_Free) with its connection closed, or, on a
 * connection the web server keeps (FCGI_KEEP_CONN) that ended whole, left
 * open for the web server's next request on it (FCGX_Accept_r then reads it:
 * in a loop, once the fd is readable and not at its end: on a closed one
 * libfcgi would go on to block in accept). A struct hio whose request was
 * handed back sees none in progress: hio_finish/hio_accept write nothing. */
enum fcgiwrite_state fcgiwrite_finish(struct fcgiwrite *w, int app_status);

/* fcgiwrite_abandon: hand the request back without ending it (the client is
 * gone, or the process shuts down): its connection is closed (the web server
 * sees the answer cut), libfcgi's and w's memory freed. Harmless after finish
 * returned DONE or GONE, and on a zeroed w. */
void fcgiwrite_abandon(struct fcgiwrite *w);

#endif
