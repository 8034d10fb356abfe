/* test_toolresult.c: unit tests of lib/openai/toolresult.c (MCP results as tool message text). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "openai/toolresult.h"

static buf_t out = BUF_INIT;

static char *text_of(const char *result_json, const char *error_json, size_t max)
{
	json_t *res = result_json ? json_loads(result_json, 0, NULL) : NULL;
	json_t *err = error_json ? json_loads(error_json, 0, NULL) : NULL;

	assert_int_equal(toolresult_text(res, err, max, &out), 0);
	json_decref(res);
	json_decref(err);
	return out.data;
}

static void test_text_items_joined(void **state)
{
	(void)state;
	assert_string_equal(text_of("{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}",
				    NULL, 1000),
			    "a\nb");
}

/* structuredContent sits beside the content blocks: never in place of them,
 * and not twice when a text block already holds it (the spec's advice) */
static void test_structured_content_beside_blocks(void **state)
{
	(void)state;
	assert_string_equal(text_of("{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"structuredContent\":{\"n\":1}}",
				    NULL, 1000),
			    "x\n{\"n\":1}");
	assert_string_equal(text_of("{\"content\":[{\"type\":\"text\",\"text\":\"{ \\\"n\\\": 1 }\"}],"
				    "\"structuredContent\":{\"n\":1}}",
				    NULL, 1000),
			    "{ \"n\": 1 }");
	assert_string_equal(text_of("{\"content\":[],\"structuredContent\":{\"n\":[1,2]}}", NULL, 1000), "{\"n\":[1,2]}");
	assert_string_equal(text_of("{\"content\":[{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"QUJD\"}],"
				    "\"structuredContent\":{\"w\":1}}",
				    NULL, 1000),
			    "[image: image/png, 3 bytes]\n{\"w\":1}");
}

static void test_is_error_and_rpc_error(void **state)
{
	(void)state;
	assert_string_equal(text_of("{\"content\":[{\"type\":\"text\",\"text\":\"bad\"}],\"isError\":true}", NULL, 1000),
			    "Tool error: bad");
	assert_string_equal(text_of(NULL, "{\"code\":-32000,\"message\":\"server down\"}", 1000),
			    "Tool error: server down");
}

/* every content block kind of MCP 2025-11-25, in order, none replacing another */
static void test_every_block_kind(void **state)
{
	const char *t =
		text_of("{\"content\":["
			"{\"type\":\"text\",\"text\":\"first\"},"
			"{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"AAAA\"},"
			"{\"type\":\"audio\",\"mimeType\":\"audio/wav\",\"data\":\"QUI=\"},"
			"{\"type\":\"resource_link\",\"uri\":\"file:///a\",\"name\":\"a\",\"mimeType\":\"text/plain\","
			"\"description\":\"the a file\"},"
			"{\"type\":\"resource\",\"resource\":{\"uri\":\"memo://x\",\"text\":\"hello\"}},"
			"{\"type\":\"resource\",\"resource\":{\"uri\":\"memo://b\",\"mimeType\":\"application/gzip\","
			"\"blob\":\"QUJDRA==\"}},"
			"{\"type\":\"hologram\"},"
			"{\"type\":\"text\",\"text\":\"last\"}]}",
			NULL, 1000);
	(void)state;
	assert_string_equal(t, "first\n"
			       "[image: image/png, 3 bytes]\n"
			       "[audio: audio/wav, 2 bytes]\n"
			       "[resource link: file:///a a (text/plain)]\nthe a file\n"
			       "[resource memo://x]\nhello\n"
			       "[resource memo://b: application/gzip, 4 bytes]\n"
			       "[hologram content]\n"
			       "last");
}

static void test_truncation_marks_and_bounds(void **state)
{
	char big[3000];
	char json[3100];
	const char *t;
	(void)state;

	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(json, sizeof json, "{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}]}", big);
	t = text_of(json, NULL, 256);
	assert_true(strlen(t) <= 256);
	assert_non_null(strstr(t, "[output truncated by mcpgw: "));
	assert_non_null(strstr(t, " of 2999 bytes]"));
}

static void test_images_as_parts(void **state)
{
	json_t *res = json_loads(
		"{\"content\":[{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"QUJD\"},"
		"{\"type\":\"text\",\"text\":\"t\"},"
		"{\"type\":\"audio\",\"mimeType\":\"audio/wav\",\"data\":\"QUJD\"},"
		"{\"type\":\"resource\",\"resource\":{\"uri\":\"f://p\",\"mimeType\":\"image/jpeg\",\"blob\":\"REVG\"}},"
		"{\"type\":\"resource\",\"resource\":{\"uri\":\"f://z\",\"mimeType\":\"application/zip\",\"blob\":\"R0g=\"}},"
		"{\"type\":\"image\",\"mimeType\":\"image/png\"}]}",
		0, NULL);
	json_t *parts = json_array();
	(void)state;

	/* the image block and the image blob; not audio, not other blobs, not an image without data */
	assert_int_equal(toolresult_images(res, parts), 2);
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_array_get(parts, 0), "image_url"), "url")),
			    "data:image/png;base64,QUJD");
	assert_string_equal(json_string_value(
				    json_object_get(json_object_get(json_array_get(parts, 1), "image_url"), "url")),
			    "data:image/jpeg;base64,REVG");
	json_decref(res);
	json_decref(parts);
}

static int free_out(void **state)
{
	(void)state;
	buf_free(&out);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_items_joined),
		cmocka_unit_test(test_structured_content_beside_blocks),
		cmocka_unit_test(test_is_error_and_rpc_error),
		cmocka_unit_test(test_every_block_kind),
		cmocka_unit_test(test_truncation_marks_and_bounds),
		cmocka_unit_test(test_images_as_parts),
	};
	return cmocka_run_group_tests(tests, NULL, free_out);
}
