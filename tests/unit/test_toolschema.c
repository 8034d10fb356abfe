/* test_toolschema.c: MCP inputSchemas seen in public servers and bug reports, normalised into parameters upstreams accept, meaning kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/toolschema.h"

static char why[TOOLSCHEMA_WHY_MAX];

/* norm: toolschema_params of the JSON text (NULL: no inputSchema); new reference or NULL */
static json_t *norm(const char *text)
{
	json_t *in = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL, *out;

	if (text)
		assert_non_null(in);
	out = toolschema_params(in, why, sizeof why);
	json_decref(in);
	return out;
}

/* at: the value at a dotted path ("properties.items.items.type") */
static json_t *at(json_t *o, const char *path)
{
	char buf[256], *save = NULL, *k;

	snprintf(buf, sizeof buf, "%s", path);
	for (k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
		o = json_is_array(o) ? json_array_get(o, (size_t)atoi(k)) : json_object_get(o, k);
	return o;
}

static const char *str(json_t *o, const char *path)
{
	return json_string_value(at(o, path));
}

/* assert_json_is: out equals the JSON text */
static void assert_json_is(json_t *out, const char *text)
{
	json_t *want = json_loads(text, 0, NULL);
	char *got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(want);
	if (!json_equal(out, want))
		fail_msg("got %s\nwant %s", got, text);
	free(got);
	json_decref(want);
}

/* valid_for_openai: what OpenAI checks of function parameters, applied to the result */
static void assert_offerable(json_t *p)
{
	assert_non_null(p);
	assert_string_equal(str(p, "type"), "object");
	assert_true(json_is_object(json_object_get(p, "properties")));
	for (const char *const *k = (const char *const[]){ "anyOf", "oneOf", "allOf", "enum", "not", "$schema", NULL };
	     *k; k++)
		assert_null(json_object_get(p, *k));
}

static void test_no_type_case_6(void **state)
{
	/* issue 13 case 6: OpenAI answers "got 'type: \"None\"'" for every request */
	json_t *p = norm("{\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}");
	(void)state;

	assert_offerable(p);
	assert_json_is(p,
		       "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}");
	json_decref(p);
}

static void test_missing_empty_and_dialect_only(void **state)
{
	const char *empty[] = { NULL, "null", "true", "{}", "{\"type\":\"object\"}",
				/* modelcontextprotocol/servers#3051, awwaiid/mcp-server-taskwarrior#11 */
				"{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}",
				"{\"type\":[\"object\",\"null\"],\"$comment\":\"zod\"}" };
	(void)state;

	for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
		json_t *p = norm(empty[i]);

		assert_offerable(p);
		assert_json_is(p, "{\"type\":\"object\",\"properties\":{}}");
		json_decref(p);
	}
}

static void test_valid_schema_unchanged(void **state)
{
	/* the bundled sqlite server's write_query, and one with every common keyword */
	const char *ok[] = {
		"{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\",\"description\":\"SQL\"}},"
		"\"required\":[\"query\"],\"additionalProperties\":false}",
		"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10,"
		"\"default\":3},\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},\"when\":{\"type\":\"string\","
		"\"format\":\"date-time\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5},"
		"\"meta\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},\"opt\":{\"anyOf\":[{"
		"\"type\":\"string\"},{\"type\":\"null\"}]}},\"required\":[\"n\"]}",
	};
	(void)state;

	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		json_t *p = norm(ok[i]);

		assert_offerable(p);
		assert_json_is(p, ok[i]);
		json_decref(p);
	}
}

