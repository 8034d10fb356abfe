/* fuzz_upstream.c: libFuzzer target of an upstream's HTTP answer as lib/openai/upstream.c reads it (its static libcurl callbacks, reached by including it): header lines, the body sniffed as SSE, JSON texts or an error, the outcome judged. */
#include "fuzz.h"

#include "../../lib/openai/upstream.c"

/* Input: byte 0 picks the status (its low nibble, from a list), whether
 * the request was a stream (bit 4) and the bound of one event (bit 5:
 * 64 bytes, else 1 MiB); bytes 1-2 seed how the body is cut into libcurl
 * writes; the rest is the answer: header lines up to the first blank line
 * (each handed to the header callback as libcurl does, after a status
 * line), then the body. No network: the callbacks are called as libcurl
 * would, then the attempt is judged (up_judge, as after a clean end).
 * Checks: the request id kept is printable ASCII; the header lines the
 * gateway passes on to its client (upstream_client_headers) are each one
 * "Name: value" line of printable bytes (no header injection); each event
 * of a stream is non-empty; a failed answer maps to an OpenAI error object
 * with a 4xx/5xx status. */

static const long statuses[] = { 200, 200, 200, 201, 400, 401, 403, 404, 422, 429, 500, 502, 503, 504, 302, 0 };
static struct upstream *U;

struct seen {
	long events;
};

static int on_event(const char *data, size_t len, void *ud)
{
	struct seen *s = ud;

	FUZZ_CHECK(len > 0 && data[len] == '\0');
	s->events++;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct upstream_opts o;

	(void)argc;
	(void)argv;
	memset(&o, 0, sizeof o);
	o.base_url = "http://127.0.0.1:9/v1";
	o.api_key = "sk-fuzz";
	o.connect_timeout_ms = 1000;
	o.idle_timeout_ms = 1000;
	o.retry_max_wait_ms = 1000;
	if (upstream_global_init() < 0 || log_init("fuzz_upstream", LOGL_ERROR, "/dev/null") < 0 ||
	    !(U = upstream_new(&o)))
		abort();
	return 0;
}

/* check_client_headers: what the client gets of the upstream's headers */
static void check_client_headers(int status)
{
	buf_t out = BUF_INIT;
	const char *p, *nl;

	FUZZ_CHECK(upstream_client_headers(U, status, &out) == 0);
	for (p = out.data; p && *p; p = nl + 2) {
		nl = strstr(p, "\r\n");
		FUZZ_CHECK(nl != NULL && memchr(p, ':', (size_t)(nl - p)) != NULL);
		for (const char *c = p; c < nl; c++)
			FUZZ_CHECK(*c >= 0x20 && *c < 0x7f);
	}
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upstream_result res;
	struct up_xfer x;
	struct seen seen = { 0 };
	struct fuzz_cut c;
	const char *p, *end, *body, *nl;
	char status_line[64];
	size_t off, n, blen;
	json_t *err;
	int http = 0;

	if (size < 3)
		return 0;
	upstream_begin(U, NULL);
	upstream_result_init(&res);
	up_xfer_init(&x, U, U->easy, U->errbuf, &U->urls, &U->told);
	x.res = &res;
	x.stream = data[0] >> 4 & 1;
	x.cb = on_event;
	x.ud = &seen;
	U->max_bytes = data[0] & 0x20 ? 64 : 1u << 20;
	sse_init(&x.parser, U->max_bytes, up_on_event, &x);
	jsonseq_init(&x.jparser, U->max_bytes, up_on_json, &x);
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	p = (const char *)data + 3;
	end = (const char *)data + size;

	/* the headers, a line at a time, after the status line */
	n = (size_t)snprintf(status_line, sizeof status_line, "HTTP/1.1 %ld X\r\n", statuses[data[0] & 15]);
	(void)up_on_header(status_line, 1, n, &x);
	for (body = p; body < end; body = nl + 1) {
		nl = memchr(body, '\n', (size_t)(end - body));
		if (!nl)
			nl = end - 1;
		if (nl == body || (nl == body + 1 && *body == '\r')) { /* the blank line */
			body = nl + 1;
			break;
		}
		FUZZ_CHECK(up_on_header((char *)body, 1, (size_t)(nl - body) + 1, &x) == (size_t)(nl - body) + 1);
	}
	for (size_t i = 0; res.request_id[i]; i++)
		FUZZ_CHECK(res.request_id[i] > 0x20 && res.request_id[i] < 0x7f);

	/* the body, as libcurl writes it */
	x.decided = 1;
	res.status = statuses[data[0] & 15];
	x.sse = x.stream && res.status >= 200 && res.status < 300 &&
		strncasecmp(res.content_type, "text/event-stream", 17) == 0;
	blen = body < end ? (size_t)(end - body) : 0;
	for (off = 0; off < blen; off += n) {
		n = fuzz_cut_next(&c, blen - off);
		if (up_on_body((char *)body + off, 1, n, &x) != n)
			break;
	}
	(void)up_judge(&x, CURLE_OK, 0);
	if (res.err == UPSTREAM_EHTTP) { /* as up_run keeps what an error answer told */
		U->told.ra_ms = x.ra_ms;
		U->told.ra_s_ms = x.ra_s_ms;
	}
	FUZZ_CHECK(res.events == seen.events);
	check_client_headers((int)res.status);
	check_client_headers(429);
	if (res.err != UPSTREAM_OK) {
		err = upstream_error_json(&res, &http);
		FUZZ_CHECK(err && json_is_object(json_object_get(err, "error")) && http >= 400 && http <= 599);
		json_decref(err);
	}
	sse_free(&x.parser);
	jsonseq_free(&x.jparser);
	upstream_result_free(&res);
	return 0;
}
