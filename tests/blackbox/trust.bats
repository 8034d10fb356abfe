#!/usr/bin/env bats
# trust.bats: configuration is trusted only when it should be (issue 14, case 5): mcpgw-chat in a hostile directory, untrusted .env and servers_config.json, foreign or open state directories, planted symlinks, private databases.
#
# No web server: mcpgw-chat, mcpgw-broker and mcp-server-sqlite run directly.
# Every broker a test starts is stopped by its PID (stop_broker).

bats_require_minimum_version 1.5.0
load helpers
mcpgw_load_sim

CHAT="$MCPGW_ROOT/chat/mcpgw-chat"
BROKER="$MCPGW_ROOT/broker/mcpgw-broker"
SQLITESRV="$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite"
OTHER=65534 # nobody: another user

setup_file() {
	[ -x "$CHAT" ] && [ -x "$BROKER" ] || { echo "trust.bats: build first (make all)" >&2; return 1; }
	# the hostile directory's upstream: it must never see a request
	sim_start || return 1
	EVIL_PID=$SIM_PID EVIL_URL=$SIM_URL
	sim_start || { sim_stop "$EVIL_PID"; return 1; }
	export EVIL_PID EVIL_URL
}

teardown_file() {
	sim_stop
	sim_stop "${EVIL_PID:-}"
}

setup() {
	# short base: the broker's socket path must fit in sun_path
	B=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-trust.XXXXXX")
	umask 022
	unset MCPGW_HOME MCPGW_STATE_DIR MCPGW_ENV_FILE MCPGW_CONFIG MCPGW_BROKER_BIN XDG_CONFIG_HOME
	unset OPENAI_API_KEY OPENAI_BASE_URL DEFAULT_MODEL
	# the user: HOME with ~/.config/mcpgw (the real key, the real upstream, the bundled server)
	export HOME="$B/home"
	U="$HOME/.config/mcpgw"
	mkdir -p "$U"
	cat >"$U/servers_config.json" <<EOF
{ "mcpServers": { "sqlite": { "command": "$SQLITESRV", "args": ["$U/test.db"] } } }
EOF
	printf 'OPENAI_BASE_URL=%s/v1\nOPENAI_API_KEY=sk-user-real-key\nDEFAULT_MODEL=gpt-4o-mini\nMCPGW_UPSTREAM_RETRIES=0\n' \
		"$SIM_URL" >"$U/.env"
	# the hostile directory: its own .env and servers_config.json, programs that leave a mark if run
	H="$B/hostile"
	mkdir -p "$H"
	printf '#!/bin/sh\ntouch "%s/ran-broker"\nexit 1\n' "$H" >"$H/evil-broker"
	printf '#!/bin/sh\ntouch "%s/ran-server"\nexit 1\n' "$H" >"$H/evil-server"
	chmod 755 "$H/evil-broker" "$H/evil-server"
	printf 'MCPGW_BROKER_BIN=%s/evil-broker\nOPENAI_BASE_URL=%s/v1\nOPENAI_API_KEY=sk-evil\n' "$H" "$EVIL_URL" >"$H/.env"
	cat >"$H/servers_config.json" <<EOF
{ "mcpServers": { "evil": { "command": "$H/evil-server" } } }
EOF
	sim_reset
	SIM_URL=$EVIL_URL sim_reset
}

teardown() {
	stop_broker "$U/var"
	stop_broker "$B/var"
	[ -z "${B:-}" ] || rm -rf "$B"
}

# evil_requests: how many requests the hostile upstream got
evil_requests() { SIM_URL=$EVIL_URL sim_stats | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).requests)'; }

# refute CMD...: CMD fails
refute() {
	if "$@"; then
		echo "expected to fail: $*" >&2
		return 1
	fi
}

# broker_bg: start the broker in the background (its pid in BPID, its output in $B/broker.out)
broker_bg() {
	"$BROKER" >"$B/broker.out" 2>&1 3>&- &
	BPID=$!
}

# wait_socket DIR: until DIR/broker.sock exists (5 s)
wait_socket() {
	local i=0
	until [ -S "$1/broker.sock" ]; do
		[ $i -lt 100 ] || { cat "$B/broker.out" >&2; return 1; }
		kill -0 "$BPID" 2>/dev/null || { cat "$B/broker.out" >&2; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
}

@test "mcpgw-chat in a hostile directory runs nothing of it and sends nothing to its OPENAI_BASE_URL" {
	cd "$H"
	run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 0 ] || { echo "$output $stderr" >&2; return 1; }
	[ "$output" = "sim: hello" ]
	# its broker, its server, its upstream: none of them
	[ ! -e "$H/ran-broker" ]
	[ ! -e "$H/ran-server" ]
	[ "$(evil_requests)" = 0 ]
	# the user's own configuration was used: the real key went to the real upstream only
	sim_requests | grep -q '"authorization":"Bearer sk-user-real-key"'
	# and the user is told why the directory's files were passed over, and how to use them
	[[ "$stderr" == *"note: the .env in the working directory is not read"* ]]
	[[ "$stderr" == *"MCPGW_HOME=$H"* ]]
	# the state went to the user's config directory, not the hostile one
	[ -d "$U/var" ] && [ ! -e "$H/var" ]
}

