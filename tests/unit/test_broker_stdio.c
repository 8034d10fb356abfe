/* test_broker_stdio.c: the stdio transport's write queue against a real child (cat): whole messages and messages in parts (shared slices) reach it whole and in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/settings.h"
#include "core/evloop.h"
#include "mcp/config.h"
#include "sharedtext.h"
#include "sigwatch.h"
#include "transport_stdio.h"

struct seen { /* what the child (cat) sent back */
	json_t *lines;
	int closed;
};

static void on_open(void *ctx)
{
	(void)ctx;
}

static void on_message(void *ctx, const char *json, size_t len)
{
	struct seen *s = ctx;
	json_t *m = json_loadb(json, len, 0, NULL);

	assert_non_null(m);
	assert_int_equal(json_array_append_new(s->lines, m), 0);
}

static void on_closed(void *ctx, const char *why, int retry_now)
{
	(void)why, (void)retry_now;
	((struct seen *)ctx)->closed = 1;
}

static int is_pending(void *ctx, long long id)
{
	(void)ctx, (void)id;
	return 1;
}

static void on_stop(void *ctx)
{
	(void)ctx;
}

static const struct transport_events events = {
	.on_open = on_open, .on_message = on_message, .on_closed = on_closed, .is_pending = is_pending
};

/* a message of 3 MiB in parts (more than a pipe holds: written over many passes) between
 * two whole messages, the second sent while the parts still wait: all three arrive, in
 * order, each whole; the parts' texts are referenced, not copied (freed by the caller
 * before they are written) */
static void test_parts_in_order_with_whole_messages(void **state)
{
	struct settings set = { .max_message_bytes = 8 << 20, .home = "/tmp" }; /* a base for the command's path */
	struct evloop *l = evloop_new(NULL, NULL);
	struct sigwatch *sw = sigwatch_new(l, on_stop, NULL);
	struct transport_env env = { .loop = l, .sig = sw, .set = &set };
	struct seen seen = { .lines = json_array() };
	const size_t n = 3 << 20;
	struct cfg cfg;
	struct transport *t;
	struct sharedtext *head, *big, *tail;
	json_t *one = json_pack("{s:i}", "n", 1), *three = json_pack("{s:i}", "n", 3);
	char err[256], *text = malloc(n + 2);
	(void)state;

	assert_non_null(l);
	assert_non_null(sw);
	assert_non_null(text);
	assert_int_equal(cfg_load_string("{\"mcpServers\":{\"c\":{\"command\":\"cat\"}}}", "test", &cfg, err, sizeof err),
			 0);
	assert_non_null(t = transport_stdio_new(&env, &cfg.servers[0], &events, &seen));
	if (t->ops->open(t, err, sizeof err) != 1)
		fail_msg("open: %s", err);
	/* "x...x" with a quote at each end: the slice taken from inside the text */
	text[0] = '"';
	memset(text + 1, 'x', n);
	text[n + 1] = '"';
	assert_non_null(big = sharedtext_take(text, n + 2));
	assert_non_null(head = sharedtext_copy("{\"n\":2,\"big\":", 13));
	assert_non_null(tail = sharedtext_copy("}\n", 2));
	{
		struct sharedtext_slice parts[3] = { { head, 0, 13 }, { big, 0, n + 2 }, { tail, 0, 2 } };

		assert_int_equal(t->ops->send(t, one), 0);
		assert_int_equal(t->ops->send_parts(t, parts, 3), 0);
		assert_int_equal(t->ops->send(t, three), 0);
	}
	sharedtext_unref(head); /* the transport holds its own references until written */
	sharedtext_unref(big);
	sharedtext_unref(tail);
	for (int i = 0; i < 2000 && json_array_size(seen.lines) < 3 && !seen.closed; i++)
		assert_true(evloop_step(l, 100) >= 0);
	assert_int_equal(json_array_size(seen.lines), 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_object_get(json_array_get(seen.lines, i), "n")),
				 (json_int_t)i + 1);
	assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(seen.lines, 1), "big"))), n);
	t->ops->destroy(t);
	cfg_free(&cfg);
	json_decref(one);
	json_decref(three);
	json_decref(seen.lines);
	sigwatch_free(sw);
	evloop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts_in_order_with_whole_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
