#!/bin/sh
# web-errors.sh: the error objects a web server sends for the statuses it answers by itself, as health.fcgi words them.
#
# Usage: deploy/web-errors.sh HEALTH_FCGI [STATUS...]
# Prints one line per status: STATUS, a tab, the JSON error object (one line).
# health.fcgi writes each as plain CGI, told the status as Apache's
# ErrorDocument tells it, with no request to name, so the wording has one home
# (lib/http/responder.c). `make` writes cgi-bin/web-errors.tsv with it (the
# default MCPGW_MAX_BODY_BYTES); mcpgwctl turns that into lighttpd's error files
# and Apache's ErrorDocument lines, and asks health.fcgi again only for a 413
# with another limit. Exits 1, naming the status, when an object is missing or
# holds \, % or $ (Apache reads ErrorDocument texts as ap_expr strings).
set -u
health=${1:?usage: web-errors.sh HEALTH_FCGI [STATUS...]}
shift
[ $# -gt 0 ] || set -- 400 401 403 404 405 406 408 411 412 413 414 416 417 431 500 501 502 503 504 505
for status in "$@"; do
	body=$(env -u REQUEST_METHOD -u REQUEST_URI MCPGW_LOG_FILE=/dev/null REDIRECT_STATUS="$status" \
		GATEWAY_INTERFACE=CGI/1.1 MCPGW_LOG_LEVEL=error "$health" </dev/null 2>/dev/null |
		tr -d '\r' | sed '1,/^$/d')
	case $body in
	*[\\%\$]*) echo "web-errors: health.fcgi's $status error object holds \\, % or \$, which Apache's ErrorDocument would mangle: $body" >&2; exit 1 ;;
	'{"error":'*) ;;
	*) echo "web-errors: $health did not write the $status error object" >&2; exit 1 ;;
	esac
	printf '%s\t%s\n' "$status" "$body"
done
