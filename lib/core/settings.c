/* settings.c: the settings table (one row per setting) and the loop that loads it from the environment and .env. */
#include "core/settings.h"

#include "core/apikey.h"
#include "core/clientaddr.h"
#include "core/dotenv.h"
#include "core/log.h"
#include "core/progpath.h"
#include "core/statedir.h"
#include "core/statestore_url.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SET_SHOW_MAX 64 /* a bad value shown in a message, at most */
#define SET_DAY_MS 86400000L
#define SET_HOUR_MS 3600000L
#define SET_GIB 1073741824L

/* the field a row fills: its offset, size and C type (checked by _Generic) */
#define FIELD(f) \
	.off = offsetof(struct settings, f), .size = sizeof(((struct settings *)0)->f), \
	.ctype = _Generic(((struct settings *)0)->f, char *: SETTINGS_C_CHARS, int: SETTINGS_C_INT, \
			  long: SETTINGS_C_LONG, size_t: SETTINGS_C_SIZE)
#define NOFIELD .off = SETTINGS_NOFIELD, .size = 0, .ctype = SETTINGS_C_NONE

#define INT(u, lo, hi) .kind = SETTINGS_INT, .unit = (u), .min = (lo), .max = (hi)
#define SECONDS(lo, hi) INT(SETTINGS_SECONDS, lo, hi)

/* the readers most rows share */
#define R_ALL (SETTINGS_BROKER | SETTINGS_RESPONDERS | SETTINGS_CHATBOT | SETTINGS_CTL | SETTINGS_CLIENT)
#define R_GW (SETTINGS_RESPONDERS | SETTINGS_CHATBOT) /* what the tool loop and upstream read */
#define R_MCP (SETTINGS_BROKER | SETTINGS_RESPONDERS | SETTINGS_CHATBOT)

#define SET_VALUE_MAX 4200 /* the largest field of struct settings */

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

int settings_parse_bool(const char *s, int *out)
{
	for (const struct settings_word *w = settings_bool_words; s && w->word; w++) {
		if (strcasecmp(s, w->word) == 0) {
			*out = w->value;
			return 0;
		}
	}
	return -1;
}

const struct settings_word settings_bool_words[] = {
	{ "1", 1 },  { "0", 0 },  { "true", 1 }, { "false", 0 }, { "yes", 1 },
	{ "no", 0 }, { "on", 1 }, { "off", 0 },  { NULL, 0 },
};

static const struct settings_word set_log_levels[] = {
	{ "error", LOGL_ERROR }, { "warn", LOGL_WARN }, { "info", LOGL_INFO }, { "debug", LOGL_DEBUG }, { NULL, 0 },
};

static const struct settings_word set_tool_images[] = {
	{ "auto", SETTINGS_IMAGES_AUTO },
	{ "inline", SETTINGS_IMAGES_INLINE },
	{ "text", SETTINGS_IMAGES_TEXT },
	{ NULL, 0 },
};

/* the values of enum upstream_dialect and enum upstream_auth (lib/openai/upstream.h) */
static const struct settings_word set_dialects[] = {
	{ "auto", 0 },
	{ "openai", 1 },
	{ "azure", 2 },
	{ NULL, 0 },
};

static const struct settings_word set_auths[] = {
	{ "auto", 0 },
	{ "bearer", 1 },
	{ "api-key", 2 },
	{ NULL, 0 },
};

/* MCPGW_CHAT_DRIVER: enum settings_chat_driver */
static const struct settings_word set_chat_drivers[] = {
	{ "threads", SETTINGS_CHAT_THREADS },
	{ "loop", SETTINGS_CHAT_LOOP },
	{ NULL, 0 },
};

static const struct settings_word set_frontends[] = {
	{ "lighttpd", 0 },   { "lighttpd-cgi", 1 }, { "apache-fcgid", 2 }, { "apache-proxy-fcgi", 3 },
	{ "apache-cgi", 4 }, { "cgi", 4 },          { NULL, 0 },
};

/* set_copy: src into dst[n]; -1 when it does not fit */
static int set_copy(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

/* set_field: the char field of row r in s */
static char *set_field(struct settings *s, const struct settings_row *r)
{
	return (char *)s + r->off;
}

int settings_user_home(char *dst, size_t n)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	struct stat st;
	int k;

	if (xdg && xdg[0] == '/')
		k = snprintf(dst, n, "%s/mcpgw", xdg);
	else if (home && home[0] == '/')
		k = snprintf(dst, n, "%s/.config/mcpgw", home);
	else
		return -1;
	if (k < 0 || (size_t)k >= n)
		return -1;
	return stat(dst, &st) == 0 && S_ISDIR(st.st_mode) ? 1 : 0;
}

/* set_cli: s is loaded for a program users start in directories of their own */
static int set_cli(const struct settings *s)
{
	return (s->reader & (SETTINGS_CHATBOT | SETTINGS_CLIENT)) != 0;
}

/* def_home: the user's config directory for the CLI when it exists, else
 * where the programs are installed (progpath_defaults); never the cwd, which
 * may be anybody's (issue 14, case 5) */
static int def_home(const struct settings *s, char *dst, size_t n, char *err, size_t errlen)
{
	char state[sizeof s->state_dir];

	if (set_cli(s) && settings_user_home(dst, n) == 1)
		return 0;
	if (progpath_defaults(NULL, dst, n, state, sizeof state) < 0) {
		snprintf(err, errlen, "MCPGW_HOME: the install location is too long: set MCPGW_HOME");
		return -1;
	}
	return 0;
}

/* def_state_dir: $MCPGW_HOME/var when MCPGW_HOME is set, else the install's
 * (a checkout's var/, or STATEDIR) */
static int def_state_dir(const struct settings *s, char *dst, size_t n, char *err, size_t errlen)
{
	const char *home = getenv("MCPGW_HOME");
	char h[sizeof s->home];

	if ((home && *home) || s->home_from == SETTINGS_HOME_USER)
		return set_copy(dst, n, "var") < 0 ? -1 : 0;
	if (progpath_defaults(NULL, h, sizeof h, dst, n) < 0) {
		snprintf(err, errlen, "MCPGW_STATE_DIR: the install location is too long: set MCPGW_STATE_DIR");
		return -1;
	}
	return 0;
}

/* hook_api_keys: MCPGW_API_KEYS: keys of at least APIKEY_ENV_MIN printable
 * characters, no blank, comma-separated (the message never shows a key) */
static int hook_api_keys(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	const char *p = s->api_keys;
	int i = 1;

	(void)r;
	while (*p) {
		size_t k = strcspn(p, ",");

		if (k < APIKEY_ENV_MIN || k >= APIKEY_PRESENTED_MAX) {
			snprintf(err, errlen, "MCPGW_API_KEYS: key %d is not %d to %d characters long", i,
				 APIKEY_ENV_MIN, APIKEY_PRESENTED_MAX - 1);
			return -1;
		}
		for (size_t j = 0; j < k; j++)
			if (p[j] <= ' ' || p[j] > '~') {
				snprintf(err, errlen,
					 "MCPGW_API_KEYS: key %d holds a blank or a character that is not printable ASCII",
					 i);
				return -1;
			}
		p += k + (p[k] == ',');
		i++;
	}
	return 0;
}

/* hook_trusted_proxies: MCPGW_TRUSTED_PROXIES: addresses and CIDR ranges */
static int hook_trusted_proxies(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	char why[256];

	(void)r;
	if (clientaddr_check_list(s->trusted_proxies, why, sizeof why) == 0)
		return 0;
	snprintf(err, errlen, "MCPGW_TRUSTED_PROXIES: %s", why);
	return -1;
}

