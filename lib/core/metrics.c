/* metrics.c: the shared metrics file: series claimed densely and indexed by compare-and-swap, values added atomically, rendered as Prometheus text. */
#include "core/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/statedir.h"

#define METRICS_MAGIC 0x3273726d7767636dULL /* "mcgwmrs2": this layout */
#define METRICS_INDEX (2 * METRICS_SLOTS)   /* index entries: never full before the slots are */

/* The file, laid out so that a process touches few pages: series are
 * claimed densely, in order (used), so the series one process adds to sit
 * side by side; an open-addressing index maps a name's hash to its slot;
 * the values every update touches are an array of their own, apart from
 * the names that only a lookup and the rendering read. */
struct metrics_file {
	uint64_t magic;
	int64_t dropped; /* updates that found no slot */
	uint32_t used;   /* slots claimed so far (may pass METRICS_SLOTS: the rest were refused) */
	char pad[44];
	uint32_t index[METRICS_INDEX]; /* (the hash's high 16 bits << 16) | (slot + 1); 0: empty */
	int64_t values[METRICS_SLOTS];
	char names[METRICS_SLOTS][METRICS_NAME_MAX];
};

_Static_assert(METRICS_SLOTS < 0xffff, "an index entry keeps slot + 1 in 16 bits");

struct metrics {
	struct metrics_file *f;
};

/* what the exposition says of each family (a family not here: untyped) */
struct metrics_family {
	const char *name, *type, *help;
};

static const struct metrics_family families[] = {
	{ "mcpgw_http_requests_total", "counter", "HTTP requests answered, by endpoint (route), method and status." },
	{ "mcpgw_http_request_duration_seconds", "histogram", "Time from a request's start to its answer, by endpoint." },
	{ "mcpgw_tool_calls_total", "counter", "MCP tool calls the broker answered, by server, tool and outcome." },
	{ "mcpgw_tool_call_duration_seconds", "histogram", "Time of MCP tool calls in the broker, by server." },
	{ "mcpgw_tool_rounds_total", "counter", "MCP tool rounds run inside chat completions." },
	{ "mcpgw_upstream_errors_total", "counter", "Chat completions that failed on the upstream LLM, by status." },
	{ "mcpgw_mcp_server_restarts_total", "counter", "Restarts of MCP server connections, by server." },
	{ "mcpgw_metrics_dropped_total", "counter", "Metric updates lost: no free series slot (METRICS_SLOTS)." },
};

