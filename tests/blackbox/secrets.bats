#!/usr/bin/env bats
# secrets.bats: secrets stay where they are (issue 14 case 4): canaries planted in every channel never reach a log, a database or a response.
#
# Canary secrets go into every channel a secret reaches the gateway by: the .env's upstream key
# (OPENAI_API_KEY), credentials in OPENAI_BASE_URL, an MCPGW_* value of the .env, a server's own
# "env", a token in a remote server's URL query, the headers of a legacy-SSE server (Authorization,
# Cookie), and a stdio server's stderr (a DSN with a password, at start-up and when it dies in a
# call). The tests drive the gateway as its clients do (tools, chat with tool rounds, streaming,
# models, embeddings, /health, failing servers, an upstream that refuses the key); every response
# (body and headers) is kept. The last test greps every log, the state databases and every kept
# response for each canary: none may be there, and the same grep must find each canary in the raw
# inputs, so that the check can fail.

load helpers
mcpgw_load_sim

# the raw inputs: every file a canary is planted in (relative to $MCPGW_HOME)
RAW_INPUTS=".env servers_config.json dsn-fails.sh dsn-server.mjs"

mcpgw_custom_config() {
	local node everything sdk dead p_sse p_other

	node=$(command -v node)
	everything="$MCPGW_ROOT/tests/node_modules/.bin/mcp-server-everything"
	sdk="$MCPGW_ROOT/tests/node_modules/@modelcontextprotocol/sdk/dist/esm"
	# nothing listens on port 9 (a free port found here could be handed out again at once, to the
	# listeners started below or to another suite's, which the remote server would then reach)
	dead=9
	# the legacy-SSE server whose endpoint event names another origin
	node "$MCPGW_ROOT/tests/elsewhere-sse-server.mjs" "$BATS_FILE_TMPDIR/elsewhere.seen" \
		>"$BATS_FILE_TMPDIR/elsewhere.out" 2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/elsewhere.pid"
	for _ in $(seq 100); do
		grep -q '^LISTENING ' "$BATS_FILE_TMPDIR/elsewhere.out" && break
		sleep 0.05
	done
	read -r _ p_sse p_other <"$BATS_FILE_TMPDIR/elsewhere.out"
	echo "$p_other" >"$BATS_FILE_TMPDIR/elsewhere.other"
	# a remote server that refuses with 401, quoting the token of its URL and the headers it was sent
	p_401=$(free_port)
	node -e '
		require("http").createServer((q, r) => {
			const u = new URL(q.url, "http://x");
			r.writeHead(401, { "content-type": "application/json" });
			r.end(JSON.stringify({ error: `invalid token ${u.searchParams.get("token")} for ${q.headers.cookie} with ${q.headers.authorization}` }));
		}).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("LISTENING"));' "$p_401" \
		>"$BATS_FILE_TMPDIR/quoter.out" 2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/quoter.pid"
	for _ in $(seq 100); do
		grep -q '^LISTENING' "$BATS_FILE_TMPDIR/quoter.out" && break
		sleep 0.05
	done
	# a stdio server that cannot reach its database: says so with the DSN on stderr, exits 1;
	# a long line before it: its DSN's password starts before the 240th byte, where the telling line is cut
	cat >"$MCPGW_HOME/dsn-fails.sh" <<EOF
#!/bin/sh
echo "FATAL: cannot connect to postgresql://app:$C_STDERR@db.invalid:5432/app" >&2
echo "FATAL: cannot connect to $(printf '%0190d' 0) postgresql://app:$C_STDERR@db.invalid:5432/app" >&2
exit 1
EOF
	chmod +x "$MCPGW_HOME/dsn-fails.sh"
	# a stdio server that logs its DSN at start and dies in a call, the DSN its last words
	cat >"$MCPGW_HOME/dsn-server.mjs" <<EOF
