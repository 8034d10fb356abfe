#!/usr/bin/env bats
# fuzz.bats: the fuzz targets' tree (a corpus and a top comment per target) and tests/fuzz/run.sh's verdicts on a planted target (a crash, a leak, a known crash).

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
}

@test "every fuzz target has a top comment and a checked-in corpus; every corpus, regression and known directory names a target" {
	n=0
	for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
		name=${f##*/fuzz_}
		name=${name%.c}
		head -n 1 "$f" | grep -q "^/\* fuzz_$name\.c: libFuzzer target of " || { echo "no top comment: $f"; false; }
		ls "$ROOT/tests/fuzz/corpus/$name"/* >/dev/null 2>&1 || { echo "no corpus: tests/fuzz/corpus/$name"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 16 ]
	for d in "$ROOT"/tests/fuzz/corpus/* "$ROOT"/tests/fuzz/regressions/* "$ROOT"/tests/fuzz/known/*; do
		[ -d "$d" ] || continue
		[ -f "$ROOT/tests/fuzz/fuzz_${d##*/}.c" ] || { echo "no target for $d"; false; }
	done
}

@test "run.sh --check: a crashing or leaking regression input fails, a known one is skipped, a clean target passes" {
	command -v clang >/dev/null || skip "no clang (make test-deps installs it)"
	t=$BATS_TEST_TMPDIR/tree
	b=$BATS_TEST_TMPDIR/build
	mkdir -p "$t/corpus/planted" "$t/regressions/planted" "$t/known/planted" "$b"
	# a target that crashes or leaks only on inputs whose hash is that of "crash-me" / "leak-me",
	# so fuzzing cannot reach either (libFuzzer learns compared strings, not hash preimages)
	cat >"$t/fuzz_planted.c" <<'C'
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
static uint32_t h(const uint8_t *d, size_t n) { uint32_t x = 2166136261u; while (n--) x = (x ^ *d++) * 16777619u; return x; }
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static volatile char *keep;
	if (h(d, n) == h((const uint8_t *)"crash-me", 8)) abort();
	if (h(d, n) == h((const uint8_t *)"leak-me", 7)) { keep = malloc(64); keep = NULL; }
	return 0;
}
C
	clang -fsanitize=fuzzer,address -o "$b/fuzz_planted" "$t/fuzz_planted.c"
	printf 'seed' >"$t/corpus/planted/seed"
	printf 'fine' >"$t/regressions/planted/fine"
	printf 'crash-me' >"$t/regressions/planted/crash-1"
	printf 'leak-me' >"$t/regressions/planted/leak-1"
	printf 'crash-me' >"$t/known/planted/still"
	printf 'fixed' >"$t/known/planted/fixed"
	FUZZ_BUILD_DIR=$b FUZZ_TREE=$t FUZZ_CHECK_SECONDS=1 run sh "$ROOT/tests/fuzz/run.sh" --check planted
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ok fuzz_planted regression fine"* ]]
	[[ "$output" == *"not ok fuzz_planted regression crash-1"* ]]
	[[ "$output" == *"not ok fuzz_planted regression leak-1"* ]]
	[[ "$output" == *"skip fuzz_planted known still"* ]]
	[[ "$output" == *"ok fuzz_planted known fixed # passes now"* ]]
	[[ "$output" == *"ok fuzz_planted corpus + 1s"* ]]
	[[ "$output" == *"fuzz: 3 passed, 2 failed, 1 skipped"* ]]
	# the corpus was not written into: new inputs go to a temporary directory
	[ "$(ls "$t/corpus/planted")" = seed ]
}

@test "run.sh: a target that is not built fails, and the mode is required" {
	FUZZ_BUILD_DIR=$BATS_TEST_TMPDIR/none run sh "$ROOT/tests/fuzz/run.sh" --check sse
	[ "$status" -eq 1 ]
	[[ "$output" == *"not ok fuzz_sse:"*"is not built"* ]]
	run sh "$ROOT/tests/fuzz/run.sh"
	[ "$status" -eq 2 ]
}
