#!/usr/bin/env bats
# linkage.bats: each responder links only the libraries its routes need (the skeleton's clients are named by the programs that use them); every one checks API keys, in the state store, with Nettle's SHA-256.

setup() { ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd); }

# needed PROGRAM: its NEEDED shared libraries, one a line
needed() { readelf -d "$ROOT/cgi-bin/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

@test "tools.fcgi and health.fcgi (broker routes only) link neither libcurl nor the upstream client" {
	for p in tools.fcgi health.fcgi; do
		run needed "$p"
		[ "$status" = 0 ]
		[[ "$output" == *libfcgi* ]]
		[[ "$output" != *libcurl* ]]
		run nm "$ROOT/cgi-bin/$p"
		[[ "$output" != *upstream_new* ]]
		[[ "$output" == *bc_new* ]]
	done
}

@test "embeddings.fcgi (upstream only) links libcurl, not the broker client" {
	run needed embeddings.fcgi
	[[ "$output" == *libcurl* ]]
	run nm "$ROOT/cgi-bin/embeddings.fcgi"
	[[ "$output" != *bc_new* ]]
}

@test "models.fcgi (its cache in the state store) and chat.fcgi link libcurl and SQLite" {
	for p in models.fcgi chat.fcgi; do
		run needed "$p"
		[[ "$output" == *libcurl* ]]
		[[ "$output" == *libsqlite3* ]]
	done
}

@test "every responder links the key store (SQLite) and Nettle (lib/http/auth.c: the API-key check)" {
	for p in chat.fcgi models.fcgi embeddings.fcgi tools.fcgi health.fcgi; do
		run needed "$p"
		[[ "$output" == *libsqlite3* ]]
		[[ "$output" == *libnettle* ]]
		run nm "$ROOT/cgi-bin/$p"
		[[ "$output" == *auth_check* ]]
	done
}

@test "the responders without libcurl do not load OpenSSL's libcrypto (1.4 MB resident for one SHA-256 a request)" {
	for p in tools.fcgi health.fcgi; do
		run ldd "$ROOT/cgi-bin/$p"
		[ "$status" -eq 0 ]
		[[ "$output" != *libcrypto* ]]
		[[ "$output" != *libssl* ]]
	done
}
