/* settings.h: the settings table (name, kind, default, bounds, field, readers, doc) and the values it loads. */
#ifndef MCPGW_SETTINGS_H
#define MCPGW_SETTINGS_H

#include <stddef.h>

/* One field per row of the settings table (lib/core/settings.c), which
 * holds each one's name, default, bounds and meaning; derived fields say so. */
struct settings {
	char home[4096];             /* MCPGW_HOME */
	char env_file[4096];         /* MCPGW_ENV_FILE */
	char config[4096];           /* MCPGW_CONFIG */
	char state_dir[4096];        /* MCPGW_STATE_DIR */
	char socket_path[4200];      /* MCPGW_BROKER_SOCKET */
	char db_path[4200];          /* derived: $MCPGW_STATE_DIR/mcpgw.db */
	char log_file[4200];         /* MCPGW_LOG_FILE; "" = stderr */
	int log_level;               /* MCPGW_LOG_LEVEL: enum log_level */
	char listen[256];            /* MCPGW_LISTEN */
	size_t max_body_bytes;       /* MCPGW_MAX_BODY_BYTES */
	size_t max_drain_bytes;      /* MCPGW_MAX_DRAIN_BYTES */
	int max_json_depth;          /* MCPGW_MAX_JSON_DEPTH */
	size_t max_json_values;      /* MCPGW_MAX_JSON_VALUES */
	char allowed_hosts[1024];    /* MCPGW_ALLOWED_HOSTS: "*" or "host[:port],..." (checked) */
	char cors_origins[2048];     /* MCPGW_CORS_ORIGINS: "*" or "scheme://host[:port],..." (checked) */
	size_t max_message_bytes;    /* MCPGW_MAX_MESSAGE_BYTES */
	size_t server_max_tools;     /* MCPGW_SERVER_MAX_TOOLS */
	size_t server_tools_bytes;   /* MCPGW_SERVER_MAX_TOOLS_BYTES */
	int server_max_calls;        /* MCPGW_SERVER_MAX_CONCURRENT_CALLS (a server's maxConcurrentCalls overrides) */
	int server_max_queued;       /* MCPGW_SERVER_MAX_QUEUED_CALLS (a server's maxQueuedCalls overrides) */
	long tool_timeout_ms;        /* MCPGW_TOOL_TIMEOUT (given in seconds) */
	int tool_retries;            /* MCPGW_TOOL_RETRIES */
	long init_timeout_ms;        /* MCPGW_INIT_TIMEOUT (seconds) */
	long restart_backoff_max_ms; /* MCPGW_RESTART_BACKOFF_MAX (seconds) */
	int max_clients;             /* MCPGW_MAX_CLIENTS */
	long broker_timeout_ms;      /* MCPGW_BROKER_TIMEOUT (seconds) */
	long startup_wait_ms;        /* MCPGW_STARTUP_WAIT (seconds) */
	long shutdown_grace_ms;      /* MCPGW_SHUTDOWN_GRACE (seconds) */
	int broker_autostart;        /* MCPGW_BROKER_AUTOSTART: 0 or 1 */
	/* upstream LLM */
	char openai_api_key[1024];        /* OPENAI_API_KEY (secret) */
	char openai_base_url[2048];       /* OPENAI_BASE_URL, without trailing '/' */
	char default_model[256];          /* DEFAULT_MODEL */
	char openai_api_version[64];      /* OPENAI_API_VERSION (Azure OpenAI's api-version query) */
	int upstream_dialect;             /* MCPGW_UPSTREAM_DIALECT: enum upstream_dialect (auto 0, openai, azure) */
	int upstream_auth;                /* MCPGW_UPSTREAM_AUTH: enum upstream_auth (auto 0, bearer, api-key) */
	long upstream_connect_timeout_ms; /* MCPGW_UPSTREAM_CONNECT_TIMEOUT (seconds) */
	long upstream_timeout_ms;         /* MCPGW_UPSTREAM_TIMEOUT (seconds) */
	int upstream_retries;             /* MCPGW_UPSTREAM_RETRIES */
	long upstream_retry_max_wait_ms;  /* MCPGW_UPSTREAM_RETRY_MAX_WAIT (seconds) */
	size_t max_response_bytes;        /* MCPGW_MAX_RESPONSE_BYTES */
	size_t max_upstream_json_values;  /* MCPGW_MAX_UPSTREAM_JSON_VALUES */
	size_t max_round_bytes;           /* MCPGW_MAX_ROUND_BYTES */
	/* chat completions */
	int max_tool_rounds;          /* MCPGW_MAX_TOOL_ROUNDS */
	size_t max_tool_output_bytes; /* MCPGW_MAX_TOOL_OUTPUT_BYTES */
	int tool_images;              /* MCPGW_TOOL_IMAGES: enum settings_tool_images */
	long stream_keepalive_ms;     /* MCPGW_STREAM_KEEPALIVE (seconds; 0: off) */
	int inject_tools;             /* MCPGW_INJECT_TOOLS: 0 or 1 */
	long models_cache_ttl_ms;     /* MCPGW_MODELS_CACHE_TTL (seconds; 0: no cache) */
	long session_ttl_ms;          /* MCPGW_SESSION_TTL (seconds) */
	int chat_threads;             /* MCPGW_CHAT_THREADS */
	int chat_loops;               /* MCPGW_CHAT_LOOPS (0: one per online CPU) */
	int chat_driver;              /* MCPGW_CHAT_DRIVER: enum settings_chat_driver */
	int capacity;                 /* MCPGW_CAPACITY */
	int tools_threads;            /* MCPGW_TOOLS_THREADS */
	char model_aliases[4096];     /* MCPGW_MODEL_ALIASES as given */
	char model_alias_map[4097];   /* derived: "alias\0model\0...\0\0"; use the functions below */
	/* the state store */
	char state_store[4300];      /* MCPGW_STATE_STORE: backend URL */
	long state_store_timeout_ms; /* MCPGW_STATE_STORE_TIMEOUT (seconds) */
	/* access control */
	char api_keys[4096];        /* MCPGW_API_KEYS (secret): comma-separated keys */
	char trusted_proxies[1024]; /* MCPGW_TRUSTED_PROXIES: addresses and CIDR ranges */
	/* operations */
	int audit_payloads;      /* MCPGW_AUDIT_PAYLOADS: 0 or 1 */
	long audit_retention_ms; /* MCPGW_AUDIT_RETENTION (seconds) */
	/* embeddings */
	char embedding_api_key[1024];         /* EMBEDDING_API_KEY (secret) */
	char embedding_base_url[2048];        /* EMBEDDING_BASE_URL, without trailing '/' */
	size_t embedding_max_inputs;          /* MCPGW_EMBEDDING_MAX_INPUTS */
	size_t embedding_max_input_bytes;     /* MCPGW_EMBEDDING_MAX_INPUT_BYTES */
	size_t embedding_max_answer_bytes;    /* MCPGW_EMBEDDING_MAX_ANSWER_BYTES */
	char local_embedding_models[4096];    /* MCPGW_LOCAL_EMBEDDING_MODELS as given */
	char local_embedding_model_map[4097]; /* derived: "a\0b\0\0"; use the functions below */
	/* how it was loaded */
	unsigned reader; /* derived: the enum settings_reader settings_load_as was given (0: settings_load) */
	int home_from;   /* derived: enum settings_home_from, where MCPGW_HOME came from */
};

