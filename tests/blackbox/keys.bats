#!/usr/bin/env bats
# keys.bats: API keys (issue 14): loopback only without keys, 401 without or with a wrong key, mcpgwctl keys create/list/revoke, a key restricted to the SQLite server in /v1/tools and in a chat, revocation seen by every responder process at once, rate limits, usage.

load helpers
mcpgw_load_sim

# the sqlite server and server-everything; three tools.fcgi processes (a revoked key must be refused by each);
# X-Forwarded-For from this host names the client in the log
mcpgw_custom_config() {
	mcpgw_write_config || return 1
	printf 'MCPGW_RESPONDER_PROCS=tools:3\nMCPGW_TRUSTED_PROXIES=127.0.0.1\n' >>"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() { mcpgw_setup_file_with_sim; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# kreq KEY METHOD PATH [BODY] [HEADER...]: one request with "Authorization: Bearer KEY" (KEY "-": none)
# and the cookie canary; sets HTTP_STATUS, BODY, HEADERS; the response is kept (keep_response)
kreq() {
	local key=$1 method=$2 path=$3 body=${4:-} out="$BATS_TEST_TMPDIR/k.body" hdr="$BATS_TEST_TMPDIR/k.headers"
	local args=(-s -m 30 -o "$out" -D "$hdr" -w '%{http_code}' -X "$method")

	shift 4 2>/dev/null || shift $#
	[ "$key" = - ] || args+=(-H "Authorization: Bearer $key")
	args+=(-H "Cookie: mcpgw_session=$CANARY_COOKIE")  # the run's cookie canary (helpers.bash)
	[ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
	for h in "$@"; do args+=(-H "$h"); done
	rm -f "$out" "$hdr"
	HTTP_STATUS=$(curl "${args[@]}" "$MCPGW_URL$path") || HTTP_STATUS="curl-failed-$?"
	BODY=$(cat "$out" 2>/dev/null)
	HEADERS=$(cat "$hdr" 2>/dev/null)
	keep_response "$method $path" "$hdr" "$out"
}

# keys ARGS...: mcpgwctl keys ARGS (stdout in output)
keys() { run sh "$MCPGW_ROOT/deploy/mcpgwctl" keys "$@"; }

# key_id KEY: the public id inside a minted key
key_id() { echo "$1" | cut -d- -f3; }

@test "without any key: loopback clients are served; a forwarded request, or one from elsewhere, gets 403 loopback_only" {
	wait_server_state sqlite ready
	wait_server_state everything ready
	kreq - GET /v1/tools
	assert_status 200
	# a request that came through a proxy is never loopback, whatever it claims
	kreq - GET /v1/tools "" "X-Forwarded-For: 203.0.113.9"
	assert_openai_error 403 loopback_only
	kreq - GET /v1/tools "" "X-Forwarded-For: 127.0.0.1"
	assert_openai_error 403 loopback_only
	kreq - POST /v1/tools '{"tool":"list_tables","arguments":{}}' "X-Real-IP: 198.51.100.1"
	assert_openai_error 403 loopback_only
	kreq - GET /health "" "Forwarded: for=192.0.2.60"
	assert_openai_error 403 loopback_only
	# the trusted proxy's X-Forwarded-For names the client in the log
	grep -q "from 203.0.113.9: 403" "$MCPGW_STATE_DIR/responders.log"
}

@test "mcpgwctl refuses a listen address that is not loopback while no key exists, and warns of keys over plain HTTP" {
	local home

	home=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-keys.XXXXXX")
	# (the check comes before any front end starts: lighttpd's, which needs no user switch, stands for all)
	run env MCPGW_HOME="$home" MCPGW_STATE_DIR="$home/var" MCPGW_LISTEN="0.0.0.0:${MCPGW_LISTEN##*:}" \
		MCPGW_FRONTEND=lighttpd sh "$MCPGW_ROOT/deploy/mcpgwctl" start
	[ "$status" = 1 ]
	[[ "$output" == *"is not a loopback address and no API key is configured"* ]]
	# with a key (MCPGW_API_KEYS): the warning, then the start stops at the port in use (nothing starts)
	run env MCPGW_HOME="$home" MCPGW_STATE_DIR="$home/var" MCPGW_LISTEN="0.0.0.0:${MCPGW_LISTEN##*:}" \
		MCPGW_FRONTEND=lighttpd MCPGW_API_KEYS=abcdefghijklmnop0123 sh "$MCPGW_ROOT/deploy/mcpgwctl" start
	[ "$status" = 1 ]
	[[ "$output" == *"warning: clients send their API keys in clear over plain HTTP"* ]]
	[[ "$output" == *"in use by another program"* ]]
	rm -rf "$home"
}

# presence HINT: the key hint's presence word (lib/core/changehint.h: 0 unknown, 1 none, 2 some)
presence() { od -An -tu4 -j16 -N4 "$1" | tr -d ' '; }

@test "while no key exists the responders read no state store; a key made under a hint file made anew is still seen" {
	local pids p early

	kreq - GET /v1/tools
	assert_status 200
	# the store was read once and has never held a key: every process may skip it from now on
	[ "$(presence "$MCPGW_STATE_DIR/keys.hint")" = 1 ]
	for i in $(seq 12); do kreq - GET /v1/tools; assert_status 200; done
	# no responder process keeps the state store open (nor any SQLite library mapped in for it)
	pids=$(sed -n 's/.* tools\.fcgi\[\([0-9]*\)\] .*/\1/p' "$MCPGW_STATE_DIR/responders.log" | sort -u)
	[ -n "$pids" ]
	for p in $pids; do
		! ls -l "/proc/$p/fd" 2>/dev/null | grep -q "state.db"
	done
	# an operator removes the hint (or restores the state directory without it): a key made then is
	# still seen within a second by every process that had learned "no key"
	rm "$MCPGW_STATE_DIR/keys.hint"
	keys create early
	[ "$status" = 0 ]
	early=$(echo "$output" | grep '^sk-mcpgw-')
	[ "$(presence "$MCPGW_STATE_DIR/keys.hint")" = 2 ]
	sleep 1.2
	for i in $(seq 12); do
		kreq - GET /v1/tools
		assert_openai_error 401 invalid_api_key
	done
	kreq "$early" GET /v1/tools
	assert_status 200
	keys revoke "$(key_id "$early")"
	[ "$status" = 0 ]
}

@test "keys create prints the key once; list shows it; the store holds only its hash" {
	keys create alice
	[ "$status" = 0 ]
	ALICE=$(echo "$output" | grep '^sk-mcpgw-')
	[[ "$ALICE" =~ ^sk-mcpgw-[A-Za-z0-9]{12}-[A-Za-z0-9]{43}$ ]]
	echo "$ALICE" >"$MCPGW_HOME/alice.key"
	keys list
	[ "$status" = 0 ]
	[[ "$output" == *"$(key_id "$ALICE")"*alice*active* ]]
	[[ "$output" != *"$ALICE"* ]]
	# the secret is nowhere in the state directory
	! grep -rqa "${ALICE##*-}" "$MCPGW_STATE_DIR"
	keys create
	[ "$status" = 2 ]
	keys create x --rpm zero
	[ "$status" = 2 ]
	keys create x --expires 2001-01-01
	[ "$status" = 2 ]
}

@test "with a key: every endpoint wants it: 401 invalid_api_key in OpenAI's words without it or with a wrong one" {
	local alice wrong

	alice=$(cat "$MCPGW_HOME/alice.key")
	# one character off: the last changed (to x, or to y when it is x: a key ends in x once in 62)
	if [ "${alice: -1}" = x ]; then wrong="${alice%?}y"; else wrong="${alice%?}x"; fi
	for p in /v1/tools /v1/models /health; do
		kreq - GET "$p"
		assert_openai_error 401 invalid_api_key
		assert_json 'j.error.message.startsWith("You didn'"'"'t provide an API key.")'
		kreq "$wrong" GET "$p"
		assert_openai_error 401 invalid_api_key
		assert_json 'j.error.message.startsWith("Incorrect API key provided: ")'
		[[ "$BODY" != *"${alice##*-}"* ]]
		kreq "$alice" GET "$p"
		assert_status 200
	done
	kreq - POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}]}'
	assert_openai_error 401 invalid_api_key
	kreq sk-proj-not-ours GET /v1/tools
	assert_openai_error 401 invalid_api_key
	# Azure OpenAI's clients send it as api-key
	kreq - GET /v1/tools "" "api-key: $alice"
	assert_status 200
	kreq - GET /v1/tools "" "Authorization: Basic Zm9vOmJhcg=="
	assert_openai_error 401 invalid_api_key
}

