#!/bin/sh
# canaries.sh: the whole suite's canary secrets: made once per run, planted by the test helpers in every channel, grepped for in everything the suite kept.
#
#   sh tests/canaries.sh init DIR      make DIR (once): DIR/canaries (one "CHANNEL VALUE" a line), DIR/kept, DIR/raw
#   sh tests/canaries.sh check DIR     no canary (nor the run's common prefix) in any file under DIR/kept: logs,
#                                      state databases (*.db, -wal; gzip'ed copies are read through gzip -dc)
#                                      and client responses; names the file and the channel of each hit
#   sh tests/canaries.sh raw DIR       each canary is in DIR/raw (the .env, servers_config.json and request
#                                      headers as planted), so that the check above can fail; and a kept log
#                                      shows the gateway met the stderr line and a remote URL (masked)
#   sh tests/canaries.sh selftest [DIR]  check and raw catch a planted leak and a missing plant (in a scratch
#                                      directory, with a copy of DIR's canaries when DIR is given)
#
# The helpers (tests/blackbox/helpers.bash, gateway.mjs through canaries.mjs) read DIR from
# MCPGW_TEST_ARTIFACTS; tests/check.sh makes it, runs the suites, then check and raw as two tests.
# Every canary is the run's prefix (a random "k" and 10 hex digits) followed by 16 more random hex
# digits: a grep for the prefix finds every one, a cut copy of 11 bytes or more included.
set -u

# the channels a secret reaches the gateway by (tests/blackbox/canaries.mjs plants each)
CHANNELS="dotenv srvenv urlquery stderr cookie authorization upstreamkey"

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# init DIR: the run's canaries and directories (kept as they are when DIR/canaries exists)
init() {
	mkdir -p "$1/kept/responses" "$1/raw" || return 2
	[ -s "$1/canaries" ] && return 0
	p="k$(hex 5)"
	{
		echo "prefix $p"
		for c in $CHANNELS; do echo "$c $p$(hex 8)"; done
	} >"$1/canaries.tmp" && mv "$1/canaries.tmp" "$1/canaries"
}

# grep_one FILE PATTERNS: grep -aF -f PATTERNS on FILE (through gzip -dc for FILE.gz); prints the hits' lines
grep_one() {
	case $1 in
	*.gz) gzip -dc -- "$1" | grep -aoF -f "$2" ;;
	*) grep -aoF -f "$2" -- "$1" ;;
	esac
}

# kept_with PATS DIR [NAME]: the files under DIR/kept (named NAME, a find -name pattern; all of them
# when not given) that hold a line of the file PATS (fixed strings), one a line: one grep over every
# plain file (thousands: not a grep each), the gzip'ed ones each through gzip -dc
kept_with() {
	grep -rlaF -f "$1" --include="${3:-*}" --exclude='*.gz' -- "$2/kept"
	find "$2/kept" -type f -name "${3:-*}" -name '*.gz' | while IFS= read -r f; do
		grep_one "$f" "$1" >/dev/null && printf '%s\n' "$f"
	done
}

# check DIR: no canary in DIR/kept
check() {
	[ -s "$1/canaries" ] || { echo "canaries: no $1/canaries" >&2; return 2; }
	[ -d "$1/kept" ] || { echo "canaries: no $1/kept" >&2; return 2; }
	pats=$(mktemp) || return 2
	# the prefix alone finds a whole canary and a cut one alike
	sed -n 's/^prefix //p' "$1/canaries" >"$pats"
	hits=0
	found=$(mktemp) || return 2
	n=$(find "$1/kept" -type f | wc -l)
	kept_with "$pats" "$1" >"$found"
	while IFS= read -r f; do
		hits=$((hits + 1))
		# name the channel of each whole canary in the file; a cut one has none
		full=$(case $f in *.gz) gzip -dc -- "$f" ;; *) cat -- "$f" ;; esac | grep -aoE "$(cat "$pats")[0-9a-f]{0,16}" | sort -u)
		for v in $full; do
			ch=$(awk -v v="$v" '$1 != "prefix" && $2 == v { print $1 }' "$1/canaries")
			if [ -n "$ch" ]; then echo "LEAK: ${f#"$1"/kept/}: the $ch canary"
			else echo "LEAK: ${f#"$1"/kept/}: the ? canary (a cut copy: $v)"; fi
		done
	done <"$found"
	rm -f "$pats" "$found"
	if [ "$n" = 0 ]; then
		echo "canaries: nothing was kept in $1/kept: the check would prove nothing" >&2
		return 1
	fi
	echo "canaries: $n kept files grepped, $hits with a canary"
	[ "$hits" = 0 ]
}

# raw DIR: each canary where it was planted
raw() {
	[ -s "$1/canaries" ] || { echo "canaries: no $1/canaries" >&2; return 2; }
	bad=0
	for c in $CHANNELS; do
		v=$(awk -v c="$c" '$1 == c { print $2 }' "$1/canaries")
		if [ -z "$v" ]; then
			echo "MISSING: no $c canary in $1/canaries"
			bad=1
		elif ! grep -raqF -- "$v" "$1/raw"; then
			echo "MISSING: the $c canary is in no raw input under $1/raw (never planted: the check could not fail for it)"
			bad=1
		fi
	done
	# and the gateway met them: the stderr line and a planted URL are in a kept log, masked
	if [ -d "$1/kept" ]; then
		in_kept "$1" "connecting to postgresql://db.invalid:5432/app" ||
			{ echo "MISSING: no kept log has the stderr canary's line (masked): no server wrote it"; bad=1; }
		in_kept "$1" "=***&access_token=***" || in_kept "$1" "?api_key=***" ||
			{ echo "MISSING: no kept log names a planted remote URL (masked): no gateway had one"; bad=1; }
	fi
	[ "$bad" = 0 ] && echo "canaries: each of the $(echo $CHANNELS | wc -w) canaries is in the raw inputs; the stderr line and a remote URL reached the logs masked"
	[ "$bad" = 0 ]
}