static void test_pydantic_defs_inlined(void **state)
{
	/* FastMCP / pydantic: models under $defs, used through $ref (Gemini: Unknown name "$defs") */
	json_t *p = norm("{\"$defs\":{\"Priority\":{\"enum\":[\"low\",\"high\"],\"type\":\"string\"},\"Item\":{"
			 "\"properties\":{\"name\":{\"type\":\"string\"},\"priority\":{\"$ref\":\"#/$defs/Priority\","
			 "\"default\":\"low\"}},\"required\":[\"name\"],\"type\":\"object\",\"title\":\"Item\"}},"
			 "\"properties\":{\"items\":{\"items\":{\"$ref\":\"#/$defs/Item\"},\"type\":\"array\"}},"
			 "\"required\":[\"items\"],\"title\":\"addArguments\",\"type\":\"object\"}");
	(void)state;

	assert_offerable(p);
	assert_null(json_object_get(p, "$defs"));
	assert_string_equal(str(p, "properties.items.items.type"), "object");
	assert_string_equal(str(p, "properties.items.items.required.0"), "name");
	assert_string_equal(str(p, "properties.items.items.properties.priority.enum.1"), "high");
	assert_string_equal(str(p, "properties.items.items.properties.priority.default"), "low");
	assert_null(at(p, "properties.items.items.properties.priority.$ref"));
	json_decref(p);

	/* the whole inputSchema a $ref (some generators), and pointer escapes */
	p = norm("{\"$ref\":\"#/definitions/a~1b%20c\",\"definitions\":{\"a/b c\":{\"type\":\"object\",\"properties\":{"
		 "\"x\":{\"type\":\"number\"}}}}}");
	assert_offerable(p);
	assert_json_is(p, "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}}}");
	json_decref(p);
}

static void test_ref_with_other_keywords_applies_both(void **state)
{
	json_t *p = norm("{\"type\":\"object\",\"$defs\":{\"S\":{\"type\":\"string\"}},\"properties\":{\"a\":{"
			 "\"$ref\":\"#/$defs/S\",\"maxLength\":4}}}");
	(void)state;

	assert_offerable(p);
	assert_json_is(p, "{\"type\":\"object\",\"properties\":{\"a\":{\"allOf\":[{\"type\":\"string\"},"
			  "{\"maxLength\":4}]}}}");
	json_decref(p);
}

static void test_recursive_refs_kept(void **state)
{
	json_t *p = norm("{\"type\":\"object\",\"$defs\":{\"Node\":{\"type\":\"object\",\"properties\":{\"children\":{"
			 "\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/Node\"}}}}},\"properties\":{\"root\":{"
			 "\"$ref\":\"#/$defs/Node\"}},\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}");
	(void)state;

	assert_offerable(p);
	assert_string_equal(str(p, "properties.root.$ref"), "#/$defs/Node");
	assert_string_equal(str(p, "$defs.Node.properties.children.items.$ref"), "#/$defs/Node");
	json_decref(p);
}

static void test_bad_refs_left_out(void **state)
{
	json_t *p = norm("{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/Missing\"}}}");
	(void)state;

	assert_null(p);
	assert_non_null(strstr(why, "$ref '#/$defs/Missing' does not resolve"));
	p = norm("{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"https://example.com/a.json\"}}}");
	assert_null(p);
	assert_non_null(strstr(why, "not local"));
	/* recursive, and one of its $refs dangles: kept $refs must still resolve */
	p = norm("{\"type\":\"object\",\"$defs\":{\"N\":{\"properties\":{\"n\":{\"$ref\":\"#/$defs/N\"},\"m\":{"
		 "\"$ref\":\"#/$defs/Gone\"}}}},\"properties\":{\"r\":{\"$ref\":\"#/$defs/N\"}}}");
	assert_null(p);
	assert_non_null(strstr(why, "does not resolve"));
}

static void test_array_without_items(void **state)
{
	/* OpenAI: "In context=('properties', 'texts'), array schema missing items" (mark3labs/mcphost#35) */
	json_t *p = norm("{\"type\":\"object\",\"properties\":{\"texts\":{\"type\":\"array\",\"description\":\"words\"},"
			 "\"maybe\":{\"type\":[\"array\",\"null\"]},\"tuple\":{\"type\":\"array\",\"prefixItems\":[{"
			 "\"type\":\"string\"}]},\"nested\":{\"type\":\"array\",\"items\":{\"type\":\"array\"}}},"
			 "\"required\":[\"texts\"]}");
	(void)state;

	assert_offerable(p);
	assert_json_is(at(p, "properties.texts"), "{\"type\":\"array\",\"description\":\"words\",\"items\":{}}");
	assert_json_is(at(p, "properties.maybe.items"), "{}");
	assert_null(at(p, "properties.tuple.items"));
	assert_json_is(at(p, "properties.nested.items.items"), "{}");
	json_decref(p);
}

static void test_boolean_properties(void **state)
{
	/* inngest/inngest#3305: "data": true */
	json_t *p = norm("{\"type\":\"object\",\"required\":[\"functionId\"],\"properties\":{\"data\":true,"
			 "\"functionId\":{\"type\":\"string\"},\"never\":false},\"additionalProperties\":false}");
	(void)state;

	assert_offerable(p);
	assert_json_is(at(p, "properties.data"), "{}");
	assert_json_is(at(p, "properties.never"), "{\"not\":{}}");
	assert_true(json_is_false(json_object_get(p, "additionalProperties"))); /* not a property: stays a boolean */
	json_decref(p);
}

static void test_required_cleaned(void **state)
{
	json_t *p = norm("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
			 "\"required\":[\"a\",\"a\",7,\"ghost\"]}");
	(void)state;

	assert_offerable(p);
	assert_json_is(json_object_get(p, "required"), "[\"a\",\"ghost\"]");
	assert_json_is(at(p, "properties.ghost"), "{}"); /* required with any value: the same as before */
	json_decref(p);

	/* a name the schema forbids: the tool cannot be called at all */
	p = norm("{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"],\"additionalProperties\":false}");
	assert_null(p);
	assert_non_null(strstr(why, "'b'"));

	/* draft-3: "required": true inside the property */
	p = norm("{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"required\":true},\"q\":{"
		 "\"type\":\"string\",\"required\":false}}}");
	assert_offerable(p);
	assert_json_is(p, "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"},\"q\":{\"type\":"
			  "\"string\"}},\"required\":[\"path\"]}");
	json_decref(p);
}