/* hook_trim_slash: drop trailing '/' (MCPGW_HOME keeps a lone "/", URLs lose all) */
static int hook_trim_slash(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	char *v = set_field(s, r);
	size_t len = strlen(v), keep = r->kind == SETTINGS_PATH ? 1 : 0;

	(void)err;
	(void)errlen;
	while (len > keep && v[len - 1] == '/')
		v[--len] = '\0';
	return 0;
}

/* set_not_from_dotenv: why a .env file may not set key (a SETTINGS_NO_DOTENV
 * row), or NULL. A .env is data (keys, URLs, limits) that an operator edits
 * and copies around; a program to run is code, so it comes from the
 * environment of whoever starts mcpgw or from the install, never from a file
 * found beside the configuration (issue 14, case 5: mcpgw-chat in a hostile
 * directory ran the MCPGW_BROKER_BIN of its .env). */
static const char *set_not_from_dotenv(const char *key)
{
	const struct settings_row *r = settings_find(key);

	return r && (r->flags & SETTINGS_NO_DOTENV) ? "it names a program to run" : NULL;
}

/* hook_home: trailing '/' dropped; where it came from noted (home_from) */
static int hook_home(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	char user[sizeof s->home];

	if (set_env(r->name))
		s->home_from = SETTINGS_HOME_ENV;
	else if (set_cli(s) && settings_user_home(user, sizeof user) == 1)
		s->home_from = SETTINGS_HOME_USER;
	else
		s->home_from = SETTINGS_HOME_INSTALL;
	return hook_trim_slash(s, r, err, errlen);
}

/* hook_env_file: read the .env file now, so every later row sees it */
static int hook_env_file(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	(void)r;
	return dotenv_load_except(s->env_file, set_not_from_dotenv, err, errlen);
}

/* hook_state_dir: the registry's path, derived from the state directory */
static int hook_state_dir(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	(void)r;
	(void)err;
	(void)errlen;
	/* cannot truncate: state_dir is < 4096 bytes, db_path holds 4200 */
	(void)statedir_path(s->db_path, sizeof s->db_path, s->state_dir, STATEDIR_REGISTRY);
	return 0;
}

/* def_state_store: sqlite: and the state directory's state.db */
static int def_state_store(const struct settings *s, char *dst, size_t n, char *err, size_t errlen)
{
	char file[sizeof s->state_store - sizeof "sqlite:"];

	if (statedir_path(file, sizeof file, s->state_dir, STATEDIR_STATE_STORE) < 0 ||
	    snprintf(dst, n, "sqlite:%s", file) >= (int)n) {
		snprintf(err, errlen, "MCPGW_STATE_STORE: the state directory is too long: set MCPGW_STATE_STORE");
		return -1;
	}
	return 0;
}

int settings_state_store_is_own(const struct settings *s)
{
	char own[sizeof s->state_store], err[128];

	return def_state_store(s, own, sizeof own, err, sizeof err) == 0 && strcmp(own, s->state_store) == 0;
}

/* hook_state_store: the backend of MCPGW_STATE_STORE is one this build has
 * (an unknown scheme names what is supported, never the rest of the URL) */
static int hook_state_store(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	(void)r;
	return statestore_check_url(s->state_store, err, errlen);
}

/* set_show: v for a message: printable ASCII, cut at SET_SHOW_MAX */
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

/* set_name: [b, e) without surrounding blanks, checked and copied to map + *o
 * with its NUL. 0, or -1 if empty or holding a blank, control byte or '='. */
static int set_name(const char *b, const char *e, char *map, size_t *o)
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

/* hook_aliases: MCPGW_MODEL_ALIASES parsed into model_alias_map. The map
 * cannot overflow: each "a=b" entry takes its own length + 1 there, its ','
 * pays for that, and the map is one byte longer than the raw string. */
static int hook_aliases(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	const char *p = s->model_aliases, *e, *eq;
	char show[SET_SHOW_MAX + 8];
	size_t o = 0, start;

	for (; *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		eq = memchr(p, '=', (size_t)(e - p));
		start = o;
		if (!eq || set_name(p, eq, s->model_alias_map, &o) < 0 ||
		    set_name(eq + 1, e, s->model_alias_map, &o) < 0 || (*e && !e[1]))
			return SETTINGS_BAD;
		s->model_alias_map[o] = '\0';
		if (settings_model_alias(s, s->model_alias_map + start) !=
		    s->model_alias_map + start + strlen(s->model_alias_map + start) + 1) {
			snprintf(err, errlen, "%s: alias '%s' is given twice", r->name,
				 set_show(show, sizeof show, s->model_alias_map + start));
			return -1;
		}
	}
	s->model_alias_map[o] = '\0';
	return 0;
}

/* hook_local_models: MCPGW_LOCAL_EMBEDDING_MODELS parsed into
 * local_embedding_model_map ("a\0b\0\0"). Cannot overflow: each name takes
 * at most its raw length + 1, the map is one byte longer than the raw string
 * and the ',' between names pays for each NUL but the last. */
static int hook_local_models(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	const char *p = s->local_embedding_models, *e;
	char *map = s->local_embedding_model_map, show[SET_SHOW_MAX + 8];
	size_t o = 0, start;

	for (; *p; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		start = o;
		if (set_name(p, e, map, &o) < 0 || (*e && !e[1]))
			return SETTINGS_BAD;
		for (const char *q = map; q < map + start; q += strlen(q) + 1) {
			if (strcmp(q, map + start) == 0) {
				snprintf(err, errlen, "%s: model '%s' is given twice", r->name,
					 set_show(show, sizeof show, q));
				return -1;
			}
		}
	}
	map[o] = '\0';
	return 0;
}

/* set_host_ok: [p, e) is a host as a Host header names one: a name or an IPv4
 * address (letters, digits, '.', '-'), or an IPv6 address in brackets; then
 * an optional ":PORT" (1..65535) */
static int set_host_ok(const char *p, const char *e)
{
	const char *h = p;
	long port = 0;

	if (p < e && *p == '[') {
		for (h = p + 1; h < e && (isxdigit((unsigned char)*h) || *h == ':' || *h == '.'); h++)
			;
		if (h == p + 1 || h == e || *h++ != ']')
			return 0;
	} else {
		while (h < e && (isalnum((unsigned char)*h) || *h == '.' || *h == '-'))
			h++;
		if (h == p)
			return 0;
	}
	if (h == e)
		return 1;
	if (*h++ != ':' || h == e || e - h > 5)
		return 0;
	for (; h < e && *h >= '0' && *h <= '9'; h++)
		port = port * 10 + (*h - '0');
	return h == e && port >= 1 && port <= 65535;
}

/* hook_hosts: MCPGW_ALLOWED_HOSTS (HOST[:PORT],...) and MCPGW_CORS_ORIGINS
 * (SCHEME://HOST[:PORT],...; an origin as a browser sends it, no path), or
 * "*" alone; blanks around the commas */
static int hook_hosts(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	const char *p = set_field(s, r), *e, *b;
	int origins = strcmp(r->name, "MCPGW_CORS_ORIGINS") == 0;

	(void)err;
	(void)errlen;
	if (strcmp(p, "*") == 0)
		return 0;
	for (; *p; p = *e ? e + 1 : e) {
		p += strspn(p, " ");
		e = p + strcspn(p, ",");
		for (b = e; b > p && b[-1] == ' '; b--)
			;
		if (origins) {
			const char *c = p;

			while (c < b && (isalnum((unsigned char)*c) || strchr("+.-", *c)))
				c++;
			if (c == p || !isalpha((unsigned char)*p) || b - c < 3 || strncmp(c, "://", 3) != 0 ||
			    !set_host_ok(c + 3, b))
				return SETTINGS_BAD;
		} else if (!set_host_ok(p, b)) {
			return SETTINGS_BAD;
		}
		if (*e && !e[1])
			return SETTINGS_BAD;
	}
	return 0;
}

