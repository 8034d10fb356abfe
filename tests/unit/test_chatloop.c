/* test_chatloop.c: unit tests for chatloop_choose (lib/http/chatloop.c): which loop of a chat.fcgi process a new run goes to: packed onto the first loop that is neither busy nor full, spread by fewest runs only when every loop is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/chatloop.h"

/* one loop: always it, busy or not */
static void test_one_loop(void **state)
{
	int busy[1] = { 1000 }, runs[1] = { 5000 };

	(void)state;
	assert_int_equal(chatloop_choose(busy, runs, 1, 7), 0);
	busy[0] = 0;
	runs[0] = 0;
	assert_int_equal(chatloop_choose(busy, runs, 1, 0), 0);
}

/* loops that are not busy: the first takes every run, whatever the others hold and wherever the turn is */
static void test_packed_onto_the_first(void **state)
{
	int busy[4] = { 300, 0, 0, 0 }, runs[4] = { 40, 0, 0, 0 };

	(void)state;
	for (unsigned start = 0; start < 8; start++)
		assert_int_equal(chatloop_choose(busy, runs, 4, start), 0);
	/* the first busy: the second, though the first has fewer runs */
	busy[0] = CHATLOOP_PACK_BUSY_PM;
	runs[0] = 1;
	runs[1] = 30;
	assert_int_equal(chatloop_choose(busy, runs, 4, 3), 1);
	/* just below the mark is not busy */
	busy[0] = CHATLOOP_PACK_BUSY_PM - 1;
	assert_int_equal(chatloop_choose(busy, runs, 4, 3), 0);
}

/* a loop full of runs (slow streams that cost little CPU) passes new runs on */
static void test_full_of_runs(void **state)
{
	int busy[3] = { 100, 100, 100 }, runs[3] = { CHATLOOP_PACK_RUNS, CHATLOOP_PACK_RUNS - 1, 0 };

	(void)state;
	assert_int_equal(chatloop_choose(busy, runs, 3, 0), 1);
	runs[1] = CHATLOOP_PACK_RUNS;
	assert_int_equal(chatloop_choose(busy, runs, 3, 0), 2);
}

/* every loop busy: the fewest runs; ties taken in turn from start */
static void test_spread_when_all_busy(void **state)
{
	int busy[3] = { 900, 800, 1000 }, runs[3] = { 9, 4, 7 };

	(void)state;
	for (unsigned start = 0; start < 6; start++)
		assert_int_equal(chatloop_choose(busy, runs, 3, start), 1);
	runs[0] = runs[1] = runs[2] = 5;
	assert_int_equal(chatloop_choose(busy, runs, 3, 0), 0);
	assert_int_equal(chatloop_choose(busy, runs, 3, 1), 1);
	assert_int_equal(chatloop_choose(busy, runs, 3, 2), 2);
	assert_int_equal(chatloop_choose(busy, runs, 3, 5), 2);
	/* every loop full of runs, none busy: spread as well */
	busy[0] = busy[1] = busy[2] = 0;
	runs[0] = CHATLOOP_PACK_RUNS + 3;
	runs[1] = CHATLOOP_PACK_RUNS;
	runs[2] = CHATLOOP_PACK_RUNS + 1;
	assert_int_equal(chatloop_choose(busy, runs, 3, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_loop),
		cmocka_unit_test(test_packed_onto_the_first),
		cmocka_unit_test(test_full_of_runs),
		cmocka_unit_test(test_spread_when_all_busy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
