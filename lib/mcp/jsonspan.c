/* jsonspan.c: JSON values checked and stepped over without a tree. */
#include "jsonspan.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t blanks(const char *t, size_t len, size_t p)
{
	while (p < len && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'))
		p++;
	return p;
}

static int hex4(const char *t, size_t len, size_t p, unsigned *out)
{
	unsigned v = 0;

	if (len - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = t[p + (size_t)i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* utf8_seq: the length of the valid UTF-8 sequence at t[p] (a byte >= 0x80), 0 if invalid */
static size_t utf8_seq(const unsigned char *t, size_t len, size_t p)
{
	unsigned c = t[p], cp;
	size_t n;

	if (c >= 0xC2 && c <= 0xDF)
		n = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len - p < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((t[p + i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (t[p + i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* string: the string at t[*p] ('"'), checked; *p after its closing quote. *esc: it holds a backslash */
static int string(const char *t, size_t len, size_t *p, int *esc)
{
	size_t i = *p + 1;

	*esc = 0;
	while (i < len) {
		unsigned char c = (unsigned char)t[i];
		unsigned u, lo;

		if (c == '"') {
			*p = i + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			size_t n = utf8_seq((const unsigned char *)t, len, i);

			if (!n)
				return -1;
			i += n;
			continue;
		}
		if (c != '\\') { /* a run of plain bytes at once */
			while (i < len && (unsigned char)t[i] >= 0x20 && (unsigned char)t[i] < 0x80 && t[i] != '"' &&
			       t[i] != '\\')
				i++;
			continue;
		}
		*esc = 1;
		if (++i >= len)
			return -1;
		if (strchr("\"\\/bfnrt", t[i]) && t[i]) {
			i++;
			continue;
		}
		if (t[i] != 'u' || hex4(t, len, i + 1, &u) < 0 || u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
			return -1;
		i += 5;
		if (u >= 0xD800 && u <= 0xDBFF) { /* a high surrogate: its low one must follow */
			if (len - i < 6 || t[i] != '\\' || t[i + 1] != 'u' || hex4(t, len, i + 2, &lo) < 0 ||
			    lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			i += 6;
		}
	}
	return -1;
}

/* number: the number at t[*p], checked as jansson does (an integer within long long, a finite real) */
static int number(const char *t, size_t len, size_t *p)
{
	size_t i = *p, digits0;
	int real = 0;
	char small[64], *copy;
	double d;

	if (t[i] == '-')
		i++;
	digits0 = i;
	if (i >= len || t[i] < '0' || t[i] > '9')
		return -1;
	if (t[i] == '0')
		i++;
	else
		while (i < len && t[i] >= '0' && t[i] <= '9')
			i++;
	if (i < len && t[i] == '.') {
		real = 1;
		if (++i >= len || t[i] < '0' || t[i] > '9')
			return -1;
		while (i < len && t[i] >= '0' && t[i] <= '9')
			i++;
	}
	if (i < len && (t[i] == 'e' || t[i] == 'E')) {
		real = 1;
		if (++i < len && (t[i] == '+' || t[i] == '-'))
			i++;
		if (i >= len || t[i] < '0' || t[i] > '9')
			return -1;
		while (i < len && t[i] >= '0' && t[i] <= '9')
			i++;
	}
	if (!real && i - digits0 < 19) { /* fits long long */
		*p = i;
		return 0;
	}
	copy = i - *p < sizeof small ? small : malloc(i - *p + 1);
	if (!copy)
		return -1;
	memcpy(copy, t + *p, i - *p);
	copy[i - *p] = '\0';
	errno = 0;
	if (real) {
		d = strtod(copy, NULL);
		real = errno == ERANGE && isinf(d) ? -1 : 0;
	} else {
		(void)strtoll(copy, NULL, 10);
		real = errno == ERANGE ? -1 : 0;
	}
	if (copy != small)
		free(copy);
	*p = i;
	return real;
}

static int value(const char *t, size_t len, size_t *p, int depth);

/* container: the object or array at t[*p] */
static int container(const char *t, size_t len, size_t *p, int depth)
{
	char close = t[*p] == '{' ? '}' : ']';
	size_t i = blanks(t, len, *p + 1);
	int esc;

	if (depth >= JSONSPAN_MAX_DEPTH)
		return -1;
	if (i < len && t[i] == close) {
		*p = i + 1;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (i >= len || t[i] != '"' || string(t, len, &i, &esc) < 0)
				return -1;
			i = blanks(t, len, i);
			if (i >= len || t[i] != ':')
				return -1;
			i++;
		}
		if (value(t, len, &i, depth + 1) < 0)
			return -1;
		i = blanks(t, len, i);
		if (i < len && t[i] == close) {
			*p = i + 1;
			return 0;
		}
		if (i >= len || t[i] != ',')
			return -1;
		i = blanks(t, len, i + 1);
	}
}

static int literal(const char *t, size_t len, size_t *p, const char *word)
{
	size_t n = strlen(word);

	if (len - *p < n || memcmp(t + *p, word, n) != 0)
		return -1;
	*p += n;
	return 0;
}

static int value(const char *t, size_t len, size_t *p, int depth)
{
	int esc;

	*p = blanks(t, len, *p);
	if (*p >= len)
		return -1;
	switch (t[*p]) {
	case '{':
	case '[': return container(t, len, p, depth);
	case '"': return string(t, len, p, &esc);
	case 't': return literal(t, len, p, "true");
	case 'f': return literal(t, len, p, "false");
	case 'n': return literal(t, len, p, "null");
	default: return number(t, len, p);
	}
}

int jsonspan_skip(const char *t, size_t len, size_t *pos)
{
	return value(t, len, pos, 0);
}

int jsonspan_check(const char *t, size_t len)
{
	size_t p = 0;

	if (value(t, len, &p, 0) < 0)
		return -1;
	return blanks(t, len, p) == len ? 0 : -1;
}

/* key: the decoded name of the member at t[k.off..) (a checked string) into out */
static int key(const char *t, struct jsonspan k, int esc, char *out, size_t outlen)
{
	json_t *s;

	if (k.len - 2 >= outlen) {
		out[0] = '\0';
		return 0;
	}
	if (!esc) {
		memcpy(out, t + k.off + 1, k.len - 2);
		out[k.len - 2] = '\0';
		return 0;
	}
	if (!(s = json_loadb(t + k.off, k.len, JSON_DECODE_ANY, NULL)))
		return -1;
	if (json_string_length(s) >= outlen || strlen(json_string_value(s)) != json_string_length(s))
		out[0] = '\0';
	else
		memcpy(out, json_string_value(s), json_string_length(s) + 1);
	json_decref(s);
	return 0;
}

/* skip_checked: step over the value at t[*p] (blanks before it skipped), a part of a
 * checked text: only its end is looked for (strings' escapes, nesting), nothing checked
 * again. 0, or -1 when the text ends first (it was not checked, after all) */
static int skip_checked(const char *t, size_t len, size_t *p)
{
	size_t i = blanks(t, len, *p), depth = 0;

	do {
		if (i >= len)
			return -1;
		switch (t[i]) {
		case '"':
			for (i++; i < len && t[i] != '"'; i++)
				if (t[i] == '\\')
					i++;
			if (i >= len)
				return -1;
			i++;
			break;
		case '{':
		case '[':
			depth++;
			i++;
			break;
		case '}':
		case ']':
			depth--;
			i++;
			break;
		default: /* a number or a literal, or the blanks, commas and colons inside a container */
			i++;
			while (i < len && !strchr(",:]}\" \t\r\n{[", t[i]))
				i++;
		}
	} while (depth > 0);
	*p = i;
	return 0;
}

/* walk: the members (obj) or elements of the checked container at v */
static int walk(const char *t, struct jsonspan v, int obj, jsonspan_fn *fn, void *ctx)
{
	size_t end = v.off + v.len, i = blanks(t, end, v.off);
	char name[JSONSPAN_KEY_MAX + 1];

	if (i >= end || t[i] != (obj ? '{' : '['))
		return -1;
	i = blanks(t, end, i + 1);
	if (t[i] == (obj ? '}' : ']'))
		return 0;
	for (;;) {
		struct jsonspan k = { i, 0 }, e; /* k: the name (elements: from the value on) */
		int esc = 0;

		if (obj) {
			if (string(t, end, &i, &esc) < 0)
				return -1;
			k.len = i - k.off;
			if (key(t, k, esc, name, sizeof name) < 0)
				return -1;
			i = blanks(t, end, i) + 1; /* the ':' */
		}
		e.off = blanks(t, end, i);
		i = e.off;
		if (skip_checked(t, end, &i) < 0)
			return -1;
		e.len = i - e.off;
		if (fn(ctx, obj ? name : NULL, (struct jsonspan){ k.off, e.off + e.len - k.off }, e) != 0)
			return 1;
		i = blanks(t, end, i);
		if (t[i] != ',')
			return 0;
		i = blanks(t, end, i + 1);
	}
}

int jsonspan_members(const char *t, struct jsonspan v, jsonspan_fn *fn, void *ctx)
{
	return walk(t, v, 1, fn, ctx);
}

int jsonspan_elements(const char *t, struct jsonspan v, jsonspan_fn *fn, void *ctx)
{
	return walk(t, v, 0, fn, ctx);
}

json_t *jsonspan_load(const char *t, struct jsonspan v, size_t flags)
{
	const char *p = t + v.off;
	size_t n = v.len, i = 0;

	if (n >= 2 && p[0] == '"' && !memchr(p + 1, '\\', n - 2)) /* checked: valid UTF-8, no control byte */
		return json_stringn_nocheck(p + 1, n - 2);
	if (n == 4 && memcmp(p, "true", 4) == 0)
		return json_true();
	if (n == 5 && memcmp(p, "false", 5) == 0)
		return json_false();
	if (n == 4 && memcmp(p, "null", 4) == 0)
		return json_null();
	if (n > 0 && (p[0] == '-' || (p[0] >= '0' && p[0] <= '9'))) {
		json_int_t x = 0;

		i = p[0] == '-';
		if (n - i <= 18 && n > i) {
			while (i < n && p[i] >= '0' && p[i] <= '9')
				x = x * 10 + (p[i++] - '0');
			if (i == n) /* only digits: an integer (checked: no leading zero) */
				return json_integer(p[0] == '-' ? -x : x);
		}
	}
	return json_loadb(p, n, JSON_DECODE_ANY | flags, NULL);
}
