/* health.c: GET /health answers liveness and each MCP server's state, from mcpgw-broker's mcpgw/status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/bclient.h"
#include "mcp/brokerstart.h"
#include "http/hio.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mcp/mcptools.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "core/usage.h"

/* 503 {"status":"down","error":{...}} (message borrowed) */
static void send_down(struct hio *h, const char *message, const char *code)
{
	json_t *err = wire_error(message, wire_error_type(503), NULL, code);
	json_t *out = err ? json_pack("{s:s, s:O}", "status", "down", "error", json_object_get(err, "error")) : NULL;

	if (out)
		hio_send_json(h, 503, out);
	else
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	json_decref(out);
	json_decref(err);
}

/* overall_status: "ok" when every server that is not disabled is ready;
 * "starting" when the others are all still coming up (not failing);
 * "degraded" when one fails. reasons gets a sentence per server not ready. */
static const char *overall_status(const json_t *servers, json_t *reasons)
{
	const json_t *srv;
	size_t i;
	int starting = 0, failing = 0;

	json_array_foreach(servers, i, srv) {
		const char *state = json_string_value(json_object_get(srv, "state"));
		buf_t why = BUF_INIT;

		if (state && (strcmp(state, "ready") == 0 || strcmp(state, "disabled") == 0))
			continue;
		if (!state || json_is_true(json_object_get(srv, "failing")))
			failing++;
		else
			starting++;
		if (mcptools_why(&why, srv) == 0)
			json_array_append_new(reasons, json_string(why.data));
		buf_free(&why);
	}
	return failing ? "degraded" : starting ? "starting" : "ok";
}

/* hide_details: each server's "detail" (its stderr line, for local
 * operators) taken out: clients see the state and "last_error" only (issue
 * 14: "stderr tails stay in the log") */
static void hide_details(json_t *servers)
{
	json_t *srv;
	size_t i;

	json_array_foreach(servers, i, srv) {
		if (json_object_get(srv, "detail"))
			json_object_del(srv, "detail");
	}
}

/* a failed or odd broker exchange: 503 down, with what went wrong */
static void send_broker_down(const struct responder *r, struct hio *h, int rc, const json_t *error)
{
	char msg[4800];

	if (rc == BC_ECONNECT) {
		char why[512];

		brokerstart_last_error(why, sizeof why);
		why[strcspn(why, "\n")] = '\0'; /* the first line: the broker log's tail stays in the log */
		snprintf(msg, sizeof msg, "The tool broker is not reachable at %s (%s%s).", r->s.socket_path,
			 *why ? "starting it failed: " : "is mcpgw-broker running?", why);
	} else if (rc != BC_OK)
		snprintf(msg, sizeof msg, "The tool broker at %s: %s.", r->s.socket_path, bc_strerror(rc));
	else if (error)
		snprintf(msg, sizeof msg, "The tool broker failed mcpgw/status: %s",
			 json_string_value(json_object_get(error, "message"))
				 ? json_string_value(json_object_get(error, "message"))
				 : "unknown error");
	else
		snprintf(msg, sizeof msg, "The tool broker's mcpgw/status answer is malformed.");
	send_down(h, msg, rc == BC_ECONNECT || rc == BC_EIO ? "broker_unavailable" : "broker_error");
}

/* page_health: GET /health */
static enum route_status page_health(struct exchange *x)
{
	const struct responder *r = x->w->r;
	json_t *result = NULL, *error = NULL, *servers, *out, *reasons = json_array();
	int rc = bc_call(x->w->bc, "mcpgw/status", NULL, r->s.broker_timeout_ms, &result, &error);

	servers = json_object_get(result, "servers");
	if (rc != BC_OK || error || !json_is_array(servers)) {
		send_broker_down(r, x->h, rc, error);
		goto out;
	}
	hide_details(servers);
	out = reasons ? json_pack("{s:s, s:O, s:O?, s:O}", "status", overall_status(servers, reasons), "reasons",
				  reasons, "broker", json_object_get(result, "broker"), "servers", servers)
		      : NULL;
	if (!out) {
		oai_send_error(x->h, 500, NULL, "internal_error", "Out of memory.");
		goto out;
	}
	hio_send_json(x->h, 200, out);
	json_decref(out);
out:
	json_decref(reasons);
	json_decref(result);
	json_decref(error);
	return ROUTE_DONE;
}

