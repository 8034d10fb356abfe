#!/usr/bin/env bats
# broker_memory.bats: the broker's peak RSS (VmHWM) for the worst requests within its default limits stays at 64 MB or less (issue 15): the largest catalog listed by many clients at once, a tool result and tool arguments near MCPGW_MAX_MESSAGE_BYTES.

load helpers
mcpgw_load_sim

# The default limits (no MCPGW_MAX_MESSAGE_BYTES etc. in the .env): messages of 16 MiB, 4 MiB of
# tools a server, the catalog within 7/8 of 16 MiB (14 MiB). "a" and "c" list 1000 tools of 4 KB
# (long strings, ~4.1 MB each); "b" lists 4096 tools (MCPGW_SERVER_MAX_TOOLS) whose schemas hold 38
# properties each (~4 MB of small JSON values: what costs a parsed tree most); "d" 450 more tools of
# 4 KB, so that the catalog comes near its bound; "f" (tests/fault-server.mjs) answers the calls,
# "g" the same with every tool annotated readOnlyHint (a call the broker may send again).
mcpgw_custom_config() {
	local node big="$MCPGW_ROOT/tests/bigtools-server.mjs"

	node=$(command -v node)
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": {
  "a": { "command": "$node", "args": ["$big", "a", "1000", "4000"] },
  "b": { "command": "$node", "args": ["$big", "b", "4096", "10", "0", "38"] },
  "c": { "command": "$node", "args": ["$big", "c", "1000", "4000", "250"] },
  "d": { "command": "$node", "args": ["$big", "d", "450", "4000"] },
  "f": { "command": "$node", "args": ["$MCPGW_ROOT/tests/fault-server.mjs"] },
  "g": { "command": "$node", "args": ["$MCPGW_ROOT/tests/fault-server.mjs", "safe_"], "env": { "FAULT_READONLY": "1" } }
} }
EOF
	# MCPGW_BROKER_TIMEOUT: the broker reads catalogs of thousands of tools here; under the
	# sanitizer build, beside other suites, it answered mcpgwctl's status query after the default 5 s
	printf 'MCPGW_LOG_LEVEL=info\nMCPGW_BROKER_TIMEOUT=30\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() {
	mcpgw_setup_file_with_sim || return 1
	for s in a b c d f g; do wait_server_state "$s" ready 60 || return 1; done
}
teardown_file() { mcpgw_teardown_file_with_sim; }

LIMIT_KB=65536 # 64 MB

broker_pid() { cat "$MCPGW_STATE_DIR/broker.pid"; }
# status_kb FIELD: VmHWM or VmRSS of the broker in kB
status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$(broker_pid)/status"; }
# peak_reset: VmHWM from here is the next case's peak
peak_reset() { echo 5 >"/proc/$(broker_pid)/clear_refs"; }
# peak_check WHAT: print the broker's VmHWM since peak_reset (and its RSS now); at most LIMIT_KB
peak_check() {
	local hwm rss

	hwm=$(status_kb VmHWM)
	rss=$(status_kb VmRSS)
	echo "# broker, $1: VmHWM $hwm kB, VmRSS after $rss kB" >&3
	[ "$hwm" -le "$LIMIT_KB" ] || { echo "broker VmHWM $hwm kB > $LIMIT_KB kB ($1)" >&2; return 1; }
}
# bclient ARGS...: tests/broker-client.mjs on the broker's socket; its JSON summary in BODY
bclient() { BODY=$(node "$MCPGW_ROOT/tests/broker-client.mjs" "$MCPGW_STATE_DIR/broker.sock" "$@"); }

skip_if_asan() {
	! grep -qa __asan_init "$MCPGW_ROOT/broker/mcpgw-broker" || skip "an AddressSanitizer build: its shadow memory is in every figure"
}

