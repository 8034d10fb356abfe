/* selftest.c: a program that leaks on purpose: tests/check.sh asan-run proves with it that a report reaches sanitize-log/. */
#include <stdlib.h>

/* written through a volatile pointer, so the allocation is not optimised away */
static void *volatile sink;

int main(void)
{
	sink = malloc(64);
	if (!sink)
		return 1;
	sink = NULL; /* the only pointer to it is gone: a definite leak at exit */
	return 0;
}
