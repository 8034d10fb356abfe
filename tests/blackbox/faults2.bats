#!/usr/bin/env bats
# faults2.bats: MCP servers that hang, write a huge line, close stdout, die or quit mid-call, the broker killed mid-call, an upstream that stalls, breaks or floods (issue 15): a clear error for the request affected, the next requests work, no zombie or orphan remains.

load helpers
mcpgw_load_sim

mcpgw_custom_config() {
	mkdir -p "$MCPGW_HOME/pids" "$MCPGW_STATE_DIR"
	chmod 0700 "$MCPGW_STATE_DIR"
	# the state directory on a tmpfs of its own (as root): it can be filled up and made read-only
	if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=32m,mode=0700 tmpfs "$MCPGW_STATE_DIR" 2>/dev/null; then
		touch "$MCPGW_HOME/statedir.tmpfs"
	fi
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{
  "mcpServers": {
    "fault": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs"],
              "env": {"FAULT_PID_DIR": "$MCPGW_HOME/pids"}},
    "other": {"command": "$(command -v node)", "args": ["$MCPGW_ROOT/tests/fault-server.mjs", "b_"],
              "env": {"FAULT_PID_DIR": "$MCPGW_HOME/pids", "FAULT_IGNORE_EOF": "1"}}
  }
}
JSON
	cat >"$MCPGW_HOME/.env" <<ENV
MCPGW_TOOL_TIMEOUT=4
MCPGW_TOOL_RETRIES=0
MCPGW_MAX_MESSAGE_BYTES=4194304
MCPGW_UPSTREAM_TIMEOUT=4
MCPGW_UPSTREAM_RETRIES=0
MCPGW_MAX_RESPONSE_BYTES=1048576
MCPGW_LOG_LEVEL=info
MCPGW_SHUTDOWN_GRACE=4
MCPGW_RESPONDER_PROCS=tools:3
MCPGW_CAPACITY=$CAPACITY
ENV
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

# the host's chat capacity here: room for the 34 chats of the abandoned-chat tests and more
CAPACITY=48

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() {
	if [ -e "$MCPGW_HOME/statedir.tmpfs" ]; then
		mount -o remount,rw "$MCPGW_STATE_DIR" 2>/dev/null || true
		sh "$MCPGW_ROOT/deploy/mcpgwctl" stop >/dev/null 2>&1 || true
		node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" keep "$MCPGW_HOME" "$(artifacts_tag)" || true
		[ "${MCPGW_BB_KEEP:-}" != 1 ] || cp -a "$MCPGW_STATE_DIR" "$MCPGW_HOME/var.kept"
		umount "$MCPGW_STATE_DIR" || umount -l "$MCPGW_STATE_DIR"
	fi
	mcpgw_teardown_file_with_sim
}

setup() {
	wait_server_state fault ready
	wait_server_state other ready
}

# ms_since T0: milliseconds since T0 (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# gone PID [PARENT]: PID has exited and was reaped by PARENT (a zombie whose parent is PARENT
# is not gone: PARENT did not wait for it); waits up to 5 s
gone() {
	local i stat

	for i in $(seq 100); do
		stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
		# a zombie another process (the container's init) will reap is gone for us
		if [ "${stat%% *}" = Z ] && [ -n "${2:-}" ]; then
			set -- "$1" "$2"
			[ "$(echo "$stat" | awk '{ print $2 }')" != "$2" ] && return 0
		fi
		sleep 0.05
	done
	echo "process $1 still there: $stat" >&2
	return 1
}

# echo_ok TOOL TEXT: TOOL echoes TEXT with 200
echo_ok() {
	post /v1/tools "{\"tool\":\"$1\",\"arguments\":{\"text\":\"$2\"}}"
	assert_status 200
	assert_json "j.content[0].text === 'Echo: $2'"
}

broker_pid() { cat "$MCPGW_STATE_DIR/broker.pid"; }

# start_broker_here: a broker the way mcpgwctl starts one: stderr on broker.log, as the owner of
# $MCPGW_HOME (behind Apache, run as root, that is MCPGW_USER, who owns the state directory)
start_broker_here() {
	local u

	u=$(stat -c %U "$MCPGW_HOME")
	if [ "$(id -u)" = 0 ] && [ "$u" != root ]; then
		(cd "$MCPGW_HOME" && exec setpriv --reuid="$u" --regid="$(id -gn "$u")" --clear-groups -- \
			"$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/broker.log" 2>&1 &)
	else
		(cd "$MCPGW_HOME" && exec "$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/broker.log" 2>&1 &)
	fi
	# serving before any request is made (a request finding no broker has a responder start one,
	# which logs to the responders' log)
	for _ in $(seq 100); do
		[ -S "$MCPGW_STATE_DIR/broker.sock" ] && [ -s "$MCPGW_STATE_DIR/broker.pid" ] &&
			[ "$(readlink "/proc/$(broker_pid)/fd/2")" = "$MCPGW_STATE_DIR/broker.log" ] && return 0
		sleep 0.05
	done
	echo "no broker of ours serves $MCPGW_STATE_DIR" >&2
	return 1
}

