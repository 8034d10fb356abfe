#!/usr/bin/env bats
# Tests of the upstream LLM simulator itself (tests/upstream-sim/sim.mjs): the OpenAI wire
# format it speaks, its scripted turns and its control API. JSON is checked with python3.

load ../upstream-sim/sim

setup_file() {
	sim_start
}

teardown_file() {
	sim_stop
}

setup() {
	sim_reset
	T=$BATS_TEST_TMPDIR
}

# chat BODY [curl args...]: POST to /v1/chat/completions; body to $T/out, headers to $T/hdr, status in $status_code
chat() {
	local body=$1; shift
	status_code=$(curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$body" "$@" "$SIM_URL/v1/chat/completions")
}

# py FILE <<'EOF' ... EOF: run python assertions; d = the JSON in FILE, or for a stream ev = the list
# of SSE data payloads (parsed JSON, "[DONE]" as a string) after checking the framing is exact
py() {
	python3 - "$1" 3<&0 <<'PYEOF'
import json, sys, re, os
src = os.fdopen(3).read()
raw = open(sys.argv[1], encoding="utf-8").read()
d = ev = None
if raw.startswith("data: "):
    blocks = raw.split("\n\n")
    assert blocks[-1] == "", "stream does not end with a blank line: %r" % raw[-40:]
    ev = []
    for b in blocks[:-1]:
        assert b.startswith("data: ") and "\n" not in b, "bad SSE block %r" % b
        p = b[len("data: "):]
        ev.append(p if p == "[DONE]" else json.loads(p))
else:
    d = json.loads(raw)
exec(src)
PYEOF
}

header() { sed -n "s/^$1: *//Ip" "$T/hdr" | tr -d '\r'; }

MSGS='"messages":[{"role":"user","content":"hello"}]'
TOOLS='"tools":[{"type":"function","function":{"name":"read_query","parameters":{"type":"object","properties":{"query":{"type":"string"}}}}},{"type":"function","function":{"name":"echo","parameters":{"type":"object"}}}]'
TWO_CALLS='[{"name":"read_query","arguments":{"query":"SELECT 1"}},{"name":"echo","arguments":{"message":"hi"}}]'

@test "sim: non-streamed text answer has the chat.completion shape" {
	sim_script '[{"content":"Hello there"}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	[ "$status_code" = 200 ]
	[[ "$(header content-type)" == application/json* ]]
	py "$T/out" <<'EOF'
assert list(d) == ["id","object","created","model","choices","usage","service_tier","system_fingerprint"], list(d)
assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", d["id"]), d["id"]
assert d["object"] == "chat.completion" and isinstance(d["created"], int)
assert d["model"] == "gpt-4o-mini" and d["system_fingerprint"].startswith("fp_")
c, = d["choices"]
assert c == {"index":0, "message":{"role":"assistant","content":"Hello there","refusal":None,"annotations":[]}, "logprobs":None, "finish_reason":"stop"}, c
u = d["usage"]
assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["completion_tokens"] > 0
assert u["prompt_tokens_details"] == {"cached_tokens":0,"audio_tokens":0}
assert u["completion_tokens_details"] == {"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}
EOF
}

@test "sim: an empty queue echoes the last user message; fixed usage is honoured" {
	chat '{"model":"sim-model","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"second"}]}]}'
	[ "$status_code" = 200 ]
	py "$T/out" <<'EOF'
assert d["choices"][0]["message"]["content"] == "sim: second", d
EOF
	sim_script '[{"content":"x","usage":{"prompt_tokens":10,"completion_tokens":5}}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	py "$T/out" <<'EOF'
u = d["usage"]
assert (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) == (10, 5, 15), u
EOF
}

@test "sim: non-streamed tool calls: content null, ids, serialised arguments" {
	sim_script '[{"tool_calls":[{"name":"read_query","arguments":{"query":"SELECT 1"}},{"id":"call_given","name":"echo","arguments":"{\"message\":\"hi\"}"}]}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS,$TOOLS}"
	[ "$status_code" = 200 ]
	py "$T/out" <<'EOF'
c = d["choices"][0]
assert c["finish_reason"] == "tool_calls"
m = c["message"]
assert m["content"] is None and m["refusal"] is None and m["annotations"] == []
a, b = m["tool_calls"]
assert re.fullmatch(r"call_[A-Za-z0-9]{24}", a["id"]) and b["id"] == "call_given"
assert a["type"] == "function" and a["function"]["name"] == "read_query"
assert json.loads(a["function"]["arguments"]) == {"query": "SELECT 1"}
assert b["function"] == {"name": "echo", "arguments": '{"message":"hi"}'}
EOF
}

@test "sim: streamed text: role chunk, content chunks, one finish_reason, [DONE]" {
	sim_script '[{"content":"Hello there","chunks":3}]'
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}"
	[ "$status_code" = 200 ]
	[[ "$(header content-type)" == text/event-stream* ]]
	py "$T/out" <<'EOF'
assert ev[-1] == "[DONE]" and "[DONE]" not in ev[:-1]
ch = ev[:-1]
assert len(ch) == 1 + 3 + 1, len(ch)
for c in ch:
    assert c["object"] == "chat.completion.chunk" and c["id"] == ch[0]["id"] and c["model"] == "gpt-4o-mini"
    assert c["created"] == ch[0]["created"] and c["system_fingerprint"].startswith("fp_")
    assert "usage" not in c, "usage present without include_usage"
    assert len(c["choices"]) == 1 and c["choices"][0]["index"] == 0 and c["choices"][0]["logprobs"] is None
assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", ch[0]["id"])
assert ch[0]["choices"][0]["delta"] == {"role":"assistant","content":"","refusal":None}
assert "".join(c["choices"][0]["delta"]["content"] for c in ch[1:4]) == "Hello there"
fin = [c["choices"][0]["finish_reason"] for c in ch]
assert fin == [None]*4 + ["stop"], fin
assert ch[-1]["choices"][0]["delta"] == {}
EOF
}

@test "sim: streamed tool calls: split argument deltas, indexes, usage chunk" {
	sim_script "[{\"tool_calls\":$TWO_CALLS}]"
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},$MSGS,$TOOLS}"
	[ "$status_code" = 200 ]
	py "$T/out" <<'EOF'
