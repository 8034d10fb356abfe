#!/usr/bin/env bats
# broker.bats: the broker's supervision through the real stack: restarts, reconnects, timeouts, fast failures, clean stops.

load helpers

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{
  "mcpServers": {
    "everything": {"command": "$MCPGW_ROOT/tests/node_modules/.bin/mcp-server-everything", "args": ["stdio"]},
    "sqlite": {"command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"],
               "excludeTools": ["append_insight"]}
  }
}
EOF
	cat >"$MCPGW_HOME/.env" <<EOF
MCPGW_TOOL_TIMEOUT=1.5
MCPGW_TOOL_RETRIES=1
MCPGW_LOG_LEVEL=debug
# the responders must not start a broker themselves here: these tests stop and start it
MCPGW_BROKER_AUTOSTART=0
EOF
}

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

server_pid() {
	get /health
	json_eval "j.servers.find(s => s.name === '$1').pid"
}

@test "excludeTools hides a tool; the others of that server stay" {
	get /v1/tools
	assert_status 200
	assert_json "j.data.some(t => t.name === 'read_query')"
	assert_json "!j.data.some(t => t.name === 'append_insight')"
}

@test "a call slower than MCPGW_TOOL_TIMEOUT gets 504 tool_timeout after its retry, not a hang" {
	local t0=$SECONDS
	post /v1/tools '{"tool":"trigger-long-running-operation","arguments":{"duration":10,"steps":2}}'
	assert_status 504
	assert_json "j.error.code === 'tool_timeout'"
	# 1.5 s per attempt, 2 attempts
	[ $((SECONDS - t0)) -lt 8 ]
	post /v1/tools '{"tool":"echo","arguments":{"message":"still here"}}'
	assert_status 200
}

@test "a statement that outlives MCPGW_TOOL_TIMEOUT is stopped by the broker's cancellation: the SQLite server answers the next call at once" {
	local t0=$SECONDS t1
	# runs for MCP_SQLITE_TIMEOUT_MS (30 s) unless cancelled; read_query is safe to repeat: 2 attempts
	post /v1/tools '{"tool":"read_query","arguments":{"query":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"}}'
	assert_status 504
	assert_json "j.error.code === 'tool_timeout'"
	[ $((SECONDS - t0)) -lt 8 ]
	t1=$(date +%s%N)
	post /v1/tools '{"tool":"list_tables","arguments":{}}'
	assert_status 200
	# not behind the statement (up to 30 s): the server stopped it on notifications/cancelled
	[ $(( ($(date +%s%N) - t1) / 1000000 )) -lt 1500 ]
	grep -q 'cancelled by the client: stopped, not answered' "$MCPGW_STATE_DIR/broker.log"
}

@test "a call in flight when its server dies is retried on the restarted server" {
	local pid
	pid=$(server_pid everything)
	( sleep 0.5; kill -9 "$pid" ) &
	post /v1/tools '{"tool":"trigger-long-running-operation","arguments":{"duration":1,"steps":1}}'
	wait
	assert_status 200
	assert_json "j.content[0].text.includes('completed')"
	[ "$(server_pid everything)" != "$pid" ]
}

@test "responders reconnect after the broker itself restarts" {
	post /v1/tools '{"tool":"echo","arguments":{"message":"before"}}'
	assert_status 200
	# kill the broker alone: the responders' kept connection dies with it
	kill "$(cat "$MCPGW_STATE_DIR/broker.pid")"
	for _ in $(seq 50); do [ ! -e "$MCPGW_STATE_DIR/broker.pid" ] && break; sleep 0.1; done
	post /v1/tools '{"tool":"echo","arguments":{"message":"no broker"}}'
	assert_status 503
	assert_json "j.error.code === 'broker_unavailable'"
	(cd "$MCPGW_HOME" && exec "$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/broker.log" 2>&1 &)
	for _ in $(seq 100); do
		post /v1/tools '{"tool":"echo","arguments":{"message":"broker back"}}'
		[ "$HTTP_STATUS" = 200 ] && break
		sleep 0.1
	done
	assert_status 200
	assert_json "j.content[0].text === 'Echo: broker back'"
}

@test "a restarted broker with a changed config: responders never serve their old cached catalog" {
	get /v1/tools
	assert_status 200
	assert_json "j.data.some(t => t.name === 'write_query')"
	kill "$(cat "$MCPGW_STATE_DIR/broker.pid")"
	for _ in $(seq 50); do [ ! -e "$MCPGW_STATE_DIR/broker.pid" ] && break; sleep 0.1; done
	sed -i 's/"excludeTools": \["append_insight"\]/"excludeTools": ["append_insight", "write_query"]/' \
		"$MCPGW_HOME/servers_config.json"
	grep -q '"write_query"' "$MCPGW_HOME/servers_config.json"
	(cd "$MCPGW_HOME" && exec "$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/broker.log" 2>&1 &)
	for _ in $(seq 100); do
		get /health
		[ "$HTTP_STATUS" = 200 ] && json_eval "j.servers.every(s => s.state === 'ready')" | grep -q true && break
		sleep 0.1
	done
	get /v1/tools
	assert_status 200
	assert_json "j.data.some(t => t.name === 'read_query')"
	assert_json "!j.data.some(t => t.name === 'write_query')"
}

@test "stop leaves no MCP server process behind" {
	local pids
	get /health
	pids=$(json_eval "j.servers.map(s => s.pid).filter(p => p > 0).join(' ')")
	[ -n "$pids" ]
	sh "$MCPGW_ROOT/deploy/mcpgwctl" stop
	for p in $pids; do
		! kill -0 "$p" 2>/dev/null || { echo "MCP server $p still runs" >&2; return 1; }
		# nor anything in its process group
		! pgrep -g "$p" >/dev/null || { echo "process group $p still has members" >&2; return 1; }
	done
	[ ! -e "$MCPGW_STATE_DIR/broker.pid" ]
	[ ! -S "$MCPGW_STATE_DIR/broker.sock" ]
}

@test "a config error names the file, the key and what is wrong" {
	printf '{"mcpServers": {"bad": {"command": "x", "args": ["ok", 3]}}}' >"$BATS_TEST_TMPDIR/c.json"
	run env MCPGW_CONFIG="$BATS_TEST_TMPDIR/c.json" "$MCPGW_ROOT/broker/mcpgw-broker" --check-config
	[ "$status" -ne 0 ]
	[[ "$output" == *"c.json"*"mcpServers.bad.args[1]"*"string"* ]]
	printf '{"mcpServers": {"u": {"command": "${MCPGW_SURELY_UNSET_VAR}"}}}' >"$BATS_TEST_TMPDIR/c.json"
	run env MCPGW_CONFIG="$BATS_TEST_TMPDIR/c.json" "$MCPGW_ROOT/broker/mcpgw-broker" --check-config
	[ "$status" -ne 0 ]
	[[ "$output" == *"mcpServers.u.command"*"MCPGW_SURELY_UNSET_VAR"* ]]
}
