/* history.h: mcpgw-chat's saved conversations: SQLite (WAL) in $MCPGW_STATE_DIR/chat.db, apart from the broker's registry. */
#ifndef MCPGW_CHAT_HISTORY_H
#define MCPGW_CHAT_HISTORY_H

#include <jansson.h>
#include <stddef.h>

#define HISTORY_NAME_MAX 128 /* bytes of a session name */

struct history;

/* history_open: open (creating, schema included) the database at path, WAL
 * mode. NULL with err filled on failure. Close with history_close. */
struct history *history_open(const char *path, char *err, size_t errlen);
void history_close(struct history *h);

/* history_name_ok: 1 when name may name a session: 1..HISTORY_NAME_MAX
 * bytes, no control bytes. */
int history_name_ok(const char *name);

/* history_claim: create the session, with no messages, unless one of that
 * name exists: 1 when this call created it (no other process can have it
 * too), 0 when it existed, -1 on error. */
int history_claim(struct history *h, const char *name);

/* history_drop_empty: delete the session if it has no messages (a claimed
 * name never used). 0 or -1. */
int history_drop_empty(struct history *h, const char *name);

/* history_load: the session's messages in order (an array, empty for an
 * unknown session). New reference, NULL on error. */
json_t *history_load(struct history *h, const char *name);

/* history_append: append messages (an array, borrowed) to the session,
 * creating it, and set its last update to now; one transaction. 0 or -1. */
int history_append(struct history *h, const char *name, const json_t *messages);

/* history_list: every session, most recently updated first, as
 * [{"name", "messages": count, "created", "updated": unix seconds}].
 * New reference, NULL on error. */
json_t *history_list(struct history *h);

/* history_errmsg: the last SQLite error text. */
const char *history_errmsg(struct history *h);

#endif
