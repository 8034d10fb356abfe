/* test_evloop.c: the event loop (lib/core/evloop.c): fds with interest, parked fds, timers on a fake clock, changes made from inside callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/evloop.h"

struct probe {
	struct evloop *l;
	int64_t now, due;
	int fired, reads, writes, errors;
	int unwatch_other; /* fd to unwatch from inside the callback, or -1 */
	long del_self;     /* timer id to delete from inside its callback, or 0 */
};

static int64_t fake_clock(void *ctx)
{
	return ((struct probe *)ctx)->now;
}

static int64_t due(void *ctx)
{
	return ((struct probe *)ctx)->due;
}

static void fire(void *ctx, int64_t now)
{
	struct probe *p = ctx;

	p->fired++;
	p->due = now + 100; /* the owner moves its deadline; nothing to re-arm */
	if (p->del_self)
		evloop_timer_del(p->l, p->del_self);
}

static void on_fd(void *ctx, int fd, int events)
{
	struct probe *p = ctx;
	char c[16];

	if (events & EVLOOP_READ) {
		p->reads++;
		(void)!read(fd, c, sizeof c);
	}
	if (events & EVLOOP_WRITE)
		p->writes++;
	if (events & EVLOOP_ERROR)
		p->errors++;
	if (p->unwatch_other >= 0)
		evloop_unwatch(p->l, p->unwatch_other);
}

static void test_timers_on_a_fake_clock(void **state)
{
	struct probe p = { .now = 1000, .due = 1500, .unwatch_other = -1 };
	long id;
	(void)state;

	p.l = evloop_new(fake_clock, &p);
	assert_int_equal(evloop_now(p.l), 1000);
	id = evloop_timer_add(p.l, due, fire, &p);
	assert_true(id > 0);
	assert_int_equal(evloop_step(p.l, 0), 0);
	assert_int_equal(p.fired, 0);
	p.now = 1499;
	evloop_step(p.l, 0);
	assert_int_equal(p.fired, 0);
	p.now = 1500;
	assert_int_equal(evloop_step(p.l, 0), 1); /* a timer fired: counted */
	assert_int_equal(p.fired, 1);
	assert_int_equal(p.due, 1600);
	p.now = 1600;
	p.del_self = id; /* deleted inside its own callback */
	evloop_step(p.l, 0);
	assert_int_equal(p.fired, 2);
	p.now = 5000;
	evloop_step(p.l, 0);
	assert_int_equal(p.fired, 2);
	evloop_free(p.l);
}

static void test_fds_and_interest(void **state)
{
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 };
	int a[2], b[2];
	(void)state;

	p.l = evloop_new(fake_clock, &p);
	assert_int_equal(pipe2(a, O_NONBLOCK), 0);
	assert_int_equal(pipe2(b, O_NONBLOCK), 0);
	/* an fd far above 64 is fine: the table grows */
	{
		int hi = fcntl(a[0], F_DUPFD_CLOEXEC, 700);

		assert_true(hi >= 700);
		assert_int_equal(evloop_watch(p.l, hi, EVLOOP_READ, on_fd, &p), 0);
		assert_int_equal(write(a[1], "h", 1), 1);
		evloop_step(p.l, 0);
		assert_int_equal(p.reads, 1);
		evloop_unwatch(p.l, hi);
		close(hi);
		p.reads = 0;
	}
	assert_int_equal(evloop_watch(p.l, a[0], EVLOOP_READ, on_fd, &p), 0);
	assert_int_equal(evloop_step(p.l, 0), 0); /* the number of ready fds run: none */
	assert_int_equal(p.reads, 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(evloop_step(p.l, 0), 1);
	assert_int_equal(p.reads, 1);
	/* write interest on a pipe's write end: reported until dropped */
	assert_int_equal(evloop_watch(p.l, b[1], EVLOOP_WRITE, on_fd, &p), 0);
	evloop_step(p.l, 0);
	assert_int_equal(p.writes, 1);
	evloop_watch(p.l, b[1], 0, on_fd, &p);
	evloop_step(p.l, 0);
	assert_int_equal(p.writes, 1);
	/* two fds ready in one pass; the first callback unwatches the other: it is not called */
	assert_int_equal(evloop_watch(p.l, b[0], EVLOOP_READ, on_fd, &p), 0);
	assert_int_equal(write(a[1], "y", 1), 1);
	assert_int_equal(write(b[1], "z", 1), 1);
	p.unwatch_other = a[0] < b[0] ? b[0] : a[0];
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 2);
	p.unwatch_other = -1;
	/* a hang-up is reported as readable, with EVLOOP_ERROR */
	close(a[1]);
	evloop_watch(p.l, a[0], EVLOOP_READ, on_fd, &p);
	evloop_step(p.l, 0);
	assert_true(p.errors >= 1);
	evloop_unwatch(p.l, a[0]);
	evloop_unwatch(p.l, b[0]);
	close(a[0]);
	close(b[0]);
	close(b[1]);
	assert_int_equal(evloop_watch(p.l, -1, EVLOOP_READ, on_fd, &p), -1);
	evloop_free(p.l);
}

