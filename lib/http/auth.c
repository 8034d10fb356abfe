/* auth.c: the API-key check of every request: keys cached per process, revalidated by the store's key generation; policy, rates, usage. */
#include "http/auth.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/keystore.h"
#include "core/log.h"
#include "http/oai.h"

#define AUTH_ENV_MAX 64     /* keys of MCPGW_API_KEYS at most */
#define AUTH_REOPEN_MS 1000 /* after the store failed to open, the next try */
#define AUTH_DOCS "docs/access-control.md"
#define AUTH_FLUSH_MS 1000  /* usage counted in memory reaches the store at least this often */
#define AUTH_PENDING_MAX 64 /* keys with usage waiting in memory; one more flushes at once */

/* usage of one key not yet in the store */
struct auth_pending {
	char id[APIKEY_ID_MAX];
	int64_t n[KEYSTORE_NKINDS];
};

/* The process's key cache: one per process (every worker thread shares it,
 * under lock), loaded from the store when its generation moved. */
static struct {
	pthread_mutex_t lock;
	int init;              /* the settings' keys were read */
	struct statestore *st; /* opened on first use, closed at exit */
	int64_t next_open_ms;  /* no new open attempt before this (after a failure) */
	int loaded;            /* keys holds the records of generation gen */
	int64_t gen;
	struct apikey *keys;             /* the store's records, revoked ones too */
	size_t n, nlive;                 /* records; those not revoked */
	struct apikey env[AUTH_ENV_MAX]; /* MCPGW_API_KEYS, hashed */
	size_t nenv;
	struct auth_pending pending[AUTH_PENDING_MAX]; /* usage counted since the last flush */
	size_t npending;
	int flusher; /* the flushing thread runs */
} A = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t auth_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* flush_locked: the usage counted in memory added to the store's counters (under A.lock) */
static void flush_locked(void)
{
	for (size_t i = 0; i < A.npending && A.st; i++)
		for (int k = 0; k < KEYSTORE_NKINDS; k++) {
			enum statestore_status s;

			if (!A.pending[i].n[k])
				continue;
			s = keystore_count(A.st, A.pending[i].id, (enum keystore_kind)k, A.pending[i].n[k]);
			if (s != STATESTORE_OK)
				log_warn("API key %s: %lld %s could not be counted: %s", A.pending[i].id,
					 (long long)A.pending[i].n[k], keystore_kind_name((enum keystore_kind)k),
					 statestore_strerror(s));
		}
	A.npending = 0;
}

/* count_locked: n of kind for key id, in memory until the next flush (under A.lock) */
static void count_locked(const char *id, enum keystore_kind kind, int64_t n)
{
	size_t i;

	for (i = 0; i < A.npending && strcmp(A.pending[i].id, id) != 0; i++)
		;
	if (i == AUTH_PENDING_MAX) {
		flush_locked();
		i = 0;
	}
	if (i == A.npending) {
		memset(&A.pending[i], 0, sizeof A.pending[i]);
		snprintf(A.pending[i].id, sizeof A.pending[i].id, "%s", id);
		A.npending++;
	}
	A.pending[i].n[kind] += n;
}

/* flusher: a thread that writes the usage counted in memory every AUTH_FLUSH_MS, so that
 * mcpgwctl keys list is at most that much behind whatever the processes do next */
static void *flusher(void *arg)
{
	struct timespec ts = { AUTH_FLUSH_MS / 1000, (AUTH_FLUSH_MS % 1000) * 1000000L };

	(void)arg;
	for (;;) {
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&A.lock);
		if (A.npending)
			flush_locked();
		pthread_mutex_unlock(&A.lock);
	}
	return NULL;
}

/* flusher_start: the flushing thread, once, with every signal blocked (the process's
 * own threads take them); 0, or -1 (usage then reaches the store at exit) */
static int flusher_start(void)
{
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if (A.flusher)
		return 0;
	if (pthread_attr_init(&attr) != 0)
		return -1;
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&attr, 64 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, flusher, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	A.flusher = rc == 0;
	return rc == 0 ? 0 : -1;
}

