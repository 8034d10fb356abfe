#!/bin/sh
# test_client.sh: the curl test client of a running mcpgw gateway (the original's test_client.py): models, tools, a tool run, chat completions plain and streamed, embeddings.
#
#   sh tests/test_client.sh [--url URL] [--key KEY] [--model MODEL] [--tool NAME] [--embedding-model MODEL]
#
# URL defaults to $MCPGW_URL, else http://$MCPGW_LISTEN (127.0.0.1:8000; from the
# environment, else $MCPGW_HOME/.env, as mcpgwctl reads it) (a trailing /v1 is
# accepted); KEY, the gateway's client key, to $MCPGW_API_KEY (sent as a
# bearer token when set; never $OPENAI_API_KEY: the upstream's key stays in
# the gateway and is not the client's). Prints
# PASS, FAIL or SKIP per step and then "N passed, N failed"; exits 1 when a
# step failed or the gateway cannot be reached, 2 on a usage error.
# POSIX sh and curl; python3 or node only to pick a tool when the gateway has
# no list_tables (or pass --tool).
set -u

# MCPGW_LISTEN as mcpgwctl reads it: the environment, else the .env file
# (MCPGW_ENV_FILE, default $MCPGW_HOME/.env; MCPGW_HOME default: this
# checkout); a bare PORT is 127.0.0.1:PORT
dotenv_get() {
	[ -r "$env_file" ] || return 0
	sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1=//p" "$env_file" | tail -n 1 |
		sed -e 's/[[:space:]]#.*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}
home=${MCPGW_HOME:-$(cd "$(dirname "$0")/.." && pwd)}
env_file=${MCPGW_ENV_FILE:-.env}
case $env_file in /*) ;; *) env_file="$home/$env_file" ;; esac
listen=${MCPGW_LISTEN:-$(dotenv_get MCPGW_LISTEN)}
listen=${listen:-127.0.0.1:8000}
case $listen in *:*) ;; *) listen="127.0.0.1:$listen" ;; esac
url=${MCPGW_URL:-http://$listen}
key=${MCPGW_API_KEY:-}
model=""
tool=""
embed_model=text-embedding-3-small
question="Introduce the main features of the Python language in one sentence."
passed=0
failed=0

usage() {
	sed -n 's/^#   //p' "$0"
	echo "See the comment at the top of $0."
}

# need_arg OPTION ARGC: an option's value is there
need_arg() {
	[ "$2" -ge 2 ] || { echo "test_client: $1 needs a value" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
	case $1 in
	--url) need_arg "$1" $#; url=$2; shift 2 ;;
	--url=*) url=${1#*=}; shift ;;
	--key) need_arg "$1" $#; key=$2; shift 2 ;;
	--key=*) key=${1#*=}; shift ;;
	--model) need_arg "$1" $#; model=$2; shift 2 ;;
	--model=*) model=${1#*=}; shift ;;
	--tool) need_arg "$1" $#; tool=$2; shift 2 ;;
	--tool=*) tool=${1#*=}; shift ;;
	--embedding-model) need_arg "$1" $#; embed_model=$2; shift 2 ;;
	--embedding-model=*) embed_model=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "test_client: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done
command -v curl >/dev/null 2>&1 || { echo "test_client: curl is not installed" >&2; exit 2; }
url=${url%/}
url=${url%/v1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-test-client.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# the key goes in a curl config file, not on the command line (ps would show it)
: >"$tmp/curlrc"
chmod 600 "$tmp/curlrc"
[ -z "$key" ] || printf 'header = "Authorization: Bearer %s"\n' "$key" >"$tmp/curlrc"

pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }

# body_excerpt: the last response body on one line, cut to 300 bytes
body_excerpt() { tr '\n' ' ' <"$tmp/body" | cut -c 1-300; }

# call METHOD PATH [BODY]: one request; sets status (HTTP status, or "000")
call() {
	if [ $# -ge 3 ]; then
		status=$(curl -sS -m 120 -K "$tmp/curlrc" -o "$tmp/body" -w '%{http_code}' -X "$1" \
			-H 'Content-Type: application/json' --data-binary "$3" "$url$2" 2>"$tmp/err")
	else
		status=$(curl -sS -m 120 -K "$tmp/curlrc" -o "$tmp/body" -w '%{http_code}' -X "$1" "$url$2" 2>"$tmp/err")
	fi
	[ -n "$status" ] || status=000
	[ -e "$tmp/body" ] || : >"$tmp/body"
}

# has REGEX: the last body matches (extended regex, on one line)
has() { tr '\n' ' ' <"$tmp/body" | grep -Eq "$1"; }

# strings FIELD: every "FIELD": "value" of the last body, one value a line
strings() { tr '\n' ' ' <"$tmp/body" | grep -Eo "\"$1\" *: *\"([^\"\\\\]|\\\\.)*\"" | sed -E "s/^\"$1\" *: *\"//; s/\"\$//"; }

# unescape: the common JSON string escapes of stdin made readable
unescape() { sed -e 's/\\n/ /g' -e 's/\\t/ /g' -e 's/\\"/"/g' -e 's/\\\\/\\/g'; }

# first_names N: the first N lines of stdin, comma-separated
first_names() { head -n "$1" | tr '\n' ',' | sed -e 's/,$//' -e 's/,/, /g'; }

reachable() {
	if ! curl -s -o /dev/null -m 10 -K "$tmp/curlrc" "$url/health" 2>/dev/null; then
		echo "cannot reach $url: is the gateway running? (make run)" >&2
		exit 1
	fi
}

step_models() {
	call GET /v1/models
	if [ "$status" = 200 ] && has '"object" *: *"list"'; then
		n=$(strings id | wc -l | tr -d ' ')
		pass "list models: $n models ($(strings id | first_names 5))"
	else
		fail "list models: HTTP $status: $(body_excerpt)"
	fi
}

# pick_tool: a tool that takes no required arguments, from the last GET /v1/tools body
pick_tool() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json, sys
for t in json.load(sys.stdin).get("data", []):
    if not (t.get("input_schema") or {}).get("required"):
        print(t["name"]); break' <"$tmp/body" 2>/dev/null
	elif command -v node >/dev/null 2>&1; then
		node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
const t = (j.data || []).find(t => !((t.input_schema || {}).required || []).length);
if (t) console.log(t.name);' <"$tmp/body" 2>/dev/null
	fi
}

step_tools() {
	call GET /v1/tools
	if [ "$status" = 200 ] && has '"object" *: *"list"'; then
		tr '\n' ' ' <"$tmp/body" | grep -Eo '"object" *: *"tool" *, *"name" *: *"[^"]*"' |
			sed -E 's/.*"name" *: *"//; s/"$//' >"$tmp/names"
		pass "list tools: $(wc -l <"$tmp/names" | tr -d ' ') tools ($(first_names 6 <"$tmp/names"))"
	else
		fail "list tools: HTTP $status: $(body_excerpt)"
		return
	fi
	[ -n "$tool" ] || { grep -qx list_tables "$tmp/names" && tool=list_tables; }
	[ -n "$tool" ] || tool=$(pick_tool)
}

step_run_tool() {
	if [ -z "$tool" ]; then
		skip "run a tool: no tool without required arguments found (pass --tool NAME)"
		return
	fi
	call POST /v1/tools "{\"tool\":\"$tool\",\"arguments\":{}}"
	if [ "$status" = 200 ] && has '"object" *: *"tool.result"'; then
		pass "run tool $tool: $(strings text | head -n 1 | unescape | cut -c 1-120)"
	else
		fail "run tool $tool: HTTP $status: $(body_excerpt)"
	fi
}

# chat_body STREAM: the chat completion request
chat_body() {
	printf '{%s"stream":%s,"messages":[{"role":"user","content":"%s"}]}' \
		"${model:+\"model\":\"$model\",}" "$1" "$question"
}

step_chat() {
	call POST /v1/chat/completions "$(chat_body false)"
	if [ "$status" = 200 ] && has '"object" *: *"chat.completion"' && has '"choices"'; then
		pass "chat completion: $(strings content | head -n 1 | unescape | cut -c 1-200)"
	else
		fail "chat completion: HTTP $status: $(body_excerpt)"
	fi
}

# stream_read: SSE lines on stdin; prints content deltas as they come, notes chunks, [DONE] and errors
stream_read() {
	: >"$tmp/chunks"
	while IFS= read -r line; do
		case $line in
		'data: [DONE]'*) : >"$tmp/done" ;;
		'data: {"error"'*) printf '%s\n' "${line#data: }" >"$tmp/stream_error" ;;
		'data: '*)
			echo >>"$tmp/chunks"
			printf '%s' "$line" | sed -E -n 's/.*"delta" *: *\{[^}]*"content" *: *"(([^"\\]|\\.)*)".*/\1/p' |
				unescape | tr -d '\n'
			;;
		esac
	done
}

