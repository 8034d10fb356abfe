/* broker_fake.c: an in-memory MCP transport, a fake clock and a socketpair client for the broker's unit tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_fake.h"
#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "sharedtext.h"

static int fake_open(struct transport *t, char *why, size_t whylen)
{
	struct fake_transport *f = (struct fake_transport *)t;

	f->opens++;
	if (f->open_result < 0) {
		snprintf(why, whylen, "fake: cannot connect");
		return -1;
	}
	f->connected = 1;
	return f->open_result;
}

static int fake_send(struct transport *t, const json_t *msg)
{
	struct fake_transport *f = (struct fake_transport *)t;

	if (!f->connected)
		return -1;
	return json_array_append_new(f->sent, json_deep_copy(msg));
}

/* fake_send_parts: the parts joined, checked to end the line, parsed and kept as send keeps a message */
static int fake_send_parts(struct transport *t, const struct sharedtext_slice *parts, size_t n)
{
	struct fake_transport *f = (struct fake_transport *)t;
	buf_t b = BUF_INIT;
	json_t *m;

	if (!f->connected)
		return -1;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_append(&b, sharedtext_data(parts[i].t) + parts[i].off, parts[i].len), 0);
	assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
	m = json_loadb(b.data, b.len - 1, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(m);
	buf_free(&b);
	f->parts_sent++;
	return json_array_append_new(f->sent, m);
}

static void fake_forget(struct transport *t, long long id)
{
	(void)t, (void)id;
}

static void fake_negotiated(struct transport *t, const char *v)
{
	(void)t, (void)v;
}

static void fake_established(struct transport *t)
{
	(void)t;
}

static void fake_close(struct transport *t)
{
	struct fake_transport *f = (struct fake_transport *)t;

	f->closes++;
	f->connected = 0;
}

static int fake_stop(struct transport *t)
{
	struct fake_transport *f = (struct fake_transport *)t;

	f->stops++;
	f->connected = 0;
	return 0;
}

static const char *fake_name(const struct transport *t)
{
	(void)t;
	return "fake";
}

static long fake_pid(const struct transport *t)
{
	(void)t;
	return 0;
}

static void fake_diagnostic(const struct transport *t, char *out, size_t outlen)
{
	const struct fake_transport *f = (const struct fake_transport *)t;

	snprintf(out, outlen, "%s", f->diagnostic ? f->diagnostic : "");
}

static void fake_destroy(struct transport *t)
{
	struct fake_transport *f = (struct fake_transport *)t;

	json_decref(f->sent);
	free(f);
}

static char *fake_take_message(struct transport *t, size_t *size)
{
	struct fake_transport *f = (struct fake_transport *)t;
	char *b = f->block;

	if (!b)
		return NULL;
	*size = f->block_size;
	f->block = NULL;
	f->taken = 1;
	return b;
}

static const struct transport_ops fake_ops = {
	.open = fake_open,
	.send = fake_send,
	.send_parts = fake_send_parts,
	.forget = fake_forget,
	.negotiated = fake_negotiated,
	.established = fake_established,
	.close = fake_close,
	.stop = fake_stop,
	.name = fake_name,
	.pid = fake_pid,
	.diagnostic = fake_diagnostic,
	.destroy = fake_destroy,
	.take_message = fake_take_message,
};

/* the same transport taking whole messages only (as the HTTP transports) */
static const struct transport_ops fake_ops_whole = {
	.open = fake_open,
	.send = fake_send,
	.forget = fake_forget,
	.negotiated = fake_negotiated,
	.established = fake_established,
	.close = fake_close,
	.stop = fake_stop,
	.name = fake_name,
	.pid = fake_pid,
	.diagnostic = fake_diagnostic,
	.destroy = fake_destroy,
	.take_message = fake_take_message,
};

void fake_whole_messages(struct fake_transport *f)
{
	f->base.ops = &fake_ops_whole;
}

static struct transport *fake_new(const struct transport_env *env, const struct cfg_server *cfg,
				  const struct transport_events *ev, void *ctx)
{
	struct fake_transport *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	f->base = (struct transport){ &fake_ops, ev, ctx, cfg, env };
	f->open_result = 1;
	f->sent = json_array();
	return &f->base;
}

static int64_t fake_clock(void *ctx)
{
	return ((struct rig *)ctx)->now;
}

struct rig *rig_new(const char *config, long tool_timeout_ms, int tool_retries)
{
	struct rig *r = calloc(1, sizeof *r);
	char err[1024];

