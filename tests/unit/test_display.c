/* test_display.c: unit tests of chat/display.c: a tool call shown while it runs, then its result, on a terminal and on a pipe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "display.h"

/* the answer and info streams of one display, in memory */
struct screen {
	char *out, *info;
	size_t out_len, info_len;
	FILE *fout, *finfo;
	struct display d;
};

static void screen_open(struct screen *s, int color)
{
	memset(s, 0, sizeof *s);
	s->fout = open_memstream(&s->out, &s->out_len);
	s->finfo = open_memstream(&s->info, &s->info_len);
	assert_non_null(s->fout);
	assert_non_null(s->finfo);
	display_init(&s->d, s->fout, s->finfo, color);
}

static void screen_close(struct screen *s)
{
	fclose(s->fout);
	fclose(s->finfo);
	free(s->out);
	free(s->info);
}

/* on a pipe: a "running..." line when the call starts, the result line when it ends */
static void test_tool_running_then_result_plain(void **state)
{
	struct screen s;
	(void)state;

	screen_open(&s, 0);
	display_tool_start(&s.d, "sqlite", "write_query", "{\"query\":\"INSERT\"}");
	fflush(s.finfo);
	assert_string_equal(s.info, "  [tool sqlite] write_query {\"query\":\"INSERT\"} running...\n");
	display_tool(&s.d, "sqlite", "write_query", "{\"query\":\"INSERT\"}", "1 row", 0);
	fflush(s.finfo);
	assert_string_equal(s.info, "  [tool sqlite] write_query {\"query\":\"INSERT\"} running...\n"
				    "  [tool sqlite] write_query {\"query\":\"INSERT\"} -> 1 row\n");
	screen_close(&s);
}

/* on a terminal: the running line stays open and its result replaces it;
 * when anything else came between, it is left and the result gets its own line */
static void test_tool_running_replaced_on_terminal(void **state)
{
	struct screen s;
	(void)state;

	screen_open(&s, 1);
	display_tool_start(&s.d, "sqlite", "list_tables", "{}");
	fflush(s.finfo);
	assert_string_equal(s.info, "\033[2m  [tool sqlite] list_tables {} ...\033[0m");
	display_tool(&s.d, "sqlite", "list_tables", "{}", "[]", 0);
	fflush(s.finfo);
	assert_string_equal(s.info, "\033[2m  [tool sqlite] list_tables {} ...\033[0m\r\033[K"
				    "\033[2m  [tool sqlite] list_tables {} -> []\033[0m\n");
	screen_close(&s);

	/* two calls at once: the first running line is ended by the second, results on their own lines */
	screen_open(&s, 1);
	display_tool_start(&s.d, "a", "one", "{}");
	display_tool_start(&s.d, "a", "two", "{}");
	display_tool(&s.d, "a", "one", "{}", "1", 0);
	display_text(&s.d, "Done.", 5);
	fflush(s.finfo);
	fflush(s.fout);
	assert_string_equal(s.info, "\033[2m  [tool a] one {} ...\033[0m\n"
				    "\033[2m  [tool a] two {} ...\033[0m\n"
				    "\033[2m  [tool a] one {} -> 1\033[0m\n");
	assert_string_equal(s.out, "Done.");
	screen_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tool_running_then_result_plain),
		cmocka_unit_test(test_tool_running_replaced_on_terminal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
