#!/usr/bin/env bats
# mcpgwctl.bats: what `mcpgwctl start|run|status|stop` say: the MCP servers' progress and summary, the recorded address, what was stopped.

load helpers

CTL="$MCPGW_ROOT/deploy/mcpgwctl"
SQLITE="$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite"
# the front end mcpgwctl names (MCPGW_FRONTEND=cgi is apache-cgi)
FE=${MCPGW_FRONTEND:-lighttpd}
[ "$FE" = cgi ] && FE=apache-cgi

# a fresh home and port per test; stopped (by mcpgwctl, by pid) in teardown
setup() {
	MCPGW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-ctl.XXXXXX")
	MCPGW_STATE_DIR="$MCPGW_HOME/var"
	PORT=$(free_port)
	MCPGW_LISTEN="127.0.0.1:$PORT"
	MCPGW_URL="http://$MCPGW_LISTEN"
	export MCPGW_HOME MCPGW_STATE_DIR MCPGW_LISTEN MCPGW_URL
	printf 'MCPGW_LOG_LEVEL=debug\n' >"$MCPGW_HOME/.env"
}

teardown() {
	sh "$CTL" stop >/dev/null 2>&1 || true
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" keep "$MCPGW_HOME" "$(artifacts_tag)" || true
	if [ "${MCPGW_BB_KEEP:-}" = 1 ]; then echo "# kept $MCPGW_HOME" >&3; else rm -rf "$MCPGW_HOME"; fi
}

# servers JSON: servers_config.json with these "name": {...} entries
servers() {
	printf '{"mcpServers": {%s}}\n' "$1" >"$MCPGW_HOME/servers_config.json"
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" plant "$MCPGW_HOME" || return 1  # the run's canaries (helpers.bash)
	mcpgw_hand_over_home
}

# good: the bundled SQLite server on a database in the home
good() { printf '"sqlite": {"command": "%s", "args": ["%s/t.db"]}' "$SQLITE" "$MCPGW_HOME"; }
# ghost: a command that does not exist
ghost() { printf '"ghost": {"command": "%s/no-such-server"}' "$MCPGW_HOME"; }
# dies: a server that exits at once with a word on stderr
dies() { printf '"dies": {"command": "sh", "args": ["-c", "echo boom >&2; exit 3"]}'; }

# alive PIDFILE: the process of the pid file runs (zombies do not count)
alive() {
	local pid

	pid=$(head -n 1 "$1" 2>/dev/null) && [ -n "$pid" ] && [ -e "/proc/$pid" ] &&
		[ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -c1)" != Z ]
}

@test "start with a good and a failing server: a line per server, '1 of 2 servers ready' with the reason, exit 0" {
	servers "$(good), $(ghost)"
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"  sqlite: ready, 6 tools"* ]]
	[[ "$output" == *"  ghost: failed: cannot run '$MCPGW_HOME/no-such-server': $MCPGW_HOME/no-such-server does not exist"* ]]
	# the summary is the last word on it, after the progress lines
	grep -qx "mcpgw serving on http://127.0.0.1:$PORT/v1 behind $FE: 1 of 2 servers ready; ghost: cannot run '$MCPGW_HOME/no-such-server': $MCPGW_HOME/no-such-server does not exist" <<<"$output"
	[ "$(grep -n '^mcpgw serving on' <<<"$output" | cut -d: -f1)" -gt "$(grep -n 'sqlite: ready' <<<"$output" | cut -d: -f1)" ]
	assert_still_serving
}

