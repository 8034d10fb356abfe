#!/usr/bin/env bash
# bench/capacity.sh: the capacity run of `make bench` (issue 16): N streamed chat completions at once,
# each with one tool round, through the gateway with its shipped defaults behind lighttpd.
#
#   bash bench/capacity.sh [--quick]        (bench/run.sh runs it as its last section, "capacity")
#
# For each N (BENCH_CAPACITY_N, default "100 300 1000"): a fresh gateway started by deploy/mcpgwctl
# (lighttpd with the configuration it writes from lighttpd.conf.example, the broker, the bundled
# SQLite server; MCPGW_CHAT_THREADS and the process counts as shipped) in a home of its own, against
# the upstream simulator started with `--auto-tool list_tables --chunk-delay-ms DELAY --chunks 2`:
# every request's first upstream answer is a streamed call of list_tables (4 chunks, DELAY apart),
# the second (after the tool result) a streamed text of 2 chunks; with the usage chunk mcpgw asks
# for, each answer is 5 chunks DELAY apart and [DONE] one DELAY later: about 10 x DELAY per stream
# (5 s at the default 500 ms). Then:
#   1. one such stream alone (the yardstick: the time a stream takes when nothing else runs);
#      then the two upstream requests the gateway sent for it replayed by the load client straight
#      to the simulator, N streams at once (capacity-client.mjs --then-body): what the client and
#      the simulator, on the same cores, add by themselves at N (a row and a column; no target);
#   2. N of them started at once by bench/capacity-client.mjs (N connections held open at once;
#      its RLIMIT_NOFILE is raised to the hard limit, the gateway's is left as the caller's), cut
#      after BENCH_CAPACITY_SECONDS (default 120): what has not ended then is "unfinished", and the
#      run goes on; meanwhile the private memory (Private_Clean + Private_Dirty, smaps_rollup) of
#      every chat.fcgi process and of mcpgw-broker, idle before and every 100 ms during.
# Per N: completed, failed (503 apart, with how long the 503 took; the others by kind), unfinished
# (and how many of those had not a byte), each stream's total time and first content delta (p50,
# max), wall time, the most streams answered at once (a status line came, the stream not ended),
# memory idle, peak, (peak - idle) / N, and per stream answered at once (peak - idle, less the
# chat.fcgi processes lighttpd started meanwhile, each at an idle one's size, / the most at once);
# against issue 16's targets: all complete, each within 1 s of the alone time and the median within
# 100 ms, all N answered at once with at most 64 KB each.
# It also says how many streams the lighttpd configuration mcpgwctl wrote holds at once here
# (server.max-fds, server.max-connections, the FastCGI backlog).
#
# Environment: BENCH_CAPACITY_N ("100 300 1000"), BENCH_CAPACITY_DELAY_MS (500: the simulator's
# chunk delay), BENCH_CAPACITY_SECONDS (120: the bound of each N), BENCH_CAPACITY_QUICK=1 or --quick
# (N = 5, 200 ms, 20 s, and 7 streams over a capacity of 5: checks the script in a few seconds; tests/blackbox/bench_ab.bats),
# BENCH_CAPACITY_ROWS=FILE (append the rows, tab-separated as bench/run.sh's, to FILE),
# BENCH_CAPACITY_SUMMARY=FILE (write the per-N table there too), BENCH_KEEP=1 (keep the temporary
# directory). MCPGW_CHAT_THREADS, when set, reaches the responders (the run then says it is not the
# default). Prints the rows and the per-N table; exit status 0 when it ran (whatever the verdicts),
# 1 when something it needs failed, 2 on a wrong setting.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

QUICK=${BENCH_CAPACITY_QUICK:-0}
[ "${1:-}" = --quick ] && QUICK=1
if [ "$QUICK" = 1 ]; then
	NS=${BENCH_CAPACITY_N:-5} DELAY=${BENCH_CAPACITY_DELAY_MS:-200} BOUND=${BENCH_CAPACITY_SECONDS:-20}
else
	NS=${BENCH_CAPACITY_N:-100 300 1000} DELAY=${BENCH_CAPACITY_DELAY_MS:-500} BOUND=${BENCH_CAPACITY_SECONDS:-120}
