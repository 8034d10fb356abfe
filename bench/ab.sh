#!/usr/bin/env bash
# bench/ab.sh: the gateway of an earlier commit (A) against this checkout (B), each figure of `make bench` alternated A B, B A, A B ... in one run.
#
#   make bench BASELINE=COMMIT        (or, after make all: bash bench/ab.sh COMMIT)
#
# Builds COMMIT in a tree of its own (git archive into /var/tmp, then that tree's own
# `make all`: its layout and Makefile, whatever they were), starts the upstream simulator of
# this checkout (tests/upstream-sim) once, then measures figure by figure, BENCH_AB_PAIRS
# times: A's gateway started with A's deploy/mcpgwctl and A's binaries, measured, stopped;
# then B's the same way (in every second pair B first, then A). The two gateways never run at the same time; each has its own home
# and state directory (under a temporary directory) and a free port at each start. Each
# figure is the one `make bench` reports for the gateway (its yardsticks are left out: they
# are the same programs for A and B).
#
# Prints one table: each figure's median for A and for B, B/A oriented so that above 1 is
# better for B whatever the unit (a rate: B/A; a time or a memory size: A/B), the ratio of
# each pair, and "ok" (B/A >= BENCH_AB_MIN) or "LOW"; then the line
# "bench A/B: N figures, N ≥ 0.95, N below". A figure that only one side has (a responder the
# other layout lacks) is shown as "only in A" or "only in B" and not counted. Also written to BENCH_AB_OUT. Exit status 0 when
# every figure is ok, 1 when one is LOW (or failed), 2 for a usage error.
#
# Environment: BENCH_AB_PAIRS (pairs per figure, default 3), BENCH_SECONDS (one wrk
# measurement, default 3), BENCH_WARMUP (untimed wrk load before it, default 1),
# BENCH_TTFB_RUNS (streamed requests per start, default 21), BENCH_QUICK=1 (1 s, no warm-up,
# 7 streamed requests: checks the script, not the code), BENCH_AB_MIN (default 0.95),
# BENCH_AB_OUT (default bench/results-ab.md), BENCH_KEEP=1 (keep the temporary directory and
# the baseline's tree), BENCH_BASELINE_TREE=DIR (a tree of the same commit kept by an earlier
# run: not built again), BENCH_AB_ONLY=REGEX (only the figures whose label, as the table writes
# it, matches the extended regular expression, e.g. 'RSS|no tools, 1 conn'; a measurement that
# gives several figures runs when one of them matches; default: every figure).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"