/* where MCPGW_HOME came from (struct settings' home_from) */
enum settings_home_from {
	SETTINGS_HOME_ENV = 0, /* the environment: named by whoever started the program */
	SETTINGS_HOME_USER,    /* the user's config directory ($XDG_CONFIG_HOME/mcpgw, ~/.config/mcpgw): CLI only */
	SETTINGS_HOME_INSTALL, /* where the programs are installed (progpath_defaults) */
};

/* MCPGW_TOOL_IMAGES: how the images of tool results reach the model */
enum settings_tool_images {
	SETTINGS_IMAGES_AUTO = 0, /* as image parts; a model that rejects them (400) gets text from then on */
	SETTINGS_IMAGES_INLINE,   /* always as image parts (a 400 reaches the client) */
	SETTINGS_IMAGES_TEXT,     /* never: the text notes only */
};

/* MCPGW_CHAT_DRIVER: how chat.fcgi drives its chat completions */
enum settings_chat_driver {
	SETTINGS_CHAT_THREADS = 0, /* a worker thread per run, blocking */
	SETTINGS_CHAT_LOOP, /* one event-loop thread per process drives every run (the default; docs/concurrency.md) */
};

/* The table: what a value is written as */
enum settings_kind {
	SETTINGS_STRING, /* text, at most the field's size - 1 bytes */
	SETTINGS_PATH,   /* a path; a relative one is taken against MCPGW_HOME (MCPGW_HOME's against the cwd) */
	SETTINGS_INT,    /* an integer in [min, max] of unit */
	SETTINGS_BOOL,   /* 1, 0, true, false, yes, no, on, off (any case) */
	SETTINGS_ENUM,   /* one of words (any case) */
};

