/* toolname.c: assign stable, unique, OpenAI-valid exposed names to MCP tools, independent of input order. */
#include "mcp/toolname.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TN_PREFIX 55      /* bytes kept before "_<8 hex>" */
#define TN_MAX_ROUND 1000 /* clash-resolution rounds before giving up (never reached in practice) */

enum { TN_PLAIN = 0, TN_PREFIXED = 1, TN_HASHED = 2 }; /* level >= TN_HASHED: salt = level - 2 */

struct tn_work {
	struct toolname *t;
	const char *server; /* never NULL */
	const char *mcp;    /* never NULL */
	unsigned level;
	unsigned ordinal; /* rank among entries with the same server and mcp_name */
};

static int tn_char_ok(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

int toolname_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++)
		if (n >= TOOLNAME_MAX || !tn_char_ok((unsigned char)s[n]))
			return 0;
	return n > 0;
}

static uint32_t tn_fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 16777619u;
	}
	return h;
}

/* tn_hash: FNV-1a-32("<server>\0<mcp_name>"); when salt or ordinal is non-zero
 * the hash continues over "\0<salt>:<ordinal>" so that the result differs. */
static uint32_t tn_hash(const struct tn_work *w, unsigned salt)
{
	char extra[32];
	uint32_t h = 2166136261u;
	int n;

	h = tn_fnv(h, w->server, strlen(w->server) + 1);
	h = tn_fnv(h, w->mcp, strlen(w->mcp));
	if (salt || w->ordinal) {
		n = snprintf(extra, sizeof extra, "%u:%u", salt, w->ordinal);
		h = tn_fnv(h, "", 1);
		h = tn_fnv(h, extra, (size_t)n);
	}
	return h;
}

/* tn_render: the exposed name of w at its level. */
static void tn_render(struct tn_work *w)
{
	char *out = w->t->exposed, full[TOOLNAME_MAX + 2];
	size_t len = 0, keep;
	const char *parts[2] = { w->server, w->mcp };

	if (w->level == TN_PLAIN) {
		snprintf(out, TOOLNAME_MAX + 1, "%s", w->mcp);
		return;
	}
	/* "<server>_<mcp_name>", sanitised; only the first 65 bytes matter */
	for (int i = 0; i < 2 && len <= TOOLNAME_MAX; i++) {
		for (const char *p = parts[i]; *p && len <= TOOLNAME_MAX; p++)
			full[len++] = tn_char_ok((unsigned char)*p) ? *p : '_';
		if (i == 0 && len <= TOOLNAME_MAX)
			full[len++] = '_';
	}
	full[len] = '\0';
	if (w->level == TN_PREFIXED && len <= TOOLNAME_MAX) {
		memcpy(out, full, len + 1);
		return;
	}
	keep = len < TN_PREFIX ? len : TN_PREFIX;
	snprintf(out, TOOLNAME_MAX + 1, "%.*s_%08x", (int)keep, full,
		 (unsigned)tn_hash(w, w->level > TN_HASHED ? w->level - TN_HASHED : 0));
}

static int tn_cmp_source(const void *a, const void *b)
{
	const struct tn_work *x = a, *y = b;
	int c = strcmp(x->mcp, y->mcp);

	return c ? c : strcmp(x->server, y->server);
}

static int tn_cmp_exposed(const void *a, const void *b)
{
	const struct tn_work *x = a, *y = b;
	int c = strcmp(x->t->exposed, y->t->exposed);

	if (c)
		return c;
	c = tn_cmp_source(a, b);
	return c ? c : (x->ordinal > y->ordinal) - (x->ordinal < y->ordinal);
}

/* tn_initial: rules 1 and 2, and the ordinals of exact duplicates. w is
 * sorted by (mcp_name, server), so a name's entries are adjacent. */
static void tn_initial(struct tn_work *w, size_t n)
{
	size_t i = 0, j, k;

	qsort(w, n, sizeof *w, tn_cmp_source);
	while (i < n) {
		int shared = 0;

		for (j = i + 1; j < n && strcmp(w[j].mcp, w[i].mcp) == 0; j++)
			if (strcmp(w[j].server, w[i].server) != 0)
				shared = 1;
		for (k = i; k < j; k++) {
			w[k].ordinal = k > i && tn_cmp_source(&w[k], &w[k - 1]) == 0 ? w[k - 1].ordinal + 1 : 0;
			w[k].level = !shared && toolname_valid(w[k].mcp) ? TN_PLAIN : TN_PREFIXED;
			tn_render(&w[k]);
		}
		i = j;
	}
}

/* tn_bump: rule 3 for one round: every member of a group of equal names
 * moves to the hashed form, or to the next salt if already hashed.
 * Returns the number of entries moved. */
static size_t tn_bump(struct tn_work *w, size_t n)
{
	size_t i = 0, j, moved = 0;

	qsort(w, n, sizeof *w, tn_cmp_exposed);
	while (i < n) {
		for (j = i + 1; j < n && strcmp(w[j].t->exposed, w[i].t->exposed) == 0; j++)
			;
		if (j - i > 1) {
			for (size_t k = i; k < j; k++) {
				w[k].level = w[k].level < TN_HASHED ? TN_HASHED : w[k].level + 1;
				moved++;
			}
		}
		i = j;
	}
	for (i = 0; moved && i < n; i++)
		tn_render(&w[i]);
	return moved;
}

int toolname_assign(struct toolname *t, size_t n)
{
	struct tn_work *w;
	int round;

	if (n == 0)
		return 0;
	w = calloc(n, sizeof *w);
	if (!w)
		return -1;
	for (size_t i = 0; i < n; i++) {
		w[i].t = &t[i];
		w[i].server = t[i].server ? t[i].server : "";
		w[i].mcp = t[i].mcp_name ? t[i].mcp_name : "";
	}
	tn_initial(w, n);
	for (round = 0; round < TN_MAX_ROUND && tn_bump(w, n) > 0; round++)
		;
	free(w);
	if (round == TN_MAX_ROUND) {
		errno = ELOOP;
		return -1;
	}
	return 0;
}
