#!/usr/bin/env bats
# frontend.bats: what each web server front end (MCPGW_FRONTEND) must get right: path dispatch, streaming, starting a missing broker.
#
# check.sh runs this file behind lighttpd (FastCGI) and again behind every
# other front end (Apache mod_fcgid, mod_proxy_fcgi + spawn-fcgi, plain CGI).

load helpers
mcpgw_load_sim

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"] } } }
EOF
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_TOOL_TIMEOUT=10\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# brokers: how many live mcpgw-broker processes serve this test's state directory
brokers() {
	local p n=0

	for p in $(pgrep -x mcpgw-broker); do
		[ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1)" = Z ] && continue
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "MCPGW_STATE_DIR=$MCPGW_STATE_DIR" && n=$((n + 1))
	done
	echo "$n"
}

# kill_broker: SIGKILL the broker and delete its socket: nothing serves the state directory
kill_broker() {
	local pid

	pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]; do
		sleep 0.05
	done
	rm -f "$MCPGW_STATE_DIR/broker.sock"
	[ "$(brokers)" = 0 ]
	echo "$pid"
}

@test "paths: /v1/tools/{name} (percent-encoded, with a query), /v1/tools/, /v1/models/{id}, HEAD /health" {
	get /v1/tools/read%5Fquery
	assert_status 200
	assert_json 'j.object === "tool" && j.name === "read_query" && j.server === "sqlite"'
	get '/v1/tools/describe_table?format=openai'
	assert_status 200
	assert_json 'j.type === "function" && j.function.name === "describe_table"'
	get /v1/tools/
	assert_status 200
	assert_json 'j.object === "list" && j.data.length === 6'
	get /v1/tools/no_such_tool
	assert_openai_error 404 tool_not_found
	get /v1/models/sim-model
	assert_status 200
	assert_json 'j.object === "model" && j.id === "sim-model"'
	get /v1/models/no-such-model
	assert_openai_error 404 model_not_found
	[ "$(curl -s -m 10 -o /dev/null -I -w '%{http_code}' "$MCPGW_URL/health")" = 200 ]
}

@test "a chat stream reaches the client chunk by chunk, not at the end" {
	local out="$BATS_TEST_TMPDIR/stream" t0 first done_at

	sim_reset
	sim_script '[{"content":"one two three four five","chunks":5,"chunk_delay_ms":300}]'
	t0=$(date +%s%3N)
	# each line with the time it arrived (ms)
	curl -sN -m 20 -H 'Content-Type: application/json' \
		-d '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"count"}]}' \
		"$MCPGW_URL/v1/chat/completions" | while IFS= read -r line; do printf '%s %s\n' "$(date +%s%3N)" "$line"; done >"$out"
	grep -q ' data: \[DONE\]' "$out" || { cat "$out" >&2; return 1; }
	first=$(grep -m 1 '"content":"[^"]' "$out" | cut -d' ' -f1)
	done_at=$(grep -m 1 ' data: \[DONE\]' "$out" | cut -d' ' -f1)
	[ "$(grep -c '"content":"[^"]' "$out")" -ge 4 ]
	# the upstream takes ~1.2 s between its first and last chunk: so must the client's copy
	echo "# first content after $((first - t0)) ms, [DONE] after $((done_at - t0)) ms" >&3
	[ $((done_at - first)) -ge 900 ] || { echo "buffered: first content at $((first - t0)) ms, [DONE] at $((done_at - t0)) ms" >&2; return 1; }
}

@test "clients that stall in their request bodies hold nothing else: chats and tool calls beside them are answered at once" {
	local host=${MCPGW_LISTEN%:*} port=${MCPGW_LISTEN##*:} stall t0 i

	# 12 requests (6 chats, 6 tool calls) that send a tenth of their bodies, then nothing for 20 s:
	# a front end that streams bodies on (mod_proxy_fcgi) hands them to workers at once; each
	# must hold its own worker only, never a process's turn to accept (lib/http/responder.h)
	node -e '
		const net = require("net");
		for (let i = 0; i < 12; i++) {
			const path = i % 2 ? "/v1/tools" : "/v1/chat/completions";
			const s = net.connect(+process.argv[2], process.argv[1], () => {
				s.write("POST " + path + " HTTP/1.1\r\nHost: " + process.argv[1] + ":" + process.argv[2] +
					"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"model\":\"sim");
			});
			s.on("error", () => {});
		}
		setTimeout(() => process.exit(0), 20000);
	' "$host" "$port" &
	stall=$!
	sleep 1
	sim_reset
	t0=$(date +%s%3N)
	for i in 1 2 3 4 5 6; do
		post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
		assert_status 200
		post /v1/tools '{"tool":"list_tables","arguments":{}}'
		assert_status 200
	done
	echo "# 6 chats and 6 tool calls beside 12 stalled bodies: $(($(date +%s%3N) - t0)) ms" >&3
	kill "$stall" 2>/dev/null || true
	wait "$stall" 2>/dev/null || true
	[ $(($(date +%s%3N) - t0)) -lt 10000 ]
}

@test "no broker (socket deleted, broker killed): the next request starts one and succeeds" {
	local old new

	post /v1/tools '{"tool":"list_tables"}'
	assert_status 200
	old=$(kill_broker)
	post /v1/tools '{"tool":"create_table","arguments":{"query":"CREATE TABLE restarted (id INTEGER)"}}'
	assert_status 200
	new=$(cat "$MCPGW_STATE_DIR/broker.pid")
	[ "$new" != "$old" ] && kill -0 "$new"
	[ -S "$MCPGW_STATE_DIR/broker.sock" ]
	[ "$(brokers)" = 1 ]
	get /health
	assert_status 200
	assert_json "j.broker.pid === $new && j.servers[0].state === 'ready'"
}

@test "no broker, many requests at once: exactly one broker is started, every request succeeds" {
	local i pids=""

	kill_broker >/dev/null
	for i in 1 2 3 4 5 6; do
		curl -s -m 30 -o "$BATS_TEST_TMPDIR/r$i" -w '%{http_code}' -H 'Content-Type: application/json' \
			-d '{"tool":"list_tables"}' "$MCPGW_URL/v1/tools" >"$BATS_TEST_TMPDIR/s$i" &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	for i in 1 2 3 4 5 6; do
		[ "$(cat "$BATS_TEST_TMPDIR/s$i")" = 200 ] || { echo "request $i: $(cat "$BATS_TEST_TMPDIR/s$i") $(cat "$BATS_TEST_TMPDIR/r$i")" >&2; return 1; }
	done
	[ "$(brokers)" = 1 ]
}

@test "no broker: the chat tool loop starts one too, and the tool result reaches the model" {
	kill_broker >/dev/null
	sim_reset
	sim_script '[{"tool_calls":[{"id":"call_fe_1","name":"list_tables","arguments":{}}]},{"content":"tables listed"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"which tables?"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "tables listed"'
	[ "$(brokers)" = 1 ]
	# the second upstream request carries the tool's real answer (the table of the test before)
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 2 && j[1].body.messages.some(m => m.role === "tool" && m.tool_call_id === "call_fe_1" && m.content.includes("restarted"))'
}