static void test_wait_is_bounded_by_the_next_timer(void **state)
{
	struct probe p = { .due = 0, .unwatch_other = -1 };
	(void)state;

	/* the real clock: a timer 30 ms ahead cuts a 5 s wait short */
	p.l = evloop_new(NULL, NULL);
	p.due = evloop_now(p.l) + 30;
	evloop_timer_add(p.l, due, fire, &p);
	int64_t t0 = evloop_now(p.l);
	evloop_step(p.l, 5000);
	assert_true(evloop_now(p.l) - t0 < 2000);
	assert_int_equal(p.fired, 1);
	evloop_free(p.l);
}

/* many fds at once (remote servers' sockets from libcurl: as many as it
 * opens): every one is polled in one pass, none left out past a fixed size
 * (the broker once polled 64 at most) */
static void test_many_fds_polled_at_once(void **state)
{
	enum { N = 200 };
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 };
	int fds[N][2];
	(void)state;

	p.l = evloop_new(fake_clock, &p);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe2(fds[i], O_NONBLOCK), 0);
		assert_int_equal(evloop_watch(p.l, fds[i][0], EVLOOP_READ, on_fd, &p), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(write(fds[i][1], "r", 1), 1);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, N);
	/* the last ones alone too */
	p.reads = 0;
	for (int i = N - 3; i < N; i++)
		assert_int_equal(write(fds[i][1], "s", 1), 1);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 3);
	for (int i = 0; i < N; i++) {
		evloop_unwatch(p.l, fds[i][0]);
		close(fds[i][0]);
		close(fds[i][1]);
	}
	evloop_free(p.l);
}

/* more ready fds than one pass takes (EVLOOP_BATCH): the rest come at the next passes, none lost */
static void test_more_ready_than_a_pass_takes(void **state)
{
	enum { N = 300 };
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 };
	int fds[N][2], passes = 0;
	(void)state;

	p.l = evloop_new(fake_clock, &p);
	for (int i = 0; i < N; i++) {
		assert_int_equal(pipe2(fds[i], O_NONBLOCK), 0);
		assert_int_equal(evloop_watch(p.l, fds[i][0], EVLOOP_READ, on_fd, &p), 0);
		assert_int_equal(write(fds[i][1], "r", 1), 1);
	}
	while (p.reads < N && passes < 10) {
		evloop_step(p.l, 0);
		passes++;
	}
	assert_int_equal(p.reads, N);
	assert_true(passes >= 2 && passes <= 4);
	evloop_step(p.l, 0); /* all read: nothing more */
	assert_int_equal(p.reads, N);
	for (int i = 0; i < N; i++) {
		evloop_unwatch(p.l, fds[i][0]);
		close(fds[i][0]);
		close(fds[i][1]);
	}
	evloop_free(p.l);
}

/* a regular file (epoll refuses it) is ready at every pass, as poll(2) says; an fd closed without
 * being unwatched and its number reused by a new pipe is watched afresh, not lost */
static void test_regular_file_and_reused_number(void **state)
{
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 };
	char path[] = "/tmp/mcpgw-evloop.XXXXXX";
	int f = mkstemp(path), fds[2], r;
	(void)state;

	assert_true(f >= 0);
	(void)unlink(path);
	assert_int_equal(write(f, "x", 1), 1);
	p.l = evloop_new(fake_clock, &p);
	assert_int_equal(evloop_watch(p.l, f, EVLOOP_READ, on_fd, &p), 0);
	evloop_step(p.l, 1000);
	evloop_step(p.l, 1000);
	assert_int_equal(p.reads, 2);
	evloop_unwatch(p.l, f);
	close(f);
	p.reads = 0;
	/* a pipe watched, closed without evloop_unwatch, its number taken by the next pipe */
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	r = fds[0];
	assert_int_equal(evloop_watch(p.l, r, EVLOOP_READ, on_fd, &p), 0);
	evloop_step(p.l, 0);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	assert_int_equal(fds[0], r);
	assert_int_equal(evloop_watch(p.l, fds[0], EVLOOP_READ | EVLOOP_WRITE, on_fd, &p), 0);
	assert_int_equal(evloop_watch(p.l, fds[0], EVLOOP_READ, on_fd, &p), 0);
	assert_int_equal(write(fds[1], "y", 1), 1);
	evloop_step(p.l, 1000);
	assert_int_equal(p.reads, 1);
	evloop_unwatch(p.l, fds[0]);
	close(fds[0]);
	close(fds[1]);
	evloop_free(p.l);
}

