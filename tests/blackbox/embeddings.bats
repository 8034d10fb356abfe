#!/usr/bin/env bats
# embeddings.bats: POST /v1/embeddings through the real stack: the built-in model, every 4xx, and forwarding to the upstream simulator.
#
# The gateway's embeddings upstream is the simulator (EMBEDDING_BASE_URL, EMBEDDING_API_KEY);
# OPENAI_BASE_URL points at a closed port, so a request that went there would fail.
# Small limits make the limit checks cheap: 4 inputs, 64 bytes per input, 64 KiB per body.

load helpers
mcpgw_load_sim

SIM_KEY=sk-embed-test
LOCAL=mcpgw-embedding-local

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"] } } }
JSON
	cat >"$MCPGW_HOME/.env" <<EOF
MCPGW_LOG_LEVEL=debug
OPENAI_BASE_URL=http://127.0.0.1:9/v1
OPENAI_API_KEY=sk-not-for-embeddings
EMBEDDING_BASE_URL=$SIM_URL/v1/
EMBEDDING_API_KEY=$SIM_KEY
MCPGW_MAX_BODY_BYTES=65536
MCPGW_EMBEDDING_MAX_INPUTS=4
MCPGW_EMBEDDING_MAX_INPUT_BYTES=64
MCPGW_MODEL_ALIASES=emb=$LOCAL,ada=text-embedding-ada-002
MCPGW_UPSTREAM_RETRIES=1
MCPGW_UPSTREAM_RETRY_MAX_WAIT=0.1
EOF
}

setup_file() { mcpgw_setup_file_with_sim --api-key "$SIM_KEY"; }
teardown_file() { mcpgw_teardown_file_with_sim; }

# emb BODY: POST /v1/embeddings
emb() { post /v1/embeddings "$1"; }

# vectors [JSON]: the embeddings of a response as JSON arrays of numbers (base64 decoded as float32 LE)
VECTORS='j.data.map(d => typeof d.embedding === "string"
	? Array.from({ length: Buffer.from(d.embedding, "base64").length / 4 }, (_, i) => Buffer.from(d.embedding, "base64").readFloatLE(4 * i))
	: d.embedding)'
COS='const cos = (a, b) => { let ab = 0, aa = 0, bb = 0; a.forEach((x, i) => { ab += x * b[i]; aa += x * x; bb += b[i] * b[i]; }); return ab / Math.sqrt(aa * bb); };'

# cosines: print the cosine of vector 0 with vectors 1 and 2 of the last response: "near far"
cosines() {
	json_eval "(() => { $COS const v = $VECTORS; return cos(v[0], v[1]).toFixed(4) + ' ' + cos(v[0], v[2]).toFixed(4); })()"
}

@test "built-in model: OpenAI's response shape, unit vectors of 1536 dimensions, tokens counted" {
	emb "{\"model\":\"$LOCAL\",\"input\":[\"hello world\",\"数据库查询\"]}"
	assert_status 200
	assert_json 'j.object === "list" && j.model === "mcpgw-embedding-local" && j.data.length === 2'
	assert_json 'j.data.every((d, i) => d.object === "embedding" && d.index === i && Array.isArray(d.embedding))'
	assert_json 'j.data.every(d => d.embedding.length === 1536 && d.embedding.every(x => typeof x === "number"))'
	assert_json 'j.data.every(d => Math.abs(d.embedding.reduce((s, x) => s + x * x, 0) - 1) < 1e-5)'
	# 2 words + 5 Han characters
	assert_json 'j.usage.prompt_tokens === 7 && j.usage.total_tokens === 7'
	grep -qi '^Content-Type: application/json' <<<"$HEADERS"
}

@test "built-in model: base64 decodes to exactly the float vector" {
	local f b
	emb "{\"model\":\"$LOCAL\",\"input\":[\"The quick brown fox\",\"数据库查询\"],\"encoding_format\":\"float\"}"
	assert_status 200
	f=$BODY
	emb "{\"model\":\"$LOCAL\",\"input\":[\"The quick brown fox\",\"数据库查询\"],\"encoding_format\":\"base64\"}"
	assert_status 200
	b=$BODY
	assert_json 'j.data.every(d => typeof d.embedding === "string" && Buffer.from(d.embedding, "base64").length === 1536 * 4)'
	run json_eval "(() => { const f = j.f.data.map(d => d.embedding), b = (j => $VECTORS)(j.b);
		return b.length === 2 && b.every((v, k) => v.length === 1536 && v.every((x, i) => Math.fround(f[k][i]) === x)); })()" \
		"{\"f\":$f,\"b\":$b}"
	[ "$output" = true ]
	# the default encoding is float
	emb "{\"model\":\"$LOCAL\",\"input\":\"The quick brown fox\"}"
	[ "$(json_eval 'JSON.stringify(j.data[0].embedding)')" = "$(json_eval 'JSON.stringify(j.data[0].embedding)' "$f")" ]
}