@test "the catalog is near its bound: every server listed, 14 MiB within 7/8 of MCPGW_MAX_MESSAGE_BYTES; building it peaked at 64 MB or less" {
	skip_if_asan
	bclient list 1
	echo "# catalog: $(json_eval 'j.bytes[0]') bytes, $(json_eval 'j.tools[0]') tools" >&3
	assert_json 'j.tools[0] === 1000 + 4096 + 1000 + 450 + 8 + 8'
	assert_json 'j.bytes[0] > 13 * 1048576 && j.bytes[0] <= 16 * 1048576 / 8 * 7 + 4096'
	! grep -q 'MCPGW_SERVER_MAX_TOOLS\|MCPGW_MAX_MESSAGE_BYTES' "$MCPGW_STATE_DIR/broker.log"
	peak_check "since its start (the catalog built from five servers)"
}

@test "16 clients list the whole catalog at once, reading slowly, with GET /v1/tools and a chat beside them: VmHWM at 64 MB or less" {
	local i pids=""

	skip_if_asan
	peak_reset
	bclient list 16 1500 &
	pids="$pids $!"
	for i in 1 2 3; do
		curl -s -m 60 -o "$BATS_TEST_TMPDIR/tools$i.json" -w '%{http_code}\n' "$MCPGW_URL/v1/tools" >"$BATS_TEST_TMPDIR/tools$i.status" &
		pids="$pids $!"
	done
	sim_reset
	sim_script '[{"content":"done"}]'
	HTTP_TIMEOUT=60 post /v1/chat/completions '{"model":"sim-model","mcp":{"servers":["f"]},"messages":[{"role":"user","content":"hi"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "done"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 1 && j[0].body.tools.some(t => t.function.name === "echo")'
	# shellcheck disable=SC2086
	wait $pids
	for i in 1 2 3; do
		[ "$(cat "$BATS_TEST_TMPDIR/tools$i.status")" = 200 ]
		[ "$(json_eval 'j.data.length' "$(cat "$BATS_TEST_TMPDIR/tools$i.json")")" -eq 6562 ]
	done
	peak_check "16 slow clients listing the catalog, 3 GET /v1/tools and a chat"
}

@test "16 clients list the whole catalog at once and read it at once: each gets all of it" {
	skip_if_asan
	peak_reset
	bclient list 16
	assert_json 'j.tools.every(n => n === 6562) && Math.max(...j.bytes) - Math.min(...j.bytes) <= 1' # ids 1 to 16
	peak_check "16 clients listing the catalog"
}

@test "a tools/call whose result is near MCPGW_MAX_MESSAGE_BYTES (15.9 MiB) is answered whole: VmHWM at 64 MB or less" {
	skip_if_asan
	peak_reset
	bclient call bigline '{"mib":15.9}'
	assert_json 'j.error === null && j.text === Math.floor(15.9 * 1048576) && j.server === "f" && j.id === "c1"'
	assert_json 'j.bytes > 15.9 * 1048576 && j.bytes <= 16 * 1048576 + 4096'
	peak_check "a tool result of 15.9 MiB"
}

@test "a tools/call whose arguments are near MCPGW_MAX_MESSAGE_BYTES (15.5 MiB, echoed back): VmHWM at 64 MB or less" {
	skip_if_asan
	peak_reset
	bclient echo echo $((15 * 1048576 + 524288))
	assert_json 'j.error === null && j.text === "Echo: ".length + 15.5 * 1048576 && j.server === "f"'
	peak_check "tool arguments of 15.5 MiB, echoed back"
}

@test "a tools/call of a tool safe to repeat whose arguments are near MCPGW_MAX_MESSAGE_BYTES (15.5 MiB, echoed back): VmHWM at 64 MB or less (arguments over 1 MiB are not kept for a second attempt)" {
	skip_if_asan
	peak_reset
	bclient echo safe_echo $((15 * 1048576 + 524288))
	assert_json 'j.error === null && j.text === "Echo: ".length + 15.5 * 1048576 && j.server === "g"'
	peak_check "tool arguments of 15.5 MiB to a tool safe to repeat, echoed back"
}

@test "after the big messages the broker gives its memory back and still serves" {
	skip_if_asan
	bclient call echo '{"text":"small"}'
	assert_json 'j.error === null && j.text === "Echo: small".length'
	assert_still_serving
	echo "# broker VmRSS at rest after the big messages: $(status_kb VmRSS) kB" >&3
}
