/* srv.c: one MCP server over stdio: spawn, lifecycle, listing, supervision with backoff, shutdown. */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errtail.h"
#include "core/log.h"
#include "core/progpath.h"

extern char **environ;

static const char *const state_names[] = { "stopped", "starting", "ready", "backoff", "disabled", "stopping" };

const char *srv_state_name(enum srv_state st)
{
	return state_names[st];
}

static uint64_t fnv_add(uint64_t h, const char *p)
{
	for (const unsigned char *q = (const unsigned char *)p; q && *q; q++)
		h = (h ^ *q) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL; /* separator: ("ab","c") != ("a","bc") */
}

/* srv_fingerprint: FNV-1a 64 over the parts of the entry that decide what the server is */
static void srv_fingerprint(struct srv *s)
{
	const struct cfg_server *c = s->cfg;
	uint64_t h = fnv_add(fnv_add(fnv_add(1469598103934665603ULL, c->command), c->url), c->cwd);

	for (size_t i = 0; i < c->nargs; i++)
		h = fnv_add(h, c->args[i]);
	for (size_t i = 0; i < c->nenv; i++)
		h = fnv_add(h, c->env[i]);
	for (size_t i = 0; i < c->nheaders; i++)
		h = fnv_add(h, c->headers[i]);
	snprintf(s->fingerprint, sizeof s->fingerprint, "%016llx", (unsigned long long)h);
}

void srv_init(struct srv *s, struct cfg_server *cfg, int idx)
{
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->idx = idx;
	s->in_fd = s->out_fd = s->err_fd = -1;
	s->next_id = 1;
	s->state = cfg->disabled ? SRV_DISABLED : SRV_STOPPED;
	s->since_ms = clock_now_ms();
	jr_reader_init(&s->rd, B.set.max_message_bytes);
	srv_fingerprint(s);
	if (B.reg && !cfg->disabled)
		s->tools = registry_load_tools(B.reg, cfg->name, s->fingerprint);
}