@test "a key restricted to the SQLite server sees and runs only its tools in /v1/tools" {
	local sq

	keys create sqlonly --servers sqlite
	[ "$status" = 0 ]
	sq=$(echo "$output" | grep '^sk-mcpgw-')
	echo "$sq" >"$MCPGW_HOME/sq.key"
	kreq "$sq" GET /v1/tools
	assert_status 200
	assert_json 'j.data.length === 6 && j.data.every(t => t.server === "sqlite")'
	kreq "$sq" GET '/v1/tools?format=openai'
	assert_json 'j.data.length === 6 && !j.data.some(t => t.function.name === "echo")'
	kreq "$sq" POST /v1/tools '{"tool":"list_tables","arguments":{}}'
	assert_status 200
	kreq "$sq" POST /v1/tools '{"tool":"echo","arguments":{"message":"hi"}}'
	assert_openai_error 403 tool_not_allowed
	assert_json 'j.error.message.includes("echo")'
	kreq "$sq" GET /v1/tools/echo
	assert_openai_error 403 tool_not_allowed
	kreq "$sq" POST /v1/tools '{"tool":"no_such_tool","arguments":{}}'
	assert_openai_error 404 tool_not_found
	# an unrestricted key sees both servers
	kreq "$(cat "$MCPGW_HOME/alice.key")" GET /v1/tools
	assert_json 'j.data.some(t => t.server === "everything")'
}

