/* toolcalls.c: tool calls assembled from streamed deltas or whole messages in every provider's shape, ids minted where missing. */
#include "openai/toolcalls.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/randid.h"

void toolcalls_init(struct toolcalls *tc, int max, const char *origin)
{
	memset(tc, 0, sizeof *tc);
	tc->max = max > 0 ? max : 1;
	tc->last = -1;
	tc->origin = origin;
}

void toolcalls_reset(struct toolcalls *tc)
{
	for (int i = 0; i < tc->n; i++) {
		free(tc->calls[i].id);
		free(tc->calls[i].name);
		buf_free(&tc->calls[i].args);
		json_decref(tc->calls[i].extra);
	}
	if (tc->n)
		memset(tc->calls, 0, (size_t)tc->n * sizeof *tc->calls);
	tc->n = 0;
	tc->last = -1;
}

void toolcalls_free(struct toolcalls *tc)
{
	toolcalls_reset(tc);
	free(tc->calls);
	tc->calls = NULL;
	tc->cap = 0;
}

/* tc_complain: log what could not be read (why), quoting the start of v; returns status */
static enum toolcalls_status tc_complain(const struct toolcalls *tc, enum toolcalls_status status, const char *why,
					 const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t len = text ? strlen(text) : 0;

	log_warn("upstream %s: %s: %.*s%s", tc->origin ? tc->origin : "(the upstream)", why, TOOLCALLS_EXCERPT_MAX,
		 text ? text : "(unprintable)", len > TOOLCALLS_EXCERPT_MAX ? "..." : "");
	free(text);
	return status;
}

/* tc_merge: src's members into dst (objects merged member by member, any other value replaces); 0 or -1 */
static int tc_merge(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v, *have;

	json_object_foreach((json_t *)src, k, v) {
		have = json_object_get(dst, k);
		if (json_is_object(have) && json_is_object(v)) {
			if (tc_merge(have, v) < 0)
				return -1;
		} else if (json_object_set_new(dst, k, json_deep_copy(v)) < 0) {
			return -1;
		}
	}
	return 0;
}

json_t *toolcalls_strip(json_t *o)
{
	json_t *fn;

	json_object_del(o, "id");
	json_object_del(o, "index");
	json_object_del(o, "type");
	fn = json_object_get(o, "function");
	if (!json_is_object(fn))
		return NULL;
	json_object_del(fn, "name");
	json_object_del(fn, "arguments");
	return fn;
}

/* tc_extras: the members of a call other than the ones assembled here
 * (id, index, type, function.name, function.arguments) into *extras (new
 * reference, NULL when there are none); 0, or -1 on ENOMEM (extras such as
 * Gemini's thought signature are needed by the next round: not dropped) */
static int tc_extras(const json_t *call, json_t **extras)
{
	json_t *o = json_deep_copy(call), *fn;

	*extras = NULL;
	if (!o)
		return -1;
	fn = toolcalls_strip(o);
	if (!fn || json_object_size(fn) == 0)
		json_object_del(o, "function");
	if (json_object_size(o) == 0)
		json_decref(o);
	else
		*extras = o;
	return 0;
}

/* tc_new: a new call with id (NULL or "": one is minted) and the
 * upstream's index (-1: none); its number, or -status */
static int tc_new(struct toolcalls *tc, const char *id, long index, const json_t *v)
{
	char minted[64];
	struct toolcall *c;

	if (tc->n == tc->max)
		return -(int)tc_complain(tc, TOOLCALLS_EFULL, "more tool calls in one answer than the gateway takes", v);
	if (tc->n == tc->cap) {
		int cap = tc->cap ? tc->cap * 2 : 4;
		struct toolcall *calls;

		if (cap > tc->max)
			cap = tc->max;
		if (!(calls = realloc(tc->calls, (size_t)cap * sizeof *calls)))
			return -TOOLCALLS_ENOMEM;
		memset(calls + tc->cap, 0, (size_t)(cap - tc->cap) * sizeof *calls);
		tc->calls = calls;
		tc->cap = cap;
	}
	c = &tc->calls[tc->n];
	if (!id || !*id) {
		if (randid_new(minted, sizeof minted, RANDID_CALL_PREFIX, RANDID_CALL_CHARS) < 0)
			return -TOOLCALLS_ENOMEM;
		id = minted;
		c->minted = 1;
	}
	c->id = strdup(id);
	c->name = strdup("");
	c->index = index;
	if (!c->id || !c->name) {
		free(c->id);
		free(c->name);
		memset(c, 0, sizeof *c);
		return -TOOLCALLS_ENOMEM;
	}
	return tc->n++;
}

