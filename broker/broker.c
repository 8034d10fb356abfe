/* broker.c: the broker daemon as one object: it builds the sessions, clients, calls and catalog, wires their callbacks together, and runs and stops them. */
#include "broker.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "call.h"
#include "catalog.h"
#include "client.h"
#include "core/buf.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"
#include "persist.h"
#include "session.h"
#include "sharedtext.h"
#include "status.h"
#include "transport_http.h"

struct broker {
	const struct settings *set;
	const struct cfg *cfg;
	struct evloop *loop;
	struct persist *persist;
	struct httphub *hub;
	struct session_env senv;
	struct session **sessions;
	size_t nsessions;
	struct catalog *cat;
	struct calls *calls;
	struct clients *clients;
	char socket_path[4200]; /* unlinked when the broker stops listening ("" none) */
	int stopping;
	int64_t hard_stop; /* a shutdown leaves then, children or not */
	int64_t started_ms;
	int64_t trimmed_ms; /* the last look at the heap's free bytes (trim) */
	time_t started_at;
};

/* the sessions' hooks */

static void on_changed(void *ctx, struct session *s)
{
	struct broker *b = ctx;

	persist_server(b->persist, s);
	if (b->cat)
		catalog_states_changed(b->cat); /* tools/list names the servers that are not ready */
}

static void on_tools(void *ctx, struct session *s)
{
	struct broker *b = ctx;

	(void)s;
	if (b->cat)
		catalog_rebuild(b->cat);
}

static void on_ready(void *ctx, struct session *s)
{
	struct broker *b = ctx;

	if (b->calls)
		calls_session_ready(b->calls, s);
}

static void on_failed(void *ctx, struct session *s)
{
	struct broker *b = ctx;

	if (b->calls)
		calls_session_failed(b->calls, s);
}

static const struct session_hooks hooks = {
	.changed = on_changed,
	.tools = on_tools,
	.ready = on_ready,
	.failed = on_failed,
};

/* the clients' methods */

static void reply(struct broker *b, uint64_t to, const json_t *id, json_t *result)
{
	json_t *m = jr_result(id, result);

	if (m)
		clients_send(b->clients, to, m);
	json_decref(m);
}

static void m_call(void *ctx, uint64_t from, const json_t *id, const json_t *params)
{
	struct broker *b = ctx;

	calls_start(b->calls, from, id, params);
}

static void m_call_text(void *ctx, uint64_t from, const json_t *id, const json_t *params,
			const struct sharedtext_slice *args)
{
	struct broker *b = ctx;

	calls_start_text(b->calls, from, id, params, args);
}

/* tools/list: the cached, pre-serialised result framed with the client's id; its tools
 * array is shared by every client it is queued for (one copy however many read it).
 * A client that already holds generation N (params._meta["mcpgw/ifGeneration"])
 * gets {"tools":null,"_meta":{"mcpgw/generation":N,"mcpgw/unchanged":true}}. */
static void m_list(void *ctx, uint64_t from, const json_t *id, const json_t *params)
{
	struct broker *b = ctx;
	const json_t *have = json_object_get(json_object_get(params, "_meta"), "mcpgw/ifGeneration");
	char *idtxt = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
	struct sharedtext *tools = catalog_tools(b->cat);
	const char *meta = catalog_meta(b->cat);
	json_int_t gen = catalog_generation(b->cat);
	buf_t pre = BUF_INIT, post = BUF_INIT;
	int rc;

	if (!idtxt) {
		clients_nomem(b->clients, from);
		return;
	}
	if (!tools)
		rc = buf_printf(&pre, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"tools\":[]}}\n", idtxt);
	else if (json_is_integer(have) && json_integer_value(have) == gen)
		rc = buf_printf(&pre,
				"{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"tools\":null,\"_meta\":{\"mcpgw/"
				"generation\":%lld,\"mcpgw/unchanged\":true}}}\n",
				idtxt, (long long)gen);
	else
		rc = buf_printf(&pre, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"tools\":", idtxt) < 0 ||
				     buf_printf(&post, ",\"_meta\":%s}}\n", meta) < 0
			     ? -1
			     : 1;
	if (rc < 0)
		clients_nomem(b->clients, from);
	else if (rc == 1)
		clients_send_shared(b->clients, from, pre.data, tools, post.data);
	else
		clients_send_raw(b->clients, from, pre.data, pre.len);
	free(idtxt);
	buf_free(&pre);
	buf_free(&post);
}

