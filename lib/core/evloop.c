/* evloop.c: the event loop: epoll(7) over the fds its users watch (registered once, changed only when their interest does), then the timers they registered. */
#include "core/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/clock.h"

struct watch {
	int events;            /* 0: not watched */
	int reg;               /* the events registered with epoll for this fd (0: none) */
	unsigned gen;          /* bumped when the fd is watched afresh */
	unsigned reg_gen;      /* the generation in its registration's data */
	unsigned char dirty;   /* in l->dirty: its registration is brought up to date before the next wait */
	unsigned char always;  /* epoll refuses it (a regular file): reported ready at every pass, as poll(2) would */
	unsigned char parked;  /* evloop_park: registered, no callback, until watched or unwatched again */
	unsigned char resumed; /* watched again by its owner after evloop_park (its registration is as it was) */
	evloop_fd_fn *fn;
	void *ctx;
};

struct timer {
	long id; /* 0: deleted (compacted after the pass) */
	evloop_due_fn *due;
	evloop_fire_fn *fire;
	void *ctx;
};

/* Ready fds taken from the kernel per pass, at most (more wait for the next pass: level-triggered) */
#define EVLOOP_BATCH 256

struct evloop {
	evloop_clock_fn *clock;
	void *clock_ctx;
	int epfd;        /* epoll(7): the fds watched, registered once and changed only when their interest does */
	struct watch *w; /* indexed by fd, sized dynamically */
	size_t nw;
	int *dirty; /* fds whose interest changed since the last wait */
	size_t ndirty, capdirty;
	size_t nalways; /* watched fds epoll refused */
	struct epoll_event ev[EVLOOP_BATCH];
	int nev;
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
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		free(l);
		return NULL;
	}
	l->clock = clock ? clock : default_clock;
	l->clock_ctx = clock_ctx;
	return l;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	(void)close(l->epfd);
	free(l->w);
	free(l->dirty);
	free(l->t);
	free(l);
}

int64_t evloop_now(const struct evloop *l)
{
	return l->clock(l->clock_ctx);
}

/* mark_dirty: fd's registration to be brought up to date before the next wait. 0 or -1 (ENOMEM) */
static int mark_dirty(struct evloop *l, int fd)
{
	struct watch *w = &l->w[fd];

	if (w->dirty)
		return 0;
	if (l->ndirty == l->capdirty) {
		size_t cap = l->capdirty ? l->capdirty * 2 : 64;
		int *d = realloc(l->dirty, cap * sizeof *d);

		if (!d)
			return -1;
		l->dirty = d;
		l->capdirty = cap;
	}
	l->dirty[l->ndirty++] = fd;
	w->dirty = 1;
	return 0;
}

int evloop_watch(struct evloop *l, int fd, int events, evloop_fd_fn *fn, void *ctx)
{
	struct watch *w;
	unsigned gen;

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
	events &= EVLOOP_READ | EVLOOP_WRITE;
	if (w->events == events && w->fn == fn && w->ctx == ctx && !w->dirty && w->reg == events && w->reg_gen == w->gen)
		return 0; /* as it is registered already (the broker re-watches each client after every send) */
	gen = w->gen;
	if ((!w->events && !w->parked) || w->fn != fn || w->ctx != ctx)
		gen++; /* a new owner: what was collected for the old one is not its (a parked fd taken
			* up again by its owner keeps its registration as it is) */
	if (mark_dirty(l, fd) < 0)
		return -1;
	w->gen = gen;
	w->resumed = w->parked && w->fn == fn && w->ctx == ctx;
	w->parked = 0;
	w->events = events & (EVLOOP_READ | EVLOOP_WRITE);
	w->fn = fn;
	w->ctx = ctx;
	return 0;
}

void evloop_unwatch(struct evloop *l, int fd)
{
	struct watch *w;

	if (fd < 0 || (size_t)fd >= l->nw || (!l->w[fd].events && !l->w[fd].reg))
		return;
	w = &l->w[fd];
	w->events = 0;
	w->parked = w->resumed = 0;
	w->gen++;
	/* now, while fd is still open (the contract: unwatch before close), not before the next wait */
	if (w->reg)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->reg = 0;
	if (w->always) {
		w->always = 0;
		l->nalways--;
	}
}

