/* test_utf8.c: unit tests for lib/utf8: well-formed sequences (RFC 3629), decoding, encoding, cuts that never split a character. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/utf8.h"

#define U(s) ((const unsigned char *)(s))

static void test_seq_len(void **state)
{
	(void)state;
	assert_int_equal(utf8_seq_len(U("a"), 1), 1);
	assert_int_equal(utf8_seq_len(U("\xc3\xa9"), 2), 2);         /* é */
	assert_int_equal(utf8_seq_len(U("\xe6\x95\xb0"), 3), 3);     /* 数 */
	assert_int_equal(utf8_seq_len(U("\xf0\x9f\x98\x80"), 4), 4); /* 😀 */
	/* ill-formed: continuation byte, C0/C1 overlong leads, truncation, 3- and 4-byte overlongs,
	 * surrogates, above U+10FFFF, F5..FF */
	assert_int_equal(utf8_seq_len(U("\x80"), 1), 0);
	assert_int_equal(utf8_seq_len(U("\xc0\x80"), 2), 0);
	assert_int_equal(utf8_seq_len(U("\xc1\xbf"), 2), 0);
	assert_int_equal(utf8_seq_len(U("\xe6\x95"), 2), 0);
	assert_int_equal(utf8_seq_len(U("\xe6\x95\xb0"), 2), 0); /* n bounds the look */
	assert_int_equal(utf8_seq_len(U("\xe0\x80\xaf"), 3), 0);
	assert_int_equal(utf8_seq_len(U("\xf0\x80\x80\xaf"), 4), 0);
	assert_int_equal(utf8_seq_len(U("\xed\xa0\x80"), 3), 0);
	assert_int_equal(utf8_seq_len(U("\xf4\x90\x80\x80"), 4), 0);
	assert_int_equal(utf8_seq_len(U("\xf5\x80\x80\x80"), 4), 0);
	assert_int_equal(utf8_seq_len(U("\xff"), 1), 0);
	/* a NUL ends the look: no continuation byte */
	assert_int_equal(utf8_seq_len(U("\xe6\0"), 4), 0);
}

static void test_next_and_put_round_trip(void **state)
{
	const uint32_t cps[] = { 0x41,   0x7f,   0x80,   0xe9,    0x7ff,   0x800,   0x6570,
				 0xd7ff, 0xe000, 0xffff, 0x10000, 0x1f600, 0x10ffff };
	char buf[8];
	(void)state;
	for (size_t k = 0; k < sizeof cps / sizeof cps[0]; k++) {
		size_t n = utf8_put(cps[k], buf), i = 0;

		assert_int_equal(n, cps[k] < 0x80 ? 1 : cps[k] < 0x800 ? 2 : cps[k] < 0x10000 ? 3 : 4);
		assert_int_equal(utf8_seq_len(U(buf), n), n);
		assert_int_equal(utf8_next(U(buf), n, &i), (long)cps[k]);
		assert_int_equal(i, n);
	}
}

static void test_next_skips_one_bad_byte(void **state)
{
	const char *s = "a\xff\xe6\x95\xb0\xe6"; /* a, a bad byte, 数, a truncated lead */
	size_t i = 0, len = strlen(s);
	(void)state;
	assert_int_equal(utf8_next(U(s), len, &i), 'a');
	assert_int_equal(utf8_next(U(s), len, &i), -1);
	assert_int_equal(i, 2);
	assert_int_equal(utf8_next(U(s), len, &i), 0x6570);
	assert_int_equal(utf8_next(U(s), len, &i), -1);
	assert_int_equal(i, len);
}

static void test_cut_never_splits(void **state)
{
	const char *s = "ab\xe6\x95\xb0\xe6\x8d\xae"; /* "ab数据" */
	const char *e = "x\xf0\x9f\x98\x80";          /* "x😀" */
	(void)state;
	assert_int_equal(utf8_cut(s, 8), 8);
	assert_int_equal(utf8_cut(s, 7), 5);
	assert_int_equal(utf8_cut(s, 6), 5);
	assert_int_equal(utf8_cut(s, 5), 5);
	assert_int_equal(utf8_cut(s, 4), 2);
	assert_int_equal(utf8_cut(s, 2), 2);
	assert_int_equal(utf8_cut(s, 0), 0);
	for (size_t n = 2; n < 5; n++)
		assert_int_equal(utf8_cut(e, n), 1);
	assert_int_equal(utf8_cut(e, 5), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seq_len),
		cmocka_unit_test(test_next_and_put_round_trip),
		cmocka_unit_test(test_next_skips_one_bad_byte),
		cmocka_unit_test(test_cut_never_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