/* auth_exit: the usage still in memory written, the cache's memory and store handle freed, at process exit */
static void auth_exit(void)
{
	pthread_mutex_lock(&A.lock);
	flush_locked();
	statestore_close(A.st);
	A.st = NULL;
	free(A.keys);
	A.keys = NULL;
	A.n = A.nlive = 0;
	memset(A.env, 0, sizeof A.env);
	pthread_mutex_unlock(&A.lock);
}

/* env_keys: MCPGW_API_KEYS hashed into A.env (once; the settings checked their form) */
static void env_keys(const struct settings *s)
{
	const char *p = s->api_keys;

	while (*p && A.nenv < AUTH_ENV_MAX) {
		size_t k = strcspn(p, ",");
		struct apikey *e = &A.env[A.nenv];

		if (k > 0 && apikey_hash(p, k, e->hash) == 0) {
			snprintf(e->id, sizeof e->id, "env%zu", A.nenv + 1);
			snprintf(e->name, sizeof e->name, "MCPGW_API_KEYS #%zu", A.nenv + 1);
			A.nenv++;
		}
		p += k + (p[k] == ',');
	}
	if (*p)
		log_warn("MCPGW_API_KEYS: only the first %d keys are used", AUTH_ENV_MAX);
}

/* one request being checked */
struct auth_req {
	struct auth_caller *c;
	struct hio *h;
	unsigned spends;
	const char *method, *path;
};

/* store_open: A.st open (not retried more than once a second); 0 or -1 */
static int store_open(const struct settings *s)
{
	struct statestore_opts o = { .url = s->state_store, .timeout_ms = s->state_store_timeout_ms };
	char err[512];
	int64_t now = auth_now();

	if (A.st)
		return 0;
	if (now < A.next_open_ms)
		return -1;
	/* the state directory may not exist yet (the broker, started by a request, makes it too) */
	(void)mkdir(s->state_dir, 0700);
	if (!(A.st = statestore_open(&o, err, sizeof err))) {
		A.next_open_ms = now + AUTH_REOPEN_MS;
		log_error("API keys: the state store cannot be opened: %s", err);
		return -1;
	}
	return 0;
}

/* refresh: the cached records current (one read of the generation; a reload when it moved); 0 or -1 */
static int refresh(void)
{
	int64_t gen;
	struct apikey *keys = NULL;
	size_t n = 0;
	enum statestore_status s = keystore_generation(A.st, &gen);

	if (s == STATESTORE_OK && A.loaded && gen == A.gen)
		return 0;
	if (s == STATESTORE_OK)
		s = keystore_load(A.st, &keys, &n);
	if (s != STATESTORE_OK) {
		log_error("API keys: the state store cannot be read: %s%s%s", statestore_strerror(s),
			  *statestore_errmsg(A.st) ? ": " : "", statestore_errmsg(A.st));
		return -1;
	}
	free(A.keys);
	A.keys = keys;
	A.n = n;
	A.nlive = 0;
	for (size_t i = 0; i < n; i++)
		A.nlive += !keys[i].revoked_ms;
	A.gen = gen;
	A.loaded = 1;
	log_debug("API keys: generation %lld, %zu keys (%zu not revoked)", (long long)gen, n, A.nlive);
	return 0;
}

/* find: the record whose hash is that of the presented key, or NULL. A key
 * of the minted form is looked up by its id; every key is also compared
 * with each MCPGW_API_KEYS key, all in constant time per comparison. */
static const struct apikey *find(const char *key, const unsigned char hash[APIKEY_HASH_BYTES])
{
	char id[APIKEY_ID_MAX];
	const struct apikey *hit = NULL;

	if (apikey_id(key, id, sizeof id) == 0)
		for (size_t i = 0; i < A.n; i++)
			if (strcmp(A.keys[i].id, id) == 0 && apikey_equal(A.keys[i].hash, hash))
				hit = &A.keys[i];
	for (size_t i = 0; i < A.nenv; i++)
		if (apikey_equal(A.env[i].hash, hash) && !hit)
			hit = &A.env[i];
	return hit;
}

