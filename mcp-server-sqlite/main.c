/* main.c: mcp-server-sqlite: parse the command line, open the database and serve MCP on stdin/stdout. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "core/log.h"
#include "memo.h"
#include "server.h"
#include "sqlitedb.h"
#include "core/settings.h"
#include "core/usage.h"

/* One JSON-RPC message (newline excluded) is at most MAIN_LINE_ESCAPES times
 * the longest argument a tool takes (a statement: MCP_SQLITE_MAX_VALUE_BYTES;
 * an insight: MEMO_MAX_BYTES), each byte of which JSON may write as \u00XX,
 * plus MAIN_LINE_SLACK for the rest of the message: a longer one could only
 * be refused after costing its size several times over in memory. */
#define MAIN_LINE_ESCAPES 6
#define MAIN_LINE_SLACK 65536
#define MAIN_READ_CHUNK 65536

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

static const char *const main_settings[] = { "MCP_SQLITE_MAX_ROWS",
					     "MCP_SQLITE_TIMEOUT_MS",
					     "MCP_SQLITE_MAX_VALUE_BYTES",
					     "MCP_SQLITE_MAX_RESULT_BYTES",
					     "MCP_SQLITE_MAX_HEAP_BYTES",
					     "MCPGW_LOG_LEVEL",
					     NULL };

static const struct usage main_usage = {
	SERVER_NAME,
	"[--db-path] PATH\n"
	"       " SERVER_NAME " --help | --version",
	"Serves the SQLite database PATH (created if missing; \":memory:\" for none on disk) as an MCP\n"
	"server: newline-delimited JSON-RPC 2.0 on stdin/stdout, logs on stderr. Tools: read_query,\n"
	"write_query, create_table, list_tables, describe_table, append_insight; the memo://insights\n"
	"resource and the mcp-demo prompt. It stops at the end of its input, SIGTERM or SIGINT.\n",
	"      --db-path PATH  the database (or PATH alone)\n"
	"  -h, --help          this text\n"
	"  -V, --version       the version\n",
	NULL,
	NULL,
};

/* main_help: the help text, with its own settings (it reads no .env) */
static void main_help(FILE *fp)
{
	usage_help(fp, &main_usage);
	fprintf(fp, "\nSettings (the environment only; README.md, Configuration):\n");
	usage_setting_lines(fp, main_settings);
}

/* main_args: find the database path in argv.  0: serve *path; 1: --help or
 * --version was answered; USAGE_EXIT: bad arguments (message printed). */
