/* test_apikey.c: unit tests for API keys (lib/core/apikey.c, keystore.c): form, SHA-256, constant-time equality, records, dates, usage and rate windows in a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/apikey.h"
#include "core/keystore.h"

/* minted keys have the documented form, carry their id, differ every time */
static void test_form(void **state)
{
	char a[APIKEY_TEXT_MAX], b[APIKEY_TEXT_MAX], id[APIKEY_ID_MAX], id2[APIKEY_ID_MAX], got[APIKEY_ID_MAX];

	(void)state;
	assert_int_equal(apikey_new(a, sizeof a, id, sizeof id), 0);
	assert_int_equal(apikey_new(b, sizeof b, id2, sizeof id2), 0);
	assert_string_not_equal(a, b);
	assert_string_not_equal(id, id2);
	assert_int_equal(strlen(a), APIKEY_TEXT_MAX - 1);
	assert_int_equal(strncmp(a, APIKEY_PREFIX, strlen(APIKEY_PREFIX)), 0);
	assert_int_equal(strlen(id), APIKEY_ID_CHARS);
	assert_int_equal(apikey_id(a, got, sizeof got), 0);
	assert_string_equal(got, id);
	/* other forms have no id (MCPGW_API_KEYS' keys are compared whole) */
	assert_int_equal(apikey_id("sk-proj-abc", got, sizeof got), -1);
	a[strlen(a) - 1] = '!';
	assert_int_equal(apikey_id(a, got, sizeof got), -1);
	a[strlen(a) - 1] = '\0';
	assert_int_equal(apikey_id(a, got, sizeof got), -1);
	assert_int_equal(apikey_new(a, 10, id, sizeof id), -1);
}

/* SHA-256 of the known vector; equal hashes compare equal, one bit off does not */
static void test_hash(void **state)
{
	static const unsigned char abc[APIKEY_HASH_BYTES] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	unsigned char h[APIKEY_HASH_BYTES], g[APIKEY_HASH_BYTES];

	(void)state;
	assert_int_equal(apikey_hash("abc", 3, h), 0); /* FIPS 180-2, appendix B.1 */
	assert_memory_equal(h, abc, sizeof h);
	assert_true(apikey_equal(h, abc));
	memcpy(g, h, sizeof g);
	g[31] ^= 1;
	assert_false(apikey_equal(g, h));
	assert_int_equal(apikey_hash("abcd", 3, g), 0); /* len counts, not the NUL */
	assert_true(apikey_equal(g, abc));
}

/* a record goes to JSON and back whole; the key itself is never in it */
static void test_record(void **state)
{
	struct apikey k, back;
	char key[APIKEY_TEXT_MAX], err[128], *text;
	json_t *j;

	(void)state;
	memset(&k, 0, sizeof k);
	assert_int_equal(apikey_new(key, sizeof key, k.id, sizeof k.id), 0);
	assert_int_equal(apikey_hash(key, strlen(key), k.hash), 0);
	snprintf(k.name, sizeof k.name, "alice");
	snprintf(k.policy.servers, sizeof k.policy.servers, "sqlite");
	k.rpm = 3;
	k.tpm = 1000;
	k.tcpm = 7;
	k.created_ms = 1700000000000;
	k.expires_ms = 1800000000000;
	assert_non_null(j = apikey_to_json(&k));
	text = json_dumps(j, 0);
	assert_null(strstr(text, key + strlen(APIKEY_PREFIX) + APIKEY_ID_CHARS + 1));
	free(text);
	assert_int_equal(apikey_from_json(j, &back, err, sizeof err), 0);
	assert_memory_equal(&back, &k, sizeof k);
	/* admin: kept; a record made before admin keys has none: not admin; a non-boolean is malformed */
	k.admin = 1;
	json_decref(j);
	assert_non_null(j = apikey_to_json(&k));
	assert_int_equal(apikey_from_json(j, &back, err, sizeof err), 0);
	assert_int_equal(back.admin, 1);
	json_object_del(j, "admin");
	assert_int_equal(apikey_from_json(j, &back, err, sizeof err), 0);
	assert_int_equal(back.admin, 0);
	json_object_set_new(j, "admin", json_string("yes"));
	assert_int_equal(apikey_from_json(j, &back, err, sizeof err), -1);
	json_object_set_new(j, "admin", json_false());
	json_object_set_new(j, "sha256", json_string("xyz"));
	assert_int_equal(apikey_from_json(j, &back, err, sizeof err), -1);
	json_decref(j);
	assert_true(apikey_live(&k, 1750000000000));
	assert_false(apikey_live(&k, 1800000000000));
	k.revoked_ms = 1;
	assert_false(apikey_live(&k, 1750000000000));
}