static void m_status(void *ctx, uint64_t from, const json_t *id, const json_t *params)
{
	struct broker *b = ctx;
	struct status_view v = {
		.sessions = b->sessions,
		.nsessions = b->nsessions,
		.now_ms = evloop_now(b->loop),
		.started_ms = b->started_ms,
		.started_at = b->started_at,
		.clients = clients_count(b->clients),
		.generation = catalog_generation(b->cat),
		.tools = catalog_listed(b->cat),
		.calls = b->calls,
	};

	(void)params;
	reply(b, from, id, status_json(&v));
}

/* notifications/cancelled {requestId}: the client gave up its tools/call of that id */
static void m_cancelled(void *ctx, uint64_t from, const json_t *id, const json_t *params)
{
	struct broker *b = ctx;

	(void)id;
	calls_cancel(b->calls, from, json_object_get(params, "requestId"));
}

static const struct client_method methods[] = {
	{ "tools/call", m_call, m_call_text, 0 },
	{ "tools/list", m_list, NULL, 0 },
	{ "mcpgw/status", m_status, NULL, 0 },
	{ "notifications/cancelled", m_cancelled, NULL, 1 },
};

static void reply_to_client(void *ctx, uint64_t to, const json_t *msg)
{
	struct broker *b = ctx;

	if (b->clients)
		clients_send(b->clients, to, msg);
}

static void reply_raw_to_client(void *ctx, uint64_t to, const struct sharedtext_slice *parts, size_t n)
{
	struct broker *b = ctx;

	if (b->clients)
		clients_send_parts(b->clients, to, parts, n);
}

/* client_closed: a client left: its calls still waiting for a place are dropped */
static void client_closed(void *ctx, uint64_t ref)
{
	struct broker *b = ctx;

	if (b->calls)
		calls_client_gone(b->calls, ref);
}

/* needs_http: a remote server is enabled */
static int needs_http(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nservers; i++)
		if (cfg->servers[i].transport != CFG_STDIO && !cfg->servers[i].disabled)
			return 1;
	return 0;
}

struct broker *broker_new(const struct broker_opts *o, char *err, size_t errlen)
{
	struct broker *b = calloc(1, sizeof *b);

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->set = o->set;
	b->cfg = o->cfg;
	b->loop = o->loop;
	b->persist = o->persist;
	b->started_ms = evloop_now(o->loop);
	b->started_at = time(NULL);
	/* libcurl (and its TLS library) only when a remote server needs it: a
	 * stdio-only broker stays small */
	if (needs_http(o->cfg) && !(b->hub = httphub_new(o->loop, o->set))) {
		snprintf(err, errlen, "libcurl initialisation failed");
		free(b);
		return NULL;
	}
	b->senv = (struct session_env){
		.tenv = { .loop = o->loop, .sig = o->sig, .hub = b->hub, .set = o->set },
		.new_transport = o->new_transport,
		.hooks = &hooks,
		.hooks_ctx = b,
		.metrics = o->metrics,
	};
	if (!(b->sessions = calloc(o->cfg->nservers ? o->cfg->nservers : 1, sizeof *b->sessions)))
		goto nomem;
	for (size_t i = 0; i < o->cfg->nservers; i++) {
		struct session *s = session_new(&b->senv, &o->cfg->servers[i]);

		if (!s)
			goto nomem;
		b->sessions[b->nsessions++] = s;
		session_set_tools(s, persist_cached_tools(b->persist, s));
		persist_server(b->persist, s);
	}
	persist_prune(b->persist, b->sessions, b->nsessions);
	if (!(b->cat = catalog_new(b->sessions, b->nsessions, b->persist, o->gen_map, o->generation,
				   o->set->max_message_bytes / 8 * 7)) ||
	    !(b->calls = calls_new(o->loop, o->set, b->cat, reply_to_client, reply_raw_to_client, b)) ||
	    !(b->clients = clients_new(o->loop, o->set->max_clients, o->set->max_message_bytes, methods,
				       sizeof methods / sizeof *methods, b)))
		goto nomem;
	clients_on_close(b->clients, client_closed, b);
	calls_set_audit(b->calls, o->audit);
	calls_set_metrics(b->calls, o->metrics);
	return b;
nomem:
	snprintf(err, errlen, "out of memory");
	broker_free(b);
	return NULL;
}

