/* fuzz_mcpsse.c: libFuzzer target of a remote MCP server's HTTP answers as the broker reads them (broker/transport_http.c, its static functions reached by including it): SSE streams, legacy "endpoint" events, JSON-RPC batches. */
#include "fuzz.h"

#include "../../broker/transport_http.c"

/* Input: byte 0 picks the transfer (its low bit: a legacy HTTP+SSE GET
 * stream, whose "endpoint" event says where messages go, or the SSE answer
 * to a Streamable HTTP POST; the next bit: the answer is not SSE but one
 * JSON body), bytes 1-2 seed how the rest is cut into libcurl writes; the
 * rest is what the server sends. The server's URL is
 * http://127.0.0.1:8123/mcp/sse. Checks: an endpoint the transport takes
 * shares the server's origin (scheme, host, port: the configured headers
 * go nowhere else); no message handed up is a batch (a batch is split; a
 * text that is not JSON goes up as it came, for the session to refuse);
 * a refused endpoint leaves none set. */

#define SERVER_URL "http://127.0.0.1:8123/mcp/sse"

static struct settings S;
static struct cfg_server cfg;
static int opened, messages;

static void ev_open(void *ctx)
{
	(void)ctx;
	opened++;
}

static void ev_message(void *ctx, const char *json, size_t len)
{
	json_t *m = json_loadb(json, len, 0, NULL);

	(void)ctx;
	messages++;
	FUZZ_CHECK(len > 0 &&
		   !json_is_array(m)); /* never a batch (text that is not JSON goes up as it came: the session refuses it) */
	json_decref(m);
}

static void ev_closed(void *ctx, const char *why, int retry_now)
{
	(void)ctx, (void)why, (void)retry_now;
}

static int ev_pending(void *ctx, long long id)
{
	(void)ctx, (void)id;
	return 0;
}

static const struct transport_events events = { ev_open, ev_message, ev_closed, ev_pending, NULL };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (log_init("fuzz_mcpsse", LOGL_ERROR, "/dev/null") < 0)
		abort();
	S.max_message_bytes = 1 << 16;
	cfg.name = "remote";
	cfg.transport = CFG_SSE;
	cfg.url = SERVER_URL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httphub hub;
	struct http_t t;
	struct xfer x;
	struct fuzz_cut c;
	size_t off, n;
	int whole;

	if (size < 3)
		return 0;
	memset(&hub, 0, sizeof hub);
	memset(&t, 0, sizeof t);
	memset(&x, 0, sizeof x);
	hub.set = &S;
	t.base.ev = &events;
	t.base.cfg = &cfg;
	t.hub = &hub;
	t.mode = MODE_SSE;
	x.hub = &hub;
	x.t = &t;
	x.kind = data[0] & 1 ? XK_LEGACY_GET : XK_POST;
	x.is_sse = !(data[0] & 2);
	x.req_id = -1;
	x.retry_ms = -1;
	sse_init(&x.sse, S.max_message_bytes, on_sse_event, &x);
	fuzz_cut_init(&c, (uint32_t)data[1] << 8 | data[2]);
	data += 3;
	size -= 3;
	opened = messages = 0;

	for (off = 0; off < size; off += n) {
		n = fuzz_cut_next(&c, size - off);
		if (write_cb((char *)data + off, 1, n, &x) != n)
			break;
	}
	whole = off >= size;
	if (!x.is_sse && whole && x.resp.len)
		dispatch_json(&x, x.resp.data, x.resp.len); /* a JSON answer, at the transfer's end */
	if (t.endpoint[0]) {
		char a[600], b[600];

		FUZZ_CHECK(opened > 0);
		FUZZ_CHECK(origin_of(SERVER_URL, a, sizeof a) == 0 && origin_of(t.endpoint, b, sizeof b) == 0);
		FUZZ_CHECK(strcmp(a, b) == 0);
	}
	if (t.refused[0])
		FUZZ_CHECK(t.endpoint[0] == '\0');
	sse_free(&x.sse);
	buf_free(&x.resp);
	return 0;
}
