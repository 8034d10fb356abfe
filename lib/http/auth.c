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
#include "core/statedir.h"
#include "core/log.h"
#include "http/oai.h"

#define AUTH_ENV_MAX 64      /* keys of MCPGW_API_KEYS at most */
#define AUTH_REOPEN_MS 1000  /* after the store failed to open, the next try */
#define AUTH_RECHECK_MS 1000 /* the store's generation is read at least this often, hint or not */
#define AUTH_DOCS "docs/access-control.md"
#define AUTH_FLUSH_MS 1000 /* usage counted in memory reaches the store at least this often */

/* one key of the cache, with its usage not yet in the store (atomic adds:
 * any thread holding the cache for reading counts, the flusher takes) */
struct auth_key {
	struct apikey k;
	int64_t pending[KEYSTORE_NKINDS];
};

/* The process's key cache: one per process, shared by every worker thread.
 * A request reads it under the read lock (threads do not wait for each
 * other); it is reloaded under the write lock when the change hint moved
 * (lib/core/changehint.h: bumped by mcpgw-keys after a change), or at
 * least once every AUTH_RECHECK_MS, and then only when the store's key
 * generation moved. While keys are unchanged a request reads no store. */
static struct {
	pthread_rwlock_t rw;     /* the cache (everything below but st's use) */
	pthread_mutex_t store;   /* st: one operation at a time among readers (rates, counts) */
	int init;                /* the settings' keys were read (under rw, written) */
	int own_store;           /* the store is the state directory's own (MCPGW_STATE_STORE's default) */
	int hint_warned;         /* the hint's failure to open was logged */
	struct statestore *st;   /* opened on first use, closed at exit */
	struct changehint *hint; /* the state directory's key hint; NULL: the generation is read per request */
	int64_t next_open_ms;    /* no new open attempt before this (after a failure) */
	int store_ok;            /* the last look at the store succeeded: keys is current */
	int64_t gen;             /* the store's generation keys were loaded at */
	uint64_t hint_seen;      /* the hint's value before that look */
	int64_t looked_ms;       /* monotonic ms of that look */
	struct auth_key *keys;   /* the store's records, revoked ones too */
	size_t n, nlive;         /* records; those not revoked */
	struct auth_key env[AUTH_ENV_MAX]; /* MCPGW_API_KEYS, hashed */
	size_t nenv;
	int flusher; /* 0 not started, 1 runs, -1 could not start */
} A = { .rw = PTHREAD_RWLOCK_INITIALIZER, .store = PTHREAD_MUTEX_INITIALIZER };

static int64_t auth_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mono_ms: a cheap monotonic clock (the coarse one: a few ms of resolution is plenty here) */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* flush_key: ak's usage counted in memory added to the store's counters (rw held, either way) */
static void flush_key(struct auth_key *ak)
{
	for (int k = 0; k < KEYSTORE_NKINDS; k++) {
		int64_t n = __atomic_exchange_n(&ak->pending[k], 0, __ATOMIC_ACQ_REL);
		enum statestore_status s;

		if (!n)
			continue;
		pthread_mutex_lock(&A.store);
		s = A.st ? keystore_count(A.st, ak->k.id, (enum keystore_kind)k, n) : STATESTORE_EINVAL;
		pthread_mutex_unlock(&A.store);
		if (s != STATESTORE_OK)
			log_warn("API key %s: %lld %s could not be counted: %s", ak->k.id, (long long)n,
				 keystore_kind_name((enum keystore_kind)k), statestore_strerror(s));
	}
}

/* flush_all: every key's usage to the store (rw held, either way) */
static void flush_all(void)
{
	for (size_t i = 0; i < A.n; i++)
		flush_key(&A.keys[i]);
	for (size_t i = 0; i < A.nenv; i++)
		flush_key(&A.env[i]);
}

/* flusher: a thread that writes the usage counted in memory every AUTH_FLUSH_MS, so that
 * mcpgwctl keys list is at most that much behind whatever the processes do next */
static void *flusher(void *arg)
{
	struct timespec ts = { AUTH_FLUSH_MS / 1000, (AUTH_FLUSH_MS % 1000) * 1000000L };

	(void)arg;
	for (;;) {
		nanosleep(&ts, NULL);
		pthread_rwlock_rdlock(&A.rw);
		flush_all();
		pthread_rwlock_unlock(&A.rw);
	}
	return NULL;
}

/* flusher_start: the flushing thread, once per process (the first thread to get here
 * starts it), with every signal blocked (the process's own threads take them) */
