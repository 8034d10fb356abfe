/* test_toolloop.c: unit tests of lib/toolloop.c's pure parts: usage sums and restoring hidden rounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "openai/toolloop.h"

static void test_usage_sum_nested(void **state)
{
	json_t *sum = json_object();
	json_t *u1 = json_loads("{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
				"\"prompt_tokens_details\":{\"cached_tokens\":2}}", 0, NULL);
	json_t *u2 = json_loads("{\"prompt_tokens\":20,\"completion_tokens\":1,\"total_tokens\":21,"
				"\"completion_tokens_details\":{\"reasoning_tokens\":3},\"note\":\"x\"}", 0, NULL);
	(void)state;

	toolloop_usage_add(sum, u1);
	toolloop_usage_add(sum, u2);
	assert_int_equal(json_integer_value(json_object_get(sum, "prompt_tokens")), 30);
	assert_int_equal(json_integer_value(json_object_get(sum, "completion_tokens")), 6);
	assert_int_equal(json_integer_value(json_object_get(sum, "total_tokens")), 36);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "prompt_tokens_details"), "cached_tokens")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "completion_tokens_details"),
							    "reasoning_tokens")), 3);
	assert_null(json_object_get(sum, "note"));
	json_decref(sum);
	json_decref(u1);
	json_decref(u2);
}

static void test_restore_splices_hidden_rounds(void **state)
{
	json_t *msgs = json_loads(
		"[{\"role\":\"user\",\"content\":\"q\"},"
		"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_c\",\"type\":\"function\","
		"\"function\":{\"name\":\"mine\",\"arguments\":\"{}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_c\",\"content\":\"client result\"}]", 0, NULL);
	json_t *sessions = json_loads(
		"{\"call_c\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_m0\"}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_m0\",\"content\":\"r0\"},"
		"{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_c\"},{\"id\":\"call_m1\"}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_m1\",\"content\":\"r1\"}]}", 0, NULL);
	(void)state;

	assert_int_equal(toolloop_restore(msgs, sessions), 1);
	assert_int_equal(json_array_size(msgs), 6);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "user");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 2), "tool_call_id")), "call_m0");
	assert_int_equal(json_array_size(json_object_get(json_array_get(msgs, 3), "tool_calls")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 4), "tool_call_id")), "call_m1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 5), "content")), "client result");
	/* nothing stored for these ids: unchanged */
	assert_int_equal(toolloop_restore(msgs, json_object_get(sessions, "none")), 0);
	assert_int_equal(json_array_size(msgs), 6);
	json_decref(msgs);
	json_decref(sessions);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_sum_nested),
		cmocka_unit_test(test_restore_splices_hidden_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