	assert_non_null(r);
	r->now = 1000000;
	r->client = -1;
	r->set.max_clients = 4;
	r->set.max_message_bytes = 4 << 20; /* room for messages over 1 MiB (test_broker_call's large ones) */
	r->set.tool_timeout_ms = tool_timeout_ms;
	r->set.tool_retries = tool_retries;
	r->set.init_timeout_ms = 5000;
	r->set.restart_backoff_max_ms = 10000;
	r->set.upstream_connect_timeout_ms = 1000;
	if (cfg_load_string(config, "test config", &r->cfg, err, sizeof err) < 0)
		fail_msg("config: %s", err);
	r->loop = evloop_new(fake_clock, r);
	assert_non_null(r->loop);
	{
		struct broker_opts o = {
			.set = &r->set, .cfg = &r->cfg, .loop = r->loop, .generation = 100, .new_transport = fake_new
		};

		r->b = broker_new(&o, err, sizeof err);
		if (!r->b)
			fail_msg("broker_new: %s", err);
	}
	return r;
}

void rig_free(struct rig *r)
{
	if (r->client >= 0)
		close(r->client);
	broker_free(r->b);
	evloop_free(r->loop);
	cfg_free(&r->cfg);
	free(r);
}

void rig_pass(struct rig *r)
{
	assert_true(broker_step(r->b, 0) >= 0);
}

void rig_advance(struct rig *r, int64_t ms)
{
	r->now += ms;
	rig_pass(r);
}

struct session *rig_session(struct rig *r, size_t i)
{
	struct session *s = broker_session(r->b, i);

	assert_non_null(s);
	return s;
}

struct fake_transport *rig_fake(struct rig *r, size_t i)
{
	return (struct fake_transport *)rig_session(r, i)->t;
}

json_t *fake_take(struct fake_transport *f, const char *method)
{
	size_t i;
	json_t *m;

	json_array_foreach(f->sent, i, m) {
		const char *mm = json_string_value(json_object_get(m, "method"));

		if (!method || (mm && strcmp(mm, method) == 0)) {
			json_incref(m);
			json_array_remove(f->sent, i);
			return m;
		}
	}
	return NULL;
}

void fake_say(struct fake_transport *f, const char *json)
{
	f->base.ev->on_message(f->base.ctx, json, strlen(json));
}

void fake_say_block(struct fake_transport *f, char *block)
{
	f->block = block;
	f->block_size = strlen(block) + 1;
	f->taken = 0;
	f->base.ev->on_message(f->base.ctx, block, strlen(block));
	free(f->block); /* not taken */
	f->block = NULL;
}

void fake_answer(struct fake_transport *f, const json_t *request, const char *result)
{
	char line[8192];

	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":%s}",
		 (long long)json_integer_value(json_object_get(request, "id")), result);
	fake_say(f, line);
}

void fake_undelivered(struct fake_transport *f, const json_t *request)
{
	f->base.ev->on_undelivered(f->base.ctx, (long long)json_integer_value(json_object_get(request, "id")));
}

void fake_die(struct fake_transport *f, const char *why)
{
	f->base.ev->on_closed(f->base.ctx, why, 0);
}

void fake_handshake(struct fake_transport *f, const char *tools)
{
	json_t *init = fake_take(f, "initialize"), *list, *note;
	char result[4096];

	assert_non_null(init);
	fake_answer(f, init,
		    "{\"protocolVersion\":\"" JR_MCP_LATEST "\",\"capabilities\":{\"tools\":{}},"
		    "\"serverInfo\":{\"name\":\"fake\",\"version\":\"1\"}}");
	note = fake_take(f, "notifications/initialized");
	assert_non_null(note);
	list = fake_take(f, "tools/list");
	assert_non_null(list);
	snprintf(result, sizeof result, "{\"tools\":%s}", tools);
	fake_answer(f, list, result);
	json_decref(init);
	json_decref(note);
	json_decref(list);
}

void client_connect(struct rig *r)
{
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(broker_adopt_client(r->b, sp[0]), 0);
	r->client = sp[1];
}

void client_send(struct rig *r, const char *json)
{
	size_t len = strlen(json);

	assert_int_equal(send(r->client, json, len, MSG_NOSIGNAL), (ssize_t)len);
	assert_int_equal(send(r->client, "\n", 1, MSG_NOSIGNAL), 1);
}

void client_send_big(struct rig *r, const char *json, size_t len)
{
	size_t done = 0;

	for (int pass = 0; pass < 100000 && done < len + 1; pass++) {
		const char *p = done < len ? json + done : "\n";
		ssize_t n = send(r->client, p, done < len ? len - done : 1, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			done += (size_t)n;
		else
			rig_pass(r);
	}
	assert_int_equal(done, len + 1);
}

json_t *client_recv(struct rig *r)
{
	char *buf = r->rbuf;
	size_t *have = &r->rlen;
	json_t *m;

	for (int pass = 0; pass < 50; pass++) {
		char *nl = memchr(buf, '\n', *have);
		ssize_t n;

		if (nl) {
			m = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			*have -= (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, *have);
			return m;
		}
		rig_pass(r);
		n = recv(r->client, buf + *have, sizeof r->rbuf - *have, 0);
		if (n > 0)
			*have += (size_t)n;
	}
	return NULL;
}
