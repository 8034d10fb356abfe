#!/usr/bin/env bats
# routes.bats: every route of every responder behind the front end answers as the OpenAI API does: 404/405/411/413/500 as JSON error objects, never HTML.
#
# One table: METHOD PATH BODY STATUS CODE MESSAGE [ALLOW]. BODY: - (none, no
# Content-Length), json (a small JSON object), big (over MCPGW_MAX_BODY_BYTES:
# the responder's 413), huge (over the web server's own limit, which mcpgwctl
# sets 64 KB above it: the web server's 413, which must be JSON too).
# CODE - : a success (an object without "error"). MESSAGE: a piece of the
# error message (HEAD: no body, status and Content-Type only). MCPGW_FAULT (.env)
# makes the handlers of some routes fail inside, which must give 500
# internal_error (GET /health and GET /v1/tools go on working: mcpgwctl and the
# success rows need them). A second table (PROBES) makes the web server answer
# by itself (a malformed request line, a long URL or header, an unknown method):
# one code and one sentence per status (WEB_ERRORS) behind every front end.

load helpers

mcpgw_custom_config() {
	mcpgw_write_config || return 1
	cat >>"$MCPGW_HOME/.env" <<EOF
# nothing listens on port 9: models and embeddings never reach the internet
OPENAI_BASE_URL=http://127.0.0.1:9/v1
EMBEDDING_BASE_URL=http://127.0.0.1:9/v1
MCPGW_UPSTREAM_RETRIES=0
MCPGW_FAULT="/v1/chat/completions,/v1/embeddings,/v1/tools/{},/v1/models/{*},POST /v1/tools,HEAD /v1/tools,HEAD /v1/models,HEAD /health"
EOF
}

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

# shellcheck disable=SC2016
ROUTES='
GET     /                              -    404 unknown_url        Unknown request URL: GET /.
GET     /v1                            -    404 unknown_url        Unknown request URL: GET /v1.
GET     /v1/                           -    404 unknown_url        Unknown request URL: GET /v1/.
POST    /v1/responses                  json 404 unknown_url        Unknown request URL: POST /v1/responses.
GET     /v1/responses/resp_1           -    404 unknown_url        Unknown request URL: GET /v1/responses/resp_1.
POST    /v1/completions                json 404 unknown_url        Unknown request URL: POST /v1/completions.
POST    /metrics                       json 405 method_not_allowed Method POST is not allowed here; Allow: GET, HEAD.      GET, HEAD
GET     /metrics/x                     -    404 unknown_url        Unknown request URL: GET /metrics/x.
POST    /v1/foo                        json 404 unknown_url        Unknown request URL: POST /v1/foo.
GET     /v1/foo/bar?x=1                -    404 unknown_url        Unknown request URL: GET /v1/foo/bar.
GET     /favicon.ico                   -    404 unknown_url        Unknown request URL: GET /favicon.ico.
GET     /v1/toolsx                     -    404 unknown_url        Unknown request URL: GET /v1/toolsx.
GET     /v1/tools/a/b                  -    404 unknown_url        Unknown request URL: GET /v1/tools/a/b.
POST    /v1/embeddings/x               json 404 unknown_url        Unknown request URL: POST /v1/embeddings/x.
POST    /v1/chat/completions/x         json 404 unknown_url        Unknown request URL: POST /v1/chat/completions/x.
POST    /chat                          json 404 unknown_url        Unknown request URL: POST /chat.
GET     /v1/health                     -    404 unknown_url        Unknown request URL: GET /v1/health.
GET     /v1/chat/completions           -    405 method_not_allowed Method GET is not allowed here; Allow: POST.            POST
GET     /chat/completions              -    405 method_not_allowed Method GET is not allowed here; Allow: POST.            POST
GET     /v1/embeddings                 -    405 method_not_allowed Method GET is not allowed here; Allow: POST.            POST
PUT     /embeddings                    json 405 method_not_allowed Method PUT is not allowed here; Allow: POST.            POST
DELETE  /v1/tools                      -    405 method_not_allowed Method DELETE is not allowed here; Allow: GET, HEAD, POST. GET, HEAD, POST
POST    /v1/tools/echo                 json 405 method_not_allowed Method POST is not allowed here; Allow: GET, HEAD.      GET, HEAD
POST    /v1/models                     json 405 method_not_allowed Method POST is not allowed here; Allow: GET, HEAD.      GET, HEAD
DELETE  /models/x                      -    405 method_not_allowed Method DELETE is not allowed here; Allow: GET, HEAD.    GET, HEAD
POST    /health                        json 405 method_not_allowed Method POST is not allowed here; Allow: GET, HEAD.      GET, HEAD
POST    /v1/chat/completions           -    411 length_required    needs a body with a Content-Length header.
POST    /chat/completions              -    411 length_required    needs a body with a Content-Length header.
POST    /v1/embeddings                 -    411 length_required    needs a body with a Content-Length header.
POST    /v1/tools                      -    411 length_required    needs a body with a Content-Length header.
POST    /v1/chat/completions           big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/embeddings                 big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /embeddings                    big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/tools                      big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/chat/completions           huge 413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/tools                      huge 413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/foo                        huge 413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/chat/completions           json 500 internal_error     The server had an internal error while answering POST /v1/chat/completions
POST    /chat/completions              json 500 internal_error     The server had an internal error while answering POST /chat/completions
POST    /v1/embeddings                 json 500 internal_error     The server had an internal error while answering POST /v1/embeddings
GET     /v1/tools/echo                 -    500 internal_error     The server had an internal error while answering GET /v1/tools/echo
GET     /tools/echo                    -    500 internal_error     The server had an internal error while answering GET /tools/echo
GET     /v1/models/gpt-x               -    500 internal_error     The server had an internal error while answering GET /v1/models/gpt-x
GET     /models/org%2Fm                -    500 internal_error     The server had an internal error while answering GET /models/org%2Fm
POST    /v1/tools                      json 500 internal_error     The server had an internal error while answering POST /v1/tools
POST    /tools                         json 500 internal_error     The server had an internal error while answering POST /tools
HEAD    /v1/tools                      -    500 internal_error     -
HEAD    /v1/models                     -    500 internal_error     -
HEAD    /health                        -    500 internal_error     -
GET     /v1/models                     -    200 -                  -
GET     /models                        -    200 -                  -
GET     /v1/tools                      -    200 -                  -
GET     /tools/                        -    200 -                  -
GET     /health                        -    200 -                  -
'