assert ev[-1] == "[DONE]"
ch = ev[:-1]
usage = ch[-1]
assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0, usage
for c in ch[:-1]:
    assert "usage" in c and c["usage"] is None, c
first = ch[0]["choices"][0]["delta"]
assert first["role"] == "assistant" and first["content"] is None and first["refusal"] is None
calls, seen, order = {}, set(), []
for c in ch[:-2]:
    for t in c["choices"][0]["delta"].get("tool_calls", []):
        i = t["index"]; order.append(i)
        if i not in seen:
            seen.add(i)
            assert set(t) == {"index","id","type","function"} and t["type"] == "function", t
            assert t["function"]["arguments"] == "" and t["function"]["name"], t
            assert re.fullmatch(r"call_[A-Za-z0-9]{24}", t["id"])
            calls[i] = {"name": t["function"]["name"], "args": "", "frags": 0}
        else:
            assert set(t) == {"index","function"} and set(t["function"]) == {"arguments"}, t
            calls[i]["args"] += t["function"]["arguments"]; calls[i]["frags"] += 1
assert order == sorted(order), "sequential calls expected: %r" % order
assert sorted(calls) == [0, 1]
assert calls[0]["name"] == "read_query" and json.loads(calls[0]["args"]) == {"query": "SELECT 1"}
assert calls[1]["name"] == "echo" and json.loads(calls[1]["args"]) == {"message": "hi"}
assert all(c["frags"] >= 2 for c in calls.values()), calls
fin = [c["choices"][0]["finish_reason"] for c in ch[:-1]]
assert fin.count("tool_calls") == 1 and fin[-1] == "tool_calls" and set(fin[:-1]) == {None}, fin
assert ch[-2]["choices"][0]["delta"] == {}
EOF
}

@test "sim: interleaved parallel tool calls; arg_chunks sets the fragment count" {
	sim_script "[{\"tool_calls\":$TWO_CALLS,\"interleave\":true,\"arg_chunks\":4}]"
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS,$TOOLS}"
	py "$T/out" <<'EOF'
