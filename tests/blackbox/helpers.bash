# helpers.bash: start/stop a real mcpgw stack (broker + web server + responders) for a bats file, plus HTTP and JSON helpers.
#
# In a .bats file:
#   load helpers
#   setup_file()    { mcpgw_setup_file; }     # default servers: sqlite, everything, a missing command
#   teardown_file() { mcpgw_teardown_file; }
# Set MCPGW_BB_KEEP=1 to keep the temporary home (configs, logs) after the run.
# MCPGW_FRONTEND picks the web server mcpgwctl puts in front (lighttpd, the
# default; lighttpd-cgi, apache-fcgid, apache-proxy-fcgi, apache-cgi or cgi).
# JSON checks use node (jq is not part of the stack).

MCPGW_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
export MCPGW_ROOT

# The run's canary secrets (tests/canaries.sh): planted in every gateway this file starts (the .env,
# a stdio server's env and stderr, a remote server's URL query, the upstream key; canaries.mjs) and in
# every request http() sends (Cookie; Authorization where no key is configured); the logs, databases
# and responses kept in $MCPGW_TEST_ARTIFACTS for tests/check.sh's end-of-run grep. Without
# MCPGW_TEST_ARTIFACTS (a file run by hand) the canaries are this bats run's own, kept in its tmpdir.
if [ -z "${MCPGW_TEST_ARTIFACTS:-}" ]; then
	MCPGW_TEST_ARTIFACTS="${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}/mcpgw-artifacts"
	export MCPGW_TEST_ARTIFACTS
fi
sh "$MCPGW_ROOT/tests/canaries.sh" init "$MCPGW_TEST_ARTIFACTS" || echo "helpers: no canaries in $MCPGW_TEST_ARTIFACTS" >&2
# canary CHANNEL: the run's canary of that channel (not exported: the gateway's processes never hold them)
canary() { awk -v c="$1" '$1 == c { print $2 }' "$MCPGW_TEST_ARTIFACTS/canaries"; }
CANARY_COOKIE=$(canary cookie)
CANARY_AUTHORIZATION=$(canary authorization)
CANARY_UPSTREAMKEY=$(canary upstreamkey)

# artifacts_tag: this file's name, the front end and the home's name (where its artifacts go)
artifacts_tag() {
	echo "bats-$(basename "$BATS_TEST_FILENAME" .bats)-${MCPGW_FRONTEND:-lighttpd}-$(basename "${MCPGW_HOME:-nohome}")"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now
free_port() {
	node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# mcpgw_write_config: the default servers_config.json and .env into $MCPGW_HOME
mcpgw_write_config() {
	local everything="$MCPGW_ROOT/tests/node_modules/.bin/mcp-server-everything"

	[ -x "$everything" ] || { echo "helpers: $everything missing: run 'npm ci' in tests/" >&2; return 1; }
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{
  "mcpServers": {
    "sqlite": {
      "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite",
      "args": ["$MCPGW_HOME/test.db"]
    },
    "everything": {
      "command": "$everything",
      "args": ["stdio"]
    },
    "ghost": {
      "command": "$MCPGW_HOME/no-such-mcp-server"
    }
  }
}
EOF
	cat >"$MCPGW_HOME/.env" <<EOF
# black-box test settings
MCPGW_MAX_BODY_BYTES=4096
MCPGW_TOOL_TIMEOUT=10
MCPGW_TOOL_RETRIES=2
MCPGW_LOG_LEVEL=debug
EOF
}

# past_the_front_end: skip this test behind make check's other front ends (MCPGW_FRONTEND other than
# lighttpd, tests/check.sh): what it checks is decided past the request's reading, in code every
# front end reaches alike (the key store's counters and expiry, the models cache's lock), and a test
# before it in its file checks the same path behind every front end; it runs behind lighttpd and in
# the sanitizer run
past_the_front_end() {
	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] ||
		skip "past the front end: checked behind lighttpd (the same code behind $MCPGW_FRONTEND)"
}

# mcpgw_setup_file: temporary home, free port, mcpgwctl start. Exports
# MCPGW_HOME, MCPGW_STATE_DIR, MCPGW_LISTEN, MCPGW_URL.
mcpgw_setup_file() {
	# short base path: the broker socket path must fit in sun_path (108 bytes)
	MCPGW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-bb.XXXXXX")
	MCPGW_STATE_DIR="$MCPGW_HOME/var"
	MCPGW_LISTEN="127.0.0.1:$(free_port)"
	MCPGW_URL="http://$MCPGW_LISTEN"
	export MCPGW_HOME MCPGW_STATE_DIR MCPGW_LISTEN MCPGW_URL
	[ -x "$MCPGW_ROOT/broker/mcpgw-broker" ] || { echo "helpers: build first (make all)" >&2; return 1; }
	if declare -F mcpgw_custom_config >/dev/null; then
		mcpgw_custom_config
	else
		mcpgw_write_config
	fi
	# MCPGW_TEST_CHAT_DRIVER: the chat driver of every gateway under test (loop: the event loop's)
	if [ -n "${MCPGW_TEST_CHAT_DRIVER:-}" ] && ! grep -q '^MCPGW_CHAT_DRIVER=' "$MCPGW_HOME/.env" 2>/dev/null; then
		echo "MCPGW_CHAT_DRIVER=$MCPGW_TEST_CHAT_DRIVER" >>"$MCPGW_HOME/.env"
	fi
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" plant "$MCPGW_HOME" || return 1
	mcpgw_hand_over_home
	sh "$MCPGW_ROOT/deploy/mcpgwctl" start >"$MCPGW_HOME/mcpgwctl.out" 2>&1 || {
		cat "$MCPGW_HOME/mcpgwctl.out" >&2
		tail -n 30 "$MCPGW_STATE_DIR/broker.log" "$MCPGW_STATE_DIR/lighttpd.log" "$MCPGW_STATE_DIR/apache2.log" >&2 2>/dev/null
		return 1
	}
}

# mcpgw_hand_over_home: as root, the apache-* front ends run the responders and
# the broker as MCPGW_USER (default www-data): give it the temporary home
mcpgw_hand_over_home() {
	case ${MCPGW_FRONTEND:-lighttpd} in
	apache-* | cgi) [ "$(id -u)" = 0 ] && chown -R "${MCPGW_USER:-www-data}:" "$MCPGW_HOME" ;;
	esac
	return 0
}

