/* transport_stdio.c: an MCP server as a child process: spawn, one JSON-RPC message per line on its stdin and stdout, stderr kept, stop with escalation. */
#include "transport_stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/errtail.h"
#include "core/log.h"
#include "core/progpath.h"
#include "core/redact.h"
#include "mcp/jsonrpc.h"
#include "sharedtext.h"
#include "sigwatch.h"

#define STDIO_ERRTAIL 2048         /* bytes of a server's stderr kept for error messages */
#define STDIO_WBUF_MAX (64u << 20) /* a server that reads nothing of this much is taken down */
#define STDIO_GRACE_MS 2000        /* stdin closed -> SIGTERM -> SIGKILL, each after this */
#define STDIO_EOF_GRACE_MS 250     /* closed stdout, still running: killed after this */
#define STDIO_IOV 16               /* pieces written by one writev (wbuf, then queued parts) */

extern char **environ;

struct spart { /* a slice of a shared text queued for the child's stdin */
	struct sharedtext *t;
	size_t off, len;
	struct spart *next;
};

struct stdio_t {
	struct transport base;
	pid_t pid; /* > 0 while a child runs (until reaped) */
	int in_fd, out_fd, err_fd;
	buf_t wbuf;                  /* bytes for the child's stdin (messages sent while no part is queued) */
	size_t wsent;                /* bytes of wbuf already written (buf_compact) */
	struct spart *phead, *ptail; /* after wbuf: slices of shared texts (send_parts), in order */
	size_t psent;                /* bytes of phead already written */
	size_t pqueued;              /* bytes of the parts not written yet */
	struct jr_reader rd;
	buf_t errline; /* partial stderr line */
	char errtail[STDIO_ERRTAIL];
	size_t errtail_len;
	unsigned opens;  /* connections so far: a handler sees whether it was closed under it */
	int stopping;    /* stop asked: 0 no, 1 stdin closed, 2 SIGTERM sent, 3 SIGKILL sent */
	int64_t stop_at; /* stopping: the next escalation */
	int64_t eof_at;  /* stdout or stdin closed but not reaped: kill after this */
	long timer;
};

static const char *stdio_name(const struct transport *t)
{
	(void)t;
	return "stdio";
}

static long stdio_pid(const struct transport *t)
{
	return (long)((const struct stdio_t *)t)->pid;
}

static void close_fd(struct stdio_t *p, int *fd)
{
	if (*fd >= 0) {
		evloop_unwatch(p->base.env->loop, *fd);
		close(*fd);
	}
	*fd = -1;
}

/* closed: the connection ended for why: report it (the session closes us) */
static void closed(struct stdio_t *p, const char *why)
{
	p->base.ev->on_closed(p->base.ctx, why, 0);
}

/* errtail_add: keep the last STDIO_ERRTAIL bytes of stderr */
static void errtail_add(struct stdio_t *p, const char *s, size_t n)
{
	if (n >= STDIO_ERRTAIL) {
		s += n - (STDIO_ERRTAIL - 1);
		n = STDIO_ERRTAIL - 1;
	}
	if (p->errtail_len + n >= STDIO_ERRTAIL) {
		size_t drop = p->errtail_len + n - (STDIO_ERRTAIL - 1);
		memmove(p->errtail, p->errtail + drop, p->errtail_len - drop);
		p->errtail_len -= drop;
	}
	memcpy(p->errtail + p->errtail_len, s, n);
	p->errtail_len += n;
	p->errtail[p->errtail_len] = '\0';
}

/* stdio_diagnostic: the telling line of the stderr tail, URLs redacted
 * before the line is picked and cut (a cut URL would no longer show its
 * userinfo as such) */
static void stdio_diagnostic(const struct transport *t, char *out, size_t outlen)
{
	const struct stdio_t *p = (const struct stdio_t *)t;
	char shown[2 * STDIO_ERRTAIL];

	redact_text(p->errtail, p->errtail_len, shown, sizeof shown);
	errtail_pick(shown, strlen(shown), out, outlen);
}

/* log_stderr: one line (n bytes) of the child's stderr to the log, URLs
 * redacted (a DSN's password, a token in a query: issue 14) */
static void log_stderr(const struct stdio_t *p, const char *line, size_t n)
{
	char shown[4200];

	log_info("server %s stderr: %s", p->base.cfg->name, redact_text(line, n, shown, sizeof shown));
}

