/* client.c: the broker's clients on its unix socket: accept, one JSON-RPC message per line each way, dispatch to methods. */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/version.h"
#include "mcp/jsonrpc.h"
#include "mcp/jsonspan.h"
#include "sharedtext.h"

#define CLIENT_IOV 16 /* pieces of queued answers sent by one sendmsg */

struct wpart { /* a piece of an answer queued for a client: its own text, or one shared with others */
	struct sharedtext *t;
	size_t off, len; /* the bytes of t to send */
	struct wpart *next;
};

struct cli {
	struct clients *cl;
	int slot;
	int fd;
	unsigned gen;
	struct jr_reader rd;
	struct wpart *whead, *wtail; /* what is queued, in order */
	size_t wsent;                /* bytes of whead already sent */
	size_t wqueued;              /* bytes queued and not sent (CLIENT_WBUF_MAX) */
};

struct clients {
	struct evloop *loop;
	int max;
	size_t max_msg;
	const struct client_method *methods;
	size_t nmethods;
	void *ctx;
	int listen_fd;
	struct cli **slot; /* [max] */
	unsigned *gens;    /* [max]: a slot's generation, so a late answer never reaches its next client */
	int n;
	clients_closed_fn *closed; /* clients_on_close, may be NULL */
	void *closed_ctx;
};

/* a client is known outside as its slot and generation */
static uint64_t ref_of(int slot, unsigned gen)
{
	return (uint64_t)gen << 32 | (uint32_t)slot;
}

static struct cli *cli_get(const struct clients *cl, uint64_t ref)
{
	uint32_t slot = (uint32_t)ref;

	if (slot >= (uint32_t)cl->max || !cl->slot[slot] || cl->slot[slot]->gen != (unsigned)(ref >> 32))
		return NULL;
	return cl->slot[slot];
}

/* wpart_pop: the first queued part sent: dropped */
static void wpart_pop(struct cli *c)
{
	struct wpart *w = c->whead;

	c->whead = w->next;
	if (!c->whead)
		c->wtail = NULL;
	sharedtext_unref(w->t);
	free(w);
	c->wsent = 0;
}

static void cli_close(struct clients *cl, int slot)
{
	struct cli *c = cl->slot[slot];
	uint64_t ref;

	if (!c)
		return;
	ref = ref_of(slot, c->gen);
	evloop_unwatch(cl->loop, c->fd);
	close(c->fd);
	jr_reader_free(&c->rd);
	while (c->whead)
		wpart_pop(c);
	free(c);
	cl->slot[slot] = NULL;
	cl->n--;
	log_debug("client %d closed", slot);
	if (cl->closed)
		cl->closed(cl->closed_ctx, ref);
}

void clients_on_close(struct clients *cl, clients_closed_fn *fn, void *ctx)
{
	cl->closed = fn;
	cl->closed_ctx = ctx;
}

static void on_io(void *ctx, int fd, int events);

/* flush: write what is queued (up to CLIENT_IOV parts a system call); 0, or -1 when the client was closed */
static int flush(struct clients *cl, int slot)
{
	struct cli *c = cl->slot[slot];

	while (c->whead) {
		struct iovec iov[CLIENT_IOV];
		struct msghdr mh = { .msg_iov = iov };
		size_t k = 0;
		ssize_t n;

		for (const struct wpart *w = c->whead; w && k < CLIENT_IOV; w = w->next) {
			size_t skip = w == c->whead ? c->wsent : 0;

			iov[k++] = (struct iovec){ (char *)sharedtext_data(w->t) + w->off + skip, w->len - skip };
		}
		mh.msg_iovlen = k;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			cli_close(cl, slot);
			return -1;
		}
		c->wqueued -= (size_t)n;
		while (n > 0) {
			size_t m = c->whead->len - c->wsent < (size_t)n ? c->whead->len - c->wsent : (size_t)n;

			n -= (ssize_t)m;
			if ((c->wsent += m) == c->whead->len)
				wpart_pop(c);
		}
	}
	if (evloop_watch(cl->loop, c->fd, EVLOOP_READ | (c->whead ? EVLOOP_WRITE : 0), on_io, c) < 0) {
		log_warn("client %d: out of memory watching it; dropped", slot);
		cli_close(cl, slot);
		return -1;
	}
	return 0;
}

