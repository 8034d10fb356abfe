/* sigwatch.h: signals in the broker's loop: stop requests (SIGTERM, SIGINT), log reopening (SIGHUP) and exited children (SIGCHLD). */
#ifndef MCPGW_SIGWATCH_H
#define MCPGW_SIGWATCH_H

#include <sys/types.h>

#include "core/evloop.h"

struct sigwatch;

/* sigwatch_child_fn: child pid (watched) ended with status (waitpid(2)) */
typedef void sigwatch_child_fn(void *ctx, pid_t pid, int status);

/* sigwatch_new: install the handlers (SIGPIPE ignored; the others only set
 * a flag and wake the loop through a pipe watched on l) and call
 * on_stop(ctx) in the loop when a stop signal came (SIGTERM, SIGINT); a
 * SIGHUP reopens the log file (log_reopen: logrotate moved it). One per process. Free
 * with sigwatch_free. NULL on failure (errno). */
struct sigwatch *sigwatch_new(struct evloop *l, void (*on_stop)(void *ctx), void *ctx);
/* sigwatch_child: call fn(ctx, pid, status) when child pid is reaped
 * (children nobody watches are reaped and forgotten). 0 or -1 (ENOMEM) */
int sigwatch_child(struct sigwatch *sw, pid_t pid, sigwatch_child_fn *fn, void *ctx);
/* sigwatch_forget: stop watching pid */
void sigwatch_forget(struct sigwatch *sw, pid_t pid);
/* sigwatch_free: the pipe and the table (the handlers stay installed) */
void sigwatch_free(struct sigwatch *sw);

#endif
