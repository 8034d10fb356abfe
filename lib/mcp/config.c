/* config.c: load, expand and validate servers_config.json (the Claude-Desktop "mcpServers" shape). */
#include "mcp/config.h"

#include "core/buf.h"
#include "core/conftrust.h"
#include "core/near.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CFG_NAME_MAX 64              /* server name length */
#define CFG_VAR_MAX 255              /* ${VAR} name length */
#define CFG_TIMEOUT_MIN_MS 1000L     /* "timeout": one second (less is seconds written by mistake) */
#define CFG_TIMEOUT_MAX_MS 86400000L /* "timeout": one day */
#define CFG_CALLS_MAX 65536L         /* "maxConcurrentCalls", "maxQueuedCalls" (the settings' bounds) */
#define CFG_KEY_MAX 256              /* key path shown in a message */
#define CFG_SHOW_MAX 64              /* untrusted text shown in a message */

struct cfg_ctx {
	const char *file; /* name used in messages */
	char *err;
	size_t errlen;
	const char *server; /* current server (already validated), NULL at top level */
	int expand;         /* 0 while parsing a disabled server */
};

/* cfg_show: copy s into dst (n >= 8 bytes) for a message: printable ASCII
 * kept, other bytes as \xNN, cut after CFG_SHOW_MAX bytes with "...". */
static const char *cfg_show(char *dst, size_t n, const char *s)
{
	size_t o = 0, i;

	for (i = 0; s[i] && i < CFG_SHOW_MAX && o + 5 < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, n - o, "\\x%02x", ch);
	}
	if (s[i] && o + 4 < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* cfg_err: "FILE: KEY: problem". At server level KEY is "mcpServers.<name>"
 * followed by suffix; at top level suffix is the whole key ("FILE: problem"
 * when it is empty). */
static void cfg_err(struct cfg_ctx *c, const char *suffix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cfg_err(struct cfg_ctx *c, const char *suffix, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->err || !c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->server)
		snprintf(c->err, c->errlen, "%s: mcpServers.%s%s: %s", c->file, c->server, suffix, msg);
	else if (*suffix)
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, suffix, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->file, msg);
}

