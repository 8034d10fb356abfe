/* backoff.c: the supervision policy: restart waits that start small for a server that ran and double for one that keeps failing. */
#include "backoff.h"

#include <stdio.h>

long backoff_next(long last_ms, int was_ready, int served, int64_t ready_for_ms, long max_ms)
{
	long b = last_ms;

	if (was_ready && (b == 0 || served || ready_for_ms > BACKOFF_HEALTHY_MS))
		b = BACKOFF_RESTART_MS;
	else if (!was_ready && b < BACKOFF_START_MS)
		b = BACKOFF_START_MS;
	else
		b = b > max_ms / 2 ? max_ms : b * 2;
	return b < max_ms ? b : max_ms;
}

const char *backoff_format(char *out, size_t outlen, long ms)
{
	if (ms < 1000)
		snprintf(out, outlen, "%.1f s", (double)ms / 1000);
	else if (ms >= 120000 && ms % 60000 == 0)
		snprintf(out, outlen, "%ld min", ms / 60000);
	else
		snprintf(out, outlen, "%ld s", (ms + 500) / 1000);
	return out;
}
