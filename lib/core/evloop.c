/* evloop.c: the event loop: poll(2) over the fds its users watch, then the timers they registered. */
#include "core/evloop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "core/clock.h"

struct watch {
	int events;   /* 0: not watched */
	unsigned gen; /* bumped when the fd is watched afresh */
	evloop_fd_fn *fn;
	void *ctx;
};

struct timer {
	long id; /* 0: deleted (compacted after the pass) */
	evloop_due_fn *due;
	evloop_fire_fn *fire;
	void *ctx;
};

struct evloop {
	evloop_clock_fn *clock;
	void *clock_ctx;
	struct watch *w; /* indexed by fd, sized dynamically */
	size_t nw;
	struct pollfd *pfd; /* the poll set of the current pass */
	unsigned *pgen;     /* the watch generation each entry was built from */
	size_t npfd, cappfd;
	struct timer *t;
	size_t nt, capt;
	long next_id;
	int firing; /* inside the timer pass: deletions only mark */
};

static int64_t default_clock(void *ctx)
{
	(void)ctx;
	return clock_now_ms();
}

struct evloop *evloop_new(evloop_clock_fn *clock, void *clock_ctx)
{
	struct evloop *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
	l->clock = clock ? clock : default_clock;
	l->clock_ctx = clock_ctx;
	return l;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	free(l->w);
	free(l->pfd);
	free(l->pgen);
	free(l->t);
	free(l);
}

int64_t evloop_now(const struct evloop *l)
{
	return l->clock(l->clock_ctx);
}

int evloop_watch(struct evloop *l, int fd, int events, evloop_fd_fn *fn, void *ctx)
{
	struct watch *w;

	if (fd < 0)
		return -1;
	if (!events) {
		evloop_unwatch(l, fd);
		return 0;
	}
	if ((size_t)fd >= l->nw) {
		size_t n = l->nw ? l->nw : 64;

		while (n <= (size_t)fd)
			n *= 2;
		if (!(w = realloc(l->w, n * sizeof *w)))
			return -1;
		for (size_t i = l->nw; i < n; i++)
			w[i] = (struct watch){ 0 };
		l->w = w;
		l->nw = n;
	}
	w = &l->w[fd];
	if (!w->events || w->fn != fn || w->ctx != ctx)
		w->gen++; /* a new owner: what was collected for the old one is not its */
	w->events = events & (EVLOOP_READ | EVLOOP_WRITE);
	w->fn = fn;
	w->ctx = ctx;
	return 0;
}

void evloop_unwatch(struct evloop *l, int fd)
{
	if (fd >= 0 && (size_t)fd < l->nw && l->w[fd].events) {
		l->w[fd].events = 0;
		l->w[fd].gen++;
	}
}

long evloop_timer_add(struct evloop *l, evloop_due_fn *due, evloop_fire_fn *fire, void *ctx)
{
	if (l->nt == l->capt) {
		size_t cap = l->capt ? l->capt * 2 : 16;
		struct timer *t = realloc(l->t, cap * sizeof *t);

		if (!t)
			return -1;
		l->t = t;
		l->capt = cap;
	}
	l->t[l->nt++] = (struct timer){ .id = ++l->next_id, .due = due, .fire = fire, .ctx = ctx };
	return l->next_id;
}

static void timers_compact(struct evloop *l)
{
	size_t k = 0;

	for (size_t i = 0; i < l->nt; i++)
		if (l->t[i].id)
			l->t[k++] = l->t[i];
	l->nt = k;
}

void evloop_timer_del(struct evloop *l, long id)
{
	for (size_t i = 0; i < l->nt; i++) {
		if (l->t[i].id == id) {
			l->t[i].id = 0;
			break;
		}
	}
	if (!l->firing)
		timers_compact(l);
}

/* build_poll: the poll set from the watches. 0 or -1 (ENOMEM) */
static int build_poll(struct evloop *l)
{
	l->npfd = 0;
	for (size_t fd = 0; fd < l->nw; fd++) {
		const struct watch *w = &l->w[fd];

		if (!w->events)
			continue;
		if (l->npfd == l->cappfd) {
			size_t cap = l->cappfd ? l->cappfd * 2 : 64;
			struct pollfd *p = realloc(l->pfd, cap * sizeof *p);
			unsigned *g;

			if (!p)
				return -1;
			l->pfd = p;
			if (!(g = realloc(l->pgen, cap * sizeof *g)))
				return -1;
			l->pgen = g;
			l->cappfd = cap;
		}
		l->pfd[l->npfd] = (struct pollfd){ .fd = (int)fd,
						   .events = (short)((w->events & EVLOOP_READ ? POLLIN : 0) |
								     (w->events & EVLOOP_WRITE ? POLLOUT : 0)) };
		l->pgen[l->npfd] = w->gen;
		l->npfd++;
	}
	return 0;
}

/* next_due: the earliest due time of the timers: every timer asked, each pass
 * (O(timers): see evloop_due_fn) */
static int64_t next_due(struct evloop *l)
{
	int64_t d = EVLOOP_NEVER;

	for (size_t i = 0; i < l->nt; i++) {
		int64_t t = l->t[i].id ? l->t[i].due(l->t[i].ctx) : EVLOOP_NEVER;

		if (t < d)
			d = t;
	}
	return d;
}

static void run_fds(struct evloop *l)
{
	for (size_t i = 0; i < l->npfd; i++) {
		short re = l->pfd[i].revents;
		int fd = l->pfd[i].fd, ev = 0;
		struct watch *w = &l->w[fd];

		if (!re || !w->events || w->gen != l->pgen[i])
			continue; /* unwatched or handed over during this pass */
		if (re & (POLLERR | POLLHUP | POLLNVAL))
			ev |= EVLOOP_ERROR;
		if ((w->events & EVLOOP_READ) && (re & (POLLIN | POLLERR | POLLHUP | POLLNVAL)))
			ev |= EVLOOP_READ;
		if ((w->events & EVLOOP_WRITE) && (re & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
			ev |= EVLOOP_WRITE;
		if (ev & (EVLOOP_READ | EVLOOP_WRITE))
			w->fn(w->ctx, fd, ev);
	}
}

static void run_timers(struct evloop *l)
{
	int64_t now = evloop_now(l);
	size_t n = l->nt; /* timers added by a callback wait for the next pass */

	l->firing = 1;
	for (size_t i = 0; i < n; i++) {
		struct timer t = l->t[i];

		if (t.id && t.due(t.ctx) <= now)
			t.fire(t.ctx, now);
	}
	l->firing = 0;
	timers_compact(l);
}

int evloop_step(struct evloop *l, int max_ms)
{
	int64_t due = next_due(l), now = evloop_now(l);
	int timeout = max_ms < 0 ? 0 : max_ms;

	if (due != EVLOOP_NEVER)
		timeout = due <= now ? 0 : due - now < timeout ? (int)(due - now) : timeout;
	if (build_poll(l) < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (poll(l->pfd, l->npfd, timeout) < 0) {
		if (errno != EINTR)
			return -1;
		l->npfd = 0;
	}
	run_fds(l);
	run_timers(l);
	return 0;
}