/* tc_fill: what a delta or an element says about call c: its name (the
 * first one stays), arguments (text appended, an object serialised), extras */
static enum toolcalls_status tc_fill(struct toolcalls *tc, struct toolcall *c, const json_t *v)
{
	const json_t *fn = json_object_get(v, "function");
	const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
	enum toolcalls_status st = TOOLCALLS_OK;
	json_t *extra;
	char *text;

	if (fn && !json_is_object(fn) && !json_is_null(fn))
		return tc_complain(tc, TOOLCALLS_EBAD, "a tool call whose \"function\" is not an object", v);
	if (json_string_length(name)) {
		if (!*c->name) {
			char *s = strdup(json_string_value(name));

			if (!s)
				return TOOLCALLS_ENOMEM;
			free(c->name);
			c->name = s;
		} else if (strcmp(c->name, json_string_value(name)) != 0) {
			st = tc_complain(tc, TOOLCALLS_EBAD, "a tool call renamed half-way (the first name kept)", v);
		}
	} else if (name && !json_is_string(name) && !json_is_null(name)) {
		st = tc_complain(tc, TOOLCALLS_EBAD, "a tool call whose name is not a string", v);
	}
	if (json_is_string(args)) {
		if (buf_append(&c->args, json_string_value(args), json_string_length(args)) < 0)
			return TOOLCALLS_ENOMEM;
	} else if (args && !json_is_null(args)) {
		/* some servers send the arguments as a JSON object, not as its text */
		if (!json_is_object(args))
			st = tc_complain(tc, TOOLCALLS_EBAD,
					 "tool call arguments that are neither text nor an object "
					 "(passed on as their JSON text)",
					 v);
		else if (c->args.len)
			return tc_complain(tc, TOOLCALLS_EBAD, "tool call arguments as an object after text", v);
		if (!(text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)) || buf_puts(&c->args, text) < 0) {
			free(text);
			return TOOLCALLS_ENOMEM;
		}
		free(text);
	}
	if (tc_extras(v, &extra) < 0)
		return TOOLCALLS_ENOMEM;
	if (extra) {
		if (!c->extra)
			c->extra = json_incref(extra);
		else if (tc_merge(c->extra, extra) < 0)
			st = TOOLCALLS_ENOMEM;
		json_decref(extra);
	}
	return st;
}

/* tc_index: the delta's "index" (an integer >= 0), -1 when it has none */
static long tc_index(const struct toolcalls *tc, const json_t *v, enum toolcalls_status *st)
{
	const json_t *i = json_object_get(v, "index");

	if (!i || json_is_null(i))
		return -1;
	if (json_is_integer(i) && json_integer_value(i) >= 0)
		return (long)json_integer_value(i);
	*st = tc_complain(tc, TOOLCALLS_EBAD, "a tool call delta whose index is not a number >= 0 (read as none)", v);
	return -1;
}

/* tc_find: the latest call with that id (id non-empty) or else that index; -1 if none */
static int tc_find(const struct toolcalls *tc, const char *id, long index)
{
	for (int i = tc->n - 1; i >= 0; i--)
		if (id && *id ? strcmp(tc->calls[i].id, id) == 0 : index >= 0 && tc->calls[i].index == index)
			return i;
	return -1;
}

/* tc_continues: the call a delta without id and index continues, -1 when it starts a new one */
static int tc_continues(const struct toolcalls *tc, const json_t *v)
{
	const struct toolcall *c = tc->last >= 0 ? &tc->calls[tc->last] : NULL;
	const char *name = json_string_value(json_object_get(json_object_get(v, "function"), "name"));

	if (!c)
		return -1;
	/* a name where the latest call has one and arguments already: the next call */
	if (name && *name && *c->name && c->args.len)
		return -1;
	return tc->last;
}

