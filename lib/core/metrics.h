/* metrics.h: counters and histograms shared by every process of a state directory (a file mapped shared, atomic adds), rendered in Prometheus text exposition format. */
#ifndef MCPGW_METRICS_H
#define MCPGW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* The file ($MCPGW_STATE_DIR/metrics.shm, STATEDIR_METRICS, 0600, never
 * through a symlink) is a fixed table of METRICS_SLOTS series, each a name
 * with its labels ("mcpgw_http_requests_total{endpoint=\"/health\",...}")
 * and a 64-bit value. Every responder process and the broker map it and
 * add with atomic instructions (no lock, no system call, no allocation per
 * update), as the broker publishes the catalog generation in catalog.gen;
 * a series is claimed once: the next free slot (slots are taken in order,
 * so what one process uses sits on few pages), published by a
 * compare-and-swap in an index by the name's hash. A series
 * that finds no free slot is not counted (mcpgw_metrics_dropped_total
 * says how often). The values live as long as the file: a restart of a
 * process keeps them; removing the file (mcpgwctl stop does not) resets
 * them, which Prometheus handles as a counter reset. */
#define METRICS_SLOTS 4096
#define METRICS_NAME_MAX 240 /* a series' name with its labels, bytes with the NUL */

/* The latency buckets (seconds) of every histogram: Prometheus client
 * libraries' defaults (DefBuckets) plus 30 s and 120 s for tool rounds. */
#define METRICS_BUCKETS \
	{ \
		0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120 \
	}

struct metrics;

/* metrics_open: the metrics file of state_dir (which must exist), made
 * when missing, mapped read-write. The handle (metrics_close it), or NULL
 * with err ("path: why"); a file of another layout is refused. */
struct metrics *metrics_open(const char *state_dir, char *err, size_t errlen);

/* metrics_close: unmap (NULL: nothing). */
void metrics_close(struct metrics *m);

/* metrics_series: "family{k1=\"v1\",k2=\"v2\"}" into out (outlen bytes), the
 * label values escaped as the exposition format says (\\, \", \n); labels:
 * pairs of key and value ending with NULL (NULL itself: no labels). 0, or
 * -1 when it does not fit METRICS_NAME_MAX or outlen. */
int metrics_series(char *out, size_t outlen, const char *family, const char *const *labels);

/* metrics_add: add delta to series (a name from metrics_series). m NULL:
 * nothing. Safe from any thread of any process. */
void metrics_add(struct metrics *m, const char *series, int64_t delta);

/* metrics_observe: one observation of us microseconds in the histogram
 * family with labels: the one bucket it falls in (family_bucket{...,le="..."};
 * metrics_render shows them cumulative, every bound), family_sum (kept in
 * microseconds, shown in seconds) and family_count: three updates. */
void metrics_observe(struct metrics *m, const char *family, const char *const *labels, int64_t us);

/* metrics_ref: the value of series (a name from metrics_series; its slot
 * claimed when new), to add to with metrics_ref_add without looking it up
 * again: valid while m is open. NULL (and counted as dropped) when m is
 * NULL or the table is full. */
int64_t *metrics_ref(struct metrics *m, const char *series);

/* metrics_ref_add: add delta to a value of metrics_ref (NULL: nothing). Any thread. */
void metrics_ref_add(int64_t *ref, int64_t delta);

/* A histogram's values, looked up once (metrics_hist_ref) and observed
 * many times (metrics_hist_observe): what a caller keeps per label set. */
#define METRICS_NBUCKETS 14 /* METRICS_BUCKETS and +Inf */
struct metrics_hist {
	int64_t bound_us[METRICS_NBUCKETS];              /* each bucket's upper bound, µs (the last: no bound) */
	int64_t *bucket[METRICS_NBUCKETS], *sum, *count; /* NULL: not counted (table full) */
};

/* metrics_hist_ref: the family_bucket (every bound), family_sum and
 * family_count values of family with labels (as metrics_observe) into *h.
 * 0, or -1 when some could not be had (those are NULL, not counted). */
int metrics_hist_ref(struct metrics *m, const char *family, const char *const *labels, struct metrics_hist *h);

/* metrics_hist_observe: one observation of us microseconds: three atomic
 * adds, no lookup. Any thread. */
void metrics_hist_observe(const struct metrics_hist *h, int64_t us);

/* metrics_render: every series in the Prometheus text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
 * grouped by family, each with its # HELP and # TYPE (from the table in
 * metrics.c; a family it lacks is "untyped"), buckets in increasing le,
 * appended to out. 0, or -1 out of memory. */
int metrics_render(const struct metrics *m, buf_t *out);

#endif
