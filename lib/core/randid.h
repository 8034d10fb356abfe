/* randid.h: identifiers and random numbers from the kernel's getrandom(2), the gateway's one source of randomness. */
#ifndef MCPGW_RANDID_H
#define MCPGW_RANDID_H

#include <stddef.h>
#include <stdint.h>

/* Every id the gateway mints (completion ids, tool-call ids, ...) comes from
 * here. There is no seed and no state: each call asks the kernel, so two
 * processes (or two forks of one process, or two threads) never share a
 * sequence. getrandom(2) blocks only until the kernel's pool is initialised
 * at boot; when it fails anyway (no such system call, a seccomp filter) the
 * functions fail: there is no fallback to a weaker source. */

/* one character of an id carries log2(62) = 5.95 random bits */
#define RANDID_MIN_CHARS 17 /* fewest characters randid_new accepts: 101 bits (>= 96) */
#define RANDID_MAX_CHARS 64

/* the shapes OpenAI clients know: "chatcmpl-" + 29 and "call_" + 24 characters of [A-Za-z0-9] */
#define RANDID_COMPLETION_PREFIX "chatcmpl-"
#define RANDID_COMPLETION_CHARS 29 /* 172 bits */
#define RANDID_CALL_PREFIX "call_"
#define RANDID_CALL_CHARS 24 /* 142 bits */

/* randid_fill: len random bytes into buf from getrandom(2), retrying after
 * EINTR and short reads. 0, or -1 with errno set (buf then holds no
 * promise). */
int randid_fill(void *buf, size_t len);

/* randid_new: prefix followed by nchars characters of [A-Za-z0-9], each
 * uniform and independent (rejection sampling, no modulo bias), NUL-ended,
 * into out (size bytes). prefix may be NULL or "". 0, or -1 with errno:
 * EINVAL when nchars is outside RANDID_MIN_CHARS..RANDID_MAX_CHARS, ENOSPC
 * when out is too small (out is then ""), or getrandom's errno. */
int randid_new(char *out, size_t size, const char *prefix, size_t nchars);

/* randid_below: a uniform random number in 0..bound-1 (bound >= 1) into
 * *out, without modulo bias. 0, or -1 with errno (EINVAL for bound 0). */
int randid_below(uint32_t bound, uint32_t *out);

#endif
