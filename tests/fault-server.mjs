#!/usr/bin/env node
// fault-server.mjs: a stdio MCP server written by hand (no SDK) that misbehaves on request: floods of lines, results of the wrong JSON type.
//
//   node tests/fault-server.mjs [PREFIX [INIT_DELAY_MS]]
//
// PREFIX (default none) goes before every tool name, so two of these can run side by side;
// INIT_DELAY_MS (default 0) delays the answer to initialize (a server slow to start).
// Tools:
//   flood   {"shape": "lines" | "one", "mib": N}: before its answer, writes N MiB (default 10) to
//           stdout as empty lines ("\n" each: one byte a line) or as one line of "x" (not JSON)
//   wrong   {"as": "number" | "null" | "string" | "array" | "true"}: answers tools/call with a
//           "result" of that JSON type instead of an object; "content_number", "content_items",
//           "meta_string", "meta_array": an object whose members have the wrong types;
//           "error_number", "error_string", "error_nocode", "error_codestring", "error_array": an
//           "error" member of that shape instead of a result
//   echo    {"text": ...}: a well-formed answer
//   hang    {}: never answers (the server goes on answering other requests)
//   bigline {"mib": N}: answers with one well-formed JSON line of N MiB (default 20)
//   closeout {}: closes its stdout and keeps running (stdin still read, nothing ever answered)
//   die     {}: exits with status 3 at once, the call unanswered
//   quit    {}: answers, then exits with status 0 (a server that stops after serving)
// Its pid is written to $FAULT_PID_DIR/PREFIX.pid when FAULT_PID_DIR is set. With FAULT_IGNORE_EOF=1
// it lives on when its stdin closes (as servers with threads of their own may): only a signal ends it.
import { closeSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const prefix = process.argv[2] ?? "";
const initDelay = Number(process.argv[3] ?? 0);
const tools = [
	{ name: "flood", description: "Flood stdout before answering.",
	  inputSchema: { type: "object", properties: { shape: { type: "string" }, mib: { type: "integer" } } } },
	{ name: "wrong", description: "Answer with a result of the wrong JSON type.",
	  inputSchema: { type: "object", properties: { as: { type: "string" } } } },
	{ name: "echo", description: "Echo the text.",
	  inputSchema: { type: "object", properties: { text: { type: "string" } } } },
	...["hang", "bigline", "closeout", "die", "quit"].map((name) => ({ name, description: `Fault: ${name}.`,
	  inputSchema: { type: "object", properties: { mib: { type: "integer" } } } })),
].map((t) => ({ ...t, name: prefix + t.name,
	// FAULT_READONLY=1: every tool says a repeat does no harm (the broker may send a call again)
	...(process.env.FAULT_READONLY === "1" ? { annotations: { readOnlyHint: true } } : {}) }));
const wrong = { number: 5, null: null, string: "five", array: [1, 2], true: true,
	// objects whose members have the wrong types
	content_number: { content: 5 }, content_items: { content: [5, "x", null, [1], { type: 7 }] },
	meta_string: { _meta: "x", content: [{ type: "text", text: "meta was a string" }] },
	meta_array: { _meta: [1], content: [{ type: "text", text: "meta was an array" }], isError: "yes" } };
const wrongError = { error_number: 5, error_string: "bad", error_nocode: { message: "m" },
	error_codestring: { code: "x", message: "m" }, error_array: [1] };

if (process.env.FAULT_PID_DIR)
	writeFileSync(`${process.env.FAULT_PID_DIR}/${prefix || "fault"}.pid`, `${process.pid}\n`);

function send(msg) {
	process.stdout.write(JSON.stringify(msg) + "\n");
}

function call(id, name, args) {
	const text = (t) => ({ content: [{ type: "text", text: t }] });
	switch (name.slice(prefix.length)) {
	case "flood": {
		const bytes = (args.mib ?? 10) * 1048576;
		process.stdout.write(Buffer.alloc(bytes, args.shape === "one" ? "x" : "\n"));
		process.stdout.write("\n");
		return send({ jsonrpc: "2.0", id, result: text(`flooded ${bytes}`) });
	}
	case "wrong":
		if (String(args.as).startsWith("error_")) // an error member of the wrong shape
			return send({ jsonrpc: "2.0", id, error: wrongError[args.as] });
		return send({ jsonrpc: "2.0", id, result: wrong[args.as] });
	case "echo":
		return send({ jsonrpc: "2.0", id, result: text(`Echo: ${args.text}`) });
	case "hang":
		return undefined;
	case "bigline":
		return send({ jsonrpc: "2.0", id, result: text("x".repeat((args.mib ?? 20) * 1048576)) });
	case "closeout":
		closeSync(1);
		setInterval(() => {}, 1 << 30); // keeps running; stdin is still read
		return undefined;
	case "die":
		return process.exit(3);
	case "quit":
		send({ jsonrpc: "2.0", id, result: text("bye") });
		return process.stdout.write("", () => process.exit(0));
	default:
		return send({ jsonrpc: "2.0", id, error: { code: -32602, message: `unknown tool ${name}` } });
	}
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
		setTimeout(() => send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
			capabilities: { tools: {} }, serverInfo: { name: "fault", version: "1.0.0" } } }), initDelay);
	else if (m.method === "tools/list")
		send({ jsonrpc: "2.0", id: m.id, result: { tools } });
	else if (m.method === "tools/call")
		call(m.id, m.params.name, m.params.arguments ?? {});
	else if (m.method === "ping")
		send({ jsonrpc: "2.0", id: m.id, result: {} });
	else
		send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
}).on("close", () => {
	if (process.env.FAULT_IGNORE_EOF === "1")
		setInterval(() => {}, 1 << 30);
	else
		process.exit(0);
});
