/* audit.c: the audit queue filled on the broker's event loop and the writer thread that empties it into the state store. */
#include "audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/statestore.h"
#include "sharedtext.h"

/* one queued row: its names in one allocation after it; its JSON held, sized
 * (and dumped, with payloads) by the writer, off the event loop */
struct audit_item {
	struct audit_item *next;
	struct statestore_audit_row row;
	json_t *arguments, *answer;    /* references; read by the writer only */
	char *args_text, *answer_text; /* the writer's dumps (payloads), freed with the item */
	struct sharedtext *args_st;    /* the arguments as text (audit_call_args_text; payloads), or NULL */
	size_t args_off, args_len;     /* ... their bytes in it, and their size */
	int args_is_text;              /* the arguments were given as text: args_len is their size */
	int answer_is_text;            /* answer_text is the result's text (audit_call_text) */
	size_t answer_len;             /* ... and its length */
	char text[];
};

struct audit {
	struct audit_opts o;
	char url[4300];
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* rows queued, or stopping */
	pthread_cond_t written; /* the writer finished a batch */
	struct audit_item *head, *tail;
	size_t queued;
	int64_t first_ms;        /* wall ms when the oldest queued row came */
	int flush_now;           /* audit_flush waits: write without the batching delay */
	uint64_t enqueued, done; /* rows queued ever, rows written or dropped ever */
	uint64_t dropped;
	int stopping;
	pthread_t th;
};

static int64_t audit_wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* audit_size: the compact JSON size of v (0 for NULL) */
static int64_t audit_size(const json_t *v)
{
	return v ? (int64_t)json_dumpb(v, NULL, 0, JSON_COMPACT) : 0;
}

/* audit_item_new: one row with copies of its names and references to its JSON; NULL on ENOMEM */
static struct audit_item *audit_item_new(const char *caller, const char *server, const char *tool,
					 const json_t *arguments, const json_t *answer)
{
	size_t lc = strlen(caller) + 1, ls = strlen(server) + 1, lt = strlen(tool) + 1;
	struct audit_item *it = malloc(sizeof *it + lc + ls + lt);
	char *p;

	if (!it)
		return NULL;
	memset(it, 0, sizeof *it);
	p = it->text;
	it->row.caller = memcpy(p, caller, lc), p += lc;
	it->row.server = memcpy(p, server, ls), p += ls;
	it->row.tool = memcpy(p, tool, lt);
	/* shared with the writer thread: jansson's reference counts are atomic
	 * (JSON_HAVE_ATOMIC_BUILTINS) and neither thread changes these values
	 * from now on, which jansson's thread-safety notes allow
	 * (https://jansson.readthedocs.io/en/latest/threadsafety.html) */
	it->arguments = json_incref((json_t *)arguments);
	it->answer = json_incref((json_t *)answer);
	return it;
}

/* audit_item_free: an item and what it holds */
static void audit_item_free(struct audit_item *it)
{
	json_decref(it->arguments);
	json_decref(it->answer);
	sharedtext_unref(it->args_st);
	free(it->args_text);
	free(it->answer_text);
	free(it);
}

/* audit_item_ready: the writer's part: sizes, and the texts when payloads are kept */
static void audit_item_ready(const struct audit *a, struct audit_item *it)
{
	it->row.args_bytes = it->args_is_text ? (int64_t)it->args_len : audit_size(it->arguments);
	it->row.result_bytes = it->answer_is_text ? (int64_t)it->answer_len : audit_size(it->answer);
	if (a->o.payloads) {
		if (it->args_is_text)
			it->args_text =
				it->args_st ? strndup(sharedtext_data(it->args_st) + it->args_off, it->args_len) : NULL;
		else
			it->args_text = it->arguments ? json_dumps(it->arguments, JSON_COMPACT) : NULL;
		it->row.arguments = it->args_text;
		if (!it->answer_is_text)
			it->answer_text = it->answer ? json_dumps(it->answer, JSON_COMPACT) : NULL;
		it->row.result = it->answer_text;
	}
}

/* audit_room: 1 when the queue takes one more row, else 0 (counted as dropped, warned once) */
static int audit_room(struct audit *a)
{
	int room;

	pthread_mutex_lock(&a->lock);
	room = a->queued < AUDIT_QUEUE_MAX;
	if (!room && a->dropped++ == 0)
		log_warn("audit: the queue is full (%d rows): tool calls go unaudited until it drains", AUDIT_QUEUE_MAX);
	pthread_mutex_unlock(&a->lock);
	return room;
}

