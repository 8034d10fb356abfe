#!/usr/bin/env bats
# install.bats: `make install` with DESTDIR and PREFIX: the files, their modes and paths, the systemd units, and mcpgwctl run from the installed tree.

load helpers

setup_file() {
	# short base path: the broker socket path must fit in sun_path
	INST=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-in.XXXXXX")
	export INST
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$MCPGW_ROOT" install DESTDIR="$INST/d" PREFIX=/usr >"$INST/make.out" 2>&1 || {
		cat "$INST/make.out" >&2
		return 1
	}
}

teardown_file() {
	local f

	for f in "$INST"/home-*; do
		[ -d "$f" ] && MCPGW_HOME=$f MCPGW_STATE_DIR=$f/var sh "$INST/d/usr/bin/mcpgwctl" stop >/dev/null 2>&1
	done
	if [ "${MCPGW_BB_KEEP:-}" = 1 ]; then echo "# kept $INST" >&3; else rm -rf "$INST"; fi
}

# mode PATH: its permission bits in octal
mode() { stat -c %a "$1"; }

@test "make install DESTDIR PREFIX=/usr: programs, responders, configs, units, docs; private state and .env" {
	local d="$INST/d" f

	for f in mcpgw-broker mcp-server-sqlite mcpgw-mcp-client mcpgw-chat mcpgwctl; do
		[ "$(mode "$d/usr/bin/$f")" = 755 ] || { echo "usr/bin/$f: $(mode "$d/usr/bin/$f")" >&2; return 1; }
	done
	for f in chat models embeddings tools health; do
		[ "$(mode "$d/usr/lib/mcpgw/cgi-bin/$f.fcgi")" = 755 ]
	done
	for f in lighttpd.conf.example lighttpd-cgi.conf.example servers_config.json .env.example \
		apache/apache2-standalone.conf apache/mcpgw-fcgid.conf apache/mcpgw-proxy-fcgi.conf apache/mcpgw-cgi.conf \
		apache/htaccess.example; do
		[ "$(mode "$d/usr/share/mcpgw/$f")" = 644 ] || { echo "share/mcpgw/$f missing or not 0644" >&2; return 1; }
	done
	for f in mcpgw-broker.service mcpgw-fcgi@.socket mcpgw-fcgi@.service; do
		[ "$(mode "$d/usr/lib/systemd/system/$f")" = 644 ]
	done
	[ -s "$d/usr/lib/sysusers.d/mcpgw.conf" ]
	[ -s "$d/usr/share/doc/mcpgw/README.md" ]
	[ -s "$d/etc/mcpgw/servers_config.json" ]
	[ "$(mode "$d/etc/mcpgw/.env")" = 600 ]
	[ "$(mode "$d/var/lib/mcpgw")" = 700 ]
	# the examples and units name this install's paths
	grep -q '^ExecStart=/usr/bin/mcpgw-broker$' "$d/usr/lib/systemd/system/mcpgw-broker.service"
	grep -q '^ExecStart=/usr/lib/mcpgw/cgi-bin/%i.fcgi$' "$d/usr/lib/systemd/system/mcpgw-fcgi@.service"
	grep -q 'Define MCPGW_ROOT /usr/lib/mcpgw$' "$d/usr/share/mcpgw/apache/mcpgw-fcgid.conf"
	! grep -rq '/usr/local/lib/mcpgw' "$d/usr/share/mcpgw/apache" "$d/usr/lib/systemd"
}

@test "systemd-analyze verify accepts the units (installed with PREFIX so that their programs exist)" {
	local p="$INST/p"

	command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$MCPGW_ROOT" install PREFIX="$p" SYSCONF="$p/etc/mcpgw" STATEDIR="$p/var/lib/mcpgw" >/dev/null
	cd "$p/lib/systemd/system"
	run systemd-analyze verify mcpgw-broker.service mcpgw-fcgi@chat.socket mcpgw-fcgi@chat.service \
		mcpgw-fcgi@tools.socket mcpgw-fcgi@tools.service
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

# start_installed FRONTEND: the installed mcpgwctl with a copy of the installed /etc/mcpgw as MCPGW_HOME
start_installed() {
	MCPGW_HOME="$INST/home-$1"
	MCPGW_STATE_DIR="$MCPGW_HOME/var"
	MCPGW_LISTEN="127.0.0.1:$(free_port)"
	MCPGW_URL="http://$MCPGW_LISTEN"
	MCPGW_FRONTEND=$1
	export MCPGW_HOME MCPGW_STATE_DIR MCPGW_LISTEN MCPGW_URL MCPGW_FRONTEND
	cp -r "$INST/d/etc/mcpgw" "$MCPGW_HOME"
	mcpgw_hand_over_home
	# Apache's user must reach the installed tree too
	chmod 755 "$INST"
	run sh "$INST/d/usr/bin/mcpgwctl" start
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "the installed mcpgwctl serves the installed responders behind lighttpd" {
	start_installed lighttpd
	get /v1/tools
	assert_status 200
	assert_json 'j.data.filter(t => t.server === "sqlite").length === 6'
	# the broker is the installed one, the database files private
	[ "$(readlink "/proc/$(cat "$MCPGW_STATE_DIR/broker.pid")/exe")" = "$INST/d/usr/bin/mcpgw-broker" ]
	[ "$(mode "$MCPGW_STATE_DIR/mcpgw.db")" = 600 ]
	[ "$(mode "$MCPGW_STATE_DIR")" = 700 ]
	sh "$INST/d/usr/bin/mcpgwctl" stop
}

@test "the installed mcpgwctl and Apache configs serve behind apache-fcgid; a responder restarts the installed broker" {
	start_installed apache-fcgid
	get /v1/tools/read_query
	assert_status 200
	kill -KILL "$(cat "$MCPGW_STATE_DIR/broker.pid")"
	rm -f "$MCPGW_STATE_DIR/broker.sock"
	post /v1/tools '{"tool":"list_tables"}'
	assert_status 200
	[ "$(readlink "/proc/$(cat "$MCPGW_STATE_DIR/broker.pid")/exe")" = "$INST/d/usr/bin/mcpgw-broker" ]
	sh "$INST/d/usr/bin/mcpgwctl" stop
}
