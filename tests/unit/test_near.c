/* test_near.c: unit tests for "did you mean" (lib/near.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/near.h"

static const char *const keys[] = { "servers", "tools" };
static const char *const names[] = { "sqlite", "everything", "fs" };

static void test_near_misses(void **state)
{
	(void)state;
	assert_string_equal(near_word("tool", keys, 2), "tools"); /* one deletion, short word */
	assert_string_equal(near_word("server", keys, 2), "servers");
	assert_string_equal(near_word("SERVERS", keys, 2), "servers"); /* case */
	assert_string_equal(near_word("sevrers", keys, 2), "servers"); /* a swap */
	assert_string_equal(near_word("sqlit", names, 3), "sqlite");
	assert_string_equal(near_word("every-thing", names, 3), "everything"); /* '-' and '_' do not count */
	assert_string_equal(near_word("f", names, 3), "fs");
}

static void test_far(void **state)
{
	(void)state;
	assert_null(near_word("nosuch", names, 3));
	assert_null(near_word("tx", keys, 2));    /* four edits from "tools": too far */
	assert_null(near_word("fsxy", names, 3)); /* two edits from a word of up to 4 letters: too far */
	assert_null(near_word("x", names, 0));
	assert_null(near_word("", keys, 2));
}

static void test_long(void **state)
{
	char w[NEAR_WORD_MAX + 8];
	const char *known[] = { NULL, w };

	(void)state;
	memset(w, 'a', sizeof w - 1);
	w[sizeof w - 1] = '\0';
	assert_null(near_word(w, known, 2));     /* longer than NEAR_WORD_MAX: never near, never read past */
	assert_null(near_word("aaa", known, 2)); /* a NULL entry is skipped */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_near_misses),
		cmocka_unit_test(test_far),
		cmocka_unit_test(test_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