@test "built-in model: the same text gives the same vector, across requests and batch positions" {
	local first
	emb "{\"model\":\"$LOCAL\",\"input\":\"same text 同じ\"}"
	first=$(json_eval 'JSON.stringify(j.data[0].embedding)')
	emb "{\"model\":\"$LOCAL\",\"input\":[\"other\",\"same text 同じ\",\"same text 同じ\"]}"
	[ "$(json_eval 'JSON.stringify(j.data[1].embedding)')" = "$first" ]
	[ "$(json_eval 'JSON.stringify(j.data[2].embedding)')" = "$first" ]
	[ "$(json_eval 'JSON.stringify(j.data[0].embedding)')" != "$first" ]
	# an alias of the built-in model gives the same vector
	emb '{"model":"emb","input":"same text 同じ"}'
	assert_status 200
	[ "$(json_eval 'JSON.stringify(j.data[0].embedding)')" = "$first" ]
}

@test "built-in model: texts that share words are closer (Chinese and English)" {
	local near far
	emb "{\"model\":\"$LOCAL\",\"input\":[\"数据库查询\",\"查询数据库中的表\",\"今天天气很好\"]}"
	assert_status 200
	read -r near far <<<"$(cosines)"
	echo "chinese: near $near far $far"
	node -e "process.exit($near > 0.5 && $far < 0.2 ? 0 : 1)"
	emb "{\"model\":\"$LOCAL\",\"input\":[\"How do I query the database?\",\"Querying tables in a database\",\"The weather is very nice today\"],\"encoding_format\":\"base64\"}"
	assert_status 200
	read -r near far <<<"$(cosines)"
	echo "english: near $near far $far"
	node -e "process.exit($near > 0.3 && $far < 0.2 ? 0 : 1)"
}

@test "built-in model: dimensions from 1 to 3072" {
	local d
	for d in 1 7 256 3072; do
		emb "{\"model\":\"$LOCAL\",\"input\":\"dimensions test\",\"dimensions\":$d}"
		assert_status 200
		assert_json "j.data[0].embedding.length === $d"
		assert_json 'Math.abs(j.data[0].embedding.reduce((s, x) => s + x * x, 0) - 1) < 1e-5'
	done
	emb "{\"model\":\"$LOCAL\",\"input\":\"dimensions test\",\"dimensions\":7,\"encoding_format\":\"base64\"}"
	assert_json 'Buffer.from(j.data[0].embedding, "base64").length === 28'
	emb "{\"model\":\"$LOCAL\",\"input\":\"dimensions test\",\"dimensions\":null,\"encoding_format\":null,\"user\":\"u-1\"}"
	assert_status 200
	assert_json 'j.data[0].embedding.length === 1536'
}

@test "built-in model: every input shape: string, strings, token ids, arrays of token ids" {
	emb "{\"model\":\"$LOCAL\",\"input\":\"one\"}"
	assert_status 200
	assert_json 'j.data.length === 1 && j.usage.prompt_tokens === 1'
	emb "{\"model\":\"$LOCAL\",\"input\":[\"one\",\"two three\"]}"
	assert_json 'j.data.length === 2 && j.usage.prompt_tokens === 3'
	emb "{\"model\":\"$LOCAL\",\"input\":[1,2,3]}"
	assert_status 200
	assert_json 'j.data.length === 1 && j.usage.prompt_tokens === 3 && j.data[0].embedding.length === 1536'
	emb "{\"model\":\"$LOCAL\",\"input\":[[1,2,3],[3,4],[9007199254740991]]}"
	assert_status 200
	assert_json 'j.data.length === 3 && j.usage.prompt_tokens === 6'
	# ids are tokens of their own: shared ids make vectors closer
	emb "{\"model\":\"$LOCAL\",\"input\":[[10,11,12,13],[10,11,12,99],[500,501,502,503]]}"
	read -r near far <<<"$(cosines)"
	node -e "process.exit($near > 0.5 && $far < 0.2 ? 0 : 1)"
}

