#!/usr/bin/env bats
# chatbot.bats: mcpgw-chat at a real terminal (tmux) and on a pipe, against the upstream simulator and the bundled SQLite server; no web server.
#
# Each test leaves no broker running: the chatbot stops the one it started;
# a test that starts one itself stops it by its PID.

load helpers
mcpgw_load_sim

CHAT="$MCPGW_ROOT/chat/mcpgw-chat"

setup_file() {
	[ -x "$CHAT" ] || { echo "chatbot.bats: build first (make all)" >&2; return 1; }
	command -v tmux >/dev/null || { echo "chatbot.bats: tmux missing (make deps)" >&2; return 1; }
	# short base path: the broker socket path must fit in sun_path (108 bytes)
	MCPGW_HOME=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-chat.XXXXXX")
	MCPGW_STATE_DIR="$MCPGW_HOME/var"
	export MCPGW_HOME MCPGW_STATE_DIR
	sim_start || return 1
	cat >"$MCPGW_HOME/servers_config.json" <<EOF
{ "mcpServers": { "sqlite": { "command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$MCPGW_HOME/test.db"] } } }
EOF
	printf 'MCPGW_LOG_LEVEL=debug\nMCPGW_UPSTREAM_RETRIES=0\nMCPGW_TOOL_TIMEOUT=10\n' >"$MCPGW_HOME/.env"
	# panes stay after the chatbot exits: its exit status and last screen can be read
	printf 'set -g remain-on-exit on\nset -g history-limit 5000\n' >"$MCPGW_HOME/tmux.conf"
	mcpgw_write_upstream_env "$SIM_URL/v1" "DEFAULT_MODEL=gpt-4o-mini"
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" plant "$MCPGW_HOME"  # the run's canaries (helpers.bash)
}

teardown_file() {
	[ -n "${MCPGW_HOME:-}" ] || return 0
	tm kill-server 2>/dev/null || true
	stop_broker "$MCPGW_STATE_DIR"
	sim_stop
	node "$MCPGW_ROOT/tests/blackbox/canaries.mjs" keep "$MCPGW_HOME" "$(artifacts_tag)" || true
	if [ "${MCPGW_BB_KEEP:-}" = 1 ]; then
		echo "# kept $MCPGW_HOME" >&3
	else
		rm -rf "$MCPGW_HOME"
	fi
}

setup() {
	sim_reset
	T=$BATS_TEST_TMPDIR
	tm kill-session -t chat 2>/dev/null || true
	stop_broker "$MCPGW_STATE_DIR"
}

# tm ARGS: tmux on this file's own server socket and config
tm() { tmux -f "$MCPGW_HOME/tmux.conf" -S "$MCPGW_HOME/tmux.sock" "$@"; }

# chat_tmux [ARGS...]: the chatbot in a fresh 150x50 tmux session "chat", under a shell that writes
# its exit status to $T/exit.code (tmux's own pane_dead_status is not reliable); TERM is $CHAT_TERM
# (default xterm)
chat_tmux() {
	tm kill-session -t chat 2>/dev/null || true
	rm -f "$T/exit.code"
	tm new-session -d -s chat -x 150 -y 50 -c "$MCPGW_HOME" \
		"TERM=${CHAT_TERM:-xterm} '$CHAT' $*; echo \$? >'$T/exit.code'" 3>&-
}

# chat_pid: the chatbot's PID (the child of the pane's shell)
chat_pid() { pgrep -P "$(tm display -p -t chat '#{pane_pid}')"; }

# screen: what the terminal shows (with scrollback)
screen() { tm capture-pane -p -t chat -S -500; }

# screen_has TEXT: the terminal shows TEXT (fixed string)
screen_has() { screen | grep -qF -- "$1"; }

# refute CMD...: CMD fails (a plain `! CMD` never fails a bats test: set -e ignores it)
refute() {
	if "$@"; then
		echo "expected to fail: $*" >&2
		return 1
	fi
}

