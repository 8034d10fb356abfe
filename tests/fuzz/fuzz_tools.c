/* fuzz_tools.c: libFuzzer target of /v1/tools' request checks and answers (cgi-bin/tools.c, its static functions reached by including it): POST bodies, the broker's tools/call outcomes, catalog entries, query strings and {name}s. */
#include <unistd.h>

#include "fuzz_http.h"

/* the responder itself, its main renamed: its request checks are static */
#define main tools_main
#include "../../cgi-bin/tools.c"
#undef main

/* Input: byte 0 picks what the rest is (low two bits):
 *   0: a POST /v1/tools body: read_call (without a tree) agrees with
 *      oai_parse_body and call_checks (the tree), as page_run runs them
 *      before it asks the broker (no broker here);
 *   1: the broker's tools/call outcome for tool "read_query": an object
 *      with "error" is the JSON-RPC error (send_call_error), anything else
 *      the result (send_call_result, any JSON type: a server may send 5),
 *      and an object's text spliced (toolanswer_result), in compact form
 *      byte for byte what send_call_result answers;
 *   2: one Tool of the broker's catalog shown by GET /v1/tools in both
 *      formats (tool_view: the mcpgw shape, and OpenAI's with the
 *      parameters from toolschema_params);
 *   3: a query string (parse_format) and an encoded {name} (hio_url_decode).
 * Checks: each request gets at most one answer, a JSON object, an error an
 * OpenAI error object; a POST body either gets a 400 or makes params with a
 * string name and object arguments; a decoded name fits and holds no NUL. */

static struct settings S;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char home[] = "/tmp/mcpgw-fuzz-tools.XXXXXX", err[512];

	(void)argc;
	(void)argv;
	if (!mkdtemp(home) || setenv("MCPGW_HOME", home, 1) < 0 || setenv("MCPGW_STATE_DIR", home, 1) < 0 ||
	    log_init("fuzz_tools", LOGL_ERROR, "/dev/null") < 0 || settings_load(&S, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_tools: %s\n", err);
		abort();
	}
	(void)rmdir(home);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_http x;
	const char *rest = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;
	json_t *req = NULL, *params = NULL, *v;
	char *text, name[TOOLS_NAME_MAX + 1];
	int status;

	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0: {
		struct app a = { .s = &S };
		json_t *tname = NULL;
		const char *args = NULL;
		char *dumped = NULL, *dumped2 = NULL;
		size_t args_len = 0;
		int rc, fast_status;

		fuzz_http_begin(&x);
		rc = read_call(&a, &x.h, rest, n, &tname, &args, &args_len, &dumped);
		fast_status = fuzz_http_end(&x, NULL);
		fuzz_http_begin(&x); /* the tree's reading, as page_run falls back to it */
		if ((req = oai_parse_body(&x.h, rest, n, S.max_json_depth, S.max_json_values)) && call_checks(&x.h, req))
			params = json_incref(req);
		status = fuzz_http_end(&x, NULL);
		if (params) {
			FUZZ_CHECK(status == 0);
			FUZZ_CHECK(json_is_string(json_object_get(params, "tool")));
			const char *tree_text;
			size_t tree_len;

			FUZZ_CHECK(call_args(params, &tree_text, &tree_len, &dumped2) == 0 || !dumped2);
		} else {
			FUZZ_CHECK(status == 400 || status == 500);
		}
		if (rc == 1) { /* read without a tree: as the tree reads it */
			json_t *tree_args = json_object_get(params, "arguments"), *mine;

			FUZZ_CHECK(fast_status == 0 && params);
			FUZZ_CHECK(strcmp(json_string_value(tname),
					  json_string_value(json_object_get(params, "tool"))) == 0);
			FUZZ_CHECK(!args == !json_is_object(tree_args));
			if (args) {
				FUZZ_CHECK(!memchr(args, '\n', args_len) && !memchr(args, '\r', args_len));
				mine = json_loadb(args, args_len, 0, NULL);
				FUZZ_CHECK(mine && json_equal(mine, tree_args));
				json_decref(mine);
			}
		} else if (rc == 0) { /* refused as the tree refuses it */
			FUZZ_CHECK(fast_status == status);
		}
		free(dumped);
		free(dumped2);
		json_decref(tname);
		break;
	}
	case 1:
		if (!(v = json_loadb(rest, n, JSON_DECODE_ANY, NULL)))
			return 0;
		fuzz_http_begin(&x);
		if (json_is_object(v) && json_object_get(v, "error"))
			send_call_error(&x.h, "read_query", json_object_get(v, "error"));
		else
			send_call_result(&x.h, "read_query", v);
		status = fuzz_http_end(&x, NULL);
		FUZZ_CHECK(status >= 200);
		if (json_is_object(v) && jsonspan_check(rest, n) == 0) { /* spliced as text: as the tree when compact */
			buf_t out = BUF_INIT;
			char *canon = json_dumps(v, JSON_COMPACT);
			int rc = toolanswer_result(&out, "read_query", rest, n);

			FUZZ_CHECK(rc == TOOLANSWER_OK || rc == TOOLANSWER_IS_ERROR || rc == TOOLANSWER_REPEATED);
			if (canon && strlen(canon) == n && memcmp(canon, rest, n) == 0) {
				FUZZ_CHECK(rc == (json_is_true(json_object_get(v, "isError")) ? TOOLANSWER_IS_ERROR
											      : TOOLANSWER_OK));
				if (rc == TOOLANSWER_OK) { /* what send_call_result makes of the tree */
					json_t *t =
						json_pack("{s:s, s:s, s:O?}", "object", "tool.result", "tool",
							  "read_query", "server",
							  json_object_get(json_object_get(v, "_meta"), "mcpgw/server"));

					if (t && json_object_update_missing(t, v) == 0 &&
					    (text = json_dumps(t, JSON_COMPACT))) {
						FUZZ_CHECK(strlen(text) == out.len &&
							   memcmp(text, out.data, out.len) == 0);
						free(text);
					}
					json_decref(t);
				}
			}
			free(canon);
			buf_free(&out);
		}
		(void)unknown_tool(v);
		json_decref(v);
		break;
	case 2:
		if (!(v = json_loadb(rest, n, JSON_DECODE_ANY, NULL)))
			return 0;
		for (int fmt = FMT_MCPGW; fmt <= FMT_OPENAI; fmt++) {
			json_t *view = tool_view(v, (enum tools_format)fmt);

			if (view)
				FUZZ_CHECK(json_is_object(view));
			json_decref(view);
		}
		json_decref(v);
		break;
	default:
		text = malloc(n + 1);
		FUZZ_CHECK(text);
		memcpy(text, rest, n);
		text[n] = '\0';
		FUZZ_CHECK(setenv("QUERY_STRING", text, 1) == 0);
		{
			enum tools_format fmt;
			int rc;

			fuzz_http_begin(&x);
			rc = parse_format(&x.h, &fmt);
			status = fuzz_http_end(&x, NULL);
			FUZZ_CHECK(rc == 0 ? status == 0 && (fmt == FMT_MCPGW || fmt == FMT_OPENAI) : status == 400);
		}
		if (hio_url_decode(text, name, sizeof name) == 0)
			FUZZ_CHECK(strlen(name) <= TOOLS_NAME_MAX);
		free(text);
		break;
	}
	json_decref(params);
	json_decref(req);
	return 0;
}