# bg_post PATH BODY OUT: POST in the background (its own files: post's are the test's), "STATUS BODY" into OUT
bg_post() {
	local code

	code=$(curl -s -m 30 -o "$3.body" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H "Cookie: mcpgw_session=$CANARY_COOKIE" --data-binary "$2" "$MCPGW_URL$1") || code="curl-failed-$?"
	echo "$code $(cat "$3.body")" >"$3"
}

@test "a server that never answers a call: 504 tool_timeout for that call only; the server and others go on" {
	local t0 pid round status body

	pid=$(server_field fault pid)
	# three tools.fcgi processes (MCPGW_RESPONDER_PROCS), all started with the front end
	rm -f "$BATS_TEST_TMPDIR/hang"
	bg_post /v1/tools '{"tool":"hang","arguments":{}}' "$BATS_TEST_TMPDIR/hang" &
	sleep 0.3
	t0=$(date +%s%N)
	echo_ok b_echo "meanwhile"
	echo_ok echo "same server meanwhile"
	echo "# two calls meanwhile took $(ms_since "$t0") ms" >&3
	[ ! -e "$BATS_TEST_TMPDIR/hang" ] # answered while the hanging call still waited
	wait
	read -r status body <"$BATS_TEST_TMPDIR/hang"
	BODY=$body HTTP_STATUS=$status assert_openai_error 504 tool_timeout
	echo_ok echo "after"
	[ "$(server_field fault pid)" = "$pid" ]
}

@test "a server that answers with one line over MCPGW_MAX_MESSAGE_BYTES: a clear 503 for that call at once, the server restarted, others unharmed" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"bigline","arguments":{"mib":8}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('over MCPGW_MAX_MESSAGE_BYTES')"
	[ "$(ms_since "$t0")" -lt 3000 ] # not its 4 s timeout
	echo_ok b_echo "unharmed"
	wait_server_state fault ready
	echo_ok echo "after the big line"
	gone "$pid" "$(broker_pid)"
	grep -q "server fault: wrote a message over MCPGW_MAX_MESSAGE_BYTES (4194304 bytes); retrying in" "$MCPGW_STATE_DIR/broker.log"
	# a line within the limit still passes
	post /v1/tools '{"tool":"bigline","arguments":{"mib":1}}'
	assert_status 200
}

@test "a server that closes its stdout and keeps running: detected at once, killed, reaped and restarted" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"closeout","arguments":{}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('closed its stdout')"
	[ "$(ms_since "$t0")" -lt 3000 ] # not its 4 s timeout
	gone "$pid" "$(broker_pid)"
	wait_server_state fault ready
	[ "$(server_field fault pid)" != "$pid" ]
	echo_ok echo "after closing stdout"
}

@test "a server that dies mid-call: a clear 503 for that call, restarted at once, reaped" {
	local pid t0

	pid=$(server_field fault pid)
	t0=$(date +%s%N)
	post /v1/tools '{"tool":"die","arguments":{}}'
	assert_openai_error 503 server_unavailable
	assert_json "j.error.message.includes('exited with status 3')"
	echo "# $BODY" >&3
	gone "$pid" "$(broker_pid)"
	wait_server_state fault ready
	echo_ok echo "after dying"
	[ "$(ms_since "$t0")" -lt 5000 ]
}

@test "a server that exits cleanly after serving is restarted at once, without a crash-loop backoff" {
	local pid i before

	before=$(grep -c "server fault: exited with status 0; retrying in 0.1 s$" "$MCPGW_STATE_DIR/broker.log" || true)
	for i in 1 2 3; do
		pid=$(server_field fault pid)
		post /v1/tools '{"tool":"quit","arguments":{}}'
		assert_status 200
		assert_json "j.content[0].text === 'bye'"
		gone "$pid" "$(broker_pid)"
		wait_server_state fault ready
		echo_ok echo "after quitting $i"
	done
	# each time the first restart wait of a server that ran (0.1 s), never doubled (0.2 s, 0.4 s)
	[ "$(grep -c "server fault: exited with status 0; retrying in 0.1 s$" "$MCPGW_STATE_DIR/broker.log")" = $((before + 3)) ]
	[ "$(server_field fault retries)" = 0 ]
}

