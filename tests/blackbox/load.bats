#!/usr/bin/env bats
# load.bats: bounded load (issue 15): wrk with 64 connections each, for MCPGW_LOAD_SECONDS (default 60), on GET /v1/tools, POST /v1/tools and a streamed chat completion against the upstream simulator at once, loopback only: no unexpected error, and the broker's, the responders' and the MCP servers' memory (VmRSS, within +10%) and open descriptors the same after as before; the figures are printed.

load helpers
mcpgw_load_sim

LOAD_SECONDS=${MCPGW_LOAD_SECONDS:-60}
LOAD_CONNS=64

setup_file() {
	command -v wrk >/dev/null || { echo "wrk is missing: sh deploy/install-deps.sh --test installs it" >&2; return 1; }
	mcpgw_setup_file_with_sim
}
teardown_file() { mcpgw_teardown_file_with_sim; }

# watched: the pids under load: the broker, its MCP servers, the web server's responders
watched() {
	local b w

	b=$(cat "$MCPGW_STATE_DIR/broker.pid")
	w=$(frontend_pid)
	echo "$b"
	ps -o pid= --ppid "$b" | tr -d ' '
	ps -o pid= --ppid "$w" | tr -d ' '
}

# upstream_inodes: the socket inodes of TCP connections to the upstream simulator (its port), one a line
upstream_inodes() {
	awk -v port="$(printf '%04X' "$SIM_PORT")" 'FNR > 1 { split($3, r, ":"); if (r[2] == port) print $10 }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# snapshot PIDS...: "RSS_KB FDS UPSTREAM" summed over the processes: their VmRSS, their open
# descriptors but connections to the upstream, and those connections (the upstream decides how long it
# keeps each alive: their number moves with it; each chat worker holds at most one)
snapshot() {
	local rss=0 fds=0 up=0 p r n u ino

	ino=$(upstream_inodes | tr '\n' ' ')
	for p in "$@"; do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
		rss=$((rss + ${r:-0}))
		read -r n u < <(ls -l "/proc/$p/fd" 2>/dev/null | awk -v ino=" $ino" '
			/ -> / { s = $NF; if (s ~ /^socket:\[/) { gsub(/[^0-9]/, "", s); if (index(ino, " " s " ")) { u++; next } } n++ }
			END { print n + 0, u + 0 }')
		fds=$((fds + n))
		up=$((up + u))
	done
	echo "$rss $fds $up"
}

# rss_each PID...: "comm:pid=RSS kB" of each
rss_each() {
	local p

	for p in "$@"; do
		printf '%s:%s=%s ' "$(cat "/proc/$p/comm" 2>/dev/null)" "$p" "$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)"
	done
}

# chat_threads PID...: "pid=threads" of each chat.fcgi among them
chat_threads() {
	local p

	for p in "$@"; do
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = chat.fcgi ]; then
			printf '%s=%s ' "$p" "$(ls "/proc/$p/task" | wc -l)"
		fi
	done
}

# settled THREADS PID...: wait (up to 30 s) until each chat.fcgi has no more threads than THREADS
# (chat_threads' output) says: its pool back to the kept workers after a burst; 1 if it never is
settled() {
	local want=$1 i p n w
	shift
	for i in $(seq 60); do
		n=0
		for p in "$@"; do
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = chat.fcgi ] || continue
			w=$(tr ' ' '\n' <<<"$want" | sed -n "s/^$p=//p")
			[ "$(ls "/proc/$p/task" | wc -l)" -le "${w:-0}" ] || n=$((n + 1))
		done
		[ "$n" = 0 ] && return 0
		sleep 0.5
	done
	return 1
}

# broker_clients: the broker's connected clients (GET /health's broker.clients): each is two open fds
# among the watched processes (the responder worker's end, the broker's end), made when a worker first
# needs the broker; which of chat.fcgi's pooled workers have one depends on which served (the pool
# ends those beyond its kept workers, lib/http/responder.c)
broker_clients() {
	get /health
	json_eval 'j.broker.clients'
}

# wrk_start NAME SECONDS PATH [BODY]: wrk against the gateway in the background (POST BODY when given),
# its output into $BATS_TEST_TMPDIR/NAME.out; its pid appended to WRK_PIDS
wrk_start() {
	local name=$1 secs=$2 path=$3 body=${4:-}
	local args=(-t1 -c"$LOAD_CONNS" -d"${secs}s" --timeout 30s)

	if [ -n "$body" ]; then
		printf '%s' "$body" >"$BATS_TEST_TMPDIR/$name.json"
		args+=(-s "$MCPGW_ROOT/bench/post.lua")
	fi
	BENCH_BODY="$BATS_TEST_TMPDIR/$name.json" wrk "${args[@]}" "$MCPGW_URL$path" >"$BATS_TEST_TMPDIR/$name.out" 2>&1 &
	WRK_PIDS="$WRK_PIDS $!"
}

# wrk_result NAME: "REQUESTS ERRORS" of a finished wrk_start run (errors: responses other than 2xx
# plus socket errors)
wrk_result() {
	awk '/requests in/ {r = $1} /Non-2xx or 3xx responses:/ {n += $NF}
		/Socket errors:/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print r + 0, n + 0}' "$BATS_TEST_TMPDIR/$1.out"
}

