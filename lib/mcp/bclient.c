/* bclient.c: a responder's persistent, lazily connected JSON-RPC line connection to mcpgw-broker. */
#include "mcp/bclient.h"
#include "core/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "mcp/bcwire.h"
#include "mcp/jsonrpc.h"
#include "mcp/jsonspan.h"
#include "core/log.h"

/* bc_send has no timeout of its own: writing one request may take this long */
#define BC_SEND_TIMEOUT_MS 30000
#define BC_READ_CHUNK 65536
/* bound on requests in flight at once on one client */
#define BC_MAX_PENDING 4096
#define BC_CANCEL_MS 100 /* bound of writing a notifications/cancelled */

enum bc_pstate { BC_P_WAITING, BC_P_DONE, BC_P_FAILED };

/* one request in flight: answered (DONE), or failed with status (FAILED) */
struct bc_pending {
	long id;
	enum bc_pstate state;
	int status;
	int want_text; /* the result as text (bc_call_tool), not as a tree */
	json_t *result;
	json_t *error;
	char *text; /* want_text: the result's JSON text (NUL-terminated), text_len bytes */
	size_t text_len;
	struct bc_pending *next;
};

struct bclient {
	char *path;
	size_t max_message;
	int fd; /* -1: not connected */
	long next_id;
	struct jr_reader rd;
	struct bc_pending *pending;
	size_t npending;
	buf_t out;                 /* the line being sent */
	bc_no_broker_fn no_broker; /* may start a broker when none listens (bc_on_no_broker) */
	void *no_broker_ud;
	char caller[BC_CALLER_MAX]; /* bc_set_caller: _meta "mcpgw/caller" of each tools/call, "" none */
};

/* milliseconds left until deadline (0 when past), clamped for poll */
static int bc_left(long deadline)
{
	long left = deadline - clock_now_ms();

	if (left < 0)
		return 0;
	return left > 1000000000L ? 1000000000 : (int)left;
}

struct bclient *bc_new(const char *socket_path, size_t max_message_bytes)
{
	struct bclient *bc = calloc(1, sizeof *bc);

	if (!bc)
		return NULL;
	bc->path = strdup(socket_path ? socket_path : "");
	if (!bc->path) {
		free(bc);
		return NULL;
	}
	bc->max_message = max_message_bytes ? max_message_bytes : 16777216;
	bc->fd = -1;
	bc->next_id = 1;
	jr_reader_init(&bc->rd, bc->max_message);
	return bc;
}

static void bc_pending_free(struct bc_pending *p)
{
	json_decref(p->result);
	json_decref(p->error);
	free(p->text);
	free(p);
}

void bc_free(struct bclient *bc)
{
	if (!bc)
		return;
	if (bc->fd >= 0)
		close(bc->fd);
	while (bc->pending) {
		struct bc_pending *p = bc->pending;

		bc->pending = p->next;
		bc_pending_free(p);
	}
	jr_reader_free(&bc->rd);
	buf_free(&bc->out);
	free(bc->path);
	free(bc);
}

