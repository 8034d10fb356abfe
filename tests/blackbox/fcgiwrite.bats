#!/usr/bin/env bats
# fcgiwrite.bats: lib/http/fcgiwrite behind real web servers of the file's own (small configs; the
# gateway is not started, so the file runs once, in the lighttpd stage): tests/fcgiwrite/stream.fcgi,
# one thread and one poll loop, writes a large answer to a client that reads slowly (slow_get: node,
# a pause after each chunk it reads; curl 7.88's --limit-rate let 3 MB through in 60 ms here) and
# answers another request on another connection at once meanwhile; the slow answer arrives whole; a
# client that leaves frees its request. Behind lighttpd (mod_fastcgi spawns it) and Apache
# mod_proxy_fcgi (spawn-fcgi starts it; enablereuse=on: FCGI_KEEP_CONN connections).

load helpers

STREAM_BIN="$MCPGW_ROOT/tests/fcgiwrite/stream.fcgi"

# fw_wait URL: the responder answers at URL within 5 s
fw_wait() {
	for _ in $(seq 50); do
		curl -s -m 1 -o /dev/null "$1/stream" && return 0
		sleep 0.1
	done
	return 1
}

setup_file() {
	FW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-fw.XXXXXX") || return 1
	LT_URL="http://127.0.0.1:$(free_port)"
	AP_URL="http://127.0.0.1:$(free_port)"
	export FW_HOME LT_URL AP_URL
	[ -x "$STREAM_BIN" ] || make -s -C "$MCPGW_ROOT" tests/fcgiwrite/stream.fcgi >&2 || return 1
	chmod 755 "$FW_HOME" || return 1 # Apache's children (www-data when root) reach the socket in it
	mkdir -p "$FW_HOME/www" "$FW_HOME/run" || return 1
	# server.stream-response-body = 2: lighttpd reads the answer only as the client takes it (as the
	# gateway's own config), so a slow client's back-pressure reaches the responder's socket;
	# "tcp-fin-propagate": a client that closes has lighttpd shut the FastCGI connection's write side
	# (as lighttpd.conf.example; without it lighttpd reads the rest of the answer and throws it away)
	cat >"$FW_HOME/lighttpd.conf" <<CONF
server.document-root = "$FW_HOME/www"
server.bind = "127.0.0.1"
server.port = ${LT_URL##*:}
server.pid-file = "$FW_HOME/lighttpd.pid"
server.errorlog = "$FW_HOME/lighttpd.log"
server.modules = ( "mod_fastcgi" )
server.stream-response-body = 2
fastcgi.server = ( "/stream" => ((
  "bin-path" => "$STREAM_BIN",
  "socket" => "$FW_HOME/lt-stream.sock",
  "min-procs" => 1, "max-procs" => 1,
  "check-local" => "disable",
  "tcp-fin-propagate" => "enable",
)) )
CONF
	lighttpd -D -f "$FW_HOME/lighttpd.conf" 2>>"$FW_HOME/lighttpd.log" &
	echo $! >"$FW_HOME/lighttpd.bgpid"
	fw_wait "$LT_URL" || { cat "$FW_HOME/lighttpd.log" >&2; return 1; }

	# Apache mod_proxy_fcgi: the responder on a unix socket spawn-fcgi opens; enablereuse=on keeps
	# the FastCGI connections (FCGI_KEEP_CONN), so requests also come on kept connections
	spawn-fcgi -s "$FW_HOME/ap-stream.sock" -M 0666 -P "$FW_HOME/ap-stream.pid" -- "$STREAM_BIN" >&2 || return 1
	cat >"$FW_HOME/apache2.conf" <<CONF
ServerRoot $FW_HOME
ServerName localhost
Listen ${AP_URL#http://}
PidFile $FW_HOME/apache2.pid
ErrorLog $FW_HOME/apache2.log
LogLevel warn
DefaultRuntimeDir $FW_HOME/run
Mutex file:$FW_HOME/run default
User www-data
Group www-data
DocumentRoot $FW_HOME/www
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
ProxyPass "/stream" "unix:$FW_HOME/ap-stream.sock|fcgi://fw/" enablereuse=on
CONF
	apache2 -f "$FW_HOME/apache2.conf" -D FOREGROUND 2>>"$FW_HOME/apache2.log" &
	echo $! >"$FW_HOME/apache2.bgpid"
	fw_wait "$AP_URL" || { cat "$FW_HOME/apache2.log" >&2; return 1; }
}

# fw_stop PIDFILE: end that process (SIGTERM) and wait for it, at most 5 s
fw_stop() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
}

teardown_file() {
	[ -n "${FW_HOME:-}" ] || return 0
	fw_stop "$FW_HOME/lighttpd.bgpid"
	fw_stop "$FW_HOME/apache2.bgpid"
	fw_stop "$FW_HOME/ap-stream.pid"
	[ -n "${MCPGW_BB_KEEP:-}" ] || rm -rf "$FW_HOME"
}

# stats URL: the responder's counters (a request of its own, answered within 2 s or failed)
stats() { curl -s -f -m 2 "$1/stream"; }
field() { node -e 'const o = JSON.parse(process.argv[1]); console.log(o[process.argv[2]]);' "$1" "$2"; }

# check_pattern N FILE...: each FILE holds exactly the N bytes stream.fcgi makes ('a' + (i*7 + i/251) % 26)
check_pattern() {
	node -e '
		const n = Number(process.argv[1]);
		for (const f of process.argv.slice(2)) {
			const b = require("fs").readFileSync(f);
			if (b.length !== n) { console.error(`${f}: length ${b.length}, want ${n}`); process.exit(1); }
			for (let i = 0; i < n; i++)
				if (b[i] !== 97 + (i * 7 + Math.floor(i / 251)) % 26) { console.error(`${f}: byte ${i} differs`); process.exit(1); }
		}
	' "$@"
}

# slow_get URL FILE KBS [STALL_MS]: GET URL into FILE at most KBS KB a second (a pause after each
# chunk read, as long as the chunk takes at that rate; 0: no limit), first stalling STALL_MS ms after
# the first chunk: a client that reads slowly; prints the status and the bytes read; gives up after
# 60 s. The shell running it becomes node (exec): `slow_get ... &` gives node's pid in $!
slow_get() {
	exec node -e '
		const http = require("http"), fs = require("fs");
		const [url, out, kbs, stall] = process.argv.slice(1), f = fs.openSync(out, "w");
		let n = 0, first = true;
		setTimeout(() => process.exit(2), 60000).unref();
		http.get(url, (res) => {
			res.on("data", (c) => {
				fs.writeSync(f, c);
				n += c.length;
				const ms = (first ? Number(stall || 0) : 0) + (Number(kbs) > 0 ? (c.length * 1000) / (Number(kbs) * 1024) : 0);
				first = false;
				if (ms > 0) { res.pause(); setTimeout(() => res.resume(), ms); }
			});
			res.on("end", () => { fs.closeSync(f); console.log(`${res.statusCode} ${n}`); });
		}).on("error", (e) => { console.error(e.message); process.exit(1); });
	' "$1" "$2" "$3" "${4:-0}"
}

# slow_client_does_not_stall URL: while a client reads an 8 MB answer slowly, the responder behind URL
# answers its stats at once; the client leaving frees its request
slow_client_does_not_stall() {
	local u=$1 s ww pid i
	# 256 KB/s: 30 s to read; the test ends it long before
	slow_get "$u/stream?bytes=8000000" "$BATS_TEST_TMPDIR/slow.out" 256 &
	pid=$!
	# wait until the slow answer fills the socket (its flushes say want-writable); every stats request
	# in between is answered within 2 s, while the slow answer is in progress
	for i in $(seq 100); do
		s=$(stats "$u") || { kill "$pid"; false; }
		ww=$(field "$s" want_write)
		[ "$ww" -gt 0 ] && [ "$(field "$s" streaming)" = 1 ] && break
		sleep 0.1
	done
	echo "# after $i looks: $s" >&3
	[ "$ww" -gt 0 ] || { kill "$pid"; false; }
	for i in 1 2 3; do
		s=$(stats "$u") || { kill "$pid"; false; }
		[ "$(field "$s" streaming)" = 1 ] || { kill "$pid"; false; }
		sleep 0.2
	done
	kill -0 "$pid" # the slow client still reads
	kill "$pid"
	wait "$pid" || true
	# the client left: the web server closes (or shuts) its FastCGI connection, the responder sees
	# it and frees the request
	for i in $(seq 50); do
		s=$(stats "$u")
		[ "$(field "$s" streaming)" = 0 ] && break
		sleep 0.1
	done
	echo "# after the slow client left: $s" >&3
	[ "$(field "$s" streaming)" = 0 ]
	[ "$(field "$s" gone)" -ge 1 ]
}

# slow_answer_whole URL: an 8 MB answer (more than the web server and the sockets hold: its flushes
# wait for the socket) to a client that stalls 1 s after the first bytes, then reads at 8 MB/s,
# arrives byte for byte
slow_answer_whole() {
	local u=$1 s0 s1
	s0=$(stats "$u")
	run slow_get "$u/stream?bytes=8000000" "$BATS_TEST_TMPDIR/whole.out" 8192 1000
	[ "$status" = 0 ]
	[ "$output" = "200 8000000" ]
	check_pattern 8000000 "$BATS_TEST_TMPDIR/whole.out"
	s1=$(stats "$u")
	echo "# before: $s0, after: $s1" >&3
	[ "$(field "$s1" want_write)" -gt "$(field "$s0" want_write)" ] # it did wait for the socket
	[ "$(field "$s1" streaming)" = 0 ]
}

# many_at_once URL: 20 answers at once, each whole
many_at_once() {
	local u=$1 i
	for i in $(seq 20); do curl -s -f -m 5 -o "$BATS_TEST_TMPDIR/small.$i" "$u/stream?bytes=1000" & done
	wait
	check_pattern 1000 "$BATS_TEST_TMPDIR"/small.*
}

@test "fcgiwrite, lighttpd: while one client reads a large answer slowly, the same one-thread responder answers another at once" {
	slow_client_does_not_stall "$LT_URL"
}

@test "fcgiwrite, lighttpd: an 8 MB answer through a client that stalls arrives whole, byte for byte" {
	slow_answer_whole "$LT_URL"
}

@test "fcgiwrite, lighttpd: small answers on many connections at once; none asks to keep its connection" {
	local s
	many_at_once "$LT_URL"
	s=$(stats "$LT_URL")
	[ "$(field "$s" keep_conn)" = 0 ] # lighttpd does not use FCGI_KEEP_CONN
}

@test "fcgiwrite, Apache mod_proxy_fcgi: while one client reads a large answer slowly, the responder answers another at once" {
	slow_client_does_not_stall "$AP_URL"
}

@test "fcgiwrite, Apache mod_proxy_fcgi: an 8 MB answer through a client that stalls arrives whole; kept connections (FCGI_KEEP_CONN) carry later requests" {
	local s
	slow_answer_whole "$AP_URL"
	many_at_once "$AP_URL"
	s=$(stats "$AP_URL")
	echo "# $s" >&3
	[ "$(field "$s" keep_conn)" -gt 0 ]
	[ "$(field "$s" reused)" -gt 0 ]
}
