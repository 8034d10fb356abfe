/* toolanswer.c: POST /v1/tools's request read and answer made as text. */
#include "mcp/toolanswer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"

#define TOOLANSWER_NAMES_MAX 2048 /* bytes of a result's member names kept to find a repeated one */

static int call_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct toolanswer_call *c = ctx;

	(void)m;
	if (strcmp(key, "tool") == 0)
		c->tool = v;
	else if (strcmp(key, "arguments") == 0)
		c->args = v;
	return 0;
}

int toolanswer_read_call(const char *body, size_t len, struct toolanswer_call *c)
{
	size_t i = 0;

	*c = (struct toolanswer_call){ { 0, 0 }, { 0, 0 }, 0 };
	while (i < len && strchr(" \t\r\n", body[i]) && body[i])
		i++;
	if (i >= len || body[i] != '{' || jsonspan_check(body, len) < 0 ||
	    jsonspan_members(body, (struct jsonspan){ i, len - i }, call_member, c) != 0)
		return TOOLANSWER_OTHER;
	if (!c->tool.len)
		return TOOLANSWER_NO_TOOL;
	if (body[c->tool.off] != '"')
		return TOOLANSWER_TOOL_TYPE;
	if (c->args.len && body[c->args.off] != '{' && body[c->args.off] != 'n')
		return TOOLANSWER_ARGS_TYPE;
	if (c->args.len && body[c->args.off] == 'n') /* null: none */
		c->args = (struct jsonspan){ 0, 0 };
	c->args_lines = c->args.len &&
			(memchr(body + c->args.off, '\n', c->args.len) || memchr(body + c->args.off, '\r', c->args.len));
	return TOOLANSWER_CALL;
}

/* a result's text read for the answer (result_member, meta_member) */
struct walk {
	const char *text;
	buf_t *out;             /* the result's members, each after a comma, but mcpgw's own names */
	struct jsonspan server; /* _meta["mcpgw/server"] ({0, 0}: none) */
	int is_error;           /* "isError": true */
	int repeated;           /* a member name twice */
	int nomem;
	char names[TOOLANSWER_NAMES_MAX]; /* the names so far, each NUL-terminated (past it: not compared) */
	size_t names_len;
};

static int meta_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	(void)m;
	if (strcmp(key, "mcpgw/server") == 0)
		((struct walk *)ctx)->server = v;
	return 0;
}

static int result_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct walk *w = ctx;
	size_t klen = strlen(key);

	for (size_t i = 0; *key && i < w->names_len; i += strlen(w->names + i) + 1)
		if (strcmp(w->names + i, key) == 0)
			return w->repeated = 1;
	if (*key && klen < sizeof w->names - w->names_len) {
		memcpy(w->names + w->names_len, key, klen + 1);
		w->names_len += klen + 1;
	}
	if (strcmp(key, "isError") == 0)
		w->is_error = v.len == 4 && memcmp(w->text + v.off, "true", 4) == 0;
	if (strcmp(key, "_meta") == 0 && w->text[v.off] == '{' && jsonspan_members(w->text, v, meta_member, w) < 0)
		return w->nomem = 1;
	if (strcmp(key, "object") == 0 || strcmp(key, "tool") == 0 || strcmp(key, "server") == 0)
		return 0; /* mcpgw's own members are kept (json_object_update_missing) */
	if (buf_append(w->out, ",", 1) < 0 || buf_append(w->out, w->text + m.off, m.len) < 0)
		return w->nomem = 1;
	return 0;
}

/* put_name: the tool's name as a JSON string, as jansson writes it. 0 or -1 */
static int put_name(buf_t *b, const char *name)
{
	size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@ ");
	json_t *j;
	int rc;

	if (!name[n])
		return buf_append(b, "\"", 1) < 0 || buf_append(b, name, n) < 0 || buf_append(b, "\"", 1) < 0 ? -1 : 0;
	if (!(j = json_string(name)))
		return -1;
	rc = jr_append(b, j);
	json_decref(j);
	return rc;
}

int toolanswer_result(buf_t *out, const char *tool, const char *text, size_t len)
{
	struct walk *w;
	buf_t members = BUF_INIT;
	size_t mark = out->len, i = 0;
	int rc = TOOLANSWER_NOMEM;

	while (i < len && strchr(" \t\r\n", text[i]) && text[i])
		i++;
	if (i >= len || text[i] != '{')
		return TOOLANSWER_NOT_OBJECT;
	if (!(w = malloc(sizeof *w)))
		return TOOLANSWER_NOMEM;
	*w = (struct walk){ .text = text, .out = &members };
	if (jsonspan_members(text, (struct jsonspan){ i, len - i }, result_member, w) < 0 || w->nomem)
		goto out;
	rc = w->repeated ? TOOLANSWER_REPEATED : w->is_error ? TOOLANSWER_IS_ERROR : TOOLANSWER_OK;
	if (rc != TOOLANSWER_OK)
		goto out;
	if (buf_puts(out, "{\"object\":\"tool.result\",\"tool\":") < 0 || put_name(out, tool) < 0 ||
	    buf_puts(out, ",\"server\":") < 0 ||
	    (w->server.len ? buf_append(out, text + w->server.off, w->server.len) : buf_puts(out, "null")) < 0 ||
	    buf_append(out, members.data ? members.data : "", members.len) < 0 || buf_puts(out, "}") < 0) {
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
		rc = TOOLANSWER_NOMEM;
	}
out:
	buf_free(&members);
	free(w);
	return rc;
}