fi
bad() { echo "bench: $1: expected $2, got '$3'" >&2; exit 2; }
isint() { case $1 in '' | *[!0-9]*) return 1 ;; esac; [ ${#1} -le 6 ]; }
[ -n "$(echo $NS)" ] || bad BENCH_CAPACITY_N "numbers of streams such as \"100 300 1000\"" "$NS"
for n in $NS; do
	{ isint "$n" && [ "$n" -ge 1 ] && [ "$n" -le 20000 ]; } || bad BENCH_CAPACITY_N "numbers of streams 1..20000" "$NS"
done
{ isint "$DELAY" && [ "$DELAY" -le 10000 ]; } || bad BENCH_CAPACITY_DELAY_MS "milliseconds 0..10000" "$DELAY"
{ isint "$BOUND" && [ "$BOUND" -ge 1 ] && [ "$BOUND" -le 3600 ]; } || bad BENCH_CAPACITY_SECONDS "seconds 1..3600" "$BOUND"
CHUNKS=2
ROWS_OUT=${BENCH_CAPACITY_ROWS:-}
SQLITE_SRV=$(sqlite_of "$ROOT")
LIGHTTPD=${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
for bin in "$ROOT/broker/mcpgw-broker" "$ROOT/cgi-bin/chat.fcgi" "$ROOT/cgi-bin/tools.fcgi" "$ROOT/cgi-bin/health.fcgi" "$SQLITE_SRV"; do
	[ -x "$bin" ] || die "$bin: not built (make all)"
done
[ -x "$LIGHTTPD" ] || die "lighttpd not found (sh deploy/install-deps.sh)"
command -v node >/dev/null || die "node not found"

WORK=$(mktemp -d /tmp/mcpgw-cap.XXXXXX) || die "mktemp failed"
CTL_HOMES='' SIM_PID='' CLIENT_PID=''
cleanup() {
	local rc=$? h
	trap - EXIT INT TERM HUP
	[ -z "$CLIENT_PID" ] || stop_pid "$CLIENT_PID" 2
	for h in $CTL_HOMES; do ctl_stop "$ROOT" "$h"; done
	[ -z "$SIM_PID" ] || stop_pid "$SIM_PID" 5
	if [ "${BENCH_KEEP:-}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM HUP

# the gateway as shipped, behind lighttpd, whatever the caller's front end
export MCPGW_FRONTEND=lighttpd
unset MCPGW_RESPONDER_PROCS MCPGWCTL_WRAP
THREADS_NOTE=''
[ -n "${MCPGW_CHAT_THREADS:-}" ] && THREADS_NOTE=" (MCPGW_CHAT_THREADS=$MCPGW_CHAT_THREADS: NOT the default)"

ROWS="$WORK/rows.tsv"
SUMMARY="$WORK/summary.md"
: >"$ROWS"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
sec() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.2f s", v / 1000 }'; }
ms() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.0f ms", v }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 <= b + 0) }'; }

# client OUT ARGS...: bench/capacity-client.mjs with RLIMIT_NOFILE raised to the hard limit (in its
# own subshell: lighttpd keeps the caller's); its KEY=VALUE lines into OUT, read into R[]
declare -A R
client() {
	client_start "$@"
	client_wait "$1"
}

# client_start OUT ARGS...: the load client started in the background (CLIENT_PID), its key=value lines to OUT
client_start() {
	local out=$1
	shift
	(
		ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
		exec node "$ROOT/bench/capacity-client.mjs" "$@"
	) >"$out" 2>"$out.err" &
	CLIENT_PID=$!
}

# client_wait OUT: wait for the client started last, its results into R
client_wait() {
	local out=$1 k v
	wait "$CLIENT_PID"
	CLIENT_PID=''
	sed 's/^/    /' "$out.err" >&2
	R=()
	while IFS='=' read -r k v; do R[$k]=$v; done <"$out"
	[ -n "${R[completed]:-}" ] || die "the load client failed: $(cat "$out.err")"
}

# lighttpd_holds PID CONF: how many streams the running lighttpd holds at once, as 1.4's server.c
# sizes itself: max-fds is server.max-fds (it raises its soft RLIMIT_NOFILE to it when the hard limit
# allows), else the soft limit it started with, at most 4096; max-connections is
# server.max-connections (at most max-fds / 2), else max-fds / 3; it stops accepting at 90% of
# max-fds. A proxied stream holds 2 descriptors (the client's, the FastCGI connection's).
# Sets LT_FDS LT_CONNS LT_STREAMS LT_NOTE.
lighttpd_holds() {
	local soft cfg_fds cfg_conns procs backlog somax
	soft=$(awk '/^Max open files/ { print $4 }' "/proc/$1/limits")
	cfg_fds=$(sed -n 's/^server\.max-fds *= *\([0-9]*\).*/\1/p' "$2" | tail -n 1)
	cfg_conns=$(sed -n 's/^server\.max-connections *= *\([0-9]*\).*/\1/p' "$2" | tail -n 1)
	if [ -n "$cfg_fds" ]; then LT_FDS=$(( cfg_fds < soft ? cfg_fds : soft ))
	else LT_FDS=$(( soft < 4096 ? soft : 4096 )); fi
	if [ -n "$cfg_conns" ]; then LT_CONNS=$(( cfg_conns < LT_FDS / 2 ? cfg_conns : LT_FDS / 2 ))
	else LT_CONNS=$(( LT_FDS / 3 )); fi
	LT_STREAMS=$(( LT_CONNS < LT_FDS * 9 / 20 ? LT_CONNS : LT_FDS * 9 / 20 ))
	# the chat responder's FastCGI sockets: one per process, each with lighttpd's listen-backlog
	procs=$(awk '/cgi-bin\/chat\.fcgi"/ { f = 1 } f && /max-procs/ { sub(/.*"max-procs" => */, ""); print $0 + 0; exit }' "$2")
	backlog=$(awk '/cgi-bin\/chat\.fcgi"/ { f = 1 } f && /listen-backlog/ { sub(/.*"listen-backlog" => */, ""); print $0 + 0; exit } f && /\)\),/ { exit }' "$2")
	somax=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)
	backlog=${backlog:-1024}
	[ "$backlog" -le "$somax" ] || backlog=$somax
	LT_NOTE="lighttpd: soft RLIMIT_NOFILE $soft (after its own setrlimit); server.max-fds ${cfg_fds:-unset} -> $LT_FDS; server.max-connections ${cfg_conns:-unset} -> $LT_CONNS; a stream holds 2 descriptors: $LT_STREAMS streams at once; chat.fcgi: ${procs:-?} FastCGI sockets x backlog $backlog"
}

# --- the simulator and the bodies -------------------------------------------------------------

sim_start --auto-tool list_tables --chunk-delay-ms "$DELAY" --chunks "$CHUNKS"
BODY="$WORK/stream.json"
printf '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"bench-capacity"}]}' >"$BODY"
EXPECT="sim: bench-capacity"
note "capacity: N = $(echo $NS), one tool round each (list_tables, bundled SQLite server), simulator chunk delay $DELAY ms, bound ${BOUND} s per N$THREADS_NOTE"

{
	echo "| N | completed | failed | unfinished at ${BOUND} s (no byte yet) | total time p50 / max | first content delta p50 / max | one stream alone | the simulator alone at N, p50 / max | wall | most answered at once | private memory, idle -> peak | (peak - idle - processes started) / most at once ((peak - idle) / N) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$SUMMARY"

LT_WARNED=''
for n in $NS; do
	home="$WORK/cap$n"
	ctl_home "$home" "$ROOT" 1
	CTL_HOMES="$CTL_HOMES $home"
	ctl_start "$ROOT" "$home" 1 "$(free_port)"
	LPID=$(cat "$home/var/lighttpd.pid") BPID=$(cat "$home/var/broker.pid")
	lighttpd_holds "$LPID" "$home/var/lighttpd.conf"
	note "N = $n: $LT_NOTE"
	if [ "$LT_STREAMS" -lt "$n" ] || { [ -z "$LT_WARNED" ] && [ "$LT_STREAMS" -lt 1100 ]; }; then
		note "  WARNING: this lighttpd configuration holds $LT_STREAMS streams at once, under $( [ "$LT_STREAMS" -lt "$n" ] && echo "N = $n" || echo "issue 16's 1,100")"
		LT_WARNED=1
	fi
	sim_reset

	# one stream alone (also the first request of each responder)
	client "$WORK/alone$n" --url "$GW/v1/chat/completions" --body "$BODY" --n 1 --timeout-s "$BOUND" --expect "$EXPECT"
	[ "${R[completed]}" = 1 ] || die "N = $n: the stream alone did not complete: ${R[failed_kinds]}${R[unfinished]:+ (unfinished: ${R[unfinished]})}"
	ALONE=${R[total_p50_ms]} ALONE_FIRST=${R[first_p50_ms]}
	note "N = $n: one stream alone: $(sec "$ALONE") (first content delta $(sec "$ALONE_FIRST"))"
	# the yardstick of what the load client and the simulator cost by themselves at N: the two
	# upstream requests the gateway just sent for that stream (the question with the tools, then
	# the conversation with the tool's result), replayed by the same client straight to the
	# simulator, N streams at once, no gateway
	[ "$(sim_bodies "$WORK/up$n")" = 2 ] || die "N = $n: the stream alone did not make two upstream requests"
	sim_reset
	client "$WORK/direct$n" --url "$SIM_URL/v1/chat/completions" --body "$WORK/up$n.1" --then-body "$WORK/up$n.2" \
		--n "$n" --timeout-s "$BOUND" --expect "$EXPECT"
	DC=${R[completed]} D50=${R[total_p50_ms]} DMAX=${R[total_max_ms]}
	note "N = $n: the simulator alone (each stream's two upstream requests, no gateway): completed $DC; total p50 $(sec "$D50") max $(sec "$DMAX"); first content p50 $(sec "${R[first_p50_ms]}")"
	sim_reset
	sleep 0.5

	# N at once
	client "$WORK/burst$n" --url "$GW/v1/chat/completions" --body "$BODY" --n "$n" --timeout-s "$BOUND" --expect "$EXPECT" \
		--lighttpd-pid "$LPID" --broker-pid "$BPID" --sample-ms 100
	ctl_stop "$ROOT" "$home"
	CTL_HOMES=$(echo "$CTL_HOMES" | sed "s| $home||")

	c=${R[completed]} f=${R[failed]} f503=${R[failed_503]} u=${R[unfinished]} u0=${R[unfinished_no_byte]}
	p50=${R[total_p50_ms]} max=${R[total_max_ms]} fp50=${R[first_p50_ms]} fmax=${R[first_max_ms]}
	idle=${R[mem_idle_kb]} peak=${R[mem_peak_kb]}
	sp=${R[served_peak]}
	per=$(awk -v i="$idle" -v p="$peak" -v n="$n" 'BEGIN { printf "%.1f", (p - i) / n }')
	# per stream served at once: what a stream costs while it is answered (the others wait outside,
	# costing the gateway nothing): the figure that says what N at once would cost
	# (less the chat.fcgi processes lighttpd started meanwhile, each at an idle one's size: the cost
	# of a process, not of the streams it serves)
	spawned=${R[mem_spawned_kb]}
	perb=$(awk -v i="$idle" -v p="$peak" -v s="$spawned" -v n="$sp" 'BEGIN { if (n > 0) printf "%.1f", (p - i - s) / n; else print "" }')
	sptxt=''
	[ "${spawned:-0}" = 0 ] || sptxt=", of which $(fmt_mb "$spawned") the chat.fcgi processes started meanwhile (an idle one's size each)"
	failed_txt="$f"
	[ "$f" = 0 ] || failed_txt="$f (503: $f503$( [ "$f503" = 0 ] || echo ", answered in p50 $(ms "${R[failed_503_p50_ms]}") max $(ms "${R[failed_503_max_ms]}"), ${R[failed_503_retry_after]} with Retry-After")$( [ "${R[failed_other]}" = 0 ] || echo "; other: ${R[failed_kinds]}"))"
	note "N = $n: completed $c, failed $failed_txt, unfinished $u ($u0 without a byte); total p50 $(sec "$p50") max $(sec "$max"); first content p50 $(sec "$fp50") max $(sec "$fmax"); wall $(sec "${R[wall_ms]}"); at most $sp streams answered at once; memory idle $(fmt_mb "$idle") peak $(fmt_mb "$peak")$sptxt (${R[mem_procs]} processes, ${R[mem_samples]} samples): $per KB per stream of N, ${perb:--} KB per stream answered at once"

	all=MISSED
	[ "$c" = "$n" ] && all=MET
	row "capacity, $n streamed chats at once (1 tool round each, a chunk every $DELAY ms)$THREADS_NOTE: completed" \
		"$c of $n (failed $failed_txt; unfinished after ${BOUND} s: $u, $u0 of them without a byte; wall $(sec "${R[wall_ms]}"))" \
		"-" "-" "all $n" "$all"
	tv=MISSED
	if [ "$c" = "$n" ] && le "$max" "$(awk -v a="$ALONE" 'BEGIN { print a + 1000 }')" && le "$p50" "$(awk -v a="$ALONE" 'BEGIN { print a + 100 }')"; then tv=MET; fi
	maxtxt=$(sec "$max")
	[ "$c" = "$n" ] || maxtxt="> ${BOUND} s ($u unfinished, $f failed; of the completed: $(sec "$max"))"
	row "capacity, $n at once: each stream's total time p50 / max (first content delta p50 / max: $(sec "$fp50") / $(sec "$fmax"))" \
		"$(sec "$p50") / $maxtxt" "$(sec "$ALONE") (one such stream alone; first content delta $(sec "$ALONE_FIRST"))" \
		"$(awk -v p="$p50" -v a="$ALONE" 'BEGIN { if (p == "") print "-"; else printf "p50 %+.0f ms", p - a }')" \
		"max <= alone + 1 s, p50 <= alone + 100 ms" "$tv"
	row "capacity, $n at once without the gateway: the simulator alone, each stream's two upstream requests sent by the load client (what the client and the simulator add by themselves at N)" \
		"$(sec "$D50") / $(sec "$DMAX") ($DC of $n completed)" "$(sec "$p50") / $(sec "$max") (through the gateway)" \
		"$(awk -v p="$p50" -v d="$D50" 'BEGIN { if (p == "" || d == "") print "-"; else printf "the gateway adds p50 %+.0f ms", p - d }')" "-" "-"
	# MET: all N answered at once, at most 64 KB each (N waiting outside the gateway cost it nothing)
	mv=MISSED
	[ "$sp" -ge "$n" ] && le "$per" 64 && mv=MET
	row "capacity, $n at once: private memory of chat.fcgi (${R[mem_procs]}) + mcpgw-broker above idle, per stream answered at once (at most $sp of $n; (peak - idle) / N: $per KB)" \
		"${perb:--} KB (idle $(fmt_mb "$idle"), peak $(fmt_mb "$peak")$sptxt)" "-" "-" "(peak - idle) / N <= 64 KB, all $n at once" "$mv"
	echo "| $n | $c | $failed_txt | $u ($u0) | $(sec "$p50") / $maxtxt | $(sec "$fp50") / $(sec "$fmax") | $(sec "$ALONE") | $(sec "$D50") / $(sec "$DMAX") | $(sec "${R[wall_ms]}") | $sp | $(fmt_mb "$idle") -> $(fmt_mb "$peak") | ${perb:--} KB ($per KB) |" >>"$SUMMARY"
done
echo "$LT_NOTE" >"$WORK/lighttpd-note"

# --- over capacity: N streams when MCPGW_CAPACITY is C (BENCH_CAPACITY_OVER "N:C", default "1100:1000";
# "" skips it): C streams fill the host, then the N - C beyond the capacity each get a 503
# capacity_exceeded with Retry-After within 100 ms, and the C others complete as they would alone ---------------------------------------------------
OVER=${BENCH_CAPACITY_OVER-1100:1000}
[ "$QUICK" = 1 ] && OVER=${BENCH_CAPACITY_OVER-7:5}
if [ -n "$OVER" ]; then
	on=${OVER%%:*} oc=${OVER#*:}
	{ isint "$on" && isint "$oc" && [ "$oc" -ge 1 ] && [ "$on" -gt "$oc" ]; } ||
		bad BENCH_CAPACITY_OVER "N:C with N > C >= 1, such as 1100:1000" "$OVER"
	home="$WORK/over$on"
	ctl_home "$home" "$ROOT" 1
	echo "MCPGW_CAPACITY=$oc" >>"$home/.env"
	CTL_HOMES="$CTL_HOMES $home"
	ctl_start "$ROOT" "$home" 1 "$(free_port)"
	LPID=$(cat "$home/var/lighttpd.pid") BPID=$(cat "$home/var/broker.pid")
	sim_reset
	client "$WORK/overalone" --url "$GW/v1/chat/completions" --body "$BODY" --n 1 --timeout-s "$BOUND" --expect "$EXPECT"
	[ "${R[completed]}" = 1 ] || die "over capacity: the stream alone did not complete: ${R[failed_kinds]}"
	ALONE=${R[total_p50_ms]}
	sleep 0.5
	# the host filled first: C streams, until the capacity table shows C slots held (its records whose
	# holder word is not 0: lib/core/capacity.c), then the N - C beyond it: what a new request meets
	# when the host is full
	client_start "$WORK/over" --url "$GW/v1/chat/completions" --body "$BODY" --n "$oc" --timeout-s "$BOUND" \
		--expect "$EXPECT" --lighttpd-pid "$LPID" --broker-pid "$BPID" --sample-ms 100
	held=0
	for _ in $(seq 300); do
		# a 64-byte header, then a 16-byte record per slot: the caller's digest, the holder's id
		held=$(od -An -v -tx8 -w16 -j64 "$home/var/capacity.map" 2>/dev/null | awk '$2 !~ /^0+$/ { n++ } END { print n + 0 }')
		[ "$held" -ge "$oc" ] && break
		sleep 0.05
	done
	[ "$held" -ge "$oc" ] || note "  WARNING: only $held of $oc slots held after 15 s: the extra streams come anyway"
	A_PID=$CLIENT_PID
	client "$WORK/overextra" --url "$GW/v1/chat/completions" --body "$BODY" --n "$((on - oc))" --timeout-s "$BOUND" --expect "$EXPECT"
	f503=${R[failed_503]} fo=${R[failed_other]} m503=${R[failed_503_max_ms]:-} p503=${R[failed_503_p50_ms]:-}
	ra=${R[failed_503_retry_after]:-0} cx=${R[completed]} ux=${R[unfinished]}
	CLIENT_PID=$A_PID
	client_wait "$WORK/over"
	ctl_stop "$ROOT" "$home"
	CTL_HOMES=$(echo "$CTL_HOMES" | sed "s| $home||")
	c=${R[completed]} fo=$((fo + R[failed_other] + R[failed_503])) u=$((R[unfinished] + ux))
	p50=${R[total_p50_ms]} max=${R[total_max_ms]}
	c=$((c + cx))
	note "over capacity: $oc streams fill MCPGW_CAPACITY=$oc, then $((on - oc)) more: completed $c, 503 $f503 (p50 $(ms "$p503") max $(ms "$m503"), $ra with Retry-After), other failures $fo, unfinished $u; completed p50 $(sec "$p50") max $(sec "$max") (alone $(sec "$ALONE"))"
	ov=MISSED
	if [ "$f503" = $((on - oc)) ] && [ "$ra" = "$f503" ] && [ -n "$m503" ] && le "$m503" 100 && [ "$c" = "$oc" ] && [ "$fo" = 0 ]; then ov=MET; fi
	row "capacity, $on streamed chats with MCPGW_CAPACITY=$oc ($oc fill the host, then $((on - oc)) more at once): 503 capacity_exceeded answers (p50 / max time to the answer)" \
		"$f503 of $on, $(ms "$p503") / $(ms "$m503"), $ra with Retry-After; completed $c, other failures $fo, unfinished $u" \
		"-" "-" "$((on - oc)) within 100 ms each, with Retry-After; the $oc others complete" "$ov"
	ou=MISSED
	if [ "$c" = "$oc" ] && le "$max" "$(awk -v a="$ALONE" 'BEGIN { print a + 1000 }')" && le "$p50" "$(awk -v a="$ALONE" 'BEGIN { print a + 100 }')"; then ou=MET; fi
	row "capacity, the $oc streams within MCPGW_CAPACITY=$oc beside $((on - oc)) refused: total time p50 / max" \
		"$(sec "$p50") / $(sec "$max")" "$(sec "$ALONE") (one such stream alone)" \
		"$(awk -v p="$p50" -v a="$ALONE" 'BEGIN { if (p == "") print "-"; else printf "p50 %+.0f ms", p - a }')" \
		"max <= alone + 1 s, p50 <= alone + 100 ms" "$ou"
fi

# --- output ------------------------------------------------------------------------------------

[ -z "$ROWS_OUT" ] || cat "$ROWS" >>"$ROWS_OUT"
[ -z "${BENCH_CAPACITY_SUMMARY:-}" ] || {
	cat "$SUMMARY"
	echo
	echo "Simulator chunk delay $DELAY ms: a stream is two upstream answers, a list_tables call then a text of $CHUNKS chunks, each answer 5 chunks (with the usage chunk mcpgw asks for) $DELAY ms apart and [DONE] $DELAY ms after the last: about 10 x $DELAY ms. Each N on a fresh \`mcpgwctl start\` with the shipped defaults$THREADS_NOTE. $LT_NOTE."
} >"$BENCH_CAPACITY_SUMMARY"
echo
echo "| what | value | comparison | ratio | target | result |"
echo "|---|---|---|---|---|---|"
awk -F '\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$ROWS"
echo
cat "$SUMMARY"
echo
echo "$LT_NOTE"
exit 0
