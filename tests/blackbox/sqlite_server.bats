#!/usr/bin/env bats
# sqlite_server.bats: black-box tests of mcp-server-sqlite: JSON-RPC lines in on stdin, answers checked on stdout (cancellation included).

setup() {
	BIN="$BATS_TEST_DIRNAME/../../mcp-server-sqlite/mcp-server-sqlite"
	[ -x "$BIN" ] || skip "build it first: make mcp-server-sqlite/mcp-server-sqlite"
	DB="$BATS_TEST_TMPDIR/test.db"
	OUT="$BATS_TEST_TMPDIR/out.jsonl"
	ERR="$BATS_TEST_TMPDIR/err.log"
}

INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bats","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'

# serve LINE...: run one server session over the lines (each newline-terminated); stdout -> $OUT.
serve() {
	printf '%s\n' "$@" | "$BIN" --db-path "$DB" >"$OUT" 2>"$ERR"
}

# call ID TOOL ARGS_JSON: a tools/call request line
call() {
	printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2" "$3"
}

# query ID TOOL SQL: a tools/call request line running raw SQL text (JSON-escaped here)
query() {
	python3 -c 'import json, sys; print(json.dumps({"jsonrpc": "2.0", "id": int(sys.argv[1]), "method": "tools/call",
	"params": {"name": sys.argv[2], "arguments": {"query": sys.argv[3]}}}))' "$1" "$2" "$3"
}

# check PYTHON: run assertions over $OUT.  In scope: msgs (every line, parsed),
# r (id -> message), text(id) (first content text), err(id), is_error(id), data(id) (text parsed as JSON).
check() {
	python3 - "$OUT" "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if l]
msgs = [json.loads(l) for l in lines]
r = {m["id"]: m for m in msgs if "id" in m}
def res(i):
    assert "result" in r[i], "no result for id %r: %r" % (i, r[i])
    return r[i]["result"]
def text(i): return res(i)["content"][0]["text"]
def data(i): return json.loads(text(i))
def is_error(i): return res(i).get("isError") is True
def err(i): return r[i]["error"]
try:
    exec(sys.argv[2])
except Exception as e:
    print("check failed:", type(e).__name__, e)
    print("\n".join(lines)[:4000])
    sys.exit(1)
PY
}

@test "--help, --version and bad arguments" {
	run "$BIN" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--db-path"* ]]
	run "$BIN" --version
	[ "$status" -eq 0 ]
	[ "$output" = "mcp-server-sqlite 0.1.0" ]
	run "$BIN"
	[ "$status" -eq 2 ]
	[[ "$output" == *"no database path given"*"Try 'mcp-server-sqlite --help'"* ]]
	run "$BIN" --bogus x.db
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--bogus'"* ]]
	run "$BIN" a.db b.db
	[ "$status" -eq 2 ]
	run "$BIN" --db-path
	[ "$status" -eq 2 ]
	MCP_SQLITE_MAX_ROWS=abc run "$BIN" "$DB" </dev/null
	[ "$status" -eq 2 ]
}

@test "a positional path works, and the file and its directories are created" {
	db="$BATS_TEST_TMPDIR/sub/dir/new.db"
	run "$BIN" "$db" </dev/null
	[ "$status" -eq 0 ]
	[ -f "$db" ]
	run "$BIN" --db-path="$db" </dev/null
	[ "$status" -eq 0 ]
}

@test "a file that is not a database is refused at start" {
	echo "this is not sqlite, just some text long enough to be a header......................." >"$DB"
	run "$BIN" "$DB" </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a database"* ]]
}

@test "initialize: version negotiation, capabilities and serverInfo" {
	serve '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{}}}' \
		'{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01","capabilities":{}}}' \
		'{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}' \
		'{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}' \
		"$INITED" \
		'{"jsonrpc":"2.0","id":5,"method":"ping"}'
	check '
assert res(1)["protocolVersion"] == "2024-11-05"
assert res(2)["protocolVersion"] == "2025-11-25"
assert res(3)["protocolVersion"] == "2025-11-25"
assert res(4)["protocolVersion"] == "2025-03-26"
c = res(1)["capabilities"]
assert set(c) >= {"tools", "resources", "prompts"}, c
assert c["resources"]["listChanged"] is False
assert res(1)["serverInfo"] == {"name": "mcp-server-sqlite", "version": "0.1.0"}
assert res(5) == {}
assert len(msgs) == 5, "a notification was answered"
'
}