static void srv_set_state(struct srv *s, enum srv_state st)
{
	if (s->state == st)
		return;
	log_info("server %s: %s -> %s", s->cfg->name, srv_state_name(s->state), srv_state_name(st));
	s->state = st;
	s->since_ms = clock_now_ms();
	broker_save_server(s);
	catalog_states_changed(); /* tools/list names the servers that are not ready */
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* errtail_add: keep the last SRV_ERRTAIL bytes of stderr */
static void errtail_add(struct srv *s, const char *p, size_t n)
{
	if (n >= SRV_ERRTAIL) {
		p += n - (SRV_ERRTAIL - 1);
		n = SRV_ERRTAIL - 1;
	}
	if (s->errtail_len + n >= SRV_ERRTAIL) {
		size_t drop = s->errtail_len + n - (SRV_ERRTAIL - 1);
		memmove(s->errtail, s->errtail + drop, s->errtail_len - drop);
		s->errtail_len -= drop;
	}
	memcpy(s->errtail + s->errtail_len, p, n);
	s->errtail_len += n;
	s->errtail[s->errtail_len] = '\0';
}

/* srv_next_backoff: how long to wait before the next start. A server that
 * was ready for SRV_HEALTHY_MS restarts after SRV_RESTART_BACKOFF_MS; one
 * that never got ready (did not spawn, exited or failed during initialize)
 * waits SRV_START_BACKOFF_MS, then twice as long each time; one that was
 * ready only briefly doubles its last wait. All capped at
 * MCPGW_RESTART_BACKOFF_MAX. */
static long srv_next_backoff(const struct srv *s, int was_ready)
{
	long b = s->backoff_ms, max = B.set.restart_backoff_max_ms;

	if (was_ready && (b == 0 || clock_now_ms() - s->since_ms > SRV_HEALTHY_MS))
		b = SRV_RESTART_BACKOFF_MS;
	else if (!was_ready && b < SRV_START_BACKOFF_MS)
		b = SRV_START_BACKOFF_MS;
	else
		b = b > max / 2 ? max : b * 2;
	return b < max ? b : max;
}

/* fmt_delay: "0.1 s", "4 s", "5 min" */
static const char *fmt_delay(char *out, size_t outlen, long ms)
{
	if (ms < 1000)
		snprintf(out, outlen, "%.1f s", (double)ms / 1000);
	else if (ms >= 120000 && ms % 60000 == 0)
		snprintf(out, outlen, "%ld min", ms / 60000);
	else
		snprintf(out, outlen, "%ld s", (ms + 500) / 1000);
	return out;
}

/* srv_down: the connection is gone (died, failed, or stopped). In-flight
 * calls are failed or requeued, the child is killed if still there (remote:
 * its transfers aborted), and a restart is scheduled unless the broker stops.
 * last_error says why, with the telling line of the server's stderr (the
 * next attempt's time is its own field, next_retry_in_ms of the status; the
 * log line says it too). */
void srv_down(struct srv *s, const char *why)
{
	char tail[ERRTAIL_LINE_MAX + 8], delay[32] = "";
	int was_ready = s->state == SRV_READY, stopping = B.stopping || s->state == SRV_STOPPING;

	errtail_pick(s->errtail, s->errtail_len, tail, sizeof tail);
	if (*tail)
		snprintf(s->last_error, sizeof s->last_error, "%s (stderr: %s)", why, tail);
	else
		snprintf(s->last_error, sizeof s->last_error, "%s", why);
	if (!stopping) {
		s->backoff_ms = srv_next_backoff(s, was_ready);
		if (was_ready)
			s->fail_streak = 0;
		else
			s->fail_streak++;
		fmt_delay(delay, sizeof delay, s->backoff_ms);
	}
	if (stopping)
		log_info("server %s: %s", s->cfg->name, s->last_error);
	else if (s->fail_streak > 1)
		log_warn("server %s: %s; retrying in %s (failed %d times in a row)", s->cfg->name, s->last_error, delay,
			 s->fail_streak);
	else
		log_warn("server %s: %s; retrying in %s", s->cfg->name, s->last_error, delay);
	close_fd(&s->in_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	buf_reset(&s->wbuf);
	jr_reader_free(&s->rd);
	jr_reader_init(&s->rd, B.set.max_message_bytes);
	buf_reset(&s->errline);
	json_decref(s->list_accum);
	s->list_accum = NULL;
	s->listing = s->relist = 0;
	if (s->pid > 0)
		kill(-s->pid, SIGKILL);
	if (s->rt)
		remote_close(s);
	while (s->pending) {
		struct preq *p = s->pending;

		s->pending = p->next;
		if (p->kind == PREQ_CALL && p->call)
			call_on_transport_failure(p->call, s->last_error);
		free(p);
	}
	if (stopping) {
		srv_set_state(s, SRV_STOPPED);
		return;
	}
	if (s->fail_streak > 0)
		call_server_failed(s);
	s->restarts++;
	srv_set_state(s, SRV_BACKOFF);
	s->deadline_ms = clock_now_ms() + s->backoff_ms;
	if (was_ready)
		catalog_rebuild();
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* build_env: environ plus the configured KEY=VALUE entries (which win). Caller frees the array only. */
static char **build_env(const struct cfg_server *c)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + c->nenv + 1, sizeof *env);
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t klen = strcspn(environ[i], "=");
		size_t j;

		for (j = 0; j < c->nenv; j++)
			if (strncmp(c->env[j], environ[i], klen) == 0 && c->env[j][klen] == '=')
				break;
		if (j == c->nenv)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < c->nenv; j++)
		env[k++] = c->env[j];
	env[k] = NULL;
	return env;
}

/* spawn: start the child in its own process group with three pipes, its
 * command found by progpath_resolve. 0, or -1 with why set. */
static int spawn(struct srv *s, char *why, size_t whylen)
{
	const struct cfg_server *c = s->cfg;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	char **argv = NULL, **env = NULL, dir[PROGPATH_MAX], path[PROGPATH_MAX];

	if (progpath_server(c->command, c->cwd, B.set.home, path, sizeof path, dir, sizeof dir, why, whylen) != 0)
		return -1;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		rc = errno;
		goto out_pipes;
	}
	argv = calloc(c->nargs + 2, sizeof *argv);
	env = build_env(c);
	if (!argv || !env) {
		rc = ENOMEM;
		goto out_pipes;
	}
	argv[0] = c->command;
	for (size_t i = 0; i < c->nargs; i++)
		argv[i + 1] = c->args[i];
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&def);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	rc = posix_spawn(&s->pid, path, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		s->pid = 0;
		goto out_pipes;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	s->in_fd = in[1];
	s->out_fd = out[0];
	s->err_fd = err[0];
	if (set_nonblock(s->in_fd) < 0 || set_nonblock(s->out_fd) < 0 || set_nonblock(s->err_fd) < 0)
		log_warn("server %s: fcntl: %s", c->name, strerror(errno));
	free(argv);
	free(env);
	return 0;
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) close(in[i]);
		if (out[i] >= 0) close(out[i]);
		if (err[i] >= 0) close(err[i]);
	}
	free(argv);
	free(env);
	snprintf(why, whylen, "cannot run '%.200s' (%.600s): %s", c->command, path, strerror(rc));
	return -1;
}

