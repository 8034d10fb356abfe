#!/usr/bin/env bats
# operations.bats: what operators see (issue 14, case 7): one access-log line per request at the default level, the audit table of tool calls, GET /metrics.

load helpers
mcpgw_load_sim

# the default servers, at the default log level (no MCPGW_LOG_LEVEL)
mcpgw_custom_config() {
	mcpgw_write_config
	sed -i '/^MCPGW_LOG_LEVEL=/d' "$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# access_lines ENDPOINT: the access-log lines of ENDPOINT so far
access_lines() {
	grep -h " INFO access .* endpoint=$1 " "$MCPGW_STATE_DIR"/*.log 2>/dev/null || true
}

# await_access ENDPOINT MIN: wait (up to 5 s) until ENDPOINT has at least MIN access-log lines: the
# responders' log thread writes them within about 100 ms of the request (log_spool)
await_access() {
	local i
	for i in $(seq 50); do
		[ "$(access_lines "$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "no access-log line of $1 after 5 s"
	return 1
}

@test "a chat with a tool round writes one access-log line at the default level: model, tools, rounds, tokens, status" {
	local before after line

	wait_server_state sqlite ready
	before=$(access_lines /v1/chat/completions | wc -l)
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT 41+1 AS secret_answer"}}],"usage":{"prompt_tokens":11,"completion_tokens":3}},{"content":"done","usage":{"prompt_tokens":20,"completion_tokens":4}}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"canary-message-text"}]}'
	assert_status 200
	await_access /v1/chat/completions $((before + 1))
	sleep 0.3 # and no second line
	after=$(access_lines /v1/chat/completions | wc -l)
	[ "$after" -eq $((before + 1)) ]
	line=$(access_lines /v1/chat/completions | tail -n 1)
	echo "$line"
	[[ "$line" == *" method=POST "* ]]
	[[ "$line" == *" status=200 "* ]]
	[[ "$line" == *" key=- "* ]]
	[[ "$line" == *" model=sim-model "* ]]
	[[ "$line" == *" rounds=1 "* ]]
	[[ "$line" == *" tools=1 "* ]]
	[[ "$line" == *" tool_names=sqlite.read_query "* ]]
	[[ "$line" == *" prompt_tokens=31 completion_tokens=7"* ]]
	[[ "$line" =~ \ duration_ms=[0-9]+\  ]]
	[[ "$line" =~ \ bytes_out=[1-9][0-9]*\  ]]
	# never content: not the user's message, not the tool's arguments
	! grep -rq "canary-message-text\|secret_answer" "$MCPGW_STATE_DIR"/*.log
}

@test "a chat that names no model is logged with the model it was sent as (DEFAULT_MODEL)" {
	local before line model

	model=$(sed -n 's/^DEFAULT_MODEL=//p' "$MCPGW_HOME/.env" | tail -n 1)
	model=${model:-gpt-4o-mini}
	before=$(access_lines /v1/chat/completions | wc -l)
	post /v1/chat/completions '{"messages":[{"role":"user","content":"no model named"}],"mcp":{"tools":false}}'
	assert_status 200
	await_access /v1/chat/completions $((before + 1))
	line=$(access_lines /v1/chat/completions | tail -n 1)
	echo "$line"
	[[ "$line" == *" model=$model "* ]]
}

@test "POST /v1/tools and an unrouted request each write one access-log line" {
	local line before unrouted

	before=$(access_lines /v1/tools | wc -l)
	unrouted=$(access_lines - | wc -l)
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT 1"}}'
	assert_status 200
	await_access /v1/tools $((before + 1))
	line=$(access_lines /v1/tools | grep "method=POST" | tail -n 1)
	echo "$line"
	# the server is named when the worker's catalog knows it (no extra round trip to learn it)
	[[ "$line" == *" status=200 "* && "$line" == *" tools=1 "* && "$line" =~ \ tool_names=(sqlite\.)?read_query\  ]]
	get /v1/no-such-thing
	assert_status 404
	await_access - $((unrouted + 1))
	grep -h " INFO access .* endpoint=- status=404 " "$MCPGW_STATE_DIR"/*.log | grep -q .
}

@test "an embeddings request's access-log line names its model and tokens" {
	local line before

	before=$(access_lines /v1/embeddings | wc -l)
	post /v1/embeddings '{"model":"mcpgw-embedding-local","input":["canary-embedding-text","two"]}'
	assert_status 200
	await_access /v1/embeddings $((before + 1))
	line=$(access_lines /v1/embeddings | tail -n 1)
	echo "$line"
	[[ "$line" == *" status=200 "* && "$line" == *" model=mcpgw-embedding-local "* ]]
	[[ "$line" =~ \ prompt_tokens=[1-9][0-9]*\ completion_tokens=- ]]
	! grep -q canary-embedding-text "$MCPGW_STATE_DIR"/*.log
}

# audit_rows WHERE: the audit table's rows matching WHERE ("server|tool|outcome|args_bytes|result_bytes|payloads")
audit_rows() {
	sqlite3 -separator '|' "$MCPGW_STATE_DIR/state.db" \
		"SELECT server, tool, outcome, args_bytes, result_bytes, arguments IS NOT NULL OR result IS NOT NULL, key_id FROM audit WHERE $1 ORDER BY id" 2>/dev/null
}

# wait_audit N WHERE: until N rows match (the broker writes in batches), at most 5 s
wait_audit() {
	local i=0

	while [ "$(audit_rows "$2" | wc -l)" -lt "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(audit_rows "$2" | wc -l)" -ge "$1" ]
}

@test "the audit table gets a row per tool call, with sizes and no payloads by default" {
	local before args

	before=$(audit_rows "tool = 'read_query'" | wc -l)
	args='{"query":"SELECT 7 AS audit_canary"}'
	post /v1/tools "{\"tool\":\"read_query\",\"arguments\":$args}"
	assert_status 200
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT * FROM no_such_table"}}'
	wait_audit $((before + 2)) "tool = 'read_query'"
	audit_rows "tool = 'read_query'" | tail -n 2 >"$BATS_TEST_TMPDIR/rows"
	cat "$BATS_TEST_TMPDIR/rows"
	# server|tool|outcome|args_bytes|result_bytes|payloads|caller: anonymous callers have the id ""
	IFS='|' read -r srv tool outcome abytes rbytes payloads caller <"$BATS_TEST_TMPDIR/rows"
	[ "$srv" = sqlite ] && [ "$tool" = read_query ] && [ "$outcome" = ok ]
	[ "$abytes" -eq ${#args} ] && [ "$rbytes" -gt 0 ] && [ "$payloads" = 0 ] && [ -z "$caller" ]
	tail -n 1 "$BATS_TEST_TMPDIR/rows" | grep -Eq '^sqlite\|read_query\|(is_error|error)\|[0-9]+\|[0-9]+\|0\|$'
	# no payload anywhere in the store
	! grep -aq audit_canary "$MCPGW_STATE_DIR"/state.db*
	# the chat's tool round of the first test is there too
	[ "$(audit_rows "tool = 'read_query'" | wc -l)" -ge 3 ]
}

# prom_check FILE: FILE parses as Prometheus text exposition format 0.0.4
# (https://prometheus.io/docs/instrumenting/exposition_formats/); prints its samples as "name{labels} value" lines
prom_check() {
	node "$MCPGW_ROOT/tests/promtext.mjs" "$1"
}

# metric FILE SERIES: the value of SERIES (exact name with labels) in FILE's samples, 0 when absent
metric() {
	awk -v s="$2" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == s) { print v; f = 1 } } END { if (!f) print 0 }' "$1"
}

@test "GET /metrics parses as Prometheus text and counts the requests of every responder process and the broker" {
	local before="$BATS_TEST_TMPDIR/before" after="$BATS_TEST_TMPDIR/after" models tools

	get /metrics
	assert_status 200
	[[ "$(grep -i '^content-type:' "$BATS_TEST_TMPDIR/http.headers")" == *"text/plain; version=0.0.4"* ]]
	prom_check "$BATS_TEST_TMPDIR/http.body" >"$before"
	for _ in 1 2 3; do get /v1/models; done
	for _ in 1 2; do post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT 2"}}'; done
	get /metrics
	assert_status 200
	prom_check "$BATS_TEST_TMPDIR/http.body" >"$after"
	models='mcpgw_http_requests_total{endpoint="/v1/models",method="GET",status="200"}'
	tools='mcpgw_http_requests_total{endpoint="/v1/tools",method="POST",status="200"}'
	[ $(($(metric "$after" "$models") - $(metric "$before" "$models"))) -eq 3 ]
	[ $(($(metric "$after" "$tools") - $(metric "$before" "$tools"))) -eq 2 ]
	# the first /metrics request itself, answered by health.fcgi
	[ "$(metric "$after" 'mcpgw_http_requests_total{endpoint="/metrics",method="GET",status="200"}')" -ge 1 ]
	# the broker's counts: tool calls by server, tool and outcome; the chat's round; latency histograms
	s='mcpgw_tool_calls_total{server="sqlite",tool="read_query",outcome="ok"}'
	[ $(($(metric "$after" "$s") - $(metric "$before" "$s"))) -eq 2 ]
	[ "$(metric "$after" 'mcpgw_tool_rounds_total')" -ge 1 ]
	[ "$(metric "$after" 'mcpgw_http_request_duration_seconds_count{endpoint="/v1/tools"}')" -ge 2 ]
	grep -q '^mcpgw_tool_call_duration_seconds_bucket{server="sqlite",le="+Inf"} ' "$after"
}

# metrics_as_cgi PEER [VAR=VALUE...]: health.fcgi run as plain CGI for GET /metrics with the peer a
# web server would report (REMOTE_ADDR) and the request's variables (HTTP_AUTHORIZATION=...), as the
# owner of the home (the apache-* front ends give it to MCPGW_USER: its .env is refused to anyone else)
metrics_as_cgi() {
	local owner run=() peer=$1

	shift
	owner=$(stat -c %U "$MCPGW_HOME")
	[ "$(id -u)" != 0 ] || [ "$owner" = root ] ||
		run=(setpriv --reuid="$owner" --regid="$(id -gn "$owner")" --clear-groups --)
	"${run[@]}" env -i PATH="$PATH" MCPGW_HOME="$MCPGW_HOME" MCPGW_STATE_DIR="${STATE_DIR:-$MCPGW_STATE_DIR}" \
		GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REQUEST_URI=/metrics SCRIPT_NAME= PATH_INFO=/metrics \
		REMOTE_ADDR="$peer" "$@" "$MCPGW_ROOT/cgi-bin/health.fcgi"
}

@test "GET /metrics from a peer that is not loopback is refused with 403" {
	local out

	# the check reads the peer the web server saw, never a header (X-Forwarded-For says loopback here)
	out=$(metrics_as_cgi 203.0.113.7 HTTP_X_FORWARDED_FOR=127.0.0.1)
	echo "$out"
	[[ "$out" == "Status: 403"* ]]
	[[ "$out" != *mcpgw_http_requests_total* ]]
	for peer in 127.0.0.1 127.8.9.10 ::1 ::ffff:127.0.0.1; do
		out=$(metrics_as_cgi "$peer")
		[[ "$out" == "Status: 200"* && "$out" == *mcpgw_http_requests_total* ]] || { echo "$peer: $out"; false; }
	done
	# a request that came through a proxy is never loopback, whatever the proxy's own address
	out=$(metrics_as_cgi 127.0.0.1 HTTP_X_FORWARDED_FOR=127.0.0.1)
	[[ "$out" == "Status: 403"* && "$out" != *mcpgw_http_requests_total* ]] || { echo "forwarded: $out"; false; }
	for peer in 10.0.0.1 ::2 ::ffff:10.0.0.1 128.0.0.1 ""; do
		out=$(metrics_as_cgi "$peer")
		[[ "$out" == "Status: 403"* ]] || { echo "$peer: $out"; false; }
	done
}

@test "GET /metrics: an admin key is served from any address, a key that is not admin only on loopback; keys list shows the role" {
	local dir owner run=() admin plain out

	# a state directory of its own: keys made here leave the other tests keyless
	owner=$(stat -c %U "$MCPGW_HOME")
	[ "$(id -u)" != 0 ] || [ "$owner" = root ] ||
		run=(setpriv --reuid="$owner" --regid="$(id -gn "$owner")" --clear-groups --)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-ops-keys.XXXXXX")
	chown "$owner" "$dir"
	chmod 700 "$dir"
	mkkey() {
		"${run[@]}" env -i PATH="$PATH" MCPGW_HOME="$MCPGW_HOME" MCPGW_STATE_DIR="$dir" \
			"$MCPGW_ROOT/keys/mcpgw-keys" create "$@" 2>/dev/null | grep '^sk-mcpgw-'
	}
	admin=$(mkkey ops --admin)
	plain=$(mkkey app)
	out=$("${run[@]}" env -i PATH="$PATH" MCPGW_HOME="$MCPGW_HOME" MCPGW_STATE_DIR="$dir" "$MCPGW_ROOT/keys/mcpgw-keys" list)
	echo "$out"
	grep -q "^$(echo "$admin" | cut -d- -f3) *ops *active *admin " <<<"$out"
	grep -q "^$(echo "$plain" | cut -d- -f3) *app *active *- " <<<"$out"
	# from elsewhere: the key that is not admin is refused, the admin key gets the metrics
	out=$(STATE_DIR=$dir metrics_as_cgi 203.0.113.7 HTTP_AUTHORIZATION="Bearer $plain")
	[[ "$out" == "Status: 403"* && "$out" == *'"code":"forbidden"'* && "$out" != *mcpgw_http_requests_total* ]] ||
		{ echo "plain: $out"; false; }
	out=$(STATE_DIR=$dir metrics_as_cgi 203.0.113.7 HTTP_AUTHORIZATION="Bearer $admin" HTTP_X_FORWARDED_FOR=10.1.1.1 \
		MCPGW_LOG_FILE="$dir/cgi.log")
	[[ "$out" == "Status: 200"* && "$out" == *'mcpgw_http_requests_total{endpoint="/metrics",method="GET",status="403"}'* ]] ||
		{ echo "admin: $out"; false; }
	# on loopback any key will do; once keys exist, none is no longer enough
	out=$(STATE_DIR=$dir metrics_as_cgi 127.0.0.1 HTTP_AUTHORIZATION="Bearer $plain")
	[[ "$out" == "Status: 200"* ]] || { echo "plain on loopback: $out"; false; }
	out=$(STATE_DIR=$dir metrics_as_cgi 127.0.0.1)
	[[ "$out" == "Status: 401"* ]] || { echo "no key on loopback: $out"; false; }
	# the access log names the caller by its key's id, never the key
	cat "$dir/cgi.log"
	grep -q " INFO access method=GET endpoint=/metrics status=200 key=$(echo "$admin" | cut -d- -f3) " "$dir/cgi.log"
	! grep -q -e "$admin" -e "${admin##*-}" "$dir/cgi.log"
	rm -rf "$dir"
}
