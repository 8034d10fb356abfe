/* mcptools.c: the broker's tool catalog cached per responder thread, keyed by the broker's generation. */
#include "mcp/mcptools.h"

#include "core/statedir.h"
#include "core/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/near.h"
#include "mcp/toolschema.h"

static int mcptools_ask(struct mcptools *m, struct bclient *bc, long timeout_ms);

static void mcptools_clear(struct mcptools *m)
{
	json_decref(m->tools);
	json_decref(m->by_name);
	json_decref(m->params);
	json_decref(m->texts);
	json_decref(m->unready);
	json_decref(m->servers);
	m->tools = m->by_name = m->params = m->texts = m->unready = m->servers = NULL;
	m->nready = 0;
	m->generation = 0;
}

void mcptools_use_state_dir(struct mcptools *m, const char *state_dir)
{
	(void)statedir_path(m->gen_path, sizeof m->gen_path, state_dir, STATEDIR_CATALOG_GEN);
}

/* map_gen: map catalog.gen read-only once the broker has made it */
static void map_gen(struct mcptools *m)
{
	struct stat st;
	void *p;
	int fd;

	if (m->gen || !m->gen_path[0] || (fd = open(m->gen_path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(int64_t) &&
	    (p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0)) != MAP_FAILED)
		m->gen = p;
	close(fd);
}

/* openai_tool: tool t (its exposed name) as an OpenAI chat tool with params
 * (stolen, also on failure); new reference, or NULL on ENOMEM */
static json_t *openai_tool(const json_t *t, const char *name, json_t *params)
{
	/* "o" steals params, also when json_pack fails */
	return json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function", "name", name, "description",
			 json_string_value(json_object_get(t, "description")) ?: "", "parameters", params);
}

/* tool_text: tool t with params (borrowed) as compact JSON text in a new
 * JSON string, or NULL on ENOMEM */
static json_t *tool_text(const json_t *t, const char *name, json_t *params)
{
	json_t *fn = openai_tool(t, name, json_incref(params)), *text = NULL;
	char *s = fn ? json_dumps(fn, JSON_COMPACT) : NULL;

	if (s)
		text = json_stringn_nocheck(s, strlen(s));
	free(s);
	json_decref(fn);
	return text;
}

int mcptools_refresh(struct mcptools *m, struct bclient *bc, long timeout_ms)
{
	if (m->gen && m->tools && m->generation && __atomic_load_n(m->gen, __ATOMIC_ACQUIRE) == (int64_t)m->generation)
		return BC_OK;
	map_gen(m);
	return mcptools_ask(m, bc, timeout_ms);
}

/* mcptools_ask: the tools/list round trip */
static int mcptools_ask(struct mcptools *m, struct bclient *bc, long timeout_ms)
{
	json_t *params = json_pack("{s:{s:I}}", "_meta", "mcpgw/ifGeneration", m->generation);
	json_t *result = NULL, *error = NULL, *tools, *t;
	json_int_t gen;
	size_t i;
	int rc;

	if (!params)
		return BC_ENOMEM;
	rc = bc_call(bc, "tools/list", params, timeout_ms, &result, &error);
	if (rc != BC_OK)
		return rc;
	if (error) {
		json_decref(error);
		return 1;
	}
	gen = json_integer_value(json_object_get(json_object_get(result, "_meta"), "mcpgw/generation"));
	tools = json_object_get(result, "tools");
	if (json_is_true(json_object_get(json_object_get(result, "_meta"), "mcpgw/unchanged")) || !json_is_array(tools)) {
		json_decref(result);
		return BC_OK;
	}
	mcptools_clear(m);
	m->tools = json_incref(tools);
	m->unready = json_incref(json_object_get(json_object_get(result, "_meta"), "mcpgw/unready"));
	m->nready = (int)json_integer_value(json_object_get(json_object_get(result, "_meta"), "mcpgw/ready"));
	m->servers = json_incref(json_object_get(json_object_get(result, "_meta"), "mcpgw/servers"));
	if (!json_is_array(m->servers)) {
		json_decref(m->servers);
		m->servers = NULL;
	}
	m->by_name = json_object();
	m->params = json_object();
	m->texts = json_object();
	rc = m->by_name && m->params && m->texts ? BC_OK : BC_ENOMEM;
	json_array_foreach(tools, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		char why[TOOLSCHEMA_WHY_MAX];
		json_t *offered;

		if (rc != BC_OK)
			break;
		if (!name)
			continue;
		if (json_object_set(m->by_name, name, t) < 0)
			rc = BC_ENOMEM;
		else if ((offered = toolschema_params(json_object_get(t, "inputSchema"), why, sizeof why)))
			rc = json_object_set_new(m->params, name, offered) < 0 ||
					     json_object_set_new(m->texts, name, tool_text(t, name, offered)) < 0
				     ? BC_ENOMEM
				     : BC_OK;
		else if (errno == ENOMEM) /* else the tool cannot be offered upstream (the broker logged why) */
			rc = BC_ENOMEM;
	}
	json_decref(result);
	if (rc != BC_OK) { /* not a catalog missing tools: none, asked again next time */
		mcptools_clear(m);
		return rc;
	}
	m->generation = gen;
	return BC_OK;
}

