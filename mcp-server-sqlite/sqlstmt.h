/* sqlstmt.h: lexical look at one SQL statement: its leading keywords and what may follow it. */
#ifndef MCPSQLITE_SQLSTMT_H
#define MCPSQLITE_SQLSTMT_H

#include <stddef.h>

/* What a statement is, judged from its leading keywords only.  The caller
 * still prepares it and asks SQLite (sqlite3_stmt_readonly) for the truth. */
enum sqlstmt_kind {
	SQLSTMT_EMPTY = 0,    /* nothing but whitespace, comments and semicolons */
	SQLSTMT_SELECT,       /* SELECT ..., VALUES ... */
	SQLSTMT_WITH,         /* WITH ... (a SELECT or a DML statement) */
	SQLSTMT_DML,          /* INSERT, UPDATE, DELETE, REPLACE */
	SQLSTMT_CREATE_TABLE, /* CREATE [TEMP|TEMPORARY] TABLE */
	SQLSTMT_OTHER         /* anything else: DROP, ALTER, PRAGMA, ATTACH, BEGIN, ... */
};

/* sqlstmt_skip_space: the first byte of [p, end) that is not SQL whitespace
 * or part of a comment ("-- ..." to end of line, C-style block comments; an
 * unterminated block comment runs to end).  Returns end if there is none. */
const char *sqlstmt_skip_space(const char *p, const char *end);

/* sqlstmt_skip_trailer: like sqlstmt_skip_space, but also skips ';'. */
const char *sqlstmt_skip_trailer(const char *p, const char *end);

/* sqlstmt_is_trailer: 1 if [p, end) holds only whitespace, comments and
 * semicolons (what may follow the one statement a tool runs), else 0. */
int sqlstmt_is_trailer(const char *p, const char *end);

/* sqlstmt_classify: the kind of the first statement in sql[0..len). */
enum sqlstmt_kind sqlstmt_classify(const char *sql, size_t len);

/* sqlstmt_kind_name: a static lower-case name for k ("select", "dml", ...). */
const char *sqlstmt_kind_name(enum sqlstmt_kind k);

#endif
