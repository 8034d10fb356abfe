/* transport.h: one interface for every way the broker reaches an MCP server (stdio, Streamable HTTP, legacy SSE).
 *
 * A session (session.h) owns one transport for its whole life: the kind is
 * chosen once, when the session is made from the config entry (session.c,
 * the one place that reads the entry's transport kind), and nothing above
 * this interface asks which kind it holds. The session opens the transport
 * for each connection (every restart opens it again), sends whole JSON-RPC
 * messages through it, and closes it when the connection is over; the
 * transport reports up only through the events it was given (on_open,
 * on_message, on_closed), never by calling its session's functions.
 *
 * Where the next transports go: the MCP 2026-07-28 revision's transport is
 * one more implementation of transport_ops (beside transport_http.c); the
 * gateway's own /mcp endpoint, where mcpgw is the server, is the same
 * interface seen from the other side (a session of clients on a transport).
 * Tests put an in-memory transport here (tests/unit/broker_fake.c). */
#ifndef MCPGW_TRANSPORT_H
#define MCPGW_TRANSPORT_H

#include <jansson.h>
#include <stddef.h>

#include "core/settings.h"
#include "core/evloop.h"
#include "mcp/config.h"

struct sigwatch;
struct httphub;
struct sharedtext_slice;
struct transport;

/* what a transport needs from the daemon (borrowed for the transport's life) */
struct transport_env {
	struct evloop *loop;
	struct sigwatch *sig; /* stdio: children are reaped here (NULL: stdio cannot run) */
	struct httphub *hub;  /* remote: the shared libcurl multi (NULL: remote cannot run) */
	const struct settings *set;
};

/* how a transport reports up; ctx is its session. They are called from
 * the transport's own loop callbacks, never from inside a call the session
 * made into it, with one exception: send may report on_closed (see send). */
struct transport_events {
	/* the connection is up (after open returned 0): the lifecycle may begin */
	void (*on_open)(void *ctx);
	/* one JSON-RPC message from the server (not NUL-terminated) */
	void (*on_message)(void *ctx, const char *json, size_t len);
	/* the connection is gone for why; retry_now: connect again at once
	 * (a fallback to another mode, an expired session) rather than after a
	 * backoff. The session then calls close. */
	void (*on_closed)(void *ctx, const char *why, int retry_now);
	/* 1 while request id is unanswered (a resumable stream asks) */
	int (*is_pending)(void *ctx, long long id);
	/* request id never reached the server: the connection carrying it
	 * failed before any byte of it was sent (refused, no such host, TLS
	 * handshake). Reported before the on_closed that follows, so that the
	 * caller may send it again without repeating a side effect. Optional. */
	void (*on_undelivered)(void *ctx, long long id);
};

struct transport_ops {
	/* open: connect (spawn, first request, stream). 1 connected at once;
	 * 0 connecting (on_open follows); -1 failed, why says why */
	int (*open)(struct transport *t, char *why, size_t whylen);
	/* send: one message (borrowed). 0 queued; -1 not sent (the transport
	 * may report on_closed with the reason before returning) */
	int (*send)(struct transport *t, const json_t *msg);
	/* send_parts: one message given as parts[0..n) (borrowed; their texts referenced,
	 * not copied, until written; together one JSON-RPC message, the last part ending
	 * with the line's '\n'), after what was sent before: as send. Optional (NULL: the
	 * session parses the message and calls send). */
	int (*send_parts)(struct transport *t, const struct sharedtext_slice *parts, size_t n);
	/* forget: request id timed out: drop whatever still carries it */
	void (*forget)(struct transport *t, long long id);
	/* negotiated: the protocol version initialize agreed on (HTTP headers) */
	void (*negotiated)(struct transport *t, const char *version);
	/* established: the lifecycle is done (HTTP: open the optional GET stream) */
	void (*established)(struct transport *t);
	/* close: drop the connection now; no event follows */
	void (*close)(struct transport *t);
	/* stop: shut down politely. 0 closed now; 1 closing, on_closed follows */
	int (*stop)(struct transport *t);
	/* name: "stdio", "http" or "sse" (what status shows) */
	const char *(*name)(const struct transport *t);
	/* pid: the server's process, 0 when none */
	long (*pid)(const struct transport *t);
	/* diagnostic: the telling line the server left (its stderr), "" none */
	void (*diagnostic)(const struct transport *t, char *out, size_t outlen);
	/* destroy: close and free */
	void (*destroy)(struct transport *t);
	/* take_message: only inside on_message: the block holding the message being
	 * reported (its pointer stays valid: it is in it), handed over to be freed by
	 * the caller, *size its bytes; NULL when this transport cannot (then the caller
	 * copies what it keeps). Optional (NULL). */
	char *(*take_message)(struct transport *t, size_t *size);
};

/* the part every implementation's struct begins with */
struct transport {
	const struct transport_ops *ops;
	const struct transport_events *ev;
	void *ctx;
	const struct cfg_server *cfg;    /* borrowed */
	const struct transport_env *env; /* borrowed */
};

/* transport_new_fn: a transport for cfg reporting to ev with ctx (all
 * borrowed for its life); NULL on ENOMEM. Free with t->ops->destroy. The
 * implementations: transport_stdio_new (transport_stdio.h),
 * transport_http_new (transport_http.h); session.c picks one of them. */
typedef struct transport *transport_new_fn(const struct transport_env *env, const struct cfg_server *cfg,
					   const struct transport_events *ev, void *ctx);

#endif