/* a socketpair's end: readable when the peer writes, writable while its
 * buffer has room, and hung up (read with EVLOOP_ERROR) when the peer closes */
static void test_socketpair_read_write_hangup(void **state)
{
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 };
	int sv[2];
	(void)state;

	p.l = evloop_new(fake_clock, &p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ | EVLOOP_WRITE, on_fd, &p), 0);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.errors, 0);
	/* fill the socket: no longer writable */
	{
		char junk[4096] = { 0 };

		while (write(sv[0], junk, sizeof junk) > 0)
			;
	}
	p.writes = 0;
	evloop_step(p.l, 0);
	assert_int_equal(p.writes, 0);
	assert_int_equal(write(sv[1], "ab", 2), 2);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.writes, 0);
	assert_int_equal(p.errors, 0);
	/* the peer closes: readable (a read says 0) with EVLOOP_ERROR, and writable (a write says EPIPE) */
	close(sv[1]);
	p.reads = 0;
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.errors, 1);
	evloop_unwatch(p.l, sv[0]);
	close(sv[0]);
	evloop_free(p.l);
}

/* registered: whether fd is in the process's epoll set (the one evloop made), from proc(5)'s fdinfo */
static int registered(int fd)
{
	char link[64], target[64], path[64], line[256];
	int found = 0;

	for (int e = 0; e < 1024; e++) {
		ssize_t n;
		FILE *f;

		snprintf(link, sizeof link, "/proc/self/fd/%d", e);
		if ((n = readlink(link, target, sizeof target - 1)) < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "anon_inode:[eventpoll]") != 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", e);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof line, f)) {
			int t;

			if (sscanf(line, "tfd: %d", &t) == 1 && t == fd)
				found = 1;
		}
		fclose(f);
	}
	return found;
}

/* a parked fd keeps its registration and calls no one; ready while parked, its registration goes;
 * watched again by its owner it is served as before; unwatched, it is gone; taken by another owner,
 * the other's callback runs */
static void test_park(void **state)
{
	struct probe p = { .now = 0, .due = EVLOOP_NEVER, .unwatch_other = -1 }, q = p;
	int sv[2];
	(void)state;

	p.l = q.l = evloop_new(fake_clock, &p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ, on_fd, &p), 0);
	evloop_step(p.l, 0);
	assert_true(registered(sv[0]));
	evloop_park(p.l, sv[0]);
	evloop_step(p.l, 0);
	assert_true(registered(sv[0])); /* kept while nothing comes */
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ, on_fd, &p), 0);
	assert_int_equal(write(sv[1], "a", 1), 1);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 1); /* served as before */
	evloop_park(p.l, sv[0]);
	assert_int_equal(write(sv[1], "b", 1), 1);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 1);    /* parked: nobody called */
	assert_false(registered(sv[0])); /* ready while parked: removed */
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 1);
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ, on_fd, &p), 0);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 2); /* watched again: registered afresh, the byte read */
	assert_true(registered(sv[0]));
	evloop_park(p.l, sv[0]);
	evloop_unwatch(p.l, sv[0]); /* before a close: the parked registration goes too */
	assert_false(registered(sv[0]));
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ, on_fd, &p), 0);
	evloop_step(p.l, 0);
	evloop_park(p.l, sv[0]);
	assert_int_equal(evloop_watch(p.l, sv[0], EVLOOP_READ, on_fd, &q), 0); /* another owner */
	assert_int_equal(write(sv[1], "c", 1), 1);
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 2);
	assert_int_equal(q.reads, 1);
	evloop_unwatch(p.l, sv[0]);
	close(sv[0]);
	close(sv[1]);
	evloop_free(p.l);
}

/* a callback that unwatches its own fd (and closes it) is not called again */
struct selfish {
	struct evloop *l;
	int calls;
};

static void on_fd_unwatch_self(void *ctx, int fd, int events)
{
	struct selfish *s = ctx;

	(void)events;
	s->calls++;
	evloop_unwatch(s->l, fd);
	close(fd);
}

