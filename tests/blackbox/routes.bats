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
# success rows need them).

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
GET     /metrics                       -    404 unknown_url        Unknown request URL: GET /metrics.
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
POST    /v1/chat/completions           -    411 length_required    needs a request body with a Content-Length header
POST    /chat/completions              -    411 length_required    needs a request body with a Content-Length header
POST    /v1/embeddings                 -    411 length_required    needs a request body with a Content-Length header
POST    /v1/tools                      -    411 length_required    needs a request body with a Content-Length header
POST    /v1/chat/completions           big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/embeddings                 big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /embeddings                    big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/tools                      big  413 request_too_large  The request body is larger than MCPGW_MAX_BODY_BYTES (4096 bytes).
POST    /v1/chat/completions           huge 413 request_too_large  larger than the web server accepts
POST    /v1/tools                      huge 413 request_too_large  larger than the web server accepts
POST    /v1/foo                        huge 413 request_too_large  larger than the web server accepts
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

# request METHOD PATH BODY: one request as the table says; sets HTTP_STATUS, BODY, HEADERS
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
	rm -f "$out" "$hdr"
	HTTP_STATUS=$(curl "${args[@]}" "$MCPGW_URL$2") || HTTP_STATUS="curl-failed-$?"
	BODY=$(cat "$out" 2>/dev/null)
	HEADERS=$(tr -d '\r' <"$hdr" 2>/dev/null)
}

# header NAME: the value of a response header of the last request
header() {
	sed -n "s/^$1: *//Ip" <<<"$HEADERS" | tail -n 1
}

# check_row METHOD PATH BODY STATUS CODE MESSAGE... [ALLOW]: "" when the answer is as the row says, else why not
check_row() {
	local method=$1 path=$2 body=$3 status=$4 code=$5 rest=$6 msg allow=""

	if [ "$body" = huge ] && [ "${MCPGW_FRONTEND:-lighttpd}" = apache-proxy-fcgi ]; then
		# mod_proxy_fcgi streams the body to the responder, which answers before Apache reads
		# past LimitRequestBody: the responder's own 413 (a route that takes a body), or 404
		case $path in
		/v1/foo) status=404 code=unknown_url rest="Unknown request URL: POST /v1/foo." ;;
		*) rest="is larger than MCPGW_MAX_BODY_BYTES (4096 bytes)" ;;
		esac
	fi

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
	[ "$(json_eval 'typeof j.error.message === "string" && "param" in j.error')" = true ] 2>/dev/null ||
		{ echo "not an OpenAI error object"; return; }
	[ "$(json_eval 'j.error.code')" = "$code" ] || { echo "code $(json_eval 'j.error.code'), not $code"; return; }
	local type=invalid_request_error
	[ "$status" -lt 500 ] || type=server_error
	[ "$(json_eval 'j.error.type')" = "$type" ] || { echo "type $(json_eval 'j.error.type'), not $type"; return; }
	[[ "$(json_eval 'j.error.message')" == *"$msg"* ]] || { echo "message '$(json_eval 'j.error.message')' lacks '$msg'"; return; }
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
			case $(header Content-Type) in
			application/json*) [[ "$BODY" != *"<"[hH]* ]] && continue ;;
			esac
			echo "$method $path: $HTTP_STATUS $(header Content-Type): $(head -c 200 <<<"$BODY")" >&2
			failures=$((failures + 1))
		done
	done
	[ "$failures" = 0 ]
}
