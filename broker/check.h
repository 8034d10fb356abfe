/* check.h: mcpgw-broker --check-config. */
#ifndef MCPGW_CHECK_H
#define MCPGW_CHECK_H

#include "core/settings.h"

/* check_config: load set->config and check that every enabled stdio
 * server's command can be found and run (and its "cwd" is a directory);
 * nothing is started. Plain lines, no log prefix: "FILE: ok, N servers" on
 * stdout, or each problem ("FILE: server 'x': command 'foo' not found
 * (looked in ... and PATH=...)", a config error) on stderr. Returns the
 * exit status: 0 ok, 1 otherwise. */
int check_config(const struct settings *set);

#endif
