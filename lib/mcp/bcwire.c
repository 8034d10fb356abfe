/* bcwire.c: the broker clients' shared wire: request lines (the caller's _meta), notifications/cancelled, answer lines read without a tree. */
#include "mcp/bcwire.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

const char *bc_strerror(int status)
{
	switch (status) {
	case BC_OK: return "ok";
	case BC_ECONNECT: return "cannot connect to the broker";
	case BC_EIO: return "connection to the broker lost";
	case BC_ETIMEOUT: return "no answer from the broker in time";
	case BC_EPROTO: return "the broker sent an invalid message";
	case BC_ENOMEM: return "out of memory";
	case BC_EFULL: return "too many requests waiting to be sent to the broker";
	default: return "unknown error";
	}
}

int bcw_connect(const char *path)
{
	struct sockaddr_un sa;
	size_t plen = strlen(path);
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (plen == 0 || plen >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, plen + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;

		log_debug("broker connect %s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* bcw_mark_caller: a tools/call's params get _meta "mcpgw/caller" (the broker's
 * audit table): caller, never one that came with the params (it is removed when
 * the caller is anonymous) */
static void bcw_mark_caller(const char *method, json_t *params, const char *caller)
{
	char id[BC_CALLER_MAX];
	json_t *meta;

	if (!json_is_object(params) || strcmp(method, "tools/call") != 0)
		return;
	snprintf(id, sizeof id, "%s", caller ? caller : "");
	meta = json_object_get(params, "_meta");
	if (!id[0]) {
		if (json_is_object(meta))
			(void)json_object_del(meta, BC_META_CALLER);
		return;
	}
	if (!json_is_object(meta) &&
	    (json_object_set_new(params, "_meta", json_object()) < 0 || !(meta = json_object_get(params, "_meta")))) {
		(void)json_object_del(params, "_meta");
		return; /* out of memory: the call goes without it (audited as anonymous) */
	}
	if (json_object_set_new(meta, BC_META_CALLER, json_string(id)) < 0)
		(void)json_object_del(meta, BC_META_CALLER); /* not the one that came with the params */
}

/* bcw_cut: out back to len bytes (what a failed append added goes) */
static void bcw_cut(buf_t *out, size_t len)
{
	out->len = len;
	if (out->data)
		out->data[len] = '\0';
}

int bcw_request_line(buf_t *out, long id, const char *method, json_t *params, const char *caller)
{
	size_t mark = out->len;
	json_t *req;
	int rc;

	bcw_mark_caller(method, params, caller);
	if (!(req = jr_request(id, method, params)))
		return -1;
	rc = jr_append_line(out, req);
	json_decref(req);
	if (rc < 0)
		bcw_cut(out, mark);
	return rc;
}

/* bcw_put_string: s as a JSON string onto out: copied when it is printable ASCII with
 * nothing to escape, else written by jansson. 0, or -1 (ENOMEM, or s not UTF-8) */
static int bcw_put_string(buf_t *out, const char *s)
{
	size_t n = 0;
	json_t *j;
	int rc;

	while (s[n] >= 0x20 && s[n] < 0x7F && s[n] != '"' && s[n] != '\\')
		n++;
	if (!s[n])
		return buf_append(out, "\"", 1) < 0 || buf_append(out, s, n) < 0 || buf_append(out, "\"", 1) < 0 ? -1 : 0;
	if (!(j = json_string(s)))
		return -1;
	rc = jr_append(out, j);
	json_decref(j);
	return rc;
}

int bcw_tool_line(buf_t *out, long id, const char *tool, const char *args, size_t args_len, const char *caller)
{
	size_t start = out->len, mark;

	if (buf_printf(out, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":{\"name\":", id) < 0 ||
	    bcw_put_string(out, tool) < 0 || buf_puts(out, ",\"arguments\":") < 0 ||
	    (args ? buf_append(out, args, args_len) : buf_puts(out, "{}")) < 0)
		goto fail;
	mark = out->len;
	if (caller && caller[0]) {
		char cut[BC_CALLER_MAX];

		snprintf(cut, sizeof cut, "%s", caller);
		if (buf_puts(out, ",\"_meta\":{\"" BC_META_CALLER "\":") < 0 || bcw_put_string(out, cut) < 0 ||
		    buf_puts(out, "}") < 0)
			bcw_cut(out, mark); /* without it: audited as anonymous */
	}
	if (buf_puts(out, "}}\n") == 0)
		return 0;
fail:
	bcw_cut(out, start);
	return -1;
}

int bcw_cancel_line(buf_t *out, long id, const char *reason)
{
	size_t mark = out->len;
	json_t *n, *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)id, "reason", reason);
	int rc;

	if (!params || !(n = jr_notification("notifications/cancelled", params)))
		return -1;
	rc = jr_append_line(out, n);
	json_decref(n);
	if (rc < 0)
		bcw_cut(out, mark);
	return rc;
}

