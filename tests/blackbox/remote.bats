#!/usr/bin/env bats
# remote.bats: remote MCP servers through the real stack: Streamable HTTP, legacy SSE, supergateway, restarts, the conformance suite.

load helpers

NODE_BIN="$MCPGW_ROOT/tests/node_modules/.bin"
EVERYTHING="$NODE_BIN/mcp-server-everything"
LOOPBACK="$MCPGW_ROOT/tests/loopback.cjs"

# start_bg NAME CMD...: run a peer in the background, pid in $MCPGW_HOME/NAME.pid
start_bg() {
	local name=$1
	shift
	"$@" >"$MCPGW_HOME/$name.log" 2>&1 &
	echo $! >"$MCPGW_HOME/$name.pid"
}

wait_port() {
	for _ in $(seq 150); do
		curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	echo "nothing listens on $1" >&2
	return 1
}

start_everything() { # MODE PORT
	PORT=$2 start_bg "everything-$1" node --require "$LOOPBACK" "$EVERYTHING" "$1"
	wait_port "$2"
}

stop_bg() {
	local f="$MCPGW_HOME/$1.pid"
	[ -s "$f" ] || return 0
	kill "$(cat "$f")" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$(cat "$f")" 2>/dev/null || true
	rm -f "$f"
}

mcpgw_custom_config() {
	P_HTTP=$(free_port); P_SSE=$(free_port); P_SGSSE=$(free_port); P_SGHTTP=$(free_port); P_SGLESS=$(free_port)
	printf 'P_HTTP=%s\nP_SSE=%s\n' "$P_HTTP" "$P_SSE" >"$MCPGW_HOME/ports"
	local sqlite="$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite"
	start_everything streamableHttp "$P_HTTP"
	start_everything sse "$P_SSE"
	start_bg sg-sse node --require "$LOOPBACK" "$NODE_BIN/supergateway" --stdio "$sqlite $MCPGW_HOME/sg1.db" --port "$P_SGSSE" --logLevel none
	start_bg sg-http node --require "$LOOPBACK" "$NODE_BIN/supergateway" --stdio "$sqlite $MCPGW_HOME/sg2.db" \
		--outputTransport streamableHttp --stateful --port "$P_SGHTTP" --logLevel none
	start_bg sg-less node --require "$LOOPBACK" "$NODE_BIN/supergateway" --stdio "$sqlite $MCPGW_HOME/sg3.db" \
		--outputTransport streamableHttp --port "$P_SGLESS" --logLevel none
	wait_port "$P_SGSSE" && wait_port "$P_SGHTTP" && wait_port "$P_SGLESS"
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{
  "mcpServers": {
    "local": {"command": "$sqlite", "args": ["$MCPGW_HOME/local.db"]},
    "http": {"type": "http", "url": "http://127.0.0.1:$P_HTTP/mcp", "headers": {"X-Token": "\${MCPGW_TEST_TOKEN:-t0ken}"}},
    "sse": {"type": "sse", "url": "http://127.0.0.1:$P_SSE/sse"},
    "sgsse": {"url": "http://127.0.0.1:$P_SGSSE/sse"},
    "sghttp": {"type": "streamable-http", "url": "http://127.0.0.1:$P_SGHTTP/mcp"},
    "sgless": {"type": "http", "url": "http://127.0.0.1:$P_SGLESS/mcp"}
  }
}
EOF
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_TOOL_TIMEOUT=10\nMCPGW_RESTART_BACKOFF_MAX=1\n' >"$MCPGW_HOME/.env"
}

setup_file() { mcpgw_setup_file; }

teardown_file() {
	for n in everything-streamableHttp everything-sse sg-sse sg-http sg-less; do stop_bg "$n"; done
	mcpgw_teardown_file
}

server_state() {
	get /health
	json_eval "j.servers.find(s => s.name === '$1').state"
}

@test "GET /v1/tools lists stdio, Streamable HTTP and SSE servers' tools side by side" {
	get /health
	assert_json "j.servers.every(s => s.state === 'ready')"
	assert_json "j.servers.find(s => s.name === 'sgsse').transport === 'sse'"
	get /v1/tools
	assert_status 200
	for s in local http sse sgsse sghttp sgless; do
		assert_json "j.data.some(t => t.server === '$s')"
	done
	assert_json "j.data.some(t => t.name === 'http_echo' && t.mcp_name === 'echo')"
}

