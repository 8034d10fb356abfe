/* stdio_floor.c: the latency floor of one MCP tool call: a direct stdio client, no gateway.
 *
 *   stdio_floor [-n CALLS] [-w WARMUP] [-t TOOL] [-a ARGUMENTS_JSON] -- COMMAND [ARGS...]
 *
 * Spawns the MCP server COMMAND, runs initialize / notifications/initialized,
 * then WARMUP untimed and CALLS timed sequential tools/call of TOOL (default
 * list_tables, arguments {}), one at a time, and prints one line:
 *
 *   calls=N median_us=X p10_us=X p90_us=X min_us=X errors=N
 *
 * A call's time runs from the first byte written to the server's stdin to the
 * end of the answer's line on its stdout; nothing a gateway could skip. The
 * answer is parsed (and its id checked) after the clock stopped.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char rbuf[1 << 20];
static size_t rlen, roff;

static double now_us(void)
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

/* next line from fd (without the newline, NUL-terminated, valid until the next call); NULL at EOF */
static char *read_line(int fd, size_t *len)
{
	for (;;) {
		char *nl = memchr(rbuf + roff, '\n', rlen - roff);
		ssize_t n;

		if (nl) {
			char *line = rbuf + roff;

			*nl = '\0';
			*len = (size_t)(nl - line);
			roff = (size_t)(nl - rbuf) + 1;
			return line;
		}
		if (roff > 0) {
			memmove(rbuf, rbuf + roff, rlen - roff);
			rlen -= roff;
			roff = 0;
		}
		if (rlen == sizeof rbuf)
			return NULL; /* a line over 1 MB: not what we measure */
		n = read(fd, rbuf + rlen, sizeof rbuf - rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		rlen += (size_t)n;
	}
}

/* read lines until the answer to id; 1 = result, 0 = error answer, -1 = EOF/garbage */
static int await_answer(int fd, long id, double *t_end)
{
	for (;;) {
		size_t len;
		char *line = read_line(fd, &len);
		json_t *msg, *jid;
		int rc;

		if (!line)
			return -1;
		if (!strstr(line, "\"result\"") && !strstr(line, "\"error\""))
			continue; /* a notification or a request of the server's */
		if (t_end)
			*t_end = now_us();
		msg = json_loadb(line, len, 0, NULL);
		jid = json_object_get(msg, "id");
		if (!json_is_integer(jid) || json_integer_value(jid) != id) {
			json_decref(msg);
			continue;
		}
		rc = json_object_get(msg, "result") ? 1 : 0;
		if (rc == 1 && json_is_true(json_object_get(json_object_get(msg, "result"), "isError")))
			rc = 0;
		json_decref(msg);
		return rc;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long calls = 2000, warmup = 200, id = 1;
	const char *tool = "list_tables", *args = "{}";
	int in[2], out[2], opt, errors = 0;
	pid_t pid;
	char line[65536];
	double *lat;

	while ((opt = getopt(argc, argv, "+n:w:t:a:")) != -1) {
		switch (opt) {
		case 'n': calls = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 't': tool = optarg; break;
		case 'a': args = optarg; break;
		default: goto usage;
		}
	}
	if (optind >= argc || calls < 1 || warmup < 0) {
usage:
		fprintf(stderr,
			"usage: stdio_floor [-n CALLS] [-w WARMUP] [-t TOOL] [-a ARGS_JSON] -- COMMAND [ARGS...]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe(in) < 0 || pipe(out) < 0 || !(lat = calloc((size_t)calls, sizeof *lat)))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "stdio_floor: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);

	snprintf(line, sizeof line,
		 "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
		 "\"capabilities\":{},\"clientInfo\":{\"name\":\"stdio_floor\",\"version\":\"1\"}}}\n",
		 id);
	if (write_all(in[1], line, strlen(line)) < 0 || await_answer(out[0], id, NULL) != 1) {
		fprintf(stderr, "stdio_floor: initialize failed\n");
		goto fail;
	}
	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
	if (write_all(in[1], line, strlen(line)) < 0)
		goto fail;
	for (long i = 0; i < warmup + calls; i++) {
		double t0, t1 = 0;
		int n = snprintf(
			line, sizeof line,
			"{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}\n",
			++id, tool, args);
		int rc;

		t0 = now_us();
		if (n < 0 || (size_t)n >= sizeof line || write_all(in[1], line, (size_t)n) < 0)
			goto fail;
		rc = await_answer(out[0], id, &t1);
		if (rc < 0) {
			fprintf(stderr, "stdio_floor: the server closed its stdout\n");
			goto fail;
		}
		if (rc == 0)
			errors++;
		if (i >= warmup)
			lat[i - warmup] = t1 - t0;
	}
	close(in[1]);
	qsort(lat, (size_t)calls, sizeof *lat, cmp_double);
	printf("calls=%ld median_us=%.1f p10_us=%.1f p90_us=%.1f min_us=%.1f errors=%d\n", calls, lat[calls / 2],
	       lat[calls / 10], lat[calls * 9 / 10], lat[0], errors);
	waitpid(pid, NULL, 0);
	free(lat);
	return errors ? 1 : 0;
fail:
	close(in[1]);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	free(lat);
	return 1;
}