import { Server } from "$sdk/server/index.js";
import { StdioServerTransport } from "$sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "$sdk/types.js";
const dsn = "postgresql://app:$C_STDERR@db.invalid:5432/app";
console.error("connecting to " + dsn);
const server = new Server({ name: "dsn", version: "1" }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
	tools: [{ name: "dsn_crash", description: "Dies.", inputSchema: { type: "object" } }] }));
server.setRequestHandler(CallToolRequestSchema, async () => {
	console.error("FATAL: password authentication failed for " + dsn);
	process.exit(1);
});
await server.connect(new StdioServerTransport());
EOF
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": {
  "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_STATE_DIR/test.db"],
              "env": {"SQLITE_API_TOKEN": "$C_SRVENV"} },
  "everything": { "command": "$everything", "args": ["stdio"], "env": {"MCPGW_TEST_VISIBLE": "visible-to-the-server"} },
  "dsnfail": { "command": "$MCPGW_HOME/dsn-fails.sh" },
  "dsn": { "command": "$node", "args": ["$MCPGW_HOME/dsn-server.mjs"] },
  "remote": { "type": "http", "url": "http://127.0.0.1:$dead/mcp?api_key=$C_URL" },
  "quoter": { "type": "http", "url": "http://127.0.0.1:$p_401/mcp?token=$C_URL",
              "headers": {"Authorization": "Bearer $C_HDR", "Cookie": "session=$C_COOKIE"} },
  "legacy": { "type": "sse", "url": "http://127.0.0.1:$p_sse/sse",
              "headers": {"Authorization": "Bearer $C_HDR", "Cookie": "session=$C_COOKIE"} }
} }
EOF
	cat >"$MCPGW_HOME/.env" <<EOF
MCPGW_LOG_LEVEL=debug
MCPGW_TOOL_TIMEOUT=10
MCPGW_UPSTREAM_RETRIES=0
MCPGW_TEST_SECRET=$C_MCPGW
OPENAI_API_KEY=$C_KEY
OPENAI_BASE_URL=http://user:$C_BASEURL@127.0.0.1:$SIM_PORT/v1
DEFAULT_MODEL=sim-model
EOF
}

setup_file() {
	local suffix

	# one random suffix per run (set once here: bats loads this file again for each test)
	suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	C_KEY="sk-canary-key-$suffix"
	C_BASEURL="canary-baseurl-$suffix"
	C_MCPGW="canary-mcpgw-$suffix"
	C_SRVENV="canary-srvenv-$suffix"
	C_URL="canary-url-$suffix"
	C_HDR="canary-hdr-$suffix"
	C_COOKIE="canary-cookie-$suffix"
	C_STDERR="canary-stderr-$suffix"
	export C_KEY C_BASEURL C_MCPGW C_SRVENV C_URL C_HDR C_COOKIE C_STDERR
	mcpgw_setup_file_with_sim
}

teardown_file() {
	mcpgw_teardown_file_with_sim
	[ -s "$BATS_FILE_TMPDIR/elsewhere.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/elsewhere.pid")" 2>/dev/null
	[ -s "$BATS_FILE_TMPDIR/quoter.pid" ] && kill "$(cat "$BATS_FILE_TMPDIR/quoter.pid")" 2>/dev/null
	return 0
}

# every response is kept for the last test: http (helpers.bash) wrapped
eval "helpers_http() $(declare -f http | tail -n +2)"
http() {
	helpers_http "$@"
	mkdir -p "$BATS_FILE_TMPDIR/responses"
	{
		printf '%s %s\n%s\n\n' "$1" "$2" "$HEADERS"
		printf '%s\n' "$BODY"
	} >"$(mktemp "$BATS_FILE_TMPDIR/responses/XXXXXX")"
}

# keep TEXT: keep more that a client or operator saw (a stream, a status listing)
keep() {
	mkdir -p "$BATS_FILE_TMPDIR/responses"
	printf '%s\n' "$1" >"$(mktemp "$BATS_FILE_TMPDIR/responses/XXXXXX")"
}

