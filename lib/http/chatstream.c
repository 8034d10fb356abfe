/* chatstream.c: a tool-loop run's events written as the OpenAI chat completions answer (SSE or JSON). */
#include "http/chatstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chatstream_init(struct chatstream *cs, struct hio *h)
{
	memset(cs, 0, sizeof *cs);
	cs->h = h;
}

struct toolloop_sink chatstream_sink(struct chatstream *cs)
{
	struct toolloop_sink k = { chatstream_event, cs };

	return k;
}

/* unavailable_header: "X-MCPGW-Tools-Unavailable: a, b\r\n" (the servers whose
 * tools were not offered, "*": the broker) into out, or "" */
static const char *unavailable_header(const struct toolloop_event *ev, char *out, size_t outlen)
{
	out[0] = '\0';
	if (*ev->unavailable)
		snprintf(out, outlen, "X-MCPGW-Tools-Unavailable: %s\r\n", ev->unavailable);
	return out;
}

/* sse_headers: once: the stream's headers, then a comment line saying which
 * servers' tools were not offered and why (SDKs skip comments) */
static int sse_headers(struct chatstream *cs, const struct toolloop_event *ev)
{
	char extra[TOOLLOOP_UNAVAILABLE_MAX + 128], line[TOOLLOOP_UNAVAILABLE_WHY_MAX + 64];
	int n;

	if (cs->headers)
		return 0;
	cs->headers = 1;
	n = snprintf(extra, sizeof extra, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
	unavailable_header(ev, extra + n, sizeof extra - (size_t)n);
	if (hio_headers(cs->h, 200, "text/event-stream; charset=utf-8", extra) < 0)
		return -1;
	if (!*ev->unavailable_why)
		return 0;
	/* one comment line, even if a server's last words held a line break */
	n = snprintf(line, sizeof line, ": mcpgw: tools not offered: %s", ev->unavailable_why);
	for (int i = 0; i < n && line[i]; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	return hio_write(cs->h, line, strlen(line)) < 0 || hio_write(cs->h, "\n\n", 2) < 0 ? -1 : 0;
}

/* sse_data: one "data: payload" event; 0 or -1 (the client is gone) */
static int sse_data(struct chatstream *cs, const struct toolloop_event *ev, const char *payload, size_t len)
{
	if (sse_headers(cs, ev) < 0 || hio_write(cs->h, "data: ", 6) < 0 || hio_write(cs->h, payload, len) < 0 ||
	    hio_write(cs->h, "\n\n", 2) < 0 || hio_flush(cs->h) < 0)
		return -1;
	return 0;
}

/* sse_json: v as one data event */
static int sse_json(struct chatstream *cs, const struct toolloop_event *ev, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	int rc;

	if (!s)
		return -1;
	rc = sse_data(cs, ev, s, strlen(s));
	free(s);
	return rc;
}

/* sse_tool: progress of a server-side tool call as an SSE comment line (SDKs skip them) */
static int sse_tool(struct chatstream *cs, const struct toolloop_event *ev)
{
	char line[400];
	int n = snprintf(line, sizeof line, ": mcpgw: tool %.150s (%.150s) %s\n\n", ev->tool, ev->server,
			 ev->kind == TOOLLOOP_TOOL_START ? "running"
			 : ev->is_error                  ? "failed"
							 : "done");

	if (n < 0 || sse_headers(cs, ev) < 0 ||
	    hio_write(cs->h, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0 || hio_flush(cs->h) < 0)
		return -1;
	return 0;
}

/* sse_keepalive: tools still run: an SSE comment, so that proxies and
 * clients that drop a silent stream keep it (SDKs skip comments) */
static int sse_keepalive(struct chatstream *cs, const struct toolloop_event *ev)
{
	static const char line[] = ": keep-alive\n\n";

	return sse_headers(cs, ev) < 0 || hio_write(cs->h, line, sizeof line - 1) < 0 || hio_flush(cs->h) < 0 ? -1 : 0;
}

/* end_error: the run failed: in the stream when it started, else as the whole answer */
static int end_error(struct chatstream *cs, const struct toolloop_event *ev)
{
	if (cs->headers)
		return sse_json(cs, ev, ev->error);
	return hio_send_json(cs->h, ev->status, ev->error) < 0 ? -1 : 0;
}

/* end_done: the run answered: [DONE], or the JSON completion */
static int end_done(struct chatstream *cs, const struct toolloop_event *ev)
{
	char extra[TOOLLOOP_UNAVAILABLE_MAX + 64];

	if (ev->stream)
		return sse_data(cs, ev, "[DONE]", 6);
	return hio_send_json_extra(cs->h, 200, ev->response, unavailable_header(ev, extra, sizeof extra)) < 0 ? -1 : 0;
}

int chatstream_event(void *ud, const struct toolloop_event *ev)
{
	struct chatstream *cs = ud;

	switch (ev->kind) {
	case TOOLLOOP_CONTENT: return ev->stream && ev->chunk && sse_json(cs, ev, ev->chunk) < 0 ? 1 : 0;
	case TOOLLOOP_TOOL_START:
	case TOOLLOOP_TOOL_END: return ev->stream && sse_tool(cs, ev) < 0 ? 1 : 0;
	case TOOLLOOP_TOOL_WAIT: return ev->stream && sse_keepalive(cs, ev) < 0 ? 1 : 0;
	case TOOLLOOP_ERROR: return end_error(cs, ev) < 0 ? 1 : 0;
	case TOOLLOOP_DONE: return end_done(cs, ev) < 0 ? 1 : 0;
	}
	return 0;
}

/* count_upstream_error: an ERROR event of the gateway's upstream client
 * (its codes begin "upstream_": unreachable, timeout, bad or truncated
 * response) in mcpgw_upstream_errors_total{code} */
static void count_upstream_error(struct metrics *m, const json_t *error)
{
	const char *code = json_string_value(json_object_get(json_object_get(error, "error"), "code"));
	const char *labels[] = { "code", code, NULL };
	char series[METRICS_NAME_MAX];

	if (m && code && strncmp(code, "upstream_", 9) == 0 &&
	    metrics_series(series, sizeof series, "mcpgw_upstream_errors_total", labels) == 0)
		metrics_add(m, series, 1);
}

/* chatnote_event: the event noted, then passed on */
static int chatnote_event(void *ud, const struct toolloop_event *ev)
{
	struct chatnote *n = ud;
	const json_t *u = ev->usage;

	if (ev->kind == TOOLLOOP_ERROR)
		count_upstream_error(n->metrics, ev->error);
	else if (ev->kind == TOOLLOOP_TOOL_END) {
		accesslog_add_tool(n->log, ev->server, ev->tool, ev->is_error);
		n->tool_calls++;
	} else if (ev->kind == TOOLLOOP_DONE && json_is_object(u)) {
		accesslog_set_usage(n->log, (long)json_integer_value(json_object_get(u, "prompt_tokens")),
				    (long)json_integer_value(json_object_get(u, "completion_tokens")));
		n->tokens = json_integer_value(json_object_get(u, "total_tokens"));
	}
	return n->inner.event(n->inner.ud, ev);
}

void chatnote_init(struct chatnote *n, struct accesslog *log, struct metrics *metrics, struct toolloop_sink inner)
{
	memset(n, 0, sizeof *n);
	n->inner = inner;
	n->log = log;
	n->metrics = metrics;
}

struct toolloop_sink chatnote_sink(struct chatnote *n)
{
	struct toolloop_sink k = { chatnote_event, n };

	return k;
}

void chatnote_end(struct chatnote *n, const struct auth_caller *auth, const json_t *added)
{
	size_t i;
	const json_t *m;
	const char *prev = "";

	auth_count(auth, n->tokens, n->tool_calls);
	json_array_foreach(added, i, m) {
		const char *role = json_string_value(json_object_get(m, "role"));

		if (role && strcmp(role, "tool") == 0 && strcmp(prev, "assistant") == 0)
			accesslog_add_round(n->log);
		prev = role ? role : "";
	}
}