@test "tools/list has exactly the six tools with object schemas and annotations" {
	serve "$INIT" '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
	check '
tools = {t["name"]: t for t in res(1)["tools"]}
assert sorted(tools) == sorted(["read_query", "write_query", "create_table", "list_tables", "describe_table", "append_insight"]), sorted(tools)
want = {"read_query": ["query"], "write_query": ["query"], "create_table": ["query"], "list_tables": [],
        "describe_table": ["table_name"], "append_insight": ["insight"]}
for name, t in tools.items():
    s = t["inputSchema"]
    assert s["type"] == "object" and s["required"] == want[name], (name, s)
    assert sorted(s["properties"]) == want[name], (name, s)
    for p in s["properties"].values():
        assert p["type"] == "string" and p["description"]
    assert t["description"]
for name in ("read_query", "list_tables", "describe_table"):
    assert tools[name]["annotations"]["readOnlyHint"] is True
assert tools["write_query"]["annotations"]["destructiveHint"] is True
assert tools["write_query"]["annotations"]["readOnlyHint"] is False
'
}

@test "create_table, write_query, read_query round-trip real rows" {
	serve "$INIT" \
		"$(query 1 create_table "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, img BLOB, note TEXT)")" \
		"$(query 2 write_query "INSERT INTO items (name, price, img) VALUES ('apple', 1.5, x'00FF'), ('pear \"q\"', 2, NULL), ('café', 0.1, NULL)")" \
		"$(query 3 read_query "SELECT * FROM items ORDER BY id")" \
		"$(query 4 write_query "UPDATE items SET price = price * 2 WHERE price > 1")" \
		"$(query 5 read_query "WITH x AS (SELECT name, price FROM items) SELECT * FROM x WHERE price > 2 ORDER BY name")" \
		"$(query 6 write_query "DELETE FROM items WHERE id = 3")" \
		"$(query 7 read_query "SELECT count(*) AS n, sum(price) AS total FROM items")" \
		"$(query 8 read_query "VALUES (1, 2)")"
	check '
assert text(1) == "Table created successfully" and not is_error(1)
assert data(2) == {"affected_rows": 3}, text(2)
assert data(3) == [
  {"id": 1, "name": "apple", "price": 1.5, "img": "00FF", "note": None},
  {"id": 2, "name": "pear \"q\"", "price": 2.0, "img": None, "note": None},
  {"id": 3, "name": "caf\u00e9", "price": 0.1, "img": None, "note": None}], text(3)
assert type(data(3)[0]["id"]) is int and type(data(3)[1]["price"]) is float
assert "0.1," in text(3), "reals should print like Python: " + text(3)
assert data(4) == {"affected_rows": 2}
assert data(5) == [{"name": "apple", "price": 3.0}, {"name": "pear \"q\"", "price": 4.0}], text(5)
assert data(6) == {"affected_rows": 1}
assert data(7) == [{"n": 2, "total": 7.0}]
assert data(8) == [{"column1": 1, "column2": 2}]
'
	# the data is on disk: a new session sees it
	serve "$INIT" "$(query 1 read_query "SELECT name FROM items ORDER BY id")"
	check 'assert data(1) == [{"name": "apple"}, {"name": "pear \"q\""}]'
}

@test "list_tables and describe_table" {
	serve "$INIT" \
		"$(call 1 list_tables '{}')" \
		"$(query 2 create_table "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL DEFAULT 'x')")" \
		"$(query 3 create_table 'CREATE TABLE IF NOT EXISTS "b c" (k)')" \
		"$(call 4 list_tables '{}')" \
		"$(call 5 describe_table '{"table_name":"a"}')" \
		"$(call 6 describe_table '{"table_name":"b c"}')" \
		"$(call 7 describe_table '{"table_name":"nosuch"}')" \
		"$(call 8 describe_table "{\"table_name\":\"a') UNION SELECT 1,2,3,4,5,6 --\"}")" \
		'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_tables"}}'
	check '
assert data(1) == []
assert data(4) == [{"name": "a"}, {"name": "b c"}], text(4)
assert data(5) == [
  {"cid": 0, "name": "id", "type": "INTEGER", "notnull": 0, "dflt_value": None, "pk": 1},
  {"cid": 1, "name": "v", "type": "TEXT", "notnull": 1, "dflt_value": "'"'x'"'", "pk": 0}], text(5)
