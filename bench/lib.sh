# bench/lib.sh: what bench/run.sh and bench/ab.sh share: processes, measuring, the upstream simulator, mcpgwctl start-up.
#
# Sourced (bash), not run. The caller sets ROOT (this checkout), WORK (its temporary
# directory, short: unix socket paths must fit in sun_path), DUR and WARM (seconds of one wrk
# measurement and of its untimed warm-up) before calling what uses them.

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# --- processes ------------------------------------------------------------------------------

# stop_pid PID [SECONDS]: SIGTERM, wait, SIGKILL
stop_pid() {
	local pid=$1 i=0 max=$((${2:-5} * 20))
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt $max ]; do sleep 0.05; i=$((i + 1)); done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }

free_port() {
	node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_for CMD... : retry CMD every 50 ms for up to 20 s
wait_for() {
	local i=0
	until "$@" >/dev/null 2>&1; do
		[ $i -lt 400 ] || return 1
		sleep 0.05; i=$((i + 1))
	done
}

# --- measuring ------------------------------------------------------------------------------

# to_us "123.45us" | "1.2ms" | "1.0s" -> microseconds
to_us() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
		else if (v ~ /m$/) { sub(/m$/, "", v); print v * 60000000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 }
		else print v + 0 }'
}

# wrk_once NAME CONNS URL [LUA [BODY [BODY2]]]: one measurement (after a warm-up); prints
# "RPS P50_US"; fails (prints "0 0") when any answer was not 2xx or a socket error happened.
# BODY and BODY2 go to the Lua script as $BENCH_BODY and $BENCH_BODY2 (see post.lua).
wrk_once() {
	local name=$1 c=$2 url=$3 lua=${4:-} t=2 out="$WORK/wrk-$1.txt"
	local args=()
	[ "$c" -lt 2 ] && t=1
	[ -n "$lua" ] && args=(-s "$lua")
	export BENCH_BODY=${5:-} BENCH_BODY2=${6:-}
	[ "$WARM" = 0 ] || wrk -t"$t" -c"$c" -d"${WARM}s" "${args[@]}" "$url" >/dev/null 2>&1
	wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 10s --latency "${args[@]}" "$url" >"$out" 2>&1
	if grep -qE '^ *(Non-2xx|Socket errors)' "$out" || ! grep -q '^Requests/sec' "$out"; then
		note "$name: errors under load:"; sed 's/^/    /' "$out" >&2
		echo "0 0"
		return 1
	fi
	echo "$(sed -n 's/^Requests\/sec: *//p' "$out") $(to_us "$(awk '$1 == "50%" {print $2}' "$out")")"
}

# median of numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

fmt_rps() { awk -v v="$1" 'BEGIN { printf "%.0f req/s", v }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { printf "%.3f ms", v / 1000 }'; }
fmt_mb() { awk -v v="$1" 'BEGIN { printf "%.1f MB", v / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# ttfb_us URL BODY RUNS: the median time to first byte (curl's time_starttransfer) of RUNS
# POSTs of BODY to URL, in microseconds
ttfb_us() {
	local i
	for i in $(seq "$3"); do
		curl -s -o /dev/null -w '%{time_starttransfer}\n' -H 'Content-Type: application/json' "$1" -d "@$2"
	done | awk '{ print $1 * 1e6 }' | median
}

# --- the upstream simulator (tests/upstream-sim) ----------------------------------------------

# sim_start [ARGS...]: starts it on a free port with the fast options (no request validation, no
# obfuscation field, any model, long keep-alive) and ARGS; sets SIM_PID and SIM_URL (the caller stops it)
sim_start() {
	node "$ROOT/tests/upstream-sim/sim.mjs" --port 0 --no-validate --no-obfuscation --any-model --keepalive-ms 60000 "$@" \
		>"$WORK/sim.out" 2>"$WORK/sim.err" &
	SIM_PID=$!
	wait_for grep -q '^LISTENING ' "$WORK/sim.out" ||
		{ stop_pid "$SIM_PID" 2; die "the simulator did not start: $(cat "$WORK/sim.err")"; }
	SIM_URL="http://127.0.0.1:$(sed -n 's/^LISTENING //p' "$WORK/sim.out")"
}
sim_reset() { curl -sf -X POST "$SIM_URL/_sim/reset" >/dev/null; }
sim_script() { curl -sf -X POST --data-binary "@$1" "$SIM_URL/_sim/script" >/dev/null; }
sim_queued() { curl -sf "$SIM_URL/_sim/stats" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).queued)'; }
# sim_bodies FILE_PREFIX: the bodies of the /v1 requests logged so far, as FILE_PREFIX.1, .2, ...
sim_bodies() {
	curl -sf "$SIM_URL/_sim/requests?path=/v1/chat/completions" | node -e '
		const log = JSON.parse(require("fs").readFileSync(0, "utf8"));
		log.forEach((e, i) => require("fs").writeFileSync(process.argv[1] + "." + (i + 1), JSON.stringify(e.body)));
		console.log(log.length);' "$1"
}

# The chat bodies of the bench, written once into WORK by bench_bodies:
#   CALL_BODY   POST /v1/tools: list_tables of the sqlite server
#   PLAIN       a chat completion without tools ("sim: bench-q" comes back)
#   ROUND       a chat completion that takes one tool round (with round_script)
#   STREAM      a streamed chat completion without tools
bench_bodies() {
	CALL_BODY="$WORK/call.json" PLAIN="$WORK/chat-plain.json" ROUND="$WORK/chat-round.json" STREAM="$WORK/chat-stream.json"
	printf '{"tool":"list_tables","arguments":{}}' >"$CALL_BODY"
	printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bench-q"}],"mcp":{"tools":false}}' >"$PLAIN"
	printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"bench-round"}]}' >"$ROUND"
	printf '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"bench-stream"}],"mcp":{"tools":false}}' >"$STREAM"
}

