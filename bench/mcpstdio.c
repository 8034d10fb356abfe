/* mcpstdio.c: the bench programs' direct MCP stdio client (see mcpstdio.h). */
#include "mcpstdio.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double mcpstdio_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read_line: the next line (without the newline, NUL-terminated, valid until the next call); NULL at EOF */
static char *read_line(struct mcpstdio *s, size_t *len)
{
	for (;;) {
		char *nl = memchr(s->rbuf + s->roff, '\n', s->rlen - s->roff);
		ssize_t n;

		if (nl) {
			char *line = s->rbuf + s->roff;

			*nl = '\0';
			*len = (size_t)(nl - line);
			s->roff = (size_t)(nl - s->rbuf) + 1;
			return line;
		}
		if (s->roff > 0) {
			memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
			s->rlen -= s->roff;
			s->roff = 0;
		}
		if (s->rlen == sizeof s->rbuf)
			return NULL;
		n = read(s->out, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		s->rlen += (size_t)n;
	}
}

/* await_answer: lines until the answer to id; as mcpstdio_call */
static int await_answer(struct mcpstdio *s, long id, double *t_end, json_t **answer)
{
	for (;;) {
		size_t len;
		char *line = read_line(s, &len);
		json_t *msg, *jid, *res;
		int rc;

		if (!line)
			return -1;
		if (!strstr(line, "\"result\"") && !strstr(line, "\"error\""))
			continue; /* a notification or a request of the server's */
		if (t_end)
			*t_end = mcpstdio_now_us();
		msg = json_loadb(line, len, 0, NULL);
		jid = json_object_get(msg, "id");
		if (!json_is_integer(jid) || json_integer_value(jid) != id) {
			json_decref(msg);
			continue;
		}
		res = json_object_get(msg, "result");
		rc = res && !json_is_true(json_object_get(res, "isError")) ? 1 : 0;
		if (answer)
			*answer = json_incref(res ? res : json_object_get(msg, "error"));
		json_decref(msg);
		return rc;
	}
}

int mcpstdio_start(struct mcpstdio *s, char *const argv[], const char *client_name)
{
	int in[2], out[2];
	char line[512];

	s->rlen = s->roff = 0;
	s->id = 0;
	signal(SIGPIPE, SIG_IGN);
	if (pipe(in) < 0 || pipe(out) < 0 || (s->pid = fork()) < 0) {
		fprintf(stderr, "mcpstdio: %s\n", strerror(errno));
		return -1;
	}
	if (s->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "mcpstdio: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->in = in[1];
	s->out = out[0];
	snprintf(line, sizeof line,
		 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
		 "\"capabilities\":{},\"clientInfo\":{\"name\":\"%s\",\"version\":\"1\"}}}\n",
		 ++s->id, client_name);
	if (write_all(s->in, line, strlen(line)) < 0 || await_answer(s, s->id, NULL, NULL) != 1) {
		fprintf(stderr, "mcpstdio: %s: initialize failed\n", argv[0]);
		mcpstdio_stop(s);
		return -1;
	}
	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
	if (write_all(s->in, line, strlen(line)) < 0) {
		mcpstdio_stop(s);
		return -1;
	}
	return 0;
}

int mcpstdio_call(struct mcpstdio *s, const char *tool, const char *arguments, double *t_end, json_t **answer)
{
	char line[65536];
	int n = snprintf(
		line, sizeof line,
		"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}\n",
		++s->id, tool, arguments);

	if (answer)
		*answer = NULL;
	if (n < 0 || (size_t)n >= sizeof line || write_all(s->in, line, (size_t)n) < 0)
		return -1;
	return await_answer(s, s->id, t_end, answer);
}

void mcpstdio_stop(struct mcpstdio *s)
{
	close(s->in);
	close(s->out);
	waitpid(s->pid, NULL, 0);
}
