#!/usr/bin/env bats
# docs.bats: what README.md promises about the code, checked against the code: every OpenAI error code
# the C sources can send is in the README's Errors section (tests/error-codes.pl finds them).

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

# errors_section: README.md from "### Errors" to the next heading of its level
errors_section() {
	awk '/^### Errors$/ { f = 1; next } f && /^##/ { exit } f' "$ROOT/README.md"
}

sources() {
	ls "$ROOT"/lib/*/*.c "$ROOT"/cgi-bin/*.c "$ROOT"/broker/*.c
}

@test "every error code the gateway can send is in the README's Errors section" {
	local sec codes missing="" c
	sec=$(errors_section)
	[ -n "$sec" ] || { echo "README.md has no '### Errors' section"; return 1; }
	# shellcheck disable=SC2046
	codes=$(perl "$ROOT/tests/error-codes.pl" $(sources))
	# the extractor finds the codes of every kind of builder (a change that hides them fails here)
	for c in invalid_json tool_not_found upstream_timeout capacity_exceeded broker_unavailable invalid_api_key unknown_parameter; do
		grep -qx "$c" <<<"$codes" || { echo "tests/error-codes.pl did not find $c: $codes"; return 1; }
	done
	[ "$(wc -l <<<"$codes")" -ge 40 ] || { echo "only $(wc -l <<<"$codes") codes found: $codes"; return 1; }
	for c in $codes; do
		grep -q "\`$c\`" <<<"$sec" || missing="$missing $c"
	done
	[ -z "$missing" ] || { echo "error codes the code sends that README.md's Errors section does not list:$missing"; return 1; }
}

@test "the error-code check finds a code that is not documented" {
	printf 'static void f(struct hio *h) { oai_send_error(h, 400, "x", "made_up_code_for_the_test", "No."); }\n' \
		>"$BATS_TEST_TMPDIR/new.c"
	run perl "$ROOT/tests/error-codes.pl" "$BATS_TEST_TMPDIR/new.c"
	[ "$status" = 0 ]
	[ "$output" = made_up_code_for_the_test ]
	! grep -q '`made_up_code_for_the_test`' <<<"$(errors_section)"
}
