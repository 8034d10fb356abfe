/* accesslog.c: the per-request access-log line, formatted into a stack buffer and written once. */
#include "http/accesslog.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

int64_t accesslog_now_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void accesslog_begin(struct accesslog *a)
{
	memset(a, 0, sizeof *a);
	a->prompt_tokens = a->completion_tokens = -1;
	a->start_us = accesslog_now_us();
}

/* id_char: a byte an id or name may keep; others become '_' */
static int id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._:@/+-", c);
}

/* copy_id: src into dst (n bytes), cut to fit, foreign bytes as '_' */
static void copy_id(char *dst, size_t n, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = id_char((unsigned char)src[i]) ? src[i] : '_';
	dst[i] = '\0';
}

void accesslog_set_caller(struct accesslog *a, const char *id)
{
	copy_id(a->caller, sizeof a->caller, id);
}

void accesslog_set_model(struct accesslog *a, const char *model)
{
	copy_id(a->model, sizeof a->model, model);
}

void accesslog_add_tool(struct accesslog *a, const char *server, const char *tool, int failed)
{
	char name[160], one[ACCESSLOG_CALLER_MAX * 2];
	size_t used = strlen(a->tools), n;

	a->ntools++;
	a->tool_errors += failed != 0;
	if (used >= 3 && strcmp(a->tools + used - 3, "...") == 0)
		return; /* already cut */
	copy_id(one, sizeof one, server);
	copy_id(name, sizeof name, tool);
	n = strlen(name) + (*one ? strlen(one) + 1 : 0) + (used ? 1 : 0);
	if (used + n + 4 > sizeof a->tools) { /* room kept for ",..." */
		snprintf(a->tools + used, sizeof a->tools - used, "%s...", used ? "," : "");
		return;
	}
	snprintf(a->tools + used, sizeof a->tools - used, "%s%s%s%s", used ? "," : "", one, *one ? "." : "", name);
}

void accesslog_add_round(struct accesslog *a)
{
	a->rounds++;
}

void accesslog_set_usage(struct accesslog *a, long prompt_tokens, long completion_tokens)
{
	a->prompt_tokens = prompt_tokens;
	a->completion_tokens = completion_tokens;
}

/* put_raw: n bytes of s at out+o, cut to what fits before the NUL; the new o
 * (the line is built by hand, without a printf per field: it is written per request) */
static size_t put_raw(char *out, size_t outlen, size_t o, const char *s, size_t n)
{
	if (o + 1 >= outlen)
		return o;
	if (n > outlen - 1 - o)
		n = outlen - 1 - o;
	memcpy(out + o, s, n);
	o += n;
	out[o] = '\0';
	return o;
}

/* put_key: " key=" at out+o; the new o */
static size_t put_key(char *out, size_t outlen, size_t o, const char *key)
{
	o = put_raw(out, outlen, o, " ", 1);
	o = put_raw(out, outlen, o, key, strlen(key));
	return put_raw(out, outlen, o, "=", 1);
}

/* put_value: " key=value" at out+o; value quoted (with '"' and '\\' escaped) when it must be; "-" for ""; the new o */
static size_t put_value(char *out, size_t outlen, size_t o, const char *key, const char *value)
{
	size_t plain = strcspn(value, " \"=\\");

	o = put_key(out, outlen, o, key);
	if (!*value)
		return put_raw(out, outlen, o, "-", 1);
	if (!value[plain])
		return put_raw(out, outlen, o, value, plain);
	o = put_raw(out, outlen, o, "\"", 1);
	for (const char *p = value; *p && o + 3 < outlen; p++) {
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o] = '\0';
	return put_raw(out, outlen, o, "\"", 1);
}

/* put_num: " key=N", or " key=-" when n < 0; the new o */
static size_t put_num(char *out, size_t outlen, size_t o, const char *key, long long n)
{
	char digits[24];
	size_t d = sizeof digits;
	unsigned long long v = (unsigned long long)n;

	o = put_key(out, outlen, o, key);
	if (n < 0)
		return put_raw(out, outlen, o, "-", 1);
	do
		digits[--d] = (char)('0' + v % 10);
	while ((v /= 10) && d > 0);
	return put_raw(out, outlen, o, digits + d, sizeof digits - d);
}

