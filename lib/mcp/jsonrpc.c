/* jsonrpc.c: JSON-RPC 2.0 message building, classification and line framing. */
#include "mcp/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

const char *const jr_mcp_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", NULL };

int jr_mcp_version_supported(const char *v)
{
	for (int i = 0; v && jr_mcp_versions[i]; i++)
		if (strcmp(v, jr_mcp_versions[i]) == 0)
			return 1;
	return 0;
}

enum jr_kind jr_classify(const json_t *msg)
{
	const json_t *id, *method;

	if (!json_is_object(msg))
		return JR_INVALID;
	id = json_object_get(msg, "id");
	method = json_object_get(msg, "method");
	if (method) {
		if (!json_is_string(method))
			return JR_INVALID;
		if (!id)
			return JR_NOTIFICATION;
		return (json_is_integer(id) || json_is_string(id)) ? JR_REQUEST : JR_INVALID;
	}
	if (!id)
		return JR_INVALID;
	if (json_object_get(msg, "error"))
		return JR_ERROR_RESPONSE;
	if (json_object_get(msg, "result"))
		return JR_RESPONSE;
	return JR_INVALID;
}

static json_t *jr_base(void)
{
	json_t *m = json_object();

	if (m && json_object_set_new(m, "jsonrpc", json_string("2.0")) < 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}

/* jr_call: a request (with_id: id) or a notification of method with params
 * (stolen, may be NULL); NULL on ENOMEM, params freed then */
static json_t *jr_call(int with_id, json_int_t id, const char *method, json_t *params)
{
	json_t *m = jr_base();

	if (!m || (with_id && json_object_set_new(m, "id", json_integer(id)) < 0) ||
	    json_object_set_new(m, "method", json_string(method)) < 0)
		goto err;
	if (params && json_object_set_new(m, "params", params) < 0) {
		params = NULL;
		goto err;
	}
	return m;
err:
	json_decref(params);
	json_decref(m);
	return NULL;
}

json_t *jr_request(json_int_t id, const char *method, json_t *params)
{
	return jr_call(1, id, method, params);
}

json_t *jr_notification(const char *method, json_t *params)
{
	return jr_call(0, 0, method, params);
}

json_t *jr_result(const json_t *id, json_t *result)
{
	json_t *m = jr_base();

	if (!m || json_object_set_new(m, "id", id ? json_deep_copy(id) : json_null()) < 0)
		goto err;
	if (json_object_set_new(m, "result", result ? result : json_object()) < 0) {
		result = NULL;
		goto err;
	}
	return m;
err:
	json_decref(result);
	json_decref(m);
	return NULL;
}

json_t *jr_error(const json_t *id, int code, const char *message, json_t *data)
{
	json_t *m = jr_base(), *e = json_object();

	if (!m || !e || json_object_set_new(m, "id", id ? json_deep_copy(id) : json_null()) < 0 ||
	    json_object_set_new(e, "code", json_integer(code)) < 0 ||
	    json_object_set_new(e, "message", json_string(message ? message : "error")) < 0)
		goto err;
	if (data) {
		int rc = json_object_set_new(e, "data", data);
		data = NULL;
		if (rc < 0)
			goto err;
	}
	if (json_object_set_new(m, "error", e) < 0) {
		e = NULL;
		goto err;
	}
	return m;
err:
	json_decref(data);
	json_decref(e);
	json_decref(m);
	return NULL;
}

static int jr_dump_cb(const char *p, size_t n, void *ud)
{
	return buf_append(ud, p, n);
}

int jr_append(buf_t *out, const json_t *v)
{
	size_t old = out->len;

	if (json_dump_callback(v, jr_dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) < 0) {
		out->len = old;
		if (out->data)
			out->data[old] = '\0';
		return -1;
	}
	return 0;
}

int jr_append_line(buf_t *out, const json_t *msg)
{
	size_t old = out->len;

	if (json_dump_callback(msg, jr_dump_cb, out, JSON_COMPACT) < 0 || buf_append(out, "\n", 1) < 0) {
		out->len = old;
		if (out->data)
			out->data[old] = '\0';
		return -1;
	}
	return 0;
}

void jr_reader_init(struct jr_reader *r, size_t max_line)
{
	memset(r, 0, sizeof *r);
	r->max_line = max_line;
}

void jr_reader_free(struct jr_reader *r)
{
	buf_free(&r->buf);
	r->off = r->scan = 0;
}

int jr_reader_feed(struct jr_reader *r, const void *p, size_t n)
{
	buf_compact(&r->buf, &r->off);
	return buf_append(&r->buf, p, n);
}

/* jr_reader_drop: forget every byte held (an over-long line) */
static void jr_reader_drop(struct jr_reader *r)
{
	buf_reset(&r->buf);
	r->off = r->scan = 0;
}

/* jr_reader_blanks: step over blank bytes before a line at once (buf is
 * NUL-terminated: strspn stops at its end, or at a NUL the peer sent): a
 * flood of empty lines costs about what one long line does */
static void jr_reader_blanks(struct jr_reader *r)
{
	size_t n;

	if (r->off >= r->buf.len)
		return;
	n = strspn(r->buf.data + r->off, "\n\r \t");
	r->off += n;
	r->scan = r->scan > n ? r->scan - n : 0;
}

/* each byte is searched for '\n' once (scan) and lines are taken by moving
 * off: nothing moves here, jr_reader_feed compacts */
int jr_reader_next(struct jr_reader *r, char **line, size_t *len)
{
	for (;;) {
		char *start, *nl;
		size_t avail, n;

		if (!r->skipping)
			jr_reader_blanks(r);
		start = r->buf.data ? r->buf.data + r->off : NULL;
		avail = r->buf.len - r->off;
		nl = avail > r->scan ? memchr(start + r->scan, '\n', avail - r->scan) : NULL;
		if (r->skipping) { /* the tail of a line already reported too long */
			if (!nl) {
				jr_reader_drop(r);
				return JR_READ_MORE;
			}
			r->off += (size_t)(nl - start) + 1;
			r->scan = 0;
			r->skipping = 0;
			continue;
		}
		if (!nl) {
			r->scan = avail;
			if (avail > r->max_line) {
				jr_reader_drop(r);
				r->skipping = 1;
				return JR_READ_TOOLONG;
			}
			if (avail == 0) /* all handed out: a large message's buffer goes (buf_compact) */
				buf_compact(&r->buf, &r->off);
			return JR_READ_MORE;
		}
		n = (size_t)(nl - start);
		r->off += n + 1;
		r->scan = 0;
		if (n > r->max_line)
			return JR_READ_TOOLONG;
		*nl = '\0';
		if (n && nl[-1] == '\r')
			nl[-1] = '\0', n--;
		if (n == 0 || strspn(start, " \t") == n)
			continue;
		*line = start;
		*len = n;
		return JR_READ_LINE;
	}
}

char *jr_reader_take(struct jr_reader *r, size_t *size)
{
	buf_t rest = BUF_INIT;
	char *block;

	if (!r->buf.data || (r->buf.len > r->off && buf_append(&rest, r->buf.data + r->off, r->buf.len - r->off) < 0))
		return NULL;
	block = r->buf.data;
	*size = r->buf.len;
	r->buf = rest;
	r->off = 0;
	return block;
}

json_t *jr_parse(const char *line, size_t len, json_error_t *err)
{
	return json_loadb(line, len, JSON_REJECT_DUPLICATES, err);
}

json_t *jr_string_lossy(const char *s)
{
	json_t *v = json_string(s);
	char *copy;

	if (v || !(copy = strdup(s)))
		return v;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}
