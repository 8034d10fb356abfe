/* models.c: GET /v1/models[/{id}]: the upstream's models (one cache for every process, in the state store) plus our own names. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "http/hio.h"
#include "core/statedir.h"
#include "core/log.h"
#include "core/redact.h"
#include "http/oai.h"
#include "http/responder.h"
#include "core/settings.h"
#include "core/sharedcache.h"
#include "core/statestore.h"
#include "openai/upstream.h"
#include "core/usage.h"

#define MODELS_ID_MAX 1024          /* a decoded {id} longer than this names no model */
#define MODELS_FAIL_HOLD_MS 5000    /* after a failed fetch, ask the upstream again this much later at the earliest */
#define MODELS_LOCK_WAIT_MS 5000    /* longest wait for another process's fetch; then the list at hand is served */
#define MODELS_FETCH_LEASE_MS 60000 /* a process that died fetching is replaced after this */
#define MODELS_CACHE_SLACK 65536    /* the cache entry's fields around the list (the source is a URL < 2 KB) */

/* the program's state (its responder_def.app), process lifetime; one worker uses it */
struct app {
	const struct settings *s;   /* the responder's settings */
	struct upstream *up;        /* the worker's handle (one worker): the connection to the upstream is kept */
	struct upstream_result res; /* reused by every fetch */
	struct statestore *store;   /* MCPGW_STATE_STORE; NULL when it cannot be opened (then nothing is cached) */
	struct sharedcache cache;   /* the upstream's model objects, shared by every process of the host */
	int fetch_failed;           /* the last fetch of this process failed (its reason in res.message) */
	json_int_t created;         /* "created" of the models we add: the process start */
	char source[2048]; /* the cache's source: the upstream URL as shown (redact_url: a database keeps no secret) */
};

