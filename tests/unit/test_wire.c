/* test_wire.c: unit tests of lib/openai/wire.c: providers' error bodies read as OpenAI error objects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "openai/wire.h"

/* from: wire_error_from of the JSON text at status; its "error" member checked for OpenAI's four fields */
static json_t *from(const char *body, int status)
{
	json_t *b = json_loads(body, JSON_DECODE_ANY, NULL), *e, *inner;

	assert_non_null(b);
	e = wire_error_from(b, status);
	json_decref(b);
	if (!e)
		return NULL;
	inner = json_object_get(e, "error");
	assert_true(json_is_string(json_object_get(inner, "message")));
	assert_true(json_is_string(json_object_get(inner, "type")));
	assert_non_null(json_object_get(inner, "param"));
	assert_true(json_is_string(json_object_get(inner, "code")) || json_is_null(json_object_get(inner, "code")));
	return e;
}

static const char *field(const json_t *e, const char *k)
{
	return json_string_value(json_object_get(json_object_get(e, "error"), k));
}

static void test_shapes(void **state)
{
	json_t *e;
	(void)state;

	/* OpenAI's own: passed through, missing members filled in */
	e = from("{\"error\":{\"message\":\"bad key\",\"extra\":1}}", 401);
	assert_string_equal(field(e, "message"), "bad key");
	assert_string_equal(field(e, "type"), "authentication_error");
	assert_non_null(json_object_get(json_object_get(e, "error"), "extra"));
	json_decref(e);
	/* {"error": "text"} */
	e = from("{\"error\":\"model 'x' not found\"}", 404);
	assert_string_equal(field(e, "message"), "model 'x' not found");
	assert_string_equal(field(e, "type"), "invalid_request_error");
	json_decref(e);
	/* Gemini: a list, a numeric code */
	e = from("[{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload\",\"status\":\"INVALID_ARGUMENT\"}}]",
		 400);
	assert_string_equal(field(e, "message"), "Invalid JSON payload");
	assert_string_equal(field(e, "code"), "400");
	assert_string_equal(field(e, "status"), "INVALID_ARGUMENT");
	json_decref(e);
	/* FastAPI: a text, or a list of validation errors */
	e = from("{\"detail\":\"Not Found\"}", 404);
	assert_string_equal(field(e, "message"), "Not Found");
	json_decref(e);
	e = from("{\"detail\":[{\"loc\":[\"body\",\"model\"],\"msg\":\"field required\",\"type\":\"missing\"},"
		 "{\"msg\":\"too long\"}]}",
		 422);
	assert_string_equal(field(e, "message"), "field required at [\"body\",\"model\"]; too long");
	json_decref(e);
	/* vLLM, Mistral: the members at the top */
	e = from("{\"object\":\"error\",\"message\":\"max_tokens too large\",\"type\":\"BadRequestError\",\"param\":null,"
		 "\"code\":400}",
		 400);
	assert_string_equal(field(e, "message"), "max_tokens too large");
	assert_string_equal(field(e, "type"), "BadRequestError");
	assert_null(json_object_get(json_object_get(e, "error"), "object"));
	json_decref(e);
	/* a message that is no text */
	e = from("{\"error\":{\"message\":{\"detail\":\"x\"}}}", 500);
	assert_string_equal(field(e, "message"), "{\"detail\":\"x\"}");
	assert_string_equal(field(e, "type"), "server_error");
	json_decref(e);
	/* no error in any shape */
	assert_null(from("{\"choices\":[]}", 200));
	assert_null(from("[]", 500));
	assert_null(from("\"text\"", 500));
	assert_null(from("{\"error\":null}", 500));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
