/* embeddings.c: POST /v1/embeddings: the built-in model for MCPGW_LOCAL_EMBEDDING_MODELS, any other model forwarded to EMBEDDING_BASE_URL. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "openai/embed.h"
#include "http/hio.h"
#include "core/log.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "openai/upstream.h"
#include "core/usage.h"

#define EMB_B64_MAX (4 * ((EMBED_DIMS_MAX * 4 + 2) / 3) + 1) /* embed_base64_len(EMBED_DIMS_MAX) + NUL */
#define EMB_SHOW_MAX 64                                      /* a bad value shown in a message */
#define EMB_FLOAT_MAX 16 /* bytes of one float written "%.9g" with its comma: "-1.23456789e-05," */
#define EMB_ITEM_MAX 64  /* the rest of one data[] element: {"object":"embedding","index":N,...} */
/* OpenAI's own message for an input of the wrong shape (empty string, empty array, wrong element type) */
#define EMB_INPUT_INVALID \
	"'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."

/* the program's state (its responder_def.app), process lifetime; one worker uses it */
struct app {
	const struct settings *s; /* the responder's settings */
	struct upstream *up; /* the worker's handle (one worker): the connection to the embeddings upstream is kept */
	struct upstream_result res; /* reused by every forwarded request */
	float vec[EMBED_DIMS_MAX];  /* the embedding being written */
	char b64[EMB_B64_MAX];
	int64_t *ids; /* token ids of the input being embedded */
	size_t ids_cap;
	buf_t item;            /* one data[] element as JSON */
	struct accesslog *log; /* this request's access-log record (the model, the tokens) */
};

/* the shape of "input" */
enum emb_shape { EMB_STRING, EMB_STRINGS, EMB_IDS, EMB_ID_ARRAYS };

/* a checked request for the built-in model */
struct emb_req {
	const char *model;   /* the model named in the answer (borrowed) */
	const json_t *input; /* borrowed from the request */
	enum emb_shape shape;
	size_t n; /* inputs */
	size_t dims;
	int base64;
};

/* show: a JSON value for a message, at most EMB_SHOW_MAX bytes, in dst */
static const char *show(const json_t *v, char *dst, size_t n)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	snprintf(dst, n, "%.*s%s", EMB_SHOW_MAX, s ? s : "?", s && strlen(s) > EMB_SHOW_MAX ? "..." : "");
	free(s);
	return dst;
}

