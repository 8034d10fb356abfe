/* hio.h: one HTTP request/response over FastCGI (libfcgi) or plain CGI, same code for both. */
#ifndef MCPGW_HIO_H
#define MCPGW_HIO_H

#include <fcgiapp.h>
#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

/* hio_headers_fn: more header lines ("Name: value\r\n") for an answer with
 * status, appended to out; 0 or -1 (the answer then goes without them). */
typedef int (*hio_headers_fn)(void *ud, int status, buf_t *out);

/* hio_out_fn: where the answer's bytes go instead of libfcgi's stream
 * (hio_set_output): n bytes at p; 0, or -1 (the client is gone). */
typedef int (*hio_out_fn)(void *ud, const void *p, size_t n);

/* The header lines every answer of one request carries (hio_add_headers: CORS), at most. */
#define HIO_ADDED_MAX 2048

struct hio {
	int cgi;                     /* 1: plain CGI (one request from environ/stdin/stdout) */
	int served;                  /* CGI: the one request was handed out */
	size_t drain_max;            /* most body bytes hio_finish discards (MCPGW_MAX_DRAIN_BYTES; hio_init: 64 MiB) */
	FCGX_Request req;            /* FastCGI mode */
	int status_sent;             /* headers written */
	int status;                  /* the status those headers sent (0: none yet) */
	size_t bytes_out;            /* response body bytes written (the headers not counted) */
	size_t consumed;             /* CGI: request body bytes read from stdin */
	hio_headers_fn more_headers; /* this request's (hio_on_headers), NULL: none */
	void *more_headers_ud;
	char *added;    /* this request's (hio_add_headers), NULL none: malloc'd only for a request
				    * that has some (CORS), not a fixed array in every request in flight */
	hio_out_fn out; /* hio_set_output: the answer's bytes go here, NULL: libfcgi / stdout */
	void *out_ud;
};

/* hio_init: decide FastCGI vs CGI (FCGX_IsCGI) and initialise. 0 or -1. */
int hio_init(struct hio *h);
/* hio_accept: wait for the next request. 1 = got one, 0 = no more (CGI done,
 * or shutdown), -1 = error. Finishes the previous request first. */
int hio_accept(struct hio *h);
/* hio_finish: end the current request (also done by hio_accept / hio_done):
 * a request that got no answer gets a 500; the answer is ended (FastCGI:
 * FCGI_END_REQUEST) before what is left of the body is read and discarded
 * (until the web server closes or the body ends, at most drain_max bytes), so a web
 * server still streaming the body reads the answer and stops; on a
 * connection the web server keeps (FCGI_KEEP_CONN) the body is discarded
 * first. */
void hio_finish(struct hio *h);
void hio_done(struct hio *h);

/* hio_hand_over: move the FastCGI request in progress on from (accepted,
 * its body read as far as the caller wants it) to to, so that another thread
 * or an event loop answers it while from accepts the next one. to gets
 * everything of from's request: the FCGX_Request (its connection, libfcgi's
 * streams and parameters), what was answered (status_sent, status,
 * bytes_out), the headers added and the hooks; from gets a fresh
 * FCGX_Request on the same listening socket (FCGX_InitRequest), as hio_init
 * made it, and no request in progress: hio_finish and hio_accept write and
 * close nothing of the moved request. Contract of the moved request:
 * libfcgi's streams still name from's FCGX_Request inside (libfcgi's private
 * reqDataPtr), so nothing may be read or written through them (to.req.in,
 * .out, .err) any more: the answer is written with hio_set_output (e.g.
 * lib/http/fcgiwrite on to.req, which reads and writes the socket itself),
 * and the request is ended by whoever writes it (fcgiwrite_finish /
 * fcgiwrite_abandon, which free it with FCGX_Free), never with hio_finish,
 * hio_accept or hio_done on to. hio_param on to works (the parameters moved
 * with it). 0, or -1 when h is plain CGI or has no request in progress
 * (nothing moved). What is left of the body is first read to its end and
 * discarded (at most drain_max bytes, as hio_finish does; this waits for the
 * web server to send the body's end, which it sends with the body), so that
 * the taker may end the answer and close the connection at once. */
int hio_hand_over(struct hio *from, struct hio *to);