/* queue: parts[0..n) (their texts referenced; parts without one skipped) after what is
 * queued for c, all or none. 0, or -1 (past CLIENT_WBUF_MAX, ENOMEM) */
static int queue(struct cli *c, const struct sharedtext_slice *parts, size_t n)
{
	struct wpart *first = NULL, *last = NULL;
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += parts[i].t ? parts[i].len : 0;
	if (bytes > CLIENT_WBUF_MAX - c->wqueued)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct wpart *w;

		if (!parts[i].t || !parts[i].len)
			continue;
		if (!(w = malloc(sizeof *w))) {
			while (first) {
				w = first->next;
				sharedtext_unref(first->t);
				free(first);
				first = w;
			}
			return -1;
		}
		*w = (struct wpart){ .t = sharedtext_ref(parts[i].t), .off = parts[i].off, .len = parts[i].len };
		if (last)
			last->next = w;
		else
			first = w;
		last = w;
	}
	if (!first)
		return 0;
	if (c->wtail)
		c->wtail->next = first;
	else
		c->whead = first;
	c->wtail = last;
	c->wqueued += bytes;
	return 0;
}

/* send_parts: parts[0..n) (borrowed; those without a text skipped) queued for client to
 * as one answer; nomem (a part could not be made), a client that reads nothing
 * (CLIENT_WBUF_MAX) or ENOMEM closes it, so that it learns at once that its answer will
 * not come */
static void send_parts(struct clients *cl, uint64_t to, const struct sharedtext_slice *parts, size_t n, int nomem)
{
	struct cli *c = cli_get(cl, to);
	int slot = (int)(uint32_t)to;

	if (!c)
		return; /* the client left: the answer is dropped */
	if (nomem) {
		log_warn("client %d: out of memory writing its answer; dropped", slot);
		cli_close(cl, slot);
		return;
	}
	if (queue(c, parts, n) < 0) {
		log_warn("client %d: not reading its answers (or out of memory); dropped", slot);
		cli_close(cl, slot);
		return;
	}
	(void)flush(cl, slot);
}

/* whole: all of t as a part (t may be NULL) */
static struct sharedtext_slice whole(struct sharedtext *t)
{
	return (struct sharedtext_slice){ .t = t, .off = 0, .len = t ? sharedtext_len(t) : 0 };
}

void clients_send_parts(struct clients *cl, uint64_t to, const struct sharedtext_slice *parts, size_t n)
{
	send_parts(cl, to, parts, n, 0);
}

void clients_nomem(struct clients *cl, uint64_t to)
{
	send_parts(cl, to, NULL, 0, 1);
}

void clients_send_raw(struct clients *cl, uint64_t to, const char *line, size_t len)
{
	struct sharedtext *t = cli_get(cl, to) ? sharedtext_copy(line, len) : NULL;
	struct sharedtext_slice part = whole(t);

	send_parts(cl, to, &part, 1, !t);
	sharedtext_unref(t);
}

void clients_send_shared(struct clients *cl, uint64_t to, const char *pre, struct sharedtext *mid, const char *post)
{
	struct sharedtext *a, *z;
	struct sharedtext_slice parts[3];

	if (!cli_get(cl, to))
		return;
	a = sharedtext_copy(pre, strlen(pre));
	z = sharedtext_copy(post, strlen(post));
	parts[0] = whole(a);
	parts[1] = whole(mid);
	parts[2] = whole(z);
	send_parts(cl, to, parts, 3, !a || !z);
	sharedtext_unref(a);
	sharedtext_unref(z);
}