assert [c["name"] for c in data(6)] == ["k"]
assert is_error(7) and "nosuch" in text(7), text(7)
assert is_error(8)
assert data(9) == data(4)
'
}

@test "refusals: wrong kind, several statements, empty; nothing is executed" {
	serve "$INIT" \
		"$(query 1 create_table "CREATE TABLE t (a INTEGER)")" \
		"$(query 2 write_query "INSERT INTO t VALUES (1)")" \
		"$(query 3 write_query "DROP TABLE t")" \
		"$(query 4 read_query "INSERT INTO t VALUES (2)")" \
		"$(query 5 read_query "SELECT 1; DROP TABLE t")" \
		"$(query 6 create_table "CREATE INDEX ti ON t (a)")" \
		"$(query 7 write_query "SELECT * FROM t")" \
		"$(query 8 read_query "WITH x AS (SELECT 1) DELETE FROM t")" \
		"$(query 9 write_query "INSERT INTO t VALUES (3); DELETE FROM t")" \
		"$(query 10 read_query "   ")" \
		"$(query 11 read_query "-- just a comment")" \
		"$(query 12 read_query "PRAGMA writable_schema = 1")" \
		"$(query 13 write_query "ATTACH DATABASE 'x.db' AS x")" \
		"$(query 14 create_table "CREATE TABLE u (a); DROP TABLE t")" \
		"$(query 15 read_query "SELECT 1; ")" \
		"$(call 20 list_tables '{}')" \
		"$(query 21 read_query "SELECT a FROM t")" \
		"$(query 22 read_query "SELECT name FROM sqlite_master WHERE type = 'index'")"
	check '
for i in range(3, 15):
    assert is_error(i), (i, r[i])
    assert text(i).startswith("Error: "), text(i)
assert "write_query" in text(3) and "read_query" in text(4)
assert "one SQL statement" in text(5) and "nothing was executed" in text(5)
assert "CREATE TABLE" in text(6)
assert "empty" in text(10) and "empty" in text(11)
assert not is_error(15)
assert data(20) == [{"name": "t"}], "the table must still exist: " + text(20)
assert data(21) == [{"a": 1}], text(21)
assert data(22) == []
'
}

@test "argument problems are tool errors, unknown tools are -32602" {
	serve "$INIT" \
		'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_query","arguments":{}}}' \
		'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_query","arguments":{"query":42}}}' \
		'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_query"}}' \
		'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}' \
		'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"arguments":{}}}' \
		'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"read_query","arguments":"SELECT 1"}}' \
		'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":[1]}' \
		"$(query 8 read_query "SELECT * FROM missing")" \
		"$(query 9 read_query "SELECT FROM WHERE")" \
		"$(query 10 create_table "CREATE TABLE c (x UNIQUE)")" \
		"$(query 11 write_query "INSERT INTO c VALUES (1), (1)")" \
		"$(query 12 read_query "SELECT count(*) AS n FROM c")"
	check '
assert is_error(1) and "query" in text(1)
assert is_error(2) and "string" in text(2)
assert is_error(3)
assert err(4)["code"] == -32602 and "no_such_tool" in err(4)["message"]
assert err(5)["code"] == -32602
assert err(6)["code"] == -32602
assert err(7)["code"] == -32602
assert is_error(8) and text(8) == "Database error: no such table: missing", text(8)
assert is_error(9) and text(9).startswith("Database error: ")
assert is_error(11) and "UNIQUE" in text(11), text(11)
assert data(12) == [{"n": 0}], "a failed statement is rolled back"
'
}