/* the unit of a SETTINGS_INT */
enum settings_unit {
	SETTINGS_COUNT,
	SETTINGS_BYTES,
	SETTINGS_MS,      /* an integer number of milliseconds */
	SETTINGS_SECONDS, /* written in seconds ("D", "D.F", ".F"), kept, and bounded, in milliseconds */
};

/* the C type of the field a row fills */
enum settings_ctype { SETTINGS_C_NONE, SETTINGS_C_CHARS, SETTINGS_C_INT, SETTINGS_C_LONG, SETTINGS_C_SIZE };

/* who reads a setting (readers is a mask of these) */
enum settings_reader {
	SETTINGS_BROKER = 1 << 0,     /* mcpgw-broker */
	SETTINGS_RESPONDERS = 1 << 1, /* cgi-bin/\*.fcgi */
	SETTINGS_CHATBOT = 1 << 2,    /* mcpgw-chat */
	SETTINGS_CTL = 1 << 3,        /* deploy/mcpgwctl */
	SETTINGS_CLIENT = 1 << 4,     /* mcpgw-mcp-client */
	SETTINGS_SQLITE = 1 << 5,     /* mcp-server-sqlite (its environment only, no .env) */
};

#define SETTINGS_SECRET 1 /* flags: the value is never printed (errors, --settings) */
/* flags: the value names a program to run, so it comes from the environment
 * or the install only: a .env that sets it is refused (settings_load) */
#define SETTINGS_NO_DOTENV 2

/* one word of a SETTINGS_ENUM or SETTINGS_BOOL and the int it stands for */
struct settings_word {
	const char *word;
	int value;
};

struct settings_row;

/* a row's default when it cannot be written down (MCPGW_HOME, MCPGW_STATE_DIR):
 * writes it into dst[n]. 0, or -1 with err. */
typedef int (*settings_default_fn)(const struct settings *s, char *dst, size_t n, char *err, size_t errlen);

/* a row's hook, run after its value is stored (URL trimmed, alias map built,
 * .env read, derived paths): 0, -1 with err written, or SETTINGS_BAD when
 * the value does not have the row's shape (settings_load then writes the one
 * wording with the row's expect). */
typedef int (*settings_hook_fn)(struct settings *s, const struct settings_row *r, char *err, size_t errlen);
#define SETTINGS_BAD 1

/* One row. def is the default as written in the environment; a leading
 * "$NAME" stands for the value of the earlier row NAME ("$MCPGW_HOME/.env"). */
struct settings_row {
	const char *name;                  /* MCPGW_TOOL_TIMEOUT */
	enum settings_kind kind;           /* what a value is written as */
	enum settings_unit unit;           /* SETTINGS_INT: its unit */
	long min, max;                     /* SETTINGS_INT: bounds in the unit kept (ms for seconds) */
	const struct settings_word *words; /* ENUM, BOOL: the words, ending with { NULL, 0 } */
	const char *def;                   /* the default, or NULL when def_fn computes it */
	settings_default_fn def_fn;        /* the default computed (MCPGW_HOME, MCPGW_STATE_DIR) */
	const char *def_doc;               /* the default as documented (markdown); NULL: `def` */
	size_t off;                        /* its field, or SETTINGS_NOFIELD: its program reads it */
	size_t size;                       /* sizeof the field */
	enum settings_ctype ctype;         /* the field's C type */
	unsigned readers;                  /* enum settings_reader mask */
	unsigned flags;                    /* SETTINGS_SECRET, SETTINGS_NO_DOTENV */
	const char *expect;                /* STRING checked by hook: its shape ("model[,model...]") */
	settings_hook_fn hook;             /* run after the value is stored, or NULL */
	const char *doc;                   /* one line (markdown `code` allowed): --help's meaning */
	const char *more;                  /* README's further prose after doc, or NULL */
};

