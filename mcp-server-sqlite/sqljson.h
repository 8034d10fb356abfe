/* sqljson.h: SQLite column values and result rows as jansson values. */
#ifndef MCPSQLITE_SQLJSON_H
#define MCPSQLITE_SQLJSON_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

/* sqljson_text: a new JSON string holding s[0..n); each byte that is not
 * part of well-formed UTF-8 becomes U+FFFD, so any SQLite text can be sent.
 * NULL only on ENOMEM. */
json_t *sqljson_text(const char *s, size_t n);

/* sqljson_hex: a new JSON string of p[0..n) in upper-case hex, the same
 * digits SQLite's hex() gives.  NULL on ENOMEM. */
json_t *sqljson_hex(const void *p, size_t n);

/* sqljson_value: column i of the current row of st as a new JSON value:
 * INTEGER -> integer, REAL -> real (+-infinity -> the strings "Infinity" /
 * "-Infinity"), TEXT -> string, BLOB -> hex string, NULL -> null.
 * Clears *exact15 when a real needs more than 15 significant digits to
 * round-trip.  NULL on ENOMEM. */
json_t *sqljson_value(sqlite3_stmt *st, int i, int *exact15);

/* the memory one value of a row costs besides its bytes (jansson's value,
 * its hashtable pair, malloc's headers): counted with the wire bytes, so a
 * result of a million one-digit values is bounded like one of long ones */
#define SQLJSON_VALUE_COST 96

enum sqljson_err { SQLJSON_OK = 0, SQLJSON_ENOMEM, SQLJSON_EOVER };

/* sqljson_row: the current row of st as a new object in *out, column name
 * -> value (a repeated column name keeps the last value), and in *wire its
 * cost: the bytes it takes as tool text (as sqljson_wire_size counts them)
 * plus SQLJSON_VALUE_COST per value.  The cost is counted column by column
 * as the row is built, and a column whose raw bytes alone would pass budget
 * is never converted: SQLJSON_EOVER when the row would cost more than
 * budget (*out NULL).  SQLJSON_ENOMEM (*out NULL) when out of memory. */
enum sqljson_err sqljson_row(sqlite3_stmt *st, int *exact15, size_t budget, json_t **out, size_t *wire);

/* sqljson_wire_size: the bytes v takes when dumped (jansson's default,
 * 17 digits) and then embedded in another JSON string, as tool result text
 * is: every escape counted.  0 on ENOMEM. */
size_t sqljson_wire_size(const json_t *v);

#endif