@test "named explicitly, a .env still cannot name the broker to run" {
	cd "$H"
	MCPGW_HOME="$H" run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$H/.env:1: MCPGW_BROKER_BIN may not be set in a .env file (it names a program to run): set it in the environment"* ]]
	[ ! -e "$H/ran-broker" ]
	[ "$(evil_requests)" = 0 ]
	# from the environment it is taken (the user named it)
	printf 'OPENAI_BASE_URL=%s/v1\n' "$SIM_URL" >"$H/.env"
	MCPGW_HOME="$H" MCPGW_BROKER_BIN="$H/evil-broker" run --separate-stderr "$CHAT" -e "hello"
	[ -e "$H/ran-broker" ]
}

@test "a group-writable .env or servers_config.json is refused, naming the file and the fix" {
	chmod 664 "$U/.env"
	cd "$B"
	run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$U/.env is writable by its group (mode 0664)"*"fix: chmod go-w $U/.env"* ]]
	[ "$(sim_stats | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).requests)')" = 0 ]
	chmod 600 "$U/.env"
	# the broker refuses a servers_config.json others may write (--check-config and a start alike)
	chmod 646 "$U/servers_config.json"
	MCPGW_HOME="$U" run --separate-stderr "$BROKER" --check-config
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$U/servers_config.json is writable by everyone (mode 0646)"*"chmod go-w $U/servers_config.json"* ]]
	MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" run --separate-stderr "$BROKER"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"chmod go-w $U/servers_config.json"* ]]
	[ ! -e "$U/test.db" ] # its server was not started
}

@test "a .env owned by another user is refused" {
	[ "$(id -u)" = 0 ] || skip "needs root to give a file to another user"
	chown "$OTHER" "$U/.env"
	cd "$B"
	run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"$U/.env is owned by nobody, not by root (who runs this) or root"* ]]
	MCPGW_HOME="$U" run --separate-stderr "$BROKER" --check-config
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"$U/.env is owned by nobody"* ]]
}

@test "a state directory owned by another user or writable by others is refused" {
	mkdir -m 0777 "$B/var"
	chmod 0777 "$B/var"
	MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" run --separate-stderr "$BROKER"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"the state directory $B/var is writable by everyone (mode 0777)"*"fix: chmod go-w $B/var"* ]]
	[ -z "$(ls -A "$B/var")" ] # nothing made in it
	MCPGW_STATE_DIR="$B/var" run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"chmod go-w $B/var"* ]]
	[ -z "$(ls -A "$B/var")" ]
	chmod 0700 "$B/var"
	[ "$(id -u)" = 0 ] || skip "needs root to give a directory to another user"
	chown "$OTHER" "$B/var"
	MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" run --separate-stderr "$BROKER"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"the state directory $B/var is owned by nobody, not by root who runs this"* ]]
	[ -z "$(ls -A "$B/var")" ]
}

@test "a responder refuses a state directory others may write: 500 configuration_error naming it" {
	mkdir -m 0700 "$B/var"
	chmod 0777 "$B/var"
	run --separate-stderr env MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" MCPGW_BROKER_AUTOSTART=0 \
		GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REQUEST_URI=/v1/tools SCRIPT_NAME=/v1/tools \
		"$MCPGW_ROOT/cgi-bin/tools.fcgi"
	[[ "$output" == *"Status: 500"* ]]
	[[ "$output" == *'"code":"configuration_error"'* ]]
	[[ "$output" == *"the state directory $B/var is writable by everyone (mode 0777)"* ]]
	[ -z "$(ls -A "$B/var")" ]
	chmod 0700 "$B/var"
	run --separate-stderr env MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" MCPGW_BROKER_AUTOSTART=0 \
		GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REQUEST_URI=/v1/tools SCRIPT_NAME=/v1/tools \
		"$MCPGW_ROOT/cgi-bin/tools.fcgi"
	[[ "$output" != *"configuration_error"* ]]
}

