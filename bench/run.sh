#!/usr/bin/env bash
# bench/run.sh: mcpgw's performance figures, each next to what it is compared with, in one run.
#
#   sh deploy/install-deps.sh --bench && make all bench-progs && bash bench/run.sh    (or: make bench)
#
# Starts, all on 127.0.0.1 and in a temporary directory: the upstream simulator
# (tests/upstream-sim), mcpgw-broker, lighttpd with the configuration mcpgwctl
# would write plus two extra FastCGI entries (/bench/fixed -> bench/fixed.fcgi, and the
# tool-call yardstick /bench/toolfloor -> bench/toolfloor.fcgi, its own stdio connection),
# supergateway; measures with wrk and curl; prints one table and writes it to
# bench/results.md. Everything it starts is stopped by PID when it ends, also on
# failure or Ctrl-C.
#
# Absolute numbers move by +-30% from run to run on a shared 2-core VM: every
# comparison is measured back to back (A, B, A, B; the best of each side) and
# the ratio is what to read.
#
# Environment: BENCH_SECONDS (length of one measurement, default 3),
# BENCH_WARMUP (seconds of untimed load before each, default 1),
# BENCH_TTFB_RUNS (curl runs per side for time to first byte, default 21),
# BENCH_PAIRS (alternated pairs of the keys section, default 15),
# BENCH_OUT (default bench/results.md), BENCH_KEEP=1 keeps the temporary directory,
# BENCH_ONLY=list,call,chat,memory,startup,keys,capacity runs only those sections (default: all).
# The capacity section (issue 16: N streamed chats with a tool round each at once, N = 100, 300,
# 1000, each N bounded to 2 minutes; about 5 minutes today) is bench/capacity.sh, run last, with its
# own simulator and gateways: its settings (BENCH_CAPACITY_N, BENCH_CAPACITY_DELAY_MS,
# BENCH_CAPACITY_SECONDS, BENCH_CAPACITY_QUICK) are described there.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${BENCH_SECONDS:-3}
WARM=${BENCH_WARMUP:-1}
TTFB_RUNS=${BENCH_TTFB_RUNS:-21}
OUT=${BENCH_OUT:-$ROOT/bench/results.md}
NODE_MODULES="$ROOT/tests/node_modules"
LOOPBACK="$ROOT/tests/loopback.cjs"
LIGHTTPD=${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}
SQLITE_SRV="$ROOT/mcp-server-sqlite/mcp-server-sqlite"
export PATH="$ROOT/mcp-server-sqlite:$PATH"

. "$ROOT/bench/lib.sh"
want() { case ",${BENCH_ONLY:-list,call,chat,memory,startup,keys,capacity}," in *",$1,"*) return 0 ;; esac; return 1; }