/* page_metrics: GET /metrics: every process's counters in Prometheus text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
 * to loopback peers (REMOTE_ADDR, no forwarding header) and admin keys */
static enum route_status page_metrics(struct exchange *x)
{
	struct metrics *m = responder_metrics(x->w->r);
	buf_t body = BUF_INIT;

	/* the skeleton's key check said who this is (lib/http/auth.h): the peer the web
	 * server saw, never a header, and the key's own record */
	if (!x->auth.loopback && !x->auth.admin) {
		oai_send_error(x->h, 403, NULL, "forbidden",
			       "GET /metrics is served to clients on this host (loopback) and to admin keys "
			       "(mcpgwctl keys create NAME --admin) only.");
		log_info("GET /metrics from %s%s%s: 403 (not loopback, not an admin key)", x->auth.client,
			 x->auth.keyed ? " with key " : "", x->auth.key_id);
		return ROUTE_DONE;
	}
	if (!m) {
		responder_send_config_error(x->h, "the metrics file in MCPGW_STATE_DIR cannot be opened (see the log)");
		return ROUTE_DONE;
	}
	if (metrics_render(m, &body) < 0) {
		oai_send_error(x->h, 500, NULL, "internal_error", "Out of memory.");
		buf_free(&body);
		return ROUTE_DONE;
	}
	if (hio_headers(x->h, 200, "text/plain; version=0.0.4; charset=utf-8", "Cache-Control: no-store\r\n") == 0 &&
	    strcmp(x->method, "HEAD") != 0)
		(void)hio_write(x->h, body.data ? body.data : "", body.len);
	buf_free(&body);
	return ROUTE_DONE;
}

/* health.fcgi's routes; every other path answers 404 (the web server sends unknown paths here) */
static const struct route health_routes[] = {
	{ "/health", "GET, HEAD", page_health, ROUTE_BROKER },
	{ "/metrics", "GET, HEAD", page_metrics, 0 },
	{ NULL, NULL, NULL, 0 },
};

static const char *const health_settings[] = { "MCPGW_HOME",
					       "MCPGW_ENV_FILE",
					       "MCPGW_STATE_DIR",
					       "MCPGW_BROKER_SOCKET",
					       "MCPGW_BROKER_TIMEOUT",
					       "MCPGW_BROKER_AUTOSTART",
					       "MCPGW_BROKER_BIN",
					       "MCPGW_INIT_TIMEOUT",
					       "MCPGW_MAX_MESSAGE_BYTES",
					       "MCPGW_STATE_STORE",
					       "MCPGW_STATE_STORE_TIMEOUT",
					       "MCPGW_API_KEYS",
					       "MCPGW_TRUSTED_PROXIES",
					       "MCPGW_LOG_LEVEL",
					       "MCPGW_LOG_FILE",
					       "MCPGW_SHUTDOWN_GRACE",
					       "MCPGW_ALLOWED_HOSTS",
					       "MCPGW_CORS_ORIGINS",
					       "MCPGW_LISTEN",
					       "MCPGW_FAULT",
					       NULL };

/* what a shell gets for --help (lib/usage.c) */
static const struct usage health_usage = {
	"health.fcgi",
	"[--help | --version]",
	"Answers GET /health: liveness, and each MCP server's state, pid, restarts and last error as\n"
	"mcpgw-broker reports them (\"status\": \"ok\" when every enabled server is ready,\n"
	"\"starting\" while some are still coming up, \"degraded\" when one cannot start, with\n"
	"\"reasons\"; 503 \"down\" when the broker cannot be reached). The web server sends it every\n"
	"other path under the gateway too: it answers them with OpenAI's 404 error object.\n"
	"GET /metrics: every process's counters in Prometheus text format, to loopback clients and admin keys.\n",
	USAGE_RESPONDER_OPTIONS,
	health_settings,
	NULL,
};

static const struct responder_def health_def = {
	.name = "health.fcgi",
	.routes = health_routes,
	.broker = &responder_broker,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &health_usage);

	return opt >= 0 ? opt : responder_main(&health_def);
}
