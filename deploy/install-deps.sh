#!/bin/sh
# install-deps.sh: install the Debian packages mcpgw needs, only those missing (apt-get, as root or through sudo).
#   install-deps.sh          build + run: compiler, libfcgi, libcurl, jansson, sqlite3, Nettle (SHA-256: API keys), lighttpd, curl
#   install-deps.sh --test   also what `make check` needs: cmocka, bats, valgrind, Apache, node + npm, clang + libFuzzer, wrk, ...
#   install-deps.sh --bench  also what `make bench` needs: wrk, node + npm
#   install-deps.sh --sim    also what `make sim` needs (the upstream simulator): node + npm
#   install-deps.sh --list [--test|--bench|--sim]   print the missing packages, install nothing
# Not root: uses `sudo -n` when sudo lets this user install without a password,
# else names the missing packages and the one command that installs them (exit 1).
set -eu

list_only=0
if [ "${1:-}" = "--list" ]; then list_only=1; shift; fi

pkgs="gcc make libc6-dev libfcgi-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev nettle-dev sqlite3 lighttpd curl ca-certificates"
case ${1:-} in
--test)
	pkgs="$pkgs libcmocka-dev bats valgrind python3 tmux procps systemd clang-format"
	# the fuzz targets (tests/fuzz) and the sanitizer stage (make check-asan): clang, and libFuzzer's,
	# AddressSanitizer's and UBSan's runtimes (only recommended by clang, so named)
	pkgs="$pkgs clang libclang-rt-14-dev"
	# the other front ends the black-box suite runs behind: Apache mod_fcgid, mod_proxy_fcgi + spawn-fcgi, mod_cgid
	pkgs="$pkgs apache2 libapache2-mod-fcgid spawn-fcgi"
	# the bounded load runs (tests/blackbox/load.bats)
	pkgs="$pkgs wrk"
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
	;;
--bench)
	pkgs="$pkgs wrk"
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
	;;
--sim)
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
	;;
'') ;;
*) echo "install-deps: unknown option '$1' (expected --test, --bench, --sim or --list)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ "$list_only" = 1 ]; then
	[ -z "$missing" ] || echo "${missing# }"
	exit 0
fi
[ -z "$missing" ] && exit 0

command -v apt-get >/dev/null 2>&1 || {
	echo "install-deps: missing packages:$missing; this is not a Debian system (no apt-get): install their equivalents by hand" >&2
	exit 1
}

# as: run a command as root (directly, or through sudo without a password prompt)
if [ "$(id -u)" = 0 ]; then
	as() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as() { sudo -n "$@"; }
else
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: install them as root, then run the same make command again:" >&2
	echo "  sudo apt-get install --no-install-recommends$missing" >&2
	exit 1
fi

echo "install-deps: installing$missing"
# keep Debian's lighttpd and apache2 services from starting on ports 80 while we install them
if [ ! -e /usr/sbin/policy-rc.d ]; then
	as sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
	trap 'as rm -f /usr/sbin/policy-rc.d' EXIT
fi
as env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
as env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