for bin in broker/mcpgw-broker cgi-bin/tools.fcgi cgi-bin/chat.fcgi bench/fixed.fcgi bench/toolfloor.fcgi bench/stdio_floor "$SQLITE_SRV"; do
	case $bin in /*) ;; *) bin="$ROOT/$bin" ;; esac
	[ -x "$bin" ] || die "$bin: not built (run make bench)"
done
command -v wrk >/dev/null || die "wrk not found (sh deploy/install-deps.sh --bench)"
[ -x "$LIGHTTPD" ] || die "lighttpd not found (sh deploy/install-deps.sh)"
if [ ! -x "$NODE_MODULES/.bin/supergateway" ]; then
	note "installing tests/node_modules (npm ci)"
	(cd "$ROOT/tests" && npm ci --no-audit --no-fund >/dev/null 2>&1) || die "npm ci in tests/ failed"
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
# short base path: unix socket paths must fit in sun_path
WORK=$(mktemp -d /tmp/mcpgw-bench.XXXXXX) || die "mktemp failed"
ROWS="$WORK/rows.tsv"
: >"$ROWS"

# --- processes: everything started is remembered and stopped by PID -------------------------

PIDS=""        # started directly: stopped with SIGTERM, then SIGKILL
LIGHTTPD_PID='' SG_PID=''
CTL_HOMES=""   # homes started with mcpgwctl start: mcpgwctl stop
EXTRA_PIDS=""  # children seen while running (FastCGI backends, supergateway's server)

remember() { PIDS="$PIDS $1"; }
remember_extra() { EXTRA_PIDS="$EXTRA_PIDS $*"; }

cleanup() {
	local rc=$? p h
	trap - EXIT INT TERM HUP
	for h in $CTL_HOMES; do ctl_stop "$ROOT" "$h"; done
	# the FastCGI backends outlive a lighttpd that had to be killed; supergateway's server likewise
	for p in ${LIGHTTPD_PID:-} ${SG_PID:-}; do EXTRA_PIDS="$EXTRA_PIDS $(children_of "$p" | tr '\n' ' ')"; done
	# newest first: lighttpd before the broker, supergateway before its server
	for p in $(echo $PIDS | tr ' ' '\n' | tac); do stop_pid "$p" 5; done
	for p in $EXTRA_PIDS; do stop_pid "$p" 2; done
	if [ "${BENCH_KEEP:-}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM HUP

# measure_pair NAME_A ARGS_A... -- NAME_B ARGS_B... : A, B, A, B back to back; sets
# A_RPS A_P50 B_RPS B_P50 (best rate and lowest median of the two runs of each side)
best() { awk -v a="$1" -v b="$2" -v hi="$3" 'BEGIN { if (a == 0) print b; else if (b == 0) print a; else if ((hi && b > a) || (!hi && b < a)) print b; else print a }'; }
measure_pair() {
	local a=() b=() seen=0 r1 r2 r3 r4
	for x in "$@"; do
		if [ "$x" = -- ]; then seen=1; elif [ $seen = 0 ]; then a+=("$x"); else b+=("$x"); fi
	done
	r1=$(wrk_once "${a[@]}"); r2=$(wrk_once "${b[@]}")
	r3=$(wrk_once "${a[@]}"); r4=$(wrk_once "${b[@]}")
	A_RPS=$(best "${r1% *}" "${r3% *}" 1); A_P50=$(best "${r1#* }" "${r3#* }" 0)
	B_RPS=$(best "${r2% *}" "${r4% *}" 1); B_P50=$(best "${r2#* }" "${r4#* }" 0)
	note "  ${a[0]}: ${r1% *} / ${r3% *} req/s, p50 ${r1#* } / ${r3#* } us"
	note "  ${b[0]}: ${r2% *} / ${r4% *} req/s, p50 ${r2#* } / ${r4#* } us"
}

# row WHAT VALUE COMPARISON RATIO TARGET VERDICT
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
# verdict_ge A B MIN: MET when A/B >= MIN; verdict_le X MAX: MET when X <= MAX
verdict_ge() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { print (a > 0 && b > 0 && a / b >= m) ? "MET" : "MISSED" }'; }
verdict_le() { awk -v x="$1" -v m="$2" 'BEGIN { print (x != "" && x <= m) ? "MET" : "MISSED" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a - b }'; }
# latency_row WHAT GW_US DIRECT_US DIRECT_NAME MAX_ADDED_US
latency_row() {
	local add; add=$(added "$2" "$3")
	row "$1" "$(fmt_ms "$2")" "$(fmt_ms "$3") ($4)" "$(ratio "$2" "$3") (+$(fmt_ms "$add"))" \
		"added <= $(fmt_ms "$5")" "$( [ "$2" != 0 ] && verdict_le "$add" "$5" || echo MISSED)"
}
# rate_row WHAT GW_RPS OTHER_RPS OTHER_NAME MIN_RATIO
rate_row() {
	row "$1" "$(fmt_rps "$2")" "$(fmt_rps "$3") ($4)" "$(ratio "$2" "$3")" ">= $5x" "$(verdict_ge "$2" "$3" "$5")"
}

# --- 0. the upstream simulator ------------------------------------------------------------

note "starting the upstream simulator"
sim_start; remember $SIM_PID
bench_bodies

# --- 1. the gateway: broker + lighttpd (mcpgwctl's configuration + /bench/fixed) ------------

HOME_GW="$WORK/gw"
STATE="$HOME_GW/var"
mkdir -p "$STATE/htdocs" && chmod 700 "$STATE"
cp "$ROOT/servers_config.json" "$HOME_GW/servers_config.json"   # the default config: the sqlite server
cat >"$HOME_GW/.env" <<EOF
OPENAI_BASE_URL=$SIM_URL/v1
OPENAI_API_KEY=sk-mcpgw-bench
EOF
GW_PORT=$(free_port)
GW="http://127.0.0.1:$GW_PORT"
FIXED_BODY="$WORK/fixed-body.json"
printf '{"object":"list","data":[]}\n' >"$FIXED_BODY"   # replaced by /v1/tools' own answer below

# the configuration mcpgwctl writes (same sed on lighttpd.conf.example; without the whole-server
# rule that sends every other path to health.fcgi, as on a shared server), plus /bench/fixed with the
# same process counts (read from the /v1/tools entry) and environment as /v1/tools
read -r TOOLS_MIN TOOLS_MAX <<EOF_PROCS
$(awk '/"\/v1\/tools" =>/ { f = 1 } f && /min-procs/ { print; exit }' "$ROOT/lighttpd.conf.example" |
	sed -n 's/.*"min-procs" => *\([0-9]*\).*"max-procs" => *\([0-9]*\).*/\1 \2/p')
EOF_PROCS
[ -n "${TOOLS_MAX:-}" ] || die "lighttpd.conf.example: no min-procs/max-procs line in the /v1/tools entry"
sed -e "s|^var.mcpgw_root .*|var.mcpgw_root  = \"$ROOT\"|" \
    -e "s|^var.mcpgw_home .*|var.mcpgw_home  = \"$HOME_GW\"|" \
    -e "s|^var.mcpgw_state .*|var.mcpgw_state = \"$STATE\"|" \
    -e "s|^server.bind .*|server.bind     = \"127.0.0.1\"|" \
    -e "s|^server.port .*|server.port     = $GW_PORT|" \
    -e '/=> "\/health",  # whole server$/d' \
    "$ROOT/lighttpd.conf.example" >"$STATE/lighttpd.conf"