/* fnv1a: the slot hash of a series name */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct metrics *metrics_open(const char *state_dir, char *err, size_t errlen)
{
	char path[4400];
	struct stat sb;
	struct metrics *m = NULL;
	void *p = MAP_FAILED;
	int fd = -1;

	if (statedir_path(path, sizeof path, state_dir, STATEDIR_METRICS) < 0) {
		snprintf(err, errlen, "metrics: the state directory's path is too long");
		return NULL;
	}
	if ((fd = statedir_open(path, O_RDWR | O_CREAT, 0600)) < 0 || fstat(fd, &sb) < 0)
		goto sys;
	/* growing to the size is idempotent: processes racing to make it all agree */
	if ((size_t)sb.st_size < sizeof(struct metrics_file) && ftruncate(fd, sizeof(struct metrics_file)) < 0)
		goto sys;
	/* every block allocated now: a page first touched later on a full disk would be SIGBUS */
	if ((errno = posix_fallocate(fd, 0, sizeof(struct metrics_file))) != 0)
		goto sys;
	if ((p = mmap(NULL, sizeof(struct metrics_file), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto sys;
	close(fd);
	fd = -1;
	{
		uint64_t zero = 0;
		struct metrics_file *f = p;

		if (!__atomic_compare_exchange_n(&f->magic, &zero, METRICS_MAGIC, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
		    zero != METRICS_MAGIC) {
			snprintf(err, errlen, "metrics: %s: not a metrics file of this version; remove it", path);
			goto fail;
		}
	}
	if (!(m = calloc(1, sizeof *m))) {
		snprintf(err, errlen, "metrics: out of memory");
		goto fail;
	}
	m->f = p;
	return m;
sys:
	snprintf(err, errlen, "metrics: %s: %s", path, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	if (p != MAP_FAILED)
		munmap(p, sizeof(struct metrics_file));
	return NULL;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	munmap(m->f, sizeof *m->f);
	free(m);
}

int metrics_series(char *out, size_t outlen, const char *family, const char *const *labels)
{
	size_t o, cap = outlen < METRICS_NAME_MAX ? outlen : METRICS_NAME_MAX;
	int n = snprintf(out, cap, "%s", family);

	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	for (int i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		n = snprintf(out + o, cap - o, "%s%s=\"", i ? "," : "{", labels[i]);
		if (n < 0 || (size_t)n >= cap - o)
			return -1;
		o += (size_t)n;
		for (const char *v = labels[i + 1]; *v; v++) {
			const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
			size_t k = esc ? 2 : 1;

			if (o + k + 3 > cap) /* room for '"', '}' and the NUL */
				return -1;
			memcpy(out + o, esc ? esc : v, k);
			o += k;
		}
		out[o++] = '"';
		out[o] = '\0';
	}
	if (labels && labels[0] && labels[1]) {
		if (o + 2 > cap)
			return -1;
		out[o++] = '}';
		out[o] = '\0';
	}
	return 0;
}

/* claim: the next free slot's index with series written into its name, or
 * -1 when every slot is taken */
static int64_t claim(struct metrics_file *f, const char *series)
{
	uint32_t n = __atomic_load_n(&f->used, __ATOMIC_RELAXED);

	do {
		if (n >= METRICS_SLOTS)
			return -1;
	} while (!__atomic_compare_exchange_n(&f->used, &n, n + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	snprintf(f->names[n], METRICS_NAME_MAX, "%s", series);
	return n;
}

/* value_of: the value of series, its slot claimed when new; NULL when the
 * table is full. A claimer writes the name into a slot of its own, then
 * publishes it in the index with a compare-and-swap (release: a reader that
 * finds the entry sees the name); one that loses the race to the same entry
 * leaves its slot unindexed (never rendered) and uses the winner's. */
static int64_t *value_of(struct metrics_file *f, const char *series)
{
	uint32_t h = fnv1a(series);
	int64_t mine = -1;

	for (uint32_t k = 0; k < METRICS_INDEX; k++) {
		uint32_t *e = &f->index[(h + k) % METRICS_INDEX];
		uint32_t v = __atomic_load_n(e, __ATOMIC_ACQUIRE);
		uint32_t slot;

		if (v == 0) {
			if (mine < 0 && (mine = claim(f, series)) < 0)
				return NULL;
			if (__atomic_compare_exchange_n(e, &v, (h >> 16) << 16 | (uint32_t)(mine + 1), 0,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return &f->values[mine];
			/* v: the entry another claimer published first */
		}
		slot = (v & 0xffff) - 1;
		if (v >> 16 == h >> 16 && slot < METRICS_SLOTS && strncmp(f->names[slot], series, METRICS_NAME_MAX) == 0)
			return &f->values[slot];
	}
	return NULL;
}

void metrics_add(struct metrics *m, const char *series, int64_t delta)
{
	int64_t *v;

	if (!m || !series)
		return;
	if ((v = value_of(m->f, series)))
		__atomic_add_fetch(v, delta, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&m->f->dropped, 1, __ATOMIC_RELAXED);
}

int64_t *metrics_ref(struct metrics *m, const char *series)
{
	int64_t *v;

	if (!m || !series)
		return NULL;
	if ((v = value_of(m->f, series)))
		return v;
	__atomic_add_fetch(&m->f->dropped, 1, __ATOMIC_RELAXED);
	return NULL;
}

void metrics_ref_add(int64_t *ref, int64_t delta)
{
	if (ref)
		__atomic_add_fetch(ref, delta, __ATOMIC_RELAXED);
}

int metrics_hist_ref(struct metrics *m, const char *family, const char *const *labels, struct metrics_hist *h)
{
	static const double bounds[] = METRICS_BUCKETS;
	const char *with[16 + 2];
	char fam[96], le[32], series[METRICS_NAME_MAX];
	int n = 0, rc = 0;

	_Static_assert(sizeof bounds / sizeof *bounds + 1 == METRICS_NBUCKETS, "METRICS_NBUCKETS: the bounds and +Inf");
	memset(h, 0, sizeof *h);
	if (!m)
		return -1;
	for (; labels && labels[n] && labels[n + 1] && n < 14; n += 2)
		with[n] = labels[n], with[n + 1] = labels[n + 1];
	with[n] = "le";
	with[n + 1] = le;
	with[n + 2] = NULL;
	snprintf(fam, sizeof fam, "%s_bucket", family);
	for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
		h->bound_us[i] = i < sizeof bounds / sizeof *bounds ? (int64_t)(bounds[i] * 1e6) : INT64_MAX;
		if (i < sizeof bounds / sizeof *bounds)
			snprintf(le, sizeof le, "%g", bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		if (metrics_series(series, sizeof series, fam, with) < 0 || !(h->bucket[i] = metrics_ref(m, series)))
			rc = -1;
	}
	with[n] = NULL;
	snprintf(fam, sizeof fam, "%s_sum", family);
	if (metrics_series(series, sizeof series, fam, with) < 0 || !(h->sum = metrics_ref(m, series)))
		rc = -1;
	snprintf(fam, sizeof fam, "%s_count", family);
	if (metrics_series(series, sizeof series, fam, with) < 0 || !(h->count = metrics_ref(m, series)))
		rc = -1;
	return rc;
}

void metrics_hist_observe(const struct metrics_hist *h, int64_t us)
{
	size_t i = 0;

	/* the one bucket the value falls in: buckets are made cumulative when rendered,
	 * so an observation costs three updates, not one per bucket */
	while (i + 1 < METRICS_NBUCKETS && us > h->bound_us[i])
		i++;
	metrics_ref_add(h->bucket[i], 1);
	metrics_ref_add(h->sum, us);
	metrics_ref_add(h->count, 1);
}

void metrics_observe(struct metrics *m, const char *family, const char *const *labels, int64_t us)
{
	static const double bounds[] = METRICS_BUCKETS;
	const char *with[16 + 2];
	char fam[96], le[32], series[METRICS_NAME_MAX];
	int n = 0;

	if (!m)
		return;
	for (; labels && labels[n] && labels[n + 1] && n < 14; n += 2)
		with[n] = labels[n], with[n + 1] = labels[n + 1];
	with[n] = "le";
	with[n + 1] = le;
	with[n + 2] = NULL;
	/* the one bucket the value falls in: buckets are made cumulative when rendered,
	 * so an observation costs three updates, not one per bucket */
	snprintf(fam, sizeof fam, "%s_bucket", family);
	for (size_t i = 0; i <= sizeof bounds / sizeof *bounds; i++) {
		if (i < sizeof bounds / sizeof *bounds && (double)us > bounds[i] * 1e6)
			continue;
		if (i < sizeof bounds / sizeof *bounds)
			snprintf(le, sizeof le, "%g", bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		if (metrics_series(series, sizeof series, fam, with) == 0)
			metrics_add(m, series, 1);
		break;
	}
	with[n] = NULL;
	snprintf(fam, sizeof fam, "%s_sum", family);
	if (metrics_series(series, sizeof series, fam, with) == 0)
		metrics_add(m, series, us);
	snprintf(fam, sizeof fam, "%s_count", family);
	if (metrics_series(series, sizeof series, fam, with) == 0)
		metrics_add(m, series, 1);
}

/* ---- rendering ---- */

struct sample {
	char name[METRICS_NAME_MAX];
	int64_t value;
};

/* family_of: the family a series belongs to (its name before '{', without a histogram's suffix) into out */
static const struct metrics_family *family_of(const char *series, char *out, size_t outlen)
{
	size_t n = strcspn(series, "{");

	snprintf(out, outlen, "%.*s", (int)n, series);
	for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
		size_t k = strlen(families[i].name);

		if (strncmp(out, families[i].name, k) == 0 &&
		    (!out[k] ||
		     (strcmp(families[i].type, "histogram") == 0 &&
		      (!strcmp(out + k, "_bucket") || !strcmp(out + k, "_sum") || !strcmp(out + k, "_count"))))) {
			out[k] = '\0';
			return &families[i];
		}
	}
	return NULL;
}

/* le_value: the le label's bound of a bucket series, INFINITY for +Inf, NAN when none */
static double le_value(const char *name)
{
	const char *p = strstr(name, "le=\"");

	if (!p)
		return NAN;
	return strncmp(p + 4, "+Inf", 4) == 0 ? INFINITY : strtod(p + 4, NULL);
}

/* by_name: by series name, a histogram's buckets in increasing le */
static int by_name(const void *pa, const void *pb)
{
	const struct sample *a = pa, *b = pb;
	const char *la = strstr(a->name, "le=\""), *lb = strstr(b->name, "le=\"");

	if (la && lb && la - a->name == lb - b->name && strncmp(a->name, b->name, (size_t)(la - a->name)) == 0) {
		double x = le_value(a->name), y = le_value(b->name);

		return x < y ? -1 : x > y ? 1 : 0;
	}
	return strcmp(a->name, b->name);
}

/* render_sample: one line; a _sum of a histogram is kept in microseconds */
static int render_sample(buf_t *out, const struct sample *s, const struct metrics_family *fam)
{
	size_t n = strcspn(s->name, "{");

	if (fam && strcmp(fam->type, "histogram") == 0 && n > 4 && strncmp(s->name + n - 4, "_sum", 4) == 0)
		return buf_printf(out, "%s %.6f\n", s->name, (double)s->value / 1e6);
	return buf_printf(out, "%s %lld\n", s->name, (long long)s->value);
}

/* render_buckets: the buckets of one label set of a histogram, from v[i] (its
 * first stored bucket) on: every bound of METRICS_BUCKETS and +Inf, each the
 * count at or below it (stored: each observation in its one bucket). The
 * index after them. */
static size_t render_buckets(buf_t *out, const struct sample *v, size_t n, size_t i, int *rc)
{
	static const double bounds[] = METRICS_BUCKETS;
	const char *le = strstr(v[i].name, "le=\"");
	size_t pre = (size_t)(le - v[i].name), j = i;
	int64_t cum = 0;

	for (size_t b = 0; b <= sizeof bounds / sizeof *bounds && *rc == 0; b++) {
		double bound = b < sizeof bounds / sizeof *bounds ? bounds[b] : INFINITY;
		char lestr[32];

		/* the stored buckets up to this bound (sorted by le) */
		while (j < n && strncmp(v[j].name, v[i].name, pre) == 0 && le_value(v[j].name) <= bound)
			cum += v[j++].value;
		if (b < sizeof bounds / sizeof *bounds)
			snprintf(lestr, sizeof lestr, "%g", bound);
		else
			snprintf(lestr, sizeof lestr, "+Inf");
		*rc = buf_printf(out, "%.*sle=\"%s\"} %lld\n", (int)pre, v[i].name, lestr, (long long)cum);
	}
	while (j < n && strncmp(v[j].name, v[i].name, pre) == 0 && strstr(v[j].name, "le=\"")) /* bounds of another build */
		j++;
	return j;
}

int metrics_render(const struct metrics *m, buf_t *out)
{
	struct sample *v = malloc((METRICS_SLOTS + 1) * sizeof *v);
	size_t n = 0, merged = 0;
	char prev[METRICS_NAME_MAX] = "", fam[METRICS_NAME_MAX];
	int rc = 0;

	if (!v)
		return -1;
	/* the indexed slots: published names (a slot claimed but not indexed is not a series) */
	for (size_t i = 0; i < METRICS_INDEX && n < METRICS_SLOTS; i++) {
		uint32_t e = __atomic_load_n(&m->f->index[i], __ATOMIC_ACQUIRE);
		uint32_t slot = (e & 0xffff) - 1;

		if (!e || slot >= METRICS_SLOTS)
			continue;
		/* bounded: the file may hold anything */
		snprintf(v[n].name, sizeof v[n].name, "%.*s", METRICS_NAME_MAX - 1, m->f->names[slot]);
		v[n++].value = __atomic_load_n(&m->f->values[slot], __ATOMIC_RELAXED);
	}
	snprintf(v[n].name, sizeof v[n].name, "mcpgw_metrics_dropped_total");
	v[n++].value = __atomic_load_n(&m->f->dropped, __ATOMIC_RELAXED);
	qsort(v, n, sizeof *v, by_name);
	for (size_t i = 0; i < n; i++) { /* a name indexed twice (a file written by something else): one line, summed */
		if (merged && strcmp(v[merged - 1].name, v[i].name) == 0)
			v[merged - 1].value += v[i].value;
		else
			v[merged++] = v[i];
	}
	for (size_t i = 0; i < merged && rc == 0; i++) {
		const struct metrics_family *f = family_of(v[i].name, fam, sizeof fam);

		if (strcmp(fam, prev) != 0) {
			rc = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam, f ? f->help : "mcpgw metric.", fam,
					f ? f->type : "untyped");
			snprintf(prev, sizeof prev, "%s", fam);
		}
		if (rc == 0 && f && strcmp(f->type, "histogram") == 0 && strstr(v[i].name, "le=\"")) {
			i = render_buckets(out, v, merged, i, &rc) - 1;
			continue;
		}
		if (rc == 0)
			rc = render_sample(out, &v[i], f);
	}
	free(v);
	return rc;
}