@test "planted symlinks in the state directory leave their victims untouched" {
	printf 'precious\n' >"$B/victim"
	mkdir -m 0700 "$B/var"
	for f in catalog.gen broker.pid.tmp chat.log; do ln -s "$B/victim" "$B/var/$f"; done
	export MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" MCPGW_LOG_FILE="$B/var/broker.log"
	ln -s "$B/victim" "$B/var/broker.log"
	broker_bg
	sleep 0.5
	# a log that is a symlink is not opened: the broker says so and logs to stderr
	grep -q "cannot open the log file" "$B/broker.out"
	wait_socket "$B/var"
	# catalog.gen could not be made: the broker goes on (responders then ask it every time)
	grep -q "catalog.gen: Too many levels of symbolic links" "$B/broker.out"
	[ -L "$B/var/catalog.gen" ]
	[ -f "$B/var/broker.pid" ] && [ ! -L "$B/var/broker.pid" ]
	[ "$(cat "$B/var/broker.pid")" = "$BPID" ]
	# mcpgw-chat on the same state directory: its chat.log is a symlink too
	unset MCPGW_LOG_FILE
	run --separate-stderr "$CHAT" -e "hello"
	[ "$status" -eq 0 ]
	stop_broker "$B/var"
	[ "$(cat "$B/victim")" = precious ]
}

@test "the databases are 0600: registry, chat sessions and the bundled server's" {
	cd "$B"
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"none"}]'
	run --separate-stderr "$CHAT" -e "Which tables?" --session s1
	[ "$status" -eq 0 ] || { echo "$stderr" >&2; return 1; }
	stop_broker "$U/var"
	for db in "$U/test.db" "$U/var/mcpgw.db" "$U/var/chat.db"; do
		[ -f "$db" ] || { echo "missing $db" >&2; return 1; }
	done
	# every database file, with its -wal and -shm, whatever the umask (022 here)
	for f in "$U"/test.db* "$U"/var/*.db*; do
		[ "$(stat -c %a "$f")" = 600 ] || { echo "$f is $(stat -c %a "$f")" >&2; return 1; }
	done
	# the bundled server alone, on a new file
	echo '' | "$SQLITESRV" "$B/alone.db" >/dev/null 2>&1 || true
	[ "$(stat -c %a "$B/alone.db")" = 600 ]
	# a symlink to nowhere is not followed to create its target
	ln -s "$B/created-through-link.db" "$B/dangling.db"
	run "$SQLITESRV" "$B/dangling.db" </dev/null
	[ "$status" -ne 0 ]
	[ ! -e "$B/created-through-link.db" ]
}

@test "mcpgwctl: a foreign or open state directory is refused; links planted in ours are not written through" {
	export MCPGW_HOME="$U" MCPGW_STATE_DIR="$B/var" MCPGW_LISTEN="127.0.0.1:$(free_port)"
	mkdir -m 0700 "$B/var"
	chmod 0707 "$B/var"
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" stop
	[ "$status" -eq 1 ]
	[[ "$output" == *"the state directory $B/var is writable by group or others (mode 707)"*"fix: chmod go-w $B/var"* ]]
	if [ "$(id -u)" = 0 ]; then
		chmod 0700 "$B/var"
		chown "$OTHER" "$B/var"
		printf '12345\n' >"$B/var/broker.pid" # stop would kill what another user's pid file names
		run sh "$MCPGW_ROOT/deploy/mcpgwctl" stop
		[ "$status" -eq 1 ]
		[[ "$output" == *"the state directory $B/var is owned by nobody, not by root who runs this"* ]]
		rm -rf "$B/var"
		mkdir -m 0700 "$B/var"
	fi
	chmod 0700 "$B/var"
	# its .env and servers_config.json are checked as the programs check them
	chmod 664 "$U/.env"
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" status
	[ "$status" -eq 1 ]
	[[ "$output" == *"$U/.env is writable by group or others (mode 664): refused"*"fix: chmod go-w $U/.env"* ]]
	chmod 600 "$U/.env"
	chmod 602 "$U/servers_config.json"
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" start
	[ "$status" -eq 1 ]
	[[ "$output" == *"$U/servers_config.json is writable by group or others (mode 602)"* ]]
	chmod 644 "$U/servers_config.json"
	printf 'precious\n' >"$B/victim"
	mkdir "$B/victim-dir"
	# links where files are written by name: refused before anything is written
	for f in frontend listen apache2.pid responders.log; do ln -s "$B/victim" "$B/var/$f"; done
	ln -s "$B/victim-dir" "$B/var/errors"
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" start
	[ "$status" -eq 1 ]
	[[ "$output" == *"the state directory $B/var holds symlinks ("*"apache2.pid"*"): refused"* ]]
	[ "$(cat "$B/victim")" = precious ] && [ -z "$(ls -A "$B/victim-dir")" ]
	# without them it starts; the files it writes by name are written through new files renamed into place
	find "$B/var" -maxdepth 1 -type l -delete
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" start
	sh "$MCPGW_ROOT/deploy/mcpgwctl" stop >/dev/null 2>&1 || true
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	[ -f "$B/var/frontend" ] && [ -f "$B/var/lighttpd.conf" ] && [ -s "$B/var/errors/404.html" ]
	# no temporary left behind (mktemp's NAME.XXXXXX, errors.XXXXXX)
	[ -z "$(find "$B/var" -maxdepth 2 -regex '.*\.[A-Za-z0-9]\{6\}' ! -name '*.sqlite')" ]
	[ "$(cat "$B/victim")" = precious ]
}