/* is_id: a token id is a JSON integer >= 0 */
static int is_id(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* id_array_ok: a non-empty array of token ids */
static int id_array_ok(const json_t *v)
{
	const json_t *x;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return 0;
	json_array_foreach(v, i, x)
		if (!is_id(x))
			return 0;
	return 1;
}

/* input_shape: classify input as OpenAI does: a non-empty string, or a
 * non-empty array of non-empty strings, of ids, or of non-empty id arrays
 * (never mixed). 0 with r->shape and r->n, or -1 */
static int input_shape(const json_t *input, struct emb_req *r)
{
	const json_t *first = json_array_get(input, 0), *x;
	size_t i;

	if (json_is_string(input)) {
		r->shape = EMB_STRING;
		r->n = 1;
		return json_string_length(input) > 0 ? 0 : -1;
	}
	if (!first)
		return -1;
	r->shape = json_is_string(first) ? EMB_STRINGS : is_id(first) ? EMB_IDS : EMB_ID_ARRAYS;
	r->n = r->shape == EMB_IDS ? 1 : json_array_size(input);
	json_array_foreach(input, i, x) {
		if (r->shape == EMB_STRINGS && !(json_is_string(x) && json_string_length(x) > 0))
			return -1;
		if (r->shape == EMB_IDS && !is_id(x))
			return -1;
		if (r->shape == EMB_ID_ARRAYS && !id_array_ok(x))
			return -1;
	}
	return 0;
}

/* input_at: the i-th input: a string, or an array of ids (borrowed) */
static const json_t *input_at(const struct emb_req *r, size_t i)
{
	return r->shape == EMB_STRING || r->shape == EMB_IDS ? r->input : json_array_get(r->input, i);
}

/* check_input: shape and limits of "input"; 0, or -1 after a 400 was sent */
static int check_input(struct app *a, struct hio *h, struct emb_req *r)
{
	size_t max_ids = a->s->embedding_max_input_bytes / 4;

	if (!r->input) {
		oai_send_error(h, 400, "input", "missing_required_parameter", "Missing required parameter: 'input'.");
		return -1;
	}
	if (input_shape(r->input, r) < 0) {
		oai_send_error(h, 400, NULL, NULL, "%s", EMB_INPUT_INVALID);
		return -1;
	}
	if (r->n > a->s->embedding_max_inputs) {
		oai_send_error(h, 400, "input", "too_many_inputs",
			       "'$.input' is invalid: %zu inputs, at most %zu are allowed per request "
			       "(MCPGW_EMBEDDING_MAX_INPUTS).",
			       r->n, a->s->embedding_max_inputs);
		return -1;
	}
	for (size_t i = 0; i < r->n; i++) {
		const json_t *x = input_at(r, i);

		if (json_is_string(x) && json_string_length(x) > a->s->embedding_max_input_bytes) {
			oai_send_error(h, 400, "input", "input_too_long",
				       "Input %zu is %zu bytes long; at most %zu bytes are allowed per input "
				       "(MCPGW_EMBEDDING_MAX_INPUT_BYTES). Please reduce the length of the input.",
				       i, json_string_length(x), a->s->embedding_max_input_bytes);
			return -1;
		}
		if (json_is_array(x) && json_array_size(x) > max_ids) {
			oai_send_error(h, 400, "input", "input_too_long",
				       "Input %zu has %zu tokens; at most %zu tokens are allowed per input "
				       "(MCPGW_EMBEDDING_MAX_INPUT_BYTES / 4). Please reduce the length of the input.",
				       i, json_array_size(x), max_ids);
			return -1;
		}
	}
	return 0;
}

/* check_options: encoding_format, dimensions, user; 0, or -1 after a 400 was sent */
static int check_options(struct hio *h, const json_t *req, struct emb_req *r)
{
	const json_t *fmt = json_object_get(req, "encoding_format"), *dims = json_object_get(req, "dimensions");
	const json_t *user = json_object_get(req, "user");
	char v[EMB_SHOW_MAX + 8];

	r->base64 = 0;
	r->dims = EMBED_DIMS_DEFAULT;
	if (fmt && !json_is_null(fmt)) {
		const char *f = json_string_value(fmt);

		if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0)) {
			oai_send_error(h, 400, "encoding_format", "invalid_value",
				       "Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].",
				       f ? f : show(fmt, v, sizeof v));
			return -1;
		}
		r->base64 = strcmp(f, "base64") == 0;
	}
	if (dims && !json_is_null(dims)) {
		if (!json_is_integer(dims) || json_integer_value(dims) < 1 || json_integer_value(dims) > EMBED_DIMS_MAX) {
			oai_send_error(h, 400, "dimensions", "invalid_value",
				       "Invalid value for 'dimensions' = %s. It must be an integer from 1 to %d.",
				       show(dims, v, sizeof v), EMBED_DIMS_MAX);
			return -1;
		}
		r->dims = (size_t)json_integer_value(dims);
	}
	if (user && !json_is_null(user) && !json_is_string(user)) {
		oai_send_error(h, 400, "user", "invalid_type",
			       "Invalid type for 'user': expected a string, but got %s.", show(user, v, sizeof v));
		return -1;
	}
	return 0;
}

/* answer_bytes: the most bytes the answer to r can take (its data[]; the
 * envelope is small), reckoned before any embedding is made */
