#!/usr/bin/env bats
# plain_cgi.bats: a responder run the way a shared host runs a CGI program (from /, PATH=/usr/bin:/bin, no MCPGW_HOME) finds its checkout, starts a broker and the bundled server.

load helpers

setup() {
	# short base path: the broker socket path must fit in sun_path
	ST=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-cgi.XXXXXX")
	export ST
}

teardown() {
	local d

	for d in "$ST"/state*; do
		[ -d "$d" ] && stop_broker "$d"
	done
	if [ "${MCPGW_BB_KEEP:-}" = 1 ]; then echo "# kept $ST" >&3; else rm -rf "$ST"; fi
}

# cgi_get STATE_DIR PATH [CWD]: GET PATH from tools.fcgi or health.fcgi as plain CGI with
# a web server's environment; sets CGI_STATUS (the Status: header's code) and BODY
cgi_get() {
	local prog=tools out

	case $2 in /health*) prog=health ;; esac
	out=$(cd "${3:-/}" && env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 REQUEST_METHOD=GET \
		SCRIPT_NAME="$2" REQUEST_URI="$2" SERVER_PROTOCOL=HTTP/1.1 MCPGW_STATE_DIR="$1" \
		"$MCPGW_ROOT/cgi-bin/$prog.fcgi" 2>>"$ST/responder.log")
	CGI_STATUS=$(printf '%s\n' "$out" | sed -n '1s/^Status: \([0-9]*\).*/\1/p')
	BODY=$(printf '%s\n' "$out" | sed '1,/^\r\{0,1\}$/d')
}

@test "plain CGI from /, PATH=/usr/bin:/bin, no MCPGW_HOME, a new state dir: the first request lists the six sqlite tools" {
	mkdir "$ST/state"
	# exactly what a shared host runs
	run sh -c "cd / && env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 REQUEST_METHOD=GET SCRIPT_NAME=/v1/tools SERVER_PROTOCOL=HTTP/1.1 MCPGW_STATE_DIR='$ST/state' '$MCPGW_ROOT/cgi-bin/tools.fcgi' 2>>'$ST/responder.log'"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = $'Status: 200 OK\r' ] || { echo "$output" >&2; cat "$ST/state/broker.log" >&2; return 1; }
	BODY=$(printf '%s\n' "$output" | sed '1,/^\r\{0,1\}$/d')
	assert_json "JSON.stringify(j.data.filter(t => t.server === 'sqlite').map(t => t.name).sort()) === '[\"append_insight\",\"create_table\",\"describe_table\",\"list_tables\",\"read_query\",\"write_query\"]'"
	assert_json '!("unavailable_servers" in j)'
	# the broker it started runs the checkout's config and the checkout's server, its database in the state dir
	grep -qF "servers from $MCPGW_ROOT/servers_config.json" "$ST/state/broker.log"
	[ -e "$ST/state/sqlite.db" ]
	[ "$(readlink "/proc/$(cat "$ST/state/broker.pid")/exe")" = "$MCPGW_ROOT/broker/mcpgw-broker" ]
	# and the next request is answered by that broker, with the same tools
	cgi_get "$ST/state" /v1/tools
	[ "$CGI_STATUS" = 200 ]
	assert_json 'j.data.filter(t => t.server === "sqlite").length === 6'
	cgi_get "$ST/state" /health
	[ "$CGI_STATUS" = 200 ]
	assert_json 'j.status === "ok" && j.servers[0].name === "sqlite" && j.servers[0].state === "ready"'
}

@test "MCPGW_HOME defaults to where the programs are (the checkout), not the working directory" {
	mkdir "$ST/state" "$ST/cwd"
	# a working directory with its own config and .env: neither is read
	printf '{"mcpServers":{"decoy":{"command":"/bin/false"}}}\n' >"$ST/cwd/servers_config.json"
	printf 'MCPGW_CONFIG=%s/cwd/servers_config.json\n' "$ST" >"$ST/cwd/.env"
	cgi_get "$ST/state" /v1/tools "$ST/cwd"
	[ "$CGI_STATUS" = 200 ] || { echo "$BODY" >&2; return 1; }
	assert_json 'j.data.length === 6 && j.data.every(t => t.server === "sqlite")'
	cgi_get "$ST/state" /health "$ST/cwd"
	assert_json 'j.servers.length === 1 && j.servers[0].name === "sqlite"'
	# the MCP server runs in MCPGW_HOME, not in the responder's working directory
	[ "$(readlink "/proc/$(json_eval 'j.servers[0].pid')/cwd")" = "$MCPGW_ROOT" ]
}

@test "a relative command and cwd in servers_config.json are taken from MCPGW_HOME, not the working directory" {
	mkdir -p "$ST/state" "$ST/home/bin" "$ST/home/data" "$ST/cwd/bin"
	ln -s "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite" "$ST/home/bin/srv"
	printf '#!/bin/sh\nexit 3\n' >"$ST/cwd/bin/srv" && chmod 755 "$ST/cwd/bin/srv"
	cat >"$ST/home/servers_config.json" <<'EOF'
{ "mcpServers": {
  "rel": { "command": "bin/srv", "args": ["--db-path", "rel.db"] },
  "dir": { "command": "../bin/srv", "cwd": "data", "args": ["--db-path", "dir.db"] }
} }
EOF
	out=$(cd "$ST/cwd" && env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 REQUEST_METHOD=GET \
		SCRIPT_NAME=/health REQUEST_URI=/health MCPGW_HOME="$ST/home" MCPGW_STATE_DIR="$ST/state" \
		"$MCPGW_ROOT/cgi-bin/health.fcgi")
	BODY=$(printf '%s\n' "$out" | sed '1,/^\r\{0,1\}$/d')
	assert_json 'j.servers.every(s => s.state === "ready")'
	[ -e "$ST/home/rel.db" ] && [ ! -e "$ST/cwd/rel.db" ]
	[ -e "$ST/home/data/dir.db" ]
}
