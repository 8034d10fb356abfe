/* test_toolpolicy.c: unit tests for the per-key tool policy (lib/core/toolpolicy.c) and the client address (lib/core/clientaddr.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/clientaddr.h"
#include "core/toolpolicy.h"

static void test_globs(void **state)
{
	struct toolpolicy p;
	char err[256];

	(void)state;
	memset(&p, 0, sizeof p);
	assert_true(toolpolicy_allows(NULL, "x", "y"));
	assert_true(toolpolicy_allows(&p, "x", "y")); /* empty lists: everything */
	assert_false(toolpolicy_restricts(&p));
	snprintf(p.servers, sizeof p.servers, "sqlite,fs-*");
	assert_true(toolpolicy_restricts(&p));
	assert_true(toolpolicy_allows(&p, "sqlite", "read_query"));
	assert_true(toolpolicy_allows(&p, "fs-home", "read_file"));
	assert_false(toolpolicy_allows(&p, "everything", "echo"));
	assert_false(toolpolicy_allows(&p, "sqlite2", "read_query")); /* whole names, not prefixes */
	assert_false(toolpolicy_allows(&p, NULL, "read_query"));      /* an unknown server is not allowed */
	snprintf(p.tools, sizeof p.tools, "read_*,list_tables");
	assert_true(toolpolicy_allows(&p, "sqlite", "read_query"));
	assert_true(toolpolicy_allows(&p, "sqlite", "list_tables"));
	assert_false(toolpolicy_allows(&p, "sqlite", "write_query"));
	snprintf(p.servers, sizeof p.servers, "*");
	snprintf(p.tools, sizeof p.tools, "*");
	assert_false(toolpolicy_restricts(&p));
	assert_int_equal(toolpolicy_check_globs("sqlite,fs-*", err, sizeof err), 0);
	assert_int_equal(toolpolicy_check_globs("", err, sizeof err), 0);
	assert_int_equal(toolpolicy_check_globs("a,,b", err, sizeof err), -1);
	assert_int_equal(toolpolicy_check_globs("a,", err, sizeof err), -1);
	assert_int_equal(toolpolicy_check_globs("a b", err, sizeof err), -1);
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(clientaddr_loopback("127.0.0.1"));
	assert_true(clientaddr_loopback("127.255.0.9"));
	assert_true(clientaddr_loopback("::1"));
	assert_true(clientaddr_loopback("::ffff:127.0.0.1"));
	assert_false(clientaddr_loopback("128.0.0.1"));
	assert_false(clientaddr_loopback("10.0.0.1"));
	assert_false(clientaddr_loopback("::2"));
	assert_false(clientaddr_loopback("localhost")); /* the peer is an address, never a name */
	assert_false(clientaddr_loopback(""));
	assert_false(clientaddr_loopback(NULL));
}

static void test_lists(void **state)
{
	char err[256], out[CLIENTADDR_MAX];

	(void)state;
	assert_int_equal(clientaddr_check_list("10.0.0.0/8,192.168.1.7,::1,fd00::/8", err, sizeof err), 0);
	assert_int_equal(clientaddr_check_list("", err, sizeof err), 0);
	assert_int_equal(clientaddr_check_list("10.0.0.0/33", err, sizeof err), -1);
	assert_int_equal(clientaddr_check_list("proxy.example", err, sizeof err), -1);
	assert_true(clientaddr_in_list("10.0.0.0/8", "10.200.3.4"));
	assert_false(clientaddr_in_list("10.0.0.0/8", "11.0.0.1"));
	assert_true(clientaddr_in_list("192.168.1.0/25", "192.168.1.127"));
	assert_false(clientaddr_in_list("192.168.1.0/25", "192.168.1.128"));
	assert_true(clientaddr_in_list("fd00::/8", "fd12::1"));
	assert_true(clientaddr_in_list("0.0.0.0/0", "8.8.8.8"));
	assert_false(clientaddr_in_list("", "8.8.8.8"));
	/* X-Forwarded-For only from a trusted proxy, the rightmost hop that is not one */
	clientaddr_resolve("10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.3", "10.0.0.0/8", out, sizeof out);
	assert_string_equal(out, "203.0.113.9");
	clientaddr_resolve("192.0.2.1", "1.2.3.4", "10.0.0.0/8", out, sizeof out);
	assert_string_equal(out, "192.0.2.1"); /* an untrusted peer's header is not believed */
	clientaddr_resolve("10.0.0.2", NULL, "10.0.0.0/8", out, sizeof out);
	assert_string_equal(out, "10.0.0.2");
	clientaddr_resolve(NULL, NULL, "", out, sizeof out);
	assert_string_equal(out, "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
