/* test_toolcalls.c: unit tests of lib/openai/toolcalls.c: tool calls assembled from every provider's delta and message shapes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "openai/toolcalls.h"

/* feed: each element of the JSON array text as one streamed delta; returns the first non-OK status */
static enum toolcalls_status feed(struct toolcalls *tc, const char *deltas)
{
	json_t *a = json_loads(deltas, 0, NULL), *d;
	enum toolcalls_status st = TOOLCALLS_OK, one;
	size_t i;
	int which;

	assert_non_null(a);
	json_array_foreach(a, i, d) {
		one = toolcalls_delta(tc, d, &which);
		if (one == TOOLCALLS_OK)
			assert_true(which >= 0 && which < tc->n);
		if (st == TOOLCALLS_OK)
			st = one;
	}
	json_decref(a);
	return st;
}

/* message: the JSON text as a whole message's tool_calls */
static enum toolcalls_status message(struct toolcalls *tc, const char *calls)
{
	json_t *a = json_loads(calls, JSON_DECODE_ANY, NULL);
	enum toolcalls_status st;

	assert_non_null(a);
	st = toolcalls_message(tc, a);
	json_decref(a);
	return st;
}

static void assert_call(const struct toolcalls *tc, int i, const char *id, const char *name, const char *args)
{
	assert_true(i < tc->n);
	if (id)
		assert_string_equal(tc->calls[i].id, id);
	assert_string_equal(tc->calls[i].name, name);
	assert_string_equal(toolcalls_args(tc, i), args);
}

/* a minted id: "call_" + 24 characters of [A-Za-z0-9] */
static void assert_minted(const struct toolcalls *tc, int i)
{
	const char *id = tc->calls[i].id;

	assert_int_equal(tc->calls[i].minted, 1);
	assert_int_equal(strlen(id), 5 + 24);
	assert_memory_equal(id, "call_", 5);
	assert_int_equal(strspn(id + 5, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), 24);
}