@test "a stdio server's environment: the SDKs' minimal set and its own env, never the broker's .env" {
	wait_server_state everything ready
	post /v1/tools '{"tool":"get-env","arguments":{}}'
	assert_status 200
	local env
	env=$(json_eval 'j.content[0].text')
	# its own env arrives, and the inherited few
	assert_json 'JSON.parse(j.content[0].text).MCPGW_TEST_VISIBLE === "visible-to-the-server"'
	assert_json 'typeof JSON.parse(j.content[0].text).PATH === "string"'
	# nothing of the .env or the broker's own environment: no key, no MCPGW_* but the directories and the log level
	assert_json '!("OPENAI_API_KEY" in JSON.parse(j.content[0].text)) && !("OPENAI_BASE_URL" in JSON.parse(j.content[0].text))'
	assert_json 'Object.keys(JSON.parse(j.content[0].text)).every(k =>
		["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "MCPGW_HOME", "MCPGW_STATE_DIR", "MCPGW_LOG_LEVEL",
		 "MCPGW_TEST_VISIBLE"].includes(k))'
	assert_json "JSON.parse(j.content[0].text).MCPGW_STATE_DIR === '$MCPGW_STATE_DIR'"
	[[ "$env" != *"$C_KEY"* && "$env" != *"$C_MCPGW"* && "$env" != *"$C_BASEURL"* && "$env" != *"$C_SRVENV"* ]]
}

@test "/health: a failing server's state and a generic reason; its stderr stays in the log" {
	wait_server_state dsnfail backoff
	get /health
	assert_status 200
	assert_json "j.servers.find(s => s.name === 'dsnfail').last_error === 'exited with status 1; see the broker log'"
	assert_json "j.servers.every(s => !('detail' in s))"
	assert_json "j.reasons.some(r => r.includes('dsnfail') && r.includes('see the broker log'))"
	# the log keeps the telling line, the DSN's password redacted
	grep -q "server dsnfail: exited with status 1 (stderr: FATAL: cannot connect to 0000*0 postgresql://d[^ ]*\.\.\.); retrying in" \
		"$MCPGW_STATE_DIR/broker.log"
	grep -q "server dsnfail stderr: FATAL: cannot connect to postgresql://db.invalid:5432/app$" "$MCPGW_STATE_DIR/broker.log"
	# and the running server's stderr lines too
	grep -q "server dsn stderr: connecting to postgresql://db.invalid:5432/app$" "$MCPGW_STATE_DIR/broker.log"
	# local operators see the detail (mcpgw-broker --status, mcpgwctl status)
	run sh "$MCPGW_ROOT/deploy/mcpgwctl" status
	keep "$output"
	[[ "$output" == *"dsnfail"*"(stderr: FATAL: cannot connect to 0000"*"0 postgresql://d"* ]]
}

@test "a remote server's URL is shown without its query values, in /health and the log" {
	for _ in $(seq 100); do
		[ "$(server_field remote restarts)" -ge 1 ] 2>/dev/null && break
		sleep 0.1
	done
	get /health
	assert_json "j.servers.find(s => s.name === 'remote').last_error.includes('/mcp?api_key=***')"
	# (and the run's canary, tests/blackbox/canaries.mjs, as a second value: &access_token=***)
	grep -q "server remote: connecting to http://127.0.0.1:[0-9]*/mcp?api_key=\*\*\*\(&access_token=\*\*\*\)\{0,1\} (http)" \
		"$MCPGW_STATE_DIR/broker.log"
	grep -q "server remote: POST http://127.0.0.1:[0-9]*/mcp?api_key=\*\*\*\(&access_token=\*\*\*\)\{0,1\}: " "$MCPGW_STATE_DIR/broker.log"
}

