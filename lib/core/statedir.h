/* statedir.h: the layout of the state directory ($MCPGW_STATE_DIR): every file the broker, the responders, the chatbot and mcpgwctl share, named once. */
#ifndef MCPGW_STATEDIR_H
#define MCPGW_STATEDIR_H

#include <stddef.h>
#include <sys/types.h>

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
#define STATEDIR_METRICS "metrics.shm"     /* the counters every process adds to (lib/core/metrics.h), mapped shared */
#define STATEDIR_CAPACITY \
	"capacity.map" /* the host-wide slots of MCPGW_CAPACITY (lib/core/capacity.h), mapped shared (an older
			* mcpgw's capacity.slots, records locked per slot, is not read) */
#define STATEDIR_KEYS_HINT \
	"keys.hint"                  /* bumped by whoever changes the API keys (lib/core/changehint.h), mapped shared */
#define STATEDIR_CHAT_DB "chat.db"   /* mcpgw-chat's conversations (SQLite, 0600) */
#define STATEDIR_CHAT_LOG "chat.log" /* mcpgw-chat's log */

/* statedir_path: state_dir + "/" + name (one of the names above) into out
 * (outlen bytes). 0, or -1 when it does not fit (out then holds "" ). */
int statedir_path(char *out, size_t outlen, const char *state_dir, const char *name);

/* statedir_check: dir may hold the state of a process running as this
 * effective user: a directory (a symlink to one is followed and the
 * directory it names is checked) owned by that user and writable by nobody
 * else (neither group nor others, sticky or not). Whoever else could write
 * there could plant a symlink where a file is about to be created, or swap
 * the socket, the registry or the pid file (issue 14, case 5). 0, or -1
 * with err naming dir and the fix ("chmod go-w DIR", "chown USER DIR" or
 * another MCPGW_STATE_DIR). */
int statedir_check(const char *dir, char *err, size_t errlen);

/* statedir_make: dir created (mode 0700; its parent must exist) when it is
 * missing, then statedir_check'ed. 0, or -1 with err ("DIR: why"). */
int statedir_make(const char *dir, char *err, size_t errlen);

/* statedir_open: open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode) for a file
 * in the state directory: a symlink there is refused (errno ELOOP), never
 * followed, so nothing is created or truncated through one (CWE-59, link
 * following; open(2): O_NOFOLLOW). fd, or -1 with errno. */
int statedir_open(const char *path, int flags, mode_t mode);

/* statedir_replace: path's content replaced by len bytes of data, all or
 * nothing: written to a new file beside it (path + ".XXXXXX", created
 * O_EXCL, mode 0600) that is renamed over path (a symlink at path is
 * replaced, not followed; CWE-377, a temporary file with a name others can
 * predict). 0, or -1 with errno (the temporary removed). */
int statedir_replace(const char *path, const void *data, size_t len);

#endif
