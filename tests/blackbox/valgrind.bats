#!/usr/bin/env bats
# valgrind.bats: the broker, the SQLite server and every responder under valgrind memcheck for a short black-box session: no invalid access, no definite or indirect leak.
#
# jansson, libcurl, libfcgi and SQLite are not instrumented in the sanitizer build (make check-asan):
# valgrind sees inside them. mcpgwctl starts the broker and, behind lighttpd, each responder
# through MCPGWCTL_WRAP; the SQLite server's "command" is valgrind itself. Each process writes
# $MCPGW_HOME/vg/PID.log; the last test stops the gateway (SIGTERM: each process exits and
# valgrind runs its leak check) and reads every log. Suppressions: tests/valgrind.supp.

load helpers
mcpgw_load_sim

VG_OPTS="--leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --error-exitcode=99 --child-silent-after-fork=yes --num-callers=30"

mcpgw_custom_config() {
	local vg

	vg=$(command -v valgrind) || return 1
	mkdir -p "$MCPGW_HOME/vg"
	VG="$vg $VG_OPTS --suppressions=$MCPGW_ROOT/tests/valgrind.supp --log-file=$MCPGW_HOME/vg/%p.log"
	MCPGWCTL_WRAP=$VG
	export MCPGWCTL_WRAP
	# shellcheck disable=SC2086 # VG_OPTS: one option per word
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": { "sqlite": { "command": "$vg",
  "args": [$(printf '"%s", ' $VG_OPTS) "--suppressions=$MCPGW_ROOT/tests/valgrind.supp", "--log-file=$MCPGW_HOME/vg/%p.log",
           "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "$MCPGW_HOME/test.db"] } } }
EOF
	cat >"$MCPGW_HOME/.env" <<EOF
MCPGW_LOG_LEVEL=debug
MCPGW_TOOL_TIMEOUT=30
MCPGW_BROKER_TIMEOUT=30
MCPGW_INIT_TIMEOUT=60
EMBEDDING_BASE_URL=$SIM_URL/v1/
EMBEDDING_API_KEY=sk-mcpgw-test
EOF
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	! grep -qa __asan_init "$MCPGW_ROOT/broker/mcpgw-broker" ||
		skip "an AddressSanitizer build (make check-asan): ASan checks it there, valgrind cannot run it"
	MCPGW_STARTUP_WAIT=60 mcpgw_setup_file_with_sim
}
teardown_file() { mcpgw_teardown_file_with_sim; }

@test "valgrind: health, tools list and calls through the broker to the SQLite server" {
	HTTP_TIMEOUT=60
	wait_server_state sqlite ready 60
	get /health
	assert_status 200
	get /v1/tools
	assert_status 200
	assert_json 'j.data.some(t => t.name === "read_query")'
	post /v1/tools '{"tool":"create_table","arguments":{"query":"CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)"}}'
	assert_status 200
	post /v1/tools '{"tool":"write_query","arguments":{"query":"INSERT INTO t (s) VALUES (\"one\"), (\"two\")"}}'
	assert_status 200
	post /v1/tools '{"tool":"read_query","arguments":{"query":"SELECT s FROM t ORDER BY id"}}'
	assert_status 200
	assert_json 'JSON.stringify(j).includes("two")'
	post /v1/tools '{"tool":"read_query","arguments":{"query":"DELETE FROM t"}}'
	assert_status 422
	post /v1/tools '{"tool":"no_such_tool","arguments":{}}'
	assert_status 404
	post /v1/tools '{"tool":'
	assert_status 400
}

@test "valgrind: models, chat with a tool round and a mixed batch (plain and streamed), embeddings" {
	HTTP_TIMEOUT=60
	get /v1/models
	assert_status 200
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"One table."}]'
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"Which tables?"}]}'
	assert_status 200
	assert_json 'j.choices[0].message.content === "One table."'
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT count(*) AS n FROM t"}}]},{"content":"Counted.","chunks":3}]'
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"How many?"}]}'
	assert_status 200
	[[ "$BODY" == *"data: [DONE]"* ]]
	# a mixed batch: the gateway runs read_query, the client gets its own get_weather (plain, then streamed)
	local weather='{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}'
	local mixed='{"tool_calls":[{"id":"call_1","name":"read_query","arguments":{"query":"SELECT 1 AS one"}},{"id":"call_0","name":"get_weather","arguments":{"city":"Oslo"}}]}'
	sim_script "[$mixed]"
	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"Weather?"}],"tools":['"$weather"']}'
	assert_status 200
	assert_json 'j.choices[0].message.tool_calls.length === 1 && j.choices[0].message.tool_calls[0].function.name === "get_weather"'
	sim_script "[$mixed]"
	post /v1/chat/completions '{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"Weather?"}],"tools":['"$weather"']}'
	assert_status 200
	[[ "$BODY" == *get_weather* && "$BODY" == *"data: [DONE]"* ]]
	post /v1/chat/completions '{"model":"sim-model","messages":"not a list"}'
	assert_status 400
	post /v1/embeddings '{"model":"mcpgw-embedding-local","input":["one","two"]}'
	assert_status 200
	post /v1/embeddings '{"model":"text-embedding-3-small","input":"forwarded"}'
	assert_status 200
}

# vg_done LOG: valgrind finished LOG (the process exited and the leak check ran)
vg_done() { grep -q 'ERROR SUMMARY:' "$1"; }

@test "valgrind: every process exits on stop with no invalid access and no definite or indirect leak" {
	local f i=0 n=0 bad=0 progs

	sh "$MCPGW_ROOT/deploy/mcpgwctl" stop >/dev/null 2>&1
	# lighttpd sends its responders SIGTERM and does not wait for them; the broker closes the SQLite server's stdin
	for f in "$MCPGW_HOME"/vg/*.log; do
		while ! vg_done "$f"; do
			[ $i -lt 600 ] || { echo "valgrind did not finish $f in 60 s:" >&2; tail -n 20 "$f" >&2; return 1; }
			sleep 0.1
			i=$((i + 1))
		done
	done
	progs=$(sed -n 's/^==[0-9]*== Command: \([^ ]*\).*/\1/p' "$MCPGW_HOME"/vg/*.log | sed 's|.*/||' | sort -u | tr '\n' ' ')
	echo "# valgrind ran: $progs" >&3
	for p in mcpgw-broker mcp-server-sqlite health.fcgi tools.fcgi models.fcgi chat.fcgi embeddings.fcgi; do
		[[ " $progs " == *" $p "* ]] || { echo "no valgrind log of $p (ran: $progs)" >&2; return 1; }
	done
	for f in "$MCPGW_HOME"/vg/*.log; do
		n=$((n + 1))
		# a process killed by a signal is no clean exit (its leak check still runs, over a stopped process)
		grep -q 'ERROR SUMMARY: 0 errors' "$f" && ! grep -q 'Process terminating with default action' "$f" && continue
		echo "valgrind found errors in $(sed -n 's/^==[0-9]*== Command: //p' "$f") ($f):" >&2
		grep -v '^==[0-9]*== *$' "$f" | head -n 80 >&2
		bad=$((bad + 1))
	done
	[ "$bad" -eq 0 ]
	[ "$n" -ge 7 ]
}
