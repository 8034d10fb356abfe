/* sqljson.c: convert SQLite values and rows to JSON, keeping text valid UTF-8. */
#include "sqljson.h"
#include "core/utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

json_t *sqljson_text(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	buf_t b = BUF_INIT;
	json_t *j;

	if (n == 0)
		return json_string("");
	j = json_stringn(s, n);
	if (j)
		return j;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(u + i, n - i);
		int rc = l ? buf_append(&b, s + i, l) : buf_append(&b, "\xEF\xBF\xBD", 3);

		if (rc < 0)
			goto err;
		i += l ? l : 1;
	}
	j = json_stringn(b.data, b.len);
err:
	buf_free(&b);
	return j;
}

json_t *sqljson_hex(const void *p, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	const unsigned char *u = p;
	char *s;
	json_t *j;

	if (n > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(2 * n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[u[i] >> 4];
		s[2 * i + 1] = digits[u[i] & 0xF];
	}
	j = json_stringn(s, 2 * n);
	free(s);
	return j;
}

static json_t *sqljson_real(double d, int *exact15)
{
	char tmp[64];

	if (isnan(d))
		return json_null();
	if (isinf(d))
		return json_string(d > 0 ? "Infinity" : "-Infinity");
	snprintf(tmp, sizeof tmp, "%.15g", d);
	if (strtod(tmp, NULL) != d)
		*exact15 = 0;
	return json_real(d);
}

json_t *sqljson_value(sqlite3_stmt *st, int i, int *exact15)
{
	const void *p;
	int n;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER: return json_integer((json_int_t)sqlite3_column_int64(st, i));
	case SQLITE_FLOAT: return sqljson_real(sqlite3_column_double(st, i), exact15);
	case SQLITE_TEXT:
		p = sqlite3_column_text(st, i);
		n = sqlite3_column_bytes(st, i);
		return p || n == 0 ? sqljson_text(p ? p : "", (size_t)n) : NULL;
	case SQLITE_BLOB:
		p = sqlite3_column_blob(st, i);
		n = sqlite3_column_bytes(st, i);
		return p || n == 0 ? sqljson_hex(p, (size_t)n) : NULL;
	default: return json_null();
	}
}

/* sqljson_raw_min: the fewest wire bytes column i can take, from its raw size
 * alone (text is at least its bytes, a BLOB twice them, plus the quotes). */
static size_t sqljson_raw_min(sqlite3_stmt *st, int i)
{
	int t = sqlite3_column_type(st, i);
	size_t n = t == SQLITE_TEXT || t == SQLITE_BLOB ? (size_t)sqlite3_column_bytes(st, i) : 0;

	return (t == SQLITE_BLOB ? 2 * n + 4 : n + 4) + SQLJSON_VALUE_COST;
}

enum sqljson_err sqljson_row(sqlite3_stmt *st, int *exact15, size_t budget, json_t **out, size_t *wire)
{
	json_t *row = json_object();
	int ncol = sqlite3_column_count(st);
	enum sqljson_err e = SQLJSON_ENOMEM;
	size_t used = 2 + SQLJSON_VALUE_COST; /* {} and the object */

	*out = NULL;
	*wire = 0;
	if (!row)
		return SQLJSON_ENOMEM;
	for (int i = 0; i < ncol; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_t *key = NULL, *v = NULL;
		size_t kw = 0, vw = 0;

		if (used + sqljson_raw_min(st, i) > budget) {
			e = SQLJSON_EOVER;
			goto err;
		}
		key = name ? sqljson_text(name, strlen(name)) : NULL;
		v = key ? sqljson_value(st, i, exact15) : NULL;
		if (v && (kw = sqljson_wire_size(key)) > 0)
			vw = sqljson_wire_size(v);
		used += kw + vw + 4 + SQLJSON_VALUE_COST; /* ": ", ", " and the value's memory */
		e = !vw ? SQLJSON_ENOMEM : used > budget ? SQLJSON_EOVER : SQLJSON_OK;
		if (e == SQLJSON_OK && json_object_set_new(row, json_string_value(key), v) < 0)
			e = SQLJSON_ENOMEM;
		else if (e != SQLJSON_OK)
			json_decref(v);
		json_decref(key);
		if (e != SQLJSON_OK)
			goto err;
	}
	*out = row;
	*wire = used;
	return SQLJSON_OK;
err:
	json_decref(row);
	return e;
}

size_t sqljson_wire_size(const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	size_t n = 0;

	if (!s)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' || *p == '\r' || *p == '\t')
			n += 2;
		else if (*p < 0x20)
			n += 6;
		else
			n += 1;
	}
	free(s);
	return n;
}
