/* sse.h: an incremental Server-Sent Events parser (WHATWG "event stream interpretation"). */
#ifndef MCPGW_SSE_H
#define MCPGW_SSE_H

#include <stddef.h>

#include "core/buf.h"

/* Parser results. A callback's own non-zero return is passed through as is:
 * callbacks should return positive values so they never look like these. */
enum sse_err {
	SSE_OK = 0,
	SSE_ETOOBIG = -1, /* an event's data exceeds max_event bytes, or a line max_event + SSE_LINE_SLACK */
	SSE_ENOMEM = -2,
};

/* sse_event_cb: one dispatched event. event is the type ("message" unless
 * an event: field said otherwise); data (len bytes, NUL-terminated, may
 * hold NULs) is the data lines joined by '\n'; id is the last event ID seen
 * so far in the stream ("" if none). All borrowed, valid during the call.
 * Return 0 to go on; anything else aborts sse_feed, which returns it. */
typedef int (*sse_event_cb)(const char *event, const char *data, size_t len, const char *id, void *ud);

#define SSE_LINE_SLACK 32 /* a line may exceed max_event by this much: room for "data: " and the like */

struct sse_parser {
	size_t max_event; /* bound on one event's data (data lines joined, with the '\n's) */
	sse_event_cb cb;
	void *ud;
	buf_t line;    /* the line being received */
	buf_t data;    /* data buffer of the event being built */
	buf_t event;   /* event type buffer */
	buf_t id;      /* last event ID buffer, kept across events */
	long retry_ms; /* the last valid retry: field, -1 until one came */
	int after_cr;  /* the last byte fed was '\r': a '\n' next is part of that line end */
	int started;   /* a line was completed already (the BOM is only looked for once) */
	int err;       /* sticky: once non-zero every sse_feed returns it */
};

/* sse_init: a parser that calls cb(…, ud) per event; max_event > 0.
 * Nothing is allocated until bytes are fed. */
void sse_init(struct sse_parser *p, size_t max_event, sse_event_cb cb, void *ud);

/* sse_feed: parse n more bytes (any split: a line end or a UTF-8 sequence
 * may be cut anywhere). Lines end in "\r\n", "\n" or "\r"; a leading UTF-8
 * BOM is dropped. Field rules: a line starting with ':' is a comment;
 * "name: value" loses one space after the colon; a line without ':' is a
 * field with an empty value; data: appends value + '\n' to the data buffer;
 * event: sets the type; id: sets the last event ID (ignored if it holds a
 * NUL); retry: sets retry_ms when the value is only ASCII digits (ignored
 * otherwise); unknown fields are ignored. A blank line dispatches the event
 * when at least one data: field was seen (so "data:\n\n" gives an event
 * with len 0), and resets data and type; a blank line after no data: field
 * dispatches nothing. Returns SSE_OK, SSE_ETOOBIG, SSE_ENOMEM or the
 * callback's non-zero value; after any of those the parser is stopped and
 * keeps returning the same value until sse_reset. */
int sse_feed(struct sse_parser *p, const void *bytes, size_t n);

/* sse_pending: 1 if bytes of an event that was not dispatched yet are held
 * (an unfinished line or data without its blank line): at the end of a
 * stream they are discarded, per the standard. */
int sse_pending(const struct sse_parser *p);

/* sse_reset: forget all stream state (also the last event ID, retry_ms and
 * a sticky error) for a new stream; keeps max_event, cb, ud and memory. */
void sse_reset(struct sse_parser *p);

/* sse_free: release the memory; the parser may be sse_init'ed again. */
void sse_free(struct sse_parser *p);

/* sse_strerror: text for an enum sse_err value. */
const char *sse_strerror(int err);

#endif
