/* fuzz_wire.c: libFuzzer target of the upstream's answers read as errors and the JSON depth and value-count check (lib/openai/wire.c, upstream_error_json in lib/openai/upstream.c). */
#include <limits.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "openai/upstream.h"
#include "openai/wire.h"

/* Input: byte 0 picks the upstream's HTTP status (one of a list), byte 1
 * the depth bound (0..31); the rest is the upstream's answer body. Checks:
 * the OpenAI error object made from any body (wire_error_from, and
 * upstream_error_json as the responders answer a failed upstream request)
 * is {"error": {"message": text, "type": text, "param", "code"}} with a
 * 4xx/5xx status, and never carries the gateway's own key's text for a
 * 401/403; wire_json_depth_ok agrees with the depth of what jansson parses,
 * and wire_json_scan counts exactly the values jansson builds (a text
 * without duplicate member names: jansson keeps one of those). */

static const int statuses[] = { 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 200, 301, 418 };

/* depth: how deeply arrays and objects nest in v (a scalar: 0) */
static int depth(const json_t *v)
{
	int d = 0, x;
	size_t i;
	const char *k;
	json_t *e;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
			if ((x = depth(e)) > d)
				d = x;
		return d + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if ((x = depth(e)) > d)
				d = x;
		return d + 1;
	}
	return 0;
}

/* count: the values of v, v itself included (member names are none) */
static size_t count(const json_t *v)
{
	size_t n = 1, i;
	const char *k;
	json_t *e;

	if (json_is_object(v))
		json_object_foreach((json_t *)v, k, e)
			n += count(e);
	else if (json_is_array(v))
		json_array_foreach(v, i, e)
			n += count(e);
	return n;
}

static void check_error(const json_t *o)
{
	const json_t *e = json_object_get(o, "error");

	FUZZ_CHECK(json_is_object(e));
	FUZZ_CHECK(json_is_string(json_object_get(e, "message")));
	FUZZ_CHECK(json_is_string(json_object_get(e, "type")));
	FUZZ_CHECK(json_object_get(e, "param") && json_object_get(e, "code"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upstream_result res;
	json_t *body, *err;
	int status, http = 0, max_depth;
	const char *text;
	size_t n;

	if (size < 2)
		return 0;
	status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
	max_depth = data[1] & 31;
	text = (const char *)data + 2;
	n = size - 2;

	body = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (body) {
		size_t values = count(body);

		FUZZ_CHECK(wire_json_scan(text, n, INT_MAX, values) == WIRE_JSON_FITS);
		FUZZ_CHECK(wire_json_scan(text, n, INT_MAX, values - 1) == WIRE_JSON_TOO_MANY);
		json_decref(body);
	}
	body = json_loadb(text, n, JSON_DECODE_ANY, NULL);
	if (body) {
		FUZZ_CHECK(wire_json_depth_ok(text, n, max_depth) == (depth(body) <= max_depth));
		if ((err = wire_error_from(body, status))) {
			check_error(err);
			json_decref(err);
		}
	} else {
		(void)wire_json_depth_ok(text, n, max_depth);
		(void)wire_json_scan(text, n, max_depth, (size_t)data[1]);
	}

	upstream_result_init(&res);
	res.err = UPSTREAM_EHTTP;
	res.status = status;
	snprintf(res.content_type, sizeof res.content_type, "application/json");
	snprintf(res.message, sizeof res.message, "upstream answered %d", status);
	FUZZ_CHECK(buf_append(&res.body, text, n) == 0);
	err = upstream_error_json(&res, &http);
	FUZZ_CHECK(err != NULL);
	check_error(err);
	FUZZ_CHECK(http >= 400 && http <= 599);
	json_decref(err);
	for (int e = UPSTREAM_ECONNECT; e <= UPSTREAM_ENOMEM; e++) { /* the gateway's own errors */
		res.err = (enum upstream_err)e;
		err = upstream_error_json(&res, &http);
		FUZZ_CHECK(err != NULL && http >= 400 && http <= 599);
		check_error(err);
		json_decref(err);
	}
	upstream_result_free(&res);
	json_decref(body);
	return 0;
}
