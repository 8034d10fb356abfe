#!/bin/sh
# check.sh: everything `make check` runs: unit tests (under valgrind), the fuzz targets and black-box tests; ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)

sh deploy/install-deps.sh --test || exit 2  # also run by `make check`; kept for `sh tests/check.sh` alone
sh tests/node-modules.sh || { echo "check: npm ci failed" >&2; exit 2; }
# the tests' own Node.js 22 (npm package "node") first: Debian 12's nodejs is 18, too old for node --test's options
PATH="$root/tests/node_modules/.bin:$PATH"
export PATH
node --version >/dev/null 2>&1 || { echo "check: tests/node_modules/.bin/node does not run (npm ci incomplete?)" >&2; exit 2; }

passed=0
failed=0
t_start=$(date +%s)
# stage TITLE: a stage's heading, with the seconds since the check began (where the time goes)
stage() { echo "== $* (at $(($(date +%s) - t_start)) s)"; }
skipped=0   # counted apart: a skipped test is not a passed one
log=$(mktemp -d)
: >"$log/failed"  # a line per failed test, repeated just before the totals (CI shows the end of the output)
# failed_note LINE...: add each line to that list
failed_note() { for l_ in "$@"; do printf '%s\n' "$l_" >>"$log/failed"; done; }
# the run's canary secrets and what the black-box suites keep for the canary grep at the end
# (tests/canaries.sh); removed at the end unless a canary test failed
MCPGW_TEST_ARTIFACTS=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-artifacts.XXXXXX") || exit 2
export MCPGW_TEST_ARTIFACTS
sh tests/canaries.sh init "$MCPGW_TEST_ARTIFACTS" || exit 2
fe_root=
asan_pid=   # the sanitizer stage run in the background (its own session: its whole group stopped with it)
cleanup() {
	[ -z "$asan_pid" ] || kill -TERM -- "-$asan_pid" 2>/dev/null
	rm -rf "$log" ${fe_root:+"$fe_root"}
	[ -z "$MCPGW_TEST_ARTIFACTS" ] || rm -rf "$MCPGW_TEST_ARTIFACTS"
}
trap cleanup EXIT
trap 'exit 2' HUP INT TERM  # the EXIT trap on a signal too: the background stage stops with the check

# the sanitizer stage's build and tests, in build/asan: sh -c "$asan_stage" asan LOG (LOG: the build's
# output if it fails, else the tests'), run in the foreground (check-asan) or beside the front ends
asan_stage='make -j"$(nproc 2>/dev/null || echo 2)" --no-print-directory asan-tree >"$1" 2>&1 &&
	sh build/asan/tests/check.sh asan-run >"$1" 2>&1'

what=${1:-all}   # all | unit | blackbox | fuzz | asan (the sanitizer stage alone) | asan-run (its tests, in build/asan)

# MCPGW_CHECK_SUITES: black-box files (names in tests/blackbox) to run instead of all of them; set, the
# provider-profile runs are left out too. pick FILE...: the files given that it selects, all when unset
pick() {
	for f in "$@"; do
		[ -z "${MCPGW_CHECK_SUITES+x}" ] && { echo "$f"; continue; }
		case " $MCPGW_CHECK_SUITES " in *" ${f##*/} "*) echo "$f" ;; esac
	done
}

# asan-run: the reports of this run's processes only (tests/sanitize/options.c writes them there)
[ "$what" != asan-run ] || { rm -rf sanitize-log && mkdir sanitize-log; } || exit 2
# the fuzz targets run for a fixed time each: in a whole run they run beside the unit tests (their
# output and results come after them), which keeps make check within its time
fuzz_pid=
if [ "$what" = all ]; then
	sh tests/fuzz/run.sh --check >"$log/fuzz" 2>&1 &
	fuzz_pid=$!
