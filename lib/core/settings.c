/* settings.c: settings loaded by a loop over the settings table, from the environment and .env; the checked parses. */
#include "core/settings.h"
#include "core/settingstab.h"

#include "core/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SET_DOTENV_MAX (1024 * 1024) /* largest .env accepted */
#define SET_VALUE_MAX 4200           /* the largest field of struct settings */

struct set_pair {
	const char *key; /* both point into the decoded file buffer */
	const char *value;
	size_t line;
};

struct set_pairs {
	struct set_pair *v;
	size_t n, cap;
};

static int set_is_name_start(int ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int set_is_name_char(int ch)
{
	return set_is_name_start(ch) || (ch >= '0' && ch <= '9');
}

static char *set_skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}


/* set_dquote: decode a double-quoted value in place; p is just past the
 * opening quote. Returns a pointer past the closing quote, NULL if none. */
static char *set_dquote(char *p)
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

/* set_value: parse the value starting at p (after '=' and blanks), in place.
 * Returns the value, or NULL with *what. */
static char *set_value(char *p, const char **what)
{
	char *v = p + 1, *rest, *e;

	if (*p == '\'' || *p == '"') {
		if (*p == '\'') {
			rest = strchr(v, '\'');
			if (rest)
				*rest++ = '\0';
		} else {
			rest = set_dquote(v);
		}
		if (!rest) {
			*what = *p == '\'' ? "unterminated single quote" : "unterminated double quote";
			return NULL;
		}
		rest = set_skip_ws(rest);
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

/* set_line: parse one line in place. 0 = blank or comment, 1 = *key and
 * *value set, -1 = malformed with *what. */
static int set_line(char *line, const char **key, const char **value, const char **what)
{
	char *p = set_skip_ws(line), *k, *kend;

	if (!*p || *p == '#')
		return 0;
	if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t'))
		p = set_skip_ws(p + 6);
	k = p;
	if (!set_is_name_start((unsigned char)*p)) {
		*what = "invalid variable name";
		return -1;
	}
	while (set_is_name_char((unsigned char)*p))
		p++;
	kend = p;
	p = set_skip_ws(p);
	if (*p != '=') {
		*what = *p && *p != '#' && p == kend ? "invalid variable name" : "expected KEY=VALUE";
		return -1;
	}
	*kend = '\0';
	*key = k;
	*value = set_value(set_skip_ws(p + 1), what);
	return *value ? 1 : -1;
}

static int set_pairs_add(struct set_pairs *ps, const char *key, const char *value, size_t line)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 32;
		struct set_pair *v = realloc(ps->v, cap * sizeof *v);

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

/* set_parse: split the buffer into lines and collect the pairs (in place). */
static int set_parse(const char *path, buf_t *b, struct set_pairs *ps, char *err, size_t errlen)
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
		rc = set_line(p, &key, &value, &what);
		if (rc < 0 || (rc == 1 && set_pairs_add(ps, key, value, lineno) < 0))
			goto err;
	}
	return 0;
err:
	snprintf(err, errlen, "%s:%zu: %s", path, lineno, what);
	return -1;
}