cat >>"$STATE/lighttpd.conf" <<EOF

# --- bench only: the minimal FastCGI responder, and the tool-call yardstick (a minimal
# FastCGI responder with its own stdio connection to the sqlite server, no broker), both
# configured like /v1/tools ---
fastcgi.server += (
  "/bench/fixed" => ((
    "bin-path" => "$ROOT/bench/fixed.fcgi",
    "socket" => var.mcpgw_state + "/fcgi-fixed.sock",
    "check-local" => "disable",
    "min-procs" => $TOOLS_MIN, "max-procs" => $TOOLS_MAX,
    "bin-environment" => var.mcpgw_env + ( "BENCH_FIXED_BODY" => "$FIXED_BODY" ),
  )),
  "/bench/toolfloor" => ((
    "bin-path" => "$ROOT/bench/toolfloor.fcgi",
    "socket" => var.mcpgw_state + "/fcgi-toolfloor.sock",
    "check-local" => "disable",
    "min-procs" => $TOOLS_MIN, "max-procs" => $TOOLS_MAX,
    "bin-environment" => var.mcpgw_env + ( "BENCH_TOOLFLOOR_SERVER" => "$SQLITE_SRV",
                                           "BENCH_TOOLFLOOR_DB" => "$WORK/toolfloor.db" ),
  )),
)
EOF
"$LIGHTTPD" -tt -f "$STATE/lighttpd.conf" >/dev/null || die "$STATE/lighttpd.conf: lighttpd rejects it"

export MCPGW_HOME="$HOME_GW" MCPGW_STATE_DIR="$STATE"
start_gateway() {
	"$ROOT/broker/mcpgw-broker" >>"$STATE/broker.log" 2>&1 &
	BROKER_PID=$!; remember $BROKER_PID
	wait_for test -S "$STATE/broker.sock" || die "the broker did not start: $(tail -n 5 "$STATE/broker.log")"
	"$LIGHTTPD" -D -f "$STATE/lighttpd.conf" &
	LIGHTTPD_PID=$!; remember $LIGHTTPD_PID
	wait_for sh -c "curl -sf '$GW/v1/tools' | grep -q list_tables" || die "no tool list at $GW/v1/tools"
}
stop_gateway() {
	local p
	for p in $(children_of "$LIGHTTPD_PID"); do remember_extra "$p"; done
	stop_pid "$LIGHTTPD_PID" 10
	stop_pid "$BROKER_PID" 15
}
note "starting the gateway on $GW"
start_gateway
BROKER_RSS_IDLE=$(rss_kb "$BROKER_PID")
unset MCPGW_HOME MCPGW_STATE_DIR
# the fixed responder gets a body of exactly the size of GET /v1/tools: restart lighttpd to reload it
curl -sf "$GW/v1/tools" -o "$FIXED_BODY" || die "GET /v1/tools failed"
stop_pid "$LIGHTTPD_PID" 10
"$LIGHTTPD" -D -f "$STATE/lighttpd.conf" &
LIGHTTPD_PID=$!; remember $LIGHTTPD_PID
wait_for sh -c "curl -sf '$GW/bench/fixed' | cmp -s - '$FIXED_BODY'" || die "/bench/fixed does not serve the tool list"
wait_for curl -sf "$GW/v1/tools" || die "/v1/tools does not answer after the restart"
TOOLS_BYTES=$(wc -c <"$FIXED_BODY")
note "GET /v1/tools: $TOOLS_BYTES bytes; /bench/fixed serves the same bytes"

# --- 2. listing tools ---------------------------------------------------------------------

if want list; then
note "1. GET /v1/tools vs the minimal FastCGI responder, 32 connections"
measure_pair tools-list 32 "$GW/v1/tools" -- fixed 32 "$GW/bench/fixed"
rate_row "GET /v1/tools, 32 conns ($TOOLS_BYTES-byte body)" "$A_RPS" "$B_RPS" "minimal FastCGI responder, same body" 0.8
fi

# floor_measure: the median of N sequential direct stdio calls (bench/stdio_floor); FLOOR_US keeps
# the lowest of the runs so far (each side of a comparison gets its best run)
FLOOR_US='' FLOOR_LINE=''
floor_measure() {
	local line us
	line=$("$ROOT/bench/stdio_floor" -n 3000 -w 300 -- "$SQLITE_SRV" --db-path "$WORK/floor.db" 2>/dev/null) ||
		die "stdio_floor failed: $line"
	us=$(echo "$line" | sed -n 's/.*median_us=\([0-9.]*\).*/\1/p')
	note "  direct stdio floor: $line"
	if [ -z "$FLOOR_US" ] || awk -v a="$us" -v b="$FLOOR_US" 'BEGIN { exit !(a < b) }'; then
		FLOOR_US=$us FLOOR_LINE=$line
	fi
}

