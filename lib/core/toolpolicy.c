/* toolpolicy.c: servers and tools allow-lists of a caller, matched with fnmatch(3) (see toolpolicy.h). */
#include "core/toolpolicy.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* any: a list that allows every name */
static int any(const char *list)
{
	return !list || !*list || strcmp(list, "*") == 0;
}

int toolpolicy_check_globs(const char *list, char *err, size_t errlen)
{
	const char *p = list;

	if (strlen(list) >= TOOLPOLICY_MAX) {
		snprintf(err, errlen, "a list of globs is at most %d bytes", TOOLPOLICY_MAX - 1);
		return -1;
	}
	for (; *p; p++)
		if (*p <= ' ' || *p > '~') {
			snprintf(err, errlen, "a list of globs holds printable ASCII without blanks: '%.100s'", list);
			return -1;
		}
	for (p = list; *p;) {
		size_t k = strcspn(p, ",");

		if (k == 0) {
			snprintf(err, errlen, "an empty glob in '%.100s' (write globs separated by single commas)", list);
			return -1;
		}
		p += k + (p[k] == ',');
		if (p[-1] == ',' && !*p) {
			snprintf(err, errlen, "an empty glob at the end of '%.100s'", list);
			return -1;
		}
	}
	return 0;
}

int toolpolicy_match(const char *list, const char *name)
{
	char glob[TOOLPOLICY_MAX];

	if (any(list))
		return 1;
	if (!name)
		return 0;
	while (*list) {
		size_t k = strcspn(list, ",");

		if (k > 0 && k < sizeof glob) {
			memcpy(glob, list, k);
			glob[k] = '\0';
			if (fnmatch(glob, name, 0) == 0)
				return 1;
		}
		list += k + (list[k] == ',');
	}
	return 0;
}

int toolpolicy_allows(const struct toolpolicy *p, const char *server, const char *tool)
{
	if (!p)
		return 1;
	return toolpolicy_match(p->servers, server) && toolpolicy_match(p->tools, tool);
}

int toolpolicy_restricts(const struct toolpolicy *p)
{
	return p && (!any(p->servers) || !any(p->tools));
}
