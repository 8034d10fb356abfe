/* sqlstmt.c: skip SQL whitespace and comments, and classify a statement by its leading keywords. */
#include "sqlstmt.h"

#include <string.h>
#include <strings.h>

static int sqlstmt_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* SQLite treats every byte >= 0x80 as part of an identifier. */
static int sqlstmt_is_word(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' || u == '$' ||
	       u >= 0x80;
}

const char *sqlstmt_skip_space(const char *p, const char *end)
{
	while (p < end) {
		if (sqlstmt_is_space(*p)) {
			p++;
		} else if (*p == '-' && end - p >= 2 && p[1] == '-') {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		} else if (*p == '/' && end - p >= 2 && p[1] == '*') {
			for (p += 2; p < end && !(*p == '*' && end - p >= 2 && p[1] == '/'); p++)
				;
			p = p < end ? p + 2 : end;
		} else {
			break;
		}
	}
	return p;
}

const char *sqlstmt_skip_trailer(const char *p, const char *end)
{
	for (;;) {
		p = sqlstmt_skip_space(p, end);
		if (p >= end || *p != ';')
			return p;
		p++;
	}
}

int sqlstmt_is_trailer(const char *p, const char *end)
{
	return sqlstmt_skip_trailer(p, end) == end;
}

/* sqlstmt_word: the keyword at *p (after whitespace/comments); advances *p past it.
 * Returns its length, 0 if the next token is not a word. */
static size_t sqlstmt_word(const char **p, const char *end, const char **word)
{
	const char *s = sqlstmt_skip_space(*p, end), *e = s;

	while (e < end && sqlstmt_is_word(*e))
		e++;
	*word = s;
	*p = e;
	return (size_t)(e - s);
}

static int sqlstmt_word_is(const char *w, size_t n, const char *kw)
{
	return n == strlen(kw) && strncasecmp(w, kw, n) == 0;
}

enum sqlstmt_kind sqlstmt_classify(const char *sql, size_t len)
{
	const char *end = sql + len, *p = sqlstmt_skip_trailer(sql, end), *w;
	size_t n;

	if (p == end)
		return SQLSTMT_EMPTY;
	n = sqlstmt_word(&p, end, &w);
	if (sqlstmt_word_is(w, n, "SELECT") || sqlstmt_word_is(w, n, "VALUES"))
		return SQLSTMT_SELECT;
	if (sqlstmt_word_is(w, n, "WITH"))
		return SQLSTMT_WITH;
	if (sqlstmt_word_is(w, n, "INSERT") || sqlstmt_word_is(w, n, "UPDATE") || sqlstmt_word_is(w, n, "DELETE") ||
	    sqlstmt_word_is(w, n, "REPLACE"))
		return SQLSTMT_DML;
	if (!sqlstmt_word_is(w, n, "CREATE"))
		return SQLSTMT_OTHER;
	n = sqlstmt_word(&p, end, &w);
	if (sqlstmt_word_is(w, n, "TEMP") || sqlstmt_word_is(w, n, "TEMPORARY"))
		n = sqlstmt_word(&p, end, &w);
	return sqlstmt_word_is(w, n, "TABLE") ? SQLSTMT_CREATE_TABLE : SQLSTMT_OTHER;
}

const char *sqlstmt_kind_name(enum sqlstmt_kind k)
{
	static const char *const names[] = { "empty", "select", "with", "dml", "create_table", "other" };

	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "other";
}
