/* statedir.h: the layout of the state directory ($MCPGW_STATE_DIR): every file the broker, the responders, the chatbot and mcpgwctl share, named once. */
#ifndef MCPGW_STATEDIR_H
#define MCPGW_STATEDIR_H

#include <stddef.h>

/* The files, relative to the state directory (created 0700). deploy/mcpgwctl
 * uses the same names (tests/blackbox/cli.bats checks that they agree). */
#define STATEDIR_BROKER_SOCK "broker.sock"        /* the broker's unix socket (MCPGW_BROKER_SOCKET's default) */
#define STATEDIR_BROKER_PID "broker.pid"          /* the running broker's pid */
#define STATEDIR_BROKER_LOCK "broker.lock"        /* flock held by the running broker: one per state directory */
#define STATEDIR_BROKER_START "broker.start.lock" /* flock of a responder or chatbot starting a broker */
#define STATEDIR_BROKER_LOG "broker.log"          /* the log of a broker started by a responder or mcpgwctl */
#define STATEDIR_RESPONDERS_LOG "responders.log"  /* the responders' log in every shipped web server config */
#define STATEDIR_REGISTRY "mcpgw.db"              /* the registry (SQLite, 0600): servers, tools */
#define STATEDIR_STATE_STORE \
	"state.db" /* the state store (SQLite, 0600): mixed-batch history, caches (MCPGW_STATE_STORE's default) */
#define STATEDIR_CATALOG_GEN "catalog.gen" /* the catalog generation, 8 bytes mapped shared */
#define STATEDIR_CHAT_DB "chat.db"         /* mcpgw-chat's conversations (SQLite, 0600) */
#define STATEDIR_CHAT_LOG "chat.log"       /* mcpgw-chat's log */

/* statedir_path: state_dir + "/" + name (one of the names above) into out
 * (outlen bytes). 0, or -1 when it does not fit (out then holds "" ). */
int statedir_path(char *out, size_t outlen, const char *state_dir, const char *name);

#endif