void clients_send(struct clients *cl, uint64_t to, const json_t *msg)
{
	buf_t b = BUF_INIT;
	struct sharedtext *t = NULL;
	struct sharedtext_slice part;

	if (!cli_get(cl, to))
		return;
	if (jr_append_line(&b, msg) == 0) {
		size_t len = b.len;

		t = sharedtext_take(buf_steal(&b), len);
	}
	buf_free(&b);
	part = whole(t);
	send_parts(cl, to, &part, 1, !t);
	sharedtext_unref(t);
}

static void reply(struct clients *cl, uint64_t to, const json_t *id, json_t *result)
{
	json_t *m = jr_result(id, result);

	if (m)
		clients_send(cl, to, m);
	json_decref(m);
}

static void reply_error(struct clients *cl, uint64_t to, const json_t *id, int code, const char *msg)
{
	json_t *m = jr_error(id, code, msg, NULL);

	if (m)
		clients_send(cl, to, m);
	json_decref(m);
}

static json_t *initialize_result(const json_t *params)
{
	const char *v = json_string_value(json_object_get(params, "protocolVersion"));

	return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s}}", "protocolVersion",
			 jr_mcp_version_supported(v) ? v : jr_mcp_versions[0], "capabilities", "tools", "listChanged",
			 0, "serverInfo", "name", "mcpgw-broker", "version", MCPGW_VERSION);
}

static void on_request(struct clients *cl, uint64_t from, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));
	const json_t *id = json_object_get(msg, "id");
	const json_t *params = json_object_get(msg, "params");

	for (size_t i = 0; i < cl->nmethods; i++) {
		if (!cl->methods[i].notification && strcmp(method, cl->methods[i].name) == 0) {
			cl->methods[i].fn(cl->ctx, from, id, params);
			return;
		}
	}
	if (strcmp(method, "ping") == 0)
		reply(cl, from, id, json_object());
	else if (strcmp(method, "initialize") == 0)
		reply(cl, from, id, initialize_result(params));
	else
		reply_error(cl, from, id, JR_METHOD_NOT_FOUND, "Method not found");
}

/* a large message read a member at a time (big_member, big_param) */
struct big {
	const char *text;
	json_t *msg;          /* its members but params.arguments, each parsed on its own */
	json_t *params;       /* msg's params when an object (borrowed from msg) */
	struct jsonspan args; /* params.arguments ({0, 0}: none) */
	int bad;              /* a member name twice (jansson refuses it: JSON_REJECT_DUPLICATES) */
	int nomem;
};

/* big_set: obj[key] = the value at v, parsed (checked already); a name too long to be
 * told (m: the member) is one no method reads: left out */
static int big_set(struct big *b, json_t *obj, const char *key, struct jsonspan m, struct jsonspan v)
{
	json_t *val;

	if (!*key && m.len && b->text[m.off + 1] != '"')
		return 0;
	if (json_object_get(obj, key))
		return b->bad = 1;
	if (!(val = jsonspan_load(b->text, v, JSON_REJECT_DUPLICATES)))
		return b->bad = 1; /* a repeated name deeper down */
	if (json_object_set_new(obj, key, val) < 0)
		return b->nomem = 1;
	return 0;
}

static int big_param(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct big *b = ctx;

	if (strcmp(key, "arguments") == 0) {
		if (b->args.len)
			return b->bad = 1;
		b->args = v;
		return 0;
	}
	return big_set(b, b->params, key, m, v);
}

static int big_member(void *ctx, const char *key, struct jsonspan m, struct jsonspan v)
{
	struct big *b = ctx;

	if (strcmp(key, "params") != 0 || b->text[v.off] != '{')
		return big_set(b, b->msg, key, m, v);
	if (json_object_get(b->msg, "params"))
		return b->bad = 1;
	if (!(b->params = json_object()) || json_object_set_new(b->msg, "params", b->params) < 0) {
		b->params = NULL;
		return b->nomem = 1;
	}
	return jsonspan_members(b->text, v, big_param, b) < 0 ? (b->nomem = 1) : (b->bad || b->nomem);
}

/* big_args: the large message's arguments (b->args) passed to method m's fn_text as a
 * slice of the client's message, taken over from its reader (no copy); without fn_text,
 * or when the block cannot be taken, they are parsed into params. 0 or -1 (ENOMEM) */
