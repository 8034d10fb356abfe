/* clock.h: the monotonic clock and a sleep, in milliseconds: the one time source of deadlines, timeouts and backoff. */
#ifndef MCPGW_CLOCK_H
#define MCPGW_CLOCK_H

#include <stdint.h>

/* clock_now_ms: milliseconds of CLOCK_MONOTONIC (clock_gettime(2)): only
 * differences mean anything; never goes back, not moved by changes of the
 * wall clock. Cannot fail on Linux; 0 if it ever did. */
int64_t clock_now_ms(void);

/* clock_wall_ms: milliseconds since the epoch (CLOCK_REALTIME): for
 * timestamps that are stored or shown, never for deadlines. 0 if it failed. */
int64_t clock_wall_ms(void);

/* clock_sleep_ms: sleep ms milliseconds (nothing when ms <= 0); a signal
 * does not cut it short (nanosleep(2) resumed with the time left). */
void clock_sleep_ms(long ms);

#endif
