/* status.h: the broker's status answer (mcpgw/status, behind --status and /health): itself and each session. */
#ifndef MCPGW_STATUS_H
#define MCPGW_STATUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct calls;
struct session;

/* what the status tells, gathered by its caller */
struct status_view {
	struct session *const *sessions;
	size_t nsessions;
	int64_t now_ms, started_ms;
	time_t started_at;
	int clients;
	json_int_t generation;
	size_t tools;              /* listed */
	const struct calls *calls; /* each server's calls in flight and waiting (call.h); NULL: not shown */
};

/* status_json: {"broker":{pid, version, started_at, uptime_s, clients,
 * generation, tools}, "servers":[...]} (docs/broker-protocol.md; each server
 * with calls_in_flight, calls_queued, max_concurrent_calls, max_queued_calls
 * when v->calls is set). New
 * reference, NULL on ENOMEM. */
json_t *status_json(const struct status_view *v);

#endif