static int big_args(struct clients *cl, uint64_t from, const struct client_method *m, struct big *b, const json_t *id,
		    const char *line)
{
	struct cli *c = cli_get(cl, from);
	size_t size = 0;
	char *block = m && m->fn_text && c ? jr_reader_take(&c->rd, &size) : NULL;
	struct sharedtext *t = block ? sharedtext_take(block, size) : NULL;

	if (t) {
		struct sharedtext_slice args = { t, (size_t)(line - block) + b->args.off, b->args.len };

		m->fn_text(cl->ctx, from, id, b->params, &args);
		sharedtext_unref(t);
		return 0;
	}
	if (block) /* sharedtext_take freed it */
		return -1;
	if (big_set(b, b->params, "arguments", b->args, b->args) != 0)
		return -1;
	if (m)
		m->fn(cl->ctx, from, id, b->params);
	else
		on_request(cl, from, b->msg);
	return 0;
}

/* on_line: a client's message, checked as jansson parses it (jsonspan), then parsed a
 * member at a time, never as one tree (a tree costs several times its text, and the
 * hop is cheaper without it); its params.arguments left as text for a method that
 * takes them so (fn_text) */
static void on_line(struct clients *cl, uint64_t from, const char *line, size_t len)
{
	struct big b = { .text = line };
	struct jsonspan all = { 0, len };
	const struct client_method *m = NULL;
	const char *method;
	int rc;

	if (jsonspan_check(line, len) < 0) {
		reply_error(cl, from, NULL, JR_PARSE_ERROR, "Parse error");
		return;
	}
	while (all.off < len && strchr(" \t\r\n", line[all.off]))
		all.off++;
	while (len > all.off && strchr(" \t\r\n", line[len - 1]))
		len--;
	if (line[all.off] != '{') {
		reply_error(cl, from, NULL, JR_INVALID_REQUEST, "Invalid Request");
		return;
	}
	all.len = len - all.off;
	if (!(b.msg = json_object()) || (rc = jsonspan_members(line, all, big_member, &b)) < 0 || b.nomem) {
		log_warn("client %d: out of memory reading a message of %zu bytes", (int)(uint32_t)from, len);
		reply_error(cl, from, NULL, JR_INTERNAL_ERROR, "out of memory");
		json_decref(b.msg);
		return;
	}
	if (b.bad) { /* as jr_parse refuses it */
		reply_error(cl, from, NULL, JR_PARSE_ERROR, "Parse error");
		json_decref(b.msg);
		return;
	}
	switch (jr_classify(b.msg)) {
	case JR_NOTIFICATION: /* to a method that takes it (notifications/cancelled), else ignored */
		method = json_string_value(json_object_get(b.msg, "method"));
		for (size_t i = 0; i < cl->nmethods; i++)
			if (cl->methods[i].notification && strcmp(method, cl->methods[i].name) == 0) {
				cl->methods[i].fn(cl->ctx, from, NULL, json_object_get(b.msg, "params"));
				break;
			}
		break;
	case JR_REQUEST:
		if (!b.args.len) {
			on_request(cl, from, b.msg);
			break;
		}
		method = json_string_value(json_object_get(b.msg, "method"));
		for (size_t i = 0; i < cl->nmethods && !m; i++)
			if (!cl->methods[i].notification && strcmp(method, cl->methods[i].name) == 0)
				m = &cl->methods[i];
		if (big_args(cl, from, m, &b, json_object_get(b.msg, "id"), line) < 0)
			reply_error(cl, from, json_object_get(b.msg, "id"), JR_INTERNAL_ERROR, "out of memory");
		break;
	case JR_RESPONSE:
	case JR_ERROR_RESPONSE: break;
	default: reply_error(cl, from, NULL, JR_INVALID_REQUEST, "Invalid Request");
	}
	json_decref(b.msg);
}