/* OpenAI's own shape: index and id in the first delta, then fragments by index; two calls interleaved */
static void test_openai_indexed_fragments(void **state)
{
	struct toolcalls tc;
	(void)state;

	toolcalls_init(&tc, 8, "http://up/v1/chat/completions");
	assert_int_equal(feed(&tc, "[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"echo\","
				   "\"arguments\":\"\"}},"
				   "{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"sum\","
				   "\"arguments\":\"{\\\"a\\\":\"}},"
				   "{\"index\":0,\"function\":{\"arguments\":\"{\\\"text\\\":\"}},"
				   "{\"index\":1,\"function\":{\"arguments\":\"1}\"}},"
				   "{\"index\":0,\"function\":{\"arguments\":\"\\\"hi\\\"}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 2);
	assert_call(&tc, 0, "call_a", "echo", "{\"text\":\"hi\"}");
	assert_call(&tc, 1, "call_b", "sum", "{\"a\":1}");
	assert_int_equal(tc.calls[0].minted, 0);
	toolcalls_free(&tc);
}

/* Ollama, Gemini: several whole calls in one chunk, each with its own id, no index */
static void test_no_index_several_ids(void **state)
{
	struct toolcalls tc;
	json_t *j;
	(void)state;

	toolcalls_init(&tc, 8, NULL);
	assert_int_equal(
		feed(&tc,
		     "[{\"id\":\"call_1\",\"function\":{\"name\":\"echo\",\"arguments\":\"{\\\"text\\\":\\\"a\\\"}\"}},"
		     "{\"id\":\"call_2\",\"function\":{\"name\":\"echo\",\"arguments\":\"{\\\"text\\\":\\\"b\\\"}\"}}]"),
		TOOLCALLS_OK);
	assert_int_equal(tc.n, 2);
	assert_call(&tc, 0, "call_1", "echo", "{\"text\":\"a\"}");
	assert_call(&tc, 1, "call_2", "echo", "{\"text\":\"b\"}");
	/* as a message tool call: type and arguments text */
	j = toolcalls_json(&tc, 1);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "function");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "function"), "arguments")),
			    "{\"text\":\"b\"}");
	json_decref(j);
	toolcalls_reset(&tc);
	/* the same with every call at index 0: a new id is a new call */
	assert_int_equal(feed(&tc,
			      "[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"echo\",\"arguments\":\"{}\"}},"
			      "{\"index\":0,\"id\":\"call_2\",\"function\":{\"name\":\"sum\",\"arguments\":\"{}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 2);
	assert_call(&tc, 1, "call_2", "sum", "{}");
	toolcalls_free(&tc);
}

/* DashScope/Qwen: later fragments restate "id": "" or repeat the id (and the name) */
static void test_restated_ids(void **state)
{
	struct toolcalls tc;
	(void)state;

	toolcalls_init(&tc, 8, NULL);
	assert_int_equal(feed(&tc,
			      "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"echo\","
			      "\"arguments\":\"{\\\"te\"}},"
			      "{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{\"arguments\":\"xt\\\":\"}},"
			      "{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"echo\","
			      "\"arguments\":\"\\\"hi\\\"}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 1);
	assert_call(&tc, 0, "call_1", "echo", "{\"text\":\"hi\"}");
	toolcalls_reset(&tc);
	/* "id": "" and no index at all: the latest call goes on */
	assert_int_equal(feed(&tc, "[{\"id\":\"call_9\",\"function\":{\"name\":\"echo\",\"arguments\":\"{\\\"x\\\"\"}},"
				   "{\"id\":\"\",\"function\":{\"name\":\"\",\"arguments\":\":1}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 1);
	assert_call(&tc, 0, "call_9", "echo", "{\"x\":1}");
	toolcalls_free(&tc);
}

/* no id anywhere: ids minted, distinct; a named delta after a complete call starts the next one */
static void test_minted_ids(void **state)
{
	struct toolcalls tc;
	(void)state;

	toolcalls_init(&tc, 8, NULL);
	assert_int_equal(feed(&tc, "[{\"function\":{\"name\":\"echo\"}},{\"function\":{\"arguments\":\"{}\"}},"
				   "{\"function\":{\"name\":\"echo\",\"arguments\":\"{\\\"a\\\":2}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 2);
	assert_call(&tc, 0, NULL, "echo", "{}");
	assert_call(&tc, 1, NULL, "echo", "{\"a\":2}");
	assert_minted(&tc, 0);
	assert_minted(&tc, 1);
	assert_string_not_equal(tc.calls[0].id, tc.calls[1].id);
	toolcalls_reset(&tc);
	/* index without id: minted once, fragments by index */
	assert_int_equal(feed(&tc, "[{\"index\":0,\"function\":{\"name\":\"echo\",\"arguments\":\"{\"}},"
				   "{\"index\":0,\"function\":{\"arguments\":\"}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 1);
	assert_minted(&tc, 0);
	assert_call(&tc, 0, NULL, "echo", "{}");
	toolcalls_free(&tc);
}

/* arguments as a JSON object, streamed and whole; no arguments at all is "{}" for the history */
static void test_arguments_object(void **state)
{
	struct toolcalls tc;
	json_t *j;
	(void)state;

	toolcalls_init(&tc, 8, NULL);
	assert_int_equal(feed(&tc, "[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"echo\","
				   "\"arguments\":{\"text\":\"hi\"}}}]"),
			 TOOLCALLS_OK);
	assert_call(&tc, 0, "c1", "echo", "{\"text\":\"hi\"}");
	toolcalls_reset(&tc);
	assert_int_equal(message(&tc,
				 "[{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"sum\","
				 "\"arguments\":{\"a\":1,\"b\":2}}},{\"id\":\"c3\",\"function\":{\"name\":\"now\"}}]"),
			 TOOLCALLS_OK);
	assert_call(&tc, 0, "c2", "sum", "{\"a\":1,\"b\":2}");
	assert_call(&tc, 1, "c3", "now", "");
	j = toolcalls_json(&tc, 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "function"), "arguments")), "{}");
	json_decref(j);
	toolcalls_free(&tc);
}

/* a whole message: missing and repeated ids minted, one call object where a list belongs, bad elements skipped */
static void test_message_shapes(void **state)
{
	struct toolcalls tc;
	(void)state;

	toolcalls_init(&tc, 8, "http://up/v1/chat/completions");
	assert_int_equal(message(&tc, "[{\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
				      "{\"id\":\"same\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}},"
				      "{\"id\":\"same\",\"function\":{\"name\":\"c\",\"arguments\":\"{}\"}},"
				      "{\"id\":\"\",\"function\":{\"name\":\"d\",\"arguments\":\"{}\"}}]"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 4);
	assert_minted(&tc, 0);
	assert_call(&tc, 1, "same", "b", "{}");
	assert_minted(&tc, 2); /* the repeated id replaced: each result must name its call */
	assert_call(&tc, 2, NULL, "c", "{}");
	assert_minted(&tc, 3);
	toolcalls_reset(&tc);
	assert_int_equal(message(&tc, "{\"id\":\"solo\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}"),
			 TOOLCALLS_OK);
	assert_int_equal(tc.n, 1);
	assert_call(&tc, 0, "solo", "a", "{}");
	toolcalls_reset(&tc);
	/* what cannot be read is skipped (and logged), the rest is read */
	assert_int_equal(message(&tc, "[42,{\"id\":\"ok\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
				      "{\"id\":\"f\",\"function\":\"a\"}]"),
			 TOOLCALLS_EBAD);
	assert_int_equal(tc.n, 2);
	assert_call(&tc, 0, "ok", "a", "{}");
	assert_int_equal(message(&tc, "\"text\""), TOOLCALLS_EBAD);
	assert_int_equal(message(&tc, "null"), TOOLCALLS_OK);
	toolcalls_free(&tc);
}

/* deltas that continue nothing, or have members of the wrong type: EBAD, the rest still read */
static void test_unreadable_deltas(void **state)
{
	struct toolcalls tc;
	int which;
	json_t *v = json_string("x");
	(void)state;

	toolcalls_init(&tc, 8, "http://up/v1/chat/completions");
	assert_int_equal(feed(&tc, "[{\"function\":{\"arguments\":\"{}\"}}]"), TOOLCALLS_EBAD);
	assert_int_equal(tc.n, 0);
	assert_int_equal(toolcalls_delta(&tc, v, &which), TOOLCALLS_EBAD);
	assert_int_equal(which, -1);
	assert_int_equal(feed(&tc,
			      "[{\"index\":\"zero\",\"id\":\"c1\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]"),
			 TOOLCALLS_EBAD);
	assert_call(&tc, 0, "c1", "a", "{}"); /* read without the index */
	assert_int_equal(feed(&tc, "[{\"id\":\"c1\",\"function\":{\"name\":\"b\"}}]"), TOOLCALLS_EBAD);
	assert_call(&tc, 0, "c1", "a", "{}"); /* the first name stays */
	assert_int_equal(feed(&tc, "[{\"id\":\"c2\",\"function\":{\"name\":\"a\",\"arguments\":[1]}}]"), TOOLCALLS_EBAD);
	assert_call(&tc, 1, "c2", "a", "[1]"); /* passed on: the model is told they are no object */
	json_decref(v);
	toolcalls_free(&tc);
}

/* provider extras of a call (Gemini's thought signature) kept and given back; merged over deltas */
static void test_extras_kept(void **state)
{
	struct toolcalls tc;
	json_t *j;
	(void)state;

	toolcalls_init(&tc, 8, NULL);
	assert_int_equal(feed(&tc, "[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"echo\","
				   "\"arguments\":\"{}\",\"strict\":true},\"extra_content\":{\"google\":"
				   "{\"thought_signature\":\"sig\"}}},"
				   "{\"index\":0,\"extra_content\":{\"google\":{\"thought_signature\":\"sig\"}}}]"),
			 TOOLCALLS_OK);
	j = toolcalls_json(&tc, 0);
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_object_get(j, "extra_content"), "google"),
						    "thought_signature")),
			    "sig");
	assert_true(json_is_true(json_object_get(json_object_get(j, "function"), "strict")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "function"), "name")), "echo");
	assert_null(json_object_get(j, "index"));
	json_decref(j);
	toolcalls_free(&tc);
}

/* at most max calls: the one past it is refused (logged), the others stay */
static void test_limit(void **state)
{
	struct toolcalls tc;
	(void)state;

	toolcalls_init(&tc, 2, NULL);
	assert_int_equal(feed(&tc, "[{\"id\":\"1\",\"function\":{\"name\":\"a\"}},{\"id\":\"2\",\"function\":{\"name\":\"a\"}},"
				   "{\"id\":\"3\",\"function\":{\"name\":\"a\"}}]"),
			 TOOLCALLS_EFULL);
	assert_int_equal(tc.n, 2);
	toolcalls_reset(&tc);
	assert_int_equal(tc.n, 0);
	assert_int_equal(feed(&tc, "[{\"id\":\"4\",\"function\":{\"name\":\"a\"}}]"), TOOLCALLS_OK);
	assert_call(&tc, 0, "4", "a", "");
	toolcalls_free(&tc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_indexed_fragments),
		cmocka_unit_test(test_no_index_several_ids),
		cmocka_unit_test(test_restated_ids),
		cmocka_unit_test(test_minted_ids),
		cmocka_unit_test(test_arguments_object),
		cmocka_unit_test(test_message_shapes),
		cmocka_unit_test(test_unreadable_deltas),
		cmocka_unit_test(test_extras_kept),
		cmocka_unit_test(test_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
