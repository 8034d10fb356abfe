/* catalog.c: the aggregated tool list: exposed names, lookup by name, the cached tools/list answer. */
#include "catalog.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"
#include "mcp/toolname.h"
#include "persist.h"
#include "session.h"
#include "sharedtext.h"

struct catalog {
	struct session *const *sessions;
	size_t nsessions;
	struct persist *persist;
	int64_t *gen_map; /* $STATE/catalog.gen, shared with the responders (may be NULL) */
	int frozen;
	json_int_t generation;
	size_t max_bytes;          /* the listed tools' compact JSON at most (0: no bound) */
	unsigned char *left_out;   /* [nsessions]: 1 while that server is left out for max_bytes (logged once) */
	struct sharedtext *tools;  /* the tools/list result's "tools" array, serialised once and shared */
	char *meta;                /* its "_meta" object, serialised, rebuilt on state changes */
	struct catalog_entry *cat; /* sorted by exposed name */
	size_t ncat;               /* known tools (routable) */
	size_t nlisted;            /* tools of ready servers (listed) */
	char *cat_unready;         /* the "mcpgw/unready" part of the last answer, serialised */
};

static int cat_cmp(const void *a, const void *b)
{
	return strcmp(((const struct catalog_entry *)a)->exposed, ((const struct catalog_entry *)b)->exposed);
}

/* exposed_tool: a copy of the server's Tool with the exposed name and mcpgw's _meta:
 * its server, its name there, and the server's own tools/call timeout (ms) when the
 * config gives one (timeout_ms > 0), so that a responder waits for the broker's answer
 * as long as the broker may take (mcptools_call_wait_ms) */
static json_t *exposed_tool(const json_t *tool, const char *exposed, const char *server, const char *mcp_name,
			    long timeout_ms)
{
	json_t *t = json_copy((json_t *)tool), *meta;

	if (!t)
		return NULL;
	meta = json_object_get(t, "_meta");
	meta = json_is_object(meta) ? json_copy(meta) : json_object();
	if (!meta || json_object_set_new(meta, "mcpgw/server", json_string(server)) < 0 ||
	    json_object_set_new(meta, "mcpgw/mcpName", json_string(mcp_name)) < 0 ||
	    (timeout_ms > 0 && json_object_set_new(meta, "mcpgw/timeoutMs", json_integer(timeout_ms)) < 0) ||
	    json_object_set_new(t, "_meta", meta) < 0 || json_object_set_new(t, "name", json_string(exposed)) < 0) {
		json_decref(t);
		return NULL;
	}
	return t;
}

/* collect: every known tool of every enabled server (ready or not: names stay stable) */
static struct toolname *collect(const struct catalog *c, size_t *n)
{
	size_t total = 0, k = 0;
	struct toolname *tn;

	for (size_t i = 0; i < c->nsessions; i++)
		if (c->sessions[i]->state != SESSION_DISABLED)
			total += c->sessions[i]->tools.n;
	tn = calloc(total ? total : 1, sizeof *tn);
	if (!tn)
		return NULL;
	for (size_t i = 0; i < c->nsessions; i++) {
		struct session *s = c->sessions[i];

		if (s->state == SESSION_DISABLED)
			continue;
		for (size_t j = 0; j < s->tools.n; j++) {
			tn[k].server = s->cfg->name;
			tn[k].mcp_name = s->tools.v[j].name;
			k++;
		}
	}
	*n = k;
	return tn;
}