/* one line of the broker read without a tree of it whole (bcw_member): its top-level
 * members but "result" parsed (they are small: "jsonrpc", "id", "error"), the
 * result's text kept as a span of the line */
struct bcw_line {
	const char *text;
	json_t *skel;           /* the members but "result" ("result": a stand-in {}) */
	struct jsonspan result; /* len 0: none */
	int bad;                /* a name repeated (jr_parse refuses it: JSON_REJECT_DUPLICATES), or ENOMEM */
};

static int bcw_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct bcw_line *l = ctx;
	int result = strcmp(key, "result") == 0;
	json_t *val;

	(void)m;
	if (!*key) /* "", or a name too long to be one we read: nothing reads it */
		return 0;
	if (json_object_get(l->skel, key))
		return l->bad = 1;
	if (result)
		l->result = v;
	val = result ? json_object() : jsonspan_load(l->text, v, JSON_REJECT_DUPLICATES);
	if (!val || json_object_set_new(l->skel, key, val) < 0)
		return l->bad = 1;
	return 0;
}

void bcw_answer_free(struct bcw_answer *a)
{
	json_decref(a->skel);
	*a = (struct bcw_answer){ 0 };
}

/* bcw_parse: line (checked JSON) as an answer into *a. BC_OK (a->id 0: nothing to
 * deliver), BC_EPROTO for something that is not a response (or that jr_parse would
 * refuse), BC_ENOMEM */
static int bcw_parse(const char *line, size_t len, struct bcw_answer *a)
{
	struct bcw_line l = { .text = line };
	struct jsonspan all = { 0, len };
	enum jr_kind kind;
	json_t *id, *err;

	*a = (struct bcw_answer){ 0 };
	while (all.off < len && strchr(" \t\r", line[all.off]))
		all.off++;
	all.len = len - all.off;
	if (all.off >= len || line[all.off] != '{')
		return BC_EPROTO;
	if (!(l.skel = json_object()))
		return BC_ENOMEM;
	a->skel = l.skel;
	if (jsonspan_members(line, all, bcw_member, &l) != 0 || l.bad)
		return BC_EPROTO;
	kind = jr_classify(l.skel);
	if (kind == JR_REQUEST || kind == JR_NOTIFICATION)
		return BC_OK; /* the broker sends none; ignore rather than fail */
	if (kind == JR_INVALID)
		return BC_EPROTO;
	id = json_object_get(l.skel, "id");
	err = json_object_get(l.skel, "error");
	if (kind == JR_ERROR_RESPONSE && (!json_is_object(err) || !json_is_integer(json_object_get(err, "code"))))
		return BC_EPROTO;
	if (!json_is_integer(id)) {
		log_warn("broker: answer with a non-integer id ignored");
		return BC_OK; /* e.g. a parse error about one of our lines (id null) */
	}
	if (json_integer_value(id) <= 0 || json_integer_value(id) > LONG_MAX)
		return BC_OK; /* not one of ours: as a late answer, dropped */
	a->id = (long)json_integer_value(id);
	if (kind == JR_ERROR_RESPONSE)
		a->error = err;
	else
		a->result = l.result;
	return BC_OK;
}

int bcw_next(struct jr_reader *rd, char **line, struct bcw_answer *a)
{
	for (;;) {
		size_t len;
		int rc = jr_reader_next(rd, line, &len);

		if (rc == JR_READ_MORE)
			return 0;
		if (rc == JR_READ_NOMEM)
			return BC_ENOMEM;
		if (rc != JR_READ_LINE) {
			log_warn("broker: message over %zu bytes", rd->max_line);
			return BC_EPROTO;
		}
		if (jsonspan_check(*line, len) < 0) {
			log_warn("broker: bad JSON: %.80s", *line);
			return BC_EPROTO;
		}
		rc = bcw_parse(*line, len, a);
		if (rc != BC_OK) {
			bcw_answer_free(a);
			log_warn("broker: not a JSON-RPC response");
			return rc;
		}
		if (a->id > 0)
			return 1;
		bcw_answer_free(a);
	}
}