@test "append_insight updates memo://insights; subscribers are notified" {
	serve "$INIT" \
		'{"jsonrpc":"2.0","id":1,"method":"resources/list"}' \
		'{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"memo://insights"}}' \
		"$(call 3 append_insight '{"insight":"Apples outsell pears 3 to 1"}')" \
		'{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{"uri":"memo://insights"}}' \
		"$(call 5 append_insight '{"insight":"Weekend sales double"}')" \
		'{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"memo://insights"}}' \
		'{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"memo://other"}}' \
		'{"jsonrpc":"2.0","id":8,"method":"resources/templates/list"}' \
		"$(call 9 append_insight '{"insight":""}')" \
		'{"jsonrpc":"2.0","id":10,"method":"resources/unsubscribe","params":{"uri":"memo://insights"}}' \
		"$(call 11 append_insight '{"insight":"Third"}')"
	check '
rs = res(1)["resources"]
assert len(rs) == 1 and rs[0]["uri"] == "memo://insights" and rs[0]["mimeType"] == "text/plain", rs
assert res(2)["contents"][0]["text"] == "No business insights have been discovered yet."
assert text(3) == "Insight added to memo" and not is_error(3)
memo = res(6)["contents"][0]
assert memo["uri"] == "memo://insights"
assert "Business Intelligence Memo" in memo["text"]
assert "- Apples outsell pears 3 to 1\n- Weekend sales double" in memo["text"], memo["text"]
assert "Summary" in memo["text"]
assert err(7)["code"] == -32002
assert res(8) == {"resourceTemplates": []}
assert is_error(9)
notes = [i for i, m in enumerate(msgs) if m.get("method") == "notifications/resources/updated"]
assert len(notes) == 1, "only the call made while subscribed notifies"
assert msgs[notes[0]]["params"] == {"uri": "memo://insights"}
assert msgs[notes[0] + 1].get("id") == 5, "the notification comes just before the response"
'
}

@test "prompts: mcp-demo lists and renders with the topic" {
	serve "$INIT" \
		'{"jsonrpc":"2.0","id":1,"method":"prompts/list"}' \
		'{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"mcp-demo","arguments":{"topic":"retail sales"}}}' \
		'{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"mcp-demo","arguments":{}}}' \
		'{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"nope","arguments":{"topic":"x"}}}' \
		'{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"mcp-demo"}}'
	check '
p = res(1)["prompts"]
assert [x["name"] for x in p] == ["mcp-demo"]
assert p[0]["arguments"] == [{"name": "topic", "description": p[0]["arguments"][0]["description"], "required": True}]
g = res(2)
assert g["description"] == "Demo template for retail sales"
m = g["messages"]
assert len(m) == 1 and m[0]["role"] == "user" and m[0]["content"]["type"] == "text"
t = m[0]["content"]["text"]
assert t.count("retail sales") >= 3 and "{topic}" not in t
for word in ("create_table", "write_query", "read_query", "append_insight", "memo://insights"):
    assert word in t, word
for i in (3, 4, 5):
    assert err(i)["code"] == -32602, r[i]
'
}

@test "protocol errors: malformed JSON, invalid requests, unknown methods; serving goes on" {
	serve '{"jsonrpc":"2.0","id":1,"method":"ping"' \
		'not json at all' \
		"$INIT" \
		'[{"jsonrpc":"2.0","id":2,"method":"ping"}]' \
		'{"jsonrpc":"1.0","id":3,"method":"ping"}' \
		'{"jsonrpc":"2.0","id":4,"method":"no/such/method"}' \
		'{"jsonrpc":"2.0","method":"notifications/whatever"}' \
		'{"jsonrpc":"2.0","id":99,"result":{}}' \
		'{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"debug"}}' \
		'{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"loud"}}' \
		'' \
		'{"jsonrpc":"2.0","id":"s","method":"ping"}'
	check '
errs = [m for m in msgs if "error" in m and m["id"] is None]
assert [e["error"]["code"] for e in errs] == [-32700, -32700, -32600], errs
assert err(3)["code"] == -32600
assert err(4)["code"] == -32601
assert res(5) == {}
assert err(6)["code"] == -32602
assert res("s") == {}
assert 99 not in r
assert len(msgs) == 9, len(msgs)
'
}

@test "an over-long line gets one -32700 and the next request is served" {
	python3 -c '
import sys
sys.stdout.write("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"" + "a" * (17 * 1024 * 1024) + "\"}}\n")
sys.stdout.write("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n")
' | "$BIN" "$DB" >"$OUT" 2>"$ERR"
	check '
assert len(msgs) == 2, msgs
assert msgs[0]["id"] is None and msgs[0]["error"]["code"] == -32700
assert res(2) == {}
'
}

@test "EOF ends the server with status 0; a last line without a newline is served" {
	run bash -c "printf '%s' '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}' | '$BIN' '$DB' 2>/dev/null"
	[ "$status" -eq 0 ]
	[ "$output" = '{"jsonrpc":"2.0","id":1,"result":{}}' ]
	run "$BIN" "$DB" </dev/null
	[ "$status" -eq 0 ]
}