# wait_screen TEXT [SECONDS]: until the terminal shows TEXT (fixed string)
wait_screen() {
	local i=0 max=$((${2:-15} * 20))
	until screen | grep -qF -- "$1"; do
		[ $i -lt $max ] || { echo "not on screen after ${2:-15} s: $1" >&2; screen >&2; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
}

# wait_count TEXT N [SECONDS]: until the terminal shows N lines holding TEXT (fixed string)
wait_count() {
	local i=0 max=$((${3:-15} * 20))
	until [ "$(screen | grep -cF -- "$1")" -ge "$2" ]; do
		[ $i -lt $max ] || { echo "not $2 times on screen after ${3:-15} s: $1" >&2; screen >&2; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
}

# wait_exit [SECONDS]: until the chatbot in tmux has exited; prints its exit status
wait_exit() {
	local i=0 max=$((${1:-15} * 20))
	until [ -s "$T/exit.code" ]; do
		[ $i -lt $max ] || { echo "the chatbot did not exit in ${1:-15} s" >&2; screen >&2; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
	cat "$T/exit.code"
}

# broker_alive: something answers on the broker socket
broker_alive() {
	[ -S "$MCPGW_STATE_DIR/broker.sock" ] &&
		node -e 'const c = require("net").connect(process.argv[1]); c.on("connect", () => process.exit(0)); c.on("error", () => process.exit(1));' \
			"$MCPGW_STATE_DIR/broker.sock"
}

# start_broker: a broker started by the test, not by the chatbot; sets BROKER_PID
start_broker() {
	local i=0
	"$MCPGW_ROOT/broker/mcpgw-broker" >>"$MCPGW_STATE_DIR/test-broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	until broker_alive; do
		[ $i -lt 100 ] || { echo "broker did not start" >&2; cat "$MCPGW_STATE_DIR/test-broker.log" >&2; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

# last_request EXPR: EXPR (JavaScript, r = the body of the last chat request to the simulator)
last_request() {
	json_eval "(r => $1)(j.filter(x => x.path === '/v1/chat/completions').at(-1).body)" "$(sim_requests)"
}

# chat_pipe INPUT [ARGS...]: the chatbot with INPUT on a pipe; sets status and output (stdout + stderr)
chat_pipe() {
	local input=$1
	shift
	printf '%s' "$input" >"$T/stdin"
	run timeout 60 "$CHAT" "$@" <"$T/stdin"
}

@test "terminal: a question that needs the database shows the tool call and streams the answer; exit stops the broker the chatbot started" {
	mkdir -p "$MCPGW_STATE_DIR"
	refute broker_alive
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},
		{"content":"alpha beta gamma delta","chunks":4,"chunk_delay_ms":400}]'
	chat_tmux
	wait_screen "Ask a question"
	screen | grep -q '6 tools from sqlite'
	pid=$(screen | sed -n 's/.*started mcpgw-broker (pid \([0-9]*\)).*/\1/p')
	[ -n "$pid" ] && kill -0 "$pid"
	tm send-keys -t chat 'Which tables are in the database?' Enter
	wait_screen '[tool sqlite] list_tables {} -> []'
	wait_screen 'alpha'
	refute screen_has 'delta' # streamed: the first words show before the last arrive
	wait_screen 'alpha beta gamma delta'
	wait_count 'You:' 2
	tm send-keys -t chat 'exit' Enter
	[ "$(wait_exit)" = 0 ]
	refute kill -0 "$pid" 2>/dev/null
	refute broker_alive
	[ ! -e "$MCPGW_STATE_DIR/broker.pid" ]
	# the tool round went to the model
	[ "$(last_request 'r.messages.map(m => m.role).join(",")')" = system,user,assistant,tool ]
	[ "$(last_request 'r.messages[2].tool_calls[0].function.name')" = list_tables ]
	[ "$(last_request 'r.stream')" = true ]
}

@test "terminal: line editing (Ctrl-A, Backspace, arrows, End) and history (up), Ctrl-D leaves with status 0" {
	chat_tmux
	wait_screen "Ask a question"
	tm send-keys -t chat 'tablez' BSpace 's?' C-a 'Which ' End ' now' Enter
	wait_screen 'sim: Which tables? now'
	[ "$(last_request 'r.messages.at(-1).content')" = 'Which tables? now' ]
	tm send-keys -t chat 'ac' Left 'b' Right 'd' Home Right 'X' Enter
	wait_screen 'sim: aXbcd'
	tm send-keys -t chat Up Up Enter
	wait_count 'sim: Which tables? now' 2
	[ "$(last_request 'r.messages.at(-1).content')" = 'Which tables? now' ]
	[ "$(last_request 'r.messages.filter(m => m.role === "user").length')" = 3 ]
	tm send-keys -t chat 'abc' C-u C-d
	[ "$(wait_exit)" = 0 ]
}

@test "terminal: with TERM=dumb lines are read plainly and the chatbot still works" {
	CHAT_TERM=dumb chat_tmux
	wait_screen "Ask a question"
	tm send-keys -t chat 'plain question' Enter
	wait_screen 'sim: plain question'
	tm send-keys -t chat 'exit' Enter
	[ "$(wait_exit)" = 0 ]
}

@test "terminal: Ctrl-C stops an answer and the session goes on" {
	sim_script '[{"content":"one two three four five six seven","chunks":7,"chunk_delay_ms":500}]'
	chat_tmux
	wait_screen "Ask a question"
	tm send-keys -t chat 'Count slowly' Enter
	wait_screen 'one'
	tm send-keys -t chat C-c
	wait_screen '(interrupted)'
	refute screen_has seven
	tm send-keys -t chat 'still there?' Enter
	wait_screen 'sim: still there?'
	tm send-keys -t chat 'quit' Enter
	[ "$(wait_exit)" = 0 ]
}

@test "terminal: SIGTERM at the prompt leaves and stops the broker" {
	chat_tmux
	wait_screen "Ask a question"
	pid=$(screen | sed -n 's/.*started mcpgw-broker (pid \([0-9]*\)).*/\1/p')
	cpid=$(chat_pid)
	[ -n "$pid" ] && [ -n "$cpid" ]
	kill -TERM "$cpid"
	[ "$(wait_exit)" = 143 ]
	refute kill -0 "$pid" 2>/dev/null
}

@test "pipe: questions are answered one per line in order; the broker the chatbot started stops with it" {
	chat_pipe $'first question\n\nsecond question\nthird question\n'
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep '^sim: ')" = $'sim: first question\nsim: second question\nsim: third question' ]
	refute broker_alive
	[ ! -e "$MCPGW_STATE_DIR/broker.pid" ]
	[ "$(grep -c 'INFO started .*mcpgw-broker' "$MCPGW_STATE_DIR/chat.log")" -ge 1 ]
}

@test "pipe: exit leaves with status 0 and a broker that was already running is left alone" {
	mkdir -p "$MCPGW_STATE_DIR"
	start_broker
	chat_pipe $'hello\nexit\nnot asked\n'
	[ "$status" -eq 0 ]
	[[ "$output" == *"sim: hello"* ]]
	[[ "$output" != *"not asked"* ]]
	kill -0 "$BROKER_PID"
	broker_alive
	kill "$BROKER_PID"
	wait "$BROKER_PID" || true
}

@test "-e answers one question and exits; --model and the system prompt are sent" {
	run timeout 60 "$CHAT" -e "What is 2+2?" --model gpt-4o
	[ "$status" -eq 0 ]
	[ "$output" = "sim: What is 2+2?" ]
	[ "$(last_request 'r.model')" = gpt-4o ]
	[ "$(last_request 'r.messages[0].role')" = system ]
	[[ "$(last_request 'r.messages[0].content')" == *"tools"* ]]
	[ "$(last_request 'r.tools.length')" = 6 ]
	refute broker_alive
}

@test "--session resumes a conversation after a restart, tool rounds included; --list-sessions shows it" {
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"Noted, Ada."}]'
	run timeout 60 "$CHAT" --session demo -e "My name is Ada."
	[ "$status" -eq 0 ]
	[[ "$output" == *"Noted, Ada."* ]]
	run timeout 60 "$CHAT" --session demo -e "What is my name?"
	[ "$status" -eq 0 ]
	[ "$(last_request 'r.messages.map(m => m.role).join(",")')" = system,user,assistant,tool,assistant,user ]
	[ "$(last_request 'r.messages[1].content')" = "My name is Ada." ]
	[ "$(last_request 'r.messages[4].content')" = "Noted, Ada." ]
	[ "$(last_request 'r.messages[3].tool_call_id === r.messages[2].tool_calls[0].id')" = true ]
	# the simulator's own tool-call id shape (no id scripted): OpenAI's, 24 characters of [A-Za-z0-9]
	[ "$(last_request '/^call_[A-Za-z0-9]{24}$/.test(r.messages[2].tool_calls[0].id)')" = true ]
	run "$CHAT" --list-sessions
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -Eq '^demo +6 +[0-9]{4}-[0-9]{2}-[0-9]{2} '
	# a pipe with --session continues it too
	chat_pipe $'And again?\n' --session demo
	[ "$status" -eq 0 ]
	[ "$(last_request 'r.messages.length')" = 8 ]
}

