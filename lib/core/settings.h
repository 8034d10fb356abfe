/* settings.h: every MCPGW_* setting, one name and one default each, from the environment and .env. */
#ifndef MCPGW_SETTINGS_H
#define MCPGW_SETTINGS_H

#include <stddef.h>

struct settings {
	char home[4096];        /* MCPGW_HOME: directory holding .env and servers_config.json; default: where
				 * the programs are installed (a checkout's root, else SYSCONF: progpath_defaults) */
	char config[4096];      /* MCPGW_CONFIG: default $MCPGW_HOME/servers_config.json */
	char state_dir[4096];   /* MCPGW_STATE_DIR: default $MCPGW_HOME/var; with MCPGW_HOME unset the install's
				 * (a checkout's var/, else STATEDIR) */
	char socket_path[4200]; /* derived: $MCPGW_STATE_DIR/broker.sock (MCPGW_BROKER_SOCKET overrides) */
	char db_path[4200];     /* derived: $MCPGW_STATE_DIR/mcpgw.db */
	char log_file[4200];    /* MCPGW_LOG_FILE: default "" = stderr */
	int log_level;          /* MCPGW_LOG_LEVEL: error|warn|info|debug, default info */
	char listen[256];       /* MCPGW_LISTEN: default 127.0.0.1:8000 */
	size_t max_body_bytes;  /* MCPGW_MAX_BODY_BYTES: default 4194304 (4 MiB), 1 KiB..1 GiB */
	int max_json_depth;     /* MCPGW_MAX_JSON_DEPTH: default 64, 2..1000 */
	size_t max_message_bytes; /* MCPGW_MAX_MESSAGE_BYTES: one JSON-RPC message, default 16777216, 4 KiB..1 GiB */
	long tool_timeout_ms;   /* MCPGW_TOOL_TIMEOUT: seconds (may be fractional), default 60 */
	int tool_retries;       /* MCPGW_TOOL_RETRIES: default 2, 0..10 */
	long init_timeout_ms;   /* MCPGW_INIT_TIMEOUT: seconds, default 30: spawn to tools listed */
	long restart_backoff_max_ms; /* MCPGW_RESTART_BACKOFF_MAX: seconds, default 300: longest wait before restarting a failing server */
	int max_clients;        /* MCPGW_MAX_CLIENTS: broker client connections, default 512, 1..65536 */
	long broker_timeout_ms; /* MCPGW_BROKER_TIMEOUT: responder wait for broker answers beyond the tool timeout, seconds, default 5 */
	long startup_wait_ms;   /* MCPGW_STARTUP_WAIT: seconds a request waits for MCP servers that are still
				 * starting (not failing) before answering without them, default 10, 0..3600 */
	int broker_autostart;   /* MCPGW_BROKER_AUTOSTART: a responder that finds no broker starts one, 1/0/true/false/yes/no/on/off, default 1 */
	/* upstream LLM */
	char openai_api_key[1024];  /* OPENAI_API_KEY: default "" */
	char openai_base_url[2048]; /* OPENAI_BASE_URL: default https://api.openai.com/v1 */
	char default_model[256];    /* DEFAULT_MODEL: default gpt-3.5-turbo */
	long upstream_connect_timeout_ms; /* MCPGW_UPSTREAM_CONNECT_TIMEOUT: seconds, default 10 */
	long upstream_timeout_ms;   /* MCPGW_UPSTREAM_TIMEOUT: seconds without a byte from the upstream, default 300 */
	int upstream_retries;       /* MCPGW_UPSTREAM_RETRIES: default 2, 0..10 */
	long upstream_retry_max_wait_ms; /* MCPGW_UPSTREAM_RETRY_MAX_WAIT: seconds, default 20, 0..3600 */
	size_t max_response_bytes;  /* MCPGW_MAX_RESPONSE_BYTES: upstream body, default 33554432, 4 KiB..1 GiB */
	/* chat completions */
	int max_tool_rounds;        /* MCPGW_MAX_TOOL_ROUNDS: default 8, 1..100 */
	size_t max_tool_output_bytes; /* MCPGW_MAX_TOOL_OUTPUT_BYTES: default 65536, 256..16777216 */
	int inject_tools;           /* MCPGW_INJECT_TOOLS: 1/0/true/false/yes/no/on/off, default 1 */
	long models_cache_ttl_ms;   /* MCPGW_MODELS_CACHE_TTL: seconds, default 300, 0..86400 (0: no cache) */
	long session_ttl_ms;        /* MCPGW_SESSION_TTL: seconds, default 86400, 0.001..2592000 (30 days) */
	int chat_threads;           /* MCPGW_CHAT_THREADS: worker threads per chat responder, default 16, 1..256 */
	char model_aliases[4096];   /* MCPGW_MODEL_ALIASES: "alias=model,alias2=model2" as given, default "" */
	char model_alias_map[4097]; /* derived: "alias\0model\0...alias\0model\0\0"; use the functions below */
	/* the state store */
	char state_store[4300];     /* MCPGW_STATE_STORE: backend URL, default sqlite:$MCPGW_STATE_DIR/state.db */
	long state_store_timeout_ms; /* MCPGW_STATE_STORE_TIMEOUT: seconds one store operation waits for another process, default 5, 0.001..60 */
	/* embeddings */
	char embedding_api_key[1024];  /* EMBEDDING_API_KEY: default OPENAI_API_KEY */
	char embedding_base_url[2048]; /* EMBEDDING_BASE_URL: default OPENAI_BASE_URL */
	size_t embedding_max_inputs;   /* MCPGW_EMBEDDING_MAX_INPUTS: inputs per request, default 2048, 1..65536 */
	size_t embedding_max_input_bytes; /* MCPGW_EMBEDDING_MAX_INPUT_BYTES: one input, default 32768, 16..16777216 */
	char local_embedding_models[4096]; /* MCPGW_LOCAL_EMBEDDING_MODELS: "a,b" as given, default mcpgw-embedding-local */
	char local_embedding_model_map[4097]; /* derived: "a\0b\0\0"; use the functions below */
};

