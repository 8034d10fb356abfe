#!/usr/bin/env bats
# chatloop.bats: chat.fcgi's event-loop driver (MCPGW_CHAT_DRIVER=loop, lib/http/chatloop.c): one
# chat.fcgi process with two kept workers streams fifty chat completions at once, on a handful of
# threads (the workers accept and hand each request over to the process's one loop thread: no
# thread per stream, the pool does not grow), and the slots come back. Behind lighttpd only (the
# driver is the responder's; the web server does not matter).

load helpers
mcpgw_load_sim

N=50

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/test.db"] } } }
JSON
	cat >"$MCPGW_HOME/.env" <<ENV
MCPGW_CHAT_DRIVER=loop
MCPGW_CHAT_THREADS=2
MCPGW_CAPACITY=100
MCPGW_RESPONDER_PROCS=chat:1
MCPGW_LOG_LEVEL=info
ENV
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() {
	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || return 0
	mcpgw_setup_file_with_sim
}
teardown_file() {
	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || return 0
	mcpgw_teardown_file_with_sim
}

setup() { [ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || skip "the chat driver is the responder's: behind lighttpd only"; }

# chat_pid: the one chat.fcgi process of the web server
chat_pid() {
	local p

	for p in $(ps -o pid= --ppid "$(frontend_pid)"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = chat.fcgi ] && { echo "$p"; return 0; }
	done
	return 1
}

@test "loop: $N streams at once on one chat.fcgi process with MCPGW_CHAT_THREADS=2 all stream, on a few threads, and the slots come back" {
	local script="" pid threads max=0 i code first total

	for i in $(seq $N); do script="$script${script:+,}{\"content\":\"a b c\",\"chunks\":3,\"chunk_delay_ms\":1000}"; done
	sim_script "[$script]"
	# the process up (lighttpd starts it), then its threads at rest
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"warm"}],"mcp":{"tools":false}}'
	sim_script "[$script]"
	pid=$(chat_pid)
	grep -q 'chat completions run on the event loop' "$MCPGW_STATE_DIR/responders.log"
	for i in $(seq $N); do
		curl -s -N -m 30 -o "$BATS_TEST_TMPDIR/s.$i.body" -w '%{http_code} %{time_starttransfer} %{time_total}\n' \
			-H 'Content-Type: application/json' -H "Authorization: Bearer $CANARY_AUTHORIZATION" \
			--data-binary "{\"model\":\"sim-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"s$i\"}],\"mcp\":{\"tools\":false}}" \
			"$MCPGW_URL/v1/chat/completions" >"$BATS_TEST_TMPDIR/s.$i" &
		echo $! >>"$BATS_TEST_TMPDIR/pids"
	done
	# while they stream (3 s each): the process's threads, sampled
	for _ in $(seq 20); do
		threads=$(ls "/proc/$pid/task" | wc -l)
		[ "$threads" -gt "$max" ] && max=$threads
		sleep 0.1
	done
	for p in $(cat "$BATS_TEST_TMPDIR/pids"); do wait "$p"; done
	for i in $(seq $N); do
		read -r code first total <"$BATS_TEST_TMPDIR/s.$i"
		[ "$code" = 200 ] || { echo "stream $i: HTTP $code" >&2; return 1; }
		grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/s.$i.body" || { echo "stream $i unfinished" >&2; return 1; }
		[ "$(grep -c '"content":"' "$BATS_TEST_TMPDIR/s.$i.body")" -ge 3 ] || { echo "stream $i: chunks missing" >&2; return 1; }
		# all at once: none waited for another (each takes 3 s; one after the other would take minutes)
		awk -v t="$total" 'BEGIN { exit !(t < 8) }' || { echo "stream $i: took $total s" >&2; return 1; }
	done
	# the same process served them all, on main, the 2 workers, the loop and the log's thread (and a few
	# of libraries'): not one per stream
	[ "$(chat_pid)" = "$pid" ] || { echo "chat.fcgi was restarted" >&2; return 1; }
	echo "chat.fcgi threads at most: $max" >&3
	[ "$max" -le 8 ] || { echo "chat.fcgi had $max threads for $N streams" >&2; return 1; }
	[ "$(grep -c 'endpoint=/v1/chat/completions status=200' "$MCPGW_STATE_DIR/responders.log")" -ge $((N + 1)) ]
	# the slots came back: none held by a lock
	ino=$(stat -c %i "$MCPGW_STATE_DIR/capacity.slots")
	! grep -q ":$ino " /proc/locks
}
