#!/usr/bin/env bats
# settings.bats: the settings table (lib/core/settings.c) as the programs print it: README's Configuration table is generated from it, who reads what, secrets never shown.

load helpers
bats_require_minimum_version 1.5.0

BROKER="$MCPGW_ROOT/broker/mcpgw-broker"

# in an empty directory, with no settings from the caller
setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	unset MCPGW_HOME MCPGW_STATE_DIR MCPGW_ENV_FILE MCPGW_CONFIG GATEWAY_INTERFACE
}

# readme_table: the lines between README's settings table markers
readme_table() {
	sed -n '/^<!-- settings table: /,/^<!-- end of settings table -->$/p' "$MCPGW_ROOT/README.md" | sed '1d;$d' | sed '/^$/d'
}

@test "README's Configuration table is the settings table (make settings-table): CI fails when they differ" {
	local want got

	want=$(readme_table)
	[ -n "$want" ] || { echo "README.md: no settings table between the markers" >&2; return 1; }
	run --separate-stderr "$BROKER" --settings=markdown
	[ "$status" -eq 0 ] && [ -z "$stderr" ]
	got=$output
	[ "$want" = "$got" ] || {
		echo "README.md's Configuration table differs from lib/core/settings.c: run 'make settings-table'" >&2
		diff <(echo "$want") <(echo "$got") >&2
		return 1
	}
	# one markers pair, one table
	[ "$(grep -c '^<!-- settings table: ' "$MCPGW_ROOT/README.md")" = 1 ]
	[ "$(grep -c '^<!-- end of settings table -->$' "$MCPGW_ROOT/README.md")" = 1 ]
}

@test "make settings-table rewrites only the table, and a second run changes nothing" {
	local copy="$BATS_TEST_TMPDIR/tree"

	mkdir -p "$copy/broker"
	cp "$MCPGW_ROOT/Makefile" "$copy/"
	cp "$BROKER" "$copy/broker/"
	# a README whose table is stale: one row dropped, one changed
	sed -e '/^| `MCPGW_MAX_CLIENTS` |/d' -e 's/^| `MCPGW_TOOL_RETRIES` | `2` |/| `MCPGW_TOOL_RETRIES` | `3` |/' \
		"$MCPGW_ROOT/README.md" >"$copy/README.md"
	! cmp -s "$copy/README.md" "$MCPGW_ROOT/README.md"
	# make would rebuild the broker if it looked older than its sources: it is up to date here
	touch "$copy/broker/mcpgw-broker"
	make -s -C "$copy" -o broker/mcpgw-broker settings-table
	cmp "$copy/README.md" "$MCPGW_ROOT/README.md"
	make -s -C "$copy" -o broker/mcpgw-broker settings-table
	cmp "$copy/README.md" "$MCPGW_ROOT/README.md"
}

@test "--settings prints every row: name, default, values, readers, meaning; a bad format is named" {
	run --separate-stderr "$BROKER" --settings
	[ "$status" -eq 0 ]
	[[ "$output" == *$'MCPGW_TOOL_RETRIES\n    default: 2; takes: integer 0..10; read by: broker, responders, chatbot\n    retries of a tool call on transport failure'* ]]
	[[ "$output" == *$'OPENAI_API_KEY\n    default: (empty); takes: text, secret;'* ]]
	# one block per README row
	[ "$(grep -c '^[A-Z]' <<<"$output")" = "$(readme_table | grep -c '^| `')" ]
	run --separate-stderr "$BROKER" --settings=text
	[ "$status" -eq 0 ]
	run --separate-stderr "$BROKER" --settings=html
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"--settings=html: expected text or markdown"* ]]
}

@test "a bad value stops a program with the one wording; a secret's value is never shown" {
	local key

	MCPGW_HOME=$BATS_TEST_TMPDIR MCPGW_TOOL_RETRIES=x run --separate-stderr "$BROKER" --check-config
	[ "$status" -eq 4 ] # --check-config: 4 a setting, 1 the config
	[ "$stderr" = "mcpgw-broker: MCPGW_TOOL_RETRIES: expected an integer 0..10, got 'x'" ]
	MCPGW_HOME=$BATS_TEST_TMPDIR MCPGW_LOG_LEVEL=loud run --separate-stderr "$BROKER" --check-config
	[ "$stderr" = "mcpgw-broker: MCPGW_LOG_LEVEL: expected error, warn, info or debug, got 'loud'" ]
	key="sk-$(printf 'S%.0s' $(seq 1 2000))"
	MCPGW_HOME=$BATS_TEST_TMPDIR OPENAI_API_KEY=$key run --separate-stderr "$BROKER" --check-config
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"OPENAI_API_KEY: expected "*"got a secret of 2003 bytes (not shown)"* ]]
	[[ "$stderr" != *SSSS* ]]
	MCPGW_HOME=$BATS_TEST_TMPDIR OPENAI_API_KEY=sk-visible-here run --separate-stderr "$BROKER" --settings
	[[ "$output" != *sk-visible-here* ]]
	MCP_SQLITE_TIMEOUT_MS=-1 run --separate-stderr "$MCPGW_ROOT/mcp-server-sqlite/mcp-server-sqlite" ":memory:" </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"MCP_SQLITE_TIMEOUT_MS: expected an integer 0..86400000, got '-1'"* ]]
}

@test "every setting a program's --help names is read by that program, as the table's 'read by' says" {
	local p reader out name readers

	out=$("$BROKER" --settings)
	for p in mcpgwctl:mcpgwctl broker/mcpgw-broker:broker mcp-client/mcpgw-mcp-client:mcp-client chat/mcpgw-chat:chatbot \
		mcp-server-sqlite/mcp-server-sqlite:mcp-server-sqlite cgi-bin/chat.fcgi:responders cgi-bin/models.fcgi:responders \
		cgi-bin/embeddings.fcgi:responders cgi-bin/tools.fcgi:responders cgi-bin/health.fcgi:responders; do
		reader=${p#*:}
		p=${p%%:*}
		[ "$p" = mcpgwctl ] && p=deploy/mcpgwctl
		while read -r name; do
			readers=$(grep -A1 -x "$name" <<<"$out" | sed -n 's/.*; read by: //p')
			[ -n "$readers" ] || { echo "$p --help names $name: no row in the settings table" >&2; return 1; }
			[[ ", $readers," == *", $reader,"* ]] ||
				{ echo "$p --help names $name, whose row says read by: $readers (not $reader)" >&2; return 1; }
		done < <("$MCPGW_ROOT/$p" --help | sed -n 's/^  \([A-Z][A-Z0-9_]*\)  .* (default: .*)$/\1/p')
	done
}
