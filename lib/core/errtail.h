/* errtail.h: pick the telling line out of the tail of a failed program's stderr (npm, node, Python, shells). */
#ifndef MCPGW_ERRTAIL_H
#define MCPGW_ERRTAIL_H

#include <stddef.h>

/* Longest line errtail_pick gives back, in bytes of the source line (cut with "..."). */
#define ERRTAIL_LINE_MAX 240

/* errtail_pick: the most informative line of text (len bytes, e.g. the last
 * kilobytes of a child's stderr; need not be NUL-terminated, may hold any
 * bytes), written into out (outlen bytes, always NUL-terminated when
 * outlen > 0). Lines are scored by what says why a program failed: an
 * exception or error name leading the line ("Error: ...",
 * "ModuleNotFoundError: ...", "Error [ERR_X]: ..."), "Cannot find module",
 * "not found", "No such file", errno names (ENOENT, EACCES, E404, ...),
 * HTTP 401/403/404, "error", "ERR!", "fatal", "failed"; the highest score
 * wins, the later of equals. Never picked: blank lines, stack frames
 * ("    at f (file:1:2)", Python's "  File ..."), caret and brace lines,
 * "Node.js v20...", "Traceback (most recent call last):" and npm's "A
 * complete log of this run can be found in ..." boilerplate. When no line
 * scores, the last line that is not skipped. The line is trimmed, ANSI
 * colour sequences dropped, tabs made spaces, other control bytes and
 * invalid UTF-8 written as \xNN, and cut after ERRTAIL_LINE_MAX bytes (and
 * to fit out) at a character boundary with "...". Returns the length
 * written, 0 when text holds no usable line (out is then ""). */
size_t errtail_pick(const char *text, size_t len, char *out, size_t outlen);

#endif
