/* mcpstdio.h: the bench programs' direct MCP stdio client: spawn a server, initialize, call a tool, no gateway in between. */
#ifndef MCPGW_BENCH_MCPSTDIO_H
#define MCPGW_BENCH_MCPSTDIO_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* one server over stdio (MCP 2025-06-18, basic/transports#stdio): newline-
 * delimited JSON-RPC on its stdin and stdout; what it writes to stderr is
 * inherited */
struct mcpstdio {
	int in, out; /* its stdin (we write), its stdout (we read) */
	pid_t pid;
	long id;            /* the last request id used */
	char rbuf[1 << 20]; /* lines read (a line over 1 MB: not what the bench measures) */
	size_t rlen, roff;
};

/* mcpstdio_now_us: monotonic microseconds */
double mcpstdio_now_us(void);

/* mcpstdio_start: spawn argv (argv[0] looked up in PATH) with s's pipes as
 * its stdin and stdout, then initialize / notifications/initialized as
 * client_name. 0, or -1 with a message on stderr (the child reaped). */
int mcpstdio_start(struct mcpstdio *s, char *const argv[], const char *client_name);

/* mcpstdio_call: tools/call of tool with arguments (JSON text of an object)
 * as the next id, waiting for its answer (notifications and requests of
 * the server's are skipped). *t_end (when not NULL): when the answer's
 * line ended; *answer (when not NULL): the answer's "result" or "error"
 * member (the caller json_decrefs it). 1 a result, 0 an error answer or a
 * result with isError, -1 the server closed its stdout or wrote garbage. */
int mcpstdio_call(struct mcpstdio *s, const char *tool, const char *arguments, double *t_end, json_t **answer);

/* mcpstdio_stop: close its stdin and reap it. */
void mcpstdio_stop(struct mcpstdio *s);

#endif