/* presented: the key the client sent, into key: "Authorization: Bearer KEY"
 * as OpenAI's clients send it, else "api-key: KEY" as Azure OpenAI's
 * (learn.microsoft.com/azure/ai-foundry/openai/reference#authentication).
 * 1 with a key, 0 without one, -1 when one is there but malformed or too long */
static int presented(struct auth_req *x, char *key, size_t keylen)
{
	const char *a = hio_param(x->h, "HTTP_AUTHORIZATION"), *v = NULL;
	size_t n;

	if (a && *a) {
		/* RFC 6750 2.1: the scheme is case-insensitive, then one or more spaces */
		if (strncasecmp(a, "Bearer ", 7) != 0)
			return -1;
		v = a + 7 + strspn(a + 7, " ");
	} else if ((a = hio_param(x->h, "HTTP_API_KEY")) && *a) {
		v = a;
	}
	if (!v)
		return 0;
	n = strcspn(v, " \t");
	if (n == 0 || n >= keylen || v[n + strspn(v + n, " \t")])
		return -1;
	memcpy(key, v, n);
	key[n] = '\0';
	return 1;
}

/* send_401: 401 invalid_api_key in OpenAI's words (platform.openai.com/docs/guides/error-codes:
 * "401 - Invalid Authentication" / "Incorrect API key provided"), type as OpenAI sends it;
 * the key itself is never shown: shown is the public part of a minted one ("" for others),
 * why replaces the sentence for a key that is right but not usable (expired) */
static void send_401(struct auth_req *x, int have, const char *shown, const char *why)
{
	char msg[768];
	json_t *e;

	if (!have)
		snprintf(msg, sizeof msg,
			 "You didn't provide an API key. You need to provide your API key in an Authorization header "
			 "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from the "
			 "gateway's operator (mcpgwctl keys create).");
	else if (why)
		snprintf(msg, sizeof msg, "%s", why);
	else
		snprintf(msg, sizeof msg,
			 "Incorrect API key provided: %s***. You can obtain an API key from the gateway's operator "
			 "(mcpgwctl keys create).",
			 shown);
	e = wire_error(msg, "invalid_request_error", NULL, "invalid_api_key");
	if (!e || hio_send_json_extra(x->h, 401, e, "WWW-Authenticate: Bearer realm=\"mcpgw\"\r\n") < 0)
		log_warn("%s %s: the 401 could not be sent", x->method, x->path);
	json_decref(e);
	log_info("%s %s from %s: 401 (%s)", x->method, x->path, x->c->client,
		 !have ? "no key"
		 : why ? "key not usable"
		       : "wrong key");
}

/* send_429: over a rate of the key, with Retry-After (RFC 9110 10.2.3: whole seconds) */
static void send_429(struct auth_req *x, const char *what, const char *unit, long limit, int64_t used, int64_t retry_ms)
{
	char msg[512], extra[64];
	long secs = (long)((retry_ms + 999) / 1000);
	json_t *e;

	snprintf(msg, sizeof msg,
		 "Rate limit reached for API key %s on %s per min (%s): Limit %ld, Used %lld. Please try again in "
		 "%lds.",
		 x->c->key_id, what, unit, limit, (long long)used, secs);
	snprintf(extra, sizeof extra, "Retry-After: %ld\r\n", secs < 1 ? 1 : secs);
	/* the type names what ran out, as OpenAI's "requests" and "tokens" do */
	e = wire_error(msg,
		       strcmp(unit, "RPM") == 0   ? "requests"
		       : strcmp(unit, "TPM") == 0 ? "tokens"
						  : "tool_calls",
		       NULL, "rate_limit_exceeded");
	if (!e || hio_send_json_extra(x->h, 429, e, extra) < 0)
		log_warn("%s %s: the 429 could not be sent", x->method, x->path);
	json_decref(e);
	log_info("%s %s: key %s over its %s limit (%ld)", x->method, x->path, x->c->key_id, unit, limit);
}