/* The rows, in load order. doc is one line for --help; more is what README's
 * table says beyond it. Keep `|` out of the texts (a markdown cell). A row
 * reads best packed, so clang-format leaves the table alone. */
/* clang-format off */
const struct settings_row settings_rows[] = {
	{ .name = "MCPGW_HOME", .kind = SETTINGS_PATH, .def_fn = def_home,
	  .def_doc = "the checkout, else `/etc/mcpgw`", FIELD(home), .readers = R_ALL, .hook = hook_home,
	  .doc = "where `.env` and `servers_config.json` are",
	  .more = "; by default where the programs are: a checkout's root, else `SYSCONF` of `make install`, never "
		  "the working directory (`mcpgw-chat` and `mcpgw-mcp-client` first take the user's "
		  "`$XDG_CONFIG_HOME/mcpgw` or `~/.config/mcpgw` when it exists); relative paths in "
		  "`servers_config.json` are taken from here (see [below](#serversconfigjson))" },
	{ .name = "MCPGW_ENV_FILE", .kind = SETTINGS_PATH, .def = "$MCPGW_HOME/.env", FIELD(env_file),
	  .readers = R_ALL, .hook = hook_env_file, .doc = "the `.env` file",
	  .more = "(the real environment wins over it; a relative path, here and below, is taken from `MCPGW_HOME`)" },
	{ .name = "MCPGW_CONFIG", .kind = SETTINGS_PATH, .def = "$MCPGW_HOME/servers_config.json", FIELD(config),
	  .readers = SETTINGS_BROKER | SETTINGS_CHATBOT | SETTINGS_CTL, .doc = "the MCP servers" },
	{ .name = "MCPGW_STATE_DIR", .kind = SETTINGS_PATH, .def_fn = def_state_dir,
	  .def_doc = "`$MCPGW_HOME/var`, else `/var/lib/mcpgw`", FIELD(state_dir),
	  .readers = R_MCP | SETTINGS_CTL, .hook = hook_state_dir,
	  .doc = "broker socket, pid files, registry, logs",
	  .more = "(created mode 0700; one that is not the running user's, or that group or others may write, is "
		  "refused), the state store (`state.db`); with `MCPGW_HOME` unset outside a checkout: `STATEDIR` of "
		  "`make install`; see [Which configuration is believed](#configuration)" },
	{ .name = "MCPGW_BROKER_SOCKET", .kind = SETTINGS_PATH, .def = "$MCPGW_STATE_DIR/" STATEDIR_BROKER_SOCK,
	  FIELD(socket_path), .readers = R_MCP, .doc = "the broker's unix socket" },
	{ .name = "MCPGW_LISTEN", .kind = SETTINGS_STRING, .def = "127.0.0.1:8000", FIELD(listen),
	  .readers = SETTINGS_CTL | SETTINGS_RESPONDERS, .doc = "where `make run`/`mcpgwctl` make the web server listen",
	  .more = ": `HOST:PORT`, PORT 1..65535; a bare `PORT` is `127.0.0.1:PORT` (no IPv6); the responders "
		  "also serve its HOST as a `Host` header when `.env` sets it (see `MCPGW_ALLOWED_HOSTS`)" },
	{ .name = "MCPGW_FRONTEND", .kind = SETTINGS_ENUM, .words = set_frontends, .def = "lighttpd", NOFIELD,
	  .readers = SETTINGS_CTL, .doc = "`mcpgwctl` only: the web server in front",
	  .more = "(`cgi` is `apache-cgi`); see [Deployment](#deployment)" },
	{ .name = "MCPGW_USER", .kind = SETTINGS_STRING, .def = "www-data", NOFIELD, .readers = SETTINGS_CTL,
	  .doc = "`mcpgwctl` only, started as root: the user of the `apache-*` front ends",
	  .more = "(Apache's children, the responders and the broker run as it)" },
	{ .name = "MCPGW_RESPONDER_PROCS", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)", NOFIELD,
	  .readers = SETTINGS_CTL, .doc = "`mcpgwctl` only: `name:N,...` (e.g. `models:4`), processes of those responders",
	  .more = "that lighttpd (its `min-procs` and `max-procs`) or `spawn-fcgi` (`apache-proxy-fcgi`) start, 1..64, "
		  "instead of the shipped counts; `mod_fcgid` starts processes on demand, CGI one per request" },
	{ .name = "MCPGW_BROKER_AUTOSTART", .kind = SETTINGS_BOOL, .words = settings_bool_words, .def = "1",
	  FIELD(broker_autostart), .readers = SETTINGS_RESPONDERS,
	  .doc = "start a broker when none runs; `0`: off",
	  .more = "(a responder that finds none: once, under a lock, detached; see [The broker](#the-broker))" },
	{ .name = "MCPGW_BROKER_BIN", .kind = SETTINGS_PATH, .def = "", .def_doc = "(found)", NOFIELD,
	  .readers = R_GW, .flags = SETTINGS_NO_DOTENV, .doc = "the `mcpgw-broker` to start",
	  .more = "(by a responder or `mcpgw-chat`); default: found like a server's `command` (mcpgw's own program "
		  "directories, then `PATH`)" },
	{ .name = "MCPGW_LOG_LEVEL", .kind = SETTINGS_ENUM, .words = set_log_levels, .def = "info",
	  FIELD(log_level), .readers = R_ALL | SETTINGS_SQLITE, .doc = "`error`, `warn`, `info` or `debug`" },
	{ .name = "MCPGW_LOG_FILE", .kind = SETTINGS_PATH, .def = "", .def_doc = "(stderr)", FIELD(log_file),
	  .readers = SETTINGS_BROKER | SETTINGS_RESPONDERS, .doc = "the log file",
	  .more = "(created 0600, never through a symlink) of the program that reads it: the broker (`mcpgwctl` sends the broker's stderr to "
		  "`$MCPGW_STATE_DIR/broker.log`) or the responders (`$MCPGW_STATE_DIR/responders.log` in every "
		  "shipped web server config; a broker a responder starts logs there too)" },
	{ .name = "MCPGW_MAX_BODY_BYTES", INT(SETTINGS_BYTES, 1024, SET_GIB), .def = "4194304",
	  FIELD(max_body_bytes), .readers = SETTINGS_RESPONDERS, .doc = "largest request body; 413 above" },
	{ .name = "MCPGW_MAX_DRAIN_BYTES", INT(SETTINGS_BYTES, 0, SET_GIB), .def = "67108864", FIELD(max_drain_bytes),
	  .readers = SETTINGS_RESPONDERS,
	  .doc = "most request-body bytes a responder reads and throws away after answering early (a 413, an "
		 "error), so the web server gets its answer; past this the connection is closed" },
	{ .name = "MCPGW_MAX_JSON_DEPTH", INT(SETTINGS_COUNT, 2, 1000), .def = "64", FIELD(max_json_depth),
	  .readers = SETTINGS_RESPONDERS, .doc = "deepest JSON nesting of a request; 400 above" },
	{ .name = "MCPGW_MAX_JSON_VALUES", INT(SETTINGS_COUNT, 16, 100000000), .def = "100000",
	  FIELD(max_json_values), .readers = SETTINGS_RESPONDERS,
	  .doc = "most JSON values in a request body; 400 `json_too_many_values` above",
	  .more = "(each object, array, string, number, `true`, `false`, `null` counts one, member names do not), "
		  "counted before the body is parsed: parsed, a value costs up to about 240 bytes (an empty object), "
		  "so with the default a responder stays under 64 MB for any request (`tests/blackbox/bounds.bats`); "
		  "a conversation, its tools and their schemas hold a few thousand. An embeddings input of token "
		  "ids is one value per token: raise it for batches of more than 100,000 token ids" },
	/* the browser and host checks of lib/http/origin.c */
	{ .name = "MCPGW_ALLOWED_HOSTS", .kind = SETTINGS_STRING, .def = "", .def_doc = "(loopback only)",
	  FIELD(allowed_hosts), .readers = SETTINGS_RESPONDERS, .expect = "* or host[:port][,host[:port]...]",
	  .hook = hook_hosts, .doc = "`Host` headers served besides the loopback names; 403 for any other",
	  .more = "(DNS rebinding): `localhost`, `127.0.0.1` and `[::1]` on any port and the host of `MCPGW_LISTEN` "
		  "are always served; a name without `:port` is served on any port; `*` serves every `Host` "
		  "(only behind API keys or a web server that checks it). A request without `Host` (HTTP/1.0) "
		  "is served; see [Browsers](#browsers-and-cors)" },
	{ .name = "MCPGW_CORS_ORIGINS", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)",
	  FIELD(cors_origins), .readers = SETTINGS_RESPONDERS,
	  .expect = "* or scheme://host[:port][,scheme://host[:port]...]", .hook = hook_hosts,
	  .doc = "web pages (origins) whose scripts may call the gateway",
	  .more = "(`https://app.example.com`, exactly as the browser's `Origin` header says it): they get CORS "
		  "headers and preflights; a request with any other `Origin` gets 403; `*`: every page "
		  "(`Access-Control-Allow-Origin: *`, never with credentials); see [Browsers](#browsers-and-cors)" },
	{ .name = "MCPGW_MAX_MESSAGE_BYTES", INT(SETTINGS_BYTES, 4096, SET_GIB), .def = "16777216",
	  FIELD(max_message_bytes), .readers = R_MCP | SETTINGS_CLIENT, .doc = "largest JSON-RPC message",
	  .more = "to or from the broker and MCP servers; a stdio server that writes a longer line is restarted "
		  "(its calls in flight fail at once with 503 `server_unavailable`; no other server is touched)" },
	{ .name = "MCPGW_SERVER_MAX_TOOLS", INT(SETTINGS_COUNT, 1, 65536), .def = "4096", FIELD(server_max_tools),
	  .readers = SETTINGS_BROKER, .doc = "tools one MCP server may list",
	  .more = "(after the config's filters): the first ones are kept, the rest dropped with one logged error "
		  "naming the server; every other server keeps its tools" },
	{ .name = "MCPGW_SERVER_MAX_TOOLS_BYTES", INT(SETTINGS_BYTES, 4096, SET_GIB), .def = "4194304",
	  FIELD(server_tools_bytes), .readers = SETTINGS_BROKER,
	  .doc = "bytes of tool definitions (compact JSON) one MCP server may list",
	  .more = "the same way. The whole catalog is kept within 7/8 of `MCPGW_MAX_MESSAGE_BYTES`: when the servers "
		  "together list more, the largest servers' tools are left out of `tools/list` (one logged error each) "
		  "until it fits, so `GET /v1/tools` and chat keep every other server's tools" },
	{ .name = "MCPGW_SERVER_MAX_CONCURRENT_CALLS", INT(SETTINGS_COUNT, 1, 65536), .def = "64",
	  FIELD(server_max_calls), .readers = SETTINGS_BROKER,
	  .doc = "tool calls the broker has in flight on one MCP server at once",
	  .more = "(a server's `maxConcurrentCalls` overrides); more wait in its queue, first come first served. "
		  "A call whose server failed and that is sent again keeps its place" },
	{ .name = "MCPGW_SERVER_MAX_QUEUED_CALLS", INT(SETTINGS_COUNT, 0, 65536), .def = "4096",
	  FIELD(server_max_queued), .readers = SETTINGS_BROKER,
	  .doc = "tool calls that may wait for a place on one MCP server",
	  .more = "(a server's `maxQueuedCalls` overrides; 0: none wait). A call that finds the queue full is "
		  "refused at once: 503 `server_busy` with `Retry-After: 1` (a chat's model is told the server is "
		  "busy). A waiting call's timeout counts from its arrival. While other callers' calls wait, one "
		  "caller (API key) holds at most half of the queue (rounded up); a full queue takes a call of a "
		  "caller holding less by refusing the newest waiting call of one holding more. See "
		  "[Tool calls under load](#tool-calls-under-load)" },
	{ .name = "MCPGW_TOOL_TIMEOUT", SECONDS(1, SET_DAY_MS), .def = "60", FIELD(tool_timeout_ms), .readers = R_MCP,
	  .doc = "seconds a tool call may take, per attempt", .more = "(a server's `timeout` overrides)" },
	{ .name = "MCPGW_TOOL_RETRIES", INT(SETTINGS_COUNT, 0, 10), .def = "2", FIELD(tool_retries),
	  .readers = R_MCP, .doc = "retries of a tool call on transport failure",
	  .more = "(server died, timeout), only for tools annotated `readOnlyHint` or `idempotentHint` whose "
		  "arguments are at most 1 MiB (a call that may have run is not repeated otherwise; one that never "
		  "left the broker waits for its server); a result, also `isError`, is never retried" },
	{ .name = "MCPGW_INIT_TIMEOUT", SECONDS(1, SET_DAY_MS), .def = "30", FIELD(init_timeout_ms),
	  .readers = R_MCP | SETTINGS_CLIENT, .doc = "seconds from starting an MCP server to its tool list" },
	{ .name = "MCPGW_RESTART_BACKOFF_MAX", SECONDS(1, SET_DAY_MS), .def = "300", FIELD(restart_backoff_max_ms),
	  .readers = SETTINGS_BROKER | SETTINGS_CLIENT,
	  .doc = "seconds; longest wait before a failing server is started again",
	  .more = ". A server that fails to start (cannot be run, exits or fails before its tools are listed) waits "
		  "1 s, then 2, 4, ... up to this; one that was ready for 30 s, or answered a request since it got "
		  "ready (a server that exits after serving, cleanly or not), restarts after 0.1 s; one that keeps "
		  "dying soon after getting ready without answering anything doubles that wait too" },
	{ .name = "MCPGW_MAX_CLIENTS", INT(SETTINGS_COUNT, 1, 65536), .def = "4096", FIELD(max_clients),
	  .readers = SETTINGS_BROKER, .doc = "broker client connections",
	  .more = "(a chat responder worker holds one: at least `MCPGW_CAPACITY` plus the kept workers)" },
	{ .name = "MCPGW_BROKER_TIMEOUT", SECONDS(0, SET_HOUR_MS), .def = "5", FIELD(broker_timeout_ms),
	  .readers = R_MCP, .doc = "seconds to wait for the broker beyond the tool time" },
	{ .name = "MCPGW_SHUTDOWN_GRACE", SECONDS(0, SET_HOUR_MS), .def = "30", FIELD(shutdown_grace_ms),
	  .readers = SETTINGS_RESPONDERS | SETTINGS_CTL, .doc = "seconds a stop lets requests in flight finish",
	  .more = "(`mcpgwctl stop`: lighttpd's graceful shutdown, Apache's graceful-stop; a FastCGI responder on "
		  "SIGTERM) before they are cut; new requests are refused meanwhile" },
	{ .name = "MCPGW_STARTUP_WAIT", SECONDS(0, SET_HOUR_MS), .def = "30", FIELD(startup_wait_ms),
	  .readers = R_GW | SETTINGS_CTL, .doc = "seconds a request waits for MCP servers still starting",
	  .more = "(a tool list, a call of a tool not listed yet, a chat completion, a responder that just started "
		  "the broker) before answering without them, and `mcpgwctl start`/`run` before its summary; "
		  "servers whose start failed are not waited for" },
	{ .name = "OPENAI_API_KEY", .kind = SETTINGS_STRING, .def = "", .def_doc = "(empty)",
	  FIELD(openai_api_key), .readers = R_GW, .flags = SETTINGS_SECRET, .doc = "the upstream LLM's key",
	  .more = "(not needed for local servers)" },
	{ .name = "OPENAI_BASE_URL", .kind = SETTINGS_STRING, .def = "https://api.openai.com/v1",
	  FIELD(openai_base_url), .readers = R_GW, .hook = hook_trim_slash,
	  .doc = "the upstream OpenAI-compatible API", .more = "(trailing `/` dropped)" },
	{ .name = "DEFAULT_MODEL", .kind = SETTINGS_STRING, .def = "gpt-3.5-turbo", FIELD(default_model),
	  .readers = R_GW, .doc = "the model of a request that names none" },
	{ .name = "MCPGW_UPSTREAM_DIALECT", .kind = SETTINGS_ENUM, .words = set_dialects, .def = "auto",
	  FIELD(upstream_dialect), .readers = R_GW,
	  .doc = "the URL shapes of `OPENAI_BASE_URL` and `EMBEDDING_BASE_URL`",
	  .more = ": `auto` is `azure` for a host ending in `.openai.azure.com` or `.cognitiveservices.azure.com`, "
		  "else `openai` (base URL + `/chat/completions`); `azure` (Azure OpenAI, e.g. behind a custom "
		  "domain): `api-key` header, `api-version` query, and a base URL that is the resource (or ends "
		  "in `/openai`) gets `/openai/deployments/MODEL/chat/completions` (and `/embeddings`), the "
		  "request's model naming the deployment; one ending in `/openai/deployments/NAME` or "
		  "`/openai/v1` gets the path appended; see [Azure OpenAI](#azure-openai)" },
	{ .name = "MCPGW_UPSTREAM_AUTH", .kind = SETTINGS_ENUM, .words = set_auths, .def = "auto",
	  FIELD(upstream_auth), .readers = R_GW, .doc = "how the upstream key is sent",
	  .more = ": `bearer` (`Authorization: Bearer KEY`), `api-key` (`api-key: KEY`, Azure's key header); "
		  "`auto`: `api-key` for the `azure` dialect, else `bearer`" },
	{ .name = "OPENAI_API_VERSION", .kind = SETTINGS_STRING, .def = "", .def_doc = "(empty)",
	  FIELD(openai_api_version), .readers = R_GW,
	  .doc = "Azure OpenAI's `api-version` query parameter",
	  .more = "(the `azure` dialect only; the name the openai SDKs read): empty means `2024-10-21` (the GA "
		  "version) on deployment paths and none on `/openai/v1`; a base URL whose query "
		  "names one keeps its own" },
	{ .name = "MCPGW_UPSTREAM_CONNECT_TIMEOUT", SECONDS(1, SET_DAY_MS), .def = "10",
	  FIELD(upstream_connect_timeout_ms), .readers = R_GW, .doc = "seconds to connect to the upstream" },
	{ .name = "MCPGW_UPSTREAM_TIMEOUT", SECONDS(1, SET_DAY_MS), .def = "300", FIELD(upstream_timeout_ms),
	  .readers = R_GW, .doc = "seconds the upstream may stay silent", .more = "(504 after)" },
	{ .name = "MCPGW_UPSTREAM_RETRIES", INT(SETTINGS_COUNT, 0, 10), .def = "2", FIELD(upstream_retries),
	  .readers = R_GW, .doc = "retries on 429, 5xx and failed connects",
	  .more = "(none for a request whose `x-stainless-retry-count` is above 0: an openai SDK retrying by "
		  "itself)" },
	{ .name = "MCPGW_UPSTREAM_RETRY_MAX_WAIT", SECONDS(0, SET_HOUR_MS), .def = "20",
	  FIELD(upstream_retry_max_wait_ms), .readers = R_GW, .doc = "seconds; longest wait between retries",
	  .more = "(an upstream answer whose `Retry-After` asks for longer is not retried: the client gets it "
		  "with that `Retry-After`)" },
	{ .name = "MCPGW_MAX_RESPONSE_BYTES", INT(SETTINGS_BYTES, 4096, SET_GIB), .def = "33554432",
	  FIELD(max_response_bytes), .readers = R_GW, .doc = "largest upstream answer or stream event" },
	{ .name = "MCPGW_MAX_UPSTREAM_JSON_VALUES", INT(SETTINGS_COUNT, 16, 100000000), .def = "1000000",
	  FIELD(max_upstream_json_values), .readers = R_GW,
	  .doc = "most JSON values in an upstream answer or stream event; 502 `upstream_response_too_large` above",
	  .more = "(counted as `MCPGW_MAX_JSON_VALUES` counts, before the answer is parsed; a completion with "
		  "`logprobs` and 20 `top_logprobs` for 4,000 tokens holds about 800,000); an embeddings answer "
		  "above it is passed on as it came, unparsed (its usage is then not logged)" },
	{ .name = "MCPGW_MAX_ROUND_BYTES", INT(SETTINGS_BYTES, 65536, SET_GIB), .def = "8388608",
	  FIELD(max_round_bytes), .readers = R_GW,
	  .doc = "most bytes of one upstream answer's message (a round)",
	  .more = ": its text members (`content`, `refusal`, `reasoning_content`, ...), the tool calls' "
		  "arguments and its other members, counted as a stream's deltas come (and of a whole answer's "
		  "message); above it the round ends with 502 `upstream_response_too_large` (a streamed chat: an "
		  "error event, the stream stopped) and nothing of it is sent upstream again. The default is many "
		  "times the longest answer a model writes (128,000 tokens are about 0.5 MB)" },
	{ .name = "MCPGW_MAX_TOOL_ROUNDS", INT(SETTINGS_COUNT, 1, 100), .def = "8", FIELD(max_tool_rounds),
	  .readers = R_GW, .doc = "tool rounds per chat completion" },
	{ .name = "MCPGW_MAX_TOOL_OUTPUT_BYTES", INT(SETTINGS_BYTES, 256, 16777216), .def = "65536",
	  FIELD(max_tool_output_bytes), .readers = R_GW, .doc = "longest tool result given to the model",
	  .more = "(cut with a marker)" },
	{ .name = "MCPGW_TOOL_IMAGES", .kind = SETTINGS_ENUM, .words = set_tool_images, .def = "auto",
	  FIELD(tool_images), .readers = R_GW, .doc = "how tool results' images reach the model: `auto`, `inline` or `text`",
	  .more = ". `inline`: as `image_url` parts of a user message after the tool results (a model that takes "
		  "no images answers 400, which reaches the client); `text`: never, the model gets the text note "
		  "(`[image: image/png, 1234 bytes]`) only; `auto`: inline, and when the upstream rejects a round "
		  "that carries them with a 400, that round is asked once more without them and the model is "
		  "remembered (per process) as one that takes none" },
	{ .name = "MCPGW_STREAM_KEEPALIVE", SECONDS(0, SET_HOUR_MS), .def = "15", FIELD(stream_keepalive_ms),
	  .readers = SETTINGS_RESPONDERS, .doc = "seconds between SSE comments while a streamed chat's tools run",
	  .more = "(`: keep-alive`, which clients skip), so proxies and clients that cut idle streams do not; "
		  "`0`: none" },
	{ .name = "MCPGW_INJECT_TOOLS", .kind = SETTINGS_BOOL, .words = settings_bool_words, .def = "1",
	  FIELD(inject_tools), .readers = R_GW, .doc = "offer the MCP tools to the model; `0`: off" },
	{ .name = "MCPGW_MODELS_CACHE_TTL", SECONDS(0, SET_DAY_MS), .def = "300", FIELD(models_cache_ttl_ms),
	  .readers = SETTINGS_RESPONDERS, .doc = "seconds the upstream's model list is kept",
	  .more = "(`0`: ask every time), in the state store (`MCPGW_STATE_STORE`), one cache for every responder "
		  "process of the host (FastCGI or CGI): within the TTL no process asks again" },
	{ .name = "MCPGW_MODEL_ALIASES", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)",
	  FIELD(model_aliases), .readers = SETTINGS_RESPONDERS, .expect = "alias=model[,alias=model...]",
	  .hook = hook_aliases, .doc = "`alias=model,alias2=model2`",
	  .more = ": names clients may use, listed by `/v1/models`" },
	{ .name = "MCPGW_SESSION_TTL", SECONDS(1, 30 * SET_DAY_MS), .def = "86400", FIELD(session_ttl_ms),
	  .readers = SETTINGS_RESPONDERS, .doc = "seconds the hidden part of a mixed batch is kept" },
	{ .name = "MCPGW_STATE_STORE", .kind = SETTINGS_STRING, .def_fn = def_state_store,
	  .def_doc = "`sqlite:$MCPGW_STATE_DIR/state.db`", FIELD(state_store), .readers = R_GW | SETTINGS_BROKER,
	  .hook = hook_state_store, .doc = "the state store, as a URL",
	  .more = ": what every process shares across requests (the hidden part of mixed batches, the models cache); "
		  "`sqlite:/ABSOLUTE/PATH` (a file made 0600, WAL; a symlink, a file that is no SQLite database or "
		  "another program's database is refused); any other scheme is refused at start, naming what is "
		  "supported (`postgresql://` is planned, not built in); see [State store](#state-store)" },
	{ .name = "MCPGW_STATE_STORE_TIMEOUT", SECONDS(1, 60000), .def = "5", FIELD(state_store_timeout_ms),
	  .readers = R_GW | SETTINGS_BROKER, .doc = "seconds one state-store operation waits for another process",
	  .more = "holding the store (SQLite's busy timeout); past it the operation fails, logged, and the request "
		  "goes on without it" },
	{ .name = "MCPGW_API_KEYS", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)", FIELD(api_keys),
	  .readers = SETTINGS_RESPONDERS | SETTINGS_CTL, .flags = SETTINGS_SECRET, .expect = "KEY[,KEY...]",
	  .hook = hook_api_keys, .doc = "API keys clients may send (`Authorization: Bearer KEY`), for simple installs",
	  .more = "besides those of `mcpgwctl keys create` (each 16 to 511 printable characters, no blank or comma; "
		  "every tool, no rate limit; listed as `env1`, `env2`...). With no key at all only loopback clients "
		  "are served; see [Access control](#access-control)" },
	{ .name = "MCPGW_TRUSTED_PROXIES", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)",
	  FIELD(trusted_proxies), .readers = SETTINGS_RESPONDERS, .expect = "ADDRESS-OR-CIDR[,...]",
	  .hook = hook_trusted_proxies, .doc = "reverse proxies whose `X-Forwarded-For` names the client",
	  .more = "(e.g. `127.0.0.1,10.0.0.0/8`) in the log; a request that carries `X-Forwarded-For`, `Forwarded` "
		  "or `X-Real-IP` is never a loopback client, trusted or not" },
	{ .name = "MCPGW_AUDIT_PAYLOADS", .kind = SETTINGS_BOOL, .words = settings_bool_words, .def = "0",
	  FIELD(audit_payloads), .readers = SETTINGS_BROKER,
	  .doc = "keep each tool call's arguments and result in the audit table; `0`: sizes only",
	  .more = "(the default: arguments and results may hold personal data or secrets; see [Operations](#operations))" },
	{ .name = "MCPGW_AUDIT_RETENTION", SECONDS(1000, 3650 * SET_DAY_MS), .def = "2592000", FIELD(audit_retention_ms),
	  .readers = SETTINGS_BROKER, .doc = "seconds a tool call's row is kept in the audit table (30 days)" },
	{ .name = "MCPGW_CHAT_THREADS", INT(SETTINGS_COUNT, 1, 256), .def = "16", FIELD(chat_threads),
	  .readers = SETTINGS_RESPONDERS, .doc = "worker threads kept ready per chat responder process",
	  .more = "(while every one is busy, more start, up to `MCPGW_CAPACITY` more; one beyond these idle for 5 s ends; "
		  "`1`: one worker and no more, as under mod_fcgid, which sends a process one request at a time)" },
	{ .name = "MCPGW_CHAT_LOOPS", INT(SETTINGS_COUNT, 0, 64), .def = "0", FIELD(chat_loops),
	  .readers = SETTINGS_RESPONDERS,
	  .doc = "event-loop threads per chat responder process under `MCPGW_CHAT_DRIVER=loop`; `0`: one per online CPU",
	  .more = "(each drives the runs handed to it; a new run goes to the first loop that is not busy, under 70% "
		  "of a core and 256 runs, else to the one with the fewest, so that a light load keeps one loop awake "
		  "instead of waking each in turn; one loop is one core's worth of chat completions a second; its "
		  "thread is named `chat-loop`)" },
	{ .name = "MCPGW_CHAT_DRIVER", .kind = SETTINGS_ENUM, .words = set_chat_drivers, .def = "loop",
	  FIELD(chat_driver), .readers = SETTINGS_RESPONDERS,
	  .doc = "how a chat responder process drives its chat completions: `threads` or `loop`",
	  .more = ". `loop` (the default): the workers "
		  "accept, check and read each request, then hand it to the process's one event-loop thread, which "
		  "drives every run at once (the upstream on one curl multi handle, the tools on one broker "
		  "connection, the answers written without blocking; see docs/concurrency.md); `threads`: each on a "
		  "worker thread of its own for its whole life. `loop` applies to FastCGI processes with "
		  "`MCPGW_CHAT_THREADS` over 1; plain CGI and mod_fcgid (`MCPGW_CHAT_THREADS=1`) use `threads` "
		  "(said at debug in the log)" },
	{ .name = "MCPGW_CAPACITY", INT(SETTINGS_COUNT, 1, 100000), .def = "1000", FIELD(capacity),
	  .readers = SETTINGS_RESPONDERS,
	  .doc = "chat completions in progress at once on this host, every responder process together",
	  .more = "(one more is answered 503 `capacity_exceeded` with `Retry-After: 1` at once; while fewer than "
		  "an eighth of the slots are free, a caller holding its fair share of them is refused first)" },
	{ .name = "MCPGW_TOOLS_THREADS", INT(SETTINGS_COUNT, 1, 256), .def = "8", FIELD(tools_threads),
	  .readers = SETTINGS_RESPONDERS,
	  .doc = "worker threads per tools responder process: POST /v1/tools runs this many calls at once per process, "
		 "each thread with its own broker connection and copy of the tool list" },
	{ .name = "EMBEDDING_BASE_URL", .kind = SETTINGS_STRING, .def = "$OPENAI_BASE_URL",
	  FIELD(embedding_base_url), .readers = SETTINGS_RESPONDERS, .hook = hook_trim_slash,
	  .doc = "the API that computes embeddings of other models",
	  .more = "(OpenAI-compatible; the local ones are computed here)" },
	{ .name = "EMBEDDING_API_KEY", .kind = SETTINGS_STRING, .def = "$OPENAI_API_KEY",
	  FIELD(embedding_api_key), .readers = SETTINGS_RESPONDERS, .flags = SETTINGS_SECRET,
	  .doc = "its key" },
	{ .name = "MCPGW_LOCAL_EMBEDDING_MODELS", .kind = SETTINGS_STRING, .def = "mcpgw-embedding-local",
	  FIELD(local_embedding_models), .readers = SETTINGS_RESPONDERS, .expect = "model[,model...]",
	  .hook = hook_local_models, .doc = "names served by the built-in embedding model",
	  .more = "(add `text-embedding-ada-002` to serve it offline)" },
	{ .name = "MCPGW_EMBEDDING_MAX_INPUTS", INT(SETTINGS_COUNT, 1, 65536), .def = "2048",
	  FIELD(embedding_max_inputs), .readers = SETTINGS_RESPONDERS,
	  .doc = "inputs per request to the built-in model", .more = "(400 above; OpenAI's limit)" },
	{ .name = "MCPGW_EMBEDDING_MAX_INPUT_BYTES", INT(SETTINGS_BYTES, 16, 16777216), .def = "32768",
	  FIELD(embedding_max_input_bytes), .readers = SETTINGS_RESPONDERS,
	  .doc = "bytes per input to the built-in model", .more = "(token ids: a quarter of it; 400 above)" },
	{ .name = "MCPGW_EMBEDDING_MAX_ANSWER_BYTES", INT(SETTINGS_BYTES, 65536, SET_GIB), .def = "8388608",
	  FIELD(embedding_max_answer_bytes), .readers = SETTINGS_RESPONDERS,
	  .doc = "largest answer of the built-in model, reckoned before any work",
	  .more = "(inputs x `dimensions` x 16 bytes a float, or the base64 text): a request over it is a 400 "
		  "`answer_too_large` naming this setting, so 8 KB of tiny inputs cannot ask for megabytes and "
		  "seconds of CPU; `encoding_format` `base64` (the openai SDKs' default) takes a third of float's" },
	{ .name = "MCP_SQLITE_MAX_ROWS", INT(SETTINGS_COUNT, 1, 10000000), .def = "10000", NOFIELD,
	  .readers = SETTINGS_SQLITE, .doc = "rows `read_query` returns at most",
	  .more = "(`mcp-server-sqlite` only, from its environment, no `.env`)" },
	{ .name = "MCP_SQLITE_TIMEOUT_MS", INT(SETTINGS_MS, 0, SET_DAY_MS), .def = "30000", NOFIELD,
	  .readers = SETTINGS_SQLITE, .doc = "milliseconds one statement may run; `0`: no limit",
	  .more = "(`mcp-server-sqlite` only)" },
	{ .name = "MCP_SQLITE_MAX_VALUE_BYTES", INT(SETTINGS_BYTES, 1024, 1000000000), .def = "1048576", NOFIELD,
	  .readers = SETTINGS_SQLITE, .doc = "longest statement, and longest string or BLOB a statement may make, read or store",
	  .more = "(SQLite's `SQLITE_LIMIT_SQL_LENGTH` and `SQLITE_LIMIT_LENGTH`: `randomblob(400000000)` fails at once "
		  "with a tool error naming this setting; a JSON-RPC message longer than 6 times it plus 64 KB is "
		  "refused as it is read, -32700; `mcp-server-sqlite` only)" },
	{ .name = "MCP_SQLITE_MAX_RESULT_BYTES", INT(SETTINGS_BYTES, 1024, 268435456), .def = "8388608", NOFIELD,
	  .readers = SETTINGS_SQLITE, .doc = "bytes the rows of one `read_query` take as tool text",
	  .more = "(escapes counted, plus 96 bytes per value for its memory; counted column by column as rows are "
		  "built): later rows are cut with a note, "
		  "a first row over it is a tool error naming this setting (`mcp-server-sqlite` only)" },
	{ .name = "MCP_SQLITE_MAX_HEAP_BYTES", INT(SETTINGS_BYTES, 1048576, 16 * SET_GIB), .def = "33554432",
	  NOFIELD, .readers = SETTINGS_SQLITE, .doc = "memory SQLite itself may hold (`sqlite3_hard_heap_limit64`)",
	  .more = ": a statement needing more (a huge sort or `group_concat`) fails with a tool error naming this "
		  "setting and the server goes on (`mcp-server-sqlite` only)" },
	{ .name = "MCPGW_FAULT", .kind = SETTINGS_STRING, .def = "", .def_doc = "(none)", NOFIELD,
	  .readers = SETTINGS_RESPONDERS, .doc = "**tests only**: routes whose handler fails inside on purpose",
	  .more = ", so the 500 `internal_error` path can be tested from outside: comma-separated, each a path as "
		  "the responders' tables write it (`/v1/tools/{}`, `/v1/models/{*}`, `/v1/embeddings`) or a method "
		  "and a path (`POST /v1/tools`); read from the responder's environment or `.env` at start, never "
		  "from a request" },
};
/* clang-format on */

