/* errtail.c: pick the telling line out of the tail of a failed program's stderr. */
#include "core/errtail.h"
#include "core/utf8.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* a span of the text: one line, trimmed */
struct et_line {
	const char *p;
	size_t n;
};

/* what makes a line telling, and how much (case-insensitive; word: the
 * match must not touch letters or digits on either side) */
static const struct {
	const char *needle;
	int score, word;
} et_marks[] = {
	{ "cannot find module", 4, 0 },
	{ "cannot find package", 4, 0 },
	{ "not found", 3, 0 },
	{ "no such file", 3, 0 },
	{ "no module named", 3, 0 },
	{ "no matching version", 3, 0 },
	{ "permission denied", 3, 0 },
	{ "is not in this registry", 3, 0 },
	{ "could not be found", 2, 0 },
	{ "command not found", 1, 0 },
	{ "enoent", 2, 1 },
	{ "eacces", 2, 1 },
	{ "eperm", 2, 1 },
	{ "eaddrinuse", 2, 1 },
	{ "econnrefused", 2, 1 },
	{ "enotfound", 2, 1 },
	{ "etimedout", 2, 1 },
	{ "e404", 2, 1 },
	{ "etarget", 2, 1 },
	{ "404", 2, 1 },
	{ "401", 2, 1 },
	{ "403", 2, 1 },
	{ "error", 2, 0 },
	{ "err!", 2, 0 },
	{ "fatal", 2, 0 },
	{ "panic", 2, 0 },
	{ "failed", 1, 0 },
	{ "exception", 1, 0 },
	{ "invalid", 1, 0 },
	{ "missing", 1, 0 },
	{ "required", 1, 0 },
	{ "unauthorized", 1, 0 },
};

/* lines that never tell why: boilerplate around the real message */
static const char *const et_noise[] = {
	"A complete log of this run can be found in",
	"Traceback (most recent call last)",
	"For more information, see", /* npm, pip */
	"Run with --stacktrace",
};

static int et_alnum(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int et_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* et_find: 1 when needle occurs in l (case-insensitive), as a word if word */
static int et_find(struct et_line l, const char *needle, int word)
{
	size_t k = strlen(needle);

	for (size_t i = 0; k <= l.n && i <= l.n - k; i++) {
		if (strncasecmp(l.p + i, needle, k) != 0)
			continue;
		if (!word || ((i == 0 || !et_alnum((unsigned char)l.p[i - 1])) &&
			      (i + k == l.n || !et_alnum((unsigned char)l.p[i + k]))))
			return 1;
	}
	return 0;
}

/* et_exception_lead: "Error: ...", "TypeError: ...", "Error [ERR_X]: ...",
 * "java.io.IOException: ...", "panic: ...", "fatal: ..." */
static int et_exception_lead(struct et_line l)
{
	size_t i = 0;

	while (i < l.n && (et_alnum((unsigned char)l.p[i]) || l.p[i] == '_' || l.p[i] == '.' || l.p[i] == '$'))
		i++;
	if (i == 0)
		return 0;
	if (!((i >= 5 && strncmp(l.p + i - 5, "Error", 5) == 0) || (i >= 9 && strncmp(l.p + i - 9, "Exception", 9) == 0) ||
	      (i == 5 && strncasecmp(l.p, "panic", 5) == 0) || (i == 5 && strncasecmp(l.p, "fatal", 5) == 0)))
		return 0;
	if (i + 1 < l.n && l.p[i] == ' ' && l.p[i + 1] == '[') { /* node: Error [ERR_MODULE_NOT_FOUND]: */
		const char *close = memchr(l.p + i, ']', l.n - i);

		if (!close)
			return 0;
		i = (size_t)(close - l.p) + 1;
	}
	return i < l.n && l.p[i] == ':';
}

/* et_npm_rest: the line without npm's "npm error " / "npm ERR! " prefix */
static struct et_line et_npm_rest(struct et_line l)
{
	static const char *const prefixes[] = { "npm error", "npm ERR!", "npm warn", "npm WARN" };

	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
		size_t k = strlen(prefixes[i]);

		if (l.n >= k && strncmp(l.p, prefixes[i], k) == 0) {
			l.p += k;
			l.n -= k;
			while (l.n && et_space((unsigned char)*l.p)) {
				l.p++;
				l.n--;
			}
			break;
		}
	}
	return l;
}