# request METHOD PATH BODY [CURL-ARGS...]: one request as the table says; sets HTTP_STATUS, BODY, HEADERS
request() {
	local out="$BATS_TEST_TMPDIR/r.body" hdr="$BATS_TEST_TMPDIR/r.headers"
	local args=(-s -m 30 -o "$out" -D "$hdr" -w '%{http_code}' -X "$1")

	[ "$1" != HEAD ] || args=(-s -m 30 -o "$out" -D "$hdr" -w '%{http_code}' -I)

	case $3 in
	json) args+=(-H 'Content-Type: application/json' --data-binary '{"model":"m","input":"x","messages":[{"role":"user","content":"x"}]}') ;;
	big) head -c 6000 /dev/zero | tr '\0' 'x' | sed 's/^/{"x":"/; s/$/"}/' >"$BATS_TEST_TMPDIR/big.json"
	     args+=(-H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/big.json") ;;
	huge) head -c 200000 /dev/zero | tr '\0' 'x' | sed 's/^/{"x":"/; s/$/"}/' >"$BATS_TEST_TMPDIR/huge.json"
	     args+=(-H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/huge.json") ;;
	esac
	args+=("${@:4}") # more curl arguments
	rm -f "$out" "$hdr"
	HTTP_STATUS=$(curl "${args[@]}" "$MCPGW_URL$2") || HTTP_STATUS="curl-failed-$?"
	BODY=$(cat "$out" 2>/dev/null)
	HEADERS=$(tr -d '\r' <"$hdr" 2>/dev/null)
}

# error_type STATUS: the OpenAI "type" of an error with that status (lib/openai/wire.c's
# wire_error_type; 501 and 505 are the client's: an unknown method or HTTP version)
error_type() {
	case $1 in
	401) echo authentication_error ;;
	403) echo permission_error ;;
	429) echo rate_limit_error ;;
	501 | 505) echo invalid_request_error ;;
	5??) echo server_error ;;
	*) echo invalid_request_error ;;
	esac
}

# header NAME: the value of a response header of the last request
header() {
	sed -n "s/^$1: *//Ip" <<<"$HEADERS" | tail -n 1
}