const size_t settings_count = sizeof settings_rows / sizeof settings_rows[0];

const struct settings_row *settings_find(const char *name)
{
	for (size_t i = 0; i < settings_count; i++)
		if (strcmp(settings_rows[i].name, name) == 0)
			return &settings_rows[i];
	return NULL;
}

/* set_fmt_ms: milliseconds as seconds text ("0.001", "1.5", "60") */
static const char *set_fmt_ms(char *dst, size_t n, long ms)
{
	size_t len;

	snprintf(dst, n, "%ld.%03ld", ms / 1000, ms % 1000);
	len = strlen(dst);
	while (len > 0 && dst[len - 1] == '0')
		dst[--len] = '\0';
	if (len > 0 && dst[len - 1] == '.')
		dst[len - 1] = '\0';
	return dst;
}

/* settings_words (settings.h): "a, b, c or d" (last_sep " or ") / "`a`, `b`, `c`, `d`" (quote "`", last_sep ", ") into dst[n] */
const char *settings_words(const struct settings_word *w, const char *quote, const char *last_sep, char *dst, size_t n)
{
	size_t used = 0;

	dst[0] = '\0';
	for (size_t i = 0; w[i].word && used < n; i++) {
		const char *sep = i == 0 ? "" : w[i + 1].word ? ", " : last_sep;
		int k = snprintf(dst + used, n - used, "%s%s%s%s", sep, quote, w[i].word, quote);

		used += k > 0 ? (size_t)k : 0;
	}
	return dst;
}

