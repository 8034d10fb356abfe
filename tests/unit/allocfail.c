/* allocfail.c: jansson's allocations made to fail at the n-th one (only), as jansson's own chaos tests do (unit tests). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "allocfail.h"

static int fail_at; /* 0: counting off */
static int count;
static int paused;

static void *allocfail_malloc(size_t size)
{
	if (fail_at && !paused && ++count == fail_at) {
		errno = ENOMEM; /* as malloc says it */
		return NULL;
	}
	return malloc(size);
}

void allocfail_start(int n)
{
	count = 0;
	paused = 0;
	fail_at = n;
	json_set_alloc_funcs(allocfail_malloc, free);
}

int allocfail_stop(void)
{
	int reached = fail_at && count >= fail_at;

	json_set_alloc_funcs(malloc, free);
	fail_at = 0;
	return reached;
}

void allocfail_pause(void)
{
	paused++;
}

void allocfail_resume(void)
{
	if (paused > 0)
		paused--;
}

/* jansson's parser and json_dumps do not survive a failed allocation
 * (jansson 2.14: lex_save ignores a failed append, so a parsed string
 * loses a character or an assert aborts, issue #362; do_dump ignores a
 * failed object key, so json_dumps returns text with a key missing), so
 * each such call counts as one allocation here: when the countdown
 * reaches it, it fails whole (NULL, "out of memory", as a parser or
 * serialiser that checked would), else it runs with no failure inside.
 * The test programs link with -Wl,--wrap=json_loadb,--wrap=json_loads,
 * --wrap=json_dumps (Makefile). */
json_t *__real_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__real_json_loads(const char *input, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error);
char *__real_json_dumps(const json_t *json, size_t flags);
char *__wrap_json_dumps(const json_t *json, size_t flags);

/* whole_fails: 1 when this parse or serialisation is the n-th allocation (error, if any, filled) */
static int whole_fails(json_error_t *error)
{
	if (!(fail_at && !paused && ++count == fail_at))
		return 0;
	if (error) {
		memset(error, 0, sizeof *error);
		snprintf(error->text, sizeof error->text, "out of memory");
		snprintf(error->source, sizeof error->source, "<allocfail>");
		error->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_out_of_memory; /* json_error_code */
	}
	return 1;
}

json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error)
{
	json_t *v;

	if (whole_fails(error))
		return NULL;
	paused++;
	v = __real_json_loadb(buffer, buflen, flags, error);
	paused--;
	return v;
}

json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error)
{
	json_t *v;

	if (whole_fails(error))
		return NULL;
	paused++;
	v = __real_json_loads(input, flags, error);
	paused--;
	return v;
}

char *__wrap_json_dumps(const json_t *json, size_t flags)
{
	char *s;

	if (whole_fails(NULL))
		return NULL;
	paused++;
	s = __real_json_dumps(json, flags);
	paused--;
	return s;
}
