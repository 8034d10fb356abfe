#!/usr/bin/env bats
# bounds.bats: work per request is bounded, not only bytes (issue 15, finding 3): a body or an upstream answer of many small values is refused before it is parsed, a streamed answer's accumulated content and tool-call arguments are cut, and a responder's memory stays under 64 MB for the worst request within the limits and falls back after it.

load helpers
mcpgw_load_sim

# the SQLite server only; the default body limit (4 MiB) and value bounds; one process per responder,
# so that the one a request went to is the one measured
mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/test.db"] } } }
EOF
	printf 'MCPGW_RESPONDER_PROCS=chat:1,tools:1,embeddings:1\nMCPGW_LOG_LEVEL=debug\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model" "EMBEDDING_BASE_URL=$SIM_URL/v1"
}

setup_file() { mcpgw_setup_file_with_sim --no-validate; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# gen FILE KIND N [STRING_BYTES]: write a JSON text of N empty objects "{}" to FILE:
#   chat: a chat request whose "pad" holds them; messages: a streamed chat request of N / 3
#   messages instead (3 values each); tools: a POST /v1/tools call whose arguments hold
#   them; embeddings: an embeddings request with them; upstream: a chat.completion (an upstream
#   answer) that holds them; chunk: a stream chunk that holds them; script-*: a simulator script
#   of one turn whose body is that answer / chunk.
#   STRING_BYTES: a string of that many bytes beside them ("big")
gen() {
	node -e '
		const [file, kind, n, big] = process.argv.slice(1);
		const pad = "[" + Array(Number(n)).fill("{}").join(",") + "]";
		const s = JSON.stringify("x".repeat(Number(big || 0)));
		const msgs = `[{"role":"user","content":"hi"}]`;
		const answer = `{"id":"c1","object":"chat.completion","created":1,"model":"sim-model","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"pad":${pad}}`;
		const chunk = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"sim-model","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}],"pad":${pad}}`;
		const out = {
			chat: `{"model":"sim-model","messages":${msgs},"big":${s},"pad":${pad}}`,
			messages: `{"model":"sim-model","stream":true,"big":${s},"messages":[` + Array(Math.floor(Number(n) / 3)).fill(`{"role":"user","content":"x"}`).join(",") + "]}",
			tools: `{"tool":"list_tables","arguments":{"big":${s},"pad":${pad}}}`,
			embeddings: `{"model":"text-embedding-3-small","input":"hi","big":${s},"pad":${pad}}`,
			"script-upstream": JSON.stringify([{ garbage: answer }]),
			"script-chunk": JSON.stringify([{ garbage: chunk }]),
		}[kind];
		require("fs").writeFileSync(file, out);' "$@"
}

# sim_script_file FILE: the simulator's queue from a file (a script too long for an argument)
sim_script_file() { curl -sf -X POST --data-binary "@$1" "$SIM_URL/_sim/script" >/dev/null; }

# responders NAME: the pids of the cgi-bin/NAME.fcgi processes: those spawn-fcgi started
# (apache-proxy-fcgi: $MCPGW_STATE_DIR/fcgi-NAME.pid), else those under the web server (at any
# depth: Apache's mod_fcgid starts them from its process manager); fails when there is none
responders() {
	local exe="$MCPGW_ROOT/cgi-bin/$1.fcgi" todo pid kids found=

	if [ -s "$MCPGW_STATE_DIR/fcgi-$1.pid" ]; then
		for pid in $(cat "$MCPGW_STATE_DIR/fcgi-$1.pid"); do
			[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid" && found=1
		done
		[ -n "$found" ]
		return
	fi
	todo=$(frontend_pid) || return 1
	while [ -n "$todo" ]; do
		set -- $todo
		pid=$1
		shift
		todo="$*"
		kids=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
		todo="$todo $kids"
		todo=${todo# }
		[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid" && found=1
	done
	[ -n "$found" ] || { echo "no $1.fcgi process found" >&2; return 1; }
}

# status_kb PID FIELD: VmHWM or VmRSS of a process in kB
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }

# asked: how many chat completions the simulator was asked since its reset
asked() { sim_requests 'path=/v1/chat/completions' | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).length)'; }

# skip_if_asan: memory figures mean nothing under AddressSanitizer (make check-asan)
skip_if_asan() {
	! grep -qa __asan_init "$MCPGW_ROOT/cgi-bin/chat.fcgi" || skip "an AddressSanitizer build: its shadow memory is in every figure"
}

# ms: milliseconds since the epoch
ms() { date +%s%3N; }

@test "a request body of 1.4 million empty objects is refused with 400 json_too_many_values, quickly, on every endpoint" {
	local f="$BATS_TEST_TMPDIR/body.json" ep t0 took

	for ep in chat tools embeddings; do
		gen "$f" "$ep" 1398000
		[ "$(stat -c %s "$f")" -le 4194304 ] # within MCPGW_MAX_BODY_BYTES: only the count is over
		t0=$(ms)
		case $ep in
		chat) post /v1/chat/completions "@$f" ;;
		tools) post /v1/tools "@$f" ;;
		embeddings) post /v1/embeddings "@$f" ;;
		esac
		took=$(($(ms) - t0))
		assert_openai_error 400 json_too_many_values
		assert_json 'j.error.type === "invalid_request_error" && j.error.message.includes("MCPGW_MAX_JSON_VALUES") && j.error.message.includes("100000")'
		echo "# $ep: 400 in $took ms" >&3
		[ "$took" -lt 3000 ]
	done
	# nothing of it went upstream
	[ "$(asked)" = 0 ]
}

