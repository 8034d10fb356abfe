/* settingsdoc.h: the settings table as documentation: text, README's markdown table, --help's default and meaning. */
#ifndef MCPGW_SETTINGSDOC_H
#define MCPGW_SETTINGSDOC_H

#include <stddef.h>
#include <stdio.h>

#include "core/settings.h"

/* settingsdoc_default_text: r's default as documented, without markdown
 * backticks, into dst[n] ("60", "(empty)", "$MCPGW_HOME/.env",
 * "the checkout, else /etc/mcpgw"). Returns dst. */
const char *settingsdoc_default_text(const struct settings_row *r, char *dst, size_t n);

/* settingsdoc_doc_text: r's doc line without markdown backticks into dst[n]. Returns dst. */
const char *settingsdoc_doc_text(const struct settings_row *r, char *dst, size_t n);

enum settingsdoc_format { SETTINGSDOC_TEXT, SETTINGSDOC_MARKDOWN };

/* settingsdoc_print: the whole table to f: TEXT, one block per row (name,
 * values, default, readers, doc); MARKDOWN, README.md's Configuration table
 * (setting | default | meaning | values). Prints defaults, never a current
 * value. 0, or -1 when writing failed. */
int settingsdoc_print(FILE *f, enum settingsdoc_format fmt);

#endif