# check_row METHOD PATH BODY STATUS CODE MESSAGE... [ALLOW]: "" when the answer is as the row says, else why not
check_row() {
	local method=$1 path=$2 body=$3 status=$4 code=$5 rest=$6 msg allow=""

	if [ "$status" = 405 ]; then
		msg=${rest%%.*}.
		allow=${rest#*.}
		allow=${allow#"${allow%%[! ]*}"}
	else
		msg=$rest
	fi
	request "$method" "$path" "$body"
	[ "$HTTP_STATUS" = "$status" ] || { echo "status $HTTP_STATUS, not $status"; return; }
	case $(header Content-Type) in
	application/json*) ;;
	*) echo "Content-Type '$(header Content-Type)', not application/json"; return ;;
	esac
	[ "$method" != HEAD ] || return 0 # no body: status and Content-Type are all there is
	if [ "$code" = - ]; then
		[ "$(json_eval '"error" in j' 2>/dev/null)" = false ] || echo "an error or not JSON, not a success"
		return
	fi
	# one node for the four fields (a node per field made this test the slowest of its file)
	local type is_err e_code e_type e_msg
	IFS=$'\t' read -r is_err e_code e_type e_msg < <(json_eval \
		'[typeof j.error.message === "string" && "param" in j.error, j.error.code, j.error.type, j.error.message].join("\t")' 2>/dev/null)
	[ "$is_err" = true ] || { echo "not an OpenAI error object"; return; }
	[ "$e_code" = "$code" ] || { echo "code $e_code, not $code"; return; }
	type=$(error_type "$status")
	[ "$e_type" = "$type" ] || { echo "type $e_type, not $type"; return; }
	[[ "$e_msg" == *"$msg"* ]] || { echo "message '$e_msg' lacks '$msg'"; return; }
	if [ -n "$allow" ] && [ "$(header Allow)" != "$allow" ]; then
		echo "Allow '$(header Allow)', not '$allow'"
	fi
}

@test "every route: 404/405/411/413/500 and successes, as the route table says, in JSON with OpenAI's error objects" {
	local method path body status code rest why failures=0 n=0

	while read -r method path body status code rest; do
		[ -n "$method" ] || continue
		n=$((n + 1))
		why=$(check_row "$method" "$path" "$body" "$status" "$code" "$rest")
		if [ -n "$why" ]; then
			echo "$method $path ($body): $why: $(head -c 300 <<<"$BODY")" >&2
			failures=$((failures + 1))
		fi
	done <<<"$ROUTES"
	echo "# ${MCPGW_FRONTEND:-lighttpd}: $n rows, $failures failed" >&3
	[ "$n" -ge 40 ] && [ "$failures" = 0 ]
}

@test "no path under the gateway's prefix answers HTML: odd paths and methods all get JSON" {
	local method path failures=0

	for path in / /index.html /v1 /v1/ /v1/.. /v1/%2e%2e/x /.htaccess /cgi-bin/health.fcgi /cgi-bin/ \
		/server-status /v1/models/org%2Fm/x '/v1/models/%zz' /health/x /v1/tools/%00 /a/b/c/d \
		'/v1/chat/completions?stream=true' /lighttpd.conf /var/broker.sock; do
		for method in GET POST DELETE OPTIONS PATCH; do
			if [ "$method" = POST ]; then request POST "$path" json; else request "$method" "$path" -; fi
			# OPTIONS on a routed path: 204, no body (Apache drops its Content-Type): nothing to be HTML
			[ "$HTTP_STATUS" = 204 ] && [ "$method" = OPTIONS ] && [ -z "$BODY" ] && continue
			case $(header Content-Type) in
			application/json*) [[ "$BODY" != *"<"[hH]* ]] && continue ;;
			esac
			echo "$method $path: $HTTP_STATUS $(header Content-Type): $(head -c 200 <<<"$BODY")" >&2
			failures=$((failures + 1))
		done
	done
	[ "$failures" = 0 ]
}

# The errors the web server answers by itself, on requests it may not even have
# parsed: one code and one sentence per status behind every front end (README.md,
# Errors). STATUS CODE MESSAGE (a piece of it).
# shellcheck disable=SC2016
WEB_ERRORS='
400 invalid_request      The web server could not parse the request (a malformed request line, header, Content-Length or URL)
405 method_not_allowed   is not allowed here
411 length_required      needs a body with a Content-Length header.
413 request_too_large    The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
414 uri_too_long         The request line or headers are larger than the web server accepts.
417 expectation_failed   Expect header (only 100-continue is supported).
431 headers_too_large    The request line or headers are larger than the web server accepts.
501 unsupported_method   The web server does not support this method
505 http_version_not_supported The web server does not support this HTTP version.
'

# One probe a row: NAME STATUSES (those a front end may answer, "|" between; the
# front end's own when it differs: FRONTEND=STATUS, "|" between). What each sends: probe().
PROBES='
long_header   400|431
long_url      414|431
garbage_line  400
bad_length    400
h2_preface    200
method_foo    lighttpd=501|lighttpd-cgi=501|405
trace         405
expect_foo    lighttpd=200|lighttpd-cgi=200|417
http_3        lighttpd=505|lighttpd-cgi=505|200
'