@test "an upstream answer of 1.4 million empty objects is a 502 upstream_response_too_large, not 2 GB" {
	local f="$BATS_TEST_TMPDIR/script.json" pid pids hwm

	sim_reset
	gen "$f" script-upstream 1398000
	sim_script_file "$f"
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	assert_openai_error 502 upstream_response_too_large
	assert_json 'j.error.message.includes("MCPGW_MAX_UPSTREAM_JSON_VALUES") && !j.error.message.includes(process.env.CANARY_UPSTREAMKEY || "no-canary")'
	# the same shape as one event of a stream
	gen "$f" script-chunk 1398000
	sim_script_file "$f"
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[[ "$BODY" == *'"code":"upstream_response_too_large"'* ]] || { echo "$BODY" | head -c 600 >&2; false; }
	[[ "$BODY" == *"MCPGW_MAX_UPSTREAM_JSON_VALUES"* ]]
	# the next request is served
	sim_reset
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"still here"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "sim: still here"'
	case ${MCPGW_FRONTEND:-lighttpd} in cgi | apache-cgi) return 0 ;; esac # a process per request
	pids=$(responders chat)
	for pid in $pids; do
		hwm=$(status_kb "$pid" VmHWM)
		echo "# chat.fcgi $pid: VmHWM $hwm kB" >&3
		[ "$hwm" -le 65536 ]
	done
}

@test "24 MB of streamed tool-call argument fragments are cut at MCPGW_MAX_ROUND_BYTES with a clear error and never sent upstream again" {
	local f="$BATS_TEST_TMPDIR/script.json"

	sim_reset
	# read_query (an MCP tool: its arguments would go back upstream in the next round), 24 MB of
	# arguments in 24,000 fragments; the default bound is 8 MiB
	node -e '
		const args = JSON.stringify({ query: "SELECT \u0027" + "x".repeat(24 * 1024 * 1024) + "\u0027" });
		require("fs").writeFileSync(process.argv[1], JSON.stringify([{ tool_calls: [{ name: "read_query", arguments: args, arg_chunks: 24000 }] }, { content: "must not be asked" }]));' "$f"
	sim_script_file "$f"
	HTTP_TIMEOUT=60 post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	assert_status 200 # the stream had begun
	[[ "$BODY" == *'"code":"upstream_response_too_large"'* ]] || { echo "$BODY" | tail -c 600 >&2; false; }
	[[ "$BODY" == *"MCPGW_MAX_ROUND_BYTES"* ]]
	[ "${#BODY}" -lt 1048576 ] # the client got the error, not the megabytes
	# one upstream request; the arguments were never sent back (the next turn is still queued)
	[ "$(asked)" = 1 ]
	BODY=$(curl -sf "$SIM_URL/_sim/script")
	assert_json 'j.queued === 1'
	# the same answer not streamed: a 502, and nothing more asked
	sim_reset
	sim_script_file "$f"
	HTTP_TIMEOUT=60 post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	assert_openai_error 502 upstream_response_too_large
	assert_json 'j.error.message.includes("MCPGW_MAX_ROUND_BYTES")'
	[ "$(asked)" = 1 ]
}