@test "start with only failing servers: both reasons, exit 1, and the gateway is stopped again" {
	servers "$(ghost), $(dies)"
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"0 of 2 servers ready"* ]]
	[[ "$output" == *"ghost: cannot run '$MCPGW_HOME/no-such-server': $MCPGW_HOME/no-such-server does not exist"* ]]
	# the reason is the exit and the server's last words, not the write that found its stdin closed
	[[ "$output" == *"dies: exited with status 3 (stderr: boom)"* ]]
	[[ "$output" == *"no MCP server is ready, so the gateway was stopped again"*"broker (pid "*"fix $MCPGW_HOME/servers_config.json"* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
	! alive "$MCPGW_STATE_DIR/lighttpd.pid"
	! alive "$MCPGW_STATE_DIR/apache2.pid"
	run curl -s -o /dev/null "$MCPGW_URL/health"
	[ "$status" -ne 0 ]
	run sh "$CTL" status
	[ "$status" -eq 3 ]
	[[ "$output" == *"mcpgw: not running"* ]]
}

@test "no MCP server configured: start says so and serves (exit 0)" {
	servers ""
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"behind $FE: no MCP server configured in $MCPGW_HOME/servers_config.json"* ]]
}

@test "start writes a web server config the web server takes without a warning (lighttpd 1.4.69: the shutdown grace as a feature flag)" {
	servers ""
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"WARNING"* ]]
	[[ "$output" != *"unknown config-key"* ]]
	! grep -rs 'unknown config-key' "$MCPGW_STATE_DIR"/*.log
	if [ "$FE" = lighttpd ]; then
		grep -q 'server.feature-flags += ("server.graceful-shutdown-timeout" => ' "$MCPGW_STATE_DIR/lighttpd.conf"
	fi
}

@test "a server slower than MCPGW_STARTUP_WAIT: 'waiting for' lines, then 'still starting' in the summary" {
	servers "$(good), \"slow\": {\"command\": \"sh\", \"args\": [\"-c\", \"exec sleep 60\"]}"
	echo MCPGW_STARTUP_WAIT=6 >>"$MCPGW_HOME/.env"
	SECONDS=0
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$SECONDS" -ge 5 ] && [ "$SECONDS" -le 20 ]
	[[ "$output" == *"starting 2 MCP servers (waiting up to 6 s, MCPGW_STARTUP_WAIT)"* ]]
	[[ "$output" == *"  waiting for 1 of 2 servers (5 s of 6): slow (starting)"* ]]
	[[ "$output" == *": 1 of 2 servers ready; still starting after 6 s (MCPGW_STARTUP_WAIT): slow"* ]]
	MCPGW_STARTUP_WAIT=soon run sh "$CTL" start
	[ "$status" -eq 1 ]
	[ "$output" = "mcpgwctl: MCPGW_STARTUP_WAIT: expected seconds 0..3600, got 'soon' (set in the environment)" ]
}

@test "only servers still starting when the wait ends (a slow npx download): not a failure, exit 0, the gateway keeps serving" {
	servers "\"slow\": {\"command\": \"sh\", \"args\": [\"-c\", \"exec sleep 60\"]}, $(ghost)"
	echo MCPGW_STARTUP_WAIT=1.5 >>"$MCPGW_HOME/.env"
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *": 0 of 2 servers ready; "*"still starting after "*" s (MCPGW_STARTUP_WAIT): slow"* ]]
	[[ "$output" == *"ghost: cannot run"* ]]
	alive "$MCPGW_STATE_DIR/broker.pid"
	run curl -s -o /dev/null -w '%{http_code}' "$MCPGW_URL/health"
	[ "$output" = 200 ]
}

@test "status reports the address start recorded, not the default or the caller's MCPGW_LISTEN; pids; servers" {
	servers "$(good), $(ghost)"
	run sh "$CTL" start
	[ "$status" -eq 0 ]
	run env -u MCPGW_LISTEN sh "$CTL" status
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"mcpgw: running behind $FE on http://127.0.0.1:$PORT/v1 (state: $MCPGW_STATE_DIR)"* ]]
	[[ "$output" != *":8000"* ]]
	[[ "$output" == *"broker: pid $(head -n 1 "$MCPGW_STATE_DIR/broker.pid")"* ]]
	[[ "$output" == *"servers: 1 of 2 servers ready; ghost: cannot run"* ]]
	[[ "$output" == *"  sqlite: ready, 6 tools"* ]]
	[[ "$output" == *"  ghost: backoff, 0 tools, "*" restarts; last error: cannot run '$MCPGW_HOME/no-such-server'"* ||
		"$output" == *"  ghost: starting, 0 tools, "*" restarts; last error: cannot run '$MCPGW_HOME/no-such-server'"* ]]
	MCPGW_LISTEN=127.0.0.1:1 run sh "$CTL" status
	[[ "$output" == *"http://127.0.0.1:$PORT/v1"* ]]
	# start again: it runs, and says where
	MCPGW_LISTEN=127.0.0.1:1 run sh "$CTL" start
	[ "$status" -eq 0 ]
	[[ "$output" == *"already running: $FE (pid "*") on http://127.0.0.1:$PORT/v1"* ]]
	[[ "$output" == *"not on 127.0.0.1:1 (MCPGW_LISTEN)"* ]]
}

@test "stop says what it stopped; a second stop says nothing was running" {
	servers "$(good)"
	run sh "$CTL" start
	[ "$status" -eq 0 ]
	[[ "$output" == *": 1 of 1 servers ready" ]]
	broker=$(head -n 1 "$MCPGW_STATE_DIR/broker.pid")
	run sh "$CTL" stop
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "mcpgwctl: stopped "*"broker (pid $broker) (state: $MCPGW_STATE_DIR)" ]]
	case $FE in
	lighttpd*) [[ "$output" == *"lighttpd (pid "* ]] ;;
	*) [[ "$output" == *"apache2 (pid "* ]] ;;
	esac
	[ ! -e "$MCPGW_STATE_DIR/listen" ] && [ ! -e "$MCPGW_STATE_DIR/frontend" ]
	run sh "$CTL" stop
	[ "$status" -eq 0 ]
	[ "$output" = "mcpgwctl: nothing was running (state: $MCPGW_STATE_DIR)" ]
}

@test "run: the same progress and summary, keeps serving, and says what it stopped on SIGTERM" {
	servers "$(good), $(ghost)"
	sh "$CTL" run >"$MCPGW_HOME/run.out" 2>&1 3>&- &
	pid=$!
	for _ in $(seq 150); do
		grep -q '^mcpgwctl: Ctrl-C stops it' "$MCPGW_HOME/run.out" && break
		sleep 0.1
	done
	cat "$MCPGW_HOME/run.out"
	grep -qx "mcpgw serving on http://127.0.0.1:$PORT/v1 behind $FE: 1 of 2 servers ready; ghost: cannot run '$MCPGW_HOME/no-such-server': $MCPGW_HOME/no-such-server does not exist" "$MCPGW_HOME/run.out"
	grep -qx "  sqlite: ready, 6 tools" "$MCPGW_HOME/run.out"
	assert_still_serving
	run sh "$CTL" status
	[[ "$output" == *"running behind $FE on http://127.0.0.1:$PORT/v1"* ]]
	kill -TERM "$pid"
	wait "$pid"
	grep -q "^mcpgwctl: stopped .*broker (pid " "$MCPGW_HOME/run.out"
	! alive "$MCPGW_STATE_DIR/broker.pid"
}

@test "a busy address: start and run say so and name MCPGW_LISTEN, and leave nothing running" {
	servers "$(good)"
	# something that accepts connections on the port and never answers
	node -e 'require("net").createServer(() => {}).listen(+process.argv[1], "127.0.0.1")' "$PORT" &
	local holder=$!
	for _ in $(seq 50); do
		rc=0; curl -s -m 0.2 -o /dev/null "$MCPGW_URL/" || rc=$?
		[ "$rc" != 7 ] && break
		sleep 0.1
	done
	run timeout 60 sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"127.0.0.1:$PORT is in use by another program"*"MCPGW_LISTEN="* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
	run timeout 60 sh "$CTL" run
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"is in use by another program"* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
	kill "$holder"
}

@test "a malformed MCPGW_LISTEN is named as a setting with its form and source before any port check; nothing starts" {
	servers "$(good)"
	local form="HOST:PORT with PORT 1..65535 (e.g. 127.0.0.1:8000; a bare PORT is 127.0.0.1:PORT)" v
	for v in ":$PORT" "127.0.0.1:99999" "127.0.0.1:0" "127.0.0.1:0$PORT" "127.0.0.1:abc" "127.0.0.1:" ":" "my host:$PORT" "-x:$PORT"; do
		for cmd in start run; do
			MCPGW_LISTEN=$v run timeout 30 sh "$CTL" "$cmd"
			echo "$cmd $v: $output"
			[ "$status" -eq 1 ]
			[ "$output" = "mcpgwctl: MCPGW_LISTEN: expected $form, got '$v' (set in the environment)" ]
		done
	done
	# from .env: the file is named
	unset MCPGW_LISTEN
	echo "MCPGW_LISTEN=:$PORT" >>"$MCPGW_HOME/.env"
	run timeout 30 sh "$CTL" start
	[ "$status" -eq 1 ]
	[ "$output" = "mcpgwctl: MCPGW_LISTEN: expected $form, got ':$PORT' (set in $MCPGW_HOME/.env)" ]
	# IPv6: said to be unsupported, bracketed or not
	for v in "[::1]:$PORT" "::1:$PORT"; do
		MCPGW_LISTEN=$v run timeout 30 sh "$CTL" start
		[ "$status" -eq 1 ]
		[ "$output" = "mcpgwctl: MCPGW_LISTEN: IPv6 addresses are not supported, got '$v' (set in the environment): use an IPv4 address or a host name, e.g. 127.0.0.1:8000" ]
	done
	! alive "$MCPGW_STATE_DIR/broker.pid"
	[ ! -e "$MCPGW_STATE_DIR/listen" ]
}

@test "a bare MCPGW_LISTEN port is 127.0.0.1:PORT" {
	servers "$(good)"
	MCPGW_LISTEN=$PORT run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"mcpgw serving on http://127.0.0.1:$PORT/v1 behind $FE: 1 of 1 servers ready"* ]]
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health"
	[ "$output" = 200 ]
	run sh "$CTL" status
	[[ "$output" == *"running behind $FE on http://127.0.0.1:$PORT/v1"* ]]
}

@test "a wrong setting the broker reads is named as a setting with where it is set, not blamed on servers_config.json" {
	servers "$(good)"
	echo "MCPGW_TOOL_TIMEOUT=-5" >>"$MCPGW_HOME/.env"
	run timeout 60 sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[-2]}" = "mcpgw-broker: MCPGW_TOOL_TIMEOUT: expected seconds 0.001..86400, got '-5'" ]
	[ "${lines[-1]}" = "mcpgwctl: the setting MCPGW_TOOL_TIMEOUT is wrong (said above), set in $MCPGW_HOME/.env; settings come from the environment, else $MCPGW_HOME/.env" ]
	[[ "$output" != *"servers_config.json"* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
	# the environment wins over .env, and is named
	MCPGW_TOOL_TIMEOUT=soon run timeout 60 sh "$CTL" run
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[-1]}" = "mcpgwctl: the setting MCPGW_TOOL_TIMEOUT is wrong (said above), set in the environment; settings come from the environment, else $MCPGW_HOME/.env" ]
	# a .env the broker cannot read at all
	printf 'MCPGW_TOOL_TIMEOUT\n' >"$MCPGW_HOME/.env"
	run timeout 60 sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	[ "${lines[-1]}" = "mcpgwctl: the settings cannot be read (said above); they come from the environment, else $MCPGW_HOME/.env" ]
	[[ "$output" != *"servers_config.json"* ]]
	# mcpgwctl's own settings say where they are set too
	MCPGW_FRONTEND=nginx run sh "$CTL" start
	[ "$output" = "mcpgwctl: MCPGW_FRONTEND: expected lighttpd, lighttpd-cgi, apache-fcgid, apache-proxy-fcgi, apache-cgi or cgi, got 'nginx' (set in the environment)" ]
	printf 'MCPGW_STARTUP_WAIT=soon\n' >"$MCPGW_HOME/.env"
	run sh "$CTL" start
	[ "$output" = "mcpgwctl: MCPGW_STARTUP_WAIT: expected seconds 0..3600, got 'soon' (set in $MCPGW_HOME/.env)" ]
}

# run_until_serving HOW: mcpgwctl run in the background (HOW=group: in a process
# group of its own, as a terminal's foreground job is), until it serves; sets RUN_PID
run_until_serving() {
	if [ "$1" = group ]; then
		setsid sh "$CTL" run >"$MCPGW_HOME/run.out" 2>&1 3>&- &
	else
		sh "$CTL" run >"$MCPGW_HOME/run.out" 2>&1 3>&- &
	fi
	RUN_PID=$!
	for _ in $(seq 150); do
		grep -q '^mcpgwctl: Ctrl-C stops it' "$MCPGW_HOME/run.out" && return 0
		sleep 0.1
	done
	cat "$MCPGW_HOME/run.out"
	return 1
}

@test "run stops alike on SIGINT (Ctrl-C's whole group, or the process alone), SIGTERM and SIGHUP: names what it stopped, no stray errors" {
	servers ""
	local how front broker last
	for how in INT-group INT TERM HUP; do
		run_until_serving "${how#*-}"
		front=$(frontend_pid)
		broker=$(head -n 1 "$MCPGW_STATE_DIR/broker.pid")
		if [ "$how" = INT-group ]; then kill -INT -- "-$RUN_PID"; else kill "-$how" "$RUN_PID"; fi
		rc=0
		timeout 30 tail --pid="$RUN_PID" -f /dev/null || rc=$?
		echo "$how:"; cat "$MCPGW_HOME/run.out"
		[ "$rc" -eq 0 ]
		wait "$RUN_PID"
		# after serving, one line: what it stopped (no cat, kill or shell complaint)
		last=$(sed '1,/^mcpgwctl: Ctrl-C stops it$/d' "$MCPGW_HOME/run.out")
		[[ "$last" =~ ^mcpgwctl:\ stopped\ (lighttpd|apache2)\ \(pid\ $front\),\ .*broker\ \(pid\ $broker\)$ ]]
		! grep -q 'No such file\|^cat:\|^kill:\|^sh:' "$MCPGW_HOME/run.out"
		[ ! -e "/proc/$front" ] && [ ! -e "/proc/$broker" ]
		run curl -s -o /dev/null "$MCPGW_URL/health"
		[ "$status" -eq 7 ]
	done
}

@test "a front end that dies at start: start stops the broker it started and says why" {
	servers "$(good)"
	# the web server cannot open its error log: it exits at once after mcpgwctl checked the port
	mkdir -p "$MCPGW_STATE_DIR"
	case $FE in lighttpd*) mkdir "$MCPGW_STATE_DIR/lighttpd.log" ;; *) mkdir "$MCPGW_STATE_DIR/apache2.log" ;; esac
	mcpgw_hand_over_home
	run timeout 60 sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"stopped what had started"*"broker (pid "* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
}

@test "a config the broker refuses: start prints the broker's one-line reason, not a log tail" {
	printf '{"servers": {"sqlite": {"command": "%s"}}}\n' "$SQLITE" >"$MCPGW_HOME/servers_config.json"
	mcpgw_hand_over_home
	run timeout 60 sh "$CTL" start
	echo "$output"
	[ "$status" -eq 1 ]
	grep -qxF "$MCPGW_HOME/servers_config.json: no \"mcpServers\" object; found \"servers\" (the VS Code mcp.json shape): rename it to \"mcpServers\"" <<<"$output"
	[[ "$output" != *"INFO"* ]]   # no log lines
	[[ "$output" == *"the broker cannot read $MCPGW_HOME/servers_config.json"* ]]
	! alive "$MCPGW_STATE_DIR/broker.pid"
}

@test "settings in mcpgwctl's environment reach the responders (lighttpd, spawn-fcgi), or start says to put them in .env" {
	servers "$(good)"
	MCPGW_MODEL_ALIASES=from-environment=gpt-x run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	case $FE in
	lighttpd | apache-proxy-fcgi)
		[[ "$output" != *"note:"* ]]
		run curl -s "$MCPGW_URL/v1/models"
		echo "$output"
		[[ "$output" == *'"id":"from-environment"'* ]]
		;;
	*)
		[[ "$output" == *"note: MCPGW_MODEL_ALIASES set in this environment do not reach the responders behind $FE"*"put them in $MCPGW_HOME/.env"* ]]
		;;
	esac
}

@test "a listen address only this environment names (127.0.0.2): start is served; a client's Host of it once .env names it" {
	servers "$(good)"
	MCPGW_LISTEN="127.0.0.2:$PORT"
	MCPGW_URL="http://$MCPGW_LISTEN"
	run sh "$CTL" start
	echo "$output"
	[ "$status" -eq 0 ]
	# the responders read MCPGW_LISTEN from .env: its HOST is not theirs yet (a loopback name is)
	run curl -s -o /dev/null -w '%{http_code}' "$MCPGW_URL/health"
	[ "$output" = 403 ]
	run curl -s -o /dev/null -w '%{http_code}' -H "Host: localhost:$PORT" "$MCPGW_URL/health"
	[ "$output" = 200 ]
	sh "$CTL" stop >/dev/null
	echo "MCPGW_LISTEN=$MCPGW_LISTEN" >>"$MCPGW_HOME/.env"
	run sh "$CTL" start
	[ "$status" -eq 0 ]
	run curl -s -o /dev/null -w '%{http_code}' "$MCPGW_URL/health"
	[ "$output" = 200 ]
	run curl -s -o /dev/null -w '%{http_code}' -H "Host: 127.0.0.3:$PORT" "$MCPGW_URL/health"
	[ "$output" = 403 ]
}

@test "lighttpd passes on every setting the responders read (its copy list is README's Configuration table)" {
	local want have
	# all rows but those mcpgwctl sets itself or reads alone
	want=$(sed -n '/^| setting | default | meaning |/,/^$/p' "$MCPGW_ROOT/README.md" | sed -n 's/^| `\([A-Z][A-Z0-9_]*\)` |.*/\1/p' |
		grep -vx 'MCPGW_HOME\|MCPGW_STATE_DIR\|MCPGW_LOG_FILE\|MCPGW_LISTEN\|MCPGW_FRONTEND\|MCPGW_USER\|MCPGW_RESPONDER_PROCS' | sort)
	have=$(sed -n '/^var.mcpgw_copy_env = (/,/^)/p' "$MCPGW_ROOT/lighttpd.conf.example" | grep -o '"[A-Z][A-Z0-9_]*"' | tr -d '"' | grep -vx PATH | sort)
	diff <(echo "$want") <(echo "$have")
}

@test ".env as mcpgwctl reads it: the last line of a setting wins; export, quotes and a trailing comment are taken off" {
	printf '%s\n' '# MCPGW_STATE_DIR=/commented/out' 'MCPGW_STATE_DIR=/first/line' \
		"  export   MCPGW_STATE_DIR=\"$MCPGW_HOME/st ate\" # the state" >"$MCPGW_HOME/.env"
	run env -u MCPGW_STATE_DIR sh "$CTL" status
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"not running (state: $MCPGW_HOME/st ate)"* ]]
	printf '%s\n' "MCPGW_STATE_DIR='$MCPGW_HOME/single'" 'MCPGW_STATE_DIRX=/other/setting' >"$MCPGW_HOME/.env"
	run env -u MCPGW_STATE_DIR sh "$CTL" status
	[[ "$output" == *"(state: $MCPGW_HOME/single)"* ]]
	printf 'MCPGW_LOG_LEVEL=debug\n' >"$MCPGW_HOME/.env"
	run env -u MCPGW_STATE_DIR sh "$CTL" status
	[[ "$output" == *"(state: $MCPGW_HOME/var)"* ]]
}