# bad BODY [PARAM]: 400 invalid_request_error (param checked when given)
bad() {
	emb "$1"
	assert_status 400 || return 1
	assert_json 'j.error.type === "invalid_request_error" && typeof j.error.message === "string"' || return 1
	[ $# -lt 2 ] || assert_json "j.error.param === $2"
}

@test "400: model missing, input missing, input of the wrong shape, in OpenAI's words" {
	local input
	bad '{"input":"x"}' null
	assert_json 'j.error.message === "you must provide a model parameter" && j.error.code === null'
	bad '{"model":"","input":"x"}'
	bad '{"model":7,"input":"x"}'
	bad "{\"model\":\"$LOCAL\"}" '"input"'
	assert_json "j.error.message === \"Missing required parameter: 'input'.\" && j.error.code === 'missing_required_parameter'"
	for input in '""' '[]' '[""]' '["a",""]' '["a",1]' '[1,"a"]' '[1.5]' '[-1]' '[[]]' '[[1],"a"]' '[[1,-2]]' \
		'[["a"]]' '{}' 'null' 'true' '5' '[null]' '[{"text":"a"}]'; do
		bad "{\"model\":\"$LOCAL\",\"input\":$input}" null || { echo "input $input" >&2; return 1; }
		assert_json "j.error.message === \"'\$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.\""
		assert_json 'j.error.code === null'
	done
}

@test "400: encoding_format, dimensions and user of the wrong value or type" {
	local d
	bad "{\"model\":\"$LOCAL\",\"input\":\"x\",\"encoding_format\":\"md5\"}" '"encoding_format"'
	assert_json "j.error.message === \"Invalid value for 'encoding_format' = md5. Supported values: ['float', 'base64'].\""
	bad "{\"model\":\"$LOCAL\",\"input\":\"x\",\"encoding_format\":1}" '"encoding_format"'
	for d in 0 -1 3073 1.5 '"8"' true 99999999999; do
		bad "{\"model\":\"$LOCAL\",\"input\":\"x\",\"dimensions\":$d}" '"dimensions"' || { echo "dimensions $d" >&2; return 1; }
		assert_json 'j.error.code === "invalid_value" && j.error.message.includes("from 1 to 3072")'
	done
	bad "{\"model\":\"$LOCAL\",\"input\":\"x\",\"user\":5}" '"user"'
}

@test "400: the limits MCPGW_EMBEDDING_MAX_INPUTS and MCPGW_EMBEDDING_MAX_INPUT_BYTES" {
	local s64 s65
	bad "{\"model\":\"$LOCAL\",\"input\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}" '"input"'
	assert_json 'j.error.code === "too_many_inputs" && j.error.message.includes("MCPGW_EMBEDDING_MAX_INPUTS")'
	bad "{\"model\":\"$LOCAL\",\"input\":[[1],[2],[3],[4],[5]]}" '"input"'
	emb "{\"model\":\"$LOCAL\",\"input\":[\"a\",\"b\",\"c\",\"d\"]}"
	assert_status 200
	s64=$(printf 'x%.0s' $(seq 64))
	s65="${s64}y"
	emb "{\"model\":\"$LOCAL\",\"input\":\"$s64\"}"
	assert_status 200
	bad "{\"model\":\"$LOCAL\",\"input\":[\"ok\",\"$s65\"]}" '"input"'
	assert_json 'j.error.code === "input_too_long" && j.error.message.startsWith("Input 1 is 65 bytes")'
	# a token array may hold MCPGW_EMBEDDING_MAX_INPUT_BYTES / 4 ids
	emb "{\"model\":\"$LOCAL\",\"input\":[$(seq -s, 1 16)]}"
	assert_status 200
	bad "{\"model\":\"$LOCAL\",\"input\":[$(seq -s, 1 17)]}" '"input"'
	assert_json 'j.error.code === "input_too_long"'
}

@test "400 for a body that is no JSON object; 413 over MCPGW_MAX_BODY_BYTES" {
	emb '{"model":'
	assert_openai_error 400 invalid_json
	emb '["a"]'
	assert_openai_error 400 invalid_request
	head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"model":"mcpgw-embedding-local","input":"/; s/$/"}/' >"$BATS_TEST_TMPDIR/big.json"
	emb "@$BATS_TEST_TMPDIR/big.json"
	assert_openai_error 413 request_too_large
	assert_still_serving
}

