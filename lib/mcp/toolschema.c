/* toolschema.c: MCP inputSchemas normalised into function parameters every OpenAI-compatible upstream accepts.
 *
 * What upstreams reject, from their own error messages in public threads:
 *  - OpenAI: "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'"
 *    (vercel/ai#7005; issue 13 case 6), "schema must have type 'object' and not have
 *    'oneOf'/'anyOf'/'allOf'/'enum'/'not' at the top level" (nspady/google-calendar-mcp#39,
 *    langchain-ai/langchainjs#9804), "In context=('properties', 'x'), array schema missing
 *    items" (sigoden/aichat#1049, mark3labs/mcphost#35), "object schema missing properties"
 *    (inboxapi/cli#106).
 *  - Gemini: "Unknown name \"$schema\" at '...parameters'" and "Unknown name \"$defs\""
 *    (QwenLM/qwen-code#1186, datastax/astra-assistants-api#73), "property is not defined"
 *    for `required` naming no property.
 *  - MCP servers that send `{"$schema": ...}` alone (modelcontextprotocol/servers#3051,
 *    awwaiid/mcp-server-taskwarrior#11) or a property as `true` (inngest/inngest#3305).
 * Keywords that carry meaning (additionalProperties, format, const, ...) stay: dropping them
 * would change what the tool accepts; lowering them for one provider is that provider's dialect. */
#include "mcp/toolschema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_POINTER_MAX 256 /* bytes of one $ref path segment */
#define TS_FORMS_MAX 1024  /* bytes of the description naming a top-level anyOf/oneOf's forms */

struct ts {
	const json_t *root;
	size_t nodes;
	int keep_refs;                               /* a recursive schema: $refs and definitions stay as they are */
	int cycle;                                   /* a recursive $ref was met while inlining */
	const char *stack[TOOLSCHEMA_MAX_DEPTH + 1]; /* the $refs being inlined */
	int nstack;
	char *why;
	size_t whylen;
	int nomem; /* an allocation failed (errno ENOMEM on return) */
};

