/* stdio_floor.c: the latency floor of one MCP tool call: a direct stdio client, no gateway.
 *
 *   stdio_floor [-n CALLS] [-w WARMUP] [-t TOOL] [-a ARGUMENTS_JSON] -- COMMAND [ARGS...]
 *
 * Spawns the MCP server COMMAND, runs initialize / notifications/initialized,
 * then WARMUP untimed and CALLS timed sequential tools/call of TOOL (default
 * list_tables, arguments {}), one at a time, and prints one line:
 *
 *   calls=N median_us=X p10_us=X p90_us=X min_us=X errors=N
 *
 * A call's time runs from the first byte written to the server's stdin to the
 * end of the answer's line on its stdout; nothing a gateway could skip. The
 * answer is parsed (and its id checked) after the clock stopped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mcpstdio.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long calls = 2000, warmup = 200;
	const char *tool = "list_tables", *args = "{}";
	static struct mcpstdio s;
	int opt, errors = 0;
	double *lat;

	while ((opt = getopt(argc, argv, "+n:w:t:a:")) != -1) {
		switch (opt) {
		case 'n': calls = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 't': tool = optarg; break;
		case 'a': args = optarg; break;
		default: goto usage;
		}
	}
	if (optind >= argc || calls < 1 || warmup < 0) {
usage:
		fprintf(stderr,
			"usage: stdio_floor [-n CALLS] [-w WARMUP] [-t TOOL] [-a ARGS_JSON] -- COMMAND [ARGS...]\n");
		return 2;
	}
	if (!(lat = calloc((size_t)calls, sizeof *lat)) || mcpstdio_start(&s, argv + optind, "stdio_floor") < 0)
		return 1;
	for (long i = 0; i < warmup + calls; i++) {
		double t0 = mcpstdio_now_us(), t1 = 0;
		int rc = mcpstdio_call(&s, tool, args, &t1, NULL);

		if (rc < 0) {
			fprintf(stderr, "stdio_floor: the server closed its stdout\n");
			mcpstdio_stop(&s);
			free(lat);
			return 1;
		}
		if (rc == 0)
			errors++;
		if (i >= warmup)
			lat[i - warmup] = t1 - t0;
	}
	mcpstdio_stop(&s);
	qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
	printf("calls=%ld median_us=%.1f p10_us=%.1f p90_us=%.1f min_us=%.1f errors=%d\n", calls, lat[calls / 2],
	       lat[calls / 10], lat[calls * 9 / 10], lat[0], errors);
	free(lat);
	return errors ? 1 : 0;
}