void broker_start(struct broker *b)
{
	for (size_t i = 0; i < b->nsessions; i++)
		session_start(b->sessions[i]);
	catalog_rebuild(b->cat);
}

int broker_listen(struct broker *b, int fd, const char *socket_path)
{
	if (clients_listen(b->clients, fd) < 0)
		return -1;
	snprintf(b->socket_path, sizeof b->socket_path, "%s", socket_path);
	return 0;
}

int broker_adopt_client(struct broker *b, int fd)
{
	return clients_adopt(b->clients, fd);
}

void broker_shutdown(struct broker *b)
{
	if (b->stopping)
		return;
	log_info("shutting down");
	b->stopping = 1;
	b->hard_stop = evloop_now(b->loop) + 4 * BROKER_STOP_GRACE_MS;
	clients_unlisten(b->clients);
	if (*b->socket_path)
		unlink(b->socket_path);
	b->socket_path[0] = '\0';
	catalog_freeze(b->cat);
	calls_shutdown(b->calls, "the broker is shutting down");
	for (size_t i = 0; i < b->nsessions; i++)
		session_stop(b->sessions[i]);
}

/* done: shut down, and no child or transfer is left */
static int done(const struct broker *b)
{
	if (!b->stopping || httphub_busy(b->hub))
		return 0;
	for (size_t i = 0; i < b->nsessions; i++)
		if (session_running(b->sessions[i]))
			return 0;
	return 1;
}

int broker_step(struct broker *b, int max_ms)
{
	if (evloop_step(b->loop, max_ms) < 0)
		return -1;
	return done(b);
}

/* trim: the heap's free pages back to the system when more than BROKER_TRIM_FREE is free:
 * a large message's many small values (a parsed tool list, a tool's answer) are freed into
 * the heap, not unmapped. Looked at once a second at most (mallinfo2 walks the free lists);
 * a look put off is taken a second later, busy or idle. The wait for the next step. */
static int trim(struct broker *b)
{
	int64_t now = evloop_now(b->loop);

	if (now - b->trimmed_ms < 1000)
		return 1000;
	b->trimmed_ms = now;
	if (mallinfo2().fordblks > BROKER_TRIM_FREE)
		(void)malloc_trim(0);
	return 60000;
}

int broker_run(struct broker *b)
{
	int wait = 60000;

	while (!done(b)) {
		if (evloop_step(b->loop, b->stopping ? 100 : wait) < 0) {
			log_error("the event loop failed: %s", strerror(errno));
			return -1;
		}
		wait = trim(b);
		if (b->stopping && evloop_now(b->loop) > b->hard_stop) {
			log_warn("children still running after %d ms; leaving", 4 * BROKER_STOP_GRACE_MS);
			break;
		}
	}
	return 0;
}

struct session *broker_session(const struct broker *b, size_t i)
{
	return i < b->nsessions ? b->sessions[i] : NULL;
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	clients_free(b->clients); /* answers from here on go nowhere */
	b->clients = NULL;
	if (b->calls)
		calls_shutdown(b->calls, "the broker is shutting down");
	calls_free(b->calls);
	b->calls = NULL;
	catalog_free(b->cat);
	b->cat = NULL;
	for (size_t i = 0; i < b->nsessions; i++)
		session_free(b->sessions[i]); /* children still there are killed */
	free(b->sessions);
	httphub_free(b->hub);
	if (*b->socket_path)
		unlink(b->socket_path);
	free(b);
}
