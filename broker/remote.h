/* remote.h: MCP servers over HTTP in the broker's loop: Streamable HTTP and legacy HTTP+SSE, on libcurl multi. */
#ifndef MCPGW_REMOTE_H
#define MCPGW_REMOTE_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct srv;

/* remote_global_init: the curl multi handle the loop drives. 0 or -1. */
int remote_global_init(void);
void remote_global_cleanup(void);

/* remote_pollfds: append the sockets libcurl waits on (fd and events) to
 * fds[0..max); returns how many were written. */
size_t remote_pollfds(struct pollfd *fds, size_t max);
/* remote_on_socket: fd became ready with revents */
void remote_on_socket(int fd, short revents);
/* remote_tick: run libcurl's timeouts, start queued transfers, reopen GET
 * streams that are due, finish completed transfers */
void remote_tick(int64_t now);
/* remote_next_deadline: the earliest time remote_tick has work */
int64_t remote_next_deadline(void);
/* remote_busy: transfers still running (the shutdown waits for DELETEs) */
int remote_busy(void);

/* per server (srv.c calls these for remote transports) */
int remote_start(struct srv *s);            /* 0, or -1 with s->last_error-worthy text logged */
int remote_send(struct srv *s, const char *line, size_t len, long long req_id); /* req_id < 0: not a request */
void remote_forget(struct srv *s, long long req_id); /* the request timed out: drop its transfer */
void remote_ready(struct srv *s);           /* lifecycle done: open the optional GET stream */
void remote_close(struct srv *s);           /* connection down: abort every transfer */
void remote_stop(struct srv *s);            /* shutdown: DELETE the session, then close */
void remote_free(struct srv *s);
const char *remote_mode_name(const struct srv *s);

#endif
