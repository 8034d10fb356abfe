#!/usr/bin/env bats
# readiness.bats: requests made while MCP servers are not ready say so (503 or a list of the missing servers), never an empty success; a first request waits for servers still starting.

load helpers
mcpgw_load_sim

# the gateway's servers: one whose command does not exist, one that takes 60 s to start
mcpgw_custom_config() {
	printf '#!/bin/sh\nsleep 60\nexec "%s" "$@"\n' "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite" >"$MCPGW_HOME/sleepy.sh"
	chmod 755 "$MCPGW_HOME/sleepy.sh"
	cat >"$MCPGW_HOME/servers_config.json" <<'EOF'
{ "mcpServers": {
  "ghost": { "command": "no-such-mcp-server" },
  "sleepy": { "command": "./sleepy.sh", "args": ["--db-path", "${MCPGW_STATE_DIR}/sleepy.db"] },
  "off": { "command": "no-such-either", "disabled": true }
} }
EOF
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_STARTUP_WAIT=0.5\nMCPGW_INIT_TIMEOUT=120\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }

teardown_file() {
	local d

	for d in "$MCPGW_HOME"/cgi-*/var; do
		[ -d "$d" ] && stop_broker "$d"
	done
	mcpgw_teardown_file_with_sim
}

# header NAME: the value of that header of the last response ("" if absent)
header() {
	printf '%s\n' "$HEADERS" | tr -d '\r' | sed -n "s/^$1: //Ip" | head -n 1
}

@test "GET /v1/tools with no server ready: 503 tools_unavailable naming each server and why, not an empty list" {
	local t0=$SECONDS

	get /v1/tools
	assert_openai_error 503 tools_unavailable
	assert_json 'j.error.type === "server_error"'
	assert_json "j.error.message.includes(\"server 'ghost' cannot start: cannot run 'no-such-mcp-server': not found in mcpgw's program directories\")"
	assert_json "j.error.message.includes(\"server 'sleepy' is starting\")"
	assert_json '!j.error.message.includes("off")'
	assert_json 'j.unavailable_servers.map(s => s.name).sort().join() === "ghost,sleepy"'
	assert_json 'j.unavailable_servers.find(s => s.name === "ghost").failing === true'
	# sleepy is still starting: come back soon
	[ "$(header Retry-After)" = 1 ]
	# it waited MCPGW_STARTUP_WAIT (0.5 s) for sleepy, not longer
	[ $((SECONDS - t0)) -lt 5 ]
	get '/v1/tools?format=openai'
	assert_openai_error 503 tools_unavailable
	get /v1/tools/read_query
	assert_openai_error 503 tools_unavailable
	# the responders' log says it too
	grep -q "MCP servers not ready (0 ready): server 'ghost' cannot start" "$MCPGW_STATE_DIR/responders.log"
}

@test "GET /health: degraded, with a reason per server that is not ready" {
	get /health
	assert_status 200
	assert_json 'j.status === "degraded"'
	assert_json "j.reasons.some(r => r.startsWith(\"server 'ghost' cannot start: cannot run 'no-such-mcp-server'\"))"
	assert_json "j.reasons.includes(\"server 'sleepy' is starting\")"
	assert_json 'j.reasons.length === 2'
	assert_json 'j.servers.find(s => s.name === "ghost").failing === true'
	assert_json 'j.servers.find(s => s.name === "sleepy").failing === false'
}

@test "a chat completion while no server is ready goes on without MCP tools, and says which are missing" {
	sim_reset
	sim_script '[{"content":"no tools here"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "no tools here"'
	[ "$(header X-MCPGW-Tools-Unavailable)" = "ghost, sleepy" ]
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 1 && !("tools" in j[0].body)'
	grep -q "chat completion without the tools of MCP servers that are not ready: server 'ghost' cannot start" \
		"$MCPGW_STATE_DIR/responders.log"
}

@test "a streamed chat completion while no server is ready: the header and an SSE comment say which tools are missing" {
	local out="$BATS_TEST_TMPDIR/stream" hdr="$BATS_TEST_TMPDIR/stream.h"

	sim_reset
	sim_script '[{"content":"streamed"}]'
	curl -s -m 30 -D "$hdr" -o "$out" -H 'Content-Type: application/json' \
		-d '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}' "$MCPGW_URL/v1/chat/completions"
	grep -qi '^X-MCPGW-Tools-Unavailable: ghost, sleepy' "$hdr"
	grep -q "^: mcpgw: tools not offered: server 'ghost' cannot start: cannot run 'no-such-mcp-server'" "$out"
	grep -q '^data: \[DONE\]' "$out"
}

