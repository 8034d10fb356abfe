/* backoff.h: the supervision policy: how long a server that went down waits before its next start. */
#ifndef MCPGW_BACKOFF_H
#define MCPGW_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define BACKOFF_HEALTHY_MS 30000 /* ready this long: the backoff starts over */
#define BACKOFF_RESTART_MS 100   /* first wait before restarting a server that was ready */
#define BACKOFF_START_MS 1000    /* first wait after a failed start; doubles up to the maximum */

/* backoff_next: the wait before the next start. A server that was ready
 * for BACKOFF_HEALTHY_MS (ready_for_ms), or that answered a request since
 * it got ready (served: it worked, whether it then exited cleanly or not;
 * a crash loop never answers), restarts after BACKOFF_RESTART_MS; one that
 * never got ready (did not spawn, exited or failed during initialize)
 * waits BACKOFF_START_MS, then twice as long each time; one that was ready
 * only briefly and answered nothing doubles its last wait (last_ms, 0 none
 * yet). All capped at max_ms (MCPGW_RESTART_BACKOFF_MAX). */
long backoff_next(long last_ms, int was_ready, int served, int64_t ready_for_ms, long max_ms);
/* backoff_format: ms as "0.1 s", "4 s" or "5 min" into out; returns out */
const char *backoff_format(char *out, size_t outlen, long ms);

#endif
