#!/usr/bin/env bats
# check_config.bats: mcpgw-broker --check-config: plain messages (no log prefix), every stdio command found, exit status.

bats_require_minimum_version 1.5.0

setup() {
	MCPGW_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	BROKER="$MCPGW_ROOT/broker/mcpgw-broker"
	[ -x "$BROKER" ] || { echo "build first (make all)" >&2; return 1; }
	# a home of its own: no .env of the checkout, a short PATH without the bundled server on it
	H="$BATS_TEST_TMPDIR/home"
	mkdir -p "$H"
	CFG="$H/servers_config.json"
}

# check: run --check-config on $CFG from $H, stdout and stderr apart; with the run's canaries planted
# in $CFG (tests/blackbox/canaries.mjs: a remote URL's query, a server's env), the output kept as a
# response and $CFG as a raw input for the end-of-run canary grep (tests/canaries.sh)
check() {
	local art=${MCPGW_TEST_ARTIFACTS:-}

	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" plant "$H"
	run --separate-stderr env -u MCPGW_CONFIG -u MCPGW_STATE_DIR MCPGW_HOME="$H" PATH=/usr/bin:/bin "$BROKER" --check-config
	if [ -n "$art" ]; then
		printf '%s\n%s\n' "$output" "$stderr" >>"$art/kept/responses/bats-check_config.txt"
		node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" keep "$H" "bats-check_config-$BATS_TEST_NUMBER-$RANDOM"
	fi
	echo "status: $status"
	echo "stdout: $output"
	echo "stderr: $stderr"
}

@test "a good config: one plain line on stdout, exit 0; the bundled server is found without PATH" {
	cat >"$CFG" <<EOF
{"mcpServers": {
  "sqlite": {"command": "mcp-server-sqlite", "args": ["--db-path", "/tmp/x.db"]},
  "sh": {"command": "sh", "args": ["-c", "exit 0"], "cwd": "/tmp"},
  "web": {"type": "http", "url": "https://example.org/mcp"},
  "later": {"command": "surely-not-installed-anywhere", "disabled": true}
}}
EOF
	check
	[ "$status" -eq 0 ]
	[ "$output" = "$CFG: ok, 4 servers (1 disabled)" ]
	[ -z "$stderr" ]
	printf '{"mcpServers": {"sqlite": {"command": "mcp-server-sqlite"}}}' >"$CFG"
	check
	[ "$status" -eq 0 ]
	[ "$output" = "$CFG: ok, 1 server" ]
}

@test "a command that is not found is named with where it was looked for, exit 1" {
	printf '{"mcpServers": {"sqlite": {"command": "mcp-server-sqlite"}, "x": {"command": "mcp-server-nothere"}}}' >"$CFG"
	check
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "$CFG: server 'x': cannot run 'mcp-server-nothere': not found in mcpgw's program directories ($MCPGW_ROOT/broker:$MCPGW_ROOT/mcp-server-sqlite:$MCPGW_ROOT/chat:$MCPGW_ROOT/mcp-client) nor on PATH (/usr/bin:/bin)" ]
	[ "${stderr_lines[1]}" = "$CFG: 1 of 2 servers cannot start" ]
	[ "${#stderr_lines[@]}" -eq 2 ]
}

@test "paths: absolute as given, relative against MCPGW_HOME or the server's cwd; not executable; a whole command line" {
	mkdir -p "$H/bin" "$H/srv/bin"
	printf '#!/bin/sh\n' >"$H/bin/server" && chmod +x "$H/bin/server"
	printf '#!/bin/sh\n' >"$H/srv/bin/other" && chmod +x "$H/srv/bin/other"
	printf '#!/bin/sh\n' >"$H/bin/noexec" && chmod -x "$H/bin/noexec"
	cat >"$CFG" <<EOF
{"mcpServers": {
  "rel": {"command": "bin/server"},
  "relcwd": {"command": "./bin/other", "cwd": "srv"},
  "abs": {"command": "$H/bin/server"},
  "absmissing": {"command": "$H/bin/missing"},
  "relmissing": {"command": "./bin/missing"},
  "noexec": {"command": "$H/bin/noexec"},
  "line": {"command": "npx -y @modelcontextprotocol/server-memory"},
  "nocwd": {"command": "sh", "cwd": "$H/nowhere"}
}}
EOF
	check
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "$CFG: server 'absmissing': cannot run '$H/bin/missing': $H/bin/missing does not exist" ]
	[ "${stderr_lines[1]}" = "$CFG: server 'relmissing': cannot run './bin/missing': $H/./bin/missing does not exist (a relative command is taken from the server's cwd, default MCPGW_HOME: $H)" ]
	[ "${stderr_lines[2]}" = "$CFG: server 'noexec': cannot run '$H/bin/noexec': $H/bin/noexec is not an executable file" ]
	[[ "${stderr_lines[3]}" == "$CFG: server 'line': cannot run 'npx -y @modelcontextprotocol/server-memory': "*" does not exist "*"; a whole command line? put the program in \"command\" and the rest in \"args\"" ]]
	[ "${stderr_lines[4]}" = "$CFG: server 'nocwd': cannot run 'sh': its working directory $H/nowhere does not exist" ]
	[ "${stderr_lines[5]}" = "$CFG: 5 of 8 servers cannot start" ]
}