order = [t["index"] for c in ev[:-1] for t in c["choices"][0]["delta"].get("tool_calls", [])]
assert order == [0, 1] * 5, order
EOF
}

@test "sim: stream is chosen by the body, not the Accept header; finish_reason length" {
	sim_script '[{"content":"partial","finish_reason":"length"},{"content":"partial","finish_reason":"length"}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}" -H 'Accept: text/event-stream'
	py "$T/out" <<'EOF'
assert d["object"] == "chat.completion" and d["choices"][0]["finish_reason"] == "length"
EOF
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}"
	py "$T/out" <<'EOF'
assert [c["choices"][0]["finish_reason"] for c in ev[:-1]][-1] == "length"
EOF
}

@test "sim: scripted errors: 500, 503, 429 with retry-after then the next turn" {
	sim_script '[{"error":{"status":500,"message":"boom"}},{"error":{"status":503}},{"error":{"status":429,"retry_after":1}},{"content":"retried"}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	[ "$status_code" = 500 ]
	py "$T/out" <<'EOF'
assert d == {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}, d
EOF
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}"
	[ "$status_code" = 503 ]
	py "$T/out" <<'EOF'
assert set(d["error"]) == {"message","type","param","code"}
EOF
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	[ "$status_code" = 429 ]
	[ "$(header retry-after)" = 1 ]
	py "$T/out" <<'EOF'
assert d["error"]["code"] == "rate_limit_exceeded", d
EOF
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	[ "$status_code" = 200 ]
	py "$T/out" <<'EOF'
assert d["choices"][0]["message"]["content"] == "retried"
EOF
}

@test "sim: unknown model is 404 model_not_found (chat and models) and consumes no turn" {
	sim_script '[{"content":"kept"}]'
	chat "{\"model\":\"no-such-model\",$MSGS}"
	[ "$status_code" = 404 ]
	py "$T/out" <<'EOF'
assert d["error"]["code"] == "model_not_found" and d["error"]["type"] == "invalid_request_error", d
EOF
	status_code=$(curl -s -o "$T/out" -w '%{http_code}' "$SIM_URL/v1/models/no-such-model")
	[ "$status_code" = 404 ]
	py "$T/out" <<'EOF'
assert d["error"]["code"] == "model_not_found"
EOF
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	py "$T/out" <<'EOF'
assert d["choices"][0]["message"]["content"] == "kept"
EOF
}

@test "sim: --api-key: 401 invalid_api_key without the right bearer key" {
	local main_url=$SIM_URL main_pid=$SIM_PID
	sim_start --api-key sk-test-123
	local keyed=$SIM_URL keyed_pid=$SIM_PID
	SIM_URL=$main_url SIM_PID=$main_pid
	run curl -s -o "$T/out" -w '%{http_code}' -H 'Authorization: Bearer sk-wrong-456789' "$keyed/v1/models"
	[ "$output" = 401 ]
	py "$T/out" <<'EOF'
assert d["error"]["code"] == "invalid_api_key" and d["error"]["type"] == "invalid_request_error", d
EOF
	run curl -s -o "$T/out" -w '%{http_code}' "$keyed/v1/models"
	[ "$output" = 401 ]
	run curl -s -o "$T/out" -w '%{http_code}' -H 'Authorization: Bearer sk-test-123' "$keyed/v1/models"
	[ "$output" = 200 ]
	sim_stop "$keyed_pid"
}

@test "sim: models list and retrieve have the list/model object shapes" {
	curl -sf -o "$T/out" "$SIM_URL/v1/models"
	py "$T/out" <<'EOF'
assert d["object"] == "list"
ids = [m["id"] for m in d["data"]]
assert "gpt-4o-mini" in ids and "sim-model" in ids
for m in d["data"]:
    assert set(m) == {"id","object","created","owned_by"} and m["object"] == "model"
EOF
	curl -sf -o "$T/out" "$SIM_URL/v1/models/sim-model"
	py "$T/out" <<'EOF'
assert d["id"] == "sim-model" and d["object"] == "model"
EOF
}

