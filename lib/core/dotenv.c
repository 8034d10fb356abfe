/* dotenv.c: the .env file: KEY=VALUE lines into the environment, the real environment winning. */
#include "core/dotenv.h"

#include "core/buf.h"
#include "core/conftrust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOTENV_MAX (1024 * 1024) /* largest .env accepted */

struct de_pair {
	const char *key; /* both point into the decoded file buffer */
	const char *value;
	size_t line;
};

struct de_pairs {
	struct de_pair *v;
	size_t n, cap;
};

static int de_is_name_start(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int de_is_name_char(int ch)
{
	return de_is_name_start(ch) || (ch >= '0' && ch <= '9');
}

static char *de_skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}


/* de_dquote: decode a double-quoted value in place; p is just past the
 * opening quote. Returns a pointer past the closing quote, NULL if none. */
static char *de_dquote(char *p)
{
	char *w = p;

	for (; *p && *p != '"'; p++) {
		if (*p != '\\' || !p[1]) {
			*w++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		default:
			*w++ = '\\';
			*w++ = *p;
			break;
		}
	}
	if (*p != '"')
		return NULL;
	*w = '\0';
	return p + 1;
}

/* de_value: parse the value starting at p (after '=' and blanks), in place.
 * Returns the value, or NULL with *what. */
static char *de_value(char *p, const char **what)
{
	char *v = p + 1, *rest, *e;

	if (*p == '\'' || *p == '"') {
		if (*p == '\'') {
			rest = strchr(v, '\'');
			if (rest)
				*rest++ = '\0';
		} else {
			rest = de_dquote(v);
		}
		if (!rest) {
			*what = *p == '\'' ? "unterminated single quote" : "unterminated double quote";
			return NULL;
		}
		rest = de_skip_ws(rest);
		if (*rest && *rest != '#') {
			*what = "unexpected text after the closing quote";
			return NULL;
		}
		return v;
	}
	/* unquoted: a '#' after a blank starts a comment; trim trailing blanks */
	for (e = p; *e && !(*e == '#' && (e[-1] == ' ' || e[-1] == '\t')); e++)
		;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	return p;
}

/* de_line: parse one line in place. 0 = blank or comment, 1 = *key and
 * *value set, -1 = malformed with *what. */
static int de_line(char *line, const char **key, const char **value, const char **what)
{
	char *p = de_skip_ws(line), *k, *kend;

	if (!*p || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t'))
		p = de_skip_ws(p + 6);
	k = p;
	if (!de_is_name_start((unsigned char)*p)) {
		*what = "invalid variable name";
		return -1;
	}
	while (de_is_name_char((unsigned char)*p))
		p++;
	kend = p;
	p = de_skip_ws(p);
	if (*p != '=') {
		*what = *p && *p != '#' && p == kend ? "invalid variable name" : "expected KEY=VALUE";
		return -1;
	}
	*kend = '\0';
	*key = k;
	*value = de_value(de_skip_ws(p + 1), what);
	return *value ? 1 : -1;
}

static int de_pairs_add(struct de_pairs *ps, const char *key, const char *value, size_t line)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 32;
		struct de_pair *v = realloc(ps->v, cap * sizeof *v);

		if (!v)
			return -1;
		ps->v = v;
		ps->cap = cap;
	}
	ps->v[ps->n].key = key;
	ps->v[ps->n].value = value;
	ps->v[ps->n].line = line;
	ps->n++;
	return 0;
}

/* de_parse: split the buffer into lines and collect the pairs (in place). */
static int de_parse(const char *path, buf_t *b, struct de_pairs *ps, char *err, size_t errlen)
{
	char *p = b->data, *end = b->data + b->len, *nl;
	const char *key, *value, *what = "out of memory";
	size_t lineno = 0;
	int rc;

	for (; p < end; p = nl + 1) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (memchr(p, '\0', (size_t)(nl - p))) {
			what = "NUL byte in line";
			goto err;
		}
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		rc = de_line(p, &key, &value, &what);
		if (rc < 0 || (rc == 1 && de_pairs_add(ps, key, value, lineno) < 0))
			goto err;
	}
	return 0;
err:
	snprintf(err, errlen, "%s:%zu: %s", path, lineno, what);
	return -1;
}

int dotenv_load(const char *path, char *err, size_t errlen)
{
	return dotenv_load_except(path, NULL, err, errlen);
}

/* de_refused: the first pair that refuse turns away, said in err. 0 when none */
static int de_refused(const char *path, const struct de_pairs *ps, dotenv_refuse_fn refuse, char *err, size_t errlen)
{
	const char *why;

	for (size_t i = 0; refuse && i < ps->n; i++) {
		if ((why = refuse(ps->v[i].key))) {
			snprintf(err, errlen, "%s:%zu: %s may not be set in a .env file (%s): set it in the environment",
				 path, ps->v[i].line, ps->v[i].key, why);
			return -1;
		}
	}
	return 0;
}

int dotenv_load_except(const char *path, dotenv_refuse_fn refuse, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	struct de_pairs ps = { NULL, 0, 0 };
	int rc = conftrust_read(&b, path, DOTENV_MAX, err, errlen);

	if (rc != 0)
		goto out;
	rc = -1;
	if (b.len > DOTENV_MAX) {
		snprintf(err, errlen, "%s: larger than 1 MiB (%d bytes)", path, DOTENV_MAX);
		goto out;
	}
	if (de_parse(path, &b, &ps, err, errlen) < 0 || de_refused(path, &ps, refuse, err, errlen) < 0)
		goto out;
	/* last definition in the file wins; a variable already set wins over all */
	for (size_t i = ps.n; i-- > 0;) {
		if (getenv(ps.v[i].key))
			continue;
		if (setenv(ps.v[i].key, ps.v[i].value, 0) < 0) {
			snprintf(err, errlen, "%s:%zu: setenv: %s", path, ps.v[i].line, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	free(ps.v);
	buf_free(&b);
	return rc < 0 ? -1 : 0;
}
