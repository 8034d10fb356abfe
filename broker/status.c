/* status.c: the broker's status answer: itself and each session's state, transport, retries. */
#include "status.h"

#include <unistd.h>

#include "call.h"
#include "core/version.h"
#include "session.h"

json_t *status_json(const struct status_view *v)
{
	json_t *servers = json_array();
	char started[32];
	struct tm tm;

	gmtime_r(&v->started_at, &tm);
	strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (size_t i = 0; servers && i < v->nsessions; i++) {
		const struct session *s = v->sessions[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I}", "name", s->cfg->name, "transport",
				      session_transport_name(s), "state", session_state_name(s->state), "pid",
				      (int)session_pid(s), "tools", (int)s->tools.n, "restarts", s->restarts,
				      "since_ms_ago", (json_int_t)(v->now_ms - s->since_ms));

		if (!o)
			continue;
		json_object_set_new(o, "protocolVersion", *s->proto ? json_string(s->proto) : json_null());
		json_object_set(o, "serverInfo", s->server_info ? s->server_info : json_null());
		json_object_set_new(o, "last_error", *s->last_error ? json_string(s->last_error) : json_null());
		/* why it last went down by itself, kept after it is ready again (a restarted server says why) */
		json_object_set_new(o, "last_failure",
				    s->last_failure_ms ? json_pack("{s:s, s:I}", "error", s->last_failure, "ms_ago",
								   (json_int_t)(v->now_ms - s->last_failure_ms))
						       : json_null());
		/* the same with the server's stderr line: for local operators, never for HTTP clients (health.c) */
		json_object_set_new(o, "detail", *s->last_detail ? json_string(s->last_detail) : json_null());
		/* a failing server: failed starts in a row, and when it is tried again */
		json_object_set_new(o, "retries", json_integer(s->fail_streak));
		json_object_set_new(o, "next_retry_in_ms",
				    s->state == SESSION_BACKOFF
					    ? json_integer(s->deadline_ms > v->now_ms ? s->deadline_ms - v->now_ms : 0)
					    : json_null());
		/* its last starts failed: not coming up by itself soon (health: degraded, not starting) */
		json_object_set_new(o, "failing", json_boolean(s->state != SESSION_READY && s->fail_streak > 0));
		if (v->calls) { /* its bound on tool calls and its use (call.h) */
			struct calls_load ld;

			calls_load(v->calls, s, &ld);
			json_object_set_new(o, "calls_in_flight", json_integer(ld.in_flight));
			json_object_set_new(o, "calls_queued", json_integer(ld.queued));
			json_object_set_new(o, "max_concurrent_calls", json_integer(ld.max_in_flight));
			json_object_set_new(o, "max_queued_calls", json_integer(ld.max_queued));
		}
		json_array_append_new(servers, o);
	}
	return json_pack("{s:{s:i, s:s, s:s, s:I, s:i, s:I, s:i}, s:o}", "broker", "pid", (int)getpid(), "version",
			 MCPGW_VERSION, "started_at", started, "uptime_s",
			 (json_int_t)((v->now_ms - v->started_ms) / 1000), "clients", v->clients, "generation",
			 (json_int_t)v->generation, "tools", (int)v->tools, "servers", servers);
}