# round_script N: the simulator's queue gets N pairs of turns for $ROUND: a first-round request
# (its body ends with the user message) gets a list_tables call, a second-round request (it has
# a "tool" message) gets text. Each turn has a "match", so the queue serves any interleaving of
# concurrent requests.
round_script() {
	node -e '
		const n = Number(process.argv[1]), t = [];
		for (let i = 0; i < n; i++) {
			t.push({ match: "\"content\":\"bench-round\"}]", tool_calls: [{ name: "list_tables", arguments: {} }] });
			t.push({ match: "\"role\":\"tool\"", content: "no tables" });
		}
		require("fs").writeFileSync(process.argv[2], JSON.stringify(t));' "$1" "$WORK/round-script.json"
	sim_script "$WORK/round-script.json"
}

# --- a gateway started with a checkout's own mcpgwctl -----------------------------------------

# sqlite_of TREE: the bundled MCP server of a checkout
sqlite_of() { echo "$1/mcp-server-sqlite/mcp-server-sqlite"; }

# ctl_home HOME TREE NSERVERS: a home for mcpgwctl: servers_config.json with NSERVERS sqlite
# servers of TREE (each on its own database in HOME), .env naming the simulator
ctl_home() {
	local home=$1 sqlite n=$3 k
	sqlite=$(sqlite_of "$2")
	mkdir -p "$home"
	{
		echo '{"mcpServers": {'
		for k in $(seq "$n"); do
			[ "$k" -gt 1 ] && echo ','
			printf '"sqlite%s": {"command": "%s", "args": ["--db-path", "%s/db%s.sqlite"]}' \
				"$([ "$n" -gt 1 ] && echo "$k")" "$sqlite" "$home" "$k"
		done
		echo '}}'
	} >"$home/servers_config.json"
	printf 'OPENAI_BASE_URL=%s/v1\nOPENAI_API_KEY=sk-mcpgw-bench\n' "$SIM_URL" >"$home/.env"
}

# ctl TREE HOME CMD: TREE's deploy/mcpgwctl CMD for the gateway of HOME (state in HOME/var)
ctl() { MCPGW_HOME=$2 MCPGW_STATE_DIR=$2/var sh "$1/deploy/mcpgwctl" "$3"; }

# ctl_start TREE HOME NSERVERS PORT: mcpgwctl start (in the background) on 127.0.0.1:PORT, polling
# GET /v1/tools meanwhile until it lists NSERVERS servers' list_tables. Sets FIRST_MS (from
# start to the first answer listing a tool), ALL_MS (every server's tools listed), GW (its URL).
# Dies when the tools are not all listed after 30 s or mcpgwctl start fails.
ctl_start() {
	local tree=$1 home=$2 n=$3 port=$4 t0 tf=0 ta=0 i=0 k c
	GW="http://127.0.0.1:$port"
	t0=$(date +%s%N)
	MCPGW_LISTEN=127.0.0.1:$port ctl "$tree" "$home" start >"$home/ctl.out" 2>&1 &
	c=$!
	while :; do
		k=$(curl -s "$GW/v1/tools" | grep -o '"mcp_name":"list_tables"' | wc -l)
		[ "$k" -ge 1 ] && [ "$tf" = 0 ] && tf=$(date +%s%N)
		[ "$k" -ge "$n" ] && { ta=$(date +%s%N); break; }
		[ $i -lt 6000 ] || { [ -z "$c" ] || wait "$c"; die "$home: not all tools listed after 30 s: $(cat "$home/ctl.out")"; }
		# mcpgwctl start ended: a failure is final
		if [ -n "$c" ] && ! kill -0 "$c" 2>/dev/null; then
			wait "$c" || die "$home: mcpgwctl start failed: $(cat "$home/ctl.out")"
			c=''
		fi
		sleep 0.005; i=$((i + 1))
	done
	[ -z "$c" ] || wait "$c" || die "$home: mcpgwctl start failed: $(cat "$home/ctl.out")"
	FIRST_MS=$(( (tf - t0) / 1000000 )) ALL_MS=$(( (ta - t0) / 1000000 ))
}

# gw_cpu_ticks HOME: the CPU time (user + system, clock ticks) the gateway of HOME used so far:
# its lighttpd and broker and their children (responders, MCP servers)
gw_cpu_ticks() {
	local p v ps="" t=0
	for p in "$(cat "$1/var/lighttpd.pid" 2>/dev/null)" "$(cat "$1/var/broker.pid" 2>/dev/null)"; do
		[ -n "$p" ] || continue
		ps="$ps $p $(children_of "$p" | tr '\n' ' ')"
	done
	for p in $ps; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# ctl_stop TREE HOME: mcpgwctl stop, then whatever the web server had spawned and left behind
ctl_stop() {
	local p kids=""
	[ -s "$2/var/lighttpd.pid" ] && kids=$(children_of "$(cat "$2/var/lighttpd.pid")" | tr '\n' ' ')
	ctl "$1" "$2" stop >/dev/null 2>&1
	for p in $kids; do stop_pid "$p" 2; done
}
