/* persist.c: the broker's write-through to the registry, made by a worker thread from a queue so that the event loop never waits on the disk or on a lock. */
#include "persist.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "session.h"
#include "sharedtext.h"

#define PERSIST_ATTEMPTS \
	12 /* a write that fails (mostly: the database locked for SQLOPEN_BUSY_MS) is tried this often */
#define PERSIST_RETRY_MS 500 /* after this pause */

enum job_kind { JOB_SERVER, JOB_TOOLS, JOB_PRUNE };

/* one write, with copies of everything it needs (the loop goes on changing
 * its own data meanwhile) */
struct job {
	enum job_kind kind;
	int attempts;
	struct job *next;
	struct registry_server rs;   /* JOB_SERVER: every string and server_info owned */
	struct registry_tool *tools; /* JOB_TOOLS: every string and tool owned; a tool_json is */
	struct sharedtext **texts;   /* ... the text of texts[i], a reference held (NULL: none) */
	size_t ntools;
	char **names; /* JOB_PRUNE */
	size_t nnames;
};

struct persist {
	struct registry *reg;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* work queued, stop asked, or the worker went idle */
	struct job *head;  /* FIFO: rows before the catalog that names them */
	int started;       /* 1 worker running, -1 it could not start */
	int stop;          /* persist_free asked the worker to end */
	int busy;          /* the worker is writing a job it took */
	pthread_t th;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free((char *)j->rs.name);
	free((char *)j->rs.transport);
	free((char *)j->rs.fingerprint);
	free((char *)j->rs.state);
	free((char *)j->rs.protocol_version);
	free((char *)j->rs.last_error);
	json_decref((json_t *)j->rs.server_info);
	for (size_t i = 0; i < j->ntools; i++) {
		free((char *)j->tools[i].server);
		free((char *)j->tools[i].mcp_name);
		free((char *)j->tools[i].exposed_name);
		json_decref((json_t *)j->tools[i].tool);
		sharedtext_unref(j->texts ? j->texts[i] : NULL);
	}
	free(j->tools);
	free(j->texts);
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j);
}

/* copy_str: a copy of s (NULL stays NULL); *nomem set when the copy failed */
static char *copy_str(const char *s, int *nomem)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*nomem = 1;
	return d;
}

/* same_target: a queued job that j replaces (the same server's row, or the catalog) */
static int same_target(const struct job *q, const struct job *j)
{
	if (q->kind != j->kind)
		return 0;
	return j->kind == JOB_TOOLS || (j->kind == JOB_SERVER && strcmp(q->rs.name, j->rs.name) == 0);
}

/* enqueue: hand j (owned) to the worker; a queued job of the same target is
 * replaced in its place (the order of different targets is kept) */
static void enqueue(struct persist *p, struct job *j)
{
	struct job **at;

	pthread_mutex_lock(&p->mu);
	if (p->started < 0) {
		pthread_mutex_unlock(&p->mu);
		job_free(j);
		return;
	}
	for (at = &p->head; *at; at = &(*at)->next) {
		if (j->kind != JOB_PRUNE && same_target(*at, j)) {
			j->next = (*at)->next;
			job_free(*at);
			*at = j;
			break;
		}
	}
	if (!*at)
		*at = j;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* run: one write; 0, or -1 with the error logged */
static int run(struct persist *p, struct job *j)
{
	int stopping = __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
	const char *again = ++j->attempts < PERSIST_ATTEMPTS && !stopping ? "; tried again"
			    : stopping                                    ? "; dropped (stopping)"
									  : "; given up";

	switch (j->kind) {
	case JOB_SERVER:
		if (registry_put_server(p->reg, &j->rs) == 0)
			return 0;
		log_error("registry: saving server %s: %s%s", j->rs.name, registry_errmsg(p->reg), again);
		break;
	case JOB_TOOLS:
		if (registry_replace_tools(p->reg, j->tools, j->ntools) == 0)
			return 0;
		log_error("registry: saving tools: %s%s", registry_errmsg(p->reg), again);
		break;
	case JOB_PRUNE:
		if (registry_prune_servers(p->reg, (const char *const *)j->names, j->nnames) == 0)
			return 0;
		log_error("registry: pruning servers: %s%s", registry_errmsg(p->reg), again);
		break;
	}
	return -1;
}

/* requeue: j failed: first in line again after a pause, unless a newer
 * write of its target came meanwhile, it was tried PERSIST_ATTEMPTS times,
 * or the worker is stopping (then it is dropped). Called locked. */
static void requeue(struct persist *p, struct job *j)
{
	struct timespec until;

	for (struct job *q = p->head; q; q = q->next)
		if (j->kind != JOB_PRUNE && same_target(q, j)) {
			job_free(j);
			return;
		}
	if (p->stop || j->attempts >= PERSIST_ATTEMPTS) {
		job_free(j);
		return;
	}
	j->next = p->head;
	p->head = j;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += PERSIST_RETRY_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
		; /* woken by new work: the pause goes on; by stop: the write is made once more now */
}

static void *worker(void *arg)
{
	struct persist *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;

		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!(j = p->head))
			break; /* stop asked and nothing left */
		p->head = j->next;
		p->busy = 1;
		pthread_mutex_unlock(&p->mu);
		if (run(p, j) == 0) {
			job_free(j);
			j = NULL;
		}
		pthread_mutex_lock(&p->mu);
		if (j)
			requeue(p, j);
		p->busy = 0;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct persist *persist_new(struct registry *reg)
{
	struct persist *p;

	if (!reg || !(p = calloc(1, sizeof *p)))
		return NULL;
	p->reg = reg;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		return NULL;
	}
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		return NULL;
	}
	return p;
}