static void test_dates(void **state)
{
	int64_t ms;
	char out[32];

	(void)state;
	assert_int_equal(apikey_parse_date("2030-01-01", &ms), 0);
	apikey_format_date(ms, out, sizeof out);
	assert_string_equal(out, "2030-01-01T23:59:59Z"); /* valid through the day */
	assert_int_equal(apikey_parse_date("2030-01-01T12:30Z", &ms), 0);
	apikey_format_date(ms, out, sizeof out);
	assert_string_equal(out, "2030-01-01T12:30:00Z");
	assert_int_equal(apikey_parse_date("2030-01-01T12:30:15", &ms), 0);
	assert_int_equal(ms, 1893501015000LL);
	assert_int_equal(apikey_parse_date("2026-02-30", &ms), -1);
	assert_int_equal(apikey_parse_date("2026-13-01", &ms), -1);
	assert_int_equal(apikey_parse_date("tomorrow", &ms), -1);
	assert_int_equal(apikey_parse_date("2026-01-01 12:00", &ms), -1);
	assert_int_equal(apikey_parse_date("2026-01-01T12:00Zx", &ms), -1);
}

/* the store: records, the generation moving on each change, usage, the rate windows */
static void test_keystore(void **state)
{
	char dir[] = "/tmp/test_apikey.XXXXXX", url[128], err[256], cmd[128];
	struct statestore_opts o = { .timeout_ms = 5000 };
	struct statestore *st;
	struct apikey k, got, *all = NULL;
	int64_t gen0, gen1, use[KEYSTORE_NKINDS], total, retry;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof url, "sqlite:%s/state.db", dir);
	o.url = url;
	assert_non_null(st = statestore_open(&o, err, sizeof err));
	assert_int_equal(keystore_generation(st, &gen0), STATESTORE_OK);
	assert_int_equal(gen0, 0);
	memset(&k, 0, sizeof k);
	snprintf(k.id, sizeof k.id, "abc");
	snprintf(k.name, sizeof k.name, "n");
	assert_int_equal(keystore_put(st, NULL, &k), STATESTORE_OK);
	assert_int_equal(keystore_generation(st, &gen1), STATESTORE_OK);
	assert_true(gen1 > gen0);
	assert_int_equal(keystore_get(st, "abc", &got), STATESTORE_OK);
	assert_string_equal(got.name, "n");
	assert_int_equal(keystore_get(st, "nope", &got), STATESTORE_NOTFOUND);
	snprintf(k.id, sizeof k.id, "abd");
	assert_int_equal(keystore_put(st, NULL, &k), STATESTORE_OK);
	assert_int_equal(keystore_load(st, &all, &n), STATESTORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].id, "abc");
	assert_string_equal(all[1].id, "abd");
	free(all);
	/* usage */
	assert_int_equal(keystore_count(st, "abc", KEYSTORE_REQUESTS, 1), STATESTORE_OK);
	assert_int_equal(keystore_count(st, "abc", KEYSTORE_REQUESTS, 1), STATESTORE_OK);
	assert_int_equal(keystore_count(st, "abc", KEYSTORE_TOKENS, 120), STATESTORE_OK);
	assert_int_equal(keystore_usage(st, "abc", use), STATESTORE_OK);
	assert_int_equal(use[KEYSTORE_REQUESTS], 2);
	assert_int_equal(use[KEYSTORE_TOKENS], 120);
	assert_int_equal(use[KEYSTORE_TOOL_CALLS], 0);
	/* a fixed window of a minute: counts add up inside it, a new minute starts at 0 */
	assert_int_equal(keystore_window(st, "abc", KEYSTORE_REQUESTS, 1, 600000 + 15000, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 1);
	assert_int_equal(retry, 45000);
	assert_int_equal(keystore_window(st, "abc", KEYSTORE_REQUESTS, 1, 600000 + 59999, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 2);
	assert_int_equal(retry, 1);
	assert_int_equal(keystore_window(st, "abc", KEYSTORE_REQUESTS, 0, 600000 + 30000, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 2);
	assert_int_equal(keystore_window(st, "abc", KEYSTORE_REQUESTS, 1, 660000, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 1);
	assert_int_equal(retry, 60000);
	/* another key, another kind: their own windows */
	assert_int_equal(keystore_window(st, "abd", KEYSTORE_REQUESTS, 0, 660000, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 0);
	assert_int_equal(keystore_window(st, "abc", KEYSTORE_TOOL_CALLS, 0, 660000, &total, &retry), STATESTORE_OK);
	assert_int_equal(total, 0);
	statestore_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),  cmocka_unit_test(test_hash),     cmocka_unit_test(test_record),
		cmocka_unit_test(test_dates), cmocka_unit_test(test_keystore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
