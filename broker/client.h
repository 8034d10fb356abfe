/* client.h: the broker's clients (responders, mcpgw-chat) on its unix socket: framing, slots, and dispatch of their requests to methods. */
#ifndef MCPGW_CLIENT_H
#define MCPGW_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/evloop.h"
#include "sharedtext.h"

#define CLIENT_WBUF_MAX (64u << 20) /* a client that reads nothing is dropped past this */

struct clients;

/* client_method_fn: request method from client from (id and params
 * borrowed); answer with clients_send(…, from, …) now or later */
typedef void client_method_fn(void *ctx, uint64_t from, const json_t *id, const json_t *params);

/* client_method_text_fn: the same for a message whose params hold
 * "arguments": params (borrowed) without them, args (borrowed) their JSON text as the
 * client sent it (checked as jansson parses it; a slice of the client's message, taken
 * over without a copy: keep it with sharedtext_ref, never a copy) */
typedef void client_method_text_fn(void *ctx, uint64_t from, const json_t *id, const json_t *params,
				   const struct sharedtext_slice *args);
struct client_method {
	const char *name;
	client_method_fn *fn;
	client_method_text_fn *fn_text; /* optional: without it a large message's arguments are parsed */
	int notification; /* 1: a notification's (fn gets id NULL and answers nothing), never a request's */
};

/* clients_new: up to max clients with messages of at most max_msg bytes;
 * requests go to methods[0..nmethods) (borrowed; called with ctx), besides
 * "ping" and "initialize", which are answered here; others get -32601.
 * Notifications go to the methods marked notification, others are ignored.
 * Every message is checked as jansson parses it (jsonspan) and parsed a
 * member at a time, never as one tree; its params.arguments are not parsed
 * when its method has fn_text (invalid JSON: -32700).
 * Free with clients_free. NULL on ENOMEM. */
struct clients *clients_new(struct evloop *l, int max, size_t max_msg, const struct client_method *methods,
			    size_t nmethods, void *ctx);
/* clients_free: close every client (and the listening socket) */
void clients_free(struct clients *cl);
/* clients_listen: accept clients on fd (listening, non-blocking; owned from now). 0 or -1 */
int clients_listen(struct clients *cl, int fd);
/* clients_unlisten: close the listening socket (a shutdown) */
void clients_unlisten(struct clients *cl);
/* clients_adopt: serve a connected, non-blocking socket (owned from now
 * when it succeeds) as a client. 0, or -1 (full, ENOMEM) */
int clients_adopt(struct clients *cl, int fd);
/* clients_send: queue msg (borrowed) for client to; dropped when it left.
 * When msg cannot be serialised (ENOMEM) the client is closed, so that it
 * learns at once that its answer will not come (it would wait in vain). */
void clients_send(struct clients *cl, uint64_t to, const json_t *msg);
/* clients_send_raw: queue a serialised line (with its '\n'; copied) for client to */
void clients_send_raw(struct clients *cl, uint64_t to, const char *line, size_t len);
/* clients_send_parts: queue parts[0..n) (borrowed; their texts referenced, not copied;
 * parts without a text skipped) for client to as one answer (the last ends with its
 * '\n'). Past CLIENT_WBUF_MAX, or out of memory, the client is closed. */
void clients_send_parts(struct clients *cl, uint64_t to, const struct sharedtext_slice *parts, size_t n);
/* clients_send_shared: queue for client to the line pre (copied), then mid (referenced,
 * not copied: many clients may hold one text; may be NULL), then post (copied, with the
 * line's '\n'). Out of memory, or past CLIENT_WBUF_MAX, the client is closed. */
void clients_send_shared(struct clients *cl, uint64_t to, const char *pre, struct sharedtext *mid, const char *post);
/* clients_nomem: the answer for client to could not be made (ENOMEM): the client is
 * closed, so that it learns at once that its answer will not come */
void clients_nomem(struct clients *cl, uint64_t to);
/* clients_closed_fn: client ref (as methods know it) is gone (closed by either side) */
typedef void clients_closed_fn(void *ctx, uint64_t ref);
/* clients_on_close: fn(ctx, ref) runs whenever a client is closed (NULL: nothing) */
void clients_on_close(struct clients *cl, clients_closed_fn *fn, void *ctx);
/* clients_count: connected clients */
int clients_count(const struct clients *cl);

#endif