static int cfg_is_name_start(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int cfg_is_name_char(int ch)
{
	return cfg_is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* cfg_var: expand one "${...}" whose body starts at p (just after "${").
 * Appends to b, sets *end past the '}'. -1 with err on error. */
static int cfg_var(buf_t *b, const char *p, const char **end, char *err, size_t errlen)
{
	char name[CFG_VAR_MAX + 1], show[CFG_SHOW_MAX * 4 + 8];
	const char *close = strchr(p, '}'), *q = p, *val, *def = NULL;
	size_t len;

	if (!close) {
		snprintf(err, errlen, "unterminated \"${\"");
		return -1;
	}
	if (cfg_is_name_start((unsigned char)*q))
		while (cfg_is_name_char((unsigned char)*q))
			q++;
	len = (size_t)(q - p);
	if (len == 0 || len > CFG_VAR_MAX || (q != close && !(q[0] == ':' && q[1] == '-'))) {
		len = (size_t)(close - p) < CFG_SHOW_MAX ? (size_t)(close - p) : CFG_SHOW_MAX;
		memcpy(name, p, len);
		name[len] = '\0';
		snprintf(err, errlen, "invalid variable reference \"${%s}\"", cfg_show(show, sizeof show, name));
		return -1;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	if (q != close)
		def = q + 2;
	val = getenv(name);
	if (def && (!val || !*val)) {
		if (buf_append(b, def, (size_t)(close - def)) < 0)
			goto enomem;
	} else if (!val) {
		snprintf(err, errlen, "${%s} is not set", name);
		return -1;
	} else if (buf_puts(b, val) < 0) {
		goto enomem;
	}
	*end = close + 1;
	return 0;
enomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

char *cfg_expand(const char *s, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	const char *p = s, *q;
	int rc = 0;

	while (rc == 0 && (q = strchr(p, '$')) != NULL) {
		rc = buf_append(&b, p, (size_t)(q - p));
		if (rc == 0 && q[1] == '$' && q[2] == '{') {
			rc = buf_append(&b, "${", 2);
			p = q + 3;
		} else if (rc == 0 && q[1] == '{') {
			if (cfg_var(&b, q + 2, &p, err, errlen) < 0)
				goto err;
		} else if (rc == 0) {
			rc = buf_append(&b, "$", 1);
			p = q + 1;
		}
	}
	if (rc < 0 || buf_puts(&b, p) < 0) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	return buf_steal(&b);
err:
	buf_free(&b);
	return NULL;
}

/* cfg_take: copy raw into *out, expanded if expand. -1 with the message on error. */
static int cfg_take(struct cfg_ctx *c, const char *key, const char *raw, int expand, char **out)
{
	char e[512];

	if (expand) {
		*out = cfg_expand(raw, e, sizeof e);
		if (!*out) {
			cfg_err(c, key, "%s", e);
			return -1;
		}
		return 0;
	}
	*out = strdup(raw);
	if (!*out) {
		cfg_err(c, key, "out of memory");
		return -1;
	}
	return 0;
}

/* cfg_scalar: a string (expanded), or an integer, real or boolean turned into text. */
static int cfg_scalar(struct cfg_ctx *c, const char *key, const json_t *v, char **out)
{
	char num[64];

	if (json_is_string(v))
		return cfg_take(c, key, json_string_value(v), c->expand, out);
	if (json_is_integer(v))
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(num, sizeof num, "%.15g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(num, sizeof num, "%s", json_is_true(v) ? "true" : "false");
	else {
		cfg_err(c, key, "expected a string");
		return -1;
	}
	return cfg_take(c, key, num, 0, out);
}

/* cfg_string: optional string member; *out stays NULL when absent. */
static int cfg_string(struct cfg_ctx *c, const json_t *o, const char *name, int expand, char **out)
{
	const json_t *v = json_object_get(o, name);
	char key[CFG_KEY_MAX];

	if (!v)
		return 0;
	snprintf(key, sizeof key, ".%s", name);
	if (!json_is_string(v) || !*json_string_value(v)) {
		cfg_err(c, key, "expected a non-empty string");
		return -1;
	}
	return cfg_take(c, key, json_string_value(v), expand, out);
}

/* cfg_strings: optional array of strings; entries are counted in *n as they
 * are filled so that cfg_free releases a partial array. */
static int cfg_strings(struct cfg_ctx *c, const json_t *o, const char *name, int expand, char ***out, size_t *n)
{
	const json_t *a = json_object_get(o, name), *v;
	char key[CFG_KEY_MAX];
	size_t i;

	if (!a)
		return 0;
	if (!json_is_array(a)) {
		snprintf(key, sizeof key, ".%s", name);
		cfg_err(c, key, "expected an array of strings");
		return -1;
	}
	if (json_array_size(a) == 0)
		return 0;
	*out = calloc(json_array_size(a), sizeof **out);
	if (!*out) {
		cfg_err(c, "", "out of memory");
		return -1;
	}
	json_array_foreach(a, i, v) {
		snprintf(key, sizeof key, ".%s[%zu]", name, i);
		if (!json_is_string(v)) {
			cfg_err(c, key, "expected a string");
			return -1;
		}
		if (cfg_take(c, key, json_string_value(v), expand, &(*out)[i]) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

/* cfg_env_name_ok: non-empty, printable ASCII, no blank and no '='. */
static int cfg_env_name_ok(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (*k <= ' ' || *k >= 0x7f || *k == '=')
			return 0;
	return 1;
}

/* cfg_header_name_ok: an RFC 9110 token. */
static int cfg_header_name_ok(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!cfg_is_name_char((unsigned char)*k) && !strchr("!#$%&'*+-.^`|~", *k))
			return 0;
	return 1;
}

/* cfg_pair: "KEY<sep>VALUE" for one env or header entry. */
static int cfg_pair(struct cfg_ctx *c, const char *group, const char *k, const json_t *v, const char *sep, char **out)
{
	char key[CFG_KEY_MAX], show[CFG_SHOW_MAX * 4 + 8], *val = NULL;
	int is_header = sep[0] == ':';
	buf_t b = BUF_INIT;

	snprintf(key, sizeof key, ".%s.%s", group, cfg_show(show, sizeof show, k));
	if (!(is_header ? cfg_header_name_ok(k) : cfg_env_name_ok(k))) {
		cfg_err(c, key, "invalid %s name", is_header ? "header" : "variable");
		return -1;
	}
	if (cfg_scalar(c, key, v, &val) < 0)
		return -1;
	if (is_header && strpbrk(val, "\r\n")) {
		cfg_err(c, key, "header value contains a line break");
		goto err;
	}
	if (buf_puts(&b, k) < 0 || buf_puts(&b, sep) < 0 || buf_puts(&b, val) < 0) {
		cfg_err(c, key, "out of memory");
		goto err;
	}
	free(val);
	*out = buf_steal(&b);
	return 0;
err:
	free(val);
	buf_free(&b);
	return -1;
}

/* cfg_pairs: optional object of scalars -> "KEY<sep>VALUE" array (env, headers). */
static int cfg_pairs(struct cfg_ctx *c, const json_t *o, const char *name, const char *sep, char ***out, size_t *n)
{
	const json_t *obj = json_object_get(o, name), *v;
	const char *k;
	char key[CFG_KEY_MAX];

	if (!obj)
		return 0;
	if (!json_is_object(obj)) {
		snprintf(key, sizeof key, ".%s", name);
		cfg_err(c, key, "expected an object of strings");
		return -1;
	}
	if (json_object_size(obj) == 0)
		return 0;
	*out = calloc(json_object_size(obj), sizeof **out);
	if (!*out) {
		cfg_err(c, "", "out of memory");
		return -1;
	}
	json_object_foreach((json_t *)obj, k, v) {
		if (cfg_pair(c, name, k, v, sep, &(*out)[*n]) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

/* --- other MCP clients' shapes: recognised and rejected with a hint --- */

/* the keys of a server entry */
static const char *const cfg_server_keys[] = {
	"command",        "args",     "env",          "cwd",          "type",    "url",
	"headers",        "disabled", "includeTools", "excludeTools", "timeout", "maxConcurrentCalls",
	"maxQueuedCalls",
};

/* other clients' names for keys of a server entry, and keys whose loss
 * would change what the server is (ignoring them would be silently wrong) */
static const struct {
	const char *key, *shape, *fix;
} cfg_foreign_keys[] = {
	{ "serverUrl", "the Windsurf shape", "rename it to \"url\"" },
	{ "httpUrl", "the Gemini CLI shape", "rename it to \"url\" and add \"type\": \"http\"" },
	{ "uri", "the Goose shape", "rename it to \"url\"" },
	{ "cmd", "the Goose shape", "rename it to \"command\"" },
	{ "envs", "the Goose shape", "rename it to \"env\"" },
	{ "environment", "the opencode shape", "rename it to \"env\"" },
	{ "envFile", "the VS Code and Cursor shape",
	  "not supported: list the variables in \"env\" (values may use ${VAR} from the environment or .env)" },
	{ "disabledTools", "the Roo Code shape", "rename it to \"excludeTools\"" },
};

/* top-level keys other clients keep their servers under */
static const struct {
	const char *key, *shape;
} cfg_foreign_tops[] = {
	{ "servers", "the VS Code mcp.json shape" },
	{ "context_servers", "the Zed settings.json shape" },
	{ "mcp_servers", "the Codex config shape" },
	{ "extensions", "the Goose config.yaml shape" },
};

/* cfg_is_star_list: ["*"], which lets everything through */
static int cfg_is_star_list(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) == 1 && json_string_value(json_array_get(v, 0)) &&
	       strcmp(json_string_value(json_array_get(v, 0)), "*") == 0;
}

/* cfg_key_hint: the message for key k (value v) of a server entry when it is
 * another client's key, or a misspelling of one of ours; "" when it is to be
 * ignored (unknown to every client we know: "alwaysAllow", "autoApprove", ...) */
static void cfg_key_hint(const char *k, const json_t *v, char *out, size_t outlen)
{
	char show[CFG_SHOW_MAX * 4 + 8];
	const char *near;

	out[0] = '\0';
	cfg_show(show, sizeof show, k);
	for (size_t i = 0; i < sizeof cfg_foreign_keys / sizeof *cfg_foreign_keys; i++)
		if (strcmp(k, cfg_foreign_keys[i].key) == 0) {
			snprintf(out, outlen, "unknown key \"%s\" (%s): %s", show, cfg_foreign_keys[i].shape,
				 cfg_foreign_keys[i].fix);
			return;
		}
	if (strcmp(k, "transport") == 0 && json_is_object(v))
		snprintf(out, outlen,
			 "unknown key \"transport\" (the Continue shape): move its keys (\"type\", "
			 "\"command\", \"args\", ...) up into the server's entry");
	else if (strcmp(k, "transport") == 0)
		snprintf(out, outlen, "unknown key \"transport\": rename it to \"type\"");
	else if (strcmp(k, "enabled") == 0 && json_is_false(v))
		snprintf(out, outlen, "unknown key \"enabled\" (the opencode and Goose shape): write \"disabled\": true");
	else if (strcmp(k, "tools") == 0 && !cfg_is_star_list(v))
		snprintf(out, outlen, "unknown key \"tools\" (the GitHub Copilot shape): rename it to \"includeTools\"");
	else if (strcmp(k, "enabled") != 0 && strcmp(k, "tools") != 0 &&
		 (near = near_word(k, cfg_server_keys, sizeof cfg_server_keys / sizeof *cfg_server_keys)) != NULL)
		snprintf(out, outlen, "unknown key \"%s\" (did you mean \"%s\"?)", show, near);
}

/* cfg_keys: every key of a server entry is ours, or ignorable; -1 with a hint otherwise */
static int cfg_keys(struct cfg_ctx *c, const json_t *srv)
{
	char hint[512];
	const char *k;
	const json_t *v;

	json_object_foreach((json_t *)srv, k, v) {
		size_t i;

		for (i = 0; i < sizeof cfg_server_keys / sizeof *cfg_server_keys; i++)
			if (strcmp(k, cfg_server_keys[i]) == 0)
				break;
		if (i < sizeof cfg_server_keys / sizeof *cfg_server_keys)
			continue;
		cfg_key_hint(k, v, hint, sizeof hint);
		if (*hint) {
			cfg_err(c, "", "%s", hint);
			return -1;
		}
	}
	return 0;
}

/* cfg_looks_like_server: an object with a key that starts a server somewhere */
static int cfg_looks_like_server(const json_t *o)
{
	static const char *const keys[] = { "command", "url", "serverUrl", "httpUrl", "cmd", "uri" };

	for (size_t i = 0; json_is_object(o) && i < sizeof keys / sizeof *keys; i++)
		if (json_object_get(o, keys[i]))
			return 1;
	return 0;
}

/* cfg_find_nested: the key path ("a" or "a.b", shown escaped) of an object
 * holding "mcpServers" below the top level (two levels at most), or 0 */
static int cfg_find_nested(const json_t *root, char *path, size_t pathlen)
{
	char s1[CFG_SHOW_MAX * 4 + 8], s2[CFG_SHOW_MAX * 4 + 8];
	const char *k1, *k2;
	const json_t *v1, *v2;

	json_object_foreach((json_t *)root, k1, v1) {
		if (!json_is_object(v1))
			continue;
		if (json_object_get(v1, "mcpServers")) {
			snprintf(path, pathlen, "%s", cfg_show(s1, sizeof s1, k1));
			return 1;
		}
		json_object_foreach((json_t *)v1, k2, v2) {
			if (json_is_object(v2) && json_object_get(v2, "mcpServers")) {
				snprintf(path, pathlen, "%s\".\"%s", cfg_show(s1, sizeof s1, k1),
					 cfg_show(s2, sizeof s2, k2));
				return 1;
			}
		}
	}
	return 0;
}

/* cfg_missing_foreign: another client's key for its servers at the top level: 1 (reported) or 0 */
static int cfg_missing_foreign(struct cfg_ctx *c, const json_t *root)
{
	const json_t *mcp = json_object_get(root, "mcp"), *exp = json_object_get(root, "experimental");

	for (size_t i = 0; i < sizeof cfg_foreign_tops / sizeof *cfg_foreign_tops; i++)
		if (json_object_get(root, cfg_foreign_tops[i].key)) {
			cfg_err(c, "", "no \"mcpServers\" object; found \"%s\" (%s): rename it to \"mcpServers\"",
				cfg_foreign_tops[i].key, cfg_foreign_tops[i].shape);
			return 1;
		}
	if (json_is_object(mcp) && json_object_get(mcp, "servers"))
		cfg_err(c, "",
			"no \"mcpServers\" object; found \"mcp\": {\"servers\": ...} (the VS Code settings.json "
			"and opencode shape): move that \"servers\" object to a top-level \"mcpServers\"");
	else if (json_is_object(mcp))
		cfg_err(c, "",
			"no \"mcpServers\" object; found \"mcp\" (the opencode shape): rename it to \"mcpServers\"");
	else if (json_is_object(exp) && json_object_get(exp, "modelContextProtocolServers"))
		cfg_err(c, "",
			"no \"mcpServers\" object; found \"experimental\": {\"modelContextProtocolServers\": ...} "
			"(the Continue config.json shape): give each entry a name in a top-level \"mcpServers\" "
			"object and move its \"transport\" keys up into it");
	else
		return 0;
	return 1;
}

/* cfg_missing: "no mcpServers object", with what the file holds instead:
 * another client's shape, a misspelt or nested "mcpServers", or servers
 * without the wrapper */
static void cfg_missing(struct cfg_ctx *c, const json_t *root)
{
	static const char *const ours[] = { "mcpServers" };
	char show[CFG_SHOW_MAX * 4 + 8], path[2 * CFG_SHOW_MAX * 4 + 24];
	const json_t *v;
	const char *k;

	if (cfg_missing_foreign(c, root))
		return;
	json_object_foreach((json_t *)root, k, v) {
		if (near_word(k, ours, 1)) {
			cfg_err(c, "", "no \"mcpServers\" object; found \"%s\" (did you mean \"mcpServers\"?)",
				cfg_show(show, sizeof show, k));
			return;
		}
	}
	if (cfg_find_nested(root, path, sizeof path)) {
		cfg_err(c, "",
			"no \"mcpServers\" object at the top level; found one inside \"%s\": move it to the top level",
			path);
		return;
	}
	if (cfg_looks_like_server(root)) {
		cfg_err(c, "",
			"no \"mcpServers\" object; the file holds one server's entry: "
			"write {\"mcpServers\": {\"NAME\": {...}}}");
		return;
	}
	json_object_foreach((json_t *)root, k, v) {
		if (cfg_looks_like_server(v)) {
			cfg_err(c, "",
				"no \"mcpServers\" object; found server entries at the top level (\"%s\"): "
				"put them inside \"mcpServers\": {...}",
				cfg_show(show, sizeof show, k));
			return;
		}
	}
	cfg_err(c, "",
		"no \"mcpServers\" object (expected {\"mcpServers\": {\"NAME\": {\"command\": ...} or {\"url\": ...}}})");
}

/* cfg_type: the transport named by "type" (-1 when absent, -2 on error). */
static int cfg_type(struct cfg_ctx *c, const json_t *srv)
{
	const json_t *type = json_object_get(srv, "type");
	char show[CFG_SHOW_MAX * 4 + 8];
	const char *t;

	if (!type)
		return -1;
	if (!json_is_string(type)) {
		cfg_err(c, ".type", "expected a string");
		return -2;
	}
	t = json_string_value(type);
	if (strcmp(t, "stdio") == 0)
		return CFG_STDIO;
	if (strcmp(t, "sse") == 0)
		return CFG_SSE;
	if (strcmp(t, "http") == 0 || strcmp(t, "streamable-http") == 0 || strcmp(t, "streamableHttp") == 0 ||
	    strcmp(t, "streamable_http") == 0)
		return CFG_HTTP;
	if (strcmp(t, "local") == 0)
		cfg_err(c, ".type",
			"unknown transport \"local\" (the opencode and GitHub Copilot shape): write \"stdio\", "
			"or leave \"type\" out");
	else if (strcmp(t, "remote") == 0)
		cfg_err(c, ".type",
			"unknown transport \"remote\" (the opencode shape): write \"http\" or \"sse\", "
			"or leave \"type\" out");
	else
		cfg_err(c, ".type", "unknown transport \"%s\" (expected stdio, sse, http)",
			cfg_show(show, sizeof show, t));
	return -2;
}

/* cfg_transport: decide the transport from "type", "command" and "url". */
static int cfg_transport(struct cfg_ctx *c, const json_t *srv, struct cfg_server *s)
{
	int type = cfg_type(c, srv);
	int cmd = json_object_get(srv, "command") != NULL, url = json_object_get(srv, "url") != NULL;
	const char *tname = type == CFG_SSE ? "sse" : "http";

	if (type == -2)
		return -1;
	if (type == CFG_STDIO && url) {
		cfg_err(c, "", "\"url\" is not valid with type \"stdio\"");
		return -1;
	}
	if (type == CFG_STDIO && !cmd) {
		cfg_err(c, "", "needs \"command\" (type \"stdio\")");
		return -1;
	}
	if (type > CFG_STDIO && !url) {
		cfg_err(c, "", "needs \"url\" (type \"%s\")", tname);
		return -1;
	}
	if (type > CFG_STDIO && cmd) {
		cfg_err(c, "", "\"command\" is not valid with type \"%s\"", tname);
		return -1;
	}
	if (type == -1 && cmd && url) {
		cfg_err(c, "", "has both \"command\" and \"url\"; set \"type\"");
		return -1;
	}
	if (type == -1 && !cmd && !url) {
		cfg_err(c, "", "needs \"command\" (stdio) or \"url\" (remote)");
		return -1;
	}
	s->transport = type >= 0 ? (enum cfg_transport)type : cmd ? CFG_STDIO : CFG_AUTO;
	return 0;
}

/* cfg_count: the optional integer key k of srv in min..CFG_CALLS_MAX into *out (absent: -1). 0 or -1 */
static int cfg_count(struct cfg_ctx *c, const json_t *srv, const char *k, long min, int *out)
{
	const json_t *v = json_object_get(srv, k);
	char where[64];

	*out = -1;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > CFG_CALLS_MAX) {
		snprintf(where, sizeof where, ".%s", k);
		cfg_err(c, where, "expected an integer %ld..%ld", min, CFG_CALLS_MAX);
		return -1;
	}
	*out = (int)json_integer_value(v);
	return 0;
}

/* cfg_bounds: "maxConcurrentCalls" (1..) and "maxQueuedCalls" (0..): the broker's bound on
 * this server's tool calls (broker/call.c); -1 when absent (the settings' defaults) */
static int cfg_bounds(struct cfg_ctx *c, const json_t *srv, struct cfg_server *s)
{
	return cfg_count(c, srv, "maxConcurrentCalls", 1, &s->max_concurrent_calls) < 0 ||
			       cfg_count(c, srv, "maxQueuedCalls", 0, &s->max_queued_calls) < 0
		       ? -1
		       : 0;
}

/* cfg_flags: "disabled", "timeout", and the bounds on calls (cfg_bounds). */
static int cfg_flags(struct cfg_ctx *c, const json_t *srv, struct cfg_server *s)
{
	const json_t *d = json_object_get(srv, "disabled"), *t = json_object_get(srv, "timeout");

	if (d && !json_is_boolean(d)) {
		cfg_err(c, ".disabled", "expected true or false");
		return -1;
	}
	s->disabled = d && json_is_true(d);
	if (t && json_is_integer(t) && json_integer_value(t) >= 1 && json_integer_value(t) < CFG_TIMEOUT_MIN_MS) {
		/* Cline and Goose write seconds */
		cfg_err(c, ".timeout",
			"expected milliseconds %ld..%ld, got %" JSON_INTEGER_FORMAT
			": seconds? write %" JSON_INTEGER_FORMAT,
			CFG_TIMEOUT_MIN_MS, CFG_TIMEOUT_MAX_MS, json_integer_value(t), json_integer_value(t) * 1000);
		return -1;
	}
	if (t && (!json_is_integer(t) || json_integer_value(t) < CFG_TIMEOUT_MIN_MS ||
		  json_integer_value(t) > CFG_TIMEOUT_MAX_MS)) {
		cfg_err(c, ".timeout", "expected an integer %ld..%ld (milliseconds)", CFG_TIMEOUT_MIN_MS,
			CFG_TIMEOUT_MAX_MS);
		return -1;
	}
	s->timeout_ms = t ? (long)json_integer_value(t) : 0;
	return cfg_bounds(c, srv, s);
}

/* cfg_stdio: "command", "args", "env", "cwd". */
static int cfg_stdio(struct cfg_ctx *c, const json_t *srv, struct cfg_server *s)
{
	const json_t *cmd = json_object_get(srv, "command");

	if (json_is_array(cmd)) {
		cfg_err(c, ".command",
			"expected a string, found an array (the opencode shape): put the program in "
			"\"command\" and the rest in \"args\"");
		return -1;
	}
	if (json_is_object(cmd)) {
		cfg_err(c, ".command",
			"expected a string, found an object (the older Zed shape): move its \"path\" to "
			"\"command\" and its \"args\" and \"env\" up beside it");
		return -1;
	}
	if (cfg_string(c, srv, "command", c->expand, &s->command) < 0 ||
	    cfg_strings(c, srv, "args", c->expand, &s->args, &s->nargs) < 0 ||
	    cfg_pairs(c, srv, "env", "=", &s->env, &s->nenv) < 0 || cfg_string(c, srv, "cwd", c->expand, &s->cwd) < 0)
		return -1;
	if (!*s->command) {
		cfg_err(c, ".command", "is empty after expansion");
		return -1;
	}
	return 0;
}

/* cfg_remote: "url", "headers". */
static int cfg_remote(struct cfg_ctx *c, const json_t *srv, struct cfg_server *s)
{
	if (cfg_string(c, srv, "url", c->expand, &s->url) < 0 ||
	    cfg_pairs(c, srv, "headers", ": ", &s->headers, &s->nheaders) < 0)
		return -1;
	if (c->expand && strncasecmp(s->url, "http://", 7) != 0 && strncasecmp(s->url, "https://", 8) != 0) {
		cfg_err(c, ".url", "expected an http:// or https:// URL");
		return -1;
	}
	return 0;
}

static int cfg_server_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > CFG_NAME_MAX)
		return 0;
	for (; *name; name++)
		if (!cfg_is_name_char((unsigned char)*name) && *name != '.' && *name != '-')
			return 0;
	return 1;
}

/* cfg_server: parse one mcpServers entry into s (zeroed; partial on error). */
static int cfg_server(struct cfg_ctx *c, const char *name, const json_t *srv, struct cfg_server *s)
{
	char show[CFG_SHOW_MAX * 4 + 8];

	c->server = NULL;
	if (!cfg_server_name_ok(name)) {
		cfg_err(c, "mcpServers", "invalid server name \"%s\" (expected 1-64 characters of A-Z a-z 0-9 _ . -)",
			cfg_show(show, sizeof show, name));
		return -1;
	}
	c->server = name;
	s->name = strdup(name);
	if (!s->name) {
		cfg_err(c, "", "out of memory");
		return -1;
	}
	if (!json_is_object(srv)) {
		cfg_err(c, "", "expected an object");
		return -1;
	}
	if (cfg_keys(c, srv) < 0 || cfg_flags(c, srv, s) < 0 || cfg_transport(c, srv, s) < 0)
		return -1;
	c->expand = !s->disabled;
	if (s->transport == CFG_STDIO ? cfg_stdio(c, srv, s) < 0 : cfg_remote(c, srv, s) < 0)
		return -1;
	return cfg_strings(c, srv, "includeTools", 0, &s->include_tools, &s->ninclude) < 0 ||
			       cfg_strings(c, srv, "excludeTools", 0, &s->exclude_tools, &s->nexclude) < 0
		       ? -1
		       : 0;
}

/* cfg_parse: validate the document root and fill out. */
static int cfg_parse(struct cfg_ctx *c, const json_t *root, struct cfg *out)
{
	const json_t *servers, *v;
	const char *name;

	if (!json_is_object(root)) {
		cfg_err(c, "top level", "expected an object");
		return -1;
	}
	servers = json_object_get(root, "mcpServers");
	if (!servers) {
		cfg_missing(c, root);
		return -1;
	}
	if (json_is_array(servers)) {
		cfg_err(c, "mcpServers",
			"expected an object of servers by name, found an array (the Continue config.yaml "
			"shape): write {\"NAME\": {\"command\": ...}, ...}");
		return -1;
	}
	if (!json_is_object(servers)) {
		cfg_err(c, "mcpServers", "expected an object of servers by name ({\"NAME\": {\"command\": ...}, ...})");
		return -1;
	}
	if (json_object_size(servers) == 0)
		return 0;
	out->servers = calloc(json_object_size(servers), sizeof *out->servers);
	if (!out->servers) {
		cfg_err(c, "mcpServers", "out of memory");
		return -1;
	}
	json_object_foreach((json_t *)servers, name, v)
		if (cfg_server(c, name, v, &out->servers[out->nservers++]) < 0)
			return -1;
	return 0;
}

/* cfg_load_buf: parse len bytes of JSON (NUL bytes inside are syntax errors). */
static int cfg_load_buf(const char *data, size_t len, const char *name, struct cfg *out, char *err, size_t errlen)
{
	struct cfg_ctx c = { name, err, errlen, NULL, 1 };
	json_error_t jerr;
	json_t *root;

	memset(out, 0, sizeof *out);
	if (len > CFG_MAX_BYTES) {
		snprintf(err, errlen, "%s: larger than 1 MiB (%d bytes)", name, CFG_MAX_BYTES);
		return -1;
	}
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", name, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	if (cfg_parse(&c, root, out) < 0) {
		json_decref(root);
		cfg_free(out);
		return -1;
	}
	json_decref(root);
	return 0;
}

int cfg_load_string(const char *json, const char *name, struct cfg *out, char *err, size_t errlen)
{
	return cfg_load_buf(json, strnlen(json, CFG_MAX_BYTES + 1), name, out, err, errlen);
}


int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	int rc;

	memset(out, 0, sizeof *out);
	/* the commands it names run as us: only a file of ours (or root's) that nobody else may write */
	if (conftrust_read(&b, path, CFG_MAX_BYTES, err, errlen) != 0) {
		buf_free(&b);
		return -1;
	}
	rc = cfg_load_buf(b.data, b.len, path, out, err, errlen);
	buf_free(&b);
	return rc;
}

static void cfg_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nservers; i++) {
		struct cfg_server *s = &c->servers[i];

		free(s->name);
		free(s->command);
		cfg_free_strv(s->args, s->nargs);
		cfg_free_strv(s->env, s->nenv);
		free(s->cwd);
		free(s->url);
		cfg_free_strv(s->headers, s->nheaders);
		cfg_free_strv(s->include_tools, s->ninclude);
		cfg_free_strv(s->exclude_tools, s->nexclude);
	}
	free(c->servers);
	c->servers = NULL;
	c->nservers = 0;
}

int cfg_tool_allowed(const struct cfg_server *s, const char *mcp_name)
{
	size_t i;

	if (!s || !mcp_name)
		return 0;
	for (i = 0; i < s->nexclude; i++)
		if (fnmatch(s->exclude_tools[i], mcp_name, 0) == 0)
			return 0;
	if (s->ninclude == 0)
		return 1;
	for (i = 0; i < s->ninclude; i++)
		if (fnmatch(s->include_tools[i], mcp_name, 0) == 0)
			return 1;
	return 0;
}