static json_t *init_params(void)
{
	return json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", jr_mcp_versions[0], "capabilities",
			 "clientInfo", "name", "mcpgw", "version", MCPGW_VERSION);
}

void srv_begin(struct srv *s)
{
	if (srv_send_request(s, "initialize", init_params(), PREQ_INIT, NULL) < 0)
		srv_down(s, "cannot send initialize");
}

void srv_start(struct srv *s)
{
	char why[sizeof s->last_error];

	if (s->state == SRV_DISABLED || B.stopping)
		return;
	s->errtail_len = 0;
	s->errtail[0] = '\0';
	s->proto[0] = '\0';
	srv_set_state(s, SRV_STARTING);
	s->deadline_ms = clock_now_ms() + B.set.init_timeout_ms;
	s->eof_deadline_ms = 0;
	if (s->cfg->transport != CFG_STDIO) {
		if (remote_start(s) < 0) {
			srv_down(s, "out of memory starting the connection");
			return;
		}
		log_info("server %s: connecting to %s (%s)", s->cfg->name, s->cfg->url, remote_mode_name(s));
		return;
	}
	if (spawn(s, why, sizeof why) < 0) {
		srv_down(s, why);
		return;
	}
	log_info("server %s: started pid %ld: %s", s->cfg->name, (long)s->pid, s->cfg->command);
	broker_save_server(s);
	srv_begin(s);
}

void srv_restart_now(struct srv *s)
{
	if (s->state == SRV_STARTING || s->state == SRV_READY)
		srv_down(s, "reconnecting");
	if (s->state == SRV_BACKOFF)
		s->deadline_ms = clock_now_ms();
}

int srv_has_pending(const struct srv *s, json_int_t id)
{
	for (const struct preq *p = s->pending; p; p = p->next)
		if (p->id == id)
			return 1;
	return 0;
}

/* write_out: push wbuf into the child's stdin as far as it goes. -1 when
 * that took the server down (srv_down), else 0 (also when its stdin turned
 * out closed: the reason then comes from its exit, see below) */
static int write_out(struct srv *s)
{
	while (s->wbuf.len > 0 && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->wbuf.data, s->wbuf.len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno == EPIPE && s->pid > 0) {
			/* it closed its stdin, mostly by exiting: its exit status and the
			 * last words on its stderr (srv_on_reaped) tell why far better
			 * than this write; one that lives on is taken down after the
			 * grace a closed stdout gets (srv_tick) */
			close_fd(&s->in_fd);
			buf_reset(&s->wbuf);
			if (!s->eof_deadline_ms)
				s->eof_deadline_ms = clock_now_ms() + SRV_STOP_GRACE_MS;
			return 0;
		}
		if (n <= 0) {
			srv_down(s, "its stdin was closed");
			return -1;
		}
		buf_consume(&s->wbuf, (size_t)n);
	}
	return 0;
}

static int srv_send(struct srv *s, const json_t *msg)
{
	if (s->rt) {
		const json_t *id = json_object_get(msg, "id");
		buf_t line = BUF_INIT;
		int rc = jr_append_line(&line, msg) < 0 ? -1
			 : remote_send(s, line.data, line.len,
				       json_object_get(msg, "method") && json_is_integer(id) ? json_integer_value(id) : -1);

		buf_free(&line);
		return rc;
	}
	if (s->in_fd < 0 || jr_append_line(&s->wbuf, msg) < 0)
		return -1;
	if (s->wbuf.len > SRV_WBUF_MAX) {
		srv_down(s, "it does not read its stdin (64 MiB queued for it)");
		return -1;
	}
	return write_out(s);
}

json_int_t srv_send_request(struct srv *s, const char *method, json_t *params, enum preq_kind kind, struct call *c)
{
	struct preq *p = calloc(1, sizeof *p);
	json_t *msg;
	json_int_t id = s->next_id++;

	msg = jr_request(id, method, params);
	if (!p || !msg || srv_send(s, msg) < 0) {
		free(p);
		json_decref(msg);
		return -1;
	}
	json_decref(msg);
	p->id = id;
	p->kind = kind;
	p->call = c;
	p->next = s->pending;
	s->pending = p;
	return id;
}