/* fail: NULL, with why set (the first reason wins) */
__attribute__((format(printf, 2, 3))) static json_t *fail(struct ts *t, const char *fmt, ...)
{
	va_list ap;

	if (t->why && t->whylen && !*t->why) {
		va_start(ap, fmt);
		vsnprintf(t->why, t->whylen, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static json_t *nomem(struct ts *t)
{
	t->nomem = 1;
	return fail(t, "out of memory");
}

/* count: add v's values to the total; -1 (why set) past TOOLSCHEMA_MAX_NODES */
static int count(struct ts *t, const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;

	if (++t->nodes > TOOLSCHEMA_MAX_NODES) {
		fail(t, "larger than %d JSON values (after inlining its $refs)", TOOLSCHEMA_MAX_NODES);
		return -1;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x)
			if (count(t, x) < 0)
				return -1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (count(t, x) < 0)
				return -1;
	}
	return 0;
}

/* copy: a counted deep copy of a value that is not a schema */
static json_t *copy(struct ts *t, const json_t *v)
{
	json_t *c;

	if (count(t, v) < 0)
		return NULL;
	c = json_deep_copy(v);
	return c ? c : nomem(t);
}

static int in_list(const char *k, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(k, *list) == 0)
			return 1;
	return 0;
}

static const char *const maps[] = { "properties", "patternProperties", "dependentSchemas", "$defs", "definitions", NULL };
static const char *const singles[] = {
	"additionalProperties", "additionalItems",       "contains",         "not", "if", "then", "else",
	"propertyNames",        "unevaluatedProperties", "unevaluatedItems", NULL
};
static const char *const lists[] = { "anyOf", "oneOf", "allOf", "prefixItems", NULL };
static const char *const annotations[] = { "description", "title",    "default",   "examples",
					   "deprecated",  "readOnly", "writeOnly", NULL };

static json_t *walk(struct ts *t, const json_t *s, int depth, int prop);

/* segment: the next segment of a JSON pointer at *p, decoded (~1 /, ~0 ~, %XX) into out; -1 if too long or bad */
static int segment(const char **p, char *out, size_t outlen)
{
	size_t n = 0;
	const char *q = *p;

	while (*q && *q != '/') {
		char c = *q++;

		if (c == '~' && (*q == '0' || *q == '1'))
			c = *q++ == '0' ? '~' : '/';
		else if (c == '%' && q[0] && q[1]) {
			char hex[3] = { q[0], q[1], 0 }, *end;
			long v = strtol(hex, &end, 16);

			if (*end || v <= 0)
				return -1;
			c = (char)v;
			q += 2;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	*p = q;
	return 0;
}

/* resolve: what a local $ref ("#", "#/a/b") points at in root (borrowed), or NULL */
static const json_t *resolve(const json_t *root, const char *ref)
{
	const char *p = ref + 1;
	const json_t *cur = root;
	char seg[TS_POINTER_MAX];

	if (*p && *p != '/')
		return NULL; /* a plain-name fragment ($anchor) */
	while (cur && *p == '/') {
		p++;
		if (segment(&p, seg, sizeof seg) < 0)
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg);
		} else if (json_is_array(cur)) {
			char *end;
			long i = strtol(seg, &end, 10);

			cur = *seg && !*end && i >= 0 ? json_array_get(cur, (size_t)i) : NULL;
		} else {
			cur = NULL;
		}
	}
	return *p ? NULL : cur;
}

/* inline_ref: s has a $ref (ref): the schema it points at, normalised, with s's other keywords applied too */
static json_t *inline_ref(struct ts *t, const json_t *s, const char *ref, int depth, int prop)
{
	const json_t *target;
	json_t *res, *rest, *sib;
	const char *k;
	json_t *v;
	int only_annotations = 1, others = 0;

	if (ref[0] != '#')
		return fail(t, "its $ref '%.80s' is not local to the schema", ref);
	for (int i = 0; i < t->nstack; i++)
		if (strcmp(t->stack[i], ref) == 0) {
			t->cycle = 1;
			return fail(t, "recursive $ref '%.80s'", ref);
		}
	if (!(target = resolve(t->root, ref)))
		return fail(t, "its $ref '%.80s' does not resolve", ref);
	if (t->nstack >= TOOLSCHEMA_MAX_DEPTH)
		return fail(t, "nested deeper than %d levels", TOOLSCHEMA_MAX_DEPTH);
	t->stack[t->nstack++] = ref;
	res = walk(t, target, depth + 1, prop);
	t->nstack--;
	if (!res)
		return NULL;
	json_object_foreach((json_t *)s, k, v) {
		if (strcmp(k, "$ref") == 0 || in_list(k, (const char *const[]){ "$schema", "$comment", "$id", "$anchor",
										"$defs", "definitions", NULL }))
			continue;
		others++;
		if (!in_list(k, annotations))
			only_annotations = 0;
	}
	if (!others)
		return res;
	if (only_annotations && json_is_object(res)) { /* a description beside the $ref: it describes this use */
		json_object_foreach((json_t *)s, k, v)
			if (in_list(k, annotations) && json_object_set_new(res, k, copy(t, v)) < 0) {
				json_decref(res);
				return nomem(t);
			}
		return res;
	}
	/* 2020-12 (MCP's default dialect): keywords beside $ref apply as well as the target */
	if (!(rest = json_copy((json_t *)s)) || json_object_del(rest, "$ref") < 0) {
		json_decref(rest);
		json_decref(res);
		return nomem(t);
	}
	sib = walk(t, rest, depth + 1, 0);
	json_decref(rest);
	if (!sib) {
		json_decref(res);
		return NULL;
	}
	return json_pack("{s:[oo]}", "allOf", res, sib) ?: nomem(t);
}

/* keyword: the value of keyword k (v) in a normalised schema */
static json_t *keyword(struct ts *t, const char *k, const json_t *v, int depth)
{
	json_t *out, *x;
	const char *name;
	size_t i;

	if (in_list(k, maps)) {
		if (!json_is_object(v))
			return fail(t, "its '%s' is not an object", k);
		if (!(out = json_object()))
			return nomem(t);
		json_object_foreach((json_t *)v, name, x) {
			json_t *n = walk(t, x, depth + 1, strcmp(k, "properties") == 0);

			if (!n || json_object_set_new(out, name, n) < 0) {
				json_decref(out);
				return n ? nomem(t) : NULL;
			}
		}
		return out;
	}
	if (in_list(k, singles) || (strcmp(k, "items") == 0 && !json_is_array(v)))
		return walk(t, v, depth + 1, 0);
	if (in_list(k, lists) || strcmp(k, "items") == 0) {
		if (!json_is_array(v))
			return fail(t, "its '%s' is not an array", k);
		if (!(out = json_array()))
			return nomem(t);
		json_array_foreach(v, i, x) {
			json_t *n = walk(t, x, depth + 1, 0);

			if (!n || json_array_append_new(out, n) < 0) {
				json_decref(out);
				return n ? nomem(t) : NULL;
			}
		}
		return out;
	}
	if (strcmp(k, "dependencies") == 0 && json_is_object(v)) { /* draft-07: names, or a schema */
		if (!(out = json_object()))
			return nomem(t);
		json_object_foreach((json_t *)v, name, x) {
			json_t *n = json_is_array(x) ? copy(t, x) : walk(t, x, depth + 1, 0);

			if (!n || json_object_set_new(out, name, n) < 0) {
				json_decref(out);
				return n ? nomem(t) : NULL;
			}
		}
		return out;
	}
	return copy(t, v);
}

/* has_type: 1 if the schema's type is want, or a list naming it */
static int has_type(const json_t *o, const char *want)
{
	const json_t *ty = json_object_get(o, "type"), *x;
	size_t i;

	if (json_is_string(ty))
		return strcmp(json_string_value(ty), want) == 0;
	json_array_foreach(ty, i, x)
		if (json_is_string(x) && strcmp(json_string_value(x), want) == 0)
			return 1;
	return 0;
}

/* fix_required: `required` as a list of distinct names, each with a
 * property (a draft-3 "required": true inside a property counts); top: a
 * name the schema cannot have is an error. 0, or -1 (why set). */
static int fix_required(struct ts *t, json_t *o, int top)
{
	json_t *props = json_object_get(o, "properties"), *req = json_object_get(o, "required"), *list, *p, *x;
	const char *name;
	size_t i;
	int closed;

	if (json_is_boolean(req) && !top)
		return 0; /* draft-3, inside a property: its object takes it */
	if (!(list = json_array()))
		return nomem(t), -1;
	if (json_is_string(req) && json_array_append(list, req) < 0)
		return json_decref(list), nomem(t), -1;
	json_array_foreach(req, i, x)
		if (json_array_append(list, x) < 0)
			return json_decref(list), nomem(t), -1;
	json_object_foreach(props, name, p) {
		json_t *r3 = json_object_get(p, "required");

		if (json_is_boolean(r3)) {
			if (json_is_true(r3) && json_array_append_new(list, json_string(name)) < 0)
				return json_decref(list), nomem(t), -1;
			json_object_del(p, "required");
		}
	}
	if (!req && !json_array_size(list)) {
		json_decref(list);
		return 0;
	}
	closed = json_is_false(json_object_get(o, "additionalProperties")) && !json_object_get(o, "patternProperties");
	if (json_object_set_new(o, "required", json_array()) < 0)
		return json_decref(list), nomem(t), -1;
	req = json_object_get(o, "required");
	json_array_foreach(list, i, x) {
		size_t j;
		json_t *y;
		int dup = 0;

		if (!json_is_string(x))
			continue;
		json_array_foreach(req, j, y)
			dup |= json_equal(x, y);
		if (dup)
			continue;
		name = json_string_value(x);
		if (!json_object_get(props, name) && closed && top) {
			fail(t, "it requires '%.64s', which its additionalProperties: false forbids", name);
			json_decref(list);
			return -1;
		}
		if (!json_object_get(props, name) && !closed) { /* required with any value, as before */
			if (!props && json_object_set_new(o, "properties", json_object()) < 0)
				return json_decref(list), nomem(t), -1;
			props = json_object_get(o, "properties");
			if (json_object_set_new(props, name, json_object()) < 0)
				return json_decref(list), nomem(t), -1;
		}
		if (json_array_append(req, x) < 0)
			return json_decref(list), nomem(t), -1;
	}
	json_decref(list);
	return 0;
}

/* walk: a normalised copy of schema s; prop: s is a property's schema (booleans become objects) */
static json_t *walk(struct ts *t, const json_t *s, int depth, int prop)
{
	const json_t *ref = json_object_get(s, "$ref");
	const char *k;
	json_t *v, *out;

	if (depth > TOOLSCHEMA_MAX_DEPTH)
		return fail(t, "nested deeper than %d levels", TOOLSCHEMA_MAX_DEPTH);
	if (json_is_boolean(s)) {
		if (count(t, s) < 0)
			return NULL;
		if (!prop)
			return json_incref((json_t *)s);
		return (json_is_true(s) ? json_object() : json_pack("{s:{}}", "not")) ?: nomem(t);
	}
	if (!json_is_object(s))
		return fail(t, "a subschema is not an object");
	if (json_is_string(ref) && !t->keep_refs)
		return inline_ref(t, s, json_string_value(ref), depth, prop);
	if (json_is_string(ref) && (json_string_value(ref)[0] != '#' || !resolve(t->root, json_string_value(ref))))
		return fail(t, "its $ref '%.80s' %s", json_string_value(ref),
			    json_string_value(ref)[0] != '#' ? "is not local to the schema" : "does not resolve");
	if (count(t, json_null()) < 0 || !(out = json_object()))
		return t->nodes > TOOLSCHEMA_MAX_NODES ? NULL : nomem(t);
	json_object_foreach((json_t *)s, k, v) {
		json_t *n;

		if (strcmp(k, "$schema") == 0 || strcmp(k, "$comment") == 0 ||
		    (!t->keep_refs && in_list(k, (const char *const[]){ "$id", "$anchor", "$defs", "definitions", NULL })))
			continue;
		if (!(n = keyword(t, k, v, depth)) || json_object_set_new(out, k, n) < 0) {
			json_decref(out);
			return n ? nomem(t) : NULL;
		}
	}
	if (fix_required(t, out, 0) < 0 ||
	    (has_type(out, "array") && !json_object_get(out, "items") && !json_object_get(out, "prefixItems") &&
	     json_object_set_new(out, "items", json_object()) < 0)) { /* absent items: any item, the same as {} */
		json_decref(out);
		return t->why && *t->why ? NULL : nomem(t);
	}
	return out;
}

static const char *const mergeable[] = { "type", "properties", "required", "description", "title", NULL };

/* add_props: b's properties into o's; one both have differently: both apply (how: "allOf") or either (anyOf) */
static int add_props(struct ts *t, json_t *o, const json_t *b, const char *how)
{
	json_t *props = json_object_get(o, "properties"), *p, *old;
	const char *name;

	if (!props) {
		if (json_object_set_new(o, "properties", json_object()) < 0)
			return nomem(t), -1;
		props = json_object_get(o, "properties");
	}
	json_object_foreach(json_object_get(b, "properties"), name, p) {
		old = json_object_get(props, name);
		if (old && json_equal(old, p))
			continue;
		if (json_object_set_new(props, name, old ? json_pack("{s:[OO]}", how, old, p) : json_incref(p)) < 0)
			return nomem(t), -1;
	}
	return 0;
}

/* branch_ok: a top-level allOf/anyOf/oneOf branch that merges into an object: 1, else 0 (why set) */
static int branch_ok(struct ts *t, const json_t *b, const char *key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(b)) {
		fail(t, "a top-level %s branch is not an object schema", key);
		return 0;
	}
	if (json_object_get(b, "type") && !has_type(b, "object")) {
		fail(t, "a top-level %s branch is not an object schema", key);
		return 0;
	}
	json_object_foreach((json_t *)b, k, v)
		if (!in_list(k, mergeable) && strcmp(k, "additionalProperties") != 0) {
			fail(t, "a top-level %s branch has '%.40s', which cannot be merged into one object", key, k);
			return 0;
		}
	if (strcmp(key, "allOf") == 0 && json_object_get(b, "additionalProperties")) {
		fail(t, "a top-level allOf branch has 'additionalProperties', which cannot be merged into one object");
		return 0;
	}
	return 1;
}

