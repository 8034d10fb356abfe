#!/usr/bin/env bats
# tool_calls.bats: a real slow side-effecting MCP server (tests/sideeffect-server.mjs, the official SDK): a call that may have run is repeated only when its tool says that is safe, errors state the time waited; broken inputSchemas never break a chat (issue 13 cases 6 and 7); a server's bound on calls at once and its queue (issue 16).

load helpers
mcpgw_load_sim

# one server "side" with a 1 s call timeout, one "patient" (tools patient_*) with 8 s, one "bound" (tools bound_*)
# with 8 s that runs 2 calls at once and lets 2 wait; every tool run is a line of $MCPGW_HOME/journal
mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": {
  "side": { "command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/sideeffect-server.mjs", "$MCPGW_HOME/journal"],
            "timeout": 1000 },
  "patient": { "command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/sideeffect-server.mjs", "$MCPGW_HOME/journal", "patient_"],
            "timeout": 8000 },
  "bound": { "command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/sideeffect-server.mjs", "$MCPGW_HOME/journal", "bound_"],
            "timeout": 8000, "maxConcurrentCalls": 2, "maxQueuedCalls": 2 }
} }
EOF
	# the global tool timeout is shorter than patient's own: responders must wait as long as the broker may
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_TOOL_TIMEOUT=0.5\nMCPGW_TOOL_RETRIES=2\nMCPGW_BROKER_TIMEOUT=1\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# runs TOOL: how many times the server ran TOOL so far
runs() {
	grep -c "^$1 " "$MCPGW_HOME/journal" 2>/dev/null || true
}

# ms: milliseconds since the epoch
ms() { date +%s%3N; }

@test "a tool that commits, then answers after its server's timeout, runs once; the 504 says the time waited" {
	local before t0 took

	wait_server_state side ready
	before=$(runs commit)
	t0=$(ms)
	post /v1/tools '{"tool":"commit","arguments":{"note":"once"}}'
	took=$(($(ms) - t0))
	assert_openai_error 504 tool_timeout
	assert_json 'j.error.message.includes("not retried: it may have taken effect")'
	# the wait it states is the one the caller had: about the 1 s timeout, not three of them
	waited=$(json_eval 'Number(/\(waited (\d+) ms\)/.exec(j.error.message)[1])')
	[ "$waited" -ge 1000 ] && [ "$waited" -lt 2000 ]
	[ "$took" -ge 1000 ] && [ "$took" -lt 2500 ]
	# after the server's late answer: it ran once
	sleep 2.5
	[ "$(runs commit)" -eq $((before + 1)) ]
	grep -q "tools/call commit on side: MCP server 'side' did not answer tools/call 'commit' within its timeout of 1000 ms" \
		"$MCPGW_STATE_DIR/broker.log"
}

@test "a read-only tool that times out is retried, and the 504 says the whole wait" {
	local before

	before=$(runs peek)
	post /v1/tools '{"tool":"peek","arguments":{"note":"again","delay_ms":1500}}'
	assert_openai_error 504 tool_timeout
	assert_json 'j.error.message.includes("3 attempts of 1000 ms each timed out")'
	waited=$(json_eval 'Number(/\(waited (\d+) ms\)/.exec(j.error.message)[1])')
	[ "$waited" -ge 3000 ] && [ "$waited" -lt 4500 ]
	[ "$(runs peek)" -eq $((before + 3)) ]
	sleep 1.5 # its last late answer goes nowhere
}

@test "an inputSchema without a type is offered as an object schema: the chat completion works (case 6)" {
	sim_reset
	sim_script '[{"tool_calls":[{"name":"echo_notype","arguments":{"text":"hello"}}]},{"content":"done"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"echo hello"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "done"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 2'
	assert_json 'j[0].body.tools.find(t => t.function.name === "echo_notype").function.parameters.type === "object"'
	assert_json 'j[0].body.tools.find(t => t.function.name === "echo_notype").function.parameters.required[0] === "text"'
	assert_json 'j[1].body.messages.find(m => m.role === "tool").content.includes("hello")'
	# the tool whose schema cannot be function parameters is not offered; the others are
	assert_json '!j[0].body.tools.some(t => t.function.name === "scalar_args")'
	assert_json 'j[0].body.tools.some(t => t.function.name === "commit")'
}