static struct bc_pending *bc_find(struct bclient *bc, long id)
{
	for (struct bc_pending *p = bc->pending; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void bc_unlink(struct bclient *bc, struct bc_pending *victim)
{
	for (struct bc_pending **pp = &bc->pending; *pp; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			bc->npending--;
			bc_pending_free(victim);
			return;
		}
	}
}

/* close the connection; every request still waiting fails with status */
static void bc_drop(struct bclient *bc, int status)
{
	if (bc->fd >= 0) {
		close(bc->fd);
		bc->fd = -1;
	}
	jr_reader_free(&bc->rd);
	jr_reader_init(&bc->rd, bc->max_message);
	for (struct bc_pending *p = bc->pending; p; p = p->next) {
		if (p->state == BC_P_WAITING) {
			p->state = BC_P_FAILED;
			p->status = status;
		}
	}
}

/* connect (non-blocking socket). BC_OK or BC_ECONNECT (errno set). */
static int bc_connect(struct bclient *bc)
{
	int fd = bcw_connect(bc->path);

	if (fd < 0)
		return BC_ECONNECT;
	bc->fd = fd;
	return BC_OK;
}

void bc_on_no_broker(struct bclient *bc, bc_no_broker_fn fn, void *ud)
{
	bc->no_broker = fn;
	bc->no_broker_ud = ud;
}

/* connect; when nobody listens and a no_broker hook is set, let it start a
 * broker, then connect once more. The hook's time extends *deadline. */
static int bc_connect_or_start(struct bclient *bc, long *deadline)
{
	int rc = bc_connect(bc), e = errno;
	long t0;

	if (rc == BC_OK || !bc->no_broker || (e != ENOENT && e != ECONNREFUSED))
		return rc;
	t0 = clock_now_ms();
	rc = bc->no_broker(bc->no_broker_ud);
	*deadline += clock_now_ms() - t0;
	return rc == 0 ? bc_connect(bc) : BC_ECONNECT;
}

/* check and dispatch every complete line buffered (bcw_next). BC_OK, BC_EPROTO or BC_ENOMEM */
static int bc_process(struct bclient *bc)
{
	for (;;) {
		struct bcw_answer a;
		struct bc_pending *p;
		char *line;
		int rc = bcw_next(&bc->rd, &line, &a);

		if (rc <= 0)
			return rc; /* 0 is BC_OK: nothing more buffered */
		p = bc_find(bc, a.id);
		rc = BC_OK;
		if (!p || p->state != BC_P_WAITING) {
			/* late answer to an abandoned request */
		} else if (a.error) {
			p->error = json_incref((json_t *)a.error);
		} else if (p->want_text) {
			if (!(p->text = malloc(a.result.len + 1)))
				rc = BC_ENOMEM;
			else {
				memcpy(p->text, line + a.result.off, a.result.len);
				p->text[a.result.len] = '\0';
				p->text_len = a.result.len;
			}
		} else if (!(p->result = jsonspan_load(line, a.result, JSON_REJECT_DUPLICATES))) {
			rc = BC_EPROTO; /* a repeated name (or ENOMEM) */
		}
		if (rc == BC_OK && p && p->state == BC_P_WAITING)
			p->state = BC_P_DONE;
		bcw_answer_free(&a);
		if (rc != BC_OK) {
			log_warn("broker: not a JSON-RPC response");
			return rc;
		}
	}
}

/* read what is available and dispatch it. BC_OK; on EOF, error or garbage
 * the connection is dropped and BC_EIO / BC_EPROTO / BC_ENOMEM returned. */
static int bc_read(struct bclient *bc)
{
	char chunk[BC_READ_CHUNK];
	ssize_t n;
	int rc;

	n = recv(bc->fd, chunk, sizeof chunk, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return BC_OK;
	if (n <= 0) {
		bc_drop(bc, BC_EIO);
		return BC_EIO;
	}
	if (jr_reader_feed(&bc->rd, chunk, (size_t)n) < 0) {
		bc_drop(bc, BC_ENOMEM);
		return BC_ENOMEM;
	}
	rc = bc_process(bc);
	if (rc != BC_OK)
		bc_drop(bc, rc);
	return rc;
}

/* before writing: is the connection still alive? Reads (and keeps) any
 * answers already there. 1 alive, 0 dead (then dropped). */
static int bc_alive(struct bclient *bc)
{
	struct pollfd pfd = { .fd = bc->fd, .events = POLLIN };

	for (int rounds = 0; rounds < 64 && bc->fd >= 0 && poll(&pfd, 1, 0) > 0; rounds++) {
		if (pfd.revents & (POLLERR | POLLNVAL)) {
			bc_drop(bc, BC_EIO);
			break;
		}
		/* POLLHUP with data still queued: read it first; EOF drops */
		if (bc_read(bc) != BC_OK || !(pfd.revents & POLLIN))
			break;
	}
	if (bc->fd >= 0 && (pfd.revents & POLLHUP))
		bc_drop(bc, BC_EIO);
	return bc->fd >= 0;
}

/* write out->data fully before deadline, reading answers meanwhile.
 * *sent_any tells whether any byte left. BC_OK, BC_EIO, BC_ETIMEOUT, ... */
static int bc_write_all(struct bclient *bc, long deadline, int *sent_any)
{
	size_t off = 0;

	*sent_any = 0;
	while (off < bc->out.len) {
		struct pollfd pfd = { .fd = bc->fd, .events = POLLOUT | POLLIN };
		ssize_t n = send(bc->fd, bc->out.data + off, bc->out.len - off, MSG_NOSIGNAL);
		int pr, rc;

		if (n > 0) {
			off += (size_t)n;
			*sent_any = 1;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return BC_EIO;
		pr = poll(&pfd, 1, bc_left(deadline));
		if (pr == 0)
			return BC_ETIMEOUT;
		if (pr < 0 && errno != EINTR)
			return BC_EIO;
		if (pr > 0 && (pfd.revents & POLLIN) && (rc = bc_read(bc)) != BC_OK)
			return rc;
	}
	return BC_OK;
}

void bc_set_caller(struct bclient *bc, const char *id)
{
	snprintf(bc->caller, sizeof bc->caller, "%s", id ? id : "");
}

/* send the request line in bc->out (id: its id); reconnect once if the connection proves
 * dead before any byte of it left (and start a broker once when none listens, extending
 * *deadline by the time that took). want_text: its result is kept as text. Returns the
 * id (>0) or a bc_status. */
static long bc_send_out(struct bclient *bc, long id, int want_text, long *deadline)
{
	struct bc_pending *p = calloc(1, sizeof *p);
	int rc = BC_ENOMEM, sent_any = 0, started = 0;

	if (!p)
		return BC_ENOMEM;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (bc->fd >= 0 && !bc_alive(bc))
			log_info("broker connection closed by the peer; reconnecting");
		if (bc->fd < 0 && (rc = started++ ? bc_connect(bc) : bc_connect_or_start(bc, deadline)) != BC_OK)
			goto out;
		rc = bc_write_all(bc, *deadline, &sent_any);
		if (rc == BC_OK || sent_any || rc == BC_ETIMEOUT || rc == BC_ENOMEM)
			break;
		bc_drop(bc, BC_EIO); /* nothing of this request left: safe to retry once */
	}
	if (bc->out.cap > BUF_KEEP_MAX) /* a large request's line is not kept once written */
		buf_free(&bc->out);
	if (rc != BC_OK) {
		if (sent_any || bc->fd >= 0)
			bc_drop(bc, BC_EIO); /* a half-written line poisons the stream */
		goto out;
	}
	p->id = id;
	p->state = BC_P_WAITING;
	p->want_text = want_text;
	p->next = bc->pending;
	bc->pending = p;
	bc->npending++;
	p = NULL;
	rc = BC_OK;
out:
	free(p);
	return rc == BC_OK ? id : rc;
}

/* send one request (params stolen) as bc_send_out does */
static long bc_send_until(struct bclient *bc, const char *method, json_t *params, long *deadline)
{
	long id;

	if (bc->npending >= BC_MAX_PENDING) {
		json_decref(params);
		return BC_ENOMEM;
	}
	id = bc->next_id++;
	buf_reset(&bc->out);
	if (bcw_request_line(&bc->out, id, method, params, bc->caller) < 0)
		return BC_ENOMEM;
	return bc_send_out(bc, id, 0, deadline);
}

/* bc_cancel_sent: tell the broker that the answer to request id is no longer
 * awaited (MCP 2025-11-25, basic/utilities/cancellation:
 * notifications/cancelled {requestId, reason}): a tools/call still waiting
 * for a place on its server is then never sent to it. Best effort, within
 * BC_CANCEL_MS; a line only half written drops the connection (the next
 * request reconnects). */
static void bc_cancel_sent(struct bclient *bc, long id)
{
	int sent_any = 0, rc;

	if (bc->fd < 0)
		return;
	buf_reset(&bc->out);
	rc = bcw_cancel_line(&bc->out, id, "no longer awaited") == 0
		     ? bc_write_all(bc, clock_now_ms() + BC_CANCEL_MS, &sent_any)
		     : BC_ENOMEM;
	if (rc != BC_OK && sent_any)
		bc_drop(bc, BC_EIO); /* a half-written line poisons the stream */
}

/* wait for id's answer until deadline; the entry is removed in every case. The result
 * goes to *result, or, for a request that wants it as text, to *text and *text_len */
static int bc_wait_until(struct bclient *bc, long id, long deadline, json_t **result, json_t **error, char **text,
			 size_t *text_len)
{
	struct bc_pending *p = bc_find(bc, id);
	int rc;

	if (!p)
		return BC_EIO; /* never sent, or already collected */
	while (p->state == BC_P_WAITING) {
		struct pollfd pfd = { .fd = bc->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, bc_left(deadline));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			bc_unlink(bc, p); /* abandoned: a late answer is discarded */
			bc_cancel_sent(bc, id);
			return BC_ETIMEOUT;
		}
		if (pr < 0 || (pfd.revents & (POLLERR | POLLNVAL)))
			bc_drop(bc, BC_EIO);
		else
			(void)bc_read(bc); /* a failure drops the connection and fails p */
	}
	rc = p->state == BC_P_DONE ? BC_OK : p->status;
	if (rc == BC_OK) {
		if (result)
			*result = p->result;
		else
			json_decref(p->result);
		*error = p->error;
		p->result = p->error = NULL;
		if (text) {
			*text = p->text;
			*text_len = p->text_len;
			p->text = NULL;
		}
	}
	bc_unlink(bc, p);
	return rc;
}

/* bc_wait (see bclient.h). The id is collected in every case: after
 * BC_ETIMEOUT it is forgotten and a late answer is discarded; an id that is
 * not in flight (never sent, or already collected) gives BC_EIO. */
int bc_wait(struct bclient *bc, long id, long timeout_ms, json_t **result, json_t **error)
{
	*result = *error = NULL;
	return bc_wait_until(bc, id, clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0), result, error, NULL, NULL);
}

