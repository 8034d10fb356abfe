#!/usr/bin/env bats
# backoff.bats: a server that keeps failing at start is retried ever later (and says why); one that ran fine restarts at once.

load helpers

mcpgw_custom_config() {
	# a stand-in for `npx -y` of a mistyped package: npm's real output, exit 1;
	# each start appends its time to $MCPGW_HOME/starts
	cat >"$MCPGW_HOME/fake-npx" <<'SCRIPT'
#!/bin/sh
date +%s.%N >>"$MCPGW_HOME/starts"
cat >&2 <<'NPM'
npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/@modelcontextprotocol%2fserver-nonexistent-xyz
npm error 404
npm error 404  The requested resource '@modelcontextprotocol/server-nonexistent-xyz@*' could not be found or you do not have permission to access it.
npm error 404
npm error 404 Note that you can also install from a
npm error 404 tarball, folder, http url, or git url.
npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-03T05_43_34_551Z-debug-0.log
NPM
exit 1
SCRIPT
	chmod +x "$MCPGW_HOME/fake-npx"
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{
  "mcpServers": {
    "sqlite": {"command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/t.db"]},
    "typo": {"command": "$MCPGW_HOME/fake-npx", "args": ["-y", "@modelcontextprotocol/server-nonexistent-xyz"],
             "env": {"MCPGW_HOME": "$MCPGW_HOME"}}
  }
}
EOF
	cat >"$MCPGW_HOME/.env" <<EOF
MCPGW_LOG_LEVEL=debug
# waits of 1 s, then 2 s, then 2 s again (the cap) keep this file fast
MCPGW_RESTART_BACKOFF_MAX=2
EOF
}

setup_file() { mcpgw_setup_file; }
teardown_file() { mcpgw_teardown_file; }

# wait_starts N: until the failing server was started N times (at most 20 s)
wait_starts() {
	for _ in $(seq 200); do
		[ "$(cat "$MCPGW_HOME/starts" 2>/dev/null | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "fewer than $1 starts: $(cat "$MCPGW_HOME/starts" 2>/dev/null)" >&2
	return 1
}

@test "a server that keeps failing at start waits 1 s, then 2 s, and no longer than MCPGW_RESTART_BACKOFF_MAX" {
	local gaps g1 g2 g3
	wait_starts 4
	# the gaps between the first four starts, in seconds
	gaps=$(awk 'NR > 1 && NR <= 4 { printf "%.3f ", $1 - prev } { prev = $1 }' "$MCPGW_HOME/starts")
	echo "gaps: $gaps"
	read -r g1 g2 g3 <<<"$gaps"
	# 1 s, 2 s, then 2 s again (4 s without the cap); each plus the time the script takes to fail
	awk -v a="$g1" -v b="$g2" -v c="$g3" 'BEGIN {
		exit !(a >= 0.95 && a < 1.8 && b >= 1.95 && b < 2.9 && c >= 1.95 && c < 3.5) }'
}

@test "/health shows a failing server's backoff and a generic reason; its stderr's telling line is for operators" {
	local s="j.servers.find(s => s.name === 'typo')"
	wait_starts 2
	wait_server_state typo backoff
	get /health
	assert_status 200
	assert_json "j.status === 'degraded'"
	assert_json "$s.state === 'backoff' && $s.retries >= 1"
	assert_json "$s.next_retry_in_ms > 0 && $s.next_retry_in_ms <= 2000"
	# clients get the state and a generic reason (issue 14: stderr tails stay in the log)
	assert_json "$s.last_error === 'exited with status 1; see the broker log'"
	assert_json "!('detail' in $s)"
	# local operators the telling line, not npm's boilerplate
	run "$MCPGW_ROOT/broker/mcpgw-broker" --status
	[[ "$output" == *$'typo\tbackoff\t'*$'\texited with status 1 (stderr: npm error 404 Not Found - GET https://registry.npmjs.org/@modelcontextprotocol%2fserver-nonexistent-xyz)'* ]]
	[[ "$output" != *"complete log"* ]]
	# a healthy server has neither
	assert_json "j.servers.find(s => s.name === 'sqlite').retries === 0"
	assert_json "j.servers.find(s => s.name === 'sqlite').next_retry_in_ms === null"
}

@test "the broker log says why the server failed, when it is tried again, and how often it failed" {
	wait_starts 3
	grep -q "server typo: exited with status 1 (stderr: npm error 404 Not Found - GET https://registry.npmjs.org/[^)]*); retrying in 1 s$" \
		"$MCPGW_STATE_DIR/broker.log"
	grep -q "server typo: exited with status 1 (stderr: npm error 404 Not Found .*); retrying in 2 s (failed 2 times in a row)$" \
		"$MCPGW_STATE_DIR/broker.log"
}

@test "a server that ran fine and then died restarts within a fraction of a second" {
	local pid ms
	wait_server_state sqlite ready
	pid=$(server_field sqlite pid)
	kill -9 "$pid"
	for _ in $(seq 100); do
		[ "$(server_field sqlite state)" = ready ] && [ "$(server_field sqlite pid)" != "$pid" ] && break
		sleep 0.05
	done
	[ "$(server_field sqlite state)" = ready ]
	[ "$(server_field sqlite pid)" != "$pid" ]
	grep -q "server sqlite: killed by signal 9\( (stderr: .*)\)\?; retrying in 0.1 s$" "$MCPGW_STATE_DIR/broker.log"
	[ "$(server_field sqlite retries)" = 0 ]
	# ready again, it still says why it went down, and when (last_error is for a server not ready)
	[ "$(server_field sqlite last_error)" = null ]
	BODY=$(curl -s -m 10 "$MCPGW_URL/health")
	[ "$(json_eval "const f = j.servers.find(s => s.name === 'sqlite').last_failure;
		JSON.stringify(Object.keys(f)) + ' ' + f.error.startsWith('killed by signal 9') + ' ' + (f.ms_ago >= 0 && f.ms_ago < 60000)")" = '["error","ms_ago"] true true' ]
	# from the death to ready again, by the broker's own clock (the log's times: the polling above is
	# only as quick as the machine runs curl and node)
	ms=$(awk 'function ms(ts,  t, h) { split(ts, t, "T"); split(t[2], h, ":"); return (h[1] * 60 + h[2]) * 60000 + h[3] * 1000 }
		/ server sqlite: killed by signal 9/ { k = ms($1) }
		k && / server sqlite: .* -> ready$/ { r = ms($1) - k; k = 0 }
		END { printf "%d\n", r }' "$MCPGW_STATE_DIR/broker.log")
	echo "# ready again ${ms} ms after it was killed (broker log)" >&3
	[ "$ms" -gt 0 ] && [ "$ms" -lt 1500 ]
}