/* merge_all: a top-level allOf of object schemas, into o */
static int merge_all(struct ts *t, json_t *o, const json_t *arr)
{
	json_t *b, *req = json_object_get(o, "required");
	size_t i;

	if (!req) {
		if (json_object_set_new(o, "required", json_array()) < 0)
			return nomem(t), -1;
		req = json_object_get(o, "required");
	}
	json_array_foreach(arr, i, b) {
		if (json_is_true(b))
			continue;
		if (!branch_ok(t, b, "allOf") || add_props(t, o, b, "allOf") < 0)
			return -1;
		if (json_is_array(json_object_get(b, "required")) &&
		    json_array_extend(req, json_object_get(b, "required")) < 0)
			return nomem(t), -1;
		if (!json_object_get(o, "description") && json_object_get(b, "description") &&
		    json_object_set(o, "description", json_object_get(b, "description")) < 0)
			return nomem(t), -1;
	}
	return json_object_del(o, "allOf");
}

/* describe: text appended to o's description (or made it) */
static int describe(struct ts *t, json_t *o, const char *text)
{
	const char *d = json_string_value(json_object_get(o, "description"));
	size_t n = d ? strlen(d) + 1 + strlen(text) + 1 : 0;
	char *both = n ? malloc(n) : NULL;
	int rc;

	if (n && !both)
		return nomem(t), -1;
	if (both)
		snprintf(both, n, "%s %s", d, text);
	rc = json_object_set_new(o, "description", json_string(both ? both : text));
	free(both);
	return rc < 0 ? (nomem(t), -1) : 0;
}

