#!/usr/bin/env bats
# format.bats: every C file of the tree reads as .clang-format says (clang-format from Debian, installed by make check).

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

# c_files: the tree's C sources and headers (git's list; a copy without .git: find)
c_files() {
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$ROOT" ls-files 'lib/*.[ch]' 'broker/*.[ch]' 'cgi-bin/*.[ch]' 'chat/*.[ch]' 'mcp-client/*.[ch]' \
			'mcp-server-sqlite/*.[ch]' 'tests/unit/*.[ch]' 'tests/fuzz/*.[ch]' 'bench/*.[ch]' | sed "s|^|$ROOT/|"
	else
		find "$ROOT/lib" "$ROOT/broker" "$ROOT/cgi-bin" "$ROOT/chat" "$ROOT/mcp-client" "$ROOT/mcp-server-sqlite" \
			"$ROOT/tests/unit" "$ROOT/tests/fuzz" "$ROOT/bench" -name '*.[ch]' ! -name buildconf.h
	fi
}

@test "every C file is formatted by .clang-format (clang-format -i FILE fixes one)" {
	command -v clang-format >/dev/null || { echo "clang-format is missing: make check installs it (deploy/install-deps.sh --test)"; return 1; }
	# many files per clang-format, two at once (one process per file took 25 s): --dry-run -Werror names
	# each file that differs ("FILE:LINE:COL: error: code should be clang-formatted") and fails
	out=$(c_files | xargs -n 25 -P 2 clang-format --style=file --dry-run -Werror 2>&1) && rc=0 || rc=$?
	bad=$(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' <<<"$out" | sort -u | sed "s|^$ROOT/||")
	[ -z "$bad" ] && [ "$rc" = 0 ] || { echo "not formatted: $bad"; echo "$out" | head -n 20; return 1; }
}

@test "the format check finds a file written against .clang-format" {
	command -v clang-format >/dev/null || return 1
	cp "$ROOT/.clang-format" "$BATS_TEST_TMPDIR/"
	printf 'int  f( int a ){return a;}\n' >"$BATS_TEST_TMPDIR/bad.c"
	run sh -c "echo '$BATS_TEST_TMPDIR/bad.c' | xargs -n 25 -P 2 clang-format --style=file --dry-run -Werror"
	[ "$status" -ne 0 ]
	[[ "$output" == *"bad.c:1:"*"error: code should be clang-formatted"* ]]
}
