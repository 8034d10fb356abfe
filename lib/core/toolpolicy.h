/* toolpolicy.h: which MCP servers and tools one caller (an API key) may see and run: two lists of globs. */
#ifndef MCPGW_TOOLPOLICY_H
#define MCPGW_TOOLPOLICY_H

#include <stddef.h>

#define TOOLPOLICY_MAX 1024 /* bytes of one list of globs, NUL included */

/* what a caller is told of a tool its policy does not allow (%s: the tool), on every endpoint */
#define TOOLPOLICY_DENIED "The API key in use does not allow the tool '%s'."

/* A policy: servers and tools, each a comma-separated list of fnmatch(3)
 * globs ("sqlite", "fs-*,sqlite"; "" or "*": any). servers is matched
 * against the configured server names (servers_config.json's keys), tools
 * against a tool's exposed name (what GET /v1/tools lists and the model
 * calls). A tool is allowed when both lists match. A NULL policy allows
 * everything (a caller without a key, or a key without lists). */
struct toolpolicy {
	char servers[TOOLPOLICY_MAX];
	char tools[TOOLPOLICY_MAX];
};

/* toolpolicy_check_globs: a list as given by an operator (--servers,
 * --tools): at most TOOLPOLICY_MAX - 1 bytes, items non-empty after
 * trimming, only printable ASCII without spaces. 0, or -1 with err. */
int toolpolicy_check_globs(const char *list, char *err, size_t errlen);

/* toolpolicy_match: name matches one glob of list ("" matches anything). */
int toolpolicy_match(const char *list, const char *name);

/* toolpolicy_allows: p (NULL: no restriction) allows the tool with exposed
 * name tool of server (server NULL: not known, then only a servers list
 * that allows every server lets it through). */
int toolpolicy_allows(const struct toolpolicy *p, const char *server, const char *tool);

/* toolpolicy_restricts: p narrows anything (a non-NULL policy with a list
 * other than "" or "*"). */
int toolpolicy_restricts(const struct toolpolicy *p);

#endif
