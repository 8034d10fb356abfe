#!/usr/bin/env bats
# tools.bats: GET/POST /v1/tools and GET /health against the real stack: web server (MCPGW_FRONTEND), responders, broker, real MCP servers.

load helpers

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

SQLITE_TOOLS='["append_insight","create_table","describe_table","list_tables","read_query","write_query"]'

@test "GET /health: sqlite and everything ready, the missing command in backoff, status degraded" {
	get /health
	assert_status 200
	assert_json 'j.status === "degraded"'
	assert_json 'typeof j.broker.pid === "number"'
	assert_json 'j.servers.find(s => s.name === "sqlite").state === "ready"'
	assert_json 'j.servers.find(s => s.name === "everything").state === "ready"'
	assert_json '["backoff", "failed"].includes(j.servers.find(s => s.name === "ghost").state)'
	assert_json 'j.servers.find(s => s.name === "ghost").last_error.length > 0'
	assert_json 'j.servers.find(s => s.name === "sqlite").pid > 0'
}

@test "GET /v1/tools lists the six tools of the bundled sqlite server" {
	get /v1/tools
	assert_status 200
	assert_json 'j.object === "list" && Array.isArray(j.data)'
	assert_json "JSON.stringify(j.data.filter(t => t.server === 'sqlite').map(t => t.name).sort()) === '$SQLITE_TOOLS'"
	assert_json 'j.data.every(t => t.object === "tool" && typeof t.name === "string" && typeof t.mcp_name === "string")'
	assert_json 'j.data.every(t => typeof t.description === "string" && t.input_schema.type === "object")'
	assert_json 'j.data.every(t => typeof t.annotations === "object" && /^[a-zA-Z0-9_-]{1,64}$/.test(t.name))'
	assert_json 'j.data.find(t => t.name === "read_query").mcp_name === "read_query"'
	assert_json 'j.data.find(t => t.name === "read_query").input_schema.properties.query.type === "string"'
}

@test "GET /v1/tools?format=openai gives function tools ready for a chat request" {
	get '/v1/tools?format=openai'
	assert_status 200
	assert_json 'j.object === "list" && j.data.length >= 6'
	assert_json 'j.data.every(t => t.type === "function" && typeof t.function.name === "string")'
	assert_json 'j.data.every(t => typeof t.function.description === "string" && t.function.parameters.type === "object")'
	assert_json 'j.data.some(t => t.function.name === "write_query")'
}

@test "GET /v1/tools/{name}: one tool, 404 for an unknown one" {
	get /v1/tools/describe_table
	assert_status 200
	assert_json 'j.object === "tool" && j.name === "describe_table" && j.server === "sqlite"'
	get /v1/tools/no_such_tool
	assert_openai_error 404 tool_not_found
}

@test "POST /v1/tools: create_table, write_query, read_query round-trip real rows" {
	post /v1/tools '{"tool":"create_table","arguments":{"query":"CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legs INTEGER)"}}'
	assert_status 200
	assert_json 'j.object === "tool.result" && j.tool === "create_table" && j.server === "sqlite" && !j.isError'

	post /v1/tools "{\"tool\":\"write_query\",\"arguments\":{\"query\":\"INSERT INTO pets (name, legs) VALUES ('cat', 4), ('bird', 2), ('snake', 0)\"}}"
	assert_status 200
	assert_json 'j.content[0].text.includes("3")'

	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT name, legs FROM pets WHERE legs > 0 ORDER BY name"}}'
	assert_status 200
	assert_json 'JSON.stringify(JSON.parse(j.content[0].text)) === JSON.stringify([{name: "bird", legs: 2}, {name: "cat", legs: 4}])'

	post /v1/tools '{"tool":"list_tables"}'
	assert_status 200
	assert_json 'j.content[0].text.includes("pets")'

	post /v1/tools '{"tool":"describe_table","arguments":{"table_name":"pets"}}'
	assert_status 200
	assert_json 'j.content[0].text.includes("legs")'
}

@test "server-everything over stdio: its tools appear, echo and get-sum work" {
	get /v1/tools
	assert_status 200
	assert_json 'j.data.some(t => t.name === "echo" && t.server === "everything")'
	assert_json 'j.data.some(t => t.name === "get-sum" && t.server === "everything")'

	post /v1/tools '{"tool":"echo","arguments":{"message":"hello from bats"}}'
	assert_status 200
	assert_json 'j.tool === "echo" && j.server === "everything" && j.content[0].text === "Echo: hello from bats"'

	post /v1/tools '{"tool":"get-sum","arguments":{"a":19,"b":23}}'
	assert_status 200
	assert_json 'j.content[0].text.includes("42")'
}

@test "malformed JSON: 400 invalid_json, and the gateway keeps serving" {
	post /v1/tools '{"tool": "read_query", "arguments": {'
	assert_openai_error 400 invalid_json
	assert_json 'j.error.message.includes("position")'
	post /v1/tools '[1, 2, 3]'
	assert_openai_error 400 invalid_request
	post /v1/tools '{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}'
	assert_openai_error 400 json_too_deep
	assert_still_serving
}

