/* toolset.c: a server's tools kept as their compact JSON text. */
#include "toolset.h"

#include <stdlib.h>
#include <string.h>

#include "sharedtext.h"

/* retry_safe: 1 if the tool says running it twice does no harm (MCP
 * ToolAnnotations: readOnlyHint, or idempotentHint; both default false) */
static int retry_safe(const json_t *tool)
{
	const json_t *a = json_object_get(tool, "annotations");

	return json_is_true(json_object_get(a, "readOnlyHint")) || json_is_true(json_object_get(a, "idempotentHint"));
}

int toolset_add(struct toolset *ts, const json_t *tool, char *json, size_t len)
{
	const char *name = json_string_value(json_object_get(tool, "name"));
	struct toolset_tool *t;

	if (!json || !name)
		goto fail;
	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 16;
		struct toolset_tool *v = realloc(ts->v, cap * sizeof *v);

		if (!v)
			goto fail;
		ts->v = v;
		ts->cap = cap;
	}
	t = &ts->v[ts->n];
	if (!(t->name = strdup(name)))
		goto fail;
	if (!(t->json = sharedtext_take(json, len))) { /* json freed */
		free(t->name);
		return -1;
	}
	t->retry_safe = retry_safe(tool);
	ts->n++;
	ts->bytes += len;
	return 0;
fail:
	free(json);
	return -1;
}

json_t *toolset_parse(const struct toolset *ts, size_t i)
{
	return json_loadb(sharedtext_data(ts->v[i].json), sharedtext_len(ts->v[i].json), 0, NULL);
}

void toolset_move(struct toolset *to, struct toolset *from)
{
	toolset_free(to);
	*to = *from;
	*from = (struct toolset)TOOLSET_INIT;
}

void toolset_free(struct toolset *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		free(ts->v[i].name);
		sharedtext_unref(ts->v[i].json);
	}
	free(ts->v);
	*ts = (struct toolset)TOOLSET_INIT;
}