# raw DATA: DATA (printf %b) on a fresh connection; sets HTTP_STATUS, HEADERS, BODY from the answer
raw() {
	local host=${MCPGW_LISTEN%:*} port=${MCPGW_LISTEN##*:} out="$BATS_TEST_TMPDIR/raw.out"

	# fd 7: bats keeps 3 for its own output
	exec 7<>"/dev/tcp/$host/$port" || { HTTP_STATUS=connect-failed; return; }
	printf '%b' "$1" >&7
	timeout 5 cat <&7 | tr -d '\r' >"$out"
	exec 7<&-
	HTTP_STATUS=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$out")
	HEADERS=$(sed -n '2,/^$/p' "$out")
	BODY=$(sed '1,/^$/d' "$out")
}

# probe NAME: one request of PROBES
probe() {
	local long

	long=$(head -c 10000 /dev/zero | tr '\0' a)
	case $1 in
	long_header) request GET /v1/models - -H "X-Long: ${long:0:9000}" ;;
	long_url) request GET "/v1/$long" - ;;
	garbage_line) raw 'GARBAGE\r\n\r\n' ;;
	# a Host the gateway serves (a foreign one is 403: browser.bats)
	bad_length) raw "POST /v1/tools HTTP/1.1\r\nHost: $MCPGW_LISTEN\r\nContent-Length: abc\r\nConnection: close\r\n\r\n" ;;
	h2_preface) request GET /v1/models - --http2-prior-knowledge ;; # HTTP/2 without an upgrade
	method_foo) request FOO /v1/models - ;;
	trace) request TRACE /v1/models - ;;
	expect_foo) request GET /v1/models - -H 'Expect: foo' ;;
	http_3) raw "GET /v1/models HTTP/3.0\r\nHost: $MCPGW_LISTEN\r\nConnection: close\r\n\r\n" ;;
	esac
}

@test "the web server's own errors (a malformed request line, header or length, a long URL or header, an unknown method) and HTTP/2: JSON, one code and sentence per status" {
	local name statuses want s status code msg fe=${MCPGW_FRONTEND:-lighttpd} failures=0 n=0

	[ "$fe" != cgi ] || fe=apache-cgi
	while read -r name statuses; do
		[ -n "$name" ] || continue
		n=$((n + 1))
		probe "$name"
		# the statuses this front end may answer: its own entry, else those without a front end
		want=$(tr '|' '\n' <<<"$statuses" | sed -n "s/^$fe=//p")
		[ -n "$want" ] || want=$(tr '|' '\n' <<<"$statuses" | grep -v =)
		if ! grep -qx "$HTTP_STATUS" <<<"$want"; then
			echo "$name: status $HTTP_STATUS, not $(tr "\n" " " <<<"$want"): $(head -c 300 <<<"$BODY")" >&2
			failures=$((failures + 1))
			continue
		fi
		case $(header Content-Type) in
		application/json*) ;;
		*) echo "$name: $HTTP_STATUS with Content-Type '$(header Content-Type)': $(head -c 300 <<<"$BODY")" >&2
		   failures=$((failures + 1)); continue ;;
		esac
		[ "$HTTP_STATUS" -ge 400 ] || continue # a success: the request went through
		read -r s code msg < <(grep "^$HTTP_STATUS " <<<"$WEB_ERRORS")
		[ -n "$s" ] || { echo "$name: $HTTP_STATUS: no row in WEB_ERRORS" >&2; failures=$((failures + 1)); continue; }
		if [ "$(json_eval 'j.error.code')" != "$code" ] || [ "$(json_eval 'j.error.type')" != "$(error_type "$s")" ] ||
			[[ "$(json_eval 'j.error.message')" != *"$msg"* ]]; then
			echo "$name: $HTTP_STATUS: not $code/$(error_type "$s")/'$msg': $BODY" >&2
			failures=$((failures + 1))
		fi
	done <<<"$PROBES"
	echo "# $fe: $n probes, $failures failed" >&3
	[ "$failures" = 0 ]
}

# A chunked upload (Transfer-Encoding: chunked, no Content-Length) works behind
# every front end: lighttpd, mod_fcgid and mod_proxy_fcgi pass on a length, mod_cgid
# the de-chunked body up to its end, which the responder reads (README.md, Deployment).
# MCPGW_FAULT names POST /v1/tools: its 500 comes after the body was read; the
# same upload over MCPGW_MAX_BODY_BYTES is the 413.
@test "a chunked POST without Content-Length: read behind every front end (not 411); over MCPGW_MAX_BODY_BYTES 413" {
	local fe=${MCPGW_FRONTEND:-lighttpd}

	request POST /v1/tools - -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary '{"tool":"no_such_tool","arguments":{}}'
	[ "$HTTP_STATUS" = 500 ] && [ "$(json_eval 'j.error.code')" = internal_error ] ||
		{ echo "$fe: $HTTP_STATUS: $BODY" >&2; return 1; }
	request POST /v1/tools big -H 'Transfer-Encoding: chunked'
	[ "$HTTP_STATUS" = 413 ] && [ "$(json_eval 'j.error.code')" = request_too_large ] ||
		{ echo "$fe: $HTTP_STATUS: $BODY" >&2; return 1; }
	[[ "$(json_eval 'j.error.message')" == "The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes)." ]]
}