/* model_objects: the objects with a string "id" of a models list (borrowed); new array or NULL */
static json_t *model_objects(const json_t *list)
{
	json_t *data = json_object_get(list, "data"), *out, *m;
	size_t i;

	if (!json_is_array(data) || !(out = json_array()))
		return NULL;
	json_array_foreach(data, i, m) {
		if (json_is_string(json_object_get(m, "id")) && json_array_append(out, m) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* models_valid: the cache's check of a list read back: an array of objects with a string "id" */
static int models_valid(const json_t *models)
{
	const json_t *m;
	size_t i;

	if (!json_is_array(models))
		return 0;
	json_array_foreach(models, i, m)
		if (!json_is_object(m) || !json_is_string(json_object_get(m, "id")))
			return 0;
	return 1;
}

/* models_fetch: the cache's fetch: GET {base}/models; the model objects (new array), or NULL (reason in res.message) */
static json_t *models_fetch(void *ud)
{
	struct app *a = ud;
	json_t *list = NULL, *models = NULL;

	log_debug("models: fetching the list from %s/models", upstream_base_url(a->up));
	/* the list is fetched for every client the shared cache serves, not only for this
	 * one: it is not cut when this one goes away (a cut fetch would hold them off) */
	upstream_watch(a->up, -1, NULL, NULL);
	if (upstream_request(a->up, "GET", "/models", NULL, 0, &a->res) == UPSTREAM_OK &&
	    (list = upstream_result_json(&a->res)) && !(models = model_objects(list)))
		snprintf(a->res.message, sizeof a->res.message, "%s answered without a \"data\" array of models",
			 a->res.url);
	json_decref(list);
	upstream_result_trim(&a->res); /* a long list's text is not kept for the next fetch */
	a->fetch_failed = !models;
	return models;
}

/* upstream_models: the upstream's model objects from the shared cache
 * (fetched when it is older than the TTL, unless a fetch failed very
 * recently: then the stale list, or none, is served without waiting).
 * New array, empty when there is none. */
static json_t *upstream_models(struct app *a)
{
	enum sharedcache_state state;
	json_t *models;

	a->fetch_failed = 0;
	models = sharedcache_get(&a->cache, &state);
	if (a->fetch_failed)
		log_warn("models: %s; serving %s", a->res.message,
			 state == SHAREDCACHE_STALE ? "the cached list" : "only the default model and the aliases");
	return models ? models : json_array();
}

static const json_t *find_model(const json_t *list, const char *id)
{
	const json_t *m;
	size_t i;

	json_array_foreach(list, i, m) {
		const char *mid = json_string_value(json_object_get(m, "id"));

		if (mid && strcmp(mid, id) == 0)
			return m;
	}
	return NULL;
}

/* add_model: append our object for id unless the list has it; 0 or -1 */
static int add_model(json_t *list, const char *id, json_int_t created)
{
	json_t *m;

	if (find_model(list, id))
		return 0;
	m = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created", created, "owned_by", "mcpgw");
	return m ? json_array_append_new(list, m) : -1;
}

/* models: the list to show: the upstream's (fresh, cached or stale), then
 * DEFAULT_MODEL, each alias and each built-in embedding model if missing.
 * New array or NULL (ENOMEM). A listing never fails because the upstream is down or answers nonsense:
 * clients call /v1/models to discover what to ask for, and DEFAULT_MODEL
 * and the aliases are ours to name anyway. */
static json_t *models(struct app *a)
{
	json_t *list;
	const char *alias, *target, *local;

	list = upstream_models(a);
	if (!list || add_model(list, a->s->default_model, a->created) < 0)
		goto err;
	for (size_t i = 0; settings_model_alias_at(a->s, i, &alias, &target) == 0; i++)
		if (add_model(list, alias, a->created) < 0)
			goto err;
	for (size_t i = 0; (local = settings_local_embedding_model_at(a->s, i)); i++)
		if (add_model(list, local, a->created) < 0)
			goto err;
	return list;
err:
	json_decref(list);
	return NULL;
}

/* GET /v1/models */
static void models_list(struct app *a, struct hio *h)
{
	json_t *list = models(a), *out = list ? json_pack("{s:s, s:O}", "object", "list", "data", list) : NULL;

	if (out)
		hio_send_json(h, 200, out);
	else
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
	json_decref(out);
	json_decref(list);
}

/* 404 in OpenAI's own words for an unknown model */
static void send_not_found(struct hio *h, const char *id)
{
	oai_send_error(h, 404, "model", "model_not_found", "The model '%s' does not exist", id);
}

/* GET /v1/models/{id} (raw: the encoded id; it may hold '/', as "org/model" ids do) */
static void models_get(struct app *a, struct hio *h, const char *raw)
{
	char id[MODELS_ID_MAX + 1];
	const json_t *m;
	json_t *list;

	if (hio_url_decode(raw, id, sizeof id) < 0) {
		send_not_found(h, "(invalid)");
		return;
	}
	if (!(list = models(a))) {
		oai_send_error(h, 500, NULL, "internal_error", "Out of memory.");
		return;
	}
	if ((m = find_model(list, id)))
		hio_send_json(h, 200, m);
	else
		send_not_found(h, id);
	json_decref(list);
}

/* app: the program's state for the worker of x (one worker: the pointers are its) */
static struct app *app(struct exchange *x)
{
	struct app *a = x->app;

	a->s = &x->w->r->s;
	a->up = x->w->up;
	log_debug("models: %s %s", x->method, x->path); /* models.bats counts the processes that served */
	return a;
}

static enum route_status route_list(struct exchange *x)
{
	models_list(app(x), x->h);
	return ROUTE_DONE;
}

static enum route_status route_get(struct exchange *x)
{
	models_get(app(x), x->h, x->arg);
	return ROUTE_DONE;
}

/* models.fcgi's routes ({*}: model ids hold '/', "org/model") */
static const struct route models_routes[] = {
	{ "/v1/models", "GET, HEAD", route_list, ROUTE_UPSTREAM },
	{ "/v1/models/{*}", "GET, HEAD", route_get, ROUTE_UPSTREAM },
	{ NULL, NULL, NULL, 0 },
};

static struct app models_app;

/* setup: the shared cache of the upstream's models in the state store */
static int models_setup(struct responder *r)
{
	struct app *a = &models_app;
	struct statestore_opts store_opts;
	char err[1024];

	a->s = &r->s;
	a->created = (json_int_t)time(NULL);
	upstream_result_init(&a->res);
	store_opts = (struct statestore_opts){ .url = a->s->state_store, .timeout_ms = a->s->state_store_timeout_ms };
	if (statedir_make(a->s->state_dir, err, sizeof err) < 0 ||
	    !(a->store = statestore_open(&store_opts, err, sizeof err)))
		log_warn("models: %s; the model list is not cached", err);
	a->cache = (struct sharedcache){
		.store = a->store,
		.name = "models",
		.source = redact_url(a->s->openai_base_url, a->source, sizeof a->source),
		.ttl_ms = a->s->models_cache_ttl_ms,
		.hold_ms = a->s->models_cache_ttl_ms < MODELS_FAIL_HOLD_MS ? a->s->models_cache_ttl_ms
									   : MODELS_FAIL_HOLD_MS,
		.wait_ms = MODELS_LOCK_WAIT_MS,
		.lease_ms = MODELS_FETCH_LEASE_MS,
		.max_bytes = a->s->max_response_bytes + MODELS_CACHE_SLACK,
		.valid = models_valid,
		.fetch = models_fetch,
		.ud = a,
	};
	return 0;
}

static void models_teardown(struct responder *r)
{
	(void)r;
	upstream_result_free(&models_app.res);
	statestore_close(models_app.store);
	models_app.store = NULL;
}

static const char *const models_settings[] = { "OPENAI_API_KEY",
					       "OPENAI_BASE_URL",
					       "DEFAULT_MODEL",
					       "MCPGW_MODELS_CACHE_TTL",
					       "MCPGW_MODEL_ALIASES",
					       "MCPGW_LOCAL_EMBEDDING_MODELS",
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
static const struct usage models_usage = {
	"models.fcgi",
	"[--help | --version]",
	"Serves GET /v1/models and GET /v1/models/{id}: the upstream's models (cached), DEFAULT_MODEL,\n"
	"the aliases of MCPGW_MODEL_ALIASES and the built-in embedding models.\n",
	USAGE_RESPONDER_OPTIONS,
	models_settings,
	NULL,
};

static const struct responder_def models_def = {
	.name = "models.fcgi",
	.routes = models_routes,
	.upstream = &responder_upstream,
	.app = &models_app,
	.setup = models_setup,
	.teardown = models_teardown,
};

int main(int argc, char **argv)
{
	int opt = usage_responder(argc, argv, &models_usage);

	return opt >= 0 ? opt : responder_main(&models_def);
}