@test "wrong types: 400 naming the parameter, and the gateway keeps serving" {
	post /v1/tools '{"tool": 42}'
	assert_openai_error 400 invalid_type
	assert_json 'j.error.param === "tool"'
	post /v1/tools '{"tool": "read_query", "arguments": "SELECT 1"}'
	assert_openai_error 400 invalid_type
	assert_json 'j.error.param === "arguments"'
	post /v1/tools '{"arguments": {}}'
	assert_status 400
	assert_json 'j.error.param === "tool"'
	# unknown extra fields are ignored
	post /v1/tools '{"tool": "list_tables", "arguments": {}, "extra": true}'
	assert_status 200
	assert_still_serving
}

@test "unknown tool: 404 tool_not_found, and the gateway keeps serving" {
	post /v1/tools '{"tool": "no_such_tool", "arguments": {}}'
	assert_openai_error 404 tool_not_found
	assert_still_serving
}

@test "body over MCPGW_MAX_BODY_BYTES: 413, and the gateway keeps serving" {
	local pad big="$BATS_TEST_TMPDIR/big.json"

	pad=$(head -c 5000 /dev/zero | tr '\0' 'x')
	post /v1/tools "{\"tool\":\"echo\",\"arguments\":{\"message\":\"$pad\"}}"
	assert_openai_error 413 request_too_large
	# far over the limit (1 MiB): still a prompt 413
	{ printf '{"tool":"echo","arguments":{"message":"'; head -c 1048576 /dev/zero | tr '\0' 'x'; printf '"}}'; } >"$big"
	post /v1/tools "@$big"
	assert_openai_error 413 request_too_large
	# just under the limit works
	pad=$(head -c 3000 /dev/zero | tr '\0' 'x')
	post /v1/tools "{\"tool\":\"echo\",\"arguments\":{\"message\":\"$pad\"}}"
	assert_status 200
	assert_still_serving
}

@test "non-SELECT to read_query: 422 tool_error with the MCP result, and the gateway keeps serving" {
	post /v1/tools '{"tool": "read_query", "arguments": {"query": "DELETE FROM pets"}}'
	assert_openai_error 422 tool_error
	assert_json 'j.result.isError === true && j.error.message.length > 0'
	# nothing was deleted
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT count(*) AS n FROM pets"}}'
	assert_status 200
	assert_json 'JSON.parse(j.content[0].text)[0].n === 3'
	assert_still_serving
}

@test "other methods: 405 with Allow; other paths: 404" {
	http DELETE /v1/tools
	assert_openai_error 405 method_not_allowed
	[[ "$HEADERS" == *"Allow: GET, HEAD, POST"* ]]
	http POST /v1/tools/echo '{}'
	assert_status 405
	get /v1/toolsx
	assert_status 404
}

@test "GET /v1/tools is served without touching the MCP servers (all SIGSTOPped)" {
	local sqlite_pid everything_pid

	sqlite_pid=$(server_field sqlite pid)
	everything_pid=$(server_field everything pid)
	[ "$sqlite_pid" -gt 0 ] && [ "$everything_pid" -gt 0 ]
	echo "$sqlite_pid $everything_pid" >"$MCPGW_HOME/stopped.pids"
	kill -STOP "$sqlite_pid" "$everything_pid"
	# a stopped server answers nothing: any request that reached one would hang past the curl timeout
	for _ in 1 2 3 4 5; do
		HTTP_TIMEOUT=3 get /v1/tools
		assert_status 200
		assert_json 'j.data.some(t => t.name === "read_query") && j.data.some(t => t.name === "echo")'
	done
	HTTP_TIMEOUT=3 get /v1/tools/get-sum
	assert_status 200
	kill -CONT "$sqlite_pid" "$everything_pid"
	rm -f "$MCPGW_HOME/stopped.pids"
	post /v1/tools '{"tool":"echo","arguments":{"message":"awake"}}'
	assert_status 200
}

@test "kill -9 of the sqlite server: the next call succeeds after the restart, broker and web server untouched" {
	local old_pid broker_pid web_pid restarts

	wait_server_state sqlite ready
	old_pid=$(server_field sqlite pid)
	restarts=$(server_field sqlite restarts)
	broker_pid=$(cat "$MCPGW_STATE_DIR/broker.pid")
	web_pid=$(frontend_pid)
	kill -KILL "$old_pid"
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT name FROM pets ORDER BY name"}}'
	assert_status 200
	assert_json 'JSON.parse(j.content[0].text).length === 3'
	wait_server_state sqlite ready
	[ "$(server_field sqlite pid)" != "$old_pid" ]
	[ "$(server_field sqlite restarts)" -gt "$restarts" ]
	[ "$(cat "$MCPGW_STATE_DIR/broker.pid")" = "$broker_pid" ] && kill -0 "$broker_pid"
	[ "$(frontend_pid)" = "$web_pid" ] && kill -0 "$web_pid"
	# the other servers were not disturbed
	post /v1/tools '{"tool":"get-sum","arguments":{"a":1,"b":1}}'
	assert_status 200
}
