/* statestore_url.c: the state store's URLs: the schemes this build has and the form of each (see statestore_url.h). */
#include "core/statestore_url.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* what an unknown scheme is told */
#define STATESTORE_SUPPORTED \
	"supported: sqlite:/ABSOLUTE/PATH (e.g. sqlite:/var/lib/mcpgw/state.db); " \
	"postgresql is planned, not built in"

/* url_sqlite: sqlite:/ABSOLUTE/PATH; 0 or -1 with err */
static int url_sqlite(const char *rest, char *err, size_t errlen)
{
	if (rest[0] != '/' || rest[1] == '/') {
		snprintf(err, errlen,
			 "MCPGW_STATE_STORE: sqlite needs an absolute file path, e.g. "
			 "sqlite:/var/lib/mcpgw/state.db");
		return -1;
	}
	if (strlen(rest) >= PATH_MAX) {
		snprintf(err, errlen, "MCPGW_STATE_STORE: the sqlite path is longer than %d bytes", PATH_MAX - 1);
		return -1;
	}
	return 0;
}

/* the schemes this build has (each a backend of statestore.c) and their forms */
static const struct {
	const char *scheme;
	int (*check)(const char *rest, char *err, size_t errlen);
} statestore_schemes[] = { { "sqlite", url_sqlite } };

const char *statestore_url_rest(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return url && strncmp(url, scheme, n) == 0 && url[n] == ':' ? url + n + 1 : NULL;
}

int statestore_check_url(const char *url, char *err, size_t errlen)
{
	size_t n = url ? strcspn(url, ":") : 0;

	if (!url || !*url) {
		snprintf(err, errlen, "MCPGW_STATE_STORE is empty; %s", STATESTORE_SUPPORTED);
		return -1;
	}
	if (url[n] != ':') {
		snprintf(err, errlen, "MCPGW_STATE_STORE names no scheme (a URL 'scheme:...'); %s", STATESTORE_SUPPORTED);
		return -1;
	}
	for (size_t i = 0; i < sizeof statestore_schemes / sizeof *statestore_schemes; i++) {
		const char *rest = statestore_url_rest(url, statestore_schemes[i].scheme);

		if (rest)
			return statestore_schemes[i].check(rest, err, errlen);
	}
	/* only the scheme is repeated: the rest of a server URL may hold a password */
	snprintf(err, errlen, "MCPGW_STATE_STORE: unknown scheme '%.*s'; %s", n > 32 ? 32 : (int)n, url,
		 STATESTORE_SUPPORTED);
	return -1;
}
