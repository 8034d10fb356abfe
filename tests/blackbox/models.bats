#!/usr/bin/env bats
# models.bats: GET /v1/models[/{id}] through the real stack against the upstream simulator: merge, cache, fallback when the upstream is down.
#
# The tests run in order and share one gateway: the upstream is down at first
# (nothing listens on its port yet), then the simulator starts on that port,
# then it stops again. models.fcgi runs as four processes (MCPGW_RESPONDER_PROCS
# for lighttpd and spawn-fcgi; mod_fcgid starts processes on demand, plain CGI
# one per request): the list is cached once for all of them, in the state store ($MCPGW_STATE_DIR/state.db).

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
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_RESPONDER_PROCS=models:4\n' >"$MCPGW_HOME/.env"
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
	mark_log sim
	# a slow listing: requests that come while one process fetches go to the others; connections kept
	# a minute (a process's fetches here can be more than the simulator's default 5 s apart)
	sim_start --port "$SIM_PORT" --models-delay-ms 300 --keepalive-ms 60000 || return 1
	echo "$SIM_PID" >"$MCPGW_HOME/sim.pid"
}

# mark_log NAME: remember where responders.log ends now
mark_log() {
	wc -l <"$MCPGW_STATE_DIR/responders.log" >"$MCPGW_HOME/mark.$1"
}

# models_pids FROM TO WHAT: the distinct pids of models.fcgi that logged WHAT ("fetching" or "GET")
# between mark_log FROM and mark_log TO
models_pids() {
	sed -n "$(($(cat "$MCPGW_HOME/mark.$1") + 1)),$(cat "$MCPGW_HOME/mark.$2")p" "$MCPGW_STATE_DIR/responders.log" |
		sed -n "s/.* models\.fcgi\[\([0-9]*\)\] DEBUG models: $3 .*/\1/p" | sort -u
}

# fetch_times FROM TO: when (ms since the epoch) models.fcgi started a fetch between mark_log FROM and TO, one a line
fetch_times() {
	sed -n "$(($(cat "$MCPGW_HOME/mark.$1") + 1)),$(cat "$MCPGW_HOME/mark.$2")p" "$MCPGW_STATE_DIR/responders.log" |
		sed -n 's/^\([0-9T:.-]*Z\) models\.fcgi\[[0-9]*\] DEBUG models: fetching .*/\1/p' |
		while read -r t; do date -d "$t" +%s%3N; done
}

