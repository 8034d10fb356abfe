#!/usr/bin/env bats
# layers.bats: the tree's structure (tests/layers.sh): no circle of files, arrows only down the layers, no shared broker global.

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

# plant FILE TEXT: a source file of the planted tree
plant() {
	mkdir -p "$(dirname "$T/$1")"
	printf '%s\n' "$2" >"$T/$1"
}

# a small tree with one fault of each kind, built like the real one
planted_tree() {
	T=$BATS_TEST_TMPDIR/tree
	plant lib/core/a.h '#include "mcp/b.h"'
	plant lib/core/a.c '#include "core/a.h"
int a(void) { return b(); }'
	plant lib/mcp/b.h 'int b(void);'
	plant lib/mcp/b.c '#include "mcp/b.h"
#include "core/a.h"
int a(void);
int b(void) { return 1; }
int b2(void) { return a(); }'
	plant broker/x.c 'int G; int x(void) { return G; }'
	plant broker/y.c 'extern int G; int y(void) { return G; }'
	plant chat/c.c 'int c(void) { return 0; }'
	plant broker/z.c 'int c(void); int z(void) { return c(); }'
	for f in "$T"/lib/*/*.c "$T"/broker/*.c "$T"/chat/*.c; do
		cc -fno-common -I"$T/lib" -c -o "${f%.c}.o" "$f" || return 1
	done
}

@test "the tree has no circle of files in its include and call graph" {
	run sh "$ROOT/tests/layers.sh" circles "$ROOT"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "every arrow runs down the layers (http -> openai -> mcp -> core; programs use only their sides)" {
	run sh "$ROOT/tests/layers.sh" order "$ROOT"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "no mutable broker global is named by more than one object file" {
	run sh "$ROOT/tests/layers.sh" globals "$ROOT"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "the check finds a planted circle, a planted arrow against the layers and a planted shared global" {
	planted_tree
	run sh "$ROOT/tests/layers.sh" circles "$T"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"circle: "*"lib/core/a"* ]]
	[[ "$output" == *"lib/mcp/b"* ]]

	run sh "$ROOT/tests/layers.sh" order "$T"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"lib/core/a -> lib/mcp/b (lib/core may not use mcp)"* ]]
	[[ "$output" == *"broker/z -> chat/c (broker may use only: core mcp)"* ]]
	[[ "$output" != *"lib/mcp/b -> lib/core/a"* ]]

	run sh "$ROOT/tests/layers.sh" globals "$T"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"broker global G (defined in broker/x) named by:"*"broker/y"* ]]
}