# frontend_pid: the pid of the web server mcpgwctl started (lighttpd or Apache)
frontend_pid() {
	local f

	for f in lighttpd.pid apache2.pid; do
		[ -s "$MCPGW_STATE_DIR/$f" ] && { head -n 1 "$MCPGW_STATE_DIR/$f"; return 0; }
	done
	return 1
}

# chat_fcgi_pid: the one chat.fcgi process of the web server (a home with MCPGW_RESPONDER_PROCS=chat:1)
chat_fcgi_pid() {
	local p

	for p in $(ps -o pid= --ppid "$(frontend_pid)"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = chat.fcgi ] && { echo "$p"; return 0; }
	done
	return 1
}

# stop_broker DIR: the broker serving DIR (its pid file), by PID; waits until it is
# gone (a zombie counts as gone), SIGKILL after 5 s
stop_broker() {
	local pid i=0

	[ -s "$1/broker.pid" ] || return 0
	pid=$(cat "$1/broker.pid")
	kill -TERM "$pid" 2>/dev/null || return 0
	while [ -e "/proc/$pid" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]; do
		[ $i -lt 100 ] || { kill -KILL "$pid" 2>/dev/null; break; }
		sleep 0.05
		i=$((i + 1))
	done
}

# mcpgw_teardown_file: resume anything a test stopped, mcpgwctl stop, remove the home
mcpgw_teardown_file() {
	[ -n "${MCPGW_HOME:-}" ] || return 0
	if [ -s "$MCPGW_HOME/stopped.pids" ]; then
		# shellcheck disable=SC2046
		kill -CONT $(cat "$MCPGW_HOME/stopped.pids") 2>/dev/null || true
	fi
	sh "$MCPGW_ROOT/deploy/mcpgwctl" stop >/dev/null 2>&1 || true
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" keep "$MCPGW_HOME" "$(artifacts_tag)" || true
	if [ "${MCPGW_BB_KEEP:-}" = 1 ]; then
		echo "# kept $MCPGW_HOME" >&3
	else
		rm -rf "$MCPGW_HOME"
	fi
}