#define SETTINGS_NOFIELD ((size_t)-1)

/* the rows, in load order (every "$NAME" default names an earlier row) */
extern const struct settings_row settings_rows[];
extern const size_t settings_count;

/* the words of every SETTINGS_BOOL row (settings_parse_bool takes them too) */
extern const struct settings_word settings_bool_words[];

/* settings_words: the words of an ENUM or BOOL row joined into dst[n]:
 * "error, warn, info or debug" (quote "", last_sep " or "), or
 * "`error`, `warn`, `info`, `debug`" (quote "`", last_sep ", "). Returns dst. */
const char *settings_words(const struct settings_word *w, const char *quote, const char *last_sep, char *dst, size_t n);

/* settings_find: the row named name (borrowed), or NULL. */
const struct settings_row *settings_find(const char *name);

/* settings_expect: what a value of r must be, as the error wording says it
 * after "expected " ("an integer 0..10", "seconds 0.001..86400", "error,
 * warn, info or debug", "at most 255 bytes"), into dst[n]. Returns dst. */
const char *settings_expect(const struct settings_row *r, char *dst, size_t n);

/* settings_parse_value: value checked against r's kind and bounds, without
 * storing it: 0 with *out (INT: in the unit kept; BOOL, ENUM: the word's
 * value; STRING, PATH: its length), or -1 (then settings_bad writes why). */
int settings_parse_value(const struct settings_row *r, const char *value, long *out);

/* settings_bad: the one wording for a value r does not take, into err:
 * "NAME: expected WHAT, got 'VALUE'"; a secret's value is shown as its
 * length ("got a secret of 12 bytes"), a long one cut. */
void settings_bad(const struct settings_row *r, const char *value, char *err, size_t errlen);

/* settings_default_value: r's default for s (rows before r already
 * loaded) into dst[n]: its def_fn's, else def with a leading "$NAME"
 * replaced by that earlier row's value. 0, or -1 with err. */
int settings_default_value(const struct settings_row *r, const struct settings *s, char *dst, size_t n, char *err,
			   size_t errlen);

/* settings_state_store_is_own: 1 when s's MCPGW_STATE_STORE is its default,
 * the state directory's own SQLite file (STATEDIR_STATE_STORE), which only
 * the processes of this state directory write; 0 otherwise. */
int settings_state_store_is_own(const struct settings *s);

/* settings_env_long: the INT, BOOL or ENUM setting name from this
 * process's environment alone (no .env), its default when unset or empty:
 * for programs that read one setting and not struct settings
 * (mcp-server-sqlite). 0 with *out, or -1 with err (settings_bad's
 * wording, or "NAME: not an integer setting"). */
int settings_env_long(const char *name, long *out, char *err, size_t errlen);

/* settings_load: fill s from the environment by one loop over the settings
 * table (settings_rows), in its order: each row's value (an empty variable
 * counts as unset), else its default, parsed by its kind and checked against
 * its bounds; the row's hook runs after. The MCPGW_ENV_FILE row reads the
 * .env file (dotenv_load), so every row after it sees .env too.
 * -1 with err from the first bad row, one wording for all:
 * "NAME: expected WHAT, got 'VALUE'" (a secret's value is never shown), e.g.
 * "MCPGW_TOOL_RETRIES: expected an integer 0..10, got 'x'"; hooks add their
 * own ("MCPGW_MODEL_ALIASES: alias 'a' is given twice").
 * An unset MCPGW_HOME is where the programs are installed, never the cwd: a
 * checkout's root (MCPGW_STATE_DIR then defaults to its var/), else the
 * SYSCONF compiled in (MCPGW_STATE_DIR: STATEDIR); see progpath_defaults.
 * A relative MCPGW_HOME is taken against the cwd, every other relative path
 * setting against MCPGW_HOME. MCPGW_MODEL_ALIASES: comma-separated
 * alias=model pairs, blanks around names dropped, names non-empty without
 * blanks or control bytes, no alias twice. MCPGW_LOCAL_EMBEDDING_MODELS
 * likewise: comma-separated names, none empty or holding a blank, control
 * byte or '=', none twice. Trailing '/' are removed from OPENAI_BASE_URL and
 * EMBEDDING_BASE_URL. The socket path length is not checked against
 * sun_path here. */
