/* bstatus.c: mcpgw/status of the running broker as one tab-separated line per MCP server. */
#include "mcp/bstatus.h"

#include <string.h>

#include "mcp/bclient.h"

#define BSTATUS_MIN_WAIT_MS 1000

/* bstatus_field: s with control bytes as spaces, "-" when NULL or empty */
static void bstatus_field(FILE *f, const char *s)
{
	if (!s || !*s) {
		fputc('-', f);
		return;
	}
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, f);
}

int bstatus_write(FILE *f, const json_t *result)
{
	const json_t *servers = json_object_get(result, "servers"), *srv;
	size_t i;

	if (!json_is_array(servers))
		return -1;
	json_array_foreach(servers, i, srv) {
		const char *state = json_string_value(json_object_get(srv, "state"));
		const char *why = json_string_value(json_object_get(srv, "detail"));

		bstatus_field(f, json_string_value(json_object_get(srv, "name")));
		fputc('\t', f);
		bstatus_field(f, state);
		fprintf(f, "\t%lld\t%lld\t", (long long)json_integer_value(json_object_get(srv, "tools")),
			(long long)json_integer_value(json_object_get(srv, "restarts")));
		bstatus_field(f, why && *why ? why : json_string_value(json_object_get(srv, "last_error")));
		fputc('\n', f);
	}
	return 0;
}

int bstatus_query(FILE *f, const struct settings *s, char *err, size_t errlen)
{
	struct bclient *bc = bc_new(s->socket_path, s->max_message_bytes);
	json_t *result = NULL, *error = NULL;
	long wait = s->broker_timeout_ms > BSTATUS_MIN_WAIT_MS ? s->broker_timeout_ms : BSTATUS_MIN_WAIT_MS;
	int rc = -1, st;

	if (!bc) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st = bc_call(bc, "mcpgw/status", NULL, wait, &result, &error);
	if (st == BC_ECONNECT) {
		snprintf(err, errlen, "no broker is running on %s", s->socket_path);
		rc = 1;
	} else if (st != BC_OK) {
		snprintf(err, errlen, "the broker on %s: %s", s->socket_path, bc_strerror(st));
	} else if (error) {
		const char *m = json_string_value(json_object_get(error, "message"));

		snprintf(err, errlen, "the broker on %s failed mcpgw/status: %s", s->socket_path,
			 m ? m : "unknown error");
	} else if (bstatus_write(f, result) < 0) {
		snprintf(err, errlen, "the broker on %s: its mcpgw/status answer has no server list", s->socket_path);
	} else if (fflush(f) != 0 || ferror(f)) {
		snprintf(err, errlen, "writing the status failed");
	} else {
		rc = 0;
	}
	json_decref(result);
	json_decref(error);
	bc_free(bc);
	return rc;
}