@test "the stored history holds the upstream's own tool-call ids, and they go back upstream" {
	sim_script '[{"tool_calls":[{"id":"call_upstreamOwnId0000000001","name":"list_tables","arguments":{}},{"id":"call_upstreamOwnId0000000002","name":"list_tables","arguments":{}}]},{"content":"Two looks, Ada."}]'
	run timeout 60 "$CHAT" --session ids -e "Look twice."
	[ "$status" -eq 0 ]
	[[ "$output" == *"Two looks, Ada."* ]]
	# chat.db: the assistant message's calls and the tool results under the upstream's ids
	run sqlite3 "$MCPGW_STATE_DIR/chat.db" "SELECT message FROM messages WHERE session = 'ids' ORDER BY seq"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 5 ]
	[ "$(printf '%s' "${lines[1]}" | node -e 'const m = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(m.role + " " + m.tool_calls.map(c => c.id).join(","))')" = "assistant call_upstreamOwnId0000000001,call_upstreamOwnId0000000002" ]
	[[ "${lines[2]}" == *'"tool_call_id":"call_upstreamOwnId0000000001"'* ]]
	[[ "${lines[3]}" == *'"tool_call_id":"call_upstreamOwnId0000000002"'* ]]
	# the next question sends them back as they were
	run timeout 60 "$CHAT" --session ids -e "And now?"
	[ "$status" -eq 0 ]
	[ "$(last_request 'r.messages.map(m => m.tool_call_id || (m.tool_calls || []).map(c => c.id).join("+")).filter(Boolean).join(",")')" = "call_upstreamOwnId0000000001+call_upstreamOwnId0000000002,call_upstreamOwnId0000000001,call_upstreamOwnId0000000002" ]
}

