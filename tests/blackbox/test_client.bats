#!/usr/bin/env bats
# test_client.bats: tests/test_client.sh against a live gateway (lighttpd, responders, broker, the upstream simulator), and against none.

load helpers
mcpgw_load_sim

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

CLIENT="$MCPGW_ROOT/tests/test_client.sh"

@test "test_client.sh passes against a live gateway (URL and key by flags)" {
	run timeout 120 sh "$CLIENT" --url "$MCPGW_URL" --key sk-mcpgw-test
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"PASS  list models: "* ]]
	[[ "$output" == *"PASS  list tools: "* ]]
	[[ "$output" == *"PASS  run tool list_tables: "* ]]
	[[ "$output" == *"PASS  chat completion: sim: "* ]]
	[[ "$output" == *"PASS  streaming chat completion: "*" chunks, then [DONE]"* ]]
	# embeddings pass, or are skipped with a note while the gateway has no /v1/embeddings
	printf '%s\n' "$output" | grep -Eq '^(PASS  embeddings: |SKIP  embeddings: .*404)'
	[[ "$output" != *"FAIL"* ]]
	[ "$(printf '%s\n' "$output" | tail -n 1)" = "$(printf '%s\n' "$output" | grep -c '^PASS') passed, 0 failed" ]
}

@test "test_client.sh takes the URL from MCPGW_URL (a /v1 suffix is fine) and --model; the streamed answer is printed" {
	MCPGW_URL="$MCPGW_URL/v1" MCPGW_API_KEY=sk-mcpgw-test run timeout 120 sh "$CLIENT" --model gpt-4o
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"      sim: Introduce the main features of the Python language in one sentence."* ]]
	[ "$(json_eval 'j.filter(r => r.path === "/v1/chat/completions").at(-1).body.model' "$(sim_requests)")" = gpt-4o ]
}

@test "test_client.sh sends MCPGW_API_KEY as the client's bearer and never the upstream's OPENAI_API_KEY" {
	# pointed straight at the simulator, every request the client makes is recorded with its headers
	sim_reset
	OPENAI_API_KEY=sk-upstream-secret run timeout 120 sh "$CLIENT" --url "$SIM_URL"
	echo "$output"
	[ "$(json_eval 'j.length > 0' "$(sim_requests)")" = true ]
	[ "$(json_eval 'j.filter(r => JSON.stringify(r.headers).includes("sk-upstream-secret")).length' "$(sim_requests)")" = 0 ]
	[ "$(json_eval 'j.filter(r => r.headers.authorization !== undefined).length' "$(sim_requests)")" = 0 ]
	sim_reset
	OPENAI_API_KEY=sk-upstream-secret MCPGW_API_KEY=sk-client-key run timeout 120 sh "$CLIENT" --url "$SIM_URL"
	[ "$(json_eval 'j.every(r => r.headers.authorization === "Bearer sk-client-key")' "$(sim_requests)")" = true ]
}

@test "test_client.sh reports a failing step and exits non-zero" {
	run timeout 120 sh "$CLIENT" --url "$MCPGW_URL" --tool no_such_tool
	echo "$output"
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" | grep -q '^FAIL  run tool no_such_tool: HTTP 404'
	printf '%s\n' "$output" | tail -n 1 | grep -Eq '^[0-9]+ passed, 1 failed$'
}

@test "test_client.sh says clearly when the gateway is down" {
	port=$(free_port)
	run timeout 60 sh "$CLIENT" --url "http://127.0.0.1:$port"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot reach http://127.0.0.1:$port: is the gateway running? (make run)"* ]]
	[[ "$output" != *"PASS"* ]]
}

@test "test_client.sh without MCPGW_URL goes to MCPGW_LISTEN, the address mcpgwctl serves" {
	run timeout 120 env -u MCPGW_URL MCPGW_LISTEN="${MCPGW_URL#http://}" sh "$CLIENT"
	echo "$output"
	[[ "$output" == *"PASS  list tools: "* ]]
	port=$(free_port)
	run timeout 60 env -u MCPGW_URL MCPGW_LISTEN="127.0.0.1:$port" sh "$CLIENT"
	[[ "$output" == *"cannot reach http://127.0.0.1:$port"* ]]
}

@test "test_client.sh reads MCPGW_LISTEN from \$MCPGW_HOME/.env as mcpgwctl does: the environment wins; a bare PORT is 127.0.0.1:PORT" {
	local h="$BATS_TEST_TMPDIR/home" live="${MCPGW_URL#http://}" port
	mkdir -p "$h"
	port=$(free_port)
	printf '# the address make start serves\nMCPGW_LISTEN="%s"\n' "$live" >"$h/.env"
	run timeout 120 env -u MCPGW_URL -u MCPGW_LISTEN MCPGW_HOME="$h" sh "$CLIENT"
	echo "$output"
	[[ "$output" == *"PASS  list tools: "* ]]
	# the environment wins over .env
	run timeout 60 env -u MCPGW_URL MCPGW_LISTEN="127.0.0.1:$port" MCPGW_HOME="$h" sh "$CLIENT"
	[[ "$output" == *"cannot reach http://127.0.0.1:$port: is the gateway running?"* ]]
	# MCPGW_ENV_FILE names another file; a bare port there is 127.0.0.1's
	printf 'MCPGW_LISTEN=%s\n' "${live##*:}" >"$h/other.env"
	run timeout 120 env -u MCPGW_URL -u MCPGW_LISTEN MCPGW_HOME="$h" MCPGW_ENV_FILE=other.env sh "$CLIENT"
	echo "$output"
	[[ "$output" == *"PASS  list tools: "* ]]
}