/* audit_enqueue: it (NULL: ENOMEM, counted as dropped) handed to the writer */
static void audit_enqueue(struct audit *a, struct audit_item *it)
{
	pthread_mutex_lock(&a->lock);
	if (!it) {
		a->dropped++;
		pthread_mutex_unlock(&a->lock);
		return;
	}
	if (a->tail)
		a->tail->next = it;
	else
		a->head = it, a->first_ms = audit_wall_ms();
	a->tail = it;
	a->queued++;
	a->enqueued++;
	/* the writer is woken for the first row of a batch and for a full one, not per row */
	if (a->queued == 1 || a->queued == AUDIT_BATCH_MAX)
		pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

/* audit_row: the row of one call (what audit_call_args_text takes; args_text NULL and
 * args_len 0: the arguments are the tree arguments) queued */
static void audit_row(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
		      int64_t duration_ms, const json_t *arguments, const struct sharedtext_slice *args_text,
		      size_t args_len, int args_is_text, const json_t *result, const json_t *error, int64_t error_code,
		      const char *result_text, size_t result_len, int is_error)
{
	const json_t *answer = result ? result : error;
	struct audit_item *it;

	if (!a || !audit_room(a))
		return;
	if ((it = audit_item_new(caller ? caller : "", server ? server : "", tool ? tool : "", arguments,
				 result_text ? NULL : answer))) {
		it->row.time_ms = started_ms;
		it->row.duration_ms = duration_ms;
		it->args_is_text = args_is_text;
		it->args_len = args_len;
		if (args_is_text && a->o.payloads && args_text && args_text->t) {
			it->args_st = sharedtext_ref(args_text->t);
			it->args_off = args_text->off;
		}
		if (result_text) {
			it->row.outcome = is_error ? "is_error" : "ok";
			it->answer_is_text = 1;
			it->answer_len = result_len;
			if (a->o.payloads && !(it->answer_text = strndup(result_text, result_len)))
				log_warn("audit: out of memory keeping a result of %zu bytes; its row has none",
					 result_len);
		} else {
			it->row.outcome = result ? (json_is_true(json_object_get(result, "isError")) ? "is_error" : "ok")
						 : "error";
			if (json_is_integer(json_object_get(error, "code")))
				error_code = json_integer_value(json_object_get(error, "code"));
			it->row.error_code = result ? 0 : error_code;
		}
	}
	audit_enqueue(a, it);
}

void audit_call(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
		int64_t duration_ms, const json_t *arguments, const json_t *result, const json_t *error,
		int64_t error_code)
{
	audit_row(a, caller, server, tool, started_ms, duration_ms, arguments, NULL, 0, 0, result, error, error_code,
		  NULL, 0, 0);
}

void audit_call_text(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
		     int64_t duration_ms, const json_t *arguments, const char *result, size_t result_len, int is_error)
{
	audit_row(a, caller, server, tool, started_ms, duration_ms, arguments, NULL, 0, 0, NULL, NULL, 0,
		  result ? result : "", result_len, is_error);
}

void audit_call_args_text(struct audit *a, const char *caller, const char *server, const char *tool, int64_t started_ms,
			  int64_t duration_ms, const struct sharedtext_slice *args, size_t args_len,
			  const json_t *result, const json_t *error, int64_t error_code, const char *result_text,
			  size_t result_len, int is_error)
{
	audit_row(a, caller, server, tool, started_ms, duration_ms, NULL, args, args_len, 1, result, error, error_code,
		  result_text, result_len, is_error);
}

int audit_keeps_payloads(const struct audit *a)
{
	return a && a->o.payloads;
}

/* audit_write: the rows of list (up to AUDIT_BATCH_MAX at a time) into st (NULL: dropped); frees them; how many were dropped */
static uint64_t audit_write(const struct audit *a, struct statestore *st, struct audit_item *list)
{
	struct statestore_audit_row rows[AUDIT_BATCH_MAX];
	uint64_t lost = 0;

	while (list) {
		struct audit_item *batch = list;
		size_t n = 0;
		enum statestore_status s = STATESTORE_EINVAL;

		for (; list && n < AUDIT_BATCH_MAX; list = list->next) {
			if (st)
				audit_item_ready(a, list);
			rows[n++] = list->row;
		}
		if (st && (s = statestore_audit_append(st, rows, n)) != STATESTORE_OK)
			log_warn("audit: %zu rows not written: %s%s%s", n, statestore_strerror(s),
				 *statestore_errmsg(st) ? ": " : "", statestore_errmsg(st));
		if (s != STATESTORE_OK)
			lost += n;
		while (batch != list) {
			struct audit_item *next = batch->next;

			audit_item_free(batch);
			batch = next;
		}
	}
	return lost;
}

/* audit_prune: rows older than the retention, in bounded steps */
static void audit_prune(struct audit *a, struct statestore *st)
{
	int64_t before = (a->o.clock ? a->o.clock() : audit_wall_ms()) - a->o.retention_ms;
	size_t n, total = 0;
	enum statestore_status s;

	do
		s = statestore_audit_prune(st, before, AUDIT_PRUNE_STEP, &n), total += n;
	while (s == STATESTORE_OK && n == AUDIT_PRUNE_STEP);
	if (s != STATESTORE_OK)
		log_warn("audit: pruning failed: %s", statestore_strerror(s));
	else if (total)
		log_info("audit: pruned %zu rows older than MCPGW_AUDIT_RETENTION", total);
}

/* audit_open: the writer's own store handle, or NULL (logged) */
static struct statestore *audit_open(const struct audit *a)
{
	struct statestore_opts so = { .url = a->url, .timeout_ms = a->o.store_timeout_ms };
	char err[1024];
	struct statestore *st = statestore_open(&so, err, sizeof err);

	if (!st)
		log_error("audit: %s: tool calls are not audited", err);
	return st;
}

/* audit_main: the writer: batches written as they come, pruned now and then, until stopped and drained */
static void *audit_main(void *arg)
{
	struct audit *a = arg;
	struct statestore *st = audit_open(a);
	int64_t next_prune = 0;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		struct audit_item *list = a->head;
		size_t n = a->queued;
		uint64_t lost;

		if (!list) {
			if (a->stopping)
				break;
			if (st && audit_wall_ms() >= next_prune) {
				pthread_mutex_unlock(&a->lock);
				audit_prune(a, st);
				next_prune = audit_wall_ms() + AUDIT_PRUNE_EVERY_MS;
				pthread_mutex_lock(&a->lock);
				continue;
			}
			if (!st)
				pthread_cond_wait(&a->wake, &a->lock);
			else {
				struct timespec until = { .tv_sec = (time_t)(next_prune / 1000),
							  .tv_nsec = (long)(next_prune % 1000) * 1000000 };

				(void)pthread_cond_timedwait(&a->wake, &a->lock, &until); /* CLOCK_REALTIME: the default */
			}
			continue;
		}
		/* rows wait up to AUDIT_FLUSH_MS for others: one transaction for many calls */
		if (!a->stopping && !a->flush_now && n < AUDIT_BATCH_MAX &&
		    audit_wall_ms() < a->first_ms + AUDIT_FLUSH_MS) {
			int64_t due = a->first_ms + AUDIT_FLUSH_MS;
			struct timespec until = { .tv_sec = (time_t)(due / 1000),
						  .tv_nsec = (long)(due % 1000) * 1000000 };

			(void)pthread_cond_timedwait(&a->wake, &a->lock, &until);
			continue;
		}
		a->head = a->tail = NULL;
		a->queued = 0;
		pthread_mutex_unlock(&a->lock);
		lost = audit_write(a, st, list);
		pthread_mutex_lock(&a->lock);
		a->dropped += lost;
		a->done += n;
		pthread_cond_broadcast(&a->written);
	}
	pthread_mutex_unlock(&a->lock);
	statestore_close(st);
	return NULL;
}

struct audit *audit_new(const struct audit_opts *o)
{
	struct audit *a = calloc(1, sizeof *a);

	if (!a)
		return NULL;
	a->o = *o;
	snprintf(a->url, sizeof a->url, "%s", o->store_url ? o->store_url : "");
	a->o.store_url = a->url;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		return NULL;
	}
	if (pthread_cond_init(&a->wake, NULL) != 0 || pthread_cond_init(&a->written, NULL) != 0 ||
	    pthread_create(&a->th, NULL, audit_main, a) != 0) {
		log_error("audit: cannot start the writer thread: tool calls are not audited");
		pthread_mutex_destroy(&a->lock);
		free(a);
		return NULL;
	}
	return a;
}

void audit_flush(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->flush_now++;
	pthread_cond_signal(&a->wake);
	for (uint64_t want = a->enqueued; a->done < want;)
		pthread_cond_wait(&a->written, &a->lock);
	a->flush_now--;
	pthread_mutex_unlock(&a->lock);
}

uint64_t audit_dropped(struct audit *a)
{
	uint64_t n;

	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	n = a->dropped;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void audit_free(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = 1;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->th, NULL);
	pthread_cond_destroy(&a->wake);
	pthread_cond_destroy(&a->written);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