static size_t answer_bytes(const struct emb_req *r)
{
	size_t item = (r->base64 ? embed_base64_len(r->dims) : r->dims * EMB_FLOAT_MAX) + EMB_ITEM_MAX;

	return r->n * item;
}

/* check_answer: the answer to r within MCPGW_EMBEDDING_MAX_ANSWER_BYTES (the
 * work is in proportion: a vector per input); 0, or -1 after a 400 was sent */
static int check_answer(struct app *a, struct hio *h, const struct emb_req *r)
{
	size_t bytes = answer_bytes(r), max = a->s->embedding_max_answer_bytes;

	if (bytes <= max)
		return 0;
	oai_send_error(h, 400, "input", "answer_too_large",
		       "The answer to this request would take up to %zu bytes (%zu inputs of %zu dimensions as %s), "
		       "more than the %zu this server allows (MCPGW_EMBEDDING_MAX_ANSWER_BYTES). Send fewer inputs "
		       "per request, fewer 'dimensions'%s.",
		       bytes, r->n, r->dims, r->base64 ? "base64" : "float", max,
		       r->base64 ? "" : ", or 'encoding_format': 'base64' (a third of the size)");
	return -1;
}

/* embed_one: the i-th input's vector into a->vec; its tokens, or -1 (ENOMEM) */
static long embed_one(struct app *a, const struct emb_req *r, size_t i)
{
	const json_t *x = input_at(r, i), *id;
	size_t n = json_array_size(x), k;

	if (json_is_string(x))
		return embed_text(json_string_value(x), json_string_length(x), a->vec, r->dims);
	if (n > a->ids_cap) {
		int64_t *ids = realloc(a->ids, n * sizeof *ids);

		if (!ids)
			return -1;
		a->ids = ids;
		a->ids_cap = n;
	}
	json_array_foreach(x, k, id)
		a->ids[k] = (int64_t)json_integer_value(id);
	return embed_ids(a->ids, n, a->vec, r->dims);
}

/* item_json: data[i] for the vector in a->vec, into a->item; 0 or -1 (ENOMEM) */
static int item_json(struct app *a, const struct emb_req *r, size_t i)
{
	char num[32];

	buf_reset(&a->item);
	if (buf_printf(&a->item, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i) < 0)
		return -1;
	if (r->base64) {
		if (embed_base64(a->vec, r->dims, a->b64, sizeof a->b64) < 0 ||
		    buf_printf(&a->item, "\"%s\"}", a->b64) < 0)
			return -1;
		return 0;
	}
	for (size_t d = 0; d < r->dims; d++) {
		/* 9 significant digits read back as float32 give exactly the value sent as base64 */
		int len = snprintf(num, sizeof num, "%s%.9g", d ? "," : "[", (double)a->vec[d]);

		if (len < 0 || buf_append(&a->item, num, (size_t)len) < 0)
			return -1;
	}
	return buf_puts(&a->item, "]}");
}

/* write_local: the whole answer, streamed one embedding at a time (a batch
 * of large vectors never sits in memory at once). The first vector is made
 * before the headers, so a failure there is still a clean 500; a failure
 * later can only cut the body short (logged). */
static void write_local(struct app *a, struct hio *h, const struct emb_req *r)
{
	static const char head[] = "{\"object\":\"list\",\"data\":[";
	json_t *model = json_string(r->model);
	char *mjson = model ? json_dumps(model, JSON_ENCODE_ANY) : NULL, tail[128];
	long tokens = 0, t = embed_one(a, r, 0);
	size_t i = 0;

	if (t < 0 || !mjson || item_json(a, r, 0) < 0) {
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
		goto out;
	}
	if (hio_headers(h, 200, "application/json", NULL) < 0 || hio_write(h, head, sizeof head - 1) < 0)
		goto out;
	for (;;) {
		tokens += t;
		if (hio_write(h, a->item.data, a->item.len) < 0)
			goto out;
		if (++i == r->n)
			break;
		if ((t = embed_one(a, r, i)) < 0 || item_json(a, r, i) < 0) {
			log_error("embeddings: out of memory at input %zu of %zu; the answer is cut short", i, r->n);
			goto out;
		}
	}
	if (hio_write(h, "],\"model\":", 10) < 0 || hio_write(h, mjson, strlen(mjson)) < 0)
		goto out;
	snprintf(tail, sizeof tail, ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}\n", tokens, tokens);
	(void)hio_write(h, tail, strlen(tail));
	accesslog_set_usage(a->log, tokens, -1);
	log_debug("embeddings: %s: %zu inputs, %zu dimensions, %s, %ld tokens", r->model, r->n, r->dims,
		  r->base64 ? "base64" : "float", tokens);
out:
	free(mjson);
	json_decref(model);
}