static void save_registry(const struct catalog *c, const struct toolname *tn, size_t n)
{
	struct registry_tool *rt;
	struct sharedtext **texts;
	size_t k = 0;

	if (!c->persist)
		return;
	rt = calloc(n ? n : 1, sizeof *rt);
	texts = calloc(n ? n : 1, sizeof *texts);
	if (!rt || !texts) {
		log_error("registry: out of memory saving tools");
		free(rt);
		free(texts);
		return;
	}
	for (size_t i = 0; i < c->nsessions; i++) {
		const struct toolset *ts = &c->sessions[i]->tools;

		if (c->sessions[i]->state == SESSION_DISABLED)
			continue;
		for (size_t j = 0; j < ts->n; j++) {
			rt[k].server = tn[k].server;
			rt[k].mcp_name = tn[k].mcp_name;
			rt[k].exposed_name = tn[k].exposed;
			rt[k].tool_json = sharedtext_data(ts->v[j].json);
			texts[k] = ts->v[j].json;
			k++;
		}
	}
	persist_tools(c->persist, rt, texts, n);
	free(rt);
	free(texts);
}

/* cat_unready: the enabled servers that are not ready, as
 * [{name, state, failing, last_error}] ("failing": its last starts failed,
 * so it is not worth waiting for); *nready: how many are ready. New
 * reference, NULL on ENOMEM. */