int settings_load(struct settings *s, char *err, size_t errlen);

/* settings_load_as: settings_load for the program reader (one enum
 * settings_reader). The command-line programs a user runs in any directory
 * (SETTINGS_CHATBOT, SETTINGS_CLIENT) take an unset MCPGW_HOME from the
 * user's config directory when it exists (settings_user_home), so that a
 * user's own .env and servers_config.json come before the install's; the
 * state directory is then its var/. Never the working directory. Every
 * other reader: settings_load. 0, or -1 with err. */
int settings_load_as(struct settings *s, unsigned reader, char *err, size_t errlen);

/* settings_user_home: the user's mcpgw config directory into dst[n]:
 * $XDG_CONFIG_HOME/mcpgw (XDG_CONFIG_HOME absolute, as the XDG Base
 * Directory spec requires), else $HOME/.config/mcpgw (HOME absolute).
 * 1 when it is a directory, 0 when it is not there (dst still names it),
 * -1 when neither variable gives an absolute path or it does not fit. */
int settings_user_home(char *dst, size_t n);

/* settings_cwd_note: for a program that took MCPGW_HOME from the user's or
 * the install's directory: when the working directory holds a .env or a
 * servers_config.json that is therefore not read (mcpgw once read them),
 * one sentence saying so and how to use them (MCPGW_HOME=DIR) into
 * msg[n], and 1; else 0. */
int settings_cwd_note(const struct settings *s, char *msg, size_t n);

/* settings_export: put the resolved MCPGW_HOME and MCPGW_STATE_DIR (absolute)
 * into this process's environment, so that ${MCPGW_STATE_DIR} in
 * servers_config.json and the programs it starts see the directories this
 * process uses. Not thread-safe (setenv): call it at start-up. 0, or -1 (ENOMEM). */
int settings_export(const struct settings *s);

/* settings_parse_long / settings_parse_seconds: bounded, checked parses
 * (whole string must be consumed). 0 or -1. parse_long: base 10, optional
 * sign, no blanks. parse_seconds: "D", "D.F" or ".F" (no sign, no exponent),
 * rounded to the nearest millisecond. */
int settings_parse_long(const char *s, long min, long max, long *out);
int settings_parse_seconds(const char *s, long min_ms, long max_ms, long *out_ms);

/* settings_parse_bool: 1/true/yes/on -> 1, 0/false/no/off -> 0 (any case).
 * 0 with *out set, or -1. */
int settings_parse_bool(const char *s, int *out);

/* settings_model_alias: the model that alias name stands for (borrowed from
 * s), or NULL when name is no alias. One level: the target is not looked up again. */
const char *settings_model_alias(const struct settings *s, const char *name);

/* settings_model_alias_at: the i-th alias (0-based) in the order given:
 * 0 with *alias and *target set (borrowed from s), -1 past the last one. */
int settings_model_alias_at(const struct settings *s, size_t i, const char **alias, const char **target);

/* settings_local_embedding_model: 1 if name is one of
 * MCPGW_LOCAL_EMBEDDING_MODELS (served by the built-in embedding model), else 0. */
int settings_local_embedding_model(const struct settings *s, const char *name);

/* settings_local_embedding_model_at: the i-th of MCPGW_LOCAL_EMBEDDING_MODELS
 * (0-based, in the order given; borrowed from s), or NULL past the last one. */
const char *settings_local_embedding_model_at(const struct settings *s, size_t i);

#endif