int srv_send_notification(struct srv *s, const char *method, json_t *params)
{
	json_t *msg = jr_notification(method, params);
	int rc = msg ? srv_send(s, msg) : -1;

	json_decref(msg);
	return rc;
}

void srv_forget_request(struct srv *s, json_int_t id)
{
	if (s->rt)
		remote_forget(s, id);
	for (struct preq **pp = &s->pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct preq *p = *pp;

			*pp = p->next;
			free(p);
			return;
		}
	}
}

void srv_on_stdin(struct srv *s)
{
	(void)write_out(s);
}

static struct preq *take_preq(struct srv *s, const json_t *idj)
{
	json_int_t id;

	if (!json_is_integer(idj))
		return NULL;
	id = json_integer_value(idj);
	for (struct preq **pp = &s->pending; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct preq *p = *pp;

			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

/* filter_tools: keep valid Tool objects the config lets through */
static json_t *filter_tools(struct srv *s, json_t *tools)
{
	json_t *out = json_array(), *seen = json_object(), *t;
	size_t i;

	if (!out || !seen) {
		json_decref(out);
		json_decref(seen);
		return NULL;
	}
	json_array_foreach(tools, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));

		if (!json_is_object(t) || !name || !*name) {
			log_warn("server %s: tools/list entry %zu has no name; skipped", s->cfg->name, i);
			continue;
		}
		if (json_object_get(seen, name)) {
			log_warn("server %s: tool %s listed twice; the first is kept", s->cfg->name, name);
			continue;
		}
		json_object_set_new(seen, name, json_true());
		if (!cfg_tool_allowed(s->cfg, name)) {
			log_debug("server %s: tool %s filtered out by config", s->cfg->name, name);
			continue;
		}
		if (json_array_size(out) >= SRV_MAX_TOOLS) {
			log_warn("server %s: more than %d tools; the rest are ignored", s->cfg->name, SRV_MAX_TOOLS);
			break;
		}
		json_array_append(out, t);
	}
	json_decref(seen);
	return out;
}

static void list_tools(struct srv *s, const char *cursor)
{
	json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;

	if (!s->listing)
		s->listing = 1;
	if (srv_send_request(s, "tools/list", params, PREQ_LIST, NULL) < 0)
		srv_down(s, "cannot send tools/list");
}

static void become_ready(struct srv *s)
{
	srv_set_state(s, SRV_READY);
	if (s->rt)
		remote_ready(s);
	s->fail_streak = 0;
	s->last_error[0] = '\0';
	broker_save_server(s);
	catalog_rebuild();
	call_server_ready(s);
}

static void on_list_result(struct srv *s, json_t *result)
{
	json_t *tools = json_object_get(result, "tools");
	const char *cursor = json_string_value(json_object_get(result, "nextCursor"));

	if (!json_is_array(tools)) {
		log_warn("server %s: tools/list result has no tools array", s->cfg->name);
		tools = NULL;
	}
	if (!s->list_accum)
		s->list_accum = json_array();
	if (tools && s->list_accum)
		json_array_extend(s->list_accum, tools);
	if (cursor && *cursor && s->listing < SRV_LIST_MAX_PAGES) {
		s->listing++;
		list_tools(s, cursor);
		return;
	}
	s->listing = 0;
	json_decref(s->tools);
	s->tools = filter_tools(s, s->list_accum ? s->list_accum : json_array());
	json_decref(s->list_accum);
	s->list_accum = NULL;
	log_info("server %s: %zu tools", s->cfg->name, json_array_size(s->tools));
	if (s->state == SRV_STARTING)
		become_ready(s);
	else
		catalog_rebuild(); /* the catalog borrows names from s->tools: rebuild at once */
	if (s->relist && s->state == SRV_READY) {
		s->relist = 0;
		list_tools(s, NULL);
	}
}

static void on_init_result(struct srv *s, json_t *result)
{
	const char *v = json_string_value(json_object_get(result, "protocolVersion"));
	char why[200];

	if (!jr_mcp_version_supported(v)) {
		snprintf(why, sizeof why, "unsupported protocol version '%s'", v ? v : "(none)");
		srv_down(s, why);
		return;
	}
	snprintf(s->proto, sizeof s->proto, "%s", v);
	json_decref(s->server_info);
	s->server_info = json_incref(json_object_get(result, "serverInfo"));
	/* the initialize result must arrive before notifications/initialized */
	if (srv_send_notification(s, "notifications/initialized", NULL) < 0) {
		srv_down(s, "cannot send notifications/initialized");
		return;
	}
	if (json_object_get(json_object_get(result, "capabilities"), "tools")) {
		list_tools(s, NULL);
	} else {
		json_decref(s->tools);
		s->tools = json_array();
		become_ready(s);
	}
}