/* on_stderr: read what the child wrote to stderr (logged, kept in errtail); 1 when something was read */
static int read_stderr(struct stdio_t *p)
{
	char chunk[8192];
	ssize_t n = read(p->err_fd, chunk, sizeof chunk);
	size_t off = 0;
	char *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close_fd(p, &p->err_fd);
		return 0;
	}
	errtail_add(p, chunk, (size_t)n);
	if (buf_append(&p->errline, chunk, (size_t)n) < 0)
		buf_reset(&p->errline);
	/* every line of the read, then one move of the rest (not one per line) */
	while (off < p->errline.len && (nl = memchr(p->errline.data + off, '\n', p->errline.len - off))) {
		log_stderr(p, p->errline.data + off, (size_t)(nl - p->errline.data) - off);
		off = (size_t)(nl - p->errline.data) + 1;
	}
	buf_consume(&p->errline, off);
	if (p->errline.len > 4096) {
		log_stderr(p, p->errline.data, p->errline.len);
		buf_reset(&p->errline);
	}
	return 1;
}

/* spart_pop: the first queued part written (or dropped; pqueued is the caller's) */
static void spart_pop(struct stdio_t *p)
{
	struct spart *w = p->phead;

	p->phead = w->next;
	if (!p->phead)
		p->ptail = NULL;
	p->psent = 0;
	sharedtext_unref(w->t);
	free(w);
}

/* unsent_drop: nothing more goes to the child's stdin */
static void unsent_drop(struct stdio_t *p)
{
	buf_reset(&p->wbuf);
	p->wsent = 0;
	while (p->phead)
		spart_pop(p);
	p->pqueued = 0;
}

/* spart_add: parts[0..n) (their texts referenced) queued after the others, all or none. 0 or -1 (ENOMEM) */
static int spart_add(struct stdio_t *p, const struct sharedtext_slice *parts, size_t n)
{
	struct spart *first = NULL, *last = NULL, *w;
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++) {
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
		*w = (struct spart){ .t = sharedtext_ref(parts[i].t), .off = parts[i].off, .len = parts[i].len };
		if (last)
			last->next = w;
		else
			first = w;
		last = w;
		bytes += w->len;
	}
	if (!first)
		return 0;
	if (p->ptail)
		p->ptail->next = first;
	else
		p->phead = first;
	p->ptail = last;
	p->pqueued += bytes;
	return 0;
}

static void on_stderr(void *ctx, int fd, int events)
{
	(void)fd, (void)events;
	(void)read_stderr(ctx); /* 0: nothing now, or closed: both handled there */
}

/* write_out: push wbuf into the child's stdin as far as it goes. -1 when
 * that ended the connection (reported), else 0 (also when its stdin turned
 * out closed: the reason then comes from its exit) */
static int write_out(struct stdio_t *p);

static void on_stdin(void *ctx, int fd, int events)
{
	(void)fd, (void)events;
	(void)write_out(ctx);
}

static int write_out(struct stdio_t *p)
{
	while (p->in_fd >= 0 && (p->wbuf.len > p->wsent || p->phead)) {
		struct iovec iov[STDIO_IOV];
		int k = 0;
		ssize_t n;

		/* what is queued goes in one writev: wbuf's rest first, then the parts in order */
		if (p->wbuf.len > p->wsent)
			iov[k++] = (struct iovec){ p->wbuf.data + p->wsent, p->wbuf.len - p->wsent };
		for (const struct spart *w = p->phead; w && k < STDIO_IOV; w = w->next) {
			size_t skip = w == p->phead ? p->psent : 0;

			iov[k++] = (struct iovec){ (char *)sharedtext_data(w->t) + w->off + skip, w->len - skip };
		}
		n = writev(p->in_fd, iov, k);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0 && errno == EPIPE && p->pid > 0) {
			/* it closed its stdin, mostly by exiting: its exit status and the
			 * last words on its stderr (on_reaped) tell why far better than
			 * this write; one that lives on is taken down after the grace a
			 * closed stdout gets (the timer) */
			close_fd(p, &p->in_fd);
			unsent_drop(p);
			if (!p->eof_at)
				p->eof_at = evloop_now(p->base.env->loop) + STDIO_GRACE_MS;
			return 0;
		}
		if (n <= 0) {
			closed(p, "its stdin was closed");
			return -1;
		}
		if (p->wbuf.len > p->wsent) { /* wbuf's bytes went first */
			size_t m = p->wbuf.len - p->wsent < (size_t)n ? p->wbuf.len - p->wsent : (size_t)n;

			p->wsent += m;
			n -= (ssize_t)m;
		}
		while (n > 0) {
			size_t m = p->phead->len - p->psent < (size_t)n ? p->phead->len - p->psent : (size_t)n;

			p->pqueued -= m;
			n -= (ssize_t)m;
			if ((p->psent += m) == p->phead->len)
				spart_pop(p);
		}
	}
	buf_compact(&p->wbuf, &p->wsent);
	if (p->in_fd >= 0 && evloop_watch(p->base.env->loop, p->in_fd,
					  p->wbuf.len > p->wsent || p->phead ? EVLOOP_WRITE : 0, on_stdin, p) < 0)
		log_warn("server %s: out of memory watching its stdin", p->base.cfg->name);
	return 0;
}