usage() { echo "usage: bash bench/ab.sh COMMIT   (make bench BASELINE=COMMIT; see the top of bench/ab.sh)" >&2; exit 2; }
[ $# = 1 ] && [ -n "$1" ] || usage
BASELINE=$1
# the gateways take their settings from the homes written here, not from the caller's shell
for v in $(compgen -e | grep '^MCPGW_'); do unset "$v"; done

if [ "${BENCH_QUICK:-}" = 1 ]; then
	DUR=${BENCH_SECONDS:-1} WARM=${BENCH_WARMUP:-0} TTFB_RUNS=${BENCH_TTFB_RUNS:-7}
else
	DUR=${BENCH_SECONDS:-3} WARM=${BENCH_WARMUP:-1} TTFB_RUNS=${BENCH_TTFB_RUNS:-21}
fi
PAIRS=${BENCH_AB_PAIRS:-3}
MIN=${BENCH_AB_MIN:-0.95}
OUT=${BENCH_AB_OUT:-$ROOT/bench/results-ab.md}
LIGHTTPD=${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
case $PAIRS in ''|*[!0-9]*) die "BENCH_AB_PAIRS: expected 1..20, got '$PAIRS'" ;; esac
[ "$PAIRS" -ge 1 ] && [ "$PAIRS" -le 20 ] || die "BENCH_AB_PAIRS: expected 1..20, got '$PAIRS'"
for v in "BENCH_SECONDS=$DUR" "BENCH_WARMUP=$WARM" "BENCH_TTFB_RUNS=$TTFB_RUNS"; do
	case ${v#*=} in ''|*[!0-9]*) die "${v%%=*}: expected whole seconds (or runs), got '${v#*=}'" ;; esac
done
[ "$DUR" -ge 1 ] && [ "$TTFB_RUNS" -ge 1 ] || die "BENCH_SECONDS and BENCH_TTFB_RUNS: at least 1"
ONLY=${BENCH_AB_ONLY:-}
if [ -n "$ONLY" ]; then
	printf '' | grep -Eq -- "$ONLY"
	[ $? != 2 ] || die "BENCH_AB_ONLY: not an extended regular expression: '$ONLY'"
fi
awk -v m="$MIN" 'BEGIN { exit !(m ~ /^[0-9]*[.]?[0-9]+$/ && m + 0 > 0) }' || die "BENCH_AB_MIN: expected a ratio such as 0.95, got '$MIN'"

SHA=$(git -C "$ROOT" rev-parse --verify --quiet "$BASELINE^{commit}") || die "$BASELINE: not a commit of $ROOT"
A_DESC="$(git -C "$ROOT" rev-parse --short "$SHA") ($(git -C "$ROOT" log -1 --format=%s "$SHA" | cut -c1-72))"
B_DESC="$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' with local changes')"
command -v wrk >/dev/null || die "wrk not found (sh deploy/install-deps.sh --bench)"
command -v node >/dev/null || die "node not found (sh deploy/install-deps.sh --bench)"
[ -x "$LIGHTTPD" ] || die "lighttpd not found (sh deploy/install-deps.sh)"
for f in deploy/mcpgwctl broker/mcpgw-broker mcp-server-sqlite/mcp-server-sqlite; do
	[ -x "$ROOT/$f" ] || die "$ROOT/$f: not built (run make bench BASELINE=$BASELINE)"
done

T0=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
# short base path: unix socket paths must fit in sun_path
WORK=$(mktemp -d /tmp/mcpgw-ab.XXXXXX) || die "mktemp failed"
SAMPLES="$WORK/samples.tsv"   # KEY SIDE PAIR VALUE
FIGURES="$WORK/figures.tsv"   # KEY KIND LABEL, in the order of the table
: >"$SAMPLES"; : >"$FIGURES"
BASE='' BASE_MADE='' SIM_PID='' UP_TREE='' UP_HOME='' BUILD_S=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -z "$UP_HOME" ] || ctl_stop "$UP_TREE" "$UP_HOME"
	[ -z "$SIM_PID" ] || stop_pid "$SIM_PID" 5
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		note "kept $WORK${BASE_MADE:+ and the baseline tree $BASE (BENCH_BASELINE_TREE=$BASE reuses it)}"
	else
		rm -rf "$WORK"
		[ -z "$BASE_MADE" ] || rm -rf "$BASE"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM HUP

# --- A: the baseline, built in its own tree ---------------------------------------------------

if [ -n "${BENCH_BASELINE_TREE:-}" ]; then
	BASE=$(cd "$BENCH_BASELINE_TREE" && pwd) || die "BENCH_BASELINE_TREE: no such directory"
	[ "$(cat "$BASE/.bench-commit" 2>/dev/null)" = "$SHA" ] ||
		die "BENCH_BASELINE_TREE: $BASE is not a tree of $BASELINE built by bench/ab.sh"
	note "A: $A_DESC, the tree built before in $BASE"
else
	BASE=$(mktemp -d /var/tmp/mcpgw-bench-base.XXXXXX) || die "mktemp in /var/tmp failed"
	BASE_MADE=1
	note "A: $A_DESC: building it in $BASE (its own make all)"
	git -C "$ROOT" archive "$SHA" | tar -x -C "$BASE" || die "git archive $SHA failed"
	make -C "$BASE" -j"$(nproc)" all >"$BASE/.bench-build.log" 2>&1 ||
		{ tail -n 20 "$BASE/.bench-build.log" >&2; die "the baseline $BASELINE does not build (log above)"; }
	echo "$SHA" >"$BASE/.bench-commit"
	BUILD_S=$(( $(date +%s) - T0 ))
	note "A built in $BUILD_S s"
fi
for f in deploy/mcpgwctl broker/mcpgw-broker mcp-server-sqlite/mcp-server-sqlite; do
	[ -x "$BASE/$f" ] || die "the baseline has no $f: ab.sh starts each side with its own deploy/mcpgwctl"
done
note "B: $B_DESC, $ROOT"

# --- the two sides ------------------------------------------------------------------------------

tree_of() { if [ "$1" = A ]; then echo "$BASE"; else echo "$ROOT"; fi; }
home_of() { echo "$WORK/$(echo "$1" | tr AB ab)"; }

# up SIDE [HOME [NSERVERS]]: SIDE's gateway started by its own mcpgwctl in HOME (default: the
# side's home, one sqlite server) on a free port; sets GW (ctl_start). One gateway at a time.
up() {
	[ -z "$UP_HOME" ] || die "internal: $UP_HOME still running"
	UP_TREE=$(tree_of "$1") UP_HOME=${2:-$(home_of "$1")}
	ctl_start "$UP_TREE" "$UP_HOME" "${3:-1}" "$(free_port)"
}
down() { ctl_stop "$UP_TREE" "$UP_HOME"; UP_TREE='' UP_HOME=''; }

# wanted LABEL...: one of the labels matches BENCH_AB_ONLY (or it is unset)
wanted() {
	local l
	[ -n "$ONLY" ] || return 0
	for l; do printf '%s\n' "$l" | grep -Eq -- "$ONLY" && return 0; done
	return 1
}
# figure KEY KIND LABEL: a row of the table (KIND: rate in req/s, higher is better; us, ms or kb:
# lower is better), unless BENCH_AB_ONLY leaves it out; record KEY SIDE PAIR VALUE: one
# measurement of it (dropped for a figure left out)
figure() { wanted "$3" || return 0; cut -f1 "$FIGURES" | grep -qx "$1" || printf '%s\t%s\t%s\n' "$@" >>"$FIGURES"; }
record() { cut -f1 "$FIGURES" | grep -qx "$1" || return 0; printf '%s\t%s\t%s\t%s\n' "$@" >>"$SAMPLES"; }

# alternate TITLE FN [KEY...]: FN SIDE PAIR for both sides, BENCH_AB_PAIRS times, A first in odd
# pairs and B first in even ones (A B, B A, A B, ...: a machine that grows slower or faster during
# the run, as a shared one does, favours neither side); with KEYs, only when one of those figures
# is in the table (BENCH_AB_ONLY)
alternate() {
	local i s k run=0
	[ $# -gt 2 ] || run=1
	for k in "${@:3}"; do cut -f1 "$FIGURES" | grep -qx "$k" && run=1; done
	[ "$run" = 1 ] || return 0
	note "$1"
	for i in $(seq "$PAIRS"); do
		for s in $([ $((i % 2)) = 1 ] && echo A B || echo B A); do "$2" "$s" "$i"; done
	done
}

# load SIDE PAIR RATE_KEY P50_KEY CONNS PATH [BODY]: one wrk measurement (post.lua with BODY, else
# GET) in a fresh start of SIDE's gateway; the rate goes to RATE_KEY, the median latency to
# P50_KEY ("-": not kept). A run with errors records 0 (the figure then fails).
load() {
	local side=$1 pair=$2 rk=$3 pk=$4 c=$5 path=$6 body=${7:-} r
	up "$side"
	if [ -n "$body" ]; then
		r=$(wrk_once "$side$pair-$rk$pk" "$c" "$GW$path" "$ROOT/bench/post.lua" "$body")
	else
		r=$(wrk_once "$side$pair-$rk$pk" "$c" "$GW$path")
	fi
	down
	[ "$rk" = - ] || record "$rk" "$side" "$pair" "${r% *}"
	[ "$pk" = - ] || record "$pk" "$side" "$pair" "${r#* }"
	note "  $side $pair: ${r% *} req/s, p50 ${r#* } us"
}

# --- checks: both sides answer what the figures measure -------------------------------------------

sim_start
bench_bodies
ctl_home "$(home_of A)" "$BASE" 1
ctl_home "$(home_of B)" "$ROOT" 1
check() {
	local side=$1 out="$WORK/check-$1"
	up "$side"
	curl -sf "$GW/v1/tools" -H 'Content-Type: application/json' -d "@$CALL_BODY" >"$out.call" && grep -q 'tool.result' "$out.call" ||
		die "$side: POST /v1/tools list_tables failed: $(cat "$out.call")"
	sim_reset
	curl -sf "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$PLAIN" >"$out.plain" && grep -q '"sim: bench-q"' "$out.plain" ||
		die "$side: a chat completion failed: $(cat "$out.plain")"
	sim_reset; round_script 1
	curl -sf "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$ROUND" >"$out.round" && grep -q '"no tables"' "$out.round" ||
		die "$side: the tool round failed: $(cat "$out.round")"
	[ "$(sim_bodies "$out.up")" = 2 ] || die "$side: the tool round did not make two upstream requests"
	sim_reset
	curl -sfN "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$STREAM" | grep -q '^data: \[DONE\]' || die "$side: a streamed completion failed"
	down
}
note "checking both gateways"
check A
check B
# the tool round's script: enough turns for the fastest side at 32 connections (checked after)
ROUND_PAIRS=$(( 6000 * (DUR + WARM) + 2000 ))
round_script "$ROUND_PAIRS"
ROUND_SCRIPT="$WORK/round-many.json"
mv "$WORK/round-script.json" "$ROUND_SCRIPT"

# --- the figures, each alternated -----------------------------------------------------------------

figure list_c32 rate "GET /v1/tools, 32 conns"
fig_list() { load "$1" "$2" list_c32 - 32 /v1/tools; }
alternate "GET /v1/tools, 32 connections" fig_list list_c32

figure call_c1_p50 us "POST /v1/tools list_tables, 1 conn, median"
figure call_c1 rate "POST /v1/tools list_tables, 1 conn"
fig_call1() { load "$1" "$2" call_c1 call_c1_p50 1 /v1/tools "$CALL_BODY"; }
alternate "POST /v1/tools list_tables, 1 connection" fig_call1 call_c1 call_c1_p50

figure call_c32 rate "POST /v1/tools list_tables, 32 conns"
fig_call32() { load "$1" "$2" call_c32 - 32 /v1/tools "$CALL_BODY"; }
alternate "POST /v1/tools list_tables, 32 connections" fig_call32 call_c32

figure chat_c1_p50 us "chat completion, no tools, 1 conn, median"
fig_chat1() { sim_reset; load "$1" "$2" - chat_c1_p50 1 /v1/chat/completions "$PLAIN"; }
alternate "chat completion without tools, 1 connection" fig_chat1 chat_c1_p50

figure chat_c32 rate "chat completion, no tools, 32 conns"
fig_chat32() { sim_reset; load "$1" "$2" chat_c32 - 32 /v1/chat/completions "$PLAIN"; }
alternate "chat completion without tools, 32 connections" fig_chat32 chat_c32

# round SIDE PAIR RATE_KEY P50_KEY CONNS: the tool round, with the queue checked after
round() {
	local q
	sim_reset; sim_script "$ROUND_SCRIPT"
	load "$1" "$2" "$3" "$4" "$5" /v1/chat/completions "$ROUND"
	q=$(sim_queued)
	[ "$q" -gt 64 ] || note "  WARNING: the scripted queue ran low ($q turns left): raise ROUND_PAIRS in bench/ab.sh"
}
figure round_c1_p50 us "chat completion, 1 tool round, 1 conn, median"
fig_round1() { round "$1" "$2" - round_c1_p50 1; }
alternate "chat completion with one tool round, 1 connection" fig_round1 round_c1_p50

figure round_c32 rate "chat completion, 1 tool round, 32 conns"
fig_round32() { round "$1" "$2" round_c32 - 32; }
alternate "chat completion with one tool round, 32 connections" fig_round32 round_c32

figure ttfb us "streamed completion, time to first byte, median of $TTFB_RUNS"
fig_ttfb() {
	local us
	sim_reset
	up "$1"
	curl -s -o /dev/null "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$STREAM"   # not counted: the first of a fresh start
	us=$(ttfb_us "$GW/v1/chat/completions" "$STREAM" "$TTFB_RUNS")
	down
	record ttfb "$1" "$2" "$us"
	note "  $1 $2: $us us"
}
alternate "streamed completion, time to first byte" fig_ttfb ttfb

# memory: after 1 s of each load above and one request to each responder, VmRSS of the broker,
# of the largest process of each responder (children of lighttpd, by name) and of them all
figure rss_broker kb "mcpgw-broker RSS, 1 stdio server, after the load"
fig_memory() {
	local side=$1 pair=$2 p name kb total=0 lpid
	local -A largest=()
	sim_reset; sim_script "$ROUND_SCRIPT"
	up "$side"
	DUR=1 WARM=0 wrk_once "$side$pair-mem-list" 32 "$GW/v1/tools" >/dev/null
	DUR=1 WARM=0 wrk_once "$side$pair-mem-call" 32 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" >/dev/null
	DUR=1 WARM=0 wrk_once "$side$pair-mem-chat" 32 "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$PLAIN" >/dev/null
	DUR=1 WARM=0 wrk_once "$side$pair-mem-round" 32 "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$ROUND" >/dev/null
	for p in /v1/models /health /v1/tools; do curl -s -o /dev/null "$GW$p"; done
	record rss_broker "$side" "$pair" "$(rss_kb "$(cat "$UP_HOME/var/broker.pid")")"
	lpid=$(cat "$UP_HOME/var/lighttpd.pid")
	for p in $(children_of "$lpid"); do
		name=$(comm_of "$p"); kb=$(rss_kb "$p")
		[ -n "$name" ] && [ -n "$kb" ] || continue
		total=$((total + kb))
		[ "${largest[$name]:-0}" -ge "$kb" ] || largest[$name]=$kb
	done
	down
	for name in $(printf '%s\n' "${!largest[@]}" | sort); do
		figure "rss_$name" kb "$name RSS (largest process), after the load"
		record "rss_$name" "$side" "$pair" "${largest[$name]}"
	done
	figure rss_responders kb "all responders' RSS together, after the load"
	record rss_responders "$side" "$pair" "$total"
	note "  $side $pair: broker and responders measured"
}
# the responders' rows are named by the processes found: the memory runs when one of the labels
# they could have (a responder of either tree) is wanted
mem_labels() {
	local f
	echo "all responders' RSS together, after the load"
	for f in "$BASE"/cgi-bin/*.c "$ROOT"/cgi-bin/*.c; do
		f=${f##*/}; echo "${f%.c}.fcgi RSS (largest process), after the load"
	done
}
mapfile -t MEM_LABELS < <(mem_labels)
if cut -f1 "$FIGURES" | grep -qx rss_broker || wanted "${MEM_LABELS[@]}"; then
	alternate "memory after the load" fig_memory
fi

# start-up: mcpgwctl start in a fresh home to the first GET /v1/tools listing tools
figure start1 ms "start-up: mcpgwctl start to the first GET /v1/tools listing tools, 1 stdio server"
fig_start1() {
	local home="$WORK/s1$1$2"
	ctl_home "$home" "$(tree_of "$1")" 1
	up "$1" "$home" 1
	down
	record start1 "$1" "$2" "$FIRST_MS"
	note "  $1 $2: $FIRST_MS ms"
}
alternate "start-up, 1 stdio server" fig_start1 start1

figure start10 ms "start-up: the same, 10 stdio servers"
figure start10_all ms "start-up: 10 stdio servers, all listed"
figure rss_broker10 kb "mcpgw-broker RSS, 10 stdio servers, idle after start"
fig_start10() {
	local home="$WORK/s10$1$2"
	ctl_home "$home" "$(tree_of "$1")" 10
	up "$1" "$home" 10
	record rss_broker10 "$1" "$2" "$(rss_kb "$(cat "$home/var/broker.pid")")"
	down
	record start10 "$1" "$2" "$FIRST_MS"
	record start10_all "$1" "$2" "$ALL_MS"
	note "  $1 $2: $FIRST_MS ms, all $ALL_MS ms"
}
alternate "start-up, 10 stdio servers" fig_start10 start10 start10_all rss_broker10

# --- the table ------------------------------------------------------------------------------------

[ -s "$FIGURES" ] || die "BENCH_AB_ONLY='$ONLY' matches no figure's label"

awk -v min="$MIN" -f "$ROOT/bench/abtable.awk" "$FIGURES" "$SAMPLES" >"$WORK/table.txt"
SUMMARY=$(sed -n 's/^SUMMARY\t//p' "$WORK/table.txt")
{
	echo "| figure | A median | B median | B/A (> 1: B better) | each pair | verdict |"
	echo "|---|---|---|---|---|---|"
	grep -v '^SUMMARY' "$WORK/table.txt"
} >"$WORK/table.md"
ELAPSED=$(( $(date +%s) - T0 ))
{
	echo "# mcpgw A/B benchmark"
	echo
	echo "\`make bench BASELINE=$BASELINE\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r); $((ELAPSED / 60)) min $((ELAPSED % 60)) s (building A: $BUILD_S s)."
	[ "${BENCH_QUICK:-}" != 1 ] || echo "**A quick run (BENCH_QUICK=1): it checks the script, not the code.**"
	[ -z "$ONLY" ] || echo "Only the figures matching BENCH_AB_ONLY='$ONLY'."
	echo "A: $A_DESC. B: $B_DESC."
	echo "lighttpd $("$LIGHTTPD" -v 2>/dev/null | sed -n 's/^lighttpd\/\([^ ]*\).*/\1/p'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), node $(node --version)."
	echo "Each figure: $PAIRS pairs, A B B A A B ... (each pair's first side alternates), each run in a fresh start of that side's gateway (its own mcpgwctl and binaries);"
	echo "wrk ${DUR} s after ${WARM} s of warm-up; time to first byte: median of $TTFB_RUNS streamed requests; the median of the runs of each side."
	echo "B/A is oriented so that above 1 is better for B: a rate B/A, a time or a memory size A/B; ok from $MIN."
	echo "Load average before / after the run: ${LOAD_START:-?} / $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)."
	echo
	cat "$WORK/table.md"
	echo
	echo "$SUMMARY"
} >"$OUT"
echo
cat "$WORK/table.md"
echo
echo "$SUMMARY"
echo "bench: written to $OUT ($((ELAPSED / 60)) min $((ELAPSED % 60)) s, building A: $BUILD_S s)"
case $SUMMARY in *", 0 below"*) exit 0 ;; *) exit 1 ;; esac