# all_three SECONDS: the three loads at once, LOAD_CONNS connections each, waited for
all_three() {
	WRK_PIDS=
	wrk_start list "$1" /v1/tools
	wrk_start call "$1" /v1/tools '{"tool":"list_tables","arguments":{}}'
	wrk_start chat "$1" /v1/chat/completions \
		'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"load"}]}'
	# shellcheck disable=SC2086
	wait $WRK_PIDS
}

@test "GET /v1/tools, POST /v1/tools and a streamed chat completion under load at once: no error, memory and open fds as before" {
	local pids before after rss0 fds0 up0 rss1 fds1 up1 cl0 cl1 rss_each0 workers name req err total=0

	wait_server_state sqlite ready
	# warm-up, as long as the pool needs to grow in every responder process (lighttpd gives a process
	# more connections only once the others are busy): every worker thread and connection made once
	all_three 10
	# chat.fcgi's pool keeps MCPGW_CHAT_THREADS workers and ends those it started for the load after
	# 5 s idle (lib/http/responder.c): both snapshots are taken once it is back to its kept workers
	sleep 7
	pids=$(watched)
	threads0=$(chat_threads $pids)
	cl0=$(broker_clients)
	before=$(snapshot $pids)
	rss_each0=$(rss_each $pids)
	all_three "$LOAD_SECONDS"
	sleep 7
	settled "$threads0" $pids || { echo "chat.fcgi's pool did not shrink back: $threads0 -> $(chat_threads $pids)"; return 1; }
	# the same processes: none died or was replaced under load
	[ "$(watched)" = "$pids" ] || { echo "the processes changed under load: $pids -> $(watched)"; return 1; }
	cl1=$(broker_clients)
	after=$(snapshot $pids)
	read -r rss0 fds0 up0 <<<"$before"
	read -r rss1 fds1 up1 <<<"$after"
	# the broker connections of the pool's workers counted apart (two fds each)
	fds0=$((fds0 - 2 * cl0)) fds1=$((fds1 - 2 * cl1))
	# the upstream connections the chat responders may keep: each loop (one per CPU, the default of
	# MCPGW_CHAT_LOOPS) keeps MCPGW_CHAT_THREADS (16) idle ones (lib/http/chatloop.c,
	# chatloop_kept_connections), so that its runs in flight rise and fall without a connection
	# closed and opened again
	kept=0
	for p in $pids; do
		[ "$(cat "/proc/$p/comm")" = chat.fcgi ] && kept=$((kept + $(getconf _NPROCESSORS_ONLN) * 16))
	done
	for name in list call chat; do
		read -r req err <<<"$(wrk_result "$name")"
		echo "# load $name: $LOAD_CONNS connections, ${LOAD_SECONDS} s: $req requests, $err errors" >&3
		[ "$req" -gt 0 ] && [ "$err" = 0 ] || { cat "$BATS_TEST_TMPDIR/$name.out"; return 1; }
		total=$((total + req))
	done
	echo "# load: $total requests; RSS $rss0 -> $rss1 kB ($(( (rss1 - rss0) * 100 / rss0 ))%), open fds $fds0 -> $fds1 (and upstream connections $up0 -> $up1, broker connections $cl0 -> $cl1) over $(echo $pids | wc -w) processes" >&3
	[ "$rss1" -le $((rss0 + rss0 / 10)) ] || {
		echo "RSS grew by more than 10%: $rss0 -> $rss1 kB; before: $rss_each0; after: $(rss_each $pids); chat.fcgi threads: $threads0 -> $(chat_threads $pids)"
		return 1
	}
	[ "$fds1" = "$fds0" ] || { echo "open fds changed: $fds0 -> $fds1"; return 1; }
	[ "$up1" -le "$kept" ] || { echo "$up1 connections to the upstream, over the $kept the chat loops keep"; return 1; }
}