fi
case $what in blackbox | fuzz | asan) ;; asan-run) stage "unit tests (cmocka, AddressSanitizer + UBSan build)" ;; *) stage "unit tests (cmocka, under valgrind)" ;; esac
for t in tests/unit/test_*; do
	case $what in blackbox | fuzz | asan) break ;; esac
	case $t in *.c|*.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	t1=$(date +%s)
	if command -v valgrind >/dev/null 2>&1 && [ "${MCPGW_NO_VALGRIND:-}" != 1 ] && [ "$what" != asan-run ]; then
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$t" >"$log/out" 2>&1
	else
		"$t" >"$log/out" 2>&1
	fi
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/out" | tail -n 1)
	p=${p:-0}; f=${f:-0}
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi  # crashed, or valgrind found errors
	[ $rc -ne 0 ] && cat "$log/out" && failed_note "$t (exit $rc)"
	echo "$t: $p passed, $f failed ($(($(date +%s) - t1)) s)"
	passed=$((passed + p)); failed=$((failed + f))
done

# the libFuzzer targets (tests/fuzz, built by `make fuzz-progs`): each crash kept in tests/fuzz/regressions/ replayed
# (a test each), each corpus replayed and fuzzed for FUZZ_CHECK_SECONDS (a test per target)
if [ "$what" = all ] || [ "$what" = fuzz ]; then
	stage "fuzz targets (libFuzzer + ASan/UBSan: regressions, corpora, ${FUZZ_CHECK_SECONDS:-4}s of fuzzing each)"
	if [ -n "$fuzz_pid" ]; then
		wait "$fuzz_pid"
	else
		sh tests/fuzz/run.sh --check >"$log/fuzz" 2>&1
	fi
	rc=$?
	cat "$log/fuzz"
	p=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1/p' "$log/fuzz")
	f=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\2/p' "$log/fuzz")
	s=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\3/p' "$log/fuzz")
	p=${p:-0}; f=${f:-0}; s=${s:-0}
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; echo "check: tests/fuzz/run.sh exited with $rc"; fi
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "check: tests/fuzz/run.sh ran no test"; fi
	[ "$f" = 0 ] || failed_note "fuzz: $f failed (tests/fuzz/run.sh)"
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
fi

# slowest FILE: the five slowest tests of a bats run (bats --timing: "ok N name in MSms"), where the time goes
slowest() {
	sed -n 's/^\(\(not \)\{0,1\}ok .*\) in \([0-9][0-9]*\)ms\( # skip.*\)\{0,1\}$/\3 \1/p' "$1" | sort -rn | head -n 5 |
		awk '{ ms = $1; $1 = ""; printf "# slowest: %6.1f s %s\n", ms / 1000, $0 }'
}

# count_bats FILE: add the TAP results in FILE to the totals
count_bats() {
	slowest "$1"
	s=$(grep -c '^ok .* # skip' "$1")
	p=$(($(grep -c '^ok ' "$1") - s))
	f=$(grep -c '^not ok ' "$1")
	grep '^not ok ' "$1" >>"$log/failed"
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "check: bats ran no test"; failed_note "bats ran no test"; fi
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
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
	s=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$log/node" | tail -n 1)
	s=${s:-0}; skipped=$((skipped + s))
	p=${p:-0}; f=$((${f:-0} + ${c:-0}))
	# the failed tests of node's TAP (subtests indented): "not ok N - name", with the file when shown
	sed -n 's/^ *\(not ok [0-9][0-9]* - .*\)$/\1'" (${MCPGW_FRONTEND:-lighttpd}${MCPGW_TEST_CHAT_DRIVER:+, $MCPGW_TEST_CHAT_DRIVER})/p" "$log/node" >>"$log/failed"
	if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; echo "check: node --test ran no test"; failed_note "node --test $* ran no test"; fi
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; echo "check: node --test exited with $rc"; failed_note "node --test $* exited with $rc"; fi  # crashed
	echo "node --test: $p passed, $f failed"
	passed=$((passed + p)); failed=$((failed + f))
}