@test "inside a chat completion the restricted key is offered only the SQLite tools; a call of another gets an error result" {
	local sq

	sq=$(cat "$MCPGW_HOME/sq.key")
	sim_reset
	sim_script '[{"tool_calls":[{"name":"echo","arguments":{"message":"leak"}},{"name":"list_tables","arguments":{}}]},{"content":"done"}]'
	kreq "$sq" POST /v1/chat/completions '{"messages":[{"role":"user","content":"go"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "done"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 2'
	assert_json 'j[0].body.tools.length === 6 && !j[0].body.tools.some(t => t.function.name === "echo")'
	assert_json 'j[1].body.messages.filter(m => m.role === "tool").length === 2'
	assert_json 'j[1].body.messages.find(m => m.role === "tool" && m.content.includes("does not allow the tool '"'"'echo'"'"'")) !== undefined'
	assert_json '!j[1].body.messages.some(m => m.role === "tool" && m.content.includes("leak"))'
}

@test "a revoked key is refused on the very next request, by every responder process" {
	local k id i pids burst

	keys create doomed
	k=$(echo "$output" | grep '^sk-mcpgw-')
	id=$(key_id "$k")
	# every tools.fcgi process has the key in its cache: bursts of requests in parallel until more than
	# one process has loaded the keys (a web server may hand a short burst to one process), at most 20
	for burst in $(seq 1 20); do
		for i in $(seq 1 12); do
			curl -s -o /dev/null -H "Authorization: Bearer $k" "$MCPGW_URL/v1/tools?i=$burst-$i" &
		done
		wait
		pids=$(grep -o 'tools.fcgi\[[0-9]*\] DEBUG API keys: generation' "$MCPGW_STATE_DIR/responders.log" | sort -u | wc -l)
		[ "$pids" -lt 2 ] || break
	done
	kreq "$k" GET /v1/tools
	assert_status 200
	keys revoke "$id"
	[ "$status" = 0 ]
	[[ "$output" == *"revoked key $id"* ]]
	: >"$MCPGW_HOME/after"
	for i in $(seq 1 12); do
		curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $k" "$MCPGW_URL/v1/tools?j=$i" >>"$MCPGW_HOME/after" &
	done
	wait
	[ "$(grep -c '^401$' "$MCPGW_HOME/after")" = 12 ]
	kreq "$k" POST /v1/tools '{"tool":"list_tables","arguments":{}}'
	assert_openai_error 401 invalid_api_key
	# more than one process answered for the key (each reloaded the keys when it saw the revocation);
	# mod_fcgid serves a burst from the one process it has (it starts more only under longer load)
	pids=$(grep -o 'tools.fcgi\[[0-9]*\] DEBUG API keys: generation' "$MCPGW_STATE_DIR/responders.log" | sort -u | wc -l)
	[ "$pids" -ge 2 ] || [ "${MCPGW_FRONTEND:-lighttpd}" = apache-fcgid ]
	keys list
	[[ "$output" == *"$id"*doomed*revoked* ]]
	# the other keys go on working
	kreq "$(cat "$MCPGW_HOME/alice.key")" GET /v1/tools
	assert_status 200
}

