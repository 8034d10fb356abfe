/* toolfloor.c: the yardstick of a tool call over HTTP in `make bench`: a minimal FastCGI responder that owns its own stdio connection to an MCP server, no broker.
 *
 * At start-up it spawns the server named by BENCH_TOOLFLOOR_SERVER (with
 * "--db-path" BENCH_TOOLFLOOR_DB when that is set) and initializes it; then,
 * for every POST of {"tool": NAME, "arguments": {...}} it runs tools/call on
 * that one connection and answers what POST /v1/tools answers, {"object":
 * "tool.result", "tool": NAME, ...the result's members}, 200; a body it
 * cannot read gets a 400. Plain libfcgi and jansson, one request at a time
 * per process (lighttpd runs as many processes as /v1/tools has): what the
 * gateway spends beyond this, the broker hop and its bookkeeping included,
 * is its own cost. Run it under lighttpd with LIBFCGI_OS_CLOSE_POLL_TIMEOUT=0,
 * like mcpgw's responders.
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpstdio.h"

#define TOOLFLOOR_BODY_MAX 65536

static void answer(FCGX_Request *req, int status, const char *body)
{
	/* (libfcgi's own printf: no %zu) */
	FCGX_FPrintF(req->out, "Status: %d\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n\r\n", status,
		     (unsigned long)strlen(body));
	FCGX_PutStr(body, (int)strlen(body), req->out);
}

/* serve: one request on s */
static void serve(FCGX_Request *req, struct mcpstdio *s)
{
	static char body[TOOLFLOOR_BODY_MAX];
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
	long n = cl ? atol(cl) : 0;
	json_t *in = NULL, *result = NULL, *out = NULL;
	const char *tool;
	char *args = NULL, *text = NULL;
	int rc;

	if (n <= 0 || n >= TOOLFLOOR_BODY_MAX || FCGX_GetStr(body, (int)n, req->in) != n ||
	    !(in = json_loadb(body, (size_t)n, 0, NULL)) || !(tool = json_string_value(json_object_get(in, "tool"))) ||
	    strspn(tool, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(tool) ||
	    !(args = json_dumps(json_object_get(in, "arguments") ? json_object_get(in, "arguments") : json_object(),
				JSON_COMPACT))) {
		answer(req, 400, "{\"error\":{\"message\":\"bad request\",\"type\":\"invalid_request_error\"}}");
		goto done;
	}
	rc = mcpstdio_call(s, tool, args, NULL, &result);
	if (rc < 0 || !json_is_object(result) || !(out = json_pack("{s:s, s:s}", "object", "tool.result", "tool", tool)) ||
	    json_object_update_missing(out, result) < 0 || !(text = json_dumps(out, JSON_COMPACT))) {
		answer(req, 502, "{\"error\":{\"message\":\"the tool server failed\",\"type\":\"server_error\"}}");
		goto done;
	}
	answer(req, rc ? 200 : 422, text);
done:
	free(text);
	free(args);
	json_decref(out);
	json_decref(result);
	json_decref(in);
}

int main(void)
{
	static struct mcpstdio s;
	char *server = getenv("BENCH_TOOLFLOOR_SERVER"), *db = getenv("BENCH_TOOLFLOOR_DB");
	char *argv[] = { server, db ? "--db-path" : NULL, db, NULL };
	FCGX_Request req;

	if (!server) {
		fprintf(stderr, "toolfloor: BENCH_TOOLFLOOR_SERVER names no MCP server\n");
		return 2;
	}
	if (mcpstdio_start(&s, argv, "toolfloor") < 0 || FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) >= 0) {
		serve(&req, &s);
		FCGX_Finish_r(&req);
	}
	mcpstdio_stop(&s);
	return 0;
}