/* merge_any: a top-level anyOf/oneOf (key) of object schemas, into o: every
 * branch's properties, what all branches require, and the forms described */
static int merge_any(struct ts *t, json_t *o, const json_t *arr, const char *key)
{
	json_t *b, *common = NULL, *x, *req;
	char forms[TS_FORMS_MAX];
	size_t i, j, n = 0, len;
	int nform = 0;

	len = (size_t)snprintf(forms, sizeof forms, "Arguments take %s of these forms:",
			       strcmp(key, "oneOf") == 0 ? "exactly one" : "at least one");
	json_array_foreach(arr, i, b) {
		if (json_is_true(b)) { /* anything goes: the alternatives constrain nothing */
			json_decref(common);
			return json_object_del(o, key);
		}
		if (json_is_false(b))
			continue;
		if (!branch_ok(t, b, key) || add_props(t, o, b, "anyOf") < 0) {
			json_decref(common);
			return -1;
		}
		req = json_object_get(b, "required");
		if (!n) {
			common = json_is_array(req) ? json_deep_copy(req) : json_array();
		} else {
			json_t *keep = json_array();

			json_array_foreach(common, j, x) {
				size_t m;
				json_t *y;
				int in = 0;

				json_array_foreach(req, m, y)
					in |= json_equal(x, y);
				if (in && keep && json_array_append(keep, x) < 0) {
					json_decref(keep);
					keep = NULL;
				}
			}
			json_decref(common);
			common = keep;
		}
		if (!common) /* a branch's requirements lost would widen what the rest require */
			return nomem(t), -1;
		if (len < sizeof forms) {
			const char *d = json_string_value(json_object_get(b, "description"));

			len += (size_t)snprintf(forms + len, sizeof forms - len, " (%d)%s%.200s", ++nform, d ? " " : "",
						d ? d : "");
			json_array_foreach(req, j, x)
				if (len < sizeof forms)
					len += (size_t)snprintf(forms + len, sizeof forms - len, "%s%.64s",
								j ? ", " : " requires ", json_string_value(x));
			if (!json_array_size(req) && !d && len < sizeof forms)
				len += (size_t)snprintf(forms + len, sizeof forms - len, " no required arguments");
			if (len < sizeof forms)
				len += (size_t)snprintf(forms + len, sizeof forms - len, ";");
		}
		n++;
	}
	if (!n) {
		json_decref(common);
		return fail(t, "its top-level %s allows no arguments at all", key), -1;
	}
	if (!common)
		return nomem(t), -1;
	if (len >= sizeof forms)
		len = sizeof forms - 1;
	if (forms[len - 1] == ';')
		forms[len - 1] = '.';
	req = json_object_get(o, "required");
	if (!req) {
		json_object_set_new(o, "required", json_array());
		req = json_object_get(o, "required");
	}
	if (!req || json_array_extend(req, common) < 0) {
		json_decref(common);
		return nomem(t), -1;
	}
	json_decref(common);
	return describe(t, o, forms) < 0 ? -1 : json_object_del(o, key);
}