@test "over its requests per minute a key gets 429 rate_limit_exceeded with Retry-After, in every process" {
	local k

	# the window is a fixed minute: not across its end
	[ "$(date +%S | sed 's/^0//')" -lt 54 ] || sleep 7
	keys create limited --rpm 3
	k=$(echo "$output" | grep '^sk-mcpgw-')
	for i in 1 2 3; do
		kreq "$k" GET /v1/tools
		assert_status 200
	done
	kreq "$k" GET /v1/tools
	assert_openai_error 429 rate_limit_exceeded
	grep -qi '^Retry-After: [0-9]' <<<"$HEADERS"
	[ "$(grep -i '^Retry-After:' <<<"$HEADERS" | tr -dc 0-9)" -le 60 ]
	# the window is the key's, on every endpoint
	kreq "$k" GET /health
	assert_openai_error 429 rate_limit_exceeded
	kreq "$(cat "$MCPGW_HOME/alice.key")" GET /v1/tools
	assert_status 200
}

@test "over its tool calls or tokens per minute a key gets 429 before the next request that would spend them" {
	past_the_front_end # the same counters as the requests per minute just before
	local k

	[ "$(date +%S | sed 's/^0//')" -lt 50 ] || sleep 11
	keys create calls --tcpm 2
	k=$(echo "$output" | grep '^sk-mcpgw-')
	for i in 1 2; do
		kreq "$k" POST /v1/tools '{"tool":"list_tables","arguments":{}}'
		assert_status 200
	done
	kreq "$k" POST /v1/tools '{"tool":"list_tables","arguments":{}}'
	assert_openai_error 429 rate_limit_exceeded
	assert_json 'j.error.type === "tool_calls" && j.error.message.includes("TCPM")'
	grep -qi '^Retry-After: [0-9]' <<<"$HEADERS"
	kreq "$k" GET /v1/tools # listing runs no tool
	assert_status 200
	keys create tokens --tpm 10
	k=$(echo "$output" | grep '^sk-mcpgw-')
	sim_reset
	sim_script '[{"content":"one","usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}},{"content":"two"}]'
	kreq "$k" POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"mcp":{"tools":false}}'
	assert_status 200
	kreq "$k" POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}],"mcp":{"tools":false}}'
	assert_openai_error 429 rate_limit_exceeded
	assert_json 'j.error.type === "tokens" && j.error.message.includes("Used 12")'
}

