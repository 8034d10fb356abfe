/* fuzz_models.c: libFuzzer target of GET /v1/models[/{id}]'s outside input (cgi-bin/models.c, its static functions reached by including it): the upstream's models list and a requested {id}. */
#include "fuzz_http.h"

/* the responder itself, its main renamed: its list handling is static */
#define main models_main
#include "../../cgi-bin/models.c"
#undef main

/* Input: the upstream's GET /models answer body (JSON of any shape),
 * then, after the first NUL byte, the encoded {id} of a GET
 * /v1/models/{id}. Checks: what model_objects keeps of the upstream's list
 * passes the shared cache's own check (models_valid), so a list the cache
 * stores is never one it refuses when read back; our own names are added
 * once; the {id}, decoded, is found in the list or answered with a 404
 * OpenAI error object naming it. */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t jn = nul ? (size_t)(nul - data) : size, n0;
	json_t *list = json_loadb((const char *)data, jn, JSON_DECODE_ANY, NULL), *models_list;
	char *raw, id[MODELS_ID_MAX + 1];
	struct fuzz_http x;
	const json_t *m;
	int status;

	models_list = list ? model_objects(list) : NULL;
	if (models_list) {
		FUZZ_CHECK(models_valid(models_list));
		FUZZ_CHECK(add_model(models_list, "gpt-test", 1) == 0);
		n0 = json_array_size(models_list);
		FUZZ_CHECK(add_model(models_list, "gpt-test", 1) == 0 && json_array_size(models_list) == n0);
		FUZZ_CHECK(models_valid(models_list) && find_model(models_list, "gpt-test"));
	}
	raw = strndup(nul ? (const char *)nul + 1 : "", nul ? size - jn - 1 : 0);
	FUZZ_CHECK(raw);
	fuzz_http_begin(&x);
	if (hio_url_decode(raw, id, sizeof id) < 0)
		send_not_found(&x.h, "(invalid)");
	else if (models_list && (m = find_model(models_list, id)))
		hio_send_json(&x.h, 200, m);
	else
		send_not_found(&x.h, id);
	status = fuzz_http_end(&x, NULL);
	FUZZ_CHECK(status == 200 || status == 404);
	free(raw);
	json_decref(models_list);
	json_decref(list);
	return 0;
}