const char *settings_expect(const struct settings_row *r, char *dst, size_t n)
{
	char lo[32], hi[32];

	switch (r->kind) {
	case SETTINGS_INT:
		if (r->unit == SETTINGS_SECONDS)
			snprintf(dst, n, "seconds %s..%s", set_fmt_ms(lo, sizeof lo, r->min),
				 set_fmt_ms(hi, sizeof hi, r->max));
		else
			snprintf(dst, n, "an integer %ld..%ld", r->min, r->max);
		break;
	case SETTINGS_BOOL:
	case SETTINGS_ENUM: settings_words(r->words, "", " or ", dst, n); break;
	case SETTINGS_PATH:
	case SETTINGS_STRING:
		if (r->expect)
			snprintf(dst, n, "%s", r->expect);
		else if (r->off == SETTINGS_NOFIELD)
			snprintf(dst, n, "%s", r->kind == SETTINGS_PATH ? "a path" : "text");
		else
			snprintf(dst, n, "%s of at most %zu bytes", r->kind == SETTINGS_PATH ? "a path" : "text",
				 r->size - 1);
		break;
	}
	return dst;
}

/* set_word: the value of word v in w (any case), or -1 */
static int set_word(const struct settings_word *w, const char *v, long *out)
{
	for (; w && w->word; w++) {
		if (strcasecmp(w->word, v) == 0) {
			*out = w->value;
			return 0;
		}
	}
	return -1;
}