@test "a bare name found only as a file that cannot be run says so" {
	mkdir -p "$H/path"
	printf '#!/bin/sh\n' >"$H/path/mcp-thing" && chmod -x "$H/path/mcp-thing"
	printf '{"mcpServers": {"t": {"command": "mcp-thing"}}}' >"$CFG"
	run --separate-stderr env MCPGW_HOME="$H" PATH="$H/path:/usr/bin:/bin" "$BROKER" --check-config
	[ "$status" -eq 1 ]
	[ "${stderr_lines[0]}" = "$CFG: server 't': cannot run 'mcp-thing': $H/path/mcp-thing is not an executable file" ]
}

@test "a config error is one plain line on stderr, without the log's timestamp, exit 1" {
	printf '{"servers": {"memory": {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}}}' >"$CFG"
	check
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "$CFG: no \"mcpServers\" object; found \"servers\" (the VS Code mcp.json shape): rename it to \"mcpServers\"" ]
	printf '{"mcpServers": {"w": {"serverUrl": "https://example.org/mcp"}}}' >"$CFG"
	check
	[ "$status" -eq 1 ]
	[ "$stderr" = "$CFG: mcpServers.w: unknown key \"serverUrl\" (the Windsurf shape): rename it to \"url\"" ]
	rm -f "$CFG"
	check
	[ "$status" -eq 1 ]
	[[ "$stderr" == "$CFG: "* ]]
	[[ ! "$stderr" =~ ^[0-9]{4}- ]]
}

@test "MCPGW_LOG_FILE does not swallow --check-config's answer" {
	printf '{"mcpServers": {"x": {"command": "mcp-server-nothere"}}}' >"$CFG"
	run --separate-stderr env MCPGW_HOME="$H" MCPGW_LOG_FILE="$H/log" PATH=/usr/bin:/bin "$BROKER" --check-config
	[ "$status" -eq 1 ]
	[[ "${stderr_lines[0]}" == "$CFG: server 'x': cannot run 'mcp-server-nothere': not found"* ]]
	[ ! -s "$H/log" ]
}

@test "a wrong setting, from the environment or .env, is one line naming it, exit 4 (not the config's 1)" {
	printf '{"mcpServers": {"sqlite": {"command": "mcp-server-sqlite"}}}' >"$CFG"
	printf 'MCPGW_TOOL_TIMEOUT=-5\n' >"$H/.env"
	check
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	[ "$stderr" = "mcpgw-broker: MCPGW_TOOL_TIMEOUT: expected seconds 0.001..86400, got '-5'" ]
	MCPGW_TOOL_TIMEOUT=soon run --separate-stderr env MCPGW_HOME="$H" PATH=/usr/bin:/bin "$BROKER" --check-config
	[ "$status" -eq 4 ]
	[ "$stderr" = "mcpgw-broker: MCPGW_TOOL_TIMEOUT: expected seconds 0.001..86400, got 'soon'" ]
	# a .env that is not KEY=VALUE lines is a settings problem too
	printf 'MCPGW_TOOL_TIMEOUT\n' >"$H/.env"
	check
	[ "$status" -eq 4 ]
	[[ "$stderr" == "mcpgw-broker: $H/.env:1: "* ]]
	rm "$H/.env"
	check
	[ "$status" -eq 0 ]
}