static void test_top_level_anyof_merged(void **state)
{
	/* nspady/google-calendar-mcp#39: "must not have 'oneOf'/'anyOf'/... at the top level" */
	json_t *p =
		norm("{\"type\":\"object\",\"description\":\"Update an event.\",\"properties\":{\"calendarId\":{"
		     "\"type\":\"string\"}},\"required\":[\"calendarId\"],\"oneOf\":[{\"properties\":{\"eventId\":{"
		     "\"type\":\"string\"}},\"required\":[\"eventId\",\"calendarId\"]},{\"properties\":{\"query\":{"
		     "\"type\":\"string\"}},\"required\":[\"query\",\"calendarId\"],\"description\":\"by search\"}]}");
	(void)state;

	assert_offerable(p);
	assert_string_equal(str(p, "properties.eventId.type"), "string");
	assert_string_equal(str(p, "properties.query.type"), "string");
	assert_json_is(json_object_get(p, "required"), "[\"calendarId\"]");
	assert_string_equal(str(p, "description"),
			    "Update an event. Arguments take exactly one of these forms: (1) requires eventId, "
			    "calendarId; (2) by search requires query, calendarId.");
	json_decref(p);

	/* no type, only anyOf (chatanywhere/GPT_API_free#403) */
	p = norm("{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"a\"]},"
		 "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"}}}]}");
	assert_offerable(p);
	assert_json_is(at(p, "properties.a"), "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\"}]}");
	assert_json_is(json_object_get(p, "required"), "[]");
	json_decref(p);
}

