# sim.bash: bats helpers for the upstream LLM simulator.
#   load ../upstream-sim/sim          (from a file in tests/blackbox/)
#   setup_file()    { sim_start; }    # optional sim.mjs arguments: sim_start --api-key KEY
#   teardown_file() { sim_stop; }
# sim_start exports SIM_PID, SIM_PORT and SIM_URL (http://127.0.0.1:PORT; the OpenAI base URL is $SIM_URL/v1).

SIM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sim_start() {
	local out
	out=$(mktemp "${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}/sim.XXXXXX")
	# fd 3 closed: bats waits for it, a background process must not hold it
	node "$SIM_DIR/sim.mjs" --port 0 "$@" >"$out" 2>"$out.err" 3>&- &
	SIM_PID=$!
	local i=0
	until grep -q '^LISTENING ' "$out" 2>/dev/null; do
		if ! kill -0 "$SIM_PID" 2>/dev/null; then
			echo "sim_start: the simulator exited:" >&2; cat "$out.err" >&2; return 1
		fi
		i=$((i + 1))
		if [ $i -gt 200 ]; then echo "sim_start: no LISTENING line after 10 s" >&2; return 1; fi
		sleep 0.05
	done
	SIM_PORT=$(sed -n 's/^LISTENING //p' "$out")
	SIM_URL="http://127.0.0.1:$SIM_PORT"
	SIM_LOG="$out.err"
	export SIM_PID SIM_PORT SIM_URL SIM_LOG
}

# sim_stop [PID]: stop the simulator (by its PID only) and wait up to 2 s for it to go
sim_stop() {
	local pid=${1:-${SIM_PID:-}}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	local i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
	return 0
}

# sim_script 'JSON array of turns' : replace the queue of scripted answers
sim_script() { curl -sf -X POST --data-binary "$1" "$SIM_URL/_sim/script" >/dev/null; }
# sim_append 'JSON array of turns'  : append to the queue
sim_append() { curl -sf -X POST --data-binary "$1" "$SIM_URL/_sim/append" >/dev/null; }
# sim_reset : empty the queue, the request log and the counters
sim_reset() { curl -sf -X POST "$SIM_URL/_sim/reset" >/dev/null; }
# sim_requests : print the request log (JSON array)
sim_requests() { curl -sf "$SIM_URL/_sim/requests${1:+?$1}"; }
# sim_stats : print {"connections":N,"requests":M,...}
sim_stats() { curl -sf "$SIM_URL/_sim/stats"; }
# sim_profile NAME : speak that provider's dialect from now on (tests/upstream-sim/profiles.mjs)
sim_profile() { curl -sf -X POST --data-binary "{\"profile\":\"$1\"}" "$SIM_URL/_sim/profile" >/dev/null; }
