/* test_conversation.c: unit tests for the chatbot's session names (chat/conversation.c, chat/history.c): never shared by two processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conversation.h"

struct world {
	char dir[64];
	char db[128];
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	snprintf(w->dir, sizeof w->dir, "/tmp/mcpgw-conv.XXXXXX");
	if (!mkdtemp(w->dir))
		return -1;
	snprintf(w->db, sizeof w->db, "%s/chat.db", w->dir);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
	if (system(cmd) != 0)
		return -1;
	free(w);
	return 0;
}

/* date_time_name: YYYYmmdd-HHMMSS, optionally -N */
static int date_time_name(const char *name)
{
	regex_t re;
	int ok;

	assert_int_equal(regcomp(&re, "^[0-9]{8}-[0-9]{6}(-[0-9]+)?$", REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&re, name, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* saved: the names of db's sessions, one string "a,b," (most recent first) */
static void saved(const char *db, char *out, size_t size)
{
	char err[256];
	struct history *h = history_open(db, err, sizeof err);
	json_t *list, *s;
	size_t i;

	assert_non_null(h);
	list = history_list(h);
	assert_non_null(list);
	out[0] = '\0';
	json_array_foreach(list, i, s) {
		strncat(out, json_string_value(json_object_get(s, "name")), size - strlen(out) - 1);
		strncat(out, ",", size - strlen(out) - 1);
	}
	json_decref(list);
	history_close(h);
}

/* two conversations opened at once in one second: two names */
static void test_two_at_once(void **state)
{
	struct world *w = *state;
	struct conversation a, b;
	char err[256];

	assert_int_equal(conversation_open(&a, w->db, NULL, 1, err, sizeof err), 0);
	assert_int_equal(conversation_open(&b, w->db, NULL, 1, err, sizeof err), 0);
	assert_true(date_time_name(a.name));
	assert_true(date_time_name(b.name));
	assert_string_not_equal(a.name, b.name);
	conversation_close(&a);
	conversation_close(&b);
}

/* K processes that all open a session before any of them saves a message
 * (a user who has not asked yet): K different names, each session holding
 * its own process's message */
static void test_processes_never_share(void **state)
{
	enum { K = 6 };
	struct world *w = *state;
	char names[K][HISTORY_NAME_MAX + 1], list[4096];
	int fds[K][2], go[2], save[2];
	pid_t kids[K];

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(save), 0);
	for (int i = 0; i < K; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		fflush(NULL);
		if ((kids[i] = fork()) == 0) {
			struct conversation c;
			char err[256], ch;
			json_t *msg = json_pack("[{s:s, s:i}]", "role", "user", "content", i);
			int ok;

			close(go[1]);
			close(save[1]);
			if (read(go[0], &ch, 1) != 0)
				_exit(2);
			ok = msg && conversation_open(&c, w->db, NULL, 1, err, sizeof err) == 0;
			if (!ok)
				fprintf(stderr, "child %d: %s\n", i, err);
			ok = ok && write(fds[i][1], c.name, strlen(c.name)) == (ssize_t)strlen(c.name);
			close(fds[i][1]);
			if (read(save[0], &ch, 1) != 0) /* every process has its name */
				_exit(2);
			ok = ok && conversation_add(&c, msg, err, sizeof err) == 0;
			if (ok)
				conversation_close(&c);
			json_decref(msg);
			_exit(ok ? 0 : 1);
		}
		assert_true(kids[i] > 0);
		close(fds[i][1]);
	}
	close(go[0]);
	close(go[1]); /* all open at once */
	for (int i = 0; i < K; i++) {
		ssize_t n = read(fds[i][0], names[i], sizeof names[i] - 1);

		assert_true(n > 0);
		names[i][n] = '\0';
		close(fds[i][0]);
		assert_true(date_time_name(names[i]));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(names[i], names[j]);
	}
	close(save[0]);
	close(save[1]); /* now all save */
	for (int i = 0; i < K; i++) {
		int status = 0;

		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (int i = 0; i < K; i++) {
		char err[256];
		struct history *h = history_open(w->db, err, sizeof err);
		json_t *m;

		assert_non_null(h);
		m = history_load(h, names[i]);
		assert_int_equal(json_array_size(m), 1);
		json_decref(m);
		history_close(h);
	}
	saved(w->db, list, sizeof list);
	for (int i = 0; i < K; i++)
		assert_non_null(strstr(list, names[i]));
}

/* a claimed name that got no message is given back on close; one with messages stays */
static void test_unused_name_given_back(void **state)
{
	struct world *w = *state;
	struct conversation a, b;
	char err[256], list[1024], kept[HISTORY_NAME_MAX + 2];
	json_t *msg = json_pack("[{s:s, s:s}]", "role", "user", "content", "hello");

	assert_non_null(msg);
	assert_int_equal(conversation_open(&a, w->db, NULL, 1, err, sizeof err), 0);
	assert_int_equal(conversation_open(&b, w->db, NULL, 1, err, sizeof err), 0);
	saved(w->db, list, sizeof list);
	assert_non_null(strstr(list, a.name)); /* claimed while open */
	assert_int_equal(conversation_add(&b, msg, err, sizeof err), 0);
	snprintf(kept, sizeof kept, "%s,", b.name);
	conversation_close(&a);
	conversation_close(&b);
	saved(w->db, list, sizeof list);
	assert_string_equal(list, kept);
	/* a session named by the user stays */
	assert_int_equal(conversation_open(&a, w->db, "mine", 0, err, sizeof err), 0);
	assert_int_equal(conversation_add(&a, msg, err, sizeof err), 0);
	conversation_close(&a);
	saved(w->db, list, sizeof list);
	assert_non_null(strstr(list, "mine,"));
	json_decref(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_never_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unused_name_given_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
