#!/usr/bin/env bats
# cli.bats: every program's command line: --help and -h on stdout with options and settings (exit 0), --version, a bad option named (exit 2).

load helpers
bats_require_minimum_version 1.5.0

VERSION=$(sed -n 's/^#define MCPGW_VERSION "\(.*\)"$/\1/p' "$MCPGW_ROOT/lib/core/version.h")

# program NAME: its path in the checkout
program() {
	case $1 in
	mcpgwctl) echo "$MCPGW_ROOT/deploy/mcpgwctl" ;;
	mcpgw-broker) echo "$MCPGW_ROOT/broker/mcpgw-broker" ;;
	mcpgw-mcp-client) echo "$MCPGW_ROOT/mcp-client/mcpgw-mcp-client" ;;
	mcpgw-chat) echo "$MCPGW_ROOT/chat/mcpgw-chat" ;;
	mcp-server-sqlite) echo "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite" ;;
	*.fcgi) echo "$MCPGW_ROOT/cgi-bin/$1" ;;
	esac
}

PROGRAMS="mcpgwctl mcpgw-broker mcpgw-mcp-client mcpgw-chat mcp-server-sqlite chat.fcgi models.fcgi embeddings.fcgi tools.fcgi health.fcgi"

# in an empty directory, with no MCPGW_* settings from the caller
setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	unset MCPGW_HOME MCPGW_STATE_DIR MCPGW_LISTEN MCPGW_FRONTEND GATEWAY_INTERFACE
}

# help_of NAME [FLAG]: run NAME FLAG (default --help) with stdout and stderr apart
help_of() {
	run --separate-stderr "$(program "$1")" "${2:---help}"
}

@test "--help and -h: usage on stdout, options, settings; nothing on stderr; exit 0" {
	local p flag

	for p in $PROGRAMS; do
		for flag in --help -h; do
			help_of "$p" "$flag"
			[ "$status" -eq 0 ] || { echo "$p $flag: exit $status: $stderr" >&2; return 1; }
			[ -z "$stderr" ] || { echo "$p $flag wrote to stderr: $stderr" >&2; return 1; }
			[[ "$output" == "usage: $p "* ]] || { echo "$p $flag: $output" >&2; return 1; }
			[[ "$output" == *$'\nOptions:\n'*"-h, --help"*"--version"* ]] || { echo "$p: no options: $output" >&2; return 1; }
			[[ "$output" == *$'\nSettings ('* ]] || { echo "$p: no settings: $output" >&2; return 1; }
		done
	done
}

@test "--help names each program's own options and settings" {
	help_of mcpgwctl
	[[ "$output" == *"run|start|stop|status"* && "$output" == *"MCPGW_STARTUP_WAIT"* && "$output" == *"MCPGW_LISTEN"* ]]
	help_of mcpgw-broker
	[[ "$output" == *"--check-config"* && "$output" == *"--status"* && "$output" == *"MCPGW_CONFIG"* && "$output" == *"MCPGW_INIT_TIMEOUT"* ]]
	help_of mcpgw-mcp-client
	[[ "$output" == *"--sse"* && "$output" == *"--auto"* && "$output" == *"URL"* ]]
	help_of mcpgw-chat
	[[ "$output" == *"--session NAME"* && "$output" == *"OPENAI_BASE_URL"* && "$output" == *"MCPGW_BROKER_BIN"* ]]
	help_of mcp-server-sqlite
	[[ "$output" == *"--db-path PATH"* && "$output" == *"MCP_SQLITE_MAX_ROWS"* && "$output" == *"MCP_SQLITE_TIMEOUT_MS"* ]]
	help_of chat.fcgi
	[[ "$output" == *"POST /v1/chat/completions"* && "$output" == *"MCPGW_CHAT_THREADS"* && "$output" == *"OPENAI_API_KEY"* ]]
	help_of models.fcgi
	[[ "$output" == *"GET /v1/models"* && "$output" == *"MCPGW_MODELS_CACHE_TTL"* ]]
	help_of embeddings.fcgi
	[[ "$output" == *"POST /v1/embeddings"* && "$output" == *"MCPGW_EMBEDDING_MAX_INPUTS"* && "$output" == *"EMBEDDING_BASE_URL"* ]]
	help_of tools.fcgi
	[[ "$output" == *"/v1/tools"* && "$output" == *"MCPGW_TOOL_TIMEOUT"* && "$output" == *"MCPGW_BROKER_AUTOSTART"* ]]
	help_of health.fcgi
	[[ "$output" == *"GET /health"* && "$output" == *"MCPGW_BROKER_SOCKET"* && "$output" == *"A FastCGI responder"* ]]
}