@test "the same, streamed" {
	sim_reset
	sim_script '[{"tool_calls":[{"name":"echo_notype","arguments":{"text":"hi"}}]},{"content":"done"}]'
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"echo hi"}]}'
	assert_status 200
	printf '%s' "$BODY" | grep -q '"content":"done"'
	printf '%s' "$BODY" | grep -q '^data: \[DONE\]'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 2 && j[0].body.tools.every(t => t.function.parameters.type === "object")'
}

@test "GET /v1/tools?format=openai offers the same parameters as a chat completion: normalised, unofferable tools left out" {
	get '/v1/tools?format=openai'
	assert_status 200
	assert_json 'j.data.find(t => t.function.name === "echo_notype").function.parameters.type === "object"'
	assert_json 'j.data.find(t => t.function.name === "echo_notype").function.parameters.required[0] === "text"'
	assert_json '!j.data.some(t => t.function.name === "scalar_args")'
	get '/v1/tools/echo_notype?format=openai'
	assert_status 200
	assert_json 'j.function.parameters.type === "object"'
}

@test "a tool whose schema cannot be offered: one broker log line naming server and tool; still callable by name" {
	[ "$(grep -c "server side: tool scalar_args is not offered to models" "$MCPGW_STATE_DIR/broker.log")" -eq 1 ]
	grep -q 'its type is "string"' "$MCPGW_STATE_DIR/broker.log"
	! grep -q "tool echo_notype is not offered" "$MCPGW_STATE_DIR/broker.log"
	post /v1/tools '{"tool":"scalar_args","arguments":{}}'
	assert_status 200
	assert_json 'j.object === "tool.result" && j.tool === "scalar_args"'
}

@test "in a chat, the model asks for the slow commit: it runs once, and the model is told it may have run" {
	local before

	before=$(runs commit)
	sim_reset
	sim_script '[{"tool_calls":[{"name":"commit","arguments":{"note":"chat"}}]},{"content":"noted"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"commit chat"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "noted"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j[1].body.messages.find(m => m.role === "tool").content.includes("may have taken effect")'
	sleep 2
	[ "$(runs commit)" -eq $((before + 1)) ]
}

@test "a server's own timeout longer than MCPGW_TOOL_TIMEOUT: the responder waits for the broker's answer (no 504 while the tool runs)" {
	local before

	wait_server_state patient ready
	before=$(runs patient_commit)
	# 3.5 s: longer than MCPGW_TOOL_TIMEOUT x 3 attempts + MCPGW_BROKER_TIMEOUT, shorter than patient's 8 s
	post /v1/tools '{"tool":"patient_commit","arguments":{"note":"long","delay_ms":3500}}'
	assert_status 200
	assert_json 'j.object === "tool.result" && j.content[0].text === "commit: long"'
	[ "$(runs patient_commit)" -eq $((before + 1)) ]
	sim_reset
	sim_script '[{"tool_calls":[{"name":"patient_commit","arguments":{"note":"chat","delay_ms":3500}}]},{"content":"noted"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"commit chat"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "noted"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j[1].body.messages.find(m => m.role === "tool").content.includes("commit: chat")'
	[ "$(runs patient_commit)" -eq $((before + 2)) ]
}

# bcalls ARGS...: tests/broker-client.mjs on the broker's socket (as a responder talks to it); its JSON in BODY
bcalls() { BODY=$(node "$MCPGW_ROOT/tests/broker-client.mjs" "$MCPGW_STATE_DIR/broker.sock" "$@"); }

# most_at_once: the most bound_hold calls the server ever had running at once
most_at_once() { awk '$1 == "bound_hold" { if ($NF > m) m = $NF } END { print m + 0 }' "$MCPGW_HOME/journal"; }