enum toolcalls_status toolcalls_delta(struct toolcalls *tc, const json_t *delta, int *which)
{
	enum toolcalls_status st = TOOLCALLS_OK, st2;
	const json_t *idv;
	const char *id;
	long index;
	int i;

	*which = -1;
	if (!json_is_object(delta))
		return tc_complain(tc, TOOLCALLS_EBAD, "a tool call delta that is not an object", delta);
	idv = json_object_get(delta, "id");
	if (idv && !json_is_string(idv) && !json_is_null(idv))
		st = tc_complain(tc, TOOLCALLS_EBAD, "a tool call delta whose id is not a string (read as none)", delta);
	id = json_string_value(idv);
	index = tc_index(tc, delta, &st);
	if (id && *id)
		i = tc_find(tc, id, -1);
	else if (index >= 0)
		i = tc_find(tc, NULL, index);
	else
		i = tc_continues(tc, delta);
	if (i < 0) {
		if (!(id && *id) && index < 0 &&
		    !json_string_length(json_object_get(json_object_get(delta, "function"), "name")))
			return tc_complain(tc, TOOLCALLS_EBAD,
					   "a tool call delta with no id, index or name that "
					   "continues no call (skipped)",
					   delta);
		if ((i = tc_new(tc, id, index, delta)) < 0)
			return (enum toolcalls_status) - i;
	}
	tc->last = *which = i;
	st2 = tc_fill(tc, &tc->calls[i], delta);
	return st2 != TOOLCALLS_OK ? st2 : st;
}

enum toolcalls_status toolcalls_message(struct toolcalls *tc, const json_t *tool_calls)
{
	enum toolcalls_status st = TOOLCALLS_OK, one;
	const json_t *v;
	const char *id;
	size_t k;
	int i;

	if (json_is_object(tool_calls)) { /* one call where a list belongs: read as a list of one */
		json_t *a = json_pack("[O]", tool_calls);

		st = a ? toolcalls_message(tc, a) : TOOLCALLS_ENOMEM;
		json_decref(a);
		return st;
	}
	if (!json_is_array(tool_calls))
		return tool_calls && !json_is_null(tool_calls)
			       ? tc_complain(tc, TOOLCALLS_EBAD, "\"tool_calls\" that is not a list", tool_calls)
			       : TOOLCALLS_OK;
	json_array_foreach(tool_calls, k, v) {
		if (!json_is_object(v)) {
			one = tc_complain(tc, TOOLCALLS_EBAD, "a tool call that is not an object", v);
		} else {
			id = json_string_value(json_object_get(v, "id"));
			if (id && *id && tc_find(tc, id, -1) >= 0) {
				(void)tc_complain(tc, TOOLCALLS_OK,
						  "two tool calls with one id (the later one gets a new id)", v);
				id = NULL;
			}
			i = tc_new(tc, id, -1, v);
			one = i < 0 ? (enum toolcalls_status) - i : tc_fill(tc, &tc->calls[i], v);
			if (i >= 0)
				tc->last = i;
		}
		if (st == TOOLCALLS_OK)
			st = one;
		if (one == TOOLCALLS_ENOMEM)
			break;
	}
	return st;
}

const char *toolcalls_args(const struct toolcalls *tc, int i)
{
	return tc->calls[i].args.data ? tc->calls[i].args.data : "";
}

json_t *toolcalls_json(const struct toolcalls *tc, int i)
{
	const struct toolcall *c = &tc->calls[i];
	json_t *o = c->extra ? json_deep_copy(c->extra) : json_object(), *fn;

	if (!o)
		return NULL;
	fn = json_object_get(o, "function");
	if (!json_is_object(fn)) {
		fn = json_object();
		if (json_object_set_new(o, "function", fn) < 0)
			fn = NULL;
	}
	/* no arguments at all: "{}", what a function without parameters is called with */
	if (!fn || json_object_set_new(fn, "name", json_string(c->name)) < 0 ||
	    json_object_set_new(fn, "arguments", json_string(c->args.len ? c->args.data : "{}")) < 0 ||
	    json_object_set_new(o, "id", json_string(c->id)) < 0 ||
	    json_object_set_new(o, "type", json_string("function")) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}
