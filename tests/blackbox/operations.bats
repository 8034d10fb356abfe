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
