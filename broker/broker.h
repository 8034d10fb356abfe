/* broker.h: the broker daemon as one object: its sessions, clients, calls and catalog on one event loop; what main.c and mcp-client open and close. */
#ifndef MCPGW_BROKER_H
#define MCPGW_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "core/settings.h"
#include "core/evloop.h"
#include "mcp/config.h"
#include "transport.h"

#define BROKER_STOP_GRACE_MS 2000          /* a shutdown leaves after 4 times this even with children left */
#define BROKER_MMAP_THRESHOLD (256 * 1024) /* from this size an allocation is mapped on its own (main.c) */
#define BROKER_TRIM_FREE (4u << 20)        /* free heap bytes past this are given back, once a second at most */

struct broker;
struct persist;
struct session;

/* what a broker is made of; everything borrowed for the broker's life */
struct broker_opts {
	const struct settings *set;
	const struct cfg *cfg;           /* one session per server */
	struct evloop *loop;             /* its clock is the broker's */
	struct sigwatch *sig;            /* children (stdio servers); NULL: stdio servers fail to start */
	struct persist *persist;         /* the registry's writer (persist.h); NULL: no persistence */
	int64_t *gen_map;                /* the generation published to responders; may be NULL */
	json_int_t generation;           /* where generations start */
	transport_new_fn *new_transport; /* NULL: the real transports */
	struct audit *audit;             /* where every tool call is audited (borrowed); NULL: nowhere */
	struct metrics *metrics;         /* the shared counters (borrowed); NULL: none */
};

/* broker_new: the sessions (their cached tools loaded, their state saved)
 * and the rest, nothing started. libcurl is set up only when a remote
 * server is enabled. Free with broker_free. NULL with err set. */
struct broker *broker_new(const struct broker_opts *o, char *err, size_t errlen);
/* broker_start: start every session; the catalog is built */
void broker_start(struct broker *b);
/* broker_listen: serve clients on fd (listening; owned from now); socket_path
 * is unlinked when the broker stops listening. 0 or -1 */
int broker_listen(struct broker *b, int fd, const char *socket_path);
/* broker_adopt_client: serve a connected, non-blocking socket (owned from
 * now when it succeeds) as a client. 0 or -1 */
int broker_adopt_client(struct broker *b, int fd);
/* broker_step: one pass of the loop (at most max_ms): 0, 1 once shut down
 * and nothing is left running, -1 when the loop failed */
int broker_step(struct broker *b, int max_ms);
/* broker_run: passes until shut down (a signal through sigwatch, or
 * broker_shutdown) and every child ended, or the grace ran out. 0, or -1
 * when the loop failed */
int broker_run(struct broker *b);
/* broker_shutdown: stop listening, fail the calls, stop the sessions */
void broker_shutdown(struct broker *b);
/* broker_session: session i (in the config's order), or NULL */
struct session *broker_session(const struct broker *b, size_t i);
/* broker_free: close clients, end sessions (children killed), free */
void broker_free(struct broker *b);

#endif
