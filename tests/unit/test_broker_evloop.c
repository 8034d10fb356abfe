/* test_broker_evloop.c: the broker's event loop: fds with interest, timers on a fake clock, changes made from inside callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include "evloop.h"

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
	evloop_step(p.l, 0);
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
	evloop_step(p.l, 0);
	assert_int_equal(p.reads, 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	evloop_step(p.l, 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_on_a_fake_clock),
		cmocka_unit_test(test_fds_and_interest),
		cmocka_unit_test(test_many_fds_polled_at_once),
		cmocka_unit_test(test_wait_is_bounded_by_the_next_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