# --- 3. running a tool --------------------------------------------------------------------

SG_PID=''
if want call; then
note "2. POST /v1/tools list_tables (sqlite server, empty db)"
curl -sf "$GW/v1/tools" -H 'Content-Type: application/json' -d "@$CALL_BODY" | grep -q '"tool.result"' || die "POST /v1/tools list_tables failed"
floor_measure
# the everything server's echo, for the record (the sqlite server is the faster trivial tool)
ECHO_LINE=$("$ROOT/bench/stdio_floor" -n 1000 -w 200 -t echo -a '{"message":"hi"}' -- \
	"$NODE_MODULES/.bin/mcp-server-everything" stdio 2>/dev/null) && note "  (everything echo over stdio: $ECHO_LINE)"

# supergateway, stateful Streamable HTTP over the same server
SG_PORT=$(free_port)
SG_DB="$WORK/sg.db"
node --require "$LOOPBACK" "$NODE_MODULES/supergateway/dist/index.js" --stdio "$SQLITE_SRV --db-path $SG_DB" \
	--outputTransport streamableHttp --stateful --port "$SG_PORT" --logLevel none >"$WORK/sg.log" 2>&1 &
SG_PID=$!; remember $SG_PID
SG="http://127.0.0.1:$SG_PORT/mcp"
mcp_post() { curl -s -D "$WORK/sg.h" -o "$WORK/sg.b" -H 'Content-Type: application/json' \
	-H 'Accept: application/json, text/event-stream' ${SG_SESSION:+-H "Mcp-Session-Id: $SG_SESSION"} \
	${SG_SESSION:+-H "MCP-Protocol-Version: 2025-06-18"} -d "$1" "$SG"; }
wait_for mcp_post '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' ||
	die "supergateway does not answer: $(cat "$WORK/sg.log")"
