#!/usr/bin/env bats
# bench_ab.bats: `make bench BASELINE=...`: bench/abtable.awk's table (orientation, medians, verdicts, summary) on made-up measurements, and bench/ab.sh's refusals before it starts anything; the capacity run (bench/capacity.sh --quick, a few seconds) and its load client's sorting of streams.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	T=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-abtable.XXXXXX")
}

teardown() { rm -rf "$T"; }

# table MIN: the table of $T/figures and $T/samples (written with printf, tab-separated)
table() { awk -v min="$1" -f "$ROOT/bench/abtable.awk" "$T/figures" "$T/samples"; }
fig() { printf '%s\t%s\t%s\n' "$@" >>"$T/figures"; }
# runs KEY SIDE V1 V2 ...: one sample per pair
runs() {
	local k=$1 s=$2 i=0 v
	shift 2
	for v; do i=$((i + 1)); printf '%s\t%s\t%s\t%s\n' "$k" "$s" "$i" "$v" >>"$T/samples"; done
}

@test "abtable: a rate is B/A, a time and a memory size A/B (above 1: B better); medians of the pairs; each pair's ratio" {
	fig rps rate "a rate"
	fig lat us "a latency"
	fig mem kb "a memory size"
	fig up ms "a start-up"
	runs rps A 100 200 300;   runs rps B 190 210 220
	runs lat A 1000 1000 1000; runs lat B 2000 2000 500
	runs mem A 2048 2048 2048; runs mem B 1024 1024 4096
	runs up A 200 200 200;     runs up B 200 210 190
	run table 0.95
	[ "$status" = 0 ]
	[ "${lines[0]}" = "| a rate | 200 req/s | 210 req/s | 1.050 | 1.90 1.05 0.73 | ok |" ]
	[ "${lines[1]}" = "| a latency | 1.000 ms | 2.000 ms | 0.500 | 0.50 0.50 2.00 | LOW |" ]
	[ "${lines[2]}" = "| a memory size | 2.0 MB | 1.0 MB | 2.000 | 2.00 2.00 0.50 | ok |" ]
	[ "${lines[3]}" = "| a start-up | 200 ms | 200 ms | 1.000 | 1.00 0.95 1.05 | ok |" ]
	[ "${lines[4]}" = "$(printf 'SUMMARY\tbench A/B: 4 figures, 3 ≥ 0.95, 1 below')" ]
}

@test "abtable: 0.95 of the old figure is ok, 0.94 is LOW; the bound is min" {
	fig at rate "at the bound"
	fig under rate "under it"
	runs at A 100;    runs at B 95
	runs under A 100; runs under B 94
	run table 0.95
	[ "${lines[0]}" = "| at the bound | 100 req/s | 95 req/s | 0.950 | 0.95 | ok |" ]
	[ "${lines[1]}" = "| under it | 100 req/s | 94 req/s | 0.940 | 0.94 | LOW |" ]
	[ "${lines[2]}" = "$(printf 'SUMMARY\tbench A/B: 2 figures, 1 ≥ 0.95, 1 below')" ]
	run table 0.9
	[ "${lines[2]}" = "$(printf 'SUMMARY\tbench A/B: 2 figures, 2 ≥ 0.9, 0 below')" ]
}

@test "abtable: a failed run (0 or no value) is LOW whatever the median says" {
	fig zero rate "a run with errors"
	fig gone kb "a process gone"
	runs zero A 100 100 100; runs zero B 120 0 120
	runs gone A 1000 1000 1000; runs gone B 900 '' 900
	run table 0.95
	[ "${lines[0]}" = "| a run with errors | 100 req/s | 120 req/s | 1.200 | 1.20 n/a 1.20 | LOW (a run failed) |" ]
	[ "${lines[1]}" = "| a process gone | 1.0 MB | 0.9 MB | 1.111 | 1.11 n/a 1.11 | LOW (a run failed) |" ]
	[ "${lines[2]}" = "$(printf 'SUMMARY\tbench A/B: 2 figures, 0 ≥ 0.95, 2 below')" ]
}