@test "405 for other methods (Allow: POST); 404 for other paths" {
	get /v1/embeddings
	assert_openai_error 405 method_not_allowed
	grep -qi '^Allow: POST' <<<"$HEADERS"
	http PUT /v1/embeddings '{}'
	assert_openai_error 405 method_not_allowed
	http DELETE /v1/embeddings
	assert_status 405
	post /v1/embeddingsX '{}'
	assert_openai_error 404 unknown_url
	post /v1/embeddings/x '{}'
	assert_openai_error 404 unknown_url
}

@test "other models go to EMBEDDING_BASE_URL with EMBEDDING_API_KEY: the body forwarded as sent, the answer passed through" {
	local sent='{"model":"text-embedding-3-small","input":["alpha","beta","gamma"],"dimensions":64,"encoding_format":"base64","user":"u-7"}'
	sim_reset
	emb "$sent"
	assert_status 200
	assert_json 'j.object === "list" && j.model === "text-embedding-3-small" && j.data.length === 3'
	# the simulator's base64 vectors of 64 floats, untouched
	assert_json 'j.data.every((d, i) => d.index === i && typeof d.embedding === "string" && Buffer.from(d.embedding, "base64").length === 256)'
	run json_eval "(() => { const r = j.filter(e => e.path === '/v1/embeddings'); return r.length === 1 &&
		JSON.stringify(r[0].body) === JSON.stringify($sent) && r[0].headers.authorization === 'Bearer $SIM_KEY' && r[0].status === 200; })()" \
		"$(sim_requests)"
	[ "$output" = true ]
	# float as the upstream sends it
	emb '{"model":"text-embedding-3-large","input":"alpha"}'
	assert_status 200
	assert_json 'j.data[0].embedding.length === 3072'
}

@test "text-embedding-ada-002 goes upstream by default; an alias is replaced by its model" {
	sim_reset
	emb '{"model":"text-embedding-ada-002","input":"hello"}'
	assert_status 200
	assert_json 'j.model === "text-embedding-ada-002" && j.data[0].embedding.length === 1536'
	emb '{"model":"ada","input":["hello",[1,2]]}'
	assert_status 200
	run json_eval 'j.length === 2 && j[1].body.model === "text-embedding-ada-002" && JSON.stringify(j[1].body.input) === JSON.stringify(["hello",[1,2]])' \
		"$(sim_requests 'path=/v1/embeddings')"
	[ "$output" = true ]
}

@test "upstream errors pass through: the upstream's 4xx, a 500 after the retries, its 404 for an unknown model" {
	sim_reset
	emb '{"model":"text-embedding-ada-002","input":"x","dimensions":8}'
	assert_status 400
	assert_json 'j.error.message === "This model does not support specifying dimensions."'
	emb '{"model":"no-such-embedder","input":"x"}'
	assert_openai_error 404 model_not_found
	sim_script '[{"endpoint":"embeddings","error":{"status":500,"message":"sim boom 1"}},{"endpoint":"embeddings","error":{"status":500,"message":"sim boom 2"}}]'
	emb '{"model":"text-embedding-3-small","input":"x"}'
	assert_status 500
	assert_json 'j.error.message === "sim boom 2" && j.error.type === "server_error"'
	# one 500, then the retry succeeds
	sim_script '[{"endpoint":"embeddings","error":{"status":503,"message":"busy"}}]'
	emb '{"model":"text-embedding-3-small","input":"x"}'
	assert_status 200
	# each failed request was tried twice (MCPGW_UPSTREAM_RETRIES=1) and logged
	[ "$(json_eval 'j.filter(r => r.status >= 500).length' "$(sim_requests 'path=/v1/embeddings')")" = 3 ]
	grep -q "embeddings: $SIM_URL/v1/embeddings answered HTTP 500" "$MCPGW_STATE_DIR/responders.log"
}

@test "one kept-alive upstream connection for every forwarded request" {
	local i
	sim_reset
	for i in 1 2 3 4 5; do
		emb "{\"model\":\"text-embedding-3-small\",\"input\":\"n$i\"}"
		assert_status 200
	done
	[ "$(json_eval 'j.requests === 5 && j.connections === 1' "$(sim_stats)")" = true ] || { sim_stats >&2; return 1; }
}

@test "upstream down: 502 upstream_unreachable naming the URL; the built-in model still answers" {
	sim_stop
	emb '{"model":"text-embedding-3-small","input":"x"}'
	assert_openai_error 502 upstream_unreachable
	assert_json "j.error.message.includes('$SIM_URL/v1/embeddings')"
	emb "{\"model\":\"$LOCAL\",\"input\":\"still here\"}"
	assert_status 200
}
