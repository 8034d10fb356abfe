/* test_sha256.c: unit tests for SHA-256 (lib/core/sha256.c, over Nettle): the FIPS 180-4 / NIST example vectors, fed whole and byte by byte, and a peek that leaves the digest going. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/sha256.h"

/* digest_of: the hex digest of len bytes of p, fed in pieces of step bytes */
static void digest_of(const void *p, size_t len, size_t step, char hex[SHA256_HEX])
{
	struct sha256 c;
	unsigned char d[SHA256_BYTES];

	assert_int_equal(sha256_init(&c), 0);
	for (size_t i = 0; i < len; i += step)
		sha256_update(&c, (const char *)p + i, len - i < step ? len - i : step);
	assert_int_equal(sha256_final(&c, d), 0);
	sha256_hex(d, hex);
}

static void check(const char *msg, const char *want)
{
	char hex[SHA256_HEX];
	size_t len = strlen(msg);

	digest_of(msg, len, len ? len : 1, hex);
	assert_string_equal(hex, want);
	digest_of(msg, len, 1, hex);
	assert_string_equal(hex, want);
	digest_of(msg, len, 63, hex);
	assert_string_equal(hex, want);
}

static void test_vectors(void **state)
{
	(void)state;
	check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* 56 bytes: the padding needs a second block */
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
	      "nopqrstu",
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* peek: the digest so far, and the digest goes on as if nothing happened */
static void test_peek(void **state)
{
	struct sha256 c;
	unsigned char d[SHA256_BYTES];
	char hex[SHA256_HEX];

	(void)state;
	assert_int_equal(sha256_init(&c), 0);
	sha256_update(&c, "ab", 2);
	assert_int_equal(sha256_peek(&c, d), 0);
	sha256_hex(d, hex);
	assert_string_equal(hex, "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
	sha256_update(&c, "c", 1);
	assert_int_equal(sha256_final(&c, d), 0);
	sha256_hex(d, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(sha256_peek(&c, d), -1); /* spent */
	sha256_free(&c);                          /* nothing */
}

static void test_million_a(void **state)
{
	static char a[1000000];
	char hex[SHA256_HEX];

	(void)state;
	memset(a, 'a', sizeof a);
	digest_of(a, sizeof a, 4096, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_million_a),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