SG_SESSION=$(tr -d '\r' <"$WORK/sg.h" | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *//p')
[ -n "$SG_SESSION" ] || die "supergateway gave no Mcp-Session-Id: $(cat "$WORK/sg.h" "$WORK/sg.b")"
mcp_post '{"jsonrpc":"2.0","method":"notifications/initialized"}'
mcp_post '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_tables","arguments":{}}}'
grep -q '"result"' "$WORK/sg.b" || die "supergateway tools/call failed: $(cat "$WORK/sg.b")"
for p in $(children_of "$SG_PID"); do remember_extra "$p"; done
export BENCH_SESSION=$SG_SESSION

note "  1 connection: gateway vs supergateway"
measure_pair tools-call-c1 1 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" -- sg-call-c1 1 "$SG" "$ROOT/bench/mcp.lua"
CALL1_RPS=$A_RPS CALL1_P50=$A_P50 SG1_RPS=$B_RPS
floor_measure   # again, right after: the floor moves with the machine's load like everything else
note "  32 connections: gateway vs supergateway"
measure_pair tools-call-c32 32 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" -- sg-call-c32 32 "$SG" "$ROOT/bench/mcp.lua"
CALL32_RPS=$A_RPS SG32_RPS=$B_RPS
note "  32 connections: gateway vs the minimal FastCGI responder"
measure_pair tools-call-c32b 32 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" -- fixed-b 32 "$GW/bench/fixed"
CALL32B_RPS=$A_RPS FIXED_B_RPS=$B_RPS
# the yardstick of issue 16: the same call over HTTP by a responder that owns its stdio connection
curl -sf "$GW/bench/toolfloor" -H 'Content-Type: application/json' -d "@$CALL_BODY" | grep -q '"tool.result"' ||
	die "the tool-call yardstick (/bench/toolfloor) does not answer"
note "  1 connection: gateway vs the tool-call yardstick"
measure_pair tools-call-c1y 1 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" -- \
	toolfloor-c1 1 "$GW/bench/toolfloor" "$ROOT/bench/post.lua" "$CALL_BODY"
CALL1Y_RPS=$A_RPS FLOOR1_RPS=$B_RPS
note "  32 connections: gateway vs the tool-call yardstick"
measure_pair tools-call-c32y 32 "$GW/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY" -- \
	toolfloor-c32 32 "$GW/bench/toolfloor" "$ROOT/bench/post.lua" "$CALL_BODY"
CALL32Y_RPS=$A_RPS FLOOR32_RPS=$B_RPS
mcp_post '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_tables","arguments":{}}}'
grep -q '"result"' "$WORK/sg.b" || note "supergateway no longer answers after the load: $(cat "$WORK/sg.b")"

latency_row "POST /v1/tools list_tables, 1 conn, median" "$CALL1_P50" "$FLOOR_US" "direct stdio call" 300
rate_row "POST /v1/tools list_tables, 32 conns" "$CALL32B_RPS" "$FIXED_B_RPS" "minimal FastCGI responder" 0.5
rate_row "POST /v1/tools list_tables, 1 conn" "$CALL1Y_RPS" "$FLOOR1_RPS" "tool-call yardstick: FastCGI + own stdio, no broker" 0.8
rate_row "POST /v1/tools list_tables, 32 conns" "$CALL32Y_RPS" "$FLOOR32_RPS" "tool-call yardstick: FastCGI + own stdio, no broker" 0.8
rate_row "POST /v1/tools list_tables, 1 conn" "$CALL1_RPS" "$SG1_RPS" "supergateway stateful" 10
rate_row "POST /v1/tools list_tables, 32 conns" "$CALL32_RPS" "$SG32_RPS" "supergateway stateful" 10
fi

# --- 4. chat completions ------------------------------------------------------------------

if want chat; then
note "3. chat completions"
sim_reset
curl -sf "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$PLAIN" | grep -q '"sim: bench-q"' || die "chat completion through the gateway failed"
[ "$(sim_bodies "$WORK/up-plain")" = 1 ] || die "expected one upstream request"
# the direct side sends exactly the body the gateway sent upstream
note "  upstream body: $(cat "$WORK/up-plain.1")"

DIRECT_BODY="$WORK/up-plain.1"
sim_reset
note "  1 connection: gateway vs direct"
measure_pair chat-c1 1 "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$PLAIN" -- \
	direct-c1 1 "$SIM_URL/v1/chat/completions" "$ROOT/bench/post.lua" "$DIRECT_BODY"
CHAT1_P50=$A_P50 DIRECT1_P50=$B_P50
sim_reset
note "  32 connections: gateway vs direct"
measure_pair chat-c32 32 "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$PLAIN" -- \
	direct-c32 32 "$SIM_URL/v1/chat/completions" "$ROOT/bench/post.lua" "$DIRECT_BODY"
CHAT32_RPS=$A_RPS DIRECT32_RPS=$B_RPS
sim_reset
latency_row "chat completion, no tools, 1 conn, median" "$CHAT1_P50" "$DIRECT1_P50" "straight to the upstream" 1000
rate_row "chat completion, no tools, 32 conns" "$CHAT32_RPS" "$DIRECT32_RPS" "straight to the upstream" 0.5

# one tool round (round_script)
note "  one tool round"
sim_reset; round_script 1
curl -sf "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$ROUND" >"$WORK/round.out"
grep -q '"no tables"' "$WORK/round.out" || die "the tool round failed: $(cat "$WORK/round.out")"
[ "$(sim_bodies "$WORK/up-round")" = 2 ] || die "the tool round did not make two upstream requests"
grep -q '"role":"tool"' "$WORK/up-round.2" && grep -q '"content":"bench-round"}]' "$WORK/up-round.1" &&
	! grep -q '"content":"bench-round"}]' "$WORK/up-round.2" || die "the match strings do not tell the rounds apart"
# enough turns for the longest run: about the direct plain rate x the seconds of one side
ROUND_PAIRS=$(awk -v r="$DIRECT32_RPS" -v d="$DUR" -v w="$WARM" 'BEGIN { printf "%d", r * (d + w) * 0.75 + 2000 }')
round_pair() { # NAME CONNS: gateway then direct, twice; sets G_RPS G_P50 D_RPS D_P50
	local r1 r2 r3 r4 q1 q2
	sim_reset; round_script "$ROUND_PAIRS"
	r1=$(wrk_once "round-$1" "$2" "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$ROUND")
	q1=$(sim_queued)
	sim_reset; round_script "$ROUND_PAIRS"
	r2=$(wrk_once "round-direct-$1" "$2" "$SIM_URL/v1/chat/completions" "$ROOT/bench/post.lua" \
		"$WORK/up-round.1" "$WORK/up-round.2")
	q2=$(sim_queued)
	sim_reset; round_script "$ROUND_PAIRS"
	r3=$(wrk_once "round-$1" "$2" "$GW/v1/chat/completions" "$ROOT/bench/post.lua" "$ROUND")
	sim_reset; round_script "$ROUND_PAIRS"
	r4=$(wrk_once "round-direct-$1" "$2" "$SIM_URL/v1/chat/completions" "$ROOT/bench/post.lua" \
		"$WORK/up-round.1" "$WORK/up-round.2")
	[ "$q1" -gt 64 ] && [ "$q2" -gt 64 ] || note "  WARNING: the scripted queue ran low ($q1, $q2 left)"
	G_RPS=$(best "${r1% *}" "${r3% *}" 1); G_P50=$(best "${r1#* }" "${r3#* }" 0)
	D_RPS=$(best "${r2% *}" "${r4% *}" 1); D_P50=$(best "${r2#* }" "${r4#* }" 0)
	note "  round-$1: ${r1% *} / ${r3% *} req/s, p50 ${r1#* } / ${r3#* } us"
	note "  round-direct-$1 (2 upstream requests per round): ${r2% *} / ${r4% *} req/s, p50 ${r2#* } / ${r4#* } us"
}
round_pair c1 1
ROUND1_P50=$G_P50 ROUND_DIRECT1_P50=$D_P50
floor_measure
round_pair c32 32
ROUND32_RPS=$G_RPS ROUND_DIRECT32_RPS=$D_RPS
sim_reset
# direct: two upstream requests + one stdio tool call per round
latency_row "chat completion, 1 tool round, 1 conn, median" "$ROUND1_P50" \
	"$(awk -v a="$ROUND_DIRECT1_P50" -v f="$FLOOR_US" 'BEGIN { print 2 * a + f }')" \
	"2 upstream requests + 1 stdio call" 1000
rate_row "chat completion, 1 tool round, 32 conns" "$ROUND32_RPS" \
	"$(awk -v r="$ROUND_DIRECT32_RPS" 'BEGIN { print r / 2 }')" "upstream requests / 2" 0.5

# time to first byte of a streamed answer, curl's time_starttransfer, alternating sides
note "  time to first byte (streaming), $TTFB_RUNS runs per side"
sim_reset
curl -sfN "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$STREAM" | grep -q '^data: \[DONE\]' || die "streamed completion failed"
sim_bodies "$WORK/up-stream" >/dev/null
: >"$WORK/ttfb-gw"; : >"$WORK/ttfb-direct"
for i in $(seq "$TTFB_RUNS"); do
	curl -s -o /dev/null -w '%{time_starttransfer}\n' "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d "@$STREAM" >>"$WORK/ttfb-gw"
	curl -s -o /dev/null -w '%{time_starttransfer}\n' -H 'Content-Type: application/json' \
		"$SIM_URL/v1/chat/completions" -d "@$WORK/up-stream.1" >>"$WORK/ttfb-direct"
done
TTFB_GW=$(awk '{ print $1 * 1e6 }' "$WORK/ttfb-gw" | median)
TTFB_DIRECT=$(awk '{ print $1 * 1e6 }' "$WORK/ttfb-direct" | median)
sim_reset
latency_row "streamed completion, time to first byte, median of $TTFB_RUNS" "$TTFB_GW" "$TTFB_DIRECT" \
	"straight to the upstream" 1000
fi

# --- 5. memory ----------------------------------------------------------------------------

# mem_row WHAT PID MAX_KB [COMPARISON_KB COMPARISON_NAME]: VmRSS (the target) with RssAnon (private) noted
mem_row() {
	local kb anon
	kb=$(rss_kb "$2"); anon=$(anon_kb "$2")
	[ -n "$kb" ] || { row "$1" "(gone)" "-" "-" "<= $(fmt_mb "$3")" "MISSED"; return; }
	row "$1" "$(fmt_mb "$kb") (anon $(fmt_mb "$anon"))" \
		"$( [ -n "${4:-}" ] && echo "$(fmt_mb "$4") ($5)" || echo -)" "$( [ -n "${4:-}" ] && ratio "$kb" "$4" || echo -)" \
		"<= $(fmt_mb "$3")" "$(verdict_le "$kb" "$3")"
}

if want memory; then
	note "4. memory"
	# every responder has served something
	for u in /v1/models /health /v1/tools; do curl -s -o /dev/null "$GW$u"; done
	curl -s -o /dev/null "$GW/v1/chat/completions" -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"m"}],"mcp":{"tools":false}}'
	SG_RSS=$( [ -n "$SG_PID" ] && rss_kb "$SG_PID")
	mem_row "mcpgw-broker RSS, default config (1 stdio server), after the load (idle after start: $(fmt_mb "$BROKER_RSS_IDLE"))" \
		"$BROKER_PID" 8192 "$SG_RSS" "supergateway, 1 server"
	# the responders: children of lighttpd, the largest process of each kind
	declare -A RESP_PID RESP_N
	for p in $(children_of "$LIGHTTPD_PID"); do
		name=$(comm_of "$p"); kb=$(rss_kb "$p")
		[ -n "$name" ] && [ -n "$kb" ] || continue
		RESP_N[$name]=$(( ${RESP_N[$name]:-0} + 1 ))
		if [ -z "${RESP_PID[$name]:-}" ] || [ "$kb" -gt "$(rss_kb "${RESP_PID[$name]}")" ]; then RESP_PID[$name]=$p; fi
	done
	FIXED_KB=$( [ -n "${RESP_PID[fixed.fcgi]:-}" ] && rss_kb "${RESP_PID[fixed.fcgi]}")
	for name in $(printf '%s\n' "${!RESP_PID[@]}" | sort); do
		[ "$name" = fixed.fcgi ] && continue
		mem_row "$name RSS (largest of ${RESP_N[$name]}), after the load" "${RESP_PID[$name]}" 6144 "$FIXED_KB" "fixed.fcgi"
	done
