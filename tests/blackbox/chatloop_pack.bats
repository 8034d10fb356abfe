#!/usr/bin/env bats
# chatloop_pack.bats: which of a chat.fcgi process's event loops a run goes to (chatloop_choose,
# lib/http/chatloop.h): runs are packed onto the first loop that is not busy, so that plain chats
# one after another all run on one loop, awake, and the process's other loop sleeps (it is not
# woken for every other run, as it was when each run went to the loop with the fewest runs, in
# turn). One chat.fcgi process with MCPGW_CHAT_LOOPS=2; behind lighttpd only (the driver is the
# responder's; the web server does not matter).

load helpers
mcpgw_load_sim

mcpgw_custom_config() {
	cat >"$MCPGW_HOME/servers_config.json" <<JSON
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/test.db"] } } }
JSON
	cat >"$MCPGW_HOME/.env" <<ENV
MCPGW_CHAT_DRIVER=loop
MCPGW_CHAT_LOOPS=2
MCPGW_RESPONDER_PROCS=chat:1
MCPGW_LOG_LEVEL=info
ENV
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=sim-model"
}

setup_file() {
	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || return 0
	mcpgw_setup_file_with_sim
}
teardown_file() {
	[ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || return 0
	mcpgw_teardown_file_with_sim
}

setup() { [ "${MCPGW_FRONTEND:-lighttpd}" = lighttpd ] || skip "the chat driver is the responder's: behind lighttpd only"; }

# loop_wakeups PID: "TID SWITCHES" for each of the process's two loop threads (named chat-loop, the
# two oldest of that name: a thread a loop starts, curl's resolver's, inherits the name): the times
# each went to sleep (voluntary context switches), one line each
loop_wakeups() {
	local t

	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = chat-loop ] || continue
		echo "${t##*/} $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")"
	done | sort -n | head -n 2
}

@test "loop: 300 plain chats one after another run on one of the process's two loops; the other sleeps through them" {
	local pid before after busy=0 idle=-1 tid n was

	post /v1/chat/completions '{"model":"sim-model","messages":[{"role":"user","content":"warm"}],"mcp":{"tools":false}}'
	assert_status 200
	pid=$(chat_fcgi_pid)
	grep -q 'chat completions run on 2 event loops' "$MCPGW_STATE_DIR/responders.log"
	before=$(loop_wakeups "$pid")
	[ "$(echo "$before" | wc -l)" = 2 ] || { echo "loop threads: $before" >&2; return 1; }
	node -e '
		const [url, auth] = process.argv.slice(1);
		(async () => {
			for (let i = 0; i < 300; i++) {
				const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${auth}` },
					body: JSON.stringify({ model: "sim-model", messages: [{ role: "user", content: `n${i}` }], mcp: { tools: false } }) });
				if (r.status !== 200) { console.error(`chat ${i}: HTTP ${r.status}`); process.exit(1); }
				await r.json();
			}
		})().catch((e) => { console.error(e.message); process.exit(1); });
	' "$MCPGW_URL/v1/chat/completions" "$CANARY_AUTHORIZATION"
	after=$(loop_wakeups "$pid")
	[ "$(chat_fcgi_pid)" = "$pid" ] || { echo "chat.fcgi was restarted" >&2; return 1; }
	echo "loops (tid, times asleep) before: $(echo $before), after: $(echo $after)" >&3
	# per loop, the times it went to sleep during the 300 chats: one slept often (a run per pass at
	# most, each wait between two chats), the other a few times (its 1 s idle wait's timeouts)
	while read -r tid n; do
		was=$(echo "$before" | awk -v t="$tid" '$1 == t { print $2 }')
		n=$((n - was))
		if [ "$n" -ge 150 ]; then busy=$((busy + 1)); elif [ "$idle" -lt 0 ]; then idle=$n; fi
	done <<<"$after"
	[ "$busy" = 1 ] || { echo "$busy loops woke for the chats" >&2; return 1; }
	[ "$idle" -ge 0 ] && [ "$idle" -le 20 ] || { echo "the other loop slept $idle times" >&2; return 1; }
}