@test "sim: the request log records path, headers and body; reset clears it" {
	chat "{\"model\":\"gpt-4o-mini\",$MSGS,$TOOLS}" -H 'Authorization: Bearer sk-abc' -H 'X-Trace: 42'
	curl -sf "$SIM_URL/v1/models" >/dev/null
	sim_requests >"$T/log"
	py "$T/log" <<'EOF'
a, b = d
assert a["method"] == "POST" and a["path"] == "/v1/chat/completions" and a["status"] == 200
assert a["headers"]["authorization"] == "Bearer sk-abc" and a["headers"]["x-trace"] == "42"
assert a["body"]["messages"] == [{"role": "user", "content": "hello"}]
assert [t["function"]["name"] for t in a["body"]["tools"]] == ["read_query", "echo"]
assert b["method"] == "GET" and b["path"] == "/v1/models" and b["seq"] > a["seq"]
EOF
	sim_requests "path=/v1/models" >"$T/log"
	py "$T/log" <<'EOF'
assert len(d) == 1
EOF
	sim_reset
	[ "$(sim_requests)" = "[]" ]
}

@test "sim: keep-alive: two requests on one curl connection count as one connection" {
	curl -sf -o /dev/null -o /dev/null "$SIM_URL/v1/models" "$SIM_URL/v1/models/sim-model"
	sim_stats >"$T/stats"
	py "$T/stats" <<'EOF'
assert d["connections"] == 1 and d["requests"] == 2, d
EOF
	curl -sf -o /dev/null "$SIM_URL/v1/models"
	sim_stats >"$T/stats"
	py "$T/stats" <<'EOF'
assert d["connections"] == 2 and d["requests"] == 3, d
EOF
	sim_requests >"$T/log"
	py "$T/log" <<'EOF'
assert d[0]["connection"] == d[1]["connection"] != d[2]["connection"]
EOF
}

@test "sim: delay_ms holds the answer (a client timeout fires)" {
	sim_script '[{"delay_ms":1500,"content":"late"}]'
	run curl -s --max-time 0.5 -H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",$MSGS}" "$SIM_URL/v1/chat/completions"
	[ "$status" = 28 ]
}

@test "sim: chunk_delay_ms: headers come at once, the stream takes its time" {
	sim_script '[{"content":"a b c","chunk_delay_ms":200}]'
	local w
	w=$(curl -s -o "$T/out" -w '%{http_code} %{time_starttransfer} %{time_total}' \
		-H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}" "$SIM_URL/v1/chat/completions")
	read -r code first total <<<"$w"
	[ "$code" = 200 ]
	python3 -c "import sys; f, t = float(sys.argv[1]), float(sys.argv[2]); assert f < 0.5 and t >= 0.8, (f, t)" "$first" "$total"
	py "$T/out" <<'EOF'
assert "".join(c["choices"][0]["delta"].get("content", "") for c in ev[:-1]) == "a b c"
EOF
}

@test "sim: break_after_chunks cuts the connection mid-stream without [DONE]" {
	sim_script '[{"content":"one two three four","break_after_chunks":2}]'
	run curl -s -o "$T/out" -H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}" "$SIM_URL/v1/chat/completions"
	[ "$status" = 18 ]
	py "$T/out" <<'EOF'
assert len(ev) == 2 and "[DONE]" not in ev, ev
EOF
	sim_requests >"$T/log"
	py "$T/log" <<'EOF'
assert d[-1]["broken"] is True
EOF
}

@test "sim: garbage answers 200 with an invalid body" {
	sim_script '[{"garbage":"not json at all"},{"garbage":"not json at all"}]'
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	[ "$status_code" = 200 ]
	[ "$(cat "$T/out")" = "not json at all" ]
	chat "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}"
	[ "$(head -n 1 "$T/out")" = "data: not json at all" ]
}

@test "sim: a client that goes away mid-stream is logged as aborted" {
	sim_script '[{"content":"a b c d e f g h","chunk_delay_ms":200}]'
	run curl -s --max-time 0.5 -H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}" "$SIM_URL/v1/chat/completions"
	[ "$status" = 28 ]
	sleep 0.5
	sim_requests >"$T/log"
	py "$T/log" <<'EOF'
assert d[-1].get("aborted") is True, d[-1]
EOF
}