# bats_lanes N FILE...: the bats files N at a time (each lane claims the next file not yet claimed:
# the longest first in LANE_FIRST_BATS, so that the lanes end together), each file's TAP output
# added to $log/bats in FILE order once all are done
LANE_FIRST_BATS="mcpgwctl.bats sqlite_server.bats tool_calls.bats embeddings.bats faults.bats keys.bats routes.bats chatbot.bats cli.bats tools.bats"
bats_lanes() {
	n_=$1
	shift
	rm -rf "$log/lane" && mkdir "$log/lane" "$log/lane/claimed" || return 1
	set -- $(for f in $LANE_FIRST_BATS; do case " $* " in *" tests/blackbox/$f "*) echo "tests/blackbox/$f" ;; esac; done) \
		$(for f in "$@"; do case " $LANE_FIRST_BATS " in *" ${f##*/} "*) ;; *) echo "$f" ;; esac; done)
	pids_=
	while [ "$n_" -gt 0 ]; do
		(for f in "$@"; do
			mkdir "$log/lane/claimed/${f##*/}" 2>/dev/null || continue
			bats --tap --timing "$f" >"$log/lane/${f##*/}" 2>&1
		done) &
		pids_="$pids_ $!"
		n_=$((n_ - 1))
	done
	# shellcheck disable=SC2086
	wait $pids_
	for f in "$@"; do cat "$log/lane/${f##*/}"; done >>"$log/bats"
}

# ALONE_BATS: the lighttpd suites that take figures (memory against a baseline, timings against a
# bound): run one at a time, before the others run three at a time
ALONE_BATS="load.bats bounds.bats broker_memory.bats bench_ab.bats capacity.bats faults2.bats models.bats"

# the sanitizer pass (README.md, Sanitizers), inside build/asan: the black-box suites behind lighttpd.
# Left out: the files that test the build or the install rather than the programs (they would run
# make in the copy, or read linkage and timings an instrumented build changes), the ones that run
# none of our programs (format.bats: the sources' layout; fuzz.bats: the fuzz tree and run.sh's
# verdicts; upstream_sim.bats: the simulator itself), mcpgwctl.bats (the control script's logic:
# the programs it starts run the same paths in every other suite), and the ones that run the
# benchmarks or measure memory under load (load.bats), and the ones that compare what the build
# generates with the documents (settings.bats: README's table and --help; web_errors.bats: make's
# web-errors.tsv; docs.bats: README's error codes): the instrumented programs would print the same
# text more slowly; ASAN_NODE: the node suites run (the other
# ones repeat these through other profiles; sim_profiles.test.mjs runs no gateway)
ASAN_SKIP_BATS="bench_ab.bats fcgiwrite.bats install.bats install_deps.bats linkage.bats layers.bats valgrind.bats load.bats format.bats fuzz.bats upstream_sim.bats mcpgwctl.bats settings.bats web_errors.bats docs.bats"
ASAN_NODE="chat.test.mjs embeddings.test.mjs history.test.mjs looppolicy.test.mjs upstream_conventions.test.mjs dialects.test.mjs"
if [ "$what" = asan-run ]; then
	stage "black-box tests behind lighttpd, AddressSanitizer + UBSan build (bats: every .bats file but $ASAN_SKIP_BATS; node --test: $ASAN_NODE)"
	MCPGW_FRONTEND=lighttpd
	export MCPGW_FRONTEND
	set --
	for f in tests/blackbox/*.bats; do
		case " $ASAN_SKIP_BATS " in *" ${f##*/} "*) ;; *) set -- "$@" "$f" ;; esac
	done
	bats --tap --timing "$@" 2>&1 | sed 's/^\(\(not \)\{0,1\}ok [0-9][0-9]*\) /\1 [asan] /' >"$log/bats"
	cat "$log/bats"
	count_bats "$log/bats"
	set --
	for f in $ASAN_NODE; do set -- "$@" "tests/blackbox/$f"; done
	run_node "$@"
	unset MCPGW_FRONTEND
	# the check below can fail: a program that leaks on purpose leaves its report there
	st=$( { sh -c 'echo $$; exec tests/sanitize/selftest >/dev/null 2>&1'; } 2>/dev/null; true)  # its pid; it aborts (quietly)
	if [ -s "sanitize-log/report.$st" ] && grep -q 'LeakSanitizer: detected memory leaks' "sanitize-log/report.$st"; then
		echo "ok - [asan] a leak is reported in sanitize-log/ (tests/sanitize/selftest)"
		passed=$((passed + 1))
		rm -f "sanitize-log/report.$st"
	else
		echo "not ok - [asan] tests/sanitize/selftest leaked, and no report came in $root/sanitize-log"
		failed_note "not ok - [asan] tests/sanitize/selftest: no report"
		failed=$((failed + 1))
	fi
	# every report any instrumented process wrote (tests/sanitize/options.c): one failure each, named
	for f in sanitize-log/report.*; do
		[ -e "$f" ] || continue
		echo "not ok - [asan] sanitizer report $root/$f:"
		failed_note "not ok - [asan] sanitizer report $f"
		sed 's/^/#   /' "$f" | head -n 60
		failed=$((failed + 1))
	done
	# the check itself: no report from any process of this run
	if ! ls sanitize-log/report.* >/dev/null 2>&1; then
		echo "ok - [asan] no sanitizer report in $root/sanitize-log"
		passed=$((passed + 1))
	fi