/* local: the built-in model for model name `model` */
static void local(struct app *a, struct hio *h, const json_t *req, const char *model)
{
	struct emb_req r;

	memset(&r, 0, sizeof r);
	r.model = model;
	r.input = json_object_get(req, "input");
	if (check_input(a, h, &r) < 0 || check_options(h, req, &r) < 0 || check_answer(a, h, &r) < 0)
		return;
	write_local(a, h, &r);
}

/* forward: the request to the embeddings upstream, its answer back as it
 * came (an alias is replaced by its model first; otherwise the body goes
 * out byte for byte) */
static void forward(struct app *a, struct hio *h, json_t *req, const buf_t *body, const char *target)
{
	const char *p = body->data ? body->data : "";
	size_t len = body->len;
	char *dumped = NULL;
	json_t *err = NULL, *ok = NULL;
	int status = 502;

	if (target) {
		if (json_object_set_new(req, "model", json_string(target)) < 0 ||
		    !(dumped = json_dumps(req, JSON_COMPACT))) {
			oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
			return;
		}
		p = dumped;
		len = strlen(dumped);
	}
	if (upstream_request(a->up, "POST", "/embeddings", p, len, &a->res) == UPSTREAM_OK &&
	    wire_json_scan(a->res.body.data ? a->res.body.data : "", a->res.body.len, INT_MAX, a->res.max_values) ==
		    WIRE_JSON_TOO_MANY) {
		/* many vectors of floats: passed on as they came, not parsed for their usage
		 * (MCPGW_MAX_UPSTREAM_JSON_VALUES bounds what a parse may cost) */
		log_debug("embeddings: the answer holds more than %zu JSON values: passed on unparsed",
			  a->res.max_values);
		hio_send_raw_json(h, 200, a->res.body.data, a->res.body.len);
	} else if (a->res.err == UPSTREAM_OK && (ok = upstream_result_json(&a->res))) {
		const json_t *u = json_object_get(ok, "usage");

		if (json_is_integer(json_object_get(u, "prompt_tokens")))
			accesslog_set_usage(a->log, (long)json_integer_value(json_object_get(u, "prompt_tokens")), -1);
		hio_send_raw_json(h, 200, a->res.body.data, a->res.body.len);
	} else {
		log_warn("embeddings: %s", a->res.message);
		if ((err = upstream_error_json(&a->res, &status)))
			hio_send_json(h, status, err);
		else
			oai_send_error(h, 502, NULL, "upstream_error", "The upstream request failed.");
	}
	json_decref(ok);
	json_decref(err);
	free(dumped);
	upstream_result_trim(&a->res); /* many vectors are not kept for the next request */
}

/* embeddings: one POST: parse, route by model name */
static void embeddings(struct app *a, struct hio *h, const buf_t *body)
{
	json_t *req = NULL;
	const char *model, *target;

	if (!(req = oai_parse_body(h, body->data ? body->data : "", body->len, a->s->max_json_depth,
				   a->s->max_json_values)))
		goto out;
	model = json_string_value(json_object_get(req, "model"));
	if (!model || !*model) {
		oai_send_error(h, 400, NULL, NULL, "you must provide a model parameter");
		goto out;
	}
	accesslog_set_model(a->log, model);
	target = settings_model_alias(a->s, model);
	if (settings_local_embedding_model(a->s, target ? target : model))
		local(a, h, req, target ? target : model);
	else
		forward(a, h, req, body, target);
out:
	json_decref(req);
}

