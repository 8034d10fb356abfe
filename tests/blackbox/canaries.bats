#!/usr/bin/env bats
# canaries.bats: the canary machinery itself (tests/canaries.sh, canaries.mjs): each canary planted where it belongs, a home kept as grepped, a leak in a kept copy found and named.
#
# Every test works in an artifacts directory of its own (D), never in the run's: a leak planted here
# must not fail the end-of-run check.

bats_require_minimum_version 1.5.0

load helpers

setup() {
	D="$BATS_TEST_TMPDIR/art"
	H="$BATS_TEST_TMPDIR/home"
	mkdir -p "$H/var"
	sh "$MCPGW_ROOT/tests/canaries.sh" init "$D"
}

# cn CHANNEL: a canary of D
cn() { awk -v c="$1" '$1 == c { print $2 }' "$D/canaries"; }
# mjs ARGS: canaries.mjs on D
mjs() { MCPGW_TEST_ARTIFACTS="$D" node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" "$@"; }

@test "init: one canary per channel, distinct, each the run's prefix and 16 more hex digits; a second init keeps them" {
	local p
	p=$(cn prefix)
	[[ "$p" =~ ^k[0-9a-f]{10}$ ]]
	[ "$(grep -vc '^prefix ' "$D/canaries")" = 7 ]
	[ "$(awk '$1 != "prefix" { print $2 }' "$D/canaries" | sort -u | grep -c "^$p[0-9a-f]\{16\}$")" = 7 ]
	cp "$D/canaries" "$BATS_TEST_TMPDIR/before"
	sh "$MCPGW_ROOT/tests/canaries.sh" init "$D"
	cmp "$D/canaries" "$BATS_TEST_TMPDIR/before"
}

@test "plant: the .env secret, the SQLite server's env and stderr wrapper, every remote URL's query; other servers as they were" {
	printf 'MCPGW_LOG_LEVEL=debug\n' >"$H/.env"
	cat >"$H/servers_config.json" <<EOF
{"mcpServers": {
  "sqlite": {"command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$H/t.db"], "excludeTools": ["append_insight"]},
  "other": {"command": "sh", "args": ["-c", "exit 0"]},
  "web": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
  "keyed": {"url": "http://127.0.0.1:9/sse?api_key=own#frag"}
}}
EOF
	mjs plant "$H"
	grep -qx "MCPGW_TEST_DOTENV_SECRET=$(cn dotenv)" "$H/.env"
	BODY=$(cat "$H/servers_config.json")
	assert_json "j.mcpServers.sqlite.command === '$MCPGW_ROOT/tests/blackbox/stderr-canary.sh'"
	assert_json "j.mcpServers.sqlite.args[0] === '$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite' && j.mcpServers.sqlite.args[1] === '$H/t.db'"
	assert_json "j.mcpServers.sqlite.env.MCPGW_TEST_SERVER_SECRET === '$(cn srvenv)' && j.mcpServers.sqlite.env.MCPGW_TEST_DSN_PASSWORD === '$(cn stderr)'"
	assert_json "JSON.stringify(j.mcpServers.other) === JSON.stringify({command: 'sh', args: ['-c', 'exit 0']})"
	assert_json "j.mcpServers.web.url === 'http://127.0.0.1:9/mcp?api_key=$(cn urlquery)'"
	assert_json "j.mcpServers.keyed.url === 'http://127.0.0.1:9/sse?api_key=own&access_token=$(cn urlquery)#frag'"
	# the layout a test's sed expects
	grep -q '"excludeTools": \["append_insight"\]' "$H/servers_config.json"
	# a config that is no JSON object is left alone
	printf '{not json' >"$H/servers_config.json"
	mjs plant "$H"
	[ "$(cat "$H/servers_config.json")" = '{not json' ]
}

@test "stderr-canary.sh: the DSN with the password on stderr, then the server, without the password in its environment" {
	run --separate-stderr env MCPGW_TEST_DSN_PASSWORD=pw-123 "$MCPGW_ROOT/tests/blackbox/stderr-canary.sh" sh -c 'echo "out:${MCPGW_TEST_DSN_PASSWORD-unset}"'
	[ "$status" -eq 0 ]
	[ "$output" = "out:unset" ]
	[ "$stderr" = "connecting to postgresql://app:pw-123@db.invalid:5432/app" ]
}

@test "keep: the raw inputs copied apart, every other file gzip'ed; a leak in a kept log is found and named, a clean home passes" {
	printf 'OPENAI_API_KEY=%s\n' "$(cn upstreamkey)" >"$H/.env"
	printf '{"mcpServers": {}}\n' >"$H/servers_config.json"
	printf 'INFO served\n' >"$H/var/broker.log"
	mjs keep "$H" clean
	cmp "$H/.env" "$D/raw/clean/.env"
	[ "$(gzip -dc "$D/kept/clean/var/broker.log.gz")" = "INFO served" ]
	[ ! -e "$D/kept/clean/.env.gz" ]
	run sh "$MCPGW_ROOT/tests/canaries.sh" check "$D"
	[ "$status" -eq 0 ]
	# the same home with the upstream key in its log and the cookie in its database
	printf 'DEBUG upstream key %s\n' "$(cn upstreamkey)" >>"$H/var/broker.log"
	sqlite3 "$H/var/mcpgw.db" "CREATE TABLE t(v); INSERT INTO t VALUES ('session=$(cn cookie)')"
	mjs keep "$H" leaky
	run sh "$MCPGW_ROOT/tests/canaries.sh" check "$D"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"LEAK: leaky/var/broker.log.gz: the upstreamkey canary"* ]]
	[[ "$output" == *"LEAK: leaky/var/mcpgw.db.gz: the cookie canary"* ]]
	[[ "$output" != *"LEAK: clean/"* ]]
}

@test "the helpers' requests carry the cookie canary, and the authorization canary only while no key is configured; responses kept" {
	local seen="$BATS_TEST_TMPDIR/seen" port pid
	port=$(free_port)
	# a listener that writes the request it got and answers 200
	node -e '
		const fs = require("fs");
		require("http").createServer((q, r) => {
			fs.writeFileSync(process.argv[1], JSON.stringify(q.headers));
			r.end("{\"ok\":true}");
		}).listen(Number(process.argv[2]), "127.0.0.1", () => console.log("up"));' "$seen" "$port" >"$BATS_TEST_TMPDIR/srv.out" 3>&- &
	pid=$!
	for _ in $(seq 100); do grep -q up "$BATS_TEST_TMPDIR/srv.out" && break; sleep 0.05; done
	MCPGW_URL="http://127.0.0.1:$port" MCPGW_HOME="$H"
	printf 'MCPGW_LOG_LEVEL=debug\n' >"$H/.env"
	get /x
	assert_json "JSON.parse(require('fs').readFileSync('$seen', 'utf8')).cookie === 'mcpgw_session=$CANARY_COOKIE'" "{}"
	assert_json "JSON.parse(require('fs').readFileSync('$seen', 'utf8')).authorization === 'Bearer $CANARY_AUTHORIZATION'" "{}"
	printf 'MCPGW_API_KEYS=some-key-of-the-test\n' >>"$H/.env"
	get /y
	assert_json "!('authorization' in JSON.parse(require('fs').readFileSync('$seen', 'utf8')))" "{}"
	kill "$pid"
	grep -q '^GET /y$' "$MCPGW_TEST_ARTIFACTS/kept/responses/$(artifacts_tag).txt"
}