@test "sim: request validation rejects a broken tool-call history like the real API" {
	# a tool message that answers nothing
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_1","content":"r"}]}'
	[ "$status_code" = 400 ]
	py "$T/out" <<'EOF'
assert "must be a response to a preceeding message with 'tool_calls'" in d["error"]["message"], d
EOF
	# tool_calls without a response for each id
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"echo","arguments":"{}"}},{"id":"call_2","type":"function","function":{"name":"echo","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"r"},{"role":"user","content":"y"}]}'
	[ "$status_code" = 400 ]
	py "$T/out" <<'EOF'
assert "did not have response messages: call_2" in d["error"]["message"], d
EOF
	# arguments must be a string
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"echo","arguments":{}}}]},{"role":"tool","tool_call_id":"call_1","content":"r"}]}'
	[ "$status_code" = 400 ]
	py "$T/out" <<'EOF'
assert d["error"]["code"] == "invalid_type" and d["error"]["param"].endswith("function.arguments"), d
EOF
	# a tool name outside ^[a-zA-Z0-9_-]+$
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"srv.tool"}}]}'
	[ "$status_code" = 400 ]
	py "$T/out" <<'EOF'
assert d["error"]["param"] == "tools[0].function.name", d
EOF
	# a complete round is fine
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"echo","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"r"}]}'
	[ "$status_code" = 200 ]
}

@test "sim: match picks a turn by substring; expect records failures" {
	sim_script '[{"match":"weather","content":"sunny"},{"content":"generic","expect":{"model":"gpt-4o","tools":["read_query"]}}]'
	chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"and the weather?"}]}'
	py "$T/out" <<'EOF'
assert d["choices"][0]["message"]["content"] == "sunny", d
EOF
	chat "{\"model\":\"gpt-4o-mini\",$MSGS}"
	curl -sf -o "$T/exp" "$SIM_URL/_sim/expectations"
	py "$T/exp" <<'EOF'
assert d["ok"] is False and d["checked"] == 1 and len(d["failures"]) == 2, d
EOF
}