size_t accesslog_format(const struct accesslog *a, const char *method, const char *endpoint, int status,
			size_t bytes_out, int64_t now_us, char *out, size_t outlen)
{
	char m[16];
	size_t o;

	if (!outlen)
		return 0;
	out[0] = '\0';
	o = put_raw(out, outlen, 0, "access", 6);
	copy_id(m, sizeof m, method);
	o = put_value(out, outlen, o, "method", m);
	o = put_value(out, outlen, o, "endpoint", endpoint ? endpoint : "-");
	o = put_num(out, outlen, o, "status", status);
	o = put_value(out, outlen, o, "key", a->caller);
	o = put_value(out, outlen, o, "model", a->model);
	o = put_num(out, outlen, o, "duration_ms", (now_us - a->start_us) / 1000);
	o = put_num(out, outlen, o, "bytes_out", (long long)bytes_out);
	o = put_num(out, outlen, o, "rounds", a->rounds);
	o = put_num(out, outlen, o, "tools", a->ntools);
	o = put_num(out, outlen, o, "tool_errors", a->tool_errors);
	o = put_value(out, outlen, o, "tool_names", a->tools);
	o = put_num(out, outlen, o, "prompt_tokens", a->prompt_tokens);
	o = put_num(out, outlen, o, "completion_tokens", a->completion_tokens);
	return o;
}

void accesslog_end(struct accesslog *a, const char *method, const char *endpoint, int status, size_t bytes_out)
{
	a->ended = 1;
	copy_id(a->method, sizeof a->method, method);
	a->endpoint = endpoint;
	a->status = status;
	a->bytes_out = bytes_out;
	a->end_us = accesslog_now_us();
}

/* What count resolved for one endpoint, method and status: the values to
 * add to, per thread (no lock), so that a request formats and looks up no
 * series name once its kind was seen (a small direct-mapped table). */
#define COUNT_MEMO 16
struct count_memo {
	const struct metrics *m; /* NULL: an empty entry */
	const char *endpoint;    /* a route's pattern (lives as long as the program), or NULL */
	char method[16];
	int status;
	int64_t *requests;           /* mcpgw_http_requests_total{endpoint,method,status} */
	struct metrics_hist latency; /* mcpgw_http_request_duration_seconds{endpoint} */
};
static __thread struct count_memo count_memos[COUNT_MEMO];

/* count_resolve: e filled for m, endpoint, meth and status */
static void count_resolve(struct count_memo *e, struct metrics *m, const char *endpoint, const char *meth, int status)
{
	char st[16], series[METRICS_NAME_MAX];
	const char *req[] = { "endpoint", endpoint ? endpoint : "-", "method", meth, "status", st, NULL };
	const char *lat[] = { "endpoint", endpoint ? endpoint : "-", NULL };

	snprintf(st, sizeof st, "%d", status);
	e->m = m;
	e->endpoint = endpoint;
	snprintf(e->method, sizeof e->method, "%s", meth);
	e->status = status;
	e->requests = metrics_series(series, sizeof series, "mcpgw_http_requests_total", req) == 0
			      ? metrics_ref(m, series)
			      : NULL;
	(void)metrics_hist_ref(m, "mcpgw_http_request_duration_seconds", lat, &e->latency);
}

/* count: the request in the shared counters: its endpoint, method and status, its latency, its rounds */
static void count(const struct accesslog *a, struct metrics *m, const char *method, const char *endpoint, int status,
		  int64_t now_us)
{
	char meth[16];
	struct count_memo *e;

	/* a method no route has is not a label value of its own: the set stays small */
	snprintf(meth, sizeof meth, "%s", endpoint && method ? method : "other");
	e = &count_memos[((uintptr_t)endpoint / 16 + (unsigned)status * 31u + (unsigned char)meth[0]) % COUNT_MEMO];

	if (e->m != m || e->endpoint != endpoint || e->status != status || strcmp(e->method, meth) != 0)
		count_resolve(e, m, endpoint, meth, status);
	metrics_ref_add(e->requests, 1);
	metrics_hist_observe(&e->latency, now_us - a->start_us);
	if (a->rounds)
		metrics_add(m, "mcpgw_tool_rounds_total", a->rounds);
}

void accesslog_write(struct accesslog *a, struct metrics *m)
{
	char line[ACCESSLOG_LINE_MAX];

	if (!a->ended)
		return;
	a->ended = 0;
	if (m)
		count(a, m, a->method, a->endpoint, a->status, a->end_us);
	if (log_current_level < LOGL_INFO)
		return;
	accesslog_format(a, a->method, a->endpoint, a->status, a->bytes_out, a->end_us, line, sizeof line);
	log_spool_text(LOGL_INFO, line); /* written by the log's thread: no system call here */
}