@test "every setting a --help names is a row of README's Configuration table with the same default, and every row is named by one" {
	local p readme named=""

	readme=$(sed -n '/^| setting | default | meaning |/,/^$/p' "$MCPGW_ROOT/README.md")
	for p in $PROGRAMS; do
		help_of "$p"
		# "  NAME   meaning (default: X)"
		while IFS=$'\t' read -r name def; do
			named="$named $name "
			row=$(grep -F "| \`$name\` |" <<<"$readme") || { echo "$p names $name: not in README's Configuration table" >&2; return 1; }
			want=$(cut -d'|' -f3 <<<"$row" | sed -e 's/`//g' -e 's/^ *//' -e 's/ *$//' -e 's/^(\(.*\))$/\1/')
			[ "$def" = "$want" ] || { echo "$p: $name defaults to '$def', README says '$want'" >&2; return 1; }
		done < <(sed -n 's/^  \([A-Z][A-Z0-9_]*\)  *.* (default: \(.*\))$/\1\t\2/p' <<<"$output")
	done
	while read -r name; do
		[[ "$named" == *" $name "* ]] || { echo "README's $name: in no program's --help" >&2; return 1; }
	done < <(sed -n 's/^| `\([A-Z][A-Z0-9_]*\)` |.*/\1/p' <<<"$readme")
}

@test "--version and -V: NAME and lib/core/version.h's version, exit 0" {
	local p o

	[ -n "$VERSION" ]
	for p in $PROGRAMS; do
		for o in --version -V; do
			run --separate-stderr "$(program "$p")" "$o"
			[ "$status" -eq 0 ] && [ "$output" = "$p $VERSION" ] || { echo "$p $o: $status: $output $stderr" >&2; return 1; }
		done
	done
}

@test "an unknown option is named with a hint to --help, exit 2, nothing on stdout" {
	local p

	for p in $PROGRAMS; do
		run --separate-stderr "$(program "$p")" --bogus
		[ "$status" -eq 2 ] || { echo "$p --bogus: exit $status" >&2; return 1; }
		[ -z "$output" ] || { echo "$p --bogus wrote to stdout: $output" >&2; return 1; }
		[ "$stderr" = "$p: unknown option '--bogus'"$'\n'"Try '$p --help' for more information." ] ||
			{ echo "$p --bogus: $stderr" >&2; return 1; }
	done
	run --separate-stderr "$(program mcpgw-broker)" --check-config --bogus=1
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-broker: unknown option '--bogus'"* ]]
	run --separate-stderr "$(program mcpgw-chat)" -q
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-chat: unknown option '-q'"* ]]
}

@test "other command-line mistakes are named too, exit 2" {
	run --separate-stderr "$(program mcpgw-chat)" --model
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-chat: option '--model' needs a value"* ]]
	run --separate-stderr "$(program mcpgw-chat)" --s x
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-chat: ambiguous option '--s': --session, --system"* ]]
	run --separate-stderr "$(program mcpgw-broker)" --help=yes
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-broker: option '--help' takes no value"* ]]
	run --separate-stderr "$(program mcpgw-broker)" extra
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-broker: unexpected argument 'extra'"* ]]
	run --separate-stderr "$(program mcpgw-mcp-client)"
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgw-mcp-client: no URL given"* ]]
	run --separate-stderr "$(program health.fcgi)" now
	[ "$status" -eq 2 ] && [[ "$stderr" == "health.fcgi: unexpected argument 'now' (a responder takes no arguments)"* ]]
	run --separate-stderr "$(program mcpgwctl)"
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgwctl: no command given (run, start, stop or status)"* ]]
	run --separate-stderr "$(program mcpgwctl)" restart
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgwctl: unknown command 'restart' (run, start, stop, status or reopen-logs)"* ]]
	run --separate-stderr "$(program mcpgwctl)" start stop
	[ "$status" -eq 2 ] && [[ "$stderr" == "mcpgwctl: one command at a time"* ]]
}

