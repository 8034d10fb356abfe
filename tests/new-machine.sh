#!/bin/sh
# new-machine.sh: proves the README's two commands on a new Debian 12 machine (`make new-machine`; not part of `make check`).
#
# Builds a clean Debian 12 root (debootstrap --variant=minbase bookworm, then
# only git and make added), clones this checkout's HEAD into it, runs
# `make run` until GET /v1/tools lists the six tools of the bundled SQLite
# server, stops it (SIGTERM to its process group), then runs `make check` there. Prints one
# summary line; everything else goes to the log.
#
# Root only (debootstrap, chroot, mounts). Settings:
#   MCPGW_NEWMACHINE_DIR   where the root is built (default /var/tmp/mcpgw-newmachine; wiped first)
#   MCPGW_NEWMACHINE_LOG   the log (default $MCPGW_NEWMACHINE_DIR.log; kept)
#   MCPGW_NEWMACHINE_KEEP  1: keep the root afterwards (default: removed when everything passed)
#   MCPGW_NEWMACHINE_CHECK 0: stop after `make run` (proves what it installs and builds, in about
#                          5 minutes, without the half hour of `make check`; default 1)
#   DEBIAN_MIRROR          default: the first URI of this machine's Debian sources, else http://deb.debian.org/debian
# The root shares this machine's network: port 8000 on 127.0.0.1 must be free.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${MCPGW_NEWMACHINE_DIR:-/var/tmp/mcpgw-newmachine}
log=${MCPGW_NEWMACHINE_LOG:-$dir.log}
keep=${MCPGW_NEWMACHINE_KEEP:-0}
run_wait=${MCPGW_NEWMACHINE_RUN_WAIT:-1200}
do_check=${MCPGW_NEWMACHINE_CHECK:-1}   # seconds for `make run` (installs + build) to serve the tools

die() { echo "new-machine: $*" >&2; echo "new-machine: FAILED: $* (log: $log)"; exit 1; }
say() { echo "== $(date '+%H:%M:%S') $*" >>"$log"; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
case $dir in /|/usr|/var|/tmp|/var/tmp|'') die "MCPGW_NEWMACHINE_DIR=$dir: refusing" ;; esac
command -v curl >/dev/null || die "curl missing on this machine (make deps installs it)"
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8000/; then die "something already listens on 127.0.0.1:8000"; fi

# the machine's settings of where TLS clients find their certificate authorities, passed on
ca_env=""
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE GIT_SSL_CAINFO; do
	eval "val=\${$v:-}"
	[ -z "$val" ] || ca_env="$ca_env $v=$val"
done

# in_root CMD...: CMD inside the root, with the clean environment of a new login
in_root() {
	# shellcheck disable=SC2086
	chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb $ca_env "$@"
}

# root_pids: the processes whose root directory is the new root
root_pids() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$dir" ] && echo "${p#/proc/}"
	done
	return 0
}