fi

if [ "$what" = all ] || [ "$what" = blackbox ]; then
	stage "black-box tests (bats: real binaries, lighttpd, MCP servers from npm)"
	MCPGW_FRONTEND=lighttpd
	export MCPGW_FRONTEND
	# the files that take figures (memory, timings against a bound: ALONE_BATS) run first, one
	# after another, on a quiet machine; then the others three at a time (one at a time they kept the
	# two cores 48% busy, two at a time 60 to 75%: they mostly wait on their servers; each has its own
	# home, state directory and ports)
	alone= rest=
	for f in $(pick tests/blackbox/*.bats); do
		case " $ALONE_BATS " in *" ${f##*/} "*) alone="$alone $f" ;; *) rest="$rest $f" ;; esac
	done
	: >"$log/bats"
	# shellcheck disable=SC2086
	[ -z "$alone" ] || bats --tap --timing $alone >>"$log/bats" 2>&1
	[ -z "$rest" ] || stage "black-box tests behind lighttpd, the other files three at a time"
	# shellcheck disable=SC2086
	[ -z "$rest" ] || bats_lanes 3 $rest
	cat "$log/bats"
	[ -z "$alone$rest" ] || count_bats "$log/bats"

	# a whole check runs the sanitizer stage (below) beside the node suites and the front-end runs,
	# once the lighttpd suites (load, memory and timing figures among them) are done: the two in a row
	# took half the check. Not earlier: beside the lighttpd suites two at a time, the two cores were
	# busy all along, and every stage took longer (a whole check 2210 s instead of 2155 s). Its own
	# tree (build/asan), state directories, ports and canaries: nothing is shared with the runs beside it
	if [ "$what" = all ]; then
		stage "sanitizer stage started in the background (make check-asan's build and tests, build/asan; its output comes at the end)"
		asan_t0=$(date +%s)
		setsid sh -c "$asan_stage" asan "$log/asan" </dev/null &
		asan_pid=$!
	fi

	stage "black-box tests (node --test: the openai SDK through the gateway to the upstream simulator)"
	# shellcheck disable=SC2046
	[ -n "$(pick tests/blackbox/*.test.mjs)" ] && run_node $(pick tests/blackbox/*.test.mjs)
	# the chat suites once more under the other chat driver: every suite above runs under the
	# default (MCPGW_CHAT_DRIVER=loop); MCPGW_CHAT_DRIVER=threads behind a FastCGI pool only here
	# (mod_fcgid and plain CGI, below, fall back to threads by themselves)
	files=$(pick tests/blackbox/chat.test.mjs tests/blackbox/looppolicy.test.mjs tests/blackbox/upstream_conventions.test.mjs)
	if [ -n "$files" ]; then
		stage "black-box tests under MCPGW_CHAT_DRIVER=threads (node --test: chat.test.mjs, looppolicy.test.mjs, upstream_conventions.test.mjs)"
		saved_driver=${MCPGW_TEST_CHAT_DRIVER-}
		MCPGW_TEST_CHAT_DRIVER=threads
		export MCPGW_TEST_CHAT_DRIVER
		# shellcheck disable=SC2086
		run_node $files
		MCPGW_TEST_CHAT_DRIVER=$saved_driver
		[ -n "$saved_driver" ] || unset MCPGW_TEST_CHAT_DRIVER
	fi

	if [ -z "${MCPGW_CHECK_SUITES+x}" ]; then
		# the chat cases against every provider dialect of the simulator (tests/upstream-sim/profiles.mjs): a test per (profile, case)
		stage "provider profiles (node --test: the chat cases through the gateway against every upstream-sim profile)"
		run_node tests/blackbox/profiles_matrix.mjs
		# and the whole chat suite (chat.test.mjs) under every profile but openai (which the run above covers), a test each
		stage "provider profiles (node --test: the whole chat suite under every other upstream-sim profile)"
		run_node tests/blackbox/profiles_chat.mjs
	fi

	# the same tools, front-end, models, routes and chat tests behind every other web server front end (deploy/mcpgwctl).
	# As root those run Apache's children, the responders and the broker as MCPGW_USER (www-data),
	# who must reach the checkout: one cloned into /root (0700) is copied where it can, for these runs.
	fe_root=
	cd_to=$root
	if [ "$(id -u)" = 0 ] && [ -n "${MCPGW_CHECK_FRONTENDS-x}" ] &&
		! setpriv --reuid="${MCPGW_USER:-www-data}" --regid="$(id -gn "${MCPGW_USER:-www-data}")" --clear-groups -- \
			test -x "$root/cgi-bin/health.fcgi" -a -r "$root/tests/blackbox/helpers.bash" 2>/dev/null; then
		fe_root=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-check.XXXXXX") || exit 2
		chmod 755 "$fe_root"
		echo "check: ${MCPGW_USER:-www-data} cannot reach $root; the front-end runs use a copy in $fe_root"
		tar -C "$root" --exclude=./.git --exclude=./var --exclude=./build -cf - . | tar -C "$fe_root" -xf - || exit 2
		cd_to=$fe_root
	fi
	cd "$cd_to" || exit 2
	# the copy's node first: a test that names `command -v node` in a servers_config.json gives the
	# broker (run as MCPGW_USER) a path it can reach
	saved_path=$PATH
	PATH="$cd_to/tests/node_modules/.bin:$PATH"
	export PATH
	for fe in ${MCPGW_CHECK_FRONTENDS-apache-fcgid apache-proxy-fcgi cgi}; do
		# the tool loop's own suites (tool calls, loop policy, upstream conventions and dialects: what
		# happens between the responder, the broker and the upstream, whatever started the responder)
		# behind plain CGI, the other process model, besides lighttpd; the rest behind every front end
		loop_bats= loop_node=
		[ "$fe" = cgi ] && loop_bats=tests/blackbox/tool_calls.bats &&
			loop_node="tests/blackbox/looppolicy.test.mjs tests/blackbox/upstream_conventions.test.mjs tests/blackbox/dialects.test.mjs"
		stage "black-box tests behind MCPGW_FRONTEND=$fe (tools.bats, frontend.bats, models.bats, routes.bats, browser.bats, secrets.bats, keys.bats, operations.bats, uploads.bats, chat.test.mjs${loop_bats:+, tool_calls.bats, looppolicy.test.mjs, upstream_conventions.test.mjs, dialects.test.mjs})"
		MCPGW_FRONTEND=$fe
		# shellcheck disable=SC2086
		files=$(pick tests/blackbox/tools.bats $loop_bats tests/blackbox/frontend.bats \
			tests/blackbox/models.bats tests/blackbox/routes.bats tests/blackbox/browser.bats tests/blackbox/secrets.bats \
			tests/blackbox/keys.bats tests/blackbox/operations.bats tests/blackbox/uploads.bats)
		if [ -n "$files" ]; then
			# shellcheck disable=SC2086
			bats --tap --timing $files 2>&1 | sed "s/^\(\(not \)\{0,1\}ok [0-9][0-9]*\) /\1 [$fe] /" >"$log/bats"
			cat "$log/bats"
			count_bats "$log/bats"
		fi
		# shellcheck disable=SC2086
		files=$(pick tests/blackbox/chat.test.mjs $loop_node)
		# shellcheck disable=SC2086
		[ -z "$files" ] || run_node $files
		files=$(pick tests/blackbox/history.test.mjs)  # the mixed-batch history with its owner (issue 14, case 3)
		[ -z "$files" ] || run_node $files
	done
	# routes.bats and browser.bats behind lighttpd with plain CGI too, so the route table and the browser checks are checked behind every front end
	if [ -z "${MCPGW_CHECK_FRONTENDS+x}" ] && [ -n "$(pick tests/blackbox/routes.bats tests/blackbox/browser.bats)" ]; then
		stage "black-box tests behind MCPGW_FRONTEND=lighttpd-cgi (routes.bats, browser.bats)"
		MCPGW_FRONTEND=lighttpd-cgi
		# shellcheck disable=SC2046
		bats --tap --timing $(pick tests/blackbox/routes.bats tests/blackbox/browser.bats) 2>&1 | sed "s/^\(\(not \)\{0,1\}ok [0-9][0-9]*\) /\1 [lighttpd-cgi] /" >"$log/bats"
		cat "$log/bats"
		count_bats "$log/bats"
	fi
	unset MCPGW_FRONTEND
	PATH=$saved_path
	cd "$root" || exit 2

	# every suite's gateways ran with the run's canaries planted (tests/canaries.sh, helpers.bash,
	# canaries.mjs): none may be in what they kept, and each must be where it was planted
	stage "canaries (tests/canaries.sh: the run's secrets in no log, database or response; each in the raw inputs)"
	# run_canary WHAT ARGS...: one test, tests/canaries.sh ARGS, its output shown
	run_canary() {
		what_=$1
		shift
		if sh tests/canaries.sh "$@" >"$log/canary" 2>&1; then
			echo "ok - canaries: $what_"
			passed=$((passed + 1))
		else
			echo "not ok - canaries: $what_"
			failed_note "not ok - canaries: $what_"
			failed=$((failed + 1))
			canary_failed=1
		fi
		sed 's/^/# /' "$log/canary"
	}
	canary_failed=0
	run_canary "the check catches a planted leak (scratch artifacts)" selftest "$MCPGW_TEST_ARTIFACTS"
	run_canary "none in any kept log, state database or response" check "$MCPGW_TEST_ARTIFACTS"
	run_canary "each is in the raw inputs (.env, servers_config.json, request headers)" raw "$MCPGW_TEST_ARTIFACTS"
	if [ "$canary_failed" = 1 ]; then
		echo "check: the artifacts are kept in $MCPGW_TEST_ARTIFACTS"
		MCPGW_TEST_ARTIFACTS=
	fi
fi

# the sanitizer stage (make check-asan): build/asan built with SANITIZE=1, its own check.sh asan-run
# (in a whole check started beside the front-end runs above: here its output)
if [ "$what" = all ] || [ "$what" = asan ]; then
	if [ -n "$asan_pid" ]; then
		stage "sanitizer stage (make check-asan: AddressSanitizer + UBSan build in build/asan, unit and lighttpd black-box tests; begun at $((asan_t0 - t_start)) s)"
		wait "$asan_pid"
		asan_pid=
		t0=$asan_t0
	else
		stage "sanitizer build (make check-asan: AddressSanitizer + UBSan build in build/asan, unit and lighttpd black-box tests)"
		t0=$(date +%s)
		sh -c "$asan_stage" asan "$log/asan"
	fi
	cat "$log/asan"
	set -- $(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed\(, \([0-9][0-9]*\) skipped\)\{0,1\}$/\1 \2 \4/p' "$log/asan" | tail -n 1)
	if [ $# -lt 2 ]; then set -- 0 1; echo "check: the sanitizer stage ran no test (build failed?)"; failed_note "the sanitizer stage ran no test"; fi
	# its own list of failed tests (the lines before its totals)
	sed -n 's/^# failed: //p' "$log/asan" >>"$log/failed"
	passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + ${3:-0}))
	echo "sanitizer stage: $1 passed, $2 failed in $(($(date +%s) - t0)) s"
fi

echo "check: $(($(date +%s) - t_start)) s in all"
# the failed tests once more, here, where a CI log's tail shows them (at most 30)
if [ -s "$log/failed" ]; then
	head -n 30 "$log/failed" | sed 's/^/# failed: /'
	[ "$(wc -l <"$log/failed")" -le 30 ] || echo "# failed: ... ($(wc -l <"$log/failed") in all)"
fi
if [ "$skipped" = 0 ]; then echo "$passed passed, $failed failed"
else echo "$passed passed, $failed failed, $skipped skipped"; fi
[ "$failed" = 0 ]