static void on_response(struct srv *s, json_t *msg, enum jr_kind kind)
{
	struct preq *p = take_preq(s, json_object_get(msg, "id"));
	json_t *err = json_object_get(msg, "error");
	char why[300];

	if (!p) {
		log_debug("server %s: answer to an unknown id; ignored", s->cfg->name);
		return;
	}
	if (p->kind == PREQ_CALL) {
		call_on_result(p->call, msg);
	} else if (kind == JR_ERROR_RESPONSE) {
		snprintf(why, sizeof why, "%s failed: %s", p->kind == PREQ_INIT ? "initialize" : "tools/list",
			 json_string_value(json_object_get(err, "message")) ?: "error");
		if (p->kind == PREQ_LIST && s->state == SRV_READY) {
			log_warn("server %s: %s; keeping the previous tool list", s->cfg->name, why);
			s->listing = 0;
		} else {
			free(p);
			srv_down(s, why);
			return;
		}
	} else if (p->kind == PREQ_INIT) {
		on_init_result(s, json_object_get(msg, "result"));
	} else {
		on_list_result(s, json_object_get(msg, "result"));
	}
	free(p);
}

/* on_server_request: answer what a server asks of us: ping, else -32601 */
static void on_server_request(struct srv *s, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));
	const json_t *id = json_object_get(msg, "id");
	json_t *reply;

	if (strcmp(method, "ping") == 0) {
		reply = jr_result(id, json_object());
	} else {
		log_debug("server %s: asks %s; not supported", s->cfg->name, method);
		reply = jr_error(id, JR_METHOD_NOT_FOUND, "Method not supported by mcpgw", NULL);
	}
	if (reply)
		srv_send(s, reply);
	json_decref(reply);
}

static void on_notification(struct srv *s, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));

	if (strcmp(method, "notifications/tools/list_changed") == 0) {
		log_info("server %s: tool list changed", s->cfg->name);
		if (s->state != SRV_READY && !s->listing)
			return; /* the listing at start-up follows */
		if (s->listing)
			s->relist = 1;
		else
			list_tools(s, NULL);
	} else if (strcmp(method, "notifications/message") == 0) {
		json_t *params = json_object_get(msg, "params");
		char *data = json_dumps(json_object_get(params, "data"), JSON_COMPACT | JSON_ENCODE_ANY);

		log_info("server %s: [%s] %s", s->cfg->name,
			 json_string_value(json_object_get(params, "level")) ?: "log", data ? data : "");
		free(data);
	} else {
		log_debug("server %s: notification %s", s->cfg->name, method);
	}
}

void srv_on_message(struct srv *s, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *msg = jr_parse(line, len, &jerr);
	enum jr_kind kind = jr_classify(msg);

	switch (kind) {
	case JR_RESPONSE:
	case JR_ERROR_RESPONSE:
		on_response(s, msg, kind);
		break;
	case JR_REQUEST:
		on_server_request(s, msg);
		break;
	case JR_NOTIFICATION:
		on_notification(s, msg);
		break;
	default:
		log_warn("server %s: stdout line is not JSON-RPC (%.80s); ignored", s->cfg->name, line);
	}
	json_decref(msg);
}

void srv_on_stdout(struct srv *s)
{
	char chunk[65536];
	ssize_t n;

	for (int rounds = 0; rounds < 16 && s->out_fd >= 0; rounds++) {
		char *line;
		size_t len;
		int rc;

		n = read(s->out_fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close_fd(&s->out_fd);
			s->eof_deadline_ms = clock_now_ms() + SRV_STOP_GRACE_MS;
			return;
		}
		if (jr_reader_feed(&s->rd, chunk, (size_t)n) < 0) {
			srv_down(s, "out of memory reading its stdout");
			return;
		}
		unsigned gen = s->restarts;
		while ((rc = jr_reader_next(&s->rd, &line, &len)) != JR_READ_MORE) {
			if (rc == JR_READ_LINE)
				srv_on_message(s, line, len);
			else
				log_warn("server %s: message over MCPGW_MAX_MESSAGE_BYTES; dropped", s->cfg->name);
			if (s->out_fd < 0 || gen != (unsigned)s->restarts)
				return; /* went down while handling the line */
		}
	}
}

