#!/bin/sh
# stderr-canary.sh COMMAND [ARG...]: a stdio MCP server that first writes a DSN with a password to its stderr, as servers do, then is COMMAND.
# The password is MCPGW_TEST_DSN_PASSWORD of the server's own env (servers_config.json, planted by canaries.mjs);
# the server itself runs without it.
pw=${MCPGW_TEST_DSN_PASSWORD:-}
unset MCPGW_TEST_DSN_PASSWORD
echo "connecting to postgresql://app:$pw@db.invalid:5432/app" >&2
exec "$@"
