#!/usr/bin/env bats
# web_errors.bats: the error objects for the statuses a web server answers by itself (deploy/web-errors.sh, cgi-bin/web-errors.tsv).

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

@test "make's cgi-bin/web-errors.tsv: one JSON error object per status, as health.fcgi words it now" {
	[ -s "$ROOT/cgi-bin/web-errors.tsv" ]
	[ ! "$ROOT/cgi-bin/health.fcgi" -nt "$ROOT/cgi-bin/web-errors.tsv" ]
	[ "$(wc -l <"$ROOT/cgi-bin/web-errors.tsv")" -eq 20 ]
	while IFS="$(printf '\t')" read -r status body; do
		[[ "$status" =~ ^[45][0-9][0-9]$ ]]
		code=$(printf '%s' "$body" | python3 -c 'import json,sys; e=json.load(sys.stdin)["error"]; print(e["code"], e["type"])')
		[ -n "$code" ]
	done <"$ROOT/cgi-bin/web-errors.tsv"
	cd "$BATS_TEST_TMPDIR"
	MCPGW_HOME=$BATS_TEST_TMPDIR run sh "$ROOT/deploy/web-errors.sh" "$ROOT/cgi-bin/health.fcgi"
	[ "$status" -eq 0 ]
	[ "$output" = "$(cat "$ROOT/cgi-bin/web-errors.tsv")" ]
}

@test "web-errors.sh: a 413 names the MCPGW_MAX_BODY_BYTES it is given; a program that writes no error object is refused, naming the status" {
	cd "$BATS_TEST_TMPDIR"
	MCPGW_HOME=$BATS_TEST_TMPDIR MCPGW_MAX_BODY_BYTES=2000 run sh "$ROOT/deploy/web-errors.sh" "$ROOT/cgi-bin/health.fcgi" 413
	[ "$status" -eq 0 ]
	[[ "$output" == 413$'\t''{"error":{"message":"The request body is larger than MCPGW_MAX_BODY_BYTES (2000 bytes).'* ]]
	run sh "$ROOT/deploy/web-errors.sh" /bin/true 400
	[ "$status" -eq 1 ]
	[[ "$output" == *"did not write the 400 error object"* ]]
}