@test "sim: --auto-tool answers each request from its own body, in any order; --chunk-delay-ms, --chunks; a queued turn still wins" {
	local main_pid=$SIM_PID main_url=$SIM_URL
	sim_start --auto-tool 'echo:{"message":"hi"}' --chunk-delay-ms 60 --chunks 2 --no-obfuscation
	local auto_pid=$SIM_PID auto_url=$SIM_URL
	SIM_PID=$main_pid SIM_URL=$main_url
	local second='"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"echo","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"hi"}]'
	# the second round first, both at once: each gets the answer its own body asks for
	curl -s -o "$T/r2" -w '%{time_total}' -H 'Content-Type: application/json' \
		-d "{\"model\":\"gpt-4o-mini\",\"stream\":true,$second}" "$auto_url/v1/chat/completions" >"$T/t2" &
	local c2=$!
	curl -s -o "$T/r1" -w '%{time_total}' -H 'Content-Type: application/json' \
		-d "{\"model\":\"gpt-4o-mini\",\"stream\":true,$MSGS}" "$auto_url/v1/chat/completions" >"$T/t1"
	wait "$c2"
	curl -sf -X POST --data-binary '[{"content":"scripted"}]' "$auto_url/_sim/script" >/dev/null
	curl -s -o "$T/r3" -H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",$MSGS}" "$auto_url/v1/chat/completions"
	curl -s -o "$T/r4" -H 'Content-Type: application/json' -d "{\"model\":\"gpt-4o-mini\",$MSGS}" "$auto_url/v1/chat/completions"
	sim_stop "$auto_pid"
	py "$T/r1" <<'EOF'
assert ev[-1] == "[DONE]"
calls = [t for c in ev[:-1] for t in c["choices"][0]["delta"].get("tool_calls", [])]
assert calls[0]["function"]["name"] == "echo", calls
assert json.loads("".join(t["function"]["arguments"] for t in calls)) == {"message": "hi"}
assert ev[-2]["choices"][0]["finish_reason"] == "tool_calls"
EOF
	py "$T/r2" <<'EOF'
assert ev[-1] == "[DONE]"
parts = [c["choices"][0]["delta"].get("content") for c in ev[1:-2]]
assert parts == ["sim: ", "hello"], parts
assert ev[-2]["choices"][0]["finish_reason"] == "stop"
EOF
	# 4 chunks each: 3 gaps, and [DONE] one more gap after the last
	awk '{ exit !($1 >= 0.24 && $1 < 2) }' "$T/t1"
	awk '{ exit !($1 >= 0.24 && $1 < 2) }' "$T/t2"
	py "$T/r3" <<'EOF'
assert d["choices"][0]["message"]["content"] == "scripted", d
EOF
	py "$T/r4" <<'EOF'
assert d["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "echo", d
EOF
}

@test "sim: embeddings: deterministic, float == base64 little-endian float32, dimensions" {
	curl -sf -o "$T/f" -H 'Content-Type: application/json' -d '{"model":"text-embedding-3-small","input":["alpha","beta"]}' "$SIM_URL/v1/embeddings"
	curl -sf -o "$T/b" -H 'Content-Type: application/json' -d '{"model":"text-embedding-3-small","input":["alpha","beta"],"encoding_format":"base64"}' "$SIM_URL/v1/embeddings"
	curl -sf -o "$T/d" -H 'Content-Type: application/json' -d '{"model":"text-embedding-3-small","input":"alpha","dimensions":16}' "$SIM_URL/v1/embeddings"
	py "$T/f" <<'EOF'
import base64, struct, math
b = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "b")))
e = json.load(open(os.path.join(os.path.dirname(sys.argv[1]), "d")))
assert d["object"] == "list" and d["model"] == "text-embedding-3-small"
assert set(d["usage"]) == {"prompt_tokens", "total_tokens"}
assert [x["index"] for x in d["data"]] == [0, 1] and all(x["object"] == "embedding" for x in d["data"])
v = d["data"][0]["embedding"]
assert len(v) == 1536 and abs(math.sqrt(sum(x*x for x in v)) - 1) < 1e-4
raw = base64.b64decode(b["data"][0]["embedding"])
assert list(struct.unpack("<%df" % (len(raw) // 4), raw)) == v
assert d["data"][1]["embedding"] != v
w = e["data"][0]["embedding"]
assert len(w) == 16 and abs(math.sqrt(sum(x*x for x in w)) - 1) < 1e-4
EOF
	curl -sf -o "$T/f2" -H 'Content-Type: application/json' -d '{"model":"text-embedding-3-small","input":["alpha","beta"]}' "$SIM_URL/v1/embeddings"
	cmp "$T/f" "$T/f2"
}

@test "sim: the openai npm SDK accepts the simulator's output (create, stream, .stream() helper)" {
	[ -d "$BATS_TEST_DIRNAME/../node_modules/openai" ] || skip "openai npm package not installed (npm ci in tests/)"
	run node "$BATS_TEST_DIRNAME/../upstream-sim/sdk-check.mjs"
	echo "$output"
	[ "$status" = 0 ]
}

@test "make sim: serves the simulator on SIM_PORT, 127.0.0.1 only, with what it needs in place (README's quick start)" {
	local port pid out

	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	out=$T/make-sim.out
	# its own process group, stopped by its pid (make, then node exec'd in its recipe)
	setsid make -s -C "$BATS_TEST_DIRNAME/../.." sim SIM_PORT="$port" >"$out" 2>&1 3>&- &
	pid=$!
	for _ in $(seq 100); do grep -q "^LISTENING $port\$" "$out" && break; sleep 0.1; done
	grep -q "^LISTENING $port\$" "$out" || { cat "$out" >&2; kill -- -"$pid"; return 1; }
	run curl -s -H 'Content-Type: application/json' --data-binary '{"model":"sim-model","messages":[{"role":"user","content":"hello"}]}' \
		"http://127.0.0.1:$port/v1/chat/completions"
	# bound to 127.0.0.1 only
	ss -ltn | awk -v p=":$port" '$4 ~ p"$" { print $4 }' >"$T/bound"
	kill -- -"$pid"
	wait "$pid" || true
	[[ $output == *'"content":"sim: hello"'* ]] || { echo "the answer: $output" >&2; return 1; }
	[ "$(cat "$T/bound")" = "127.0.0.1:$port" ] || { echo "bound to: $(cat "$T/bound")" >&2; return 1; }
}