@test "read_query stops at MCP_SQLITE_MAX_ROWS and says so" {
	printf '%s\n' "$INIT" \
		"$(query 1 read_query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) SELECT x FROM c")" \
		"$(query 2 read_query "SELECT 1 AS x")" |
		MCP_SQLITE_MAX_ROWS=3 "$BIN" "$DB" >"$OUT" 2>"$ERR"
	check '
assert data(1) == [{"x": 1}, {"x": 2}, {"x": 3}]
c = res(1)["content"]
assert len(c) == 2 and "truncated" in c[1]["text"] and "3" in c[1]["text"], c
assert len(res(2)["content"]) == 1
'
}

@test "a runaway query is stopped by MCP_SQLITE_TIMEOUT_MS" {
	printf '%s\n' "$INIT" \
		"$(query 1 read_query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")" \
		'{"jsonrpc":"2.0","id":2,"method":"ping"}' |
		MCP_SQLITE_TIMEOUT_MS=300 timeout 20 "$BIN" "$DB" >"$OUT" 2>"$ERR"
	check '
assert is_error(1) and "MCP_SQLITE_TIMEOUT_MS" in text(1), text(1)
assert res(2) == {}
'
}

@test "a statement the client cancels (notifications/cancelled) stops at once, gets no answer, keeps nothing, and what came after it is served" {
	local slow t0 took
	slow="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
	t0=$(date +%s%N)
	{
		printf '%s\n' "$INIT" "$(call 1 create_table '{"query":"CREATE TABLE t (x INTEGER)"}')" \
			"$(query 2 read_query "$slow")"
		sleep 0.5
		# another id first (nothing happens), then the one in progress; a string id is not 2 either
		printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}' \
			'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"2"}}' \
			'{"jsonrpc":"2.0","id":3,"method":"ping"}' \
			'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"the user stopped it"}}' \
			"$(query 4 write_query "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")"
		sleep 0.5
		printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}' \
			"$(query 5 read_query "SELECT count(*) AS n FROM t")" '{"jsonrpc":"2.0","id":6,"method":"ping"}'
	} | MCP_SQLITE_TIMEOUT_MS=30000 timeout 20 "$BIN" "$DB" >"$OUT" 2>"$ERR"
	took=$(( ($(date +%s%N) - t0) / 1000000 ))
	cat "$ERR"
	# both statements would run for 30 s (MCP_SQLITE_TIMEOUT_MS): each stopped within its 10 ms look
	[ "$took" -lt 8000 ] || { echo "the session took $took ms"; return 1; }
	check '
assert 2 not in r and 4 not in r, "a cancelled request was answered: %r" % [r.get(2), r.get(4)]
assert res(3) == {} and res(6) == {}
assert data(5) == [{"n": 0}], data(5)  # the cancelled INSERT kept nothing
'
	[ "$(grep -c 'cancelled by the client: stopped, not answered' "$ERR")" = 2 ]
}

@test "valgrind: a session using every tool has no leaks or memory errors" {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	! grep -qa __asan_init "$BIN" || skip "an AddressSanitizer build (make check-asan): ASan checks it there, valgrind cannot run it"
	printf '%s\n' "$INIT" "$INITED" \
		'{"jsonrpc":"2.0","id":1,"method":"tools/list"}' \
		"$(query 2 create_table "CREATE TABLE v (id INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB)")" \
		"$(query 3 write_query "INSERT INTO v (s, r, b) VALUES ('x', 0.5, x'01'), (NULL, 1e999, NULL)")" \
		"$(query 4 read_query "SELECT * FROM v")" \
		"$(query 5 read_query "SELECT 1; DROP TABLE v")" \
		"$(query 6 read_query "SELECT * FROM nope")" \
		"$(call 7 list_tables '{}')" \
		"$(call 8 describe_table '{"table_name":"v"}')" \
		"$(call 9 describe_table '{"table_name":"nope"}')" \
		'{"jsonrpc":"2.0","id":10,"method":"resources/subscribe","params":{"uri":"memo://insights"}}' \
		"$(call 11 append_insight '{"insight":"one"}')" \
		"$(call 12 append_insight '{"insight":"two"}')" \
		'{"jsonrpc":"2.0","id":13,"method":"resources/read","params":{"uri":"memo://insights"}}' \
		'{"jsonrpc":"2.0","id":14,"method":"prompts/list"}' \
		'{"jsonrpc":"2.0","id":15,"method":"prompts/get","params":{"name":"mcp-demo","arguments":{"topic":"t"}}}' \
		'{"jsonrpc":"2.0","id":16,"method":"prompts/get","params":{"name":"mcp-demo"}}' \
		"$(call 17 nope '{}')" \
		'{bad json' \
		'{"jsonrpc":"2.0","id":18,"method":"nope"}' \
		"$(query 19 read_query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) SELECT x FROM c")" \
		"$(query 20 read_query "SELECT randomblob(5000) AS b")" \
		"$(query 21 read_query "SELECT 1 AS a, randomblob(1500) AS b")" \
		"$(query 22 read_query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) SELECT randomblob(500) AS b FROM c")" |
		MCP_SQLITE_MAX_ROWS=2 MCP_SQLITE_MAX_VALUE_BYTES=4096 MCP_SQLITE_MAX_RESULT_BYTES=2048 valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
			--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
			"$BIN" "$DB" >"$OUT" 2>"$ERR" || { cat "$ERR"; return 1; }
	grep -q "ERROR SUMMARY: 0 errors" "$ERR" || { cat "$ERR"; return 1; }
	check '
