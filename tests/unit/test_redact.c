/* test_redact.c: unit tests for URLs as messages and logs show them (lib/core/redact.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/redact.h"

static void test_url_userinfo_and_query(void **state)
{
	char out[256];

	(void)state;
	assert_string_equal(redact_url("https://user:sekrit@h.example:8443/v1/x?api-version=2024-10-21&key=sk-1&flag",
				       out, sizeof out),
			    "https://h.example:8443/v1/x?api-version=2024-10-21&key=***&flag");
	assert_string_equal(redact_url("http://h/v1", out, sizeof out), "http://h/v1");
	/* '@' in the path is no userinfo; the fragment goes */
	assert_string_equal(redact_url("http://h/p@q?code=a=b#frag", out, sizeof out), "http://h/p@q?code=***");
	assert_string_equal(redact_url("http://127.0.0.1:9/mcp?api_key=CANARY&x=", out, sizeof out),
			    "http://127.0.0.1:9/mcp?api_key=***&x=***");
	assert_string_equal(redact_url("postgresql://app:pw@db:5432/x", out, sizeof out), "postgresql://db:5432/x");
	assert_string_equal(redact_url("no url at all", out, sizeof out), "no url at all");
	assert_string_equal(redact_url("", out, sizeof out), "");
}

static void test_url_cut(void **state)
{
	char out[12];

	(void)state;
	assert_string_equal(redact_url("https://h/v1?key=sk-1", out, sizeof out), "https://h/v");
	/* cut in the middle of the mask: never a byte of the value */
	assert_string_equal(redact_url("http://h/?k=SECRET", out, sizeof out), "http://h/?k");
	assert_string_equal(redact_url("http://h/?k=SECRET", out, 1), "");
}

static void test_text(void **state)
{
	char out[512];
	const char *t = "error: connect postgresql://app:hunter2@db/x failed; see https://h/doc?token=abc&api-version=1 "
			"and \"http://u:p@q/r?s=t\"<https://x/?y=z>";

	(void)state;
	assert_string_equal(redact_text(t, strlen(t), out, sizeof out),
			    "error: connect postgresql://db/x failed; see https://h/doc?token=***&api-version=1 "
			    "and \"http://q/r?s=***\"<https://x/?y=***>");
	/* only len bytes are read; text with no URL is copied */
	assert_string_equal(redact_text("plain words://", 5, out, sizeof out), "plain");
	assert_string_equal(redact_text("no url here", 11, out, sizeof out), "no url here");
	/* a "://" with no scheme before it and one at the very end */
	assert_string_equal(redact_text(" ://a:b@c?d=e", 13, out, sizeof out), " ://c?d=***");
	assert_string_equal(redact_text("x://", 4, out, sizeof out), "x://");
	/* punctuation after a URL is the sentence's, not the URL's; a URL shown once shows the same again */
	t = "POST http://h/m?k=v: refused (see http://u:p@h/x).";
	assert_string_equal(redact_text(t, strlen(t), out, sizeof out),
			    "POST http://h/m?k=***: refused (see http://h/x).");
	t = "POST http://h/m?k=***: no";
	assert_string_equal(redact_text(t, strlen(t), out, sizeof out), t);
	/* the line keeps its tail after a URL that ends at a control byte */
	assert_string_equal(redact_text("a http://h/?k=v\tb", 17, out, sizeof out), "a http://h/?k=***\tb");
}

static void test_text_cut(void **state)
{
	char out[20];
	const char *t = "dsn=mysql://root:SECRETSECRET@localhost/db";

	(void)state;
	redact_text(t, strlen(t), out, sizeof out);
	assert_null(strstr(out, "SECRET"));
	assert_int_equal(strlen(out), sizeof out - 1);
}

static void test_secret(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(redact_secret("Incorrect API key provided: sk-123; sk-123!", "sk-123", out, sizeof out),
			    "Incorrect API key provided: ***; ***!");
	assert_string_equal(redact_secret("nothing", "sk-123", out, sizeof out), "nothing");
	assert_string_equal(redact_secret("nothing", "", out, sizeof out), "nothing");
	assert_string_equal(redact_secret("nothing", NULL, out, sizeof out), "nothing");
	assert_string_equal(redact_secret("ab sk-123", "sk-123", out, 5), "ab *");
}

static void test_secret_inplace(void **state)
{
	char body[] = "{\"error\":{\"message\":\"key sk-canary-123 refused; sk-canary-123\"}}";
	char bin[] = "a\0sk-canary-123\0b";
	char same[] = "nothing here";
	size_t n;

	(void)state;
	n = redact_secret_inplace(body, strlen(body), "sk-canary-123");
	assert_int_equal(n, strlen(body));
	assert_string_equal(body, "{\"error\":{\"message\":\"key *** refused; ***\"}}");
	/* bytes, not a string: a NUL before the key does not hide it */
	n = redact_secret_inplace(bin, sizeof bin - 1, "sk-canary-123");
	assert_int_equal(n, 7);
	assert_memory_equal(bin, "a\0***\0b", 7);
	/* a key at the very end, and one cut off by the end */
	char tail[] = "xx sk-canary-123";
	assert_int_equal(redact_secret_inplace(tail, strlen(tail), "sk-canary-123"), 6);
	assert_string_equal(tail, "xx ***");
	char cut[] = "xx sk-canary-12";
	assert_int_equal(redact_secret_inplace(cut, strlen(cut), "sk-canary-123"), strlen("xx sk-canary-12"));
	/* nothing to mask, or no usable secret: as it was */
	assert_int_equal(redact_secret_inplace(same, strlen(same), "sk-canary-123"), strlen("nothing here"));
	assert_int_equal(redact_secret_inplace(same, strlen(same), NULL), strlen("nothing here"));
	assert_int_equal(redact_secret_inplace(same, strlen(same), ""), strlen("nothing here"));
	assert_int_equal(redact_secret_inplace(same, strlen(same), "no"), strlen("nothing here"));
	assert_string_equal(same, "nothing here");
	assert_int_equal(redact_secret_inplace(NULL, 0, "sk-canary-123"), 0);
}

static void test_tokens_inplace(void **state)
{
	char body[] = "{\"error\":\"invalid token q-secret-123456 for c=cookie-secret-9 auth Bearer hdr-secret-1234\"}";
	char short_words[] = "Bearer session sk";
	size_t n;

	(void)state;
	n = redact_tokens_inplace(body, strlen(body), "http://u:pw-secret-77@h/mcp?api_key=q-secret-123456&v=1");
	n = redact_tokens_inplace(body, n, "c=cookie-secret-9; theme=dark");
	n = redact_tokens_inplace(body, n, "Bearer hdr-secret-1234");
	assert_int_equal(n, strlen(body));
	assert_string_equal(body, "{\"error\":\"invalid token *** for c=*** auth ***\"}");
	/* words under REDACT_TOKEN_MIN bytes stay, and a NULL source changes nothing */
	assert_int_equal(redact_tokens_inplace(short_words, strlen(short_words), "Bearer session=sk"),
			 strlen("Bearer session sk"));
	assert_int_equal(redact_tokens_inplace(short_words, strlen(short_words), NULL), strlen("Bearer session sk"));
	assert_string_equal(short_words, "Bearer session sk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_userinfo_and_query),
		cmocka_unit_test(test_url_cut),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_cut),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_secret_inplace),
		cmocka_unit_test(test_tokens_inplace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