@test "a remote server's error body that quotes its URL's token and the headers it was sent: logged with them masked" {
	for _ in $(seq 100); do
		[ "$(server_field quoter restarts)" -ge 1 ] 2>/dev/null && break
		sleep 0.1
	done
	grep -q 'server quoter: HTTP 401 body {"error":"invalid token \*\*\* for \*\*\* with \*\*\*"}' \
		"$MCPGW_STATE_DIR/broker.log"
	! grep -qF -e "$C_URL" -e "$C_HDR" -e "$C_COOKIE" "$MCPGW_STATE_DIR/broker.log"
}

@test "a legacy-SSE endpoint on another origin is refused: the configured headers never go there" {
	for _ in $(seq 100); do
		[ "$(server_field legacy restarts)" -ge 1 ] 2>/dev/null && break
		sleep 0.1
	done
	get /health
	assert_json "j.servers.find(s => s.name === 'legacy').state !== 'ready'"
	assert_json "j.servers.find(s => s.name === 'legacy').last_error.includes('the SSE endpoint event names another origin')"
	# the other origin saw nothing at all
	[ ! -s "$BATS_FILE_TMPDIR/elsewhere.seen" ]
	grep -q "server legacy: the SSE endpoint event names another origin (http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/elsewhere.other")/messages?sessionId=\*\*\*)" \
		"$MCPGW_STATE_DIR/broker.log"
}

@test "a server that dies in a call: the client gets the state and a generic reason, not its last words" {
	wait_server_state dsn ready
	post /v1/tools '{"tool":"dsn_crash","arguments":{}}'
	[ "$HTTP_STATUS" -ge 500 ]
	assert_json 'typeof j.error.message === "string"'
	[[ "$BODY" != *"postgres"* && "$BODY" != *"FATAL"* ]]
	grep -q "server dsn: exited with status 1 (stderr: FATAL: password authentication failed for postgresql://db.invalid:5432/app)" \
		"$MCPGW_STATE_DIR/broker.log"
}

@test "tools, chat with a tool round, streaming, models, embeddings: the ordinary flows" {
	wait_server_state sqlite ready
	post /v1/tools '{"tool":"create_table","arguments":{"query":"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"}}'
	assert_status 200
	post /v1/tools '{"tool":"write_query","arguments":{"query":"INSERT INTO notes (body) VALUES (\"hello\")"}}'
	assert_status 200
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT body FROM notes"}}'
	assert_status 200
	post /v1/tools '{"tool":"read_query","arguments":{"query":"DELETE FROM notes"}}'
	assert_status 422
	get /v1/tools
	assert_status 200
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT body FROM notes"}}]},{"content":"one note"},
		{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"notes"}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"What notes?"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "one note"'
	keep "$(curl -sN -m 30 -H 'Content-Type: application/json' \
		-d '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"Tables?"}]}' \
		"$MCPGW_URL/v1/chat/completions")"
	get /v1/models
	assert_status 200
	post /v1/embeddings '{"model":"text-embedding-3-small","input":"hi"}'
	assert_status 200
	# the upstream got the key (the canary was in use), with the gateway's URL credentials not echoed back
	sim_requests | grep -q "Bearer $C_KEY"
}