/* top: the top level made an object schema OpenAI takes. 0, or -1 (why set) */
static int top(struct ts *t, json_t *o)
{
	const json_t *ty;

	if (json_object_get(o, "$ref"))
		return fail(t, "its top level is a recursive $ref"), -1;
	if (json_is_array(json_object_get(o, "allOf")) && merge_all(t, o, json_object_get(o, "allOf")) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "oneOf" : "anyOf";

		if (json_is_array(json_object_get(o, key)) && merge_any(t, o, json_object_get(o, key), key) < 0)
			return -1;
	}
	for (const char *const *k = (const char *const[]){ "enum", "not", "const", NULL }; *k; k++)
		if (json_object_get(o, *k))
			return fail(t, "'%s' at its top level cannot be offered", *k), -1;
	ty = json_object_get(o, "type");
	if (ty && !has_type(o, "object")) {
		char *d = json_dumps(ty, JSON_ENCODE_ANY | JSON_COMPACT);

		fail(t, "its type is %.60s, not an object of named arguments", d ? d : "?");
		free(d);
		return -1;
	}
	if (json_object_set_new(o, "type", json_string("object")) < 0 ||
	    (!json_object_get(o, "properties") && json_object_set_new(o, "properties", json_object()) < 0))
		return nomem(t), -1;
	if (json_is_boolean(json_object_get(o, "required")))
		json_object_del(o, "required");
	return fix_required(t, o, 1);
}