int settings_parse_value(const struct settings_row *r, const char *value, long *out)
{
	switch (r->kind) {
	case SETTINGS_INT:
		if (r->unit == SETTINGS_SECONDS)
			return settings_parse_seconds(value, r->min, r->max, out);
		return settings_parse_long(value, r->min, r->max, out);
	case SETTINGS_BOOL:
	case SETTINGS_ENUM: return set_word(r->words, value, out);
	case SETTINGS_PATH:
	case SETTINGS_STRING:
		*out = (long)strlen(value);
		return r->off == SETTINGS_NOFIELD || (size_t)*out < r->size ? 0 : -1;
	}
	return -1;
}

void settings_bad(const struct settings_row *r, const char *value, char *err, size_t errlen)
{
	char expect[256], show[SET_SHOW_MAX + 8];
	size_t len = strlen(value);

	settings_expect(r, expect, sizeof expect);
	if (r->flags & SETTINGS_SECRET)
		snprintf(err, errlen, "%s: expected %s, got a secret of %zu bytes (not shown)", r->name, expect, len);
	else if ((r->kind == SETTINGS_STRING || r->kind == SETTINGS_PATH) && r->off != SETTINGS_NOFIELD && len >= r->size)
		snprintf(err, errlen, "%s: expected at most %zu bytes, got %zu bytes", r->name, r->size - 1, len);
	else
		snprintf(err, errlen, "%s: expected %s, got '%s'", r->name, expect, set_show(show, sizeof show, value));
}

