#!/usr/bin/env bats
# bigtools.bats: MCP servers that list too many or too large tools (tests/bigtools-server.mjs) are cut down or left out, one logged error each, while every other server keeps its tools: GET /v1/tools and chat go on (issue 15 case 5).

load helpers
mcpgw_load_sim

# MCPGW_MAX_MESSAGE_BYTES=8 MiB: the catalog may take 7 MiB.  "huge" lists 4000 tools of
# 4 KB in pages of 1000 (16 MB): cut to the first 4 MiB (MCPGW_SERVER_MAX_TOOLS_BYTES);
# "wide" lists 900 tools of 3.5 KB in one page (3.2 MB): within its bound, but with "huge"
# the catalog would pass 7 MiB, so the larger, "huge", is left out of the list; "many" lists
# 5000 small tools: cut to MCPGW_SERVER_MAX_TOOLS=3000. "sqlite" keeps its six.
mcpgw_custom_config() {
	local node big="$MCPGW_ROOT/tests/bigtools-server.mjs"

	node=$(command -v node)
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": {
  "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/test.db"] },
  "huge": { "command": "$node", "args": ["$big", "h", "4000", "4096", "1000"] },
  "wide": { "command": "$node", "args": ["$big", "w", "900", "3500"] },
  "many": { "command": "$node", "args": ["$big", "m", "5000", "10"] }
} }
EOF
	printf 'MCPGW_LOG_LEVEL=info\nMCPGW_MAX_MESSAGE_BYTES=8388608\nMCPGW_SERVER_MAX_TOOLS=3000\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() {
	mcpgw_setup_file_with_sim || return 1
	for s in sqlite huge wide many; do wait_server_state "$s" ready 30 || return 1; done
}
teardown_file() { mcpgw_teardown_file_with_sim; }

# count SERVER: how many tools of SERVER the last GET /v1/tools listed
count() { json_eval "j.data.filter(t => t.server === '$1').length"; }

@test "GET /v1/tools answers with every server that fits: sqlite's six, wide's 900, many's first 3000; huge is left out" {
	HTTP_TIMEOUT=60 get /v1/tools
	assert_status 200
	[ "$(count sqlite)" -eq 6 ]
	[ "$(count wide)" -eq 900 ]
	[ "$(count many)" -eq 3000 ]
	[ "$(count huge)" -eq 0 ]
	assert_json 'j.data.some(t => t.name === "read_query")'
	# the first ones are kept, in order
	assert_json 'j.data.some(t => t.name === "m2999") && !j.data.some(t => t.name === "m3000")'
}

@test "each bound that was hit is one logged error naming the server and the setting" {
	local log="$MCPGW_STATE_DIR/broker.log"

	[ "$(grep -c 'server huge: tools/list lists tools of more than 4194304 bytes (MCPGW_SERVER_MAX_TOOLS_BYTES)' "$log")" -eq 1 ]
	[ "$(grep -c 'server many: tools/list lists more than 3000 tools (MCPGW_SERVER_MAX_TOOLS)' "$log")" -eq 1 ]
	[ "$(grep -c 'server huge: .*would push the tool catalog past 7340032 bytes .*MCPGW_MAX_MESSAGE_BYTES' "$log")" -eq 1 ]
	! grep -q 'server wide: .*MCPGW_' "$log"
	! grep -q 'server sqlite: .*MCPGW_' "$log"
}

@test "a chat completion offers the sqlite server's tools and runs one (it offered none when the catalog was too big)" {
	sim_reset
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"done"}]'
	# only sqlite's: the simulator, like OpenAI, takes at most 128 tools
	HTTP_TIMEOUT=60 post /v1/chat/completions '{"model":"sim-model","mcp":{"servers":["sqlite"]},"messages":[{"role":"user","content":"tables?"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "done"'
	BODY=$(sim_requests 'path=/v1/chat/completions')
	assert_json 'j.length === 2 && j[0].body.tools.length === 6 && j[0].body.tools.some(t => t.function.name === "read_query")'
	assert_json 'j[1].body.messages.some(m => m.role === "tool")'
}

@test "a tool of a server that was cut down still runs; the broker stays up" {
	post /v1/tools '{"tool":"m5","arguments":{}}'
	assert_status 200
	assert_json 'j.content[0].text === "called m5"'
	assert_still_serving
}