int mcptools_current(const struct mcptools *m)
{
	return m->gen && m->tools && m->generation &&
	       __atomic_load_n(m->gen, __ATOMIC_ACQUIRE) == (int64_t)m->generation && mcptools_starting(m) == 0;
}

int mcptools_starting(const struct mcptools *m)
{
	const json_t *s;
	size_t i;
	int n = 0;

	json_array_foreach(m->unready, i, s)
		n += !json_is_true(json_object_get(s, "failing"));
	return n;
}

int mcptools_wait(struct mcptools *m, struct bclient *bc, long timeout_ms, long wait_ms)
{
	long deadline = clock_now_ms() + (wait_ms > 0 ? wait_ms : 0);
	int rc = mcptools_refresh(m, bc, timeout_ms);

	while (rc == BC_OK && mcptools_starting(m) > 0 && clock_now_ms() < deadline) {
		clock_sleep_ms(MCPTOOLS_WAIT_POLL_MS);
		rc = mcptools_refresh(m, bc, timeout_ms);
	}
	return rc;
}

static int in_filter(const char *servers, const char *server);

/* next_name: the next name of a comma-separated list (X-MCPGW-Servers, or
 * "mcp": {"servers"} joined), spaces around it dropped: its start, with its
 * length in *len, and *p moved past it; NULL at the end (empty names skipped) */
static const char *next_name(const char **p, size_t *len)
{
	const char *name;

	for (;;) {
		*p += strspn(*p, " ,");
		if (!**p)
			return NULL;
		name = *p;
		*len = strcspn(name, ",");
		*p += *len;
		while (*len && name[*len - 1] == ' ')
			(*len)--;
		if (*len)
			return name;
	}
}

int mcptools_why(buf_t *b, const json_t *s)
{
	const char *name = json_string_value(json_object_get(s, "name"));
	const char *state = json_string_value(json_object_get(s, "state"));
	const char *err = json_string_value(json_object_get(s, "last_error"));

	if (!name)
		name = "?";
	if (!state || json_is_true(json_object_get(s, "failing")))
		return buf_printf(b, "server '%s' cannot start%s%s", name, err ? ": " : "", err ? err : "");
	if (state && strcmp(state, "starting") == 0)
		return buf_printf(b, "server '%s' is starting", name);
	if (state && strcmp(state, "backoff") == 0)
		return buf_printf(b, "server '%s' is restarting%s%s", name, err ? " after: " : "", err ? err : "");
	return buf_printf(b, "server '%s' is %s", name, state ? state : "not ready");
}

int mcptools_unready(const struct mcptools *m, const char *servers, buf_t *why, buf_t *names)
{
	const json_t *s;
	size_t i;
	int n = 0;

	json_array_foreach(m->unready, i, s) {
		const char *name = json_string_value(json_object_get(s, "name"));

		if (!name || !in_filter(servers, name))
			continue;
		if ((why && ((why->len && buf_puts(why, "; ") < 0) || mcptools_why(why, s) < 0)) ||
		    (names && ((names->len && buf_puts(names, ", ") < 0) || buf_puts(names, name) < 0)))
			return -1;
		n++;
	}
	return n;
}

/* configured: 1 if the len bytes at name are a configured server's name */
static int configured(const struct mcptools *m, const char *name, size_t len)
{
	const json_t *v;
	size_t i;

	json_array_foreach(m->servers, i, v)
		if (json_string_length(v) == len && memcmp(json_string_value(v), name, len) == 0)
			return 1;
	return 0;
}

/* unknown_one: append 'name' and, if near one, the configured name it may stand for */
static int unknown_one(const struct mcptools *m, const char *name, size_t len, buf_t *out)
{
	const char *known[MCPTOOLS_NEAR_MAX], *near = NULL;
	char word[NEAR_WORD_MAX + 1];
	size_t n = 0, i;
	const json_t *v;

	json_array_foreach(m->servers, i, v)
		if (n < MCPTOOLS_NEAR_MAX && json_is_string(v))
			known[n++] = json_string_value(v);
	if (len <= NEAR_WORD_MAX) {
		memcpy(word, name, len);
		word[len] = '\0';
		near = near_word(word, known, n);
	}
	if (out->len && buf_puts(out, ", ") < 0)
		return -1;
	return near ? buf_printf(out, "'%.*s' (did you mean '%s'?)", (int)(len < 100 ? len : 100), name, near)
		    : buf_printf(out, "'%.*s'", (int)(len < 100 ? len : 100), name);
}