step_stream() {
	rm -f "$tmp/done" "$tmp/stream_error" "$tmp/headers"
	printf '      '
	{
		curl -sS -N -m 120 -K "$tmp/curlrc" -D "$tmp/headers" -H 'Content-Type: application/json' \
			--data-binary "$(chat_body true)" "$url/v1/chat/completions" 2>"$tmp/err"
		echo $? >"$tmp/rc"
	} | tee "$tmp/body" | stream_read
	echo
	status=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$tmp/headers" 2>/dev/null)
	n=$(wc -l <"$tmp/chunks" | tr -d ' ')
	if [ "${status:-000}" = 200 ] && [ -e "$tmp/done" ] && [ ! -e "$tmp/stream_error" ] && [ "$n" -gt 0 ]; then
		pass "streaming chat completion: $n chunks, then [DONE]"
	elif [ -e "$tmp/stream_error" ]; then
		fail "streaming chat completion: an error event: $(cut -c 1-300 "$tmp/stream_error")"
	else
		fail "streaming chat completion: HTTP ${status:-none}, $n chunks, $([ -e "$tmp/done" ] || echo 'no [DONE], ')curl exit $(cat "$tmp/rc"): $(body_excerpt)"
	fi
}

step_embeddings() {
	call POST /v1/embeddings "{\"model\":\"$embed_model\",\"input\":[\"This is a test text\"]}"
	if [ "$status" = 200 ] && has '"object" *: *"list"' && has '"embedding"'; then
		pass "embeddings: $(tr '\n' ' ' <"$tmp/body" | grep -Eo '"object" *: *"embedding"' | wc -l | tr -d ' ') vectors ($embed_model)"
	elif [ "$status" = 404 ] && ! has 'model_not_found'; then
		skip "embeddings: POST /v1/embeddings answers 404: this gateway does not serve embeddings yet"
	else
		fail "embeddings: HTTP $status: $(body_excerpt)"
	fi
}

echo "mcpgw test client: $url"
reachable
step_models
step_tools
step_run_tool
step_chat
step_stream
step_embeddings
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