/* rates: the key's limits for this route; 0, or -1 after a 429 (or a 503) was sent */
static int rates(struct auth_req *x, const struct apikey *k)
{
	int64_t now = auth_now(), total = 0, retry = 0;
	enum statestore_status s = STATESTORE_OK;

	if (k->rpm && (s = keystore_window(A.st, k->id, KEYSTORE_REQUESTS, 1, now, &total, &retry)) == STATESTORE_OK &&
	    total > k->rpm) {
		send_429(x, "requests", "RPM", k->rpm, total - 1, retry);
		return -1;
	}
	if (s == STATESTORE_OK && k->tpm && (x->spends & AUTH_SPENDS_TOKENS) &&
	    (s = keystore_window(A.st, k->id, KEYSTORE_TOKENS, 0, now, &total, &retry)) == STATESTORE_OK &&
	    total >= k->tpm) {
		send_429(x, "tokens", "TPM", k->tpm, total, retry);
		return -1;
	}
	if (s == STATESTORE_OK && k->tcpm && (x->spends & AUTH_SPENDS_TOOL_CALLS) &&
	    (s = keystore_window(A.st, k->id, KEYSTORE_TOOL_CALLS, 0, now, &total, &retry)) == STATESTORE_OK &&
	    total >= k->tcpm) {
		send_429(x, "tool calls", "TCPM", k->tcpm, total, retry);
		return -1;
	}
	if (s != STATESTORE_OK) {
		log_error("API key %s: its rate window cannot be counted: %s", k->id, statestore_strerror(s));
		oai_send_error(x->h, 503, NULL, "key_store_unavailable",
			       "The gateway cannot check the API key's rate limits right now; try again.");
		return -1;
	}
	return 0;
}

/* admit: k's caller fills x->c; its rates checked and the request counted. 0, or -1 after an answer */
static int admit(struct auth_req *x, const struct apikey *k, int from_store)
{
	x->c->keyed = 1;
	snprintf(x->c->key_id, sizeof x->c->key_id, "%s", k->id);
	x->c->policy = k->policy;
	x->c->restricted = toolpolicy_restricts(&k->policy);
	x->c->tpm = k->tpm;
	x->c->tcpm = k->tcpm;
	if (!A.st)
		return 0; /* an MCPGW_API_KEYS key while the store cannot be opened: no usage (logged at open) */
	if (from_store && rates(x, k) < 0)
		return -1;
	/* usage in memory (no write per request): the flusher, a later request or the exit writes it */
	count_locked(k->id, KEYSTORE_REQUESTS, 1);
	if (!A.flusher && flusher_start() < 0)
		log_warn("API keys: no usage flushing thread (usage is written at exit)");
	return 0;
}

/* is_env: k is one of MCPGW_API_KEYS (needs no store) */
static int is_env(const struct apikey *k)
{
	return k >= A.env && k < A.env + AUTH_ENV_MAX;
}