int persist_start(struct persist *p)
{
	sigset_t all, old;
	int rc;

	if (!p || p->started)
		return p && p->started > 0 ? 0 : -1;
	pthread_mutex_lock(&p->mu);
	/* the worker takes no signals: they stay with the loop's thread (sigwatch) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->th, NULL, worker, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->started = rc == 0 ? 1 : -1;
	if (rc != 0) {
		struct job *j;

		while ((j = p->head)) {
			p->head = j->next;
			job_free(j);
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (rc != 0)
		log_error("registry: cannot start its writer thread (%s): the servers' states and tools are not saved",
			  strerror(rc));
	return rc == 0 ? 0 : -1;
}

void persist_free(struct persist *p)
{
	struct job *j;

	if (!p)
		return;
	if (p->started > 0) {
		pthread_mutex_lock(&p->mu);
		__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		registry_cancel_waits(p->reg); /* queued writes are made unless someone else holds the lock */
		pthread_join(p->th, NULL);
	}
	while ((j = p->head)) {
		p->head = j->next;
		job_free(j);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int persist_wait_idle(struct persist *p, long max_ms)
{
	int64_t until = clock_now_ms() + max_ms;
	int idle;

	for (;;) {
		if (!p)
			return 1;
		pthread_mutex_lock(&p->mu);
		idle = !p->head && !p->busy;
		pthread_mutex_unlock(&p->mu);
		if (idle || clock_now_ms() >= until)
			return idle;
		clock_sleep_ms(5);
	}
}

json_t *persist_cached_tools(struct persist *p, const struct session *s)
{
	return p && !p->started && !s->cfg->disabled ? registry_load_tools(p->reg, s->cfg->name, s->fingerprint) : NULL;
}

void persist_server_row(struct persist *p, const struct registry_server *rs)
{
	struct job *j;
	int nomem = 0;

	if (!p)
		return;
	if (!(j = calloc(1, sizeof *j))) {
		log_error("registry: out of memory saving server %s", rs->name);
		return;
	}
	j->kind = JOB_SERVER;
	j->rs = (struct registry_server){
		.name = copy_str(rs->name, &nomem),
		.transport = copy_str(rs->transport, &nomem),
		.fingerprint = copy_str(rs->fingerprint, &nomem),
		.state = copy_str(rs->state, &nomem),
		.protocol_version = copy_str(rs->protocol_version, &nomem),
		.last_error = copy_str(rs->last_error, &nomem),
		.server_info = rs->server_info ? json_deep_copy(rs->server_info) : NULL,
		.restarts = rs->restarts,
		.pid = rs->pid,
	};
	if (nomem || !j->rs.name || (rs->server_info && !j->rs.server_info)) {
		log_error("registry: out of memory saving server %s", rs->name);
		job_free(j);
		return;
	}
	enqueue(p, j);
}

void persist_server(struct persist *p, const struct session *s)
{
	static const char *const tnames[] = { "stdio", "http", "sse", "auto" };
	struct registry_server rs = {
		.name = s->cfg->name,
		.transport = tnames[s->cfg->transport],
		.fingerprint = s->fingerprint,
		.state = session_state_name(s->state),
		.protocol_version = *s->proto ? s->proto : NULL,
		.server_info = s->server_info,
		.last_error = s->last_error,
		.restarts = s->restarts,
		.pid = session_pid(s),
	};

	persist_server_row(p, &rs);
}

void persist_tools(struct persist *p, const struct registry_tool *rt, struct sharedtext *const *texts, size_t n)
{
	struct job *j;
	int nomem = 0;

	if (!p)
		return;
	if (!(j = calloc(1, sizeof *j)) || !(j->tools = calloc(n ? n : 1, sizeof *j->tools)) ||
	    !(j->texts = calloc(n ? n : 1, sizeof *j->texts))) {
		if (j)
			free(j->tools);
		free(j);
		log_error("registry: out of memory saving tools");
		return;
	}
	j->kind = JOB_TOOLS;
	for (size_t i = 0; i < n && !nomem; i++, j->ntools++) {
		j->tools[i].server = copy_str(rt[i].server, &nomem);
		j->tools[i].mcp_name = copy_str(rt[i].mcp_name, &nomem);
		j->tools[i].exposed_name = copy_str(rt[i].exposed_name, &nomem);
		if (texts && texts[i]) { /* the broker's text of it: shared, not copied; parsed row by row */
			j->texts[i] = sharedtext_ref(texts[i]);
			j->tools[i].tool_json = sharedtext_data(texts[i]);
		} else if (!(j->tools[i].tool = json_deep_copy(rt[i].tool)))
			nomem = 1;
	}
	if (nomem) {
		log_error("registry: out of memory saving tools");
		job_free(j);
		return;
	}
	enqueue(p, j);
}

void persist_prune(struct persist *p, struct session *const *sessions, size_t n)
{
	struct job *j;
	int nomem = 0;

	if (!p)
		return;
	if (!(j = calloc(1, sizeof *j)) || !(j->names = calloc(n ? n : 1, sizeof *j->names))) {
		free(j);
		log_error("registry: out of memory pruning servers");
		return;
	}
	j->kind = JOB_PRUNE;
	for (size_t i = 0; i < n && !nomem; i++, j->nnames++)
		j->names[i] = copy_str(sessions[i]->cfg->name, &nomem);
	if (nomem) {
		log_error("registry: out of memory pruning servers");
		job_free(j);
		return;
	}
	enqueue(p, j);
}