@test "a chat completion that names a server that is not ready: 503 server_unavailable, the upstream is not asked" {
	sim_reset
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}],"mcp":{"servers":["ghost"]}}'
	assert_openai_error 503 server_unavailable
	assert_json 'j.error.param === "mcp"'
	assert_json "j.error.message.includes(\"server 'ghost' cannot start\")"
	assert_json '!j.error.message.includes("sleepy")'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 0'
}

# cgi_get HOME STATE PATH [VAR=VALUE...]: GET PATH from the responder as plain CGI; sets CGI_STATUS, BODY, CGI_HEADERS
cgi_get() {
	local home=$1 st=$2 path=$3 prog=tools out

	shift 3
	case $path in /health*) prog=health ;; esac
	out=$(cd / && env -i PATH=/usr/bin:/bin GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 REQUEST_METHOD=GET SCRIPT_NAME="$path" \
		REQUEST_URI="$path" MCPGW_HOME="$home" MCPGW_STATE_DIR="$st" "$@" "$MCPGW_ROOT/cgi-bin/$prog.fcgi" 2>/dev/null)
	CGI_STATUS=$(printf '%s\n' "$out" | sed -n '1s/^Status: \([0-9]*\).*/\1/p')
	CGI_HEADERS=$(printf '%s\n' "$out" | sed '/^\r\{0,1\}$/q')
	BODY=$(printf '%s\n' "$out" | sed '1,/^\r\{0,1\}$/d')
}

# a home with a server that takes SECONDS to start, and the missing one
slow_home() {
	local d="$MCPGW_HOME/cgi-$1"

	mkdir -p "$d"
	printf '#!/bin/sh\nsleep %s\nexec "%s" "$@"\n' "$2" "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite" >"$d/slow.sh"
	chmod 755 "$d/slow.sh"
	cat >"$d/servers_config.json" <<'EOF'
{ "mcpServers": {
  "slow": { "command": "./slow.sh", "args": ["--db-path", "${MCPGW_STATE_DIR}/slow.db"] },
  "ghost": { "command": "no-such-mcp-server" }
} }
EOF
	echo "$d"
}

@test "the first request after the broker starts waits for a server still starting (MCPGW_STARTUP_WAIT), then lists its tools and names the missing one" {
	local d t0=$SECONDS

	d=$(slow_home wait 1)
	cgi_get "$d" "$d/var" /v1/tools
	[ "$CGI_STATUS" = 200 ] || { echo "$BODY" >&2; return 1; }
	assert_json 'j.data.filter(t => t.server === "slow").length === 6'
	assert_json 'j.unavailable_servers.length === 1 && j.unavailable_servers[0].name === "ghost"'
	[ $((SECONDS - t0)) -ge 1 ]
	cgi_get "$d" "$d/var" /health
	assert_json 'j.status === "degraded" && j.reasons.length === 1'
}

@test "without waiting (MCPGW_STARTUP_WAIT=0): /health says starting, /v1/tools 503 with Retry-After, until the server is ready" {
	local d i=0

	d=$(slow_home nowait 2)
	# only the slow server: nothing fails, it is just not there yet
	printf '{ "mcpServers": { "slow": { "command": "./slow.sh", "args": ["--db-path", "slow.db"] } } }\n' >"$d/servers_config.json"
	cgi_get "$d" "$d/var" /health MCPGW_STARTUP_WAIT=0
	[ "$CGI_STATUS" = 200 ]
	assert_json 'j.status === "starting"'
	assert_json "JSON.stringify(j.reasons) === JSON.stringify([\"server 'slow' is starting\"])"
	cgi_get "$d" "$d/var" /v1/tools MCPGW_STARTUP_WAIT=0
	[ "$CGI_STATUS" = 503 ]
	assert_json "j.error.code === 'tools_unavailable' && j.error.message.includes(\"server 'slow' is starting\")"
	printf '%s\n' "$CGI_HEADERS" | grep -q '^Retry-After: 1'
	# the database of the relative --db-path is in MCPGW_HOME (the server's default cwd)
	while [ "$CGI_STATUS" != 200 ] && [ $i -lt 100 ]; do
		sleep 0.1
		cgi_get "$d" "$d/var" /v1/tools MCPGW_STARTUP_WAIT=0
		i=$((i + 1))
	done
	assert_json 'j.data.length === 6 && !("unavailable_servers" in j)'
	[ -e "$d/slow.db" ]
	cgi_get "$d" "$d/var" /health MCPGW_STARTUP_WAIT=0
	assert_json 'j.status === "ok" && j.reasons.length === 0'
}