static void on_stdout(void *ctx, int fd, int events)
{
	struct stdio_t *p = ctx;
	char chunk[65536];
	ssize_t n;

	(void)fd, (void)events;
	for (int rounds = 0; rounds < 16 && p->out_fd >= 0; rounds++) {
		unsigned opens = p->opens;
		char *line;
		size_t len;
		int rc;

		n = read(p->out_fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* nothing it does can be answered any more: its exit status, when it is
			 * exiting, tells why best; one that lives on is taken down soon */
			close_fd(p, &p->out_fd);
			p->eof_at = evloop_now(p->base.env->loop) + STDIO_EOF_GRACE_MS;
			return;
		}
		if (jr_reader_feed(&p->rd, chunk, (size_t)n) < 0) {
			closed(p, "out of memory reading its stdout");
			return;
		}
		while ((rc = jr_reader_next(&p->rd, &line, &len)) != JR_READ_MORE) {
			if (rc == JR_READ_LINE) {
				p->base.ev->on_message(p->base.ctx, line, len);
			} else {
				/* the line's id is unknown, so its call cannot be failed alone: the
				 * connection starts over (calls in flight on it fail now, not at
				 * their timeout), every other server untouched */
				char why[128];

				snprintf(why, sizeof why, "wrote a message over MCPGW_MAX_MESSAGE_BYTES (%zu bytes)",
					 p->base.env->set->max_message_bytes);
				closed(p, why);
				return;
			}
			if (p->out_fd < 0 || opens != p->opens)
				return; /* closed while handling the line */
		}
		if ((size_t)n < sizeof chunk)
			return; /* the pipe is drained: poll says when more comes (one read less per message) */
	}
}

static void on_reaped(void *ctx, pid_t pid, int status)
{
	struct stdio_t *p = ctx;
	char why[128];

	(void)pid;
	if (WIFEXITED(status))
		snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, sizeof why, "ended (status %d)", status);
	for (int i = 0; i < 8 && p->err_fd >= 0 && read_stderr(p) > 0; i++)
		;               /* pick up its last words */
	kill(-p->pid, SIGKILL); /* anything it left in its process group */
	p->pid = 0;
	p->eof_at = 0;
	closed(p, why);
}

static int64_t stdio_due(void *ctx)
{
	const struct stdio_t *p = ctx;
	int64_t d = EVLOOP_NEVER;

	if (p->stopping && p->pid > 0)
		d = p->stop_at;
	if (p->eof_at && p->eof_at < d)
		d = p->eof_at;
	return d;
}

