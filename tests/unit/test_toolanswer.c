/* test_toolanswer.c: unit tests for lib/mcp/toolanswer.c: POST /v1/tools's request read and answer spliced without a tree, against what the tree made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/toolanswer.h"

/* the answer as tools.c made it from a tree before: json_pack + update_missing, compact */
static char *tree_answer(const char *tool, const char *text)
{
	json_t *result = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *out;
	char *s;

	assert_non_null(result);
	out = json_pack("{s:s, s:s, s:O?}", "object", "tool.result", "tool", tool, "server",
			json_object_get(json_object_get(result, "_meta"), "mcpgw/server"));
	assert_non_null(out);
	assert_int_equal(json_object_update_missing(out, result), 0);
	s = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	json_decref(result);
	return s;
}

/* results in compact form: the same bytes as the tree made */
static void test_result_as_the_tree(void **state)
{
	static const char *const results[] = {
		"{\"content\":[{\"type\":\"text\",\"text\":\"[]\"}],\"isError\":false,\"_meta\":{\"mcpgw/server\":\"sqlite\"}}",
		"{}",
		"{\"_meta\":{\"a\":1,\"mcpgw/server\":\"s\"},\"content\":[]}",
		"{\"content\":[],\"_meta\":\"not an object\"}",
		"{\"object\":\"x\",\"tool\":\"y\",\"server\":\"z\",\"content\":[{\"type\":\"text\",\"text\":\"\\u00e9\\n\"}]}",
		"{\"structuredContent\":{\"n\":1.5,\"m\":[true,null,-2]},\"isError\":false,\"_meta\":{\"mcpgw/server\":7}}",
		"{\"isError\":false,\"_meta\":{}}",
	};
	static const char *const tools[] = { "list_tables", "t\"q", "caf\xc3\xa9", "a b/c" };

	(void)state;
	for (size_t i = 0; i < sizeof results / sizeof *results; i++) {
		for (size_t k = 0; k < sizeof tools / sizeof *tools; k++) {
			buf_t out = BUF_INIT;
			char *want = tree_answer(tools[k], results[i]);

			assert_int_equal(toolanswer_result(&out, tools[k], results[i], strlen(results[i])),
					 TOOLANSWER_OK);
			/* jansson writes é as \u00e9 only when asked: compact form keeps the bytes */
			if (strstr(results[i], "\\u00e9"))
				assert_non_null(strstr(out.data, "\\u00e9")); /* the server's own spelling */
			else
				assert_string_equal(out.data, want);
			free(want);
			buf_free(&out);
		}
	}
}

/* the server's spelling is kept (blanks, escapes), and what is not a 200 is said */
static void test_result_kinds(void **state)
{
	const char *spaced = "{ \"content\" : [ {\"type\":\"text\", \"text\":\"\\u0061\"} ] , \"isError\" : false }";
	buf_t out = BUF_INIT;

	(void)state;
	assert_int_equal(toolanswer_result(&out, "t", spaced, strlen(spaced)), TOOLANSWER_OK);
	assert_string_equal(out.data, "{\"object\":\"tool.result\",\"tool\":\"t\",\"server\":null,\"content\" : [ "
				      "{\"type\":\"text\", \"text\":\"\\u0061\"} ],\"isError\" : false}");
	buf_free(&out);
	assert_int_equal(toolanswer_result(&out, "t", "{\"isError\":true,\"content\":[]}", 29), TOOLANSWER_IS_ERROR);
	assert_int_equal(toolanswer_result(&out, "t", "[1]", 3), TOOLANSWER_NOT_OBJECT);
	assert_int_equal(toolanswer_result(&out, "t", "\"x\"", 3), TOOLANSWER_NOT_OBJECT);
	assert_int_equal(toolanswer_result(&out, "t", "{\"a\":1,\"b\":2,\"a\":3}", 19), TOOLANSWER_REPEATED);
	assert_null(out.data); /* nothing written but for a 200 */
}

/* the request's tool and arguments, as the route checks them */
static void test_read_call(void **state)
{
	struct toolanswer_call c;
	const char *b;

	(void)state;
	b = " {\"tool\":\"x\",\"arguments\":{\"q\": [1, 2]}} ";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_CALL);
	assert_memory_equal(b + c.tool.off, "\"x\"", c.tool.len);
	assert_int_equal(c.args.len, strlen("{\"q\": [1, 2]}"));
	assert_memory_equal(b + c.args.off, "{\"q\": [1, 2]}", c.args.len);
	assert_int_equal(c.args_lines, 0);
	b = "{\"tool\":\"a\",\"arguments\":{},\"tool\":\"b\",\"arguments\":\n{\"z\":1}}"; /* the last of each */
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_CALL);
	assert_memory_equal(b + c.tool.off, "\"b\"", 3);
	assert_memory_equal(b + c.args.off, "{\"z\":1}", c.args.len);
	b = "{\"tool\":\"a\",\"arguments\":{\"z\":\n1}}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_CALL);
	assert_int_equal(c.args_lines, 1);
	b = "{\"tool\":\"a\",\"arguments\":null}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_CALL);
	assert_int_equal(c.args.len, 0);
	b = "{\"tool\":\"a\"}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_CALL);
	assert_int_equal(c.args.len, 0);
	b = "{\"arguments\":{}}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_NO_TOOL);
	b = "{\"tool\":1}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_TOOL_TYPE);
	b = "{\"tool\":\"a\",\"arguments\":[1]}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_ARGS_TYPE);
	b = "{\"tool\":\"a\",\"arguments\":\"{}\"}";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_ARGS_TYPE);
	b = "{\"tool\":\"a\",";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_OTHER);
	b = "[{\"tool\":\"a\"}]";
	assert_int_equal(toolanswer_read_call(b, strlen(b), &c), TOOLANSWER_OTHER);
	assert_int_equal(toolanswer_read_call("{\"tool\":\"a\",\0\"x\":1}", 19, &c), TOOLANSWER_OTHER);
	assert_int_equal(toolanswer_read_call("", 0, &c), TOOLANSWER_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_as_the_tree),
		cmocka_unit_test(test_result_kinds),
		cmocka_unit_test(test_read_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