@test "a responder run as CGI answers the request, even when the server passes '--help' (a query without '=')" {
	mkdir -p home
	printf 'MCPGW_BROKER_AUTOSTART=0\n' >home/.env
	# REMOTE_ADDR: a CGI server always sets it (RFC 3875 4.1.8); loopback, so no API key is needed
	run --separate-stderr env MCPGW_HOME="$PWD/home" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REMOTE_ADDR=127.0.0.1 \
		REQUEST_URI='/health?--help' QUERY_STRING=--help "$(program health.fcgi)" --help
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Content-Type: application/json"* ]]
	[[ "$output" == *'"status":"down"'* ]]
	[[ "$output" != *"usage:"* ]]
}

@test "mcpgw-broker --status: one tab-separated line per server from the running broker; 3 when none runs" {
	mkdir -p home
	cat >home/servers_config.json <<EOF
{"mcpServers": {"sqlite": {"command": "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite", "args": ["$PWD/t.db"]},
                "ghost": {"command": "$PWD/none"}, "off": {"command": "x", "disabled": true},
                "dies": {"command": "sh", "args": ["-c", "echo boom >&2; exit 3"]}}}
EOF
	export MCPGW_HOME="$PWD/home"
	run --separate-stderr "$(program mcpgw-broker)" --status
	[ "$status" -eq 3 ] && [ -z "$output" ]
	[ "$stderr" = "mcpgw-broker: no broker is running on $PWD/home/var/broker.sock" ]
	"$(program mcpgw-broker)" 2>broker.log 3>&- &
	pid=$!
	for _ in $(seq 100); do
		run "$(program mcpgw-broker)" --status
		[[ "$output" == *$'sqlite\tready\t'* && "$output" == *$'dies\tbackoff\t'* ]] && break
		sleep 0.1
	done
	kill -TERM "$pid"
	wait "$pid" || true
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(sed -n 1p <<<"$output")" = $'sqlite\tready\t6\t0\t-' ]
	[[ "$(sed -n 2p <<<"$output")" == $'ghost\t'*$'\t0\t'*$'\tcannot run \''"$PWD/none': $PWD/none does not exist"* ]]
	[ "$(sed -n 3p <<<"$output")" = $'off\tdisabled\t0\t0\t-' ]
	# a server that exits before it reads initialize: the reason is its exit and its last words
	[[ "$(sed -n 4p <<<"$output")" == $'dies\tbackoff\t0\t'*$'\texited with status 3 (stderr: boom)'* ]]
}

@test "mcpgwctl names the state directory's shared files as lib/core/statedir.h does" {
	local name file
	for name in BROKER_SOCK BROKER_PID BROKER_LOG RESPONDERS_LOG; do
		file=$(sed -n "s/^#define STATEDIR_$name *\"\\([^\"]*\\)\".*/\\1/p" "$MCPGW_ROOT/lib/core/statedir.h")
		[ -n "$file" ] || { echo "statedir.h: no STATEDIR_$name" >&2; return 1; }
		grep -qF "\$STATE/$file" "$MCPGW_ROOT/deploy/mcpgwctl" || { echo "mcpgwctl does not use \$STATE/$file" >&2; return 1; }
	done
	# and nothing else of the broker's under another name
	! grep -o '\$STATE/broker\.[a-z.]*' "$MCPGW_ROOT/deploy/mcpgwctl" | sort -u | grep -vxF -e '$STATE/broker.sock' -e '$STATE/broker.pid' -e '$STATE/broker.log'
}
