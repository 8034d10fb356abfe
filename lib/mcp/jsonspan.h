/* jsonspan.h: JSON values found in a text without building a tree (their bounds, checked as jansson parses), for messages too large to hold as trees. */
#ifndef MCPGW_JSONSPAN_H
#define MCPGW_JSONSPAN_H

#include <jansson.h>
#include <stddef.h>

#define JSONSPAN_MAX_DEPTH 2048 /* jansson's own bound on nesting */
#define JSONSPAN_KEY_MAX 256    /* longer member names are reported as "" (no match) */

/* a value's bytes in the text: text[off..off+len) */
struct jsonspan {
	size_t off, len;
};

/* jsonspan_skip: the JSON value at t[*pos] (blanks before it skipped) checked
 * as jansson checks it (RFC 8259 grammar; strings of valid UTF-8 with valid
 * escapes, no \u0000, no lone surrogate; integers within long long, reals
 * finite; nesting at most JSONSPAN_MAX_DEPTH; duplicate member names are not
 * looked for) and stepped over: *pos is after it. 0, or -1 (invalid). */
int jsonspan_skip(const char *t, size_t len, size_t *pos);
/* jsonspan_check: t[0..len) is one JSON value with only blanks around it
 * (as jsonspan_skip checks it). 0 or -1. */
int jsonspan_check(const char *t, size_t len);

/* jsonspan_fn: one member (key: its decoded name, NUL-terminated, borrowed;
 * "" when longer than JSONSPAN_KEY_MAX; m: the member's text from its name's
 * opening quote to its value's end) or element (key NULL, m = v) whose value
 * is at v in the text given; 0 to go on, anything else stops the walk */
typedef int jsonspan_fn(void *ctx, const char *key, struct jsonspan m, struct jsonspan v);
/* jsonspan_members: fn(ctx, name, value) for each member of the object at
 * t[v.off..v.off+v.len), in order; jsonspan_elements: fn(ctx, NULL, value)
 * for each element of the array there. The value must have been checked
 * (jsonspan_skip, jsonspan_check). 0 when every one was walked, 1 when fn
 * stopped the walk, -1 when the value is not an object (an array) or on
 * ENOMEM. */
int jsonspan_members(const char *t, struct jsonspan v, jsonspan_fn *fn, void *ctx);
int jsonspan_elements(const char *t, struct jsonspan v, jsonspan_fn *fn, void *ctx);

/* jsonspan_load: the checked value at t[v.off..v.off+v.len) as a tree, as
 * json_loadb(JSON_DECODE_ANY | flags) gives it; a string without escapes, an
 * integer of at most 18 digits and the literals are made without a parser (a
 * member's name or id costs a few allocations, not a parse), the rest is
 * parsed. New reference; NULL on ENOMEM or when jansson refuses the value
 * (with JSON_REJECT_DUPLICATES: a repeated member name). */
json_t *jsonspan_load(const char *t, struct jsonspan v, size_t flags);

#endif