# http METHOD PATH [BODY]: one request; sets HTTP_STATUS, BODY and HEADERS.
# A BODY of "@FILE" sends the file's content (curl's --data-binary rule).
# Every request carries the cookie canary, and the authorization canary while the home's .env
# configures no key (MCPGW_API_KEYS); each response is appended to the kept responses.
http() {
	local method=$1 path=$2 out="$BATS_TEST_TMPDIR/http.body" hdr="$BATS_TEST_TMPDIR/http.headers"
	local args=(-s -m "${HTTP_TIMEOUT:-30}" -o "$out" -D "$hdr" -w '%{http_code}' -X "$method")
	local planted=(-H "Cookie: mcpgw_session=$CANARY_COOKIE") raw

	rm -f "$out" "$hdr"
	grep -q '^MCPGW_API_KEYS=' "$MCPGW_HOME/.env" 2>/dev/null || planted+=(-H "Authorization: Bearer $CANARY_AUTHORIZATION")
	raw="$MCPGW_TEST_ARTIFACTS/raw/$(artifacts_tag).headers"
	[ -e "$raw" ] || printf '%s\n' "${planted[@]}" >"$raw" 2>/dev/null
	args+=("${planted[@]}")
	[ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
	HTTP_STATUS=$(curl "${args[@]}" "$MCPGW_URL$path") || HTTP_STATUS="curl-failed-$?"
	BODY=$(cat "$out" 2>/dev/null)
	HEADERS=$(cat "$hdr" 2>/dev/null)
	keep_response "$method $path" "$hdr" "$out"
}

# keep_response WHAT FILE...: append WHAT and the FILEs (a response's headers, its body; "-" for
# stdin) to this file's kept responses (for the end-of-run canary grep); always returns 0
keep_response() {
	local what=$1

	shift
	{
		printf '%s\n' "$what"
		cat "$@" 2>/dev/null
		printf '\n'
	} >>"$MCPGW_TEST_ARTIFACTS/kept/responses/$(artifacts_tag).txt" 2>/dev/null
	return 0
}

# get PATH / post PATH BODY
get() { http GET "$1"; }
post() { http POST "$1" "$2"; }

# assert_status CODE: the last response had that status
assert_status() {
	[ "$HTTP_STATUS" = "$1" ] && return 0
	echo "expected HTTP $1, got $HTTP_STATUS: $BODY" >&2
	return 1
}

# json_eval EXPR [JSON]: print the value of the JavaScript expression EXPR
# with j = the parsed JSON (default: the last response body); strings raw,
# everything else as JSON. Non-zero (the error on stderr) when JSON is not JSON
# or EXPR throws. Evaluated by one node per bats run (json-eval-server.mjs, on a
# socket in BATS_RUN_TMPDIR: a node start per call was a third of some files'
# time); an EXPR that reads the environment or a file (process, require) and a
# call outside bats start a node of their own, as before.
json_eval() {
	local sock r
	case $1 in
	*process* | *require*) json_eval_node "$@"; return ;;
	esac
	sock=$(json_eval_server) || { json_eval_node "$@"; return; }
	r=$({ printf '%s\0' "$1"; printf '%s' "${2-$BODY}"; } |
		curl -s -m 60 --unix-socket "$sock" --data-binary @- -H 'Content-Type: application/octet-stream' \
			http://json-eval/ && echo .) || { json_eval_node "$@"; return; }
	r=${r%.}
	case $r in
	0*) printf '%s\n' "${r#0}" ;;
	1*) printf '%s\n' "${r#1}" >&2; return 1 ;;
	*) json_eval_node "$@" ;;
	esac
}

# json_eval_node EXPR [JSON]: json_eval in a node of its own (the caller's environment and directory)
json_eval_node() {
	printf '%s' "${2-$BODY}" | node -e '
		const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
		const v = eval(process.argv[1]);
		console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1"
}

# json_eval_server: the socket of this bats run's json-eval-server.mjs, started at the first call
# (in a session of its own, no descriptor of bats kept); non-zero outside bats
# or when it does not come up within 5 s
json_eval_server() {
	local d=${BATS_RUN_TMPDIR:-} s i=0
	[ -n "$d" ] && [ -d "$d" ] || return 1
	s=$d/json-eval.sock
	if [ ! -S "$s" ]; then
		if mkdir "$d/json-eval.lock" 2>/dev/null; then
			# every descriptor but 0-2 closed first (bats waits for its output files and pipes)
			(
				for f in /proc/$BASHPID/fd/*; do
					f=${f##*/}
					case $f in 0 | 1 | 2) ;; *) eval "exec $f>&-" 2>/dev/null ;; esac
				done
				exec setsid node "$BATS_TEST_DIRNAME/json-eval-server.mjs" "$s" </dev/null >/dev/null 2>&1
			) &
		fi
		while [ ! -S "$s" ]; do
			[ $i -lt 500 ] || return 1
			sleep 0.01
			i=$((i + 1))
		done
	fi
	echo "$s"
}

# assert_json EXPR: the expression is truthy for the last response body
assert_json() {
	local v

	v=$(json_eval "$1") || { echo "not JSON or bad expression: $1 on: $BODY" >&2; return 1; }
	case $v in
	false | null | 0 | '' | undefined | '""')
		echo "assertion failed: $1 on: $BODY" >&2
		return 1
		;;
	esac
}

