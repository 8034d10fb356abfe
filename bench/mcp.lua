-- mcp.lua: wrk script for a Streamable HTTP MCP server: POSTs tools/call of $BENCH_TOOL (default
-- list_tables) with arguments $BENCH_ARGS (default {}) in the session $BENCH_SESSION, each request
-- with its own JSON-RPC id (thread number * 1e8 + counter), as a real client would.
local session = assert(os.getenv("BENCH_SESSION"), "BENCH_SESSION unset")
local tool = os.getenv("BENCH_TOOL") or "list_tables"
local args = os.getenv("BENCH_ARGS") or "{}"
local headers = {
	["Content-Type"] = "application/json",
	["Accept"] = "application/json, text/event-stream",
	["Mcp-Session-Id"] = session,
	["MCP-Protocol-Version"] = os.getenv("BENCH_PROTOCOL") or "2025-06-18",
}
local threads = 0

function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end

local counter = 0
function request()
	counter = counter + 1
	local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":%s}}',
		tid * 100000000 + counter, tool, args)
	return wrk.format("POST", nil, headers, body)
end
