/* test_jsonseq.c: unit tests of lib/core/jsonseq.c: JSON texts split out of a byte stream cut anywhere. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/jsonseq.h"

/* collect: each text appended to the buffer, "|" between; stops at "STOP" */
static int collect(const char *text, size_t len, void *ud)
{
	buf_t *b = ud;

	assert_int_equal(text[len], '\0');
	if (b->len)
		buf_puts(b, "|");
	buf_append(b, text, len);
	return strstr(text, "STOP") != NULL;
}

/* NDJSON, RFC 7464's RS, a whole document over lines, braces and quotes inside strings: cut at every byte */
static void test_split_anywhere(void **state)
{
	static const char in[] = "{\"a\":\"}{\\\"\"}\n\x1e[1,{\"b\":[]}]\r\n  {\n \"c\": {\"d\": \"x\\\\\"}\n}\n";
	static const char want[] = "{\"a\":\"}{\\\"\"}|[1,{\"b\":[]}]|{\n \"c\": {\"d\": \"x\\\\\"}\n}";
	(void)state;

	for (size_t cut = 0; cut <= sizeof in - 1; cut++) {
		struct jsonseq j;
		buf_t got = BUF_INIT;

		jsonseq_init(&j, 1024, collect, &got);
		assert_int_equal(jsonseq_feed(&j, in, cut), JSONSEQ_OK);
		assert_int_equal(jsonseq_feed(&j, in + cut, sizeof in - 1 - cut), JSONSEQ_OK);
		assert_string_equal(got.data, want);
		assert_int_equal(jsonseq_pending(&j), 0);
		jsonseq_free(&j);
		buf_free(&got);
	}
}

/* a cut text is pending; bytes outside a value, a value too big, a callback that stops: sticky failures */
static void test_failures(void **state)
{
	struct jsonseq j;
	buf_t got = BUF_INIT;
	(void)state;

	jsonseq_init(&j, 16, collect, &got);
	assert_int_equal(jsonseq_feed(&j, "{\"a\":", 5), JSONSEQ_OK);
	assert_int_equal(jsonseq_pending(&j), 1);
	jsonseq_reset(&j);
	assert_int_equal(jsonseq_pending(&j), 0);
	assert_int_equal(jsonseq_feed(&j, "{}<html>", 8), JSONSEQ_EBAD);
	assert_int_equal(jsonseq_feed(&j, "{}", 2), JSONSEQ_EBAD);
	assert_string_equal(got.data, "{}");
	jsonseq_reset(&j);
	assert_int_equal(jsonseq_feed(&j, "42", 2), JSONSEQ_EBAD); /* only objects and arrays */
	jsonseq_reset(&j);
	assert_int_equal(jsonseq_feed(&j, "{\"long\":\"0123456789\"}", 21), JSONSEQ_ETOOBIG);
	jsonseq_reset(&j);
	assert_int_equal(jsonseq_feed(&j, "[\"STOP\"] {}", 11), JSONSEQ_ESTOP);
	assert_string_equal(got.data, "{}|[\"STOP\"]");
	jsonseq_free(&j);
	buf_free(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_anywhere),
		cmocka_unit_test(test_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
