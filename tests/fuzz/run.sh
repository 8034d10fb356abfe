#!/bin/sh
# run.sh: runs the libFuzzer targets (build/fuzz/fuzz_*, made by `make fuzz-progs`): regressions replayed, corpora replayed and fuzzed for a bounded time.
#
# Usage: tests/fuzz/run.sh --check [NAME...]   what `make check` runs: per target, every input of
#            tests/fuzz/regressions/NAME/ replayed (a test each), then the corpus tests/fuzz/corpus/NAME/
#            replayed and fuzzed for FUZZ_CHECK_SECONDS (default 4; -seed=1, so a run is repeatable) (a test).
#            Inputs of tests/fuzz/known/NAME/ (crashes another branch fixes, see its README) are replayed
#            and counted as skipped while they still fail.
#        tests/fuzz/run.sh --long [NAME...]    what `make fuzz` runs: each target for FUZZ_SECONDS (default 300)
#            from its corpus; new inputs go to build/fuzz/corpus/NAME/ (not the checkout's corpus: merge
#            worthwhile ones by hand), crashes to build/fuzz/crashes/NAME/.
# NAME is a target without its fuzz_ prefix (chat, sse, ...); none: every target.
# FUZZ_BUILD_DIR (default build/fuzz) and FUZZ_TREE (default tests/fuzz) move the two trees (for tests).
# Prints one line per test ("ok ...", "not ok ...", "skip ...") and ends with "fuzz: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 2
mode=${1:-}
case $mode in --check | --long) shift ;; *) echo "usage: tests/fuzz/run.sh --check|--long [NAME...]" >&2; exit 2 ;; esac
names=$*
# where the targets are built and where their sources, corpora and inputs are (tests/fuzz.bats plants others)
B=${FUZZ_BUILD_DIR:-build/fuzz}
T=${FUZZ_TREE:-tests/fuzz}
if [ -z "$names" ]; then
	for f in "$T"/fuzz_*.c; do n=${f##*/fuzz_}; names="$names ${n%.c}"; done
fi
passed=0 failed=0 skipped=0
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
secs=${FUZZ_CHECK_SECONDS:-4}
[ "$mode" = --long ] && secs=${FUZZ_SECONDS:-300}

# replay BIN FILE: run the target once on one input; 0 when it neither crashed nor leaked
replay() {
	"$1" -runs=1 "$2" >"$tmp/replay" 2>&1
}

for name in $names; do
	bin=$B/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "not ok fuzz_$name: $bin is not built (make fuzz-progs)"
		failed=$((failed + 1))
		continue
	fi
	dict=
	[ -f "$T/$name.dict" ] && dict="-dict=$T/$name.dict"
	if [ "$mode" = --check ]; then
		for f in "$T"/regressions/"$name"/*; do
			[ -f "$f" ] || continue
			if replay "$bin" "$f"; then
				echo "ok fuzz_$name regression ${f##*/}"
				passed=$((passed + 1))
			else
				tail -n 40 "$tmp/replay"
				echo "not ok fuzz_$name regression ${f##*/}"
				failed=$((failed + 1))
			fi
		done
		for f in "$T"/known/"$name"/*; do
			[ -f "$f" ] || continue
			if replay "$bin" "$f"; then
				echo "ok fuzz_$name known ${f##*/} # passes now: move it to $T/regressions/$name/"
				passed=$((passed + 1))
			else
				echo "skip fuzz_$name known ${f##*/} # still fails: see $T/known/README"
				skipped=$((skipped + 1))
			fi
		done
		out=$tmp/new-$name
		arts=$tmp/crash-$name
		extra=-seed=1
	else
		out=$B/corpus/$name
		arts=$B/crashes/$name
		extra=
	fi
	mkdir -p "$out" "$arts"
	# a known bug another branch fixes may need its sanitizer check off for this target's runs
	# (tests/fuzz/known/NAME.asan_options, see tests/fuzz/known/README); its input is replayed above
	asan=${ASAN_OPTIONS:-}
	if [ -f "$T/known/$name.asan_options" ]; then
		asan="${asan:+$asan:}$(grep -v '^#' "$T/known/$name.asan_options" | tr -d '\n')"
		echo "fuzz: fuzz_$name runs with ASAN_OPTIONS=$asan ($T/known/$name.asan_options)"
	fi
	start=$(date +%s)
	# shellcheck disable=SC2086
	ASAN_OPTIONS=$asan "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $extra $dict \
		-artifact_prefix="$arts/" "$out" "$T/corpus/$name" >"$tmp/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/log")
	took=$(($(date +%s) - start))
	if [ $rc -eq 0 ]; then
		echo "ok fuzz_$name corpus + ${secs}s: ${runs:-?} runs in ${took}s"
		passed=$((passed + 1))
	else
		grep -v '^#[0-9]' "$tmp/log" | tail -n 60
		keep=$B/crashes/$name
		mkdir -p "$keep"
		for c in "$arts"/*; do [ -f "$c" ] && cp "$c" "$keep/" && echo "fuzz: kept $keep/${c##*/}: add it to $T/regressions/$name/ with its fix"; done
		echo "not ok fuzz_$name corpus + ${secs}s (exit $rc)"
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
