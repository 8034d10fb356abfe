#!/usr/bin/env bats
# models.bats: GET /v1/models[/{id}] through the real stack against the upstream simulator: merge, cache, fallback when the upstream is down.
#
# The tests run in order and share one gateway: the upstream is down at first
# (nothing listens on its port yet), then the simulator starts on that port,
# then it stops again.

load helpers
mcpgw_load_sim

DEFAULT=mcpgw-house-model
ALIASES=fast=gpt-4o-mini,house=sim-model

mcpgw_custom_config() {
	SIM_PORT=$(free_port)
	while [ "$SIM_PORT" = "${MCPGW_LISTEN##*:}" ]; do SIM_PORT=$(free_port); done
	export SIM_PORT SIM_URL="http://127.0.0.1:$SIM_PORT"
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"] } } }
JSON
	printf 'MCPGW_LOG_LEVEL=debug\n' >"$MCPGW_HOME/.env"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=$DEFAULT" "MCPGW_MODEL_ALIASES=$ALIASES" \
		"MCPGW_MODELS_CACHE_TTL=2" "MCPGW_UPSTREAM_RETRIES=1" "MCPGW_UPSTREAM_RETRY_MAX_WAIT=0.2"
}

setup_file() { mcpgw_setup_file; }

teardown_file() {
	[ -s "$MCPGW_HOME/sim.pid" ] && sim_stop "$(cat "$MCPGW_HOME/sim.pid")"
	mcpgw_teardown_file
}

# start_sim: the simulator on the port the gateway was configured with
start_sim() {
	sim_start --port "$SIM_PORT" || return 1
	echo "$SIM_PID" >"$MCPGW_HOME/sim.pid"
}

# wait_listed ID: poll GET /v1/models (up to 10 s) until ID is listed
wait_listed() {
	local i=0
	while :; do
		get /v1/models
		[ "$HTTP_STATUS" = 200 ] && [ "$(json_eval "j.data.some(m => m.id === '$1')")" = true ] && return 0
		[ $i -lt 100 ] || { echo "$1 not listed after 10 s: $BODY" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

@test "upstream down, nothing cached: the list still answers with DEFAULT_MODEL, the aliases and the built-in embedding model" {
	get /v1/models
	assert_status 200
	assert_json 'j.object === "list"'
	assert_json "JSON.stringify(j.data.map(m => m.id)) === JSON.stringify(['$DEFAULT', 'fast', 'house', 'mcpgw-embedding-local'])"
	assert_json 'j.data.every(m => m.object === "model" && m.owned_by === "mcpgw" && Number.isInteger(m.created))'
	grep -q "could not connect to $SIM_URL/v1/models" "$MCPGW_STATE_DIR/responders.log"
}

@test "upstream down: /v1/models/{id} finds the default model, 404 model_not_found otherwise" {
	get "/v1/models/$DEFAULT"
	assert_status 200
	assert_json "j.id === '$DEFAULT' && j.object === 'model' && j.owned_by === 'mcpgw'"
	get /v1/models/gpt-4o-mini
	assert_openai_error 404 model_not_found
}

@test "upstream up: the simulator's models plus DEFAULT_MODEL and the aliases, each once" {
	start_sim
	wait_listed gpt-4o-mini
	assert_json "['gpt-4o-mini', 'gpt-4o', 'sim-model', 'text-embedding-3-small'].every(id => j.data.some(m => m.id === id))"
	assert_json "['$DEFAULT', 'fast', 'house'].every(id => j.data.filter(m => m.id === id).length === 1)"
	assert_json "new Set(j.data.map(m => m.id)).size === j.data.length"
	assert_json 'j.data.find(m => m.id === "gpt-4o-mini").owned_by === "system"'
	assert_json 'j.data.find(m => m.id === "gpt-4o-mini").created === 1721172741'
	assert_json 'j.data.find(m => m.id === "fast").owned_by === "mcpgw"'
}

@test "the list is cached for MCPGW_MODELS_CACHE_TTL, then fetched again on the same connection" {
	local before after stats
	get /v1/models
	before=$(json_eval 'j.requests' "$(sim_stats)")
	get /v1/models
	get /v1/models/gpt-4o
	assert_status 200
	after=$(json_eval 'j.requests' "$(sim_stats)")
	[ "$before" = "$after" ] || { echo "cached list fetched again: $before -> $after requests" >&2; return 1; }
	sleep 2.1
	get /v1/models
	assert_status 200
	stats=$(sim_stats)
	[ "$(json_eval 'j.requests' "$stats")" = $((after + 1)) ]
	# one process, one kept-alive connection for every fetch
	[ "$(json_eval 'j.connections' "$stats")" = 1 ] || { echo "connections: $stats" >&2; return 1; }
	[ "$(json_eval 'j.every(r => r.headers.authorization === "Bearer sk-mcpgw-test")' "$(sim_requests)")" = true ]
}

@test "GET /v1/models/{id}: upstream model, alias, unknown id in OpenAI's exact error shape" {
	get /v1/models/gpt-4o-mini
	assert_status 200
	assert_json 'j.id === "gpt-4o-mini" && j.object === "model" && j.owned_by === "system" && j.created === 1721172741'
	get /v1/models/house
	assert_status 200
	assert_json 'j.id === "house" && j.owned_by === "mcpgw"'
	get /v1/models/no-such-model
	assert_openai_error 404 model_not_found
	assert_json "j.error.message === \"The model 'no-such-model' does not exist\""
	assert_json 'j.error.type === "invalid_request_error" && j.error.param === "model"'
	get /v1/models/org%2Fthing/sub
	assert_openai_error 404 model_not_found
	assert_json "j.error.message === \"The model 'org/thing/sub' does not exist\""
}

@test "other methods get 405 with Allow; HEAD is served; other paths under the prefix 404" {
	http POST /v1/models '{}'
	assert_openai_error 405 method_not_allowed
	grep -qi '^Allow: GET, HEAD' <<<"$HEADERS"
	http DELETE /v1/models/fast
	assert_status 405
	run curl -s -o /dev/null -w '%{http_code}' -I "$MCPGW_URL/v1/models"
	[ "$output" = 200 ]
	get /v1/modelsX
	assert_status 404
}

@test "upstream gone again: the stale cached list is served, not an error" {
	sim_stop "$(cat "$MCPGW_HOME/sim.pid")"
	sleep 2.1
	get /v1/models
	assert_status 200
	assert_json 'j.data.some(m => m.id === "gpt-4o-mini" && m.owned_by === "system")'
	assert_json "j.data.some(m => m.id === '$DEFAULT')"
	get /v1/models/gpt-4o
	assert_status 200
	[ "$(grep -c "serving the cached list" "$MCPGW_STATE_DIR/responders.log")" -ge 1 ]
}
