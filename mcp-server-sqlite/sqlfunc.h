/* sqlfunc.h: the SQL functions a tool's statement may call: an allow-list checked by SQLite's authorizer. */
#ifndef MCPSQLITE_SQLFUNC_H
#define MCPSQLITE_SQLFUNC_H

#include <stddef.h>

/* Longest function name kept to say which one was refused. */
#define SQLFUNC_NAME_MAX 64

/* sqlfunc_allowed: 1 when name (any case) is a function of the allow-list,
 * 0 otherwise (also for NULL). The list holds SQLite's own core scalar,
 * aggregate, window, date and time, math and JSON functions and the full
 * text search helpers; it leaves out everything that reaches past the
 * database: fts3_tokenizer (a pointer into the library out, a call
 * through an attacker's pointer in: the known code-execution technique),
 * load_extension, the shell's readfile/writefile/edit, fts5 (a pointer
 * API), the compile-option introspection, and every function not known
 * here (extensions, application functions). */
int sqlfunc_allowed(const char *name);

/* sqlfunc_count: how many names the allow-list holds (tests). */
size_t sqlfunc_count(void);

/* sqlfunc_at: the i-th name of the allow-list (sorted, lower case), NULL past the end (tests). */
const char *sqlfunc_at(size_t i);

#endif
