#!/usr/bin/env bats
# chatloop.bats: chat.fcgi's event-loop driver (MCPGW_CHAT_DRIVER=loop, lib/http/chatloop.c): one
# chat.fcgi process with two kept workers streams fifty chat completions at once, on a handful of
# threads (the workers accept and hand each request over to the process's loop thread, one here,
# MCPGW_CHAT_LOOPS=1, so that every stream shares it: no thread per stream, the pool does not grow),
# and the slots come back. The other suites run with the default, a loop per CPU. Behind lighttpd only (the
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
MCPGW_CHAT_LOOPS=1
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

# slow_chat FILE KBS: a streamed chat completion read at most KBS KB a second (a pause after each
# chunk read), its parsed answer in FILE: "STATUS CONTENT_BYTES DONE(0|1)"; gives up after 60 s
slow_chat() {
	exec node -e '
		const http = require("http"), fs = require("fs");
		const [url, auth, out, kbs] = process.argv.slice(1);
		let body = "";
		setTimeout(() => process.exit(2), 60000).unref();
		const req = http.request(url, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${auth}` } }, (res) => {
			res.setEncoding("utf8");
			res.on("data", (c) => {
				body += c;
				res.pause();
				setTimeout(() => res.resume(), (Buffer.byteLength(c) * 1000) / (Number(kbs) * 1024));
			});
			res.on("end", () => {
				let n = 0, done = 0;
				for (const l of body.split("\n")) {
					if (l === "data: [DONE]") done = 1;
					else if (l.startsWith("data: ")) n += (JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? "").length;
				}
				fs.writeFileSync(out, `${res.statusCode} ${n} ${done}\n`);
			});
		});
		req.on("error", (e) => { console.error(e.message); process.exit(1); });
		req.end(JSON.stringify({ model: "sim-model", stream: true, messages: [{ role: "user", content: "big" }], mcp: { tools: false } }));
	' "$MCPGW_URL/v1/chat/completions" "$CANARY_AUTHORIZATION" "$1" "$2"
}

@test "loop: $N streams at once on one chat.fcgi process with MCPGW_CHAT_THREADS=2 all stream, on a few threads, and the slots come back" {
	local script="" pid threads max=0 i code first total

	for i in $(seq $N); do script="$script${script:+,}{\"content\":\"a b c\",\"chunks\":3,\"chunk_delay_ms\":1000}"; done
	sim_script "[$script]"
	# the process up (lighttpd starts it), then its threads at rest
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"warm"}],"mcp":{"tools":false}}'
	sim_script "[$script]"
	pid=$(chat_fcgi_pid)
	grep -q 'chat completions run on 1 event loop ' "$MCPGW_STATE_DIR/responders.log"
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
	[ "$(chat_fcgi_pid)" = "$pid" ] || { echo "chat.fcgi was restarted" >&2; return 1; }
	echo "chat.fcgi threads at most: $max" >&3
	[ "$max" -le 8 ] || { echo "chat.fcgi had $max threads for $N streams" >&2; return 1; }
	[ "$(grep -c 'endpoint=/v1/chat/completions status=200' "$MCPGW_STATE_DIR/responders.log")" -ge $((N + 1)) ]
	# the slots came back
	capacity_idle
}

@test "loop: a client that reads slowly holds back only its own stream (its upstream paused): another stream on the process runs at once meanwhile, and the slow one arrives whole" {
	local slow t0 ms

	# 1 MiB of content in 1024 chunks (about 1.3 MB of SSE, past the 256 KB buffer and the sockets'), then a short one
	node -e 'process.stdout.write(JSON.stringify([{ content: "x".repeat(1 << 20), chunks: 1024 }, { content: "fast one", chunks: 2 }]))' \
		>"$BATS_TEST_TMPDIR/script.json"
	curl -sf -X POST --data-binary "@$BATS_TEST_TMPDIR/script.json" "$SIM_URL/_sim/script" >/dev/null
	(slow_chat "$BATS_TEST_TMPDIR/slow" 256) &
	slow=$!
	sleep 1.5
	t0=$(date +%s%N)
	curl -s -N -m 10 -o "$BATS_TEST_TMPDIR/fast.body" -w '%{http_code}' \
		-H 'Content-Type: application/json' -H "Authorization: Bearer $CANARY_AUTHORIZATION" \
		--data-binary '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"fast"}],"mcp":{"tools":false}}' \
		"$MCPGW_URL/v1/chat/completions" >"$BATS_TEST_TMPDIR/fast"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$(cat "$BATS_TEST_TMPDIR/fast")" = 200 ]
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/fast.body"
	kill -0 "$slow" || { echo "the slow stream ended before the fast one: nothing was held back" >&2; return 1; }
	[ "$ms" -lt 2000 ] || { echo "the fast stream took $ms ms beside the slow one" >&2; return 1; }
	wait "$slow"
	read -r code n done <"$BATS_TEST_TMPDIR/slow"
	[ "$code" = 200 ] && [ "$n" = 1048576 ] && [ "$done" = 1 ] || { echo "slow stream: $(cat "$BATS_TEST_TMPDIR/slow")" >&2; return 1; }
}