@test "the upstream refuses the gateway's key: 502 upstream_auth_failed; its words, key masked, only in the log" {
	sim_script "[{\"error\":{\"status\":401,\"message\":\"Incorrect API key provided: $C_KEY.\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}},
		{\"error\":{\"status\":403,\"message\":\"Key $C_KEY may not use this project\"}}]"
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	assert_openai_error 502 upstream_auth_failed
	assert_json 'j.error.message === "The gateway'"'"'s upstream credentials were refused"'
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[[ "$BODY" == *upstream_auth_failed* ]]
	grep -q "the gateway's credentials were refused: Incorrect API key provided: \*\*\*\." "$MCPGW_STATE_DIR"/*.log
}

@test "an upstream error that quotes the gateway's key (400, 404, 429, 500; JSON or not; streamed; mid-stream): passed on (a 404 not about the model quoted in 502 upstream_not_found), the key masked" {
	local st
	for st in 400 404 429 500; do
		sim_script "[{\"error\":{\"status\":$st,\"message\":\"Invalid key $C_KEY for this route\",\"type\":\"invalid_request_error\",\"code\":\"bad_key\"}}]"
		post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
		if [ "$st" = 404 ]; then # a 404 not about the model: the gateway's URL, its own error quoting the upstream
			assert_openai_error 502 upstream_not_found
			assert_json 'j.error.message.endsWith("it said: Invalid key *** for this route")'
		else
			assert_status "$st"
			assert_json 'j.error.message === "Invalid key *** for this route"'
		fi
		[[ "$BODY" != *"$C_KEY"* ]]
	done
	# a proxy's HTML page quoting it: the gateway's own error with a snippet of the body
	sim_script "[{\"error\":{\"status\":400,\"body\":\"<html>bad key $C_KEY</html>\"}}]"
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	assert_json 'j.error.code === "upstream_bad_response" && j.error.message.includes("bad key ***")'
	sim_script "[{\"error\":{\"status\":400,\"message\":\"Invalid key $C_KEY\"}}]"
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[[ "$BODY" == *"Invalid key ***"* ]]
	[[ "$BODY" != *"$C_KEY"* ]]
	# an error event in the middle of a stream
	sim_script "[{\"content\":\"hello there friend\",\"stream_error\":{\"message\":\"key $C_KEY expired\",\"after_chunks\":1}}]"
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[[ "$BODY" == *'"message":"key *** expired"'* ]]
	[[ "$BODY" != *"$C_KEY"* ]] && ! grep -qF "$C_KEY" "$MCPGW_STATE_DIR"/*.log
}

@test "an upstream connection failure names the upstream URL without its credentials" {
	# two: libcurl sends a request again by itself when a reused connection turns out closed
	sim_script '[{"drop":true},{"drop":true}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"hi"}]}'
	sim_script '[]'
	[ "$HTTP_STATUS" -ge 500 ]
	assert_json "j.error.message.includes('http://127.0.0.1:$SIM_PORT/v1')"
}

# outputs GREP-ARGS...: grep -l the fixed strings in every output: the whole home but the raw
# inputs (logs, databases, pid files, generated configs), and the kept responses
outputs() {
	grep -ral --exclude=.env --exclude=servers_config.json --exclude=dsn-fails.sh --exclude=dsn-server.mjs \
		-F "$@" -- "$MCPGW_HOME" "$BATS_FILE_TMPDIR/responses"
}

@test "canaries: none in any log, state database or response; each in the raw inputs" {
	local c found=0

	# what an operator may run too: its output is a response as well
	keep "$("$MCPGW_ROOT/broker/mcpgw-broker" --status 2>&1)"
	[ -d "$BATS_FILE_TMPDIR/responses" ] && [ "$(ls "$BATS_FILE_TMPDIR/responses" | wc -l)" -ge 15 ]
	[ -s "$MCPGW_STATE_DIR/broker.log" ] && ls "$MCPGW_STATE_DIR"/*.db >/dev/null
	for c in "$C_KEY" "$C_BASEURL" "$C_MCPGW" "$C_SRVENV" "$C_URL" "$C_HDR" "$C_COOKIE" "$C_STDERR"; do
		# (its first 18 bytes too: a cut copy is a leak as well)
		if outputs -e "$c" -e "${c:0:18}"; then
			echo "canary $c leaked into the files above" >&2
			found=1
		fi
		# and the same grep finds it where it was planted
		# shellcheck disable=SC2086
		(cd "$MCPGW_HOME" && grep -qaF -- "$c" $RAW_INPUTS) || { echo "canary $c is in no raw input" >&2; found=1; }
	done
	# the DSN's user before its password: a copy cut inside the password leaks its start
	if outputs -e "postgresql://app:"; then
		echo "the DSN's userinfo leaked into the files above" >&2
		found=1
	fi
	[ "$found" = 0 ]
}