fi
[ -n "$SG_PID" ] && stop_pid "$SG_PID" 5
stop_gateway

# --- 6. start-up with mcpgwctl, 1 and 10 stdio servers --------------------------------------

# startup NAME NSERVERS: mcpgwctl start in a fresh home (ctl_start); sets FIRST_MS, ALL_MS and
# BROKER_N_PID (for the VmRSS row once every server is ready)
startup() {
	local home="$WORK/$1"
	ctl_home "$home" "$ROOT" "$2"
	CTL_HOMES="$CTL_HOMES $home"
	ctl_start "$ROOT" "$home" "$2" "$(free_port)"
	BROKER_N_PID=$(cat "$home/var/broker.pid")
}
if want startup; then
	note "5. start-up"
	startup start1 1
	row "start-up: mcpgwctl start to the first GET /v1/tools listing tools, 1 stdio server" "$FIRST_MS ms" "-" "-" "-" "info"
	ctl_stop "$ROOT" "$WORK/start1"
	startup start10 10
	row "start-up: the same, 10 stdio servers (all listed: $ALL_MS ms)" "$FIRST_MS ms" "-" "-" "-" "info"
	mem_row "mcpgw-broker RSS, 10 stdio servers (10 x sqlite), idle after start" "$BROKER_N_PID" 8192 \
		"${SG_RSS:-}" "supergateway, 1 server"
	ctl_stop "$ROOT" "$WORK/start10"
