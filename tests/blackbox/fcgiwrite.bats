#!/usr/bin/env bats
# fcgiwrite.bats: lib/http/fcgiwrite behind a real lighttpd (its own small config, lighttpd only: the
# gateway is not started): tests/fcgiwrite/stream.fcgi, one thread and one poll loop, writes a large
# answer to a client that reads slowly (slow_get: node, a pause after each chunk it reads; curl 7.88's
# --limit-rate let 3 MB through in 60 ms here) and answers another request on another
# connection at once meanwhile; the slow answer arrives whole; a client that leaves frees its request.

load helpers

STREAM_BIN="$MCPGW_ROOT/tests/fcgiwrite/stream.fcgi"

setup_file() {
	FW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-fw.XXXXXX")
	FW_URL="http://127.0.0.1:$(free_port)"
	export FW_HOME FW_URL
	[ -x "$STREAM_BIN" ] || make -s -C "$MCPGW_ROOT" tests/fcgiwrite/stream.fcgi >&2 || return 1
	mkdir -p "$FW_HOME/www"
	# server.stream-response-body = 2: lighttpd reads the answer only as the client takes it (as the
	# gateway's own config), so a slow client's back-pressure reaches the responder's socket;
	# "tcp-fin-propagate": a client that closes has lighttpd shut the FastCGI connection's write side
	# (as lighttpd.conf.example; without it lighttpd reads the rest of the answer and throws it away)
	cat >"$FW_HOME/lighttpd.conf" <<EOF
server.document-root = "$FW_HOME/www"
server.bind = "127.0.0.1"
server.port = ${FW_URL##*:}
server.pid-file = "$FW_HOME/lighttpd.pid"
server.errorlog = "$FW_HOME/lighttpd.log"
server.modules = ( "mod_fastcgi" )
server.stream-response-body = 2
fastcgi.server = ( "/stream" => ((
  "bin-path" => "$STREAM_BIN",
  "socket" => "$FW_HOME/stream.sock",
  "min-procs" => 1, "max-procs" => 1,
  "check-local" => "disable",
  "tcp-fin-propagate" => "enable",
)) )
EOF
	lighttpd -D -f "$FW_HOME/lighttpd.conf" 2>>"$FW_HOME/lighttpd.log" &
	echo $! >"$FW_HOME/lighttpd.bgpid"
	for _ in $(seq 50); do
		curl -s -m 1 -o /dev/null "$FW_URL/stream" && return 0
		sleep 0.1
	done
	cat "$FW_HOME/lighttpd.log" >&2
	return 1
}

teardown_file() {
	local pid
	[ -n "${FW_HOME:-}" ] || return 0
	pid=$(cat "$FW_HOME/lighttpd.bgpid" 2>/dev/null) || pid=
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	[ -n "${MCPGW_BB_KEEP:-}" ] || rm -rf "$FW_HOME"
}

# stats: the responder's counters (a request of its own, answered within 2 s or failed)
stats() { curl -s -f -m 2 "$FW_URL/stream"; }
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

# slow_get URL FILE MS: GET URL into FILE, pausing MS ms after each chunk read (at most 64 KB): a
# client that reads slowly; prints the status and the bytes read; gives up after 60 s. The shell
# running it becomes node (exec): `slow_get ... &` gives node's pid in $!
slow_get() {
	exec node -e '
		const http = require("http"), fs = require("fs");
		const [url, out, ms] = process.argv.slice(1), f = fs.openSync(out, "w");
		let n = 0;
		setTimeout(() => process.exit(2), 60000).unref();
		http.get(url, (res) => {
			res.on("data", (c) => { fs.writeSync(f, c); n += c.length; res.pause(); setTimeout(() => res.resume(), Number(ms)); });
			res.on("end", () => { fs.closeSync(f); console.log(`${res.statusCode} ${n}`); });
		}).on("error", (e) => { console.error(e.message); process.exit(1); });
	' "$1" "$2" "$3"
}

@test "fcgiwrite: while one client reads a large answer slowly, the same one-thread responder answers another at once" {
	local s ww pid i
	# 8 MB at 64 KB per 200 ms at most: 25 s or more to read; the test ends it long before
	slow_get "$FW_URL/stream?bytes=8000000" "$BATS_TEST_TMPDIR/slow.out" 200 &
	pid=$!
	# wait until the slow answer fills the socket (its flushes say want-writable); every stats request
	# in between is answered within 2 s, while the slow answer is in progress
	for i in $(seq 100); do
		s=$(stats) || { kill "$pid"; false; }
		ww=$(field "$s" want_write)
		[ "$ww" -gt 0 ] && break
		sleep 0.1
	done
	echo "after $i looks: $s" >&3
	[ "$ww" -gt 0 ]
	for i in 1 2 3; do
		s=$(stats) || { kill "$pid"; false; }
		[ "$(field "$s" streaming)" = 1 ] || { kill "$pid"; false; }
		sleep 0.2
	done
	kill -0 "$pid" # the slow client still reads
	kill "$pid"
	wait "$pid" || true
	# the client left: lighttpd closes its FastCGI connection, the responder sees it and frees the request
	for i in $(seq 50); do
		s=$(stats)
		[ "$(field "$s" streaming)" = 0 ] && break
		sleep 0.1
	done
	echo "after the slow client left: $s" >&3
	[ "$(field "$s" streaming)" = 0 ]
	[ "$(field "$s" gone)" -ge 1 ]
}

@test "fcgiwrite: a 3 MB answer through a client that reads slowly arrives whole, byte for byte" {
	local s0 s1
	s0=$(stats)
	run slow_get "$FW_URL/stream?bytes=3000000" "$BATS_TEST_TMPDIR/whole.out" 20
	[ "$status" = 0 ]
	[ "$output" = "200 3000000" ]
	check_pattern 3000000 "$BATS_TEST_TMPDIR/whole.out"
	s1=$(stats)
	echo "before: $s0, after: $s1" >&3
	[ "$(field "$s1" want_write)" -gt "$(field "$s0" want_write)" ] # it did wait for the socket
	[ "$(field "$s1" streaming)" = 0 ]
}

@test "fcgiwrite: small answers on many connections at once" {
	local i
	for i in $(seq 20); do curl -s -f -m 5 -o "$BATS_TEST_TMPDIR/small.$i" "$FW_URL/stream?bytes=1000" & done
	wait
	check_pattern 1000 "$BATS_TEST_TMPDIR"/small.*
}
