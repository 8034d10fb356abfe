/* statestore_url.h: the state store's URLs (MCPGW_STATE_STORE): the schemes this build has and the form of each, checked without linking any backend. */
#ifndef MCPGW_STATESTORE_URL_H
#define MCPGW_STATESTORE_URL_H

#include <stddef.h>

/* statestore_check_url: 0 when url names a backend this build has (its form
 * checked: sqlite needs an absolute path), else -1 with err saying what is
 * supported. err never repeats more of url than its scheme (a server URL
 * may hold a password). Needs no backend: the settings check the URL in
 * every program, and only a program that opens a store links its backend. */
int statestore_check_url(const char *url, char *err, size_t errlen);

/* statestore_url_rest: the rest of url after "scheme:" when url is of that
 * scheme (borrowed, inside url), else NULL. */
const char *statestore_url_rest(const char *url, const char *scheme);

#endif
