/* conversation.h: the conversation mcpgw-chat is having: its messages in memory and, for a named session, in chat.db. */
#ifndef MCPGW_CHAT_CONVERSATION_H
#define MCPGW_CHAT_CONVERSATION_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "history.h"

struct conversation {
	char name[HISTORY_NAME_MAX + 1]; /* the session; "" when not saved */
	struct history *h;               /* open when saved */
	json_t *messages;                /* so far, without the system prompt */
	int claimed;                     /* the name was made up and claimed here: dropped on close if unused */
};

/* conversation_open: start c. name: resume (or create) that session;
 * NULL with autoname: a new session named after the local time
 * (YYYYmmdd-HHMMSS, "-2"... when taken), claimed at once in chat.db so that
 * two processes never share it (given back on close when it got no
 * message); NULL without: kept in memory only.
 * db_path is chat.db. 0, or -1 with err. Close with conversation_close. */
int conversation_open(struct conversation *c, const char *db_path, const char *name, int autoname, char *err,
		      size_t errlen);
void conversation_close(struct conversation *c);

/* conversation_add: append a turn's messages (borrowed) in memory and, for
 * a saved session, in the database. 0, or -1 with err when saving failed
 * (the messages are still kept in memory). */
int conversation_add(struct conversation *c, const json_t *added, char *err, size_t errlen);

/* conversation_list: print every saved session of db_path (name, messages,
 * last update) to out. 0, or -1 with err. A missing database lists none. */
int conversation_list(const char *db_path, FILE *out, char *err, size_t errlen);

#endif