static void test_top_level_allof_merged(void **state)
{
	json_t *p = norm("{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":["
			 "\"a\"]},{\"properties\":{\"b\":{\"type\":\"integer\"},\"a\":{\"maxLength\":3}},\"required\":["
			 "\"b\"]}]}");
	(void)state;

	assert_offerable(p);
	assert_json_is(p, "{\"type\":\"object\",\"properties\":{\"a\":{\"allOf\":[{\"type\":\"string\"},{"
			  "\"maxLength\":3}]},\"b\":{\"type\":\"integer\"}},\"required\":[\"a\",\"b\"]}");
	json_decref(p);
	p = norm("{\"allOf\":[{\"type\":\"object\",\"if\":{\"required\":[\"a\"]},\"then\":{\"required\":[\"b\"]}}]}");
	assert_null(p);
	assert_non_null(strstr(why, "'if'"));
}

static void test_cannot_be_offered(void **state)
{
	const char *bad[][2] = {
		{ "{\"type\":\"string\"}", "its type is \"string\"" },
		{ "{\"type\":[\"array\",\"null\"]}", "its type is [\"array\",\"null\"]" },
		{ "[{\"type\":\"object\"}]", "not a JSON object" },
		{ "\"object\"", "not a JSON object" },
		{ "false", "no arguments are valid" },
		{ "{\"type\":\"object\",\"enum\":[{}]}", "'enum' at its top level" },
		{ "{\"not\":{\"type\":\"object\"}}", "'not' at its top level" },
		{ "{\"type\":\"object\",\"properties\":[\"a\"]}", "'properties' is not an object" },
		{ "{\"type\":\"object\",\"properties\":{\"a\":\"string\"}}", "not an object" },
		{ "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"object\"}]}", "anyOf branch is not an object schema" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		json_t *p = norm(bad[i][0]);

		if (p)
			fail_msg("%s was offered", bad[i][0]);
		if (!strstr(why, bad[i][1]))
			fail_msg("%s: why is '%s', wanted '%s'", bad[i][0], why, bad[i][1]);
	}
}

static void test_keywords_only_where_schemas_are(void **state)
{
	/* a property named like a keyword, and keywords inside values: all data, all kept */
	const char *text =
		"{\"type\":\"object\",\"properties\":{\"$schema\":{\"type\":\"string\"},\"$ref\":{\"type\":"
		"\"string\"},\"cfg\":{\"type\":\"object\",\"default\":{\"$schema\":\"x\",\"$ref\":\"#/nowhere\"},"
		"\"examples\":[{\"$comment\":\"y\"}]}}}";
	json_t *p = norm(text);
	(void)state;

	assert_offerable(p);
	assert_json_is(p, text);
	json_decref(p);
}

static void test_bounds(void **state)
{
	char *deep = malloc(20000), *dag = malloc(20000);
	size_t n = 0;
	json_t *p;
	(void)state;

	/* 100 nested objects */
	n += (size_t)sprintf(deep + n, "{\"type\":\"object\",\"properties\":");
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(deep + n, "{\"a\":{\"type\":\"object\",\"properties\":");
	n += (size_t)sprintf(deep + n, "{}");
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(deep + n, "}}");
	sprintf(deep + n, "}");
	p = norm(deep);
	assert_null(p);
	assert_non_null(strstr(why, "deeper than"));

	/* 2^16 leaves once inlined: each definition uses the one before twice */
	n = (size_t)sprintf(dag, "{\"type\":\"object\",\"$defs\":{\"d0\":{\"type\":\"string\"}");
	for (int i = 1; i <= 16; i++)
		n += (size_t)sprintf(dag + n,
				     ",\"d%d\":{\"type\":\"object\",\"properties\":{\"x\":{\"$ref\":\"#/$defs/d%d\"},"
				     "\"y\":{\"$ref\":\"#/$defs/d%d\"}}}",
				     i, i - 1, i - 1);
	sprintf(dag + n, "},\"properties\":{\"top\":{\"$ref\":\"#/$defs/d16\"}}}");
	p = norm(dag);
	assert_null(p);
	assert_non_null(strstr(why, "larger than"));
	free(deep);
	free(dag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_type_case_6),
		cmocka_unit_test(test_missing_empty_and_dialect_only),
		cmocka_unit_test(test_valid_schema_unchanged),
		cmocka_unit_test(test_pydantic_defs_inlined),
		cmocka_unit_test(test_ref_with_other_keywords_applies_both),
		cmocka_unit_test(test_recursive_refs_kept),
		cmocka_unit_test(test_bad_refs_left_out),
		cmocka_unit_test(test_array_without_items),
		cmocka_unit_test(test_boolean_properties),
		cmocka_unit_test(test_required_cleaned),
		cmocka_unit_test(test_top_level_anyof_merged),
		cmocka_unit_test(test_top_level_allof_merged),
		cmocka_unit_test(test_cannot_be_offered),
		cmocka_unit_test(test_keywords_only_where_schemas_are),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
