/* fuzz_embeddings.c: libFuzzer target of POST /v1/embeddings' request checks and built-in model (cgi-bin/embeddings.c, its static functions reached by including it). */
#include <unistd.h>

#include "fuzz_http.h"

/* the responder itself, its main renamed: its request checks are static */
#define main embeddings_main
#include "../../cgi-bin/embeddings.c"
#undef main

/* Input: a request body as a client sends it. It runs through what the
 * route runs (embeddings(): oai_parse_body, the model, check_input,
 * check_options, the built-in model's answer) with the default settings
 * (MCPGW_LOCAL_EMBEDDING_MODELS, limits), loaded from an empty MCPGW_HOME.
 * A model that is not built in would be forwarded upstream: such bodies
 * stop before (no network here). Checks: exactly one answer, a JSON
 * object; an error is an OpenAI error object; a 200 holds one embedding
 * per input, each of the dimensions asked for. */

static struct settings S;
static struct app A;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char home[] = "/tmp/mcpgw-fuzz-embeddings.XXXXXX", err[512];

	(void)argc;
	(void)argv;
	if (!mkdtemp(home) || setenv("MCPGW_HOME", home, 1) < 0 || setenv("MCPGW_STATE_DIR", home, 1) < 0 ||
	    log_init("fuzz_embeddings", LOGL_ERROR, "/dev/null") < 0 || settings_load(&S, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_embeddings: %s\n", err);
		abort();
	}
	(void)rmdir(home);
	A.s = &S;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_http x;
	struct accesslog line = { .rounds = 0 }; /* the request's access-log record, as route_embeddings sets it */
	buf_t body = BUF_INIT;
	json_t *req, *answer;
	const char *model, *target;
	int status;

	/* the bodies embeddings() would forward: not run here */
	req = json_loadb((const char *)data, size, 0, NULL);
	model = json_string_value(json_object_get(req, "model"));
	target = model ? settings_model_alias(&S, model) : NULL;
	if (model && *model && !settings_local_embedding_model(&S, target ? target : model)) {
		json_decref(req);
		return 0;
	}
	FUZZ_CHECK(buf_append(&body, data, size) == 0);
	fuzz_http_begin(&x);
	A.log = &line;
	embeddings(&A, &x.h, &body);
	A.log = NULL;
	status = fuzz_http_end(&x, &answer);
	FUZZ_CHECK(status == 200 || status == 400 || status == 500);
	if (status == 200) {
		const json_t *input = json_object_get(req, "input");
		size_t n =
			json_is_array(input) && !json_is_integer(json_array_get(input, 0)) ? json_array_size(input) : 1;

		FUZZ_CHECK(json_array_size(json_object_get(answer, "data")) == n);
	}
	json_decref(answer);
	json_decref(req);
	buf_free(&body);
	return 0;
}
