#!/usr/bin/env bats
# faults.bats: MCP servers that misbehave (floods of lines, results of the wrong JSON type) against the real broker: the request affected gets a clear error, the broker stays quick for everyone else (issue 15).

load helpers

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{
  "mcpServers": {
    "fault": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs"]},
    "other": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs", "b_"]},
    "slow": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs", "s_", "3000"]}
  }
}
JSON
	cat >"$MCPGW_HOME/.env" <<ENV
MCPGW_TOOL_TIMEOUT=20
MCPGW_TOOL_RETRIES=0
MCPGW_LOG_LEVEL=info
ENV
}

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

# broker_cpu: the broker's CPU time so far (utime + stime, clock ticks)
broker_cpu() {
	sed 's/.*) //' "/proc/$(cat "$MCPGW_STATE_DIR/broker.pid")/stat" | awk '{ print $12 + $13 }'
}

# flood_cpu SHAPE: the broker's CPU ticks for three calls of the flood tool (10 MiB of SHAPE each)
flood_cpu() {
	local c0 c1

	c0=$(broker_cpu)
	for _ in 1 2 3; do
		post /v1/tools "{\"tool\":\"flood\",\"arguments\":{\"shape\":\"$1\",\"mib\":10}}"
		assert_status 200 || return 1
		assert_json "j.content[0].text === 'flooded 10485760'" || return 1
	done
	c1=$(broker_cpu)
	echo $((c1 - c0))
}

@test "a flood of 10 MiB of one-byte lines costs the broker at most 3x what 10 MiB in one line does" {
	local lines one tck

	post /v1/tools '{"tool":"echo","arguments":{"text":"warm"}}'
	assert_status 200
	one=$(flood_cpu one)
	lines=$(flood_cpu lines)
	tck=$(getconf CLK_TCK)
	echo "# broker CPU for 3 x 10 MiB: one line ${one} ticks, one-byte lines ${lines} ticks (${tck}/s)" >&3
	# one tick of slack each way: /proc counts whole ticks
	[ "$lines" -le $((3 * (one + 1))) ]
}

@test "while one server floods, a call to another server answers at once" {
	local slow=0 t0 t1

	(for _ in 1 2 3 4; do
		curl -s -m 30 -o /dev/null -H 'Content-Type: application/json' \
			--data-binary '{"tool":"flood","arguments":{"shape":"lines","mib":10}}' "$MCPGW_URL/v1/tools"
	done) &
	for _ in $(seq 10); do
		t0=$(date +%s%N)
		post /v1/tools '{"tool":"b_echo","arguments":{"text":"still here"}}'
		t1=$(date +%s%N)
		assert_status 200
		assert_json "j.content[0].text === 'Echo: still here'"
		[ $(((t1 - t0) / 1000000)) -lt 1000 ] || slow=$((slow + 1))
		sleep 0.05
	done
	wait
	[ "$slow" = 0 ]
}

@test "a tools/call result of the wrong JSON type (number, null, string, array, true) is a clear 502 for that call only" {
	local as pid

	pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	for as in number null string array true; do
		post /v1/tools "{\"tool\":\"wrong\",\"arguments\":{\"as\":\"$as\"}}"
		assert_status 502
		assert_json "typeof j.error.message === 'string' && j.error.message.includes('not an object')"
		assert_json "typeof j.error.type === 'string' && 'param' in j.error && typeof j.error.code === 'string'"
		post /v1/tools '{"tool":"echo","arguments":{"text":"next"}}'
		assert_status 200
		assert_json "j.content[0].text === 'Echo: next'"
	done
	[ "$(cat "$MCPGW_STATE_DIR/broker.pid")" = "$pid" ] && kill -0 "$pid"
}

@test "a tools/call result object whose members have the wrong types never breaks the broker or the responder" {
	local as pid

	pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	for as in content_number content_items meta_string meta_array; do
		post /v1/tools "{\"tool\":\"wrong\",\"arguments\":{\"as\":\"$as\"}}"
		case $HTTP_STATUS in
		200) assert_json "j.object === 'tool.result' && j._meta['mcpgw/server'] === 'fault'" ;;
		*) assert_json "typeof j.error.message === 'string' && typeof j.error.code === 'string'" ;;
		esac
		post /v1/tools '{"tool":"echo","arguments":{"text":"next"}}'
		assert_status 200
	done
	[ "$(cat "$MCPGW_STATE_DIR/broker.pid")" = "$pid" ] && kill -0 "$pid"
}

@test "a tools/call error member of the wrong shape is a clear 502 for that call only" {
	local as

	for as in error_number error_string error_nocode error_codestring error_array; do
		post /v1/tools "{\"tool\":\"wrong\",\"arguments\":{\"as\":\"$as\"}}"
		assert_status 502
		assert_json "j.error.message.includes('malformed error') && typeof j.error.code === 'string'"
		post /v1/tools '{"tool":"echo","arguments":{"text":"next"}}'
		assert_status 200
	done
}

# broker_call LINE: send one JSON-RPC line to the broker's socket, print its answer line
broker_call() {
	python3 - "$MCPGW_STATE_DIR/broker.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while b"\n" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(buf.split(b"\n")[0].decode())
PY
}

