#!/usr/bin/env bats
# faults2.bats: MCP servers that hang, write a huge line, close stdout, die or quit mid-call, the broker killed mid-call, an upstream that stalls, breaks or floods (issue 15): a clear error for the request affected, the next requests work, no zombie or orphan remains.

load helpers
mcpgw_load_sim

mcpgw_custom_config() {
	mkdir -p "$MCPGW_HOME/pids"
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{
  "mcpServers": {
    "fault": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs"],
              "env": {"FAULT_PID_DIR": "$MCPGW_HOME/pids"}},
    "other": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs", "b_"],
              "env": {"FAULT_PID_DIR": "$MCPGW_HOME/pids"}}
  }
}
JSON
	cat >"$MCPGW_HOME/.env" <<ENV
MCPGW_TOOL_TIMEOUT=2
MCPGW_TOOL_RETRIES=0
MCPGW_MAX_MESSAGE_BYTES=4194304
MCPGW_UPSTREAM_TIMEOUT=2
MCPGW_UPSTREAM_RETRIES=0
MCPGW_MAX_RESPONSE_BYTES=1048576
MCPGW_LOG_LEVEL=info
ENV
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

setup() {
	wait_server_state fault ready
	wait_server_state other ready
}

# ms_since T0: milliseconds since T0 (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# gone PID [PARENT]: PID has exited and was reaped by PARENT (a zombie whose parent is PARENT
# is not gone: PARENT did not wait for it); waits up to 5 s
gone() {
	local i stat

	for i in $(seq 100); do
		stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
		# a zombie another process (the container's init) will reap is gone for us
		if [ "${stat%% *}" = Z ] && [ -n "${2:-}" ]; then
			set -- "$1" "$2"
			[ "$(echo "$stat" | awk '{ print $2 }')" != "$2" ] && return 0
		fi
		sleep 0.05
	done
	echo "process $1 still there: $stat" >&2
	return 1
}

# echo_ok TOOL TEXT: TOOL echoes TEXT with 200
echo_ok() {
	post /v1/tools "{\"tool\":\"$1\",\"arguments\":{\"text\":\"$2\"}}"
	assert_status 200
	assert_json "j.content[0].text === 'Echo: $2'"
}

broker_pid() { cat "$MCPGW_STATE_DIR/broker.pid"; }

# bg_post PATH BODY OUT: POST in the background (its own files: post's are the test's), "STATUS BODY" into OUT
bg_post() {
	local code

	code=$(curl -s -m 30 -o "$3.body" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H "Cookie: mcpgw_session=$CANARY_COOKIE" --data-binary "$2" "$MCPGW_URL$1") || code="curl-failed-$?"
	echo "$code $(cat "$3.body")" >"$3"
}

@test "a server that never answers a call: 504 tool_timeout for that call only; the server and others go on" {
	local t0 pid round status body

	pid=$(server_field fault pid)
	# round 1 also has lighttpd start the second tools.fcgi process (on demand, ~1.5 s); round 2 measures
	for round in 1 2; do
		bg_post /v1/tools '{"tool":"hang","arguments":{}}' "$BATS_TEST_TMPDIR/hang" &
		sleep 0.3
		t0=$(date +%s%N)
		echo_ok b_echo "meanwhile"
		echo_ok echo "same server meanwhile"
		[ "$round" = 1 ] || [ "$(ms_since "$t0")" -lt 1000 ]
		wait
		read -r status body <"$BATS_TEST_TMPDIR/hang"
		BODY=$body HTTP_STATUS=$status assert_openai_error 504 tool_timeout
	done
	echo_ok echo "after"
	[ "$(server_field fault pid)" = "$pid" ]
}

@test "a server that answers with one line over MCPGW_MAX_MESSAGE_BYTES: a clear 503 for that call at once, the server restarted, others unharmed" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"bigline","arguments":{"mib":8}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('over MCPGW_MAX_MESSAGE_BYTES')"
	[ "$(ms_since "$t0")" -lt 1500 ] # not its 2 s timeout
	echo_ok b_echo "unharmed"
	wait_server_state fault ready
	echo_ok echo "after the big line"
	gone "$pid" "$(broker_pid)"
	grep -q "server fault: wrote a message over MCPGW_MAX_MESSAGE_BYTES (4194304 bytes); retrying in" "$MCPGW_STATE_DIR/broker.log"
	# a line within the limit still passes
	post /v1/tools '{"tool":"bigline","arguments":{"mib":1}}'
	assert_status 200
}

@test "a server that closes its stdout and keeps running: detected at once, killed, reaped and restarted" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"closeout","arguments":{}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('closed its stdout')"
	[ "$(ms_since "$t0")" -lt 1500 ] # not its 2 s timeout
	gone "$pid" "$(broker_pid)"
	wait_server_state fault ready
	[ "$(server_field fault pid)" != "$pid" ]
	echo_ok echo "after closing stdout"
}

@test "a server that dies mid-call: a clear 503 for that call, restarted at once, reaped" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"die","arguments":{}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('exited with status 3')"
	echo "# $BODY" >&3
	gone "$pid" "$(broker_pid)"
	wait_server_state fault ready
	echo_ok echo "after dying"
	[ "$(ms_since "$t0")" -lt 3000 ]
}

@test "a server that exits cleanly after serving is restarted at once, without a crash-loop backoff" {
	local pid i t0

	for i in 1 2 3; do
		pid=$(server_field fault pid)
		t0=$(date +%s%N)
		post /v1/tools '{"tool":"quit","arguments":{}}'
		assert_status 200
		assert_json "j.content[0].text === 'bye'"
		gone "$pid" "$(broker_pid)"
		wait_server_state fault ready
		echo_ok echo "after quitting $i"
		[ "$(ms_since "$t0")" -lt 1500 ]
	done
	[ "$(server_field fault retries)" = 0 ]
}

@test "the broker killed (SIGKILL) mid-call: a clear error for that call, the next request works, no MCP server left behind" {
	local bpid pids p

	bpid=$(broker_pid)
	pids="$(server_field fault pid) $(server_field other pid)"
	bg_post /v1/tools '{"tool":"hang","arguments":{}}' "$BATS_TEST_TMPDIR/hang" &
	sleep 0.5
	kill -KILL "$bpid"
	wait
	read -r status body <"$BATS_TEST_TMPDIR/hang"
	echo "# $status $body" >&3
	BODY=$body HTTP_STATUS=$status assert_json "typeof j.error.message === 'string' && typeof j.error.code === 'string'"
	[ "$status" -ge 500 ]
	for p in $pids; do gone "$p"; done
	# the next request starts a broker (MCPGW_BROKER_AUTOSTART) and is served
	HTTP_TIMEOUT=40 post /v1/tools '{"tool":"echo","arguments":{"text":"broker back"}}'
	assert_status 200
	[ "$(broker_pid)" != "$bpid" ]
	wait_server_state other ready
	echo_ok b_echo "back too"
}