static int main_args(int argc, char **argv, const char **path)
{
	static const struct option longs[] = {
		{ "db-path", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*path = NULL;
	while ((c = usage_getopt(SERVER_NAME, argc, argv, "hV", longs)) != -1) {
		switch (c) {
		case 'd':
			if (*path)
				return usage_error(SERVER_NAME, "give one database path");
			*path = optarg;
			break;
		case 'h': main_help(stdout); return 1;
		case 'V': usage_version(SERVER_NAME); return 1;
		default: return USAGE_EXIT;
		}
	}
	if (optind < argc && *path)
		return usage_error(SERVER_NAME, "give one database path");
	if (optind < argc)
		*path = argv[optind++];
	if (optind < argc)
		return usage_error(SERVER_NAME, "give one database path (also got '%s')", argv[optind]);
	if (!*path)
		return usage_error(SERVER_NAME, "no database path given");
	if (!**path)
		return usage_error(SERVER_NAME, "empty database path");
	return 0;
}

/* main_path: a malloc'd copy of path with a leading "~/" expanded from $HOME
 * (as the reference server does); NULL on ENOMEM. */
static char *main_path(const char *path)
{
	const char *home = getenv("HOME");
	buf_t b = BUF_INIT;

	if (home && *home && (strcmp(path, "~") == 0 || strncmp(path, "~/", 2) == 0)) {
		if (buf_puts(&b, home) < 0 || buf_puts(&b, path + 1) < 0)
			goto err;
	} else if (buf_puts(&b, path) < 0) {
		goto err;
	}
	return buf_steal(&b);
err:
	buf_free(&b);
	return NULL;
}

/* main_mkdirs: create the missing parent directories of path (mode 0777 &
 * ~umask).  Failures are only logged: opening the database reports them. */
static void main_mkdirs(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(path, 0777) < 0 && errno != EEXIST)
			log_debug("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
}

/* main_write_all: write p[0..n) to fd, riding out EINTR, EAGAIN and short writes. */
static int main_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* main_max_line: the longest message a server with bounds b reads */
static size_t main_max_line(const struct sqlitedb_bounds *b)
{
	size_t arg = (size_t)b->max_value_bytes > MEMO_MAX_BYTES ? (size_t)b->max_value_bytes : MEMO_MAX_BYTES;

	return MAIN_LINE_ESCAPES * arg + MAIN_LINE_SLACK;
}

/* main_drain: answer every complete line buffered in rd (the reader itself
 * drops the rest of an over-long line). -1 when stdout cannot be written. */
static int main_drain(struct server *s, struct jr_reader *rd, buf_t *out)
{
	char *line;
	size_t len;
	int r, rc;

	while ((r = jr_reader_next(rd, &line, &len)) != JR_READ_MORE) {
		buf_reset(out);
		if (r == JR_READ_LINE) {
			rc = server_handle_line(s, line, len, out);
		} else {
			log_warn("dropped a message longer than %zu bytes (6 x MCP_SQLITE_MAX_VALUE_BYTES + 64 KB)",
				 rd->max_line);
			rc = server_reply_error(out, NULL, JR_PARSE_ERROR,
						"Parse error: message too long (MCP_SQLITE_MAX_VALUE_BYTES)");
		}
		if (rc < 0) {
			log_error("out of memory answering a message");
			buf_reset(out);
			if (server_reply_error(out, NULL, JR_INTERNAL_ERROR, "Internal error: out of memory") < 0)
				continue;
		}
		if (out->len && main_write_all(STDOUT_FILENO, out->data, out->len) < 0) {
			log_error("writing stdout: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* main_feed: give chunk p[0..n) to the reader; on ENOMEM the current message is dropped. */
static void main_feed(struct jr_reader *rd, const char *p, size_t n)
{
	if (jr_reader_feed(rd, p, n) < 0) {
		size_t max = rd->max_line;

		log_error("out of memory buffering input: dropping the current message");
		jr_reader_free(rd);
		jr_reader_init(rd, max);
		rd->skipping = memchr(p, '\n', n) == NULL;
	}
}

/* What stdin brought while a statement ran: read by main_look (to find a cancellation of the
 * request being served), served after that request, in order. */
struct main_ahead {
	struct server *s;
	buf_t in;       /* bytes read ahead, not yet given to the reader */
	size_t scanned; /* in.data[0, scanned) holds no line that cancels: looked at already */
	size_t max;     /* read ahead at most this much (then the rest waits in the pipe) */
	int eof;        /* stdin ended meanwhile */
};

/* main_look: sqlitedb's cancel check while a statement runs (every SQLITEDB_CANCEL_EVERY_MS):
 * what stdin holds now is read ahead without blocking, and each new complete line is asked
 * whether it cancels the request being served (server_cancels). 1: it does. */
static int main_look(void *ud)
{
	struct main_ahead *a = ud;
	char chunk[MAIN_READ_CHUNK];

	while (!a->eof && a->in.len < a->max) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 0) <= 0)
			break;
		n = read(STDIN_FILENO, chunk, sizeof chunk);
		if (n < 0)
			break; /* EAGAIN, EINTR: nothing now; an error: the main loop meets it */
		if (n == 0)
			a->eof = 1;
		else if (buf_append(&a->in, chunk, (size_t)n) < 0)
			break;
	}
	for (;;) {
		char *nl = a->scanned < a->in.len ? memchr(a->in.data + a->scanned, '\n', a->in.len - a->scanned) : NULL;
		size_t start = a->scanned;

		if (!nl)
			return 0;
		a->scanned = (size_t)(nl - a->in.data) + 1;
		if (server_cancels(a->s, a->in.data + start, (size_t)(nl - a->in.data) - start))
			return 1;
	}
}

/* main_serve: read requests of at most max_line bytes from stdin until EOF
 * or a signal, answering each in turn; a request whose statement runs long
 * is stopped when the client cancels it (main_look).  0 on EOF / signal, -1
 * on an I/O error. */
static int main_serve(struct server *s, struct sqlitedb *db, size_t max_line)
{
	static char chunk[MAIN_READ_CHUNK];
	struct jr_reader rd;
	struct main_ahead ahead = { .s = s, .in = BUF_INIT, .max = max_line + MAIN_READ_CHUNK };
	buf_t out = BUF_INIT;
	int rc = 0;

	jr_reader_init(&rd, max_line);
	sqlitedb_on_cancel(db, main_look, &ahead);
	while (!main_stop) {
		ssize_t n;

		/* what was read ahead while a statement ran first, in the order it came */
		if (ahead.in.len > 0 || ahead.eof) {
			int end = ahead.eof && ahead.in.len == 0;

			if (ahead.in.len > 0)
				main_feed(&rd, ahead.in.data, ahead.in.len);
			buf_reset(&ahead.in);
			ahead.scanned = 0;
			if (end) {
				main_feed(&rd, "\n", 1);
				(void)main_drain(s, &rd, &out);
				break;
			}
			if (main_drain(s, &rd, &out) < 0) {
				rc = -1;
				break;
			}
			continue;
		}
		n = read(STDIN_FILENO, chunk, sizeof chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				break;
			continue;
		}
		if (n < 0) {
			log_error("reading stdin: %s", strerror(errno));
			rc = -1;
			break;
		}
		/* at EOF a final newline completes a last line sent without one */
		main_feed(&rd, n ? chunk : "\n", n ? (size_t)n : 1);
		if (main_drain(s, &rd, &out) < 0) {
			rc = -1;
			break;
		}
		if (n == 0)
			break;
	}
	sqlitedb_on_cancel(db, NULL, NULL);
	jr_reader_free(&rd);
	buf_free(&out);
	buf_free(&ahead.in);
	return rc;
}

static int main_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = main_on_signal; /* no SA_RESTART: a blocked read returns EINTR */
	if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *arg, *lvl = getenv("MCPGW_LOG_LEVEL");
	struct sqlitedb_bounds b;
	long heap;
	struct sqlitedb db;
	struct server srv;
	char *path = NULL, err[600];
	int rc = 1, r;

	log_init(SERVER_NAME, lvl && *lvl ? log_level_parse(lvl) : LOGL_INFO, NULL);
	r = main_args(argc, argv, &arg);
	if (r != 0)
		return r == 1 ? 0 : r;
	/* bounds and defaults: the settings table (lib/core/settings.c) */
	if (settings_env_long("MCP_SQLITE_MAX_ROWS", &b.max_rows, err, sizeof err) < 0 ||
	    settings_env_long("MCP_SQLITE_TIMEOUT_MS", &b.timeout_ms, err, sizeof err) < 0 ||
	    settings_env_long("MCP_SQLITE_MAX_VALUE_BYTES", &b.max_value_bytes, err, sizeof err) < 0 ||
	    settings_env_long("MCP_SQLITE_MAX_RESULT_BYTES", &b.max_result_bytes, err, sizeof err) < 0 ||
	    settings_env_long("MCP_SQLITE_MAX_HEAP_BYTES", &heap, err, sizeof err) < 0) {
		log_error("%s", err);
		return 2;
	}
	b.max_heap_bytes = heap;
	if (main_signals() < 0) {
		log_error("installing signal handlers: %s", strerror(errno));
		return 1;
	}
	path = main_path(arg);
	if (!path) {
		log_error("out of memory");
		return 1;
	}
	if (strcmp(path, ":memory:") != 0)
		main_mkdirs(path);
	if (sqlitedb_open(&db, path, &b, err, sizeof err) < 0) {
		log_error("cannot open the database %s", err);
		goto out;
	}
	log_info("serving %s (max %ld rows, statement timeout %ld ms, values %ld bytes, result %ld bytes, "
		 "SQLite heap %ld bytes)",
		 path, b.max_rows, b.timeout_ms, b.max_value_bytes, b.max_result_bytes, heap);
	server_init(&srv, &db);
	rc = main_serve(&srv, &db, main_max_line(&b)) < 0 ? 1 : 0;
	server_free(&srv);
	sqlitedb_close(&db);
out:
	free(path);
	log_close();
	return rc;
}