/* hio_set_output: from now on hio_write (and what writes through it:
 * hio_headers, hio_send_*) hands the answer's bytes to fn(ud, p, n) instead
 * of libfcgi's stream or stdout, and hio_flush does nothing (the owner of fn
 * sends them); status, status_sent and bytes_out are kept as before. NULL
 * fn: back to libfcgi / stdout. */
void hio_set_output(struct hio *h, hio_out_fn fn, void *ud);

/* hio_on_headers: for the current request only (hio_accept forgets it),
 * fn(ud, status, out) adds header lines to whatever answer hio_headers writes
 * (a client's upstream request id and Retry-After). */
void hio_on_headers(struct hio *h, hio_headers_fn fn, void *ud);

/* hio_add_headers: for the current request only (hio_accept forgets them),
 * lines ("Name: value\r\n"...) are copied and written into whatever answer
 * hio_headers writes, after the program's own. 0, or -1 when they do not
 * fit in HIO_ADDED_MAX with those added before, or no memory (nothing is
 * added then). */
int hio_add_headers(struct hio *h, const char *lines);

/* hio_release: what h holds for its request besides the FastCGI request
 * itself (the added header lines) freed, once no answer's headers will be
 * written any more: for a request moved by hio_hand_over, which hio_accept
 * and hio_done never see (responder_taken_end calls it). */
void hio_release(struct hio *h);

/* hio_client_fd: what turns readable when the current request's client may
 * have gone, to poll while waiting on something else: the connection to the
 * web server (the FastCGI socket); in plain CGI a pipe the SIGTERM handler
 * hio_init installs writes to (-1 when it could not be made: not watched).
 * Borrowed: hio owns it. */
int hio_client_fd(const struct hio *h);
/* hio_client_gone: after the request was read whole, did the web server let
 * go of it: its FastCGI connection closed or shut for writing, or the request
 * aborted (FCGI_ABORT_REQUEST); in plain CGI, a SIGTERM came (lighttpd's
 * cgi.limits "tcp-fin-propagate")? The web servers that tell do so when the
 * HTTP client goes away (README.md, HTTP behaviour). 1 gone, 0 not; never
 * blocks; reads nothing of the body (the record that ends it, at most). */
int hio_client_gone(struct hio *h);

/* hio_param: a CGI/FastCGI parameter (REQUEST_METHOD, REQUEST_URI, ...) or NULL. */
const char *hio_param(struct hio *h, const char *name);
/* hio_path: the request path without the query string, in a caller buffer. */
const char *hio_path(struct hio *h, char *out, size_t outlen);

/* hio_url_decode: percent-decode src into dst (dstlen > 0): 0, or -1 on a
 * bad escape, %00, or when dst is too small. */
int hio_url_decode(const char *src, char *dst, size_t dstlen);

/* hio_read_body: read the whole request body, at most max bytes, into out;
 * a body with Transfer-Encoding and no CONTENT_LENGTH (de-chunked by the web
 * server, as mod_cgid passes it) is read to its end. Returns 0, or an HTTP
 * status: 413 (over max, by CONTENT_LENGTH or by bytes read), 400 (short body /
 * bad CONTENT_LENGTH), 500 (ENOMEM). */
int hio_read_body(struct hio *h, size_t max, buf_t *out);

/* Response. hio_headers writes the status line and headers once:
 * "Status: <code> <reason>", Content-Type, optional extra header lines
 * (each "Name: value\r\n", may be NULL), then the blank line. */
int hio_headers(struct hio *h, int status, const char *content_type, const char *extra);
int hio_write(struct hio *h, const void *p, size_t n);
int hio_flush(struct hio *h);
/* hio_send_json: headers (application/json) + compact body + "\n". body borrowed. */
int hio_send_json(struct hio *h, int status, const json_t *body);
/* hio_send_json_extra: the same with extra header lines (each ending "\r\n", NULL: none). */
int hio_send_json_extra(struct hio *h, int status, const json_t *body, const char *extra);
/* hio_send_raw_json: the same for an already-serialised body. */
int hio_send_raw_json(struct hio *h, int status, const char *body, size_t len);

/* hio_reason: "OK", "Bad Request", ... for a status code. */
const char *hio_reason(int status);

#endif
