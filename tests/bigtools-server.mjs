#!/usr/bin/env node
// bigtools-server.mjs: a stdio MCP server written by hand (no SDK) that lists many tools with long descriptions, in pages.
//
//   node tests/bigtools-server.mjs PREFIX COUNT DESC_BYTES [PAGE [PROPS]]
//
// Lists COUNT tools named PREFIX0, PREFIX1, ... whose descriptions are DESC_BYTES bytes long,
// PAGE a tools/list page (default or 0: all in one, with nextCursor between pages), each
// inputSchema with PROPS string properties p0, p1, ... (default 1, named x: many small JSON
// values when PROPS is large). tools/call of any of them answers "called NAME".
import { createInterface } from "node:readline";

const [prefix = "t", count = "10", descBytes = "100", pageArg, propsArg] = process.argv.slice(2);
const n = Number(count), page = Number(pageArg ?? count) || n;
const desc = "d".repeat(Number(descBytes));
const properties = propsArg === undefined ? { x: { type: "string" } }
	: Object.fromEntries(Array.from({ length: Number(propsArg) }, (_, k) => [`p${k}`, { type: "string" }]));
const tool = (i) => ({ name: `${prefix}${i}`, description: desc, inputSchema: { type: "object", properties } });

function send(msg) {
	process.stdout.write(JSON.stringify(msg) + "\n");
}

function list(id, cursor) {
	const from = cursor ? Number(cursor) : 0, to = Math.min(n, from + page), tools = [];
	for (let i = from; i < to; i++)
		tools.push(tool(i));
	send({ jsonrpc: "2.0", id, result: to < n ? { tools, nextCursor: String(to) } : { tools } });
}

createInterface({ input: process.stdin }).on("line", (line) => {
	let m;
	try {
		m = JSON.parse(line);
	} catch {
		return;
	}
	if (m.id === undefined)
		return; // notifications
	if (m.method === "initialize")
		send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
			capabilities: { tools: {} }, serverInfo: { name: "bigtools", version: "1.0.0" } } });
	else if (m.method === "tools/list")
		list(m.id, m.params?.cursor);
	else if (m.method === "tools/call")
		send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: `called ${m.params.name}` }] } });
	else if (m.method === "ping")
		send({ jsonrpc: "2.0", id: m.id, result: {} });
	else
		send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
}).on("close", () => process.exit(0));
