/* test_bstatus.c: unit tests for lib/bstatus.c: mcpgw/status as one tab-separated line per server; no broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/bstatus.h"
#include "core/log.h"
#include "core/settings.h"

/* lines: bstatus_write of the JSON text into a new string (*rc its result) */
static char *lines(const char *text, int *rc)
{
	json_t *j = json_loads(text, 0, NULL);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(j);
	assert_non_null(f);
	*rc = bstatus_write(f, j);
	assert_int_equal(fclose(f), 0);
	json_decref(j);
	return out;
}

static void test_lines(void **state)
{
	char *out;
	int rc;

	(void)state;
	out = lines("{\"broker\":{\"pid\":1},\"servers\":["
		    "{\"name\":\"sqlite\",\"state\":\"ready\",\"tools\":6,\"restarts\":0,\"last_error\":null,"
		    "\"serverInfo\":{\"name\":\"x\\ty\"}},"
		    "{\"name\":\"gh\\tost\\n\",\"state\":\"backoff\",\"tools\":0,\"restarts\":12,"
		    "\"last_error\":\"exited with status 3 (stderr: a\\tb\\nc\\u007f)\"},"
		    "{\"name\":\"off\",\"state\":\"disabled\",\"tools\":0,\"restarts\":0,\"last_error\":\"\"},"
		    /* the detail (the stderr line, for local operators) wins over the clients' reason */
		    "{\"name\":\"db\",\"state\":\"backoff\",\"tools\":0,\"restarts\":1,"
		    "\"last_error\":\"exited with status 1; see the broker log\","
		    "\"detail\":\"exited with status 1 (stderr: no db)\"}]}",
		    &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "sqlite\tready\t6\t0\t-\n"
				 "gh ost \tbackoff\t0\t12\texited with status 3 (stderr: a b c )\n"
				 "off\tdisabled\t0\t0\t-\n"
				 "db\tbackoff\t0\t1\texited with status 1 (stderr: no db)\n");
	free(out);
	out = lines("{\"servers\":[]}", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "");
	free(out);
	out = lines("{\"broker\":{}}", &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(out, "");
	free(out);
}

static void test_no_broker(void **state)
{
	static struct settings s;
	char err[512];
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)state;
	assert_non_null(f);
	snprintf(s.socket_path, sizeof s.socket_path, "/nonexistent/mcpgw-test/broker.sock");
	s.max_message_bytes = 65536;
	s.broker_timeout_ms = 100;
	assert_int_equal(bstatus_query(f, &s, err, sizeof err), 1);
	assert_string_equal(err, "no broker is running on /nonexistent/mcpgw-test/broker.sock");
	assert_int_equal(fclose(f), 0);
	assert_string_equal(out, "");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_no_broker),
	};

	log_init("test_bstatus", LOGL_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
