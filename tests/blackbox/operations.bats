#!/usr/bin/env bats
# operations.bats: what operators see (issue 14, case 7): one access-log line per request at the default level, the audit table of tool calls, GET /metrics.

load helpers
mcpgw_load_sim

# the default servers, at the default log level (no MCPGW_LOG_LEVEL)
mcpgw_custom_config() {
	mcpgw_write_config
	sed -i '/^MCPGW_LOG_LEVEL=/d' "$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# access_lines ENDPOINT: the access-log lines of ENDPOINT so far
access_lines() {
	grep -h " INFO access .* endpoint=$1 " "$MCPGW_STATE_DIR"/*.log 2>/dev/null || true
}

@test "a chat with a tool round writes one access-log line at the default level: model, tools, rounds, tokens, status" {
	local before after line

	wait_server_state sqlite ready
	before=$(access_lines /v1/chat/completions | wc -l)
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT 41+1 AS secret_answer"}}],"usage":{"prompt_tokens":11,"completion_tokens":3}},{"content":"done","usage":{"prompt_tokens":20,"completion_tokens":4}}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"canary-message-text"}]}'
	assert_status 200
	sleep 0.2
	after=$(access_lines /v1/chat/completions | wc -l)
	[ "$after" -eq $((before + 1)) ]
	line=$(access_lines /v1/chat/completions | tail -n 1)
	echo "$line"
	[[ "$line" == *" method=POST "* ]]
	[[ "$line" == *" status=200 "* ]]
	[[ "$line" == *" caller=- "* ]]
	[[ "$line" == *" model=sim-model "* ]]
	[[ "$line" == *" rounds=1 "* ]]
	[[ "$line" == *" tools=1 "* ]]
	[[ "$line" == *" tool_names=sqlite.read_query "* ]]
	[[ "$line" == *" prompt_tokens=31 completion_tokens=7"* ]]
	[[ "$line" =~ \ duration_ms=[0-9]+\  ]]
	[[ "$line" =~ \ bytes_out=[1-9][0-9]*\  ]]
	# never content: not the user's message, not the tool's arguments
	! grep -rq "canary-message-text\|secret_answer" "$MCPGW_STATE_DIR"/*.log
}

@test "POST /v1/tools and an unrouted request each write one access-log line" {
	local line

	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT 1"}}'
	assert_status 200
	sleep 0.2
	line=$(access_lines /v1/tools | grep "method=POST" | tail -n 1)
	echo "$line"
	# the server is named when the worker's catalog knows it (no extra round trip to learn it)
	[[ "$line" == *" status=200 "* && "$line" == *" tools=1 "* && "$line" =~ \ tool_names=(sqlite\.)?read_query\  ]]
	get /v1/no-such-thing
	assert_status 404
	sleep 0.2
	grep -h " INFO access .* endpoint=- status=404 " "$MCPGW_STATE_DIR"/*.log | grep -q .
}

# audit_rows WHERE: the audit table's rows matching WHERE ("server|tool|outcome|args_bytes|result_bytes|payloads")
audit_rows() {
	sqlite3 -separator '|' "$MCPGW_STATE_DIR/state.db" \
		"SELECT server, tool, outcome, args_bytes, result_bytes, arguments IS NOT NULL OR result IS NOT NULL, caller FROM audit WHERE $1 ORDER BY id" 2>/dev/null
}

# wait_audit N WHERE: until N rows match (the broker writes in batches), at most 5 s
wait_audit() {
	local i=0

	while [ "$(audit_rows "$2" | wc -l)" -lt "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(audit_rows "$2" | wc -l)" -ge "$1" ]
}

@test "the audit table gets a row per tool call, with sizes and no payloads by default" {
	local before args

	before=$(audit_rows "tool = 'read_query'" | wc -l)
	args='{"query":"SELECT 7 AS audit_canary"}'
	post /v1/tools "{\"tool\":\"read_query\",\"arguments\":$args}"
	assert_status 200
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT * FROM no_such_table"}}'
	wait_audit $((before + 2)) "tool = 'read_query'"
	audit_rows "tool = 'read_query'" | tail -n 2 >"$BATS_TEST_TMPDIR/rows"
	cat "$BATS_TEST_TMPDIR/rows"
	# server|tool|outcome|args_bytes|result_bytes|payloads|caller: anonymous callers have the id ""
	IFS='|' read -r srv tool outcome abytes rbytes payloads caller <"$BATS_TEST_TMPDIR/rows"
	[ "$srv" = sqlite ] && [ "$tool" = read_query ] && [ "$outcome" = ok ]
	[ "$abytes" -eq ${#args} ] && [ "$rbytes" -gt 0 ] && [ "$payloads" = 0 ] && [ -z "$caller" ]
	tail -n 1 "$BATS_TEST_TMPDIR/rows" | grep -Eq '^sqlite\|read_query\|(is_error|error)\|[0-9]+\|[0-9]+\|0\|$'
	# no payload anywhere in the store
	! grep -aq audit_canary "$MCPGW_STATE_DIR"/state.db*
	# the chat's tool round of the first test is there too
	[ "$(audit_rows "tool = 'read_query'" | wc -l)" -ge 3 ]
}
