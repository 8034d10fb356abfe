/* broker_fake.h: what the broker's unit tests stand on: an in-memory transport, a fake clock, a broker built on them, and a client on a socketpair. */
#ifndef MCPGW_BROKER_FAKE_H
#define MCPGW_BROKER_FAKE_H

#include <jansson.h>
#include <stdint.h>

#include "broker.h"
#include "core/settings.h"
#include "core/evloop.h"
#include "mcp/config.h"
#include "session.h"
#include "transport.h"

/* an MCP server in memory: what the session sent is kept in order; the
 * test answers, dies or refuses to connect through the functions below */
struct fake_transport {
	struct transport base;
	int opens, closes, stops, open_result; /* open_result: what open returns (default 1) */
	int connected;
	json_t *sent;           /* every message sent while connected, in order */
	const char *diagnostic; /* what diagnostic reports (the server's stderr line); NULL: none */
	char *block;            /* fake_say_block: the message's block, until take_message takes it */
	size_t block_size;
	int taken;      /* take_message handed it over */
	int parts_sent; /* messages sent in parts (send_parts), also kept in sent */
};

/* the whole rig: one broker over fake transports and a fake clock */
struct rig {
	int64_t now; /* the fake clock (ms) */
	struct settings set;
	struct cfg cfg;
	struct evloop *loop;
	struct broker *b;
	int client;         /* the test's end of a client connection, or -1 */
	char rbuf[1 << 16]; /* what the client received, not yet taken */
	size_t rlen;
};

/* rig_new: a broker for config (JSON text) with timeouts of tool_timeout_ms,
 * tool_retries, init 5 s, backoff max 10 s; not started. Asserts on failure. */
struct rig *rig_new(const char *config, long tool_timeout_ms, int tool_retries);
void rig_free(struct rig *r);
/* rig_pass: one pass of the loop without waiting */
void rig_pass(struct rig *r);
/* rig_advance: move the fake clock by ms, then pass */
void rig_advance(struct rig *r, int64_t ms);
/* rig_session / rig_fake: session i and its transport */
struct session *rig_session(struct rig *r, size_t i);
struct fake_transport *rig_fake(struct rig *r, size_t i);

/* fake_take: the first message sent with method (NULL: the first of any), removed; new reference or NULL */
json_t *fake_take(struct fake_transport *f, const char *method);
/* fake_say: the server sends the JSON text */
void fake_say(struct fake_transport *f, const char *json);
/* fake_say_block: the same from a malloc'd block (taken), which the session may take
 * over (transport take_message, as the stdio transport's reader hands its buffer);
 * f->taken says whether it did */
void fake_say_block(struct fake_transport *f, char *block);
/* fake_answer: the server answers request (borrowed) with result (JSON text) */
void fake_answer(struct fake_transport *f, const json_t *request, const char *result);
/* fake_undelivered: request (borrowed) never reached the server (a refused connection); fake_die follows */
void fake_undelivered(struct fake_transport *f, const json_t *request);
/* fake_whole_messages: f takes whole messages only (no send_parts, as the HTTP transports) */
void fake_whole_messages(struct fake_transport *f);
/* fake_die: the connection ends for why */
void fake_die(struct fake_transport *f, const char *why);
/* fake_handshake: answer initialize (tools capability) and tools/list with tools (a JSON array text) */
void fake_handshake(struct fake_transport *f, const char *tools);

/* client_connect: a client connection to the broker (r->client) */
void client_connect(struct rig *r);
/* client_send: write a JSON text line */
void client_send(struct rig *r, const char *json);
/* client_recv: the next line the broker sent (passes the loop while none
 * is there, up to 50 passes); new reference, or NULL */
json_t *client_recv(struct rig *r);
/* client_send_big: the client sends json[0..len) and its newline, however long (the broker reads between) */
void client_send_big(struct rig *r, const char *json, size_t len);

#endif
