/* brokerstart.h: make sure an mcpgw-broker serves the state directory, starting one (flock-serialised) when none does; a responder's broker client that finds none starts one (MCPGW_BROKER_AUTOSTART). */
#ifndef MCPGW_BROKERSTART_H
#define MCPGW_BROKERSTART_H

#include <stddef.h>
#include <sys/types.h>

#include "core/settings.h"
#include "mcp/bclient.h"

#define BROKERSTART_TIMEOUT_MS 10000 /* default bound on the start lock and on the socket appearing */
#define BROKERSTART_STOP_MS 15000    /* default wait after SIGTERM before SIGKILL */

struct brokerstart_opts {
	const char *bin; /* the mcpgw-broker executable (see brokerstart_find_bin) */
	long timeout_ms; /* bound on waiting for the start lock, then for the socket; <= 0: BROKERSTART_TIMEOUT_MS */
	int detach;      /* 0: the broker stays a child of this process (stop or reap it with brokerstart_stop);
			   * 1: double fork, the broker is re-parented to init (for callers that never stop it) */
};

struct brokerstart {
	int started; /* 1: this call started the broker; 0: one was already serving the socket */
	pid_t pid;   /* the broker this call started; 0 when started is 0 */
};

/* brokerstart_alive: 1 when something accepts connections on the unix
 * socket at path, 0 when nothing does (no file, refused), -1 when the path
 * does not fit a sockaddr_un. Connects and closes at once. */
int brokerstart_alive(const char *socket_path);

/* brokerstart_find_bin: the mcpgw-broker to start, into out: $MCPGW_BROKER_BIN
 * when set and non-empty (taken as given), else "mcpgw-broker" looked up
 * by progpath_resolve: in mcpgw's own program directories (next to this
 * executable; a checkout's broker/; $PREFIX/bin from
 * $PREFIX/lib/mcpgw/cgi-bin), then on $PATH. 0, or -1 when none is found
 * or the path does not fit (out then holds "mcpgw-broker"). */
int brokerstart_find_bin(char *out, size_t outlen);

/* brokerstart_ensure: make sure a broker serves s->socket_path. When the
 * socket answers: *bs = {0, 0}, nothing else done. Otherwise, holding an
 * exclusive flock on $MCPGW_STATE_DIR/broker.start.lock (the directory is
 * created, mode 0700; waiting for the lock is bounded by o->timeout_ms), it
 * checks again, waits for a broker that holds broker.lock but has no socket
 * yet, or else starts o->bin in the background with this process's
 * environment (MCPGW_HOME and MCPGW_STATE_DIR set to s->home and
 * s->state_dir, so that it serves this socket) and working directory, in its own session, stdin /dev/null,
 * stdout and stderr appended to $MCPGW_STATE_DIR/broker.log, and waits
 * (bounded) for its socket: *bs = {1, pid}. 0, or -1 with err saying what
 * failed, with the tail of the broker's log when it exited or never opened
 * its socket (a broker that did not come up in time is stopped). Call it
 * from a process whose other threads do not fork. */
int brokerstart_ensure(const struct settings *s, const struct brokerstart_opts *o, struct brokerstart *bs, char *err,
		       size_t errlen);

/* brokerstart_wait_ready: ask the broker for mcpgw/status until no MCP
 * server is coming up any more (every enabled one is ready, or failing to
 * start: "failing" in the status), for at most timeout_ms. 0 when none is
 * coming up, 1 when some still are at the deadline, -1 when the broker does
 * not answer. */
int brokerstart_wait_ready(const struct settings *s, long timeout_ms);

/* brokerstart_stop: stop the broker pid: SIGTERM, wait up to timeout_ms
 * (<= 0: BROKERSTART_STOP_MS) for it to go, then SIGKILL. child: 1 when pid
 * is a child of this process (it is reaped), 0 otherwise (polled with
 * kill(pid, 0); a zombie nobody reaps counts as gone). 0 when it stopped on
 * SIGTERM or was already gone, 1 when it had to be killed, -1 for pid <= 0. */
int brokerstart_stop(pid_t pid, int child, long timeout_ms);

/* After a failed start, calls within this many ms fail at once (no new attempt). */
#define BROKERSTART_RETRY_MS 2000

/* brokerstart_attach: when s->broker_autostart is set, make bc start a broker
 * whenever it finds none listening on s->socket_path (bc_on_no_broker), then
 * retry its call once. The broker is found by brokerstart_find_bin
 * ($MCPGW_BROKER_BIN, else mcpgw's own program directories, then $PATH)
 * and started detached (it outlives this process, re-parented to
 * init) with brokerstart_ensure: at most one start at a time in this
 * process (a mutex, so threaded responders fork from one thread at a time)
 * and across processes (its flock); then it waits (at most
 * MCPGW_STARTUP_WAIT) until no MCP server is still coming up
 * (brokerstart_wait_ready), so that the call sees every tool. s must outlive bc.
 * cgi: 1 when this process is plain CGI and single-threaded: the CGI request
 * variables (REQUEST_*, HTTP_*, CONTENT_*, ...) are then removed from the
 * environment before the broker inherits it. */
void brokerstart_attach(struct bclient *bc, const struct settings *s, int cgi);

/* brokerstart_last_error: why the last start attempt of this process failed
 * ("" when none failed), into out. */
void brokerstart_last_error(char *out, size_t outlen);

#endif