@test "a key past its expiry is refused with 401 saying so" {
	past_the_front_end # the key check a revoked key (above) meets behind every front end
	local k until

	until=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
	keys create brief --expires "$until"
	[ "$status" = 0 ]
	k=$(echo "$output" | grep '^sk-mcpgw-')
	kreq "$k" GET /v1/tools
	assert_status 200
	sleep 4
	kreq "$k" GET /v1/tools
	assert_openai_error 401 invalid_api_key
	assert_json "j.error.message.includes('expired on $until')"
}

@test "keys list shows each key's usage: requests, tokens, tool calls" {
	local id

	id=$(key_id "$(cat "$MCPGW_HOME/sq.key")")
	# each process writes what it counted within a second (lib/http/auth.c, AUTH_FLUSH_MS)
	sleep 1.5
	keys list --json
	[ "$status" = 0 ]
	BODY=$output
	# six requests to /v1/tools and one chat; list_tables by POST, and in the chat echo (refused) and list_tables
	assert_json "j.find(k => k.id === '$id').usage.requests === 7"
	assert_json "j.find(k => k.id === '$id').usage.tool_calls === 3"
	assert_json "j.find(k => k.id === '$id').usage.tokens > 0"
	assert_json "j.find(k => k.id === '$id').servers === 'sqlite'"
}

@test "MCPGW_API_KEYS: keys from .env, checked like the store's, listed as env1, env2" {
	local home

	home=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-envkeys.XXXXXX")
	printf 'MCPGW_BROKER_AUTOSTART=0\nMCPGW_API_KEYS=first-key-0123456789,second-key-0123456789\n' >"$home/.env"
	# health.fcgi as plain CGI, from another host (REMOTE_ADDR), with each key, a wrong one, none
	for auth in "Bearer second-key-0123456789" "Bearer first-key-0123456789"; do
		run env -i PATH=/usr/bin:/bin MCPGW_HOME="$home" GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=192.0.2.8 \
			REQUEST_METHOD=GET REQUEST_URI=/health HTTP_AUTHORIZATION="$auth" "$MCPGW_ROOT/cgi-bin/health.fcgi"
		[[ "${lines[0]}" != *401* ]] && [[ "${lines[0]}" != *403* ]]
	done
	run env -i PATH=/usr/bin:/bin MCPGW_HOME="$home" GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=192.0.2.8 \
		REQUEST_METHOD=GET REQUEST_URI=/health HTTP_AUTHORIZATION="Bearer first-key-012345678" "$MCPGW_ROOT/cgi-bin/health.fcgi"
	[[ "${lines[0]}" == *401* ]] && [[ "$output" == *invalid_api_key* ]] && [[ "$output" != *first-key* ]]
	run env -i PATH=/usr/bin:/bin MCPGW_HOME="$home" GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 \
		REQUEST_METHOD=GET REQUEST_URI=/health "$MCPGW_ROOT/cgi-bin/health.fcgi"
	[[ "${lines[0]}" == *401* ]] # loopback too, once a key exists
	run env -i PATH=/usr/bin:/bin MCPGW_HOME="$home" "$MCPGW_ROOT/keys/mcpgw-keys" list
	[[ "$output" == *env1*"MCPGW_API_KEYS #1"* ]] && [[ "$output" == *env2* ]] && [[ "$output" != *first-key* ]]
	# a key too short is refused at start, without showing it
	printf 'MCPGW_API_KEYS=short\n' >"$home/.env"
	run env -i PATH=/usr/bin:/bin MCPGW_HOME="$home" "$MCPGW_ROOT/keys/mcpgw-keys" count
	[ "$status" = 1 ] && [[ "$output" == *"MCPGW_API_KEYS: key 1 is not 16 to 511 characters long"* ]]
	rm -rf "$home"
}