/* settings_load_dotenv: read KEY=VALUE lines of a .env file (comments, blank
 * lines, "export " prefix, single/double quotes, inline " #" comments) and
 * setenv each key that is not already set: the real environment wins.
 * A missing file is not an error. -1 with err ("path:line: what") on a
 * malformed line or an unreadable file.
 * Details: KEY is [A-Za-z_][A-Za-z0-9_]*, blanks around '=' are allowed;
 * '...' is literal; "..." knows \n \t \r \" \\ (other escapes are kept as
 * written); quotes do not span lines; unquoted values are trimmed and cut at
 * a '#' that follows a blank ("a#b" stays); no ${VAR} interpolation. Within
 * the file the last definition wins; a variable already in the environment
 * (even empty) is never overwritten. Nothing is set if any line is malformed.
 * CRLF line ends are accepted; the file may hold at most 1 MiB. */
int settings_load_dotenv(const char *path, char *err, size_t errlen);

/* settings_load: load $MCPGW_HOME/.env (or MCPGW_ENV_FILE), then fill s from
 * the environment, applying defaults and bounds. -1 with err naming the
 * variable and the problem ("MCPGW_TOOL_RETRIES: expected an integer 0..10, got 'x'").
 * An empty variable counts as unset (its default applies). An unset
 * MCPGW_HOME is where the programs are installed, never the cwd: a
 * checkout's root (MCPGW_STATE_DIR then defaults to its var/), else the
 * SYSCONF compiled in (MCPGW_STATE_DIR: STATEDIR); see progpath_defaults.
 * A relative MCPGW_HOME is taken against the cwd; relative MCPGW_ENV_FILE,
 * MCPGW_CONFIG, MCPGW_STATE_DIR, MCPGW_BROKER_SOCKET and MCPGW_LOG_FILE
 * against MCPGW_HOME.
 * Seconds settings take 1 ms..86400 s (MCPGW_BROKER_TIMEOUT, MCPGW_STARTUP_WAIT and
 * MCPGW_UPSTREAM_RETRY_MAX_WAIT 0..3600 s, MCPGW_MODELS_CACHE_TTL 0..86400 s,
 * MCPGW_SESSION_TTL up to 30 days). MCPGW_MODEL_ALIASES is checked here:
 * comma-separated alias=model pairs, blanks around names are dropped, names
 * non-empty without blanks or control bytes, no alias twice.
 * MCPGW_LOCAL_EMBEDDING_MODELS likewise: comma-separated names, blanks
 * around them dropped, none empty or holding a blank, control byte or '=',
 * none twice. Trailing '/' are removed from OPENAI_BASE_URL and
 * EMBEDDING_BASE_URL. The socket path length is not checked against
 * sun_path here. */
int settings_load(struct settings *s, char *err, size_t errlen);

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