assert len(r) == 24, sorted(map(str, r))  # ids 0..22 and null
assert is_error(20) and is_error(21) and res(22)["content"][1]["text"].startswith("Result truncated")
assert data(4)[0] == {"id": 1, "s": "x", "r": 0.5, "b": "01"}
assert is_error(5) and is_error(6) and is_error(9)
'
}

@test "fts3_tokenizer (pointer out, call through a pointer in) is refused with a clear error, and the server lives on" {
	serve "$INIT" \
		"$(query 1 read_query "SELECT hex(fts3_tokenizer('simple'))")" \
		"$(query 2 read_query "SELECT fts3_tokenizer('simple', x'4141414141414141')")" \
		"$(query 3 read_query "SELECT 1 AS x WHERE fts3_tokenizer('porter') IS NOT NULL")" \
		"$(query 4 write_query "CREATE TABLE t AS SELECT load_extension('/tmp/x.so')")" \
		"$(query 5 read_query "SELECT upper('ok') AS u, json_extract('{\"a\":2}', '\$.a') AS a")"
	check '
for i in (1, 2, 3):
    assert is_error(i) and "fts3_tokenizer() is not allowed" in text(i) and "nothing was executed" in text(i), text(i)
assert is_error(4), text(4)
assert data(5) == [{"u": "OK", "a": 2}], text(5)
'
}

@test "a database the server creates is 0600, whatever the umask" {
	(umask 000 && serve "$INIT")
	[ "$(stat -c %a "$DB")" = 600 ]
}

@test "one huge value (randomblob(400000000)) is refused at once by MCP_SQLITE_MAX_VALUE_BYTES, and the next call is answered" {
	serve "$INIT" \
		"$(query 1 read_query "SELECT randomblob(400000000) AS b")" \
		"$(query 2 read_query "SELECT length(zeroblob(2000000)) AS n")" \
		"$(query 3 read_query "SELECT length(randomblob(1000000)) AS n")" \
		"$(query 4 create_table "CREATE TABLE t (b BLOB)")" \
		"$(query 5 write_query "INSERT INTO t VALUES (randomblob(1048577))")" \
		"$(query 6 read_query "SELECT 1 AS x")"
	check '
for i in (1, 2, 5):
    assert is_error(i) and "MCP_SQLITE_MAX_VALUE_BYTES" in text(i) and "1048576" in text(i), text(i)
assert data(3) == [{"n": 1000000}]
assert data(6) == [{"x": 1}]
'
}

@test "a first row over MCP_SQLITE_MAX_RESULT_BYTES is a tool error naming it; later rows are cut with a note" {
	cols="randomblob(600) AS a, randomblob(600) AS b, randomblob(600) AS c, randomblob(600) AS d"
	printf '%s\n' "$INIT" \
		"$(query 1 read_query "SELECT $cols")" \
		"$(query 2 read_query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT randomblob(600) AS a FROM c")" \
		"$(query 3 read_query "SELECT 1 AS x")" |
		MCP_SQLITE_MAX_RESULT_BYTES=4096 "$BIN" "$DB" >"$OUT" 2>"$ERR"
	check '
