/* settingsdoc.c: the settings table as documentation: text, README's markdown table, --help's default and meaning. */
#include "core/settingsdoc.h"

#include <string.h>

/* doc_values: what r takes, for the tables ("seconds 0.001..86400", "`error`, `warn`, ...") */
static const char *doc_values(const struct settings_row *r, int markdown, char *dst, size_t n)
{
	static const char *const units[] = { "integer", "bytes", "milliseconds", "seconds" };

	switch (r->kind) {
	case SETTINGS_INT:
		if (r->unit == SETTINGS_SECONDS)
			settings_expect(r, dst, n); /* "seconds 0.001..86400" */
		else
			snprintf(dst, n, "%s %ld..%ld", units[r->unit], r->min, r->max);
		break;
	case SETTINGS_BOOL: snprintf(dst, n, "boolean"); break;
	case SETTINGS_ENUM: settings_words(r->words, markdown ? "`" : "", ", ", dst, n); break;
	case SETTINGS_PATH: snprintf(dst, n, "path"); break;
	case SETTINGS_STRING:
		if (r->expect)
			snprintf(dst, n, "%s%s%s", markdown ? "`" : "", r->expect, markdown ? "`" : "");
		else
			snprintf(dst, n, "%s", r->flags & SETTINGS_SECRET ? "text, secret" : "text");
		break;
	}
	if (r->flags & SETTINGS_NO_DOTENV) {
		size_t len = strlen(dst);

		snprintf(dst + len, n - len,
			 markdown ? ", environment only (never from `.env`)" : ", environment only (never from .env)");
	}
	return dst;
}

/* doc_plain: src without markdown backticks into dst[n] */
static const char *doc_plain(const char *src, char *dst, size_t n)
{
	size_t o = 0;

	for (; *src && o + 1 < n; src++)
		if (*src != '`')
			dst[o++] = *src;
	dst[o] = '\0';
	return dst;
}

/* doc_default_md: r's default as README writes it */
static const char *doc_default_md(const struct settings_row *r, char *dst, size_t n)
{
	if (r->def_doc)
		snprintf(dst, n, "%s", r->def_doc);
	else if (r->def && *r->def)
		snprintf(dst, n, "`%s`", r->def);
	else
		snprintf(dst, n, "(empty)");
	return dst;
}

const char *settingsdoc_default_text(const struct settings_row *r, char *dst, size_t n)
{
	char md[512];

	return doc_plain(doc_default_md(r, md, sizeof md), dst, n);
}

const char *settingsdoc_doc_text(const struct settings_row *r, char *dst, size_t n)
{
	return doc_plain(r->doc, dst, n);
}

/* doc_readers: "broker, responders" */
static const char *doc_readers(unsigned readers, char *dst, size_t n)
{
	static const char *const names[] = { "broker",   "responders", "chatbot",
					     "mcpgwctl", "mcp-client", "mcp-server-sqlite" };
	size_t used = 0;

	dst[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0] && used < n; i++) {
		if (readers & (1u << i)) {
			int k = snprintf(dst + used, n - used, "%s%s", used ? ", " : "", names[i]);

			used += k > 0 ? (size_t)k : 0;
		}
	}
	return dst;
}

int settingsdoc_print(FILE *f, enum settingsdoc_format fmt)
{
	char def[512], values[256], readers[128], doc[512];

	if (fmt == SETTINGSDOC_MARKDOWN)
		fprintf(f, "| setting | default | meaning | takes |\n|---|---|---|---|\n");
	for (size_t i = 0; i < settings_count; i++) {
		const struct settings_row *r = &settings_rows[i];

		if (fmt == SETTINGSDOC_MARKDOWN) {
			fprintf(f, "| `%s` | %s | %s%s%s | %s |\n", r->name, doc_default_md(r, def, sizeof def), r->doc,
				r->more && !strchr(":;,.", r->more[0]) ? " " : "", r->more ? r->more : "",
				doc_values(r, 1, values, sizeof values));
			continue;
		}
		fprintf(f, "%s\n    default: %s; takes: %s; read by: %s\n    %s\n", r->name,
			settingsdoc_default_text(r, def, sizeof def), doc_values(r, 0, values, sizeof values),
			doc_readers(r->readers, readers, sizeof readers), settingsdoc_doc_text(r, doc, sizeof doc));
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