# as_owner CMD...: CMD as the owner of $MCPGW_HOME (behind Apache, run as root, that is
# MCPGW_USER, who runs the broker and owns its files: a database file root created would lock it out)
as_owner() {
	local u

	u=$(stat -c %U "$MCPGW_HOME")
	if [ "$(id -u)" = 0 ] && [ "$u" != root ]; then
		setpriv --reuid="$u" --regid="$(id -gn "$u")" --clear-groups -- "$@"
	else
		"$@"
	fi
}

# restart_broker: stop the broker and start it again (the responders reconnect)
restart_broker() {
	stop_broker "$MCPGW_STATE_DIR"
	(cd "$MCPGW_HOME" && as_owner "$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/broker.log" 2>&1 &)
	for _ in $(seq 100); do [ -s "$MCPGW_STATE_DIR/broker.pid" ] && kill -0 "$(cat "$MCPGW_STATE_DIR/broker.pid")" 2>/dev/null && break; sleep 0.05; done
}

@test "cached registry rows of the wrong shape (no name, a name that is no string, no object, no JSON) are skipped" {
	local db="$MCPGW_STATE_DIR/mcpgw.db" pid

	wait_server_state slow ready
	stop_broker "$MCPGW_STATE_DIR"
	# a row without a name: the broker named it "slow_" (its server's prefix and "")
	# and crashed (strdup(NULL)) when that was called
	as_owner sqlite3 "$db" "UPDATE tools SET tool_json = '{\"description\":\"no name\"}' WHERE server = 'slow' AND mcp_name = 's_flood';
		INSERT INTO tools(server, mcp_name, exposed_name, position, tool_json) VALUES
		 ('slow', 'x6', 'x6', 15, '{\"name\":\"s_echo\"}');"
	restart_broker
	pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	wait_server_state fault ready
	[ "$(server_field slow state)" != ready ] # its cached tools are what the broker knows of it
	# straight to the broker's socket (a responder would wait for the live list first)
	run broker_call '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow_","arguments":{}}}'
	[[ $output == *'"Unknown tool: slow_"'* ]]
	kill -0 "$pid"
	post /v1/tools '{"tool":"s_echo","arguments":{"text":"from the cache"}}'
	assert_status 200
	assert_json "j.content[0].text === 'Echo: from the cache'"
	grep -q "server slow: its cached tools (registry) entry [0-9]* has no name; skipped" "$MCPGW_STATE_DIR/broker.log"
	# names that are no string or empty, rows that are no object, or no JSON: skipped, the good rows still used
	stop_broker "$MCPGW_STATE_DIR"
	as_owner sqlite3 "$db" "INSERT INTO tools(server, mcp_name, exposed_name, position, tool_json) VALUES
		 ('slow', 'x1', 'x1', 10, '{\"name\":7}'), ('slow', 'x2', 'x2', 11, '{\"name\":\"\"}'),
		 ('slow', 'x3', 'x3', 12, '5'), ('slow', 'x4', 'x4', 13, '[1]'), ('slow', 'x5', 'x5', 14, 'not json');"
	restart_broker
	pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	post /v1/tools '{"tool":"s_echo","arguments":{"text":"again"}}'
	assert_status 200
	assert_json "j.content[0].text === 'Echo: again'"
	kill -0 "$pid"
}

@test "the registry locked by another process: tool calls still answer at once, and the states are saved once it is free" {
	local db="$MCPGW_STATE_DIR/mcpgw.db" locker pid t0 t1 slow=0

	wait_server_state other ready
	wait_server_state fault ready
	as_owner /usr/bin/python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(6.5)  # past the 5 s a write waits for a lock: the writes meanwhile fail and are tried again' \
		"$db" >"$BATS_TEST_TMPDIR/locker.out" &
	locker=$!
	for _ in $(seq 100); do grep -q locked "$BATS_TEST_TMPDIR/locker.out" && break; sleep 0.05; done
	grep -q locked "$BATS_TEST_TMPDIR/locker.out"
	# a server dies: its state changes (each one a registry write) while the lock is held
	pid=$(server_field other pid)
	kill -9 "$pid"
	for _ in $(seq 8); do
		t0=$(date +%s%N)
		post /v1/tools '{"tool":"echo","arguments":{"text":"not waiting for the disk"}}'
		t1=$(date +%s%N)
		assert_status 200
		[ $(((t1 - t0) / 1000000)) -lt 1000 ] || { slow=$((slow + 1)); echo "# echo took $(((t1 - t0) / 1000000)) ms" >&3; }
		sleep 0.25
	done
	wait_server_state other ready
	post /v1/tools '{"tool":"b_echo","arguments":{"text":"back"}}'
	assert_status 200
	wait "$locker" # the lock goes with it
	[ "$slow" = 0 ]
	# nothing lost: once the lock is gone the new pid of the restarted server is saved
	pid=$(server_field other pid)
	for _ in $(seq 100); do
		[ "$(as_owner sqlite3 "$db" "SELECT pid FROM servers WHERE name = 'other'")" = "$pid" ] && break
		sleep 0.1
	done
	[ "$(as_owner sqlite3 "$db" "SELECT pid FROM servers WHERE name = 'other'")" = "$pid" ]
	grep -q "registry: saving server other: .*; tried again" "$MCPGW_STATE_DIR/broker.log"
}