assert is_error(1) and "MCP_SQLITE_MAX_RESULT_BYTES" in text(1) and "4096" in text(1), text(1)
c = res(2)["content"]
assert not is_error(2) and 1 <= len(data(2)) < 4, len(data(2))
assert len(c) == 2 and "truncated" in c[1]["text"] and "MCP_SQLITE_MAX_RESULT_BYTES=4096" in c[1]["text"], c
assert data(3) == [{"x": 1}]
'
}

@test "a statement needing more than MCP_SQLITE_MAX_HEAP_BYTES fails with a tool error naming it, and the server goes on" {
	printf '%s\n' "$INIT" \
		"$(query 1 read_query "SELECT length(randomblob(1000000) || randomblob(1000000)) AS n")" \
		"$(query 2 read_query "SELECT 1 AS x")" |
		MCP_SQLITE_MAX_HEAP_BYTES=1048576 MCP_SQLITE_MAX_VALUE_BYTES=4000000 "$BIN" "$DB" >"$OUT" 2>"$ERR"
	check '
assert is_error(1) and "MCP_SQLITE_MAX_HEAP_BYTES" in text(1) and "1048576" in text(1), text(1)
assert data(2) == [{"x": 1}]
'
}

@test "peak RSS (VmHWM) of the server over the worst queries within its limits stays at 64 MB or less" {
	! grep -qa __asan_init "$BIN" || skip "an AddressSanitizer build: its shadow memory is no measure of the server's"
	python3 - "$BIN" "$DB" 2>&3 <<'PY'
import json, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def send(i, method, params):
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
    p.stdin.flush()
    return json.loads(p.stdout.readline())
def q(i, sql):
    t = time.monotonic()
    m = send(i, "tools/call", {"name": "read_query", "arguments": {"query": sql}})
    return m["result"], time.monotonic() - t
send(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bats", "version": "1"}})
rows = lambda n: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT %d) " % n
many = ", ".join("x AS c%d" % i for i in range(200))
worst = [
    "SELECT randomblob(400000000) AS b",                                      # the finding: refused at once
    "SELECT " + ", ".join("randomblob(1048576) AS b%d" % i for i in range(8)),  # a row of 8 MB of values
    rows(100) + "SELECT randomblob(1000000) AS a FROM c",                      # 8 MB of hex in 1 MB values
    rows(100) + "SELECT replace(hex(zeroblob(500000)), '0', char(1)) AS a FROM c",  # escapes: 7 bytes a byte
    rows(10000) + "SELECT " + many + " FROM c",                                 # two million tiny values
    rows(2000000) + "SELECT x FROM c ORDER BY random()",                       # a big sort
    "SELECT group_concat(b) FROM (" + rows(3000) + "SELECT randomblob(1000) AS b FROM c)",
    "SELECT 1 AS x WHERE 1 IN (" + "1," * 499999 + "1)",                       # a 1 MB statement to parse
    "SELECT 1 AS x /*" + "\x01" * ((1 << 20) - 20) + "*/",                     # 1 MiB, 6 MiB as JSON
    "SELECT 1 AS x /*" + " " * (1 << 20) + "*/",                               # over 1 MiB: refused unparsed
]
for i, sql in enumerate(worst, 1):
    r, secs = q(i, sql)
    assert secs < 20, (sql[:60], secs)
    assert r["content"][0]["text"], r
assert r["isError"] and "MCP_SQLITE_MAX_VALUE_BYTES" in r["content"][0]["text"], r
# a message longer than 6 x MCP_SQLITE_MAX_VALUE_BYTES + 64 KB is refused as it is read
m = send(98, "tools/call", {"name": "read_query", "arguments": {"query": "SELECT 1 /*" + " " * (15 << 20) + "*/"}})
assert m["error"]["code"] == -32700 and "MCP_SQLITE_MAX_VALUE_BYTES" in m["error"]["message"], m
r, _ = q(99, "SELECT 1 AS x")
assert json.loads(r["content"][0]["text"]) == [{"x": 1}], r
hwm = int([l for l in open("/proc/%d/status" % p.pid) if l.startswith("VmHWM:")][0].split()[1])
p.stdin.close()
p.wait()
print("# mcp-server-sqlite VmHWM after the worst queries: %d kB" % hwm, file=sys.stderr)
assert hwm <= 64 * 1024, "VmHWM %d kB > 64 MB" % hwm
PY
}
