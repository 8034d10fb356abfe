#!/usr/bin/env bats
# uploads.bats: a body far over MCPGW_MAX_BODY_BYTES is refused by the web server itself (413, JSON) before it is read or spooled to disk, behind every front end (issue 15 case 7; check.sh runs it behind each MCPGW_FRONTEND).

load helpers

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

# tree_io [FIELDS]: the bytes the web server and every process under it read and wrote
# so far: /proc/PID/io rchar + wchar (default: sockets and files alike, so a body
# spooled to a temp file counts twice), or the FIELDS given (write_bytes: what went
# to the disk). Processes that ended since are not counted, which only errs low for
# short-lived CGI children (their parent, the web server, read the body for them)
tree_io() {
	local root pids p fields=${1:-rchar: wchar:}

	root=$(frontend_pid) || { echo "no web server pid" >&2; return 1; }
	# the web server and its descendants, from one ps (a fork per process made this take a minute)
	pids=$(ps -e -o pid=,ppid= | awk -v root="$root" '{ par[$1] = $2 }
		END { t[root] = 1; do { more = 0; for (p in par) if (!(p in t) && (par[p] in t)) { t[p] = 1; more = 1 } } while (more)
		      for (p in t) print p }')
	for p in $pids; do cat "/proc/$p/io" 2>/dev/null; done |
		awk -v f=" $fields " 'index(f, " " $1 " ") { s += $2 } END { printf "%.0f\n", s }'
}

# upload HOW: POST a 300 MB body (a sparse file: nothing on disk) to /v1/tools, HOW
# "length" (Content-Length) or "chunked"; sets HTTP_STATUS, BODY and SECS (the seconds taken)
upload() {
	local f="$BATS_TEST_TMPDIR/huge.bin" t0 t1 extra=()

	[ -e "$f" ] || truncate -s 300M "$f"
	[ "$1" = chunked ] && extra=(-H 'Transfer-Encoding: chunked')
	t0=$(date +%s%3N)
	HTTP_STATUS=$(curl -s -m 60 -o "$BATS_TEST_TMPDIR/up.body" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' "${extra[@]}" --data-binary "@$f" "$MCPGW_URL/v1/tools") || true
	t1=$(date +%s%3N)
	BODY=$(cat "$BATS_TEST_TMPDIR/up.body" 2>/dev/null)
	SECS=$(((t1 - t0) / 1000))
}

# check_refused HOW: the upload is a JSON 413 within 10 s, the web server's processes
# moved less than 32 MB for it (a body read whole, or spooled, is 300 MB or more) and
# wrote less than 1 MB to the disk
check_refused() {
	local io0 io1 d0 d1 fe=${MCPGW_FRONTEND:-lighttpd}

	io0=$(tree_io)
	d0=$(tree_io write_bytes:)
	upload "$1"
	io1=$(tree_io)
	d1=$(tree_io write_bytes:)
	echo "# $fe, $1: HTTP $HTTP_STATUS after ${SECS} s; the web server's processes read and wrote $(((io1 - io0) / 1024)) KB, $(((d1 - d0) / 1024)) KB of it to the disk" >&3
	[ $((d1 - d0)) -lt $((1024 * 1024)) ]
	[ "$HTTP_STATUS" = 413 ] || { echo "$fe: $HTTP_STATUS: ${BODY:0:300}" >&2; return 1; }
	assert_json 'j.error.code === "request_too_large"'
	[ "$SECS" -lt 10 ]
	[ $((io1 - io0)) -lt $((32 * 1024 * 1024)) ]
}

@test "a 300 MB upload with Content-Length: 413 at once, not read or spooled" {
	check_refused length
	assert_still_serving
}

@test "a 300 MB chunked upload: 413 once past the limit, not read whole or spooled" {
	check_refused chunked
	assert_still_serving
}

# The Apache files as a system Apache includes them, with only MCPGW_ROOT Defined (the
# chat.fcgi and tools.fcgi of FcgidCmdOptions must exist): each parses, and its body limit is the default
# MCPGW_MAX_BODY_BYTES + 64 KB, not Apache's 1 GiB (mod_fcgid's file used MCPGW_BODY_LIMIT
# before its default was Defined, and did not parse at all)
@test "the shipped Apache configs parse as included by a system Apache, limiting bodies to 4 MiB + 64 KB" {
	local m=/usr/lib/apache2/modules d="$BATS_TEST_TMPDIR/apache" f mods out

	command -v apache2 >/dev/null && [ -e "$m/mod_fcgid.so" ] || skip "apache2 with mod_fcgid is not installed"
	mkdir -p "$d/root/cgi-bin"
	: >"$d/root/cgi-bin/chat.fcgi"
	: >"$d/root/cgi-bin/tools.fcgi"
	chmod 755 "$d/root/cgi-bin/chat.fcgi" "$d/root/cgi-bin/tools.fcgi"
	for f in fcgid proxy-fcgi cgi; do
		mods="mpm_event authz_core alias env headers"
		case $f in
		fcgid) mods="$mods fcgid" ;;
		proxy-fcgi) mods="$mods proxy proxy_fcgi" ;;
		cgi) mods="$mods cgid" ;;
		esac
		{
			printf 'ServerRoot %s\nServerName localhost\nListen 127.0.0.1:%s\nPidFile %s/pid\nErrorLog %s/log\n' \
				"$d" "$(free_port)" "$d" "$d"
			for x in $mods; do printf 'LoadModule %s_module %s/mod_%s.so\n' "$x" "$m" "$x"; done
			printf 'Define MCPGW_ROOT %s/root\nInclude %s/deploy/apache/mcpgw-%s.conf\n' "$d" "$MCPGW_ROOT" "$f"
		} >"$d/$f.conf"
		out=$(apache2 -t -D DUMP_RUN_CFG -f "$d/$f.conf" 2>&1) || { echo "$f: $out" >&2; return 1; }
		[[ "$out" == *"Define: MCPGW_BODY_LIMIT=4259840"* ]] || { echo "$f: $out" >&2; return 1; }
		[ "$f" != fcgid ] || [[ "$out" == *"Define: MCPGW_FCGID_REQUEST_LEN=4325376"* ]] || { echo "$f: $out" >&2; return 1; }
	done
}
