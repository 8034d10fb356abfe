/* test_mcptools.c: unit tests for a responder's catalog cache (lib/mcptools.c): servers not ready, waiting for those still starting, the tools offered upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcp/bclient.h"
#include "core/buf.h"
#include "mcp/mcptools.h"

/* a fake broker: tools/list says server "slow" is starting until ready_ms
 * after it began, then lists its tool; server "ghost" always fails */
struct fake {
	char dir[64], path[96];
	int lfd;
	long ready_ms, t0;
	int lists; /* tools/list requests answered */
	pthread_t thread;
};

static const char ghost[] =
	"{\"name\":\"ghost\",\"state\":\"backoff\",\"failing\":true,\"last_error\":\"cannot run 'x': not found\"}";

/* answer: the tools/list result for request line (generation 1 while starting, 2 once ready) */
static void answer(struct fake *f, int fd, const char *line)
{
	json_t *req = json_loads(line, 0, NULL);
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	json_int_t have = json_integer_value(
		json_object_get(json_object_get(json_object_get(req, "params"), "_meta"), "mcpgw/ifGeneration"));
	int ready = clock_now_ms() - f->t0 >= f->ready_ms;
	char out[2048];

	f->lists++;
	if (have == (ready ? 2 : 1))
		snprintf(out, sizeof out,
			 "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":null,\"_meta\":{\"mcpgw/generation\":%d,"
			 "\"mcpgw/unchanged\":true}}}\n",
			 (long long)id, ready ? 2 : 1);
	else if (ready)
		snprintf(out, sizeof out,
			 "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[{\"name\":\"t1\",\"_meta\":{\"mcpgw/server\":"
			 "\"slow\"}},{\"name\":\"bad\",\"inputSchema\":{\"type\":\"string\"},\"_meta\":{"
			 "\"mcpgw/server\":\"slow\"}},{\"name\":\"notype\",\"inputSchema\":{\"properties\":{\"q\":{"
			 "\"type\":\"string\"}}},\"_meta\":{\"mcpgw/server\":\"slow\"}}],\"_meta\":{\"mcpgw/generation\":2,\"mcpgw/ready\":1,\"mcpgw/unready\":[%s],"
			 "\"mcpgw/servers\":[\"slow\",\"ghost\",\"off\"]}}}\n",
			 (long long)id, ghost);
	else
		snprintf(out, sizeof out,
			 "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":{\"tools\":[],\"_meta\":{\"mcpgw/generation\":1,"
			 "\"mcpgw/ready\":0,\"mcpgw/unready\":[{\"name\":\"slow\",\"state\":\"starting\",\"failing\":false},"
			 "%s]}}}\n",
			 (long long)id, ghost);
	(void)!write(fd, out, strlen(out));
	json_decref(req);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char line[4096];
	size_t n = 0;
	int fd = accept(f->lfd, NULL, NULL);

	while (fd >= 0 && n + 1 < sizeof line) {
		char c;

		if (read(fd, &c, 1) <= 0)
			break;
		if (c != '\n') {
			line[n++] = c;
			continue;
		}
		line[n] = '\0';
		n = 0;
		answer(f, fd, line);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static struct fake *fake_start(long ready_ms)
{
	struct fake *f = calloc(1, sizeof *f);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_mcptools.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/broker.sock", f->dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	f->ready_ms = ready_ms;
	f->t0 = clock_now_ms();
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	return f;
}

static void fake_finish(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}

/* a request right after the broker started waits for the server still starting, not for the failing one */
static void test_wait_until_ready(void **state)
{
	struct fake *f = fake_start(300);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	struct mcptools m;
	buf_t why = BUF_INIT, names = BUF_INIT;
	long t0 = clock_now_ms();
	json_t *offered;

	(void)state;
	memset(&m, 0, sizeof m);
	assert_int_equal(mcptools_wait(&m, bc, 2000, 5000), BC_OK);
	assert_true(clock_now_ms() - t0 >= 250);
	assert_true(clock_now_ms() - t0 < 3000);
	assert_int_equal(m.generation, 2);
	assert_int_equal(m.nready, 1);
	assert_int_equal(json_array_size(m.tools), 3);
	/* offered upstream: parameters every upstream takes; the tool whose schema cannot be is left out */
	offered = mcptools_openai(&m, NULL, NULL, NULL);
	assert_int_equal(json_array_size(offered), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *fn = json_object_get(json_array_get(offered, i), "function");
		json_t *params = json_object_get(fn, "parameters");

		assert_string_not_equal(json_string_value(json_object_get(fn, "name")), "bad");
		assert_string_equal(json_string_value(json_object_get(params, "type")), "object");
		assert_true(json_is_object(json_object_get(params, "properties")));
	}
	/* a key's policy: only the tools it allows are offered (toolpolicy.h) */
	{
		struct toolpolicy p;
		json_t *only;
		const char *first = json_string_value(
			json_object_get(json_object_get(json_array_get(offered, 0), "function"), "name"));

		memset(&p, 0, sizeof p);
		snprintf(p.tools, sizeof p.tools, "%s", first);
		only = mcptools_openai(&m, NULL, NULL, &p);
		assert_int_equal(json_array_size(only), 1);
		assert_string_equal(json_string_value(
					    json_object_get(json_object_get(json_array_get(only, 0), "function"), "name")),
				    first);
		json_decref(only);
		snprintf(p.servers, sizeof p.servers, "nosuch*");
		only = mcptools_openai(&m, NULL, NULL, &p);
		assert_int_equal(json_array_size(only), 0);
		json_decref(only);
	}
	/* the texts spliced into a request: the same tools, the same JSON, and the names offered */
	{
		buf_t text = BUF_INIT, wrapped = BUF_INIT;
		json_t *offered_names = json_object(), *parsed;
		struct mcptools byhand;

		assert_int_equal(mcptools_openai_text(&m, NULL, NULL, NULL, &text, offered_names), 2);
		assert_int_equal(buf_printf(&wrapped, "[%s]", text.data), 0);
		parsed = json_loads(wrapped.data, 0, NULL);
		assert_true(json_equal(parsed, offered));
		assert_int_equal(json_object_size(offered_names), 2);
		json_decref(parsed);
		/* a filter that leaves every tool out, and a skip list */
		buf_reset(&text);
		assert_int_equal(mcptools_openai_text(&m, "nosuch", NULL, NULL, &text, NULL), 0);
		assert_int_equal(text.len, 0);
		/* a catalog set by hand (no texts made at refresh): made per call, the same answer */
		byhand = m;
		byhand.texts = NULL;
		byhand.params = NULL;
		buf_reset(&wrapped);
		buf_reset(&text);
		assert_int_equal(mcptools_openai_text(&byhand, NULL, NULL, NULL, &text, NULL), 2);
		assert_int_equal(buf_printf(&wrapped, "[%s]", text.data), 0);
		parsed = json_loads(wrapped.data, 0, NULL);
		assert_true(json_equal(parsed, offered));
		json_decref(parsed);
		json_decref(offered_names);
		buf_free(&text);
		buf_free(&wrapped);
	}
	json_decref(offered);
	assert_int_equal(mcptools_starting(&m), 0);
	assert_int_equal(mcptools_unready(&m, NULL, &why, &names), 1);
	assert_string_equal(why.data, "server 'ghost' cannot start: cannot run 'x': not found");
	assert_string_equal(names.data, "ghost");
	/* an unchanged generation keeps what is known about the servers */
	assert_int_equal(mcptools_refresh(&m, bc, 2000), BC_OK);
	assert_int_equal(m.nready, 1);
	assert_int_equal(json_array_size(m.unready), 1);
	/* servers that are not configured, whatever the state of those that are */
	buf_reset(&names);
	assert_int_equal(mcptools_configured(&m, &names), 3);
	assert_string_equal(names.data, "slow, ghost, off");
	buf_reset(&names);
	assert_int_equal(mcptools_unknown(&m, "slow, ghost,off", &names), 0);
	assert_int_equal(mcptools_unknown(&m, " ,, ", &names), 0);
	assert_int_equal(names.len, 0);
	assert_int_equal(mcptools_unknown(&m, "nosuch, slow ,slwo,gost", &names), 3);
	assert_string_equal(names.data, "'nosuch', 'slwo' (did you mean 'slow'?), 'gost' (did you mean 'ghost'?)");
	assert_int_equal(mcptools_unknown(&m, "Slow", NULL), 1); /* names are case-sensitive */
	assert_int_equal(mcptools_unknown(&m, NULL, NULL), 0);
	buf_free(&why);
	buf_free(&names);
	mcptools_free(&m);
	bc_free(bc);
	fake_finish(f);
}

/* a responder waits as long as the broker may take: per attempt, the server's own timeout (from the
 * tool's _meta) or MCPGW_TOOL_TIMEOUT, for the start and for the answer; plus the broker hop */
static void test_call_wait(void **state)
{
	struct mcptools m;

	(void)state;
	memset(&m, 0, sizeof m);
	m.by_name = json_pack("{s:{s:{s:s, s:i}}, s:{s:{s:s}}}", "slow_commit", "_meta", "mcpgw/server", "slow",
			      "mcpgw/timeoutMs", 8000, "quick", "_meta", "mcpgw/server", "q");
	assert_non_null(m.by_name);
	assert_int_equal(mcptools_call_wait_ms(&m, "slow_commit", 500, 2, 1000), 2 * 8000 * 3 + 1000);
	assert_int_equal(mcptools_call_wait_ms(&m, "quick", 500, 2, 1000), 2 * 500 * 3 + 1000);
	assert_int_equal(mcptools_call_wait_ms(&m, "unknown", 500, 0, 1000), 2 * 500 + 1000);
	assert_int_equal(mcptools_call_wait_ms(&m, NULL, 500, 0, 1000), 2 * 500 + 1000);
	json_decref(m.by_name);
}

/* the wait is bounded: past it, the answer says who is still starting */
static void test_wait_bounded(void **state)
{
	struct fake *f = fake_start(60000);
	struct bclient *bc = bc_new(f->path, 1 << 20);
	struct mcptools m;
	buf_t why = BUF_INIT, names = BUF_INIT;
	long t0 = clock_now_ms();

	(void)state;
	memset(&m, 0, sizeof m);
	assert_int_equal(mcptools_wait(&m, bc, 2000, 200), BC_OK);
	assert_true(clock_now_ms() - t0 >= 200);
	assert_true(clock_now_ms() - t0 < 2000);
	assert_int_equal(m.nready, 0);
	assert_int_equal(mcptools_starting(&m), 1);
	assert_int_equal(mcptools_unready(&m, NULL, &why, &names), 2);
	assert_string_equal(why.data,
			    "server 'slow' is starting; server 'ghost' cannot start: cannot run 'x': not found");
	assert_string_equal(names.data, "slow, ghost");
	buf_reset(&why);
	buf_reset(&names);
	assert_int_equal(mcptools_unready(&m, "other, slow", &why, &names), 1);
	assert_string_equal(names.data, "slow");
	assert_int_equal(mcptools_unready(&m, "other", NULL, NULL), 0);
	/* a catalog that does not list its servers (an older broker): nothing to tell */
	assert_int_equal(mcptools_unknown(&m, "nosuch", &names), 0);
	/* no waiting at all with 0 */
	t0 = clock_now_ms();
	f->lists = 0;
	assert_int_equal(mcptools_wait(&m, bc, 2000, 0), BC_OK);
	assert_true(clock_now_ms() - t0 < MCPTOOLS_WAIT_POLL_MS);
	assert_int_equal(f->lists, 1);
	buf_free(&why);
	buf_free(&names);
	mcptools_free(&m);
	bc_free(bc);
	fake_finish(f);
}

static void test_no_broker(void **state)
{
	struct bclient *bc = bc_new("/nonexistent/broker.sock", 1 << 20);
	struct mcptools m;

	(void)state;
	memset(&m, 0, sizeof m);
	assert_int_equal(mcptools_wait(&m, bc, 500, 5000), BC_ECONNECT);
	assert_int_equal(mcptools_starting(&m), 0);
	assert_int_equal(mcptools_unready(&m, NULL, NULL, NULL), 0);
	mcptools_free(&m);
	bc_free(bc);
}

/* why: one clause per server, the same words for /v1/tools, chat and /health */
static void test_why(void **state)
{
	static const struct {
		const char *server, *want;
	} cases[] = {
		{ "{\"name\":\"a\",\"state\":\"starting\",\"failing\":false}", "server 'a' is starting" },
		{ "{\"name\":\"a\",\"state\":\"starting\",\"failing\":true,\"last_error\":\"exited (status 1)\"}",
		  "server 'a' cannot start: exited (status 1)" },
		{ "{\"name\":\"a\",\"state\":\"backoff\",\"failing\":true}", "server 'a' cannot start" },
		{ "{\"name\":\"a\",\"state\":\"backoff\",\"failing\":false,\"last_error\":\"killed by signal 9\"}",
		  "server 'a' is restarting after: killed by signal 9" },
		{ "{\"name\":\"a\",\"state\":\"stopping\"}", "server 'a' is stopping" },
		{ "{\"name\":\"a\"}", "server 'a' cannot start" },
		{ "{\"state\":\"starting\"}", "server '?' is starting" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *s = json_loads(cases[i].server, 0, NULL);
		buf_t b = BUF_INIT;

		assert_non_null(s);
		assert_int_equal(mcptools_why(&b, s), 0);
		assert_string_equal(b.data, cases[i].want);
		buf_free(&b);
		json_decref(s);
	}
}

/* mcptools_current: only a cache of the broker's current generation (catalog.gen) with no server
 * coming up lets a request go on without a round trip or a wait (the worker keeps its turn to accept) */
static void test_current(void **state)
{
	struct mcptools m;
	int64_t gen = 2;

	(void)state;
	memset(&m, 0, sizeof m);
	assert_int_equal(mcptools_current(&m), 0); /* nothing cached */
	m.tools = json_array();
	m.generation = 2;
	assert_int_equal(mcptools_current(&m), 0); /* catalog.gen not mapped: no way to know */
	m.gen = &gen;
	assert_int_equal(mcptools_current(&m), 1);
	gen = 3; /* the broker moved on */
	assert_int_equal(mcptools_current(&m), 0);
	gen = 0; /* the broker stopped */
	assert_int_equal(mcptools_current(&m), 0);
	gen = 2;
	m.unready = json_pack("[{s:s, s:s, s:b}]", "name", "slow", "state", "starting", "failing", 0);
	assert_int_equal(mcptools_current(&m), 0); /* a server coming up: mcptools_wait would wait */
	json_decref(m.unready);
	m.unready = json_pack("[{s:s, s:s, s:b}]", "name", "ghost", "state", "backoff", "failing", 1);
	assert_int_equal(mcptools_current(&m), 1); /* a failing one is not waited for */
	json_decref(m.unready);
	json_decref(m.tools);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_until_ready), cmocka_unit_test(test_wait_bounded),
		cmocka_unit_test(test_no_broker),        cmocka_unit_test(test_why),
		cmocka_unit_test(test_call_wait),        cmocka_unit_test(test_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