@test "abtable: a figure only one side has (a responder the other layout lacks) is shown, not counted" {
	fig both kb "both"
	fig old kb "only the baseline's"
	fig new kb "only this tree's"
	runs both A 1024; runs both B 1024
	runs old A 2048
	runs new B 3072
	run table 0.95
	[ "${lines[0]}" = "| both | 1.0 MB | 1.0 MB | 1.000 | 1.00 | ok |" ]
	[ "${lines[1]}" = "| only the baseline's | 2.0 MB | - | - | - | only in A |" ]
	[ "${lines[2]}" = "| only this tree's | - | 3.0 MB | - | - | only in B |" ]
	[ "${lines[3]}" = "$(printf 'SUMMARY\tbench A/B: 1 figures, 1 ≥ 0.95, 0 below (2 more measured on one side only)')" ]
}

@test "ab.sh refuses before starting anything: no commit, an unknown commit, a wrong setting, a broken BENCH_AB_ONLY" {
	run bash "$ROOT/bench/ab.sh"
	[ "$status" = 2 ]
	[[ "$output" == *"usage: bash bench/ab.sh COMMIT"* ]]
	run bash "$ROOT/bench/ab.sh" no-such-commit-xyz
	[ "$status" = 1 ]
	[[ "$output" == *"no-such-commit-xyz: not a commit of $ROOT"* ]]
	BENCH_AB_PAIRS=0 run bash "$ROOT/bench/ab.sh" HEAD
	[ "$status" = 1 ]
	[[ "$output" == *"BENCH_AB_PAIRS: expected 1..20, got '0'"* ]]
	BENCH_AB_MIN=x run bash "$ROOT/bench/ab.sh" HEAD
	[ "$status" = 1 ]
	[[ "$output" == *"BENCH_AB_MIN: expected a ratio such as 0.95, got 'x'"* ]]
	BENCH_SECONDS=1.5 run bash "$ROOT/bench/ab.sh" HEAD
	[ "$status" = 1 ]
	[[ "$output" == *"BENCH_SECONDS: expected whole seconds"* ]]
	BENCH_AB_ONLY='RSS(' run bash "$ROOT/bench/ab.sh" HEAD
	[ "$status" = 1 ]
	[[ "$output" == *"BENCH_AB_ONLY: not an extended regular expression: 'RSS('"* ]]
}

@test "make bench runs the A/B with BASELINE=COMMIT, the yardsticks without" {
	run make -n -C "$ROOT" --no-print-directory bench BASELINE=7f64bf4
	[ "$status" = 0 ]
	[[ "$output" == *"bash bench/ab.sh '7f64bf4'"* ]]
	[[ "$output" != *"bench/run.sh"* ]]
	run make -n -C "$ROOT" --no-print-directory bench
	[ "$status" = 0 ]
	[[ "$output" == *"bash bench/run.sh"* ]]
	[[ "$output" != *"bench/ab.sh"* ]]
}