static void stdio_fire(void *ctx, int64_t now)
{
	struct stdio_t *p = ctx;

	if (p->eof_at && now >= p->eof_at && p->pid > 0) {
		p->eof_at = 0;
		kill(-p->pid, SIGKILL);
		closed(p, p->out_fd >= 0 ? "closed its stdin" : "closed its stdout");
		return;
	}
	if (p->eof_at && now >= p->eof_at)
		p->eof_at = 0;
	if (p->stopping && p->pid > 0 && now >= p->stop_at && p->stopping < 3) {
		p->stopping++;
		kill(-p->pid, p->stopping == 2 ? SIGTERM : SIGKILL);
		p->stop_at = now + STDIO_GRACE_MS;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The variables a stdio server inherits from the broker, the rest of its
 * environment being its own "env" from servers_config.json: the MCP SDKs'
 * default (@modelcontextprotocol/sdk client/stdio.js and the Python SDK's
 * mcp/client/stdio: DEFAULT_INHERITED_ENV_VARS, "inspired by the default
 * env inheritance of sudo"; on Linux they add nothing), plus three of
 * mcpgw's that are no secrets: the directories in use (README: servers
 * find MCPGW_HOME and MCPGW_STATE_DIR) and the log level, which the bundled
 * server follows. Never the rest of the broker's environment and .env
 * (OPENAI_API_KEY, MCPGW_* secrets): issue 14, "Secrets stay where they
 * are". A server that needs another variable names it in its "env"
 * ("LANG": "${LANG}"). */
static const char *const stdio_inherited[] = {
	/* the SDKs' */
	"HOME",
	"LOGNAME",
	"PATH",
	"SHELL",
	"TERM",
	"USER",
	/* mcpgw's */
	"MCPGW_HOME",
	"MCPGW_STATE_DIR",
	"MCPGW_LOG_LEVEL",
};

/* inherited: the environ entry e is one a server inherits (a name of
 * stdio_inherited whose value is no shell function, which the SDKs skip) */
static int inherited(const char *e)
{
	size_t klen = strcspn(e, "=");

	if (e[klen] != '=' || strncmp(e + klen + 1, "()", 2) == 0)
		return 0;
	for (size_t i = 0; i < sizeof stdio_inherited / sizeof *stdio_inherited; i++)
		if (strlen(stdio_inherited[i]) == klen && strncmp(stdio_inherited[i], e, klen) == 0)
			return 1;
	return 0;
}

/* build_env: the inherited variables of environ plus the configured
 * KEY=VALUE entries (which win). Caller frees the array only. */
static char **build_env(const struct cfg_server *c)
{
	size_t n = sizeof stdio_inherited / sizeof *stdio_inherited, k = 0;
	char **env = calloc(n + c->nenv + 1, sizeof *env);

	if (!env)
		return NULL;
	for (size_t i = 0; environ[i] && k < n; i++) {
		size_t klen = strcspn(environ[i], "=");
		size_t j;

		if (!inherited(environ[i]))
			continue;
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
 * command found by progpath_server. 0, or -1 with why set. */
static int spawn(struct stdio_t *p, char *why, size_t whylen)
{
	const struct cfg_server *c = p->base.cfg;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	char **argv = NULL, **env = NULL, dir[PROGPATH_MAX], path[PROGPATH_MAX];

	if (progpath_server(c->command, c->cwd, p->base.env->set->home, path, sizeof path, dir, sizeof dir, why,
			    whylen) != 0)
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
	rc = posix_spawn(&p->pid, path, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		p->pid = 0;
		goto out_pipes;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	p->in_fd = in[1];
	p->out_fd = out[0];
	p->err_fd = err[0];
	if (set_nonblock(p->in_fd) < 0 || set_nonblock(p->out_fd) < 0 || set_nonblock(p->err_fd) < 0)
		log_warn("server %s: fcntl: %s", c->name, strerror(errno));
	free(argv);
	free(env);
	return 0;
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	free(argv);
	free(env);
	snprintf(why, whylen, "cannot run '%.200s' (%.600s): %s", c->command, path, strerror(rc));
	return -1;
}

static void stdio_close(struct transport *t)
{
	struct stdio_t *p = (struct stdio_t *)t;

	p->opens++;
	close_fd(p, &p->in_fd);
	close_fd(p, &p->out_fd);
	close_fd(p, &p->err_fd);
	unsent_drop(p);
	jr_reader_free(&p->rd);
	jr_reader_init(&p->rd, t->env->set->max_message_bytes);
	buf_reset(&p->errline);
	p->eof_at = 0;
	p->stopping = 0;
	if (p->pid > 0) {
		kill(-p->pid, SIGKILL); /* reaped later; its exit is no news any more */
		if (t->env->sig)
			sigwatch_forget(t->env->sig, p->pid);
		p->pid = 0;
	}
}

static int stdio_open(struct transport *t, char *why, size_t whylen)
{
	struct stdio_t *p = (struct stdio_t *)t;
	struct evloop *l = t->env->loop;

	p->errtail_len = 0;
	p->errtail[0] = '\0';
	p->eof_at = 0;
	p->stopping = 0;
	if (!t->env->sig) {
		snprintf(why, whylen, "stdio servers need the broker's child supervision");
		return -1;
	}
	if (spawn(p, why, whylen) < 0)
		return -1;
	if (sigwatch_child(t->env->sig, p->pid, on_reaped, p) < 0 ||
	    evloop_watch(l, p->out_fd, EVLOOP_READ, on_stdout, p) < 0 ||
	    evloop_watch(l, p->err_fd, EVLOOP_READ, on_stderr, p) < 0) {
		stdio_close(t);
		snprintf(why, whylen, "out of memory starting the server");
		return -1;
	}
	log_info("server %s: started pid %ld: %s", t->cfg->name, (long)p->pid, t->cfg->command);
	return 1;
}

/* queued_check: -1 (the connection ended, reported) when more than STDIO_WBUF_MAX waits for the child, else write_out */
static int queued_check(struct stdio_t *p)
{
	if (p->wbuf.len - p->wsent + p->pqueued > STDIO_WBUF_MAX) {
		closed(p, "it does not read its stdin (64 MiB queued for it)");
		return -1;
	}
	return write_out(p);
}

static int stdio_send(struct transport *t, const json_t *msg)
{
	struct stdio_t *p = (struct stdio_t *)t;
	buf_t b = BUF_INIT;
	struct sharedtext_slice part = { NULL, 0, 0 };
	int rc;

	if (p->in_fd < 0)
		return -1;
	if (!p->phead) /* nothing queued as parts: it goes after wbuf, into it */
		return jr_append_line(&p->wbuf, msg) < 0 ? -1 : queued_check(p);
	if (jr_append_line(&b, msg) < 0) {
		buf_free(&b);
		return -1;
	}
	part.len = b.len;
	part.t = sharedtext_take(buf_steal(&b), part.len);
	buf_free(&b);
	rc = part.t ? spart_add(p, &part, 1) : -1;
	sharedtext_unref(part.t);
	return rc < 0 ? -1 : queued_check(p);
}

static int stdio_send_parts(struct transport *t, const struct sharedtext_slice *parts, size_t n)
{
	struct stdio_t *p = (struct stdio_t *)t;

	if (p->in_fd < 0 || spart_add(p, parts, n) < 0)
		return -1;
	return queued_check(p);
}

static void stdio_nothing(struct transport *t)
{
	(void)t;
}

static void stdio_forget(struct transport *t, long long id)
{
	(void)t, (void)id;
}

static void stdio_negotiated(struct transport *t, const char *v)
{
	(void)t, (void)v;
}

/* stdio_stop: close its stdin; SIGTERM and SIGKILL follow from the timer */
static int stdio_stop(struct transport *t)
{
	struct stdio_t *p = (struct stdio_t *)t;

	if (p->pid <= 0) {
		stdio_close(t);
		return 0;
	}
	close_fd(p, &p->in_fd);
	unsent_drop(p);
	p->stopping = 1;
	p->stop_at = evloop_now(t->env->loop) + STDIO_GRACE_MS;
	return 1;
}

static void stdio_destroy(struct transport *t)
{
	struct stdio_t *p = (struct stdio_t *)t;

	if (!t)
		return;
	stdio_close(t);
	evloop_timer_del(t->env->loop, p->timer);
	buf_free(&p->wbuf);
	buf_free(&p->errline);
	jr_reader_free(&p->rd);
	free(p);
}

static char *stdio_take_message(struct transport *t, size_t *size)
{
	struct stdio_t *p = (struct stdio_t *)t;

	return jr_reader_take(&p->rd, size);
}

static const struct transport_ops stdio_ops = {
	.open = stdio_open,
	.send = stdio_send,
	.send_parts = stdio_send_parts,
	.forget = stdio_forget,
	.negotiated = stdio_negotiated,
	.established = stdio_nothing,
	.close = stdio_close,
	.stop = stdio_stop,
	.name = stdio_name,
	.pid = stdio_pid,
	.diagnostic = stdio_diagnostic,
	.destroy = stdio_destroy,
	.take_message = stdio_take_message,
};

struct transport *transport_stdio_new(const struct transport_env *env, const struct cfg_server *cfg,
				      const struct transport_events *ev, void *ctx)
{
	struct stdio_t *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->base = (struct transport){ &stdio_ops, ev, ctx, cfg, env };
	p->in_fd = p->out_fd = p->err_fd = -1;
	jr_reader_init(&p->rd, env->set->max_message_bytes);
	if ((p->timer = evloop_timer_add(env->loop, stdio_due, stdio_fire, p)) < 0) {
		jr_reader_free(&p->rd);
		free(p);
		return NULL;
	}
	return &p->base;
}