static void on_read(struct clients *cl, int slot)
{
	char chunk[65536];

	for (int rounds = 0; rounds < 16; rounds++) {
		struct cli *c = cl->slot[slot];
		uint64_t ref;
		char *line;
		size_t len;
		ssize_t n;
		int rc;

		if (!c)
			return;
		ref = ref_of(slot, c->gen);
		n = recv(c->fd, chunk, sizeof chunk, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || jr_reader_feed(&c->rd, chunk, (size_t)n) < 0) {
			cli_close(cl, slot);
			return;
		}
		while ((rc = jr_reader_next(&c->rd, &line, &len)) != JR_READ_MORE) {
			if (rc != JR_READ_LINE) {
				log_warn("client %d: message over MCPGW_MAX_MESSAGE_BYTES; dropped", slot);
				reply_error(cl, ref, NULL, JR_INVALID_REQUEST, "Message too large");
				cli_close(cl, slot);
				return;
			}
			on_line(cl, ref, line, len);
			if (!cli_get(cl, ref))
				return;
		}
		if ((size_t)n < sizeof chunk)
			return; /* drained: poll says when more comes (one recv less per message) */
	}
}

static void on_io(void *ctx, int fd, int events)
{
	struct cli *c = ctx;
	struct clients *cl = c->cl;
	int slot = c->slot;

	(void)fd;
	if ((events & EVLOOP_WRITE) && flush(cl, slot) < 0)
		return;
	if (cl->slot[slot] && (events & EVLOOP_READ))
		on_read(cl, slot);
}

int clients_adopt(struct clients *cl, int fd)
{
	struct cli *c;
	int slot;

	for (slot = 0; slot < cl->max && cl->slot[slot]; slot++)
		;
	if (slot == cl->max || !(c = calloc(1, sizeof *c))) {
		log_warn("client refused: MCPGW_MAX_CLIENTS (%d) reached or out of memory", cl->max);
		return -1;
	}
	c->cl = cl;
	c->slot = slot;
	c->fd = fd;
	c->gen = ++cl->gens[slot];
	jr_reader_init(&c->rd, cl->max_msg);
	if (evloop_watch(cl->loop, fd, EVLOOP_READ, on_io, c) < 0) {
		jr_reader_free(&c->rd);
		free(c);
		return -1;
	}
	cl->slot[slot] = c;
	cl->n++;
	log_debug("client %d connected", slot);
	return 0;
}

static void on_accept(void *ctx, int listen_fd, int events)
{
	struct clients *cl = ctx;

	(void)events;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (clients_adopt(cl, fd) < 0)
			close(fd);
	}
}

int clients_listen(struct clients *cl, int fd)
{
	if (evloop_watch(cl->loop, fd, EVLOOP_READ, on_accept, cl) < 0)
		return -1;
	cl->listen_fd = fd;
	return 0;
}

void clients_unlisten(struct clients *cl)
{
	if (cl->listen_fd < 0)
		return;
	evloop_unwatch(cl->loop, cl->listen_fd);
	close(cl->listen_fd);
	cl->listen_fd = -1;
}

int clients_count(const struct clients *cl)
{
	return cl->n;
}

struct clients *clients_new(struct evloop *l, int max, size_t max_msg, const struct client_method *methods,
			    size_t nmethods, void *ctx)
{
	struct clients *cl = calloc(1, sizeof *cl);

	if (!cl)
		return NULL;
	*cl = (struct clients){ .loop = l,
				.max = max,
				.max_msg = max_msg,
				.methods = methods,
				.nmethods = nmethods,
				.ctx = ctx,
				.listen_fd = -1 };
	cl->slot = calloc((size_t)max, sizeof *cl->slot);
	cl->gens = calloc((size_t)max, sizeof *cl->gens);
	if (!cl->slot || !cl->gens) {
		free(cl->slot);
		free(cl->gens);
		free(cl);
		return NULL;
	}
	return cl;
}

void clients_free(struct clients *cl)
{
	if (!cl)
		return;
	for (int i = 0; i < cl->max; i++)
		cli_close(cl, i);
	clients_unlisten(cl);
	free(cl->slot);
	free(cl->gens);
	free(cl);
}
