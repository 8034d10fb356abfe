/* cli.c: the broker's clients (responders, mcpgw-chat) on its unix socket: framing and method dispatch. */
#include "broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

static struct cli *cli_get(int slot, unsigned gen)
{
	if (slot < 0 || slot >= B.set.max_clients || !B.clis[slot] || B.clis[slot]->gen != gen)
		return NULL;
	return B.clis[slot];
}

int cli_adopt(int fd)
{
	struct cli *c;
	int slot;

	for (slot = 0; slot < B.set.max_clients && B.clis[slot]; slot++)
		;
	if (slot == B.set.max_clients || !(c = calloc(1, sizeof *c))) {
		log_warn("client refused: MCPGW_MAX_CLIENTS (%d) reached or out of memory", B.set.max_clients);
		return -1;
	}
	c->fd = fd;
	c->gen = ++B.cli_gens[slot];
	jr_reader_init(&c->rd, B.set.max_message_bytes);
	B.clis[slot] = c;
	B.nclis++;
	log_debug("client %d connected", slot);
	return slot;
}

void cli_accept(int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (cli_adopt(fd) < 0)
			close(fd);
	}
}

void cli_close(int slot)
{
	struct cli *c = B.clis[slot];

	if (!c)
		return;
	close(c->fd);
	jr_reader_free(&c->rd);
	buf_free(&c->wbuf);
	free(c);
	B.clis[slot] = NULL;
	B.nclis--;
	log_debug("client %d closed", slot);
}

void cli_on_write(int slot)
{
	struct cli *c = B.clis[slot];

	while (c && c->wbuf.len) {
		ssize_t n = send(c->fd, c->wbuf.data, c->wbuf.len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			cli_close(slot);
			return;
		}
		buf_consume(&c->wbuf, (size_t)n);
	}
}

void cli_send_raw(int slot, unsigned gen, const char *line, size_t len)
{
	struct cli *c = cli_get(slot, gen);

	if (!c)
		return; /* the client left: the answer is dropped */
	if (c->wbuf.len + len > CLI_WBUF_MAX || buf_append(&c->wbuf, line, len) < 0) {
		log_warn("client %d: not reading its answers; dropped", slot);
		cli_close(slot);
		return;
	}
	cli_on_write(slot);
}

void cli_send(int slot, unsigned gen, const json_t *msg)
{
	buf_t b = BUF_INIT;

	if (jr_append_line(&b, msg) == 0)
		cli_send_raw(slot, gen, b.data, b.len);
	buf_free(&b);
}

static void reply(int slot, unsigned gen, const json_t *id, json_t *result)
{
	json_t *m = jr_result(id, result);

	if (m)
		cli_send(slot, gen, m);
	json_decref(m);
}

static void reply_error(int slot, unsigned gen, const json_t *id, int code, const char *msg)
{
	json_t *m = jr_error(id, code, msg, NULL);

	if (m)
		cli_send(slot, gen, m);
	json_decref(m);
}

/* tools/list: the cached, pre-serialised result framed with the client's id.
 * A client that already holds generation N (params._meta["mcpgw/ifGeneration"])
 * gets {"tools":null,"_meta":{"mcpgw/generation":N,"mcpgw/unchanged":true}}. */
static void reply_tools_list(int slot, unsigned gen, const json_t *id, const json_t *params)
{
	const json_t *have = json_object_get(json_object_get(params, "_meta"), "mcpgw/ifGeneration");
	char *idtxt = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
	char unchanged[128];
	buf_t b = BUF_INIT;
	const char *result = B.tools_result ? B.tools_result : "{\"tools\":[]}";

	if (json_is_integer(have) && json_integer_value(have) == B.generation && B.tools_result) {
		snprintf(unchanged, sizeof unchanged,
			 "{\"tools\":null,\"_meta\":{\"mcpgw/generation\":%lld,\"mcpgw/unchanged\":true}}",
			 (long long)B.generation);
		result = unchanged;
	}
	if (idtxt && buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n", idtxt, result) == 0)
		cli_send_raw(slot, gen, b.data, b.len);
	free(idtxt);
	buf_free(&b);
}

static json_t *initialize_result(const json_t *params)
{
	const char *v = json_string_value(json_object_get(params, "protocolVersion"));

	return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s}}", "protocolVersion",
			 jr_mcp_version_supported(v) ? v : jr_mcp_versions[0], "capabilities", "tools", "listChanged", 0,
			 "serverInfo", "name", "mcpgw-broker", "version", MCPGW_VERSION);
}

