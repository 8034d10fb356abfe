#!/bin/sh
# layers.sh: the structure check of `make check`: circles of files, arrows against the layer order, shared broker globals.
#
# Usage: tests/layers.sh circles|order|globals|edges [ROOT]
#   ROOT (default: the checkout) must be built: the call graph is read from the
#   object files next to the sources (nm), the include graph from the sources.
#
# A node is a file without its suffix (lib/core/buf.c and lib/core/buf.h are one
# node, lib/core/buf). An arrow a -> b means a includes b's header or a's object
# uses a symbol b's object defines. Checked:
#   circles  no circle of nodes (tsort(1) names the nodes of each loop)
#   order    lib sides run one way: http -> openai -> mcp -> core; no lib file
#            uses a program; each program uses only the sides it may (the
#            broker and the servers: core and mcp; the chatbot: also openai;
#            the responders: all), and no other program's files (mcp-client is
#            the broker's own client code and may use broker/)
#   globals  no mutable global of the broker (nm type B, C, D, G, S) is named
#            by more than one object file: the daemon's state is passed, not
#            reached from every file
# Prints one line per fault and exits 1 when there is any; 0 when clean.
set -u
what=${1:-}
root=${2:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
dirs="lib broker cgi-bin chat mcp-client mcp-server-sqlite"
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# sources: every .c/.h of the tree (tests and bench are outside the layers)
find $dirs -name '*.[ch]' 2>/dev/null | sort >"$tmp/src"
[ -s "$tmp/src" ] || { echo "layers: no sources under $root" >&2; exit 2; }

# include arrows: "side/x.h" resolves in lib/, "x.h" next to the file
xargs grep -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' <"$tmp/src" |
	sed 's/^\([^:]*\):[^"]*"\([^"]*\)".*/\1 \2/' |
	awk 'NR == FNR { have[$1] = 1; next }
	     { f = $1; d = f; sub(/\/[^\/]*$/, "", d); t = d "/" $2
	       n = split(t, p, "/"); k = 0          # fold "x/../" and "./"
	       for (i = 1; i <= n; i++) { if (p[i] == "..") k--; else if (p[i] != ".") q[++k] = p[i] }
	       t = q[1]; for (i = 2; i <= k; i++) t = t "/" q[i]
	       if (!(t in have)) t = "lib/" $2
	       if (!(t in have)) next
	       sub(/\.[ch]$/, "", f); sub(/\.[ch]$/, "", t); print f, t }' "$tmp/src" - >"$tmp/inc"

# call arrows: an object's undefined symbols -> the one object defining them (one nm for every object)
sed -n 's/\.c$/.o/p' "$tmp/src" >"$tmp/objs"
while read -r o; do
	[ -e "$o" ] || { echo "layers: $o not built (run make all first)" >&2; exit 2; }
done <"$tmp/objs"
xargs nm -P -A <"$tmp/objs" >"$tmp/nm" || exit 2
awk '{ n = $1; sub(/\.o:$/, "", n) }
     $3 ~ /^[A-TV-Z]$/ { print "D", $2, n, $3 } $3 == "U" { print "U", $2, n }' "$tmp/nm" >"$tmp/syms" || exit 2
awk '$1 == "D" { if ($2 in def && def[$2] != $3) dup[$2] = 1; def[$2] = $3 }
     $1 == "U" { use[NR] = $2 " " $3 }
     END { for (i in use) { split(use[i], u, " "); s = u[1]
		if ((s in def) && !(s in dup) && def[s] != u[2]) print u[2], def[s] } }' "$tmp/syms" >"$tmp/call"

sort -u "$tmp/inc" "$tmp/call" | awk '$1 != $2' >"$tmp/edges"

rc=0
case $what in
edges)
	cat "$tmp/edges"
	;;
circles)
	# every node paired with itself so tsort sees it; loops go to stderr
	{ cat "$tmp/edges"; awk '{ print $1, $1; print $2, $2 }' "$tmp/edges"; } | tsort >/dev/null 2>"$tmp/loops"
	if grep -q 'loop' "$tmp/loops"; then
		awk '/input contains a loop/ { if (m != "") print "circle: " m; m = ""; next }
		     { sub(/^tsort: /, ""); m = (m == "" ? $0 : m " -> " $0) }
		     END { if (m != "") print "circle: " m }' "$tmp/loops"
		rc=1
	fi
	;;
order)
	# side: lib/core, lib/mcp, lib/openai, lib/http (ranked 0..3), other lib files, or a program's dir;
	# a lib side may use only lower ones, a program only its allowed sides and dirs
	awk 'function side(f) { if (f ~ /^lib\/(core|mcp|openai|http)\//) { split(f, p, "/"); return p[2] }
				if (f ~ /^lib\//) return "lib"; sub(/\/.*/, "", f); return f }
	     BEGIN { rank["core"] = 0; rank["mcp"] = 1; rank["openai"] = 2; rank["http"] = 3
		     allow["broker"] = "core mcp"; allow["mcp-server-sqlite"] = "core mcp"
		     allow["mcp-client"] = "core mcp broker"; allow["chat"] = "core mcp openai"
		     allow["cgi-bin"] = "core mcp openai http" }
	     { sa = side($1); sb = side($2); if (sa == sb) next; bad = ""
	       if (sa in rank) { if (!(sb in rank) || rank[sb] > rank[sa]) bad = "lib/" sa " may not use " sb }
	       else if (sa == "lib") bad = "lib files belong to a side (lib/core, lib/mcp, lib/openai, lib/http)"
	       else if (index(" " allow[sa] " ", " " sb " ") == 0) bad = sa " may use only: " allow[sa]
	       if (bad != "") { print "arrow against the layers: " $1 " -> " $2 " (" bad ")"; rc = 1 } }
	     END { exit rc }' "$tmp/edges" || rc=1
	;;
globals)
	# mutable data defined by a broker object, and every object naming it
	awk '$1 == "D" && $3 ~ /^broker\// && $4 ~ /^[BCDGS]$/ { g[$2] = $3 }
	     { seen[$2 " " $3] = 1 }
	     END { for (k in seen) { split(k, p, " "); if (p[1] in g) n[p[1]] = n[p[1]] " " p[2] }
		   for (s in n) if (split(n[s], x, " ") > 1) print "broker global " s " (defined in " g[s] ") named by:" n[s] }' \
		"$tmp/syms" | sort >"$tmp/glob"
	if [ -s "$tmp/glob" ]; then cat "$tmp/glob"; rc=1; fi
	;;
*)
	echo "usage: tests/layers.sh circles|order|globals|edges [ROOT]" >&2
	exit 2
	;;
esac
exit $rc