int settings_default_value(const struct settings_row *r, const struct settings *s, char *dst, size_t n, char *err,
			   size_t errlen)
{
	const struct settings_row *ref;
	const char *rest;
	char name[64];
	size_t len;

	if (r->def_fn)
		return r->def_fn(s, dst, n, err, errlen);
	if (r->def[0] != '$') {
		if (set_copy(dst, n, r->def) == 0)
			return 0;
		snprintf(err, errlen, "%s: the default does not fit", r->name);
		return -1;
	}
	rest = r->def + 1 + strspn(r->def + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
	len = (size_t)(rest - r->def - 1);
	ref = len < sizeof name ? (memcpy(name, r->def + 1, len), name[len] = '\0', settings_find(name)) : NULL;
	if (!ref || ref >= r || ref->ctype != SETTINGS_C_CHARS ||
	    snprintf(dst, n, "%s%s", (const char *)s + ref->off, rest) >= (int)n) {
		snprintf(err, errlen, "%s: the default '%s' names no earlier text setting, or does not fit", r->name,
			 r->def);
		return -1;
	}
	return 0;
}

int settings_env_long(const char *name, long *out, char *err, size_t errlen)
{
	const struct settings_row *r = settings_find(name);
	const char *v = getenv(name);

	if (!r || (r->kind != SETTINGS_INT && r->kind != SETTINGS_BOOL && r->kind != SETTINGS_ENUM)) {
		snprintf(err, errlen, "%s: not an integer setting", name);
		return -1;
	}
	if (!v || !*v)
		v = r->def;
	if (settings_parse_value(r, v, out) < 0) {
		settings_bad(r, v, err, errlen);
		return -1;
	}
	return 0;
}

/* set_join: the relative path v of row r under MCPGW_HOME (MCPGW_HOME's own
 * under the cwd) into dst[n] */
static int set_join(const struct settings *s, const struct settings_row *r, const char *v, char *dst, size_t n,
		    char *err, size_t errlen)
{
	char cwd[sizeof s->home];
	const char *base = s->home;

	if (!base[0]) {
		if (!getcwd(cwd, sizeof cwd)) {
			snprintf(err, errlen, "%s: cannot get the current directory: %s", r->name, strerror(errno));
			return -1;
		}
		base = cwd;
	}
	if (snprintf(dst, n, "%s/%s", base, v) >= (int)n) {
		settings_bad(r, v, err, errlen);
		return -1;
	}
	return 0;
}

/* set_store: the parsed value into r's field (n: INT, BOOL, ENUM's value) */
static void set_store(struct settings *s, const struct settings_row *r, const char *v, long n)
{
	char *f = (char *)s + r->off;

	switch (r->ctype) {
	case SETTINGS_C_CHARS: memcpy(f, v, strlen(v) + 1); break; /* fits: settings_parse checked */
	case SETTINGS_C_INT: *(int *)(void *)f = (int)n; break;
	case SETTINGS_C_LONG: *(long *)(void *)f = n; break;
	case SETTINGS_C_SIZE: *(size_t *)(void *)f = (size_t)n; break;
	case SETTINGS_C_NONE: break;
	}
}

/* set_row: load row r into s: its variable, else its default; a relative
 * path joined; parsed and bounded; its hook run. */
static int set_row(struct settings *s, const struct settings_row *r, char *err, size_t errlen)
{
	char def[SET_VALUE_MAX], path[SET_VALUE_MAX + sizeof s->home];
	const char *v = set_env(r->name);
	long n;
	int rc;

	if (r->off == SETTINGS_NOFIELD)
		return 0; /* its own program reads it */
	if (!v) {
		if (settings_default_value(r, s, def, sizeof def, err, errlen) < 0)
			return -1;
		v = def;
	}
	if (r->kind == SETTINGS_PATH && v[0] && v[0] != '/') {
		if (strlen(v) >= r->size) {
			settings_bad(r, v, err, errlen);
			return -1;
		}
		if (set_join(s, r, v, path, sizeof path, err, errlen) < 0)
			return -1;
		v = path;
	}
	if (settings_parse_value(r, v, &n) < 0) {
		settings_bad(r, v, err, errlen);
		return -1;
	}
	set_store(s, r, v, n);
	rc = r->hook ? r->hook(s, r, err, errlen) : 0;
	if (rc == SETTINGS_BAD)
		settings_bad(r, v, err, errlen);
	return rc == 0 ? 0 : -1;
}

int settings_load(struct settings *s, char *err, size_t errlen)
{
	return settings_load_as(s, 0, err, errlen);
}

int settings_load_as(struct settings *s, unsigned reader, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->reader = reader;
	for (size_t i = 0; i < settings_count; i++)
		if (set_row(s, &settings_rows[i], err, errlen) < 0)
			return -1;
	return 0;
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

int settings_export(const struct settings *s)
{
	return setenv("MCPGW_HOME", s->home, 1) < 0 || setenv("MCPGW_STATE_DIR", s->state_dir, 1) < 0 ? -1 : 0;
}

/* set_same_dir: a and b name the same directory */
static int set_same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int settings_cwd_note(const struct settings *s, char *msg, size_t n)
{
	static const char *const files[] = { ".env", "servers_config.json" };
	char cwd[sizeof s->home];
	struct stat st;

	if (s->home_from == SETTINGS_HOME_ENV || !getcwd(cwd, sizeof cwd) || set_same_dir(cwd, s->home))
		return 0;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (lstat(files[i], &st) == 0) {
			snprintf(msg, n,
				 "note: the %s in the working directory is not read: the configuration comes from %s (%s), "
				 "never from the directory a program is started in; to use this one, name it: "
				 "MCPGW_HOME=%s",
				 files[i], s->home,
				 s->home_from == SETTINGS_HOME_USER ? "your config directory" : "the install's", cwd);
			return 1;
		}
	}
	return 0;
}
