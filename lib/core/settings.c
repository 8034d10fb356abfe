/* settings.c: MCPGW_* settings from the environment and .env, with defaults and checked bounds. */
#include "core/settings.h"
#include "core/statedir.h"
#include "core/statestore.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/progpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SET_DOTENV_MAX (1024 * 1024) /* largest .env accepted */
#define SET_SHOW_MAX   64            /* bad value shown in a message */
#define SET_DAY_MS     86400000L

struct set_pair {
	const char *key;   /* both point into the decoded file buffer */
	const char *value;
	size_t line;
};

struct set_pairs {
	struct set_pair *v;
	size_t n, cap;
};

static int set_is_name_start(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int set_is_name_char(int ch)
{
	return set_is_name_start(ch) || (ch >= '0' && ch <= '9');
}

static char *set_skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}


/* set_dquote: decode a double-quoted value in place; p is just past the
 * opening quote. Returns a pointer past the closing quote, NULL if none. */
static char *set_dquote(char *p)
{
	char *w = p;

	for (; *p && *p != '"'; p++) {
		if (*p != '\\' || !p[1]) {
			*w++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		default: *w++ = '\\'; *w++ = *p; break;
		}
	}
	if (*p != '"')
		return NULL;
	*w = '\0';
	return p + 1;
}

/* set_value: parse the value starting at p (after '=' and blanks), in place.
 * Returns the value, or NULL with *what. */
static char *set_value(char *p, const char **what)
{
	char *v = p + 1, *rest, *e;

	if (*p == '\'' || *p == '"') {
		if (*p == '\'') {
			rest = strchr(v, '\'');
			if (rest)
				*rest++ = '\0';
		} else {
			rest = set_dquote(v);
		}
		if (!rest) {
			*what = *p == '\'' ? "unterminated single quote" : "unterminated double quote";
			return NULL;
		}
		rest = set_skip_ws(rest);
		if (*rest && *rest != '#') {
			*what = "unexpected text after the closing quote";
			return NULL;
		}
		return v;
	}
	/* unquoted: a '#' after a blank starts a comment; trim trailing blanks */
	for (e = p; *e && !(*e == '#' && (e[-1] == ' ' || e[-1] == '\t')); e++)
		;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	return p;
}

/* set_line: parse one line in place. 0 = blank or comment, 1 = *key and
 * *value set, -1 = malformed with *what. */
static int set_line(char *line, const char **key, const char **value, const char **what)
{
	char *p = set_skip_ws(line), *k, *kend;

	if (!*p || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t'))
		p = set_skip_ws(p + 6);
	k = p;
	if (!set_is_name_start((unsigned char)*p)) {
		*what = "invalid variable name";
		return -1;
	}
	while (set_is_name_char((unsigned char)*p))
		p++;
	kend = p;
	p = set_skip_ws(p);
	if (*p != '=') {
		*what = *p && *p != '#' && p == kend ? "invalid variable name" : "expected KEY=VALUE";
		return -1;
	}
	*kend = '\0';
	*key = k;
	*value = set_value(set_skip_ws(p + 1), what);
	return *value ? 1 : -1;
}

static int set_pairs_add(struct set_pairs *ps, const char *key, const char *value, size_t line)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 32;
		struct set_pair *v = realloc(ps->v, cap * sizeof *v);

		if (!v)
			return -1;
		ps->v = v;
		ps->cap = cap;
	}
	ps->v[ps->n].key = key;
	ps->v[ps->n].value = value;
	ps->v[ps->n].line = line;
	ps->n++;
	return 0;
}

/* set_parse: split the buffer into lines and collect the pairs (in place). */
static int set_parse(const char *path, buf_t *b, struct set_pairs *ps, char *err, size_t errlen)
{
	char *p = b->data, *end = b->data + b->len, *nl;
	const char *key, *value, *what = "out of memory";
	size_t lineno = 0;
	int rc;

	for (; p < end; p = nl + 1) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (memchr(p, '\0', (size_t)(nl - p))) {
			what = "NUL byte in line";
			goto err;
		}
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		rc = set_line(p, &key, &value, &what);
		if (rc < 0 || (rc == 1 && set_pairs_add(ps, key, value, lineno) < 0))
			goto err;
	}
	return 0;
