/* main.c: mcpgw-keys, the state-store side of `mcpgwctl keys`: create, list (with usage), revoke and count the gateway's API keys. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/apikey.h"
#include "core/changehint.h"
#include "core/keystore.h"
#include "core/settings.h"
#include "core/statedir.h"
#include "core/statestore.h"
#include "core/usage.h"

#define PROG "mcpgw-keys"

static const char *const keys_settings[] = { "MCPGW_HOME",
					     "MCPGW_ENV_FILE",
					     "MCPGW_STATE_DIR",
					     "MCPGW_STATE_STORE",
					     "MCPGW_STATE_STORE_TIMEOUT",
					     "MCPGW_API_KEYS",
					     NULL };

static const struct usage keys_usage = {
	PROG,
	"create NAME [--servers GLOBS] [--tools GLOBS] [--rpm N] [--tpm N] [--tcpm N] [--expires DATE] [--admin]\n"
	"       " PROG " list [--json]\n"
	"       " PROG " revoke ID\n"
	"       " PROG " count\n"
	"       " PROG " --help | --version",
	"Manages the gateway's API keys in its state store (what `mcpgwctl keys` runs). Clients send a key as\n"
	"`Authorization: Bearer KEY` (or `api-key: KEY`); the store keeps only its SHA-256.\n"
	"  create  mints a key and prints it on stdout, the only time it is shown\n"
	"  list    every key (MCPGW_API_KEYS' too): id, name, state, role, policy, rates, expiry, and its usage\n"
	"          (requests, tokens, tool calls)\n"
	"  revoke  refuses the key from the very next request on, in every responder process\n"
	"  count   prints how many keys are configured (not revoked; MCPGW_API_KEYS included)\n",
	"      --servers GLOBS  the MCP servers the key may use: comma-separated globs (default: all)\n"
	"      --tools GLOBS    the tools (exposed names) it may see and run (default: all)\n"
	"      --rpm N          requests per minute (default: no limit)\n"
	"      --tpm N          upstream tokens per minute (default: no limit)\n"
	"      --tcpm N         MCP tool calls per minute (default: no limit)\n"
	"      --expires DATE   YYYY-MM-DD (valid through that day, UTC) or YYYY-MM-DDTHH:MM[:SS]Z\n"
	"      --admin          the key may also read the operator's views (GET /metrics) from any address\n"
	"      --json           list as JSON\n"
	"  -h, --help           this text\n"
	"  -V, --version        the version\n",
	keys_settings,
	"Exit status: 0 done, 1 a failure (named on stderr), 2 a command-line mistake.\n",
};

/* open_store: the state store of the settings (its directory made 0700 when
 * missing), its presence in the key hint noted (a state store restored from
 * a backup is seen by the responders after any command); NULL after a message */
static struct statestore *open_store(const struct settings *s)
{
	struct statestore_opts o = { .url = s->state_store, .timeout_ms = s->state_store_timeout_ms };
	struct statestore *st;
	char err[1024];