/* toolschema_object: an object schema (input) made one to offer; NULL (why set) when it cannot be */
static json_t *toolschema_object(struct ts *t, const json_t *input)
{
	json_t *out = walk(t, input, 0, 0);

	if (!out && t->cycle) { /* recursive: the $refs stay, pointing into the definitions kept */
		*t = (struct ts){ .root = input, .why = t->why, .whylen = t->whylen, .keep_refs = 1 };
		if (t->why && t->whylen)
			*t->why = '\0';
		out = walk(t, input, 0, 0);
	}
	if (out && top(t, out) < 0) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

json_t *toolschema_params(const json_t *input, char *why, size_t whylen)
{
	struct ts t = { .root = input, .why = why, .whylen = whylen };
	json_t *out;

	if (why && whylen)
		*why = '\0';
	if (!input || json_is_null(input) || json_is_true(input))
		out = json_pack("{s:s, s:{}}", "type", "object", "properties") ?: nomem(&t);
	else if (json_is_false(input))
		out = fail(&t, "it is false: no arguments are valid");
	else if (!json_is_object(input))
		out = fail(&t, "it is not a JSON object");
	else
		out = toolschema_object(&t, input);
	if (!out)
		errno = t.nomem ? ENOMEM : EINVAL;
	return out;
}