@test "terminal: a session without --session is saved under a date-time name and can be resumed" {
	chat_tmux
	wait_screen "Ask a question"
	name=$(screen | sed -n 's/.*session \([0-9]\{8\}-[0-9]\{6\}[-0-9]*\)$/\1/p' | head -n 1)
	[ -n "$name" ]
	tm send-keys -t chat 'remember the word kumquat' Enter
	wait_screen 'sim: remember the word kumquat'
	tm send-keys -t chat 'exit' Enter
	[ "$(wait_exit)" = 0 ]
	screen | grep -qF "mcpgw-chat --session $name resumes it"
	chat_tmux --session "$name"
	wait_screen "resumed: 2 earlier messages"
	tm send-keys -t chat Up
	wait_screen 'You: remember the word kumquat'
	tm send-keys -t chat C-u 'and now?' Enter
	wait_screen 'sim: and now?'
	[ "$(last_request 'r.messages[1].content')" = 'remember the word kumquat' ]
	tm send-keys -t chat C-d
	[ "$(wait_exit)" = 0 ]
}

@test "an empty model answer asks to rephrase and the session goes on" {
	sim_script '[{"content":""}]'
	chat_pipe $'first\nsecond\n'
	[ "$status" -eq 1 ] # on a pipe: a question went unanswered
	[[ "$output" == *"The model gave an empty answer. Please rephrase your question."* ]]
	[[ "$output" == *"sim: second"* ]]
	# the unanswered question is not kept in the conversation
	[ "$(last_request 'r.messages.map(m => m.content).join("|")' | cut -d'|' -f2-)" = second ]
}