	if (mkdir(s->state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": cannot make the state directory %s: %s\n", s->state_dir, strerror(errno));
		return NULL;
	}
	if (!(st = statestore_open(&o, err, sizeof err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return NULL;
	}
	(void)keystore_note_presence(st, s->state_dir);
	return st;
}

/* put_key: keystore_put with the state directory's change hint, so that every
 * responder process re-reads the keys at its next request. Without the hint
 * the change is refused: a responder that knows the store holds no key
 * (the hint's presence word) would not read it again. */
static enum statestore_status put_key(const struct settings *s, struct statestore *st, const struct apikey *k)
{
	char err[512];
	struct changehint *hint = changehint_open(s->state_dir, STATEDIR_KEYS_HINT, err, sizeof err);
	enum statestore_status ss;

	if (!hint) {
		fprintf(stderr, PROG ": %s: the responders could not see the change; nothing was changed\n", err);
		return STATESTORE_EBACKEND;
	}
	ss = keystore_put(st, hint, k);
	changehint_close(hint);
	return ss;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* parse_rate: a --rpm/--tpm/--tcpm value; 0 or USAGE_EXIT after a message */
static int parse_rate(const char *opt, const char *v, long *out)
{
	if (settings_parse_long(v, 1, 1000000000L, out) < 0)
		return usage_error(PROG, "%s: expected a whole number 1..1000000000, got '%.40s'", opt, v);
	return 0;
}

/* create: mint, store, print */
static int cmd_create(const struct settings *s, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "servers", required_argument, NULL, 's' }, { "tools", required_argument, NULL, 't' },
		{ "rpm", required_argument, NULL, 'r' },     { "tpm", required_argument, NULL, 'k' },
		{ "tcpm", required_argument, NULL, 'c' },    { "expires", required_argument, NULL, 'e' },
		{ "admin", no_argument, NULL, 'a' },         { NULL, 0, NULL, 0 },
	};
	struct apikey k;
	char key[APIKEY_TEXT_MAX], err[256];
	struct statestore *st;
	enum statestore_status ss;
	int c;

	memset(&k, 0, sizeof k);
	optind = 0;
	while ((c = usage_getopt(PROG, argc, argv, "", longs)) != -1) {
		const char *glob_opt = c == 's' ? "--servers" : "--tools";

		switch (c) {
		case 's':
		case 't':
			if (toolpolicy_check_globs(optarg, err, sizeof err) < 0)
				return usage_error(PROG, "%s: %s", glob_opt, err);
			snprintf(c == 's' ? k.policy.servers : k.policy.tools, TOOLPOLICY_MAX, "%s", optarg);
			break;
		case 'r':
			if (parse_rate("--rpm", optarg, &k.rpm))
				return USAGE_EXIT;
			break;
		case 'k':
			if (parse_rate("--tpm", optarg, &k.tpm))
				return USAGE_EXIT;
			break;
		case 'c':
			if (parse_rate("--tcpm", optarg, &k.tcpm))
				return USAGE_EXIT;
			break;
		case 'e':
			if (apikey_parse_date(optarg, &k.expires_ms) < 0)
				return usage_error(PROG,
						   "--expires: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z, got '%.40s'",
						   optarg);
			break;
		case 'a': k.admin = 1; break;
		default: return USAGE_EXIT;
		}
	}
	if (optind >= argc)
		return usage_error(PROG, "create: no NAME given (a name for the key, e.g. its user)");
	if (optind + 1 < argc)
		return usage_error(PROG, "create: unexpected argument '%.100s' (one NAME)", argv[optind + 1]);
	if (!*argv[optind] || strlen(argv[optind]) >= sizeof k.name)
		return usage_error(PROG, "create: NAME must be 1..%zu bytes", sizeof k.name - 1);
	snprintf(k.name, sizeof k.name, "%s", argv[optind]);
	k.created_ms = now_ms();
	if (k.expires_ms && k.expires_ms <= k.created_ms)
		return usage_error(PROG, "--expires: that time has passed");
	if (apikey_new(key, sizeof key, k.id, sizeof k.id) < 0 || apikey_hash(key, strlen(key), k.hash) < 0) {
		fprintf(stderr, PROG ": cannot mint a key: %s\n", strerror(errno));
		return 1;
	}
	if (!(st = open_store(s)))
		return 1;
	ss = put_key(s, st, &k);
	if (ss != STATESTORE_OK) {
		fprintf(stderr, PROG ": cannot store the key: %s%s%s\n", statestore_strerror(ss),
			*statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
		statestore_close(st);
		return 1;
	}
	statestore_close(st);
	printf("%s\n", key);
	fprintf(stderr,
		PROG ": created key %s (%s); the line above is the key, shown only now: the gateway keeps only its "
		     "SHA-256. Clients send it as: Authorization: Bearer KEY\n",
		k.id, k.name);
	memset(key, 0, sizeof key);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* env_records: MCPGW_API_KEYS as records (ids env1..., no policy) into *out; how many */
static size_t env_records(const struct settings *s, struct apikey **out)
{
	const char *p = s->api_keys;
	size_t n = 0;

	*out = NULL;
	while (*p) {
		size_t k = strcspn(p, ",");
		struct apikey *more = realloc(*out, (n + 1) * sizeof **out);

		if (!more)
			break;
		*out = more;
		memset(&more[n], 0, sizeof more[n]);
		snprintf(more[n].id, sizeof more[n].id, "env%zu", n + 1);
		snprintf(more[n].name, sizeof more[n].name, "MCPGW_API_KEYS #%zu", n + 1);
		n++;
		p += k + (p[k] == ',');
	}
	return n;
}

/* state: "active", "revoked", "expired" */
static const char *state_of(const struct apikey *k, int64_t now)
{
	return k->revoked_ms ? "revoked" : apikey_live(k, now) ? "active" : "expired";
}

/* list_one: one key as a JSON object (new reference) or NULL */
static json_t *list_json(const struct apikey *k, const int64_t use[KEYSTORE_NKINDS], int64_t now)
{
	char exp[32] = "", rev[32] = "", made[32] = "";

	if (k->expires_ms)
		apikey_format_date(k->expires_ms, exp, sizeof exp);
	if (k->revoked_ms)
		apikey_format_date(k->revoked_ms, rev, sizeof rev);
	if (k->created_ms)
		apikey_format_date(k->created_ms, made, sizeof made);
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:s?, s:s?, s:s?, s:{s:I, s:I, s:I}}", "id",
			 k->id, "name", k->name, "state", state_of(k, now), "admin", k->admin != 0, "servers",
			 *k->policy.servers ? k->policy.servers : "*", "tools",
			 *k->policy.tools ? k->policy.tools : "*", "rpm", (json_int_t)k->rpm, "tpm", (json_int_t)k->tpm,
			 "tcpm", (json_int_t)k->tcpm, "created", *made ? made : NULL, "expires", *exp ? exp : NULL,
			 "revoked", *rev ? rev : NULL, "usage", "requests", (json_int_t)use[KEYSTORE_REQUESTS],
			 "tokens", (json_int_t)use[KEYSTORE_TOKENS], "tool_calls", (json_int_t)use[KEYSTORE_TOOL_CALLS]);
}

/* list_text: one key as a line of the table */
static void list_text(const struct apikey *k, const int64_t use[KEYSTORE_NKINDS], int64_t now)
{
	char exp[32] = "never", rates[96];

	if (k->expires_ms)
		apikey_format_date(k->expires_ms, exp, sizeof exp);
	snprintf(rates, sizeof rates, "%ld/%ld/%ld", k->rpm, k->tpm, k->tcpm);
	printf("%-14s %-20s %-8s %-6s %-16s %-16s %-14s %-21s %9lld %9lld %9lld\n", k->id, k->name, state_of(k, now),
	       k->admin ? "admin" : "-", *k->policy.servers ? k->policy.servers : "*",
	       *k->policy.tools ? k->policy.tools : "*", rates, exp, (long long)use[KEYSTORE_REQUESTS],
	       (long long)use[KEYSTORE_TOKENS], (long long)use[KEYSTORE_TOOL_CALLS]);
}

/* cmd_list: every key with its usage */
static int cmd_list(const struct settings *s, int as_json)
{
	struct statestore *st = open_store(s);
	struct apikey *keys = NULL, *env = NULL;
	size_t n = 0, nenv;
	json_t *all = as_json ? json_array() : NULL;
	int64_t now = now_ms();
	enum statestore_status ss;
	int rc = 0;

	if (!st)
		return 1;
	if ((ss = keystore_load(st, &keys, &n)) != STATESTORE_OK) {
		fprintf(stderr, PROG ": cannot read the keys: %s\n", statestore_strerror(ss));
		statestore_close(st);
		return 1;
	}
	nenv = env_records(s, &env);
	if (!as_json)
		printf("%-14s %-20s %-8s %-6s %-16s %-16s %-14s %-21s %9s %9s %9s\n", "ID", "NAME", "STATE", "ROLE",
		       "SERVERS", "TOOLS", "RPM/TPM/TCPM", "EXPIRES", "REQUESTS", "TOKENS", "TOOLCALLS");
	for (size_t i = 0; i < nenv + n; i++) {
		const struct apikey *k = i < nenv ? &env[i] : &keys[i - nenv];
		int64_t use[KEYSTORE_NKINDS] = { 0 };

		if ((ss = keystore_usage(st, k->id, use)) != STATESTORE_OK)
			fprintf(stderr, PROG ": the usage of %s cannot be read: %s\n", k->id, statestore_strerror(ss));
		if (as_json) {
			if (!all || json_array_append_new(all, list_json(k, use, now)) < 0)
				rc = 1;
		} else {
			list_text(k, use, now);
		}
	}
	if (as_json) {
		char *text = all ? json_dumps(all, JSON_INDENT(2)) : NULL;

		if (text)
			printf("%s\n", text);
		else
			rc = 1;
		free(text);
		json_decref(all);
	}
	free(keys);
	free(env);
	statestore_close(st);
	return fflush(stdout) == 0 ? rc : 1;
}

/* cmd_revoke: the key refused from the next request on */
static int cmd_revoke(const struct settings *s, const char *id)
{
	struct statestore *st;
	struct apikey k;
	enum statestore_status ss;
	int rc = 1;

	if (!*id || strlen(id) >= APIKEY_ID_MAX)
		return usage_error(PROG, "revoke: '%.100s' is no key id (mcpgwctl keys list shows them)", id);
	if (strncmp(id, "env", 3) == 0)
		fprintf(stderr, PROG ": %s is a key of MCPGW_API_KEYS: remove it there (.env) and restart\n", id);
	if (!(st = open_store(s)))
		return 1;
	ss = keystore_get(st, id, &k);
	if (ss == STATESTORE_NOTFOUND)
		fprintf(stderr, PROG ": no key with the id %s (mcpgwctl keys list shows them)\n", id);
	else if (ss != STATESTORE_OK)
		fprintf(stderr, PROG ": cannot read key %s: %s\n", id, statestore_strerror(ss));
	else if (k.revoked_ms) {
		printf(PROG ": key %s (%s) was already revoked\n", k.id, k.name);
		rc = 0;
	} else {
		k.revoked_ms = now_ms();
		if ((ss = put_key(s, st, &k)) != STATESTORE_OK)
			fprintf(stderr, PROG ": cannot revoke key %s: %s\n", id, statestore_strerror(ss));
		else {
			printf(PROG ": revoked key %s (%s)\n", k.id, k.name);
			rc = 0;
		}
	}
	statestore_close(st);
	return rc;
}

/* cmd_count: how many keys are configured */
static int cmd_count(const struct settings *s)
{
	struct statestore *st = open_store(s);
	struct apikey *keys = NULL, *env = NULL;
	size_t n = 0, live = 0;
	enum statestore_status ss;

	if (!st)
		return 1;
	if ((ss = keystore_load(st, &keys, &n)) != STATESTORE_OK) {
		fprintf(stderr, PROG ": cannot read the keys: %s\n", statestore_strerror(ss));
		statestore_close(st);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		live += !keys[i].revoked_ms;
	live += env_records(s, &env);
	free(env);
	free(keys);
	statestore_close(st);
	printf("%zu\n", live);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct settings s;
	char err[1024];
	const char *cmd;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage_help(stdout, &keys_usage);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		usage_version(PROG);
		return 0;
	}
	if (argc < 2)
		return usage_error(PROG, "no command given (create, list, revoke or count)");
	cmd = argv[1];
	if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "revoke") && strcmp(cmd, "count"))
		return usage_error(PROG, "unknown command '%.100s' (create, list, revoke or count)", cmd);
	if (settings_load(&s, err, sizeof err) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "create") == 0)
		return cmd_create(&s, argc - 1, argv + 1);
	if (strcmp(cmd, "list") == 0) {
		if (argc > 3 || (argc == 3 && strcmp(argv[2], "--json") != 0))
			return usage_error(PROG, "list takes only --json");
		return cmd_list(&s, argc == 3);
	}
	if (strcmp(cmd, "revoke") == 0) {
		if (argc != 3)
			return usage_error(PROG, "revoke takes one key ID");
		return cmd_revoke(&s, argv[2]);
	}
	if (argc != 2)
		return usage_error(PROG, "count takes no argument");
	return cmd_count(&s);
}