/* mcpgw/sessionGet {keys:[...]} -> {sessions:{key: messages}} for the keys found */
static json_t *session_get(const json_t *params)
{
	json_t *out = json_object(), *k;
	size_t i;

	json_array_foreach(json_object_get(params, "keys"), i, k) {
		json_t *m;

		if (i >= 256 || !json_is_string(k) || !B.reg)
			break;
		if ((m = registry_session_get(B.reg, json_string_value(k))))
			json_object_set_new(out, json_string_value(k), m);
	}
	return json_pack("{s:o}", "sessions", out ? out : json_object());
}

/* mcpgw/sessionPut {key, messages, ttl_s} -> {} */
static void session_put(int slot, unsigned gen, const json_t *id, const json_t *params)
{
	static unsigned puts;
	const char *key = json_string_value(json_object_get(params, "key"));
	const json_t *msgs = json_object_get(params, "messages");
	json_int_t ttl = json_integer_value(json_object_get(params, "ttl_s"));

	if (!key || !*key || !json_is_array(msgs) || ttl <= 0) {
		reply_error(slot, gen, id, JR_INVALID_PARAMS, "sessionPut needs key, messages (array) and ttl_s > 0");
		return;
	}
	if (!B.reg || registry_session_put(B.reg, key, msgs, (long)ttl) < 0) {
		reply_error(slot, gen, id, JR_INTERNAL_ERROR, B.reg ? registry_errmsg(B.reg) : "no registry");
		return;
	}
	if (++puts % 100 == 1 && registry_session_prune(B.reg) < 0)
		log_warn("registry: pruning sessions: %s", registry_errmsg(B.reg));
	reply(slot, gen, id, json_object());
}

static void on_request(int slot, unsigned gen, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));
	const json_t *id = json_object_get(msg, "id");
	const json_t *params = json_object_get(msg, "params");

	if (strcmp(method, "tools/call") == 0)
		call_start(slot, gen, id, params);
	else if (strcmp(method, "tools/list") == 0)
		reply_tools_list(slot, gen, id, params);
	else if (strcmp(method, "mcpgw/sessionGet") == 0)
		reply(slot, gen, id, session_get(params));
	else if (strcmp(method, "mcpgw/sessionPut") == 0)
		session_put(slot, gen, id, params);
	else if (strcmp(method, "ping") == 0)
		reply(slot, gen, id, json_object());
	else if (strcmp(method, "mcpgw/status") == 0)
		reply(slot, gen, id, broker_status());
	else if (strcmp(method, "initialize") == 0)
		reply(slot, gen, id, initialize_result(params));
	else
		reply_error(slot, gen, id, JR_METHOD_NOT_FOUND, "Method not found");
}

static void on_line(int slot, unsigned gen, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *msg = jr_parse(line, len, &jerr);

	if (!msg) {
		reply_error(slot, gen, NULL, JR_PARSE_ERROR, "Parse error");
		return;
	}
	switch (jr_classify(msg)) {
	case JR_REQUEST:
		on_request(slot, gen, msg);
		break;
	case JR_NOTIFICATION:
	case JR_RESPONSE:
	case JR_ERROR_RESPONSE:
		break;
	default:
		reply_error(slot, gen, NULL, JR_INVALID_REQUEST, "Invalid Request");
	}
	json_decref(msg);
}

void cli_on_read(int slot)
{
	char chunk[65536];

	for (int rounds = 0; rounds < 16; rounds++) {
		struct cli *c = B.clis[slot];
		unsigned gen;
		char *line;
		size_t len;
		ssize_t n;
		int rc;

		if (!c)
			return;
		gen = c->gen;
		n = recv(c->fd, chunk, sizeof chunk, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || jr_reader_feed(&c->rd, chunk, (size_t)n) < 0) {
			cli_close(slot);
			return;
		}
		while ((rc = jr_reader_next(&c->rd, &line, &len)) != JR_READ_MORE) {
			if (rc != JR_READ_LINE) {
				log_warn("client %d: message over MCPGW_MAX_MESSAGE_BYTES; dropped", slot);
				reply_error(slot, gen, NULL, JR_INVALID_REQUEST, "Message too large");
				cli_close(slot);
				return;
			}
			on_line(slot, gen, line, len);
			if (!cli_get(slot, gen))
				return;
		}
	}
}