void evloop_park(struct evloop *l, int fd)
{
	struct watch *w;

	if (fd < 0 || (size_t)fd >= l->nw || !l->w[fd].events)
		return;
	w = &l->w[fd];
	if (w->always || !w->reg) { /* nothing registered to keep */
		evloop_unwatch(l, fd);
		return;
	}
	w->events = 0; /* its callback is not called; an event that comes removes the registration */
	w->parked = 1;
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

/* sync: every changed interest registered with epoll: ADD, MOD (the data: the fd and its watch's
 * generation), nothing for one unwatched since (evloop_unwatch removed it at once). An fd closed
 * without evloop_unwatch and its number reused is added afresh (MOD says ENOENT); one epoll refuses
 * (EPERM: a regular file) is reported ready at every pass instead; one that is no open fd (EBADF)
 * is forgotten. */
static void sync_watches(struct evloop *l)
{
	for (size_t i = 0; i < l->ndirty; i++) {
		int fd = l->dirty[i];
		struct watch *w = &l->w[fd];
		struct epoll_event e = { 0 };
		int op, rc;

		w->dirty = 0;
		if (!w->events || w->always)
			continue;
		if (w->resumed && w->reg == w->events && w->reg_gen == w->gen) {
			w->resumed = 0;
			continue; /* parked and taken up again as it was registered */
		}
		w->resumed = 0;
		e.events = (w->events & EVLOOP_READ ? EPOLLIN : 0) | (w->events & EVLOOP_WRITE ? EPOLLOUT : 0);
		e.data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd;
		op = w->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		rc = epoll_ctl(l->epfd, op, fd, &e);
		if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
			rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e);
		else if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
			rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &e);
		if (rc == 0) {
			w->reg = w->events;
			w->reg_gen = w->gen;
		} else if (errno == EPERM) {
			w->reg = 0;
			w->always = 1;
			l->nalways++;
		} else {
			w->reg = 0;
			w->events = 0; /* EBADF: no such fd any more */
			w->gen++;
		}
	}
	l->ndirty = 0;
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
	for (int i = 0; i < l->nev; i++) {
		uint32_t re = l->ev[i].events;
		int fd = (int)(uint32_t)l->ev[i].data.u64, ev = 0;
		unsigned gen = (unsigned)(l->ev[i].data.u64 >> 32);
		struct watch *w;

		if ((size_t)fd >= l->nw)
			continue;
		w = &l->w[fd];
		if (w->parked && w->reg && w->reg_gen == gen) {
			/* parked (evloop_park) and ready: its registration goes, as unwatch would have */
			(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			w->reg = 0;
			w->parked = 0;
			w->gen++;
			continue;
		}
		if (!w->events || w->gen != gen)
			continue; /* unwatched or handed over during this pass */
		if (re & (EPOLLERR | EPOLLHUP))
			ev |= EVLOOP_ERROR;
		if ((w->events & EVLOOP_READ) && (re & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			ev |= EVLOOP_READ;
		if ((w->events & EVLOOP_WRITE) && (re & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			ev |= EVLOOP_WRITE;
		if (ev & (EVLOOP_READ | EVLOOP_WRITE))
			w->fn(w->ctx, fd, ev);
	}
	l->nev = 0;
	if (l->nalways) { /* always ready for what they are watched for */
		for (size_t fd = 0; fd < l->nw; fd++) {
			struct watch *w = &l->w[fd];

			if (w->events && w->always)
				w->fn(w->ctx, (int)fd, w->events);
		}
	}
}

/* run_timers: the timers due fired; how many */
static int run_timers(struct evloop *l)
{
	int64_t now = evloop_now(l);
	size_t n = l->nt; /* timers added by a callback wait for the next pass */
	int fired = 0;

	l->firing = 1;
	for (size_t i = 0; i < n; i++) {
		struct timer t = l->t[i];

		if (t.id && t.due(t.ctx) <= now) {
			t.fire(t.ctx, now);
			fired++;
		}
	}
	l->firing = 0;
	timers_compact(l);
	return fired;
}

int evloop_step(struct evloop *l, int max_ms)
{
	int64_t due = next_due(l), now = evloop_now(l);
	int timeout = max_ms < 0 ? 0 : max_ms, n;

	if (due != EVLOOP_NEVER)
		timeout = due <= now ? 0 : due - now < timeout ? (int)(due - now) : timeout;
	sync_watches(l);
	if (l->nalways)
		timeout = 0;
	if ((n = epoll_wait(l->epfd, l->ev, EVLOOP_BATCH, timeout)) < 0) {
		if (errno != EINTR)
			return -1;
		n = 0;
	}
	l->nev = n;
	run_fds(l);
	return n + run_timers(l);
}
