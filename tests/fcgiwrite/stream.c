/* stream.c: a test FastCGI responder, one thread and one poll loop, that answers every request through lib/http/fcgiwrite (tests/blackbox/fcgiwrite.bats): a slow client of one request must not keep it from answering another. */
/*
 * Requests (the query is all it reads):
 *   ?bytes=N   200, N bytes of a fixed pattern (byte i is 'a' + (i*7 + i/251) % 26), made as room comes
 *   anything else: 200 {"want_write":W,"streaming":S,"gone":G,"keep_conn":K,"reused":R}: how often a
 *              flush found the socket full so far, how many answers are being written now, how many
 *              clients went away, how many requests asked to keep their connection (FCGI_KEEP_CONN),
 *              how many came on a connection kept from an earlier one
 * libfcgi accepts (FCGX_Accept_r, only when poll says the listening socket, fd 0, is readable) and
 * reads the parameters and the body; the rest is fcgiwrite's. At most SLOTS requests at once.
 * A connection the web server keeps (FCGI_KEEP_CONN: Apache mod_proxy_fcgi) is read for its next
 * request once it is readable, and closed when the web server closed it, or when every slot is
 * taken (an idle kept connection gives its slot to a new one).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/fcgiwrite.h"

#define SLOTS 16                    /* requests at once */
#define OUT_MAX (64 << 10)          /* each answer's buffer */
#define PRODUCE_CHUNK 4096          /* what is made at a time */
#define BYTES_MAX ((size_t)1 << 30) /* the largest answer asked */
#define BODY_MAX 65536              /* the most body bytes read */

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_ENDING, SLOT_KEPT };

struct slot {
	enum slot_state state;
	FCGX_Request req;
	struct fcgiwrite fw;
	size_t total, made; /* the answer's body bytes asked and made so far */
	int want;           /* the last flush said FCGIWRITE_WANT_WRITE */
};