mounted=""
cleanup() {
	pids=$(root_pids)
	[ -z "$pids" ] || { kill -TERM $pids 2>/dev/null || true; sleep 2; pids=$(root_pids); }
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$(dirname "$log")"
: >"$log"
start=$(date +%s)

# a leftover root of an earlier run: unmount what it still has, then wipe it
if [ -e "$dir" ]; then
	grep -o " $dir/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf --one-file-system "$dir"
fi

if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap on this machine"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >>"$log" 2>&1 ||
		{ apt-get update -qq >>"$log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >>"$log" 2>&1; } ||
		die "cannot install debootstrap"
fi
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}

say "debootstrap --variant=minbase bookworm $dir $mirror"
debootstrap --variant=minbase bookworm "$dir" "$mirror" >>"$log" 2>&1 || die "debootstrap failed"

# reach the same registries as this machine: name resolution, apt's sources and settings, npm's settings
cp /etc/resolv.conf "$dir/etc/resolv.conf"
cp /etc/hosts "$dir/etc/hosts"
if [ -e /etc/apt/sources.list.d/debian.sources ]; then
	rm -f "$dir/etc/apt/sources.list"
	cp /etc/apt/sources.list.d/debian.sources "$dir/etc/apt/sources.list.d/"
fi
for f in /etc/apt/apt.conf.d/*; do
	grep -q '^Acquire::' "$f" 2>/dev/null && cp "$f" "$dir/etc/apt/apt.conf.d/"
done
[ -e /root/.npmrc ] && grep -v '^nodedir=' /root/.npmrc >"$dir/root/.npmrc"
# this machine's own certificate authorities (a network that inspects TLS): ca-certificates,
# once `make run` installs it, trusts them in the root as it does here
mkdir -p "$dir/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true

for m in proc sys dev dev/pts run; do
	mkdir -p "$dir/$m"
done
mount -t proc proc "$dir/proc" && mounted="$dir/proc $mounted"
mount -t sysfs sys "$dir/sys" && mounted="$dir/sys $mounted"
mount --bind /dev "$dir/dev" && mounted="$dir/dev $mounted"
mount --bind /dev/pts "$dir/dev/pts" && mounted="$dir/dev/pts $mounted"
mount -t tmpfs tmpfs "$dir/run" && mounted="$dir/run $mounted"
mkdir -p "$dir/dev/shm"

say "apt-get install git make (nothing else)"
in_root apt-get update -qq >>"$log" 2>&1 || die "apt-get update failed in the root"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git make >>"$log" 2>&1 ||
	die "apt-get install git make failed in the root"

say "git clone $repo (HEAD: $(git -C "$repo" rev-parse --short HEAD))"
git -C "$repo" bundle create "$dir/root/mcpgw.bundle" HEAD >>"$log" 2>&1 || die "git bundle failed"
in_root git clone -q /root/mcpgw.bundle /root/mcpgw >>"$log" 2>&1 || die "git clone failed in the root"

say "make run (in the background, until GET /v1/tools lists six tools)"
in_root sh -c 'cd /root/mcpgw && exec setsid make run' >>"$log" 2>&1 &
run_pid=$!
t0=$(date +%s)
tools=0
while [ $(($(date +%s) - t0)) -lt "$run_wait" ]; do
	kill -0 "$run_pid" 2>/dev/null || die "make run exited before serving the tools"
	out=$(curl -s --max-time 5 http://127.0.0.1:8000/v1/tools 2>/dev/null || true)
	tools=$(printf '%s' "$out" | grep -o '"object":"tool"' | wc -l)
	[ "$tools" -ge 6 ] && break
	sleep 2
done
run_secs=$(($(date +%s) - t0))
say "GET /v1/tools after ${run_secs}s: $tools tools: $out"
[ "$tools" -ge 6 ] || die "make run did not serve the six tools within $run_wait s ($tools seen)"

# stop it as a terminal's hang-up or a service manager would: SIGTERM to its process group (a
# background job ignores SIGINT, so Ctrl-C cannot be imitated here; mcpgwctl handles both alike)
mk=$(root_pids | while read -r p; do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = make ] && echo "$p"; done | head -n 1)
[ -n "$mk" ] || die "make run: no make process found in the root"
pg=$(ps -o pgid= -p "$mk" | tr -d ' ')
[ -n "$pg" ] && [ "$pg" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || die "make run: no process group of its own"
kill -TERM "-$pg" || die "cannot signal make run's process group $pg"
i=0
while kill -0 "$run_pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
kill -0 "$run_pid" 2>/dev/null && die "make run did not stop on SIGTERM within 30 s"
left=$(root_pids)
[ -z "$left" ] || die "processes left after make run stopped: $(for p in $left; do printf '%s(%s) ' "$(cat /proc/$p/comm)" "$p"; done)"

if [ "$do_check" = 0 ]; then
	total=$(($(date +%s) - start))
	line="new-machine: Debian 12 minbase + git + make; make run served $tools tools after ${run_secs}s; make check not run (MCPGW_NEWMACHINE_CHECK=0); total ${total}s; log $log"
	say "$line"
	echo "$line"
	[ "$keep" = 1 ] || { cleanup; mounted=""; rm -rf --one-file-system "$dir"; }
	exit 0
fi

say "make check (CI=true)"
t0=$(date +%s)
rc=0
in_root env CI=true sh -c 'cd /root/mcpgw && make check' >>"$log" 2>&1 || rc=$?
check_secs=$(($(date +%s) - t0))
result=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
[ -n "$result" ] || result="no result line (make check exited $rc)"

total=$(($(date +%s) - start))
line="new-machine: Debian 12 minbase + git + make; make run served $tools tools after ${run_secs}s; make check: $result (exit $rc, ${check_secs}s); total ${total}s; log $log"
say "$line"
echo "$line"
case $result in
*" passed, 0 failed") [ "$rc" = 0 ] || exit 1 ;;
*) exit 1 ;;
esac
[ "$keep" = 1 ] || { cleanup; mounted=""; rm -rf --one-file-system "$dir"; }
exit 0