@test "POST /v1/tools runs a tool on each transport" {
	post /v1/tools '{"tool":"local_create_table","arguments":{"query":"CREATE TABLE t(x)"}}'
	assert_status 200
	post /v1/tools '{"tool":"http_echo","arguments":{"message":"over streamable http"}}'
	assert_status 200
	assert_json "j.content[0].text === 'Echo: over streamable http'"
	post /v1/tools '{"tool":"sse_get-sum","arguments":{"a":20,"b":22}}'
	assert_status 200
	assert_json "j.content[0].text.includes('42')"
	for s in sgsse sghttp sgless; do
		post /v1/tools "{\"tool\":\"${s}_create_table\",\"arguments\":{\"query\":\"CREATE TABLE t_$s(x)\"}}"
		assert_status 200
		post /v1/tools "{\"tool\":\"${s}_list_tables\",\"arguments\":{}}"
		assert_status 200
		assert_json "j.content[0].text.includes('t_$s')"
	done
}

@test "a killed Streamable HTTP server: calls fail fast, then work again after it returns, broker untouched" {
	. "$MCPGW_HOME/ports"
	local broker t0
	broker=$(cat "$MCPGW_STATE_DIR/broker.pid")
	stop_bg everything-streamableHttp
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"http_echo","arguments":{"message":"down"}}'
	assert_status 503
	assert_json "j.error.code === 'server_unavailable' && j.error.message.includes('$P_HTTP')"
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ]
	start_everything streamableHttp "$P_HTTP"
	for _ in $(seq 100); do
		post /v1/tools '{"tool":"http_echo","arguments":{"message":"back"}}'
		[ "$HTTP_STATUS" = 200 ] && break
		sleep 0.1
	done
	assert_status 200
	assert_json "j.content[0].text === 'Echo: back'"
	[ "$(cat "$MCPGW_STATE_DIR/broker.pid")" = "$broker" ]
}

@test "a killed SSE server: calls fail fast, then work again after it returns" {
	. "$MCPGW_HOME/ports"
	stop_bg everything-sse
	for _ in $(seq 50); do [ "$(server_state sse)" != ready ] && break; sleep 0.1; done
	post /v1/tools '{"tool":"sse_echo","arguments":{"message":"down"}}'
	assert_status 503
	start_everything sse "$P_SSE"
	for _ in $(seq 100); do
		post /v1/tools '{"tool":"sse_echo","arguments":{"message":"back"}}'
		[ "$HTTP_STATUS" = 200 ] && break
		sleep 0.1
	done
	assert_status 200
}

conformance() {
	run "$NODE_BIN/node" "$MCPGW_ROOT/tests/node_modules/@modelcontextprotocol/conformance/dist/index.js" client \
		--command "$MCPGW_ROOT/mcp-client/mcpgw-mcp-client" --scenario "$1"
	echo "$output" | grep -v INFO >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *"OVERALL: PASSED"* ]]
}

@test "conformance: initialize" {
	conformance initialize
}

@test "conformance: tools_call" {
	conformance tools_call
}

@test "conformance: sse-retry" {
	# The scenario answers the tool call on whichever GET stream comes after the call. Our client
	# opens its GET stream once initialized, so that GET normally comes before the call; on a loaded
	# machine (the sanitizer stage beside the front ends) it may come after it: the answer then
	# comes on it, no reconnection happens, and the scenario measures the wrong GET (CI: "-51ms",
	# no Last-Event-ID). Such a run tested nothing: it is run again, five times at most (three late
	# runs in a row happened in a check with another test run beside it).
	for _ in 1 2 3 4 5; do
		run "$NODE_BIN/node" "$MCPGW_ROOT/tests/node_modules/@modelcontextprotocol/conformance/dist/index.js" client \
			--command "$MCPGW_ROOT/mcp-client/mcpgw-mcp-client" --scenario sse-retry
		awk '/Received POST request for \/ \(method: tools\/call\)/ { call = 1 }
			call && /Received GET request for \/$/ { late = 1 }
			END { exit !late }' <<<"$output" || break
		echo "the GET stream came after the tool call: the run tested no reconnection; again" >&2
	done
	echo "$output" | grep -v INFO >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *"OVERALL: PASSED"* ]]
}