static void test_unwatch_self_inside_callback(void **state)
{
	struct selfish s = { 0 };
	int sv[2];
	(void)state;

	s.l = evloop_new(NULL, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(evloop_watch(s.l, sv[0], EVLOOP_READ, on_fd_unwatch_self, &s), 0);
	assert_int_equal(write(sv[1], "x", 1), 1);
	evloop_step(s.l, 0);
	assert_int_equal(s.calls, 1);
	/* not called again (its peer's write now fails: nobody reads) */
	(void)!send(sv[1], "y", 1, MSG_NOSIGNAL);
	evloop_step(s.l, 0);
	evloop_step(s.l, 0);
	assert_int_equal(s.calls, 1);
	close(sv[1]);
	evloop_free(s.l);
}

/* an fd handed to a new owner within the pass: readiness collected for the
 * old owner does not reach the new one in that pass */
struct handover {
	struct evloop *l;
	int other_fd;
	int first_calls, second_calls;
};

static void on_second(void *ctx, int fd, int events)
{
	struct handover *h = ctx;

	(void)fd;
	(void)events;
	h->second_calls++;
}

static void on_first(void *ctx, int fd, int events)
{
	struct handover *h = ctx;
	char c[8];

	(void)events;
	h->first_calls++;
	(void)!read(fd, c, sizeof c);
	evloop_watch(h->l, h->other_fd, EVLOOP_READ, on_second, h);
}

static void test_handover_inside_callback(void **state)
{
	struct handover h = { 0 };
	int a[2], b[2];
	(void)state;

	h.l = evloop_new(NULL, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
	assert_true(a[0] < b[0]);
	h.other_fd = b[0];
	assert_int_equal(evloop_watch(h.l, a[0], EVLOOP_READ, on_first, &h), 0);
	assert_int_equal(evloop_watch(h.l, b[0], EVLOOP_READ, on_first, &h), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "y", 1), 1);
	evloop_step(h.l, 0); /* a[0]'s callback hands b[0] to on_second: b's readiness of this pass is dropped */
	assert_int_equal(h.first_calls, 1);
	assert_int_equal(h.second_calls, 0);
	evloop_step(h.l, 0); /* still readable: now the new owner hears of it */
	assert_int_equal(h.second_calls, 1);
	for (int i = 0; i < 2; i++) {
		evloop_unwatch(h.l, a[i]);
		evloop_unwatch(h.l, b[i]);
		close(a[i]);
		close(b[i]);
	}
	evloop_free(h.l);
}

/* timers that delete, or add, other timers from inside a callback */
struct tpair {
	struct evloop *l;
	int64_t now;
	long victim; /* deleted by the first timer's callback */
	int fired_a, fired_b, fired_c;
	int add_c;
};

static int64_t tp_clock(void *ctx)
{
	return ((struct tpair *)ctx)->now;
}

static int64_t due_zero(void *ctx)
{
	(void)ctx;
	return 0;
}

static void fire_c(void *ctx, int64_t now)
{
	(void)now;
	((struct tpair *)ctx)->fired_c++;
}

static void fire_a(void *ctx, int64_t now)
{
	struct tpair *t = ctx;

	(void)now;
	t->fired_a++;
	if (t->victim) {
		evloop_timer_del(t->l, t->victim);
		t->victim = 0;
	}
	if (t->add_c) {
		t->add_c = 0;
		assert_true(evloop_timer_add(t->l, due_zero, fire_c, t) > 0);
	}
}

static void fire_b(void *ctx, int64_t now)
{
	(void)now;
	((struct tpair *)ctx)->fired_b++;
}

static void test_timer_deletes_and_adds_others(void **state)
{
	struct tpair t = { .now = 10, .add_c = 1 };
	long a, b;
	(void)state;

	t.l = evloop_new(tp_clock, &t);
	a = evloop_timer_add(t.l, due_zero, fire_a, &t);
	b = evloop_timer_add(t.l, due_zero, fire_b, &t);
	assert_true(a > 0 && b > a);
	t.victim = b; /* a's callback deletes b, due in the same pass: b does not fire */
	evloop_step(t.l, 0);
	assert_int_equal(t.fired_a, 1);
	assert_int_equal(t.fired_b, 0);
	assert_int_equal(t.fired_c, 0); /* added during the timer pass: waits for the next */
	evloop_step(t.l, 0);
	assert_int_equal(t.fired_a, 2);
	assert_int_equal(t.fired_b, 0);
	assert_int_equal(t.fired_c, 1);
	evloop_timer_del(t.l, a);
	evloop_timer_del(t.l, b); /* already gone: nothing */
	evloop_step(t.l, 0);
	assert_int_equal(t.fired_a, 2);
	assert_int_equal(t.fired_c, 2);
	evloop_free(t.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_on_a_fake_clock),
		cmocka_unit_test(test_fds_and_interest),
		cmocka_unit_test(test_many_fds_polled_at_once),
		cmocka_unit_test(test_more_ready_than_a_pass_takes),
		cmocka_unit_test(test_regular_file_and_reused_number),
		cmocka_unit_test(test_wait_is_bounded_by_the_next_timer),
		cmocka_unit_test(test_socketpair_read_write_hangup),
		cmocka_unit_test(test_park),
		cmocka_unit_test(test_unwatch_self_inside_callback),
		cmocka_unit_test(test_handover_inside_callback),
		cmocka_unit_test(test_timer_deletes_and_adds_others),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