int settings_load_dotenv(const char *path, char *err, size_t errlen)
{
	buf_t b = BUF_INIT;
	struct set_pairs ps = { NULL, 0, 0 };
	int rc = buf_read_file(&b, path, SET_DOTENV_MAX, err, errlen);

	if (rc != 0)
		goto out;
	rc = -1;
	if (b.len > SET_DOTENV_MAX) {
		snprintf(err, errlen, "%s: larger than 1 MiB (%d bytes)", path, SET_DOTENV_MAX);
		goto out;
	}
	if (set_parse(path, &b, &ps, err, errlen) < 0)
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

int settings_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* set_digits: parse [0-9]+ into *v (no overflow past limit). Returns the end. */
static const char *set_digits(const char *p, long limit, long *v, int *over)
{
	for (*v = 0; *p >= '0' && *p <= '9'; p++) {
		if (*v > (limit - (*p - '0')) / 10)
			*over = 1;
		else
			*v = *v * 10 + (*p - '0');
	}
	return p;
}

int settings_parse_seconds(const char *s, long min_ms, long max_ms, long *out_ms)
{
	const char *p = s, *q;
	long whole = 0, frac = 0, ms;
	int over = 0, ndig, round = 0;

	if (!s || !((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
		return -1;
	p = set_digits(p, LONG_MAX / 1000 - 1, &whole, &over);
	if (*p == '.') {
		for (q = ++p, ndig = 0; *p >= '0' && *p <= '9'; p++, ndig++) {
			if (ndig < 3)
				frac = frac * 10 + (*p - '0');
			else if (ndig == 3)
				round = *p >= '5';
		}
		if (p == q)
			return -1; /* "1." */
		for (; ndig < 3; ndig++)
			frac *= 10;
	}
	if (*p || over)
		return -1;
	ms = whole * 1000 + frac + round;
	if (ms < min_ms || ms > max_ms)
		return -1;
	*out_ms = ms;
	return 0;
}

/* set_env: the variable's value, NULL when unset or empty. */
static const char *set_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int settings_parse_bool(const char *s, int *out)
{
	for (const struct settingstab_word *w = settingstab_bool_words; s && w->word; w++) {
		if (strcasecmp(s, w->word) == 0) {
			*out = w->value;
			return 0;
		}
	}
	return -1;
}

/* set_join: the relative path v of row r under MCPGW_HOME (MCPGW_HOME's own
 * under the cwd) into dst[n] */
static int set_join(const struct settings *s, const struct settingstab_row *r, const char *v, char *dst, size_t n,
		    char *err, size_t errlen)
{
	char cwd[sizeof s->home];
	const char *base = s->home;

	if (!base[0]) {
		if (!getcwd(cwd, sizeof cwd)) {
			snprintf(err, errlen, "%s: cannot get the current directory: %s", r->name, strerror(errno));
			return -1;
		}
		base = cwd;
	}
	if (snprintf(dst, n, "%s/%s", base, v) >= (int)n) {
		settingstab_bad(r, v, err, errlen);
		return -1;
	}
	return 0;
}

/* set_store: the parsed value into r's field (n: INT, BOOL, ENUM's value) */
static void set_store(struct settings *s, const struct settingstab_row *r, const char *v, long n)
{
	char *f = (char *)s + r->off;

	switch (r->ctype) {
	case SETTINGSTAB_C_CHARS: memcpy(f, v, strlen(v) + 1); break; /* fits: settingstab_parse checked */
	case SETTINGSTAB_C_INT: *(int *)(void *)f = (int)n; break;
	case SETTINGSTAB_C_LONG: *(long *)(void *)f = n; break;
	case SETTINGSTAB_C_SIZE: *(size_t *)(void *)f = (size_t)n; break;
	case SETTINGSTAB_C_NONE: break;
	}
}

/* set_row: load row r into s: its variable, else its default; a relative
 * path joined; parsed and bounded; its hook run. */
static int set_row(struct settings *s, const struct settingstab_row *r, char *err, size_t errlen)
{
	char def[SET_VALUE_MAX], path[SET_VALUE_MAX + sizeof s->home];
	const char *v = set_env(r->name);
	long n;
	int rc;

	if (r->off == SETTINGSTAB_NOFIELD)
		return 0; /* its own program reads it */
	if (!v) {
		if (settingstab_default_value(r, s, def, sizeof def, err, errlen) < 0)
			return -1;
		v = def;
	}
	if (r->kind == SETTINGSTAB_PATH && v[0] && v[0] != '/') {
		if (strlen(v) >= r->size) {
			settingstab_bad(r, v, err, errlen);
			return -1;
		}
		if (set_join(s, r, v, path, sizeof path, err, errlen) < 0)
			return -1;
		v = path;
	}
	if (settingstab_parse(r, v, &n) < 0) {
		settingstab_bad(r, v, err, errlen);
		return -1;
	}
	set_store(s, r, v, n);
	rc = r->hook ? r->hook(s, r, err, errlen) : 0;
	if (rc == SETTINGSTAB_BAD)
		settingstab_bad(r, v, err, errlen);
	return rc == 0 ? 0 : -1;
}

int settings_load(struct settings *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < settingstab_count; i++)
		if (set_row(s, &settingstab_rows[i], err, errlen) < 0)
			return -1;
	return 0;
}

const char *settings_model_alias(const struct settings *s, const char *name)
{
	const char *alias, *target;

	for (size_t i = 0; settings_model_alias_at(s, i, &alias, &target) == 0; i++)
		if (strcmp(alias, name) == 0)
			return target;
	return NULL;
}

int settings_model_alias_at(const struct settings *s, size_t i, const char **alias, const char **target)
{
	const char *p = s->model_alias_map;

	for (; *p; i--) {
		const char *t = p + strlen(p) + 1;

		if (i == 0) {
			*alias = p;
			*target = t;
			return 0;
		}
		p = t + strlen(t) + 1;
	}
	return -1;
}

int settings_local_embedding_model(const struct settings *s, const char *name)
{
	const char *m;

	for (size_t i = 0; (m = settings_local_embedding_model_at(s, i)); i++)
		if (strcmp(m, name) == 0)
			return 1;
	return 0;
}

const char *settings_local_embedding_model_at(const struct settings *s, size_t i)
{
	const char *p = s->local_embedding_model_map;

	for (; *p; p += strlen(p) + 1, i--)
		if (i == 0)
			return p;
	return NULL;
}

int settings_export(const struct settings *s)
{
	return setenv("MCPGW_HOME", s->home, 1) < 0 || setenv("MCPGW_STATE_DIR", s->state_dir, 1) < 0 ? -1 : 0;
}