static struct app emb_app;

/* route_embeddings: POST /v1/embeddings */
static enum route_status route_embeddings(struct exchange *x)
{
	struct app *a = x->app;

	a->s = &x->w->r->s;
	a->up = x->w->up;
	a->log = &x->log;
	embeddings(a, x->h, &x->body);
	return ROUTE_DONE;
}

/* embeddings.fcgi's routes */
static const struct route embeddings_routes[] = {
	{ "/v1/embeddings", "POST", route_embeddings, ROUTE_BODY | ROUTE_UPSTREAM },
	{ NULL, NULL, NULL, 0 },
};

/* the upstream of models that are not built in: EMBEDDING_BASE_URL */
static void emb_upstream_opts(const struct responder *r, struct upstream_opts *o)
{
	o->base_url = r->s.embedding_base_url;
	o->api_key = r->s.embedding_api_key;
}

static void emb_teardown(struct responder *r)
{
	(void)r;
	free(emb_app.ids);
	buf_free(&emb_app.item);
	upstream_result_free(&emb_app.res);
}

static int emb_setup(struct responder *r)
{
	(void)r;
	upstream_result_init(&emb_app.res);
	return 0;
}

static const char *const embeddings_settings[] = { "EMBEDDING_BASE_URL",
						   "EMBEDDING_API_KEY",
						   "OPENAI_BASE_URL",
						   "OPENAI_API_KEY",
						   "MCPGW_LOCAL_EMBEDDING_MODELS",
						   "MCPGW_EMBEDDING_MAX_INPUTS",
						   "MCPGW_EMBEDDING_MAX_INPUT_BYTES",
						   "MCPGW_EMBEDDING_MAX_ANSWER_BYTES",
						   "MCPGW_MODEL_ALIASES",
						   "MCPGW_MAX_BODY_BYTES",
						   "MCPGW_MAX_DRAIN_BYTES",
						   "MCPGW_MAX_JSON_DEPTH",
						   "MCPGW_MAX_JSON_VALUES",
						   "MCPGW_MAX_UPSTREAM_JSON_VALUES",
						   "MCPGW_HOME",
						   "MCPGW_ENV_FILE",
						   "MCPGW_STATE_DIR",
						   "MCPGW_UPSTREAM_CONNECT_TIMEOUT",
						   "MCPGW_UPSTREAM_TIMEOUT",
						   "MCPGW_UPSTREAM_RETRIES",
						   "MCPGW_UPSTREAM_RETRY_MAX_WAIT",
						   "MCPGW_UPSTREAM_DIALECT",
						   "MCPGW_UPSTREAM_AUTH",
						   "OPENAI_API_VERSION",
						   "MCPGW_MAX_RESPONSE_BYTES",
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
static const struct usage embeddings_usage = {
	"embeddings.fcgi",
	"[--help | --version]",
	"Serves POST /v1/embeddings: the built-in embedding model for the names of\n"
	"MCPGW_LOCAL_EMBEDDING_MODELS, any other model forwarded to EMBEDDING_BASE_URL.\n",
	USAGE_RESPONDER_OPTIONS,
	embeddings_settings,
	NULL,
};

static const struct responder_def embeddings_def = {
	.name = "embeddings.fcgi",
	.routes = embeddings_routes,
	.upstream = &responder_upstream,
	.app = &emb_app,
	.setup = emb_setup,
	.upstream_opts = emb_upstream_opts,
	.teardown = emb_teardown,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &embeddings_usage);

	return opt >= 0 ? opt : responder_main(&embeddings_def);
}
