/* settings.h: every setting's value, loaded from the environment and .env by a loop over the settings table (settingstab.h). */
#ifndef MCPGW_SETTINGS_H
#define MCPGW_SETTINGS_H

#include <stddef.h>

/* One field per row of the settings table (lib/core/settingstab.c), which
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
	int max_json_depth;          /* MCPGW_MAX_JSON_DEPTH */
	size_t max_message_bytes;    /* MCPGW_MAX_MESSAGE_BYTES */
	long tool_timeout_ms;        /* MCPGW_TOOL_TIMEOUT (given in seconds) */
	int tool_retries;            /* MCPGW_TOOL_RETRIES */
	long init_timeout_ms;        /* MCPGW_INIT_TIMEOUT (seconds) */
	long restart_backoff_max_ms; /* MCPGW_RESTART_BACKOFF_MAX (seconds) */
	int max_clients;             /* MCPGW_MAX_CLIENTS */
	long broker_timeout_ms;      /* MCPGW_BROKER_TIMEOUT (seconds) */
	long startup_wait_ms;        /* MCPGW_STARTUP_WAIT (seconds) */
	int broker_autostart;        /* MCPGW_BROKER_AUTOSTART: 0 or 1 */
	/* upstream LLM */
	char openai_api_key[1024];        /* OPENAI_API_KEY (secret) */
	char openai_base_url[2048];       /* OPENAI_BASE_URL, without trailing '/' */
	char default_model[256];          /* DEFAULT_MODEL */
	long upstream_connect_timeout_ms; /* MCPGW_UPSTREAM_CONNECT_TIMEOUT (seconds) */
	long upstream_timeout_ms;         /* MCPGW_UPSTREAM_TIMEOUT (seconds) */
	int upstream_retries;             /* MCPGW_UPSTREAM_RETRIES */
	long upstream_retry_max_wait_ms;  /* MCPGW_UPSTREAM_RETRY_MAX_WAIT (seconds) */
	size_t max_response_bytes;        /* MCPGW_MAX_RESPONSE_BYTES */
	/* chat completions */
	int max_tool_rounds;          /* MCPGW_MAX_TOOL_ROUNDS */
	size_t max_tool_output_bytes; /* MCPGW_MAX_TOOL_OUTPUT_BYTES */
	int inject_tools;             /* MCPGW_INJECT_TOOLS: 0 or 1 */
	long models_cache_ttl_ms;     /* MCPGW_MODELS_CACHE_TTL (seconds; 0: no cache) */
	long session_ttl_ms;          /* MCPGW_SESSION_TTL (seconds) */
	int chat_threads;             /* MCPGW_CHAT_THREADS */
	char model_aliases[4096];     /* MCPGW_MODEL_ALIASES as given */
	char model_alias_map[4097];   /* derived: "alias\0model\0...\0\0"; use the functions below */
	/* embeddings */
	char embedding_api_key[1024];         /* EMBEDDING_API_KEY (secret) */
	char embedding_base_url[2048];        /* EMBEDDING_BASE_URL, without trailing '/' */
	size_t embedding_max_inputs;          /* MCPGW_EMBEDDING_MAX_INPUTS */
	size_t embedding_max_input_bytes;     /* MCPGW_EMBEDDING_MAX_INPUT_BYTES */
	char local_embedding_models[4096];    /* MCPGW_LOCAL_EMBEDDING_MODELS as given */
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

/* settings_load: fill s from the environment by one loop over the settings
 * table (settingstab.h), in its order: each row's value (an empty variable
 * counts as unset), else its default, parsed by its kind and checked against
 * its bounds; the row's hook runs after. The MCPGW_ENV_FILE row reads the
 * .env file (settings_load_dotenv), so every row after it sees .env too.
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
