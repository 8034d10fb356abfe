#!/bin/sh
# check.sh: everything `make check` runs: unit tests (under valgrind) and black-box tests; ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)

sh deploy/install-deps.sh --test || exit 2
if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
	(cd tests && npm ci --no-audit --no-fund --loglevel=error) || { echo "check: npm ci failed" >&2; exit 2; }
fi

passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

what=${1:-all}   # all | unit | blackbox

[ "$what" = blackbox ] || echo "== unit tests (cmocka, under valgrind)"
for t in tests/unit/test_*; do
	[ "$what" = blackbox ] && break
	case $t in *.c|*.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	if command -v valgrind >/dev/null 2>&1 && [ "${MCPGW_NO_VALGRIND:-}" != 1 ]; then
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$t" >"$log/out" 2>&1
	else
		"$t" >"$log/out" 2>&1
	fi
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/out" | tail -n 1)
	p=${p:-0}; f=${f:-0}
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi  # crashed, or valgrind found errors
	[ $rc -ne 0 ] && cat "$log/out"
	echo "$t: $p passed, $f failed"
	passed=$((passed + p)); failed=$((failed + f))
done

# count_bats FILE: add the TAP results in FILE to the totals
count_bats() {
	p=$(grep -c '^ok ' "$1")
	f=$(grep -c '^not ok ' "$1")
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "check: bats ran no test"; fi
	passed=$((passed + p)); failed=$((failed + f))
}

# run_node FILE...: node --test on the files (behind $MCPGW_FRONTEND), results added to the totals
run_node() {
	if [ -e "$1" ]; then
		node --test --test-reporter=tap --test-timeout=300000 "$@" >"$log/node" 2>&1
		rc=$?
	else
		echo "check: no $1" >"$log/node"
		rc=1
	fi
	cat "$log/node"
	p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log/node" | tail -n 1)
	f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log/node" | tail -n 1)
	c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$log/node" | tail -n 1)
	p=${p:-0}; f=$((${f:-0} + ${c:-0}))
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "check: node --test ran no test"; fi
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; echo "check: node --test exited with $rc"; fi  # crashed
	echo "node --test: $p passed, $f failed"
	passed=$((passed + p)); failed=$((failed + f))
}

if [ "$what" != unit ]; then
	echo "== black-box tests (bats: real binaries, lighttpd, MCP servers from npm)"
	MCPGW_FRONTEND=lighttpd
	export MCPGW_FRONTEND
	bats --tap tests/blackbox >"$log/bats" 2>&1
	cat "$log/bats"
	count_bats "$log/bats"

	echo "== black-box tests (node --test: the openai SDK through the gateway to the upstream simulator)"
	run_node tests/blackbox/*.test.mjs

	# the same tools, front-end, models and chat tests behind every other web server front end (deploy/mcpgwctl)
	for fe in ${MCPGW_CHECK_FRONTENDS-apache-fcgid apache-proxy-fcgi cgi}; do
		echo "== black-box tests behind MCPGW_FRONTEND=$fe (tools.bats, frontend.bats, models.bats, chat.test.mjs)"
		MCPGW_FRONTEND=$fe
		bats --tap tests/blackbox/tools.bats tests/blackbox/frontend.bats tests/blackbox/models.bats 2>&1 |
			sed "s/^\(\(not \)\{0,1\}ok [0-9][0-9]*\) /\1 [$fe] /" >"$log/bats"
		cat "$log/bats"
		count_bats "$log/bats"
		run_node tests/blackbox/chat.test.mjs
	done
	unset MCPGW_FRONTEND
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