fi

# --- 7. the API-key check and the access log --------------------------------------------------

# Two gateways of the same build and configuration (mcpgwctl start, lighttpd, one sqlite server):
# A with no key at all (loopback: nothing to check) and MCPGW_LOG_LEVEL=warn (no access-log line);
# B with a key in its state store, sent and checked on every request (lib/http/auth.c), and the
# access log on (info: one line per request into responders.log). POST /v1/tools list_tables,
# BENCH_PAIRS pairs measured back to back (A then B); the figure is the median of the pairs' ratios
# B/A (each pair shares the machine's load of its moment), next to the median rate of each side.
if want keys; then
	note "6. POST /v1/tools: a key checked and the access log (info) vs no key and log level warn"
	ctl_home "$WORK/keyed" "$ROOT" 1
	ctl_home "$WORK/keyless" "$ROOT" 1
	echo "MCPGW_LOG_LEVEL=warn" >>"$WORK/keyless/.env"
	echo "MCPGW_LOG_LEVEL=info" >>"$WORK/keyed/.env"
	CTL_HOMES="$CTL_HOMES $WORK/keyed $WORK/keyless"
	ctl_start "$ROOT" "$WORK/keyless" 1 "$(free_port)"
	GW_NOKEY=$GW
	ctl_start "$ROOT" "$WORK/keyed" 1 "$(free_port)"
	GW_KEY=$GW
	BENCH_KEY=$(MCPGW_HOME="$WORK/keyed" MCPGW_STATE_DIR="$WORK/keyed/var" sh "$ROOT/deploy/mcpgwctl" keys create bench 2>/dev/null) ||
		die "mcpgwctl keys create failed"
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$GW_KEY/v1/tools" -d "@$CALL_BODY")" = 401 ] ||
		die "the keyed gateway answers without the key"
	curl -sf -H "Authorization: Bearer $BENCH_KEY" -H 'Content-Type: application/json' "$GW_KEY/v1/tools" -d "@$CALL_BODY" |
		grep -q '"tool.result"' || die "POST /v1/tools with the key failed"
	# the log thread writes access lines within 100 ms (lib/core/log.c, log_spool): waited for
	wait_for grep -q " INFO access method=POST endpoint=/v1/tools status=200 key=$(echo "$BENCH_KEY" | cut -d- -f3) " \
		"$WORK/keyed/var/responders.log" || die "the keyed gateway writes no access-log line at info"
	PAIRS=${BENCH_PAIRS:-15}
	: >"$WORK/keys-pairs"
	# keys_side NAME HOME URL [AUTH]: one measurement; prints "RPS CPU_US_PER_REQUEST" (the CPU
	# time of that gateway's processes, from /proc, per request answered: less moved by other
	# work on the machine than the rate)
	keys_side() {
		local name=$1 home=$2 url=$3 c0 c1 r n
		if [ -n "${4:-}" ]; then export BENCH_AUTH="$4"; else unset BENCH_AUTH; fi
		c0=$(gw_cpu_ticks "$home")
		r=$(wrk_once "$name" 32 "$url/v1/tools" "$ROOT/bench/post.lua" "$CALL_BODY")
		c1=$(gw_cpu_ticks "$home")
		unset BENCH_AUTH
		n=$(awk '/requests in/ { print $1 }' "$WORK/wrk-$name.txt")
		echo "${r% *} $(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
			'BEGIN { if (n > 0) printf "%.1f", (b - a) / hz * 1e6 / n; else print 0 }')"
	}
	for i in $(seq "$PAIRS"); do
		# the order alternates (A B, then B A): a drift of the machine's load favours neither side
		if [ $((i % 2)) = 1 ]; then
			ra=$(keys_side "keyless-$i" "$WORK/keyless" "$GW_NOKEY")
			rb=$(keys_side "keyed-$i" "$WORK/keyed" "$GW_KEY" "Bearer $BENCH_KEY")
		else
			rb=$(keys_side "keyed-$i" "$WORK/keyed" "$GW_KEY" "Bearer $BENCH_KEY")
			ra=$(keys_side "keyless-$i" "$WORK/keyless" "$GW_NOKEY")
		fi
		echo "$ra $rb $(ratio "${rb% *}" "${ra% *}")" >>"$WORK/keys-pairs"
		note "  pair $i: no key, warn ${ra% *} req/s (${ra#* } us CPU/req); key + access log ${rb% *} req/s (${rb#* } us CPU/req); ratio $(ratio "${rb% *}" "${ra% *}")"
	done
	# keys-pairs: RPS_A CPU_A RPS_B CPU_B RATIO
	A_MED=$(cut -d' ' -f1 "$WORK/keys-pairs" | median)
	B_MED=$(cut -d' ' -f3 "$WORK/keys-pairs" | median)
	A_CPU=$(cut -d' ' -f2 "$WORK/keys-pairs" | median)
	B_CPU=$(cut -d' ' -f4 "$WORK/keys-pairs" | median)
	KEYS_RATIO=$(awk '$1 > 0 && $3 > 0 { print $3 / $1 }' "$WORK/keys-pairs" | median)
	KEYS_VERDICT=$(awk -v r="$KEYS_RATIO" 'BEGIN { print (r >= 0.95) ? "ok" : "LOW" }')
	KEYS_PAIRS=$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $5 }' "$WORK/keys-pairs")
	note "  key check + access log: median ratio $(printf '%.2f' "$KEYS_RATIO") over $PAIRS pairs ($KEYS_PAIRS): $KEYS_VERDICT; CPU per request (median) $B_CPU us vs $A_CPU us"
	row "POST /v1/tools list_tables, 32 conns, an API key checked and the access log at info (median of $PAIRS alternated pairs)" \
		"$(fmt_rps "$B_MED")" "$(fmt_rps "$A_MED") (the same build, no key, log level warn)" \
		"$(printf '%.2f' "$KEYS_RATIO") (pairs: $KEYS_PAIRS)" ">= 0.95x" "$KEYS_VERDICT"
	row "the same: CPU time of the gateway's processes per request (median)" "$B_CPU us" "$A_CPU us (no key, warn)" \
		"$(ratio "$A_CPU" "$B_CPU") (no key / key: as a rate)" "-" "info"
	ctl_stop "$ROOT" "$WORK/keyed"
	ctl_stop "$ROOT" "$WORK/keyless"