/* check_locked: auth_check's work under A.lock; 0, or -1 after the answer */
static int check_locked(struct auth_req *x, const struct settings *s, int loopback)
{
	char key[APIKEY_PRESENTED_MAX], why[256], shown[sizeof APIKEY_PREFIX + APIKEY_ID_MAX + 1] = "", id[APIKEY_ID_MAX];
	unsigned char hash[APIKEY_HASH_BYTES];
	const struct apikey *k = NULL;
	int have = presented(x, key, sizeof key), store_ok;

	if (!A.init) {
		env_keys(s);
		atexit(auth_exit);
		A.init = 1;
	}
	store_ok = store_open(s) == 0 && refresh() == 0;
	if (have > 0 && apikey_hash(key, strlen(key), hash) == 0)
		k = find(key, hash);
	if (have > 0 && apikey_id(key, id, sizeof id) == 0)
		snprintf(shown, sizeof shown, "%s%s-", APIKEY_PREFIX, id);
	memset(key, 0, sizeof key);
	/* the store cannot say which keys there are: only MCPGW_API_KEYS can be trusted */
	if (!store_ok && !(k && is_env(k))) {
		oai_send_error(x->h, 503, NULL, "key_store_unavailable",
			       "The gateway cannot check API keys right now (its state store failed; the responders' "
			       "log says why); try again.");
		return -1;
	}
	/* keys are configured once one was ever created (revoking the last one does not
	 * open the gateway to loopback clients again) or MCPGW_API_KEYS names one */
	if (A.n + A.nenv == 0) {
		if (loopback)
			return 0;
		oai_send_error(x->h, 403, NULL, "loopback_only",
			       "This gateway has no API key configured, so it serves only clients on its own host "
			       "(loopback). Its operator can create a key with: mcpgwctl keys create NAME "
			       "(see " AUTH_DOCS ").");
		log_info("%s %s from %s: 403 (no API key configured: loopback clients only)", x->method, x->path,
			 x->c->client);
		return -1;
	}
	if (have < 0) {
		send_401(x, 1, "", "The Authorization header is malformed: expected 'Bearer YOUR_KEY'.");
		return -1;
	}
	if (!have || !k || k->revoked_ms) {
		send_401(x, have, shown, NULL);
		return -1;
	}
	if (!apikey_live(k, auth_now())) {
		char when[32];

		apikey_format_date(k->expires_ms, when, sizeof when);
		snprintf(why, sizeof why, "The API key %s expired on %s. Ask the gateway's operator for a new one.",
			 k->id, when);
		send_401(x, 1, shown, why);
		return -1;
	}
	return admit(x, k, !is_env(k));
}

int auth_check(struct auth_caller *c, struct hio *h, const struct settings *s, unsigned spends, const char *method,
	       const char *path)
{
	struct auth_req x = { .c = c, .h = h, .spends = spends, .method = method, .path = path };
	const char *remote = hio_param(h, "REMOTE_ADDR");
	/* any forwarding header: the request came through a proxy, and what the
	 * proxy saw is not this host's loopback (RFC 7239 section 4; X-Forwarded-For, X-Real-IP) */
	int forwarded = hio_param(h, "HTTP_X_FORWARDED_FOR") || hio_param(h, "HTTP_FORWARDED") ||
			hio_param(h, "HTTP_X_REAL_IP");
	int rc;

	memset(c, 0, sizeof *c);
	clientaddr_resolve(remote, hio_param(h, "HTTP_X_FORWARDED_FOR"), s->trusted_proxies, c->client, sizeof c->client);
	pthread_mutex_lock(&A.lock);
	rc = check_locked(&x, s, !forwarded && clientaddr_loopback(remote));
	pthread_mutex_unlock(&A.lock);
	return rc;
}

const struct toolpolicy *auth_policy(const struct auth_caller *c)
{
	return c->keyed && c->restricted ? &c->policy : NULL;
}

void auth_count(const struct auth_caller *c, int64_t tokens, int64_t tool_calls)
{
	int64_t now = auth_now(), total, retry;

	if (!c->keyed || (tokens <= 0 && tool_calls <= 0))
		return;
	pthread_mutex_lock(&A.lock);
	if (tokens > 0)
		count_locked(c->key_id, KEYSTORE_TOKENS, tokens);
	if (tool_calls > 0)
		count_locked(c->key_id, KEYSTORE_TOOL_CALLS, tool_calls);
	/* a rate window is counted at once: every process compares with it before the next request */
	if (A.st) {
		enum statestore_status s = STATESTORE_OK;

		if (tokens > 0 && c->tpm)
			s = keystore_window(A.st, c->key_id, KEYSTORE_TOKENS, tokens, now, &total, &retry);
		if (s == STATESTORE_OK && tool_calls > 0 && c->tcpm)
			s = keystore_window(A.st, c->key_id, KEYSTORE_TOOL_CALLS, tool_calls, now, &total, &retry);
		if (s != STATESTORE_OK)
			log_warn("API key %s: its rate window could not be counted: %s", c->key_id,
				 statestore_strerror(s));
	}
	pthread_mutex_unlock(&A.lock);
}