err:
	snprintf(err, errlen, "%s:%zu: %s", path, lineno, what);
	return -1;
}

int settings_load_dotenv(const char *path, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	struct set_pairs ps = { NULL, 0, 0 };
	int rc = buf_read_file(&b, path, SET_DOTENV_MAX, err, errlen);

	if (rc != 0)
		goto out;
	rc = -1;
	if (b.len > SET_DOTENV_MAX) {
		snprintf(err, errlen, "%s: larger than 1 MiB (%d bytes)", path, SET_DOTENV_MAX);
		goto out;
	}
	if (set_parse(path, &b, &ps, err, errlen) < 0)
		goto out;
	/* last definition in the file wins; a variable already set wins over all */
	for (size_t i = ps.n; i-- > 0;) {
		if (getenv(ps.v[i].key))
			continue;
		if (setenv(ps.v[i].key, ps.v[i].value, 0) < 0) {
			snprintf(err, errlen, "%s:%zu: setenv: %s", path, ps.v[i].line, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	free(ps.v);
	buf_free(&b);
	return rc < 0 ? -1 : 0;
}

int settings_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* set_digits: parse [0-9]+ into *v (no overflow past limit). Returns the end. */
static const char *set_digits(const char *p, long limit, long *v, int *over)
{
	for (*v = 0; *p >= '0' && *p <= '9'; p++) {
		if (*v > (limit - (*p - '0')) / 10)
			*over = 1;
		else
			*v = *v * 10 + (*p - '0');
	}
	return p;
}

int settings_parse_seconds(const char *s, long min_ms, long max_ms, long *out_ms)
{
	const char *p = s, *q;
	long whole = 0, frac = 0, ms;
	int over = 0, ndig, round = 0;

	if (!s || !((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
		return -1;
	p = set_digits(p, LONG_MAX / 1000 - 1, &whole, &over);
	if (*p == '.') {
		for (q = ++p, ndig = 0; *p >= '0' && *p <= '9'; p++, ndig++) {
			if (ndig < 3)
				frac = frac * 10 + (*p - '0');
			else if (ndig == 3)
				round = *p >= '5';
		}
		if (p == q)
			return -1; /* "1." */
		for (; ndig < 3; ndig++)
			frac *= 10;
	}
	if (*p || over)
		return -1;
	ms = whole * 1000 + frac + round;
	if (ms < min_ms || ms > max_ms)
		return -1;
	*out_ms = ms;
	return 0;
}

/* set_env: the variable's value, NULL when unset or empty. */
static const char *set_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* set_show: the bad value for a message: printable ASCII, cut at SET_SHOW_MAX. */
static const char *set_show(char *dst, size_t n, const char *v)
{
	size_t i;

	for (i = 0; v[i] && i < SET_SHOW_MAX && i + 4 < n; i++)
		dst[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
	if (v[i] && i + 4 < n) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
	return dst;
}

/* set_copy: copy src into dst[n], or -1 with "VAR: too long". */
static int set_copy(const char *var, const char *src, char *dst, size_t n, char *err, size_t errlen)
{
	size_t len = strlen(src);

	if (len >= n) {
		snprintf(err, errlen, "%s: too long (%zu bytes, at most %zu)", var, len, n - 1);
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

/* set_path: $var (or def) as an absolute path: relative ones are under base. */
static int set_path(const char *base, const char *var, const char *def, char *dst, size_t n,
		    char *err, size_t errlen)
{
	const char *v = set_env(var);
	int len;

	if (!v)
		v = def;
	if (v[0] == '/')
		return set_copy(var, v, dst, n, err, errlen);
	len = snprintf(dst, n, "%s/%s", base, v);
	if (len < 0 || (size_t)len >= n) {
		snprintf(err, errlen, "%s: path too long (at most %zu bytes after joining with %s)", var,
			 n - 1, base);
		return -1;
	}
	return 0;
}

/* set_home: MCPGW_HOME (a relative one made absolute against the cwd), else
 * where the programs are installed (progpath_defaults), never the cwd. The
 * default state directory goes with it: $MCPGW_HOME/var when MCPGW_HOME is
 * set, else the install's (a checkout's var/, or STATEDIR). */
static int set_home(struct settings *s, char *state_def, size_t state_deflen, char *err, size_t errlen)
{
	char cwd[sizeof s->home] = "";
	const char *v = set_env("MCPGW_HOME");
	size_t len;

	if (!v) {
		if (progpath_defaults(NULL, s->home, sizeof s->home, state_def, state_deflen) < 0) {
			snprintf(err, errlen, "MCPGW_HOME: the install location is too long: set MCPGW_HOME");
			return -1;
		}
	} else {
		if (v[0] != '/' && !getcwd(cwd, sizeof cwd)) {
			snprintf(err, errlen, "MCPGW_HOME: cannot get the current directory: %s", strerror(errno));
			return -1;
		}
		if (set_path(cwd, "MCPGW_HOME", v, s->home, sizeof s->home, err, errlen) < 0)
			return -1;
		snprintf(state_def, state_deflen, "var");
	}
	len = strlen(s->home);
	while (len > 1 && s->home[len - 1] == '/')
		s->home[--len] = '\0';
	return 0;
}

/* set_paths: config, state dir (default state_def, under home when relative) and what derives from it, log file. */
static int set_paths(struct settings *s, const char *state_def, char *err, size_t errlen)
{
	char def[sizeof s->socket_path];

	if (set_path(s->home, "MCPGW_CONFIG", "servers_config.json", s->config, sizeof s->config, err, errlen) < 0 ||
	    set_path(s->home, "MCPGW_STATE_DIR", state_def, s->state_dir, sizeof s->state_dir, err, errlen) < 0)
		return -1;
	/* neither can truncate: state_dir is < 4096 bytes, the targets hold 4200 */
	(void)statedir_path(def, sizeof def, s->state_dir, STATEDIR_BROKER_SOCK);
	if (set_path(s->home, "MCPGW_BROKER_SOCKET", def, s->socket_path, sizeof s->socket_path, err, errlen) < 0)
		return -1;
	(void)statedir_path(s->db_path, sizeof s->db_path, s->state_dir, STATEDIR_REGISTRY);
	if (!set_env("MCPGW_LOG_FILE"))
		s->log_file[0] = '\0';
	else if (set_path(s->home, "MCPGW_LOG_FILE", "", s->log_file, sizeof s->log_file, err, errlen) < 0)
		return -1;
	return 0;
}

/* set_long: integer variable var in [min, max], def when unset. */
static int set_long(const char *var, long def, long min, long max, long *out, char *err, size_t errlen)
{
	const char *v = set_env(var);
	char show[SET_SHOW_MAX + 8];

	if (!v) {
		*out = def;
		return 0;
	}
	if (settings_parse_long(v, min, max, out) < 0) {
		snprintf(err, errlen, "%s: expected an integer %ld..%ld, got '%s'", var, min, max,
			 set_show(show, sizeof show, v));
		return -1;
	}
	return 0;
}

/* set_fmt_ms: milliseconds as seconds text ("0.001", "1.5", "60"). */
static const char *set_fmt_ms(char *dst, size_t n, long ms)
{
	size_t len;

	snprintf(dst, n, "%ld.%03ld", ms / 1000, ms % 1000);
	len = strlen(dst);
	while (dst[len - 1] == '0')
		dst[--len] = '\0';
	if (dst[len - 1] == '.')
		dst[len - 1] = '\0';
	return dst;
}

/* set_seconds: seconds variable var in [min_ms, max_ms], def_ms when unset. */
static int set_seconds(const char *var, long def_ms, long min_ms, long max_ms, long *out,
		       char *err, size_t errlen)
{
	const char *v = set_env(var);
	char show[SET_SHOW_MAX + 8], lo[32], hi[32];

	if (!v) {
		*out = def_ms;
		return 0;
	}
	if (settings_parse_seconds(v, min_ms, max_ms, out) < 0) {
		snprintf(err, errlen, "%s: expected seconds %s..%s, got '%s'", var,
			 set_fmt_ms(lo, sizeof lo, min_ms), set_fmt_ms(hi, sizeof hi, max_ms),
			 set_show(show, sizeof show, v));
		return -1;
	}
	return 0;
}

/* set_limits: size and count limits. */
static int set_limits(struct settings *s, char *err, size_t errlen)
{
	long v;

	if (set_long("MCPGW_MAX_BODY_BYTES", 4194304, 1024, 1073741824, &v, err, errlen) < 0)
		return -1;
	s->max_body_bytes = (size_t)v;
	if (set_long("MCPGW_MAX_JSON_DEPTH", 64, 2, 1000, &v, err, errlen) < 0)
		return -1;
	s->max_json_depth = (int)v;
	if (set_long("MCPGW_MAX_MESSAGE_BYTES", 16777216, 4096, 1073741824, &v, err, errlen) < 0)
		return -1;
	s->max_message_bytes = (size_t)v;
	if (set_long("MCPGW_TOOL_RETRIES", 2, 0, 10, &v, err, errlen) < 0)
		return -1;
	s->tool_retries = (int)v;
	if (set_long("MCPGW_MAX_CLIENTS", 512, 1, 65536, &v, err, errlen) < 0)
		return -1;
	s->max_clients = (int)v;
	return 0;
}

/* set_timeouts: every seconds setting (1 ms .. 1 day; broker extra 0 .. 1 h). */
static int set_timeouts(struct settings *s, char *err, size_t errlen)
{
	if (set_seconds("MCPGW_TOOL_TIMEOUT", 60000, 1, SET_DAY_MS, &s->tool_timeout_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_INIT_TIMEOUT", 30000, 1, SET_DAY_MS, &s->init_timeout_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_RESTART_BACKOFF_MAX", 300000, 1, SET_DAY_MS, &s->restart_backoff_max_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_BROKER_TIMEOUT", 5000, 0, 3600000, &s->broker_timeout_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_STARTUP_WAIT", 30000, 0, 3600000, &s->startup_wait_ms, err, errlen) < 0)
		return -1;
	return 0;
}

/* set_str: string variable var, def when unset or empty. */
static int set_str(const char *var, const char *def, char *dst, size_t n, char *err, size_t errlen)
{
	const char *v = set_env(var);

	return set_copy(var, v ? v : def, dst, n, err, errlen);
}

/* set_state_store: MCPGW_STATE_STORE (default sqlite: + the state directory's state.db), its
 * backend checked (an unknown scheme names what is supported), and MCPGW_STATE_STORE_TIMEOUT */
static int set_state_store(struct settings *s, char *err, size_t errlen)
{
	char def[sizeof s->state_store], file[sizeof s->state_store - sizeof "sqlite:"], why[512];

	(void)statedir_path(file, sizeof file, s->state_dir, STATEDIR_STATE_STORE);
	snprintf(def, sizeof def, "sqlite:%s", file);
	if (set_str("MCPGW_STATE_STORE", def, s->state_store, sizeof s->state_store, err, errlen) < 0)
		return -1;
	if (statestore_check_url(s->state_store, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return set_seconds("MCPGW_STATE_STORE_TIMEOUT", 5000, 1, 60000, &s->state_store_timeout_ms, err, errlen);
}

/* set_trim_url: drop trailing '/' of a base URL in place */
static void set_trim_url(char *url)
{
	size_t len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
}

/* set_strings: log level, listen address, upstream LLM. */
static int set_strings(struct settings *s, char *err, size_t errlen)
{
	const char *v = set_env("MCPGW_LOG_LEVEL");
	char show[SET_SHOW_MAX + 8];

	s->log_level = v ? log_level_parse(v) : LOGL_INFO;
	if (s->log_level < 0) {
		snprintf(err, errlen, "MCPGW_LOG_LEVEL: expected error, warn, info or debug, got '%s'",
			 set_show(show, sizeof show, v));
		return -1;
	}
	if (set_str("MCPGW_LISTEN", "127.0.0.1:8000", s->listen, sizeof s->listen, err, errlen) < 0 ||
	    set_str("OPENAI_API_KEY", "", s->openai_api_key, sizeof s->openai_api_key, err, errlen) < 0 ||
	    set_str("OPENAI_BASE_URL", "https://api.openai.com/v1", s->openai_base_url,
		    sizeof s->openai_base_url, err, errlen) < 0 ||
	    set_str("DEFAULT_MODEL", "gpt-3.5-turbo", s->default_model, sizeof s->default_model, err, errlen) < 0)
		return -1;
	set_trim_url(s->openai_base_url);
	return 0;
}

int settings_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on", NULL };
	static const char *const no[] = { "0", "false", "no", "off", NULL };

	for (int i = 0; s && yes[i]; i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

/* set_bool: boolean variable var, def when unset. */
static int set_bool(const char *var, int def, int *out, char *err, size_t errlen)
{
	const char *v = set_env(var);
	char show[SET_SHOW_MAX + 8];

	if (!v) {
		*out = def;
		return 0;
	}
	if (settings_parse_bool(v, out) < 0) {
		snprintf(err, errlen, "%s: expected 1, 0, true, false, yes, no, on or off, got '%s'", var,
			 set_show(show, sizeof show, v));
		return -1;
	}
	return 0;
}

/* set_broker: the responders' side of the broker. */
static int set_broker(struct settings *s, char *err, size_t errlen)
{
	return set_bool("MCPGW_BROKER_AUTOSTART", 1, &s->broker_autostart, err, errlen);
}

/* set_upstream: the upstream client's timeouts, retries and bound. */
static int set_upstream(struct settings *s, char *err, size_t errlen)
{
	long v;

	if (set_seconds("MCPGW_UPSTREAM_CONNECT_TIMEOUT", 10000, 1, SET_DAY_MS, &s->upstream_connect_timeout_ms,
			err, errlen) < 0 ||
	    set_seconds("MCPGW_UPSTREAM_TIMEOUT", 300000, 1, SET_DAY_MS, &s->upstream_timeout_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_UPSTREAM_RETRY_MAX_WAIT", 20000, 0, 3600000, &s->upstream_retry_max_wait_ms,
			err, errlen) < 0)
		return -1;
	if (set_long("MCPGW_UPSTREAM_RETRIES", 2, 0, 10, &v, err, errlen) < 0)
		return -1;
	s->upstream_retries = (int)v;
	if (set_long("MCPGW_MAX_RESPONSE_BYTES", 33554432, 4096, 1073741824, &v, err, errlen) < 0)
		return -1;
	s->max_response_bytes = (size_t)v;
	return 0;
}

/* set_chat: tool loop, caches and the chat responder's threads. */
static int set_chat(struct settings *s, char *err, size_t errlen)
{
	long v;

	if (set_long("MCPGW_MAX_TOOL_ROUNDS", 8, 1, 100, &v, err, errlen) < 0)
		return -1;
	s->max_tool_rounds = (int)v;
	if (set_long("MCPGW_MAX_TOOL_OUTPUT_BYTES", 65536, 256, 16777216, &v, err, errlen) < 0)
		return -1;
	s->max_tool_output_bytes = (size_t)v;
	if (set_long("MCPGW_CHAT_THREADS", 16, 1, 256, &v, err, errlen) < 0)
		return -1;
	s->chat_threads = (int)v;
	if (set_bool("MCPGW_INJECT_TOOLS", 1, &s->inject_tools, err, errlen) < 0 ||
	    set_seconds("MCPGW_MODELS_CACHE_TTL", 300000, 0, SET_DAY_MS, &s->models_cache_ttl_ms, err, errlen) < 0 ||
	    set_seconds("MCPGW_SESSION_TTL", SET_DAY_MS, 1, 30 * SET_DAY_MS, &s->session_ttl_ms, err, errlen) < 0)
		return -1;
	return 0;
}

/* set_alias_name: [b, e) without surrounding blanks, checked and copied to
 * map + *o with its NUL. 0, or -1 if empty or holding a blank, control byte or '='. */
static int set_alias_name(const char *b, const char *e, char *map, size_t *o)
{
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (b == e)
		return -1;
	for (const char *q = b; q < e; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '=')
			return -1;
	memcpy(map + *o, b, (size_t)(e - b));
	*o += (size_t)(e - b);
	map[(*o)++] = '\0';
	return 0;
}

/* set_aliases: MCPGW_MODEL_ALIASES, raw and parsed into model_alias_map. The
 * map cannot overflow: each "a=b" entry takes its own length + 1 there, its
 * ',' pays for that, and the map is one byte longer than the raw string. */
static int set_aliases(struct settings *s, char *err, size_t errlen)
{
	const char *p = s->model_aliases, *e, *eq;
	char show[SET_SHOW_MAX + 8];
	size_t o = 0, start;

	if (set_str("MCPGW_MODEL_ALIASES", "", s->model_aliases, sizeof s->model_aliases, err, errlen) < 0)
		return -1;
	for (; *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		eq = memchr(p, '=', (size_t)(e - p));
		start = o;
		if (!eq || set_alias_name(p, eq, s->model_alias_map, &o) < 0 ||
		    set_alias_name(eq + 1, e, s->model_alias_map, &o) < 0 || (*e && !e[1]))
			goto bad;
		s->model_alias_map[o] = '\0';
		if (settings_model_alias(s, s->model_alias_map + start) != s->model_alias_map + start +
		    strlen(s->model_alias_map + start) + 1) {
			snprintf(err, errlen, "MCPGW_MODEL_ALIASES: alias '%s' is given twice",
				 set_show(show, sizeof show, s->model_alias_map + start));
			return -1;
		}
	}
	s->model_alias_map[o] = '\0';
	return 0;
bad:
	snprintf(err, errlen, "MCPGW_MODEL_ALIASES: expected alias=model[,alias=model...], got '%s'",
		 set_show(show, sizeof show, s->model_aliases));
	return -1;
}

const char *settings_model_alias(const struct settings *s, const char *name)
{
	const char *alias, *target;

	for (size_t i = 0; settings_model_alias_at(s, i, &alias, &target) == 0; i++)
		if (strcmp(alias, name) == 0)
			return target;
	return NULL;
}

int settings_model_alias_at(const struct settings *s, size_t i, const char **alias, const char **target)
{
	const char *p = s->model_alias_map;

	for (; *p; i--) {
		const char *t = p + strlen(p) + 1;

		if (i == 0) {
			*alias = p;
			*target = t;
			return 0;
		}
		p = t + strlen(t) + 1;
	}
	return -1;
}

/* set_local_models: MCPGW_LOCAL_EMBEDDING_MODELS, raw and parsed into
 * local_embedding_model_map ("a\0b\0\0"). Cannot overflow: each name takes
 * at most its raw length + 1, the map is one byte longer than the raw string
 * and the ',' between names pays for each NUL but the last. */
static int set_local_models(struct settings *s, char *err, size_t errlen)
{
	const char *p = s->local_embedding_models, *e;
	char show[SET_SHOW_MAX + 8];
	size_t o = 0, start;

	if (set_str("MCPGW_LOCAL_EMBEDDING_MODELS", "mcpgw-embedding-local", s->local_embedding_models,
		    sizeof s->local_embedding_models, err, errlen) < 0)
		return -1;
	for (; *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		start = o;
		if (set_alias_name(p, e, s->local_embedding_model_map, &o) < 0 || (*e && !e[1])) {
			snprintf(err, errlen, "MCPGW_LOCAL_EMBEDDING_MODELS: expected model[,model...], got '%s'",
				 set_show(show, sizeof show, s->local_embedding_models));
			return -1;
		}
		for (const char *q = s->local_embedding_model_map; q < s->local_embedding_model_map + start;
		     q += strlen(q) + 1) {
			if (strcmp(q, s->local_embedding_model_map + start) == 0) {
				snprintf(err, errlen, "MCPGW_LOCAL_EMBEDDING_MODELS: model '%s' is given twice",
					 set_show(show, sizeof show, q));
				return -1;
			}
		}
	}
	s->local_embedding_model_map[o] = '\0';
	return 0;
}

/* set_embeddings: the embeddings upstream (defaults: the chat upstream's), limits and local models. */
static int set_embeddings(struct settings *s, char *err, size_t errlen)
{
	long v;

	if (set_str("EMBEDDING_API_KEY", s->openai_api_key, s->embedding_api_key, sizeof s->embedding_api_key,
		    err, errlen) < 0 ||
	    set_str("EMBEDDING_BASE_URL", s->openai_base_url, s->embedding_base_url, sizeof s->embedding_base_url,
		    err, errlen) < 0)
		return -1;
	set_trim_url(s->embedding_base_url);
	if (set_long("MCPGW_EMBEDDING_MAX_INPUTS", 2048, 1, 65536, &v, err, errlen) < 0)
		return -1;
	s->embedding_max_inputs = (size_t)v;
	if (set_long("MCPGW_EMBEDDING_MAX_INPUT_BYTES", 32768, 16, 16777216, &v, err, errlen) < 0)
		return -1;
	s->embedding_max_input_bytes = (size_t)v;
	return set_local_models(s, err, errlen);
}

int settings_local_embedding_model(const struct settings *s, const char *name)
{
	const char *m;

	for (size_t i = 0; (m = settings_local_embedding_model_at(s, i)); i++)
		if (strcmp(m, name) == 0)
			return 1;
	return 0;
}

const char *settings_local_embedding_model_at(const struct settings *s, size_t i)
{
	const char *p = s->local_embedding_model_map;

	for (; *p; p += strlen(p) + 1, i--)
		if (i == 0)
			return p;
	return NULL;
}

int settings_load(struct settings *s, char *err, size_t errlen)
{
	char envfile[sizeof s->home], state_def[sizeof s->state_dir];

	memset(s, 0, sizeof *s);
	if (set_home(s, state_def, sizeof state_def, err, errlen) < 0 ||
	    set_path(s->home, "MCPGW_ENV_FILE", ".env", envfile, sizeof envfile, err, errlen) < 0 ||
	    settings_load_dotenv(envfile, err, errlen) < 0 ||
	    set_paths(s, state_def, err, errlen) < 0 || set_limits(s, err, errlen) < 0 ||
	    set_timeouts(s, err, errlen) < 0 || set_broker(s, err, errlen) < 0 || set_strings(s, err, errlen) < 0 ||
	    set_upstream(s, err, errlen) < 0 || set_chat(s, err, errlen) < 0 || set_aliases(s, err, errlen) < 0 ||
	    set_embeddings(s, err, errlen) < 0 || set_state_store(s, err, errlen) < 0)
		return -1;
	return 0;
}

int settings_export(const struct settings *s)
{
	return setenv("MCPGW_HOME", s->home, 1) < 0 || setenv("MCPGW_STATE_DIR", s->state_dir, 1) < 0 ? -1 : 0;
}