static struct slot slots[SLOTS];
static unsigned long want_writes, gone, reused, keep_asked;
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static char pattern(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

static int streaming(void)
{
	int n = 0;

	for (int i = 0; i < SLOTS; i++)
		n += slots[i].state == SLOT_BUSY || slots[i].state == SLOT_ENDING;
	return n;
}

/* start: the request just accepted in s: read its body, put its headers (and a small answer whole) */
static void start(struct slot *s)
{
	const char *q = FCGX_GetParam("QUERY_STRING", s->req.envp);
	char head[256], scratch[4096];
	size_t body = 0;
	int n;

	while (body < BODY_MAX && (n = FCGX_GetStr(scratch, (int)sizeof scratch, s->req.in)) > 0)
		body += (size_t)n;
	if (fcgiwrite_begin(&s->fw, &s->req, OUT_MAX) < 0) {
		s->state = SLOT_FREE;
		return;
	}
	s->state = SLOT_BUSY;
	keep_asked += (unsigned long)(s->req.keepConnection != 0);
	s->made = s->total = 0;
	s->want = 0;
	if (q && strncmp(q, "bytes=", 6) == 0) {
		s->total = strtoul(q + 6, NULL, 10);
		if (s->total > BYTES_MAX)
			s->total = BYTES_MAX;
		n = snprintf(head, sizeof head,
			     "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
			     s->total);
	} else {
		n = snprintf(head, sizeof head,
			     "Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{\"want_write\":%lu,\"streaming\":%d,\"gone\":%lu,\"keep_conn\":%lu,\"reused\":%lu}\n",
			     want_writes, streaming() - 1, gone, keep_asked, reused);
	}
	if (n < 0 || (size_t)n >= sizeof head || fcgiwrite_put(&s->fw, head, (size_t)n) != FCGIWRITE_PUT_OK)
		s->total = 0; /* cannot happen with OUT_MAX: the answer ends short */
}

/* produce: make what fits of s's answer */
static void produce(struct slot *s)
{
	char chunk[PRODUCE_CHUNK];

	while (s->made < s->total) {
		size_t n = s->total - s->made < sizeof chunk ? s->total - s->made : sizeof chunk;

		if (fcgiwrite_room(&s->fw) < n)
			return; /* paused until flush made room */
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(s->made + i);
		if (fcgiwrite_put(&s->fw, chunk, n) != FCGIWRITE_PUT_OK)
			return;
		s->made += n;
	}
}

/* step: write what s's socket takes, end the answer once it is all made */
static void step(struct slot *s)
{
	enum fcgiwrite_state st;

	produce(s);
	if (s->made == s->total)
		s->state = SLOT_ENDING;
	st = s->state == SLOT_ENDING ? fcgiwrite_finish(&s->fw, 0) : fcgiwrite_flush(&s->fw);
	s->want = st == FCGIWRITE_WANT_WRITE;
	want_writes += (unsigned long)s->want;
	if (st == FCGIWRITE_GONE) {
		gone++;
		fcgiwrite_abandon(&s->fw); /* after finish: already handed back */
		s->state = SLOT_FREE;
	} else if (st == FCGIWRITE_DONE && s->state == SLOT_ENDING) {
		s->state = s->req.ipcFd >= 0 ? SLOT_KEPT : SLOT_FREE;
	}
}

/* next_on_kept: s's kept connection is readable: its next request, or the web server closed it */
static void next_on_kept(struct slot *s)
{
	char c;
	ssize_t n = recv(s->req.ipcFd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n <= 0) { /* closed (FCGX_Accept_r would then block in accept): close it here */
		(void)FCGX_Detach(&s->req);
		FCGX_Free(&s->req, 1);
		s->state = SLOT_FREE;
		return;
	}
	if (FCGX_Accept_r(&s->req) == 0) {
		reused++;
		start(s);
	} else {
		s->state = SLOT_FREE;
	}
}

int main(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	if (FCGX_Init() != 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return 1;
	for (int i = 0; i < SLOTS; i++)
		(void)FCGX_InitRequest(&slots[i].req, 0, 0);
	while (!stop) {
		struct pollfd p[SLOTS + 1];
		int map[SLOTS + 1], np = 0, idle = -1, kept = -1, busy = 0;

		for (int i = 0; i < SLOTS; i++) {
			struct slot *s = &slots[i];

			if (s->state == SLOT_FREE) {
				idle = idle < 0 ? i : idle;
				continue;
			}
			if (s->state == SLOT_KEPT && kept < 0)
				kept = i;
			p[np].fd = s->req.ipcFd;
			p[np].events = (short)(POLLIN | (s->want ? POLLOUT : 0));
			map[np++] = i;
			busy |= s->state == SLOT_BUSY && !s->want;
		}
		if (idle < 0 && kept >= 0) {
			/* every slot taken, some by idle kept connections: one of those gives its slot to
			 * the next connection (the web server sees it closed and opens another) */
			(void)FCGX_Detach(&slots[kept].req);
			FCGX_Free(&slots[kept].req, 1);
			slots[kept].state = SLOT_FREE;
			continue;
		}
		if (idle >= 0) {
			p[np].fd = 0;
			p[np].events = POLLIN;
			map[np++] = -1;
		}
		if (poll(p, (nfds_t)np, busy ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int k = 0; k < np; k++) {
			struct slot *s = map[k] >= 0 ? &slots[map[k]] : &slots[idle];

			if (map[k] < 0) {
				if (p[k].revents & POLLIN) {
					if (FCGX_Accept_r(&s->req) == 0)
						start(s);
				}
			} else if (s->state == SLOT_KEPT) {
				if (p[k].revents)
					next_on_kept(s);
			} else if (p[k].revents || !s->want) {
				step(s);
			}
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].state == SLOT_BUSY || slots[i].state == SLOT_ENDING)
			fcgiwrite_abandon(&slots[i].fw);
		(void)FCGX_Detach(&slots[i].req);
		FCGX_Free(&slots[i].req, 1);
	}
	return 0;
}
