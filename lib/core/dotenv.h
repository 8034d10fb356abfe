/* dotenv.h: the .env file: KEY=VALUE lines into the environment, the real environment winning. */
#ifndef MCPGW_DOTENV_H
#define MCPGW_DOTENV_H

#include <stddef.h>

/* dotenv_load: read KEY=VALUE lines of a .env file (comments, blank
 * lines, "export " prefix, single/double quotes, inline " #" comments) and
 * setenv each key that is not already set: the real environment wins.
 * A missing file is not an error. -1 with err ("path:line: what") on a
 * malformed line or an unreadable file, and on a file owned by another user
 * than this process's (root's is fine) or writable by group or others
 * (conftrust_stat: nothing of it is read then).
 * Details: KEY is [A-Za-z_][A-Za-z0-9_]*, blanks around '=' are allowed;
 * '...' is literal; "..." knows \n \t \r \" \\ (other escapes are kept as
 * written); quotes do not span lines; unquoted values are trimmed and cut at
 * a '#' that follows a blank ("a#b" stays); no ${VAR} interpolation. Within
 * the file the last definition wins; a variable already in the environment
 * (even empty) is never overwritten. Nothing is set if any line is malformed.
 * CRLF line ends are accepted; the file may hold at most 1 MiB. */
int dotenv_load(const char *path, char *err, size_t errlen);

/* a key a .env file may not set: why ("names a program to run"), static;
 * NULL when it may */
typedef const char *(*dotenv_refuse_fn)(const char *key);

/* dotenv_load_except: dotenv_load, and -1 with err ("path:line: KEY may not
 * be set in a .env file (why): set it in the environment") when the file
 * defines a key refuse turns away, even one the environment already sets
 * (nothing is set then). refuse NULL: dotenv_load. */
int dotenv_load_except(const char *path, dotenv_refuse_fn refuse, char *err, size_t errlen);

#endif
