/* test_jsonspan.c: jsonspan checks JSON as jansson does (valid and invalid corpora) and walks members and elements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonspan.h"

/* agree: jsonspan_check and jansson (JSON_DECODE_ANY) agree on text */
static void agree(const char *text)
{
	json_t *j = json_loadb(text, strlen(text), JSON_DECODE_ANY, NULL);
	int ok = jsonspan_check(text, strlen(text)) == 0;

	if (ok != (j != NULL))
		fail_msg("jsonspan says %s, jansson says %s: %s", ok ? "valid" : "invalid", j ? "valid" : "invalid",
			 text);
	json_decref(j);
}

static void test_agrees_with_jansson(void **state)
{
	static const char *const corpus[] = {
		"{}",
		"[]",
		" {\"a\" : [1, 2.5, -3e2, true, false, null, \"x\"]} ",
		"\"\\u00e9\\ud83d\\ude00\"",
		"\"caf\xc3\xa9\"",
		"0",
		"-0",
		"1.5E+3",
		"9223372036854775807",
		"-9223372036854775808",
		"{\"a\":{\"b\":{\"c\":[[[]]]}}}",
		"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		/* invalid */
		"",
		"{",
		"}",
		"[1,]",
		"{\"a\":1,}",
		"{\"a\" 1}",
		"{a:1}",
		"[1 2]",
		"01",
		"1.",
		".5",
		"-",
		"1e",
		"+1",
		"tru",
		"nul",
		"\"abc",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\u0000\"",
		"\"\\udc00\"",
		"\"\\ud800\"",
		"\"\\ud800\\u0041\"",
		"\"\xc3\"",
		"\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"",
		"\"\xf5\x80\x80\x80\"",
		"\"a\tb\"",
		"9223372036854775808",
		"-9223372036854775809",
		"1e400",
		"[1] 2",
		"{\"a\":1}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++)
		agree(corpus[i]);
}

static void test_depth_bound(void **state)
{
	size_t n = JSONSPAN_MAX_DEPTH + 1;
	char *t = malloc(2 * n + 1);

	(void)state;
	assert_non_null(t);
	memset(t, '[', n);
	memset(t + n, ']', n);
	t[2 * n] = '\0';
	assert_int_equal(jsonspan_check(t, 2 * n), -1);
	assert_int_equal(jsonspan_check(t + 1, 2 * n - 2), 0);
	free(t);
}

struct seen {
	char keys[8][32];
	struct jsonspan v[8], m[8];
	int n, stop_at;
};

static int note(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct seen *s = ctx;

	if (!key)
		assert_true(m.off == v.off && m.len == v.len);
	else
		assert_true(m.off < v.off && m.off + m.len == v.off + v.len);
	s->m[s->n] = m;
	snprintf(s->keys[s->n], sizeof s->keys[s->n], "%s", key ? key : "(none)");
	s->v[s->n++] = v;
	return s->n == s->stop_at;
}

static void test_walks(void **state)
{
	const char *t = " { \"id\" : 7 , \"r\\u0065sult\":{\"tools\":[ {\"n\":1} , [2] ,\"3\"]},\"x\":null } ";
	struct jsonspan all = { 0, strlen(t) }, r, tools;
	struct seen s = { .stop_at = 0 };

	(void)state;
	assert_int_equal(jsonspan_check(t, strlen(t)), 0);
	assert_int_equal(jsonspan_members(t, all, note, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "id");
	assert_string_equal(s.keys[1], "result"); /* an escaped name is decoded */
	assert_string_equal(s.keys[2], "x");
	assert_memory_equal(t + s.v[0].off, "7", s.v[0].len);
	assert_memory_equal(t + s.m[0].off, "\"id\" : 7", s.m[0].len); /* the whole member */
	r = s.v[1];
	assert_int_equal(jsonspan_elements(t, r, note, &s), -1); /* an object is no array */
	s = (struct seen){ .stop_at = 0 };
	assert_int_equal(jsonspan_members(t, r, note, &s), 0);
	tools = s.v[0];
	s = (struct seen){ .stop_at = 0 };
	assert_int_equal(jsonspan_elements(t, tools, note, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "(none)");
	assert_int_equal(s.v[0].len, strlen("{\"n\":1}"));
	assert_memory_equal(t + s.v[1].off, "[2]", 3);
	assert_memory_equal(t + s.v[2].off, "\"3\"", 3);
	s = (struct seen){ .stop_at = 2 }; /* fn stops the walk */
	assert_int_equal(jsonspan_elements(t, tools, note, &s), 1);
	assert_int_equal(s.n, 2);
}

/* a walk steps over every kind of value whole (strings with escaped quotes and
 * brackets, nested containers, numbers and literals next to the delimiters) */
static void test_walk_skips_checked(void **state)
{
	const char *t = "[\"a\\\"]}\\\\\",{\"k\":[1,{\"x\":\"}\"}],\"e\":{}} ,-1.5e3,true,null,[[]],\"\",0]";
	const char *want[] = {
		"\"a\\\"]}\\\\\"", "{\"k\":[1,{\"x\":\"}\"}],\"e\":{}}", "-1.5e3", "true", "null", "[[]]", "\"\"", "0"
	};
	struct jsonspan all = { 0, strlen(t) };
	struct seen s = { .stop_at = 0 };

	(void)state;
	assert_int_equal(jsonspan_check(t, strlen(t)), 0);
	assert_int_equal(jsonspan_elements(t, all, note, &s), 0);
	assert_int_equal(s.n, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(s.v[i].len, strlen(want[i]));
		assert_memory_equal(t + s.v[i].off, want[i], s.v[i].len);
	}
}

/* jsonspan_load gives what json_loadb gives, with and without its parser */
static void test_load(void **state)
{
	const char *texts[] = { "\"plain\"",
				"\"\"",
				"\"esc\\n\\u00e9\"",
				"\"\xc3\xa9\"",
				"0",
				"-0",
				"42",
				"-123456789012345678",
				"1234567890123456789",
				"-9223372036854775808",
				"1.5",
				"1e2",
				"true",
				"false",
				"null",
				"{\"a\":[1,2]}",
				"[]" };
	json_t *got, *ref;

	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		struct jsonspan v = { 0, strlen(texts[i]) };

		assert_int_equal(jsonspan_check(texts[i], v.len), 0);
		got = jsonspan_load(texts[i], v, 0);
		ref = json_loadb(texts[i], v.len, JSON_DECODE_ANY, NULL);
		assert_non_null(got);
		assert_non_null(ref);
		assert_int_equal(json_typeof(got), json_typeof(ref));
		assert_true(json_equal(got, ref));
		json_decref(got);
		json_decref(ref);
	}
	/* a span inside a text: only its bytes */
	{
		const char *t = "[\"ab\",17]";

		got = jsonspan_load(t, (struct jsonspan){ 1, 4 }, 0);
		assert_string_equal(json_string_value(got), "ab");
		json_decref(got);
		got = jsonspan_load(t, (struct jsonspan){ 6, 2 }, 0);
		assert_int_equal(json_integer_value(got), 17);
		json_decref(got);
	}
	/* a repeated name is refused with JSON_REJECT_DUPLICATES, as jansson refuses it */
	got = jsonspan_load("{\"a\":1,\"a\":2}", (struct jsonspan){ 0, 13 }, JSON_REJECT_DUPLICATES);
	assert_null(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_jansson),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_walks),
		cmocka_unit_test(test_walk_skips_checked),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
