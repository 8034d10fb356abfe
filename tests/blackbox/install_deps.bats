#!/usr/bin/env bats
# install_deps.bats: deploy/install-deps.sh as root, through sudo and as a user who can do neither (dpkg-query, apt-get and sudo stubbed on PATH); a plain make without the headers names make deps.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	STUBS=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-deps.XXXXXX")
	chmod 755 "$STUBS"
	# dpkg-query: every package is installed except those named in $STUBS/missing
	cat >"$STUBS/dpkg-query" <<'S'
#!/bin/sh
for a; do p=$a; done
grep -qx "$p" "$(dirname "$0")/missing" 2>/dev/null && exit 1
echo "install ok installed"
S
	# apt-get and sudo: record how they were called
	printf '#!/bin/sh\necho "apt-get $*" >>"%s/calls"\n' "$STUBS" >"$STUBS/apt-get"
	# (it runs only "env ... apt-get" for real, the stub above; anything else as root just succeeds)
	printf '#!/bin/sh\necho "sudo $*" >>"%s/calls"\n[ "$1" = -n ] && shift\n[ "$1" = env ] && exec "$@"\nexit 0\n' "$STUBS" >"$STUBS/sudo"
	# a copy nobody can read, wherever the checkout is (/root is 0700)
	cp "$ROOT/deploy/install-deps.sh" "$STUBS/install-deps.sh"
	chmod 755 "$STUBS"/*
	: >"$STUBS/calls"
	chmod 666 "$STUBS/calls"
}

teardown() { rm -rf "$STUBS"; }

# as_nobody CMD...: CMD as the user nobody with the stubs first on PATH
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- env PATH="$STUBS:/usr/bin:/bin" "$@"
}

@test "nothing missing: install-deps does nothing, as any user" {
	run as_nobody sh "$STUBS/install-deps.sh" --test
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -s "$STUBS/calls" ]
}

@test "not root, no sudo: the missing packages and the one command that installs them, exit 1, nothing run" {
	printf 'libcmocka-dev\nbats\n' >"$STUBS/missing"
	rm "$STUBS/sudo"
	run as_nobody sh "$STUBS/install-deps.sh" --test
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"missing Debian packages: libcmocka-dev bats"* ]]
	[[ "$output" == *"sudo apt-get install --no-install-recommends libcmocka-dev bats"* ]]
	[ ! -s "$STUBS/calls" ]
}

@test "not root, sudo without a password: installs through sudo -n" {
	printf 'lighttpd\n' >"$STUBS/missing"
	run as_nobody sh "$STUBS/install-deps.sh"
	echo "$output"
	cat "$STUBS/calls"
	[ "$status" -eq 0 ]
	grep -q '^sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lighttpd$' "$STUBS/calls"
	grep -q '^apt-get install -y -qq --no-install-recommends lighttpd$' "$STUBS/calls"
}

@test "not root, sudo that wants a password: treated as no sudo" {
	printf 'lighttpd\n' >"$STUBS/missing"
	printf '#!/bin/sh\necho "sudo $*" >>"%s/calls"\nexit 1\n' "$STUBS" >"$STUBS/sudo"
	run as_nobody sh "$STUBS/install-deps.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *"sudo apt-get install --no-install-recommends lighttpd"* ]]
	! grep -q apt-get "$STUBS/calls"
}

@test "--list prints the missing packages and installs nothing; an unknown option is named" {
	printf 'wrk\n' >"$STUBS/missing"
	run as_nobody sh "$STUBS/install-deps.sh" --list --bench
	[ "$status" -eq 0 ]
	[ "$output" = wrk ]
	run as_nobody sh "$STUBS/install-deps.sh" --bogus
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--bogus'"* ]]
}

@test "the test packages include clang and libFuzzer's runtime (the fuzz targets), which only --test asks for" {
	printf 'clang\nlibclang-rt-14-dev\n' >"$STUBS/missing"
	run as_nobody sh "$STUBS/install-deps.sh" --list --test
	[ "$status" -eq 0 ]
	[ "$output" = "clang libclang-rt-14-dev" ]
	run as_nobody sh "$STUBS/install-deps.sh" --list
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "make check installs the test packages before it compiles anything that needs them" {
	# the check target's first step is test-deps (install-deps.sh --test), before any compiler run
	run make -n -C "$ROOT" check
	echo "$output"
	first=$(printf '%s\n' "$output" | grep -n -m1 -E 'install-deps\.sh --test' | cut -d: -f1)
	cc=$(printf '%s\n' "$output" | grep -n -m1 -E '(^| )(cc|gcc|\$\(CC\)) ' | cut -d: -f1)
	[ -n "$first" ]
	[ -z "$cc" ] || [ "$first" -lt "$cc" ]
}

@test "a plain make on a machine without the libraries' headers says to run make deps, not a compiler error" {
	# a compiler that finds no system header stands for a machine without the -dev packages
	run make -s -C "$ROOT" headers-present CC="cc -nostdinc"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"jansson.h is missing: run 'make deps' first"* ]]
	run make -s -C "$ROOT" headers-present
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}