int srv_on_stderr(struct srv *s)
{
	char chunk[8192];
	ssize_t n = read(s->err_fd, chunk, sizeof chunk);
	char *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close_fd(&s->err_fd);
		return 0;
	}
	errtail_add(s, chunk, (size_t)n);
	if (buf_append(&s->errline, chunk, (size_t)n) < 0)
		buf_reset(&s->errline);
	while (s->errline.len && (nl = memchr(s->errline.data, '\n', s->errline.len))) {
		*nl = '\0';
		log_info("server %s stderr: %s", s->cfg->name, s->errline.data);
		buf_consume(&s->errline, (size_t)(nl - s->errline.data) + 1);
	}
	if (s->errline.len > 4096) {
		log_info("server %s stderr: %s", s->cfg->name, s->errline.data);
		buf_reset(&s->errline);
	}
	return 1;
}

void srv_on_reaped(struct srv *s, int status)
{
	char why[128];

	if (WIFEXITED(status))
		snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof why, "ended (status %d)", status);
	for (int i = 0; i < 8 && s->err_fd >= 0 && srv_on_stderr(s) > 0; i++)
		; /* pick up its last words */
	kill(-s->pid, SIGKILL); /* anything it left in its process group */
	s->pid = 0;
	if (s->state == SRV_STARTING || s->state == SRV_READY || s->state == SRV_STOPPING)
		srv_down(s, why);
}

int64_t srv_next_deadline(const struct srv *s)
{
	int64_t d = INT64_MAX;

	if (s->state == SRV_STARTING || s->state == SRV_BACKOFF || s->state == SRV_STOPPING)
		d = s->deadline_ms;
	if (s->eof_deadline_ms && s->eof_deadline_ms < d)
		d = s->eof_deadline_ms;
	return d;
}

void srv_tick(struct srv *s, int64_t now)
{
	if (s->eof_deadline_ms && now >= s->eof_deadline_ms && s->pid > 0) {
		s->eof_deadline_ms = 0;
		kill(-s->pid, SIGKILL);
		srv_down(s, s->out_fd >= 0 ? "closed its stdin" : "closed its stdout");
		return;
	}
	if (now < s->deadline_ms)
		return;
	if (s->state == SRV_BACKOFF) {
		srv_start(s);
	} else if (s->state == SRV_STARTING) {
		srv_down(s, "did not finish initialize and tools/list within MCPGW_INIT_TIMEOUT");
	} else if (s->state == SRV_STOPPING && s->pid > 0) {
		s->stop_step++;
		kill(-s->pid, s->stop_step == 1 ? SIGTERM : SIGKILL);
		s->deadline_ms = now + SRV_STOP_GRACE_MS;
	}
}

/* srv_accepts_calls: 1 ready; 0 worth waiting for (starting, not failing);
 * -1 unavailable (failing to start, disabled, stopping) */
int srv_accepts_calls(const struct srv *s)
{
	if (s->state == SRV_READY)
		return 1;
	if ((s->state == SRV_STARTING || s->state == SRV_BACKOFF || s->state == SRV_STOPPED) && s->fail_streak == 0 &&
	    !B.stopping)
		return 0;
	return -1;
}

/* srv_stop: close stdin; SIGTERM and SIGKILL follow from srv_tick */
void srv_stop(struct srv *s)
{
	if (s->rt) {
		remote_stop(s);
		srv_set_state(s, SRV_STOPPED);
		return;
	}
	if (s->pid <= 0) {
		if (s->state != SRV_DISABLED)
			srv_set_state(s, SRV_STOPPED);
		return;
	}
	srv_set_state(s, SRV_STOPPING);
	close_fd(&s->in_fd);
	s->stop_step = 0;
	s->deadline_ms = clock_now_ms() + SRV_STOP_GRACE_MS;
}

void srv_free(struct srv *s)
{
	while (s->pending) {
		struct preq *p = s->pending;

		s->pending = p->next;
		free(p);
	}
	close_fd(&s->in_fd);
	close_fd(&s->out_fd);
	close_fd(&s->err_fd);
	buf_free(&s->wbuf);
	buf_free(&s->errline);
	jr_reader_free(&s->rd);
	json_decref(s->server_info);
	json_decref(s->tools);
	json_decref(s->list_accum);
	remote_free(s);
}