# fetches_apart MS TIME...: at least one fetch, each MS or more after the one before (the TTL or the failure hold)
fetches_apart() {
	local ms=$1 i
	shift
	local t=("$@")
	[ ${#t[@]} -ge 1 ] || { echo "no fetch at all" >&2; return 1; }
	for ((i = 1; i < ${#t[@]}; i++)); do
		[ $((t[i] - t[i - 1])) -ge "$ms" ] ||
			{ echo "fetched again $((t[i] - t[i - 1])) ms after a fetch (at most one in $ms ms): ${t[*]}" >&2; return 1; }
	done
}

# store_sql SQL: run SQL on the state store the responders share (waiting for them as they do)
store_sql() {
	sqlite3 -cmd '.timeout 5000' "$MCPGW_STATE_DIR/state.db" "$1"
}

# fire NAME K PATH: K GET requests at once, each must answer 200; bodies in $MCPGW_HOME/conc.NAME
fire() {
	local i pids=() out="$MCPGW_HOME/conc.$1"
	rm -rf "$out" && mkdir -p "$out"
	for ((i = 0; i < $2; i++)); do
		curl -s -o "$out/$i.body" -w '%{http_code}' "$MCPGW_URL$3" >"$out/$i.status" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for ((i = 0; i < $2; i++)); do
		[ "$(cat "$out/$i.status")" = 200 ] || { echo "request $i: $(cat "$out/$i.status") $(cat "$out/$i.body")" >&2; return 1; }
	done
}

# check_bodies NAME CHECK: the JS CHECK holds for the body j of every request of fire NAME (one node for all)
check_bodies() {
	node -e '
		const fs = require("fs"), [dir, check] = process.argv.slice(1);
		const files = fs.readdirSync(dir).filter(f => f.endsWith(".body"));
		if (!files.length) { console.error(`no bodies in ${dir}`); process.exit(1); }
		for (const f of files) {
			const text = fs.readFileSync(`${dir}/${f}`, "utf8"), j = JSON.parse(text);
			if (!eval(check)) { console.error(`${f}: not ${check}: ${text}`); process.exit(1); }
		}' "$MCPGW_HOME/conc.$1" "$2"
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
	local before after stats t0 t1
	# the list stale first, so that this test's first request fetches it: the cache's age counts from t0
	sleep 2.1
	t0=$(date +%s%3N)
	get /v1/models
	before=$(json_eval 'j.requests' "$(sim_stats)")
	get /v1/models
	get /v1/models/gpt-4o
	assert_status 200
	after=$(json_eval 'j.requests' "$(sim_stats)")
	t1=$(date +%s%3N)
	# within the TTL (2 s) none; a machine so busy that these took longer may have fetched once more
	if [ $((t1 - t0)) -lt 2000 ]; then
		[ "$before" = "$after" ] || { echo "cached list fetched again: $before -> $after requests" >&2; return 1; }
	else
		[ "$after" -le $((before + 1)) ] || { echo "fetched $((after - before)) times in $((t1 - t0)) ms" >&2; return 1; }
	fi
	sleep 2.1
	get /v1/models
	assert_status 200
	stats=$(sim_stats)
	[ "$(json_eval 'j.requests' "$stats")" = $((after + 1)) ]
	# each process that fetched keeps one connection for all its fetches (under CGI every fetch is a new process)
	mark_log now
	fetchers=$(models_pids sim now fetching | wc -l)
	[ "$fetchers" -ge 1 ] && [ "$(json_eval 'j.connections' "$stats")" = "$fetchers" ] ||
		{ echo "connections: $stats; processes that fetched: $fetchers" >&2; return 1; }
	[ "$(json_eval 'j.every(r => r.headers.authorization === "Bearer '"$CANARY_UPSTREAMKEY"'")' "$(sim_requests)")" = true ]
}

@test "k requests that find the list stale, over several processes: one upstream fetch; within the TTL: none" {
	local before t0 t_end k=16 listed='j.data.some(m => m.id === "gpt-4o-mini")' times round served warm
	# a burst first, on a stale list while the upstream holds its answer (stopped) for 2.5 s: mod_fcgid
	# starts another process only for a request that waited 1 s for a busy one (its handle_request), and
	# the list comes in 300 ms otherwise (lighttpd and spawn-fcgi have four processes already)
	sleep 2.1
	kill -STOP "$(cat "$MCPGW_HOME/sim.pid")"
	fire warm 8 /v1/models &
	warm=$!
	sleep 2.5
	kill -CONT "$(cat "$MCPGW_HOME/sim.pid")"
	wait "$warm"
	check_bodies warm "$listed"
	[ "$(store_sql "SELECT count(*) FROM kv WHERE ns = 'sharedcache' AND key = 'models'")" = 1 ]
	[ "$(stat -c %a "$MCPGW_STATE_DIR/state.db")" = 600 ]
	# mod_fcgid may still send them all to one process: then once more (lighttpd and spawn-fcgi spread them at once)
	for round in 1 2 3 4 5; do
		sleep 2.1 # the TTL is over
		mark_log stale
		before=$(json_eval 'j.requests' "$(sim_stats)")
		t0=$(date +%s%3N)
		fire stale $k /v1/models  # the upstream takes 300 ms to list: they overlap with its fetch
		mark_log stale_end
		mapfile -t times < <(fetch_times stale stale_end)
		fetches_apart 2000 "${times[@]}"
		served=$(models_pids stale stale_end GET | wc -l)
		[ "$served" -lt 2 ] || break
	done
	fire fresh $k /v1/models  # within the TTL: served from the cache
	fire one 4 /v1/models/gpt-4o
	t_end=$(date +%s%3N)
	mark_log end
	mapfile -t times < <(fetch_times stale end)
	# every fetch is one upstream request, and no process fetched within the TTL (2 s) of the fetch before:
	# k requests on a stale list cause one fetch, k more within the TTL none
	[ "$(json_eval 'j.requests' "$(sim_stats)")" = $((before + ${#times[@]})) ]
	fetches_apart 2000 "${times[@]}"
	[ "${times[0]}" -ge "$t0" ]
	# (only a front end slower than the TTL for these requests may have fetched twice, 2 s apart)
	if [ $((t_end - times[0])) -lt 2000 ]; then
		[ "${#times[@]}" = 1 ] || { echo "${#times[@]} fetches for $((k * 2 + 4)) requests" >&2; return 1; }
	fi
	check_bodies stale "$listed"
	check_bodies fresh "$listed"
	check_bodies one 'j.id === "gpt-4o" && j.owned_by === "system"'
	# several processes took the stale burst, one of them fetched
	[ "$served" -ge 2 ] || { echo "only $served models.fcgi process(es) served the $k requests" >&2; return 1; }
	[ "$(models_pids stale stale_end fetching | wc -l)" = 1 ]
	echo "# $k stale + $((k + 4)) fresh requests in $((t_end - t0)) ms on $served processes: ${#times[@]} fetch(es) (round $round)" >&3
}

@test "three stale bursts in a row: each, spread over the processes, causes exactly one upstream fetch" {
	past_the_front_end # one burst over the processes is checked behind every front end just before
	local k=12 run before after t0 t1 times
	for run in 1 2 3; do
		sleep 2.1 # the TTL (2 s) is over
		mark_log r0
		before=$(json_eval 'j.requests' "$(sim_stats)")
		t0=$(date +%s%3N)
		fire "r$run" $k /v1/models
		fire "f$run" $k /v1/models   # and as many within the TTL
		t1=$(date +%s%3N)
		mark_log r1
		after=$(json_eval 'j.requests' "$(sim_stats)")
		mapfile -t times < <(fetch_times r0 r1)
		# a front end slower than the TTL for these requests may fetch again, 2 s later, never sooner
		if [ $((t1 - t0)) -lt 2000 ]; then
			[ "$((after - before))" = 1 ] || { echo "run $run: $((after - before)) fetches for $((2 * k)) requests" >&2; return 1; }
		else
			fetches_apart 2000 "${times[@]}"
		fi
		[ "${#times[@]}" = $((after - before)) ]
	done
}

@test "a broken cache entry is ignored and replaced by a fresh fetch" {
	local before
	before=$(json_eval 'j.requests' "$(sim_stats)")
	store_sql "UPDATE kv SET value = CAST('{\"source\":\"$SIM_URL/v1\",\"value\":[' AS BLOB) WHERE ns = 'sharedcache' AND key = 'models'"
	get /v1/models
	assert_status 200
	assert_json 'j.data.some(m => m.id === "gpt-4o-mini" && m.owned_by === "system")'
	[ "$(json_eval 'j.requests' "$(sim_stats)")" = $((before + 1)) ]
	json_eval "j.source === '$SIM_URL/v1' && j.value.length > 0" \
		"$(store_sql "SELECT value FROM kv WHERE ns = 'sharedcache' AND key = 'models'")" | grep -qx true
	grep -q "cache models: ignored (not JSON)" "$MCPGW_STATE_DIR/responders.log"
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

@test "upstream gone again: k requests over several processes try it once, all get the stale list, not an error" {
	local times
	sim_stop "$(cat "$MCPGW_HOME/sim.pid")"
	sleep 2.1 # the TTL is over
	mark_log down
	fire down 16 /v1/models
	fire one 2 /v1/models/gpt-4o
	mark_log down_end
	check_bodies down "j.data.some(m => m.id === 'gpt-4o-mini' && m.owned_by === 'system') && j.data.some(m => m.id === '$DEFAULT')"
	check_bodies one 'j.id === "gpt-4o" && j.owned_by === "system"'
	# one try, then every process holds off for 2 s (the failure is in the shared file too)
	mapfile -t times < <(fetch_times down down_end)
	fetches_apart 2000 "${times[@]}"
	echo "# 18 requests with the upstream down: ${#times[@]} try" >&3
	[ "$(grep -c "serving the cached list" "$MCPGW_STATE_DIR/responders.log")" -ge 1 ]
}