@test "the broker killed (SIGKILL) mid-call: a clear error for that call, the next request works, no MCP server left behind" {
	local bpid pids p

	bpid=$(broker_pid)
	pids="$(server_field fault pid) $(server_field other pid)"
	bg_post /v1/tools '{"tool":"hang","arguments":{}}' "$BATS_TEST_TMPDIR/hang" &
	sleep 0.5
	kill -KILL "$bpid"
	wait
	read -r status body <"$BATS_TEST_TMPDIR/hang"
	echo "# $status $body" >&3
	BODY=$body HTTP_STATUS=$status assert_json "typeof j.error.message === 'string' && typeof j.error.code === 'string'"
	[ "$status" -ge 500 ]
	# the next request starts a broker (MCPGW_BROKER_AUTOSTART) and is served
	HTTP_TIMEOUT=40 post /v1/tools '{"tool":"echo","arguments":{"text":"broker back"}}'
	assert_status 200
	[ "$(broker_pid)" != "$bpid" ]
	# the servers of the dead broker are gone: fault ended with its stdin, other (FAULT_IGNORE_EOF)
	# was killed by the new broker, found by the pid the registry kept
	for p in $pids; do gone "$p"; done
	grep -q "server other: pid [0-9]* was left running by a broker that ended without stopping it; killed" \
		"$MCPGW_STATE_DIR"/*.log
	wait_server_state other ready
	echo_ok b_echo "back too"
}

# chat BODY: POST /v1/chat/completions
chat() { post /v1/chat/completions "$1"; }

@test "an upstream that never answers: 504 upstream_timeout after MCPGW_UPSTREAM_TIMEOUT, the next chat works" {
	local t0

	sim_script '[{"delay_ms":10000,"content":"too late"}]'
	t0=$(date +%s%N)
	chat '{"model":"sim-model","messages":[{"role":"user","content":"stall"}],"mcp":{"tools":false}}'
	assert_openai_error 504 upstream_timeout
	assert_json "j.error.message.includes('MCPGW_UPSTREAM_TIMEOUT')" # the setting to raise, named
	[ "$(ms_since "$t0")" -lt 8000 ]
	chat '{"model":"sim-model","messages":[{"role":"user","content":"next"}],"mcp":{"tools":false}}'
	assert_status 200
	assert_json "j.choices[0].message.content === 'sim: next'"
}

# stream_chat TEXT: a streamed chat (no tools) of the user message TEXT; the raw SSE body in BODY
stream_chat() {
	post /v1/chat/completions "{\"model\":\"sim-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}],\"mcp\":{\"tools\":false}}"
}

# assert_stream_error CODE: the stream (BODY) ends with an error event of that code and no [DONE]
assert_stream_error() {
	local last

	last=$(printf '%s\n' "$BODY" | grep '^data: ' | tail -n 1)
	[[ $last != 'data: [DONE]' ]] || { echo "stream ended with [DONE]: $BODY" >&2; return 1; }
	json_eval "j.error.code" "${last#data: }" | grep -qx "$1" || { echo "no error event $1 at the end: $BODY" >&2; return 1; }
	json_eval "typeof j.error.message" "${last#data: }" | grep -qx string
}

@test "an upstream that stalls mid-stream: an error event (upstream_timeout) after MCPGW_UPSTREAM_TIMEOUT, the next chat works" {
	sim_script '[{"content":"one two three","chunks":3,"chunk_delay_ms":7000}]'
	stream_chat "stall mid-stream"
	assert_status 200
	assert_stream_error upstream_timeout
	stream_chat "next"
	assert_status 200
	[[ $BODY == *'data: [DONE]'* ]]
}

@test "an upstream that disconnects mid-stream: an error event (upstream_truncated), the next chat works" {
	sim_script '[{"content":"one two three four five six","break_after_chunks":2}]'
	stream_chat "cut"
	assert_status 200
	assert_stream_error upstream_truncated
	stream_chat "next"
	[[ $BODY == *'data: [DONE]'* ]]
	# the same non-streamed: a clear 502
	sim_script '[{"content":"one two three four five six","break_after_chunks":2}]'
	chat '{"model":"sim-model","messages":[{"role":"user","content":"cut"}],"mcp":{"tools":false}}'
	[ "$HTTP_STATUS" = 502 ]
	assert_json "typeof j.error.message === 'string' && j.error.code.startsWith('upstream_')"
}

@test "an upstream that sends malformed SSE: a clear error, the next chat works" {
	sim_script '[{"garbage":"data: {not json\n\nevent: x\ndata: ]]]\n\n","raw":true}]'
	stream_chat "garbage"
	echo "# $HTTP_STATUS $BODY" >&3
	if [ "$HTTP_STATUS" = 200 ]; then
		assert_stream_error upstream_bad_response
	else
		assert_openai_error 502 upstream_bad_response
	fi
	sim_script '[{"garbage":"this is no JSON at all"}]'
	chat '{"model":"sim-model","messages":[{"role":"user","content":"garbage"}],"mcp":{"tools":false}}'
	assert_openai_error 502 upstream_bad_response
	stream_chat "next"
	[[ $BODY == *'data: [DONE]'* ]]
}

@test "an upstream answer over MCPGW_MAX_RESPONSE_BYTES, streamed or not: a clear error, the next chat works" {
	local big

	big=$(head -c 1500000 /dev/zero | tr '\0' 'x')
	printf '[{"content":"%s","chunks":1}]' "$big" >"$BATS_TEST_TMPDIR/big.json"
	curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$BATS_TEST_TMPDIR/big.json" "$SIM_URL/_sim/script"
	chat '{"model":"sim-model","messages":[{"role":"user","content":"huge"}],"mcp":{"tools":false}}'
	assert_openai_error 502 upstream_response_too_large
	curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$BATS_TEST_TMPDIR/big.json" "$SIM_URL/_sim/script"
	stream_chat "huge"
	assert_stream_error upstream_response_too_large
	chat '{"model":"sim-model","messages":[{"role":"user","content":"next"}],"mcp":{"tools":false}}'
	assert_status 200
}

# leave_chats N MATCH [CURL_ARG...]: N non-streamed chats (their message MATCH) the simulator holds
# 30 s, whose clients (curl, with CURL_ARGs) give up after 0.5 s; then one more chat must be answered
# at once (MCPGW_UPSTREAM_TIMEOUT is 4 s here, 300 s by default): the held ones keep no one waiting
leave_chats() {
	local n=$1 match=$2 i t0

	shift 2
	sim_reset
	for i in $(seq "$n"); do
		sim_append '[{"match":"'"$match"'","delay_ms":30000,"content":"nobody reads this"}]' >/dev/null
	done
	for i in $(seq "$n"); do
		curl -s -o /dev/null -m 0.5 -H 'Content-Type: application/json' "$@" \
			--data-binary '{"model":"sim-model","messages":[{"role":"user","content":"'"$match"'"}],"mcp":{"tools":false}}' \
			"$MCPGW_URL/v1/chat/completions" &
	done
	wait
	sleep 0.3
	t0=$(date +%s%N)
	chat '{"model":"sim-model","messages":[{"role":"user","content":"not waiting"}],"mcp":{"tools":false}}'
	echo "# the next chat took $(ms_since "$t0") ms" >&3
	assert_status 200
	assert_json "j.choices[0].message.content === 'sim: not waiting'"
	[ "$(ms_since "$t0")" -lt 1500 ]
}

# upstream_closed MATCH: how many upstream requests with MATCH in their body the simulator saw closed
# before it answered ($SIM_URL/_sim/requests)
upstream_closed() {
	curl -s "$SIM_URL/_sim/requests" | node -e '
		const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
		const l = Array.isArray(r) ? r : r.requests;
		console.log(l.filter(x => x.aborted && JSON.stringify(x.body).includes(process.argv[1])).length)' "$1"
}

# abandon_chats N [CURL_ARG...]: leave_chats, and at least N-2 of the N upstream requests closed at
# once (their clients' going away told), each logged as such (499)
abandon_chats() {
	local n=$1 aborted

	shift
	leave_chats "$n" abandon-me "$@"
	# the simulator saw them go away (their upstream connections closed)
	aborted=$(upstream_closed abandon-me)
	echo "# upstream requests aborted: $aborted" >&3
	[ "$aborted" -ge $((n - 2)) ]
	# each logged as the client's going away (499), none as the upstream's timeout
	[ "$(grep -c 'access method=POST endpoint=/v1/chat/completions status=499 ' "$MCPGW_STATE_DIR/responders.log")" -ge $((n - 2)) ]
}

# need_watching_frontend: skip unless the web server watches a client while its responder works
# (README.md, "A client that goes away"): lighttpd's tcp-fin-propagate; Apache does not watch
# (strace, a client gone after 0.5 s: Apache's thread stays in poll([{fd=<responder>, POLLIN}], 1,
# 600000) under mod_proxy_fcgi and mod_fcgid alike, the client's socket in no poll set)
need_watching_frontend() {
	case ${MCPGW_FRONTEND:-lighttpd} in
	lighttpd | lighttpd-cgi) ;;
	*) skip "$MCPGW_FRONTEND does not watch a client while its responder waits (Apache: mod_proxy_fcgi's dispatch() polls only the backend socket, mod_fcgid's proc_read_ipc() only the responder's, mod_cgid only the script's output)" ;;
	esac
}

@test "34 non-streamed chats whose clients went away (each request sent in two parts) free their workers and upstream connections at once" {
	need_watching_frontend
	# Expect: 100-continue: curl sends the body after lighttpd's 100 Continue, so lighttpd reads the
	# request in two parts and keeps watching the client (see the next test for why that matters)
	abandon_chats 34 -H 'Expect: 100-continue'
}

# held_chats N: N non-streamed chats the simulator holds 30 s, whose clients give up after 0.5 s unseen
# by the web server (lighttpd 1.4.69 reads a small request in one go and watches that client no more;
# Apache never watches one): what they cost is bounded and nobody else waits for them. The next chat
# is answered at once (the pool grows past the held workers); each held one ends at
# MCPGW_UPSTREAM_TIMEOUT (4 s here): its upstream request closed, one access line (504, or 499), and
# the capacity slots all back (a burst of MCPGW_CAPACITY chats is served after)
held_chats() {
	local n=$1 i t0 ended lines0 lines1

	lines0=$(wc -l <"$MCPGW_STATE_DIR/responders.log")
	t0=$(date +%s%N)
	leave_chats "$n" hold-me
	# within MCPGW_UPSTREAM_TIMEOUT (and 4 s more for a busy machine) the simulator sees each closed
	for i in $(seq 64); do
		ended=$(upstream_closed hold-me)
		[ "$ended" -ge "$n" ] && break
		sleep 0.25
	done
	echo "# upstream requests ended by MCPGW_UPSTREAM_TIMEOUT: $ended of $n, $(ms_since "$t0") ms after they were sent" >&3
	[ "$ended" = "$n" ]
	# each logged once, at the timeout: as the upstream's timeout (504), or as the client's going away
	# (499) where the web server, given that answer, said the client had left; the next chat's apart
	for i in $(seq 20); do
		lines1=$(tail -n +"$((lines0 + 1))" "$MCPGW_STATE_DIR/responders.log" |
			grep -c 'access method=POST endpoint=/v1/chat/completions status=\(504\|499\) ')
		[ "$lines1" -ge "$n" ] && break
		sleep 0.25
	done
	[ "$lines1" = "$n" ] || {
		echo "$lines1 access lines with 504 or 499 for $n held chats; all since:" >&2
		tail -n +"$((lines0 + 1))" "$MCPGW_STATE_DIR/responders.log" | grep -o 'access method=[A-Z]* endpoint=[^ ]* status=[0-9]*' |
			sort | uniq -c >&2
		return 1
	}
	echo "# access lines: $(tail -n +"$((lines0 + 1))" "$MCPGW_STATE_DIR/responders.log" | grep -o 'endpoint=/v1/chat/completions status=[0-9]*' | sort | uniq -c | tr -s ' \n' ' ')" >&3
	# every slot back: as many chats at once as the capacity allows are all answered
	for i in $(seq "$CAPACITY"); do
		curl -s -o "$BATS_TEST_TMPDIR/after.$i" -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary '{"model":"sim-model","messages":[{"role":"user","content":"after"}],"mcp":{"tools":false}}' \
			"$MCPGW_URL/v1/chat/completions" >"$BATS_TEST_TMPDIR/after.$i.status" &
	done
	wait
	for i in $(seq "$CAPACITY"); do
		[ "$(cat "$BATS_TEST_TMPDIR/after.$i.status")" = 200 ] || { echo "after: $(cat "$BATS_TEST_TMPDIR/after.$i.status") $(cat "$BATS_TEST_TMPDIR/after.$i")" >&2; return 1; }
	done
}

@test "34 non-streamed chats whose clients went away unseen by the web server (read in one go): nobody waits for them, each ends at MCPGW_UPSTREAM_TIMEOUT, every slot back" {
	# lighttpd 1.4.69 watches a client only while it reads its request: a request read whole in one
	# read (small, as here) moves on to CON_STATE_HANDLE_REQUEST with no event asked for its socket
	# (connections.c, connection_set_fdevent_interest), so that client's FIN is never seen until the
	# answer is written (strace: no epoll_ctl for 30 of 34 such sockets, no shutdown to their
	# responders); Apache watches no client at all (need_watching_frontend). Such a chat cannot be
	# freed at once: it is bounded instead (README.md, "A client that goes away")
	held_chats 34
}

# need_tmpfs: skip unless the state directory is a tmpfs of its own (root, mount allowed)
need_tmpfs() {
	[ -e "$MCPGW_HOME/statedir.tmpfs" ] || skip "needs root and mount(2) for a tmpfs state directory"
}

# db_ok DB: the SQLite database DB passes its integrity check
db_ok() {
	[ "$(sqlite3 "$1" 'PRAGMA integrity_check')" = ok ]
}

# rows DB TABLE: the number of rows of TABLE
rows() { sqlite3 "$1" "SELECT count(*) FROM $2"; }

# serving_without_disk: tool calls, a chat with a tool round, the models and /health answer
serving_without_disk() {
	echo_ok echo "no disk"
	echo_ok b_echo "no disk either"
	sim_script '[{"tool_calls":[{"name":"echo","arguments":{"text":"round"}}]},{"content":"done"}]'
	chat '{"model":"sim-model","messages":[{"role":"user","content":"use a tool"}]}'
	assert_status 200
	assert_json "j.choices[0].message.content === 'done'"
	get /v1/models
	assert_status 200
	get /health
	assert_status 200
}

# stored_before: wait for the audit row of a call; AUDIT0 and TOOLS0: the rows stored so far
stored_before() {
	echo_ok echo "before"
	for _ in $(seq 50); do [ "$(rows "$MCPGW_STATE_DIR/state.db" audit)" -gt 0 ] && break; sleep 0.1; done
	AUDIT0=$(rows "$MCPGW_STATE_DIR/state.db" audit)
	TOOLS0=$(rows "$MCPGW_STATE_DIR/mcpgw.db" tools)
	[ "$AUDIT0" -gt 0 ] && [ "$TOOLS0" -gt 0 ]
}

# nothing_lost: both databases sound, no row of before lost, the calls since audited, and the
# registry holds the pid of the server other as it runs now
nothing_lost() {
	local reg="$MCPGW_STATE_DIR/mcpgw.db" store="$MCPGW_STATE_DIR/state.db" pid

	db_ok "$reg"
	db_ok "$store"
	[ "$(rows "$reg" tools)" -ge "$TOOLS0" ]
	for _ in $(seq 100); do [ "$(rows "$store" audit)" -gt "$AUDIT0" ] && break; sleep 0.1; done
	[ "$(rows "$store" audit)" -gt "$AUDIT0" ]
	pid=$(server_field other pid)
	for _ in $(seq 100); do [ "$(sqlite3 "$reg" "SELECT pid FROM servers WHERE name = 'other'")" = "$pid" ] && break; sleep 0.1; done
	[ "$(sqlite3 "$reg" "SELECT pid FROM servers WHERE name = 'other'")" = "$pid" ]
}

@test "the state directory full: requests go on, a dying server restarts, nothing stored is lost, all is saved once there is room" {
	local pid

	need_tmpfs
	stored_before
	dd if=/dev/zero of="$MCPGW_STATE_DIR/filler" bs=64k 2>/dev/null || true
	[ "$(df --output=avail "$MCPGW_STATE_DIR" | tail -n 1)" -lt 64 ]
	# the metrics and the catalog generation are mapped files: a page without its block was SIGBUS
	serving_without_disk
	# a server that dies meanwhile is restarted (saving its state fails: logged, tried again)
	pid=$(server_field other pid)
	kill -9 "$pid"
	wait_server_state other ready
	echo_ok b_echo "restarted without room"
	rm -f "$MCPGW_STATE_DIR/filler"
	serving_without_disk
	nothing_lost
}

@test "the state directory read-only: the broker cannot start there (a clear 503 naming why), the next request once writable starts it; nothing lost" {
	local bpid

	need_tmpfs
	stored_before
	bpid=$(broker_pid)
	# a read-only bind mount over it (the files the processes hold open stay writable through their fds,
	# as they would on a disk remounted read-only only for new files); then the broker goes
	mount --bind "$MCPGW_STATE_DIR" "$MCPGW_STATE_DIR"
	mount -o remount,ro,bind "$MCPGW_STATE_DIR"
	! touch "$MCPGW_STATE_DIR/probe" 2>/dev/null
	stop_broker "$MCPGW_STATE_DIR"
	post /v1/tools '{"tool":"echo","arguments":{"text":"no broker"}}'
	echo "# $HTTP_STATUS $BODY" >&3
	assert_openai_error 503 broker_unavailable
	assert_json "j.error.message.includes('Read-only file system')"
	# writable again: a request starts a broker and is served (a responder whose start failed tries
	# again 2 s later, BROKERSTART_RETRY_MS, so as not to hammer)
	umount "$MCPGW_STATE_DIR"
	for _ in $(seq 10); do
		HTTP_TIMEOUT=40 post /v1/tools '{"tool":"echo","arguments":{"text":"writable again"}}'
		[ "$HTTP_STATUS" = 200 ] && break
		sleep 0.5
	done
	assert_status 200
	[ "$(broker_pid)" != "$bpid" ]
	wait_server_state other ready
	echo_ok b_echo "back"
	nothing_lost
}

@test "a damaged registry (mcpgw.db): the broker sets it aside, makes a new one and serves; the tools are saved again" {
	local reg="$MCPGW_STATE_DIR/mcpgw.db"

	stop_broker "$MCPGW_STATE_DIR"
	rm -f "$reg-wal" "$reg-shm"
	head -c 16384 /dev/urandom >"$reg"
	start_broker_here
	wait_server_state fault ready
	wait_server_state other ready
	echo_ok echo "a new registry"
	grep -q "ERROR registry $reg: file is not a database; set aside as $reg.corrupt-[0-9]*, a new one made" "$MCPGW_STATE_DIR/broker.log"
	[ "$(stat -c %s "$reg".corrupt-*)" = 16384 ] # kept whole for the operator
	for _ in $(seq 50); do [ "$(rows "$reg" tools 2>/dev/null)" = 16 ] && break; sleep 0.1; done
	[ "$(rows "$reg" tools)" = 16 ]
	db_ok "$reg"
}

@test "a damaged state store (state.db): a clear 503 (key_store_unavailable) from what opens it; once moved away the next requests work" {
	local store="$MCPGW_STATE_DIR/state.db"

	echo_ok echo "before"
	head -c 100 /dev/urandom | dd of="$store" conv=notrunc 2>/dev/null
	# a process that opens the store now is refused it: a clear 503 (one that holds it open from before
	# may go on from what it has: an answer); never a crash or a hang
	for _ in 1 2 3 4; do
		chat '{"model":"sim-model","messages":[{"role":"user","content":"damaged store"}],"mcp":{"tools":false}}'
		[ "$HTTP_STATUS" = 200 ] || assert_openai_error 503 key_store_unavailable
		get /v1/models
		[ "$HTTP_STATUS" = 200 ] || assert_openai_error 503 key_store_unavailable
	done
	if grep -q "key_store_unavailable" "$MCPGW_TEST_ARTIFACTS/kept/responses/$(artifacts_tag).txt" 2>/dev/null; then
		grep -q "state store $store: not an SQLite database (corrupt, or another kind of file); refused: move it away" \
			"$MCPGW_STATE_DIR/responders.log"
	fi
	post /v1/tools '{"tool":"echo","arguments":{"text":"damaged store"}}'
	[ "$HTTP_STATUS" = 200 ] || assert_openai_error 503 key_store_unavailable
	# what an operator does: the damaged file moved away (kept), a new store made by the next request
	mv "$store" "$store.damaged"
	rm -f "$store-wal" "$store-shm"
	sleep 1 # a responder whose store failed to open tries again a second later (AUTH_REOPEN_MS)
	for _ in 1 2 3 4; do # every chat worker of both processes: none keeps the damaged file open
		chat '{"model":"sim-model","messages":[{"role":"user","content":"mended"}],"mcp":{"tools":false}}'
		assert_status 200
	done
	assert_json "j.choices[0].message.content === 'sim: mended'"
	get /v1/models
	assert_status 200
	for _ in 1 2 3 4; do echo_ok echo "mended"; done
	db_ok "$store"
}

# responder_pids: the pids of the responders spawn-fcgi (their pid files) or lighttpd (its children) started
responder_pids() {
	local f fp

	for f in "$MCPGW_STATE_DIR"/fcgi-*.pid; do [ -e "$f" ] && awk 1 "$f"; done
	[ -e "$MCPGW_STATE_DIR/lighttpd.pid" ] && fp=$(frontend_pid) && ps -o pid= --ppid "$fp" | tr -d ' '
	return 0
}

@test "logrotate: logs moved away, mcpgwctl reopen-logs (SIGHUP): new lines go to new files, nothing stops" {
	local bpid rpids before1 before2 p

	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || [ "${MCPGW_FRONTEND:-lighttpd}" = apache-proxy-fcgi ] ||
		skip "Apache's graceful restart (SIGUSR1) restarts its own responders: covered behind lighttpd and apache-proxy-fcgi"
	# a broker the way mcpgwctl starts it, its stderr on broker.log (after the SIGKILL test above
	# a responder started one, which logs to the responders' MCPGW_LOG_FILE, responders.log)
	stop_broker "$MCPGW_STATE_DIR"
	start_broker_here
	wait_server_state fault ready
	wait_server_state other ready
	echo_ok echo "before the rotation"
	bpid=$(broker_pid)
	rpids=$(responder_pids | sort | tr '\n' ' ')
	mv "$MCPGW_STATE_DIR/broker.log" "$MCPGW_STATE_DIR/broker.log.1"
	mv "$MCPGW_STATE_DIR/responders.log" "$MCPGW_STATE_DIR/responders.log.1"
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" reopen-logs
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[[ $output == *broker* ]]
	for _ in $(seq 50); do [ -s "$MCPGW_STATE_DIR/broker.log" ] && break; sleep 0.1; done
	grep -q "SIGHUP: log file reopened" "$MCPGW_STATE_DIR/broker.log"
	before1=$(wc -c <"$MCPGW_STATE_DIR/broker.log.1")
	before2=$(wc -c <"$MCPGW_STATE_DIR/responders.log.1")
	# every responder process serves once more: the access lines land in the new file
	for _ in 1 2 3; do echo_ok echo "after the rotation"; done
	get /health
	# a server's stderr, logged by the broker, too
	kill "$(server_field fault pid)"
	wait_server_state fault ready
	for _ in $(seq 50); do grep -q " INFO access .*endpoint=/v1/tools " "$MCPGW_STATE_DIR/responders.log" 2>/dev/null && break; sleep 0.1; done
	grep -q " INFO access .*endpoint=/v1/tools " "$MCPGW_STATE_DIR/responders.log"
	grep -q "server fault: " "$MCPGW_STATE_DIR/broker.log"
	sleep 0.3 # the responders' log thread writes within about 100 ms
	[ "$(wc -c <"$MCPGW_STATE_DIR/broker.log.1")" = "$before1" ]
	[ "$(wc -c <"$MCPGW_STATE_DIR/responders.log.1")" = "$before2" ]
	# nothing stopped or restarted: the broker the same, every responder alive, but for a second
	# process of a responder that lighttpd stopped for being idle (it starts one under load,
	# max-procs, and stops it with SIGTERM later, which the process logs): not one the SIGHUP ended
	[ "$(broker_pid)" = "$bpid" ]
	for p in $rpids; do
		kill -0 "$p" 2>/dev/null && continue
		cat "$MCPGW_STATE_DIR/responders.log.1" "$MCPGW_STATE_DIR/responders.log" |
			grep -q "\.fcgi\[$p\] INFO signal 15: stopping" || { echo "responder $p ended, not stopped by lighttpd" >&2; return 1; }
		echo "# responder $p: stopped by lighttpd (idle)" >&3
	done
	for p in $(responder_pids); do
		case " $rpids " in *" $p "*) ;; *) echo "responder $p started after the rotation" >&3 ;; esac
	done
}

# stop_timed: mcpgwctl stop; STOP_MS its duration
stop_timed() {
	local t0

	t0=$(date +%s%N)
	sh "$MCPGW_ROOT/deploy/mcpgwctl" stop >"$BATS_TEST_TMPDIR/stop.out" 2>&1
	STOP_MS=$(ms_since "$t0")
	echo "# stop took $STOP_MS ms: $(cat "$BATS_TEST_TMPDIR/stop.out")" >&3
}

@test "stop drains the requests in flight within MCPGW_SHUTDOWN_GRACE, then cuts the rest; nothing is left running" {
	local status body pids p

	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || [ "${MCPGW_FRONTEND:-lighttpd}" = apache-proxy-fcgi ] ||
		skip "the graceful stop is tested behind lighttpd and apache-proxy-fcgi"
	# a chat that needs 2 s of the upstream: it finishes, though stop came meanwhile
	sim_script '[{"delay_ms":2000,"content":"finished in time"}]'
	bg_post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"slow"}],"mcp":{"tools":false}}' \
		"$BATS_TEST_TMPDIR/slow" &
	sleep 0.5
	pids="$(broker_pid) $(responder_pids | tr '\n' ' ') $(frontend_pid)"
	stop_timed
	wait
	read -r status body <"$BATS_TEST_TMPDIR/slow"
	[ "$status" = 200 ]
	BODY=$body assert_json "j.choices[0].message.content === 'finished in time'"
	[ "$STOP_MS" -ge 1000 ]
	for p in $pids; do gone "$p"; done
	# one that needs 30 s: cut after the 4 s of MCPGW_SHUTDOWN_GRACE (and its second of slack)
	sh "$MCPGW_ROOT/deploy/mcpgwctl" start >/dev/null 2>&1
	wait_server_state fault ready
	sim_script '[{"delay_ms":30000,"content":"too late"}]'
	bg_post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"too slow"}],"mcp":{"tools":false}}' \
		"$BATS_TEST_TMPDIR/slow" &
	sleep 0.5
	pids="$(broker_pid) $(responder_pids | tr '\n' ' ') $(frontend_pid)"
	stop_timed
	wait
	# the front end's own timeout (whole seconds, its clock's) or mcpgwctl's, a second later
	[ "$STOP_MS" -ge 2500 ] && [ "$STOP_MS" -lt 12000 ]
	read -r status body <"$BATS_TEST_TMPDIR/slow"
	[ "$status" != 200 ]
	for p in $pids; do gone "$p"; done
}