int mcptools_unknown(const struct mcptools *m, const char *servers, buf_t *unknown)
{
	int n = 0;

	if (!m->servers || !servers)
		return 0;
	const char *p = servers, *name;
	size_t len;

	while ((name = next_name(&p, &len)) != NULL)
		if (!configured(m, name, len)) {
			if (unknown && unknown_one(m, name, len, unknown) < 0)
				return -1;
			n++;
		}
	return n;
}

int mcptools_configured(const struct mcptools *m, buf_t *names)
{
	const json_t *v;
	size_t i;
	int n = 0;

	json_array_foreach(m->servers, i, v) {
		if (!json_is_string(v))
			continue;
		if ((names->len && buf_puts(names, ", ") < 0) || buf_puts(names, json_string_value(v)) < 0)
			return -1;
		n++;
	}
	return n;
}

const char *mcptools_server(const struct mcptools *m, const char *name)
{
	json_t *t = name ? json_object_get(m->by_name, name) : NULL;

	return json_string_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/server"));
}

long mcptools_call_wait_ms(const struct mcptools *m, const char *name, long tool_timeout_ms, int retries,
			   long broker_timeout_ms)
{
	json_t *t = name ? json_object_get(m->by_name, name) : NULL;
	json_int_t own = json_integer_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/timeoutMs"));
	long timeout = own > 0 && own <= LONG_MAX / 64 ? (long)own : tool_timeout_ms;

	return 2 * timeout * (retries + 1) + broker_timeout_ms;
}

/* in_filter: 1 if server is one of the comma-separated names (or no filter) */
static int in_filter(const char *servers, const char *server)
{
	const char *p = servers, *name;
	size_t n = strlen(server), len;

	if (!servers || !*servers)
		return 1;
	while ((name = next_name(&p, &len)) != NULL)
		if (len == n && strncmp(name, server, n) == 0)
			return 1;
	return 0;
}

json_t *mcptools_openai(const struct mcptools *m, const char *servers, const json_t *skip, const struct toolpolicy *policy)
{
	json_t *out = json_array(), *t;
	size_t i;

	json_array_foreach(m->tools, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *server = json_string_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/server"));
		json_t *fn, *params;
		char why[TOOLSCHEMA_WHY_MAX];

		if (!out)
			return NULL;
		if (!name || !server || !in_filter(servers, server) || (skip && json_object_get(skip, name)) ||
		    !toolpolicy_allows(policy, server, name))
			continue;
		params = m->params ? json_incref(json_object_get(m->params, name))
				   : toolschema_params(json_object_get(t, "inputSchema"), why, sizeof why);
		if (!params && !m->params && errno == ENOMEM) { /* not a list missing a tool */
			json_decref(out);
			return NULL;
		}
		if (!params)
			continue; /* cannot be offered: the broker said why when it listed the tool */
		fn = openai_tool(t, name, params);
		if (!fn || json_array_append_new(out, fn) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

int mcptools_openai_text(const struct mcptools *m, const char *servers, const json_t *skip,
			 const struct toolpolicy *policy, buf_t *out, json_t *offered)
{
	json_t *t;
	size_t i;
	int n = 0;

	if (!m->texts) { /* a catalog set by hand: the texts made now */
		json_t *all = mcptools_openai(m, servers, skip, policy);

		if (!all)
			return -1;
		json_array_foreach(all, i, t) {
			char *s = json_dumps(t, JSON_COMPACT);
			int bad = !s || (n && buf_append(out, ",", 1) < 0) || buf_puts(out, s) < 0 ||
				  (offered &&
				   json_object_set_new(offered,
						       json_string_value(
							       json_object_get(json_object_get(t, "function"), "name")),
						       json_true()) < 0);

			free(s);
			if (bad) {
				json_decref(all);
				return -1;
			}
			n++;
		}
		json_decref(all);
		return n;
	}
	json_array_foreach(m->tools, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));
		const char *server = json_string_value(json_object_get(json_object_get(t, "_meta"), "mcpgw/server"));
		const json_t *text;

		if (!name || !server || !in_filter(servers, server) || (skip && json_object_get(skip, name)) ||
		    !toolpolicy_allows(policy, server, name))
			continue;
		if (!(text = json_object_get(m->texts, name)))
			continue; /* cannot be offered: the broker said why when it listed the tool */
		if ((n && buf_append(out, ",", 1) < 0) ||
		    buf_append(out, json_string_value(text), json_string_length(text)) < 0 ||
		    (offered && json_object_set_new(offered, name, json_true()) < 0))
			return -1;
		n++;
	}
	return n;
}

void mcptools_free(struct mcptools *m)
{
	mcptools_clear(m);
	if (m->gen)
		munmap((void *)m->gen, sizeof(int64_t));
	m->gen = NULL;
}