/* et_noise_line: 1 for lines that are never the reason (indented says
 * whether the line had leading blanks) */
static int et_noise_line(struct et_line l, int indented)
{
	struct et_line rest = et_npm_rest(l);
	size_t i;

	if (l.n == 0 || rest.n == 0)
		return 1;
	if (indented && ((l.n > 3 && strncmp(l.p, "at ", 3) == 0) || (l.n > 6 && strncmp(l.p, "File \"", 6) == 0)))
		return 1; /* JavaScript and Python stack frames */
	if (l.n > 9 && strncmp(l.p, "Node.js v", 9) == 0)
		return 1;
	for (i = 0; i < sizeof et_noise / sizeof *et_noise; i++)
		if (et_find(l, et_noise[i], 0))
			return 1;
	for (i = 0; i < rest.n; i++) {
		unsigned char ch = (unsigned char)rest.p[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80)
			return 0;
	}
	return 1; /* no word at all: "npm error 404", "^^^^", "}", "----" */
}

static int et_score(struct et_line l)
{
	int score = et_exception_lead(l) ? 6 : 0;

	for (size_t i = 0; i < sizeof et_marks / sizeof *et_marks; i++)
		if (et_find(l, et_marks[i].needle, et_marks[i].word))
			score += et_marks[i].score;
	return score;
}

/* et_write: l into out, cleaned and bounded (see errtail_pick) */
static size_t et_write(struct et_line l, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)l.p;
	size_t i = 0, o = 0;

	while (i < l.n) {
		char piece[8];
		size_t take = 1, put;

		if (p[i] == 0x1b && i + 1 < l.n && p[i + 1] == '[') { /* CSI: ESC [ params final */
			for (i += 2; i < l.n && !(p[i] >= 0x40 && p[i] <= 0x7e); i++)
				;
			i += i < l.n;
			continue;
		}
		if (p[i] == '\t') {
			piece[0] = ' ';
			put = 1;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			put = (size_t)snprintf(piece, sizeof piece, "\\x%02x", p[i]);
		} else if (p[i] < 0x80) {
			piece[0] = (char)p[i];
			put = 1;
		} else if ((take = utf8_seq_len(p + i, l.n - i)) > 0) {
			memcpy(piece, p + i, take);
			put = take;
		} else {
			take = 1;
			put = (size_t)snprintf(piece, sizeof piece, "\\x%02x", p[i]);
		}
		if (i + take > ERRTAIL_LINE_MAX || o + put + 4 > outlen) {
			if (o + 4 <= outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, piece, put);
		o += put;
		i += take;
	}
	out[o] = '\0';
	return o;
}

size_t errtail_pick(const char *text, size_t len, char *out, size_t outlen)
{
	struct et_line best = { NULL, 0 }, last = { NULL, 0 };
	int best_score = 0;
	size_t start = 0;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (text && start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;
		struct et_line l = { text + start, end - start };
		int indented = l.n && et_space((unsigned char)*l.p), score;

		start = end + 1;
		while (l.n && et_space((unsigned char)*l.p)) {
			l.p++;
			l.n--;
		}
		while (l.n && (et_space((unsigned char)l.p[l.n - 1]) || l.p[l.n - 1] == '\0'))
			l.n--;
		if (et_noise_line(l, indented))
			continue;
		last = l;
		score = et_score(l);
		if (score > 0 && score >= best_score) {
			best = l;
			best_score = score;
		}
	}
	if (best.p)
		return et_write(best, out, outlen);
	return last.p ? et_write(last, out, outlen) : 0;
}