static void flusher_start(void)
{
	pthread_t th;
	pthread_attr_t attr;
	sigset_t all, old;
	int zero = 0, rc;

	if (__atomic_load_n(&A.flusher, __ATOMIC_ACQUIRE) != 0 ||
	    !__atomic_compare_exchange_n(&A.flusher, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	if (pthread_attr_init(&attr) != 0) {
		rc = -1;
	} else {
		(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		(void)pthread_attr_setstacksize(&attr, 64 * 1024);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&th, &attr, flusher, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		__atomic_store_n(&A.flusher, -1, __ATOMIC_RELEASE);
		log_warn("API keys: no usage flushing thread (usage is written at exit)");
	}
}

/* auth_exit: the usage still in memory written, the cache's memory and store handle freed, at process exit */
static void auth_exit(void)
{
	pthread_rwlock_wrlock(&A.rw);
	flush_all();
	statestore_close(A.st);
	A.st = NULL;
	changehint_close(A.hint);
	A.hint = NULL;
	free(A.keys);
	A.keys = NULL;
	A.n = A.nlive = 0;
	A.store_ok = 0;
	memset(A.env, 0, sizeof A.env);
	pthread_rwlock_unlock(&A.rw);
}

/* env_keys: MCPGW_API_KEYS hashed into A.env (once; the settings checked their form) */
static void env_keys(const struct settings *s)
{
	const char *p = s->api_keys;

	while (*p && A.nenv < AUTH_ENV_MAX) {
		size_t k = strcspn(p, ",");
		struct apikey *e = &A.env[A.nenv].k;

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

/* hint_open: A.hint open, and made anew when its path names another file
 * now (removed, made again: its presence word may be UNKNOWN or SOME); rw written */
static void hint_open(const struct settings *s)
{
	char err[512];

	if (A.hint && changehint_replaced(A.hint)) {
		changehint_close(A.hint);
		A.hint = NULL;
	}
	if (A.hint)
		return;
	/* the state directory may not exist yet (the broker, started by a request, makes it too) */
	(void)mkdir(s->state_dir, 0700);
	if (!(A.hint = changehint_open(s->state_dir, STATEDIR_KEYS_HINT, err, sizeof err)) && !A.hint_warned) {
		log_warn("API keys: %s: the key generation is read on every request", err);
		A.hint_warned = 1;
	}
}

/* store_open: A.st open (not retried more than once a second); 0 or -1 (rw written) */
static int store_open(const struct settings *s)
{
	struct statestore_opts o = { .url = s->state_store, .timeout_ms = s->state_store_timeout_ms };
	char err[512];
	int64_t now = auth_now();

	if (A.st)
		return 0;
	if (now < A.next_open_ms)
		return -1;
	if (!(A.st = statestore_open(&o, err, sizeof err))) {
		A.next_open_ms = now + AUTH_REOPEN_MS;
		log_error("API keys: the state store cannot be opened: %s", err);
		return -1;
	}
	return 0;
}

/* no_store: the store need not be read: it is the state directory's own,
 * it has never held a key (the hint's presence word, kept by every writer),
 * and no MCPGW_API_KEYS key needs it for its usage (rw held, either way) */
static int no_store(void)
{
	return A.own_store && A.nenv == 0 && A.hint && changehint_presence(A.hint) == CHANGEHINT_NONE;
}

/* current: the cache may serve a request without a look at the store: the
 * last look succeeded, no process changed a key since (the hint stands
 * still), and it is recent (rw held, either way) */
static int current(void)
{
	return A.store_ok && A.hint && changehint_read(A.hint) == A.hint_seen &&
	       mono_ms() - A.looked_ms < AUTH_RECHECK_MS;
}

/* refresh: the cached records current: the hint noted, then one read of the
 * generation, and a reload when it moved; 0 or -1 (rw written) */
static int refresh(void)
{
	uint64_t hint = A.hint ? changehint_read(A.hint) : 0; /* before the store: never older than what it says */
	int64_t gen;
	struct auth_key *keys = NULL;
	struct apikey *recs = NULL;
	size_t n = 0;
	enum statestore_status s = keystore_generation(A.st, &gen);

	if (s == STATESTORE_OK && A.looked_ms && gen == A.gen)
		goto same; /* keys holds generation gen (looked_ms: loaded once) */
	if (s == STATESTORE_OK)
		s = keystore_load(A.st, &recs, &n);
	if (s == STATESTORE_OK && n && !(keys = calloc(n, sizeof *keys)))
		s = STATESTORE_ENOMEM;
	if (s != STATESTORE_OK) {
		free(recs);
		log_error("API keys: the state store cannot be read: %s%s%s", statestore_strerror(s),
			  *statestore_errmsg(A.st) ? ": " : "", statestore_errmsg(A.st));
		return -1;
	}
	flush_all(); /* the old records' usage, before they go */
	A.nlive = 0;
	for (size_t i = 0; i < n; i++) {
		keys[i].k = recs[i];
		A.nlive += !recs[i].revoked_ms;
	}
	free(recs);
	free(A.keys);
	A.keys = keys;
	A.n = n;
	A.gen = gen;
	log_debug("API keys: generation %lld, %zu keys (%zu not revoked)", (long long)gen, n, A.nlive);
same:
	A.hint_seen = hint;
	A.looked_ms = mono_ms();
	return 0;
}

/* renew: the store opened and the cache refreshed; A.store_ok says whether it
 * worked. While the store has never held a key (no_store) it is not read,
 * nor kept open: a gateway without keys touches no SQLite (rw written) */
static void renew(const struct settings *s)
{
	if (!A.init) {
		env_keys(s);
		A.own_store = settings_state_store_is_own(s);
		atexit(auth_exit);
		A.init = 1;
	}
	hint_open(s);
	if (no_store()) {
		A.hint_seen = changehint_read(A.hint);
		free(A.keys);
		A.keys = NULL;
		A.n = A.nlive = 0;
		A.gen = 0;
		statestore_close(A.st); /* nothing to flush: no key */
		A.st = NULL;
		A.looked_ms = mono_ms();
		A.store_ok = 1;
		return;
	}
	A.store_ok = store_open(s) == 0 && refresh() == 0;
	/* what was read tells the next look (and every other process) whether to read again */
	if (A.store_ok && A.own_store && A.gen > 0) {
		changehint_mark_some(A.hint);
	} else if (A.store_ok && A.own_store && A.gen == 0 && A.n == 0) {
		changehint_mark_none(A.hint);
		if (no_store()) {
			statestore_close(A.st);
			A.st = NULL;
		}
	}
}

/* find: the record whose hash is that of the presented key, or NULL. A key
 * of the minted form is looked up by its id; every key is also compared
 * with each MCPGW_API_KEYS key, all in constant time per comparison. */
static struct auth_key *find(const char *key, const unsigned char hash[APIKEY_HASH_BYTES])
{
	char id[APIKEY_ID_MAX];
	struct auth_key *hit = NULL;

	if (apikey_id(key, id, sizeof id) == 0)
		for (size_t i = 0; i < A.n; i++)
			if (strcmp(A.keys[i].k.id, id) == 0 && apikey_equal(A.keys[i].k.hash, hash))
				hit = &A.keys[i];
	for (size_t i = 0; i < A.nenv; i++)
		if (apikey_equal(A.env[i].k.hash, hash) && !hit)
			hit = &A.env[i];
	return hit;
}

/* by_id: the cached key with id (a store's or MCPGW_API_KEYS'), or NULL */
static struct auth_key *by_id(const char *id)
{
	for (size_t i = 0; i < A.n; i++)
		if (strcmp(A.keys[i].k.id, id) == 0)
			return &A.keys[i];
	for (size_t i = 0; i < A.nenv; i++)
		if (strcmp(A.env[i].k.id, id) == 0)
			return &A.env[i];
	return NULL;
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

/* rates_locked: rates' work under A.store */
static int rates_locked(struct auth_req *x, const struct apikey *k)
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

/* rates: the key's limits for this route; 0, or -1 after a 429 (or a 503) was sent */
static int rates(struct auth_req *x, const struct apikey *k)
{
	int rc;

	if (!k->rpm && !(k->tpm && (x->spends & AUTH_SPENDS_TOKENS)) && !(k->tcpm && (x->spends & AUTH_SPENDS_TOOL_CALLS)))
		return 0; /* no limit applies: no store operation */
	pthread_mutex_lock(&A.store);
	rc = rates_locked(x, k);
	pthread_mutex_unlock(&A.store);
	return rc;
}

/* admit: ak's caller fills x->c; its rates checked and the request counted. 0, or -1 after an answer */
static int admit(struct auth_req *x, struct auth_key *ak, int from_store)
{
	const struct apikey *k = &ak->k;

	x->c->keyed = 1;
	snprintf(x->c->key_id, sizeof x->c->key_id, "%s", k->id);
	/* the allow-lists (2 KB) copied only when they narrow anything: a request in flight does
	 * not carry an empty pair of them */
	if (toolpolicy_restricts(&k->policy)) {
		if (!(x->c->policy = malloc(sizeof *x->c->policy))) {
			oai_send_error(x->h, 500, NULL, "internal_error", "Out of memory.");
			return -1;
		}
		*x->c->policy = k->policy;
	}
	x->c->tpm = k->tpm;
	x->c->tcpm = k->tcpm;
	x->c->admin = k->admin;
	if (!A.st)
		return 0; /* an MCPGW_API_KEYS key while the store cannot be opened: no usage (logged at open) */
	if (from_store && rates(x, k) < 0)
		return -1;
	/* usage in memory, no lock (no write per request): the flusher or the exit writes it */
	__atomic_add_fetch(&ak->pending[KEYSTORE_REQUESTS], 1, __ATOMIC_RELAXED);
	flusher_start();
	return 0;
}

/* is_env: ak is one of MCPGW_API_KEYS (needs no store) */
static int is_env(const struct auth_key *ak)
{
	return ak >= A.env && ak < A.env + AUTH_ENV_MAX;
}

/* check: auth_check's work with the cache held (rw, either way); 0, or -1 after the answer */
static int check(struct auth_req *x)
{
	char key[APIKEY_PRESENTED_MAX], why[256], shown[sizeof APIKEY_PREFIX + APIKEY_ID_MAX + 1] = "", id[APIKEY_ID_MAX];
	unsigned char hash[APIKEY_HASH_BYTES];
	struct auth_key *ak = NULL;
	int have = presented(x, key, sizeof key);

	if (have > 0 && apikey_hash(key, strlen(key), hash) == 0)
		ak = find(key, hash);
	if (have > 0 && apikey_id(key, id, sizeof id) == 0)
		snprintf(shown, sizeof shown, "%s%s-", APIKEY_PREFIX, id);
	memset(key, 0, sizeof key);
	/* the store cannot say which keys there are: only MCPGW_API_KEYS can be trusted */
	if (!A.store_ok && !(ak && is_env(ak))) {
		oai_send_error(x->h, 503, NULL, "key_store_unavailable",
			       "The gateway cannot check API keys right now (its state store failed; the responders' "
			       "log says why); try again.");
		return -1;
	}
	/* keys are configured once one was ever created (revoking the last one does not
	 * open the gateway to loopback clients again) or MCPGW_API_KEYS names one */
	if (A.n + A.nenv == 0) {
		if (x->c->loopback)
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
	if (!have || !ak || ak->k.revoked_ms) {
		send_401(x, have, shown, NULL);
		return -1;
	}
	if (!apikey_live(&ak->k, auth_now())) {
		char when[32];

		apikey_format_date(ak->k.expires_ms, when, sizeof when);
		snprintf(why, sizeof why, "The API key %s expired on %s. Ask the gateway's operator for a new one.",
			 ak->k.id, when);
		send_401(x, 1, shown, why);
		return -1;
	}
	return admit(x, ak, !is_env(ak));
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
	c->loopback = !forwarded && clientaddr_loopback(remote);
	clientaddr_resolve(remote, hio_param(h, "HTTP_X_FORWARDED_FOR"), s->trusted_proxies, c->client, sizeof c->client);
	/* the cache as it is when no key changed (no store read, threads do not wait for
	 * each other); else the writer's lock, a look at the store, and the check under it */
	pthread_rwlock_rdlock(&A.rw);
	if (!current()) {
		pthread_rwlock_unlock(&A.rw);
		pthread_rwlock_wrlock(&A.rw);
		if (!current())
			renew(s);
	}
	rc = check(&x);
	pthread_rwlock_unlock(&A.rw);
	return rc;
}

void auth_caller_clear(struct auth_caller *c)
{
	free(c->policy);
	c->policy = NULL;
}

const struct toolpolicy *auth_policy(const struct auth_caller *c)
{
	return c->keyed ? c->policy : NULL;
}

void auth_count(const struct auth_caller *c, int64_t tokens, int64_t tool_calls)
{
	int64_t now = auth_now(), total, retry;
	struct auth_key *ak;

	if (!c->keyed || (tokens <= 0 && tool_calls <= 0))
		return;
	pthread_rwlock_rdlock(&A.rw);
	if ((ak = by_id(c->key_id))) {
		if (tokens > 0)
			__atomic_add_fetch(&ak->pending[KEYSTORE_TOKENS], tokens, __ATOMIC_RELAXED);
		if (tool_calls > 0)
			__atomic_add_fetch(&ak->pending[KEYSTORE_TOOL_CALLS], tool_calls, __ATOMIC_RELAXED);
	}
	/* a rate window is counted at once: every process compares with it before the next request */
	if (A.st && ((tokens > 0 && c->tpm) || (tool_calls > 0 && c->tcpm))) {
		enum statestore_status s = STATESTORE_OK;

		pthread_mutex_lock(&A.store);
		if (tokens > 0 && c->tpm)
			s = keystore_window(A.st, c->key_id, KEYSTORE_TOKENS, tokens, now, &total, &retry);
		if (s == STATESTORE_OK && tool_calls > 0 && c->tcpm)
			s = keystore_window(A.st, c->key_id, KEYSTORE_TOOL_CALLS, tool_calls, now, &total, &retry);
		pthread_mutex_unlock(&A.store);
		if (s != STATESTORE_OK)
			log_warn("API key %s: its rate window could not be counted: %s", c->key_id,
				 statestore_strerror(s));
	}
	pthread_rwlock_unlock(&A.rw);
}