# lighttpd_only: the broker's bound is the same whatever runs the responders: its tests run behind lighttpd only
lighttpd_only() { [ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || skip "the broker's bound on calls: behind lighttpd only"; }

@test "a server's bound, 2 at once and 2 waiting: of 5 calls at once the 5th is refused at once, the others run, 2 at a time" {
	local before

	lighttpd_only
	wait_server_state bound ready
	before=$(runs bound_hold)
	bcalls calls 5 bound_hold '{"delay_ms":1000}'
	assert_json 'j.calls.filter(c => c.text && c.text.startsWith("hold: ")).length === 4'
	assert_json 'j.calls.filter(c => c.error).length === 1'
	assert_json 'j.calls.find(c => c.error).error.data.reason === "busy"'
	assert_json 'j.calls.find(c => c.error).error.message.includes("is busy: 2 tools/call in flight (its maxConcurrentCalls) and 2 waiting (its maxQueuedCalls)")'
	# at once: before the first call ends
	assert_json 'j.calls.find(c => c.error).ms < 900'
	# the 2 that waited got their places when the first 2 ended
	assert_json 'j.calls.filter(c => c.text).map(c => c.ms).sort((a, b) => a - b)[2] >= 1900'
	[ "$(runs bound_hold)" -eq $((before + 4)) ]
	[ "$(most_at_once)" -eq 2 ]
	[ "$(server_field bound calls_in_flight)" = 0 ] && [ "$(server_field bound calls_queued)" = 0 ]
	[ "$(server_field bound max_concurrent_calls)" = 2 ] && [ "$(server_field bound max_queued_calls)" = 2 ]
}

@test "the bound full: POST /v1/tools gets 503 server_busy with Retry-After, a chat's model is told; calls of a client that left never run" {
	local before fill i t0 took

	lighttpd_only
	wait_server_state bound ready
	before=$(runs bound_hold)
	# the calls that fill the bound last 6 s: the refusals below must come while they run, on a
	# loaded machine too (two suites at once beside the sanitizer stage: 2.5 s were too few)
	node "$MCPGW_ROOT/tests/broker-client.mjs" "$MCPGW_STATE_DIR/broker.sock" calls 4 bound_hold '{"delay_ms":6000}' \
		>/dev/null 2>&1 &
	fill=$!
	for i in $(seq 50); do
		[ "$(server_field bound calls_queued)" = 2 ] && break
		sleep 0.1
	done
	[ "$(server_field bound calls_in_flight)" = 2 ] && [ "$(server_field bound calls_queued)" = 2 ]
	t0=$(ms)
	post /v1/tools '{"tool":"bound_hold","arguments":{"note":"http"}}'
	took=$(($(ms) - t0))
	assert_openai_error 503 server_busy
	assert_json 'j.error.type === "server_error" && j.error.message.includes("is busy")'
	printf '%s' "$HEADERS" | grep -qi '^Retry-After: 1'
	[ "$took" -lt 1000 ]
	sim_reset
	sim_script '[{"tool_calls":[{"name":"bound_hold","arguments":{"note":"chat"}}]},{"content":"later"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hold"}]}'
	assert_status 200
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j[1].body.messages.find(m => m.role === "tool").content.includes("is busy")'
	# the client leaves: its 2 waiting calls are dropped, its 2 running ones run on
	kill "$fill"
	wait "$fill" || true
	sleep 0.3
	[ "$(server_field bound calls_queued)" = 0 ]
	# once the 2 running calls ended, the 2 dropped ones would start at once if they were still there
	for i in $(seq 100); do
		[ "$(server_field bound calls_in_flight)" = 0 ] && break
		sleep 0.1
	done
	sleep 0.3
	[ "$(runs bound_hold)" -eq $((before + 2)) ]
	[ "$(server_field bound calls_in_flight)" = 0 ]
	[ "$(most_at_once)" -eq 2 ]
	grep -q "its client left after [0-9]* ms in the queue; dropped, not run" "$MCPGW_STATE_DIR/broker.log"
}