# assert_openai_error STATUS CODE: an OpenAI error object with that status and code
assert_openai_error() {
	assert_status "$1" || return 1
	# one node for the shape and the code (each node costs ~50 ms, and this runs in loops)
	assert_json "typeof j.error.message === 'string' && typeof j.error.type === 'string' && 'param' in j.error && j.error.code === '$2'"
}

# assert_still_serving: the gateway answers GET /v1/tools with the tool list
assert_still_serving() {
	get /v1/tools
	assert_status 200 && assert_json 'j.object === "list" && j.data.length > 0'
}

# server_field NAME FIELD: a field of one server in GET /health
server_field() {
	local body

	body=$(curl -s -m 10 -H "Cookie: mcpgw_session=$CANARY_COOKIE" "$MCPGW_URL/health") || return 1
	printf '%s' "$body" | keep_response "GET /health" -
	json_eval "(j.servers.find(s => s.name === '$1') || {})['$2']" "$body"
}

# wait_server_state NAME STATE [SECONDS]: poll /health until the server is in STATE
wait_server_state() {
	local i=0 max=$((${3:-20} * 10))

	while [ "$(server_field "$1" state)" != "$2" ]; do
		[ $i -lt $max ] || { echo "server $1 not $2 after ${3:-20} s: $(curl -s "$MCPGW_URL/health")" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

# --- the gateway with an upstream LLM: the simulator of tests/upstream-sim ---

# mcpgw_load_sim: define sim_start, sim_stop, sim_script, ... (tests/upstream-sim/sim.bash)
mcpgw_load_sim() {
	# shellcheck source=../upstream-sim/sim.bash
	. "$MCPGW_ROOT/tests/upstream-sim/sim.bash"
}

# mcpgw_write_upstream_env BASE_URL [KEY=VALUE...]: append OPENAI_BASE_URL=BASE_URL, the upstream
# key canary as OPENAI_API_KEY ($CANARY_UPSTREAMKEY) and the given lines to $MCPGW_HOME/.env (call it from mcpgw_custom_config,
# after the .env is written)
mcpgw_write_upstream_env() {
	local url=$1 line

	shift
	{
		echo "OPENAI_BASE_URL=$url"
		echo "OPENAI_API_KEY=$CANARY_UPSTREAMKEY"
		for line in "$@"; do echo "$line"; done
	} >>"$MCPGW_HOME/.env"
}

# mcpgw_setup_file_with_sim [sim.mjs args...]: start the simulator (exports SIM_PID, SIM_PORT,
# SIM_URL), then the gateway with OPENAI_BASE_URL=$SIM_URL/v1. A .bats file that defines
# mcpgw_custom_config calls mcpgw_write_upstream_env "$SIM_URL/v1" there itself; otherwise the
# default servers are used. Pair with mcpgw_teardown_file_with_sim. Tests that call sim_*
# themselves need them defined at the top of the .bats file: `load helpers` then `mcpgw_load_sim`.
mcpgw_setup_file_with_sim() {
	mcpgw_load_sim
	sim_start "$@" || return 1
	if ! declare -F mcpgw_custom_config >/dev/null; then
		mcpgw_custom_config() { mcpgw_write_config && mcpgw_write_upstream_env "$SIM_URL/v1"; }
	fi
	mcpgw_setup_file || { sim_stop; return 1; }
}

# mcpgw_teardown_file_with_sim: stop the gateway, then the simulator (by its PID)
mcpgw_teardown_file_with_sim() {
	mcpgw_teardown_file
	sim_stop
}

# capacity_idle: the state directory's capacity table (lib/core/capacity.c: a 64-byte header, a magic
# word and the count of records held, then a 16-byte record per slot, the caller's digest and the
# holder's id, 0 when free) holds no slot and counts none, within 2 s (a responder gives its slot back
# just after its client read the last byte); 1, saying what it holds, when it does not
capacity_idle() {
	local f="$MCPGW_STATE_DIR/capacity.map" held count
	for _ in $(seq 20); do
		held=$(od -An -v -tx8 -w16 -j64 "$f" | awk '$2 !~ /^0+$/' | wc -l)
		count=$(od -An -tu8 -j8 -N8 "$f" | tr -d ' ')
		[ "$held" = 0 ] && [ "$count" = 0 ] && return 0
		sleep 0.1
	done
	echo "capacity: records held: $held, the header's count: $count" >&2
	return 1
}