@test "bench/capacity.sh --quick: 5 streamed chats with a tool round at once through a fresh mcpgwctl gateway, one alone beside them, then 7 over a capacity of 5; every figure and verdict reported" {
	BENCH_CAPACITY_ROWS="$T/rows" BENCH_CAPACITY_SUMMARY="$T/summary" run bash "$ROOT/bench/capacity.sh" --quick
	[ "$status" = 0 ]
	[ "$(wc -l <"$T/rows")" = 6 ]
	# every stream completed: status 200, [DONE], and the text the simulator sent after the tool round
	grep -q "^capacity, 5 streamed chats at once (1 tool round each, a chunk every 200 ms): completed	5 of 5 (failed 0; unfinished after 20 s: 0, 0 of them without a byte; wall [0-9.]* s)	-	-	all 5	MET$" "$T/rows"
	# over the capacity: the 2 beyond it refused at once with Retry-After, the 5 within it complete
	grep -Eq "^capacity, 7 streamed chats with MCPGW_CAPACITY=5 \(5 fill the host, then 2 more at once\): 503 capacity_exceeded answers \(p50 / max time to the answer\)	2 of 7, [0-9]+ ms / [0-9]+ ms, 2 with Retry-After; completed 5, other failures 0, unfinished 0	-	-	2 within 100 ms each, with Retry-After; the 5 others complete	(MET|MISSED)$" "$T/rows"
	grep -Eq "^capacity, the 5 streams within MCPGW_CAPACITY=5 beside 2 refused: total time p50 / max	" "$T/rows"
	grep -Eq "^capacity, 5 at once: each stream's total time p50 / max \(first content delta p50 / max: [0-9]+\.[0-9]{2} s / [0-9]+\.[0-9]{2} s\)	[0-9]+\.[0-9]{2} s / [0-9]+\.[0-9]{2} s	[0-9]+\.[0-9]{2} s \(one such stream alone; first content delta [0-9]+\.[0-9]{2} s\)	p50 [-+][0-9]+ ms	max <= alone \+ 1 s, p50 <= alone \+ 100 ms	(MET|MISSED)$" "$T/rows"
	grep -Eq "^capacity, 5 at once: private memory of chat\.fcgi \([12]\) \+ mcpgw-broker above idle, per stream answered at once \(at most [1-5] of 5; \(peak - idle\) / N: -?[0-9]+\.[0-9] KB\)	-?[0-9]+\.[0-9] KB \(idle [0-9]+\.[0-9] MB, peak [0-9]+\.[0-9] MB[^	]*\)	-	-	\(peak - idle\) / N <= 64 KB, all 5 at once	(MET|MISSED)$" "$T/rows"
	# a stream takes 10 chunk delays (200 ms) at least (two upstream answers of 5 chunks, [DONE] one delay later)
	grep -Eq '^\| 5 \| 5 \| 0 \| 0 \(0\) \| ' "$T/summary"
	awk -F' \\| ' '/^\| 5 / { split($7, a, " "); exit !(a[1] >= 2.0) }' "$T/summary"
	# the yardstick without the gateway: the stream's two upstream requests replayed straight to the
	# simulator, five at once; they too take 10 chunk delays at least
	grep -Eq "^capacity, 5 at once without the gateway: the simulator alone, each stream's two upstream requests sent by the load client \(what the client and the simulator add by themselves at N\)	[0-9]+\.[0-9]{2} s / [0-9]+\.[0-9]{2} s \(5 of 5 completed\)	[0-9]+\.[0-9]{2} s / [0-9]+\.[0-9]{2} s \(through the gateway\)	the gateway adds p50 [-+][0-9]+ ms	-	-$" "$T/rows"
	awk -F' \\| ' '/^\| 5 / { split($8, a, " "); exit !(a[1] >= 2.0) }' "$T/summary"
	[[ "$output" == *"lighttpd: soft RLIMIT_NOFILE "*" streams at once; chat.fcgi: "*" FastCGI sockets x backlog "* ]]
	# nothing of the run is left
	! ps -eo args | grep -v grep | grep -q '/tmp/mcpgw-cap\.'
}

@test "bench/capacity-client.mjs sorts each stream: complete, 503 (its time, Retry-After), the other failures by kind, unfinished at the bound without a byte" {
	load ../upstream-sim/sim
	sim_start --no-obfuscation --chunk-delay-ms 20
	curl -sf -X POST --data-binary '[{"error":{"status":503,"retry_after":3}},{"break_after_chunks":1},{"stream_error":{"message":"x","after_chunks":1}},{"content":"other text"},{"delay_ms":5000}]' \
		"$SIM_URL/_sim/script" >/dev/null
	printf '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"q"}]}' >"$T/body"
	run node "$ROOT/bench/capacity-client.mjs" --url "$SIM_URL/v1/chat/completions" --body "$T/body" --n 7 --timeout-s 1.5 --expect 'sim: q'
	sim_stop
	[ "$status" = 0 ]
	[[ "$output" == *$'\ncompleted=2\nfailed=4\nfailed_503=1\n'* ]]
	[[ "$output" == *$'\nfailed_503_retry_after=1\nfailed_other=3\n'* ]]
	[[ "$output" == *$'\nfailed_kinds=1 cut ('*$'); 1 error event (server_error); 1 wrong content\n'* ]]
	[[ "$output" == *$'\nunfinished=1\nunfinished_no_byte=1\n'* ]]
	# 4 chunks (role, 2 words, finish) 20 ms apart and [DONE] after one more
	echo "$output" | awk -F= '$1 == "total_p50_ms" { exit !($2 >= 80 && $2 < 1500) }'
	echo "$output" | awk -F= '$1 == "failed_503_max_ms" { exit !($2 < 1000) }'
	echo "$output" | grep -q '^served_peak=[0-7]$'
}