int bc_poll(struct bclient *bc, long id, long timeout_ms)
{
	long deadline = clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct bc_pending *p = bc_find(bc, id);

	if (!p)
		return BC_EIO;
	while (p->state == BC_P_WAITING) {
		struct pollfd pfd = { .fd = bc->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, bc_left(deadline));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return 0; /* still awaited: p stays */
		if (pr < 0 || (pfd.revents & (POLLERR | POLLNVAL)))
			bc_drop(bc, BC_EIO);
		else
			(void)bc_read(bc);
	}
	return 1;
}

int bc_call(struct bclient *bc, const char *method, json_t *params, long timeout_ms, json_t **result, json_t **error)
{
	long deadline = clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	long id;

	*result = *error = NULL;
	id = bc_send_until(bc, method, params, &deadline);
	if (id < 0)
		return (int)id;
	return bc_wait_until(bc, id, deadline, result, error, NULL, NULL);
}

int bc_call_tool(struct bclient *bc, const char *tool, const char *args, size_t args_len, long timeout_ms,
		 char **result, size_t *result_len, json_t **error)
{
	long deadline = clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	long id;

	*result = NULL;
	*result_len = 0;
	*error = NULL;
	if (bc->npending >= BC_MAX_PENDING)
		return BC_ENOMEM;
	id = bc->next_id++;
	buf_reset(&bc->out);
	if (bcw_tool_line(&bc->out, id, tool, args, args_len, bc->caller) < 0)
		return BC_ENOMEM;
	id = bc_send_out(bc, id, 1, &deadline);
	if (id < 0)
		return (int)id;
	return bc_wait_until(bc, id, deadline, NULL, error, result, result_len);
}

long bc_send(struct bclient *bc, const char *method, json_t *params)
{
	long deadline = clock_now_ms() + BC_SEND_TIMEOUT_MS;

	return bc_send_until(bc, method, params, &deadline);
}
