/* allocfail.h: jansson's allocations made to fail at the n-th one (only), as jansson's own chaos tests do (unit tests). */
#ifndef MCPGW_TEST_ALLOCFAIL_H
#define MCPGW_TEST_ALLOCFAIL_H

/* allocfail_start: from now on jansson allocates through a counter whose
 * n-th allocation (n >= 1; counted from this call) returns NULL; every
 * other one succeeds. A parse (json_loads, json_loadb) or a json_dumps
 * counts as one allocation that fails whole: jansson's own cannot fail
 * cleanly inside (allocfail.c). */
void allocfail_start(int n);

/* allocfail_stop: jansson allocates with malloc again. Returns 1 when the
 * n-th allocation was reached (it failed), 0 when fewer were made: the
 * code under test made every allocation it makes for that input, so a
 * loop over n = 1, 2, ... ends there. */
int allocfail_stop(void);

/* allocfail_pause / allocfail_resume: allocations between them (a test's
 * own recording, e.g. in a sink callback) neither count nor fail. Nest. */
void allocfail_pause(void);
void allocfail_resume(void);

/* allocfail_max: the bound of such a loop: a test fails when an input
 * still reaches its n-th allocation at this n (a loop that never ends). */
#define ALLOCFAIL_MAX 20000

#endif