@test "peak RSS of a responder for the worst request within the limits is at most 64 MB, and falls back after it" {
	skip_if_asan
	case ${MCPGW_FRONTEND:-lighttpd} in cgi | apache-cgi) skip "plain CGI: a process per request, none kept to measure" ;; esac
	local f="$BATS_TEST_TMPDIR/body.json" ep prog pid pids hwm rss

	sim_reset
	for ep in chat messages tools embeddings; do
		# MCPGW_MAX_JSON_VALUES exactly (8 values around the pad; 100,000 = 5 + 3 * 33,331 + 2 around
		# the messages) and MCPGW_MAX_BODY_BYTES nearly
		case $ep in
		messages) gen "$f" messages 99993 3000000 ;;
		*) gen "$f" "$ep" 99992 3850000 ;;
		esac
		[ "$(stat -c %s "$f")" -le 4194304 ]
		prog=${ep/messages/chat}
		pids=$(responders "$prog")
		for pid in $pids; do
			echo 5 >"/proc/$pid/clear_refs" # VmHWM from here: this request's peak
		done
		case $ep in
		chat | messages) post /v1/chat/completions "@$f" ;;
		tools) post /v1/tools "@$f" ;;
		embeddings) post /v1/embeddings "@$f" ;;
		esac
		[ "$ep" = tools ] || assert_status 200
		[ "$ep" != tools ] || assert_json 'j.error?.code !== "json_too_many_values"'
		# the access line and the trim happen after the answer, on the thread that ran the request
		# (a loop's, for a chat): given back within 3 s, however busy the machine is
		for pid in $pids; do
			hwm=$(status_kb "$pid" VmHWM)
			for _ in $(seq 30); do
				rss=$(status_kb "$pid" VmRSS)
				[ "$rss" -gt $((hwm / 2)) ] || break
				sleep 0.1
			done
			echo "# $prog.fcgi $pid ($ep): VmHWM $hwm kB, VmRSS after $rss kB" >&3
			[ "$hwm" -le 65536 ]
			[ "$rss" -le $((hwm / 2)) ]
		done
	done
}

@test "an embeddings answer of more values than MCPGW_MAX_UPSTREAM_JSON_VALUES is passed on unparsed, and its memory is not kept" {
	skip_if_asan
	local f="$BATS_TEST_TMPDIR/body.json" out="$BATS_TEST_TMPDIR/answer.json" pid pids rss n

	sim_reset
	# 700 inputs of 1536 floats: about 1.08 million values, some 20 MB
	node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ model: "text-embedding-3-small", input: Array.from({ length: 700 }, (_, i) => "text " + i) }))' "$f"
	curl -s -m 60 -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$f" "$MCPGW_URL/v1/embeddings" >"$BATS_TEST_TMPDIR/status"
	[ "$(cat "$BATS_TEST_TMPDIR/status")" = 200 ]
	n=$(node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(j.data.length * j.data[0].embedding.length)' "$out")
	[ "$n" -gt 1000000 ]
	echo "# $(stat -c %s "$out") bytes, $n floats" >&3
	grep -q "embeddings: the answer holds more than 1000000 JSON values: passed on unparsed" "$MCPGW_STATE_DIR"/responders.log
	case ${MCPGW_FRONTEND:-lighttpd} in cgi | apache-cgi) return 0 ;; esac
	sleep 0.3
	pids=$(responders embeddings)
	for pid in $pids; do
		rss=$(status_kb "$pid" VmRSS)
		echo "# embeddings.fcgi $pid: VmRSS after $rss kB" >&3
		[ "$rss" -le 24576 ]
	done
}

@test "four concurrent worst chats: chat.fcgi peaks under 4 x 64 MB (was 2.5 GB) and gives it back after" {
	skip_if_asan
	case ${MCPGW_FRONTEND:-lighttpd} in cgi | apache-cgi) skip "plain CGI: a process per request, none kept to measure" ;; esac
	local f="$BATS_TEST_TMPDIR/body.json" pid pids hwm rss i

	sim_reset
	gen "$f" chat 99992 3850000
	pids=$(responders chat)
	for pid in $pids; do echo 5 >"/proc/$pid/clear_refs"; done
	for i in 1 2 3 4; do
		curl -s -m 60 -o "$BATS_TEST_TMPDIR/out.$i" -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary "@$f" "$MCPGW_URL/v1/chat/completions" >"$BATS_TEST_TMPDIR/status.$i" &
	done
	wait
	for i in 1 2 3 4; do [ "$(cat "$BATS_TEST_TMPDIR/status.$i")" = 200 ]; done
	sleep 0.5
	for pid in $pids; do
		hwm=$(status_kb "$pid" VmHWM)
		rss=$(status_kb "$pid" VmRSS)
		echo "# chat.fcgi $pid: VmHWM $hwm kB, VmRSS after $rss kB" >&3
		[ "$hwm" -le $((4 * 65536)) ]
		[ "$rss" -le 32768 ]
	done
}
