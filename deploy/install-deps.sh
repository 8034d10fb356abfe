#!/bin/sh
# install-deps.sh: install the Debian packages mcpgw needs, only those missing (apt-get, as root).
#   install-deps.sh          build + run: compiler, libfcgi, libcurl, jansson, sqlite3, lighttpd, curl
#   install-deps.sh --test   also what `make check` needs: cmocka, bats, valgrind, node + npm
#   install-deps.sh --bench  also what `make bench` needs: wrk, node + npm
set -eu

pkgs="gcc make libc6-dev libfcgi-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev sqlite3 lighttpd curl ca-certificates"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs libcmocka-dev bats valgrind python3 tmux"
	# the other front ends the black-box suite runs behind: Apache mod_fcgid, mod_proxy_fcgi + spawn-fcgi, mod_cgid
	pkgs="$pkgs apache2 libapache2-mod-fcgid spawn-fcgi"
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
elif [ "${1:-}" = "--bench" ]; then
	pkgs="$pkgs wrk"
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: run as root: apt-get install$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# keep Debian's lighttpd service from starting on port 80 while we install it
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