# in_kept DIR TEXT: TEXT is in a file under DIR/kept (gzip'ed ones read through gzip -dc)
in_kept() {
	t=$(mktemp) || return 2
	printf '%s\n' "$2" >"$t"
	r=1
	[ -z "$(kept_with "$t" "$1" '*.log*')" ] || r=0
	rm -f "$t"
	return $r
}

# selftest: check and raw on a scratch DIR: clean passes; a planted leak (plain, gzip'ed, in a
# SQLite file, a cut copy) fails naming file and channel; a raw input without a canary fails
selftest() {
	d=$(mktemp -d) || return 2
	ok=0
	# the run's own canaries when DIR is given (a copy: DIR is not touched), else new ones
	if [ -n "${1:-}" ]; then cp "$1/canaries" "$d/canaries" || ok=1; fi
	init "$d" || ok=1
	cookie=$(awk '$1 == "cookie" { print $2 }' "$d/canaries")
	key=$(awk '$1 == "upstreamkey" { print $2 }' "$d/canaries")
	printf 'a log line without any secret\n' >"$d/kept/broker.log"
	printf 'GET /health\n{"ok":true}\n' >"$d/kept/responses/one.txt"
	check "$d" >/dev/null || { echo "selftest: a clean artifacts dir failed"; ok=1; }
	# a leak in a response
	printf 'Set-Cookie: session=%s\n' "$cookie" >>"$d/kept/responses/one.txt"
	out=$(check "$d") && { echo "selftest: a cookie canary in a response was not found"; ok=1; }
	case $out in *"responses/one.txt: the cookie canary"*) ;; *) echo "selftest: the hit was not named: $out"; ok=1 ;; esac
	rm -f "$d/kept/responses/one.txt"
	# in a gzip'ed log
	printf 'Authorization: Bearer %s\n' "$key" | gzip >"$d/kept/chat.log.gz"
	out=$(check "$d") && { echo "selftest: a canary in a gzip'ed log was not found"; ok=1; }
	case $out in *"chat.log.gz: the upstreamkey canary"*) ;; *) echo "selftest: the hit was not named: $out"; ok=1 ;; esac
	rm -f "$d/kept/chat.log.gz"
	# in a SQLite database (binary), and a cut copy
	if command -v sqlite3 >/dev/null 2>&1; then
		sqlite3 "$d/kept/state.db" "CREATE TABLE t(v); INSERT INTO t VALUES ('$key');" || ok=1
		out=$(check "$d") && { echo "selftest: a canary in a SQLite database was not found"; ok=1; }
		case $out in *"state.db: the upstreamkey canary"*) ;; *) echo "selftest: the hit was not named: $out"; ok=1 ;; esac
		rm -f "$d/kept/state.db"
	fi
	printf 'key=%s...\n' "$(echo "$key" | cut -c1-14)" >"$d/kept/cut.log"
	out=$(check "$d") && { echo "selftest: a cut canary was not found"; ok=1; }
	case $out in *"cut.log: the ? canary (a cut copy"*) ;; *) echo "selftest: the cut copy was not named: $out"; ok=1 ;; esac
	rm -f "$d/kept/cut.log"
	check "$d" >/dev/null || { echo "selftest: clean again, still failed"; ok=1; }
	# raw: all planted passes, one missing fails naming the channel
	awk '$1 != "prefix" && $1 != "stderr" { print $1 "=" $2 }' "$d/canaries" >"$d/raw/planted"
	out=$(raw "$d") && { echo "selftest: a canary planted nowhere was not reported"; ok=1; }
	case $out in *"the stderr canary is in no raw input"*) ;; *) echo "selftest: the missing plant was not named: $out"; ok=1 ;; esac
	awk '$1 == "stderr" { print "pw=" $2 }' "$d/canaries" >>"$d/raw/planted"
	out=$(raw "$d") && { echo "selftest: no log with the masked stderr line and URL, raw passed"; ok=1; }
	case $out in *"no kept log has the stderr canary's line"*"no kept log names a planted remote URL"*) ;;
	*) echo "selftest: the unmet channels were not named: $out"; ok=1 ;; esac
	printf 'server x stderr: connecting to postgresql://db.invalid:5432/app\nPOST http://h/mcp?api_key=***: 503\n' | gzip >"$d/kept/broker.log.gz"
	raw "$d" >/dev/null || { echo "selftest: every canary planted and met, raw still failed"; ok=1; }
	rm -rf "$d"
	[ "$ok" = 0 ] && echo "canaries: selftest passed"
	return "$ok"
}

case ${1:-} in
init) [ $# = 2 ] && init "$2" ;;
check) [ $# = 2 ] && check "$2" ;;
raw) [ $# = 2 ] && raw "$2" ;;
selftest) [ $# -le 2 ] && selftest "${2:-}" ;;
*)
	echo "usage: $0 init DIR | check DIR | raw DIR | selftest [DIR]" >&2
	exit 2
	;;
esac
