/* check.h: mcpgw-broker --check-config. */
#ifndef MCPGW_CHECK_H
#define MCPGW_CHECK_H

#include "core/settings.h"

/* the exit status of --check-config when a setting (the environment or the
 * .env file), not the config, is wrong: mcpgwctl tells the two apart */
#define CHECK_EXIT_SETTINGS 4

/* check_config: load set->config and check that every enabled stdio
 * server's command can be found and run (and its "cwd" is a directory);
 * nothing is started. Plain lines, no log prefix: "FILE: ok, N servers" on
 * stdout, or each problem ("FILE: server 'x': command 'foo' not found
 * (looked in ... and PATH=...)", a config error) on stderr. Returns the
 * exit status: 0 ok, 1 otherwise (CHECK_EXIT_SETTINGS is main's, before
 * this runs). */
int check_config(const struct settings *set);

#endif
