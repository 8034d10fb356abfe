#!/usr/bin/env bats
# embeddings_answer.bats: the built-in embedding model's answer is bounded before any work (MCPGW_EMBEDDING_MAX_ANSWER_BYTES, default settings): 8 KB of tiny inputs no longer buys megabytes and seconds of CPU (issue 15 case 7).

load helpers

LOCAL=mcpgw-embedding-local

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"] } } }
JSON
	printf 'MCPGW_LOG_LEVEL=info\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n' >"$MCPGW_HOME/.env"
}

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

# body N [OPTIONS]: a request of N inputs "a" (4 bytes each in the body) with the JSON members OPTIONS
body() {
	node -e 'const [n, o] = process.argv.slice(1); process.stdout.write(JSON.stringify({ model: "'"$LOCAL"'",
		input: Array(Number(n)).fill("a"), ...JSON.parse(o || "{}") }))' "$1" "${2:-}"
}

# ms: milliseconds since the epoch
ms() { date +%s%3N; }

@test "8 KB of 2048 one-letter inputs (megabytes of floats and seconds of CPU before) is a quick 400 answer_too_large naming the setting" {
	local f="$BATS_TEST_TMPDIR/req.json" t0

	body 2048 >"$f"
	[ "$(stat -c %s "$f")" -le 8300 ]
	t0=$(ms)
	post /v1/embeddings "@$f"
	[ $(($(ms) - t0)) -lt 1000 ]
	assert_openai_error 400 answer_too_large
	assert_json 'j.error.param === "input"'
	assert_json 'j.error.message.includes("MCPGW_EMBEDDING_MAX_ANSWER_BYTES") && j.error.message.includes("8388608")'
	assert_json 'j.error.message.includes("2048 inputs of 1536 dimensions as float") && j.error.message.includes("base64")'
	# base64 is smaller but 2048 vectors of 1536 still do not fit
	body 2048 '{"encoding_format":"base64"}' >"$f"
	post /v1/embeddings "@$f"
	assert_openai_error 400 answer_too_large
}

@test "requests whose answer fits are served, and the answer is within the bound" {
	local f="$BATS_TEST_TMPDIR/req.json"

	body 300 >"$f"
	post /v1/embeddings "@$f"
	assert_status 200
	assert_json 'j.data.length === 300 && j.data[299].embedding.length === 1536'
	[ "${#BODY}" -le 8388608 ]
	body 2048 '{"dimensions":128}' >"$f"
	post /v1/embeddings "@$f"
	assert_status 200
	assert_json 'j.data.length === 2048 && j.data[0].embedding.length === 128'
	body 1000 '{"encoding_format":"base64"}' >"$f"
	post /v1/embeddings "@$f"
	assert_status 200
	assert_json 'j.data.length === 1000 && typeof j.data[0].embedding === "string"'
	# and one over by dimensions alone: 2048 x 256 floats
	body 2048 '{"dimensions":256}' >"$f"
	post /v1/embeddings "@$f"
	assert_openai_error 400 answer_too_large
}