static json_t *cat_unready(const struct catalog *c, int *nready)
{
	json_t *out = json_array();

	*nready = 0;
	for (size_t i = 0; out && i < c->nsessions; i++) {
		const struct session *s = c->sessions[i];
		json_t *o;

		if (s->state == SESSION_DISABLED)
			continue;
		if (s->state == SESSION_READY) {
			(*nready)++;
			continue;
		}
		o = json_pack("{s:s, s:s, s:b, s:s?}", "name", s->cfg->name, "state", session_state_name(s->state),
			      "failing", s->fail_streak > 0, "last_error", *s->last_error ? s->last_error : NULL);
		if (!o || json_array_append_new(out, o) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* cat_configured: every configured server's name, disabled ones too, in
 * the config's order ("mcpgw/servers"): what a client may name in a
 * filter. New reference, NULL on ENOMEM. */
static json_t *cat_configured(const struct catalog *c)
{
	json_t *out = json_array();

	for (size_t i = 0; out && i < c->nsessions; i++)
		if (json_array_append_new(out, json_string(c->sessions[i]->cfg->name)) < 0) {
			json_decref(out);
			return NULL;
		}
	return out;
}

/* cat_publish: the tools/list answer's _meta from the servers' states, under a new
 * generation (its tools array is c->tools, "[]" before the first rebuild); unless force,
 * only when the servers that are not ready changed. 0, or -1 on ENOMEM (the previous
 * answer stays). */
static int cat_publish(struct catalog *c, int force)
{
	int nready;
	json_t *unready = cat_unready(c, &nready), *meta = NULL;
	json_t *configured = cat_configured(c);
	char *key = unready ? json_dumps(unready, JSON_COMPACT) : NULL, *dumped = NULL;
	int rc = -1;

	if (!key || !configured || (!c->tools && !(c->tools = sharedtext_copy("[]", 2))))
		goto out;
	if (!force && c->cat_unready && c->meta && strcmp(key, c->cat_unready) == 0) {
		rc = 0;
		goto out;
	}
	meta = json_pack("{s:I, s:i, s:O, s:O}", "mcpgw/generation", c->generation + 1, "mcpgw/ready", nready,
			 "mcpgw/unready", unready, "mcpgw/servers", configured);
	if (!meta || !(dumped = json_dumps(meta, JSON_COMPACT)))
		goto out;
	c->generation++;
	free(c->meta);
	free(c->cat_unready);
	c->meta = dumped;
	c->cat_unready = key;
	dumped = key = NULL;
	if (c->gen_map) /* responders compare this with their cached catalog's generation */
		__atomic_store_n(c->gen_map, (int64_t)c->generation, __ATOMIC_RELEASE);
	rc = 0;
out:
	free(key);
	free(dumped);
	json_decref(meta);
	json_decref(unready);
	json_decref(configured);
	return rc;
}

/* cat_server_tools: session s's tools as listed (exposed names from tn, from index *t on,
 * which is advanced), appended to out each with a comma after it. 0, or -1 on ENOMEM. */
static int cat_server_tools(const struct session *s, const struct toolname *tn, size_t *t, buf_t *out)
{
	for (size_t j = 0; j < s->tools.n; j++) { /* one tool's tree at a time */
		json_t *tool = toolset_parse(&s->tools, j);
		json_t *e = tool ? exposed_tool(tool, tn[*t].exposed, s->cfg->name, tn[*t].mcp_name, s->cfg->timeout_ms)
				 : NULL;
		int rc = e ? jr_append(out, e) : -1;

		json_decref(e);
		json_decref(tool);
		(*t)++;
		if (rc < 0 || buf_append(out, ",", 1) < 0)
			return -1;
	}
	return 0;
}

/* cat_fit: leave the largest servers' lists out (listed[i] set to 0) until the rest take
 * at most c->max_bytes (bytes[i]: server i's part); a server is logged when it is first
 * left out and when it is back */
static void cat_fit(struct catalog *c, unsigned char *listed, const size_t *bytes, const size_t *ntools)
{
	size_t total = 0;

	for (size_t i = 0; i < c->nsessions; i++)
		total += listed[i] ? bytes[i] : 0;
	while (c->max_bytes && total > c->max_bytes) {
		size_t big = 0;

		for (size_t i = 1; i < c->nsessions; i++)
			if (listed[i] && (!listed[big] || bytes[i] > bytes[big]))
				big = i;
		if (!listed[big])
			break;
		if (!c->left_out[big])
			log_error("server %s: its %zu tools (%zu bytes) would push the tool catalog past %zu bytes "
				  "(7/8 of MCPGW_MAX_MESSAGE_BYTES: the whole catalog is one message): left out of "
				  "tools/list, the other servers keep theirs (lower MCPGW_SERVER_MAX_TOOLS_BYTES or "
				  "filter its tools)",
				  c->sessions[big]->cfg->name, ntools[big], bytes[big], c->max_bytes);
		c->left_out[big] = 2; /* 2: left out this time */
		total -= bytes[big];
		listed[big] = 0;
	}
	for (size_t i = 0; i < c->nsessions; i++) {
		if (c->left_out[i] == 1 && listed[i])
			log_info("server %s: its tools fit the catalog again and are listed", c->sessions[i]->cfg->name);
		c->left_out[i] = c->left_out[i] == 2 || (c->left_out[i] == 1 && !listed[i]);
	}
}

/* cat_close_list: the servers' parts of text (server i's at start[i], bytes[i] long, each
 * tool with a comma after it; "[" before them) that are listed moved together in place
 * and the array closed; *nlisted: their tools */
static void cat_close_list(const struct catalog *c, buf_t *text, const unsigned char *listed, const size_t *start,
			   const size_t *bytes, const size_t *ntools, size_t *nlisted)
{
	size_t w = 1;

	*nlisted = 0;
	for (size_t i = 0; i < c->nsessions; i++) {
		if (!listed[i])
			continue;
		memmove(text->data + w, text->data + start[i], bytes[i]);
		w += bytes[i];
		*nlisted += ntools[i];
	}
	if (w > 1) /* the last tool's comma */
		w--;
	text->data[w] = ']'; /* w <= text->len: within the buffer, and so is the NUL after it */
	text->len = w + 1;
	text->data[text->len] = '\0';
}

void catalog_rebuild(struct catalog *c)
{
	size_t n = 0, k = 0, ns = c->nsessions ? c->nsessions : 1, nlisted;
	struct toolname *tn = collect(c, &n);
	struct catalog_entry *cat = NULL;
	unsigned char *listed = calloc(ns, 1);
	size_t *start = calloc(ns, sizeof *start), *bytes = calloc(ns, sizeof *bytes),
	       *ntools = calloc(ns, sizeof *ntools);
	buf_t text = BUF_INIT;
	size_t text_len;
	struct sharedtext *tools;

	if (!tn || !listed || !start || !bytes || !ntools || toolname_assign(tn, n) < 0 ||
	    !(cat = calloc(n ? n : 1, sizeof *cat)) || buf_append(&text, "[]", 2) < 0)
		goto nomem;
	text.len = 1; /* "[": the tools go after it; "[]" made room for the "]" and its NUL */
	for (size_t i = 0, t = 0; i < c->nsessions; i++) {
		struct session *s = c->sessions[i];
		size_t t0 = t;

		if (s->state == SESSION_DISABLED)
			continue;
		for (size_t j = 0; j < s->tools.n; j++) {
			/* every known tool routes (a call waits for a restarting server or
			 * says why it is unavailable); only ready servers' tools are listed */
			snprintf(cat[k].exposed, sizeof cat[k].exposed, "%s", tn[t].exposed);
			cat[k].session = s;
			cat[k].mcp_name = tn[t].mcp_name;
			cat[k].retry_safe = s->tools.v[j].retry_safe;
			k++;
			t++;
		}
		if (s->state != SESSION_READY)
			continue;
		start[i] = text.len;
		if (cat_server_tools(s, tn, &t0, &text) < 0)
			goto nomem;
		bytes[i] = text.len - start[i];
		ntools[i] = s->tools.n;
		listed[i] = 1;
	}
	cat_fit(c, listed, bytes, ntools);
	cat_close_list(c, &text, listed, start, bytes, ntools, &nlisted);
	qsort(cat, k, sizeof *cat, cat_cmp);
	text_len = text.len; /* read before buf_steal empties text: the order arguments are evaluated in is unspecified */
	if (!(tools = sharedtext_take(buf_steal(&text), text_len)))
		goto nomem;
	{
		struct sharedtext *old = c->tools;

		c->tools = tools;
		if (cat_publish(c, 1) < 0) {
			c->tools = old;
			sharedtext_unref(tools);
			goto nomem;
		}
		sharedtext_unref(old);
	}
	c->nlisted = nlisted;
	save_registry(c, tn, n);
	free(c->cat);
	c->cat = cat;
	c->ncat = k;
	log_debug("catalog: generation %lld, %zu tools listed of %zu known", (long long)c->generation, nlisted, n);
	cat = NULL;
	goto out;
nomem:
	log_error("catalog: out of memory; keeping the previous tool list");
out:
	buf_free(&text);
	free(listed);
	free(start);
	free(bytes);
	free(ntools);
	free(tn);
	free(cat);
}

void catalog_states_changed(struct catalog *c)
{
	if (c->frozen)
		return;
	if (cat_publish(c, 0) < 0)
		log_error("catalog: out of memory; the tool list does not show the servers' states");
}

const struct catalog_entry *catalog_find(const struct catalog *c, const char *exposed)
{
	struct catalog_entry key;

	if (strlen(exposed) >= sizeof key.exposed || !c->cat)
		return NULL;
	strcpy(key.exposed, exposed);
	return bsearch(&key, c->cat, c->ncat, sizeof *c->cat, cat_cmp);
}

void catalog_freeze(struct catalog *c)
{
	c->frozen = 1;
}

struct sharedtext *catalog_tools(const struct catalog *c)
{
	return c->meta ? c->tools : NULL;
}

const char *catalog_meta(const struct catalog *c)
{
	return c->meta;
}

json_int_t catalog_generation(const struct catalog *c)
{
	return c->generation;
}

size_t catalog_listed(const struct catalog *c)
{
	return c->nlisted;
}

struct catalog *catalog_new(struct session *const *sessions, size_t n, struct persist *persist, int64_t *gen_map,
			    json_int_t generation, size_t max_bytes)
{
	struct catalog *c = calloc(1, sizeof *c);

	if (!c || !(c->left_out = calloc(n ? n : 1, 1))) {
		free(c);
		return NULL;
	}
	c->sessions = sessions;
	c->nsessions = n;
	c->persist = persist;
	c->gen_map = gen_map;
	c->generation = generation;
	c->max_bytes = max_bytes;
	return c;
}

void catalog_free(struct catalog *c)
{
	if (!c)
		return;
	free(c->cat);
	sharedtext_unref(c->tools);
	free(c->meta);
	free(c->cat_unready);
	free(c->left_out);
	free(c);
}