fi

# --- 8. capacity: N streamed chats at once, each with a tool round (bench/capacity.sh) ---------

# its own simulator (--auto-tool) and a fresh mcpgwctl gateway per N; its rows join the table, its
# per-N table follows it in the results
CAP_SUMMARY=''
if want capacity; then
	note "7. capacity (bench/capacity.sh)"
	stop_pid "$SIM_PID" 5   # the section starts its own
	PIDS=$(for p in $PIDS; do [ "$p" = "$SIM_PID" ] || printf ' %s' "$p"; done)
	CAP_SUMMARY="$WORK/capacity.md"
	BENCH_CAPACITY_ROWS="$ROWS" BENCH_CAPACITY_SUMMARY="$CAP_SUMMARY" bash "$ROOT/bench/capacity.sh" >"$WORK/capacity.out" ||
		die "bench/capacity.sh failed: $(tail -n 5 "$WORK/capacity.out")"
fi

# --- the table ----------------------------------------------------------------------------

{
	echo "| what | value | comparison | ratio | target | result |"
	echo "|---|---|---|---|---|---|"
	awk -F '\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$ROWS"
} >"$WORK/table.md"
{
	echo "# mcpgw benchmark results"
	echo
	echo "\`make bench\` on $(date -u +%Y-%m-%d), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)'), $(nproc) cores, $(uname -r)."
	echo "lighttpd $("$LIGHTTPD" -v 2>/dev/null | sed -n 's/^lighttpd\/\([^ ]*\).*/\1/p'), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), node $(node --version)."
	echo "Each rate: wrk, ${DUR} s after ${WARM} s of warm-up, the two sides alternated twice, best run of each."
	echo "Load average before / after the run: ${LOAD_START:-?} / $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (other work on the machine moves absolute numbers, not ratios)."
	[ -n "${FLOOR_LINE:-}" ] && echo "Direct stdio floor (bench/stdio_floor, sqlite list_tables): $FLOOR_LINE."
	echo
	cat "$WORK/table.md"
	if [ -s "$CAP_SUMMARY" ]; then
		echo
		echo "Capacity (bench/capacity.sh), per N:"
		echo
		cat "$CAP_SUMMARY"
	fi
} >"$OUT"
echo
cat "$WORK/table.md"
[ -s "$CAP_SUMMARY" ] && { echo; cat "$CAP_SUMMARY"; }
echo
echo "bench: written to $OUT"
grep -qE 'MISSED|	LOW$' "$ROWS" && note "some targets were missed (see above)"
exit 0