@test "an upstream error is shown and the session goes on" {
	sim_script '[{"error":{"status":400,"message":"The simulator refuses this one.","code":"sim_refused"}}]'
	chat_pipe $'first\nsecond\n'
	[ "$status" -eq 1 ]
	[[ "$output" == *"error: The simulator refuses this one. (sim_refused)"* ]]
	[[ "$output" == *"sim: second"* ]]
}

@test "an unreachable upstream is shown and the session goes on" {
	port=$(free_port)
	MCPGW_UPSTREAM_CONNECT_TIMEOUT=2 OPENAI_BASE_URL="http://127.0.0.1:$port/v1" chat_pipe $'first\nsecond\n'
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | grep -c "127.0.0.1:$port")" = 2 ]
}

@test "a tool error is shown and the session goes on" {
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT * FROM no_such_table"}}]},
		{"content":"That table does not exist."}]'
	chat_pipe $'Read the table\nthanks\n'
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | grep -q '^  \[tool sqlite\] read_query {"query":"SELECT \* FROM no_such_table"} -> Tool error: .*no such table'
	[[ "$output" == *"That table does not exist."* ]]
	[[ "$output" == *"sim: thanks"* ]]
}

@test "a tool call shows while it runs: its running line comes before its result line" {
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"No tables yet."}]'
	chat_pipe $'Which tables?\n'
	[ "$status" -eq 0 ]
	start=$(printf '%s\n' "$output" | grep -n -F -x '  [tool sqlite] list_tables {} running...' | cut -d: -f1)
	end=$(printf '%s\n' "$output" | grep -n -F -x '  [tool sqlite] list_tables {} -> []' | cut -d: -f1)
	[ -n "$start" ] && [ -n "$end" ] && [ "$start" -lt "$end" ]
	[[ "$output" == *"No tables yet."* ]]
}

@test "the broker cannot start: a clear error with the end of its log" {
	bad="$T/bad"
	mkdir -p "$bad"
	echo '{"mcpServers": {"x": {"command": 5}}}' >"$bad/servers_config.json"
	MCPGW_HOME=$bad MCPGW_STATE_DIR="$bad/var" run timeout 60 "$CHAT" -e hi
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot start the tool broker: mcpgw-broker (pid "*") exited with status 1"* ]]
	[[ "$output" == *"mcpServers.x.command: expected a non-empty string"* ]]
	MCPGW_BROKER_BIN=/nonexistent/mcpgw-broker run timeout 60 "$CHAT" -e hi
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot run /nonexistent/mcpgw-broker: No such file or directory"* ]]
}

@test "two chatbots starting at once start one broker between them" {
	sim_script '[{"content":"slow one","delay_ms":1500},{"content":"slow two","delay_ms":1500}]'
	: >"$MCPGW_STATE_DIR/chat.log"
	timeout 60 "$CHAT" -e "one" >"$T/a.out" 2>&1 3>&- &
	a=$!
	timeout 60 "$CHAT" -e "two" >"$T/b.out" 2>&1 3>&- &
	b=$!
	wait "$a"
	wait "$b"
	grep -q '^slow' "$T/a.out"
	grep -q '^slow' "$T/b.out"
	[ "$(grep -c 'INFO started .*mcpgw-broker' "$MCPGW_STATE_DIR/chat.log")" = 1 ]
}

@test "--help, --version, a bad option" {
	run "$CHAT" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--session NAME"* ]]
	run "$CHAT" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^mcpgw-chat\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	run "$CHAT" --bogus
	[ "$status" -eq 2 ]
}

@test "valgrind: an -e run with a tool round leaks nothing" {
	command -v valgrind >/dev/null || skip "valgrind missing"
	! grep -qa __asan_init "$CHAT" || skip "an AddressSanitizer build (make check-asan): ASan checks it there, valgrind cannot run it"
	sim_script '[{"tool_calls":[{"name":"list_tables","arguments":{}}]},{"content":"No tables."}]'
	run timeout 120 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		"$CHAT" --session vg -e "Which tables?"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"No tables."* ]]
}
