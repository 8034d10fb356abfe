#!/usr/bin/env bats
# browser.bats: a web page in the operator's browser cannot use the gateway (issue 14 case 2): JSON bodies only, configured Host names only, Origin on MCPGW_CORS_ORIGINS only; legitimate browser clients (CORS, preflights, the openai SDK) work, behind every front end.

load helpers

APP_ORIGIN=http://app.test:5173

mcpgw_custom_config() {
	mcpgw_write_config || return 1
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model" "MCPGW_CORS_ORIGINS=$APP_ORIGIN, https://other.test" \
		"MCPGW_ALLOWED_HOSTS=gw.test"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# req METHOD PATH [CURL-ARGS...]: one request; sets HTTP_STATUS, BODY, HEADERS (CR stripped)
req() {
	local out="$BATS_TEST_TMPDIR/r.body" hdr="$BATS_TEST_TMPDIR/r.headers"

	rm -f "$out" "$hdr"
	HTTP_STATUS=$(curl -s -m 30 -o "$out" -D "$hdr" -w '%{http_code}' -X "$1" "${@:3}" "$MCPGW_URL$2") ||
		HTTP_STATUS="curl-failed-$?"
	BODY=$(cat "$out" 2>/dev/null)
	HEADERS=$(tr -d '\r' <"$hdr" 2>/dev/null)
}

# header NAME: the value of a response header of the last request ("" if none)
header() {
	sed -n "s/^$1: *//Ip" <<<"$HEADERS" | tail -n 1
}

# rows: the rows of the table "notes" in the sqlite server's database
rows() {
	sqlite3 "$MCPGW_HOME/test.db" 'SELECT count(*) FROM notes'
}

WRITE='{"tool":"write_query","arguments":{"query":"INSERT INTO notes(body) VALUES (\"from a web page\")"}}'

@test "setup: the notes table" {
	post /v1/tools '{"tool":"create_table","arguments":{"query":"CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)"}}'
	assert_status 200
	[ "$(rows)" = 0 ]
}

@test "a web page's no-cors POST (text/plain, with its Origin) does not run write_query" {
	# fetch(gateway, {method: "POST", mode: "no-cors", body: '{"tool":"write_query",...}'})
	req POST /v1/tools -H 'Origin: https://evil.example' -H 'Content-Type: text/plain;charset=UTF-8' \
		-H 'Sec-Fetch-Mode: no-cors' --data-binary "$WRITE"
	assert_openai_error 403 origin_not_allowed
	assert_json 'j.error.type === "permission_error" && j.error.message.includes("MCPGW_CORS_ORIGINS")'
	[ -z "$(header Access-Control-Allow-Origin)" ]
	[ "$(rows)" = 0 ]
}

@test "a body that is not application/json gets 415 and never runs, whoever sends it" {
	# text/plain: the no-cors type, even from a page we allow (or with the Origin stripped)
	for origin in "$APP_ORIGIN" ""; do
		req POST /v1/tools ${origin:+-H "Origin: $origin"} -H 'Content-Type: text/plain;charset=UTF-8' --data-binary "$WRITE"
		assert_openai_error 415 unsupported_content_type
		assert_json 'j.error.type === "invalid_request_error"'
		assert_json "j.error.message.startsWith(\"Unsupported content type: 'text/plain;charset=UTF-8'.\")"
	done
	# the other CORS-safelisted types, and none at all (a fetch body of an ArrayBuffer or a typeless Blob)
	req POST /v1/tools -H 'Content-Type: multipart/form-data; boundary=x' --data-binary "$WRITE"
	assert_openai_error 415 unsupported_content_type
	req POST /v1/tools -H 'Content-Type:' --data-binary "$WRITE"
	assert_openai_error 415 unsupported_content_type
	assert_json 'j.error.message.includes("no Content-Type header")'
	# curl -d (application/x-www-form-urlencoded): the message says what to add
	req POST /v1/tools -d "$WRITE"
	assert_openai_error 415 unsupported_content_type
	assert_json "j.error.message.includes(\"add -H 'Content-Type: application/json'\")"
	# the chat and embeddings routes the same
	req POST /v1/chat/completions -H 'Content-Type: text/plain' --data-binary '{"messages":[{"role":"user","content":"x"}]}'
	assert_openai_error 415 unsupported_content_type
	req POST /v1/embeddings -H 'Content-Type: text/plain' --data-binary '{"model":"m","input":"x"}'
	assert_openai_error 415 unsupported_content_type
	[ "$(rows)" = 0 ]
	# JSON, with a charset: runs
	req POST /v1/tools -H 'Content-Type: application/json; charset=utf-8' --data-binary "$WRITE"
	assert_status 200
	[ "$(rows)" = 1 ]
}

@test "a foreign Host (DNS rebinding) is refused on every route, before anything runs" {
	local port=${MCPGW_LISTEN##*:} path

	for path in /health /v1/tools /v1/models /v1/models/sim-model /tools /v1/tools/write_query /v1/nope; do
		req GET "$path" -H "Host: evil.example:$port"
		assert_openai_error 403 host_not_allowed
		assert_json "j.error.type === 'permission_error' && j.error.message.includes('evil.example:$port')"
		assert_json 'j.error.message.includes("MCPGW_ALLOWED_HOSTS")'
	done
	req POST /v1/chat/completions -H "Host: evil.example:$port" -H 'Content-Type: application/json' \
		--data-binary '{"messages":[{"role":"user","content":"x"}]}'
	assert_openai_error 403 host_not_allowed
	req POST /v1/tools -H "Host: evil.example:$port" -H 'Content-Type: application/json' --data-binary "$WRITE"
	assert_openai_error 403 host_not_allowed
	req OPTIONS /v1/tools -H "Host: evil.example:$port" -H "Origin: http://evil.example:$port" \
		-H 'Access-Control-Request-Method: POST'
	assert_openai_error 403 host_not_allowed
	[ "$(rows)" = 1 ]
	# a look-alike of a served name is foreign too
	req GET /health -H "Host: localhost.evil.example:$port"
	assert_openai_error 403 host_not_allowed
}

@test "served Host names: loopback names on any port, MCPGW_ALLOWED_HOSTS, no Host (HTTP/1.0)" {
	local h

	for h in "localhost:${MCPGW_LISTEN##*:}" "127.0.0.1:${MCPGW_LISTEN##*:}" "LOCALHOST" "gw.test:443" "[::1]:1"; do
		req GET /health -H "Host: $h"
		assert_status 200
	done
	req GET /health -0 -H 'Host:'
	assert_status 200
}

@test "an allowed Origin gets CORS headers on every answer, errors included" {
	req GET /v1/tools -H "Origin: $APP_ORIGIN"
	assert_status 200
	[ "$(header Access-Control-Allow-Origin)" = "$APP_ORIGIN" ]
	[[ "$(header Vary)" == *Origin* ]]
	[[ "$(header Access-Control-Expose-Headers)" == *X-Request-Id* ]]
	[[ "$(header Access-Control-Expose-Headers)" == *Retry-After* ]]
	[ -z "$(header Access-Control-Allow-Credentials)" ]
	# the second entry of the list, and an error answer (a browser client must read it too)
	req GET /v1/nope -H 'Origin: https://other.test'
	assert_openai_error 404 unknown_url
	[ "$(header Access-Control-Allow-Origin)" = https://other.test ]
	req POST /v1/tools -H "Origin: $APP_ORIGIN" -H 'Content-Type: application/json' --data-binary '{"tool":"no_such_tool"}'
	[ "$(header Access-Control-Allow-Origin)" = "$APP_ORIGIN" ]
	# without Origin: no grant, but the answer varies by it
	req GET /v1/tools
	[ -z "$(header Access-Control-Allow-Origin)" ]
	[[ "$(header Vary)" == *Origin* ]]
}

@test "a preflight answers 204 on every route with the route's methods and the SDK's headers" {
	local acrh='authorization,content-type,openai-organization,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout'
	local row path methods

	while read -r path methods; do
		[ -n "$path" ] || continue
		req OPTIONS "$path" -H "Origin: $APP_ORIGIN" -H "Access-Control-Request-Method: ${methods##*, }" \
			-H "Access-Control-Request-Headers: $acrh"
		assert_status 204
		[ "$(header Access-Control-Allow-Origin)" = "$APP_ORIGIN" ] || { echo "$path: $HEADERS" >&2; false; }
		[ "$(header Access-Control-Allow-Methods)" = "$methods" ] || { echo "$path: $HEADERS" >&2; false; }
		[ "$(header Access-Control-Allow-Headers | tr -d ' ')" = "$acrh" ] || { echo "$path: $HEADERS" >&2; false; }
		[ "$(header Access-Control-Max-Age)" = 7200 ]
		[ "$(header Allow)" = "$methods, OPTIONS" ]
		[ -z "$(header Access-Control-Allow-Credentials)" ]
	done <<'EOF'
/v1/chat/completions POST
/chat/completions POST
/v1/tools GET, HEAD, POST
/v1/tools/read_query GET, HEAD
/v1/models GET, HEAD
/v1/models/sim-model GET, HEAD
/v1/embeddings POST
/health GET, HEAD
EOF
	# a header the gateway does not take is not granted (the browser then stops)
	req OPTIONS /v1/tools -H "Origin: $APP_ORIGIN" -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: content-type,x-evil'
	assert_status 204
	[ "$(header Access-Control-Allow-Headers)" = content-type ]
	# a plain OPTIONS (no Origin): 204 with Allow, no grants; an unknown path: 404
	req OPTIONS /v1/models
	assert_status 204
	[ "$(header Allow)" = "GET, HEAD, OPTIONS" ]
	[ -z "$(header Access-Control-Allow-Methods)" ]
	req OPTIONS /v1/nope -H "Origin: $APP_ORIGIN" -H 'Access-Control-Request-Method: POST'
	assert_openai_error 404 unknown_url
}

@test "a foreign Origin is refused: preflight, GET and POST" {
	req OPTIONS /v1/tools -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: content-type'
	assert_openai_error 403 origin_not_allowed
	[ -z "$(header Access-Control-Allow-Origin)" ]
	for origin in https://evil.example null "$APP_ORIGIN.evil.example" http://app.test:5174 https://app.test:5173; do
		req GET /v1/tools -H "Origin: $origin"
		assert_openai_error 403 origin_not_allowed
	done
	req POST /v1/tools -H 'Origin: https://evil.example' -H 'Content-Type: application/json' --data-binary "$WRITE"
	assert_openai_error 403 origin_not_allowed
	[ "$(rows)" = 1 ]
}

@test "the openai npm SDK, as a page of an allowed origin runs it (preflights, CORS checks): chat, stream, tools" {
	run node "$MCPGW_ROOT/tests/blackbox/browser_sdk.mjs" "$MCPGW_URL" "$APP_ORIGIN"
	echo "$output"
	[ "$status" -eq 0 ]
	BODY=$output
	assert_json 'typeof j.chat === "string" && j.chat.length > 0 && j.streamed.length > 0'
	assert_json 'j.tools > 0 && j.ran === "tool.result"'
	# every call of the SDK needed a preflight (Authorization, X-Stainless-*): all were granted
	assert_json 'j.preflights.length === 4 && j.preflights.every(p => p.headers.includes("authorization"))'
	assert_json 'j.preflights.some(p => p.headers.includes("x-stainless-retry-count"))'
	# the same page's SDK from a foreign origin fails at its first preflight
	run node "$MCPGW_ROOT/tests/blackbox/browser_sdk.mjs" "$MCPGW_URL" https://evil.example
	[ "$status" -eq 1 ]
	[[ "$output" == *"CORS: preflight of POST"*"status 403"* ]]
}
