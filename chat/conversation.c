/* conversation.c: the chatbot's conversation: loaded from and saved to chat.db for a named session, else in memory only. */
#include "conversation.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONV_AUTONAME_TRIES 100

/* conversation_autoname: a session name from the local time, claimed in
 * chat.db so that no other process (started in the same second) takes it too */
static int conversation_autoname(struct conversation *c, char *err, size_t errlen)
{
	char base[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) || strftime(base, sizeof base, "%Y%m%d-%H%M%S", &tm) == 0) {
		snprintf(err, errlen, "cannot name a session: no local time");
		return -1;
	}
	for (int i = 1; i <= CONV_AUTONAME_TRIES; i++) {
		int claimed;

		if (i == 1)
			snprintf(c->name, sizeof c->name, "%s", base);
		else
			snprintf(c->name, sizeof c->name, "%s-%d", base, i);
		if ((claimed = history_claim(c->h, c->name)) < 0) {
			snprintf(err, errlen, "chat.db: %s", history_errmsg(c->h));
			return -1;
		}
		if (claimed) {
			c->claimed = 1;
			return 0;
		}
	}
	snprintf(err, errlen, "cannot name a session: %s-2..%d are taken", base, CONV_AUTONAME_TRIES);
	return -1;
}

int conversation_open(struct conversation *c, const char *db_path, const char *name, int autoname, char *err,
		      size_t errlen)
{
	memset(c, 0, sizeof *c);
	if (name && !history_name_ok(name)) {
		snprintf(err, errlen, "--session: a name of 1..%d bytes without control characters, please",
			 HISTORY_NAME_MAX);
		return -1;
	}
	if (!name && !autoname) {
		if (!(c->messages = json_array()))
			goto oom;
		return 0;
	}
	if (!(c->h = history_open(db_path, err, errlen)))
		return -1;
	if (name)
		snprintf(c->name, sizeof c->name, "%s", name);
	else if (conversation_autoname(c, err, errlen) < 0)
		goto fail;
	if (!(c->messages = history_load(c->h, c->name))) {
		snprintf(err, errlen, "%s: loading session %s: %s", db_path, c->name, history_errmsg(c->h));
		goto fail;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	conversation_close(c);
	return -1;
}

void conversation_close(struct conversation *c)
{
	/* a claimed name that never got a message is given back */
	if (c->h && c->claimed && history_drop_empty(c->h, c->name) < 0)
		fprintf(stderr, "mcpgw-chat: chat.db: %s\n", history_errmsg(c->h));
	history_close(c->h);
	json_decref(c->messages);
	memset(c, 0, sizeof *c);
}

int conversation_add(struct conversation *c, const json_t *added, char *err, size_t errlen)
{
	if (json_array_extend(c->messages, (json_t *)added) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (c->h && history_append(c->h, c->name, added) < 0) {
		snprintf(err, errlen, "saving session %s: %s", c->name, history_errmsg(c->h));
		return -1;
	}
	return 0;
}

int conversation_list(const char *db_path, FILE *out, char *err, size_t errlen)
{
	struct history *h;
	json_t *list, *s;
	size_t i;

	if (access(db_path, F_OK) < 0) {
		fprintf(out, "no saved sessions (%s does not exist yet)\n", db_path);
		return 0;
	}
	if (!(h = history_open(db_path, err, errlen)))
		return -1;
	if (!(list = history_list(h))) {
		snprintf(err, errlen, "%s: %s", db_path, history_errmsg(h));
		history_close(h);
		return -1;
	}
	if (json_array_size(list) == 0)
		fprintf(out, "no saved sessions in %s\n", db_path);
	else
		fprintf(out, "%-32s %8s  %s\n", "SESSION", "MESSAGES", "LAST UPDATE");
	json_array_foreach(list, i, s) {
		time_t t = (time_t)json_integer_value(json_object_get(s, "updated"));
		char when[32] = "?";
		struct tm tm;

		if (localtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(out, "%-32s %8lld  %s\n", json_string_value(json_object_get(s, "name")),
			(long long)json_integer_value(json_object_get(s, "messages")), when);
	}
	json_decref(list);
	history_close(h);
	return 0;
}
