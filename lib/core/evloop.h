/* evloop.h: the event loop of the broker and of the asynchronous broker client: fds and timers with callbacks; it knows no module. */
#ifndef MCPGW_EVLOOP_H
#define MCPGW_EVLOOP_H

#include <stdint.h>

#define EVLOOP_READ 1  /* readable, or hung up / in error (a read then says which) */
#define EVLOOP_WRITE 2 /* writable, or in error (a write then says which) */
#define EVLOOP_ERROR 4 /* reported with the others: EPOLLERR or EPOLLHUP */

#define EVLOOP_NEVER INT64_MAX /* a timer's due time when it has nothing to do */

struct evloop;

/* evloop_fd_fn: fd is ready; events: EVLOOP_READ / EVLOOP_WRITE (only
 * those watched) and EVLOOP_ERROR. The callback may watch, unwatch (itself
 * included) and add or delete timers. */
typedef void evloop_fd_fn(void *ctx, int fd, int events);
/* evloop_due_fn: when the timer is next due (ms on the loop's clock), or
 * EVLOOP_NEVER. Asked before every wait: the owner moves its deadline by
 * changing what this returns, there is nothing to re-arm. So a pass costs
 * O(timers) (every timer's due is asked, twice): fine for the few timers an
 * owner keeps (one per module, server or client, not one per request); an
 * owner with many deadlines keeps one timer whose due is the earliest. */
typedef int64_t evloop_due_fn(void *ctx);
/* evloop_fire_fn: the timer's due time has come (now: the loop's clock) */
typedef void evloop_fire_fn(void *ctx, int64_t now);
/* evloop_clock_fn: the loop's clock in ms (monotonic) */
typedef int64_t evloop_clock_fn(void *clock_ctx);

/* evloop_new: an empty loop on clock (NULL: clock_now_ms, the monotonic
 * clock; a test passes a fake one), with an epoll(7) instance of its own
 * (close-on-exec). Free with evloop_free. NULL on ENOMEM or when epoll
 * cannot be had (errno). */
struct evloop *evloop_new(evloop_clock_fn *clock, void *clock_ctx);
/* evloop_free: the loop and its epoll instance; fds watched are not closed (their owners do) */
void evloop_free(struct evloop *l);
/* evloop_now: the loop's clock */
int64_t evloop_now(const struct evloop *l);

/* evloop_watch: call fn(ctx, fd, ready) when fd is ready for events
 * (EVLOOP_READ | EVLOOP_WRITE); watching an fd again replaces its interest
 * and callback; events 0 is evloop_unwatch. The change reaches the kernel
 * before the next wait (one epoll_ctl for an fd whose interest changed,
 * none for one that did not; a pass costs what is ready, not what is
 * watched). A regular file (which epoll refuses) is reported ready at every
 * pass, as poll(2) has it. An fd closed without evloop_unwatch whose number
 * comes back is registered afresh when it is next watched with other
 * interest or another callback; watched exactly as before, it is taken for
 * the one registered: unwatch before closing. 0, or -1 on ENOMEM or a bad
 * fd. */
int evloop_watch(struct evloop *l, int fd, int events, evloop_fd_fn *fn, void *ctx);
/* evloop_unwatch: forget fd, watched or parked (before closing it: its epoll
 * registration is removed now); readiness already collected for it in this
 * pass is dropped */
void evloop_unwatch(struct evloop *l, int fd);

/* evloop_park: stop calling fd's callback but leave its epoll registration
 * in place, for an fd its owner is likely to watch again as it was (a kept
 * connection between two transfers: libcurl's CURL_POLL_REMOVE): watched
 * again by the same callback and context with the same events, it costs no
 * system call. Should it become ready while parked, its registration is
 * removed then (one epoll_ctl). The owner must still evloop_unwatch it
 * before closing it. An fd not watched: nothing. */
void evloop_park(struct evloop *l, int fd);

/* evloop_timer_add: a timer: due(ctx) is asked for its time, fire(ctx, now)
 * runs once the clock reaches it (again at every pass while due stays at or
 * before now). One added inside a timer's callback is first asked at the next
 * pass.
 * Its id (> 0), or -1 on ENOMEM. */
long evloop_timer_add(struct evloop *l, evloop_due_fn *due, evloop_fire_fn *fire, void *ctx);
/* evloop_timer_del: remove timer id (safe inside its own callback, or
 * another's: a timer deleted during the timer pass does not fire in it) */
void evloop_timer_del(struct evloop *l, long id);

/* evloop_step: one pass: wait until an fd is ready or a timer is due, but
 * at most max_ms (0: do not wait), then run the callbacks of the ready fds
 * (at most 256 a pass; the others are ready again at the next), then those
 * of the timers due. The number of ready fds and timers it ran (0: nothing
 * happened: the wait ended at max_ms or on a signal), or -1 when epoll_wait(2)
 * failed (errno). */
int evloop_step(struct evloop *l, int max_ms);

#endif
